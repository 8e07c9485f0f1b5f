"""The separator protocol: a toy kind registered in a test runs through the evaluation loop unchanged."""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

import pandas as pd
import pytest
import torch

from pipeline.evaluation.run import evaluate_dataset
from pipeline.evaluation.systems import systems_for
from pipeline.separators import registry
from pipeline.separators.base import Kind, Metadata, Mixtures, Separation, System
from pipeline.testing.datasets import build_tiny_dataset


@dataclass(frozen=True)
class HalfMixture:
    """Half the mixture as the estimate of every class; with `permutation`, claims an unknown output order."""

    max_mixtures: int
    metadata: Metadata

    def separate(self, mixtures: Mixtures, generator: torch.Generator) -> Separation:
        halves = 0.5 * mixtures.waveforms.unsqueeze(1).expand_as(mixtures.sources)
        return Separation(halves, mixtures.labels)


def _toy_kind(permutation: bool = False) -> Kind:
    def rows(dataset, params, variant):
        return [System("toy", "half", "oracle", kind="toy")] if variant is None else []

    def build(system, context):
        return HalfMixture(3, Metadata("none", "oracle", permutation))

    return Kind("toy", rows, build)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("toy")
    params, data = build_tiny_dataset(root)
    return dataclasses.replace(params, variants={}), data


def test_a_registered_kind_is_evaluated_and_keyed_like_every_system(dataset, tmp_path, monkeypatch):
    params, data = dataset
    monkeypatch.setitem(registry.KINDS, "toy", _toy_kind())
    assert [s.key for s in systems_for("dt", params)] == [
        "reference.oracle.oracle", "reference.mixture.oracle", "toy.half.oracle"]
    metrics = evaluate_dataset("dt", params, data, tmp_path / "models", tmp_path / "out", progress=False)
    statistics = {key.split(".", 4)[4] for key in metrics if key.startswith("dt.reference.mixture.oracle.")}
    assert {key.split(".", 4)[4] for key in metrics if key.startswith("dt.toy.half.oracle.")} == statistics
    # SI-SDR is scale-invariant: half the mixture scores exactly what the mixture scores, so si_sdri is 0
    assert metrics["dt.toy.half.oracle.si_sdri_median"] == pytest.approx(0.0, abs=1e-4)
    assert metrics["dt.toy.half.oracle.mixtures"] == 3.0 and metrics["dt.reference.mixture.oracle.mixtures"] == 8.0
    scores = pd.read_parquet(tmp_path / "out" / "scores.parquet")
    toy = scores[scores["system"] == "toy.half.oracle"]
    assert list(toy[["training", "method", "classes"]].iloc[0]) == ["toy", "half", "oracle"]
    described = json.loads((tmp_path / "out" / "systems.json").read_text())["toy.half.oracle"]
    assert described["kind"] == "toy" and described["supervision"] == "none" and not described["permutation"]


@dataclass(frozen=True)
class SwappedSources:
    """The true sources of each mixture with the present ones in reverse order (a perfect partition in an
    unknown order, as deep clustering returns it)."""

    max_mixtures: int
    metadata: Metadata

    def separate(self, mixtures: Mixtures, generator: torch.Generator) -> Separation:
        out = torch.zeros_like(mixtures.sources)
        for b in range(out.shape[0]):
            present = torch.nonzero(mixtures.labels[b] > 0.5).flatten()
            out[b, present] = mixtures.sources[b, present.flip(0)]
        return Separation(out, mixtures.labels)


@pytest.mark.parametrize("permutation", [True, False])
def test_outputs_in_no_class_order_are_scored_after_a_permutation_search(dataset, tmp_path, monkeypatch,
                                                                          permutation):
    params, data = dataset

    def rows(dataset, params, variant):
        return [System("swap", "blind", "perm", kind="swap")] if variant is None else []

    kind = Kind("swap", rows, lambda system, context: SwappedSources(4, Metadata("none", "estimated", permutation)))
    monkeypatch.setitem(registry.KINDS, "swap", kind)
    metrics = evaluate_dataset("dt", params, data, tmp_path / "models", tmp_path / "out", progress=False)
    if permutation:   # the search undoes the swap: perfect scores (BSS-Eval clips at 200 dB), no label accuracy
        assert metrics["dt.swap.blind.perm.sdr_median"] > 100 and metrics["dt.swap.blind.perm.si_sdr_median"] > 100
        assert metrics["dt.swap.blind.perm.spectral_snr_median"] > 100
        assert metrics["dt.swap.blind.perm.label_accuracy"] is None
    else:             # taken as class order, each output is another source
        assert metrics["dt.swap.blind.perm.sdr_median"] < 10
    described = json.loads((tmp_path / "out" / "systems.json").read_text())["swap.blind.perm"]
    assert described["permutation"] is permutation


def test_the_registry_refuses_an_unknown_kind_naming_the_known_ones():
    with pytest.raises(ValueError, match="unknown separator kind 'deep-clustering'; known kinds: oracle-mask, "
                                         "mixture, vae-forward, vae-inverse, nmf, drnn, gp-vae, "
                                         "classical, dpcl"):
        registry.kind("deep-clustering")
    with pytest.raises(ValueError, match="unknown separator kind 'deep-clustering'"):
        registry.build(System("dc", "forward", "oracle", kind="deep-clustering"), None)


def test_a_kind_without_a_streaming_entry_point_is_refused_for_enhance(tmp_path):
    with pytest.raises(ValueError, match="'vae-inverse' has no streaming entry point.*vae-forward"):
        registry.window_separator("vae-inverse", tmp_path / "model.pt")


def test_metadata_values_are_checked():
    with pytest.raises(ValueError, match="supervision 'weak'; expected one of"):
        Metadata("weak", "oracle")
    with pytest.raises(ValueError, match="class estimate 'classify'; expected one of"):
        Metadata("class", "classify")


@pytest.mark.parametrize("key", ["class-vae.inverse_joint.classify", "reference.oracle.oracle",
                                 "d2.source-vae.forward.oracle"])
def test_a_system_key_round_trips(key):
    assert System.from_key(key).key == key


def test_a_malformed_key_is_refused():
    with pytest.raises(ValueError, match="expected '<training>.<method>.<classes>'"):
        System.from_key("forward.oracle")
