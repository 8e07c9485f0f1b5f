"""Projected wall time of the paper profile (`profile: paper` in params.yaml) on this device, from measured rates.

Nothing here runs the paper profile itself; it times the library's own code on paper-shaped work and scales:

1. mix@<dataset>: builds d1 at the paper's sizes (15,000 / 1,875 / 1,875 mixtures, `datasets.d1.sizes.paper`)
   from the prepared DEMO clips in data/clips into a temporary folder, with the stage's own function
   (`pipeline.mixing.datasheet.build_with_datasheet`) and parallel map (`orchestration`: a local pool, one
   worker per core); d2 and d3 at `--scale` of their paper sizes, d4 at its (small) paper sizes. Mixtures/s ->
   each mix stage at its paper sizes. (The demo corpus is smaller than SC09/GRID, so loading the clip pool is
   cheaper than on the real corpora; mixing and writing dominate either way, see benchmarks/bench_mix.py.)
2. train@<variant>, every variant of params.yaml: steps of the paper network at batch 100 on that dataset's
   built mixtures (`pipeline.models.train.ddp.Step`, the training loop's own step, data fetch included;
   median over the timed steps), fp32 and bf16 (`train.precision`); one validation = `evaluate_objective` over
   the dataset's paper valid size + one checkpoint write (`save_checkpoint`). Early stopping
   (`patience` validations without improvement) ends a run at an unknown step, so it prints the time per
   1,000 steps (validation included) and the `train.schedule.paper` bound (max_steps 300,000, a validation
   every 200 steps). NMF variants (`model: nmf`): their spectrograms loaded and a few full-batch multiplicative
   updates timed on the built train split, scaled to the paper's train size and `nmf.schedule.paper` updates.
   The DRNN baseline's `train_drnn@<dataset>` stages are not projected here (`benchmarks/bench_training.py` prints
   the DRNN's step rate at the paper width; README "Baseline: the deep recurrent soft-mask separator"), nor are
   `train_dpcl@<dataset>` and the deep-clustering rows of evaluate (bench_training prints their step rates).
3. evaluate@<dataset>: every row of `pipeline.evaluation.systems.systems_for(dataset, paper params)`, each built
   by its registered separator kind (`pipeline.separators.registry.build`) from a model file of the paper's
   shape (untrained weights: timing only), run on a sample of the built test mixtures (one batch of
   `--sample`, 100 by default = `evaluate.batch_size`), then scored with `pipeline.metrics.separation.score_many`
   (BSS-Eval + SI-SDR + PESQ for the dataset's speech classes) on a warm `LocalPool` of processes. One row of
   each kind is timed per dataset and its rate applied to every row of that kind (the `ae` variant's inverse
   rows get the `vae` rate: no sampling and no KL make them slightly cheaper). Rows that estimate classes
   (`classify`) are scored at the mean rate of the dataset's oracle-class rows: an untrained model's class
   estimates drop true sources, whose silent estimates score for free. VAD (inverse) rows run `--iterations`
   iterations (two runs of half) and 0 iterations with early stopping off, and the per-iteration cost is scaled
   to the paper's 300 (`evaluate.schedule.paper`); the tolerance of `evaluate.inverse` may stop them earlier, so
   these are upper bounds. One cheap row (d2 inverse oracle) also runs the full 300 iterations as a check.
   Seed 004's generative-prior rows (`pgd`) are timed the same way: 0 and `--iterations` / 2 PGD steps, scaled
   to `priors.schedule.paper.steps`; its classical rows (`perm`) run as they are; both are scored at the mean
   oracle rate.
4. A table: stage | measured at | unit rate | projected wall time at the paper profile, a TOTAL over mix@d1..d4,
   train@<all variants> (at the max_steps bound) and evaluate@d1..d4, the part that stays on the CPU whatever
   the device (mixing, scoring), and each stage over one day marked. Not measured (not in the TOTAL): fetch@*
   (network), prepare@* (see benchmarks/bench_prepare.py), scenes@*, evaluate_scenes@* (see
   benchmarks/bench_streaming.py), training_summary, select_model, report.

Shared machines: another job running at the same time slows 2-thread work by far more than its share. Each
timed block is measured with the CPU time the rest of the machine used meanwhile (/proc); a block during which
other processes used more than 25 % of the CPUs is run again (up to 3 tries, the least contended kept), and a
figure still contended is marked `!N%` (too slow by an unknown factor).

Which stages need a GPU for the paper profile to finish in a day: on the project's 2-core CPU VM (AVX512-BF16)
each train@<variant> projects to roughly half a day at the max_steps bound (300,000 steps of batch 100 at
about 5-10 steps/s), so the 12 variants take about a week: training needs a GPU (or an early stop far before
max_steps). evaluate@d1 (its VAD rows, above all the exhaustive one over the 10 pairs of 5 classes) takes hours
and is the next GPU candidate; evaluate@d2..d4 take about an hour or less each, mix@* minutes, and scoring
(BSS-Eval, PESQ: about an hour over all datasets) is CPU work on any device. The script prints the figures of the
device it runs on; run it with `--device cuda` on a GPU machine to see what a GPU changes.

Usage (from the repository root; the demo clips must exist: `./run.sh dvc repro prepare` makes them):
    ./run.sh python -m benchmarks.bench_paper_profile                  # CPU, every core; ~10 min on 2 cores
    ./run.sh python -m benchmarks.bench_paper_profile --device cuda    # on a GPU machine
    ./run.sh python -m benchmarks.bench_paper_profile --quick          # smoke run: small sets, ~2 min
    ./run.sh python -m benchmarks.bench_paper_profile --scale 0.25 --sample 100 --iterations 30 --keep
Prints figures only; nothing is asserted.
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
import zlib
from pathlib import Path
from typing import Any, Callable

REPO_ROOT = Path(__file__).resolve().parents[1]
if __package__ in (None, ""):  # run as a script: make `import pipeline` work
    sys.path.insert(0, str(REPO_ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402

from pipeline.config import SPLITS, Params, SplitSizes, load_params, parse_params  # noqa: E402

CORPORA_NEEDED = ("sc09", "grid", "movie_sfx")
VAE_KINDS = ("vae", "ae")  # variant models trained by steps (resolve_setup / NonNegativeVAE)
TIMED_MODELS = (*VAE_KINDS, "nmf")  # nmf: dictionaries by multiplicative updates (pipeline/models/train/nmf.py)
DAY = 24 * 3600.0
QUICK_SIZES = {"d1": (1000, 100, 100)}       # --quick: d1 at these sizes, the others at QUICK_OTHER
QUICK_OTHER = (300, 100, 32)


# ----------------------------------------------------------------------------------------------------------------
# Helpers


def duration(seconds: float) -> str:
    """42 s, 3.4 min, 5.2 h, 3.1 d."""
    if not math.isfinite(seconds):
        return "n/a"
    if seconds < 90:
        return f"{seconds:.1f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.1f} min"
    if seconds < 2 * DAY:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / DAY:.1f} d"


def paper_params(path: Path) -> Params:
    """params.yaml validated as if `profile: paper` were set (sizes and schedules resolved for the paper)."""
    raw = yaml.safe_load(path.read_text()) or {}
    raw["profile"] = "paper"
    return parse_params(raw)


def with_sizes(params: Params, dataset: str, sizes: SplitSizes) -> Params:
    """A copy of `params` whose dataset `dataset` has `sizes` (frozen dataclasses: `replace` validates again)."""
    config = dataclasses.replace(params.datasets[dataset], sizes=sizes)
    return dataclasses.replace(params, datasets={**params.datasets, dataset: config})


def total(sizes: SplitSizes) -> int:
    return sum(sizes.of(split) for split in SPLITS)


class Clock:
    """Wall time of a call on `device` (CUDA work synchronised before and after)."""

    def __init__(self, device: torch.device):
        self.device = device

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def __call__(self, fn: Callable[[], Any]) -> tuple[float, Any]:
        self.sync()
        began = time.perf_counter()
        result = fn()
        self.sync()
        return time.perf_counter() - began, result


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)} (CUDA)"
    from stages.common import cpu_name

    name = cpu_name()
    flags = ""
    try:
        text = Path("/proc/cpuinfo").read_text()
        flags = ", ".join(flag for flag in ("avx512_bf16", "amx_bf16") if flag in text) or "no AVX512-BF16/AMX"
    except OSError:
        pass
    return f"{name} ({flags})" if flags else name


def cpu_times() -> list[int] | None:
    """The machine's CPU time counters (/proc/stat: user nice system idle iowait irq softirq steal ...)."""
    try:
        with open("/proc/stat") as stat:
            return [int(v) for v in stat.readline().split()[1:]]
    except (OSError, ValueError):
        return None


def machine_share(before: list[int] | None, after: list[int] | None) -> str:
    """Share of the machine's CPU time that was busy, and stolen by the hypervisor, between two readings."""
    if not before or not after or len(before) < 8:
        return "n/a"
    delta = [b - a for a, b in zip(before, after)]
    elapsed = sum(delta[:8]) or 1
    return f"busy {100 * (elapsed - delta[3] - delta[4]) / elapsed:.0f} %, stolen {100 * delta[7] / elapsed:.1f} %"


def _tree_ticks() -> int:
    """CPU clock ticks used by this process and its descendants (live ones, plus the reaped ones' totals)."""
    parents: dict[int, int] = {}
    ticks: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents[int(entry)] = int(fields[1])
        ticks[int(entry)] = sum(int(v) for v in fields[11:15])  # utime stime cutime cstime
    mine, frontier = {os.getpid()}, [os.getpid()]
    while frontier:
        parent = frontier.pop()
        for pid, ppid in parents.items():
            if ppid == parent and pid not in mine:
                mine.add(pid)
                frontier.append(pid)
    return sum(ticks.get(pid, 0) for pid in mine)


class Contention:
    """How much of the machine's CPU other processes used during a block of work (0: none, 1: all of it).

    On a small shared machine another job running at the same time slows multi-threaded work down by far more
    than its share (threads wait for a descheduled peer); `retry` repeats such a block and keeps the least
    contended result."""

    LIMIT = 0.25
    TRIES = 3

    def __init__(self) -> None:
        self.worst = 0.0
        self.retries = 0

    def share(self, fn: Callable[[], Any]) -> tuple[float, Any]:
        before, mine = cpu_times(), _tree_ticks()
        result = fn()
        after, mine = cpu_times(), _tree_ticks() - mine
        if not before or not after or len(before) < 8:
            return 0.0, result
        delta = [b - a for a, b in zip(before, after)]
        elapsed = sum(delta[:8])
        busy = elapsed - delta[3] - delta[4]
        return (max(0.0, busy - mine) / elapsed if elapsed > 0 else 0.0), result

    def retry(self, fn: Callable[[], Any]) -> tuple[Any, float]:
        """fn() until other processes used at most LIMIT of the CPUs during it (at most TRIES runs); returns the
        least contended result and its contention."""
        best = None
        for attempt in range(self.TRIES):
            share, result = self.share(fn)
            if best is None or share < best[1]:
                best = (result, share)
            if share <= self.LIMIT:
                break
            self.retries += 1
            time.sleep(1.0)
        self.worst = max(self.worst, best[1])
        return best

    @staticmethod
    def mark(share: float) -> str:
        return f" !{100 * share:.0f}%" if share > Contention.LIMIT else ""


CONTENTION = Contention()


class Table:
    """stage | measured at | unit rate | projected; printed as rows arrive."""

    WIDTHS = (37, 26, 46, 11)

    def __init__(self) -> None:
        self.stages: list[tuple[str, float]] = []

    def header(self, title: str) -> None:
        print(f"\n{title}")
        names = ("stage", "measured at", "measured unit rate", "projected")
        line = "".join(f"{name:<{w}}" for name, w in zip(names, self.WIDTHS[:-1])) + f"{names[-1]:>{self.WIDTHS[-1]}}"
        print(line)
        print("-" * len(line))

    def row(self, stage: str, measured: str, rate: str, projected: float | None, *, counted: bool = True,
            note: str = "") -> None:
        mark = "  > 1 day" if projected is not None and projected > DAY else ""
        shown = duration(projected) if projected is not None else ""
        print(f"{stage:<{self.WIDTHS[0]}}{measured:<{self.WIDTHS[1]}}{rate:<{self.WIDTHS[2]}}"
              f"{shown:>{self.WIDTHS[3]}}{mark}{('  ' + note) if note else ''}", flush=True)
        if counted and projected is not None:
            self.stages.append((stage, projected))


# ----------------------------------------------------------------------------------------------------------------
# 1. mix


def check_clips(clips_root: Path) -> None:
    missing = [c for c in CORPORA_NEEDED if not (clips_root / c / "train" / "manifest.json").is_file()]
    if missing:
        raise SystemExit(f"no prepared clips for {', '.join(missing)} under {clips_root}; make the demo clips first: "
                         f"./run.sh dvc repro prepare")


def build_sets(params: Params, paper: Params, sizes: dict[str, SplitSizes], clips_root: Path, out: Path,
               table: Table) -> dict[str, Path]:
    """Build every dataset at `sizes` with the mix stage's function and parallel map; rows for mix@<dataset>."""
    from pipeline.mixing.datasheet import build_with_datasheet
    from pipeline.orchestration.settings import load_orchestration
    from pipeline.parallel import parallel_map

    settings = load_orchestration(REPO_ROOT / "params.yaml")
    built = {}
    for name, size in sizes.items():
        folder = out / "mixtures" / name
        with parallel_map(settings.task_runner, settings.resolved_workers, settings.scheduler_address) as pool:
            began = time.perf_counter()
            share, _ = CONTENTION.share(lambda: build_with_datasheet(
                name, with_sizes(params, name, size), clips_root, folder, out / "datasheets" / f"{name}.json",
                progress=False, parallel=pool))
            CONTENTION.worst = max(CONTENTION.worst, share)
            written = time.perf_counter()
            os.sync()  # its files on disk: writeback would otherwise slow the next measurement down
            seconds = time.perf_counter() - began
        count = total(size)
        rate = count / seconds
        target = total(paper.datasets[name].sizes)
        table.row(f"mix@{name}", f"{count:,} mixtures", f"{rate:,.0f} mixtures/s ({seconds:.1f} s, of which "
                  f"flush {seconds - (written - began):.1f} s){Contention.mark(share)}", target / rate, note=f"{target:,} mixtures")
        built[name] = folder
    return built


# ----------------------------------------------------------------------------------------------------------------
# 2. train


def time_training(variant: str, paper: Params, splits: dict[str, Any], device: torch.device, warmup: int,
                  steps: int, precisions: tuple[str, ...], scratch: Path) -> dict[str, dict[str, float]]:
    """Per precision: median step seconds, validation seconds (paper valid size), checkpoint seconds."""
    from pipeline.models.train import build_model, ddp, evaluate_objective, resolve_setup
    from pipeline.models.train.resume import save_checkpoint
    from pipeline.models.train.state import TrainingState

    train, valid = splits["train"], splits["valid"]
    setup = resolve_setup(variant, paper, train.classes, train.clip_samples)
    clock = Clock(device)
    paper_valid = paper.datasets[setup.dataset].sizes.valid
    results = {}
    checkpoint_s = None
    for precision in precisions:
        objective = dataclasses.replace(setup.objective, precision=precision)
        model = build_model(setup.shape, setup.seed).to(device)
        optimizer = torch.optim.Adam(model.parameters(), lr=setup.learning_rate,
                                     fused=device.type in ("cpu", "cuda"))
        generator = torch.Generator(device=device).manual_seed(setup.seed)
        step = ddp.Step(model, objective, optimizer, device)

        def batches():
            epoch = 0
            while True:
                yield from train.batches(setup.batch_size, shuffle=True, seed=setup.seed, epoch=epoch,
                                         drop_last=train.size >= setup.batch_size,
                                         shuffle_groups=setup.shuffle_groups, with_sources=objective.needs_sources)
                epoch += 1

        stream = batches()
        for _ in range(warmup):
            step(next(stream), generator, lambda loss: None)
        seconds, contended = CONTENTION.retry(
            lambda: [clock(lambda: step(next(stream), generator, lambda loss: None))[0] for _ in range(steps)])
        clock(lambda: evaluate_objective(model, valid, objective, setup.batch_size, device))  # decodes the shards
        passes, valid_contended = CONTENTION.retry(  # later validations read the cache
            lambda: [clock(lambda: evaluate_objective(model, valid, objective, setup.batch_size, device))[0]])
        contended = max(contended, valid_contended)
        if checkpoint_s is None:
            path = scratch / f"{variant}.pt"
            best = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
            checkpoint_s = clock(lambda: (save_checkpoint(path, model, optimizer, generator, best, TrainingState(),
                                                          ""), os.sync()))[0]  # the write and its writeback
            path.unlink(missing_ok=True)
        results[precision] = {"step": statistics.median(seconds), "best_step": min(seconds), "contended": contended, "valid": min(passes) / valid.size * paper_valid
                              + checkpoint_s, "valid_mixtures": paper_valid, "checkpoint": checkpoint_s,
                              "max_steps": setup.max_steps, "validate_every": setup.validate_every,
                              "patience": setup.patience, "batch": setup.batch_size}
        del model, optimizer, step
    return results


def time_nmf_training(variant: str, paper: Params, splits: dict[str, Any], device: torch.device, iterations: int
                      ) -> dict[str, float]:
    """An NMF variant: seconds to load its spectrograms and per multiplicative update of the whole training set,
    both measured on the built train split and scaled (linearly: the updates are memory-bound elementwise work
    and matmuls over every spectrogram) to the paper's train size."""
    from pipeline.models import nmf
    from pipeline.models.train.nmf import spectrograms

    config, train = paper.variants[variant], splits["train"]
    clock = Clock(device)
    load_s, (magnitudes, labels) = clock(lambda: spectrograms(train, paper, config.supervision, device))
    generator = torch.Generator(device=device).manual_seed(0)
    rank = paper.nmf.rank
    dictionary = torch.rand(train.num_classes * rank, magnitudes.shape[-1], generator=generator, device=device)
    activations = nmf.initial_activations(len(magnitudes), magnitudes.shape[1], nmf.activation_mask(labels, rank),
                                          generator)

    def update() -> None:
        nonlocal dictionary, activations
        activations = nmf.update_activations(magnitudes, dictionary, activations, paper.nmf.sparsity)
        dictionary = nmf.update_dictionary(magnitudes, dictionary, activations)
        dictionary, activations = nmf.normalise(dictionary, activations)

    update()  # warm-up
    seconds, contended = CONTENTION.retry(lambda: [clock(update)[0] for _ in range(iterations)])
    scale = paper.datasets[config.dataset].sizes.train / train.size
    per_update = statistics.median(seconds) * scale
    updates = paper.nmf.schedule.train_iterations
    del magnitudes, labels, dictionary, activations
    return {"per_update": per_update, "load": load_s * scale, "updates": updates, "contended": contended,
            "total": load_s * scale + updates * per_update}


def train_projection(figures: dict[str, float]) -> tuple[float, float]:
    """(seconds per 1,000 steps with their validations, seconds at the max_steps bound)."""
    validations = math.ceil(figures["max_steps"] / figures["validate_every"])
    per_k = 1000 * figures["step"] + 1000 / figures["validate_every"] * figures["valid"]
    bound = figures["max_steps"] * figures["step"] + validations * figures["valid"]
    return per_k, bound


# ----------------------------------------------------------------------------------------------------------------
# 3. evaluate


def write_models(dataset: str, paper: Params, classes: list[str], clip_samples: int, models_dir: Path) -> None:
    """Untrained model files of the paper's shape for every variant of `dataset` and every DRNN configuration
    trained on it (what the separators load)."""
    from pipeline.models.checkpoint import save_model
    from pipeline.models.drnn import model_file, save_drnn
    from pipeline.models.train import build_model, resolve_setup
    from pipeline.models.train.drnn import drnn_setup

    from pipeline.models.nmf import save_nmf

    for name, settings in paper.drnn.configurations(dataset).items():
        setup = drnn_setup(dataset, name, settings, paper, classes, clip_samples)
        model = build_model(setup.shape, setup.seed)
        save_drnn(model_file(models_dir, name), model, model.state_dict(), classes, {
            "variant": setup.name, "stft": dataclasses.asdict(paper.stft),
            "note": "untrained: bench_paper_profile timing"})

    for variant, config in paper.variants.items():
        if config.dataset != dataset or config.model not in TIMED_MODELS:
            continue
        if config.model == "nmf":
            bins = paper.stft.n_fft // 2 + 1
            save_nmf(models_dir / variant / "model.pt", torch.rand(len(classes) * paper.nmf.rank, bins) / bins,
                     classes, paper.nmf.rank, {"variant": variant, "note": "untrained: bench_paper_profile timing"})
            continue
        setup = resolve_setup(variant, paper, classes, clip_samples)
        model = build_model(setup.shape, setup.seed)
        save_model(models_dir / variant / "model.pt", model, model.state_dict(), {
            "variant": variant, "dataset": dataset, "classes": classes, "sample_rate": paper.audio.sample_rate,
            "clip_samples": clip_samples, "target_rms": paper.audio.target_rms,
            "stft": dataclasses.asdict(paper.stft), "step": 0, "note": "untrained: bench_paper_profile timing"})


def row_group(system) -> tuple[str, str, str, str]:
    return (system.kind, system.signal, system.classes, system.inverse)


def group_label(key: tuple[str, str, str, str]) -> str:
    kind, signal, classes, inverse = key
    return f"{signal}{' ' + inverse if inverse else ''} · {classes}"


def time_evaluation(dataset: str, paper: Params, folder: Path, models_root: Path, device: torch.device,
                    sample: int, iterations: int, pool: Any, workers: int, table: Table,
                    check_full: bool) -> tuple[float, float, str | None]:
    """Time every row kind of `dataset`'s grid on one sample batch; prints its rows; returns the stage's seconds,
    those of its scoring, and the line of the VAD extrapolation check (when `check_full`)."""
    from pipeline.evaluation.systems import systems_for
    from pipeline.features.stft import stft
    from pipeline.metrics.separation import score_many
    from pipeline.models.data import MixtureSplit
    from pipeline.separators.base import BuildContext, Mixtures
    from pipeline.separators.registry import build

    split = MixtureSplit(folder / "test")
    classes = split.classes
    write_models(dataset, paper, classes, split.clip_samples, models_root / dataset)
    os.sync()  # no writeback of the model files while timing
    context = BuildContext(dataset, paper, models_root / dataset, classes, device)
    speech = [c in paper.evaluate.of(dataset).speech for c in classes]
    test_size = paper.datasets[dataset].sizes.test
    paper_iterations = paper.evaluate.schedule.inverse_iterations
    clock = Clock(device)
    batch = next(iter(split.batches(min(sample, split.size), shuffle=False)))
    n = batch.size

    # the DRNN's rows come from params `drnn`, not `variants`; the deep-clustering rows (params `dpcl`) have no
    # paper-shape model files here and are left out (bench_training prints their step rates)
    rows = [r for r in systems_for(dataset, paper) if r.kind != "dpcl" and (
            r.kind == "drnn" or not r.variant or paper.variants[r.variant].model in TIMED_MODELS)]
    groups: dict[tuple, list] = {}
    for system in rows:
        groups.setdefault(row_group(system), []).append(system)

    def run(separator, generator) -> tuple[np.ndarray, np.ndarray]:
        on = batch.to(device)
        mixtures = Mixtures(on.mixture, stft(on.mixture, paper.stft).abs(), on.labels, on.sources)
        separation = separator.separate(mixtures, generator)
        return separation.waveforms.cpu().numpy(), separation.labels.cpu().numpy()

    def items(estimates: np.ndarray) -> list:
        mixture, references, truth = batch.mixture.numpy(), batch.sources.numpy(), batch.labels.numpy()
        out = []
        for i in range(n):
            present = np.flatnonzero(truth[i])
            out.append((f"{dataset}/test/{i:06d}", references[i, present], estimates[i, present], mixture[i],
                        [speech[k] for k in present], [classes[k] for k in present]))
        return out

    def timed_runs(zero, some, generator):
        """(seconds of `zero`, (seconds, result) of `some`), each the best of two runs after a warm-up (another
        process on the machine only ever makes a run slower), and whether contention was seen."""
        run(zero, generator)  # warm-up

        def block():
            fixed = min(clock(lambda: run(zero, generator))[0] for _ in range(2))
            runs = [clock(lambda: run(some, generator)) for _ in range(2)]
            return fixed, min(runs, key=lambda r: r[0])

        return CONTENTION.retry(block)

    chunk = max(1, math.ceil(n / (4 * workers)))  # balanced over the workers (the stage: 16 of 1,875)
    check_line = None
    measured: dict[tuple, dict[str, Any]] = {}
    for key, systems in groups.items():
        system = systems[0]
        separator = build(system, context)
        generator = torch.Generator(device=device).manual_seed(paper.evaluate.seed + zlib.crc32(system.key.encode()))
        entry: dict[str, Any] = {"rows": len(systems), "kind": system.kind, "classes": system.classes,
                                 "mixtures": min(separator.max_mixtures, test_size)}
        if system.signal == "pgd":  # generative priors (seed 004): PGD steps, extrapolated like the VAD
            config = separator.config
            half = max(1, iterations // 2)
            (fixed, (timed, (estimates, _))), entry["contended"] = timed_runs(
                dataclasses.replace(separator, config=dataclasses.replace(config, steps=0)),
                dataclasses.replace(separator, config=dataclasses.replace(config, steps=half)), generator)
            per_step = max(timed - fixed, 0.0) / half
            entry["batch_s"] = fixed + per_step * config.steps
            entry["rate"] = f"{n / entry['batch_s']:.2f} mix/s ({per_step * 1e3:.0f} ms/step x {config.steps})"
        elif system.signal == "inverse":
            config = separator.config
            half = max(1, iterations // 2)
            (fixed, (timed, (estimates, _))), entry["contended"] = timed_runs(
                dataclasses.replace(separator, config=dataclasses.replace(config, iterations=0, tolerance=0.0)),
                dataclasses.replace(separator, config=dataclasses.replace(config, iterations=half, tolerance=0.0)),
                generator)
            per_iteration = max(timed - fixed, 0.0) / half
            entry["batch_s"] = fixed + per_iteration * paper_iterations
            entry["rate"] = (f"{n / entry['batch_s']:.2f} mix/s ({per_iteration * 1e3:.0f} ms/it x "
                             f"{paper_iterations})")
            entry["iterations"] = 2 * half
            if check_full and check_line is None:
                full = dataclasses.replace(separator, config=dataclasses.replace(
                    config, iterations=paper_iterations, tolerance=0.0))
                seconds, _ = clock(lambda: run(full, generator))
                check_line = (f"check of the VAD extrapolation: {dataset} {group_label(key)}, {n} mixtures, "
                              f"{paper_iterations} iterations run: {seconds:.1f} s; extrapolated from 2 runs of {half} "
                              f"iterations: {entry['batch_s']:.1f} s")
        else:
            run(separator, generator)  # warm-up
            runs, entry["contended"] = CONTENTION.retry(lambda: [clock(lambda: run(separator, generator))
                                                                 for _ in range(3)])
            estimates = runs[-1][1][0]
            entry["batch_s"] = statistics.median(elapsed for elapsed, _ in runs)
            entry["rate"] = f"{n / entry['batch_s']:,.1f} mix/s"
        if system.classes == "oracle":
            # Rows that estimate classes are not scored here: an untrained model's class estimates drop true
            # sources (silent estimates, which cost nothing to score); a trained model's mostly do not.
            scored = items(estimates)

            def score() -> float:
                began = time.perf_counter()
                score_many(scored, split.sample_rate, parallel=pool, chunk=chunk)
                return time.perf_counter() - began

            seconds, contended = CONTENTION.retry(score)
            entry["score_s"] = seconds / n
            entry["contended"] = max(entry["contended"], contended)
        measured[key] = entry
        del separator, estimates

    oracle_scores = [e["score_s"] for e in measured.values() if "score_s" in e]
    score_default = statistics.mean(oracle_scores)
    stage_seconds = scoring_seconds = 0.0
    for key, entry in measured.items():
        own = "score_s" in entry
        score_s = entry["score_s"] if own else score_default
        row_seconds = entry["mixtures"] * (entry["batch_s"] / n + score_s)
        stage_seconds += row_seconds * entry["rows"]
        scoring_seconds += entry["mixtures"] * score_s * entry["rows"]
        table.row(f"  {group_label(key)} x{entry['rows']}", f"{n} mixtures, {entry['kind']}",
                  f"sep {entry['rate']}; score {1 / score_s:.1f} mix/s" + ("" if own else "*")
                  + Contention.mark(entry["contended"]),
                  row_seconds * entry["rows"], counted=False, note=f"{entry['mixtures']:,} mixtures/row")
    table.row(f"evaluate@{dataset}", f"{len(rows)} rows", "", stage_seconds)
    return stage_seconds, scoring_seconds, check_line


# ----------------------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda[:N]")
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: every core)")
    parser.add_argument("--quick", action="store_true", help="smoke run: small sets, few steps and iterations")
    parser.add_argument("--scale", type=float, default=0.1,
                        help="d2 and d3 are built at this fraction of their paper sizes (default 0.1)")
    parser.add_argument("--sample", type=int, default=None, help="test mixtures per row kind (default 100, quick 16)")
    parser.add_argument("--iterations", type=int, default=None,
                        help="VAD iterations run per timed inverse row, in two runs (default 20, quick 6)")
    parser.add_argument("--steps", type=int, default=None, help="timed training steps per run (default 10, quick 4)")
    parser.add_argument("--clips", type=Path, default=REPO_ROOT / "data" / "clips", help="prepared clip tables")
    parser.add_argument("--params", type=Path, default=REPO_ROOT / "params.yaml")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (its path is printed)")
    args = parser.parse_args(argv)

    from pipeline.metrics.separation import WORKER_PRELOAD, score_many
    from pipeline.models.data import MixtureSplit
    from pipeline.models.device import pick_device
    from pipeline.orchestration.settings import load_orchestration
    from pipeline.parallel import LocalPool

    check_clips(args.clips)
    device = pick_device(args.device)
    if device.type == "cpu" and args.threads:
        torch.set_num_threads(args.threads)
    params, paper = load_params(args.params), paper_params(args.params)
    sample = args.sample or (16 if args.quick else paper.evaluate.batch_size)
    iterations = args.iterations or (6 if args.quick else 20)
    steps, warmup = (args.steps or 4, 1) if args.quick else (args.steps or 10, 3)
    precisions = tuple(dict.fromkeys((paper.train.precision, "fp32", "bf16")))
    workers = load_orchestration(args.params).resolved_workers

    sizes: dict[str, SplitSizes] = {}
    for name, config in paper.datasets.items():
        if args.quick:
            sizes[name] = SplitSizes(*QUICK_SIZES.get(name, QUICK_OTHER))
        elif name == "d1" or total(config.sizes) <= 5000:
            sizes[name] = config.sizes
        else:
            sizes[name] = SplitSizes(**{s: max(1, round(config.sizes.of(s) * args.scale)) for s in SPLITS})

    threads = f"{torch.get_num_threads()} torch threads" if device.type == "cpu" else "GPU"
    print(f"paper-profile projection on {device_name(device)}, device {device}, {threads}, {os.cpu_count()} CPUs, "
          f"{workers} scoring/mixing workers, load average {os.getloadavg()[0]:.2f}, torch {torch.__version__}"
          + (" [--quick]" if args.quick else ""))
    print(f"paper schedule: train max_steps {paper.train.schedule.max_steps:,}, validate_every "
          f"{paper.train.schedule.validate_every}, batch {paper.train.batch_size}, precision {paper.train.precision}; "
          f"evaluate forward {paper.evaluate.schedule.forward_mixtures:,} / inverse "
          f"{paper.evaluate.schedule.inverse_mixtures:,} mixtures, {paper.evaluate.schedule.inverse_iterations} VAD "
          f"iterations; {len(paper.variants)} variants, datasets {', '.join(paper.datasets)}")

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a kill still removes the temporary folder
    tmp = Path(tempfile.mkdtemp(prefix="bench_paper_profile-"))
    table = Table()
    started, counters = time.perf_counter(), cpu_times()
    try:
        # 1. mix
        table.header("1. mix (projected to each dataset's paper sizes)")
        built = build_sets(params, paper, sizes, args.clips, tmp, table)

        # 2. train
        table.header(f"2. train (batch {paper.train.batch_size}, median of {steps} steps after {warmup} warm-up; valid = one "
                     f"validation over the paper valid split + checkpoint write; projected: max_steps bound | per "
                     f"1,000 steps)")
        splits = {name: {s: MixtureSplit(folder / s, cache_bytes=paper.train.cache_mb << 20)
                         for s in ("train", "valid")} for name, folder in built.items()}
        bound_by_precision: dict[str, float] = {p: 0.0 for p in precisions}
        per_k_by_precision: dict[str, float] = {p: 0.0 for p in precisions}
        (tmp / "checkpoints").mkdir()
        skipped = [v for v, c in paper.variants.items() if c.model not in TIMED_MODELS]
        nmf_seconds = 0.0
        for variant, config in paper.variants.items():
            if config.model == "nmf":
                fig = time_nmf_training(variant, paper, splits[config.dataset], device, 2 if args.quick else 3)
                nmf_seconds += fig["total"]
                table.row(f"train@{variant}", f"{config.dataset}, {config.supervision}",
                          f"{fig['per_update']:.2f} s per update x {fig['updates']}; load {fig['load']:.1f} s"
                          f"{Contention.mark(fig['contended'])}", fig["total"])
                continue
            if config.model not in VAE_KINDS:
                continue
            figures = time_training(variant, paper, splits[config.dataset], device, warmup, steps, precisions,
                                    tmp / "checkpoints")
            for precision, fig in figures.items():
                per_k, bound = train_projection(fig)
                bound_by_precision[precision] += bound
                per_k_by_precision[precision] += per_k
                counted = precision == paper.train.precision
                table.row(f"train@{variant} {precision}", f"{steps} steps, {config.dataset} data",
                          f"{1 / fig['step']:.2f} steps/s (best {1 / fig['best_step']:.2f}); valid "
                          f"{fig['valid']:.1f} s{Contention.mark(fig['contended'])}",
                          bound, counted=counted, note=f"per 1k steps {duration(per_k)}"
                          + ("" if counted else "  (not in TOTAL)"))
        for split_pair in splits.values():
            split_pair.clear()

        # 3. evaluate
        table.header(f"3. evaluate (rows of systems_for(<dataset>, paper params); one row per kind timed on "
                     f"{sample} test mixtures; VAD at {iterations} iterations, scaled to "
                     f"{paper.evaluate.schedule.inverse_iterations})")
        checks, scoring, mixing = [], 0.0, sum(seconds for stage, seconds in table.stages if stage.startswith("mix@"))
        with LocalPool("processes", workers, preload=WORKER_PRELOAD) as pool:
            first = MixtureSplit(built["d1"] / "test")
            warm = next(iter(first.batches(workers, shuffle=False)))
            warm_items = []
            for i in range(warm.size):
                references = warm.sources[i].numpy()[warm.labels[i].numpy() > 0]
                estimates = np.repeat(warm.mixture[i].numpy()[None], len(references), axis=0)
                warm_items.append((f"warm-{i}", references, estimates, warm.mixture[i].numpy(),
                                   [True] * len(references), [f"s{k}" for k in range(len(references))]))
            score_many(warm_items, first.sample_rate, parallel=pool, chunk=1)  # starts workers, imports libraries
            for name in paper.datasets:
                _, score_s, check = time_evaluation(name, paper, built[name], tmp / "models", device, sample,
                                                    iterations, pool, workers, table, check_full=name == "d2")
                scoring += score_s
                if check:
                    checks.append(check)

        # 4. totals
        print()
        counted = sum(seconds for _, seconds in table.stages)
        print(f"TOTAL (mix@d1-d4 + train@{len(paper.variants) - len(skipped)} variants, networks at the max_steps bound, "
              f"{paper.train.precision} + evaluate@d1-d4): {duration(counted)}")
        without_train = counted - bound_by_precision[paper.train.precision] - nmf_seconds
        for precision in precisions:
            if precision != paper.train.precision:
                print(f"TOTAL with train.precision {precision}: "
                  f"{duration(without_train + nmf_seconds + bound_by_precision[precision])}")
        print(f"TOTAL without training: {duration(without_train)}; the NMF variants train in {duration(nmf_seconds)}; "
              f"training of every network variant costs "
              + ", ".join(f"{duration(per_k_by_precision[p])} ({p})" for p in precisions)
              + " per 1,000 steps each, validation included (early stopping decides how many)")
        print(f"of which CPU-bound whatever the device (mix@*, and scoring: BSS-Eval, SI-SDR, PESQ): "
              f"{duration(mixing + scoring)}")
        over = [stage for stage, seconds in table.stages if seconds > DAY]
        print(f"stages over one day on this device: {', '.join(over) if over else 'none'}")
        if skipped:
            print(f"not timed (not in TOTAL): train@{', train@'.join(skipped)}")
        print(f"other processes on this machine: blocks measured again {CONTENTION.retries} times (when others used "
              f"> {100 * Contention.LIMIT:.0f} % of the CPUs); '!N%': still contended after {Contention.TRIES} "
              f"tries (others used N %), so that figure is too slow")
        print("* scored at the mean rate of the dataset's oracle-class rows (an untrained model's class estimates "
              "drop true sources, whose silent estimates would score for free)")
        for line in checks:
            print(line)
        print("not measured (not in TOTAL): fetch@*, prepare@*, scenes@*, evaluate_scenes@*, training_summary, "
              "select_model, report; VAD rows at the full iteration count with early stopping off (upper bounds); "
              f"benchmark wall time {duration(time.perf_counter() - started)}, CPUs during it: "
              f"{machine_share(counters, cpu_times())}, load average {os.getloadavg()[0]:.2f}")
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
