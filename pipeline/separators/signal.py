"""The signal settings a model was trained at, read from its model file: sample rate, STFT size and hop, and the
context length (frames per window) the network sees.

`enhance` resamples to the model's rate and frames its STFT as the training did; nothing is assumed. Model files
written before a field was recorded get the value of that era (8,600 Hz, 1-s clips), with a log line saying so;
a value that is there but cannot be honoured is refused, naming the file and the value.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

LEGACY_SAMPLE_RATE = 8600  # every model file written before `sample_rate` was recorded was trained at 8,600 Hz


@dataclass(frozen=True)
class SignalSettings:
    """What a model's input is: magnitudes of a centred STFT (`n_fft`, `hop`) of audio at `sample_rate`, in
    windows of `context_frames` frames. `origin` (the model file) only names it in messages."""

    sample_rate: int
    n_fft: int
    hop: int
    context_frames: int
    origin: str = field(default="", compare=False)

    @property
    def bins(self) -> int:
        """Frequency bins of a one-sided spectrum."""
        return self.n_fft // 2 + 1

    def __post_init__(self) -> None:
        for name in ("sample_rate", "n_fft", "hop", "context_frames"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{self._where()}{name} = {value!r}; expected a positive integer")
        if self.n_fft < 2 or self.n_fft % self.hop:
            raise ValueError(f"{self._where()}n_fft = {self.n_fft}, hop = {self.hop}; expected n_fft >= 2 and a "
                             f"multiple of the hop (streaming overlap-adds whole hops)")
        if self.context_frames < 2:
            raise ValueError(f"{self._where()}context_frames = {self.context_frames}; expected at least 2")

    def check_stream(self, update_frames: int, lookahead_frames: int) -> None:
        """ValueError unless a window of `context_frames` holds `update_frames` + `lookahead_frames` frames."""
        if update_frames < 1 or not 0 <= lookahead_frames < self.context_frames - update_frames:
            raise ValueError(f"{self._where()}a window of {self.context_frames} frames cannot hold update_frames "
                             f"{update_frames} and lookahead_frames {lookahead_frames}; expected update_frames >= 1 "
                             f"and lookahead_frames in [0, {self.context_frames - update_frames})")

    def _where(self) -> str:
        return f"model {self.origin}: " if self.origin else ""


def signal_settings(info: dict[str, Any], path: str | Path, context_frames: int | None = None) -> SignalSettings:
    """The signal settings stored in a model file's `info` (`sample_rate`, `clip_samples`, `stft`).

    `context_frames`: the frames the network itself takes, when its shape fixes them; the stored clip length must
    then agree. Without `sample_rate` (older files) the rate is 8,600 Hz; without `clip_samples`, 1-s clips.
    """
    stft = info.get("stft")
    if not isinstance(stft, dict) or "n_fft" not in stft or "hop_length" not in stft:
        raise ValueError(f"model {path}: stft = {stft!r}; expected {{'n_fft': ..., 'hop_length': ...}} (the STFT it "
                         f"was trained with)")
    n_fft, hop = _integer(stft["n_fft"], "stft.n_fft", path), _integer(stft["hop_length"], "stft.hop_length", path)
    if "sample_rate" in info:
        rate = _integer(info["sample_rate"], "sample_rate", path)
    else:
        rate = LEGACY_SAMPLE_RATE
        log.info("model %s predates recorded sample rates: using %d Hz, the rate of that era", path, rate)
    if "clip_samples" in info:
        clip = _integer(info["clip_samples"], "clip_samples", path)
    else:
        clip = rate
        log.info("model %s predates recorded clip lengths: using 1-s clips (%d samples)", path, clip)
    if hop < 1 or clip < 1:
        raise ValueError(f"model {path}: stft.hop_length = {hop}, clip_samples = {clip}; expected positive integers")
    frames = 1 + clip // hop
    if context_frames is not None and context_frames != frames:
        raise ValueError(f"model {path}: the network takes {context_frames} frames, but clip_samples = {clip} at "
                         f"hop {hop} makes {frames}; the file is inconsistent: retrain it")
    return SignalSettings(rate, n_fft, hop, frames, origin=str(path))


def _integer(value: Any, key: str, path: str | Path) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"model {path}: {key} = {value!r}; expected an integer")
    return value
