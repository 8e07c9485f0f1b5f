"""Latency and speed of streaming dialogue enhancement, measured as the paper does (method.md, streaming).

- G_b: processing time spent until the first output sample comes out (time to first output);
- G_i: processing time per 400-sample frame (46.5 ms of audio at 8,600 Hz) in steady state: the mean (model runs
  amortised over the frames between them) and the p95 (the frames on which the model runs);
- algorithmic latency: audio that must arrive before a sample can be output (worst case), in ms;
- real-time factor: processing time / audio duration, streaming 400-sample frames;
- offline throughput of a long 44.1 kHz stereo file in 10-s blocks;
- the quality each setting gives (median dialogue SI-SDRi of `enhance` on the demo's long test scenes of d2, when
  `dvc repro` has built them): quality against latency against cost, one figure, `benchmarks/results/`.

The network has the paper's size (Table 1) with the classes of d2 (speech, background); weights are the
registry's default model when present (speed does not depend on them). One thread unless --threads.

Usage (from the repository root):
    ./run.sh python -m benchmarks.bench_streaming              # CPU, 1 thread
    ./run.sh python -m benchmarks.bench_streaming --device cuda
    ./run.sh python -m benchmarks.bench_streaming --quick
"""
from __future__ import annotations

import argparse
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from pipeline.config import SceneEnhance
from pipeline.enhance.masker import DialogueMasker
from pipeline.enhance.registry import DEFAULT_REGISTRY, resolve_model
from pipeline.enhance.scenes import enhance_array, score_scene
from pipeline.enhance.stream import LIVE, OFFLINE, StreamingEnhancer
from pipeline.mixing.scenes import load_manifest, read_scene
from pipeline.reports.plots import plot_latency_study
from pipeline.shards import write_json
from pipeline.models.checkpoint import save_model
from pipeline.models.train import build_model
from pipeline.models.vae import ModelShape

FRAME = 400  # samples fed per call, at the model's own rate (8,600 Hz for the demo's models)
SCENES = Path("data/scenes/d2")
RESULTS = Path("benchmarks/results")
SETTINGS = [  # (update, look-ahead) frames: the file default, shorter latencies, the old default, live
    (OFFLINE.update_frames, OFFLINE.lookahead_frames), (4, 20), (8, 12), (16, 4), (8, 4), (4, 2), (2, 4),
    (LIVE.update_frames, LIVE.lookahead_frames), (2, 1), (3, 0)]


def masker(device: str) -> tuple[DialogueMasker, str]:
    try:
        path, dialogue, kind = resolve_model(None, None, DEFAULT_REGISTRY)
        return DialogueMasker.load(path, dialogue, device, kind), f"registry default ({path})"
    except (FileNotFoundError, KeyError, ValueError):
        model = build_model(ModelShape(num_classes=2), seed=0)
        path = Path(tempfile.mkdtemp()) / "model.pt"
        save_model(path, model, model.state_dict(), {"classes": ["speech", "background"], "target_rms": 0.05,
                                                     "stft": {"n_fft": 400, "hop_length": 200}})
        return DialogueMasker.load(path, ["speech"], device), "untrained paper-size model (no registry yet)"


def stream_figures(masker_: DialogueMasker, seconds: float, update: int, lookahead: int) -> dict[str, float]:
    rng = np.random.default_rng(0)
    rate = masker_.settings.sample_rate
    audio = (0.1 * rng.standard_normal((int(seconds * rate), 1))).astype(np.float32)
    enhancer = StreamingEnhancer(masker_, rate, 1, dialogue_gain_db=6, update_frames=update,
                                 lookahead_frames=lookahead)
    times, first_output_after = [], None
    for start in range(0, len(audio) - FRAME + 1, FRAME):
        began = time.perf_counter()
        out = enhancer.process(audio[start:start + FRAME])
        times.append(time.perf_counter() - began)
        if first_output_after is None and out.output.shape[0]:
            first_output_after = sum(times)
    steady = np.array(times[len(times) // 10:]) * 1000
    return {"G_b_ms": 1000 * first_output_after, "G_i_mean_ms": float(np.mean(steady)),
            "G_i_p95_ms": float(np.percentile(steady, 95)), "latency_ms": enhancer.latency_ms,
            "rtf": sum(times) / seconds}


def scene_quality(masker_: DialogueMasker, update: int, lookahead: int, ratio_db: float | None = 0.0) -> float:
    """Median dialogue SI-SDRi of `enhance` (+6 dB dialogue) over the demo scenes at `ratio_db` (None: all)."""
    settings = SceneEnhance(update_frames=update, lookahead_frames=lookahead)
    values = []
    for entry in load_manifest(SCENES)["scenes"]:
        if ratio_db is not None and entry["ratio_db"] != ratio_db:
            continue
        dialogue, background, rate = read_scene(SCENES / entry["scene_id"])
        enhanced, _ = enhance_array(masker_, dialogue + background, rate, settings, 10 * rate)
        values.append(score_scene(dialogue.astype(np.float64), background.astype(np.float64), enhanced,
                                  settings)["dialogue_si_sdri"])
    return float(np.median(values))


def offline_figures(masker_: DialogueMasker, seconds: float) -> dict[str, float]:
    rate = 44100
    rng = np.random.default_rng(1)
    audio = (0.1 * rng.standard_normal((int(seconds * rate), 2))).astype(np.float32)
    enhancer = StreamingEnhancer(masker_, rate, 2, dialogue_gain_db=6)
    block = 10 * rate
    began = time.perf_counter()
    for start in range(0, len(audio), block):
        enhancer.process(audio[start:start + block])
    enhancer.flush()
    elapsed = time.perf_counter() - began
    return {"seconds": elapsed, "x_realtime": seconds / elapsed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=30.0, help="streamed audio")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    seconds = 5.0 if args.quick else args.seconds
    masker_, source = masker(args.device)
    print(f"model: {source}; device {args.device}, {args.threads} thread(s); {platform.processor() or platform.machine()}")
    scenes = SCENES.is_dir() and not args.quick
    print(f"{'update':>6} {'look':>5} {'latency ms':>10} {'G_b ms':>8} {'G_i mean ms':>11} {'G_i p95 ms':>10} {'RTF':>7}"
          + (f" {'scene SI-SDRi 0 dB':>18}" if scenes else ""))
    rows = []
    for update, lookahead in (SETTINGS[:4] if args.quick else SETTINGS):
        f = stream_figures(masker_, seconds, update, lookahead)
        quality = scene_quality(masker_, update, lookahead) if scenes else float("nan")
        rows.append({"update": update, "lookahead": lookahead, **f, "dialogue_si_sdri": quality})
        print(f"{update:>6} {lookahead:>5} {f['latency_ms']:>10.1f} {f['G_b_ms']:>8.2f} {f['G_i_mean_ms']:>11.3f} "
              f"{f['G_i_p95_ms']:>10.3f} {f['rtf']:>7.4f}" + (f" {quality:>18.2f}" if scenes else ""))
    print("targets: G_i <= 1 ms per 400-sample frame on one CPU core, RTF <= 0.05 (paper: G_b 3.3 ms, G_i 1 ms, K80); "
          "live television: latency <= 100 ms (lip sync)")
    if scenes:
        write_json(RESULTS / "streaming.json", {"model": source, "device": args.device, "threads": args.threads,
                                                "rows": rows})
        figure = plot_latency_study(rows, RESULTS / "streaming.png",
                                    f"enhance on the demo scenes of d2 (0 dB): quality vs latency vs cost "
                                    f"({args.threads} thread)")
        print(f"figure: {figure}")
    else:
        print(f"(no scene quality: {SCENES} not built, or --quick; run `./run.sh repro` first)")
    off = offline_figures(masker_, 20.0 if args.quick else 120.0)
    print(f"offline, 44.1 kHz stereo: {off['x_realtime']:.1f}x real time ({off['seconds']:.2f} s)")


if __name__ == "__main__":
    main()
