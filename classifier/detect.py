"""Faces in photos: find them with OpenCV's Haar cascade (DeepFace's default detector), crop them for
the classifier, and draw the boxes and labels.

OpenCV is an optional extra (``pip install 'augment[detect]'``); nothing here imports it until a
:class:`FaceDetector` is made. The cascade file ships inside ``opencv-python-headless`` 4.x, so
nothing is downloaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from augment.core.atomic import atomic_path
from augment.core.errors import UserError
from augment.core.progress import track
from augment.core.readers.decode import DECODE_ERRORS, decode_reason, read_photo, to_array
from classifier.inference import Predictor

CASCADE = "haarcascade_frontalface_default.xml"
INSTALL_HINT = "pip install 'augment[detect]' (that is, pip install 'opencv-python-headless>=4.8,<5')"
BOX_COLOUR = (255, 200, 0)

Box = tuple[int, int, int, int]  # x, y, width, height in photo pixels, as OpenCV and DeepFace give them


@dataclass
class DetectConfig:
    """How faces are found and cropped."""

    scale_factor: float = 1.1  # cascade scale step, as DeepFace's opencv backend
    min_neighbors: int = 10  # overlapping hits a face needs, as DeepFace's opencv backend
    min_face: int = 24  # smallest face in pixels, at detection scale
    max_side: int = 1600  # photos are searched at most this large (boxes are scaled back)
    margin: float = 0.15  # share of the box added on every side of the crop the classifier sees


def require_cv2() -> Any:
    """The ``cv2`` module, or a UserError saying how to install it."""
    try:
        import cv2
    except ImportError as err:
        raise UserError(f"--detect needs OpenCV, which is not installed: {INSTALL_HINT}") from err
    return cv2


class FaceDetector:
    """OpenCV's frontal-face Haar cascade with ``DetectConfig``'s settings."""

    def __init__(self, cfg: DetectConfig | None = None) -> None:
        self.cfg = cfg or DetectConfig()
        self.cv2 = require_cv2()
        folder = getattr(getattr(self.cv2, "data", None), "haarcascades", "")
        path = Path(folder) / CASCADE
        if not folder or not path.is_file():
            raise UserError(f"--detect: this OpenCV ({self.cv2.__version__}) ships no {CASCADE}; {INSTALL_HINT}")
        self.cascade = self.cv2.CascadeClassifier(str(path))
        if self.cascade.empty():
            raise UserError(f"--detect: OpenCV could not load {path}; reinstall it: {INSTALL_HINT}")

    def find(self, photo: Image.Image) -> list[Box]:
        """Face boxes in ``photo`` (any mode), left to right."""
        grey = photo.convert("L")
        scale = min(1.0, self.cfg.max_side / max(grey.size))
        if scale < 1.0:
            grey = grey.resize((round(grey.width * scale), round(grey.height * scale)), Image.Resampling.BILINEAR)
        found = self.cascade.detectMultiScale(
            np.asarray(grey),
            scaleFactor=self.cfg.scale_factor,
            minNeighbors=self.cfg.min_neighbors,
            minSize=(self.cfg.min_face, self.cfg.min_face),
        )
        boxes = [tuple(round(int(v) / scale) for v in b) for b in found]
        return sorted(boxes, key=lambda b: (b[0], b[1]))  # type: ignore[return-value]


def crop_box(box: Box, margin: float, width: int, height: int) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of a square around ``box``, ``margin`` of its side larger on every side,
    moved inside the photo where it fits and clipped where it does not."""
    x, y, w, h = box
    side = round(max(w, h) * (1 + 2 * margin))
    left, top = round(x + w / 2 - side / 2), round(y + h / 2 - side / 2)
    left = min(max(left, 0), max(width - side, 0))
    top = min(max(top, 0), max(height - side, 0))
    return left, top, min(left + side, width), min(top + side, height)


def crop_faces(photo: Image.Image, boxes: list[Box], size: int, channels: int, margin: float) -> np.ndarray:
    """The faces in ``boxes`` as (N, channels, size, size) uint8, as a face-crop dataset would hold them."""
    base = photo.convert("L" if channels == 1 else "RGB")
    faces = [to_array(base, size, channels, crop_box(b, margin, *photo.size)) for b in boxes]
    return np.stack(faces) if faces else np.zeros((0, channels, size, size), dtype=np.uint8)


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: one small bitmap font
        return ImageFont.load_default()


def draw_faces(photo: Image.Image, faces: list[dict[str, Any]]) -> Image.Image:
    """A copy of ``photo`` with each face's box and "class probability" label drawn on it."""
    out = photo.convert("RGB")
    draw = ImageDraw.Draw(out)
    line = max(2, round(min(out.size) / 200))
    font = _font(max(12, round(min(out.size) / 28)))
    for face in faces:
        x, y, w, h = face["box"]
        draw.rectangle((x, y, x + w - 1, y + h - 1), outline=BOX_COLOUR, width=line)
        text = f"{face['top']} {face['probability']:.0%}"
        left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
        tw, th = right - left + 2 * line, bottom - top + 2 * line
        ty = y - th if y - th >= 0 else y + h  # above the box, or below it at the photo's top edge
        draw.rectangle((x, ty, x + tw, ty + th), fill=BOX_COLOUR)
        draw.text((x + line - left, ty + line - top), text, fill=(0, 0, 0), font=font)
    return out


def save_annotated(picture: Image.Image, source: Path, out_dir: Path, used: set[str]) -> Path:
    """Write ``picture`` into ``out_dir`` under the source's name (JPEG stays JPEG, the rest PNG)."""
    suffix = ".jpg" if source.suffix.lower() in (".jpg", ".jpeg") else ".png"
    name, n = source.stem + suffix, 1
    while name in used:  # two photos of the same name from different folders
        n += 1
        name = f"{source.stem}-{n}{suffix}"
    used.add(name)
    path = out_dir / name
    with atomic_path(path) as tmp:
        picture.save(tmp, format="JPEG" if suffix == ".jpg" else "PNG", **({"quality": 92} if suffix == ".jpg" else {}))
    return path


def photo_faces(photo: Image.Image, detector: FaceDetector, predictor: Predictor) -> list[dict[str, Any]]:
    """Box, top class and probabilities of every face found in ``photo``."""
    boxes = detector.find(photo)
    crops = crop_faces(photo, boxes, predictor.load_size, predictor.channels, detector.cfg.margin)
    return [{"box": list(b), **s} for b, s in zip(boxes, predictor.scores(crops), strict=True)]


def predict_photos(
    run_dir: str | Path,
    paths: list[Path],
    detector: FaceDetector,
    device: str = "cpu",
    annotate_dir: Path | None = None,
    progress: bool = False,
) -> tuple[list[dict[str, Any]], list[tuple[str, str]]]:
    """Find, crop and classify the faces in each photo; optionally write it annotated to ``annotate_dir``.

    Returns (one result per readable photo, with its ``faces`` (none is no error); [(path, reason)] for
    files that could not be read).
    """
    predictor = Predictor(run_dir, device=device)
    results: list[dict[str, Any]] = []
    failed: list[tuple[str, str]] = []
    used: set[str] = set()
    for path in track(paths, "finding faces") if progress else paths:
        try:
            photo = read_photo(Path(path))
        except DECODE_ERRORS as err:
            failed.append((str(path), decode_reason(err)))
            continue
        result = {"path": str(path), "width": photo.width, "height": photo.height}
        result["faces"] = photo_faces(photo, detector, predictor)
        if annotate_dir is not None and result["faces"]:
            result["annotated"] = str(
                save_annotated(draw_faces(photo, result["faces"]), Path(path), annotate_dir, used)
            )
        results.append(result)
    return results, failed
