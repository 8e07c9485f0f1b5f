"""The long-scene part of the report: `enhance` on scenes, as metrics, a table, a figure and players.

Reads what `evaluate_scenes@<dataset>` wrote (`<scene_evaluation>/<dataset>/{metrics.json, scores.parquet,
examples/}`) and the scenes themselves (`<scenes>/<dataset>/`, for the true stems to listen to).
"""
from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import soundfile as sf

from pipeline.reports import html as H
from pipeline.reports.figures import DPI, log_spectrogram, profile_note, save_spectrogram
from pipeline.reports.plots import _save

import matplotlib.pyplot as plt  # noqa: E402  (pipeline.reports.figures chose the Agg backend)

log = logging.getLogger(__name__)

FIGURE = "scenes_dialogue_si_sdri.png"
COLUMNS = {"model": "model", "ratio": "dialogue/background", "dialogue_si_sdri": "dialogue SI-SDRi",
           "background_si_sdri": "background SI-SDRi", "remix_fidelity": "remix fidelity",
           "mixture_remix_fidelity": "mixture's fidelity", "ratio_change_lu": "ratio change (LU)",
           "scenes": "scenes"}  # of pipeline.enhance.scenes.SUMMARY_COLUMNS (not imported: reports read files)


@dataclass
class SceneEvaluation:
    dataset: str
    folder: Path
    metrics: dict[str, Any]
    scores: pd.DataFrame


def read_scene_evaluations(folder: Path, names: Sequence[str]) -> dict[str, SceneEvaluation]:
    """The scene evaluations of `names` that exist under `folder` (none is fine: a project without scenes)."""
    found = {}
    for name in names:
        path = Path(folder) / name
        if not (path / "metrics.json").is_file():
            log.warning("dataset %s: no scene evaluation in %s; left out of the report", name, path)
            continue
        found[name] = SceneEvaluation(name, path, json.loads((path / "metrics.json").read_text()),
                                      pd.read_parquet(path / "scores.parquet"))
    return found


def merge_scene_metrics(evaluations: Mapping[str, SceneEvaluation]) -> dict[str, Any]:
    """Every `scenes.<dataset>.…` key in one mapping; a key of another dataset raises ValueError."""
    merged: dict[str, Any] = {}
    for name, evaluation in sorted(evaluations.items()):
        for key, value in evaluation.metrics.items():
            if not key.startswith(f"scenes.{name}."):
                raise ValueError(f"{evaluation.folder / 'metrics.json'}: key {key!r} does not start with "
                                 f"'scenes.{name}.'")
            merged[key] = value
    return merged


def scene_figure(evaluations: Mapping[str, SceneEvaluation], path: Path, profile: str,
                 ideal_change_lu: float) -> Path:
    """Per dataset: dialogue SI-SDRi (left) and the ratio change in LU (right) against the scene's
    dialogue-to-background ratio, one line per model (medians, with each scene as a dot)."""
    fig, axes = plt.subplots(len(evaluations), 2, figsize=(10, 3.2 * len(evaluations)), dpi=DPI, squeeze=False)
    for row, (name, evaluation) in enumerate(sorted(evaluations.items())):
        for column, (metric, label) in enumerate((("dialogue_si_sdri", "dialogue SI-SDRi (dB)"),
                                                  ("ratio_change_lu", "dialogue/background change (LU)"))):
            ax = axes[row, column]
            for model, frame in evaluation.scores.groupby("model", sort=True):
                medians = frame.groupby("ratio_db")[metric].median()
                line, = ax.plot(medians.index, medians.to_numpy(), marker="o", label=model)
                ax.scatter(frame["ratio_db"], frame[metric], s=8, alpha=0.35, color=line.get_color())
            ax.axhline(0.0 if column == 0 else ideal_change_lu, color="#7f7f7f", lw=1, ls="--",
                       label="no change" if column == 0 else "ideal remix")
            ax.set_xlabel("dialogue-to-background ratio of the scene (LU)")
            ax.set_ylabel(label)
            ax.set_title(f"{name}: {label.split(' (')[0]}", fontsize=10)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
    fig.suptitle(f"enhance on long scenes — {profile_note(profile)}", fontsize=9)
    fig.tight_layout()
    return _save(fig, path)


def scene_table(evaluation: SceneEvaluation, tables_dir: Path) -> tuple[list[str], list[list[str]]]:
    """The rows of `tables/scenes_<dataset>.csv` (written by evaluate_scenes) for the page."""
    table = pd.read_csv(Path(tables_dir) / f"scenes_{evaluation.dataset}.csv")
    rows = [[("—" if value != value else f"{value:.2f}") if isinstance(value, float) else str(value)
             for value in (record[c] for c in COLUMNS)] for record in table.to_dict("records")]
    return list(COLUMNS.values()), rows


def clip_check_rows(evaluation: SceneEvaluation) -> list[list[str]]:
    """Per model: dialogue SI-SDRi of the model alone on each 1-s test clip, of `enhance` on the same clips
    joined, and the gap (`scenes.<dataset>.<model>.clips.*`)."""
    found: dict[str, dict[str, float]] = {}
    prefix = f"scenes.{evaluation.dataset}."
    for key, value in evaluation.metrics.items():
        model, _, rest = key.removeprefix(prefix).partition(".clips.")
        if rest and value is not None:
            found.setdefault(model, {})[rest] = value
    return [[model, f"{m['alone_si_sdri']:.2f}", f"{m['enhance_si_sdri']:.2f}", f"{m['gap_db']:+.2f}"]
            for model, m in sorted(found.items()) if {"alone_si_sdri", "enhance_si_sdri", "gap_db"} <= set(m)]


def scene_section(evaluation: SceneEvaluation, scenes_dir: Path, tables_dir: Path, site: Path, out: Path) -> str:
    """The HTML of one dataset's scenes: the table, the clip check, then players for the scene kept for
    listening."""
    header, rows = scene_table(evaluation, tables_dir)
    body = [H.table(header, rows)]
    clip_rows = clip_check_rows(evaluation)
    if clip_rows:
        body += ["<p>The same models on the 1-s test clips (dialogue SI-SDRi, median): each clip alone, as the test "
                 "tables score it, and the clips joined and run through <code>enhance</code>; target: "
                 "<code>enhance</code> loses at most 1 dB.</p>",
                 H.table(["model", "alone", "enhance", "gap"], clip_rows)]
    body += _players(evaluation, Path(scenes_dir) / evaluation.dataset, site, out)
    return "\n".join(body)


def _players(evaluation: SceneEvaluation, scenes: Path, site: Path, out: Path) -> list[str]:
    examples = evaluation.folder / "examples"
    if not examples.is_dir():
        return []
    blocks = []
    for scene in sorted(p.name for p in examples.iterdir() if p.is_dir()):
        folder = site / "scenes" / evaluation.dataset / scene
        folder.mkdir(parents=True, exist_ok=True)
        dialogue, rate = sf.read(scenes / scene / "dialogue.flac", dtype="float32", always_2d=True)
        background, _ = sf.read(scenes / scene / "background.flac", dtype="float32", always_2d=True)
        top = float(np.max(_spectrogram(dialogue + background)))

        def asset(name: str, audio: np.ndarray, caption: str) -> str:
            target, png = folder / f"{name}.flac", folder / f"{name}.png"
            sf.write(target, audio, rate, subtype="PCM_16")
            save_spectrogram(_spectrogram(audio), png, top_db=top, time_repeat=1)
            return H.clip(caption, target.relative_to(out).as_posix(), png.relative_to(out).as_posix())

        clips = [asset("mixture", dialogue + background, "mixture"), asset("dialogue", dialogue, "true dialogue")]
        for output in sorted(examples.glob(f"{scene}/*.output.flac")):
            model = output.name.removesuffix(".output.flac")
            audio, _ = sf.read(output, dtype="float32", always_2d=True)
            clips.append(asset(model, audio, f"enhance with {model}"))
        blocks.append(f"<h4>{H.esc(evaluation.dataset)} · scene {H.esc(scene)}</h4>"
                      + H.clip_row("listen", clips))
    return blocks



def _spectrogram(audio: np.ndarray) -> np.ndarray:
    """A scene's log spectrogram for the page: the channels' mean, 1024-point frames (23 ms at 44.1 kHz)."""
    return log_spectrogram(audio.mean(axis=1), n_fft=1024, hop=1024)
