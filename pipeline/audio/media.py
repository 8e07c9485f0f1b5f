"""Reading the audio of any container FFmpeg reads (mkv, mp4, m4a, mp3, opus, ac3, wav on a pipe, raw PCM) with PyAV.

`MediaReader` opens a file or a binary stream, picks the default audio stream (or number N among the audio
streams), and decodes it to float32 blocks (samples, channels), streaming: memory holds one block. AC-3 / E-AC-3
are decoded without dynamic range compression (`drc_scale` 0), so the decoded audio is the mix as mastered. A
packet the decoder rejects is skipped, counted and logged; a gap in the timestamps (a skipped packet, a broken
recording) is filled with silence, so the audio keeps its place against the picture. `decode_packet` serves a
caller that demuxes every stream itself (the muxer of `enhance`).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Iterator

import av
import numpy as np

log = logging.getLogger(__name__)

RAW_FORMATS = ("s16le", "s24le", "s32le", "f32le", "f64le")
GAP_TOLERANCE_S = 0.002   # timestamp jitter below this is not a gap
_SCALE = {"s16": 2.0 ** -15, "s32": 2.0 ** -31, "u8": 2.0 ** -7, "flt": 1.0, "dbl": 1.0}
_DTYPES = {"s16": np.int16, "s32": np.int32, "u8": np.uint8, "flt": np.float32, "dbl": np.float64}


class MediaError(ValueError):
    """A container or stream that cannot be read; the message names the file and what was expected."""


@dataclass(frozen=True)
class AudioStreamInfo:
    """The audio stream being read: its index in the container, number among the audio streams, codec, rate,
    layout and channel names (FFmpeg's: FL, FR, FC, LFE, BL, BR, SL, SR, ...), bit rate (0: unknown), duration
    in seconds (None on a pipe), the container's format name and, for AC-3 / E-AC-3, the dialnorm (dB, -31..-1)
    of the first frame."""

    index: int
    number: int
    codec: str
    rate: int
    channels: int
    layout: str
    channel_names: tuple[str, ...]
    bit_rate: int
    duration: float | None
    container: str
    sample_format: str
    dialnorm: int | None = None


class MediaReader:
    """Decode one audio stream of `source` (a path, or a binary file object such as stdin; `format` names the
    demuxer where it cannot be guessed: "wav", or raw "s16le"/"f32le"/... with `rate` and `layout`).
    Use as a context manager; `blocks()` yields (n, C) float32 arrays of `block` samples."""

    def __init__(self, source: str | Path | IO[bytes], stream: int | None = None, *, format: str | None = None,
                 rate: int | None = None, layout: str | None = None, name: str | None = None):
        self.name = name or str(source)
        self._seekable = isinstance(source, (str, Path))
        options = {}
        if format in RAW_FORMATS:
            if not rate or not layout:
                raise MediaError(f"{self.name}: raw {format} input needs --rate and --layout")
            options = {"sample_rate": str(rate), "ch_layout": layout}
        self._source = source if not isinstance(source, Path) else str(source)
        self._format, self._options = format, options
        try:
            self.container = av.open(self._source, "r", format=format, options=options)
        except (av.FFmpegError, ValueError) as err:
            raise MediaError(f"{self.name}: cannot open as a media container ({_reason(err)}); expected a file "
                             f"FFmpeg reads (mkv, mp4, m4a, mp3, opus, ac3, wav, ...)") from err
        try:
            self.stream = self._pick(stream)
        except MediaError:
            self.container.close()
            raise
        self.skipped_packets = 0
        self.filled_samples = 0
        self._next = None          # sample position (at the stream's rate) the next frame should start at
        self.start: int | None = None  # sample position of the first decoded sample (its pts at the stream's rate)
        self._first_error: str | None = None
        self.info = self._describe()
        context = self.stream.codec_context
        if context.name in ("ac3", "eac3"):
            context.options = {"drc_scale": "0"}  # the mix as mastered, not the decoder's dynamic range compression

    # -- opening ---------------------------------------------------------------------------------------------------
    def _pick(self, number: int | None):
        audio = list(self.container.streams.audio)
        if not audio:
            kinds = ", ".join(f"{s.type} ({s.codec_context.name})" for s in self.container.streams) or "nothing"
            raise MediaError(f"{self.name}: has no audio stream (it holds {kinds}); expected a file with sound")
        if number is not None:
            if not 0 <= number < len(audio):
                raise MediaError(f"{self.name}: --stream {number}, but it has {len(audio)} audio stream(s) "
                                 f"(0..{len(audio) - 1})")
            return audio[number]
        for stream in audio:
            if stream.disposition & av.stream.Disposition.default:
                return stream
        return audio[0]

    def _describe(self) -> AudioStreamInfo:
        stream, context = self.stream, self.stream.codec_context
        if not stream.rate or not stream.channels:
            raise MediaError(f"{self.name}: audio stream {stream.index} ({context.name}) declares no sample rate or "
                             f"channels; the file is corrupt")
        duration = None
        if stream.duration and stream.time_base:
            duration = float(stream.duration * stream.time_base)
        elif self.container.duration:
            duration = self.container.duration / 1e6
        number = list(self.container.streams.audio).index(stream)
        layout = stream.layout
        return AudioStreamInfo(stream.index, number, context.name, int(stream.rate), int(stream.channels),
                               layout.name, tuple(c.name for c in layout.channels), int(context.bit_rate or 0),
                               duration, self.container.format.name, stream.format.name if stream.format else "",
                               self._dialnorm())

    def _dialnorm(self) -> int | None:
        """The dialnorm of the first AC-3 / E-AC-3 frame of a file (None for other codecs, on a pipe, or when it
        cannot be read); the file is rewound."""
        if self.stream.codec_context.name not in ("ac3", "eac3") or not self._seekable:
            return None
        found = None
        try:
            for packet in self.container.demux(self.stream):
                if packet.size:
                    found = ac3_dialnorm(bytes(packet))
                    break
        except av.FFmpegError:
            raise MediaError(f"{self.name}: cannot read its first audio packet; the file is corrupt")
        index = self.stream.index                      # rewind: open again (a seek may land after the first frame)
        self.container.close()
        self.container = av.open(self._source, "r", format=self._format, options=self._options)
        self.stream = self.container.streams[index]
        return found

    # -- decoding ----------------------------------------------------------------------------------------------------
    def blocks(self, block: int) -> Iterator[np.ndarray]:
        """The stream's samples in blocks of `block` (the last one shorter), (n, C) float32."""
        pending, count = [], 0
        for samples in self.samples():
            pending.append(samples)
            count += len(samples)
            while count >= block:
                joined = np.concatenate(pending)
                yield joined[:block]
                pending, count = [joined[block:]], count - block
        if count:
            yield np.concatenate(pending)

    def samples(self) -> Iterator[np.ndarray]:
        """Every decoded frame's samples, gaps filled, in order."""
        try:
            for packet in self.container.demux(self.stream):
                yield from self.decode_packet(packet)
        except av.FFmpegError as err:
            raise MediaError(f"{self.name}: cannot read past {self.position:.2f} s ({_reason(err)}); the file is "
                             f"truncated or corrupt") from err
        self.finish()

    @property
    def position(self) -> float:
        """Seconds decoded so far."""
        return (self._next or 0) / self.info.rate

    def decode_packet(self, packet) -> list[np.ndarray]:
        """The samples of one packet of the audio stream (a flush packet gives the decoder's last frames); a packet
        the decoder rejects is skipped and counted."""
        try:
            frames = self.stream.codec_context.decode(packet if packet.size else None)
        except av.FFmpegError as err:
            self.skipped_packets += 1
            if self._first_error is None:
                self._first_error = _reason(err)
            log.warning("%s: skipped an undecodable audio packet at %.2f s (%s)", self.name, self.position,
                        _reason(err))
            return []
        return [part for frame in frames for part in self._with_gap(frame)]

    def finish(self) -> None:
        """End of the stream: a stream in which no packet decoded is an error."""
        if self._next is None and self.skipped_packets:
            raise MediaError(f"{self.name}: none of the {self.skipped_packets} audio packets could be decoded "
                             f"({self._first_error}); the stream is corrupt")
        if self.skipped_packets:
            log.warning("%s: %d undecodable audio packet(s) skipped, replaced by silence", self.name,
                        self.skipped_packets)
        if self.missing_seconds > 0:
            log.warning("%s: the audio ends at %.2f s, but the file declares %.2f s; is it truncated (an unfinished "
                        "download or copy)? The output is as long as what could be read", self.name, self.position,
                        self.info.duration)

    @property
    def missing_seconds(self) -> float:
        """How much shorter the decoded audio is than the file declares, beyond a tolerance (max(0.5 s, 2 %): the
        declared length may be the longest stream's); 0 when it is not or nothing is declared."""
        declared = self.info.duration
        if not declared or self._next is None:
            return 0.0
        short = declared - self.position
        return round(short, 3) if short > max(0.5, 0.02 * declared) else 0.0

    def _with_gap(self, frame) -> list[np.ndarray]:
        samples = frame_samples(frame, self.info.channels)
        start = None
        if frame.pts is not None and frame.time_base:
            start = int(round(float(frame.pts * frame.time_base) * self.info.rate))
        if self._next is None:
            self._next = self.start = start if start is not None else 0
        parts = []
        if start is not None and start - self._next > GAP_TOLERANCE_S * self.info.rate:
            gap = start - self._next
            parts.append(np.zeros((gap, self.info.channels), np.float32))
            self.filled_samples += gap
            self._next += gap
            log.warning("%s: %.3f s gap in the audio timestamps at %.2f s, filled with silence", self.name,
                        gap / self.info.rate, self.position)
        parts.append(samples)
        self._next += len(samples)
        return parts

    def close(self) -> None:
        self.container.close()

    def __enter__(self) -> "MediaReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def frame_samples(frame, channels: int) -> np.ndarray:
    """An AudioFrame as (n, C) float32 in [-1, 1] (integers scaled by their full scale)."""
    fmt = frame.format.name
    base = fmt.rstrip("p")
    if frame.format.is_planar:
        # plane by plane: PyAV 18 counts one plane too many for 8-channel planar frames (7.1 AAC, Opus), and
        # its to_ndarray() then reads past them and crashes the process
        dtype = _DTYPES.get(base)
        if dtype is None:
            raise MediaError(f"sample format {fmt} is not supported")
        data = np.stack([np.frombuffer(frame.planes[c], dtype, count=frame.samples) for c in range(channels)], axis=1)
    else:
        data = frame.to_ndarray().reshape(-1, channels)
    if base == "u8":
        return ((data.astype(np.float32) - 128.0) * _SCALE["u8"]).astype(np.float32)
    if base not in _SCALE:
        raise MediaError(f"sample format {fmt} is not supported")
    if base in ("flt", "dbl"):
        return np.ascontiguousarray(data, dtype=np.float32)
    return (data.astype(np.float32) * np.float32(_SCALE[base]))


def ac3_dialnorm(packet: bytes) -> int | None:
    """The dialnorm (dB, -31..-1) in the header of an AC-3 or E-AC-3 syncframe (ATSC A/52 5.4.2 / E.1.2.2)."""
    if len(packet) < 8 or packet[0] != 0x0B or packet[1] != 0x77:
        return None
    bits = int.from_bytes(packet[2:10].ljust(8, b"\0"), "big")
    bsid = (bits >> (64 - 29)) & 0x1F                        # the same bit position in both syntaxes
    if bsid <= 10:                                           # AC-3: crc1 fscod frmsizecod | bsid bsmod acmod ...
        acmod = (bits >> (64 - 35)) & 0x7
        at = 35 + (2 if acmod & 1 and acmod != 1 else 0) + (2 if acmod & 4 else 0) + (2 if acmod == 2 else 0) + 1
    else:                                                    # E-AC-3: strmtyp substreamid frmsiz fscod x acmod lfeon
        at = 29
    value = (bits >> (64 - at - 5)) & 0x1F
    return -(value or 31)


def _reason(err: Exception) -> str:
    return getattr(err, "strerror", None) or str(err)
