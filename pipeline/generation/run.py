"""One variant's generation: samples per class, a latent walk, their audio, and the measures of them.

Written to `out`: `samples/<class>-NN.wav` (the first `gallery` per class), `interpolation/step-NN.wav`,
`gallery.json` (what those files are) and `metrics.json` (keys `generate.<variant>.…`; a class with fewer than two
real clips in either split gets no Fréchet distance).
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from pipeline.config import GenerateConfig, StftConfig
from pipeline.features.stft import magnitude
from pipeline.generation.frechet import frechet_distance
from pipeline.generation.griffinlim import griffin_lim, spectral_convergence
from pipeline.generation.judge import train_judge
from pipeline.generation.real import class_sources
from pipeline.generation.sample import class_latents, decode_class, draw_latents, interpolate
from pipeline.models.checkpoint import load_model

log = logging.getLogger(__name__)


def generate_variant(variant: str, model_path: Path, reference_path: Path, train_dir: Path, test_dir: Path,
                     settings: GenerateConfig, spec: StftConfig, out: Path) -> dict[str, float]:
    """Generate and measure one variant; returns the metrics it wrote."""
    model, info = load_model(model_path)
    reference, ref_info = load_model(reference_path)
    classes, rate, length = list(info["classes"]), int(info["sample_rate"]), int(info["clip_samples"])
    if ref_info["classes"] != classes or model.shape.bins != spec.bins:
        raise ValueError(f"{model_path}: classes {classes} and {model.shape.bins} bins; the reference "
                         f"{reference_path} has {ref_info['classes']}, stft.n_fft gives {spec.bins} bins: they must agree")
    generator = torch.Generator().manual_seed(settings.seed)
    train_waves, train_labels = class_sources(train_dir)
    test_waves, test_labels = class_sources(test_dir)
    train_mags, test_mags = magnitude(train_waves, spec), magnitude(test_waves, spec)
    judge = train_judge(train_mags, train_labels)

    n = settings.samples
    z = draw_latents(len(classes) * n, model.shape.latent, settings.temperature, generator)
    drawn = torch.cat([decode_class(model, z[k * n:(k + 1) * n], k) for k in range(len(classes))])
    waves = griffin_lim(drawn, length, spec, settings.griffin_lim_iterations, generator)
    heard = magnitude(waves, spec)
    labels = torch.arange(len(classes)).repeat_interleave(n)
    predicted = judge.predict(heard)

    prefix = f"generate.{variant}"
    metrics = {f"{prefix}.judge_real_accuracy": judge.accuracy(test_mags, test_labels),
               f"{prefix}.spectral_convergence": float(spectral_convergence(drawn, waves, spec).mean())}
    distances, real_distances = [], []
    for k, name in enumerate(classes):
        mine, real = labels == k, test_labels == k
        metrics[f"{prefix}.{name}.accuracy"] = float((predicted[mine] == k).float().mean())
        trained = train_labels == k
        if min(int(real.sum()), int(trained.sum()), n) < 2:
            log.warning("%s, class %s: fewer than 2 real test or training clips (or samples); no Fréchet distance",
                        variant, name)
            continue
        features = class_latents(reference, heard[mine], k).numpy()
        real_features = class_latents(reference, test_mags[real], k).numpy()
        train_features = class_latents(reference, train_mags[trained][:n], k).numpy()
        distances.append(frechet_distance(features, real_features))
        real_distances.append(frechet_distance(train_features, real_features))
        metrics[f"{prefix}.{name}.frechet"] = distances[-1]
    metrics[f"{prefix}.accuracy"] = float((predicted == labels).float().mean())
    if distances:
        metrics[f"{prefix}.frechet"] = float(np.mean(distances))
        metrics[f"{prefix}.frechet_real"] = float(np.mean(real_distances))  # real train vs test clips: the floor

    out.mkdir(parents=True, exist_ok=True)
    index: dict = {"variant": variant, "classes": classes, "sample_rate": rate, "samples": {}, "interpolation": {}}
    for k, name in enumerate(classes):
        for i in range(settings.gallery):
            path = _write(out / "samples" / f"{name}-{i:02d}.wav", waves[k * n + i], rate)
            index["samples"].setdefault(name, []).append(
                {"file": path.relative_to(out).as_posix(), "judged": classes[int(predicted[k * n + i])]})
    first = torch.nonzero(test_labels == 0).flatten()[:2]
    if len(first) == 2:
        walk = interpolate(model, test_mags[first[0]], test_mags[first[1]], 0, settings.interpolation_steps)
        walk_waves = griffin_lim(walk, length, spec, settings.griffin_lim_iterations, generator)
        index["interpolation"] = {"class": classes[0], "files": [
            _write(out / "interpolation" / f"step-{i:02d}.wav", wave, rate).relative_to(out).as_posix()
            for i, wave in enumerate(walk_waves)]}
    (out / "gallery.json").write_text(json.dumps(index, indent=2) + "\n")
    metrics = {key: round(value, 6) for key, value in sorted(metrics.items())}
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics


def _write(path: Path, wave: torch.Tensor, rate: int) -> Path:
    """A 16-bit WAV, scaled down only where it would clip."""
    path.parent.mkdir(parents=True, exist_ok=True)
    samples = wave.double().numpy()
    peak = float(np.max(np.abs(samples), initial=0.0))
    sf.write(str(path), samples * (0.99 / peak if peak > 0.99 else 1.0), rate, subtype="PCM_16", format="WAV")
    return path
