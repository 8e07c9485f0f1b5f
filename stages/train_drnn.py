"""DVC stage `train_drnn@<dataset>`: train the DRNN baseline's configurations on one dataset (the main one, and
its ablations where params.yaml `drnn.ablation_datasets` lists the dataset), then write their reports."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from stages.common import train_group, train_group_main


def run(dataset: str, params: str | Path, data: str | Path, out: str | Path, reports: str | Path,
        scratch: str | Path, *, timings: str | Path = "data/timings", progress: bool = True) -> dict[str, Any]:
    """Train every DRNN configuration of `dataset` into `out/<name>/model.pt`; curves and summaries through dvclive
    in `reports/<dataset>-<name>/` and `reports/<dataset>-<name>.png`, wall-clock figures in
    `timings/train_drnn@<dataset>.json` (not a DVC output); returns the summaries by variant name."""
    from pipeline.models.train.drnn import train_drnn

    return train_group(f"train_drnn@{dataset}", train_drnn, dataset, params, data, out, reports, scratch, timings,
                       progress)


def main(argv: list[str] | None = None) -> None:
    train_group_main(__doc__, "drnn", run, "configuration", argv)


if __name__ == "__main__":
    main()
