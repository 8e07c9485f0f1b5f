"""Summaries of a scores table: one row per system, and the flat metrics.json entries."""
from __future__ import annotations

from typing import Any

import pandas as pd

from pipeline.metrics.separation import summarise

SYSTEM_COLUMNS = ("system", "training", "method", "classes")


def summary_table(scores: pd.DataFrame) -> pd.DataFrame:
    """One row per system: failure counts, medians and means of each metric, label accuracy, mixtures."""
    table = summarise(scores, list(SYSTEM_COLUMNS))
    per_mixture = scores.drop_duplicates(["system", "mixture_id"])
    extra = per_mixture.groupby("system").agg(mixtures=("mixture_id", "size"),
                                              label_accuracy=("labels_correct", "mean"))
    table = table.merge(extra, left_on="system", right_index=True)
    order = {system: i for i, system in enumerate(dict.fromkeys(scores["system"]))}
    return table.sort_values("system", key=lambda s: s.map(order)).reset_index(drop=True)


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
