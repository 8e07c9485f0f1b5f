"""Training an NMF variant (`model: nmf`): dictionaries by multiplicative updates, the best by validation.

Source supervision: every isolated training source is one spectrogram labelled with its class alone, so each
class's atoms learn only from that class. Class supervision: the training mixtures with their labels (a mixture
may use the atoms of its labelled classes only): the weak supervision of `class-vae`, for NMF. Full-batch
updates over the whole training split (the demo's fits in memory many times over; the paper's d1, 30,000
source spectrograms of 44 x 201, needs ~1 GB). `nmf.validations` times, the validation split's activations are
fitted with the dictionaries fixed (as at test time) and the dictionaries with the lowest divergence are kept.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

import torch
from tqdm import tqdm

from pipeline.config import Params
from pipeline.features.stft import stft
from pipeline.models import nmf
from pipeline.models.data import MixtureSplit
from pipeline.models.device import pick_device
from pipeline.models.train.run import TrainingResult, data_checksums, solo_segments, training_splits

log = logging.getLogger(__name__)
BATCH = 256  # mixtures per STFT batch while loading


def spectrograms(split: MixtureSplit, params: Params, supervision: str, device: torch.device
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Magnitudes (N, T, F) and labels (N, K) to learn from: the isolated sources (source supervision) or the
    mixtures (class supervision)."""
    magnitudes, labels = [], []
    eye = torch.eye(split.num_classes)
    for batch in split.batches(BATCH, shuffle=False, with_sources=supervision == "source"):
        if supervision == "class":
            magnitudes.append(stft(batch.mixture.to(device), params.stft).abs())
            labels.append(batch.labels)
            continue
        mixture_index, class_index = torch.nonzero(batch.labels > 0.5, as_tuple=True)
        sources = batch.sources[mixture_index, class_index]  # (present sources, L)
        magnitudes.append(stft(sources.to(device), params.stft).abs())
        labels.append(eye[class_index])
    return torch.cat(magnitudes), torch.cat(labels).to(device)


def train_nmf(name: str, params: Params, data_dir: Path, out_dir: Path, progress: bool = True) -> TrainingResult:
    """Learn variant `name`'s dictionaries on `data_dir` and write `out_dir/model.pt`; returns curve and summary."""
    variant, config = params.variants[name], params.nmf
    schedule = config.schedule
    device = pick_device(params.train.device)
    train, valid = training_splits(data_dir, solo_share=variant.solo_share)
    generator = torch.Generator(device=device).manual_seed(config.seed)
    magnitudes, labels = spectrograms(train, params, variant.supervision, device)
    valid_magnitudes, valid_labels = spectrograms(valid, params, variant.supervision, device)
    classes, rank = train.num_classes, config.rank
    bins = magnitudes.shape[-1]
    dictionary = torch.rand(classes * rank, bins, generator=generator, device=device) + 0.1
    dictionary = dictionary / dictionary.sum(dim=1, keepdim=True)
    mask = nmf.activation_mask(labels, rank)
    activations = nmf.initial_activations(len(magnitudes), magnitudes.shape[1], mask, generator)
    checkpoints = _validation_steps(schedule.train_iterations, config.validations)
    elements = magnitudes[0].numel()
    curve, best = [], (float("inf"), 0, dictionary)
    started = time.perf_counter()
    for step in tqdm(range(1, schedule.train_iterations + 1), desc=f"nmf {name}", disable=not progress):
        activations = nmf.update_activations(magnitudes, dictionary, activations, config.sparsity)
        dictionary = nmf.update_dictionary(magnitudes, dictionary, activations)
        dictionary, activations = nmf.normalise(dictionary, activations)
        if step in checkpoints:
            train_loss = float(nmf.divergence(magnitudes, activations @ dictionary).mean()) / elements
            valid_loss = _valid_divergence(valid_magnitudes, valid_labels, dictionary, rank, schedule.test_iterations,
                                           config.seed, config.sparsity, device) / elements
            if not (train_loss == train_loss and valid_loss == valid_loss):
                raise FloatingPointError(f"{name}: NMF divergence is NaN at iteration {step}")
            curve.append({"step": step, "epoch": float(step), "train_loss": train_loss, "valid_loss": valid_loss,
                          "valid_reconstruction": valid_loss, "seconds": round(time.perf_counter() - started, 2)})
            if valid_loss < best[0]:
                best = (valid_loss, step, dictionary.clone())
    seconds = time.perf_counter() - started
    best_valid, best_step, best_dictionary = best
    checksums = data_checksums(data_dir)
    nmf.save_nmf(Path(out_dir) / "model.pt", best_dictionary, train.classes, rank, {
        "variant": name, "dataset": variant.dataset, "supervision": variant.supervision,
        "sample_rate": train.sample_rate, "clip_samples": train.clip_samples, "target_rms": params.audio.target_rms,
        "stft": {"n_fft": params.stft.n_fft, "hop_length": params.stft.hop_length},
        "nmf": {"rank": rank, "sparsity": config.sparsity, "seed": config.seed,
                "train_iterations": schedule.train_iterations, "test_iterations": schedule.test_iterations},
        "step": best_step, "valid_reconstruction": best_valid, "data_shards": checksums,
        "solo_segments": solo_segments(train, valid)})
    summary = {"best_step": best_step, "best_valid_reconstruction": round(best_valid, 6),
               "steps": schedule.train_iterations, "epochs": float(schedule.train_iterations),
               "stopped_by": "iterations", "device": device.type, "parameters": best_dictionary.numel()}
    timing = {"train_seconds": round(seconds, 2),
              "mixtures_per_second": round(len(magnitudes) * schedule.train_iterations / max(seconds, 1e-9), 1),
              "device": device.type}
    log.info("%s: %d atoms x %d classes from %d spectrograms, valid divergence %.5f at iteration %d (%.1f s)",
             name, rank, classes, len(magnitudes), best_valid, best_step, seconds)
    return TrainingResult(variant=name, curve=curve, summary=summary, timing=timing)


def _validation_steps(iterations: int, count: int) -> set[int]:
    """`count` iterations spread evenly up to the last one (always included)."""
    return {max(1, round(iterations * (k + 1) / count)) for k in range(min(count, iterations))}


def _valid_divergence(magnitudes: torch.Tensor, labels: torch.Tensor, dictionary: torch.Tensor, rank: int,
                      iterations: int, seed: int, sparsity: float, device: torch.device) -> float:
    """Mean divergence per validation spectrogram, activations fitted with the dictionary fixed (fixed seed)."""
    generator = torch.Generator(device=device).manual_seed(seed + 1)
    mask = nmf.activation_mask(labels, rank)
    activations = nmf.fit_activations(magnitudes, dictionary, mask, iterations, generator, sparsity)
    return float(nmf.divergence(magnitudes, activations @ dictionary).mean())
