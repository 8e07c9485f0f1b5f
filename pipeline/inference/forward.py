"""Forward inference (method.md §3.3): encoder -> latents and class estimates -> decoders -> magnitudes.

Class labels are either given (`oracle`) or estimated by the encoder's class head (`classify`: h_k > 0.5, and
at least the most probable class). Only the decoders of the classes in use run. Waveforms come from
`pipeline.features.wiener.wiener_separate` (soft masks with the mixture phase, eq. 9).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from pipeline.models.vae import NonNegativeVAE, Pairs


@dataclass(frozen=True)
class ForwardResult:
    sources: torch.Tensor        # (B, K, T, F) decoded magnitudes, zeros for classes not in `labels`
    probabilities: torch.Tensor  # (B, K) the class head's estimate
    labels: torch.Tensor         # (B, K) {0, 1} classes used


def classify(probabilities: torch.Tensor, threshold: float = 0.5) -> torch.Tensor:
    """Labels from class probabilities (B, K): above `threshold`, and always the most probable class."""
    labels = (probabilities > threshold).float()
    labels[torch.arange(labels.shape[0]), probabilities.argmax(dim=1)] = 1.0
    return labels


@torch.no_grad()
def forward_separate(model: NonNegativeVAE, magnitudes: torch.Tensor,
                     labels: torch.Tensor | None = None) -> ForwardResult:
    """magnitudes (B, T, F) -> decoded sources (B, K, T, F) at z = μ; `labels` (B, K) for oracle classes."""
    was_training = model.training
    model.eval()
    try:
        hidden = model.encoder.hidden(magnitudes)
        probabilities = torch.sigmoid(model.encoder.class_logits(hidden))
        if labels is None:
            labels = classify(probabilities)
        elif labels.shape != probabilities.shape:
            raise ValueError(f"labels {tuple(labels.shape)} do not match (B, K) = {tuple(probabilities.shape)}")
        pairs = Pairs.from_labels(labels)
        mu, _ = model.encoder.pair_latents(hidden, pairs)
        sources = magnitudes.new_zeros(magnitudes.shape[0], model.shape.num_classes, *magnitudes.shape[1:])
        sources[pairs.mixture, pairs.classes] = model.decode(mu, pairs)
        return ForwardResult(sources=sources, probabilities=probabilities, labels=labels.float())
    finally:
        model.train(was_training)
