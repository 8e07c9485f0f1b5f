"""Evaluation metrics: source-separation scores (BSS-Eval, SI-SDR, PESQ) and their summaries."""
from __future__ import annotations

from pipeline.metrics.separation import (
    METRICS,
    STATUS_NONFINITE,
    STATUS_OK,
    STATUS_SILENT_ESTIMATE,
    STATUS_SILENT_REFERENCE,
    bss_eval,
    pesq_nb,
    score_many,
    score_mixture,
    si_sdr,
    summarise,
    validate,
)

__all__ = [
    "METRICS",
    "STATUS_NONFINITE",
    "STATUS_OK",
    "STATUS_SILENT_ESTIMATE",
    "STATUS_SILENT_REFERENCE",
    "bss_eval",
    "pesq_nb",
    "score_many",
    "score_mixture",
    "si_sdr",
    "summarise",
    "validate",
]
