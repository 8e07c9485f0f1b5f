"""Writing the enhanced audio into a container with PyAV, every other stream copied packet for packet.

`ContainerSink` opens the output (a path, or a binary stream such as stdout with a named format), adds the
input's streams in their order: the enhanced audio in place of the processed one, encoded with the input's codec,
layout, rate and bit rate (or `codec` / `bit_rate`), and every other stream (video, subtitles, other audio, data)
from its template, whose packets `copy()` muxes unchanged (timestamps rescaled to the output's time base);
`keep_original` adds the original audio as a second, non-default track of copied packets. Container metadata,
chapters and the streams' metadata and dispositions are kept; AC-3 / E-AC-3 output carries the input's dialnorm.
"""
from __future__ import annotations

import logging
from fractions import Fraction
from pathlib import Path
from typing import IO

import av
import numpy as np

from pipeline.audio.media import AudioStreamInfo

log = logging.getLogger(__name__)

# output extension -> FFmpeg muxer; soundfile's extensions (wav, flac, ogg, aiff) are written by soundfile
CONTAINERS = {".mkv": "matroska", ".mka": "matroska", ".webm": "webm", ".mp4": "mp4", ".m4v": "mp4", ".m4a": "ipod",
              ".mov": "mov", ".ac3": "ac3", ".eac3": "eac3", ".mp3": "mp3", ".opus": "opus", ".aac": "adts"}
DEFAULT_CODECS = {"matroska": "flac", "webm": "libopus", "mp4": "aac", "ipod": "aac", "mov": "aac", "ac3": "ac3",
                  "eac3": "eac3", "mp3": "libmp3lame", "opus": "libopus", "adts": "aac"}
ENCODERS = {"opus": "libopus", "mp3": "libmp3lame", "mp3float": "libmp3lame", "vorbis": "libvorbis"}
SKIP_TAGS = {"DURATION", "ENCODER", "NUMBER_OF_FRAMES", "NUMBER_OF_BYTES", "BPS", "_STATISTICS_TAGS",
             "_STATISTICS_WRITING_APP", "_STATISTICS_WRITING_DATE_UTC", "encoder", "handler_name", "vendor_id"}


def check_codec(name: str) -> str:
    """ValueError unless FFmpeg (in PyAV) has an audio encoder called `name`."""
    try:
        codec = av.Codec(name, "w")
    except (av.codec.codec.UnknownCodecError, ValueError) as err:
        raise ValueError(f"--codec {name!r}: no such encoder in this FFmpeg; expected an audio encoder such as aac, "
                         f"ac3, eac3, libopus, libmp3lame, flac") from err
    if codec.type != "audio":
        raise ValueError(f"--codec {name!r} is a {codec.type} encoder; expected an audio encoder such as aac or ac3")
    return name


def default_bit_rate(codec: str, channels: int) -> int:
    """A bit rate comparable to broadcast and disc practice when the input does not state one."""
    if codec in ("ac3",):
        return 448_000 if channels > 2 else 192_000
    if codec == "eac3":
        return 640_000 if channels > 2 else 256_000
    if codec in ("libopus", "opus"):
        return min(512_000, 64_000 * channels)
    return min(640_000, 96_000 * channels)


class ContainerSink:
    """The output container. `write(samples (n, C) float32)` encodes enhanced audio; `copy(packet)` muxes a
    packet of another input stream; `close()` flushes the encoder and finishes the file."""

    def __init__(self, target: str | Path | IO[bytes], info: AudioStreamInfo | None, rate: int, layout: str,
                 channels: int, *, source=None, codec: str | None = None, bit_rate: int | None = None,
                 keep_original: bool = False, format: str | None = None, name: str | None = None,
                 start=None):
        self.name = name or str(target)
        self.rate, self.channels = rate, channels
        try:
            self.output = av.open(str(target) if isinstance(target, Path) else target, "w", format=format)
        except (av.FFmpegError, ValueError) as err:
            raise ValueError(f"cannot write {self.name} ({err})") from err
        self.map: dict[int, object] = {}        # input stream index -> output stream (copied packets)
        self.audio = None
        try:
            self._streams(info, source, codec, bit_rate, keep_original, layout)
        except BaseException:
            self.output.close()
            raise
        self.start = start                      # () -> the input's first audio sample (pts), asked at the first write
        self.written: int | None = None         # pts of the next encoded sample

    def _streams(self, info, source, codec, bit_rate, keep_original, layout) -> None:
        chosen = self._codec(codec, info)
        streams = list(source.streams) if source is not None else []
        if source is not None:
            self.output.metadata.update({k: v for k, v in source.metadata.items() if k not in SKIP_TAGS})
        if not streams:
            self._add_audio(chosen, bit_rate, info, layout, None)
        for stream in streams:
            if info is not None and stream.index == info.index:
                self._add_audio(chosen, bit_rate, info, layout, stream)
                if keep_original:
                    original = self._template(stream)
                    original.metadata["title"] = "original audio"
                    original.disposition = 0
                    self.map[stream.index] = original
            elif stream.type in ("video", "audio", "subtitle", "data", "attachment"):
                try:
                    self.map[stream.index] = self._template(stream)
                except (av.FFmpegError, ValueError) as err:
                    log.warning("%s: stream %d (%s %s) cannot be copied into %s (%s); left out", self.name,
                                stream.index, stream.type, stream.codec_context.name, self.output.format.name, err)
        if source is not None and source.chapters():
            self.output.set_chapters(source.chapters())

    def _template(self, stream):
        out = self.output.add_stream_from_template(stream)
        out.metadata.update({k: v for k, v in stream.metadata.items() if k not in SKIP_TAGS})
        out.disposition = stream.disposition
        return out

    def _codec(self, codec: str | None, info: AudioStreamInfo | None) -> str:
        supported = self.output.supported_codecs
        if codec is not None:
            if codec not in supported and av.Codec(codec, "w").name not in supported:
                raise ValueError(f"--codec {codec} cannot be stored in {self.name} ({self.output.format.name}); "
                                 f"expected one of {', '.join(sorted(c for c in supported if _is_audio(c))[:12])}")
            return codec
        if info is not None:
            encoder = ENCODERS.get(info.codec, info.codec)
            if (info.codec in supported or encoder in supported) and _has_encoder(encoder):
                return encoder
        return DEFAULT_CODECS.get(self.output.format.name, self.output.default_audio_codec)

    def _add_audio(self, codec, bit_rate, info, layout, template) -> None:
        encoder = av.Codec(codec, "w")
        rate = self.rate
        if encoder.audio_rates and rate not in encoder.audio_rates:
            raise ValueError(f"{self.name}: {codec} cannot encode {rate} Hz (it takes {sorted(encoder.audio_rates)}); "
                             f"choose another --codec")
        stream = self.output.add_stream(codec, rate=rate)
        stream.layout = _layout_for(encoder, layout, self.channels)
        formats = [f.name for f in encoder.audio_formats or []]
        stream.format = "fltp" if "fltp" in formats else "flt" if "flt" in formats else formats[0] if formats \
            else "s16"
        if not encoder.lossless:
            stream.bit_rate = bit_rate or (info.bit_rate if info is not None and info.bit_rate else 0) or \
                default_bit_rate(codec, self.channels)
        if info is not None and info.dialnorm is not None and codec in ("ac3", "eac3"):
            stream.codec_context.options = {"dialnorm": str(info.dialnorm)}
        if template is not None:
            stream.metadata.update({k: v for k, v in template.metadata.items() if k not in SKIP_TAGS})
            stream.disposition = template.disposition
        stream.time_base = Fraction(1, rate)
        self.audio = stream
        self.layout = stream.layout.name

    def copies(self, packet) -> bool:
        """Whether `copy` muxes this packet of the input: its stream is copied, and it has data and a time."""
        return packet.stream.index in self.map and packet.size > 0 and (packet.dts is not None or
                                                                       packet.pts is not None)

    def copy(self, packet) -> None:
        """Mux a packet of an input stream that is copied (ignored when `copies` says no)."""
        if self.copies(packet):
            packet.stream = self.map[packet.stream.index]
            self._mux(packet)

    def write(self, samples: np.ndarray) -> None:
        """Encode enhanced samples (n, C) float32."""
        if not len(samples):
            return
        if self.written is None:
            self.written = int(self.start()) if self.start is not None else 0
        # interleaved float: no transpose, and the encoder's own converter makes its format (PyAV 18 cannot build
        # an 8-channel planar frame from an array)
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples, dtype=np.float32).reshape(1, -1),
                                           format="flt", layout=self.layout)
        frame.sample_rate, frame.pts, frame.time_base = self.rate, self.written, Fraction(1, self.rate)
        self.written += len(samples)
        for packet in self._encode(frame):
            self._mux(packet)

    def close(self) -> None:
        for packet in self._encode(None):
            self._mux(packet)
        self.output.close()

    def abort(self) -> None:
        try:
            self.output.close()
        except (av.FFmpegError, OSError, ValueError):
            pass

    def _encode(self, frame):
        try:
            return self.audio.encode(frame)
        except (av.FFmpegError, ValueError) as err:
            raise ValueError(f"{self.name}: the {self.audio.codec_context.name} encoder failed ({err}); choose "
                             f"another --codec or --bitrate") from err

    def _mux(self, packet) -> None:
        try:
            self.output.mux(packet)
        except (av.FFmpegError, ValueError) as err:
            raise ValueError(f"{self.name}: cannot write a {packet.stream.type} packet ({err})") from err


def _layout_for(encoder, layout: str, channels: int) -> str:
    """`layout`, or for encoders that refuse it (libopus and 5.1(side)) the standard layout of that many
    channels: the samples keep their order (SL/SR take the place of BL/BR)."""
    if encoder.name in ("libopus", "opus") and layout not in ("mono", "stereo", "3.0", "quad", "5.0", "5.1", "6.1",
                                                             "7.1"):
        return av.AudioLayout(f"{channels}c").name
    return layout


def _has_encoder(name: str) -> bool:
    try:
        return av.Codec(name, "w").type == "audio"
    except (av.codec.codec.UnknownCodecError, ValueError):
        return False


def _is_audio(name: str) -> bool:
    try:
        return av.Codec(name, "w").type == "audio"
    except (av.codec.codec.UnknownCodecError, ValueError):
        return False
