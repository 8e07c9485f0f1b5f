"""Does `enhance` separate as well as the model does on its own 1-s clips? The check that pins it.

The model is trained on 1-s clips and scored on them; `enhance` slides its 1-s windows over a recording, so a
clip's sound sits anywhere in them, the windows overlap, and each frame's mask is a weighted mean over windows
(`pipeline.enhance.stream`). Both are run on the same test mixtures of a dataset:

- **alone**: each clip separated on its own, its one window aligned with the clip (the forward path the 1-s
  test tables score, with the Wiener mask summed over the dialogue classes);
- **enhance**: the clips concatenated into one recording at the model rate and run through `enhance`'s own
  processor (`StreamingEnhancer`), then cut back into clips.

The figure per path is the median over clips of the dialogue stem's SI-SDR improvement over the mixture; the gap
(enhance − alone) is what `enhance` itself adds or loses. The project's target: `enhance` loses at most 1 dB
(a positive gap is welcome: overlapping windows see each frame from several positions).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from pipeline.enhance.masker import DialogueMasker
from pipeline.enhance.stream import StreamingEnhancer, StreamSettings
from pipeline.features.stft import StftSpec, istft, stft
from pipeline.metrics.remix import stem_si_sdr

GAP_TARGET_DB = 1.0  # enhance may lose at most this much against the model alone


@dataclass(frozen=True)
class ClipCheck:
    """Per-clip dialogue SI-SDRi (dB) of the two paths, and their medians' difference."""

    alone: np.ndarray
    enhance: np.ndarray

    @property
    def gap_db(self) -> float:
        return float(np.median(self.enhance) - np.median(self.alone))

    @property
    def on_target(self) -> bool:
        return self.gap_db >= -GAP_TARGET_DB

    def metrics(self) -> dict[str, float]:
        return {"alone_si_sdri": float(np.median(self.alone)), "enhance_si_sdri": float(np.median(self.enhance)),
                "gap_db": self.gap_db}


def _si_sdr(dialogue: np.ndarray, estimates: np.ndarray) -> np.ndarray:
    """Per-clip SI-SDR (dB) of `estimates` (N, L) against `dialogue` (N, L)."""
    return np.array([stem_si_sdr(d, e) for d, e in zip(dialogue.astype(np.float64), estimates.astype(np.float64))])


def separate_alone(masker: DialogueMasker, mixtures: np.ndarray) -> np.ndarray:
    """The dialogue of each clip (N, L) from the model's one window over that clip alone (the model's STFT)."""
    spec = StftSpec(n_fft=masker.settings.n_fft, hop_length=masker.settings.hop)
    waves = torch.from_numpy(np.ascontiguousarray(mixtures, dtype=np.float32))
    spectra = stft(waves, spec)                                    # (N, T, F)
    masks = torch.cat([masker(part) for part in torch.split(spectra.abs(), 256)])
    return istft(spectra * masks, mixtures.shape[1], spec).numpy()


def separate_in_sequence(masker: DialogueMasker, mixtures: np.ndarray, sample_rate: int,
                         settings: StreamSettings) -> np.ndarray:
    """The dialogue of each clip (N, L) from `enhance`'s processor over the clips joined into one recording."""
    enhancer = StreamingEnhancer(masker, sample_rate, 1, update_frames=settings.update_frames,
                                 lookahead_frames=settings.lookahead_frames)
    joined = mixtures.reshape(-1, 1).astype(np.float32)
    parts = [enhancer.process(joined), enhancer.flush()]
    dialogue = np.concatenate([part.dialogue for part in parts])[:, 0]
    return dialogue.reshape(mixtures.shape)


def clip_check(masker: DialogueMasker, mixtures: np.ndarray, dialogue: np.ndarray, sample_rate: int,
               settings: StreamSettings) -> ClipCheck:
    """Score both paths on clips `mixtures` (N, L) with true dialogue stems `dialogue` (N, L) at the model rate."""
    if mixtures.shape != dialogue.shape or mixtures.ndim != 2 or not len(mixtures):
        raise ValueError(f"mixtures {mixtures.shape} and dialogue {dialogue.shape} must be the same (N, L), N > 0")
    if sample_rate != masker.settings.sample_rate:
        raise ValueError(f"clips at {sample_rate} Hz; the model {masker.settings.origin} runs at "
                         f"{masker.settings.sample_rate} Hz")
    baseline = _si_sdr(dialogue, mixtures)
    return ClipCheck(alone=_si_sdr(dialogue, separate_alone(masker, mixtures)) - baseline,
                     enhance=_si_sdr(dialogue, separate_in_sequence(masker, mixtures, sample_rate, settings))
                     - baseline)


def read_test_clips(split_dir, dialogue_classes: tuple[str, ...], count: int) -> tuple[np.ndarray, np.ndarray, int]:
    """The first `count` mixtures of a test split (N, L), their dialogue stems (the sum of the dialogue classes'
    sources, N × L) and the sample rate."""
    from pipeline.models.data import MixtureSplit

    split = MixtureSplit(split_dir)
    unknown = sorted(set(dialogue_classes) - set(split.classes))
    if unknown:
        raise ValueError(f"{split_dir}: dialogue classes {unknown} are not among its classes {split.classes}")
    batch = next(split.batches(min(count, split.size), shuffle=False))
    chosen = [split.classes.index(name) for name in dialogue_classes]
    return batch.mixture.numpy(), batch.sources[:, chosen].sum(dim=1).numpy(), split.sample_rate
