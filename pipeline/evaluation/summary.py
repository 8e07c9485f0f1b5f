"""Summaries of a scores table: one row per system, and the flat metrics.json entries."""
from __future__ import annotations

from typing import Any

import pandas as pd

from pipeline.metrics.separation import summarise

SYSTEM_COLUMNS = ("system", "training", "method", "classes")
MIXTURE_SYSTEM = "reference.mixture.oracle"  # the unprocessed mixture as every estimate


def summary_table(scores: pd.DataFrame) -> pd.DataFrame:
    """One row per system: failure counts, medians and means of each metric, label accuracy, mixtures, the
    global figures of Huang et al. (seed 002): gnsdr, gsir, gsar, and the improvements over the mixture that
    seed 003 reports: sdri and siri (median and mean)."""
    table = summarise(scores, list(SYSTEM_COLUMNS))
    per_mixture = scores.drop_duplicates(["system", "mixture_id"])
    extra = per_mixture.groupby("system").agg(mixtures=("mixture_id", "size"),
                                              label_accuracy=("labels_correct", "mean"))
    table = table.merge(extra, left_on="system", right_index=True)
    table = table.merge(global_figures(scores), left_on="system", right_index=True, how="left")
    table = table.merge(improvements(scores), left_on="system", right_index=True, how="left")
    order = {system: i for i, system in enumerate(dict.fromkeys(scores["system"]))}
    return table.sort_values("system", key=lambda s: s.map(order)).reset_index(drop=True)


def global_figures(scores: pd.DataFrame) -> pd.DataFrame:
    """Per system: GNSDR (mean over sources of SDR minus the unprocessed mixture's SDR for the same source),
    GSIR and GSAR (mean SIR, SAR), finite values only. Huang et al. weight each clip by its length; every test
    mixture here has the same length, so the weights are equal. NaN for GNSDR without the mixture row."""
    columns = ["gnsdr", "gsir", "gsar"]
    if "sdr" not in scores.columns:
        return pd.DataFrame(columns=columns)
    mixture = scores[scores["system"] == MIXTURE_SYSTEM][["mixture_id", "source", "sdr"]]
    joined = scores.merge(mixture.rename(columns={"sdr": "sdr_of_mixture"}), on=["mixture_id", "source"],
                          how="left")
    joined["nsdr"] = joined["sdr"] - joined["sdr_of_mixture"]
    finite = joined[["nsdr", "sir", "sar"]].where(lambda frame: frame.abs() != float("inf"))
    finite["system"] = joined["system"]
    figures = finite.groupby("system", sort=False)[["nsdr", "sir", "sar"]].mean()
    return figures.rename(columns={"nsdr": "gnsdr", "sir": "gsir", "sar": "gsar"})


def improvements(scores: pd.DataFrame) -> pd.DataFrame:
    """Per system: SDRi and SIRi, each source's SDR (SIR) minus the unprocessed mixture's for the same source and
    mixture (seed 003's figures), median and mean over finite values: columns sdri_median, sdri_mean, siri_median,
    siri_mean. NaN without the mixture row (or where a two-source mixture's SIR is undefined)."""
    columns = ["sdri_median", "sdri_mean", "siri_median", "siri_mean"]
    if "sdr" not in scores.columns or not (scores["system"] == MIXTURE_SYSTEM).any():
        return pd.DataFrame(columns=columns)
    mixture = scores[scores["system"] == MIXTURE_SYSTEM][["mixture_id", "source", "sdr", "sir"]]
    joined = scores.merge(mixture.rename(columns={"sdr": "sdr_of_mixture", "sir": "sir_of_mixture"}),
                          on=["mixture_id", "source"], how="left")
    gains = pd.DataFrame({"system": joined["system"], "sdri": joined["sdr"] - joined["sdr_of_mixture"],
                          "siri": joined["sir"] - joined["sir_of_mixture"]})
    gains[["sdri", "siri"]] = gains[["sdri", "siri"]].where(lambda frame: frame.abs() != float("inf"))
    grouped = gains.groupby("system", sort=False)[["sdri", "siri"]]
    figures = grouped.median().add_suffix("_median").join(grouped.mean().add_suffix("_mean"))
    return figures[columns]


def flat_metrics(dataset: str, scores: pd.DataFrame) -> dict[str, float]:
    """metrics.json entries: `<dataset>.<system>.<statistic>`, rounded to 4 decimals; NaN becomes null."""
    metrics: dict[str, Any] = {}
    for row in summary_table(scores).to_dict("records"):
        for column, value in row.items():
            if column in SYSTEM_COLUMNS:
                continue
            value = float(value)
            metrics[f"{dataset}.{row['system']}.{column}"] = None if value != value else round(value, 4)
    return dict(sorted(metrics.items()))
