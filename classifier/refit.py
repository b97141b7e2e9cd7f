"""Re-fitting a trained classifier's final layer on class-balanced real faces, its body frozen
(Kang et al. 2020, "decoupling representation and classifier": classifier re-training, cRT).

The head is continued from the main stage, not re-initialised as in cRT. A quick check (demo faces, 804
real train images over 8 classes plus 396 blurred, noisy copies marked synthetic that fill each class to 100;
fer-cnn width 0.5, 8 epochs one-cycle, then a 4-epoch refit; seeds 0 and 1) gave validation macro-F1

    main stage 0.467 / 0.450 -> refit, head continued 0.557 / 0.501; head re-initialised 0.538 / 0.412

so continuing was better on both seeds: a few epochs are too few to re-learn a head from scratch.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from augment.core.dataset import FaceDataset
from classifier.config import TrainConfig
from classifier.models import classifier_head


class FrozenBody(nn.Module):
    """The model as the refit trains it: features under no_grad with the body in eval mode (BatchNorm
    statistics and dropout fixed), the head trainable; ``train()`` only ever switches the head."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.head = classifier_head(model)
        head_params = {id(p) for p in self.head.parameters()}
        for p in model.parameters():
            p.requires_grad_(id(p) in head_params)

    def train(self, mode: bool = True) -> FrozenBody:
        self.training = mode
        self.model.eval()
        self.head.train(mode)
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            feats = self.model.features(x)
        return self.head(feats)


def refit_config(cfg: TrainConfig, refit_from: int) -> TrainConfig:
    """The refit stage's settings: epochs ``refit_from + 1 .. refit_from + N`` (numbered on from the main
    stage), class-balanced batches, plain cross-entropy, a cosine schedule, no early stop."""
    return dataclasses.replace(
        cfg,
        epochs=refit_from + cfg.refit_head_epochs,
        balanced_sampler=True,
        class_weighted=False,
        focal_gamma=0.0,
        synthetic_weight=1.0,
        schedule="cosine",
        patience=0,
    )


def real_part(train: FaceDataset) -> FaceDataset:
    """The real training faces: the refit never sees a synthetic one."""
    return train.subset(~train.synthetic)
