"""Evaluating a tiny trained model: every system runs, references bracket the models, outputs are complete."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from pipeline.evaluation.run import evaluate_dataset
from pipeline.evaluation.systems import systems_for
from pipeline.evaluation.tables import write_tables
from pipeline.models.train import train_variant
from pipeline.testing.datasets import build_tiny_dataset


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    root = tmp_path_factory.mktemp("eval")
    params, data = build_tiny_dataset(root)
    for variant in ("dt-source", "dt-class"):
        train_variant(variant, params, data, root / "models" / variant, root / "scratch", progress=False)
    params = dataclasses.replace(params, variants={k: v for k, v in params.variants.items()
                                                   if k in ("dt-source", "dt-class")})
    metrics = evaluate_dataset("dt", params, data, root / "models", root / "evaluation", progress=False)
    return params, root, metrics


def test_every_system_is_scored_on_its_mixtures(evaluated):
    params, root, _ = evaluated
    scores = pd.read_parquet(root / "evaluation" / "scores.parquet")
    systems = [s.key for s in systems_for("dt", params)]
    assert list(dict.fromkeys(scores["system"])) == systems
    per_system = scores.groupby("system")["mixture_id"].nunique()
    assert per_system["reference.oracle.oracle"] == 8 and per_system["source.inverse_joint.classify"] == 4
    assert (scores.groupby(["system", "mixture_id"]).size() == 2).all()  # two sources in every mixture


def test_oracle_mask_scores_far_above_the_mixture(evaluated):
    _, _, metrics = evaluated
    assert metrics["dt.reference.oracle.oracle.sdr_median"] > metrics["dt.reference.mixture.oracle.sdr_median"] + 6
    assert metrics["dt.reference.mixture.oracle.si_sdri_median"] == pytest.approx(0.0, abs=1e-3)
    assert metrics["dt.reference.oracle.oracle.label_accuracy"] == 1.0


def test_metrics_keys_are_flat_sorted_and_named_like_the_paper_legends(evaluated):
    _, root, metrics = evaluated
    on_disk = json.loads((root / "evaluation" / "metrics.json").read_text())
    assert list(on_disk) == sorted(on_disk) and on_disk == metrics
    for key in ("dt.class.inverse_joint.classify.sdr_median", "dt.source.forward.oracle.sir_mean",
                "dt.class.inverse.oracle.n_failed", "dt.source.inverse_exhaustive.classify.label_accuracy"):
        assert key in metrics
    assert all(v is None or isinstance(v, float) for v in metrics.values())


def test_examples_hold_audio_for_every_system(evaluated):
    params, root, _ = evaluated
    with np.load(root / "evaluation" / "examples.npz") as examples:
        index = json.loads(str(examples["index"]))
        assert sorted(index["mixtures"]) == ["m0", "m1"] and index["sample_rate"] == 8600
        assert examples["m0/mixture"].shape == (8600,) and examples["m0/references"].shape == (3, 8600)
        assert examples["m1/class.inverse_joint.classify"].shape == (3, 8600)


def test_tables(evaluated, tmp_path):
    params, root, _ = evaluated
    table = write_tables("dt", params, pd.read_parquet(root / "evaluation" / "scores.parquet"), tmp_path)
    assert len(table) == len(systems_for("dt", params))
    markdown = (tmp_path / "dt.md").read_text()
    assert "| reference | oracle | oracle |" in markdown and "not the paper's numbers" in markdown
    assert pd.read_csv(tmp_path / "dt.csv").shape[0] == len(table)


def test_missing_model_is_named(evaluated, tmp_path):
    params, root, _ = evaluated
    with pytest.raises(FileNotFoundError, match=r"dt-class/model\.pt not found"):
        evaluate_dataset("dt", params, root / "dt", tmp_path / "nothing", tmp_path / "out", progress=False)


def test_scores_are_the_same_when_scoring_runs_on_a_process_pool(evaluated, tmp_path):
    from pipeline.metrics.separation import WORKER_PRELOAD
    from pipeline.parallel import LocalPool

    params, root, metrics = evaluated
    with LocalPool("processes", 2, preload=WORKER_PRELOAD) as pool:
        pooled = evaluate_dataset("dt", params, root / "dt", root / "models", tmp_path / "pooled", parallel=pool,
                                  progress=False)
    assert pooled == metrics
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "pooled" / "scores.parquet"),
                                  pd.read_parquet(root / "evaluation" / "scores.parquet"), check_exact=True)
    assert sorted(p.name for p in (tmp_path / "pooled").iterdir()) == [
        "examples.npz", "metrics.json", "scores.parquet", "systems.json"]


def test_systems_json_names_each_rows_kind_and_metadata(evaluated):
    params, root, _ = evaluated
    described = json.loads((root / "evaluation" / "systems.json").read_text())
    assert sorted(described) == sorted(s.key for s in systems_for("dt", params))
    assert described["reference.oracle.oracle"]["kind"] == "oracle-mask"
    assert described["class.forward.classify"] == {
        "label": "class · forward · classify", "kind": "vae-forward", "variant": "dt-class", "supervision": "class",
        "class_estimate": "estimated", "permutation": False, "max_mixtures": 8}
    assert described["source.inverse_joint.classify"]["kind"] == "vae-inverse"
    assert described["source.inverse_joint.classify"]["max_mixtures"] == 4


def test_global_figures_are_mean_improvements_over_the_mixture_by_hand():
    from pipeline.evaluation.summary import global_figures

    rows = []
    for system, sdrs, sirs in (("reference.mixture.oracle", (0.0, -2.0), (0.0, -1.0)),
                               ("nmf.forward.oracle", (5.0, 1.0), (9.0, float("nan")))):
        for mixture_id in ("m0", "m1"):
            for source, sdr, sir in zip(("speech", "background"), sdrs, sirs):
                shift = 1.0 if mixture_id == "m1" else 0.0
                rows.append({"system": system, "mixture_id": mixture_id, "source": source, "sdr": sdr + shift,
                             "sir": sir, "sar": 20.0})
    figures = global_figures(pd.DataFrame(rows))
    # NSDR per source: speech 5 - 0, background 1 - (-2), the same in both mixtures -> mean 4
    assert figures.loc["nmf.forward.oracle", "gnsdr"] == pytest.approx(4.0)
    assert figures.loc["nmf.forward.oracle", "gsir"] == pytest.approx(9.0)  # NaN values left out
    assert figures.loc["reference.mixture.oracle", "gnsdr"] == 0.0
    assert figures.loc["nmf.forward.oracle", "gsar"] == 20.0


def test_sdri_and_siri_are_improvements_over_the_mixture_per_source_by_hand():
    from pipeline.evaluation.summary import improvements

    rows = []
    for system, sdrs, sirs in (("reference.mixture.oracle", (0.0, -2.0), (1.0, -1.0)),
                               ("dpcl.forward.oracle", (5.0, 2.0), (9.0, float("inf")))):
        for source, sdr, sir in zip(("a", "b"), sdrs, sirs):
            rows.append({"system": system, "mixture_id": "m0", "source": source, "sdr": sdr, "sir": sir})
    figures = improvements(pd.DataFrame(rows))
    # SDRi: a 5 - 0, b 2 - (-2) -> median and mean 4.5; SIRi: a 9 - 1 = 8, b infinite (left out)
    assert figures.loc["dpcl.forward.oracle", "sdri_median"] == pytest.approx(4.5)
    assert figures.loc["dpcl.forward.oracle", "sdri_mean"] == pytest.approx(4.5)
    assert figures.loc["dpcl.forward.oracle", "siri_median"] == pytest.approx(8.0)
    assert figures.loc["reference.mixture.oracle", "siri_mean"] == 0.0
    assert improvements(pd.DataFrame(rows[2:])).empty                      # no mixture row: nothing to improve on


def test_metrics_carry_the_global_figures(evaluated):
    _, _, metrics = evaluated
    assert metrics["dt.reference.mixture.oracle.gnsdr"] == 0.0
    assert metrics["dt.reference.oracle.oracle.gnsdr"] > 6
    assert "dt.class.inverse_joint.classify.gsir" in metrics
    assert metrics["dt.reference.mixture.oracle.sdri_median"] == 0.0
    assert metrics["dt.reference.oracle.oracle.sdri_median"] > 6 and "dt.class.forward.classify.siri_mean" in metrics


def test_the_generative_prior_and_classical_rows_are_evaluated_and_described(evaluated, tmp_path):
    """Seed 004's rows on the tiny dataset: keys present, permutation declared, how each was applied noted."""
    params, root, _ = evaluated
    priors = dataclasses.replace(params.priors, variants={"dt": "dt-source"},
                                 classical=dataclasses.replace(params.priors.classical, datasets=("dt",)),
                                 schedule=dataclasses.replace(params.priors.schedule, mixtures=4, steps=3,
                                                              blind_iterations=5))
    params = dataclasses.replace(params, priors=priors,
                                 variants={k: v for k, v in params.variants.items() if k == "dt-source"})
    keys = [s.key for s in systems_for("dt", params)]
    new = ["gp-vae.pgd.all", "nmf-blind.blind.perm", "fastica.blind.perm", "pca.blind.perm", "kpca.blind.perm"]
    assert keys[:7] == ["reference.oracle.oracle", "reference.mixture.oracle", *new]  # the dataset's own rows
    metrics = evaluate_dataset("dt", params, root / "dt", root / "models", tmp_path / "out", progress=False)
    for key in new:
        assert metrics[f"dt.{key}.mixtures"] == 4.0
        for statistic in ("sdr_median", "sir_mean", "spectral_snr_mean", "envelope_distance_mean"):
            assert f"dt.{key}.{statistic}" in metrics
    described = json.loads((tmp_path / "out" / "systems.json").read_text())
    assert described["gp-vae.pgd.all"]["variant"] == "dt-source" and not described["gp-vae.pgd.all"]["permutation"]
    assert "every class generator takes part" in described["gp-vae.pgd.all"]["note"]
    assert described["fastica.blind.perm"]["permutation"] and described["fastica.blind.perm"]["supervision"] == "none"
    assert "frames as observations" in described["fastica.blind.perm"]["note"]
    assert metrics["dt.pca.blind.perm.label_accuracy"] is None
    write_tables("dt", params, pd.read_parquet(tmp_path / "out" / "scores.parquet"), tmp_path / "tables")
    markdown = (tmp_path / "tables" / "dt.md").read_text()
    assert "scored **permutation-invariantly**" in markdown and "frames are the observations" in markdown
    assert "| kpca | blind | perm |" in markdown and "spectral SNR | envelope dist." in markdown


def test_a_prior_variant_that_is_not_a_vae_of_the_dataset_is_named(evaluated):
    from pipeline.config import parse_params
    from pipeline.testing.datasets import tiny_training_raw

    params, _, _ = evaluated
    nmf = parse_params(tiny_training_raw()).variants["dt-nmf"]
    params = dataclasses.replace(params, variants={**params.variants, "dt-nmf": nmf},
                                 priors=dataclasses.replace(params.priors, variants={"dt": "dt-nmf"}))
    with pytest.raises(ValueError, match=r"priors.variants.dt = 'dt-nmf': expected a VAE variant trained on dt "
                                         r"\(its class decoders are the generators\); VAE variants of dt: "
                                         r"\['dt-class', 'dt-source'\]"):
        systems_for("dt", params)


def test_a_prior_variant_missing_from_the_variants_gives_no_row_and_says_so(evaluated, caplog):
    params, _, _ = evaluated
    params = dataclasses.replace(params, priors=dataclasses.replace(params.priors, variants={"dt": "dt-gone"}))
    with caplog.at_level("WARNING", logger="pipeline.separators.priors"):
        assert not [s for s in systems_for("dt", params) if s.kind == "gp-vae"]
    assert "priors.variants.dt = 'dt-gone' is not among the variants" in caplog.text
