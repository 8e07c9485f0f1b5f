"""The training summary: one Markdown table and one page of curves over every trained variant."""
from __future__ import annotations

import csv
import json
from pathlib import Path

from pipeline.reports.plots import plot_training_curves

COLUMNS = ("best_step", "steps", "stopped_by", "best_valid_reconstruction", "mixtures_per_second",
           "train_seconds", "device")


def read_curves(reports_dir: Path) -> dict[str, list[dict[str, float]]]:
    """Every `<variant>.csv` training curve in `reports_dir`."""
    curves = {}
    for path in sorted(Path(reports_dir).glob("*.csv")):
        with open(path, newline="") as handle:
            curves[path.stem] = [{k: float(v) for k, v in row.items()} for row in csv.DictReader(handle)]
    return curves


def summarise_training(reports_dir: Path, summary_path: Path, curves_path: Path) -> str:
    """Write the Markdown summary and the curves page; returns the Markdown."""
    reports_dir = Path(reports_dir)
    summaries = {p.stem: json.loads(p.read_text()) for p in sorted(reports_dir.glob("*.json"))}
    if not summaries:
        raise FileNotFoundError(f"no training summaries (*.json) in {reports_dir}; run the train stages first")
    lines = ["# Training summary", "",
             "One row per trained variant (`params.yaml` `variants`). Curves: `reports/plots/training_curves.png`.", "",
             "| variant | " + " | ".join(COLUMNS) + " |", "|---" * (len(COLUMNS) + 1) + "|"]
    for name, summary in summaries.items():
        lines.append(f"| {name} | " + " | ".join(str(summary.get(c, "")) for c in COLUMNS) + " |")
    text = "\n".join(lines) + "\n"
    Path(summary_path).parent.mkdir(parents=True, exist_ok=True)
    Path(summary_path).write_text(text)
    plot_training_curves(read_curves(reports_dir), curves_path)
    return text
