"""Losses for imbalanced classes: weighted cross-entropy and focal loss, each taking optional
per-sample weights (``--synthetic-weight``)."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def inverse_frequency_weights(labels: np.ndarray, num_classes: int) -> torch.Tensor:
    """w_c = N / (K · n_c): the weighting sklearn calls 'balanced'."""
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    present = counts > 0
    w = np.zeros(num_classes)
    w[present] = len(labels) / (present.sum() * counts[present])
    return torch.tensor(w, dtype=torch.float32)


def sample_weights(synthetic: torch.Tensor, synthetic_weight: float) -> torch.Tensor | None:
    """Each sample's loss weight: ``synthetic_weight`` for GAN faces, 1 for real ones; None at 1.0,
    so the default trains exactly as a loss without sample weights."""
    if synthetic_weight == 1.0:
        return None
    return torch.where(synthetic, synthetic_weight, 1.0).float()


def weighted_mean(per_sample: torch.Tensor, norm: torch.Tensor, sample_weight: torch.Tensor) -> torch.Tensor:
    """sum(s·l) / sum(s·n): the batch mean with per-sample weights s, where n is each sample's share of
    the plain mean's denominator (its class weight, or 1). With s = 0 for some samples the loss equals
    the loss of the batch without them; a batch whose weights are all 0 gives 0 (no gradient)."""
    s = sample_weight.to(per_sample.dtype)
    return (s * per_sample).sum() / (s * norm).sum().clamp_min(1e-12)


class WeightedCrossEntropy(torch.nn.CrossEntropyLoss):
    """``CrossEntropyLoss`` that also takes per-sample weights; without them it is exactly the parent."""

    def forward(
        self, logits: torch.Tensor, target: torch.Tensor, sample_weight: torch.Tensor | None = None
    ) -> torch.Tensor:
        if sample_weight is None:
            return super().forward(logits, target)
        per_sample = F.cross_entropy(
            logits, target, weight=self.weight, label_smoothing=self.label_smoothing, reduction="none"
        )
        norm = self.weight[target] if self.weight is not None else torch.ones_like(per_sample)
        return weighted_mean(per_sample, norm, sample_weight)


class FocalLoss(torch.nn.Module):
    """Lin et al. 2017: down-weights easy examples so rare, hard classes count more."""

    def __init__(self, gamma: float = 2.0, weight: torch.Tensor | None = None) -> None:
        super().__init__()
        self.gamma = gamma
        self.register_buffer("weight", weight if weight is not None else None)

    def forward(
        self, logits: torch.Tensor, target: torch.Tensor, sample_weight: torch.Tensor | None = None
    ) -> torch.Tensor:
        logp = F.log_softmax(logits.float(), dim=1)
        ce = F.nll_loss(logp, target, reduction="none")
        pt = logp.gather(1, target[:, None]).squeeze(1).exp()
        loss = (1 - pt) ** self.gamma * ce
        w = self.weight[target] if self.weight is not None else None
        if sample_weight is not None:
            norm = w if w is not None else torch.ones_like(loss)
            return weighted_mean(loss * norm, norm, sample_weight)
        if w is not None:
            return (loss * w).sum() / w.sum()
        return loss.mean()


def make_loss(
    labels: np.ndarray, num_classes: int, class_weighted: bool, focal_gamma: float, label_smoothing: float
) -> torch.nn.Module:
    """The training criterion; call it as ``criterion(logits, target)`` or with per-sample weights
    ``criterion(logits, target, sample_weight)``."""
    weight = inverse_frequency_weights(labels, num_classes) if class_weighted else None
    if focal_gamma > 0:
        return FocalLoss(focal_gamma, weight)
    return WeightedCrossEntropy(weight=weight, label_smoothing=label_smoothing)
