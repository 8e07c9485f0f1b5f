"""Dataset datasheets: what went into a mixture dataset, how much, what was skipped and why, shard checksums."""
from __future__ import annotations

import json
from pathlib import Path

from pipeline.config import Params
from pipeline.mixing.build import build_dataset
from pipeline.parallel import ParallelMap
from pipeline.shards import write_json

PREPARE_REPORT = "report.json"


def corpus_summary(clips_root: Path, corpus: str) -> dict:
    """The headline of a corpus's prepare report (counts and skip reasons; the full list stays in the report)."""
    path = Path(clips_root) / corpus / PREPARE_REPORT
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; run the prepare stage of corpus {corpus!r}")
    report = json.loads(path.read_text())
    keys = ("recordings", "recordings_used", "recordings_skipped", "skipped_by_reason", "clips", "clips_total",
            "clips_dropped_silent", "clip_rms_db_before_normalisation")
    return {key: report[key] for key in keys}


def build_with_datasheet(name: str, params: Params, clips_root: Path, out_dir: Path, datasheet_path: Path,
                         progress: bool = True, parallel: ParallelMap | None = None) -> dict:
    """Build dataset `name` into `out_dir` and write its datasheet (JSON, sorted keys) to `datasheet_path`."""
    if name not in params.datasets:
        raise ValueError(f"unknown dataset {name!r}; params.yaml defines {sorted(params.datasets)}")
    config = params.datasets[name]
    sheet = build_dataset(name, config, params.audio, params.shards, Path(clips_root), Path(out_dir), progress,
                          parallel=parallel)
    corpora = sorted({source.corpus for sources in config.classes.values() for source in sources})
    sheet.update({
        "profile": params.profile,
        "seed": config.seed,
        "allow_reuse": config.allow_reuse,
        "mixture_sizes": {str(k): v for k, v in config.mixture_sizes.items()},
        "source_gain_db": list(config.source_gain_db),
        "random_shift_splits": list(config.random_shift_splits),
        "corpora": {corpus: corpus_summary(clips_root, corpus) for corpus in corpora},
    })
    write_json(datasheet_path, sheet)
    return sheet
