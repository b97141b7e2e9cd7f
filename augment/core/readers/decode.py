"""Decode image files into uint8 arrays of one size and channel count."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from augment.core.progress import make_progress

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".pgm", ".ppm"}
# What PIL raises for a file that is not a readable image (truncated, corrupt, not an image, too large).
DECODE_ERRORS = (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError)


# A face crop is about square: an image more than this many times wider than tall (or taller than wide)
# is no face crop, and the centre square it is classified by is a small part of it.
FACE_ASPECT_LIMIT = 2.0


def crop_warning(path: Path) -> str | None:
    """Why the image at ``path`` is far from a face crop (reads the header only), or None."""
    with Image.open(path) as img:
        w, h = img.size
    side = min(w, h)
    if max(w, h) <= FACE_ASPECT_LIMIT * max(side, 1):
        return None
    return (
        f"{w}x{h} pixels is far from a face crop (over {FACE_ASPECT_LIMIT:g}:1); "
        f"only its centre {side}x{side} square is classified"
    )


def is_image_file(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS and not path.name.startswith(".")


def decode_reason(err: Exception) -> str:
    """One short line saying why a file could not be decoded."""
    return f"{type(err).__name__}: {err}".splitlines()[0][:200]


def to_8bit(img: Image.Image) -> Image.Image:
    """An image PIL's ``convert`` turns into L or RGB faithfully.

    16-bit (and 32-bit) grey is scaled to 0-255 (``convert`` would clip it to white); images with
    transparency are laid on white (``convert`` would keep whatever colour hides under the alpha).
    L, RGB, CMYK, YCbCr and opaque palette images come back as they are.
    """
    mode = img.mode
    if mode.startswith("I;16") or mode in ("I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        wide = mode.startswith("I;16") or (arr.size > 0 and arr.max() > 255)
        return Image.fromarray(np.clip(np.round(arr / 257.0 if wide else arr), 0, 255).astype(np.uint8), "L")
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return img


def read_photo(path: Path) -> Image.Image:
    """A whole photo as upright 8-bit RGB: EXIF orientation applied, any image mode."""
    with Image.open(path) as img:
        upright = ImageOps.exif_transpose(img) or img
        return to_8bit(upright).convert("RGB")


def to_array(img: Image.Image, size: int, channels: int, box: tuple[int, int, int, int] | None = None) -> np.ndarray:
    """Centre-crop to a square (faces are expected cropped), resize, convert; (C, H, W) uint8."""
    img = to_8bit(img).convert("L" if channels == 1 else "RGB")
    if box is not None:
        img = img.crop(box)
    w, h = img.size
    if w != h:
        s = min(w, h)
        left, top = (w - s) // 2, (h - s) // 2
        img = img.crop((left, top, left + s, top + s))
    if img.size != (size, size):
        img = img.resize((size, size), Image.Resampling.BILINEAR, reducing_gap=3.0)
    arr = np.asarray(img, dtype=np.uint8)
    return arr[None] if channels == 1 else arr.transpose(2, 0, 1)


def decode_one(path: Path, size: int, channels: int, box: tuple[int, int, int, int] | None = None) -> np.ndarray:
    with Image.open(path) as img:
        full_w, full_h = img.size
        if box is None:
            img.draft("L" if channels == 1 else "RGB", (size * 2, size * 2))
        else:
            # The box is in full-resolution coordinates: let JPEG draft mode shrink the image only
            # as far as keeps the *box* at >= 2*size, then scale the box to the decoded size.
            bw, bh = max(1, box[2] - box[0]), max(1, box[3] - box[1])
            want = (-(-full_w * 2 * size // bw), -(-full_h * 2 * size // bh))
            img.draft("L" if channels == 1 else "RGB", want)
            if img.size != (full_w, full_h):
                sx, sy = img.size[0] / full_w, img.size[1] / full_h
                box = (
                    round(box[0] * sx),
                    round(box[1] * sy),
                    max(round(box[0] * sx) + 1, round(box[2] * sx)),
                    max(round(box[1] * sy) + 1, round(box[3] * sy)),
                )
        return to_array(img, size, channels, box)


def decode_files(
    paths: list[Path],
    size: int,
    channels: int,
    boxes: list[tuple[int, int, int, int] | None] | None = None,
    description: str = "decoding",
    workers: int | None = None,
) -> tuple[np.ndarray, np.ndarray, list[tuple[str, str]]]:
    """Decode many files in threads (PIL releases the GIL while decoding).

    Returns (images for the readable files, index of each readable file into ``paths``,
    [(path, reason)] for files that could not be read). Unreadable files are skipped,
    never fatal.
    """
    n = len(paths)
    out = np.zeros((n, channels, size, size), dtype=np.uint8)
    ok = np.zeros(n, dtype=bool)
    skipped: list[tuple[str, str]] = []
    workers = workers or min(8, (os.cpu_count() or 2) * 2)

    def work(i: int) -> tuple[int, str | None]:
        try:
            out[i] = decode_one(paths[i], size, channels, boxes[i] if boxes else None)
            return i, None
        except DECODE_ERRORS as err:
            return i, decode_reason(err)

    with make_progress() as prog, ThreadPoolExecutor(workers) as pool:
        task = prog.add_task(description, total=n)
        for i, why in pool.map(work, range(n), chunksize=64):
            if why is None:
                ok[i] = True
            else:
                skipped.append((str(paths[i]), why))
            prog.advance(task)
    index = np.flatnonzero(ok)
    return out[index], index, skipped
