"""Training one variant: resolve its setup, run the loop (resuming a killed run), write the model file."""
from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Sequence

import torch

from pipeline.config import Params
from pipeline.models.checkpoint import save_model
from pipeline.models.data import MixtureSplit
from pipeline.models.device import pick_device
from pipeline.models.train import ddp
from pipeline.models.train.callbacks import Callback, installed
from pipeline.models.train.loop import TrainingLoop
from pipeline.models.train.resume import scratch_folder
from pipeline.models.train.setup import resolve_setup


@dataclass(frozen=True)
class TrainingResult:
    """What a run gives its reports: the curve (one row per validation), the summary (the same on every run of
    the same setup, data and device) and the timing (wall-clock; different on every run). `writer`: whether this
    process is the one that writes outputs (the only process, or rank 0)."""

    variant: str
    curve: list[dict[str, float]]
    summary: dict[str, Any]
    timing: dict[str, Any]
    writer: bool = True


def train_variant(name: str, params: Params, data_dir: Path, out_dir: Path, scratch_root: Path,
                  progress: bool = True, callbacks: Sequence[Callback] = ()) -> TrainingResult:
    """Train variant `name` on `data_dir` (a mixture dataset) and write `out_dir/model.pt` (rank 0 only).

    `callbacks` run after each step and validation, after those installed for the process (`callbacks.install`).
    Variants of model `nmf` learn dictionaries instead (`pipeline.models.train.nmf`; one process, no resume:
    they take seconds).
    """
    if params.variants[name].model == "nmf":
        from pipeline.models.train.nmf import train_nmf  # deferred: it builds on this module's TrainingResult

        return train_nmf(name, params, Path(data_dir), Path(out_dir), progress)
    train_split, valid_split = training_splits(data_dir, params.train.cache_mb << 20, params.variants[name].solo_share)
    setup = resolve_setup(name, params, train_split.classes, train_split.clip_samples)
    rank, world_size = ddp.world()
    if world_size > 1 and min(setup.batch_size, train_split.size) < world_size:
        raise ValueError(f"{name}: batches of {min(setup.batch_size, train_split.size)} mixtures cannot be split "
                         f"between {world_size} processes; use fewer processes or a larger batch_size")
    device = ddp.rank_device(pick_device(params.train.device), world_size)
    checksums = data_checksums(data_dir)
    scratch = scratch_folder(scratch_root, name, setup.fingerprint(checksums, world_size))
    loop = TrainingLoop(setup, train_split, valid_split, device, scratch / "last.pt", progress and rank == 0,
                        rank, world_size, (*installed(), *callbacks))
    loop.run()
    result = TrainingResult(variant=name, curve=list(loop.state.curve), summary=loop.summary(),
                            timing=loop.timing(), writer=rank == 0)
    if rank != 0:
        return result  # rank 0 writes the outputs
    info = {"variant": name, "dataset": setup.dataset, "classes": train_split.classes,
            "sample_rate": train_split.sample_rate, "clip_samples": train_split.clip_samples,
            "target_rms": params.audio.target_rms, "mixture_rms": mixture_level(train_split),
            "stft": asdict(params.stft), "objective": {k: v for k, v in asdict(setup.objective).items() if k != "stft"},
            "train": {k: v for k, v in asdict(setup).items() if k not in ("shape", "objective")},
            "step": loop.state.best_step, "valid_reconstruction": loop.state.best_valid,
            "data_shards": checksums, "solo_segments": solo_segments(train_split, valid_split)}
    save_model(Path(out_dir) / "model.pt", loop.model, loop.best_state, info)
    shutil.rmtree(scratch, ignore_errors=True)
    return result


def training_splits(data_dir: Path, cache_bytes: int = 1 << 30, solo_share: float = 0.0
                    ) -> tuple[MixtureSplit, MixtureSplit]:
    """The train and valid splits of a mixture dataset (decoded data kept up to `cache_bytes` each); ValueError
    naming a split that is empty.

    `solo_share`: the share of solo segments among the rows served (0: the mixtures of two or more classes only,
    the paper's data); each split serves all its mixtures and as many of its solo segments as the share needs.
    """
    splits = []
    for split_name in ("train", "valid"):
        directory = Path(data_dir) / split_name
        split = MixtureSplit(directory, cache_bytes, solo_rows=0)
        if solo_share > 0:
            split.serve_solo(round(split.multi_class_rows * solo_share / (1.0 - solo_share)))
        if split.size == 0:
            raise ValueError(f"the {split_name} split of {data_dir} is empty; training needs mixtures in it")
        splits.append(split)
    return splits[0], splits[1]


def solo_segments(train: MixtureSplit, valid: MixtureSplit) -> dict[str, int]:
    """How many solo segments each split served (a model file's record of what it learnt from)."""
    return {"train": train.solo_served, "valid": valid.solo_served}


def data_checksums(data_dir: Path) -> list[str]:
    """The sha256 of every train and valid shard of a mixture dataset (from its manifests): a model's provenance."""
    return [shard["sha256"] for split in ("train", "valid")
            for shard in json.loads((Path(data_dir) / split / "manifest.json").read_text())["shards"]]


def mixture_level(split: MixtureSplit, count: int = 2048) -> float:
    """Median RMS of the first `count` mixtures of a split: the level the model learnt to separate at (two
    sources at the clip level sum to about 3 dB above it). Provenance: `enhance` scales its windows to the clip
    level `target_rms`, which measured better on the test scenes (README, "Dialogue enhancement")."""
    levels, seen = [], 0
    for batch in split.batches(256, shuffle=False, with_sources=False):
        levels.append(batch.mixture.square().mean(dim=-1).sqrt())
        seen += batch.size
        if seen >= count:
            break
    return round(float(torch.cat(levels)[:count].median()), 6)
