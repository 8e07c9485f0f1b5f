"""Drawing new class magnitudes from a trained model, and walking the latent line between two real clips."""
from __future__ import annotations

import torch

from pipeline.models.vae import NonNegativeVAE


def draw_latents(count: int, latent: int, temperature: float, generator: torch.Generator) -> torch.Tensor:
    """z ~ N(0, T² I): (count, latent) from `generator` alone (same seed, same latents)."""
    if count < 1 or temperature <= 0:
        raise ValueError(f"count = {count} must be >= 1 and temperature = {temperature} > 0")
    return temperature * torch.randn(count, latent, generator=generator)


@torch.no_grad()
def decode_class(model: NonNegativeVAE, z: torch.Tensor, class_index: int) -> torch.Tensor:
    """Latents (N, D) through class `class_index`'s decoder: magnitudes (N, T, F) >= 0 (model in eval mode)."""
    if not 0 <= class_index < len(model.decoders):
        raise ValueError(f"class index {class_index} out of range for a model of {len(model.decoders)} classes")
    return model.decoders[class_index](z)


@torch.no_grad()
def class_latents(model: NonNegativeVAE, magnitudes: torch.Tensor, class_index: int) -> torch.Tensor:
    """The encoder's latent means of class `class_index` for clips' magnitudes (N, T, F): (N, D)."""
    mu, _, _ = model.encode(magnitudes)
    return mu[:, class_index]


@torch.no_grad()
def interpolate(model: NonNegativeVAE, start: torch.Tensor, end: torch.Tensor, class_index: int,
                steps: int) -> torch.Tensor:
    """Encode two clips' magnitudes (T, F), walk their class latents in `steps` even steps (both ends included),
    decode every point: (steps, T, F)."""
    if steps < 2:
        raise ValueError(f"an interpolation needs steps >= 2 (both ends), got {steps}")
    ends = class_latents(model, torch.stack([start, end]), class_index)
    weights = torch.linspace(0, 1, steps, dtype=ends.dtype)[:, None]
    return decode_class(model, (1 - weights) * ends[0] + weights * ends[1], class_index)
