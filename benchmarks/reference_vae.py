"""The straightforward implementation the training benchmark compares against (issue 3, "Speed").

The paper's Table 1 written directly with torch.nn modules in the channel-first image layout (B, 1, T, F):
Conv2d(1→128, 1×F), two Conv2d(4×1, stride 2), FC 512, Gaussian heads; one decoder per class with
ConvTranspose2d layers, run on the samples of that class. Same sizes, same loss as `pipeline.models` (class
supervision, generalised KL, β·KL, class-head cross-entropy); only the implementation differs. It exists to
be measured beside the pipeline's model on the same machine, never to be trained for real.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from pipeline.config import StftConfig
from pipeline.features.stft import magnitude
from pipeline.models.data import Batch
from pipeline.models.vae import ModelShape


def _block(layer: nn.Module, channels: int, norm=nn.BatchNorm2d) -> nn.Sequential:
    return nn.Sequential(layer, norm(channels), nn.ReLU())


class ReferenceVAE(nn.Module):
    def __init__(self, shape: ModelShape):
        super().__init__()
        c1, c2, c3 = shape.filters
        t1, t2, t3 = shape.time_sizes()
        k, s = shape.kernel, shape.stride
        self.shape, self.t3, self.c3 = shape, t3, c3
        self.encoder = nn.Sequential(
            _block(nn.Conv2d(1, c1, (1, shape.bins)), c1),
            _block(nn.Conv2d(c1, c2, (k, 1), (s, 1)), c2),
            _block(nn.Conv2d(c2, c3, (k, 1), (s, 1)), c3),
            nn.Flatten(),
            _block(nn.Linear(c3 * t3, shape.hidden), shape.hidden, nn.BatchNorm1d))
        self.mu = nn.ModuleList(nn.Linear(shape.hidden, shape.latent) for _ in range(shape.num_classes))
        self.logvar = nn.ModuleList(nn.Linear(shape.hidden, shape.latent) for _ in range(shape.num_classes))
        self.class_logits = nn.Linear(shape.hidden, shape.num_classes)
        self.decoders = nn.ModuleList(nn.ModuleDict({
            "fc": nn.Sequential(_block(nn.Linear(shape.latent, shape.hidden), shape.hidden, nn.BatchNorm1d),
                                _block(nn.Linear(shape.hidden, c3 * t3), c3 * t3, nn.BatchNorm1d)),
            "deconv": nn.Sequential(
                _block(nn.ConvTranspose2d(c3, c2, (k, 1), (s, 1), output_padding=(t2 - (t3 - 1) * s - k, 0)), c2),
                _block(nn.ConvTranspose2d(c2, c1, (k, 1), (s, 1), output_padding=(t1 - (t2 - 1) * s - k, 0)), c1),
                nn.ConvTranspose2d(c1, 1, (1, shape.bins))),
        }) for _ in range(shape.num_classes))

    def loss(self, batch: Batch, stft: StftConfig, beta: float) -> torch.Tensor:
        x = magnitude(batch.mixture, stft)                              # (B, T, F)
        hidden = self.encoder(x.unsqueeze(1))
        logits = self.class_logits(hidden)
        mixture_estimate = torch.zeros_like(x)
        kl = x.new_zeros(x.shape[0])
        for k, decoder in enumerate(self.decoders):                      # one decoder per class, on its samples
            rows = torch.nonzero(batch.labels[:, k] > 0).squeeze(1)
            if rows.numel() == 0:
                continue
            h = hidden[rows]
            mu, logvar = self.mu[k](h), self.logvar[k](h)
            z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
            image = decoder["fc"](z).view(-1, self.c3, self.t3, 1)
            source = F.softplus(decoder["deconv"](image)).squeeze(1)      # (n, T, F)
            mixture_estimate = mixture_estimate.index_add(0, rows, source)
            kl = kl.index_add(0, rows, 0.5 * (mu.square() + logvar.exp() - logvar - 1).sum(dim=1))
        eps = 1e-8
        gkl = (x * (torch.log(x + eps) - torch.log(mixture_estimate + eps)) - x + mixture_estimate).sum(dim=(1, 2))
        bce = F.binary_cross_entropy_with_logits(logits, batch.labels, reduction="none").sum(dim=1)
        return (gkl + beta * kl + bce).mean()
