"""`enhance INPUT -o OUTPUT`: turn the dialogue of a recording up or down.

Any file soundfile reads, any container FFmpeg reads (`sources`: mkv, mp4, m4a, ac3, ... through PyAV) or a pipe
('-'); streamed block by block (bounded memory) through the two passes of `remix.Remixer` (separate and measure,
then remix at the input's loudness), or one pass with --no-keep-loudness. Films keep every other stream
(`media.ContainerSink`); 5.1 / 7.1 separate the centre channel, stereo its mid (`layouts`). The output keeps the
input's rate, channels and full bandwidth; it is written to a temporary file and renamed, and the input is never
modified.
Arguments, output paths and the input's header are checked before the first block (`preflight`); the hidden
partial files are removed on every way out: errors, Ctrl-C, SIGTERM and SIGHUP (`interrupt`).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from contextlib import ExitStack, closing
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from tqdm import tqdm

from pipeline.audio.media import RAW_FORMATS
from pipeline.enhance.background import BackgroundCalls, prefetched
from pipeline.enhance.interrupt import Terminated, signals_as_exceptions
from pipeline.enhance.layouts import STEREO_MODES, DEFAULT_STEREO, plan_channels
from pipeline.enhance.masker import DialogueMasker
from pipeline.enhance.media import CONTAINERS, ContainerSink, check_codec
from pipeline.enhance.preflight import check_block_seconds, output_paths
from pipeline.enhance.registry import DEFAULT_REGISTRY, resolve_model, scene_figure_of
from pipeline.enhance.remix import DEFAULT_CEILING_DB, Remixer
from pipeline.enhance.sources import PIPE, open_source
from pipeline.enhance.stream import LIVE, OFFLINE

PCM_CODECS = {"s16le": "pcm_s16le", "s24le": "pcm_s24le", "s32le": "pcm_s32le", "f32le": "pcm_f32le",
              "f64le": "pcm_f64le"}

log = logging.getLogger(__name__)


def default_threads() -> int:
    """Every core this process may use but one (at least one)."""
    return max(1, len(os.sched_getaffinity(0)) - 1) if hasattr(os, "sched_getaffinity") else \
        max(1, (os.cpu_count() or 2) - 1)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="enhance", description=__doc__.split("\n\n")[0])
    parser.add_argument("input", type=Path, help="recording or film to enhance (wav, flac, mkv, mp4, m4a, ac3, ...; "
                        "'-': WAV or raw PCM on standard input)")
    parser.add_argument("-o", "--output", type=Path, required=True, help="where to write the remix ('-': standard "
                        "output)")
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
    parser.add_argument("--threads", type=int, default=default_threads(), metavar="N",
                        help="CPU threads of the model (default: every core but one, at least 1: decoding and "
                             "encoding run in threads of their own beside it)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    films = parser.add_argument_group("films and other containers")
    films.add_argument("--stream", type=int, metavar="N", help="audio stream number N (0: the first audio stream; "
                       "default: the container's default audio stream)")
    films.add_argument("--channels", metavar="NAMES", help="channels to separate, e.g. FC or FL,FR,FC, or 'all'; "
                       "names joined by + are separated as their mid: FC,FL+FR adds the phantom centre (default: FC "
                       "alone for 5.1 / 7.1, the mid of stereo, the mono channel)")
    films.add_argument("--stereo", choices=STEREO_MODES, default=DEFAULT_STEREO,
                       help=f"stereo: separate the mid (L+R)/2 or each channel (default {DEFAULT_STEREO})")
    films.add_argument("--keep-loudness", action=argparse.BooleanOptionalAction, default=True,
                       help="match the output's integrated loudness (BS.1770) to the input's: two passes (default); "
                            "--no-keep-loudness streams in one pass")
    films.add_argument("--ceiling", type=float, default=DEFAULT_CEILING_DB, metavar="DBTP",
                       help=f"true-peak ceiling of the limiter (default {DEFAULT_CEILING_DB:g} dBTP)")
    films.add_argument("--codec", help="audio encoder for a container output (default: the input's codec)")
    films.add_argument("--bitrate", type=int, metavar="BPS", help="audio bit rate (default: the input's)")
    films.add_argument("--keep-original", action="store_true", help="keep the original audio as a second track")
    films.add_argument("--report", type=Path, metavar="FILE.json", help="write loudness, peaks, dialogue-to-"
                       "background ratio and speed here")
    films.add_argument("--format", choices=RAW_FORMATS, help="raw PCM on a pipe (default: WAV)")
    films.add_argument("--rate", type=int, help="sample rate of raw PCM input")
    films.add_argument("--layout", help="channel layout of raw PCM input (mono, stereo, 5.1, ...)")
    args = parser.parse_args(argv)
    if args.threads < 1:
        parser.error(f"--threads {args.threads}; expected 1 or more")
    if args.live:
        args.update_frames, args.lookahead_frames = LIVE.update_frames, LIVE.lookahead_frames
    return args


def enhance_file(args: argparse.Namespace) -> Path:
    """Run the command; returns the output path. Raises ValueError / OSError on bad input, before the first block
    wherever it can be known then; the hidden partial files are removed on every way out."""
    source_path, target = args.input, args.output
    check_block_seconds(args.block_seconds)
    if args.codec is not None:
        check_codec(args.codec)
    if source_path != PIPE and not source_path.is_file():
        raise FileNotFoundError(f"input {source_path} does not exist")
    if args.bitrate is not None and args.bitrate <= 0:
        raise ValueError(f"--bitrate {args.bitrate}; expected bits per second, e.g. 448000")
    if args.keep_original and (target == PIPE or target.suffix.lower() not in CONTAINERS):
        raise ValueError(f"--keep-original adds a second audio track, which {target} cannot hold; write a container "
                         f"({', '.join(sorted(CONTAINERS))})")
    outputs = output_paths(source_path, target, args.stems)
    started = time.perf_counter()
    source = open_source(source_path, args.stream, args.format, args.rate, args.layout)
    try:
        return _run(args, source, outputs, started)
    finally:
        source.close()


def _run(args: argparse.Namespace, source, outputs: dict[str, Path], started: float) -> Path:
    info, target = source.info, args.output
    plan = plan_channels(info.names, args.channels, args.stereo)
    classes = args.dialogue_classes.split(",") if args.dialogue_classes else None
    model_path, dialogue, separator = resolve_model(args.model, classes, args.registry)
    figure = scene_figure_of(model_path, args.registry)
    if figure is not None and figure < 0:
        log.warning("model %s made dialogue worse than doing nothing on the 0 dB test scenes (dialogue SI-SDRi "
                    "%.1f dB); expect little or no benefit (see reports/tables/scenes_*.md)", model_path, figure)
    masker = DialogueMasker.load(model_path, dialogue, kind=separator)
    two_pass = args.keep_loudness
    remixer = Remixer(masker, info.rate, info.names, plan, dialogue_gain_db=args.dialogue_gain,
                      background_gain_db=args.background_gain, update_frames=args.update_frames,
                      lookahead_frames=args.lookahead_frames, keep_loudness=args.keep_loudness,
                      ceiling_db=args.ceiling, keep_input=two_pass and not source.replayable,
                      streaming=not two_pass)
    partial = {kind: path if path == PIPE else path.with_name(f".{path.stem}.partial{path.suffix}")
               for kind, path in outputs.items()}
    block = max(1, int(args.block_seconds * info.rate))
    sinks: dict = {}
    done = False
    try:
        with ExitStack() as stack:
            stack.callback(remixer.close)
            total = None if info.duration is None else round(info.duration * (2 if two_pass else 1), 1)
            sinks = _open_sinks(args, source, partial)   # before any work: an unwritable output fails now
            bar = stack.enter_context(tqdm(total=total, unit="s", disable=args.quiet, desc=f"enhance {info.name}",
                                           bar_format="{l_bar}{bar}| {n:.0f}/{total_fmt} s audio "
                                                      "[{elapsed}<{remaining}]" if total else None))
            writer = BackgroundCalls(depth=2)
            stack.callback(writer.cancel)          # a no-op after finish(); on an error, stops before abort()
            if two_pass:
                bar.set_description(f"1/2 separate {Path(info.name).name}")
                with closing(prefetched(_measured(source.blocks(block), remixer))) as blocks:
                    for samples, weighted in blocks:
                        _enhanced(info.name, lambda: remixer.analyse(samples, weighted))
                        bar.update(len(samples) / info.rate)
                _enhanced(info.name, remixer.finish_analysis)
                bar.set_description(f"2/2 write {Path(info.name).name}")
            copy = sinks["output"].copy

            def emit(rendered: dict[str, np.ndarray], packets: list = ()) -> None:
                """Hand the writer a block's packets of the copied streams, then its outputs (only those asked
                for: the queue holds as little as it can)."""
                writer.submit(_write, sinks, {kind: rendered[kind] for kind in sinks if kind in rendered}, copy,
                              packets)

            if two_pass and not source.replayable:
                items = ((samples, ()) for samples in remixer.kept_blocks(block))
            else:
                items = prefetched(_with_packets(source, block, sinks["output"].copies))
            with closing(items):
                for samples, packets in items:
                    if samples is None:
                        emit({}, packets)
                    elif two_pass:
                        emit(remixer.render(samples), packets)
                    else:
                        emit({}, packets)
                        for x, d in _enhanced(info.name, lambda: remixer.analyse(samples)):
                            emit(remixer.render(x, d))
                    if samples is not None:
                        bar.update(len(samples) / info.rate)
            if not two_pass:
                for x, d in _enhanced(info.name, remixer.finish_analysis):
                    emit(remixer.render(x, d))
            writer.finish()
            for sink in sinks.values():
                sink.close()
            done = True
        for kind, path in partial.items():
            if path != PIPE:
                os.replace(path, outputs[kind])
    finally:
        if not done:
            for sink in sinks.values():
                sink.abort()
        for path in partial.values():
            if path != PIPE:
                path.unlink(missing_ok=True)
    report = _report(args, source, plan, remixer, model_path, time.perf_counter() - started)
    if args.report is not None:
        _write_json(args.report, report)
    args.summary = report
    log.info("wrote %s (%s dB dialogue, %s dB background, model %s)", target, args.dialogue_gain,
             args.background_gain, model_path)
    return target


class _SoundfileSink:
    """A soundfile output of the input's rate and channels; ValueError naming it when soundfile cannot write it."""

    def __init__(self, path: Path, info, subtype: str | None):
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.file = sf.SoundFile(str(path), "w", info.rate, info.channels, subtype=subtype)
        except (sf.LibsndfileError, TypeError, ValueError) as err:
            raise ValueError(f"cannot write {path.suffix} audio with {info.channels} channels at {info.rate} Hz "
                             f"({err})") from err

    def write(self, samples: np.ndarray) -> None:
        self.file.write(samples)

    def copies(self, packet) -> bool:
        return False

    def copy(self, packet) -> None:
        pass

    def close(self) -> None:
        self.file.close()

    abort = close


def _open_sinks(args, source, partial: dict[str, Path]) -> dict:
    info = source.info
    sinks = {}
    try:
        for kind, path in partial.items():
            if path == PIPE:
                sinks[kind] = _pipe_sink(args, info)
            elif kind == "output" and path.suffix.lower() in CONTAINERS:
                path.parent.mkdir(parents=True, exist_ok=True)
                container = getattr(source, "container", None)
                start = getattr(source, "start", None)
                sinks[kind] = ContainerSink(path, info.stream, info.rate, info.layout, info.channels,
                                            source=container, codec=args.codec, bit_rate=args.bitrate,
                                            keep_original=args.keep_original, name=str(args.output),
                                            format=CONTAINERS[path.suffix.lower()], start=start)
            else:
                if kind == "output":
                    _warn_dropped_streams(source, args.output)
                subtype = _subtype(info, path)
                if path.suffix.lower() == ".wav" and info.channels > 2:
                    # soundfile writes no channel mask: FFmpeg's WAV muxer keeps the layout (5.1, 7.1, ...)
                    path.parent.mkdir(parents=True, exist_ok=True)
                    sinks[kind] = ContainerSink(path, None, info.rate, info.layout, info.channels,
                                                codec=_pcm_codec(info, subtype), format="wav", name=str(path))
                else:
                    sinks[kind] = _SoundfileSink(path, info, subtype)
    except BaseException:
        for sink in sinks.values():
            sink.abort()
        raise
    return sinks


def _warn_dropped_streams(source, path: Path) -> None:
    """An audio-only output of a film: say which of its streams it cannot carry."""
    container = getattr(source, "container", None)
    if container is None:
        return
    others = [f"{s.type} ({s.codec_context.name})" for s in container.streams
              if s.index != source.info.stream.index and s.type in ("video", "subtitle", "audio")]
    if others:
        log.warning("%s holds the enhanced audio only; the input's other streams are not written: %s (write .mkv "
                    "or .mp4 to keep them)", path, ", ".join(others))


def _pipe_sink(args, info) -> ContainerSink:
    """WAV (or raw PCM with --format) on standard output, float when the input was float, else 16-bit."""
    if args.format is not None:
        return ContainerSink(sys.stdout.buffer, None, info.rate, info.layout, info.channels,
                             codec=PCM_CODECS[args.format], format=args.format, name="standard output")
    return ContainerSink(sys.stdout.buffer, None, info.rate, info.layout, info.channels,
                         codec=_pcm_codec(info, None), format="wav", name="standard output")


SUBTYPE_CODECS = {"PCM_U8": "pcm_u8", "PCM_16": "pcm_s16le", "PCM_24": "pcm_s24le", "PCM_32": "pcm_s32le",
                  "FLOAT": "pcm_f32le", "DOUBLE": "pcm_f64le"}


def _pcm_codec(info, subtype: str | None) -> str:
    """The WAV sample format for an output: the soundfile `subtype` kept, else float when the input was float,
    else 16-bit."""
    if subtype in SUBTYPE_CODECS:
        return SUBTYPE_CODECS[subtype]
    floating = (info.subtype or "").startswith(("FLOAT", "DOUBLE")) or (
        info.stream is not None and info.stream.sample_format.startswith(("flt", "dbl")))
    return "pcm_f32le" if floating else "pcm_s16le"


def _report(args, source, plan, remixer, model_path, wall: float) -> dict:
    info, levels = source.info, remixer.levels()
    seconds = (remixer.e_input.received or 0) / info.rate
    stream = info.stream
    return {
        "input": str(args.input), "output": str(args.output), "model": str(model_path),
        "stream": None if stream is None else stream.index, "codec": None if stream is None else stream.codec,
        "layout": info.layout, "sample_rate": info.rate, "channels_processed": plan.description,
        "dialogue_gain_db": args.dialogue_gain, "background_gain_db": args.background_gain,
        "keep_loudness": args.keep_loudness, "loudness_in_lufs": _finite(levels.loudness_in),
        "loudness_out_lufs": _finite(levels.loudness_out), "loudness_gain_db": round(levels.gain_db, 3),
        "true_peak_in_dbtp": _finite(levels.true_peak_in), "true_peak_out_dbtp": _finite(levels.true_peak_out),
        "true_peak_measured": "before encoding", "limited_seconds": round(levels.limited_seconds, 3),
        "dialogue_to_background_before_lu": _finite(levels.dialogue_to_background_before),
        "dialogue_to_background_after_lu": _finite(levels.dialogue_to_background_after),
        "duration_s": round(seconds, 3), "wall_s": round(wall, 3),
        "real_time_factor": round(wall / seconds, 5) if seconds else None,
        "times_real_time": round(seconds / wall, 1) if wall else None,
        "skipped_packets": source.skipped_packets, "filled_gap_s": round(source.filled_samples / info.rate, 3),
        "missing_s": source.missing_seconds,
    }


def _finite(value: float) -> float | None:
    return round(float(value), 2) if np.isfinite(value) else None


def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(partial, path)


def summary_lines(report: dict) -> list[str]:
    """The printed summary of a report."""
    def num(value, unit):
        return "n/a" if value is None else f"{value:+.1f} {unit}" if unit == "LU" else f"{value:.1f} {unit}"
    return [f"loudness {num(report['loudness_in_lufs'], 'LUFS')} -> {num(report['loudness_out_lufs'], 'LUFS')} "
            f"(gain {report['loudness_gain_db']:+.1f} dB), true peak {num(report['true_peak_in_dbtp'], 'dBTP')} -> "
            f"{num(report['true_peak_out_dbtp'], 'dBTP')}",
            f"dialogue-to-background {num(report['dialogue_to_background_before_lu'], 'LU')} -> "
            f"{num(report['dialogue_to_background_after_lu'], 'LU')} (channels {report['channels_processed']})",
            f"{report['duration_s']:.1f} s in {report['wall_s']:.1f} s: {report['times_real_time']}x real time"
            + (f"; {report['skipped_packets']} undecodable packet(s) skipped" if report["skipped_packets"] else "")
            + (f"; {report['missing_s']:.1f} s shorter than the file declares: truncated?" if report["missing_s"]
               else "")]


def _enhanced(source: str, step):
    """`step()` (one block of the enhancer), its ValueErrors prefixed with the input's name."""
    try:
        return step()
    except ValueError as err:
        raise ValueError(f"{source}: {err}") from err


def _subtype(info, path: Path) -> str | None:
    """Keep the input's sample format when the output format supports it, else the output format's default."""
    fmt = path.suffix.lstrip(".").upper()
    if info.subtype is None:
        return None
    try:
        if sf.check_format(fmt, info.subtype):
            return info.subtype
    except (ValueError, TypeError):
        pass
    return None


def _measured(blocks, remixer: Remixer):
    """(block, its `remixer.measure_input`): in the decoding thread, the input's loudness and true peak are
    measured there too."""
    for samples in blocks:
        yield samples, remixer.measure_input(samples)


def _with_packets(source, block: int, copies):
    """(block of samples, packets demuxed before it that `copies` says the output copies), then (None, those
    after the last block), from `source.replay` (files; a pipe's blocks, read once): the muxer gets them in the
    order of reading in line."""
    packets: list = []

    def keep(packet) -> None:
        if copies(packet):
            packets.append(packet)

    for samples in source.replay(block, keep) if source.replayable else source.blocks(block):
        taken = packets[:]
        packets.clear()
        yield samples, taken
    if packets:
        yield None, packets


def _write(sinks: dict, rendered: dict[str, np.ndarray], copy, packets: list) -> None:
    """Mux `packets` of the copied streams (read before this block), then encode the block's outputs (none for
    an empty `rendered`)."""
    for packet in packets:
        copy(packet)
    for kind, array in rendered.items():
        sinks[kind].write(array)


def main(argv: list[str] | None = None) -> int:
    """The `enhance` command: 0 on success, 2 for bad input, 130 for Ctrl-C, 128 + signal for SIGTERM/SIGHUP;
    one line on stderr for each failure, and no partial file left."""
    logging.basicConfig(level=os.environ.get("LOG_LEVEL", "INFO"), format="%(levelname)s %(name)s: %(message)s")
    args = parse_args(argv)
    threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        with signals_as_exceptions():
            enhance_file(args)
        for line in summary_lines(args.summary):
            print(f"enhance summary: {line}", file=sys.stderr)
    except (ValueError, OSError, sf.SoundFileError) as err:
        print(f"enhance: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("enhance: interrupted; no output written", file=sys.stderr)
        return 130
    except Terminated as stop:
        print(f"enhance: {stop}; no output written", file=sys.stderr)
        return 128 + stop.signum
    finally:
        torch.set_num_threads(threads)      # a caller in the same process (tests, notebooks) keeps its setting
    return 0


if __name__ == "__main__":
    sys.exit(main())
