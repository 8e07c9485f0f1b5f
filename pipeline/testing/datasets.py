"""A tiny mixture dataset and matching tiny training parameters, built in seconds for tests."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from pipeline.config import Params, parse_params
from pipeline.corpora.prepare import prepare_clips
from pipeline.corpora.registry import corpus_config
from pipeline.corpora.sc09 import list_sc09
from pipeline.mixing.build import build_dataset
from pipeline.testing.audio import repo_params_raw, with_datasets, write_sc09_layout

DIGITS = ("zero", "one", "two")


def tiny_training_raw(**train: Any) -> dict[str, Any]:
    """Repository params with a 3-class dataset `dt`, a tiny network, short schedules and a few variants."""
    raw = repo_params_raw()
    raw["shards"] = {"rows_per_group": 8, "groups_per_shard": 2, "compression": "zstd"}
    raw["corpora"]["sc09"]["digits"] = list(DIGITS)
    with_datasets(raw, {"dt": {
        "classes": {d: [{"corpus": "sc09", "labels": [d]}] for d in DIGITS},
        "mixture_sizes": {2: 1.0}, "source_gain_db": [0.0, 0.0], "max_peak": 0.99, "allow_reuse": True, "seed": 5,
        "sizes": {"demo": {"train": 24, "valid": 8, "test": 8}, "paper": {"train": 24, "valid": 8, "test": 8}},
    }})
    raw["model"] = {"filters": [8, 8, 16], "kernel": 4, "stride": 2, "hidden": 32, "latent": 4}
    raw["train"].update({"batch_size": 8, "device": "cpu", "cache_mb": 64, "shuffle_groups": 2,
                         "schedule": {"demo": {"max_steps": 12, "validate_every": 3},
                                      "paper": {"max_steps": 12, "validate_every": 3}}})
    raw["train"].update(train)
    raw["variants"] = {
        "dt-source": {"dataset": "dt", "supervision": "source", "model": "vae", "loss": "mag-kl"},
        "dt-class": {"dataset": "dt", "supervision": "class", "model": "vae", "loss": "mag-kl"},
        "dt-ae": {"dataset": "dt", "supervision": "source", "model": "ae", "loss": "mag-kl"},
        "dt-wave": {"dataset": "dt", "supervision": "source", "model": "vae", "loss": "wave-snr"},
        "dt-nmf": {"dataset": "dt", "supervision": "source", "model": "nmf"},
        "dt-nmf-class": {"dataset": "dt", "supervision": "class", "model": "nmf"},
    }
    raw["nmf"].update({"rank": 4, "validations": 3, "schedule": {"demo": {"train_iterations": 12, "test_iterations": 10},
                                                                "paper": {"train_iterations": 12, "test_iterations": 10}}})
    raw["evaluate"].update({"batch_size": 4, "examples": 2,
                            "schedule": {"demo": {"forward_mixtures": 8, "inverse_mixtures": 4, "inverse_iterations": 10},
                                         "paper": {"forward_mixtures": 8, "inverse_mixtures": 4, "inverse_iterations": 10}},
                            "datasets": {"dt": {"speech": list(DIGITS), "inverse": True}}})
    return raw


def build_tiny_dataset(root: Path, raw: dict[str, Any] | None = None) -> tuple[Params, Path]:
    """Write params.yaml and the mixture dataset `dt` under `root`; returns (params, dataset folder)."""
    root = Path(root)
    raw = raw or tiny_training_raw()
    (root / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    params = parse_params(raw)
    recordings = list_sc09(corpus_config(params, "sc09"), write_sc09_layout(root / "raw", DIGITS, speakers=6))
    prepare_clips("sc09", recordings, root / "clips" / "sc09", params.audio, params.shards, progress=False)
    build_dataset("dt", params.datasets["dt"], params.audio, params.shards, root / "clips", root / "dt", progress=False)
    return params, root / "dt"
