"""The non-negative β-VAE of the method (§2, §3.2, Table 1): one encoder, one decoder per class.

The paper's 2-D convolutions over a (T, F) magnitude image are 1-D convolutions over time with the F bins as
input channels: Conv(1→128, kernel 1×F) is Conv1d(F→128, kernel 1), and the 4×1 stride-2 layers are Conv1d with
kernel 4, stride 2. Decoders mirror the encoder with transposed convolutions and end in a softplus, so every
source estimate is non-negative. ReLU + batch norm on every layer except the last ones.

The layers are written as matmuls in a (B, T, C) layout (unfold + matmul for a strided convolution, a polyphase
matmul for a transposed one, batch norm over B·T rows): the same functions and initialisation as Conv1d /
ConvTranspose1d / BatchNorm1d, about three times faster on a CPU than the channel-first modules. Weights are
stored input-major, (C_in, C_out), the layout the matmul reads: their gradients come out in the parameters' own
layout, which spares a transposed copy of every weight gradient per step (costly in bfloat16).

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

    def build(self) -> "NonNegativeVAE":
        """A freshly initialised network of this shape (from the global RNG; see train.setup.build_model)."""
        return NonNegativeVAE(self)


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


class Dense(nn.Module):
    """y = x W + b over the last dimension, W stored (C_in, C_out); nn.Linear's function and initialisation."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        bound = 1.0 / c_in ** 0.5  # nn.Linear's default init for weight and bias
        self.weight = nn.Parameter(torch.empty(c_in, c_out).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(c_out).uniform_(-bound, bound))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.addmm(self.bias, x.reshape(-1, x.shape[-1]), self.weight)
        return out.view(*x.shape[:-1], out.shape[-1])


class TimeConv(nn.Module):
    """Conv1d over time in the (B, T, C) layout, as a matmul on unfolded windows: (B, T, Cin) -> (B, T', Cout)."""

    def __init__(self, c_in: int, c_out: int, kernel: int = 1, stride: int = 1):
        super().__init__()
        self.kernel, self.stride = kernel, stride
        self.linear = Dense(c_in * kernel, c_out)  # window column c·k + j is Conv1d's weight[:, c, j]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kernel > 1 or self.stride > 1:
            b, _, c = x.shape
            x = x.unfold(1, self.kernel, self.stride).reshape(b, -1, c * self.kernel)  # (B, T', Cin*k)
        return self.linear(x)


def polyphase(taps: torch.Tensor, stride: int) -> torch.Tensor:
    """Transposed-convolution taps (k, Cout, Cin) -> the polyphase matrix (Cin·lags, stride·Cout), lags = ceil(k/s).

    Row c·lags + q, column p·Cout + o holds tap (lags − 1 − q)·stride + p of (o, c); taps past k are zero.
    """
    kernel, c_out, c_in = taps.shape
    lags = -(-kernel // stride)
    padded = F.pad(taps, (0, 0, 0, 0, 0, lags * stride - kernel))   # zero taps up to lags·stride
    blocks = padded.view(lags, stride, c_out, c_in).flip(0)          # (q, p, Cout, Cin)
    return blocks.permute(3, 0, 1, 2).reshape(c_in * lags, stride * c_out)


class TimeConvTranspose(nn.Module):
    """ConvTranspose1d over time in the (B, T, C) layout: (B, T, Cin) -> (B, T', Cout), T' = `frames_out`.

    Computed in polyphase form, one matmul and no scatter: output frame stride·m + p sums tap p + stride·i of
    input frame m − i, so each group of `stride` output frames is a linear map of the n = ceil(kernel / stride)
    input frames ending at m. The weight is stored in that polyphase form (see `polyphase`); when the kernel is
    not a multiple of the stride, a fixed mask keeps the entries of taps past the kernel at zero. Frames past
    the full length (output padding) hold the bias, as in ConvTranspose1d.
    """

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, frames_out: int):
        super().__init__()
        self.c_out, self.kernel, self.stride, self.frames_out = c_out, kernel, stride, frames_out
        self.lags = -(-kernel // stride)
        bound = 1.0 / (c_out * kernel) ** 0.5  # ConvTranspose1d's default init: fan-in = c_out * kernel
        taps = torch.empty(kernel, c_out, c_in).uniform_(-bound, bound)
        self.weight = nn.Parameter(polyphase(taps, stride))
        self.bias = nn.Parameter(torch.empty(c_out).uniform_(-bound, bound))
        mask = polyphase(torch.ones(kernel, c_out, c_in), stride) if kernel % stride else None
        self.register_buffer("mask", mask, persistent=False)

    def load_taps(self, taps: torch.Tensor) -> None:
        """Set the weight from taps (k, Cout, Cin), i.e. ConvTranspose1d's weight (Cin, Cout, k) permuted (2, 1, 0)."""
        with torch.no_grad():
            self.weight.copy_(polyphase(taps, self.stride))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t_in, c_in = x.shape
        groups = -(-self.frames_out // self.stride)
        padded = F.pad(x, (0, 0, self.lags - 1, max(0, groups - t_in)))
        windows = padded.unfold(1, self.lags, 1)[:, :groups].reshape(b * groups, c_in * self.lags)
        weight = self.weight if self.mask is None else self.weight * self.mask
        out = torch.addmm(self.bias.repeat(self.stride), windows, weight)
        return out.view(b, groups * self.stride, self.c_out)[:, :self.frames_out]


class ClassLatents(nn.Module):
    """The Gaussian layers of every class: hidden (B, H) -> μ, log σ² of shape (B, K, D).

    One (H, 2D) matrix per class, stored (K, H, 2D): the columns [:D] give μ, [D:] give log σ² (the same init as
    two nn.Linear(H, K·D)). `pairs` computes only the rows of given (mixture, class) pairs.
    """

    def __init__(self, num_classes: int, hidden: int, latent: int):
        super().__init__()
        bound = 1.0 / hidden ** 0.5
        self.latent = latent
        self.weight = nn.Parameter(torch.empty(num_classes, hidden, 2 * latent).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(num_classes, 2 * latent).uniform_(-bound, bound))

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        both = (torch.matmul(h, self.weight) + self.bias[:, None]).transpose(0, 1)  # (B, K, 2D)
        return both[..., :self.latent], both[..., self.latent:]

    def pairs(self, h: torch.Tensor, pairs: "Pairs") -> tuple[torch.Tensor, torch.Tensor]:
        """μ, log σ² (N, D) of the given pairs only; rows of absent classes are never computed."""
        weights, biases = self.weight.unbind(0), self.bias.unbind(0)  # one backward stack, not K scatters
        both = torch.cat([torch.addmm(biases[k], rows, weights[k]) for k, rows in pairs.groups(h)])
        return both[:, :self.latent], both[:, self.latent:]


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
            _block(Dense(t3 * c3, shape.hidden), shape.hidden),            # FC
        )
        self.latents = ClassLatents(shape.num_classes, shape.hidden, shape.latent)
        self.class_logits = Dense(shape.hidden, shape.num_classes)

    def hidden(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, F) magnitudes -> (B, hidden) features shared by every class."""
        if x.dim() != 3 or x.shape[1:] != (self.shape.frames, self.shape.bins):
            raise ValueError(f"encoder expects magnitudes of shape (B, T={self.shape.frames}, F={self.shape.bins}), "
                             f"got {tuple(x.shape)}")
        return self.features(x)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """All classes: μ, log σ² (B, K, D) and class logits (B, K)."""
        h = self.hidden(x)
        return *self.latents(h), self.class_logits(h)

    def pair_latents(self, h: torch.Tensor, pairs: "Pairs") -> tuple[torch.Tensor, torch.Tensor]:
        """μ, log σ² (N, D) of the given (mixture, class) pairs only; rows of absent classes are never computed."""
        return self.latents.pairs(h, pairs)


class Decoder(nn.Module):
    """f_k(z): (N, latent) -> (N, T, F), non-negative (softplus)."""

    def __init__(self, shape: ModelShape):
        super().__init__()
        c1, c2, c3 = shape.filters
        t1, t2, t3 = shape.time_sizes()
        self.c3, self.t3 = c3, t3
        self.fc = nn.Sequential(_block(Dense(shape.latent, shape.hidden), shape.hidden),
                                _block(Dense(shape.hidden, t3 * c3), t3 * c3))
        self.deconv = nn.Sequential(
            _block(TimeConvTranspose(c3, c2, shape.kernel, shape.stride, t2), c2),
            _block(TimeConvTranspose(c2, c1, shape.kernel, shape.stride, t1), c1),
            Dense(c1, shape.bins),                                         # ConvT(c1->1, 1xF)
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
        gathered = rows_per_mixture.index_select(0, self.mixture)  # ~10x faster than [] indexing on CPU
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
