"""The non-negative β-VAE of the method (§2, §3.2, Table 1): one encoder, one decoder per class.

The paper's 2-D convolutions over a (T, F) magnitude image are 1-D convolutions over time with the F bins as
input channels: Conv(1→128, kernel 1×F) is Conv1d(F→128, kernel 1), and the 4×1 stride-2 layers are Conv1d with
kernel 4, stride 2. Decoders mirror the encoder with transposed convolutions and end in a softplus, so every
source estimate is non-negative. ReLU + batch norm on every layer except the last ones.

The layers are written as matmuls in a (B, T, C) layout (unfold + Linear for a strided convolution, Linear +
fold for a transposed one, batch norm over B·T rows): the same functions and initialisation as Conv1d /
ConvTranspose1d / BatchNorm1d, about three times faster on a CPU than the channel-first modules.

Decoders run only where they are needed: `decode(z, classes)` takes (mixture, class) pairs, gathers the pairs
of each class and runs that class's decoder once on all of them (a loop over classes, never over samples).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F


@dataclass(frozen=True)
class ModelShape:
    """Everything that fixes the network's tensors; stored in checkpoints."""

    num_classes: int
    bins: int = 201          # F
    frames: int = 44         # T
    filters: tuple[int, int, int] = (128, 128, 256)
    kernel: int = 4
    stride: int = 2
    hidden: int = 512
    latent: int = 128
    variational: bool = True  # False: the AE ablation (no sampling, no KL)

    def time_sizes(self) -> tuple[int, int, int]:
        """Frames after each encoder layer: T, T2, T3 (44, 21, 9 for the paper's sizes)."""
        t2 = (self.frames - self.kernel) // self.stride + 1
        t3 = (t2 - self.kernel) // self.stride + 1
        if t3 < 1:
            raise ValueError(f"{self.frames} frames are too few for two kernel-{self.kernel} stride-{self.stride} layers")
        return self.frames, t2, t3

    def as_dict(self) -> dict:
        return asdict(self)


class StableBatchNorm1d(nn.BatchNorm1d):
    """Batch norm that falls back to its running statistics for a single-item batch in training.

    A class decoder can receive one pair in a small batch; plain BatchNorm1d cannot normalise one value.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and x.shape[0] == 1:
            return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, False, 0.0, self.eps)
        return super().forward(x)


class TimeNorm(StableBatchNorm1d):
    """Batch norm of a (B, T, C) or (B, C) tensor over its last dimension, statistics over B (and T).

    On (B, T, C) this equals BatchNorm1d on the (B, C, T) layout, without transposing.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.reshape(-1, x.shape[-1])).view(x.shape)


class TimeConv(nn.Module):
    """Conv1d over time in the (B, T, C) layout, as a matmul on unfolded windows: (B, T, Cin) -> (B, T', Cout)."""

    def __init__(self, c_in: int, c_out: int, kernel: int = 1, stride: int = 1):
        super().__init__()
        self.kernel, self.stride = kernel, stride
        self.linear = nn.Linear(c_in * kernel, c_out)  # same fan-in, hence the same init, as Conv1d

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kernel > 1 or self.stride > 1:
            b, _, c = x.shape
            x = x.unfold(1, self.kernel, self.stride).reshape(b, -1, c * self.kernel)  # (B, T', Cin*k)
        return self.linear(x)


class TimeConvTranspose(nn.Module):
    """ConvTranspose1d over time in the (B, T, C) layout: (B, T, Cin) -> (B, T', Cout), T' = `frames_out`.

    Computed in polyphase form, one matmul and no scatter: output frame stride·m + p sums tap p + stride·i of
    input frame m − i, so each group of `stride` output frames is a linear map of the n = ceil(kernel / stride)
    input frames ending at m. Frames past the full length (output padding) hold the bias, as in ConvTranspose1d.
    """

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, frames_out: int):
        super().__init__()
        self.c_out, self.kernel, self.stride, self.frames_out = c_out, kernel, stride, frames_out
        self.lags = -(-kernel // stride)
        self.weight = nn.Parameter(torch.empty(kernel, c_out, c_in))  # tap j: (Cout, Cin)
        self.bias = nn.Parameter(torch.empty(c_out))
        bound = 1.0 / (c_out * kernel) ** 0.5  # ConvTranspose1d's default init: fan-in = c_out * kernel
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def polyphase_weight(self) -> torch.Tensor:
        """(stride·Cout, Cin·lags): row p·Cout + o, column c·lags + q holds tap (lags − 1 − q)·stride + p."""
        n, s = self.lags, self.stride
        taps = F.pad(self.weight, (0, 0, 0, 0, 0, n * s - self.kernel))  # zero taps up to n·s
        blocks = taps.view(n, s, self.c_out, -1).flip(0)                   # (q, p, Cout, Cin)
        return blocks.permute(1, 2, 3, 0).reshape(s * self.c_out, -1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t_in, c_in = x.shape
        groups = -(-self.frames_out // self.stride)
        padded = F.pad(x, (0, 0, self.lags - 1, max(0, groups - t_in)))
        windows = padded.unfold(1, self.lags, 1)[:, :groups].reshape(b, groups, c_in * self.lags)
        out = F.linear(windows, self.polyphase_weight(), self.bias.repeat(self.stride))
        return out.view(b, groups * self.stride, self.c_out)[:, :self.frames_out]


def _block(layer: nn.Module, channels: int) -> nn.Sequential:
    return nn.Sequential(layer, TimeNorm(channels), nn.ReLU())


class Encoder(nn.Module):
    """g(x): (B, T, F) magnitudes -> μ, log σ² of shape (B, K, latent) and class logits (B, K)."""

    def __init__(self, shape: ModelShape):
        super().__init__()
        c1, c2, c3 = shape.filters
        _, _, t3 = shape.time_sizes()
        self.shape = shape
        self.features = nn.Sequential(
            _block(TimeConv(shape.bins, c1), c1),                          # Conv(1->c1, 1xF)
            _block(TimeConv(c1, c2, shape.kernel, shape.stride), c2),      # Conv(c1->c2, 4x1, stride 2)
            _block(TimeConv(c2, c3, shape.kernel, shape.stride), c3),      # Conv(c2->c3, 4x1, stride 2)
            nn.Flatten(),
            _block(nn.Linear(t3 * c3, shape.hidden), shape.hidden),        # FC
        )
        k, d = shape.num_classes, shape.latent
        self.mu = nn.Linear(shape.hidden, k * d)
        self.logvar = nn.Linear(shape.hidden, k * d)
        self.class_logits = nn.Linear(shape.hidden, k)

    def hidden(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, F) magnitudes -> (B, hidden) features shared by every class."""
        if x.dim() != 3 or x.shape[1:] != (self.shape.frames, self.shape.bins):
            raise ValueError(f"encoder expects magnitudes of shape (B, T={self.shape.frames}, F={self.shape.bins}), "
                             f"got {tuple(x.shape)}")
        return self.features(x)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """All classes: μ, log σ² (B, K, D) and class logits (B, K)."""
        h = self.hidden(x)
        k, d = self.shape.num_classes, self.shape.latent
        return self.mu(h).view(-1, k, d), self.logvar(h).view(-1, k, d), self.class_logits(h)

    def pair_latents(self, h: torch.Tensor, pairs: "Pairs") -> tuple[torch.Tensor, torch.Tensor]:
        """μ, log σ² (N, D) of the given (mixture, class) pairs only; rows of absent classes are never computed."""
        d = self.shape.latent
        mu_w, mu_b = self.mu.weight.view(-1, d, h.shape[1]), self.mu.bias.view(-1, d)
        lv_w, lv_b = self.logvar.weight.view(-1, d, h.shape[1]), self.logvar.bias.view(-1, d)
        mus, logvars = [], []
        for k, rows in pairs.groups(h):
            mus.append(F.linear(rows, mu_w[k], mu_b[k]))
            logvars.append(F.linear(rows, lv_w[k], lv_b[k]))
        return torch.cat(mus), torch.cat(logvars)


class Decoder(nn.Module):
    """f_k(z): (N, latent) -> (N, T, F), non-negative (softplus)."""

    def __init__(self, shape: ModelShape):
        super().__init__()
        c1, c2, c3 = shape.filters
        t1, t2, t3 = shape.time_sizes()
        self.c3, self.t3 = c3, t3
        self.fc = nn.Sequential(_block(nn.Linear(shape.latent, shape.hidden), shape.hidden),
                                _block(nn.Linear(shape.hidden, t3 * c3), t3 * c3))
        self.deconv = nn.Sequential(
            _block(TimeConvTranspose(c3, c2, shape.kernel, shape.stride, t2), c2),
            _block(TimeConvTranspose(c2, c1, shape.kernel, shape.stride, t1), c1),
            nn.Linear(c1, shape.bins),                                     # ConvT(c1->1, 1xF)
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return F.softplus(self.deconv(self.fc(z).view(-1, self.t3, self.c3)))


@dataclass(frozen=True)
class Pairs:
    """The (mixture, class) pairs a batch needs, grouped by class so each class's rows are one contiguous slice.

    mixture: (N,) long, classes: (N,) long (non-decreasing), counts: pairs per class (length K).
    """

    mixture: torch.Tensor
    classes: torch.Tensor
    counts: tuple[int, ...]

    @staticmethod
    def from_labels(labels: torch.Tensor) -> "Pairs":
        """Pairs where labels (B, K) are non-zero."""
        classes, mixture = torch.nonzero(labels.t() > 0, as_tuple=True)  # class-major order
        counts = torch.bincount(classes, minlength=labels.shape[1]).tolist()
        return Pairs(mixture=mixture, classes=classes, counts=tuple(counts))

    @staticmethod
    def all_classes(batch: int, num_classes: int, device: torch.device | None = None) -> "Pairs":
        """Every class of every mixture."""
        return Pairs.from_labels(torch.ones(batch, num_classes, device=device))

    def groups(self, rows_per_mixture: torch.Tensor):
        """Yield (class, rows) with rows = rows_per_mixture[mixture] of that class's pairs."""
        gathered = rows_per_mixture[self.mixture]
        for k, rows in enumerate(torch.split(gathered, self.counts)):
            if rows.shape[0]:
                yield k, rows

    def sum_per_mixture(self, values: torch.Tensor, batch: int) -> torch.Tensor:
        """Σ over each mixture's pairs: values (N, ...) -> (batch, ...)."""
        return values.new_zeros(batch, *values.shape[1:]).index_add_(0, self.mixture, values)


class NonNegativeVAE(nn.Module):
    """Encoder + K class decoders; the mixture model is x̂ = Σ_k h_k f_k(z_k) (eq. 7/14)."""

    def __init__(self, shape: ModelShape):
        super().__init__()
        self.shape = shape
        self.encoder = Encoder(shape)
        self.decoders = nn.ModuleList(Decoder(shape) for _ in range(shape.num_classes))

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(B, T, F) -> μ (B, K, D), log σ² (B, K, D), class logits (B, K)."""
        return self.encoder(x)

    def sample(self, mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Reparameterised z = μ + σ ⊙ ε (the AE ablation, and evaluation mode, use z = μ)."""
        if not (self.shape.variational and self.training):
            return mu
        noise = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        return mu + torch.exp(0.5 * logvar) * noise

    def decode(self, z: torch.Tensor, pairs: Pairs) -> torch.Tensor:
        """Decode the latents of class-grouped pairs: z (N, D) -> ŝ (N, T, F) ≥ 0, in the pairs' order.

        Each class's decoder runs once on its contiguous slice; absent classes cost nothing.
        """
        if z.dim() != 2 or z.shape[0] != pairs.mixture.shape[0]:
            raise ValueError(f"decode expects z (N, D) for N = {pairs.mixture.shape[0]} pairs, got {tuple(z.shape)}")
        parts = [self.decoders[k](rows) for k, rows in enumerate(torch.split(z, pairs.counts)) if rows.shape[0]]
        return torch.cat(parts)

    def decode_all(self, z: torch.Tensor) -> torch.Tensor:
        """Every class for every mixture: z (B, K, D) -> ŝ (B, K, T, F)."""
        b, k, _ = z.shape
        pairs = Pairs.all_classes(b, k, z.device)
        sources = self.decode(z[pairs.mixture, pairs.classes], pairs)  # class-major
        return sources.view(k, b, self.shape.frames, self.shape.bins).transpose(0, 1)
