"""Handwritten things that are not digits: letters, symbols, shapes and scribbles.

The "not a digit" score (notadigit.py) is measured on these: each is drawn
here with a pen whose width varies along the stroke (as a pressed pen does),
randomly sized, slanted, rotated and warped, and can then be delivered in any
user-style kind of tests/userstyle.py (`userstyle.make(ink, kind, rng)`).

Only shapes that resemble no digit are drawn: no O (0), I or l (1), Z (2),
S (5), G or b (6), B (8), g or q (9), and no plain circle or vertical bar.

    ink = draw("star", np.random.default_rng(0))
    name, ink = sample(rng)                    # a random shape
"""

import math

import numpy as np
from PIL import Image, ImageDraw


def _arc(cx, cy, rx, ry, a0, a1, n=20):
    """Points on an ellipse arc; angles in degrees, counter-clockwise from 3 o'clock (y down)."""
    t = np.linspace(math.radians(a0), math.radians(a1), n)
    return [(cx + rx * math.cos(v), cy - ry * math.sin(v)) for v in t]


def _star(points=5, inner=0.38):
    pts = []
    for k in range(2 * points + 1):
        r = 0.5 if k % 2 == 0 else 0.5 * inner
        a = math.pi / 2 + k * math.pi / points
        pts.append((0.5 + r * math.cos(a), 0.5 - r * math.sin(a)))
    return [pts]


def _heart():
    pts = []
    for t in np.linspace(0, 2 * math.pi, 60):
        x = 16 * math.sin(t) ** 3
        y = 13 * math.cos(t) - 5 * math.cos(2 * t) - 2 * math.cos(3 * t) - math.cos(4 * t)
        pts.append((0.5 + x / 34, 0.45 - y / 34))
    return [pts]


def _spiral(turns=2.5):
    t = np.linspace(0, 2 * math.pi * turns, 80)
    r = 0.48 * t / t[-1]
    return [[(0.5 + rr * math.cos(v), 0.5 + rr * math.sin(v)) for rr, v in zip(r, t)]]


# Strokes in a unit box (x right, y down); a stroke is a list of points.
SHAPES = {
    # Capital letters
    "A": [[(0.0, 1.0), (0.5, 0.0), (1.0, 1.0)], [(0.22, 0.6), (0.78, 0.6)]],
    "E": [[(0.85, 0.0), (0.1, 0.0), (0.1, 1.0), (0.85, 1.0)], [(0.1, 0.5), (0.7, 0.5)]],
    "F": [[(0.9, 0.0), (0.15, 0.0), (0.15, 1.0)], [(0.15, 0.5), (0.7, 0.5)]],
    "H": [[(0.1, 0.0), (0.1, 1.0)], [(0.9, 0.0), (0.9, 1.0)], [(0.1, 0.5), (0.9, 0.5)]],
    "K": [[(0.15, 0.0), (0.15, 1.0)], [(0.85, 0.0), (0.15, 0.55)], [(0.35, 0.42), (0.9, 1.0)]],
    "M": [[(0.0, 1.0), (0.08, 0.0), (0.5, 0.65), (0.92, 0.0), (1.0, 1.0)]],
    "N": [[(0.1, 1.0), (0.1, 0.0), (0.9, 1.0), (0.9, 0.0)]],
    "R": [[(0.15, 1.0), (0.15, 0.0)] + _arc(0.4, 0.25, 0.4, 0.25, 90, -90, 14) + [(0.15, 0.5), (0.9, 1.0)]],
    "V": [[(0.0, 0.0), (0.5, 1.0), (1.0, 0.0)]],
    "W": [[(0.0, 0.0), (0.22, 1.0), (0.5, 0.35), (0.78, 1.0), (1.0, 0.0)]],
    "X": [[(0.05, 0.0), (0.95, 1.0)], [(0.95, 0.0), (0.05, 1.0)]],
    "Y": [[(0.0, 0.0), (0.5, 0.5), (1.0, 0.0)], [(0.5, 0.5), (0.5, 1.0)]],
    # Small letters
    "e": [[(0.1, 0.55), (0.9, 0.55)] + _arc(0.5, 0.55, 0.4, 0.45, 0, 300, 24)],
    "h": [[(0.15, 0.0), (0.15, 1.0)], [(0.15, 0.6)] + _arc(0.5, 0.65, 0.35, 0.3, 170, 0, 10) + [(0.85, 1.0)]],
    "k": [[(0.2, 0.0), (0.2, 1.0)], [(0.85, 0.35), (0.2, 0.75)], [(0.4, 0.62), (0.9, 1.0)]],
    "m": [[(0.05, 1.0), (0.05, 0.35)] + _arc(0.27, 0.5, 0.22, 0.2, 170, 0, 8) + [(0.49, 1.0)],
          [(0.49, 0.55)] + _arc(0.72, 0.5, 0.23, 0.2, 170, 0, 8) + [(0.95, 1.0)]],
    "w": [[(0.0, 0.3), (0.25, 1.0), (0.5, 0.45), (0.75, 1.0), (1.0, 0.3)]],
    "x": [[(0.1, 0.3), (0.9, 1.0)], [(0.9, 0.3), (0.1, 1.0)]],
    # Symbols
    "plus": [[(0.5, 0.05), (0.5, 0.95)], [(0.05, 0.5), (0.95, 0.5)]],
    "equals": [[(0.05, 0.3), (0.95, 0.3)], [(0.05, 0.7), (0.95, 0.7)]],
    "hash": [[(0.35, 0.0), (0.25, 1.0)], [(0.75, 0.0), (0.65, 1.0)],
             [(0.0, 0.32), (1.0, 0.32)], [(0.0, 0.68), (1.0, 0.68)]],
    "question": [_arc(0.5, 0.25, 0.35, 0.25, 160, -60, 14) + [(0.5, 0.5), (0.5, 0.72)],
                 _arc(0.5, 0.95, 0.04, 0.04, 0, 360, 8)],
    "ampersand": [[(0.95, 1.0), (0.25, 0.4)] + _arc(0.42, 0.2, 0.2, 0.2, 220, -40, 12)
                  + [(0.15, 0.7)] + _arc(0.35, 0.8, 0.22, 0.2, 180, 300, 8) + [(0.85, 0.55)]],
    "at": [_arc(0.52, 0.52, 0.17, 0.2, 0, 360, 16) + [(0.69, 0.75)] + _arc(0.5, 0.5, 0.46, 0.48, -20, 330, 36)],
    "percent": [[(0.9, 0.0), (0.1, 1.0)], _arc(0.2, 0.18, 0.14, 0.16, 0, 360, 14),
                _arc(0.8, 0.82, 0.14, 0.16, 0, 360, 14)],
    "asterisk": [[(0.5, 0.0), (0.5, 1.0)], [(0.07, 0.25), (0.93, 0.75)], [(0.93, 0.25), (0.07, 0.75)]],
    "exclamation": [[(0.5, 0.0), (0.5, 0.7)], _arc(0.5, 0.95, 0.05, 0.05, 0, 360, 8)],
    "less": [[(0.9, 0.0), (0.1, 0.5), (0.9, 1.0)]],
    "tilde": [[(0.0, 0.6)] + _arc(0.25, 0.6, 0.25, 0.25, 180, 0, 10) + _arc(0.75, 0.6, 0.25, 0.25, 180, 360, 10)],
    "dash": [[(0.0, 0.5), (1.0, 0.5)]],
    # Shapes and doodles
    "star": _star(),
    "arrow_right": [[(0.0, 0.5), (1.0, 0.5)], [(0.65, 0.2), (1.0, 0.5), (0.65, 0.8)]],
    "arrow_up": [[(0.5, 1.0), (0.5, 0.0)], [(0.2, 0.35), (0.5, 0.0), (0.8, 0.35)]],
    "heart": _heart(),
    "smiley": [_arc(0.5, 0.5, 0.48, 0.48, 0, 360, 40), _arc(0.33, 0.35, 0.04, 0.05, 0, 360, 6),
               _arc(0.67, 0.35, 0.04, 0.05, 0, 360, 6), _arc(0.5, 0.55, 0.27, 0.22, 200, 340, 12)],
    "triangle": [[(0.5, 0.0), (1.0, 1.0), (0.0, 1.0), (0.5, 0.0)]],
    "check": [[(0.0, 0.55), (0.35, 1.0), (1.0, 0.0)]],
    "hatching": [[(0.0, 0.25 * k), (0.25 * k, 0.0)] for k in range(1, 5)]
                + [[(0.25 * k - 1.0, 1.0), (1.0, 0.25 * k - 1.0)] for k in range(5, 8)],
    "grid": [[(0.33, 0.0), (0.33, 1.0)], [(0.66, 0.0), (0.66, 1.0)],
             [(0.0, 0.33), (1.0, 0.33)], [(0.0, 0.66), (1.0, 0.66)]],
    "spiral": _spiral(),
    "wave": [[(x, 0.5 + 0.3 * math.sin(4 * math.pi * x)) for x in np.linspace(0, 1, 40)]],
}

# Held out of any choice made on non-digits (method, feature layer, threshold rule):
# the figures reported on these shapes are from shapes never looked at while choosing.
HELD_OUT = ("K", "W", "h", "hash", "at", "heart", "spiral", "check", "tilde")
TUNING = tuple(sorted(set(SHAPES) - set(HELD_OUT)))


def _scribble(rng):
    """A random looping scribble: a smooth random walk that crosses itself."""
    n = int(rng.integers(3, 7))
    t = np.linspace(0, 1, 80)
    x = sum(rng.uniform(0.1, 0.3) * np.sin(2 * np.pi * (k + 1) * t * rng.uniform(0.7, 1.6) + rng.uniform(0, 6))
            for k in range(n))
    y = sum(rng.uniform(0.1, 0.3) * np.cos(2 * np.pi * (k + 1) * t * rng.uniform(0.7, 1.6) + rng.uniform(0, 6))
            for k in range(n))
    return [list(zip(x, y))]


def draw(name, rng, height=200):
    """Draw a shape (a key of SHAPES, or "scribble") with a pressed pen.

    Args:
        name: the shape.
        rng: numpy Generator: size, slant, rotation, warp and pen vary with it.
        height: the shape's height in pixels, about.

    Returns:
        float32 ink array (1 = ink), cropped to the ink.
    """
    strokes = _scribble(rng) if name == "scribble" else SHAPES[name]
    pts_all = np.concatenate([np.asarray(s, np.float64) for s in strokes])
    lo = pts_all.min(axis=0)
    # One scale for both axes keeps a shape's proportions (a dash stays a dash); the
    # longer side becomes `height` pixels.
    unit = float(max((pts_all.max(axis=0) - lo).max(), 1e-6))
    stretch = rng.uniform(0.8, 1.2)
    slant = rng.uniform(-0.2, 0.2)
    angle = math.radians(rng.uniform(-10, 10))
    pen = rng.uniform(0.04, 0.1) * height
    margin = int(pen + 6)
    img = Image.new("L", (int(height * (1.2 + abs(slant) + 0.2)) + 2 * margin, int(1.4 * height) + 2 * margin), 0)
    d = ImageDraw.Draw(img)
    ca, sa = math.cos(angle), math.sin(angle)
    wobble = rng.uniform(0.005, 0.02)
    for stroke in strokes:
        p = (np.asarray(stroke, np.float64) - lo) / unit
        # Points every ~1 % of the height, so that the pen's width can vary along the stroke.
        seg = np.hypot(*np.diff(p, axis=0).T)
        t = np.concatenate([[0], np.cumsum(seg)])
        s = np.linspace(0, t[-1], max(2, int(t[-1] / 0.01)))
        p = np.stack([np.interp(s, t, p[:, 0]), np.interp(s, t, p[:, 1])], axis=1)
        p += rng.normal(0, wobble, 2)
        x = p[:, 0] * stretch + slant * (1 - p[:, 1])
        y = p[:, 1]
        xr, yr = x * ca - (y - 0.5) * sa, x * sa + (y - 0.5) * ca + 0.5
        xs = margin + abs(slant) * height + xr * height
        ys = margin + (yr + 0.2) * height
        # Pressure: thinner at the stroke's ends, thicker in its middle.
        press = 0.6 + 0.4 * np.sin(np.linspace(0, np.pi, len(xs)))
        for cx, cy, w in zip(xs, ys, press * pen / 2):
            d.ellipse((cx - w, cy - w, cx + w, cy + w), fill=255)
    a = np.asarray(img, np.float32) / 255
    rows = np.flatnonzero(a.max(axis=1) > 0.05)
    cols = np.flatnonzero(a.max(axis=0) > 0.05)
    return a[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]


def sample(rng, names=None):
    """A random non-digit: (name, ink). `names` limits the choice (default: every shape and the scribble)."""
    names = list(names or (*SHAPES, "scribble"))
    name = names[int(rng.integers(len(names)))]
    return name, draw(name, rng, height=int(rng.integers(80, 260)))
