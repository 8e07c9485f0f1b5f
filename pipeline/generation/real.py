"""The real clips of each class in a mixture split: every present source, with its class index."""
from __future__ import annotations

from pathlib import Path

import torch

from pipeline.models.data import MixtureSplit


def class_sources(split_dir: str | Path, batch_size: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """(waveforms (N, L), class indices (N,)) of every source present in the split's mixtures, in storage order."""
    split = MixtureSplit(split_dir)
    waves, labels = [], []
    for batch in split.batches(batch_size, shuffle=False):
        rows, classes = torch.nonzero(batch.labels > 0, as_tuple=True)
        waves.append(batch.sources[rows, classes])
        labels.append(classes)
    if not waves:
        raise ValueError(f"{split_dir}: no mixtures; expected a split written by the mix stage")
    return torch.cat(waves), torch.cat(labels)
