"""Throughput and peak memory of `build_dataset("d1", ...)` on one core, at several dataset sizes.

Writes a synthetic SC09-size clip table straight into shards (no audio decoding, no espeak): 5 digit labels
(zero..four, the classes of d1) x ~3,100 train / ~370 valid / ~400 test clips of random float32 audio at RMS
0.05 and `audio.clip_samples` samples, in the layout `load_clip_index` reads
(`<clips_root>/sc09/<split>/clips-NNNNN.parquet` + manifest.json, written by `ShardWriter`, prefix "clips",
with params.yaml's `shards` settings). Then, for each scale, builds d1 with the paper's sizes
(train 15,000 / valid 1,875 / test 1,875 = 18,750 mixtures) times the scale, in a SUBPROCESS pinned to one
core (`taskset -c 0` when available, OMP/BLAS/Arrow threads = 1), so that its peak RSS (VmHWM) is its own.

Prints mixtures, seconds (build_dataset only, not interpreter start-up), mixtures/s (= per core), peak RSS,
and the targets beside: < 60 s for 18,750 mixtures on one core, peak RSS < 1 GiB, flat across sizes.
Prints figures only; nothing is asserted.

Usage (from the repository root):

    .venv/bin/python -m benchmarks.bench_mix                       # scales 0.25 and 1.0 of the paper sizes
    .venv/bin/python -m benchmarks.bench_mix --scales 0.1 0.5 1.0 --keep
    .venv/bin/python -m benchmarks.bench_mix --quick               # smoke run: small clip table, tiny sizes
    .venv/bin/python -m benchmarks.bench_mix --profile             # also cProfile the largest build (top 15)
    .venv/bin/python benchmarks/bench_mix.py                       # also works
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if __package__ in (None, ""):  # run as a script: make `import pipeline` work
    sys.path.insert(0, str(REPO_ROOT))

import numpy as np  # noqa: E402

PAPER_SIZES = {"train": 15000, "valid": 1875, "test": 1875}
LABELS = ("zero", "one", "two", "three", "four")
CLIPS_PER_LABEL = {"train": 3100, "valid": 370, "test": 400}  # about SC09's per-digit counts
RESULT_TAG = "BENCH_RESULT "
ONE_CORE_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
                "NUMEXPR_NUM_THREADS": "1", "ARROW_NUM_THREADS": "1"}


def load_repo_params():
    from pipeline.config import parse_params
    from pipeline.testing.audio import repo_params_raw

    return parse_params(repo_params_raw())


# ----------------------------------------------------------------------------------------------------------------
# Synthetic clip table


def write_clip_table(clips_root: Path, params, per_label: dict[str, int], seed: int = 0) -> dict[str, int]:
    """SC09-like clip shards for labels zero..four; returns clips written per split."""
    import pyarrow as pa

    from pipeline.corpora.prepare import clip_schema
    from pipeline.shards import ShardWriter, audio_array

    audio, shards = params.audio, params.shards
    length = audio.clip_samples
    schema = clip_schema(length)
    rng = np.random.default_rng(seed)
    written = {}
    speaker_counter = 0
    for split, count in per_label.items():
        metadata = {"corpus": "sc09", "sample_rate": audio.sample_rate, "clip_samples": length,
                    "target_rms": audio.target_rms, "split": split}
        # speaker-disjoint splits, ~3 takes per speaker and label, as in Speech Commands
        speakers = [f"{(speaker_counter + i) * 2654435761 % 2**32:08x}" for i in range(max(1, count // 3))]
        speaker_counter += len(speakers)
        with ShardWriter(clips_root / "sc09" / split, schema, prefix="clips", rows_per_group=shards.rows_per_group,
                         groups_per_shard=shards.groups_per_shard, compression=shards.compression,
                         metadata=metadata) as writer:
            for label in LABELS:  # prepare writes recordings sorted by digit, then file name
                names = sorted(f"{label}/{speakers[i % len(speakers)]}_nohash_{i // len(speakers)}.wav"
                               for i in range(count))
                for start in range(0, count, shards.rows_per_group):
                    batch = names[start:start + shards.rows_per_group]
                    n = len(batch)
                    samples = rng.standard_normal((n, length), dtype=np.float32)
                    samples *= (audio.target_rms / np.sqrt(np.mean(np.square(samples, dtype=np.float64),
                                                                   axis=1)))[:, None].astype(np.float32)
                    writer.write(pa.table({
                        "clip_id": [f"sc09/{name}#0" for name in batch],
                        "corpus": ["sc09"] * n,
                        "label": [label] * n,
                        "speaker": [name.split("/")[1].split("_nohash_")[0] for name in batch],
                        "gender": pa.nulls(n, pa.string()),
                        "split": [split] * n,
                        "source_file": batch,
                        "offset": pa.array(np.zeros(n, dtype=np.int64)),
                        "sample_rate": pa.array(np.full(n, audio.sample_rate, dtype=np.int32)),
                        "num_samples": pa.array(np.full(n, length, dtype=np.int32)),
                        "rms": pa.array(rng.uniform(0.01, 0.3, n).astype(np.float32)),
                        "audio": audio_array(samples),
                    }, schema=schema))
        written[split] = count * len(LABELS)
    return written


# ----------------------------------------------------------------------------------------------------------------
# Child: one build, measured alone


def vm_hwm_mib() -> float:
    """Peak resident set size of this process so far (VmHWM), MiB."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(clips_root: Path, out_dir: Path, scale: float, profile_out: Path | None) -> None:
    import pyarrow as pa

    from pipeline.config import SplitSizes
    from pipeline.mixing.build import build_dataset

    pa.set_cpu_count(1)
    pa.set_io_thread_count(1)
    params = load_repo_params()
    sizes = SplitSizes(**{split: int(round(n * scale)) for split, n in PAPER_SIZES.items()})
    config = dataclasses.replace(params.datasets["d1"], sizes=sizes)
    baseline = vm_hwm_mib()
    profiler = None
    if profile_out is not None:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    start = time.perf_counter()
    sheet = build_dataset("d1", config, params.audio, params.shards, clips_root, out_dir, progress=False)
    seconds = time.perf_counter() - start
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(str(profile_out))
    mixtures = sum(part["mixtures"] for part in sheet["splits"].values())
    print(RESULT_TAG + json.dumps({"mixtures": mixtures, "seconds": seconds, "peak_rss_mib": vm_hwm_mib(),
                                   "baseline_rss_mib": baseline,
                                   "clips_used": {s: p["clips_used"] for s, p in sheet["splits"].items()}}),
          flush=True)


def run_child(clips_root: Path, out_dir: Path, scale: float, profile_out: Path | None) -> dict:
    command = [sys.executable, "-m", "benchmarks.bench_mix", "--child", str(clips_root), str(out_dir), str(scale)]
    if profile_out is not None:
        command += ["--profile-out", str(profile_out)]
    if shutil.which("taskset"):
        command = ["taskset", "-c", "0", *command]
    env = {**os.environ, **ONE_CORE_ENV, "PYTHONPATH": os.pathsep.join(
        p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p)}
    wall = time.perf_counter()
    done = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - wall
    if done.returncode != 0:
        sys.stderr.write(done.stdout + done.stderr)
        raise SystemExit(f"build failed (exit {done.returncode}) at scale {scale}")
    line = next(l for l in done.stdout.splitlines() if l.startswith(RESULT_TAG))
    result = json.loads(line[len(RESULT_TAG):])
    result["wall_s"] = wall
    result["out_mib"] = sum(f.stat().st_size for f in out_dir.rglob("*") if f.is_file()) / 2**20
    return result


# ----------------------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scales", type=float, nargs="+", default=[0.25, 1.0],
                    help="dataset sizes as fractions of the paper's (default 0.25 1.0)")
    ap.add_argument("--quick", action="store_true", help="smoke run: 1/10 of the clips, scales 0.01 and 0.02")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder (its path is printed)")
    ap.add_argument("--profile", action="store_true", help="cProfile the largest build and print the top 15")
    ap.add_argument("--child", nargs=3, metavar=("CLIPS_ROOT", "OUT_DIR", "SCALE"), help=argparse.SUPPRESS)
    ap.add_argument("--profile-out", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(Path(args.child[0]), Path(args.child[1]), float(args.child[2]), args.profile_out)
        return

    params = load_repo_params()
    per_label = {s: max(8, n // 10) for s, n in CLIPS_PER_LABEL.items()} if args.quick else dict(CLIPS_PER_LABEL)
    scales = [0.01, 0.02] if args.quick else sorted(args.scales)
    tmp = Path(tempfile.mkdtemp(prefix="bench_mix-", dir="/tmp"))
    sh = params.shards
    print(f"build_dataset d1 benchmark: shards {sh.rows_per_group}x{sh.groups_per_shard} {sh.compression}, "
          f"{params.audio.clip_samples} samples/clip, pinned to one core: {bool(shutil.which('taskset'))}, "
          f"load average {os.getloadavg()[0]:.2f}, temp {tmp}")
    try:
        start = time.perf_counter()
        clips = write_clip_table(tmp / "clips", params, per_label)
        table_mib = sum(f.stat().st_size for f in (tmp / "clips").rglob("*") if f.is_file()) / 2**20
        print(f"synthetic clip table: {clips} clips, {table_mib:.0f} MiB on disk, written in "
              f"{time.perf_counter() - start:.1f} s")
        header = f"{'scale':>6}{'mixtures':>10}{'seconds':>9}{'mix/s/core':>11}{'peak RSS MiB':>13}" \
                 f"{'of which start-up':>18}{'clips loaded':>13}{'output MiB':>11}"
        print(header)
        print("-" * len(header))
        results = []
        for scale in scales:
            profile_out = tmp / "build.prof" if args.profile and scale == scales[-1] else None
            out_dir = tmp / f"d1-{scale}"
            r = run_child(tmp / "clips", out_dir, scale, profile_out)
            results.append(r)
            print(f"{scale:>6.2f}{r['mixtures']:>10,}{r['seconds']:>9.1f}{r['mixtures'] / r['seconds']:>11.0f}"
                  f"{r['peak_rss_mib']:>13.0f}{r['baseline_rss_mib']:>18.0f}{sum(r['clips_used'].values()):>13,}"
                  f"{r['out_mib']:>11.0f}")
            if not args.keep:
                shutil.rmtree(out_dir, ignore_errors=True)
        total = sum(PAPER_SIZES.values())
        full = results[-1]
        per_s = full["mixtures"] / full["seconds"]
        print(f"targets: < 60 s for {total:,} mixtures on one core (measured rate -> {total / per_s:.1f} s), "
              f"peak RSS < 1 GiB (max {max(r['peak_rss_mib'] for r in results):.0f} MiB), flat across sizes "
              f"(peak RSS ratio largest/smallest {results[-1]['peak_rss_mib'] / results[0]['peak_rss_mib']:.2f} "
              f"for {results[-1]['mixtures'] / max(results[0]['mixtures'], 1):.1f}x the mixtures)")
        if args.profile:
            import pstats

            print("\ncProfile of the largest build (sorted by cumulative, then internal time):")
            stats = pstats.Stats(str(tmp / "build.prof"))
            stats.sort_stats("cumulative").print_stats(15)
            stats.sort_stats("tottime").print_stats(15)
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
