"""Losses for imbalanced classes: weighted cross-entropy and focal loss."""

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


class FocalLoss(torch.nn.Module):
    """Lin et al. 2017: down-weights easy examples so rare, hard classes count more."""

    def __init__(self, gamma: float = 2.0, weight: torch.Tensor | None = None) -> None:
        super().__init__()
        self.gamma = gamma
        self.register_buffer("weight", weight if weight is not None else None)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        logp = F.log_softmax(logits.float(), dim=1)
        ce = F.nll_loss(logp, target, reduction="none")
        pt = logp.gather(1, target[:, None]).squeeze(1).exp()
        loss = (1 - pt) ** self.gamma * ce
        if self.weight is not None:
            w = self.weight[target]
            return (loss * w).sum() / w.sum()
        return loss.mean()


def make_loss(
    labels: np.ndarray, num_classes: int, class_weighted: bool, focal_gamma: float, label_smoothing: float
) -> torch.nn.Module:
    weight = inverse_frequency_weights(labels, num_classes) if class_weighted else None
    if focal_gamma > 0:
        return FocalLoss(focal_gamma, weight)
    return torch.nn.CrossEntropyLoss(weight=weight, label_smoothing=label_smoothing)
