"""How a demo face is painted: soft signed-distance primitives on a canvas of face chunks, one named
step per part of the face (augment.demo_faces draws the parameters and calls ``draw_chunk``)."""

from __future__ import annotations

import numpy as np

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


def draw_chunk(p: dict, size: int, noise: np.ndarray) -> np.ndarray:
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
