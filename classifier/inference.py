"""Loading a trained classifier and running it over uint8 faces."""

from __future__ import annotations

import glob
from pathlib import Path
from typing import Any

import numpy as np
import torch

from augment.core.errors import UserError
from augment.core.readers.decode import IMAGE_EXTENSIONS, is_image_file
from augment.core.rundir import load_checkpoint
from classifier.data import to_input
from classifier.models import build_model

BEST = "model.pt"
PROGRESS_FROM = 20  # predict shows a progress bar from this many images on


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


class Predictor:
    """A trained classifier with what it needs to score faces: classes, channels, the size faces load at."""

    def __init__(self, run_dir: str | Path, device: str = "cpu") -> None:
        self.model, self.meta = load_classifier(run_dir, device=device)
        self.device = device
        self.classes = list(self.meta["classes"])
        self.channels = int(self.meta["channels"])
        # decode as the training data was loaded, then resize as training did (no train/predict skew)
        self.load_size = int(self.meta.get("data_size") or self.meta["size"])

    def scores(self, faces: np.ndarray) -> list[dict[str, Any]]:
        """Top class, its probability and all class probabilities for each face (N, C, H, W) uint8."""
        if len(faces) == 0:
            return []
        probs = predict_proba(self.model, prepare_images(faces, self.meta), device=self.device)
        return [
            {
                "top": self.classes[int(pr.argmax())],
                "probability": float(pr.max()),
                "probabilities": {c: float(v) for c, v in zip(self.classes, pr, strict=True)},
            }
            for pr in probs
        ]


def list_images(args: list[Path]) -> list[Path]:
    """Image files named by ``args``: files as given, folders searched recursively, globs expanded.

    A name that is none of these, or a folder or glob without images, is a ``UserError``.
    """
    files: list[Path] = []
    for arg in args:
        if arg.is_file():
            files.append(arg)
            continue
        if arg.is_dir():
            found = sorted(f for f in arg.rglob("*") if f.is_file() and is_image_file(f))
            what = "folder"
        elif any(ch in str(arg) for ch in "*?["):
            found = sorted(
                p for p in map(Path, glob.glob(str(arg), recursive=True)) if p.is_file() and is_image_file(p)
            )
            what = "glob"
        else:
            raise UserError(f"{arg}: no such image file, folder or glob")
        if not found:
            raise UserError(f"{arg}: this {what} matches no image files ({', '.join(sorted(IMAGE_EXTENSIONS))})")
        files += found
    return files
