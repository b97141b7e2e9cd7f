"""Loading a trained classifier and running it over uint8 faces."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from augment.core.errors import UserError
from augment.core.rundir import load_checkpoint
from classifier.data import to_input
from classifier.models import build_model

BEST = "model.pt"


def load_classifier(run_dir: str | Path, device: str = "cpu") -> tuple[torch.nn.Module, dict[str, Any]]:
    """The best-on-validation model of a train run, ready for inference."""
    path = Path(run_dir) / BEST
    if not path.exists():
        raise UserError(f"{run_dir}: no trained model ({BEST}); run 'augment train' first")
    state = load_checkpoint(path)
    if "model_kwargs" not in state:
        raise UserError(f"{path}: not an 'augment train' model file")
    kwargs = dict(state["model_kwargs"])
    kwargs.pop("pretrained", None)
    model = build_model(**kwargs)
    model.load_state_dict(state["model"])
    model.to(device).eval()
    meta = {k: v for k, v in state.items() if k != "model"}
    return model, meta


@torch.no_grad()
def predict_proba(
    model: torch.nn.Module, images: np.ndarray, device: str = "cpu", batch: int = 512, flip_tta: bool = False
) -> np.ndarray:
    """Softmax probabilities (N, K) for uint8 images (N, C, H, W) of the model's size."""
    model.eval()
    out = []
    for i in range(0, len(images), batch):
        x = to_input(torch.from_numpy(images[i : i + batch])).to(device)
        logits = model(x).float()
        if flip_tta:
            logits = (logits + model(x.flip(3)).float()) / 2
        out.append(torch.softmax(logits, 1).cpu().numpy())
    k = getattr(getattr(model, "head", None), "out_features", 0)
    return np.concatenate(out) if out else np.zeros((0, k), dtype=np.float32)


def prepare_images(images: np.ndarray, meta: dict[str, Any]) -> np.ndarray:
    """Resize/convert faces to what the model was trained on."""
    from augment.core.resize import resize_images

    return resize_images(images, int(meta["size"]), int(meta["channels"]))
