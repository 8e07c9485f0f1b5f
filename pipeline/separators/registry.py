"""Which separator kinds exist: kind name -> `Kind` (its grid rows, its builder, its streaming entry point).

Adding a system: write its module (rows, builder; a model-file loader for `enhance` if it streams) and add one
line to `KINDS`. The order of `KINDS` is the order of rows within each group of the evaluation grid.
"""
from __future__ import annotations

from pathlib import Path

import torch

from pipeline.config import Params
from pipeline.separators import classical, dpcl, drnn, nmf, priors, references, vae
from pipeline.separators.base import BuildContext, Kind, Separator, System, WindowSeparator

KINDS: dict[str, Kind] = {kind.name: kind for kind in (
    references.ORACLE_MASK,
    references.MIXTURE,
    vae.FORWARD,
    vae.INVERSE,
    nmf.NMF,
    drnn.DRNN,
    priors.PRIORS,
    classical.CLASSICAL,
    dpcl.DPCL,
)}
DEFAULT_STREAM_KIND = vae.FORWARD_KIND  # the kind of every model file written before kinds were recorded


def kind(name: str) -> Kind:
    """The registered kind `name`; ValueError naming the known kinds otherwise."""
    if name not in KINDS:
        raise ValueError(f"unknown separator kind {name!r}; known kinds: {', '.join(KINDS)}")
    return KINDS[name]


def grid(dataset: str, params: Params) -> list[System]:
    """Every row evaluated on `dataset`: the dataset's own rows first (those without a model, then the DRNN's,
    trained per dataset from params `drnn`), then each variant trained on it (sorted by name), each group in the
    order of `KINDS`."""
    rows = [row for entry in KINDS.values() for row in entry.rows(dataset, params, None)]
    for variant, config in sorted(params.variants.items()):
        if config.dataset == dataset:
            rows += [row for entry in KINDS.values() for row in entry.rows(dataset, params, variant)]
    return rows


def build(system: System, context: BuildContext) -> Separator:
    """The separator of one row, built by its kind."""
    return kind(system.kind).build(system, context)


def window_separator(name: str, path: str | Path, device: str | torch.device = "cpu") -> WindowSeparator:
    """The streaming entry point of kind `name` on the model file `path`."""
    entry = kind(name)
    if entry.window is None:
        streaming = [k.name for k in KINDS.values() if k.window is not None]
        raise ValueError(f"separator kind {name!r} has no streaming entry point for enhance; kinds that have one: "
                         f"{', '.join(streaming)}")
    return entry.window(Path(path), device)
