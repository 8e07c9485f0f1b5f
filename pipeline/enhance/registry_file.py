"""Reading `models/registry.json` (written by the `select_model` stage), checked: one clear error naming the file
for a file that is not valid JSON or not a registry, and for an entry naming a model file that does not exist."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

EXPECTED = 'expected the registry select_model writes: {"default": NAME, "models": {NAME: {"path": ..., ' \
           '"dialogue_classes": [...]}}} (rebuild it with ./run.sh repro select_model)'


def read_registry(path: Path) -> dict[str, Any] | None:
    """The registry at `path`, its shape checked; None when there is no file. ValueError naming the file."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        registry = json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as err:
        raise ValueError(f"registry {path}: not UTF-8 text (byte {err.start}); {EXPECTED}") from err
    except json.JSONDecodeError as err:
        raise ValueError(f"registry {path}: not valid JSON ({err.msg}, line {err.lineno} column {err.colno}); "
                         f"{EXPECTED}") from err
    if not isinstance(registry, dict) or not isinstance(registry.get("models"), dict):
        raise ValueError(f"registry {path}: holds a {type(registry).__name__} without a 'models' mapping; {EXPECTED}")
    if registry.get("default") not in registry["models"]:
        raise ValueError(f"registry {path}: default {registry.get('default')!r} is not one of its models "
                         f"{sorted(registry['models'])}; {EXPECTED}")
    for name, entry in registry["models"].items():
        _check_entry(path, name, entry)
    return registry


def model_path(entry: dict[str, Any], registry_path: Path) -> Path:
    """An entry's model file: relative paths are relative to the repository holding `registry_path`'s folder."""
    candidate = Path(entry["path"])
    return candidate if candidate.is_absolute() else Path(registry_path).resolve().parents[1] / candidate


def existing_model(name: str, entry: dict[str, Any], registry_path: Path) -> Path:
    """The model file of entry `name`; FileNotFoundError naming the registry and the file when it is missing."""
    path = model_path(entry, registry_path)
    if not path.is_file():
        raise FileNotFoundError(f"registry {registry_path}: model {name!r} names {path}, which does not exist; run "
                                f"`./run.sh repro` (it trains the models) or pass --model")
    return path


def _check_entry(path: Path, name: str, entry: Any) -> None:
    problem = None
    if not isinstance(entry, dict):
        problem = f"is a {type(entry).__name__}"
    elif not isinstance(entry.get("path"), str) or not entry["path"]:
        problem = f"has path {entry.get('path')!r}"
    elif (not isinstance(entry.get("dialogue_classes"), list) or not entry["dialogue_classes"]
          or not all(isinstance(c, str) for c in entry["dialogue_classes"])):
        problem = f"has dialogue_classes {entry.get('dialogue_classes')!r}"
    elif not isinstance(entry.get("separator", ""), str):
        problem = f"has separator {entry.get('separator')!r}"
    if problem:
        raise ValueError(f"registry {path}: model {name!r} {problem}; {EXPECTED}")
