"""Evaluating one dataset: every system of `systems_for` on the test split, scored per source.

Writes, under the output folder: `scores.parquet` (one row per mixture × source × system), `metrics.json`
(flat keys `<dataset>.<training>.<method>.<classes>.<metric>`, sorted, rounded), `examples.npz` (audio of a
few test mixtures for the HTML report), `systems.json` (each row's separator kind and metadata: supervision,
class estimate, whether its outputs need a permutation search, and a note on how it was applied where its kind
gives one). Rows whose outputs come in no class order are scored with a permutation search (best mean SIR) and
have no label accuracy. Per-system wall times go to `timings` when given (outside the outputs: times vary
between runs, the outputs never do). Each row is separated by the separator its kind builds
(`pipeline.separators`); the loop itself knows no system.
"""
from __future__ import annotations

import json
import logging
import math
import time
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from pipeline.config import Params
from pipeline.evaluation.summary import flat_metrics, summary_table
from pipeline.evaluation.systems import System, systems_for
from pipeline.features.stft import stft
from pipeline.metrics.separation import mixture_scores, score_many
from pipeline.models.data import Batch, MixtureSplit
from pipeline.models.device import pick_device
from pipeline.parallel import Inline, ParallelMap
from pipeline.separators.base import BuildContext, Mixtures, Separator
from pipeline.separators.registry import build
from pipeline.shards import write_json

log = logging.getLogger(__name__)

__all__ = ["evaluate_dataset", "flat_metrics", "summary_table"]


def evaluate_dataset(name: str, params: Params, data_dir: Path, models_dir: Path, out_dir: Path, *,
                     parallel: ParallelMap | None = None, progress: bool = True,
                     timings: Path | None = None) -> dict[str, float]:
    """Evaluate dataset `name`; returns its flat metrics (also written to `out_dir/metrics.json`).

    Every row of `systems_for` is built by its separator kind from `models_dir` (data/models/<dataset>).
    Scoring (BSS-Eval, SI-SDR, PESQ: most of the time) runs on `parallel` (default `Inline()`); the scores are
    the same whichever map runs it. `systems.json` records each row's kind and separator metadata.
    """
    parallel = parallel or Inline()
    split = MixtureSplit(Path(data_dir) / "test")
    if split.size == 0:
        raise ValueError(f"the test split of {data_dir} is empty; evaluation needs test mixtures")
    config = params.datasets[name]
    if split.classes != list(config.class_names):
        raise ValueError(f"{data_dir} has classes {split.classes}, params.yaml defines {list(config.class_names)} "
                         f"for {name}; re-run mix@{name}")
    speech = [c in params.evaluate.of(name).speech for c in split.classes]
    context = BuildContext(name, params, Path(models_dir), split.classes, pick_device(params.train.device))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    frames, per_system, described, known = [], {}, {}, {}
    examples = _Examples(params.evaluate.examples, split.classes)
    for system in systems_for(name, params):
        separator = build(system, context)
        described[system.key] = _describe(system, separator)
        started = time.perf_counter()
        frame = _score_system(name, system, separator, context, split, speech, parallel, examples, progress, known)
        known.update(mixture_scores(frame))  # the mixture's own scores: the same for every system
        per_system[system.key] = {"seconds": round(time.perf_counter() - started, 2), "mixtures": int(
            frame["mixture_id"].nunique())}
        frames.append(frame)
    scores = pd.concat(frames, ignore_index=True)
    scores.to_parquet(out_dir / "scores.parquet", index=False)
    metrics = flat_metrics(name, scores)
    write_json(out_dir / "metrics.json", metrics)
    write_json(out_dir / "systems.json", described)
    if timings is not None:
        write_json(Path(timings), per_system)
    examples.save(out_dir / "examples.npz", split.sample_rate)
    return metrics


def _describe(system: System, separator: Separator) -> dict[str, Any]:
    """The systems.json entry of a row: its label, kind, model and what its separator declares."""
    meta = separator.metadata
    entry = {"label": system.label, "kind": system.kind, "variant": system.variant, "supervision": meta.supervision,
             "class_estimate": meta.classes, "permutation": meta.permutation, "max_mixtures": separator.max_mixtures}
    note = getattr(separator, "note", "")
    if note:
        entry["note"] = note  # how a system was applied, where its kind says (e.g. the classical baselines)
    return entry


def _score_system(dataset: str, system: System, separator: Separator, context: BuildContext, split: MixtureSplit,
                  speech: list[bool], parallel: ParallelMap, examples: "_Examples", progress: bool,
                  known: dict[str, list[tuple[float, float]]]) -> pd.DataFrame:
    params, device, limit = context.params, context.device, separator.max_mixtures
    generator = torch.Generator(device=device).manual_seed(params.evaluate.seed + zlib.crc32(system.key.encode()))
    items, correct = [], {}
    permuted = separator.metadata.permutation
    index = 0
    batches = split.batches(params.evaluate.batch_size, shuffle=False)
    for batch in tqdm(batches, desc=f"{dataset} {system.label}", unit="batch", disable=not progress,
                      total=-(-min(limit, split.size) // params.evaluate.batch_size)):
        batch = _take(batch, limit - index)
        if batch.size == 0:
            break
        on_device = batch.to(device)
        mixtures = Mixtures(on_device.mixture, stft(on_device.mixture, params.stft).abs(), on_device.labels,
                            on_device.sources)
        separation = separator.separate(mixtures, generator)
        estimates, labels = separation.waveforms.cpu().numpy(), separation.labels.cpu().numpy()
        mixture, references, truth = batch.mixture.numpy(), batch.sources.numpy(), batch.labels.numpy()
        for i in range(batch.size):
            mixture_id = f"{dataset}/test/{index + i:06d}"
            present = np.flatnonzero(truth[i])
            # outputs in no class order sit in the present classes' slots; the search matches them to the sources
            items.append((mixture_id, references[i, present], estimates[i, present], mixture[i],
                          [speech[k] for k in present], [split.classes[k] for k in present]))
            correct[mixture_id] = math.nan if permuted else float(np.array_equal(labels[i] > 0.5, truth[i] > 0.5))
            if not permuted:  # the players show output k as class k
                examples.offer(index + i, system, mixture[i], references[i], estimates[i], truth[i], labels[i])
        index += batch.size
    frame = score_many(items, split.sample_rate, parallel=parallel, known=known, permutation=permuted)
    frame.insert(0, "system", system.key)
    frame.insert(1, "training", system.training)
    frame.insert(2, "method", system.method)
    frame.insert(3, "classes", system.classes)
    frame["labels_correct"] = frame["mixture_id"].map(correct)
    return frame


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
