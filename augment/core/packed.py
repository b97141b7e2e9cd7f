"""Packed caches: every face stored as encoded image bytes, for moving a dataset in little space.

A face whose source file decodes to exactly the cached pixels keeps the file's own bytes (FER2013's
JPEGs: 57 MB instead of 83 MB of pixels); any other face is stored as lossless PNG. Decoding gives
back the identical uint8 array.
"""

from __future__ import annotations

import io
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from augment.core.progress import make_progress


def _png(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    arr = image[0] if image.shape[0] == 1 else image.transpose(1, 2, 0)
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def _decode(data: bytes, channels: int) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as img:
        arr = np.asarray(img.convert("L" if channels == 1 else "RGB"), dtype=np.uint8)
    return arr[None] if channels == 1 else arr.transpose(2, 0, 1)


def pack_images(images: np.ndarray, sources: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(blob of all encoded faces, offsets of each face into it; len N + 1)."""
    channels = images.shape[1]

    def encode(i: int) -> bytes:
        src = Path(str(sources[i]))
        if src.is_file() and src.stat().st_size < 1 << 20:
            data = src.read_bytes()
            try:
                if np.array_equal(_decode(data, channels), images[i]):
                    return data
            except OSError:
                pass
        return _png(images[i])

    with make_progress() as prog, ThreadPoolExecutor(min(8, os.cpu_count() or 2)) as pool:
        task = prog.add_task("packing", total=len(images))
        parts = []
        for data in pool.map(encode, range(len(images)), chunksize=256):
            parts.append(data)
            prog.advance(task)
    offsets = np.zeros(len(parts) + 1, dtype=np.int64)
    offsets[1:] = np.cumsum([len(p) for p in parts])
    return np.frombuffer(b"".join(parts), dtype=np.uint8), offsets


def unpack_images(blob: np.ndarray, offsets: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    n = len(offsets) - 1
    out = np.empty((n, *shape), dtype=np.uint8)
    raw = blob.tobytes()

    def decode(i: int) -> None:
        out[i] = _decode(raw[offsets[i] : offsets[i + 1]], shape[0])

    with ThreadPoolExecutor(min(8, os.cpu_count() or 2)) as pool:
        list(pool.map(decode, range(n), chunksize=512))
    return out
