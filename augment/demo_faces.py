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
# drawing primitives (all in face-local coordinates; distances negative inside)


def _cov(d: np.ndarray, k: np.ndarray) -> np.ndarray:
    """Soft coverage: 1 inside, 0 outside, a linear ramp about `edge` pixels wide across the edge."""
    a = 0.5 - d * k
    np.clip(a, 0.0, 1.0, out=a)
    return a


def _ellipse(x, y, cx, cy, rx, ry):
    """Signed distance to an axis-aligned ellipse, to first order (f / |grad f| for f = (r^2 - 1) / 2):
    exact enough within the few pixels where the soft edge ramps, and cheaper than the true distance."""
    irx, iry = 1.0 / rx, 1.0 / ry
    px = (x - cx) * irx
    py = (y - cy) * iry
    k1 = np.sqrt((px * irx) ** 2 + (py * iry) ** 2) + 1e-6
    return (px * px + py * py - 1.0) / (2.0 * k1)


def _stroke(x, y, cx, cy, hw, a1, a2, thick, sign=1.0, taper=0.0):
    """Distance to a thick quadratic curve y = cy + a1*t + a2*t^2, t = sign*(x-cx)/hw in [-1, 1].

    Swap x and y to draw near-vertical strokes. `taper` thins the ends, which reads as a brow."""
    t = (x - cx) * (sign / hw)
    tc = np.clip(t, -1.0, 1.0)
    f = cy + a1 * tc + a2 * tc * tc
    slope = (a1 + 2.0 * a2 * tc) / hw
    dy = (y - f) / np.sqrt(1.0 + slope * slope)
    dx = (np.abs(t) - 1.0) * hw
    np.maximum(dx, 0.0, out=dx)
    th = thick * (1.0 - taper * tc * tc) if taper else thick
    return np.sqrt(dx * dx + dy * dy) - th


class _Region:
    """A per-face window of pixels (or the whole image) with its face-local coordinates."""

    def __init__(self, canvas: _Canvas, idx: np.ndarray | None, u: np.ndarray, v: np.ndarray):
        self.canvas = canvas
        self.idx = idx
        c, s = canvas.cos, canvas.sin
        du = u - canvas.tx
        dv = v - canvas.ty
        self.x = (c * du + s * dv) * canvas.inv_scale
        self.y = (c * dv - s * du) * canvas.inv_scale
        self.k = canvas.k
        self.vals = canvas.img if idx is None else np.take_along_axis(canvas.img, idx, axis=1)

    def paint(self, d: np.ndarray, color, alpha=None) -> None:
        a = _cov(d, self.k)
        if alpha is not None:
            a *= alpha
        self.vals += a * (color - self.vals)

    def commit(self) -> None:
        if self.idx is not None:
            np.put_along_axis(self.canvas.img, self.idx, self.vals, axis=1)


class _Canvas:
    """A chunk of flattened images plus each face's similarity transform (face-local -> image)."""

    def __init__(self, p: dict, size: int):
        def col(name: str) -> np.ndarray:
            return p[name].astype(np.float32)[:, None]

        self.n = len(p["tx"])
        self.size = size
        self.tx, self.ty = col("tx"), col("ty")
        self.scale = col("scale")
        self.inv_scale = 1.0 / self.scale
        self.cos, self.sin = np.cos(col("rot")), np.sin(col("rot"))
        # coverage ramp: `edge` pixels of 2/size image units, measured in face-local units
        self.k = self.scale * (size / 2.0) / col("edge")
        self.margin = float(p["edge"].max()) / 2.0 + 1.5  # pixels a soft edge may reach out
        g = ((np.arange(size, dtype=np.float32) + 0.5) * (2.0 / size) - 1.0).astype(np.float32)
        self.u = np.tile(g, size)[None, :]
        self.v = np.repeat(g, size)[None, :]
        self.img = np.empty((self.n, size * size), dtype=np.float32)

    def full(self) -> _Region:
        return _Region(self, None, self.u, self.v)

    def window(self, x0, x1, y0, y1) -> _Region:
        """Pixels covering the face-local box [x0, x1] x [y0, y1] of every face (per-face bounds),
        padded to one common window size so the chunk stays a rectangular array."""
        cx, cy = (x0 + x1) * 0.5, (y0 + y1) * 0.5
        hx, hy = (x1 - x0) * 0.5, (y1 - y0) * 0.5
        half = self.size / 2.0
        uc = self.tx + self.scale * (self.cos * cx - self.sin * cy)
        vc = self.ty + self.scale * (self.sin * cx + self.cos * cy)
        ac, as_ = np.abs(self.cos), np.abs(self.sin)
        ext_c = (ac * hx + as_ * hy) * self.scale * half + self.margin
        ext_r = (as_ * hx + ac * hy) * self.scale * half + self.margin
        wc = int(np.ceil(ext_c.max())) * 2 + 2
        wr = int(np.ceil(ext_r.max())) * 2 + 2
        c0 = np.floor((uc + 1.0) * half - 0.5).astype(np.int64) - wc // 2 + 1
        r0 = np.floor((vc + 1.0) * half - 0.5).astype(np.int64) - wr // 2 + 1
        cols = np.clip(c0 + np.arange(wc), 0, self.size - 1)  # (n, wc)
        rows = np.clip(r0 + np.arange(wr), 0, self.size - 1)  # (n, wr)
        # clipped duplicates map to the same pixel and so compute the same value: safe to write twice
        idx = (rows[:, :, None] * self.size + cols[:, None, :]).reshape(self.n, -1)
        g = lambda i: ((i + 0.5) * (2.0 / self.size) - 1.0).astype(np.float32)  # noqa: E731
        u = np.broadcast_to(g(cols)[:, None, :], (self.n, wr, wc)).reshape(self.n, -1)
        v = np.broadcast_to(g(rows)[:, :, None], (self.n, wr, wc)).reshape(self.n, -1)
        return _Region(self, idx, u, v)


# ----------------------------------------------------------------------------------------------
# the face: one function per drawing step, painted in this order


def _draw_surroundings(r: _Region, q: dict) -> None:
    """Background, long hair behind the head, shoulders and neck, on the whole image."""
    x, y = r.x, r.y
    fa, fb, fy = q["fa"], q["fb"], q["fy"]
    r.vals[:] = q["bg"]
    ha = fa * 1.12 + q["hvol"]
    hb = fb * 1.08 + q["hvol"] * 0.5
    r.paint(np.maximum(_ellipse(x, y, 0.0, fy - 0.05, ha, hb), y - (fy + q["hlen"])), q["hair"])  # long hair
    r.paint(q["shoulder"] + 0.25 * x * x - y, q["cloth"])  # shoulders
    r.paint(np.maximum(np.abs(x) - q["neck"] * fa, fy + 0.3 - y), q["skin"] * 0.78)  # neck


def _draw_ears(cv: _Canvas, q: dict) -> None:
    """One small window per ear; committed to the canvas, so the face is painted over them."""
    ear_y = q["fy"] + q["ey"] + 0.08
    for side in (-1.0, 1.0):
        ear_x = side * q["fa"] * 0.97
        e = cv.window(ear_x - 0.09, ear_x + 0.09, ear_y - 0.15, ear_y + 0.15)
        e.paint(_ellipse(e.x, e.y, ear_x, ear_y, 0.09, 0.15), q["skin"] * 0.85)
        e.commit()


def _draw_face_and_hair(r: _Region, q: dict) -> None:
    """The egg-shaped face (narrower towards the chin, darker towards the rim), then the hair on top."""
    x, y = r.x, r.y
    fa, fb, fy = q["fa"], q["fb"], q["fy"]
    yy = y - fy
    narrow = 1.0 - q["taper"] * np.clip(yy / fb, 0.0, 1.0)
    px = x / (fa * narrow)
    py = yy / fb
    k0sq = px * px + py * py
    k1 = np.sqrt((px / (fa * narrow)) ** 2 + (py / fb) ** 2) + 1e-6
    face_col = q["skin"] * (1.0 - q["shade"] * k0sq)  # darker towards the rim: reads as a rounded head
    r.paint((k0sq - 1.0) / (2.0 * k1), face_col)
    hairline = fy + q["h0"] + q["hc"] * x * x + q["hasym"] * x
    d_top = np.maximum(_ellipse(x, y, 0.0, fy - 0.04, fa * 1.07 + q["hvol"], fb * 1.04 + q["hvol"] * 0.5), y - hairline)
    r.paint(d_top, q["hair"])


def _eye_height(q: dict) -> tuple[np.ndarray, np.ndarray]:
    """Eye centre height and half-opening (shared by the eyes and the nose window)."""
    ey = q["fy"] + q["ey"]
    eo = np.clip(1.0 + q["eye_open"], 0.2, 1.9)
    return ey, q["eh"] * eo


def _draw_eyes_and_brows(cv: _Canvas, q: dict) -> None:
    """Brow, lids, eye, iris and glasses rim: one small window per side."""
    skin, hair = q["skin"], q["hair"]
    ey, eh = _eye_height(q)
    lid = skin * 0.3
    brow_c = np.minimum(hair * q["bdark"] + skin * (1.0 - q["bdark"]), skin - 0.2)
    # lowered brows press down onto the lids but never cover the eye
    by = np.minimum(ey - q["bgap"] - q["brow_raise"], ey - eh - 0.05)
    for side in (-1.0, 1.0):
        ex = side * q["ex"]
        # brow: t = +1 at the inner end, so brow_inner > 0 pulls the inner end down (angry)
        bx = ex + side * 0.01
        b_a1 = q["brow_inner"] + q["btilt"]
        b_a2 = -(q["barch"] + q["brow_arch"])
        b_reach = np.abs(b_a1) + np.abs(b_a2) + q["bthick"]
        r = cv.window(
            ex - 0.2,
            ex + 0.2,
            np.minimum(by - b_reach, ey - eh - 0.03),
            np.maximum(by + b_reach, ey + np.maximum(eh + 0.024, 0.115)),
        )
        x, y = r.x, r.y
        r.paint(_stroke(x, y, bx, by, q["bhw"], b_a1, b_a2, q["bthick"], sign=-side, taper=0.5), brow_c)
        r.paint(_ellipse(x, y, ex, ey - 0.008, q["ew"] + 0.016, eh + 0.014), lid)  # lids / lashes
        d_eye = _ellipse(x, y, ex, ey, q["ew"], eh)
        r.paint(d_eye, q["sclera"])
        d_iris = np.maximum(np.sqrt((x - ex - q["gaze_x"]) ** 2 + (y - ey - q["gaze_y"]) ** 2) - q["iris"], d_eye)
        r.paint(d_iris, q["iris_c"])
        ring = np.abs(_ellipse(x, y, ex, ey, q["ew"] + 0.06, 0.1)) - 0.012
        r.paint(ring, q["gdark"], alpha=q["glasses"])
        r.commit()


def _draw_nose(cv: _Canvas, q: dict) -> None:
    """Bridge shadow, tip, nostrils, the disgust wrinkles and the glasses bridge."""
    skin = q["skin"]
    ey, _ = _eye_height(q)
    ny = q["fy"] + q["ny"]
    r = cv.window(-0.16, 0.16, ey - 0.03, ny + 0.02)
    x, y = r.x, r.y
    ns = q["nside"]
    # side of the nose bridge in shadow: a vertical stroke (x as a function of y)
    r.paint(_stroke(y, x, (ey + ny) / 2, ns * 0.055, (ny - ey) / 2, ns * 0.01, 0.0, 0.012), skin * 0.78, alpha=0.7)
    r.paint(_stroke(x, y, 0.0, ny - 0.035, 0.05, 0.0, 0.02, 0.008), skin * 0.75, alpha=0.8)  # tip
    for side in (-1.0, 1.0):
        r.paint(_ellipse(x, y, side * q["ngap"], ny, 0.03, 0.016), skin * 0.45)
        for k, dy in enumerate((-0.11, -0.06)):
            # short diagonal creases beside the bridge, inner end higher: the disgust "nose wrinkle"
            w_alpha = np.clip(q["wrinkle"] * 1.3 - 0.3 * k, 0.0, 1.0)
            r.paint(
                _stroke(x, y, side * (0.1 + 0.01 * k), ny + dy, 0.04, -0.02, 0.0, 0.009, sign=-side),
                skin * 0.5,
                alpha=w_alpha,
            )
    bridge_hw = q["ex"] - q["ew"] - 0.06
    r.paint(_stroke(x, y, 0.0, ey - 0.01, bridge_hw, 0.0, -0.01, 0.012), q["gdark"], alpha=q["glasses"])
    r.commit()


def _mouth_curves(x: np.ndarray, q: dict, my: np.ndarray, mw: np.ndarray) -> dict[str, np.ndarray]:
    """The lip lines of the expression: `upper`/`lower` heights along x and their slopes in t = x / mw.

    The mouth line bends with the smile (both corners) and the smirk (one corner); the opening
    between the lines is lens-shaped, or rounder as `round` grows (an "O")."""
    t = x / mw
    tc = np.clip(t, -1.0, 1.0)
    ss = q["smirk_side"]
    lift = np.maximum(ss * tc, 0.0)
    c = my - q["smile"] * tc * tc - q["smirk"] * lift * lift
    dc = -2.0 * q["smile"] * tc - 2.0 * q["smirk"] * lift * ss
    one = np.maximum(1.0 - tc * tc, 1e-4)
    pw = 1.0 - 0.5 * q["round"]
    prof = one**pw
    dprof = -2.0 * pw * tc * prof / one
    return {
        "upper": c - q["open_top"] * prof,
        "lower": c + q["open_bot"] * prof,
        "upper_slope": dc - q["open_top"] * dprof,
        "lower_slope": dc + q["open_bot"] * dprof,
        "d_side": (np.abs(t) - 1.0) * mw,
    }


def _draw_mouth(cv: _Canvas, q: dict) -> None:
    """Mouth opening, teeth, both lips and the shadow under the lower lip."""
    skin = q["skin"]
    my = q["fy"] + q["my"]
    mw = q["mw"] * (1.0 + q["mouth_w"])
    m_top = my - np.maximum(q["smile"], 0.0) - q["smirk"] - q["open_top"] - q["lip"]
    m_bot = my + np.maximum(-q["smile"], 0.0) + q["open_bot"] + 0.05
    r = cv.window(-mw - q["lip"], mw + q["lip"], m_top, m_bot)
    y = r.y
    m = _mouth_curves(r.x, q, my, mw)
    upper, lower, d_side = m["upper"], m["lower"], m["d_side"]
    d_in = np.maximum(np.maximum(upper - y, y - lower), d_side)
    r.paint(d_in, q["mouth_c"])
    teeth_edge = upper + 0.5 * q["teeth"] * (lower - upper)
    r.paint(np.maximum(d_in, y - teeth_edge), 0.85, alpha=np.minimum(q["teeth"] * 2.0, 1.0))
    lip_c = skin * q["lipdark"]
    for curve, slope_t in ((upper, m["upper_slope"]), (lower, m["lower_slope"])):
        slope = np.clip(slope_t / mw, -4.0, 4.0)
        dy = (y - curve) / np.sqrt(1.0 + slope * slope)
        dx = np.maximum(d_side, 0.0)
        r.paint(np.sqrt(dx * dx + dy * dy) - q["lip"], lip_c)
    # soft shadow under the lower lip gives the lips some volume
    dy = y - (lower + 0.035)
    r.paint(np.maximum(np.abs(dy) - 0.012, d_side + 0.04), skin * 0.85, alpha=0.6)
    r.commit()


def _apply_camera(cv: _Canvas, q: dict, noise: np.ndarray) -> np.ndarray:
    """Lighting ramp, gamma and sensor noise over the finished chunk; returns (n, size, size)."""
    img = cv.img
    ang = q["light_dir"]
    img *= 1.0 + q["light"] * (np.cos(ang) * cv.u + np.sin(ang) * cv.v)
    np.clip(img, 0.0, 1.0, out=img)
    img **= q["gamma"]
    img += noise.reshape(cv.n, -1) * q["noise"]
    return img.reshape(cv.n, cv.size, cv.size)


def _draw_chunk(p: dict, size: int, noise: np.ndarray) -> np.ndarray:
    """Render one chunk of faces; returns float32 (n, size, size) in [0, 1] before quantisation."""
    cv = _Canvas(p, size)
    q = {k: v.astype(np.float32)[:, None] for k, v in p.items()}
    whole = cv.full()  # its pixels are the canvas itself, so windows committed to the canvas show in it
    _draw_surroundings(whole, q)
    _draw_ears(cv, q)
    _draw_face_and_hair(whole, q)
    _draw_eyes_and_brows(cv, q)
    _draw_nose(cv, q)
    _draw_mouth(cv, q)
    return _apply_camera(cv, q, noise)


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
        img = _draw_chunk(chunk, size, noise)
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
