"""`enhance INPUT -o OUTPUT`: turn the dialogue of a recording up or down.

Any length, rate and channel count that soundfile reads; the file is streamed block by block (bounded memory)
through `StreamingEnhancer`, so offline and streaming results are the same. The output keeps the input's rate,
channels and full bandwidth; it is written to a temporary file and renamed, and the input is never modified.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from contextlib import ExitStack
from pathlib import Path

import soundfile as sf
from tqdm import tqdm

from pipeline.enhance.masker import DialogueMasker
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
    parser.add_argument("--lookahead-frames", type=int, default=OFFLINE.lookahead_frames,
                        help=f"frames the model sees past each block (latency, quality; default "
                             f"{OFFLINE.lookahead_frames}; --live sets {LIVE.update_frames} / {LIVE.lookahead_frames})")
    parser.add_argument("--live", action="store_true",
                        help=f"lip-sync latency for live use: update {LIVE.update_frames}, look-ahead "
                             f"{LIVE.lookahead_frames} frames (93 ms; lower quality, see README)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if args.live:
        args.update_frames, args.lookahead_frames = LIVE.update_frames, LIVE.lookahead_frames
    return args


def enhance_file(args: argparse.Namespace) -> Path:
    """Run the command; returns the output path. Raises ValueError / FileNotFoundError on bad input."""
    source, target = args.input, args.output
    if not source.is_file():
        raise FileNotFoundError(f"input {source} does not exist")
    if target.resolve() == source.resolve() or (target.exists() and os.path.samefile(source, target)):
        raise ValueError(f"output {target} is the input file; choose another path (the input is never modified)")
    try:
        info = sf.info(str(source))
    except (sf.LibsndfileError, RuntimeError) as err:
        raise ValueError(f"{source}: cannot read audio ({err}); expected a format soundfile reads") from err
    if info.frames == 0:
        raise ValueError(f"{source}: contains no samples")
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
    outputs = {"output": target}
    if args.stems:
        outputs.update({kind: args.stems / f"{source.stem}.{kind}{target.suffix}" for kind in ("dialogue", "background")})
    partial = {kind: path.with_name(f".{path.stem}.partial{path.suffix}") for kind, path in outputs.items()}
    block = max(1, int(args.block_seconds * info.samplerate))
    try:
        with ExitStack() as stack:
            reader = stack.enter_context(sf.SoundFile(str(source)))
            writers = {}
            for kind, path in partial.items():
                path.parent.mkdir(parents=True, exist_ok=True)
                writers[kind] = stack.enter_context(sf.SoundFile(str(path), "w", info.samplerate, info.channels,
                                                                 subtype=_subtype(info, path)))
            bar = stack.enter_context(tqdm(total=info.frames, unit="sample", unit_scale=True, disable=args.quiet,
                                           desc=f"enhance {source.name}"))
            for samples in reader.blocks(blocksize=block, dtype="float32", always_2d=True):
                _write(writers, enhancer.process(samples))
                bar.update(samples.shape[0])
            _write(writers, enhancer.flush())
        for kind, path in partial.items():
            os.replace(path, outputs[kind])
    finally:
        for path in partial.values():
            path.unlink(missing_ok=True)
    log.info("wrote %s (%s dB dialogue, %s dB background, model %s)", target, args.dialogue_gain,
             args.background_gain, model_path)
    return target


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
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO"), format="%(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    try:
        enhance_file(args)
    except (ValueError, FileNotFoundError) as err:
        print(f"enhance: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
