"""The deep recurrent soft-mask separator of Huang et al. (seed 002), the supervised baseline of issue 13.

Input: mixture magnitude frames x_t (B, T, F), each with a context window of `context` frames centred on t (zeros
beyond the clip's ends). Three hidden layers of ReLU units (`width` each); one of them carries a recurrent
connection (DRNN-k, `recurrent` = k: h_t = ReLU(W a_t + U h_{t-1} + b)), none (`recurrent` 0: a plain DNN) or
all three (`recurrent` "stacked": a stacked RNN). A linear output layer gives ỹ_k for every class k at once,
and the joint mask layer turns them into estimates that add up to the mixture:

    ŷ_k = |ỹ_k| / Σ_j |ỹ_j| ⊙ x

(`mask` off, the ablation: ŷ_k = |ỹ_k|, non-negative so that the generalised KL and the Wiener mask stay
defined). Everything runs batched over mixtures and classes: one matmul per layer, one per recurrent time step.

Objectives (source supervision): a distance D (squared error or generalised KL) between each output and its
source, minus λ times the distance of each output to the *other* sources present in the mixture (the
discriminative objective; with two classes, Huang et al.'s
D(y_1‖ŷ_1) − λ D(y_2‖ŷ_1) + D(y_2‖ŷ_2) − λ D(y_1‖ŷ_2)). Absent classes' sources are zero: their outputs learn
silence, and a silent source is no "other" to be far from.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pipeline.config import StftConfig
from pipeline.features.stft import stft
from pipeline.models import losses
from pipeline.models.checkpoint import save_atomic, versions
from pipeline.models.network_file import load_network
from pipeline.models.data import Batch
from pipeline.models.objective import LossTerms

EPS = 1e-8          # keeps the mask's denominator positive where every output is exactly zero
DRNN_FORMAT = 1     # the model file's layout: {"format", "kind": "drnn", "shape", "state_dict", ...}
LAYERS = 3          # hidden layers (the seed's)
RECURRENT = (0, 1, 2, 3, "stacked")
DISTANCES = ("mse", "kl")


def variant_name(dataset: str, name: str) -> str:
    """What configuration `name` trained on `dataset` goes by (model file info, training reports, the evaluation
    rows' `variant`): `d1` + `drnn-mse` -> `d1-drnn-mse`; row keys drop the dataset again (`drnn-mse.forward...`)."""
    return f"{dataset}-{name}"


def model_file(models_dir: str | Path, name: str) -> Path:
    """Where `train_drnn@<dataset>` writes configuration `name`: `<models_dir>/drnn/<name>/model.pt`, with
    models_dir = data/models/<dataset> (the stage's one output folder is `<models_dir>/drnn`)."""
    return Path(models_dir) / "drnn" / name / "model.pt"


@dataclass(frozen=True)
class DrnnShape:
    """The network's sizes: classes, frequency bins, hidden units per layer, input frames (odd), which hidden
    layer is recurrent (0 none, 1-3, or "stacked": all), and whether the joint mask layer is on."""

    num_classes: int
    bins: int
    width: int
    context: int = 1
    recurrent: int | str = 2
    mask: bool = True

    def __post_init__(self) -> None:
        if self.recurrent not in RECURRENT:
            raise ValueError(f"recurrent layer {self.recurrent!r}; expected one of {RECURRENT}")
        if self.context < 1 or self.context % 2 == 0:
            raise ValueError(f"context of {self.context} frames; expected an odd number >= 1 (centred on the frame)")
        if min(self.num_classes, self.bins, self.width) < 1:
            raise ValueError(f"classes {self.num_classes}, bins {self.bins}, width {self.width}: expected >= 1")

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def build(self) -> "DeepRecurrentSeparator":
        """A freshly initialised network of this shape (from the global RNG; see train.setup.build_model)."""
        return DeepRecurrentSeparator(self)

    def is_recurrent(self, layer: int) -> bool:
        """Whether hidden layer `layer` (1-based) has a recurrent connection."""
        return self.recurrent == "stacked" or self.recurrent == layer


def context_frames(magnitudes: torch.Tensor, context: int) -> torch.Tensor:
    """(B, T, F) -> (B, T, context*F): each frame with its (context-1)/2 neighbours on each side, zero-padded."""
    if context == 1:
        return magnitudes
    half = context // 2
    padded = nn.functional.pad(magnitudes, (0, 0, half, half))
    frames = magnitudes.shape[1]
    return torch.cat([padded[:, offset:offset + frames] for offset in range(context)], dim=-1)


def joint_mask(outputs: torch.Tensor, mixture: torch.Tensor) -> torch.Tensor:
    """The mask layer: outputs ỹ (B, K, T, F), mixture x (B, T, F) -> |ỹ_k| / Σ_j |ỹ_j| ⊙ x (B, K, T, F).

    The estimates add up to the mixture wherever some output is non-zero (where all are, the mixture is split
    equally)."""
    if outputs.dim() != 4 or mixture.shape != outputs.shape[:1] + outputs.shape[2:]:
        raise ValueError(f"joint_mask: outputs {tuple(outputs.shape)} must be (B, K, T, F) and mixture "
                         f"{tuple(mixture.shape)} (B, T, F)")
    magnitude = outputs.abs()
    ratio = mixture.unsqueeze(1) / (magnitude.sum(dim=1, keepdim=True) + EPS)       # x / Σ_j |ỹ_j|, (B, 1, T, F)
    # (|ỹ_k| + ε/K) · x / (Σ_j |ỹ_j| + ε): one full-size operation for the (B, K, T, F) estimates
    return torch.addcmul(ratio * (EPS / outputs.shape[1]), magnitude, ratio)


class DeepRecurrentSeparator(nn.Module):
    """DRNN-k (or DNN, or stacked RNN) with linear outputs for every class and the joint mask layer."""

    def __init__(self, shape: DrnnShape):
        super().__init__()
        self.shape = shape
        inputs = shape.bins * shape.context
        self.hidden = nn.ModuleList()
        for layer in range(1, LAYERS + 1):
            size_in = inputs if layer == 1 else shape.width
            if shape.is_recurrent(layer):
                self.hidden.append(nn.RNN(size_in, shape.width, nonlinearity="relu", batch_first=True))
            else:
                self.hidden.append(nn.Linear(size_in, shape.width))
        self.output = nn.Linear(shape.width, shape.num_classes * shape.bins)

    def raw(self, magnitudes: torch.Tensor) -> torch.Tensor:
        """The linear outputs ỹ (B, K, T, F) of mixture magnitudes (B, T, F), before the mask layer."""
        if magnitudes.dim() != 3 or magnitudes.shape[-1] != self.shape.bins:
            raise ValueError(f"expected mixture magnitudes (B, T, {self.shape.bins}), got {tuple(magnitudes.shape)}")
        hidden = context_frames(magnitudes, self.shape.context)
        for layer in self.hidden:
            hidden = layer(hidden)[0] if isinstance(layer, nn.RNN) else torch.relu(layer(hidden))
        batch, frames = magnitudes.shape[:2]
        out = self.output(hidden).view(batch, frames, self.shape.num_classes, self.shape.bins)
        return out.transpose(1, 2)

    def forward(self, magnitudes: torch.Tensor) -> torch.Tensor:
        """Mixture magnitudes (B, T, F) -> non-negative class estimates ŷ (B, K, T, F): masked (they add up to
        the mixture) or, without the mask layer, |ỹ|."""
        outputs = self.raw(magnitudes)
        return joint_mask(outputs, magnitudes) if self.shape.mask else outputs.abs()


def distance(name: str, target: torch.Tensor, estimate: torch.Tensor) -> torch.Tensor:
    """D(target ‖ estimate) per item over all but the first dimension: `mse` (squared error) or `kl`
    (generalised KL). (N, ...) x 2 -> (N,)."""
    if name not in DISTANCES:
        raise ValueError(f"distance {name!r}; expected one of {DISTANCES}")
    return (losses.squared_error if name == "mse" else losses.generalized_kl)(target, estimate)


def separation_terms(targets: torch.Tensor, estimates: torch.Tensor, labels: torch.Tensor, name: str
                     ) -> tuple[torch.Tensor, torch.Tensor]:
    """The two parts of the objective per mixture: targets, estimates (B, K, T, F), labels (B, K) {0, 1}.

    Returns (B,) Σ_k D(y_k ‖ ŷ_k) and (B,) Σ_k Σ_{j ≠ k, j present} D(y_j ‖ ŷ_k); the discriminative objective is
    the first minus λ times the second. Both come from a few per-(mixture, class) reductions instead of all K²
    (source, output) pairs: each distance splits into a term of the target alone, a cross term and a term of the
    estimate alone (squared error: ‖y‖² − 2 y·ŷ + ‖ŷ‖²; KL: Σ(y log y − y) − y·log ŷ + Σ ŷ), and the other
    present sources enter through P = Σ_{j present} y_j: Σ_{j≠k present} y_j = P − [k present] y_k."""
    if targets.shape != estimates.shape or targets.dim() != 4 or labels.shape != targets.shape[:2]:
        raise ValueError(f"separation_terms: targets {tuple(targets.shape)}, estimates {tuple(estimates.shape)} "
                         f"must be (B, K, T, F) and labels {tuple(labels.shape)} (B, K)")
    if name not in DISTANCES:
        raise ValueError(f"distance {name!r}; expected one of {DISTANCES}")
    labels = labels.to(targets.dtype)
    present_sum = torch.einsum("bk,bktf->btf", labels, targets)                          # P (B, T, F)
    if name == "mse":
        with torch.no_grad():
            alone = targets.square().sum(dim=(2, 3))                                    # ‖y_k‖² (B, K)
        cross = -2 * torch.einsum("bktf,bktf->bk", targets, estimates)                  # −2 y_k·ŷ_k
        cross_present = -2 * torch.einsum("btf,bktf->bk", present_sum, estimates)       # −2 P·ŷ_k
        estimate = estimates.square().sum(dim=(2, 3))                                   # ‖ŷ_k‖²
    else:
        with torch.no_grad():
            alone = (targets * torch.log(targets + EPS) - targets).sum(dim=(2, 3))      # Σ y log y − y
        log_estimates = torch.log(estimates + EPS)
        cross = -torch.einsum("bktf,bktf->bk", targets, log_estimates)                  # −y_k·log ŷ_k
        cross_present = -torch.einsum("btf,bktf->bk", present_sum, log_estimates)       # −P·log ŷ_k
        estimate = estimates.sum(dim=(2, 3))                                            # Σ ŷ_k
    own = (alone + cross + estimate).sum(dim=1)
    others_count = labels.sum(dim=1, keepdim=True) - labels                             # n_k (B, K)
    others_alone = (labels * alone).sum(dim=1, keepdim=True) - labels * alone           # Σ_{j≠k present} (B, K)
    others = (others_alone + cross_present - labels * cross + others_count * estimate).sum(dim=1)
    return own, others


def objective(targets: torch.Tensor, estimates: torch.Tensor, labels: torch.Tensor, name: str,
              discriminative: float) -> torch.Tensor:
    """Σ_k D(y_k ‖ ŷ_k) − λ Σ_k Σ_{j≠k present} D(y_j ‖ ŷ_k) per mixture (B,); λ = `discriminative`."""
    own, others = separation_terms(targets, estimates, labels, name)
    return own - discriminative * others


@dataclass(frozen=True)
class DrnnObjective:
    """The DRNN's training objective (source supervision): `loss` (mse | kl) on the masked outputs, minus
    `discriminative` (λ) times each output's distance to the other present sources. `terms` reports the plain
    part Σ_k D(y_k ‖ ŷ_k) as the reconstruction (validation and early stopping use it); no KL, no class head."""

    loss: str
    discriminative: float
    stft: StftConfig

    @property
    def needs_sources(self) -> bool:
        return True

    def terms(self, model: DeepRecurrentSeparator, batch: Batch, generator: torch.Generator | None = None
              ) -> LossTerms:
        """Batch means of the objective on one batch (training or evaluation mode alike: nothing is random)."""
        if batch.sources is None:
            raise ValueError("the DRNN objective needs the sources; the batch was read without them "
                             "(MixtureSplit.batches(..., with_sources=True))")
        size, classes, length = batch.sources.shape
        if classes != model.shape.num_classes:
            raise ValueError(f"batch has {classes} classes but the model has {model.shape.num_classes}")
        mixture = stft(batch.mixture, self.stft).abs()                                   # (B, T, F)
        present = batch.labels.flatten() > 0.5             # absent classes' sources are silent: no STFT needed
        targets = mixture.new_zeros(size * classes, *mixture.shape[1:])
        targets[present] = stft(batch.sources.reshape(size * classes, length)[present], self.stft).abs()
        targets = targets.view(size, classes, *mixture.shape[1:])                        # (B, K, T, F)
        own, others = separation_terms(targets, model(mixture), batch.labels, self.loss)
        total = (own - self.discriminative * others).mean()
        zero = total.new_zeros(())
        return LossTerms(total=total, reconstruction=own.mean(), kl=zero, classification=zero)


def save_drnn(path: str | Path, model: DeepRecurrentSeparator, state_dict: dict[str, torch.Tensor],
              classes: list[str], info: dict[str, Any]) -> None:
    """Write a DRNN model file (atomically): `state_dict` on CPU, the shape, the classes and `info` (variant,
    signal settings: sample rate, STFT, clip length; training settings; data provenance)."""
    save_atomic(path, {"format": DRNN_FORMAT, "kind": "drnn", "shape": model.shape.as_dict(),
                       "state_dict": {k: v.detach().cpu() for k, v in state_dict.items()},
                       "classes": list(classes), "versions": versions(), **info})


def load_drnn(path: str | Path, device: torch.device | str = "cpu"
              ) -> tuple[DeepRecurrentSeparator, dict[str, Any]]:
    """A DRNN model file -> (network in evaluation mode on `device`, its info); ValueError naming the file for
    anything else (another kind of model file, a shape that does not fit its weights)."""
    model, info = load_network(path, "drnn", DRNN_FORMAT, "DRNN",
                               lambda shape: DeepRecurrentSeparator(DrnnShape(**shape)), device)
    if len(info["classes"]) != model.shape.num_classes:
        raise ValueError(f"{path}: {len(info['classes'])} classes for a network of {model.shape.num_classes}")
    return model, info
