"""The long-scene part of the report: metrics merged under `scenes.`, the table, the figure and the players."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import soundfile as sf

from pipeline.enhance.clip_check import ClipCheck
from pipeline.enhance.scenes import scene_metrics, scene_summary
from pipeline.reports.site import build_report
from tests.reports.conftest import report_params, write_fake_evaluation

SCENE = "s002_0dB_44k_mono"


def _fake_scene_evaluation(root, dataset, rate=8000):
    rng = np.random.default_rng(4)
    rows = [{"dataset": dataset, "model": model, "scene_id": f"s{i:03d}", "ratio_db": ratio, "sample_rate": rate,
             "channels": 1, "dialogue_si_sdr": rng.normal(), "mixture_dialogue_si_sdr": 0.0,
             "dialogue_si_sdri": level + rng.normal(), "background_si_sdr": 1.0, "mixture_background_si_sdr": 0.0,
             "background_si_sdri": 1.0, "remix_fidelity": 11.0, "mixture_remix_fidelity": 9.5,
             "remix_fidelity_gain": 1.5, "ratio_change_lu": 2.5 + rng.normal()}
            for model, level in ((f"{dataset}-source-vae", 4.0), (f"{dataset}-class-vae", -1.0))
            for i, ratio in enumerate((-6.0, 0.0, 6.0))]
    scores = pd.DataFrame(rows)
    folder = root / "scene_evaluation" / dataset
    (folder / "examples" / SCENE).mkdir(parents=True)
    scores.to_parquet(folder / "scores.parquet")
    clips = {f"{dataset}-source-vae": ClipCheck(alone=np.array([5.0, 6.0, 7.0]), enhance=np.array([6.0, 6.5, 8.0]))}
    (folder / "metrics.json").write_text(json.dumps(scene_metrics(dataset, scores, clips)))
    (root / "tables").mkdir(exist_ok=True)
    scene_summary(scores).to_csv(root / "tables" / f"scenes_{dataset}.csv", index=False)
    tone = 0.1 * np.sin(2 * np.pi * 300 * np.arange(rate) / rate)[:, None]
    (root / "scenes" / dataset / SCENE).mkdir(parents=True)
    sf.write(root / "scenes" / dataset / SCENE / "dialogue.flac", tone, rate, subtype="PCM_24")
    sf.write(root / "scenes" / dataset / SCENE / "background.flac", tone[::-1], rate, subtype="PCM_24")
    sf.write(folder / "examples" / SCENE / f"{dataset}-source-vae.output.flac", 2 * tone, rate, subtype="PCM_24")


def test_scene_evaluations_join_the_metrics_the_page_and_the_figures(tmp_path):
    params = report_params()
    write_fake_evaluation(tmp_path / "evaluation" / "d2", "d2", params, 0)
    for dataset in params.scenes.datasets:
        _fake_scene_evaluation(tmp_path, dataset)
    written = build_report(params, tmp_path / "evaluation", tmp_path / "out", datasets=["d2"],
                           tables_dir=tmp_path / "tables", scene_evaluation_dir=tmp_path / "scene_evaluation",
                           scenes_dir=tmp_path / "scenes")
    metrics = json.loads(written["metrics"].read_text())
    assert "scenes.d2.d2-source-vae.0dB.dialogue_si_sdri" in metrics and "d2.reference.oracle.oracle.sdr_median" in metrics
    assert list(metrics) == sorted(metrics)
    assert metrics["scenes.d2.d2-source-vae.clips.gap_db"] == 0.5  # medians 6.5 - 6.0
    assert "scenes.d2.d2-class-vae.clips.gap_db" not in metrics
    assert written["scenes_figure"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = written["index"].read_text()
    assert 'id="scenes"' in page and "enhance with d3-source-vae" in page and "true dialogue" in page
    assert "1-s test clips" in page and "+0.50" in page
    for dataset in params.scenes.datasets:
        assert (tmp_path / "out" / "site" / "scenes" / dataset / SCENE / f"{dataset}-source-vae.flac").is_file()


def test_without_scene_evaluations_the_report_is_as_before(tmp_path):
    params = report_params()
    write_fake_evaluation(tmp_path / "evaluation" / "d2", "d2", params, 0)
    written = build_report(params, tmp_path / "evaluation", tmp_path / "out", datasets=["d2"])
    assert "scenes_figure" not in written and 'id="scenes"' not in written["index"].read_text()
    assert not any(key.startswith("scenes.") for key in json.loads(written["metrics"].read_text()))
