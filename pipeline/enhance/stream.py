"""Streaming dialogue enhancement: audio chunks of any size in, remixed chunks out.

Per channel: resample to the model's rate (soxr, streaming) -> STFT frames (the model's n_fft-point Hann window
and hop) -> every `update_frames` frames the model sees the last `context_frames` frames (its training clip: one
context window ending `lookahead_frames` after the newest block of frames) -> each frame's dialogue mask is the
mean of its masks from every window that holds it and has run by the time its block is due, weighted by where
the frame sits in each window (`position_weights`: a model trained on 1-s clips separates best near a window's
centre and worst at its edges) -> masked frames are overlap-added back to a dialogue waveform -> resampled to
the input rate -> remix at full bandwidth: the background is the original minus the dialogue, so nothing above
the model's band is lost, and gains of 0 dB return the input unchanged. Rate, STFT and context come from the
model file (`DialogueMasker.settings`; 8,600 Hz, 400 / 200 and 44 frames for the demo's models).

Nothing non-finite leaves: input samples must be finite and within ±`MAX_SAMPLE`, and every block of masks,
dialogue estimate and remix is checked (`NonFiniteOutput`, naming the block's position in seconds).

Everything is decided by sample and frame counts, never by chunk boundaries, so the output is the same whatever
the chunk sizes (soxr's streaming resampler is exact across chunks); offline enhancement is this processor fed
with large blocks. Algorithmic latency at the model rate: (update_frames + lookahead_frames + 1) hops. The more
look-ahead, the more windows see a frame away from their edges: `OFFLINE` (update 8, look-ahead as far as the
context allows: 35 frames, 1.02 s for 1-s models; `lookahead_frames=None`) is the setting for files; `LIVE`
(1 / 2 frames, 93 ms) keeps within lip-sync tolerance for live television, at a cost in quality (README,
"Streaming").
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import soxr
import torch

from pipeline.enhance.limiter import Limiter
from pipeline.enhance.masker import DialogueMasker

MAX_GAIN_DB = 40.0
MAX_SAMPLE = 1000.0  # +60 dB above full scale: no real recording; a float file beyond it is corrupt or mis-scaled
RESAMPLE_QUALITY = "HQ"


class NonFiniteOutput(ValueError):
    """A block of the dialogue estimate or of the remix came out NaN or infinite (nothing such is returned)."""


@dataclass(frozen=True)
class StreamSettings:
    """How often the model runs (`update_frames`) and how far past a block its window reaches (`lookahead_frames`)."""

    update_frames: int
    lookahead_frames: int


OFFLINE = StreamSettings(8, 35)   # files, 1-s models (44 frames): every frame seen from positions 1-43
LIVE = StreamSettings(1, 2)       # live: 93 ms of algorithmic latency; frames seen only near the windows' end


def position_weights(context: int) -> np.ndarray:
    """The weight of a mask by its frame's position in the window: sin²(π (p + ½) / context), largest at the
    centre, small but positive at the edges."""
    return np.sin(np.pi * (np.arange(context) + 0.5) / context) ** 2


@dataclass(frozen=True)
class Enhanced:
    """One step of output: the remix and its two stems, each (samples, channels) float32."""

    output: np.ndarray
    dialogue: np.ndarray
    background: np.ndarray


class MaskStream:
    """The dialogue estimate of C channels at the model rate, chunk by chunk."""

    def __init__(self, masker: DialogueMasker, channels: int, update_frames: int = OFFLINE.update_frames,
                 lookahead_frames: int | None = None, max_batch: int = 256):
        settings = masker.settings
        if lookahead_frames is None:  # as far as the model's context allows: the offline setting
            lookahead_frames = settings.context_frames - update_frames - 1
        settings.check_stream(update_frames, lookahead_frames)
        n_fft, hop = settings.n_fft, settings.hop
        self.masker, self.channels, self.settings, self.context = masker, channels, settings, settings.context_frames
        self.update, self.lookahead, self.n_fft, self.hop, self.max_batch = (
            update_frames, lookahead_frames, n_fft, hop, max_batch)
        self.window = np.hanning(n_fft + 1)[:-1]  # periodic Hann, as torch.hann_window(periodic=True)
        overlaps = n_fft // hop
        self.envelope = sum(self.window[r * hop:(r + 1) * hop] ** 2 for r in range(overlaps))  # Σ w² per hop phase
        bins = n_fft // 2 + 1
        self.buffer = np.zeros((channels, n_fft // 2))       # input not yet framed (starts with the centring pad)
        self.frames = 0                                       # frames computed so far
        self.magnitudes = np.zeros((channels, 0, bins), np.float32)
        self.spectra = np.zeros((channels, 0, bins), np.complex128)
        self.history_start = 0                                # frame index of magnitudes[:, 0]
        self.next_block = 0
        self.weights = position_weights(self.context).astype(np.float32)
        self.mask_sum = np.zeros((channels, 0, bins), np.float32)  # Σ weight x mask of frames from next_block on
        self.weight_sum = np.zeros(0, np.float32)
        self.ola = np.zeros((channels, n_fft))                 # overlap-add tail, padded index ola_start onwards
        self.ola_start = 0
        self.emitted = 0                                      # output samples returned so far
        self.received = 0                                     # input samples received so far

    @property
    def latency(self) -> int:
        """Algorithmic latency in samples at the model rate."""
        return (self.update + self.lookahead + 1) * self.hop

    def process(self, samples: np.ndarray) -> np.ndarray:
        """samples (C, n) -> the dialogue samples (C, m) that became final, in order."""
        self.received += samples.shape[1]
        self._frame(samples)
        return self._mask_ready_blocks()

    def flush(self) -> np.ndarray:
        """End of stream: pad with silence until every received sample is final; return the rest."""
        last_frame = (self.received - 1 + self.n_fft // 2) // self.hop
        last_block = last_frame // self.update
        needed = (last_block + 1) * self.update - 1 + self.lookahead  # the frame that triggers the last block
        missing = (needed + 1) * self.hop + self.n_fft - self.hop - (self.frames * self.hop + self.buffer.shape[1])
        self._frame(np.zeros((self.channels, max(missing, 0))))
        out = self._mask_ready_blocks()
        keep = self.received - (self.emitted - out.shape[1])
        return out[:, :max(keep, 0)]

    # -- internals ----------------------------------------------------------------------------------------------
    def _frame(self, samples: np.ndarray) -> None:
        self.buffer = np.concatenate([self.buffer, samples], axis=1)
        count = (self.buffer.shape[1] - self.n_fft) // self.hop + 1
        if count <= 0:
            return
        starts = np.arange(count) * self.hop
        frames = self.buffer[:, starts[:, None] + np.arange(self.n_fft)] * self.window   # (C, J, n_fft)
        spectra = np.fft.rfft(frames, axis=-1)
        self.spectra = np.concatenate([self.spectra, spectra], axis=1)
        self.magnitudes = np.concatenate([self.magnitudes, np.abs(spectra).astype(np.float32)], axis=1)
        self.frames += count
        self.buffer = self.buffer[:, count * self.hop:]

    def _trigger(self, block: int) -> int:
        return (block + 1) * self.update - 1 + self.lookahead

    def _mask_ready_blocks(self) -> np.ndarray:
        blocks = []
        while self._trigger(self.next_block + len(blocks)) < self.frames:
            blocks.append(self.next_block + len(blocks))
        if not blocks:
            return np.zeros((self.channels, 0), np.float32)
        window_masks = self._window_masks(blocks)                     # (C, len(blocks), update + lookahead, F)
        outputs = []
        for i, block in enumerate(blocks):
            outputs.append(self._overlap_add(block, self._accumulate(window_masks[:, i])))
            self.next_block = block + 1
        self._forget()
        return np.concatenate(outputs, axis=1).astype(np.float32)

    def _window_masks(self, blocks: list[int]) -> np.ndarray:
        """The masks of each block's window for the frames from the block's first to the window's last."""
        contexts = []
        for block in blocks:
            end = self._trigger(block)
            start = end - self.context + 1
            window = np.zeros((self.channels, self.context, self.magnitudes.shape[2]), np.float32)
            lo = max(start, self.history_start)
            window[:, lo - start:] = self.magnitudes[:, lo - self.history_start:end + 1 - self.history_start]
            contexts.append(window)
        stacked = torch.from_numpy(np.stack(contexts, axis=1).reshape(-1, self.context, window.shape[-1]))
        pending = slice(self._first_position, self.context)
        masks = torch.cat([self.masker(part, pending) for part in torch.split(stacked, self.max_batch)]).numpy()
        masks = masks.reshape(self.channels, len(blocks), self.context - self._first_position, -1)
        finite = np.isfinite(masks).all(axis=(0, 2, 3))
        if not finite.all():
            bad = blocks[int(np.argmin(finite))]
            at = max(0, bad * self.update * self.hop - self.n_fft // 2) / self.settings.sample_rate
            raise NonFiniteOutput(f"the model returned {int((~np.isfinite(masks)).sum())} NaN or infinite mask "
                                  f"values, the first for the block at {at:.2f} s (model {self.settings.origin})")
        return masks

    @property
    def _first_position(self) -> int:
        """The position of a block's first frame in the block's own window."""
        return self.context - self.lookahead - self.update

    def _accumulate(self, masks: np.ndarray) -> np.ndarray:
        """Add the next block's window (masks of its frames onwards, (C, n, F)) to the running weighted sums and
        return the block's final masks (C, update, F): no later window is waited for."""
        n = masks.shape[1]
        grow = n - self.weight_sum.shape[0]
        if grow > 0:
            self.mask_sum = np.concatenate([self.mask_sum, np.zeros((self.channels, grow, masks.shape[2]),
                                                                    np.float32)], axis=1)
            self.weight_sum = np.concatenate([self.weight_sum, np.zeros(grow, np.float32)])
        weights = self.weights[self._first_position:]
        self.mask_sum[:, :n] += weights[:, None] * masks
        self.weight_sum[:n] += weights
        final = self.mask_sum[:, :self.update] / self.weight_sum[:self.update, None]
        self.mask_sum, self.weight_sum = self.mask_sum[:, self.update:], self.weight_sum[self.update:]
        return final

    def _overlap_add(self, block: int, mask: np.ndarray) -> np.ndarray:
        first = block * self.update
        spectra = self.spectra[:, first - self.history_start:first - self.history_start + self.update]
        frames = np.fft.irfft(spectra * mask, n=self.n_fft, axis=-1) * self.window   # (C, R, n_fft)
        end = (first + self.update - 1) * self.hop + self.n_fft       # padded index after the block's last frame
        grow = end - self.ola_start - self.ola.shape[1]
        if grow > 0:
            self.ola = np.concatenate([self.ola, np.zeros((self.channels, grow))], axis=1)
        for r in range(self.update):
            at = (first + r) * self.hop - self.ola_start
            self.ola[:, at:at + self.n_fft] += frames[:, r]
        final = (first + self.update) * self.hop - self.ola_start      # no later frame reaches before this
        done, self.ola = self.ola[:, :final], self.ola[:, final:]
        padded = self.ola_start + np.arange(final)
        self.ola_start += final
        done = done / self.envelope[padded % self.hop]
        keep = padded >= self.n_fft // 2                               # drop the centring pad
        self.emitted += int(keep.sum())
        return done[:, keep]

    def _forget(self) -> None:
        oldest = min(self.next_block * self.update, self._trigger(self.next_block) - self.context + 1)
        drop = max(0, oldest - self.history_start)
        if drop:
            self.magnitudes = self.magnitudes[:, drop:]
            self.spectra = self.spectra[:, drop:]
            self.history_start += drop


class StreamingEnhancer:
    """Remix dialogue and background of a C-channel stream at its own sample rate, chunk by chunk.

    Each channel is processed on its own (the model is mono); the output keeps the input's channel count and
    rate. `process(chunk)` takes (n, C) float samples and returns the `Enhanced` samples that became final;
    `flush()` returns the rest. Concatenated, the outputs have exactly the input's length.
    """

    def __init__(self, masker: DialogueMasker, sample_rate: int, channels: int, *, dialogue_gain_db: float = 0.0,
                 background_gain_db: float = 0.0, update_frames: int = OFFLINE.update_frames,
                 lookahead_frames: int | None = None, limit: bool = True):
        for name, value in (("dialogue gain", dialogue_gain_db), ("background gain", background_gain_db)):
            if not np.isfinite(value) or abs(value) > MAX_GAIN_DB:
                raise ValueError(f"{name} {value} dB is outside [-{MAX_GAIN_DB:g}, {MAX_GAIN_DB:g}] dB")
        if sample_rate <= 0 or channels <= 0:
            raise ValueError(f"sample rate {sample_rate} and channels {channels} must be positive")
        model_rate = masker.settings.sample_rate
        self.sample_rate, self.channels, self.model_rate = sample_rate, channels, model_rate
        self.dialogue_gain = 10.0 ** (dialogue_gain_db / 20.0)
        self.background_gain = 10.0 ** (background_gain_db / 20.0)
        self.down = soxr.ResampleStream(sample_rate, model_rate, channels, dtype="float32", quality=RESAMPLE_QUALITY)
        self.up = soxr.ResampleStream(model_rate, sample_rate, channels, dtype="float32", quality=RESAMPLE_QUALITY)
        self.masks = MaskStream(masker, channels, update_frames, lookahead_frames)
        self.limiter = Limiter(sample_rate) if limit else None
        self.original = np.zeros((0, channels), np.float32)   # input waiting for its dialogue estimate
        self.dialogue = np.zeros((0, channels), np.float32)   # dialogue (input rate) waiting for its input
        self.received = 0
        self.emitted = 0                                      # output samples returned so far

    @property
    def latency_ms(self) -> float:
        """Algorithmic latency of the masking (the resamplers add a few ms more; see benchmarks)."""
        return 1000.0 * self.masks.latency / self.model_rate

    def process(self, chunk: np.ndarray) -> Enhanced:
        chunk = self._check(chunk)
        self.received += chunk.shape[0]
        low = self.down.resample_chunk(chunk)
        dialogue = self.up.resample_chunk(np.ascontiguousarray(self.masks.process(low.T.astype(np.float64)).T,
                                                               dtype=np.float32))
        return self._remix(chunk, dialogue, final=False)

    def flush(self) -> Enhanced:
        low = self.down.resample_chunk(np.zeros((0, self.channels), np.float32), last=True)
        rest = np.concatenate([self.masks.process(low.T.astype(np.float64)), self.masks.flush()], axis=1)
        dialogue = self.up.resample_chunk(np.ascontiguousarray(rest.T, dtype=np.float32), last=True)
        return self._remix(np.zeros((0, self.channels), np.float32), dialogue, final=True)

    def _check(self, chunk: np.ndarray) -> np.ndarray:
        chunk = np.asarray(chunk, dtype=np.float32)
        if chunk.ndim == 1 and self.channels == 1:
            chunk = chunk[:, None]
        if chunk.ndim != 2 or chunk.shape[1] != self.channels:
            raise ValueError(f"chunk of shape {chunk.shape}; expected (samples, {self.channels})")
        at = f"in the block at {self.received / self.sample_rate:.2f} s (sample {self.received})"
        finite = np.isfinite(chunk)
        if not finite.all():
            bad = int(chunk.size - finite.sum())
            first = self.received + int(np.flatnonzero(~finite.all(axis=1))[0])
            raise ValueError(f"{bad} NaN or infinite samples, the first at {first / self.sample_rate:.3f} s "
                             f"(sample {first}); expected finite audio")
        peak = float(np.abs(chunk).max()) if chunk.size else 0.0
        if peak > MAX_SAMPLE:
            raise ValueError(f"samples up to {peak:.3g} {at}; expected audio within ±{MAX_SAMPLE:g} (full scale "
                             f"is ±1): the file is corrupt or mis-scaled (e.g. integer values stored as float)")
        return chunk

    def _remix(self, original: np.ndarray, dialogue: np.ndarray, final: bool) -> Enhanced:
        self.original = np.concatenate([self.original, original])
        self.dialogue = np.concatenate([self.dialogue, dialogue])
        if final:  # the resampled dialogue may differ from the input length by a sample: match it exactly
            n = self.original.shape[0]
            self.dialogue = np.pad(self.dialogue[:n], ((0, max(0, n - self.dialogue.shape[0])), (0, 0)))
        n = min(self.original.shape[0], self.dialogue.shape[0])
        x, d = self.original[:n], self.dialogue[:n]
        self.original, self.dialogue = self.original[n:], self.dialogue[n:]
        self._require_finite(d, "dialogue estimate")
        background = x - d
        if self.dialogue_gain == 1.0 and self.background_gain == 1.0:
            out = x.copy()  # exactly the input, not x - d + d
        else:
            out = self.dialogue_gain * d + self.background_gain * background
        if self.limiter is not None:
            out = self.limiter(out)
        self._require_finite(background, "background")
        self._require_finite(out, "remix")
        self.emitted += n
        return Enhanced(out, d, background)

    def _require_finite(self, samples: np.ndarray, what: str) -> None:
        """NonFiniteOutput naming the block's position unless every sample of `samples` is finite."""
        if not np.isfinite(samples).all():
            start, end = self.emitted / self.sample_rate, (self.emitted + len(samples)) / self.sample_rate
            raise NonFiniteOutput(f"{int((~np.isfinite(samples)).sum())} NaN or infinite samples in the {what} of "
                                  f"the block at {start:.2f}-{end:.2f} s (model {self.masks.settings.origin}); nothing "
                                  f"non-finite is written")
