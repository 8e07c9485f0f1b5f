"""The network: paper shapes, non-negativity, per-class decoding, and equivalence with the torch layers."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from pipeline.models.vae import (ClassLatents, Decoder, Dense, ModelShape, NonNegativeVAE, Pairs, TimeConv,
                                 TimeConvTranspose, TimeNorm)

TINY = ModelShape(num_classes=3, filters=(8, 8, 16), hidden=32, latent=4)


def test_paper_time_sizes_and_output_shapes():
    assert ModelShape(num_classes=5).time_sizes() == (44, 21, 9)
    model = NonNegativeVAE(ModelShape(num_classes=5, filters=(16, 16, 32), hidden=64, latent=8)).eval()
    mu, logvar, logits = model.encode(torch.rand(2, 44, 201))
    assert mu.shape == logvar.shape == (2, 5, 8) and logits.shape == (2, 5)
    assert model.decode_all(mu).shape == (2, 5, 44, 201)


def test_decoders_are_non_negative():
    model = NonNegativeVAE(TINY).eval()
    out = model.decode_all(10 * torch.randn(4, 3, 4))
    assert out.min() >= 0


def test_only_present_classes_are_decoded():
    model = NonNegativeVAE(TINY).train()
    calls = []
    for k, decoder in enumerate(model.decoders):
        decoder.register_forward_hook(lambda module, inputs, output, k=k: calls.append((k, inputs[0].shape[0])))
    labels = torch.tensor([[1, 0, 1], [1, 0, 0], [0, 0, 1], [1, 0, 1]])
    pairs = Pairs.from_labels(labels)
    model.decode(torch.randn(len(pairs.mixture), 4), pairs)
    assert calls == [(0, 3), (2, 3)]  # class 1 never ran; each class ran once on all of its pairs
    assert pairs.mixture.tolist() == [0, 1, 3, 0, 2, 3] and pairs.classes.tolist() == [0, 0, 0, 2, 2, 2]


def test_decode_all_matches_each_decoder():
    model = NonNegativeVAE(TINY).eval()
    z = torch.randn(2, 3, 4)
    every = model.decode_all(z)
    for k in range(3):
        assert torch.allclose(every[:, k], model.decoders[k](z[:, k]), atol=1e-6)


def test_pair_latents_equal_the_full_heads():
    model = NonNegativeVAE(TINY).eval()
    x = torch.rand(4, 44, 201)
    mu, logvar, _ = model.encode(x)
    pairs = Pairs.from_labels(torch.tensor([[1, 1, 0], [0, 0, 1], [1, 0, 1], [0, 1, 0]]))
    mu_p, logvar_p = model.encoder.pair_latents(model.encoder.hidden(x), pairs)
    assert torch.allclose(mu_p, mu[pairs.mixture, pairs.classes], atol=1e-6)
    assert torch.allclose(logvar_p, logvar[pairs.mixture, pairs.classes], atol=1e-6)


def test_dense_equals_linear_and_its_gradient_keeps_the_weight_layout():
    linear, ours = nn.Linear(6, 5), Dense(6, 5)
    with torch.no_grad():
        ours.weight.copy_(linear.weight.t())
        ours.bias.copy_(linear.bias)
    x = torch.randn(3, 4, 6)
    assert torch.allclose(ours(x), linear(x), atol=1e-6)
    ours(x).sum().backward()
    assert ours.weight.grad.shape == (6, 5) and ours.weight.grad.is_contiguous()


def test_class_latents_of_pairs_equal_those_of_all_classes():
    heads = ClassLatents(num_classes=3, hidden=8, latent=4)
    h = torch.randn(5, 8)
    mu, logvar = heads(h)
    assert mu.shape == logvar.shape == (5, 3, 4)
    pairs = Pairs.from_labels(torch.tensor([[1, 0, 1], [0, 1, 0], [1, 1, 1], [0, 0, 1], [1, 0, 0]]))
    mu_p, logvar_p = heads.pairs(h, pairs)
    assert torch.allclose(mu_p, mu[pairs.mixture, pairs.classes], atol=1e-6)
    assert torch.allclose(logvar_p, logvar[pairs.mixture, pairs.classes], atol=1e-6)


def test_transposed_conv_taps_past_the_kernel_stay_zero_under_training():
    layer = TimeConvTranspose(3, 2, kernel=3, stride=2, frames_out=9)  # lags·stride = 4 > kernel: one tap is padding
    layer(torch.randn(2, 4, 3)).square().sum().backward()
    assert (layer.mask == 0).sum() == 3 * 2  # one tap of (Cout, Cin)
    assert layer.weight.grad[layer.mask == 0].abs().sum() == 0 and layer.weight.grad[layer.mask == 1].abs().sum() > 0


def test_time_conv_equals_conv1d():
    conv = nn.Conv1d(6, 5, 4, 2)
    ours = TimeConv(6, 5, 4, 2)
    with torch.no_grad():  # Conv1d weight (out, in, k) -> our (in·k, out) matrix over (in, k) windows
        ours.linear.weight.copy_(conv.weight.reshape(5, -1).t())
        ours.linear.bias.copy_(conv.bias)
    x = torch.randn(3, 6, 21)
    assert torch.allclose(ours(x.transpose(1, 2)), conv(x).transpose(1, 2), atol=1e-5)


@pytest.mark.parametrize("t_in, t_out, kernel, stride", [(9, 21, 4, 2), (21, 44, 4, 2), (7, 16, 3, 2), (5, 17, 5, 3)])
def test_time_conv_transpose_equals_conv_transpose1d(t_in, t_out, kernel, stride):
    conv = nn.ConvTranspose1d(6, 5, kernel, stride, output_padding=t_out - ((t_in - 1) * stride + kernel))
    ours = TimeConvTranspose(6, 5, kernel, stride, t_out)
    ours.load_taps(conv.weight.detach().permute(2, 1, 0))  # ConvTranspose1d weight (in, out, k) -> taps (k, out, in)
    with torch.no_grad():
        ours.bias.copy_(conv.bias)
    x = torch.randn(3, 6, t_in)
    assert torch.allclose(ours(x.transpose(1, 2)), conv(x).transpose(1, 2), atol=1e-5)


def test_time_norm_equals_batchnorm_over_channels():
    bn, ours = nn.BatchNorm1d(5), TimeNorm(5)
    x = torch.randn(4, 5, 7)
    assert torch.allclose(ours(x.transpose(1, 2)), bn(x).transpose(1, 2), atol=1e-5)
    assert torch.allclose(ours.running_mean, bn.running_mean) and torch.allclose(ours.running_var, bn.running_var)


def test_single_item_batches_train_without_error():
    decoder = Decoder(TINY).train()
    assert decoder(torch.randn(1, 4)).shape == (1, 44, 201)


def test_encoder_rejects_wrong_spectrogram_shape():
    model = NonNegativeVAE(TINY)
    with pytest.raises(ValueError, match=r"\(B, T=44, F=201\), got \(2, 201, 44\)"):
        model.encode(torch.rand(2, 201, 44))
