"""What a listener of a remixed scene gets, measured against the true stems.

Shapes: every signal is (samples, channels); the true `dialogue` and `background` sum to the mixture. Scores
over several channels are computed per channel and averaged (dB), so a stereo scene weighs both sides alike.

- `stem_si_sdr`: SI-SDR (dB) of an estimated stem against its true stem.
- `remix_fidelity`: SI-SDR of a remix against the ideal remix g_d·dialogue + g_b·background (what a perfect
  separator would give at the same gains). The unprocessed mixture's score against the same target is the
  baseline: a remix helps when it scores above it.
- `ratio_change_db`: how much the dialogue-to-background ratio changed from the mixture to the output, as
  heard through the true stems: the output is projected on [dialogue, background] (least squares over all
  channels), output ≈ α·dialogue + β·background + rest, and the change is 20·log10(|α| / |β|) dB. Loudness
  scales with gain, so this is also the change in LU of the dialogue-to-background loudness ratio; the ideal
  remix scores exactly g_d − g_b (dB).
"""
from __future__ import annotations

import numpy as np

from pipeline.metrics.separation import MAX_DB, si_sdr


def _channels(name: str, signal: np.ndarray, shape: tuple[int, ...] | None = None) -> np.ndarray:
    signal = np.asarray(signal, dtype=np.float64)
    if signal.ndim == 1:
        signal = signal[:, None]
    if signal.ndim != 2 or (shape is not None and signal.shape != shape):
        raise ValueError(f"{name} has shape {signal.shape}; expected (samples, channels)"
                         + (f" = {shape}" if shape else ""))
    if not np.isfinite(signal).all():
        raise ValueError(f"{name} holds NaN or infinite samples; expected finite audio")
    return signal


def stem_si_sdr(reference: np.ndarray, estimate: np.ndarray) -> float:
    """Mean over channels of SI-SDR (dB) of `estimate` against `reference`; NaN if a channel is undefined."""
    reference = _channels("reference", reference)
    estimate = _channels("estimate", estimate, reference.shape)
    return float(np.mean([si_sdr(reference[:, c], estimate[:, c]) for c in range(reference.shape[1])]))


def ideal_remix(dialogue: np.ndarray, background: np.ndarray, dialogue_gain_db: float,
                background_gain_db: float) -> np.ndarray:
    """g_d·dialogue + g_b·background, the target of a remix at those gains."""
    dialogue = _channels("dialogue", dialogue)
    background = _channels("background", background, dialogue.shape)
    return 10 ** (dialogue_gain_db / 20) * dialogue + 10 ** (background_gain_db / 20) * background


def remix_fidelity(output: np.ndarray, dialogue: np.ndarray, background: np.ndarray, dialogue_gain_db: float,
                   background_gain_db: float) -> float:
    """SI-SDR (dB) of `output` against the ideal remix at the given gains (MAX_DB for a perfect remix)."""
    return stem_si_sdr(ideal_remix(dialogue, background, dialogue_gain_db, background_gain_db), output)


def ratio_change_db(output: np.ndarray, dialogue: np.ndarray, background: np.ndarray) -> float:
    """20·log10(|α| / |β|) of the least-squares fit output ≈ α·dialogue + β·background (clipped to ±MAX_DB)."""
    dialogue = _channels("dialogue", dialogue)
    background = _channels("background", background, dialogue.shape)
    output = _channels("output", output, dialogue.shape)
    basis = np.stack([dialogue.reshape(-1), background.reshape(-1)], axis=1)
    (alpha, beta), *_ = np.linalg.lstsq(basis, output.reshape(-1), rcond=None)
    if abs(alpha) == 0 and abs(beta) == 0:
        return float("nan")
    with np.errstate(divide="ignore"):
        change = 20 * np.log10(abs(alpha)) - 20 * np.log10(abs(beta))
    return float(np.clip(change, -MAX_DB, MAX_DB))
