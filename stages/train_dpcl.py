"""DVC stage `train_dpcl@<dataset>`: train the partition-based separators of seed 003 (params.yaml `dpcl.systems`:
DPCL, SCE, DPCL++ fine-tuned from DPCL) on one dataset, then write their reports."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from stages.common import train_group, train_group_main


def run(dataset: str, params: str | Path, data: str | Path, out: str | Path, reports: str | Path,
        scratch: str | Path, *, timings: str | Path = "data/timings", progress: bool = True) -> dict[str, Any]:
    """Train every system of `dpcl.systems` on `dataset` into `out/<system>/model.pt`; curves and summaries
    through dvclive in `reports/<dataset>-<system>/` and `.png`, wall-clock figures in
    `timings/train_dpcl@<dataset>.json` (not a DVC output); returns the summaries by variant name."""
    from pipeline.models.train.dpcl import train_dpcl

    return train_group(f"train_dpcl@{dataset}", train_dpcl, dataset, params, data, out, reports, scratch, timings,
                       progress)


def main(argv: list[str] | None = None) -> None:
    train_group_main(__doc__, "dpcl", run, "system", argv)


if __name__ == "__main__":
    main()
