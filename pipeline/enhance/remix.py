"""The two passes of `enhance` over a whole programme: separate and measure, then remix at matched loudness.

Pass 1 (`analyse`) runs the model on the plan's channels (`layouts.ChannelPlan`), keeps the dialogue stem of the
processed channels in an unlinked temporary file (float32: 0.7 GB for the centre channel of a 2-hour 48 kHz
film; memory stays one block) and measures, streaming: K-weighted 100-ms energies of the input, of the dialogue
and background stems and of the remix before any loudness gain (K-weighting is linear, so the remix's weighted
signal is g_d·K(d) + g_b·(K(x) − K(d)) and costs no further filtering), and the input's true peak. Between the
passes `gain_db` matches the remix's integrated loudness to the input's (`keep_loudness`). Pass 2 (`render`) gives
every block its remix from the input and the stored stem, applies the gain, limits true peaks to `ceiling_db`
(the limiter of `limiter.py` fed with `truepeak.TruePeak`'s per-sample peaks) and measures the output's loudness
and true peak. A pipe is read once: its input is kept in the temporary file too (`keep_input`).
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass

import numpy as np

from pipeline.enhance.layouts import ChannelPlan
from pipeline.enhance.limiter import Limiter
from pipeline.enhance.loudness import BlockEnergy, KWeighting, block_powers, channel_weights, integrated_loudness
from pipeline.enhance.masker import DialogueMasker
from pipeline.enhance.stream import MAX_GAIN_DB, StreamingEnhancer
from pipeline.enhance.truepeak import TruePeak, to_dbtp

DEFAULT_CEILING_DB = -1.0   # dBTP: EBU R128's maximum true peak for programmes


@dataclass(frozen=True)
class Levels:
    """What the report shows: loudness (LUFS), true peaks (dBTP), dialogue-to-background ratios (LU)."""

    loudness_in: float
    loudness_out: float
    true_peak_in: float
    true_peak_out: float
    dialogue_to_background_before: float
    dialogue_to_background_after: float
    gain_db: float
    limited_seconds: float


class Remixer:
    def __init__(self, masker: DialogueMasker, rate: int, names: tuple[str, ...], plan: ChannelPlan, *,
                 dialogue_gain_db: float = 6.0, background_gain_db: float = 0.0, update_frames: int = 8,
                 lookahead_frames: int | None = None, keep_loudness: bool = True,
                 ceiling_db: float = DEFAULT_CEILING_DB, keep_input: bool = False, streaming: bool = False):
        if not np.isfinite(ceiling_db) or not -20.0 <= ceiling_db <= 0.0:
            raise ValueError(f"--ceiling {ceiling_db} dBTP; expected a number in [-20, 0]")
        self.rate, self.names, self.plan, self.channels = rate, names, plan, len(names)
        self.enhancer = StreamingEnhancer(masker, rate, plan.model_channels, dialogue_gain_db=dialogue_gain_db,
                                          background_gain_db=background_gain_db, update_frames=update_frames,
                                          lookahead_frames=lookahead_frames, limit=False)
        self.gd, self.gb = 10 ** (dialogue_gain_db / 20), 10 ** (background_gain_db / 20)
        self.unity = dialogue_gain_db == 0 and background_gain_db == 0
        self.processed = list(plan.indices)
        count = len(self.processed)
        self.weights = channel_weights(names)
        self.keep_loudness, self.keep_input, self.streaming = keep_loudness, keep_input, streaming
        self.ceiling = 10 ** (ceiling_db / 20)
        self.pending = np.zeros((0, self.channels), np.float32)    # input waiting for its dialogue estimate
        self.pending_weighted = np.zeros((0, count), np.float32)    # its processed channels, K-weighted
        self.k_input, self.k_dialogue = KWeighting(rate, self.channels), KWeighting(rate, count)
        self.e_input, self.e_dialogue = BlockEnergy(rate, self.channels), BlockEnergy(rate, count)
        self.e_background, self.e_remix = BlockEnergy(rate, count), BlockEnergy(rate, count)
        self.peak_in = TruePeak(self.channels)
        self.stem = tempfile.TemporaryFile()                       # unlinked: nothing is left on any way out
        self.kept = tempfile.TemporaryFile() if keep_input else None
        self.gain = 1.0
        self.gain_db = 0.0
        # pass 2
        self.limiter = Limiter(rate, self.ceiling)
        self.peak_out_meter = TruePeak(self.channels)
        self.peak_out = 0.0
        self.limited = 0
        self.k_output, self.e_output = KWeighting(rate, self.channels), BlockEnergy(rate, self.channels)

    # -- pass 1 ------------------------------------------------------------------------------------------------------
    def measure_input(self, samples: np.ndarray) -> np.ndarray:
        """The input side of pass 1 for a block (n, C): its true peak and K-weighted loudness. Returns the
        K-weighted processed channels (n, P) for `analyse`. Blocks must come in order; this may run ahead of
        `analyse`, in the thread that decodes."""
        self.peak_in.update(samples)
        weighted = self.k_input(samples)
        self.e_input.add(weighted)
        return weighted[:, self.processed]

    def analyse(self, samples: np.ndarray, weighted: np.ndarray | None = None
                ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Separate and measure a block (n, C) of the input (`weighted`: its `measure_input`, computed here when
        not given). With `streaming` (one pass, no loudness matching) returns the (input, dialogue of the
        processed channels) that became final, for `render`."""
        if weighted is None:
            weighted = self.measure_input(samples)
        return self._aligned(samples, weighted, self.enhancer.process(self.plan.select(samples)).dialogue)

    def finish_analysis(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """End of pass 1: the last dialogue samples (returned with `streaming`); the loudness gain for pass 2."""
        last = self._aligned(np.zeros((0, self.channels), np.float32), np.zeros((0, len(self.processed)), np.float32),
                             self.enhancer.flush().dialogue)
        self.stem.seek(0)
        if self.kept is not None:
            self.kept.seek(0)
        if self.keep_loudness:
            before, after = self._loudness_in(), self._loudness_remix()
            if np.isfinite(before) and np.isfinite(after):
                self.gain_db = float(np.clip(before - after, -MAX_GAIN_DB, MAX_GAIN_DB))
                self.gain = 10 ** (self.gain_db / 20)
        return last

    def _aligned(self, samples: np.ndarray, weighted: np.ndarray, dialogue: np.ndarray
                 ) -> list[tuple[np.ndarray, np.ndarray]]:
        self.pending = np.concatenate([self.pending, samples])
        self.pending_weighted = np.concatenate([self.pending_weighted, weighted])
        n = len(dialogue)
        x, self.pending = self.pending[:n], self.pending[n:]
        weighted_x, self.pending_weighted = self.pending_weighted[:n], self.pending_weighted[n:]
        d = self.plan.spread(dialogue, self.channels)[:, self.processed]     # (n, P) dialogue of the processed
        weighted_d = self.k_dialogue(d)
        weighted_b = weighted_x - weighted_d
        self.e_dialogue.add(weighted_d)
        self.e_background.add(weighted_b)
        self.e_remix.add(self.gd * weighted_d + self.gb * weighted_b)
        if self.streaming:
            return [(x, d)] if n else []
        self.stem.write(np.ascontiguousarray(d, np.float32).tobytes())
        if self.kept is not None:
            self.kept.write(np.ascontiguousarray(x, np.float32).tobytes())
        return []

    # -- pass 2 ------------------------------------------------------------------------------------------------------
    def kept_blocks(self, block: int):
        """The input kept from pass 1 (for a pipe), in blocks (n, C)."""
        while True:
            data = np.frombuffer(self.kept.read(block * self.channels * 4), np.float32)
            if not data.size:
                return
            yield data.reshape(-1, self.channels)

    def render(self, samples: np.ndarray, d: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """A block (n, C) of the input and its dialogue (n, P) (default: stored by pass 1) -> {"output",
        "dialogue", "background"}, each (n, C) float32 (the stems as separated, before any gain)."""
        n, count = len(samples), len(self.processed)
        if d is None:
            stored = np.frombuffer(self.stem.read(n * count * 4), np.float32)
            if stored.size != n * count:
                raise ValueError("the input gave more samples in the second pass than in the first; it changed "
                                 "while being read")
            d = stored.reshape(n, count)
        out = np.array(samples, np.float32, copy=True)
        if not self.unity:
            x = samples[:, self.processed]
            out[:, self.processed] = self.gd * d + self.gb * (x - d)
        if self.gain != 1.0:
            out *= np.float32(self.gain)
        peaks = self.peak_out_meter.envelope(out, limit=self.ceiling)
        gains = self.limiter.gains(peaks)
        if gains is not None:
            out = (out * gains[:, None]).astype(np.float32)
            peaks = peaks * gains
            self.limited += int((gains < 1.0).sum())
        self.peak_out = max(self.peak_out, float(peaks.max()) if n else 0.0)
        self.e_output.add(self.k_output(out))
        stem = np.zeros(samples.shape, np.float32)
        stem[:, self.processed] = d
        return {"output": out, "dialogue": stem, "background": samples - stem}

    def close(self) -> None:
        self.stem.close()
        if self.kept is not None:
            self.kept.close()

    # -- levels ------------------------------------------------------------------------------------------------------
    def levels(self) -> Levels:
        gd2, gb2 = self.gd ** 2, self.gb ** 2
        return Levels(self._loudness_in(), self._loudness(self.e_output.energies()), to_dbtp(self.peak_in.peak),
                      to_dbtp(self.peak_out), self._ratio(1.0, 1.0), self._ratio(gd2, gb2), self.gain_db,
                      self.limited / self.rate)

    def _loudness(self, energies: np.ndarray) -> float:
        return integrated_loudness(block_powers(energies, self.rate), self.weights)

    def _loudness_in(self) -> float:
        return self._loudness(self.e_input.energies())

    def _loudness_remix(self) -> float:
        return self._loudness(self._replace(self.e_remix.energies()))

    def _replace(self, processed: np.ndarray) -> np.ndarray:
        """The input's energies with the processed channels' replaced by `processed` (steps, P)."""
        energies = self.e_input.energies()[:len(processed)].copy()
        energies[:, self.processed] = processed[:len(energies)]
        return energies

    def _ratio(self, dialogue_scale: float, background_scale: float) -> float:
        """Dialogue-to-background loudness ratio (LU): the dialogue stem (the processed channels) against the
        background (the processed channels' rest and every other channel), each scaled by its gain (power)."""
        dialogue = self.e_dialogue.energies() * dialogue_scale
        weights = self.weights[self.processed]
        loud_dialogue = integrated_loudness(block_powers(dialogue, self.rate), weights)
        background = self._replace(self.e_background.energies() * background_scale)
        return loud_dialogue - self._loudness(background)
