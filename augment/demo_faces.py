"""Procedural grayscale demo faces: a small, learnable stand-in for FER2013.

The real FER2013 data cannot ship with the repository or run in CI, so the demo and the test suite
train on faces drawn here instead. Every face has its own identity (head shape, skin, hair,
background, pose, lighting, noise) and an expression built from facial cues (mouth curve and
opening, brow height and angle, eye openness, nose wrinkle, one-sided smirk) at a random intensity,
so some classes are genuinely confusable and a classifier has to look at local shape, not at the
mean image. Rendering is pure numpy on coordinate grids with soft (anti-aliased) signed-distance
edges, so 10,000 faces take a few seconds on a laptop CPU.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from augment.core.labels import CANONICAL_CLASSES
from augment.demo_drawing import draw_chunk

# The demo draws every canonical class, in the canonical order.
DEMO_CLASSES: tuple[str, ...] = CANONICAL_CLASSES

# FER2013 training-set imbalance scaled so that happy = 600; contempt (absent from FER2013) is made
# as rare as disgust so the demo has two minority classes for the GAN to rebalance.
DEFAULT_COUNTS: dict[str, int] = {
    "neutral": 414,
    "happy": 600,
    "sad": 402,
    "surprise": 264,
    "fear": 342,
    "disgust": 36,
    "angry": 330,
    "contempt": 36,
}

_CHUNK = 256  # faces rendered at once: big enough to amortise numpy overhead, small enough for cache

# Expression cues, one column each. Rows of _CUE_TABLE are the full-intensity offsets of each class
# from the neutral face; a face gets neutral + intensity * row + jitter.
_CUES = (
    "smile",  # lift of both mouth corners (negative = frown), face units
    "smirk",  # lift of one mouth corner
    "open_top",  # upper lip raised away from the mouth line
    "open_bot",  # lower lip / jaw dropped
    "mouth_w",  # relative change of mouth width
    "round",  # 0 = lens-shaped opening, 1 = oval "O"
    "teeth",  # fraction of the opening filled by (upper) teeth
    "brow_raise",  # both brows moved up
    "brow_inner",  # inner brow ends down (angry) or up (negative: sad, fear)
    "brow_arch",  # brow curvature
    "eye_open",  # relative change of eye opening
    "wrinkle",  # nose wrinkle strength
)
# fmt: off
_CUE_TABLE = np.array([
    # smile  smirk  o_top  o_bot  m_w    round  teeth  b_rais b_innr b_arch eye    wrinkle
    [0.00,  0.00,  0.00,  0.00,  0.00,  0.0,   0.0,   0.000, 0.000, 0.000, 0.00,  0.0],  # neutral
    [0.14,  0.00,  0.00,  0.10,  0.25,  0.0,   1.0,   0.010, 0.000, 0.015, -0.50, 0.0],  # happy
    [-0.11, 0.00,  0.00,  0.00, -0.07,  0.0,   0.0,   0.015, -0.085, -0.015, -0.35, 0.0],  # sad
    [0.00,  0.00,  0.07,  0.17, -0.50,  1.0,   0.0,   0.130, 0.000, 0.050, 0.85,  0.0],  # surprise
    [-0.04, 0.00,  0.03,  0.085, 0.30,  0.3,   0.6,   0.085, -0.085, 0.000, 0.70,  0.0],  # fear
    [-0.07, 0.00,  0.07,  0.015, -0.07, 0.0,   0.7,   -0.055, 0.050, 0.000, -0.60, 1.0],  # disgust
    [-0.03, 0.00,  0.00,  0.00, -0.25,  0.0,   0.0,   -0.070, 0.100, 0.000, -0.42, 0.0],  # angry
    [0.00,  0.15,  0.00,  0.00, -0.07,  0.0,   0.0,   0.000, 0.000, 0.000, -0.20, 0.0],  # contempt
])
_CUE_JITTER = np.array([0.012, 0.01, 0.008, 0.01, 0.06, 0.1, 0.1, 0.012, 0.012, 0.008, 0.1, 0.08])
_CUE_LO = np.array([-0.17, 0.00, 0.00, 0.00, -0.60, 0.0, 0.0, -0.10, -0.13, -0.03, -0.80, 0.0])
_CUE_HI = np.array([0.20,  0.20, 0.10, 0.22,  0.40, 1.0, 1.0,  0.17,  0.14,  0.08,  0.90, 1.0])
# fmt: on


# ----------------------------------------------------------------------------------------------
# parameters


def _sample_params(labels: np.ndarray, rng: np.random.Generator, intensity: np.ndarray | None) -> dict:
    """Draw every identity and expression parameter up front, so the picture of face i does not
    depend on how the batch is split into render chunks."""
    n = len(labels)

    def u(lo: float, hi: float) -> np.ndarray:
        return rng.uniform(lo, hi, n)

    p: dict[str, np.ndarray] = {}
    # pose and framing
    p["tx"] = u(-0.05, 0.05)
    p["ty"] = u(-0.1, 0.0)
    p["scale"] = u(1.1, 1.3)
    p["rot"] = np.clip(rng.normal(0.0, 0.08, n), -0.2, 0.2)
    p["edge"] = u(0.9, 1.8)  # soft-edge width in pixels: focus / resolution variation
    # head
    p["fa"] = u(0.56, 0.68)
    p["fb"] = u(0.74, 0.86)
    p["fy"] = u(-0.02, 0.06)
    p["taper"] = u(0.05, 0.25)
    p["skin"] = u(0.5, 0.82)
    p["shade"] = u(0.1, 0.3)
    p["bg"] = u(0.05, 0.95)
    p["hair"] = np.clip(p["skin"] - u(0.25, 0.65), 0.02, 1.0)
    p["h0"] = u(-0.72, -0.42)
    p["hc"] = u(0.2, 0.9)
    p["hasym"] = u(-0.15, 0.15)
    p["hvol"] = u(0.0, 0.14)
    p["hlen"] = u(-0.3, 0.95)
    p["cloth"] = u(0.05, 0.95)
    p["shoulder"] = u(0.82, 1.02)
    p["neck"] = u(0.45, 0.6)
    # eyes, brows, nose, mouth geometry of the neutral face
    p["ex"] = u(0.23, 0.28)
    p["ey"] = u(-0.08, -0.03)
    p["ew"] = u(0.1, 0.125)
    p["eh"] = u(0.045, 0.058)
    p["iris"] = u(0.038, 0.05)
    p["gaze_x"] = u(-0.025, 0.025)
    p["gaze_y"] = u(-0.01, 0.01)
    p["iris_c"] = u(0.03, 0.3)
    p["sclera"] = u(0.7, 0.95)
    p["bgap"] = u(0.1, 0.15)
    p["bhw"] = u(0.1, 0.14)
    p["bthick"] = u(0.022, 0.034)
    p["btilt"] = u(-0.02, 0.02)
    p["barch"] = u(0.0, 0.03)
    p["bdark"] = u(0.3, 0.8)
    p["ny"] = u(0.17, 0.23)
    p["ngap"] = u(0.045, 0.065)
    p["nside"] = rng.choice([-1.0, 1.0], n)
    p["my"] = u(0.41, 0.47)
    p["mw"] = u(0.2, 0.25)
    p["lip"] = u(0.016, 0.024)
    p["lipdark"] = u(0.35, 0.6)
    p["mouth_c"] = u(0.05, 0.2)
    p["smile0"] = rng.normal(0.0, 0.01, n)
    p["glasses"] = (rng.random(n) < 0.12).astype(np.float64)
    p["gdark"] = u(0.02, 0.25)
    # image-level
    p["light"] = u(0.0, 0.25)
    p["light_dir"] = u(0.0, 2 * np.pi)
    p["gamma"] = np.exp(rng.normal(0.0, 0.15, n))
    p["noise"] = u(0.005, 0.045)
    # expression
    if intensity is None:
        t = u(0.35, 1.0)
    else:
        t = np.broadcast_to(np.asarray(intensity, dtype=np.float64), (n,)).copy()
        _ = u(0.35, 1.0)  # keep the random stream aligned with the default path
    p["intensity"] = t
    cues = _CUE_TABLE[labels] * t[:, None] + rng.normal(0.0, 1.0, (n, len(_CUES))) * _CUE_JITTER
    cues[:, 0] += p["smile0"]
    cues = np.clip(cues, _CUE_LO, _CUE_HI)
    for j, name in enumerate(_CUES):
        p[name] = cues[:, j]
    p["smirk_side"] = rng.choice([-1.0, 1.0], n)
    return p


# ----------------------------------------------------------------------------------------------
# public API


def render_faces(
    labels: np.ndarray, seed: int = 0, size: int = 48, *, intensity: float | np.ndarray | None = None
) -> np.ndarray:
    """Render one face per label (an index into DEMO_CLASSES) as uint8 of shape (N, 1, size, size).

    Deterministic for a given (labels, seed, size). Drawing happens in normalised coordinates, so
    any size >= 16 works; 48 matches FER2013. `intensity` overrides the random per-face expression
    strength (0 = neutral look, 1 = full), which is handy for sweeps and tests.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1 or (labels.size and not np.issubdtype(labels.dtype, np.integer)):
        raise ValueError(f"labels must be a 1-D integer array, got shape {labels.shape} dtype {labels.dtype}")
    if labels.size and (labels.min() < 0 or labels.max() >= len(DEMO_CLASSES)):
        raise ValueError(f"labels must be in [0, {len(DEMO_CLASSES)}), got {labels.min()}..{labels.max()}")
    if size < 16:
        raise ValueError(f"size must be at least 16, got {size}")
    n = labels.size
    out = np.empty((n, 1, size, size), dtype=np.uint8)
    if n == 0:
        return out
    rng = np.random.default_rng(seed)
    p = _sample_params(labels.astype(np.int64), rng, intensity)
    for start in range(0, n, _CHUNK):
        stop = min(start + _CHUNK, n)
        chunk = {k: v[start:stop] for k, v in p.items()}
        noise = rng.standard_normal((stop - start, size, size), dtype=np.float32)
        img = draw_chunk(chunk, size, noise)
        img *= 255.0
        img += 0.5
        np.clip(img, 0.0, 255.0, out=img)
        out[start:stop, 0] = img.astype(np.uint8)
    return out


def _resolve_counts(counts: dict[str, int] | None) -> dict[str, int]:
    """Validate a class->count mapping and return it in DEMO_CLASSES order (missing classes = 0)."""
    counts = DEFAULT_COUNTS if counts is None else counts
    unknown = sorted(set(counts) - set(DEMO_CLASSES))
    if unknown:
        raise ValueError(f"unknown class name(s) {unknown}; expected some of {list(DEMO_CLASSES)}")
    resolved = {}
    for name in DEMO_CLASSES:
        value = counts.get(name, 0)
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise ValueError(f"count for {name!r} must be a non-negative integer, got {value!r}")
        resolved[name] = int(value)
    return resolved


def make_demo_arrays(
    counts: dict[str, int] | None = None, seed: int = 0, size: int = 48
) -> tuple[np.ndarray, np.ndarray]:
    """Render a labelled demo set: (images uint8 (N, 1, size, size), labels int64 (N,)).

    Classes come in DEMO_CLASSES order, sorted by class, with classes of count 0 absent. The default
    counts mimic FER2013's imbalance so rebalancing has something to fix.
    """
    resolved = _resolve_counts(counts)
    labels = np.concatenate(
        [np.full(c, i, dtype=np.int64) for i, c in enumerate(resolved.values())] + [np.zeros(0, np.int64)]
    )
    return render_faces(labels, seed=seed, size=size), labels


def _derived_seed(seed: int, stream: int) -> int:
    """A seed for an independent stream (e.g. the test split), so test faces never repeat train faces."""
    return int(np.random.SeedSequence([seed, stream]).generate_state(1)[0])


def write_demo_dataset(
    out: Path,
    counts: dict[str, int] | None = None,
    seed: int = 0,
    test_fraction: float = 0.2,
    size: int = 48,
) -> dict[str, dict[str, int]]:
    """Write a Kaggle-FER2013-style tree out/{train,test}/<class>/<class>_<i:05d>.png.

    Each class gets `count` train faces and max(1, round(count * test_fraction)) test faces drawn
    from a different seed. The tree is built in a sibling temp directory and renamed into place at
    the end, so an interrupted run never leaves a half-written dataset at `out`. Returns
    {split: {class: count}}.
    """
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"refusing to write demo dataset: {out} already exists and is not an empty directory")
    if test_fraction < 0:
        raise ValueError(f"test_fraction must be >= 0, got {test_fraction}")
    train = {k: v for k, v in _resolve_counts(counts).items() if v > 0}
    test = {k: max(1, round(v * test_fraction)) for k, v in train.items()}
    splits = {"train": (train, seed), "test": (test, _derived_seed(seed, 1))}

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    try:
        for split, (split_counts, split_seed) in splits.items():
            images, labels = make_demo_arrays(split_counts, seed=split_seed, size=size)
            index = 0
            for name, count in split_counts.items():
                class_dir = tmp / split / name
                class_dir.mkdir(parents=True)
                for i in range(count):
                    Image.fromarray(images[index + i, 0]).save(class_dir / f"{name}_{i:05d}.png", compress_level=1)
                index += count
            assert index == len(labels)
        if out.exists():
            out.rmdir()  # empty (checked above); os.replace cannot overwrite a directory on every OS
        os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {split: dict(split_counts) for split, (split_counts, _) in splits.items()}


def parse_counts(text: str) -> dict[str, int]:
    """Parse a CLI-style class count list such as "happy=600,disgust=36" into a dict."""
    result: dict[str, int] = {}
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        name, sep, value = item.partition("=")
        name, value = name.strip().lower(), value.strip()
        if not sep or not name:
            raise ValueError(f"bad count {item!r}: expected <class>=<count>, e.g. 'happy=600'")
        if name not in DEMO_CLASSES:
            raise ValueError(f"unknown class {name!r} in {item!r}; expected one of {', '.join(DEMO_CLASSES)}")
        if name in result:
            raise ValueError(f"class {name!r} given more than once")
        try:
            count = int(value)
        except ValueError:
            raise ValueError(f"count for {name!r} must be a non-negative integer, got {value!r}") from None
        if count < 0:
            raise ValueError(f"count for {name!r} must be a non-negative integer, got {count}")
        result[name] = count
    if not result:
        raise ValueError(f"no class counts in {text!r}; expected e.g. 'happy=600,disgust=36'")
    return result
