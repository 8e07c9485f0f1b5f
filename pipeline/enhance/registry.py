"""The model registry: which trained model `enhance` uses by default, and which of its classes are dialogue.

Written by the `select_model` stage after evaluation: among the variants trained on a dataset with dialogue
(speech) classes and other classes, and whose model a separator kind can stream (`Kind.window`), the one that
does the main job best: the highest median dialogue SI-SDR improvement of `enhance` itself on the long test
scenes at a 0 dB dialogue-to-background ratio (`evaluate_scenes`). Each entry also records the figure on the
1-s test clips (that kind's row with estimated classes; for the VAE, forward inference with estimated classes);
only when no dataset has scenes does that figure pick the default.

An entry names the separator kind that reads its model file under `separator`; entries without one are
`DEFAULT_STREAM_KIND` (the VAE's forward inference), which is left out so registries stay as they were.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.config import Params
from pipeline.enhance.registry_file import existing_model, model_path, read_registry
from pipeline.separators.base import System
from pipeline.separators.registry import DEFAULT_STREAM_KIND, KINDS
from pipeline.shards import write_json

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_REGISTRY = REPO_ROOT / "models" / "registry.json"
SELECTION = "median dialogue SI-SDRi of enhance on the 0 dB test scenes"
SELECTION_WITHOUT_SCENES = "median SI-SDRi of dialogue sources, forward inference with estimated classes, test split"
SCENE_RATIO_DB = 0.0


def streaming_row(params: Params, variant: str) -> System | None:
    """The row that ranks `variant` for enhance: the estimated-class row of the first kind that streams it."""
    dataset = params.variants[variant].dataset
    for kind in KINDS.values():
        if kind.window is None:
            continue
        for row in kind.rows(dataset, params, variant):
            if row.classes != "oracle":
                return row
    return None


def build_registry(params: Params, evaluation_dir: Path, models_dir: Path,
                   scene_evaluation_dir: Path | None = None) -> dict[str, Any]:
    """Score every dialogue-capable variant from its evaluation scores (and its scene scores, when its dataset
    has scenes under `scene_evaluation_dir`) and name the best one the default."""
    models: dict[str, Any] = {}
    for variant, config in sorted(params.variants.items()):
        if config.dataset not in params.datasets:
            continue  # trained on a subtitled set: no test split ranks it (`enhance --model` takes its file)
        dataset = params.datasets[config.dataset]
        dialogue = list(params.evaluate.of(config.dataset).speech)
        if not dialogue or set(dialogue) == set(dataset.class_names):
            continue  # nothing to remix against
        row = streaming_row(params, variant)
        if row is None:
            continue  # no separator kind streams this model
        scores_path = Path(evaluation_dir) / config.dataset / "scores.parquet"
        if not scores_path.is_file():
            raise FileNotFoundError(f"{scores_path} not found; run evaluate@{config.dataset} first")
        scores = pd.read_parquet(scores_path, columns=["system", "source", "si_sdri"])
        picked = scores[(scores["system"] == row.key) & scores["source"].isin(dialogue)]["si_sdri"]
        models[variant] = {
            "path": (Path(models_dir) / config.dataset / variant / "model.pt").as_posix(),
            "dataset": config.dataset,
            "classes": list(dataset.class_names),
            "dialogue_classes": dialogue,
            "dialogue_si_sdri_median": round(float(picked.median()), 4) if len(picked) else None,
            **({} if row.kind == DEFAULT_STREAM_KIND else {"separator": row.kind}),
        }
        if scene_evaluation_dir is not None and config.dataset in params.scenes.datasets:
            models[variant]["scene_dialogue_si_sdri_0dB"] = _scene_figure(scene_evaluation_dir, config.dataset,
                                                                          variant)
    if not models:
        raise ValueError("no trained variant has both dialogue and other classes (see evaluate.datasets.*.speech) "
                         "and a separator kind that streams it")
    with_scenes = [name for name in models if models[name].get("scene_dialogue_si_sdri_0dB") is not None]
    figure, selection = (("scene_dialogue_si_sdri_0dB", SELECTION) if with_scenes
                         else ("dialogue_si_sdri_median", SELECTION_WITHOUT_SCENES))
    best = max(with_scenes or models, key=lambda name: models[name][figure] or float("-inf"))
    return {"default": best, "selection": selection, "models": models}


def _scene_figure(scene_evaluation_dir: Path, dataset: str, variant: str) -> float | None:
    """Median dialogue SI-SDRi of `variant` on the 0 dB scenes of `dataset`."""
    path = Path(scene_evaluation_dir) / dataset / "scores.parquet"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; run evaluate_scenes@{dataset} first")
    scores = pd.read_parquet(path, columns=["model", "ratio_db", "dialogue_si_sdri"])
    picked = scores[(scores["model"] == variant) & (scores["ratio_db"] == SCENE_RATIO_DB)]["dialogue_si_sdri"]
    if picked.empty:
        raise ValueError(f"{path} has no 0 dB scene scored with {variant}; add 0.0 to scenes.ratios_db")
    return round(float(picked.median()), 4)


def write_registry(registry: dict[str, Any], path: Path = DEFAULT_REGISTRY) -> None:
    write_json(path, registry)


def resolve_model(model: str | None, dialogue_classes: list[str] | None,
                  registry_path: Path = DEFAULT_REGISTRY) -> tuple[Path, list[str], str]:
    """The model file, dialogue classes and separator kind to use: explicit ones, else the registry's default.

    A model file the registry does not list is read by `DEFAULT_STREAM_KIND`. ValueError naming the registry when
    it is broken; FileNotFoundError when its default names a missing model file.
    """
    registry = read_registry(registry_path)
    if model is None:
        if registry is None:
            raise FileNotFoundError(f"no --model given and no registry at {registry_path}; run `./run.sh repro` "
                                    f"first (it trains the models and writes the registry) or pass --model")
        name = registry["default"]
        entry = registry["models"][name]
        path = existing_model(name, entry, registry_path)
        return path, dialogue_classes or entry["dialogue_classes"], _kind(entry)
    path = Path(model)
    for entry in (registry or {}).get("models", {}).values():
        if model_path(entry, registry_path).resolve() == path.resolve():
            return path, dialogue_classes or entry["dialogue_classes"], _kind(entry)
    if dialogue_classes:
        return path, dialogue_classes, DEFAULT_STREAM_KIND
    raise ValueError(f"model {path} is not in the registry {registry_path}: say which of its classes are dialogue "
                     f"with --dialogue-classes")


def scene_figure_of(model: Path, registry_path: Path = DEFAULT_REGISTRY) -> float | None:
    """The registry's 0 dB scene figure (median dialogue SI-SDRi of enhance) of a model file, if it has one."""
    registry = read_registry(registry_path) or {}
    for entry in registry.get("models", {}).values():
        if model_path(entry, registry_path).resolve() == Path(model).resolve():
            return entry.get("scene_dialogue_si_sdri_0dB")
    return None


def _kind(entry: dict[str, Any]) -> str:
    return entry.get("separator", DEFAULT_STREAM_KIND)
