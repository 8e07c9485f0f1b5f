"""A small classifier of clips' magnitudes trained on real clips: it labels the generated ones.

Features: the mean over time of log(1 + |STFT|) per bin (F values: the clip's spectral envelope, blind to where
in the clip the sound sits and to how smooth it is in time, so a decoder's blurred estimate of a class is still
judged by its envelope), of clips brought to one RMS level first (the judge rates what a clip sounds like, not
how loud it is); standardised, then multinomial logistic regression (scikit-learn, L-BFGS; deterministic).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler


def clip_features(magnitudes: torch.Tensor) -> np.ndarray:
    """(N, T, F) magnitudes -> (N, F): per-bin mean over time of log(1 + magnitude), at unit level."""
    level = magnitudes.square().mean(dim=(1, 2), keepdim=True).sqrt().clamp_min(1e-12)
    logs = torch.log1p(magnitudes / level)
    return logs.mean(dim=1).double().numpy()


@dataclass
class Judge:
    model: Pipeline

    def predict(self, magnitudes: torch.Tensor) -> torch.Tensor:
        """(N, T, F) -> predicted class indices (N,)."""
        return torch.from_numpy(self.model.predict(clip_features(magnitudes)).astype(np.int64))

    def accuracy(self, magnitudes: torch.Tensor, labels: torch.Tensor) -> float:
        return float((self.predict(magnitudes) == labels).float().mean())


def train_judge(magnitudes: torch.Tensor, labels: torch.Tensor, regularisation: float = 1.0) -> Judge:
    """Fit the judge on real clips' magnitudes (N, T, F) and class indices (N,); deterministic."""
    if len(magnitudes) != len(labels) or len(labels) == 0:
        raise ValueError(f"train_judge needs as many labels as clips (> 0), got {len(magnitudes)} and {len(labels)}")
    if len(torch.unique(labels)) < 2:
        raise ValueError("train_judge needs clips of at least two classes")
    model = make_pipeline(StandardScaler(), LogisticRegression(C=regularisation, max_iter=500))
    return Judge(model.fit(clip_features(magnitudes), labels.numpy()))
