"""The work of each DVC stage kind, as one function each: what `stages/` runs without Prefect and what the
flows in `flows/` run with it, so neither holds a second copy. Paths come from the caller; `fanout` (optional)
decides where the stage's parallel parts run (`pipeline.orchestration.fanout`)."""
from __future__ import annotations

import json
import logging
import os
import subprocess
from pathlib import Path
from typing import Any, Sequence

import yaml

from pipeline.config import Params, parse_params
from pipeline.orchestration.fanout import Fanout, use_fanout
from pipeline.orchestration.settings import strip_orchestration

log = logging.getLogger(__name__)


def load_pipeline_params(path: str | Path = "params.yaml") -> Params:
    """`pipeline.config.load_params`, ignoring the `orchestration` section (it never changes an output)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"parameter file {path} not found (run from the repository root or pass its path)")
    return parse_params(strip_orchestration(yaml.safe_load(path.read_text()) or {}))


def fetch(corpus: str, params: str | Path, out: str | Path, downloads_dir: str | Path) -> dict:
    """Generate (profile demo) or download and extract (profile paper) `corpus` into `out`."""
    from pipeline.corpora.recipes import fetch_corpus

    return fetch_corpus(corpus, load_pipeline_params(params), Path(out), Path(downloads_dir))


def prepare(corpus: str, params: str | Path, raw: str | Path | None, out: str | Path, report: str | Path, *,
            workers: int = 1, progress: bool = True, fanout: Fanout | None = None) -> dict:
    """Recordings -> clip shards in `out`; the prepare report goes to `out/report.json` and `report`."""
    from pipeline.corpora.recipes import prepare_corpus
    from pipeline.shards import write_json

    with use_fanout(fanout):
        result = prepare_corpus(corpus, load_pipeline_params(params), None if raw is None else Path(raw),
                                Path(out), workers=workers, progress=progress)
    write_json(Path(out) / "report.json", result)
    write_json(Path(report), result)
    return result


def mix(dataset: str, params: str | Path, clips: str | Path, out: str | Path, datasheet: str | Path, *,
        progress: bool = True, fanout: Fanout | None = None) -> dict:
    """Clip tables -> mixture dataset `dataset` in `out`, and its datasheet."""
    from pipeline.reports.datasheet import build_with_datasheet

    with use_fanout(fanout):
        return build_with_datasheet(dataset, load_pipeline_params(params), Path(clips), Path(out),
                                    Path(datasheet), progress=progress)


def train(variant: str, params: str | Path, data: str | Path, out: str | Path, reports: str | Path,
          scratch: str | Path, *, progress: bool = True, processes: int = 1,
          relaunch: Sequence[str] = ()) -> dict[str, Any]:
    """Train `variant`. `processes` > 1: run `python -m stages.train <relaunch>` under torchrun with that many
    processes (DistributedDataParallel); inside such a run (torchrun sets WORLD_SIZE) every rank lands here."""
    from pipeline.orchestration.distributed import distributed_training, torchrun_command

    if processes > 1:
        command = torchrun_command(processes, ["-m", "stages.train", *relaunch])
        log.info("training %s on %d processes: %s", variant, processes, " ".join(command))
        subprocess.run(command, check=True, env={**os.environ, "PIPELINE_PREFECT": "never"})
        return json.loads((Path(reports) / f"{variant}.json").read_text())
    from pipeline.models.train import train_variant

    with distributed_training():
        return train_variant(variant, load_pipeline_params(params), Path(data), Path(out), Path(reports),
                             Path(scratch), progress=progress)


def evaluate(dataset: str, params: str | Path, data: str | Path, models: str | Path, out: str | Path,
             tables: str | Path, *, workers: int = 1, progress: bool = True,
             fanout: Fanout | None = None) -> dict[str, float]:
    """Separate and score the test split of `dataset` with every system; write its tables."""
    import pandas as pd

    from pipeline.evaluation.run import evaluate_dataset
    from pipeline.evaluation.tables import write_tables

    parsed = load_pipeline_params(params)
    metrics = evaluate_dataset(dataset, parsed, Path(data), Path(models), Path(out), workers=workers,
                               progress=progress, fanout=fanout)
    write_tables(dataset, parsed, pd.read_parquet(Path(out) / "scores.parquet"), Path(tables))
    return metrics


def training_summary(reports: str | Path, summary: str | Path, curves: str | Path) -> str:
    """The Markdown table and the curves page over every trained variant."""
    from pipeline.reports.training import summarise_training

    return summarise_training(Path(reports), Path(summary), Path(curves))
