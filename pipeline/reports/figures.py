"""The paper's result figures (Fig. 3-6) as violin plots, and the small spectrograms of the HTML demo page.

Every figure shows one violin per system (references included), NaN values dropped and counted in the
system's label ("(3 failed)"), medians marked and written beside the violin, and a subtitle naming the profile
so a demo figure is never mistaken for the paper's. Same data -> same PNG bytes (`plots._save`).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import matplotlib
import numpy as np
import pandas as pd

from pipeline.reports.plots import _save

matplotlib.use("Agg")
import matplotlib.image  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402

DPI = 110
METRIC_LABELS = {"sdr": "SDR (dB)", "sir": "SIR (dB)", "sar": "SAR (dB)", "si_sdri": "SI-SNRi (dB)",
                 "pesq": "PESQ (MOS-LQO, narrow band)"}
REFERENCE_COLOUR, MODEL_COLOUR = "#7f7f7f", "#1f77b4"
ORACLE = "reference.oracle.oracle"
MIXTURE = "reference.mixture.oracle"
REFERENCE_LABELS = {ORACLE: "reference · oracle mask", MIXTURE: "reference · unprocessed mixture"}
# The unprocessed mixture is a sum of the references: it has no artefacts, its SAR (~150 dB) is no score.
OFF_AXIS = {"sar": (MIXTURE,)}


def profile_note(profile: str) -> str:
    """The subtitle every figure and page carries: which data the numbers come from."""
    if profile == "demo":
        return "profile demo: synthetic demo corpus — not a reproduction of the paper"
    return f"profile {profile}: the paper's corpora"


@dataclass(frozen=True)
class Row:
    """One violin: a system's finite values of a metric and how many of its values were NaN (dropped)."""

    label: str
    values: np.ndarray      # (N,) finite values
    dropped: int
    reference: bool = False
    key: str = ""

    @property
    def total(self) -> int:
        return int(self.values.size) + self.dropped


def metric_rows(scores: pd.DataFrame, systems: Sequence[tuple[str, str]], metric: str,
                only_speech: bool = False) -> list[Row]:
    """Rows of `metric` for `systems` ((key, label) pairs, in order) from a scores table.

    `only_speech` keeps speech sources only (PESQ is undefined elsewhere, so those NaNs are not failures).
    """
    rows = []
    for key, label in systems:
        frame = scores[scores["system"] == key]
        if only_speech and "speech" in frame.columns:
            frame = frame[frame["speech"].astype(bool)]
        values = frame[metric].to_numpy(dtype=np.float64) if metric in frame.columns else np.full(len(frame), np.nan)
        finite = values[np.isfinite(values)]
        rows.append(Row(label, finite, int(values.size - finite.size), key.startswith("reference."), key))
    return rows


def violin_figure(panels: dict[str, list[Row]], path: str | Path, title: str, profile: str) -> Path:
    """One horizontal violin panel per metric (name -> rows, same systems in every panel), systems top-down."""
    names = list(panels)
    count = len(next(iter(panels.values())))
    height = 1.3 + 0.36 * count
    width = 3.3 * len(names) + 3.4
    fig, axes = plt.subplots(1, len(names), figsize=(width, height), dpi=DPI, sharey=True, squeeze=False)
    first = panels[names[0]]
    for column, (ax, name) in enumerate(zip(axes[0], names)):
        _violins(ax, panels[name], METRIC_LABELS.get(name, name), label_dropped=[r.dropped for r in first],
                 off_axis=OFF_AXIS.get(name, ()))
    labels = [f"{row.label} ({row.dropped} of {row.total} failed)" if row.dropped else row.label for row in first]
    axes[0][0].set_yticks(range(count), labels, fontsize=8)
    for tick, row in zip(axes[0][0].get_yticklabels(), first):
        tick.set_color("#444444" if row.reference else "black")
    axes[0][0].set_ylim(count - 0.4, -0.6)
    fig.suptitle(f"{title}\n{profile_note(profile)}", fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def _violins(ax, rows: list[Row], xlabel: str, label_dropped: list[int], off_axis: Sequence[str] = ()) -> None:
    """Draw each row at y = its position; a row with < 2 distinct values is drawn as points."""
    for y, row in enumerate(rows):
        colour = REFERENCE_COLOUR if row.reference else MODEL_COLOUR
        if np.unique(row.values).size >= 2:
            parts = ax.violinplot([row.values], positions=[y], orientation="horizontal", widths=0.8, showmedians=True,
                                  showextrema=False)
            for body in parts["bodies"]:
                body.set_facecolor(colour)
                body.set_edgecolor(colour)
                body.set_alpha(0.45)
            parts["cmedians"].set_color("black")
        elif row.values.size:
            ax.plot(row.values, np.full(row.values.size, y), "|", color=colour, ms=12)
        if row.values.size:
            median = float(np.median(row.values))
            ax.plot([median], [y], "o", color="white", mec="black", ms=4, zorder=3)
            ax.annotate(f"{median:.2f}", (median, y), xytext=(0, 7), textcoords="offset points", fontsize=6,
                        ha="center", va="bottom")
        note = "no values" if not row.values.size else (
            f"{row.dropped} dropped" if row.dropped != label_dropped[y] else "")
        if note:
            ax.annotate(note, (1.0, y), xycoords=("axes fraction", "data"), xytext=(-3, 0),
                        textcoords="offset points", fontsize=6, ha="right", va="center", color="#aa0000")
    limits = axis_limits(rows, off_axis) if off_axis else None
    if limits is not None:
        ax.set_xlim(*limits)
        for y, row in enumerate(rows):
            median = float(np.median(row.values)) if row.values.size else None
            if median is not None and not limits[0] <= median <= limits[1]:
                right = median > limits[1]
                ax.annotate(f"median {median:.2f} ▸" if right else f"◂ median {median:.2f}",
                            (1.0 if right else 0.0, y), xycoords=("axes fraction", "data"),
                            xytext=(-3 if right else 3, 0), textcoords="offset points", fontsize=7,
                            ha="right" if right else "left", va="center", color="#444444")
    ax.set_xlabel(xlabel, fontsize=9)
    ax.tick_params(axis="x", labelsize=8)
    ax.grid(axis="x", alpha=0.3)


def axis_limits(rows: list[Row], off_axis: Sequence[str]) -> tuple[float, float] | None:
    """x-range covering every value of every row but those of `off_axis` (system keys), padded by 5 %.

    An off-axis row whose median lies outside gets it written at the edge. None when no other row has values.
    """
    spans = [(float(row.values.min()), float(row.values.max())) for row in rows
             if row.values.size and row.key not in off_axis]
    if not spans:
        return None
    lo, hi = min(float(s[0]) for s in spans), max(float(s[1]) for s in spans)
    pad = 0.05 * (hi - lo) if hi > lo else 0.5
    return lo - pad, hi + pad


# --------------------------------------------------------------------------------------------------------------
# Spectrograms of the demo page


def log_spectrogram(signal: np.ndarray, n_fft: int = 400, hop: int = 200) -> np.ndarray:
    """Log-magnitude (dB) of a centred STFT with a periodic Hann window: (L,) -> (F, T), F = n_fft // 2 + 1.

    Non-finite samples are treated as zeros.
    """
    signal = np.nan_to_num(np.asarray(signal, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    if signal.ndim != 1 or signal.size == 0:
        raise ValueError(f"log_spectrogram needs a 1-D signal (samples,); got shape {signal.shape}")
    padded = np.pad(signal, n_fft // 2, mode="reflect" if signal.size > n_fft // 2 else "constant")
    frames = 1 + (padded.size - n_fft) // hop
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)
    index = np.arange(n_fft)[None, :] + hop * np.arange(frames)[:, None]
    spectrum = np.abs(np.fft.rfft(padded[index] * window, axis=1)).T
    return 20.0 * np.log10(spectrum + 1e-8)


def save_spectrogram(spectrogram_db: np.ndarray, path: str | Path, top_db: float, range_db: float = 80.0,
                     time_repeat: int = 5) -> Path:
    """A (F, T) dB spectrogram as a small PNG (low frequencies at the bottom, `top_db - range_db` .. `top_db`).

    Written pixel per bin (time stretched by `time_repeat`), without axes: the page scales it; deterministic.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image = np.repeat(spectrogram_db[::-1], time_repeat, axis=1)
    matplotlib.image.imsave(path, image, cmap="magma", vmin=top_db - range_db, vmax=top_db, format="png",
                            metadata={"Software": None})
    return path


# --------------------------------------------------------------------------------------------------------------
# The paper's figures



@dataclass(frozen=True)
class FigureSpec:
    """One of the paper's figures: file name, dataset, metrics (one panel each) and which systems it shows."""

    name: str
    dataset: str
    metrics: tuple[str, ...]
    rows: str              # "all": every system of the dataset; "losses": the oracle + each variant's forward·oracle
    title: str
    only_speech: bool = False

    @property
    def filename(self) -> str:
        return f"{self.name}.png"


FIGURES = (
    FigureSpec("fig3_d1_bss_eval", "d1", ("sdr", "sir", "sar"), "all", "d1: BSS-Eval per system (paper Fig. 3)"),
    FigureSpec("fig4_d2_bss_eval", "d2", ("sdr", "sir", "sar"), "all", "d2: BSS-Eval per system (paper Fig. 4)"),
    FigureSpec("fig5_d4_si_snri", "d4", ("si_sdri",), "losses",
               "d4: SI-SNRi per training loss, forward · oracle classes (paper Fig. 5)"),
    FigureSpec("fig6_d3_pesq", "d3", ("pesq",), "all", "d3: PESQ of the speech sources per system (paper Fig. 6)",
               only_speech=True),
)


def system_label(key: str) -> str:
    """Legend text of a system key: `class-vae.inverse_joint.classify` -> 'class-vae · inverse (joint) · classify'."""
    from pipeline.separators.base import System

    if key in REFERENCE_LABELS:
        return REFERENCE_LABELS[key]
    return System.from_key(key).label


def figure_systems(spec: FigureSpec, scores: pd.DataFrame, loss_of: dict[str, str]) -> list[tuple[str, str]]:
    """(system key, label) pairs of a figure, top to bottom. `loss_of`: training name -> loss, to order Fig. 5."""
    keys = list(dict.fromkeys(scores["system"]))  # evaluation order: references first, then each variant
    if spec.rows == "all":
        return [(key, system_label(key)) for key in keys]
    from pipeline.config import LOSSES

    forward = [key for key in keys if key.endswith(".forward.oracle") and not key.startswith("reference.")]

    def order(key: str) -> tuple[int, str]:
        loss = loss_of.get(key.rsplit(".", 2)[0], "")
        return (LOSSES.index(loss) if loss in LOSSES else len(LOSSES), key)

    rows = [(ORACLE, system_label(ORACLE))] if ORACLE in keys else []
    for key in sorted(forward, key=order):
        training = key.rsplit(".", 2)[0]
        loss = loss_of.get(training)
        rows.append((key, f"{training} (loss {loss})" if loss and loss != training else training))
    return rows


def paper_figure(spec: FigureSpec, scores: pd.DataFrame, plots_dir: str | Path, profile: str,
                 loss_of: dict[str, str]) -> Path:
    """Draw `spec` from one dataset's scores into `plots_dir/<name>.png`."""
    systems = figure_systems(spec, scores, loss_of)
    if not systems:
        raise ValueError(f"{spec.name}: no systems to plot in the {spec.dataset} scores")
    panels = {metric: metric_rows(scores, systems, metric, spec.only_speech) for metric in spec.metrics}
    return violin_figure(panels, Path(plots_dir) / spec.filename, spec.title, profile)
