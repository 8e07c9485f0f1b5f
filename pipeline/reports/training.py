"""Training reports: each variant's curve and summary through dvclive, its PNG and timing file, and the summary
(one Markdown table and one page of curves) over every trained variant.

Per variant `v` in `reports_dir` (the train stage's outputs, identical on every run of the same data):
`v/metrics.json` (dvclive's summary: the run's outcome and the last validation's figures, a DVC metric),
`v/plots/metrics/<figure>.tsv` (one row per validation, step against the figure, DVC plots) and `v.png`.
Wall-clock figures go to a separate timing file outside the DVC outputs, as they differ on every run.
"""
from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any, Sequence

from pipeline.reports.plots import plot_training_curve, plot_training_curves
from pipeline.shards import write_json

# the curve's figures logged per validation (its `step` is dvclive's step; its `seconds` is a timing): every
# model logs REQUIRED; the VAE also its KL and class-head terms (an NMF variant has neither)
REQUIRED = ("epoch", "train_loss", "valid_loss", "valid_reconstruction")
OPTIONAL = ("valid_kl", "valid_classification")
LOGGED = (*REQUIRED, *OPTIONAL)
COLUMNS = ("best_step", "steps", "epochs", "stopped_by", "best_valid_reconstruction", "device")


def write_variant_reports(variant: str, curve: Sequence[dict[str, float]], summary: dict[str, Any],
                          reports_dir: Path) -> Path:
    """Log `curve` (one row per validation) and `summary` with dvclive to `reports_dir/<variant>/`; plot the
    curve to `reports_dir/<variant>.png`. Returns the dvclive folder."""
    from dvclive import Live

    missing = [key for key in ("step", *REQUIRED) if curve and key not in curve[0]]
    if missing:
        raise ValueError(f"{variant}: curve rows lack {missing}; expected the columns step, {', '.join(REQUIRED)}"
                         f" (and optionally {', '.join(OPTIONAL)})")
    logged = [key for key in LOGGED if curve and key in curve[0]]
    folder = Path(reports_dir) / variant
    with Live(dir=str(folder), dvcyaml=None, save_dvc_exp=False, report=None) as live:
        for row in curve:
            live.step = int(row["step"])
            for key in logged:
                value = row[key]
                live.log_metric(key, round(value, 6) if isinstance(value, float) else value)
        live.summary.update(summary)
    plot_training_curve(curve, Path(reports_dir) / f"{variant}.png", title=variant)
    return folder


def write_timing(variant: str, curve: Sequence[dict[str, float]], timing: dict[str, Any], path: Path) -> Path:
    """The run's wall-clock figures, with the training seconds elapsed at each validation, as JSON at `path`."""
    write_json(path, {"stage": f"train@{variant}", **timing,
                      "validations": [{"step": row["step"], "seconds": row["seconds"]} for row in curve]})
    return Path(path)


def read_summary(reports_dir: Path, variant: str) -> dict[str, Any]:
    """The summary dvclive wrote for `variant` (`reports_dir/<variant>/metrics.json`)."""
    path = Path(reports_dir) / variant / "metrics.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: variant {variant!r} has no training summary; train it first "
                                f"(dvc repro train@{variant})")
    return json.loads(path.read_text())


def read_curves(reports_dir: Path) -> dict[str, list[dict[str, float]]]:
    """Every variant's curve in `reports_dir`: rows of step and the logged figures, joined on the step."""
    curves = {}
    for folder in _variant_folders(reports_dir):
        rows: dict[float, dict[str, float]] = {}
        for key in LOGGED:
            path = folder / "plots" / "metrics" / f"{key}.tsv"
            if not path.is_file():
                if key in OPTIONAL:
                    continue
                raise FileNotFoundError(f"{path} not found; {folder} should hold a dvclive log of "
                                        f"{', '.join(REQUIRED)}")
            with open(path, newline="") as handle:
                for line in csv.DictReader(handle, delimiter="\t"):
                    step = float(line["step"])
                    rows.setdefault(step, {"step": step})[key] = float(line[key])
        curves[folder.name] = [rows[step] for step in sorted(rows)]
    return curves


def summarise_training(reports_dir: Path, summary_path: Path, curves_path: Path) -> str:
    """Write the Markdown summary and the curves page; returns the Markdown."""
    summaries = {folder.name: read_summary(folder.parent, folder.name) for folder in _variant_folders(reports_dir)}
    if not summaries:
        raise FileNotFoundError(f"no training summaries (<variant>/metrics.json) in {reports_dir}; "
                                f"run the train stages first")
    lines = ["# Training summary", "",
             "One row per trained variant (`params.yaml` `variants`). Curves: `reports/plots/training_curves.png`; "
             "wall-clock times: `data/timings/train@<variant>.json` (not DVC outputs).", "",
             "| variant | " + " | ".join(COLUMNS) + " |", "|---" * (len(COLUMNS) + 1) + "|"]
    for name, summary in summaries.items():
        lines.append(f"| {name} | " + " | ".join(str(summary.get(c, "")) for c in COLUMNS) + " |")
    text = "\n".join(lines) + "\n"
    Path(summary_path).parent.mkdir(parents=True, exist_ok=True)
    Path(summary_path).write_text(text)
    plot_training_curves(read_curves(reports_dir), curves_path)
    return text


def _variant_folders(reports_dir: Path) -> list[Path]:
    """Every variant's dvclive folder: `<reports_dir>/<variant>/`, or one level down in a group folder of one
    stage that trains several (`<reports_dir>/drnn-<dataset>/<variant>/`), sorted by variant name."""
    if not Path(reports_dir).is_dir():
        return []
    found = []
    for child in Path(reports_dir).iterdir():
        if (child / "metrics.json").is_file():
            found.append(child)
        elif child.is_dir():
            found += [p for p in child.iterdir() if (p / "metrics.json").is_file()]
    return sorted(found, key=lambda p: p.name)
