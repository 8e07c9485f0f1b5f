"""The report over every evaluated dataset: merged metrics, the paper's figures, the paper comparison, a web page.

`build_report` reads `<evaluation>/<dataset>/{metrics.json, scores.parquet, examples.npz}` (written by
`evaluate@<dataset>`) and writes under `out`:

- `metrics.json`: every dataset's metrics merged, sorted (what `dvc metrics diff` compares);
- `plots/fig{3,4,5,6}_*.png`: the paper's Fig. 3-6 as violin plots (a figure whose dataset was not evaluated is
  skipped with a warning);
- `paper_comparison.md` / `.csv`: the paper's numbers beside ours;
- `index.html` and `site/`: a page that opens from disk (tables, figures, training summary, comparison, and
  audio players with spectrograms of a few test mixtures per dataset).

Same inputs -> byte-identical outputs (sorted iteration, fixed PNG metadata, no timestamps).
"""
from __future__ import annotations

import json
import logging
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import soundfile as sf

from pipeline.config import Params
from pipeline.reports import html as H
from pipeline.reports.figures import FIGURES, ORACLE, log_spectrogram, paper_figure, profile_note, \
    save_spectrogram, system_label
from pipeline.reports.generation import generation_section, merge_generation_metrics, read_generations
from pipeline.reports.paper import compare_with_paper, profile_banner, trained_variants, write_comparison
from pipeline.reports.scenes import FIGURE as SCENE_FIGURE
from pipeline.reports.scenes import merge_scene_metrics, read_scene_evaluations, scene_figure, scene_section
from pipeline.reports.solo import solo_study_figure

log = logging.getLogger(__name__)

TITLE = "Dialogue enhancement with non-negative VAEs — evaluation report"
SITE = "site"
PLOTS = "plots"
FIGURE_NOTE = ("Violins over test sources, medians marked and written; \"k of n failed\": values that could not "
               "be scored (NaN) and are left out; BSS-Eval fails for every source of a mixture with one silent "
               "estimate, so this can exceed the table's \"failed\" (sources).")
TABLE_COLUMNS = {  # pipeline.evaluation.tables.MARKDOWN_COLUMNS, repeated to keep this module light
    "training": "training", "method": "signal estimate", "classes": "classes",
    "sdr_median": "SDR", "sir_median": "SIR", "sar_median": "SAR", "si_sdri_median": "SI-SDRi",
    "pesq_median": "PESQ", "spectral_snr_mean": "spectral SNR", "envelope_distance_mean": "envelope dist.",
    "label_accuracy": "labels right", "n_failed": "failed", "mixtures": "mixtures",
}


@dataclass
class Evaluation:
    """What `evaluate@<dataset>` wrote for one dataset."""

    dataset: str
    folder: Path
    metrics: dict[str, Any]
    scores: pd.DataFrame
    examples: Path | None = None
    table: pd.DataFrame = field(default_factory=pd.DataFrame)


def build_report(params: Params, evaluation_dir: str | Path, out_dir: str | Path, *,
                 datasets: Sequence[str] | None = None, training_summary: str | Path | None = None,
                 training_curves: str | Path | None = None, tables_dir: str | Path | None = None,
                 scene_evaluation_dir: str | Path | None = None, scenes_dir: str | Path | None = None,
                 generation_dir: str | Path | None = None
                 ) -> dict[str, Path]:
    """Write the whole report under `out_dir`; returns {output name: path} of what was written.

    datasets: which evaluations to read (default: every dataset of params.yaml); one without an evaluation
    folder is skipped with a warning, but at least one must exist (FileNotFoundError otherwise).
    training_summary / training_curves: the `training_summary` stage's Markdown table and PNG (default
    `<out>/training_summary.md`, `<out>/plots/training_curves.png`), shown when present.
    tables_dir: `evaluate@<dataset>`'s `<dataset>.csv` tables (default `<out>/tables`); a missing table is
    recomputed from scores.parquet (the same `summary_table`).
    scene_evaluation_dir / scenes_dir: `evaluate_scenes@<dataset>`'s folders and the scenes themselves; their
    metrics (`scenes.<dataset>.…`), table, figure and players join the report when given.
    """
    evaluation_dir, out = Path(evaluation_dir), Path(out_dir)
    names = list(datasets) if datasets is not None else list(params.datasets)
    tables_dir = Path(tables_dir) if tables_dir is not None else out / "tables"
    evaluations = _read_evaluations(evaluation_dir, names, tables_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}

    scene_evaluations = (read_scene_evaluations(Path(scene_evaluation_dir), params.scenes.datasets)
                         if scene_evaluation_dir is not None else {})
    generations = read_generations(Path(generation_dir), params) if generation_dir is not None else {}
    metrics = dict(sorted({**merge_metrics(evaluations), **merge_scene_metrics(scene_evaluations),
                           **merge_generation_metrics(generations)}.items()))
    written["metrics"] = out / "metrics.json"
    written["metrics"].write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")

    loss_of = {v.training: v.loss for v in trained_variants(params)}
    figures: dict[str, list[tuple[str, str]]] = {}
    for spec in FIGURES:
        path = out / PLOTS / spec.filename
        evaluation = evaluations.get(spec.dataset)
        if evaluation is None:
            log.warning("skipping %s: dataset %s was not evaluated (no %s)", spec.filename, spec.dataset,
                        evaluation_dir / spec.dataset)
            path.unlink(missing_ok=True)
            continue
        written[spec.name] = paper_figure(spec, evaluation.scores, out / PLOTS, params.profile, loss_of)
        figures.setdefault(spec.dataset, []).append((f"{PLOTS}/{spec.filename}", f"{spec.title}. {FIGURE_NOTE}"))
        log.info("wrote %s", written[spec.name])

    for name in evaluations:
        filename = f"solo_segments_{name}.png"
        if solo_study_figure(params, metrics, name, out / PLOTS / filename) is not None:
            written[f"solo_segments_{name}"] = out / PLOTS / filename
            figures.setdefault(name, []).append((f"{PLOTS}/{filename}", "Class supervision with solo segments: "
                                                 "SDR against their share in training (forward inference, oracle "
                                                 "classes), the source-trained model as a dashed line."))

    if scene_evaluations:
        gains = params.scenes.enhance
        written["scenes_figure"] = scene_figure(scene_evaluations, out / PLOTS / SCENE_FIGURE, params.profile,
                                                gains.dialogue_gain_db - gains.background_gain_db)
    claims = compare_with_paper(params, metrics, {name: e.scores for name, e in evaluations.items()})
    written["paper_md"], written["paper_csv"] = out / "paper_comparison.md", out / "paper_comparison.csv"
    write_comparison(claims, params.profile, written["paper_md"], written["paper_csv"])

    site = out / SITE
    if site.exists():
        shutil.rmtree(site)  # this stage owns the folder: no stale clips from an earlier run
    examples = {name: _example_blocks(e, metrics, site, out) for name, e in evaluations.items()}
    extra = [("scenes", "long scenes", _scenes_section(params, scene_evaluations, Path(scenes_dir or "data/scenes"),
                                                       tables_dir, site, out))] if scene_evaluations else []
    if generations:
        extra.append(("generation", "generation", generation_section(params, generations, site, out)))
    summary = Path(training_summary) if training_summary is not None else out / "training_summary.md"
    curves = Path(training_curves) if training_curves is not None else out / PLOTS / "training_curves.png"
    written["index"] = out / "index.html"
    written["index"].write_text(_page(params, evaluations, figures, examples, summary, curves, out,
                                      written["paper_md"], extra))
    written["site"] = site
    log.info("report: %d datasets, %d figures, %s", len(evaluations), len(figures), written["index"])
    return written


# --------------------------------------------------------------------------------------------------------------
# Inputs


def _read_evaluations(evaluation_dir: Path, names: Sequence[str], tables_dir: Path) -> dict[str, Evaluation]:
    found = {}
    for name in names:
        folder = evaluation_dir / name
        if not folder.is_dir():
            log.warning("dataset %s: no evaluation folder %s; left out of the report", name, folder)
            continue
        for required in ("metrics.json", "scores.parquet"):
            if not (folder / required).is_file():
                raise FileNotFoundError(f"{folder / required} not found: re-run evaluate@{name}")
        scores = pd.read_parquet(folder / "scores.parquet")
        examples = folder / "examples.npz"
        found[name] = Evaluation(name, folder, json.loads((folder / "metrics.json").read_text()), scores,
                                 examples if examples.is_file() else None, _table(name, scores, tables_dir))
    if not found:
        raise FileNotFoundError(f"no evaluation of {list(names)} under {evaluation_dir}; run the evaluate stages")
    return found


def _table(name: str, scores: pd.DataFrame, tables_dir: Path) -> pd.DataFrame:
    path = tables_dir / f"{name}.csv"
    if path.is_file():
        table = pd.read_csv(path)
        if set(TABLE_COLUMNS) <= set(table.columns):
            return table
        log.warning("%s lacks columns %s; recomputing the table from scores.parquet", path,
                    sorted(set(TABLE_COLUMNS) - set(table.columns)))
    from pipeline.evaluation.summary import summary_table

    return summary_table(scores).round(4)


def merge_metrics(evaluations: Mapping[str, Evaluation]) -> dict[str, Any]:
    """Every dataset's metrics in one sorted mapping; a key not prefixed by its dataset raises ValueError."""
    merged: dict[str, Any] = {}
    for name, evaluation in sorted(evaluations.items()):
        for key, value in evaluation.metrics.items():
            if not key.startswith(f"{name}."):
                raise ValueError(f"{evaluation.folder / 'metrics.json'}: key {key!r} does not start with '{name}.'")
            merged[key] = value
    return dict(sorted(merged.items()))


# --------------------------------------------------------------------------------------------------------------
# The demo page: audio and spectrograms of a few test mixtures


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name)


def demo_systems(systems: Sequence[str], metrics: Mapping[str, Any], dataset: str) -> list[str]:
    """The oracle mask, then for each trained variant its system with the best median SDR (ties: by key)."""
    chosen = [ORACLE] if ORACLE in systems else []
    by_training: dict[str, list[str]] = {}
    for key in sorted(systems):
        if not key.startswith("reference."):
            by_training.setdefault(key.rsplit(".", 2)[0], []).append(key)
    for training, keys in sorted(by_training.items()):
        def score(key: str) -> float:
            value = metrics.get(f"{dataset}.{key}.sdr_median")
            return -np.inf if value is None else float(value)
        chosen.append(sorted(keys, key=lambda k: (-score(k), k))[0])
    return chosen


def _example_blocks(evaluation: Evaluation, metrics: Mapping[str, Any], site: Path, out: Path) -> list[str]:
    """One HTML block per example mixture of a dataset, writing its WAV and PNG files under `site/<dataset>`."""
    if evaluation.examples is None:
        log.warning("dataset %s: no examples.npz; the page has no audio for it", evaluation.dataset)
        return []
    dataset = evaluation.dataset
    with np.load(evaluation.examples) as archive:
        arrays = {key: archive[key] for key in archive.files}
    index = json.loads(str(arrays.pop("index")))
    classes, rate = index["classes"], int(index["sample_rate"])
    blocks = []
    for tag in sorted(index["mixtures"], key=lambda t: (len(t), t)):
        info = index["mixtures"][tag]
        systems = [key for key in demo_systems([k for k in info if k != "labels"], metrics, dataset)
                   if f"{tag}/{key}" in arrays]
        mixture, references = arrays[f"{tag}/mixture"], arrays[f"{tag}/references"]
        present = [k for k, flag in enumerate(info["labels"]) if flag]
        signals = [mixture, *references[present], *(arrays[f"{tag}/{s}"][present] for s in systems)]
        peak = max(float(np.max(np.abs(np.nan_to_num(np.asarray(s, dtype=np.float64))), initial=0.0))
                   for s in signals)
        gain = 0.99 / peak if peak > 0.99 else 1.0  # one gain per example: levels stay comparable
        top = float(np.max(log_spectrogram(mixture)))
        folder = site / dataset / tag

        def asset(name: str, signal: np.ndarray, caption: str, note: str = "") -> str:
            wav, png = folder / f"{_safe(name)}.wav", folder / f"{_safe(name)}.png"
            wav.parent.mkdir(parents=True, exist_ok=True)
            samples = np.nan_to_num(np.asarray(signal, dtype=np.float64)) * gain
            sf.write(str(wav), np.clip(samples, -1.0, 1.0), rate, subtype="PCM_16", format="WAV")
            save_spectrogram(log_spectrogram(signal), png, top_db=top)
            return H.clip(caption, wav.relative_to(out).as_posix(), png.relative_to(out).as_posix(), note)

        names = ", ".join(classes[k] for k in present)
        rows = [H.clip_row("mixture", [asset("mixture", mixture, "mixture")])]
        for k in present:
            clips = [asset(f"{classes[k]}--reference", references[k], f"{classes[k]}: reference")]
            for system in systems:
                estimate = arrays[f"{tag}/{system}"][k]
                used = info.get(system)
                note = "labelled absent by this system" if used is not None and not used[k] else ""
                if not np.isfinite(estimate).all():
                    note = "; ".join(filter(None, (note, "non-finite samples set to 0")))
                median = metrics.get(f"{dataset}.{system}.sdr_median")
                caption = system_label(system)
                if median is not None:
                    caption += f" (median SDR {median:.1f} dB)"
                clips.append(asset(f"{classes[k]}--{system}", estimate, caption, note))
            rows.append(H.clip_row(classes[k], clips))
        blocks.append(f'<div class="example"><h4>{H.esc(dataset)} · test mixture {H.esc(tag)} — classes present: '
                      f"{H.esc(names)}</h4>\n" + "\n".join(rows) + "</div>")
    return blocks


# --------------------------------------------------------------------------------------------------------------
# The page


def _format_table(table: pd.DataFrame) -> tuple[list[str], list[list[str]], list[str]]:
    rows, classes = [], []
    for record in table.to_dict("records"):
        cells = []
        for column in TABLE_COLUMNS:
            value = record.get(column)
            if column in ("n_failed", "mixtures") and isinstance(value, (int, float, np.integer)) and value == value:
                cells.append(str(int(value)))
            elif isinstance(value, (float, np.floating)):
                cells.append("—" if value != value else f"{value:.2f}")
            else:
                cells.append(str(value))
        rows.append(cells)
        classes.append("reference" if record.get("training") == "reference" else "")
    return list(TABLE_COLUMNS.values()), rows, classes


def _scenes_section(params: Params, evaluations: Mapping[str, Any], scenes_dir: Path, tables_dir: Path,
                    site: Path, out: Path) -> str:
    gains = params.scenes.enhance
    layouts = ", ".join(f"{rate / 1000:g} kHz {'mono' if channels == 1 else 'stereo'}"
                        for rate, channels in params.scenes.layouts)
    body = [f"<p>What <code>enhance</code> does to long scenes ({params.scenes.seconds:g} s of dialogue lines with "
            f"pauses over a continuous background, built from the test recordings only, at {layouts}), with its "
            f"own processor, {gains.dialogue_gain_db:+g} dB dialogue and {gains.background_gain_db:+g} dB "
            f"background. Medians over the scenes of each ratio; SI-SDRi: improvement over leaving the mixture "
            f"as it is; remix fidelity: SI-SDR against the ideal remix of the true stems; ratio change: the ideal "
            f"is {gains.dialogue_gain_db - gains.background_gain_db:+g} LU. {H.esc(profile_note(params.profile))}."
            f"</p>", H.plot(f"{PLOTS}/{SCENE_FIGURE}", "enhance on long scenes: dialogue SI-SDRi and ratio change")]
    for name, evaluation in sorted(evaluations.items()):
        body.append(f"<h3>{H.esc(name)}</h3>")
        body.append(scene_section(evaluation, scenes_dir, tables_dir, site, out))
    return H.section("scenes", "enhance on long scenes", "\n".join(body))


def _page(params: Params, evaluations: Mapping[str, Evaluation], figures: Mapping[str, list[tuple[str, str]]],
          examples: Mapping[str, list[str]], summary: Path, curves: Path, out: Path, comparison: Path,
          extra: Sequence[tuple[str, str, str]] = ()) -> str:
    """`extra`: (anchor, nav label, section HTML) of the sections after the comparison (scenes, generation)."""
    nav = [("comparison", "paper comparison")]
    sections = []
    text = comparison.read_text().split("\n", 1)[1]  # drop the H1: the section has its own title
    sections.append(H.section("comparison", "The paper's numbers beside ours", H.markdown_to_html(text, 1)))
    for anchor, label, html in extra:
        nav.append((anchor, label))
        sections.append(html)
    for name, evaluation in evaluations.items():
        nav.append((f"dataset-{name}", name))
        classes = ", ".join(params.datasets[name].class_names) if name in params.datasets else ""
        header, rows, row_classes = _format_table(evaluation.table)
        body = [f"<p>Classes: {H.esc(classes)}. Medians over test sources; SDR/SIR/SAR/SI-SDRi in dB, PESQ narrow "
                f"band (speech classes only); <em>failed</em>: sources whose BSS-Eval is undefined, kept out of the "
                f"medians; <em>labels right</em>: share of mixtures whose class set was estimated exactly. "
                f"{H.esc(profile_note(params.profile))}.</p>",
                H.table(header, rows, row_classes)]
        body += [H.plot(src, caption) for src, caption in figures.get(name, [])]
        if examples.get(name):
            body.append(f"<h3>Listen: {len(examples[name])} test mixtures</h3><p>The mixture, then per class "
                        f"present its reference and the estimates of the oracle mask and of each trained variant's "
                        f"best system (by median SDR). One gain per mixture; spectrograms: log magnitude, STFT "
                        f"400/200 Hann, 80 dB range.</p>")
            body += examples[name]
        sections.append(H.section(f"dataset-{name}", f"Dataset {name}", "\n".join(body)))
    training = []
    if summary.is_file():
        training.append(H.markdown_to_html(summary.read_text(), 2))
    if curves.is_file():
        training.append(H.plot(_relative(curves, out), "training curves of every variant"))
    if training:
        nav.append(("training", "training"))
        sections.append(H.section("training", "Training", "\n".join(training)))
    intro = f"<div>{H.esc(', '.join(evaluations))} · {H.esc(params.profile)} profile</div>"
    return H.page(TITLE, profile_banner(params.profile), params.profile, nav, sections, intro)


def _relative(path: Path, out: Path) -> str:
    import os

    return Path(os.path.relpath(path.resolve(), out.resolve())).as_posix()
