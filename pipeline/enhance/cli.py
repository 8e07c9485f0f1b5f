"""`enhance INPUT -o OUTPUT`: turn the dialogue of a recording up or down.

Any length, rate and channel count that soundfile reads; the file is streamed block by block (bounded memory)
through `StreamingEnhancer`, so offline and streaming results are the same. The output keeps the input's rate,
channels and full bandwidth; it is written to a temporary file and renamed, and the input is never modified.
Arguments, output paths and the input's header are checked before the first block (`preflight`); the hidden
partial files are removed on every way out: errors, Ctrl-C, SIGTERM and SIGHUP (`interrupt`).
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Iterator

import numpy as np
import soundfile as sf
from tqdm import tqdm

from pipeline.enhance.interrupt import Terminated, signals_as_exceptions
from pipeline.enhance.masker import DialogueMasker
from pipeline.enhance.preflight import check_block_seconds, check_complete, output_paths
from pipeline.enhance.registry import DEFAULT_REGISTRY, resolve_model, scene_figure_of
from pipeline.enhance.stream import LIVE, OFFLINE, StreamingEnhancer

log = logging.getLogger(__name__)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="enhance", description=__doc__.split("\n\n")[0])
    parser.add_argument("input", type=Path, help="recording to enhance (wav, flac, ogg, ...)")
    parser.add_argument("-o", "--output", type=Path, required=True, help="where to write the remix")
    parser.add_argument("--dialogue-gain", type=float, default=6.0, metavar="DB", help="dialogue gain (default 6 dB)")
    parser.add_argument("--background-gain", type=float, default=0.0, metavar="DB", help="background gain (dB)")
    parser.add_argument("--model", help="model file (default: the registry's best dialogue model)")
    parser.add_argument("--dialogue-classes", help="comma-separated dialogue classes of --model")
    parser.add_argument("--stems", type=Path, metavar="DIR", help="also write <name>.dialogue / .background here")
    parser.add_argument("--registry", type=Path, default=DEFAULT_REGISTRY, help="model registry")
    parser.add_argument("--block-seconds", type=float, default=10.0, help="block size read at a time")
    parser.add_argument("--update-frames", type=int, default=OFFLINE.update_frames,
                        help=f"STFT frames per model run (latency, cost; default {OFFLINE.update_frames})")
    parser.add_argument("--lookahead-frames", type=int, default=None,
                        help=f"frames the model sees past each block (latency, quality; default: as far as the "
                             f"model's clip allows, {OFFLINE.lookahead_frames} for 1-s models; --live sets "
                             f"{LIVE.update_frames} / {LIVE.lookahead_frames})")
    parser.add_argument("--live", action="store_true",
                        help=f"lip-sync latency for live use: update {LIVE.update_frames}, look-ahead "
                             f"{LIVE.lookahead_frames} frames (93 ms; lower quality, see README)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if args.live:
        args.update_frames, args.lookahead_frames = LIVE.update_frames, LIVE.lookahead_frames
    return args


def enhance_file(args: argparse.Namespace) -> Path:
    """Run the command; returns the output path. Raises ValueError / OSError on bad input, before the first block
    wherever it can be known then; the hidden partial files are removed on every way out."""
    source, target = args.input, args.output
    check_block_seconds(args.block_seconds)
    if not source.is_file():
        raise FileNotFoundError(f"input {source} does not exist")
    outputs = output_paths(source, target, args.stems)
    try:
        info = sf.info(str(source))
    except (sf.LibsndfileError, RuntimeError) as err:
        raise ValueError(f"{source}: cannot read audio ({err}); expected a format soundfile reads") from err
    if info.frames == 0:
        raise ValueError(f"{source}: contains no samples")
    check_complete(source, info)
    classes = args.dialogue_classes.split(",") if args.dialogue_classes else None
    model_path, dialogue, separator = resolve_model(args.model, classes, args.registry)
    figure = scene_figure_of(model_path, args.registry)
    if figure is not None and figure < 0:
        log.warning("model %s made dialogue worse than doing nothing on the 0 dB test scenes (dialogue SI-SDRi "
                    "%.1f dB); expect little or no benefit (see reports/tables/scenes_*.md)", model_path, figure)
    masker = DialogueMasker.load(model_path, dialogue, kind=separator)
    enhancer = StreamingEnhancer(masker, info.samplerate, info.channels,
                                 dialogue_gain_db=args.dialogue_gain, background_gain_db=args.background_gain,
                                 update_frames=args.update_frames, lookahead_frames=args.lookahead_frames)
    partial = {kind: path.with_name(f".{path.stem}.partial{path.suffix}") for kind, path in outputs.items()}
    block = max(1, int(args.block_seconds * info.samplerate))
    try:
        with ExitStack() as stack:
            reader = stack.enter_context(sf.SoundFile(str(source)))
            writers = {kind: stack.enter_context(_writer(path, info)) for kind, path in partial.items()}
            bar = stack.enter_context(tqdm(total=info.frames, unit="sample", unit_scale=True, disable=args.quiet,
                                           desc=f"enhance {source.name}"))
            for samples in _blocks(reader, block, source, info):
                _write(writers, _enhanced(source, lambda: enhancer.process(samples)))
                bar.update(samples.shape[0])
            _write(writers, _enhanced(source, enhancer.flush))
        for kind, path in partial.items():
            os.replace(path, outputs[kind])
    finally:
        for path in partial.values():
            path.unlink(missing_ok=True)
    log.info("wrote %s (%s dB dialogue, %s dB background, model %s)", target, args.dialogue_gain,
             args.background_gain, model_path)
    return target


def _writer(path: Path, info) -> sf.SoundFile:
    """An output file of the input's rate and channels; ValueError naming it when soundfile cannot write it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        return sf.SoundFile(str(path), "w", info.samplerate, info.channels, subtype=_subtype(info, path))
    except (sf.LibsndfileError, TypeError, ValueError) as err:
        raise ValueError(f"cannot write {path.suffix} audio with {info.channels} channels at {info.samplerate} Hz "
                         f"({err})") from err


def _blocks(reader: sf.SoundFile, block: int, source: Path, info) -> Iterator[np.ndarray]:
    """The input's blocks (n, C) float32; a decoding error, or fewer samples than the header declares, becomes a
    ValueError naming the file and the position reached."""
    blocks = reader.blocks(blocksize=block, dtype="float32", always_2d=True)
    read = 0
    while True:
        try:
            samples = next(blocks)
        except StopIteration:
            if read != info.frames:
                raise ValueError(f"{source}: ends after {read / info.samplerate:.2f} s of the "
                                 f"{info.frames / info.samplerate:.2f} s its header declares; the file is truncated")
            return
        except (sf.LibsndfileError, RuntimeError) as err:
            reached = max(read, _position(reader))
            raise ValueError(f"{source}: cannot decode past {reached / info.samplerate:.2f} s of "
                             f"{info.frames / info.samplerate:.2f} s ({err}); the file is truncated or "
                             f"corrupt") from err
        read += samples.shape[0]
        yield samples


def _position(reader: sf.SoundFile) -> int:
    """Frames decoded so far (libsndfile's position after a failed read; -1 when it cannot say)."""
    try:
        return reader.tell()
    except (sf.LibsndfileError, RuntimeError):
        return -1


def _enhanced(source: Path, step):
    """`step()` (one block of the enhancer), its ValueErrors prefixed with the input's name."""
    try:
        return step()
    except ValueError as err:
        raise ValueError(f"{source}: {err}") from err


def _subtype(info, path: Path) -> str | None:
    """Keep the input's sample format when the output format supports it, else the output format's default."""
    fmt = path.suffix.lstrip(".").upper()
    try:
        if sf.check_format(fmt, info.subtype):
            return info.subtype
    except (ValueError, TypeError):
        pass
    return None


def _write(writers: dict, enhanced) -> None:
    for kind, writer in writers.items():
        writer.write(getattr(enhanced, kind))


def main(argv: list[str] | None = None) -> int:
    """The `enhance` command: 0 on success, 2 for bad input, 130 for Ctrl-C, 128 + signal for SIGTERM/SIGHUP;
    one line on stderr for each failure, and no partial file left."""
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO"), format="%(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    try:
        with signals_as_exceptions():
            enhance_file(args)
    except (ValueError, OSError, sf.SoundFileError) as err:
        print(f"enhance: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("enhance: interrupted; no output written", file=sys.stderr)
        return 130
    except Terminated as stop:
        print(f"enhance: {stop}; no output written", file=sys.stderr)
        return 128 + stop.signum
    return 0


if __name__ == "__main__":
    sys.exit(main())
