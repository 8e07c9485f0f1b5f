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
