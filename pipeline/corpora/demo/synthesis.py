"""What the demo writers of every corpus share: seeded random streams, synthetic voices, framing, atomic writes.

Every demo writer is byte-for-byte deterministic in its arguments: randomness comes only from generators seeded
with `[seed, <tag>, <stable index>]` (each corpus module keeps its own tags), speech from the deterministic
espeak-ng binding (`espeak.py`), sounds from `backgrounds.py`.
"""

from __future__ import annotations

import os
import zlib
from dataclasses import dataclass
from math import gcd
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy import signal

from pipeline.corpora.demo.espeak import EspeakSynthesizer

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")

# en-gb-scotland is left out on purpose: its trilled r depends on what espeak-ng spoke before (see espeak.py).
ENGLISH_VOICES = ("en", "en-us", "en-gb-x-rp", "en-us-nyc", "en-029", "en-gb-x-gbclan", "en-gb-x-gbcwmd")
BRITISH_VOICES = ("en", "en-gb-x-rp")
MALE_VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7")
FEMALE_VARIANTS = ("f1", "f2", "f3", "f4", "f5")


@dataclass(frozen=True)
class Voice:
    """One synthetic speaker: an espeak-ng voice+variant and its prosody settings."""

    voice: str
    pitch: int
    rate: int
    amplitude: int
    range_: int


def seeded_rng(seed: int, tag: int, *keys: int) -> np.random.Generator:
    """The random stream of one purpose (`tag`) and item (`keys`) for `seed`."""
    return np.random.default_rng([seed, tag, *keys])


def stable_key(text: str) -> int:
    """A process-independent integer for a string (Python's hash() is salted per process)."""
    return zlib.crc32(text.encode("utf-8"))


def resample(x: np.ndarray, source_rate: int, target_rate: int) -> np.ndarray:
    """`x` at `target_rate` (soxr HQ; scipy's polyphase filter where soxr is missing)."""
    if source_rate == target_rate:
        return x.astype(np.float32)
    try:
        import soxr
    except ImportError:
        g = gcd(source_rate, target_rate)
        return signal.resample_poly(x, target_rate // g, source_rate // g).astype(np.float32)
    return soxr.resample(x.astype(np.float32), source_rate, target_rate, quality="HQ").astype(np.float32)


def trim_silence(x: np.ndarray, sr: int, threshold: float = 0.01, margin_s: float = 0.01) -> np.ndarray:
    """Cut leading/trailing samples quieter than `threshold` x peak, keeping a `margin_s` margin."""
    loud = np.flatnonzero(np.abs(x) > threshold * float(np.max(np.abs(x), initial=0.0)))
    if loud.size == 0:
        raise RuntimeError("speech synthesis produced silence")
    margin = int(margin_s * sr)
    return x[max(0, loud[0] - margin): loud[-1] + margin + 1]


def _fade_out(x: np.ndarray, sr: int, seconds: float = 0.01) -> np.ndarray:
    n = min(len(x), int(seconds * sr))
    x = x.copy()
    x[len(x) - n:] *= np.linspace(1.0, 0.0, n, dtype=x.dtype)
    return x


def frame(x: np.ndarray, total: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    """Place `x` at a random offset in `total` samples of silence (cutting it, with a fade-out, if too long)."""
    if len(x) >= total:
        return _fade_out(x[:total], sr)
    out = np.zeros(total, dtype=np.float32)
    start = int(rng.integers(0, total - len(x) + 1))
    out[start:start + len(x)] = x
    return out


def write_wav(path: Path, audio: np.ndarray, sr: int) -> None:
    """Write 16-bit PCM WAV via a temporary name and an atomic rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    sf.write(temporary, np.clip(audio, -1.0, 1.0), sr, subtype="PCM_16", format="WAV")
    os.replace(temporary, path)


def write_text(path: Path, text: str) -> None:
    """Write UTF-8 text via a temporary name and an atomic rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_bytes(text.encode("utf-8"))
    os.replace(temporary, path)


def speak(synth: EspeakSynthesizer, text: str, voice: Voice) -> np.ndarray:
    """`text` said by `voice`, at the synthesiser's sample rate."""
    return synth.synthesize(
        text, voice=voice.voice, pitch=voice.pitch, rate=voice.rate, amplitude=voice.amplitude, range_=voice.range_
    )


def jitter(voice: Voice, rng: np.random.Generator, pitch: int, rate: int) -> Voice:
    """The same speaker on another take: pitch and rate moved a little."""
    return Voice(
        voice=voice.voice,
        pitch=int(np.clip(voice.pitch + rng.integers(-pitch, pitch + 1), 0, 100)),
        rate=int(np.clip(voice.rate + rng.integers(-rate, rate + 1), 80, 450)),
        amplitude=voice.amplitude,
        range_=voice.range_,
    )
