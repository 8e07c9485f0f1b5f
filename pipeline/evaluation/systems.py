"""The rows of an evaluation table: training × signal estimate × class estimate × sub-method.

They follow the legends of the paper's figures. Two reference rows come first: the oracle sources through the
same Wiener mask (an upper bound) and the unprocessed mixture as every estimate (a lower bound); then the rows
of each variant trained on the dataset. Each row is built by a registered separator kind
(`pipeline.separators.registry`), which also decides which rows it contributes.
"""
from __future__ import annotations

from pipeline.config import Params
from pipeline.separators.base import System, short_name
from pipeline.separators.references import REFERENCE
from pipeline.separators.registry import grid

__all__ = ["REFERENCE", "System", "short_name", "systems_for"]


def systems_for(dataset: str, params: Params) -> list[System]:
    """Every row evaluated on `dataset`, references first, then each variant trained on it."""
    return grid(dataset, params)
