"""Tiny audio and corpora for tests: made in memory or in a temporary folder, never downloaded."""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import yaml

from pipeline.config import Params, parse_params

REPO_ROOT = Path(__file__).resolve().parents[2]


def tone(seconds: float, sample_rate: int, frequency: float = 440.0, amplitude: float = 0.3,
         channels: int = 1) -> np.ndarray:
    """A sine of `seconds` at `sample_rate`; shape (frames,) or (frames, channels)."""
    t = np.arange(int(round(seconds * sample_rate))) / sample_rate
    signal = (amplitude * np.sin(2 * np.pi * frequency * t)).astype(np.float32)
    return signal if channels == 1 else np.stack([signal * (0.5 + 0.5 * c) for c in range(channels)], axis=1)


def noise(seconds: float, sample_rate: int, seed: int = 0, amplitude: float = 0.1) -> np.ndarray:
    """White noise, reproducible from `seed`."""
    rng = np.random.default_rng(seed)
    return (amplitude * rng.standard_normal(int(round(seconds * sample_rate)))).astype(np.float32)


def write_wav(path: Path, samples: np.ndarray, sample_rate: int, subtype: str = "PCM_16") -> Path:
    """Write audio (creating folders); float subtypes keep NaN/inf for bad-input tests."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), samples, sample_rate, subtype=subtype)
    return path


def write_sc09_layout(root: Path, digits: tuple[str, ...] = ("zero", "one", "two"), speakers: int = 4,
                      sample_rate: int = 16000) -> Path:
    """A miniature Speech Commands folder: tones per digit, speaker 0 in valid, speaker 1 in test."""
    valid, test = [], []
    for d, digit in enumerate(digits):
        for s in range(speakers):
            name = f"{digit}/spk{s:05d}_nohash_0.wav"
            write_wav(root / name, tone(0.8, sample_rate, 200.0 + 100 * d + 7 * s), sample_rate)
            (valid if s == 0 else test if s == 1 else []).append(name)
    (root / "validation_list.txt").write_text("\n".join(valid) + "\n")
    (root / "testing_list.txt").write_text("\n".join(test) + "\n")
    return root


def repo_params_raw() -> dict[str, Any]:
    """The repository's params.yaml as a plain mapping (a deep copy tests may edit)."""
    return copy.deepcopy(yaml.safe_load((REPO_ROOT / "params.yaml").read_text()))


def with_datasets(raw: dict[str, Any], datasets: dict[str, Any]) -> dict[str, Any]:
    """Replace the datasets of a params mapping; variants, DRNN, evaluation, prior, scene and generation settings
    of the old ones are dropped."""
    raw["datasets"] = datasets
    drnn = raw.get("drnn")
    if drnn is not None:
        drnn["datasets"] = [name for name in drnn["datasets"] if name in datasets]
        drnn["ablation_datasets"] = {profile: [name for name in names if name in datasets]
                                     for profile, names in drnn["ablation_datasets"].items()}
    dpcl = raw.get("dpcl")
    if dpcl is not None:
        dpcl["datasets"] = [name for name in dpcl["datasets"] if name in datasets]
    raw["variants"] = {k: v for k, v in raw.get("variants", {}).items() if v["dataset"] in datasets}
    raw["evaluate"]["datasets"] = {k: v for k, v in raw["evaluate"]["datasets"].items() if k in datasets}
    raw["scenes"]["datasets"] = [name for name in raw["scenes"]["datasets"] if name in datasets]
    priors = raw.get("priors")
    if priors is not None:
        priors["variants"] = {k: v for k, v in priors["variants"].items() if k in datasets and v in raw["variants"]}
        priors["classical"]["datasets"] = [name for name in priors["classical"]["datasets"] if name in datasets]
    generate = raw.get("generate")
    if generate is not None and any(v["dataset"] not in datasets for v in generate["variants"].values()):
        del raw["generate"]  # generation names variants of the old datasets
    return raw


def tiny_params(**overrides: Any) -> Params:
    """The repository's params with tiny dataset sizes and small shards, then `overrides` (top-level sections)."""
    raw = repo_params_raw()
    raw["shards"] = {"rows_per_group": 8, "groups_per_shard": 2, "compression": "zstd"}
    for spec in raw["datasets"].values():
        spec["sizes"] = {"demo": {"train": 20, "valid": 6, "test": 6}, "paper": {"train": 20, "valid": 6, "test": 6}}
    raw.update(overrides)
    return parse_params(raw)
