"""Training the partition-based separators of seed 003 on one dataset (params.yaml `dpcl`): DPCL, SCE and DPCL++,
one after the other in one process (one DVC stage per dataset), DPCL++ fine-tuned from DPCL's best weights.

Each runs the VAE's training loop (`TrainingLoop`: Adam, batches of `train.batch_size`, validation every
`validate_every` steps, early stopping after `train.patience` validations, the best weights kept, resume, seeded)
with the network of `pipeline.models.dpcl` and its objective, and writes `<out_dir>/<system>/model.pt`
(out_dir = data/models/<dataset>/dpcl), a self-describing model file.
"""
from __future__ import annotations

import logging
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import torch

from pipeline.config import Params, StftConfig
from pipeline.features.stft import stft
from pipeline.models.data import Batch
from pipeline.models.device import pick_device
from pipeline.models.dpcl import (DpclShape, EmbeddingSeparator, affinity_loss, attractor_targets, cluster_slots,
                                  contrastive_loss, ideal_binary_mask, permutation_invariant_l2, save_dpcl,
                                  silence_weights, variant_name)
from pipeline.models.objective import LossTerms
from pipeline.models.train.callbacks import Callback, installed
from pipeline.models.train.loop import TrainingLoop
from pipeline.models.train.resume import scratch_folder
from pipeline.models.train.run import TrainingResult, data_checksums, training_splits
from pipeline.models.train.setup import TrainingSetup

log = logging.getLogger(__name__)
NOT_LOGGED = ("valid_kl", "valid_classification")   # the VAE's terms; these systems have neither
VALIDATION_SEED = 0                                   # DPCL++'s k-means start in validation (no loop generator)


def source_magnitudes(batch: Batch, spec: StftConfig, like: torch.Tensor) -> torch.Tensor:
    """|STFT| of each present source (B, K, T, F), zeros for absent classes (no STFT spent on them)."""
    size, classes, length = batch.sources.shape
    present = batch.labels.flatten() > 0.5
    targets = like.new_zeros(size * classes, *like.shape[1:])
    targets[present] = stft(batch.sources.reshape(size * classes, length)[present], spec).abs()
    return targets.view(size, classes, *like.shape[1:])


@dataclass(frozen=True)
class DpclObjective:
    """The objective of `system`: dpcl (affinity), sce (contrastive, negative sampling) or dpcl++ (PIT L2 on the
    enhanced masks' magnitudes); `terms` reports it as the reconstruction (validation, early stopping)."""

    system: str
    stft: StftConfig
    silence_db: float
    negatives: int = 0
    negative_weight: float = 0.0
    beta: float = 1.0
    soft_steps: int = 0
    hard_steps: int = 1

    @property
    def needs_sources(self) -> bool:
        return True

    def terms(self, model: EmbeddingSeparator, batch: Batch, generator: torch.Generator | None = None
              ) -> LossTerms:
        if batch.sources is None:
            raise ValueError("these objectives need the sources; the batch was read without them")
        if model.shape.system != self.system:
            raise ValueError(f"objective {self.system} for a {model.shape.system} network")
        mixture = stft(batch.mixture, self.stft).abs()                                # (B, T, F)
        targets = source_magnitudes(batch, self.stft, mixture)                        # (B, K, T, F)
        weights = silence_weights(mixture, self.silence_db)
        embeddings = model.embed(mixture)                                             # (B, T, F, E)
        size = mixture.shape[0]
        points, flat_weights = embeddings.reshape(size, -1, embeddings.shape[-1]), weights.reshape(size, -1)
        if self.system == "dpcl":
            ibm = ideal_binary_mask(targets, batch.labels).reshape(size, -1, targets.shape[1])
            loss = affinity_loss(points, ibm, flat_weights)
        elif self.system == "sce":
            dominant = ideal_binary_mask(targets, batch.labels).argmax(dim=-1).reshape(size, -1)
            loss = contrastive_loss(points, model.identities, dominant, batch.labels, flat_weights, self.negatives,
                                    self.negative_weight, generator)
        elif self.system == "danet":
            order, active = cluster_slots(batch.labels)
            owner = ideal_binary_mask(targets, batch.labels)                          # (B, T, F, K)
            owner = torch.gather(owner, 3, order[:, None, None, :].expand(-1, *owner.shape[1:3], -1))  # slots
            attractors = attractor_targets(points, owner.reshape(size, -1, owner.shape[-1]), flat_weights)
            masks = model.attractor_masks(embeddings, attractors, active)
            ideal = owner.permute(0, 3, 1, 2)                                         # (B, C, T, F)
            loss = ((ideal - masks) * mixture.unsqueeze(1)).square().mean(dim=(-2, -1)).sum(dim=1)
        else:
            order, active = cluster_slots(batch.labels)
            slots = torch.gather(targets, 1, order[:, :, None, None].expand(-1, -1, *targets.shape[2:]))
            slots = slots * active[:, :, None, None]
            if generator is None:
                generator = torch.Generator(device=mixture.device).manual_seed(VALIDATION_SEED)
            masks = model.enhanced_masks(mixture, embeddings, weights, active, self.beta, self.soft_steps,
                                         self.hard_steps, generator)
            loss = permutation_invariant_l2(masks * mixture.unsqueeze(1), slots, active)
        total = loss.mean()
        zero = total.new_zeros(())
        return LossTerms(total=total, reconstruction=total, kl=zero, classification=zero)


def dpcl_setup(dataset: str, system: str, params: Params, classes: list[str]) -> TrainingSetup:
    """The training setup of `system` on `dataset`: its network and objective with the `train` machinery."""
    expected = list(params.datasets[dataset].class_names)
    if classes != expected:
        raise ValueError(f"dataset {dataset} on disk has classes {classes}, but params.yaml defines {expected}; "
                         f"re-run its mix stage (dvc repro mix@{dataset})")
    config, train = params.dpcl, params.train
    plus = system == "dpcl++"
    shape = DpclShape(system=system, bins=params.stft.bins, hidden=config.hidden, layers=config.layers,
                      embedding=config.embedding, identities=len(classes) if system == "sce" else 0,
                      enhance_hidden=config.plus.hidden if plus else 0, enhance_layers=config.plus.layers if plus else 0)
    objective = DpclObjective(system=system, stft=params.stft, silence_db=config.silence_db,
                              negatives=config.sce.negatives, negative_weight=config.sce.weight,
                              beta=config.plus.beta, soft_steps=config.plus.soft_steps,
                              hard_steps=config.kmeans.steps)
    schedule = config.finetune if plus else config.schedule
    return TrainingSetup(name=variant_name(dataset, system), dataset=dataset, shape=shape, objective=objective,
                         batch_size=config.batch_size, learning_rate=train.learning_rate, patience=train.patience,
                         max_steps=schedule.max_steps, validate_every=schedule.validate_every, seed=config.seed,
                         shuffle_groups=train.shuffle_groups)


def train_dpcl(dataset: str, params: Params, data_dir: Path, out_dir: Path, scratch_root: Path,
               progress: bool = True, callbacks: Sequence[Callback] = ()) -> list[TrainingResult]:
    """Train every system of `params.dpcl.systems` on `data_dir`; writes `out_dir/<system>/model.pt` for each and
    returns their results in order. DPCL++ starts from DPCL's best weights (its embedding network)."""
    train, valid = training_splits(data_dir, params.train.cache_mb << 20)
    device = pick_device(params.train.device)
    checksums = data_checksums(data_dir)
    results, trained = [], {}
    for system in params.dpcl.systems:
        setup = dpcl_setup(dataset, system, params, train.classes)
        fingerprint = setup.fingerprint(checksums + ([trained["dpcl"]["fingerprint"]] if system == "dpcl++" else []))
        scratch = scratch_folder(scratch_root, setup.name, fingerprint)
        loop = TrainingLoop(setup, train, valid, device, scratch / "last.pt", progress, 0, 1,
                            (*installed(), *callbacks))
        if system == "dpcl++" and loop.state.step == 0:          # not when resuming a killed fine-tuning
            loop.model.load_state_dict(trained["dpcl"]["state"], strict=False)
            loop.best_state = {k: v.detach().to("cpu", copy=True) for k, v in loop.model.state_dict().items()}
        loop.run()
        trained[system] = {"state": loop.best_state, "fingerprint": fingerprint}
        curve = [{k: v for k, v in row.items() if k not in NOT_LOGGED} for row in loop.state.curve]
        save_dpcl(Path(out_dir) / system / "model.pt", loop.model, loop.best_state, train.classes, {
            "variant": setup.name, "dataset": dataset, "supervision": "source",
            "sample_rate": train.sample_rate, "clip_samples": train.clip_samples,
            "target_rms": params.audio.target_rms, "stft": asdict(params.stft),
            "objective": {k: v for k, v in asdict(setup.objective).items() if k != "stft"},
            "kmeans": asdict(params.dpcl.kmeans), "fine_tuned_from": "dpcl" if system == "dpcl++" else None,
            "train": {k: v for k, v in asdict(setup).items() if k not in ("shape", "objective")},
            "step": loop.state.best_step, "valid_reconstruction": loop.state.best_valid, "data_shards": checksums})
        shutil.rmtree(scratch, ignore_errors=True)
        results.append(TrainingResult(variant=setup.name, curve=curve, summary=loop.summary(),
                                      timing=loop.timing()))
        log.info("%s: best valid loss %.5g at step %d of %d (%.1f s)", setup.name, loop.state.best_valid,
                 loop.state.best_step, loop.state.step, loop.state.train_seconds)
    return results
