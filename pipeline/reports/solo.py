"""The solo-segment study (README "Class supervision with solo segments"): class-supervised models trained with
a share of solo segments, against the share, beside the source-trained model of the same kind."""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

from pipeline.config import Params
from pipeline.reports.plots import plot_solo_study
from pipeline.separators.base import short_name

METRIC = "forward.oracle.sdr_median"


def solo_study(params: Params, metrics: Mapping[str, float | None], dataset: str
               ) -> tuple[dict[str, list[tuple[float, float]]], dict[str, float | None]]:
    """({model kind: [(solo share, SDR)]}, {model kind: source-trained SDR}) for the model kinds of `dataset`
    with at least one class-supervised variant trained on solo segments; empty when there is none."""
    curves: dict[str, list[tuple[float, float]]] = {}
    references: dict[str, float | None] = {}
    variants = {name: v for name, v in params.variants.items() if v.dataset == dataset}
    studied = {v.model for v in variants.values() if v.supervision == "class" and v.solo_share > 0}
    for name, v in sorted(variants.items()):
        if v.model not in studied or v.loss != "mag-kl":
            continue
        value = metrics.get(f"{dataset}.{short_name(name, dataset)}.{METRIC}")
        if v.supervision == "class" and value is not None:
            curves.setdefault(v.model, []).append((v.solo_share, float(value)))
        elif v.supervision == "source" and v.solo_share == 0:
            references.setdefault(v.model, None if value is None else float(value))
    return {kind: points for kind, points in curves.items() if len(points) > 1}, references


def solo_study_figure(params: Params, metrics: Mapping[str, float | None], dataset: str, path: Path
                      ) -> Path | None:
    """Write the study's figure for `dataset` (None, and nothing written, when it has no study)."""
    curves, references = solo_study(params, metrics, dataset)
    if not curves:
        path.unlink(missing_ok=True)
        return None
    return plot_solo_study(curves, references, path, f"{dataset}: class supervision with solo segments")
