"""The folded streaming form computes what the trained network computes, for any range of output frames."""
from __future__ import annotations

import pytest
import torch

from pipeline.models.folded import FoldedVAE
from pipeline.models.vae import ModelShape, NonNegativeVAE


def _trained_looking(shape: ModelShape, seed: int = 0) -> NonNegativeVAE:
    """A model in evaluation mode whose batch norms have non-trivial statistics and affine parameters."""
    torch.manual_seed(seed)
    model = NonNegativeVAE(shape).eval()
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm1d):
                module.running_mean.uniform_(-1, 1)
                module.running_var.uniform_(0.5, 2)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.5, 0.5)
    return model


SHAPES = [
    ModelShape(num_classes=3, filters=(16, 16, 32), hidden=64, latent=8),                      # k 4, s 2 (paper)
    ModelShape(num_classes=2, filters=(16, 16, 32), hidden=64, latent=8, kernel=5, stride=3),   # k % s != 0
    ModelShape(num_classes=2, filters=(8, 8, 16), hidden=32, latent=4, kernel=3, frames=30),    # output padding
]


@pytest.mark.parametrize("shape", SHAPES, ids=["k4s2", "k5s3", "k3s2-t30"])
def test_folded_encoder_and_every_frame_range_match_the_network(shape):
    model = _trained_looking(shape)
    folded = FoldedVAE(model)
    x = torch.rand(3, shape.frames, shape.bins)
    with torch.no_grad():
        mu, _, logits = model.encode(x)
        full = model.decode_all(mu)
    folded_mu, folded_logits = folded.encode(x)
    torch.testing.assert_close(folded_mu, mu, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(folded_logits, logits, rtol=1e-5, atol=1e-5)
    for first in range(shape.frames):
        for stop in range(first + 1, shape.frames + 1):
            torch.testing.assert_close(folded.decode_frames(mu, first, stop), full[:, :, first:stop],
                                       rtol=1e-5, atol=1e-5, msg=f"frames [{first}, {stop})")


def test_folded_form_refuses_bad_frames_and_shapes():
    folded = FoldedVAE(_trained_looking(SHAPES[0]))
    mu = torch.zeros(1, 3, 8)
    for first, stop in ((5, 5), (-1, 3), (40, 45)):
        with pytest.raises(ValueError, match=rf"frames \[{first}, {stop}\) outside"):
            folded.decode_frames(mu, first, stop)
    with pytest.raises(ValueError, match=r"expects magnitudes of shape \(B, T=44, F=201\), got \(1, 43, 201\)"):
        folded.encode(torch.zeros(1, 43, 201))
