"""The training objective of every variant (method.md, "Training", "Time-domain losses").

- supervision `source`: reconstruct each present source, Σ_k D(s_k ‖ ŝ_k) over the classes in the mixture;
  `loss` picks D: `mag-kl` (generalised KL on magnitudes, the paper's), `mag-mse`, or a time-domain loss on the
  Wiener-masked mixture (eq. 9, mixture phase) after a differentiable ISTFT: `wave-mse`, `wave-snr` (−SNR, eq. 17),
  `wave-sisnr` (−SI-SNR, eq. 18).
- supervision `class`: only labels are known; D_GKL(x ‖ Σ_k h_k ŝ_k) with h the labels.
- plus β · KL(q(z|x) ‖ N(0, I)) for the present classes' latents (not for the AE ablation), and the binary
  cross-entropy of the encoder's class head, so forward inference can estimate labels.

`precision: bf16` runs the network under bfloat16 autocast (its matmuls in bfloat16, accumulated in float32);
the STFT, the losses and everything after the network stay float32.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F

from pipeline.config import StftConfig
from pipeline.features.stft import stft
from pipeline.features.wiener import wiener_pairs
from pipeline.models import losses
from pipeline.models.data import Batch
from pipeline.models.vae import NonNegativeVAE, Pairs


@dataclass(frozen=True)
class Objective:
    supervision: str
    loss: str
    beta: float
    class_weight: float
    stft: StftConfig
    precision: str = "fp32"

    @property
    def needs_sources(self) -> bool:
        """Whether batches must carry the sources (source supervision); class supervision reads only mixtures."""
        return self.supervision != "class"

    def network_precision(self, device: torch.device):
        """The context the network runs in: bfloat16 autocast for `bf16`, plain float32 otherwise."""
        return torch.autocast(device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16")

    def terms(self, model: NonNegativeVAE, batch: Batch, generator: torch.Generator | None = None) -> "LossTerms":
        """The objective on one batch (`compute`): what the training loop calls for any objective."""
        return compute(model, batch, self, generator)


@dataclass(frozen=True)
class LossTerms:
    """Batch means of the objective and its parts (tensors; `total` carries the graph)."""

    total: torch.Tensor
    reconstruction: torch.Tensor
    kl: torch.Tensor
    classification: torch.Tensor

    def as_floats(self) -> dict[str, float]:
        return {"loss": self.total.item(), "reconstruction": self.reconstruction.item(), "kl": self.kl.item(),
                "classification": self.classification.item()}


def compute(model: NonNegativeVAE, batch: Batch, objective: Objective,
            generator: torch.Generator | None = None) -> LossTerms:
    """The objective on one batch (training or evaluation mode, as the model is set)."""
    b, k = batch.labels.shape
    if k != model.shape.num_classes:
        raise ValueError(f"batch has {k} classes but the model has {model.shape.num_classes}")
    spectrum = stft(batch.mixture, objective.stft)                      # (B, T, F) complex
    magnitude = spectrum.abs()
    pairs = Pairs.from_labels(batch.labels)
    with objective.network_precision(magnitude.device):
        hidden = model.encoder.hidden(magnitude)
        mu, logvar = model.encoder.pair_latents(hidden, pairs)
        logits = model.encoder.class_logits(hidden)
    mu, logvar, logits = mu.float(), logvar.float(), logits.float()  # no-ops in fp32
    latents = model.sample(mu, logvar, generator)
    with objective.network_precision(magnitude.device):
        estimates = model.decode(latents, pairs).float()                 # (N, T, F)

    if objective.supervision == "class":
        reconstruction = losses.generalized_kl(magnitude, pairs.sum_per_mixture(estimates, b))
    else:
        if batch.sources is None:
            raise ValueError(f"supervision {objective.supervision!r} needs the sources; the batch was read without "
                             "them (MixtureSplit.batches(..., with_sources=True))")
        targets = batch.sources.flatten(0, 1).index_select(0, pairs.mixture * k + pairs.classes)  # (N, L)
        if objective.loss.startswith("mag-"):
            target_magnitude = stft(targets, objective.stft).abs()
            distance = losses.generalized_kl if objective.loss == "mag-kl" else losses.squared_error
            per_pair = distance(target_magnitude, estimates)
        else:
            waves = wiener_pairs(estimates, pairs, spectrum, batch.mixture.shape[-1], objective.stft)
            per_pair = {"wave-mse": lambda: losses.squared_error(targets, waves),
                        "wave-snr": lambda: -losses.snr(targets, waves),
                        "wave-sisnr": lambda: -losses.si_snr(targets, waves)}[objective.loss]()
        reconstruction = pairs.sum_per_mixture(per_pair, b)

    if model.shape.variational:
        kl = pairs.sum_per_mixture(losses.gaussian_kl(mu, logvar), b)
    else:
        kl = torch.zeros_like(reconstruction)
    classification = F.binary_cross_entropy_with_logits(logits, batch.labels, reduction="none").sum(dim=1)
    total = reconstruction + objective.beta * kl + objective.class_weight * classification
    return LossTerms(total.mean(), reconstruction.mean(), kl.mean(), classification.mean())
