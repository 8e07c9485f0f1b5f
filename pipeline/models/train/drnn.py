"""Training the DRNN baseline (seed 002) on one dataset: the main configuration and, where the profile says, its
ablations (params.yaml `drnn`), one after the other in one process (one DVC stage per dataset: the demo budget
has no room for a process and a stage per configuration).

Each configuration runs the VAE's training loop (`TrainingLoop`: Adam, batches of `train.batch_size`, validation
every `drnn.schedule.validate_every` steps, early stopping after `train.patience` validations without a better
plain reconstruction term, the best weights kept, resume from `scratch_root`, seeded) with the DRNN's network and
objective, and writes `<out_dir>/<name>/model.pt` (out_dir = data/models/<dataset>/drnn), a self-describing DRNN
model file.
"""
from __future__ import annotations

import logging
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Sequence

from pipeline.config import DrnnSettings, Params
from pipeline.models.device import pick_device
from pipeline.models.drnn import DrnnObjective, DrnnShape, save_drnn, variant_name
from pipeline.models.train.callbacks import Callback, installed
from pipeline.models.train.loop import TrainingLoop
from pipeline.models.train.resume import scratch_folder
from pipeline.models.train.run import TrainingResult, data_checksums, training_splits
from pipeline.models.train.setup import TrainingSetup

log = logging.getLogger(__name__)
NOT_LOGGED = ("valid_kl", "valid_classification")  # the VAE's terms; the DRNN has neither


def drnn_setup(dataset: str, name: str, settings: DrnnSettings, params: Params, classes: list[str],
               clip_samples: int) -> TrainingSetup:
    """The training setup of configuration `name` on `dataset`: the DRNN network and objective with the `train`
    machinery (batch size, learning rate, patience, shuffling) and the DRNN's own schedule and seed."""
    expected = list(params.datasets[dataset].class_names)
    if classes != expected:
        raise ValueError(f"dataset {dataset} on disk has classes {classes}, but params.yaml defines {expected}; "
                         f"re-run its mix stage (dvc repro mix@{dataset})")
    config, train = params.drnn, params.train
    shape = DrnnShape(num_classes=len(classes), bins=params.stft.bins, width=config.width,
                      context=settings.context, recurrent=settings.recurrent, mask=settings.mask)
    objective = DrnnObjective(loss=settings.loss, discriminative=settings.discriminative, stft=params.stft)
    return TrainingSetup(name=variant_name(dataset, name), dataset=dataset, shape=shape, objective=objective,
                         batch_size=train.batch_size, learning_rate=train.learning_rate, patience=train.patience,
                         max_steps=config.schedule.max_steps, validate_every=config.schedule.validate_every,
                         seed=config.seed, shuffle_groups=train.shuffle_groups)


def train_drnn(dataset: str, params: Params, data_dir: Path, out_dir: Path, scratch_root: Path,
               progress: bool = True, callbacks: Sequence[Callback] = ()) -> list[TrainingResult]:
    """Train every DRNN configuration of `dataset` (`params.drnn.configurations`) on `data_dir`; writes
    `out_dir/<name>/model.pt` for each and returns their results in order."""
    train, valid = training_splits(data_dir, params.train.cache_mb << 20)
    device = pick_device(params.train.device)
    checksums = data_checksums(data_dir)
    results = []
    for name, settings in params.drnn.configurations(dataset).items():
        setup = drnn_setup(dataset, name, settings, params, train.classes, train.clip_samples)
        scratch = scratch_folder(scratch_root, setup.name, setup.fingerprint(checksums))
        loop = TrainingLoop(setup, train, valid, device, scratch / "last.pt", progress, 0, 1,
                            (*installed(), *callbacks))
        loop.run()
        curve = [{k: v for k, v in row.items() if k not in NOT_LOGGED} for row in loop.state.curve]
        save_drnn(Path(out_dir) / name / "model.pt", loop.model, loop.best_state, train.classes, {
            "variant": setup.name, "dataset": dataset, "supervision": "source",
            "sample_rate": train.sample_rate, "clip_samples": train.clip_samples,
            "target_rms": params.audio.target_rms, "stft": asdict(params.stft),
            "objective": {"loss": settings.loss, "discriminative": settings.discriminative},
            "train": {k: v for k, v in asdict(setup).items() if k not in ("shape", "objective")},
            "step": loop.state.best_step, "valid_reconstruction": loop.state.best_valid, "data_shards": checksums})
        shutil.rmtree(scratch, ignore_errors=True)
        results.append(TrainingResult(variant=setup.name, curve=curve, summary=loop.summary(),
                                      timing=loop.timing()))
        log.info("%s: best valid reconstruction %.5g at step %d of %d (%.1f s)", setup.name, loop.state.best_valid,
                 loop.state.best_step, loop.state.step, loop.state.train_seconds)
    return results
