"""Evaluating one dataset: every system of `systems_for` on the test split, scored per source.

Writes, under the output folder: `scores.parquet` (one row per mixture × source × system), `metrics.json`
(flat keys `<dataset>.<training>.<method>.<classes>.<metric>`, sorted, rounded), `examples.npz` (audio of a
few test mixtures for the HTML report) and `timings.json` (kept out of the metrics: times vary between runs).
"""
from __future__ import annotations

import json
import logging
import pickle
import shutil
import time
import zlib
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from pipeline.config import Params
from pipeline.evaluation.systems import System, systems_for
from pipeline.features.stft import stft
from pipeline.features.wiener import wiener_separate
from pipeline.inference.forward import forward_separate
from pipeline.inference.inverse import InverseConfig, all_combinations, inverse_exhaustive, inverse_joint
from pipeline.metrics.separation import score_many, summarise
from pipeline.models.checkpoint import load_model
from pipeline.models.device import pick_device
from pipeline.models.data import Batch, MixtureSplit
from pipeline.models.vae import NonNegativeVAE
from pipeline.orchestration.fanout import Fanout, current_fanout
from pipeline.shards import write_json

log = logging.getLogger(__name__)

METRICS = ("sdr", "sir", "sar", "si_sdr", "si_sdri", "pesq")
SCORE_CHUNK = 64  # mixtures per scoring task when scoring fans out
SYSTEM_COLUMNS = ("system", "training", "method", "classes")


@dataclass(frozen=True)
class Separator:
    """Runs one system on batches of the test split."""

    system: System
    model: NonNegativeVAE | None
    params: Params
    combinations: torch.Tensor | None
    device: torch.device

    def __call__(self, batch: Batch, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Return waveform estimates (B, K, L) and the class labels used (B, K)."""
        system, spec = self.system, self.params.stft
        if system.signal == "mixture":
            return batch.mixture.unsqueeze(1).expand_as(batch.sources), batch.labels
        if system.signal == "oracle":
            return wiener_separate(stft(batch.sources, spec).abs(), batch.mixture, spec), batch.labels
        magnitudes = stft(batch.mixture, spec).abs()
        oracle_labels = batch.labels if system.classes == "oracle" else None
        if system.signal == "forward":
            result = forward_separate(self.model, magnitudes, oracle_labels)
        elif oracle_labels is not None:
            result = inverse_exhaustive(self.model, magnitudes, oracle_labels.unsqueeze(1), self._inverse(), generator)
        elif system.inverse == "exhaustive":
            result = inverse_exhaustive(self.model, magnitudes, self.combinations, self._inverse(), generator)
        else:
            result = inverse_joint(self.model, magnitudes, self._inverse(), generator)
        return wiener_separate(result.sources, batch.mixture, spec), result.labels

    def _inverse(self) -> InverseConfig:
        settings, schedule = self.params.evaluate.inverse, self.params.evaluate.schedule
        variant = self.params.variants[self.system.variant]
        beta = variant.beta if variant.beta is not None else self.params.train.beta
        return InverseConfig(iterations=schedule.inverse_iterations, learning_rate=settings.learning_rate,
                             restarts=settings.restarts, tolerance=settings.tolerance, window=settings.window,
                             beta=beta)


def evaluate_dataset(name: str, params: Params, data_dir: Path, models_dir: Path, out_dir: Path, *,
                     workers: int = 1, progress: bool = True, fanout: Fanout | None = None) -> dict[str, float]:
    """Evaluate dataset `name`; returns its flat metrics (also written to `out_dir/metrics.json`).

    Scoring (BSS-Eval, SI-SDR, PESQ: most of the time) runs on `workers` local processes, or, given a `fanout`
    (default: the one installed with `use_fanout`), as one task per chunk of `SCORE_CHUNK` mixtures; the scores
    are the same either way.
    """
    fanout = fanout or current_fanout()
    split = MixtureSplit(Path(data_dir) / "test")
    if split.size == 0:
        raise ValueError(f"the test split of {data_dir} is empty; evaluation needs test mixtures")
    config = params.datasets[name]
    if split.classes != list(config.class_names):
        raise ValueError(f"{data_dir} has classes {split.classes}, params.yaml defines {list(config.class_names)} "
                         f"for {name}; re-run mix@{name}")
    speech = [c in params.evaluate.of(name).speech for c in split.classes]
    device = pick_device(params.train.device)
    combinations = all_combinations(len(split.classes), sorted(config.mixture_sizes)).to(device)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    frames, timings, examples = [], {}, _Examples(params.evaluate.examples, split.classes)
    by_variant: dict[str, list[System]] = defaultdict(list)
    for system in systems_for(name, params):
        by_variant[system.variant].append(system)
    for variant, systems in by_variant.items():
        model = _load(models_dir, name, variant, split.classes, device) if variant else None
        for system in systems:
            separator = Separator(system, model, params, combinations, device)
            limit = (params.evaluate.schedule.inverse_mixtures if system.signal == "inverse"
                     else params.evaluate.schedule.forward_mixtures)
            started = time.perf_counter()
            scorer = _Scorer(split.sample_rate, workers, fanout, out_dir / ".scoring")
            frame = _score_system(name, separator, split, limit, speech, scorer, examples, progress)
            timings[system.key] = {"seconds": round(time.perf_counter() - started, 2), "mixtures": int(
                frame["mixture_id"].nunique())}
            frames.append(frame)
    scores = pd.concat(frames, ignore_index=True)
    scores.to_parquet(out_dir / "scores.parquet", index=False)
    metrics = flat_metrics(name, scores)
    write_json(out_dir / "metrics.json", metrics)
    write_json(out_dir / "timings.json", timings)
    examples.save(out_dir / "examples.npz", split.sample_rate)
    return metrics


def summary_table(scores: pd.DataFrame) -> pd.DataFrame:
    """One row per system: failure counts, medians and means of each metric, label accuracy, mixtures."""
    table = summarise(scores, list(SYSTEM_COLUMNS))
    per_mixture = scores.drop_duplicates(["system", "mixture_id"])
    extra = per_mixture.groupby("system").agg(mixtures=("mixture_id", "size"),
                                              label_accuracy=("labels_correct", "mean"))
    table = table.merge(extra, left_on="system", right_index=True)
    order = {system: i for i, system in enumerate(dict.fromkeys(scores["system"]))}
    return table.sort_values("system", key=lambda s: s.map(order)).reset_index(drop=True)


def flat_metrics(dataset: str, scores: pd.DataFrame) -> dict[str, float]:
    """metrics.json entries: `<dataset>.<system>.<statistic>`, rounded to 4 decimals; NaN becomes null."""
    metrics: dict[str, Any] = {}
    for row in summary_table(scores).to_dict("records"):
        for column, value in row.items():
            if column in SYSTEM_COLUMNS:
                continue
            value = float(value)
            metrics[f"{dataset}.{row['system']}.{column}"] = None if value != value else round(value, 4)
    return dict(sorted(metrics.items()))


def _load(models_dir: Path, dataset: str, variant: str, classes: list[str],
          device: torch.device) -> NonNegativeVAE:
    model, info = load_model(Path(models_dir) / variant / "model.pt", device)
    if info["classes"] != classes:
        raise ValueError(f"model {variant} was trained on classes {info['classes']}, but the {dataset} test split "
                         f"has {classes}; retrain it (dvc repro train@{variant})")
    return model


def _score_system(dataset: str, separator: Separator, split: MixtureSplit, limit: int, speech: list[bool],
                  scorer: "_Scorer", examples: "_Examples", progress: bool) -> pd.DataFrame:
    system = separator.system
    generator = torch.Generator(device=separator.device).manual_seed(
        separator.params.evaluate.seed + zlib.crc32(system.key.encode()))
    items, correct = [], {}
    index = 0
    batches = split.batches(separator.params.evaluate.batch_size, shuffle=False)
    for batch in tqdm(batches, desc=f"{dataset} {system.label}", unit="batch", disable=not progress,
                      total=-(-min(limit, split.size) // separator.params.evaluate.batch_size)):
        batch = _take(batch, limit - index)
        if batch.size == 0:
            break
        estimates, labels = separator(batch.to(separator.device), generator)
        estimates, labels = estimates.cpu().numpy(), labels.cpu().numpy()
        mixture, references, truth = batch.mixture.numpy(), batch.sources.numpy(), batch.labels.numpy()
        for i in range(batch.size):
            mixture_id = f"{dataset}/test/{index + i:06d}"
            present = np.flatnonzero(truth[i])
            items.append((mixture_id, references[i, present], estimates[i, present], mixture[i],
                          [speech[k] for k in present], [split.classes[k] for k in present]))
            correct[mixture_id] = bool(np.array_equal(labels[i] > 0.5, truth[i] > 0.5))
            examples.offer(index + i, system, mixture[i], references[i], estimates[i], truth[i], labels[i])
        index += batch.size
    frame = scorer(items, system.key)
    frame.insert(0, "system", system.key)
    frame.insert(1, "training", system.training)
    frame.insert(2, "method", system.method)
    frame.insert(3, "classes", system.classes)
    frame["labels_correct"] = frame["mixture_id"].map(correct)
    return frame


@dataclass(frozen=True)
class _Scorer:
    """Scores items locally, or as fan-out tasks that each read a chunk file and write a scores file."""

    sample_rate: int
    workers: int
    fanout: Fanout | None
    scratch: Path

    def __call__(self, items: list, key: str) -> pd.DataFrame:
        if self.fanout is None:
            return score_many(items, self.sample_rate, workers=self.workers)
        self.scratch.mkdir(parents=True, exist_ok=True)
        jobs = []
        for number, start in enumerate(range(0, len(items), SCORE_CHUNK)):
            path = self.scratch / f"{key}-{number:04d}.pkl"
            path.write_bytes(pickle.dumps(items[start:start + SCORE_CHUNK]))  # our own file, read back below
            jobs.append((str(path), self.sample_rate))
        try:
            parts = list(self.fanout.map(score_chunk_job, jobs, task="score",
                                         names=[f"{key}-{i}" for i in range(len(jobs))]))
            return pd.concat([pd.read_parquet(part) for part in parts], ignore_index=True)
        finally:
            shutil.rmtree(self.scratch, ignore_errors=True)


def score_chunk_job(job: tuple[str, int]) -> str:
    """Fan-out task: score the items pickled at job[0]; write and return the path of their scores (Parquet)."""
    path, sample_rate = Path(job[0]), job[1]
    frame = score_many(pickle.loads(path.read_bytes()), sample_rate, workers=1)
    out = path.with_suffix(".parquet")
    frame.to_parquet(out, index=False)
    return str(out)


def _take(batch: Batch, count: int) -> Batch:
    if count >= batch.size:
        return batch
    return Batch(batch.mixture[:count], batch.labels[:count], batch.sources[:count])


class _Examples:
    """Audio of the first few test mixtures, for every system, kept for the HTML report."""

    def __init__(self, count: int, classes: list[str]):
        self.count, self.classes = count, classes
        self.arrays: dict[str, np.ndarray] = {}
        self.index: dict[str, Any] = {"classes": classes, "mixtures": {}, "systems": {}}

    def offer(self, position: int, system: System, mixture: np.ndarray, references: np.ndarray,
              estimates: np.ndarray, truth: np.ndarray, labels: np.ndarray) -> None:
        if position >= self.count:
            return
        tag = f"m{position}"
        if tag not in self.index["mixtures"]:
            self.arrays[f"{tag}/mixture"] = mixture
            self.arrays[f"{tag}/references"] = references
            self.index["mixtures"][tag] = {"labels": truth.astype(int).tolist()}
        self.arrays[f"{tag}/{system.key}"] = estimates
        self.index["systems"][system.key] = system.label
        self.index["mixtures"][tag][system.key] = labels.astype(int).tolist()

    def save(self, path: Path, sample_rate: int) -> None:
        self.index["sample_rate"] = sample_rate
        np.savez_compressed(path, index=np.array(json.dumps(self.index, sort_keys=True)), **self.arrays)
