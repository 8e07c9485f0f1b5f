"""Where `enhance` reads: a file soundfile reads (wav, flac, ogg, aiff), a media container (PyAV), or a pipe.

Each source gives its `SourceInfo`, the audio in blocks (`blocks`) and, for the writing pass, the audio again with
every packet of the container handed to `copy` first (`replay`; a pipe cannot be read twice, so `replayable` is
False and the caller keeps what it needs).
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import av
import numpy as np
import soundfile as sf

from pipeline.audio.media import RAW_FORMATS, AudioStreamInfo, MediaError, MediaReader
from pipeline.enhance.layouts import default_layout
from pipeline.enhance.preflight import check_complete

PIPE = Path("-")


def declared_layout(path: Path, channels: int) -> tuple[str, tuple[str, ...]] | None:
    """The channel layout a multichannel file declares (a WAV's channel mask: 5.1 with side or back surrounds),
    which soundfile does not read; None when there is none or FFmpeg cannot say."""
    if channels <= 2:
        return None
    try:
        with av.open(str(path)) as container:
            layout = container.streams.audio[0].layout
    except (av.FFmpegError, IndexError, ValueError, OSError):
        return None
    names = tuple(c.name for c in layout.channels)
    if len(names) != channels or len(set(names)) != channels or not layout.name or layout.name.endswith(" channels"):
        return None
    return layout.name, names


@dataclass(frozen=True)
class SourceInfo:
    """The input's audio: rate, channels, channel names, layout name, length in samples (None when unknown, e.g.
    on a pipe), the stream read from a container (None for soundfile) and soundfile's subtype (None otherwise)."""

    name: str
    rate: int
    channels: int
    names: tuple[str, ...]
    layout: str
    frames: int | None
    stream: AudioStreamInfo | None = None
    subtype: str | None = None

    @property
    def duration(self) -> float | None:
        return None if self.frames is None else self.frames / self.rate


def readable_by_soundfile(path: Path) -> bool:
    """Whether the extension is one libsndfile reads (those keep the soundfile path and its checks)."""
    return path.suffix.lstrip(".").upper() in sf.available_formats() or path.suffix.lower() in (".oga",)


def open_source(path: Path, stream: int | None = None, raw: str | None = None, rate: int | None = None,
                layout: str | None = None):
    """The source for `path` ("-": standard input, WAV or raw PCM `raw`)."""
    if path == PIPE:
        return PipeSource(raw, rate, layout)
    if not path.is_file():
        raise FileNotFoundError(f"input {path} does not exist")
    if readable_by_soundfile(path) and stream is None:
        return SoundfileSource(path)
    return MediaSource(path, stream)


class SoundfileSource:
    replayable = True

    def __init__(self, path: Path):
        self.path = path
        try:
            info = sf.info(str(path))
        except (sf.LibsndfileError, RuntimeError) as err:
            raise ValueError(f"{path}: cannot read audio ({err}); expected a format soundfile reads") from err
        if info.frames == 0:
            raise ValueError(f"{path}: contains no samples")
        check_complete(path, info)
        self._sf = info
        layout, names = declared_layout(path, info.channels) or default_layout(info.channels)
        self.info = SourceInfo(str(path), info.samplerate, info.channels, names, layout, info.frames,
                               subtype=info.subtype)
        self.skipped_packets = self.filled_samples = 0
        self.missing_seconds = 0.0          # check_complete refuses a truncated file

    def blocks(self, block: int) -> Iterator[np.ndarray]:
        """The input's blocks (n, C) float32; a decoding error, or fewer samples than the header declares, becomes a
        ValueError naming the file and the position reached."""
        info, source = self._sf, self.path
        with sf.SoundFile(str(source)) as reader:
            blocks = reader.blocks(blocksize=block, dtype="float32", always_2d=True)
            read = 0
            while True:
                try:
                    samples = next(blocks)
                except StopIteration:
                    if read != info.frames:
                        raise ValueError(f"{source}: ends after {read / info.samplerate:.2f} s of the "
                                         f"{info.frames / info.samplerate:.2f} s its header declares; the file is "
                                         f"truncated")
                    return
                except (sf.LibsndfileError, RuntimeError) as err:
                    reached = max(read, _position(reader))
                    raise ValueError(f"{source}: cannot decode past {reached / info.samplerate:.2f} s of "
                                     f"{info.frames / info.samplerate:.2f} s ({err}); the file is truncated or "
                                     f"corrupt") from err
                read += samples.shape[0]
                yield samples

    def replay(self, block: int, copy: Callable) -> Iterator[np.ndarray]:
        return self.blocks(block)

    def close(self) -> None:
        pass


class _ReaderSource:
    """What every source read through a `MediaReader` (`self.reader`) shares."""

    reader: MediaReader

    @property
    def skipped_packets(self) -> int:
        return self.reader.skipped_packets

    @property
    def filled_samples(self) -> int:
        return self.reader.filled_samples

    @property
    def missing_seconds(self) -> float:
        return self.reader.missing_seconds

    def blocks(self, block: int) -> Iterator[np.ndarray]:
        return self.reader.blocks(block)

    def close(self) -> None:
        self.reader.close()


class MediaSource(_ReaderSource):
    """An audio stream of a media container; `replay` demuxes every stream (for the muxer) and decodes the audio."""

    replayable = True

    def __init__(self, path: Path, stream: int | None):
        self.path, self.number = path, stream
        self.reader = MediaReader(path, stream)
        info = self.reader.info
        self.info = SourceInfo(str(path), info.rate, info.channels, info.channel_names, info.layout,
                               None if info.duration is None else int(round(info.duration * info.rate)), info)

    @property
    def container(self):
        return self.reader.container

    def start(self) -> int:
        """The sample position (pts at the stream's rate) of the first decoded sample, for the output's pts."""
        reader = getattr(self, "replaying", None) or self.reader
        return reader.start if reader.start is not None else (self.reader.start or 0)

    def replay(self, block: int, copy: Callable) -> Iterator[np.ndarray]:
        """Decode the audio again in blocks, handing every demuxed packet to `copy`. The second reader stays
        open until `close`: packets handed on may be muxed after the last block (a muxer reads their stream)."""
        reader = self.replaying = MediaReader(self.path, self.number)
        pending, count = [], 0                 # decoded audio gathered into blocks: per-block costs stay small
        for packet in reader.container.demux():
            if packet.stream.index == reader.stream.index:
                samples = reader.decode_packet(packet)
                copy(packet)
                pending += samples
                count += sum(len(s) for s in samples)
                if count >= block:
                    yield np.concatenate(pending)
                    pending, count = [], 0
            else:
                copy(packet)
        if pending:
            yield np.concatenate(pending)

    def close(self) -> None:
        replaying = getattr(self, "replaying", None)
        if replaying is not None:
            replaying.close()
        self.reader.close()


class PipeSource(_ReaderSource):
    """WAV (or raw PCM: `raw` one of RAW_FORMATS with `rate` and `layout`) on standard input; read once."""

    replayable = False

    def __init__(self, raw: str | None, rate: int | None, layout: str | None):
        if raw is not None and raw not in RAW_FORMATS:
            raise ValueError(f"--format {raw!r}; expected one of {', '.join(RAW_FORMATS)}")
        try:
            self.reader = MediaReader(sys.stdin.buffer, format=raw or "wav", rate=rate, layout=layout,
                                      name="standard input")
        except MediaError as err:
            reason = str(err).split("; expected")[0]         # not the file formats: a pipe takes WAV or raw only
            raise ValueError(f"{reason}; a pipe carries WAV, or raw PCM with --format, --rate and --layout (give "
                             f"other formats by their path)") from err
        info = self.reader.info
        self.info = SourceInfo("-", info.rate, info.channels, info.channel_names, info.layout, None, info)
        self.container = None

    def replay(self, block: int, copy: Callable) -> Iterator[np.ndarray]:
        raise RuntimeError("standard input cannot be read twice")



def _position(reader: sf.SoundFile) -> int:
    """Frames decoded so far (libsndfile's position after a failed read; -1 when it cannot say)."""
    try:
        return reader.tell()
    except (sf.LibsndfileError, RuntimeError):
        return -1
