"""Figures written as PNG files (matplotlib, no display needed)."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)


def plot_training_curve(curve: Sequence[dict[str, float]], path: str | Path, title: str) -> Path:
    """Training loss and validation loss / reconstruction against the step."""
    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=110)
    _draw_curve(ax, curve, title)
    fig.tight_layout()
    return _save(fig, path)


def plot_training_curves(curves: dict[str, Sequence[dict[str, float]]], path: str | Path, columns: int = 3) -> Path:
    """One small curve plot per variant, on one page."""
    rows = max(1, -(-len(curves) // columns))
    fig, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 2.9 * rows), dpi=100, squeeze=False)
    for ax in axes.flat[len(curves):]:
        ax.axis("off")
    for ax, (name, curve) in zip(axes.flat, sorted(curves.items())):
        _draw_curve(ax, curve, name)
    fig.tight_layout()
    return _save(fig, path)


def _draw_curve(ax, curve: Sequence[dict[str, float]], title: str) -> None:
    steps = [row["step"] for row in curve]
    ax.plot(steps, [row["train_loss"] for row in curve], marker="o", ms=3, label="train loss")
    ax.plot(steps, [row["valid_loss"] for row in curve], marker="o", ms=3, label="valid loss")
    ax.plot(steps, [row["valid_reconstruction"] for row in curve], ls="--", label="valid reconstruction")
    if curve and min(min(r["train_loss"], r["valid_loss"]) for r in curve) > 0:
        ax.set_yscale("log")
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("step")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Fixed metadata keeps the PNG bytes identical across runs with the same data.
    fig.savefig(path, metadata={"Software": None})
    plt.close(fig)
    return path


def plot_latency_study(rows: Sequence[dict[str, float]], path: str | Path, title: str) -> Path:
    """Scene quality (dialogue SI-SDRi) against algorithmic latency, one point per streaming setting, each
    labelled with its update / look-ahead frames and real-time factor; the 100 ms lip-sync limit as a line."""
    fig, ax = plt.subplots(figsize=(6.4, 3.8), dpi=110)
    ax.axvline(100, color="grey", ls=":", lw=1)
    ax.text(102, 0.02, "lip-sync limit", transform=ax.get_xaxis_transform(), fontsize=8, color="grey")
    for row in rows:
        ax.scatter(row["latency_ms"], row["dialogue_si_sdri"], s=28, color="tab:blue" if row["rtf"] <= 0.05
                   else "tab:red", zorder=3)
        ax.annotate(f"{row['update']:g}/{row['lookahead']:g}, RTF {row['rtf']:.3f}",
                    (row["latency_ms"], row["dialogue_si_sdri"]), textcoords="offset points", xytext=(4, 4),
                    fontsize=7)
    ax.set_xscale("log")
    ax.set_xlabel("algorithmic latency (ms, log scale)")
    ax.set_ylabel("dialogue SI-SDRi on the scenes (dB)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)


def plot_solo_study(curves: dict[str, Sequence[tuple[float, float]]], references: dict[str, float],
                    path: str | Path, title: str) -> Path:
    """SDR against the share of solo segments in class-supervised training, one line per model kind (VAE, NMF);
    the source-trained model of each kind as a dashed line of the same colour."""
    fig, ax = plt.subplots(figsize=(6.0, 3.6), dpi=110)
    for i, (kind, points) in enumerate(sorted(curves.items())):
        color = f"C{i}"
        shares, sdr = zip(*sorted(points))
        ax.plot([100 * s for s in shares], sdr, marker="o", color=color, label=f"class-trained {kind}")
        if references.get(kind) is not None:
            ax.axhline(references[kind], color=color, ls="--", lw=1, label=f"source-trained {kind}")
    ax.set_xlabel("solo segments in training (% of rows)")
    ax.set_ylabel("SDR, median over test sources (dB)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, path)
