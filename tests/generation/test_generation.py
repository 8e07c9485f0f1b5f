"""Generation (seed 001): Griffin-Lim, sampling, the Fréchet distance, the judge and a tiny end-to-end run."""
from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf
import torch

from pipeline.config import GenerateConfig, GenerateVariant, StftConfig
from pipeline.features.stft import magnitude
from pipeline.generation.frechet import frechet_distance
from pipeline.generation.griffinlim import griffin_lim, spectral_convergence
from pipeline.generation.judge import train_judge
from pipeline.generation.run import generate_variant
from pipeline.generation.sample import decode_class, draw_latents, interpolate
from pipeline.models.checkpoint import load_model
from pipeline.reports.generation import generation_claims, generation_section, merge_generation_metrics, \
    read_generations
from pipeline.testing.datasets import build_tiny_dataset, tiny_training_raw
from pipeline.testing.models import save_tiny_vae

SPEC = StftConfig()


def _tones(batch: int = 3, length: int = 4300) -> torch.Tensor:
    t = torch.arange(length) / 8600
    freqs = torch.tensor([220.0, 440.0, 1250.0][:batch])[:, None]
    return torch.sin(2 * torch.pi * freqs * t) * torch.hann_window(length) + 0.3 * torch.sin(2 * torch.pi * 3 * freqs * t)


def test_griffin_lim_converges_over_iterations():
    waves = _tones()
    target = magnitude(waves, SPEC)
    errors = [float(spectral_convergence(target, griffin_lim(target, waves.shape[1], SPEC, n,
                                                              torch.Generator().manual_seed(0)), SPEC).mean())
              for n in (0, 4, 16, 64)]
    assert errors[0] > 0.5                                   # random phase: far from consistent
    assert all(a > b for a, b in zip(errors, errors[1:])), errors
    assert errors[-1] < 0.2 * errors[0], errors


def test_griffin_lim_checks_its_input():
    with pytest.raises(ValueError, match="F=201"):
        griffin_lim(torch.ones(2, 10, 100), 2000, SPEC, 2)


def test_sampling_is_deterministic_for_a_seed(tmp_path):
    model, _ = load_model(save_tiny_vae(tmp_path / "m.pt", ["a", "b"]))
    draw = lambda seed: decode_class(model, draw_latents(5, 4, 0.7, torch.Generator().manual_seed(seed)), 1)
    assert torch.equal(draw(3), draw(3))
    assert not torch.equal(draw(3), draw(4))
    z = draw_latents(20000, 4, 0.5, torch.Generator().manual_seed(0))
    assert abs(float(z.std()) - 0.5) < 0.01                   # the temperature scales N(0, I)
    with pytest.raises(ValueError, match="temperature"):
        draw_latents(2, 4, 0.0, torch.Generator())


def test_interpolation_ends_decode_the_two_clips(tmp_path):
    model, _ = load_model(save_tiny_vae(tmp_path / "m.pt", ["a", "b"]))
    clips = magnitude(_tones(2, 8600), SPEC)
    walk = interpolate(model, clips[0], clips[1], 0, 4)
    mu = model.encode(clips)[0][:, 0]
    assert walk.shape == (4, 44, 201)
    torch.testing.assert_close(walk[[0, -1]], decode_class(model, mu, 0))
    with pytest.raises(ValueError, match="steps >= 2"):
        interpolate(model, clips[0], clips[1], 0, 1)


def test_frechet_distance_against_a_hand_computed_case():
    # a: points (±1, 0) twice -> mean 0, cov diag(4/3, 0); b: shifted by (3, 4), points (0, ±2) -> cov diag(0, 16/3)
    a = np.array([[1.0, 0.0], [-1.0, 0.0], [1.0, 0.0], [-1.0, 0.0]])
    b = np.array([[3.0, 6.0], [3.0, 2.0], [3.0, 6.0], [3.0, 2.0]])
    # |Δμ|² = 9 + 16 = 25; tr Σa + tr Σb = 4/3 + 16/3; Σa Σb = 0 -> its root has trace 0
    assert frechet_distance(a, b) == pytest.approx(25 + 20 / 3, abs=1e-4)
    c = np.array([[2.0, 0.0], [0.0, 0.0], [2.0, 0.0], [0.0, 0.0]])  # a shifted by (1, 0): same covariance
    assert frechet_distance(a, c) == pytest.approx(1.0, abs=1e-6)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="same D"):
        frechet_distance(a, np.ones((3, 3)))


def test_judge_tells_real_classes_apart():
    g = torch.Generator().manual_seed(0)
    low = _tones(1, 8600).repeat(12, 1) + 0.01 * torch.randn(12, 8600, generator=g)
    high = torch.sin(2 * torch.pi * 3000 * torch.arange(8600) / 8600).repeat(12, 1) + 0.01 * torch.randn(12, 8600, generator=g)
    mags = magnitude(torch.cat([low, 5 * high]), SPEC)       # levels differ too: the judge ignores level
    labels = torch.arange(2).repeat_interleave(12)
    judge = train_judge(mags, labels)
    assert judge.accuracy(magnitude(torch.cat([3 * low[:4], 0.2 * high[:4]]), SPEC),
                          torch.arange(2).repeat_interleave(4)) == 1.0


def test_generate_end_to_end_on_a_tiny_model(tmp_path):
    params, dataset = build_tiny_dataset(tmp_path)
    model_path = save_tiny_vae(tmp_path / "model.pt", list(params.datasets["dt"].class_names))
    settings = GenerateConfig(variants={"dt-source": GenerateVariant(dataset="dt")}, reference="dt-source",
                              samples=4, gallery=2, griffin_lim_iterations=3, interpolation_steps=3, seed=1)
    out = tmp_path / "gen"
    metrics = generate_variant("dt-source", model_path, model_path, dataset / "train", dataset / "test", settings,
                               params.stft, out)
    classes = params.datasets["dt"].class_names
    for name in classes:
        assert 0.0 <= metrics[f"generate.dt-source.{name}.accuracy"] <= 1.0
        assert metrics[f"generate.dt-source.{name}.frechet"] >= 0.0
    assert json.loads((out / "metrics.json").read_text()) == metrics
    gallery = json.loads((out / "gallery.json").read_text())
    assert [len(gallery["samples"][name]) for name in classes] == [2] * len(classes)
    assert len(gallery["interpolation"]["files"]) == 3
    audio, rate = sf.read(str(out / gallery["samples"][classes[0]][0]["file"]))
    assert rate == 8600 and audio.shape == (8600,) and np.abs(audio).max() > 0
    again = generate_variant("dt-source", model_path, model_path, dataset / "train", dataset / "test", settings,
                             params.stft, tmp_path / "again")
    assert again == metrics                                   # seeded: the same numbers


def test_generation_reaches_the_report(tmp_path):
    raw = tiny_training_raw()
    raw["generate"] = {"variants": {"dt-source": {"dataset": "dt"}, "dt-ae": {"dataset": "dt"}},
                       "reference": "dt-source", "samples": 3, "gallery": 1, "griffin_lim_iterations": 2,
                       "interpolation_steps": 2}
    params, dataset = build_tiny_dataset(tmp_path, raw)
    classes = list(params.datasets["dt"].class_names)
    paths = {name: save_tiny_vae(tmp_path / f"{name}.pt", classes, seed=seed)
             for seed, name in enumerate(("dt-source", "dt-ae"))}
    for name, path in paths.items():
        generate_variant(name, path, paths["dt-source"], dataset / "train", dataset / "test", params.generate,
                         params.stft, tmp_path / "generation" / name)
    generations = read_generations(tmp_path / "generation", params)
    metrics = merge_generation_metrics(generations)
    assert {"generate.dt-source.frechet", "generate.dt-ae.frechet", "generate.dt-ae.zero.accuracy"} <= set(metrics)
    claims = generation_claims(params, metrics)
    assert [c[3] for c in claims] == ["generate.dt-source.accuracy", "generate.dt-source.frechet"]
    html = generation_section(params, generations, tmp_path / "out" / "site", tmp_path / "out")
    assert html.count("<audio") == 2 * (len(classes) + 2)    # per variant: one sample per class, a 2-step walk
    assert (tmp_path / "out" / "site" / "generation" / "dt-ae" / "samples" / "zero-00.png").is_file()


def test_the_command_line_runs_on_any_model_file(tmp_path, capsys):
    from pipeline.generation.__main__ import main

    raw = tiny_training_raw()
    raw["generate"] = {"variants": {"dt-source": {"dataset": "dt"}}, "reference": "dt-source", "samples": 2,
                       "gallery": 1, "griffin_lim_iterations": 1, "interpolation_steps": 2}
    params, dataset = build_tiny_dataset(tmp_path, raw)
    model = save_tiny_vae(tmp_path / "mine" / "model.pt", list(params.datasets["dt"].class_names))
    main([str(model), "--mixtures", str(dataset), "--out", str(tmp_path / "gen"), "--params",
          str(tmp_path / "params.yaml")])
    assert '"generate.mine.zero.accuracy"' in capsys.readouterr().out
    assert (tmp_path / "gen" / "samples" / "zero-00.wav").is_file()
