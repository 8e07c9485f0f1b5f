"""Evaluation tables: a CSV of every statistic and a readable Markdown summary per dataset."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from pipeline.config import Params
from pipeline.evaluation.summary import summary_table

MARKDOWN_COLUMNS = {
    "training": "training", "method": "signal estimate", "classes": "classes",
    "sdr_median": "SDR", "sir_median": "SIR", "sar_median": "SAR", "sdri_median": "SDRi", "siri_median": "SIRi",
    "si_sdri_median": "SI-SDRi",
    "gnsdr": "GNSDR", "gsir": "GSIR", "gsar": "GSAR", "pesq_median": "PESQ", "label_accuracy": "labels right",
    "n_failed": "failed", "mixtures": "mixtures",
}


def markdown_table(frame: pd.DataFrame, columns: dict[str, str]) -> str:
    """A GitHub-style Markdown table of `columns` (name -> header); floats with 2 decimals, NaN as '—'."""
    lines = ["| " + " | ".join(columns.values()) + " |", "|" + "---|" * len(columns)]
    for row in frame.to_dict("records"):
        cells = []
        for column in columns:
            value = row[column]
            if isinstance(value, float):
                cells.append("—" if value != value else f"{value:.2f}")
            else:
                cells.append(str(value))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_tables(dataset: str, params: Params, scores: pd.DataFrame, tables_dir: Path) -> pd.DataFrame:
    """Write `<dataset>.csv` (all statistics) and `<dataset>.md` (medians, in dB except PESQ) to `tables_dir`."""
    tables_dir = Path(tables_dir)
    tables_dir.mkdir(parents=True, exist_ok=True)
    table = summary_table(scores)
    table.round(4).to_csv(tables_dir / f"{dataset}.csv", index=False)
    classes = ", ".join(params.datasets[dataset].class_names)
    header = (f"# {dataset}: separation of the test split\n\n"
              f"Profile `{params.profile}` (the demo corpus is synthetic: these are not the paper's numbers). "
              f"Classes: {classes}. Medians over sources; SDR/SIR/SAR/SI-SDRi in dB, PESQ narrow band (speech "
              f"classes only). `failed`: sources whose BSS-Eval is undefined (silent or non-finite estimate), kept "
              f"out of the medians. GNSDR / GSIR / GSAR: the global figures of Huang et al. (seed 002), "
              f"length-weighted means over sources of the improvement over the mixture (NSDR) and of SIR / SAR. "
              f"SDRi / SIRi: each source's SDR / SIR minus the unprocessed mixture's (seed 003). Rows whose separator "
              f"returns its estimates in no known order (deep clustering, SCE, DPCL++: `permutation` in "
              f"systems.json) are scored after BSS-Eval's permutation search (mir_eval's rule, highest mean SIR). "
              f"`labels right`: share of mixtures whose class set was estimated exactly.\n\n")
    (tables_dir / f"{dataset}.md").write_text(header + markdown_table(table, MARKDOWN_COLUMNS))
    return table
