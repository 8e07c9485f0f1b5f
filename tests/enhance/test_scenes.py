"""`enhance` on long scenes: every model on every scene, the streaming check, the metrics keys, the registry."""
from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

import pipeline.enhance.scenes as scenes_module
from pipeline.config import SceneEnhance, ScenesConfig
from pipeline.enhance.scenes import Candidate, evaluate_scenes, listening_scenes, scene_metrics
from pipeline.mixing.scenes import build_scenes, load_manifest, read_scene
from pipeline.models.checkpoint import save_model
from pipeline.models.train import build_model
from pipeline.models.vae import ModelShape
from pipeline.testing.datasets import DIGITS, build_tiny_dataset

SCENES = ScenesConfig(datasets=("dt",), seconds=3.0, per_combination=1, ratios_db=(0.0, 6.0),
                      layouts=((44100, 1), (44100, 2)), pause_seconds=(0.2, 0.5), loudness_lufs=-23.0,
                      max_peak=0.99, seed=1)
SETTINGS = SceneEnhance(block_seconds=1.0, stream_samples=700)


@pytest.fixture(scope="module")
def scene_setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("scene-eval")
    params, _ = build_tiny_dataset(root)
    build_scenes("dt", params.datasets["dt"], SCENES, ["zero"], root / "clips", {"sc09": root / "raw"},
                 root / "scenes")
    candidates = []
    for seed in (1, 2):  # two tiny untrained models: enough to run every path
        model = build_model(ModelShape(num_classes=3, filters=(8, 8, 16), hidden=32, latent=4), seed=seed)
        path = root / f"m{seed}.pt"
        save_model(path, model, model.state_dict(), {"classes": list(DIGITS), "target_rms": 0.05,
                                                     "stft": {"n_fft": 400, "hop_length": 200},
                                                     "sample_rate": 8600, "clip_samples": 8600})
        candidates.append(Candidate(f"dt-m{seed}", path, ("zero",), "vae-forward"))
    return root, candidates


def test_every_model_runs_on_every_scene_and_streams_like_the_command(scene_setup):
    root, candidates = scene_setup
    keep = listening_scenes(load_manifest(root / "scenes"))
    scores, kept = evaluate_scenes("dt", root / "scenes", candidates, SETTINGS, keep=keep, progress=False)
    assert len(scores) == len(candidates) * 4 and set(scores["model"]) == {"dt-m1", "dt-m2"}
    assert keep == ["s000_0dB_44k_mono"] and set(kept) == {("dt-m1", keep[0]), ("dt-m2", keep[0])}
    finite = scores[["dialogue_si_sdr", "remix_fidelity", "mixture_remix_fidelity", "ratio_change_lu"]]
    assert np.isfinite(finite.to_numpy()).all()
    np.testing.assert_allclose(scores["dialogue_si_sdri"],
                               scores["dialogue_si_sdr"] - scores["mixture_dialogue_si_sdr"])
    streamed = scores[scores["scene_id"] == keep[0]]["rtf_streaming"]
    assert (streamed > 0).all() and scores[scores["scene_id"] != keep[0]]["rtf_streaming"].isna().all()
    output = kept[("dt-m1", keep[0])]
    assert output.output.shape == output.dialogue.shape == (int(SCENES.seconds * 44100), 1)
    metrics = scene_metrics("dt", scores)
    assert "scenes.dt.dt-m1.0dB.dialogue_si_sdri" in metrics and "scenes.dt.dt-m2.+6dB.remix_fidelity" in metrics
    assert not any("rtf" in key for key in metrics)  # real-time factors vary between runs: never metrics


def test_a_streamed_output_that_differs_from_the_offline_one_stops_the_evaluation(scene_setup, monkeypatch):
    root, candidates = scene_setup
    monkeypatch.setattr(scenes_module, "STREAM_TOLERANCE", -1.0)  # any difference, even 0, is too much
    with pytest.raises(RuntimeError, match="streamed output differs from the offline one"):
        evaluate_scenes("dt", root / "scenes", candidates[:1], SETTINGS, keep=["s000_0dB_44k_mono"],
                        progress=False)


def test_the_registry_picks_the_default_model_by_its_0db_scene_score(tmp_path):
    from pipeline.enhance.registry import SELECTION, SELECTION_WITHOUT_SCENES, build_registry
    from tests.reports.conftest import report_params, write_fake_evaluation

    figures = {"d2-source-vae": 1.0, "d2-class-vae": 4.0, "d3-source-vae": 2.0, "d3-class-vae": -1.0}
    params = report_params()
    params = dataclasses.replace(params, variants={k: v for k, v in params.variants.items()
                                                   if k in figures or k.split("-")[1] == "nmf"},
                                 generate=None)  # generation names d1 variants, dropped here
    for seed, dataset in enumerate(sorted(params.datasets)):
        write_fake_evaluation(tmp_path / "evaluation" / dataset, dataset, params, seed)
    for dataset in params.scenes.datasets:
        rows = [{"model": variant, "ratio_db": ratio, "dialogue_si_sdri": figure + (ratio != 0.0) * 50 + jitter}
                for variant, figure in figures.items() if variant.startswith(dataset)
                for ratio in (-6.0, 0.0, 6.0) for jitter in (-0.5, 0.0, 0.5)]
        (tmp_path / "scenes" / dataset).mkdir(parents=True)
        pd.DataFrame(rows).to_parquet(tmp_path / "scenes" / dataset / "scores.parquet")
    registry = build_registry(params, tmp_path / "evaluation", tmp_path / "models", tmp_path / "scenes")
    assert registry["selection"] == SELECTION and registry["default"] == "d2-class-vae"
    assert {v: e["scene_dialogue_si_sdri_0dB"] for v, e in registry["models"].items()} == figures
    without = build_registry(params, tmp_path / "evaluation", tmp_path / "models")
    assert without["selection"] == SELECTION_WITHOUT_SCENES
    assert all("scene_dialogue_si_sdri_0dB" not in e for e in without["models"].values())


def test_enhance_warns_when_its_model_made_dialogue_worse_on_the_scenes(scene_setup, tmp_path, caplog):
    import json

    from pipeline.enhance.cli import main as enhance_main
    from pipeline.testing.audio import tone, write_wav

    _, candidates = scene_setup
    registry = {"default": "m", "selection": "test", "models": {"m": {
        "path": str(candidates[0].path), "dataset": "dt", "classes": list(DIGITS), "dialogue_classes": ["zero"],
        "dialogue_si_sdri_median": 1.0, "scene_dialogue_si_sdri_0dB": -1.5}}}
    (tmp_path / "registry.json").write_text(json.dumps(registry))
    source = write_wav(tmp_path / "in.wav", tone(0.5, 8600), 8600)
    with caplog.at_level("WARNING"):
        assert enhance_main([str(source), "-o", str(tmp_path / "o.wav"), "--registry",
                             str(tmp_path / "registry.json"), "--quiet"]) == 0
    assert "made dialogue worse than doing nothing" in caplog.text and "-1.5 dB" in caplog.text


def test_stereo_scenes_are_enhanced_as_the_command_enhances_stereo_its_mid(scene_setup):
    """The scene evaluation follows `enhance`'s default plan: a stereo scene's model hears the mid, its dialogue
    estimate goes to both channels, and the remix is the stems at the gains."""
    root, candidates = scene_setup
    stereo = next(e for e in load_manifest(root / "scenes")["scenes"] if e["channels"] == 2)
    dialogue, background, rate = read_scene(root / "scenes" / stereo["scene_id"])
    mixture = dialogue + background
    enhanced, _ = scenes_module.enhance_array(candidates[0].masker(), mixture, rate, SETTINGS, 44100)
    np.testing.assert_array_equal(enhanced.dialogue[:, 0], enhanced.dialogue[:, 1])
    np.testing.assert_allclose(enhanced.dialogue + enhanced.background, mixture, atol=1e-6)
    gain = 10 ** (SETTINGS.dialogue_gain_db / 20)
    np.testing.assert_allclose(enhanced.output, gain * enhanced.dialogue + enhanced.background, atol=1e-5)
