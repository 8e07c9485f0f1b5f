"""Procedural, speech-free background sounds for the demo corpus (numpy and scipy.signal only).

Every generator has the signature `kind(rng, seconds, sr) -> float32 array of round(seconds * sr) samples`,
draws all of its variation from `rng`, and returns a signal peak-normalised to a random level in [0.3, 0.9].
A faint noise floor under every sound keeps quiet stretches (between gunshots, before an explosion) above the
pipeline's silence threshold, as in real field recordings.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
from scipy import signal

BackgroundGenerator = Callable[[np.random.Generator, float, int], np.ndarray]


# --------------------------------------------------------------------------------------------- helpers


def _length(seconds: float, sr: int) -> int:
    n = int(round(seconds * sr))
    if n <= 0 or sr <= 0:
        raise ValueError(f"need a positive length and sample rate, got seconds={seconds}, sr={sr}")
    return n


def _hz(freq: float, sr: int) -> float:
    """Clamp a filter corner below Nyquist so low sample rates still work."""
    return float(min(max(freq, 1.0), 0.45 * sr))


def _filter(x: np.ndarray, sr: int, kind: str, freq: float | tuple[float, float], order: int = 4) -> np.ndarray:
    if isinstance(freq, tuple):
        lo, hi = _hz(freq[0], sr), _hz(freq[1], sr)
        wn: float | list[float] = [min(lo, 0.9 * hi), hi]
    else:
        wn = _hz(freq, sr)
    sos = signal.butter(order, wn, btype=kind, fs=sr, output="sos")
    return signal.sosfilt(sos, x)


def _noise(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.standard_normal(n)


def _envelope(rng: np.random.Generator, n: int, sr: int, rate_hz: float, low: float, high: float) -> np.ndarray:
    """A slowly varying random envelope: uniform control points every 1/rate_hz s, smoothly interpolated."""
    step = max(1, int(sr / rate_hz))
    points = rng.uniform(low, high, size=n // step + 3)
    t = np.arange(n) / step
    i = np.floor(t).astype(int)
    frac = t - i
    frac = 0.5 - 0.5 * np.cos(np.pi * frac)  # cosine interpolation: no corners
    return points[i] * (1 - frac) + points[i + 1] * frac


def _decay(n: int, sr: int, tau: float, attack: float = 0.0) -> np.ndarray:
    """An exponential decay of time constant tau (s) after a linear attack of `attack` s."""
    t = np.arange(n) / sr
    env = np.exp(-np.maximum(t - attack, 0.0) / tau)
    if attack > 0:
        env = np.where(t < attack, t / attack, env)
    return env


def _add(out: np.ndarray, event: np.ndarray, start: int) -> None:
    """Add `event` into `out` at sample `start`, cropping at the end."""
    if start >= len(out):
        return
    stop = min(len(out), start + len(event))
    out[start:stop] += event[: stop - start]


def _unit_rms(x: np.ndarray) -> np.ndarray:
    rms = float(np.sqrt(np.mean(x**2)))
    return x / rms if rms > 0 else x


def _finish(rng: np.random.Generator, x: np.ndarray, sr: int) -> np.ndarray:
    """Add a faint low-passed noise floor, peak-normalise to a random level, and return float32."""
    peak = float(np.max(np.abs(x)))
    floor = _unit_rms(_filter(_noise(rng, len(x)), sr, "lowpass", rng.uniform(800, 3000), order=2))
    x = x + floor * peak * rng.uniform(0.01, 0.03)
    x = x / float(np.max(np.abs(x))) * rng.uniform(0.3, 0.9)
    return x.astype(np.float32)


def _event_times(rng: np.random.Generator, n: int, sr: int, rate_hz: float) -> np.ndarray:
    """Sample indices of a Poisson process of `rate_hz` events per second, sorted."""
    count = rng.poisson(rate_hz * n / sr)
    return np.sort(rng.integers(0, n, size=count))


# --------------------------------------------------------------------------------------------- kinds


def rain(rng: np.random.Generator, seconds: float, sr: int) -> np.ndarray:
    """Steady rain: band-passed noise with a drifting intensity plus random droplet 'plinks' and clicks."""
    n = _length(seconds, sr)
    hiss = _filter(_noise(rng, n), sr, "bandpass", (rng.uniform(400, 1200), rng.uniform(6000, 10000)))
    hiss = _unit_rms(hiss) * _envelope(rng, n, sr, rng.uniform(0.3, 1.0), 0.7, 1.0)
    drops = np.zeros(n)
    for start in _event_times(rng, n, sr, rng.uniform(15, 60)):
        tau = rng.uniform(0.002, 0.008)
        m = int(5 * tau * sr) + 1
        t = np.arange(m) / sr
        freq = _hz(rng.uniform(1500, 5000), sr)
        # A droplet is a short decaying resonance with a slight upward chirp, like a drop hitting a surface.
        tone = np.sin(2 * np.pi * freq * t * (1 + 20 * t)) * np.exp(-t / tau)
        drops_gain = rng.lognormal(0.0, 0.6)
        _add(drops, tone * drops_gain, int(start))
    return _finish(rng, hiss * rng.uniform(0.4, 0.8) + drops * rng.uniform(0.8, 1.5), sr)


def wind(rng: np.random.Generator, seconds: float, sr: int) -> np.ndarray:
    """Wind: low-passed noise with slow gusts plus a faint, separately gusting resonant howl."""
    n = _length(seconds, sr)
    body = _unit_rms(_filter(_noise(rng, n), sr, "lowpass", rng.uniform(300, 900)))
    body *= _envelope(rng, n, sr, rng.uniform(0.2, 1.0), 0.15, 1.0)
    centre = rng.uniform(250, 700)
    howl = _unit_rms(_filter(_noise(rng, n), sr, "bandpass", (centre * 0.9, centre * 1.1), order=2))
    howl *= _envelope(rng, n, sr, rng.uniform(0.1, 0.5), 0.0, 1.0) ** 2
    rustle = _unit_rms(_filter(_noise(rng, n), sr, "highpass", rng.uniform(2000, 4000))) * 0.1
    return _finish(rng, body + howl * rng.uniform(0.2, 0.6) + rustle * body, sr)


def engine(rng: np.random.Generator, seconds: float, sr: int) -> np.ndarray:
    """Engine hum: a harmonic series on a jittered 30-120 Hz fundamental plus low-passed mechanical noise."""
    n = _length(seconds, sr)
    f0 = rng.uniform(30, 120)
    drift = _envelope(rng, n, sr, rng.uniform(0.2, 0.5), -rng.uniform(0, 0.08), rng.uniform(0, 0.08))
    jitter = _unit_rms(_filter(_noise(rng, n), sr, "lowpass", 20.0, order=2)) * rng.uniform(0.003, 0.01)
    freq = f0 * (1 + drift + jitter)
    phase = 2 * np.pi * np.cumsum(freq) / sr
    alpha = rng.uniform(0.7, 1.5)
    top = int(min(40, 0.45 * sr / (f0 * 1.2)))
    hum = np.zeros(n)
    for k in range(1, top + 1):
        gain = k**-alpha * rng.uniform(0.5, 1.5)
        hum += gain * np.sin(k * phase + rng.uniform(0, 2 * np.pi))
    # Half-order components from uneven cylinder firing give the typical "rough" engine timbre.
    hum += rng.uniform(0.1, 0.4) * np.sin(0.5 * phase + rng.uniform(0, 2 * np.pi))
    rumble = _unit_rms(_filter(_noise(rng, n), sr, "lowpass", rng.uniform(200, 800)))
    return _finish(rng, _unit_rms(hum) + rumble * rng.uniform(0.1, 0.4), sr)


def explosion(rng: np.random.Generator, seconds: float, sr: int) -> np.ndarray:
    """One or two explosions: a noise burst with a fast attack, a long darkening decay and a sub-bass rumble."""
    n = _length(seconds, sr)
    out = np.zeros(n)
    events = 1 + rng.binomial(int(seconds // 4), 0.4)
    for index in range(events):
        start = int(rng.uniform(0.0, 0.3 if index == 0 else 0.8) * n)
        m = n - start
        attack = rng.uniform(0.002, 0.01)
        tau = rng.uniform(0.4, 1.5)
        burst = _noise(rng, m)
        # Bright part decays fast and the dark part slowly: the spectrum darkens as the blast fades.
        bright = _unit_rms(_filter(burst, sr, "lowpass", rng.uniform(2500, 5000))) * _decay(m, sr, tau * 0.15, attack)
        dark = _unit_rms(_filter(burst, sr, "lowpass", rng.uniform(300, 800))) * _decay(m, sr, tau, attack)
        rumble = _unit_rms(_filter(_noise(rng, m), sr, "lowpass", rng.uniform(60, 150)))
        rumble *= _decay(m, sr, tau * rng.uniform(1.5, 2.5), attack * 5)
        t = np.arange(m) / sr
        sub = np.sin(2 * np.pi * rng.uniform(25, 50) * t) * _decay(m, sr, tau * 0.8, attack * 3)
        out[start:] += rng.uniform(0.5, 1.0) * (bright + 1.5 * dark + 2.0 * rumble + sub)
    return _finish(rng, out, sr)


def _shot(rng: np.random.Generator, sr: int) -> np.ndarray:
    m = int(rng.uniform(0.3, 0.7) * sr)
    crack = _filter(_noise(rng, m), sr, "highpass", rng.uniform(500, 1500)) * _decay(m, sr, rng.uniform(0.001, 0.004))
    body = _filter(_noise(rng, m), sr, "lowpass", rng.uniform(800, 2000)) * _decay(m, sr, rng.uniform(0.02, 0.06))
    tail = _filter(_noise(rng, m), sr, "lowpass", rng.uniform(1000, 2500)) * _decay(m, sr, rng.uniform(0.15, 0.5))
    return 3 * crack + 2 * body + rng.uniform(0.1, 0.3) * tail


def gunshots(rng: np.random.Generator, seconds: float, sr: int) -> np.ndarray:
    """Gunfire: single shots at random times or automatic bursts, each a sharp crack, a body and a reverb tail."""
    n = _length(seconds, sr)
    out = np.zeros(n)
    template = _shot(rng, sr)
    starts: list[int] = []
    position = rng.uniform(0.0, min(0.3, 0.2 * seconds))
    while position < seconds:
        if rng.random() < 0.4:  # an automatic burst
            interval = rng.uniform(0.07, 0.15)
            starts += [int((position + i * interval) * sr) for i in range(int(rng.integers(3, 10)))]
        else:
            starts.append(int(position * sr))
        position += rng.uniform(0.4, 2.0)
    for start in starts:
        # Shots vary a little in level and share the template with a fresh crack on top.
        crack = _filter(_noise(rng, 256), sr, "highpass", 1000.0) * _decay(256, sr, 0.002)
        _add(out, template * rng.uniform(0.6, 1.0), start)
        _add(out, crack * rng.uniform(0.5, 1.5), start)
    return _finish(rng, out, sr)


def _siren_frequency(rng: np.random.Generator, n: int, sr: int) -> np.ndarray:
    t = np.arange(n) / sr
    style = rng.choice(["two_tone", "wail", "yelp"])
    if style == "two_tone":
        low = rng.uniform(500, 900)
        high = low * rng.uniform(1.2, 1.4)
        period = rng.uniform(0.8, 1.6)
        square = np.where((t / period) % 1.0 < 0.5, high, low)
        glide = max(1, int(0.02 * sr))  # 20 ms glides between the two tones
        return np.convolve(square, np.ones(glide) / glide, mode="same")
    low, high = rng.uniform(500, 800), rng.uniform(1200, 1700)
    period = rng.uniform(3.0, 6.0) if style == "wail" else rng.uniform(0.2, 0.4)
    phase = (t / period + rng.random()) % 1.0
    sweep = 0.5 - 0.5 * np.cos(2 * np.pi * phase) if style == "wail" else phase
    return low + (high - low) * sweep


def siren(rng: np.random.Generator, seconds: float, sr: int) -> np.ndarray:
    """An emergency siren (two-tone, wail or yelp): a swept square-ish tone passing by, plus street noise."""
    n = _length(seconds, sr)
    freq = _siren_frequency(rng, n, sr)
    phase = 2 * np.pi * np.cumsum(freq) / sr
    tone = np.zeros(n)
    for k in range(1, 12, 2):  # odd harmonics: the harsh square-wave timbre of electronic sirens
        if k * float(freq.max()) < 0.45 * sr:
            tone += np.sin(k * phase) / k
    # A vehicle passing by: level rises and falls around a random closest-approach time.
    closest = rng.uniform(0.2, 0.8) * seconds
    t = np.arange(n) / sr
    passing = 1.0 / (1.0 + ((t - closest) / rng.uniform(1.0, 4.0)) ** 2)
    street = _unit_rms(_filter(_noise(rng, n), sr, "lowpass", rng.uniform(300, 1000)))
    return _finish(rng, tone * (0.2 + passing) + street * rng.uniform(0.05, 0.2), sr)


def footsteps(rng: np.random.Generator, seconds: float, sr: int) -> np.ndarray:
    """Walking: periodic low thumps (heel) with a soft scuff (toe), alternating feet; hard floor or gravel."""
    n = _length(seconds, sr)
    out = np.zeros(n)
    period = rng.uniform(0.4, 0.7)
    gravel = rng.random() < 0.5
    m = int(0.25 * sr)
    t = np.arange(m) / sr
    position = rng.uniform(0.0, period)
    foot = 0
    while position < seconds:
        thump = _filter(_noise(rng, m), sr, "lowpass", rng.uniform(150, 400)) * _decay(m, sr, rng.uniform(0.015, 0.04))
        thump += 0.5 * np.sin(2 * np.pi * rng.uniform(50, 110) * t) * _decay(m, sr, 0.03)
        scuff_band = (2000.0, 6000.0) if gravel else (1000.0, 3000.0)
        scuff_tau = 0.06 if gravel else 0.01
        scuff = _filter(_noise(rng, m), sr, "bandpass", scuff_band) * _decay(m, sr, scuff_tau)
        delay = int(rng.uniform(0.03, 0.06) * sr)
        step = 4 * thump
        step[delay:] += (0.8 if gravel else 0.3) * scuff[: m - delay]
        _add(out, step * (1.0 if foot == 0 else rng.uniform(0.6, 0.9)), int(position * sr))
        foot = 1 - foot
        position += period * rng.uniform(0.95, 1.05)
    return _finish(rng, out, sr)


def fire(rng: np.random.Generator, seconds: float, sr: int) -> np.ndarray:
    """A crackling fire: a low roar with bursts of sharp crackles and occasional pops."""
    n = _length(seconds, sr)
    roar = _unit_rms(_filter(_noise(rng, n), sr, "bandpass", (rng.uniform(60, 150), rng.uniform(400, 900))))
    roar *= _envelope(rng, n, sr, rng.uniform(0.5, 2.0), 0.6, 1.0)
    crackles = np.zeros(n)
    activity = _envelope(rng, n, sr, rng.uniform(0.5, 2.0), 0.0, 1.0) ** 3
    for start in _event_times(rng, n, sr, rng.uniform(10, 40)):
        if rng.random() > activity[start]:
            continue
        m = int(rng.uniform(0.001, 0.01) * sr) + 2
        click = _noise(rng, m) * _decay(m, sr, m / sr / 4)
        _add(crackles, click * rng.lognormal(0.0, 0.8), int(start))
    crackles = _filter(crackles, sr, "highpass", rng.uniform(1000, 3000), order=2)
    return _finish(rng, roar * rng.uniform(0.5, 1.0) + crackles, sr)


BACKGROUND_KINDS: dict[str, BackgroundGenerator] = {
    "rain": rain,
    "wind": wind,
    "engine": engine,
    "explosion": explosion,
    "gunshots": gunshots,
    "siren": siren,
    "footsteps": footsteps,
    "fire": fire,
}
