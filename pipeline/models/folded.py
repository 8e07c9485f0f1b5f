"""The trained VAE compiled for streaming: batch norm folded into the weights, the class decoders stacked, and
only the output frames a caller needs decoded.

`enhance` runs the network on a one-second window every few STFT frames and keeps the masks of only a few of
its frames. With small batches the cost is reading the weights and Python's per-operation overhead, not
arithmetic, so this form does three things (evaluation only; the numbers are the model's own, to rounding):
- every batch norm (running statistics) is folded into the affine layer before it: y = x·W' + b';
- the K class decoders run as one batched matmul per layer over stacked (K, C_in, C_out) weights;
- a decoder computes only what the requested output frames depend on: the transposed convolutions reach back
  ceil(kernel / stride) frames per layer, so the newest 2 of 44 frames need 2 of the 9 column blocks of the
  last fully connected layer (the largest weight of a decoder) and a few frames of each later layer.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from pipeline.models.vae import Dense, NonNegativeVAE, TimeConv, TimeConvTranspose


def _fold(layer: Dense | TimeConvTranspose, norm: nn.BatchNorm1d | None, repeat: int = 1
          ) -> tuple[torch.Tensor, torch.Tensor]:
    """(weight (C_in, C_out·repeat), bias) of `layer` followed by `norm` in evaluation mode; `repeat` is the
    number of output phases of a polyphase layer sharing each channel's statistics."""
    weight = layer.weight if getattr(layer, "mask", None) is None else layer.weight * layer.mask
    bias = layer.bias.repeat(repeat)
    if norm is None:
        return weight.detach().clone(), bias.detach().clone()
    scale = (norm.weight * torch.rsqrt(norm.running_var + norm.eps)).repeat(repeat)
    shift = (norm.bias - norm.running_mean * norm.weight * torch.rsqrt(norm.running_var + norm.eps)).repeat(repeat)
    return (weight * scale).detach(), (bias * scale + shift).detach()


class FoldedVAE:
    """Inference-only form of a `NonNegativeVAE` (see the module docstring); tensors follow the model's device."""

    def __init__(self, model: NonNegativeVAE):
        shape = model.shape
        self.shape = shape
        self.frames_per_layer = shape.time_sizes()                       # T, T2, T3
        self.kernel, self.stride = shape.kernel, shape.stride
        self.lags = -(-shape.kernel // shape.stride)
        encoder = model.encoder
        blocks = [encoder.features[i] for i in (0, 1, 2, 4)]
        self.encoder_layers = [_fold(_dense(block[0]), block[1]) for block in blocks]
        d = shape.latent
        self.latent_weight = encoder.latents.weight[:, :, :d].permute(1, 0, 2).reshape(shape.hidden, -1).detach()
        self.latent_bias = encoder.latents.bias[:, :d].reshape(-1).detach()
        self.class_weight = encoder.class_logits.weight.detach()
        self.class_bias = encoder.class_logits.bias.detach()

        def stack(pairs: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
            return torch.stack([w for w, _ in pairs]), torch.stack([b for _, b in pairs])[:, None]

        decoders = list(model.decoders)
        self.fc1 = stack([_fold(dec.fc[0][0], dec.fc[0][1]) for dec in decoders])
        self.fc2 = stack([_fold(dec.fc[1][0], dec.fc[1][1]) for dec in decoders])
        self.deconv2 = stack([_fold(dec.deconv[0][0], dec.deconv[0][1], shape.stride) for dec in decoders])
        self.deconv1 = stack([_fold(dec.deconv[1][0], dec.deconv[1][1], shape.stride) for dec in decoders])
        self.output = stack([_fold(dec.deconv[2], None) for dec in decoders])

    @torch.no_grad()
    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T, F) magnitudes -> μ (B, K, D) and class logits (B, K)."""
        if x.dim() != 3 or x.shape[1:] != (self.shape.frames, self.shape.bins):
            raise ValueError(f"the network expects magnitudes of shape (B, T={self.shape.frames}, "
                             f"F={self.shape.bins}), got {tuple(x.shape)}")
        b = x.shape[0]
        (w1, b1), (w2, b2), (w3, b3), (w4, b4) = self.encoder_layers
        h = torch.addmm(b1, x.reshape(-1, x.shape[-1]), w1).relu_().view(b, x.shape[1], -1)
        for weight, bias in ((w2, b2), (w3, b3)):
            windows = h.unfold(1, self.kernel, self.stride)                       # (B, T', C, k)
            h = torch.addmm(bias, windows.reshape(-1, windows.shape[2] * self.kernel), weight).relu_()
            h = h.view(b, windows.shape[1], -1)
        h = torch.addmm(b4, h.reshape(b, -1), w4).relu_()
        mu = torch.addmm(self.latent_bias, h, self.latent_weight).view(b, self.shape.num_classes, -1)
        return mu, torch.addmm(self.class_bias, h, self.class_weight)

    @torch.no_grad()
    def decode_frames(self, mu: torch.Tensor, first: int, stop: int) -> torch.Tensor:
        """μ (B, K, D) -> the output frames [first, stop) of every class's decoder: (B, K, stop - first, F)."""
        t1, t2, t3 = self.frames_per_layer
        if not 0 <= first < stop <= t1:
            raise ValueError(f"frames [{first}, {stop}) outside the window's [0, {t1})")
        b, k, _ = mu.shape
        mid = self._input_range(first, stop, t2)
        top = self._input_range(*mid, t3)
        top = (top[0], max(top))                        # empty when only output padding is asked for
        c3 = self.fc2[0].shape[-1] // t3
        z = mu.transpose(0, 1)                                                     # (K, B, D)
        h = torch.baddbmm(self.fc1[1], z, self.fc1[0]).relu_()
        columns = slice(top[0] * c3, top[1] * c3)
        h = torch.baddbmm(self.fc2[1][..., columns], h, self.fc2[0][..., columns]).relu_()
        h = self._transposed(h.view(k, b, top[1] - top[0], c3), self.deconv2, top[0], *mid)
        h = self._transposed(h, self.deconv1, mid[0], first, stop)
        n = stop - first
        out = torch.baddbmm(self.output[1], h.reshape(k, b * n, -1), self.output[0])
        return F.softplus(out).view(k, b, n, -1).transpose(0, 1)

    def _input_range(self, first: int, stop: int, frames_in: int) -> tuple[int, int]:
        """Input frames [lo, hi) of a transposed convolution that its output frames [first, stop) depend on."""
        return max(0, first // self.stride - self.lags + 1), min(frames_in, (stop - 1) // self.stride + 1)

    def _transposed(self, x: torch.Tensor, layer: tuple[torch.Tensor, torch.Tensor], offset: int, first: int,
                    stop: int) -> torch.Tensor:
        """A folded transposed convolution + ReLU on input frames [offset, offset + n) of x (K, B, n, C_in) ->
        its output frames [first, stop): (K, B, stop - first, C_out); frames outside the input are zeros."""
        weight, bias = layer
        k, b, n, c_in = x.shape
        g0, g1 = first // self.stride, (stop - 1) // self.stride + 1   # groups of `stride` output frames
        lo = g0 - self.lags + 1
        padded = x.new_zeros(k, b, g1 - lo, c_in)
        src_lo, src_hi = max(lo, offset), min(g1, offset + n)
        if src_hi > src_lo:
            padded[:, :, src_lo - lo:src_hi - lo] = x[:, :, src_lo - offset:src_hi - offset]
        windows = padded.unfold(2, self.lags, 1).reshape(k, b * (g1 - g0), c_in * self.lags)
        out = torch.baddbmm(bias, windows, weight).relu_()
        c_out = weight.shape[-1] // self.stride
        out = out.view(k, b, (g1 - g0) * self.stride, c_out)
        return out[:, :, first - g0 * self.stride:stop - g0 * self.stride]


def _dense(layer: TimeConv | Dense) -> Dense:
    return layer.linear if isinstance(layer, TimeConv) else layer
