"""Tiny films for tests, written with PyAV: a few seconds of video frames, audio tracks in any codec and layout,
a subtitle stream, chapters and metadata. Never downloaded."""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Sequence

import av
import numpy as np

from pipeline.audio.media import frame_samples


def write_film(path: Path, tracks: Sequence[tuple[np.ndarray, int, str, str]], *, video: bool = True,
               subtitles: Sequence[tuple[float, float, str]] = (), chapters: Sequence[tuple[float, float, str]] = (),
               metadata: dict[str, str] | None = None, bit_rate: int | None = None, fps: int = 10,
               codec_options: dict[str, str] | None = None) -> Path:
    """Write a container at `path` (format from its extension) with an optional 64x48 video stream (first), one
    audio stream per track `(samples (n, C) float32, rate, layout, codec)` (encoder options `codec_options`,
    e.g. an AC-3 dialnorm), and a subtitle stream of `(start s, end s, text)` cues (matroska only). Returns
    `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    seconds = max(len(samples) / rate for samples, rate, _, _ in tracks) if tracks else 1.0
    with av.open(str(path), "w") as out:
        if metadata:
            out.metadata.update(metadata)
        picture = out.add_stream("mpeg4", rate=fps) if video else None
        if picture is not None:
            picture.width, picture.height, picture.pix_fmt = 64, 48, "yuv420p"
        streams = []
        for i, (samples, rate, layout, codec) in enumerate(tracks):
            stream = out.add_stream(codec, rate=rate, layout=layout)
            if bit_rate and not av.Codec(codec, "w").lossless:
                stream.bit_rate = bit_rate
            if codec_options:
                stream.codec_context.options = dict(codec_options)
            stream.metadata["language"] = ("eng", "fra", "deu")[i % 3]
            streams.append(stream)
        cues = av.open(str(_srt(path, subtitles))) if subtitles else None
        text = out.add_stream_from_template(cues.streams[0]) if cues is not None else None
        if chapters:
            out.set_chapters([{"id": i + 1, "start": int(start * 1000), "end": int(end * 1000),
                               "time_base": Fraction(1, 1000), "metadata": {"title": title}}
                              for i, (start, end, title) in enumerate(chapters)])
        if picture is not None:
            for index in range(int(seconds * fps)):
                frame = av.VideoFrame.from_ndarray(_picture(index), format="rgb24").reformat(format="yuv420p")
                frame.pts = index
                out.mux(picture.encode(frame))
            out.mux(picture.encode(None))
        for stream, (samples, rate, layout, _) in zip(streams, tracks):
            _encode_audio(out, stream, samples, rate, layout)
        if cues is not None:
            for packet in cues.demux():
                if packet.size:
                    packet.stream = text
                    out.mux(packet)
            cues.close()
            _srt(path, subtitles).unlink()
    return path


def _srt(path: Path, cues: Sequence[tuple[float, float, str]]) -> Path:
    """The cues as a SubRip file beside `path` (a template for the subtitle stream)."""
    def stamp(seconds: float) -> str:
        ms = int(round(seconds * 1000))
        return f"{ms // 3600000:02d}:{ms // 60000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}"
    srt = path.with_name(f".{path.stem}.cues.srt")
    if not srt.exists():
        srt.write_text("".join(f"{i + 1}\n{stamp(a)} --> {stamp(b)}\n{text}\n\n" for i, (a, b, text) in enumerate(cues)))
    return srt


def _encode_audio(out, stream, samples: np.ndarray, rate: int, layout: str) -> None:
    data = np.ascontiguousarray(np.asarray(samples, np.float32))
    step = 4096
    for at in range(0, data.shape[0], step):       # interleaved float: PyAV 18 cannot build 8-channel planar frames
        frame = av.AudioFrame.from_ndarray(data[at:at + step].reshape(1, -1), format="flt", layout=layout)
        frame.sample_rate, frame.pts = rate, at
        out.mux(stream.encode(frame))
    out.mux(stream.encode(None))


def _picture(index: int) -> np.ndarray:
    """A 48x64 RGB frame that changes with `index` (so every video packet differs)."""
    y, x = np.mgrid[0:48, 0:64]
    return np.stack([(x * 4 + index * 9) % 256, (y * 5 + index * 3) % 256, ((x + y + index) * 2) % 256],
                    axis=-1).astype(np.uint8)


def read_packets(path: Path, kind: str) -> list[bytes]:
    """The bytes of every packet of the streams of `kind` ("video", "subtitle", "audio") in file order."""
    with av.open(str(path)) as container:
        return [bytes(packet) for packet in container.demux() if packet.size and packet.stream.type == kind]


def decode_audio(path: Path, stream: int = 0) -> tuple[np.ndarray, int, str, str]:
    """All samples (n, C) float32 of the file's audio stream number `stream`, its rate, layout and codec name."""
    with av.open(str(path)) as container:
        track = container.streams.audio[stream]
        if track.codec_context.name in ("ac3", "eac3"):
            track.codec_context.options = {"drc_scale": "0"}
        data = np.concatenate([frame_samples(frame, track.channels) for frame in container.decode(track)])
        return data, track.rate, track.layout.name, track.codec_context.name
