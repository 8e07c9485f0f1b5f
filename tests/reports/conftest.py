"""Synthetic evaluation outputs in the formats `evaluate@<dataset>` writes, for the report tests."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.config import Params, parse_params
from pipeline.evaluation.run import flat_metrics
from pipeline.evaluation.systems import systems_for
from pipeline.testing.audio import repo_params_raw

RATE = 8600


def report_params(profile: str = "demo") -> Params:
    raw = repo_params_raw()
    raw["profile"] = profile
    return parse_params(raw)


def write_fake_evaluation(folder: Path, dataset: str, params: Params, seed: int, mixtures: int = 10,
                          inverse_mixtures: int = 4, examples: int = 2, length: int = RATE) -> None:
    """scores.parquet, metrics.json and examples.npz for every system `systems_for(dataset, params)` lists.

    Two sources per mixture; a few mixtures of each trained system fail (BSS-Eval NaN, status silent_estimate);
    PESQ only for the speech classes of params `evaluate.datasets`.
    """
    rng = np.random.default_rng(seed)
    classes = list(params.datasets[dataset].class_names)
    speech = set(params.evaluate.of(dataset).speech)
    systems = systems_for(dataset, params)
    pairs = [tuple(sorted(rng.choice(len(classes), 2, replace=False))) for _ in range(mixtures)]
    rows = []
    for s, system in enumerate(systems):
        count = inverse_mixtures if system.signal == "inverse" else mixtures
        level = {"oracle": 12.0, "mixture": 0.0}.get(system.signal, 3.0 + s % 4)
        for m in range(count):
            failed = system.training != "reference" and m == 1 + s % 3
            for index, k in enumerate(pairs[m]):
                sdr = np.nan if failed else level + rng.normal(0, 2)
                si_sdr = np.nan if failed else level + rng.normal(0, 2)
                is_speech = classes[k] in speech
                rows.append({
                    "system": system.key, "training": system.training, "method": system.method,
                    "classes": system.classes, "mixture_id": f"{dataset}/test/{m:06d}", "source": classes[k],
                    "index": index, "status": "silent_estimate" if failed else "ok", "sdr": sdr,
                    "sir": np.nan if failed else sdr + 8 + rng.normal(0, 1),
                    "sar": np.nan if failed else sdr + 2 + rng.normal(0, 1), "si_sdr": si_sdr,
                    "si_sdr_mixture": 0.1 * rng.normal(), "si_sdri": si_sdr,
                    "pesq": (np.nan if failed or m == 2 else 1.2 + level / 10 + 0.1 * rng.random()) if is_speech
                    else np.nan,
                    "pesq_mixture": 1.3 if is_speech else np.nan, "speech": is_speech,
                    "spectral_snr": np.nan if failed else level / 2 + rng.normal(0, 1),
                    "envelope_distance": np.nan if failed else 0.05 + 0.01 * rng.random(),
                    "labels_correct": bool(m % 3),
                })
    scores = pd.DataFrame(rows)
    folder.mkdir(parents=True, exist_ok=True)
    scores.to_parquet(folder / "scores.parquet", index=False)
    (folder / "metrics.json").write_text(json.dumps(flat_metrics(dataset, scores), indent=2, sort_keys=True))

    t = np.arange(length) / RATE
    index = {"classes": classes, "sample_rate": RATE, "mixtures": {}, "systems": {s.key: s.label for s in systems}}
    arrays = {}
    for m in range(examples):
        tag = f"m{m}"
        labels = np.zeros(len(classes), dtype=int)
        labels[list(pairs[m])] = 1
        references = np.zeros((len(classes), length), dtype=np.float32)
        for k in pairs[m]:
            references[k] = 0.3 * np.sin(2 * np.pi * (200 + 150 * k) * t) * (1 + np.sin(2 * np.pi * 3 * t))
        arrays[f"{tag}/mixture"] = references.sum(axis=0)
        arrays[f"{tag}/references"] = references
        index["mixtures"][tag] = {"labels": labels.tolist()}
        for s, system in enumerate(systems):
            estimate = references + 0.05 * rng.standard_normal(references.shape).astype(np.float32)
            if s == len(systems) - 1 and m == 0:
                estimate[pairs[m][0], :10] = np.nan  # a non-finite estimate, as a diverged model gives
            arrays[f"{tag}/{system.key}"] = estimate
            index["mixtures"][tag][system.key] = labels.tolist()
    np.savez_compressed(folder / "examples.npz", index=np.array(json.dumps(index, sort_keys=True)), **arrays)


@pytest.fixture(scope="module")
def fake_evaluation(tmp_path_factory) -> tuple[Params, Path]:
    """Evaluations of d1 (BSS-Eval), d3 (PESQ) and d4 (the loss variants); d2 is left out on purpose."""
    root = tmp_path_factory.mktemp("evaluation")
    params = report_params()
    for seed, dataset in enumerate(("d1", "d3", "d4")):
        write_fake_evaluation(root / dataset, dataset, params, seed)
    return params, root
