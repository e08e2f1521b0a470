"""User-style digit images for tests: what people actually hand the predict scripts.

A digit starts as an *ink* array (float, 1 = ink, 0 = paper): an MNIST digit
(`from_mnist`), a digit drawn here with pen strokes in styles MNIST rarely has
(`draw_digit`), or a number laid out from several digits (`compose_number`).
`make(ink, kind, rng)` then turns it into the bytes of an image file of one
kind (see KINDS): a tight crop, a big canvas, a transparent drawing, white on
black, a photo of paper, a scan, a 1-px pen, a fat marker, a phone JPEG with
EXIF rotation, a 16-bit PNG, CMYK, palette, an animated GIF and more.
`open_image(data)` opens such bytes exactly as Pillow opens a file.

Everything is deterministic for a given numpy Generator (np.random.default_rng).
`python tests/userstyle.py images/` regenerates the README's sample images.
"""

import io
import math
import os
import sys

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

# --------------------------------------------------------------------------
# Ink helpers
# --------------------------------------------------------------------------


def _resize(a, size, resample=Image.Resampling.BICUBIC):
    """Resize a float array with Pillow; size is (width, height)."""
    out = Image.fromarray(np.asarray(a, np.float32), "F").resize(size, resample)
    return np.clip(np.asarray(out, np.float32), 0.0, 1.0)


def crop_ink(ink, threshold=0.05):
    """The ink's bounding box (values above threshold)."""
    rows = np.flatnonzero((ink > threshold).any(axis=1))
    cols = np.flatnonzero((ink > threshold).any(axis=0))
    return ink[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]


def from_mnist(array, height=200):
    """A 28x28 (or 784) MNIST array enlarged smoothly so the digit is `height` px tall.

    The enlargement is what a person's higher-resolution image of the same
    digit looks like: same shape and proportions, soft edges.
    """
    a = np.asarray(array, np.float32).reshape(28, 28)
    a = crop_ink(a, 0.0)
    s = height / a.shape[0]
    pad = np.pad(a, 1)
    big = _resize(pad, (max(1, round(pad.shape[1] * s)), max(1, round(pad.shape[0] * s))))
    return crop_ink(big)


def _shift(a, dy, dx):
    out = np.zeros_like(a)
    h, w = a.shape
    out[max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
        a[max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)]
    return out


def dilate(ink, radius):
    """Thicken strokes by about `radius` px (round pen)."""
    a = np.pad(ink, radius)
    out = a.copy()
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            if dy * dy + dx * dx <= radius * radius + radius:
                np.maximum(out, _shift(a, dy, dx), out=out)
    return out


def skeleton(ink, threshold=0.5):
    """1-px centre lines of the strokes (Zhang-Suen thinning)."""
    img = np.pad(ink > threshold, 1).astype(np.uint8)
    while True:
        changed = False
        for step in (0, 1):
            p = np.pad(img, 1)
            n = [p[:-2, 1:-1], p[:-2, 2:], p[1:-1, 2:], p[2:, 2:],
                 p[2:, 1:-1], p[2:, :-2], p[1:-1, :-2], p[:-2, :-2]]  # P2..P9
            b = sum(x.astype(np.int32) for x in n)
            seq = n + [n[0]]
            a = sum(((seq[i] == 0) & (seq[i + 1] == 1)).astype(np.int32) for i in range(8))
            p2, p4, p6, p8 = n[0], n[2], n[4], n[6]
            if step == 0:
                c = (p2 * p4 * p6 == 0) & (p4 * p6 * p8 == 0)
            else:
                c = (p2 * p4 * p8 == 0) & (p2 * p6 * p8 == 0)
            kill = (img == 1) & (b >= 2) & (b <= 6) & (a == 1) & c
            if kill.any():
                img[kill] = 0
                changed = True
        if not changed:
            return img[1:-1, 1:-1].astype(np.float32)


def thin_pen(ink):
    """The same digit written with a 1-px pen."""
    return skeleton(ink)


def thick_marker(ink, rng=None, factor=None):
    """The same digit written with a fat marker (strokes ~3x as wide)."""
    rng = rng or np.random.default_rng(0)
    h = ink.shape[0]
    factor = factor if factor is not None else rng.uniform(0.06, 0.10)
    return dilate(ink, max(1, round(factor * h)))


def break_strokes(ink, rng, gaps=2, width=0.06):
    """Erase `gaps` thin bands across the strokes: a pen that skipped or lifted."""
    h, w = ink.shape
    out = ink.copy()
    yy, xx = np.mgrid[0:h, 0:w]
    ys, xs = np.nonzero(ink > 0.5)
    for _ in range(gaps):
        i = rng.integers(len(ys))
        angle = rng.uniform(0, np.pi)
        d = (yy - ys[i]) * np.cos(angle) - (xx - xs[i]) * np.sin(angle)
        near = np.hypot(yy - ys[i], xx - xs[i]) < 0.25 * max(h, w)
        out[(np.abs(d) < width * max(h, w) / 2) & near] = 0
    return out


def dotted(ink, rng, period=None, faint=0.45):
    """A dotted, faint pen: the strokes come and go along their length."""
    h, w = ink.shape
    period = period or max(4, round(0.05 * h))
    yy, xx = np.mgrid[0:h, 0:w]
    phase = rng.uniform(0, 2 * np.pi, 2)
    dots = (np.sin(2 * np.pi * yy / period + phase[0]) + np.sin(2 * np.pi * xx / period + phase[1])) > -0.6
    return ink * dots * faint


# --------------------------------------------------------------------------
# Digits drawn with pen strokes, in styles other than MNIST's
# --------------------------------------------------------------------------

def _arc(cx, cy, rx, ry, a0, a1, n=24):
    t = np.linspace(math.radians(a0), math.radians(a1), n)
    return [(cx + rx * math.cos(v), cy - ry * math.sin(v)) for v in t]


# Each style: list of strokes; each stroke a list of (x, y) in a box 0..1
# (y down). Angles in _arc go counter-clockwise from 3 o'clock.
STYLES = {
    0: {"oval": [_arc(0.5, 0.5, 0.38, 0.48, 100, 460, 40)],
        "narrow": [_arc(0.5, 0.5, 0.26, 0.48, 80, 440, 40)]},
    1: {"stick": [[(0.55, 0.0), (0.5, 1.0)]],
        "flag": [[(0.25, 0.25), (0.6, 0.0), (0.55, 1.0)]],
        "flag_base": [[(0.25, 0.22), (0.55, 0.0), (0.55, 1.0)], [(0.25, 1.0), (0.85, 1.0)]]},
    2: {"swan": [_arc(0.5, 0.3, 0.35, 0.3, 160, -30, 16) + [(0.12, 1.0), (0.92, 1.0)]],
        "loop": [_arc(0.5, 0.3, 0.35, 0.3, 160, -30, 16) + [(0.2, 0.92)]
                 + _arc(0.22, 0.88, 0.1, 0.1, -90, -270, 10) + [(0.5, 0.98), (0.95, 0.95)]]},
    3: {"round": [_arc(0.45, 0.26, 0.35, 0.25, 150, -90, 16) + _arc(0.45, 0.74, 0.4, 0.26, 90, -150, 18)],
        "flat_top": [[(0.12, 0.0), (0.85, 0.0), (0.4, 0.42)] + _arc(0.45, 0.7, 0.4, 0.29, 80, -150, 18)]},
    4: {"closed": [[(0.65, 0.0), (0.05, 0.68), (0.95, 0.68)], [(0.68, 0.0), (0.68, 1.0)]],
        "open": [[(0.15, 0.0), (0.08, 0.6), (0.92, 0.6)], [(0.7, 0.12), (0.7, 1.0)]]},
    5: {"bar": [[(0.25, 0.02), (0.2, 0.45)] + _arc(0.45, 0.68, 0.4, 0.3, 130, -150, 18),
                [(0.25, 0.02), (0.88, 0.02)]],
        "detached_bar": [[(0.25, 0.08), (0.2, 0.45)] + _arc(0.45, 0.68, 0.4, 0.3, 130, -150, 18),
                         [(0.38, 0.0), (0.92, -0.04)]]},
    6: {"hook": [_arc(0.6, 0.35, 0.38, 0.35, 60, 180, 10) + _arc(0.5, 0.7, 0.35, 0.3, 180, 540, 30)]},
    7: {"plain": [[(0.08, 0.0), (0.92, 0.0), (0.35, 1.0)]],
        "crossbar": [[(0.08, 0.0), (0.92, 0.0), (0.35, 1.0)], [(0.35, 0.5), (0.85, 0.5)]]},
    8: {"figure": [[(0.5 + (0.3 if math.cos(t) > 0 else 0.4) * math.sin(2 * t), 0.5 - 0.5 * math.cos(t))
                    for t in np.linspace(0.3, 2 * math.pi + 0.3, 60)]],
        "snowman": [_arc(0.5, 0.25, 0.3, 0.25, 0, 360, 30), _arc(0.5, 0.74, 0.4, 0.26, 0, 360, 30)]},
    9: {"stem": [_arc(0.5, 0.3, 0.36, 0.3, 0, 360, 30), [(0.86, 0.3), (0.84, 1.0)]],
        "curl": [_arc(0.5, 0.3, 0.36, 0.3, -10, 350, 30) + [(0.8, 0.7)] + _arc(0.5, 0.75, 0.3, 0.25, 0, -120, 10)]},
}


def _densify(stroke, step=0.03):
    """Points every ~step along a polyline, so that the warp can bend straight parts."""
    out = [stroke[0]]
    for (x0, y0), (x1, y1) in zip(stroke[:-1], stroke[1:]):
        n = max(1, int(math.hypot(x1 - x0, y1 - y0) / step))
        out.extend((x0 + (x1 - x0) * k / n, y0 + (y1 - y0) * k / n) for k in range(1, n + 1))
    return out


def draw_digit(digit, rng, style=None, height=200, width=None):
    """Draw `digit` with pen strokes, randomly slanted, jittered and sized.

    Args:
        digit: 0..9.
        rng: numpy Generator.
        style: a key of STYLES[digit] (random if None).
        height: digit height in pixels.
        width: pen width in pixels (random 4..9 % of the height if None).

    Returns:
        float32 ink array cropped to the digit.
    """
    styles = STYLES[digit]
    style = style or sorted(styles)[rng.integers(len(styles))]
    strokes = styles[style]
    aspect = rng.uniform(0.55, 0.8) if digit != 1 else 0.6
    slant = rng.uniform(-0.25, 0.15)
    angle = math.radians(rng.uniform(-6, 6))
    pen = width if width is not None else max(2, round(rng.uniform(0.04, 0.09) * height))
    margin = pen + 4
    w = int(height * (aspect + abs(slant))) + 2 * margin
    img = Image.new("L", (w + 2 * margin, height + 2 * margin), 0)
    draw = ImageDraw.Draw(img)
    ca, sa = math.cos(angle), math.sin(angle)
    # A smooth random warp (a hand is not a plotter) rather than per-point
    # jitter, which would make the strokes ragged.
    freq = rng.uniform(1.0, 2.5, (2, 2))
    phase = rng.uniform(0, 2 * np.pi, (2, 2))
    amp = rng.uniform(0.01, 0.03, 2)
    for stroke in strokes:
        pts = []
        for x, y in _densify(stroke):
            x += amp[0] * math.sin(freq[0, 0] * 2 * math.pi * y + phase[0, 0]) * math.cos(freq[0, 1] * x + phase[0, 1])
            y += amp[1] * math.sin(freq[1, 0] * 2 * math.pi * x + phase[1, 0]) * math.cos(freq[1, 1] * y + phase[1, 1])
            x = x * aspect + slant * (1 - y)
            xr, yr = x * ca - (y - 0.5) * sa, x * sa + (y - 0.5) * ca + 0.5
            pts.append((margin + abs(slant) * height + xr * height, margin + yr * height))
        draw.line(pts, fill=255, width=pen, joint="curve")
        r = pen / 2
        for px, py in (pts[0], pts[-1]):
            draw.ellipse((px - r, py - r, px + r, py + r), fill=255)
    return crop_ink(np.asarray(img, np.float32) / 255)


# --------------------------------------------------------------------------
# Numbers
# --------------------------------------------------------------------------

def _touching_x(left, a, y):
    """Left edge for digit `a` (top at `y`) at which its ink just touches digit `left`.

    Row by row, the new digit's leftmost ink must come one pixel after the
    neighbour's rightmost ink; the tightest row sets the position. Rows the
    two do not share leave it free (then the digits merely sit side by side).
    """
    b, bx, by = left
    rows = np.arange(a.shape[0])
    shared = (rows + round(y - by) >= 0) & (rows + round(y - by) < b.shape[0])
    on_a, on_b = a > 0.3, b > 0.3
    first = np.where(on_a.any(axis=1), on_a.argmax(axis=1), a.shape[1])
    last = np.where(on_b.any(axis=1), b.shape[1] - 1 - on_b[:, ::-1].argmax(axis=1), -1)
    need = [bx + last[r + round(y - by)] + 1 - first[r] for r in rows[shared]
            if first[r] < a.shape[1] and last[r + round(y - by)] >= 0]
    return max(need) if need else bx + b.shape[1]


def compose_number(digits, rng, height=120, gap=(0.12, 0.6), size_jitter=0.15,
                   baseline_jitter=0.12, touch=False, overlap=(0.0, 0.2), pen=None):
    """Lay several digit ink arrays side by side like a written number.

    Args:
        digits: ink arrays (e.g. from from_mnist or draw_digit), left to right.
        rng: numpy Generator.
        height: typical digit height in px.
        gap: range of gaps between digits, as fractions of `height`.
        size_jitter: relative spread of the digits' heights.
        baseline_jitter: spread of each digit's vertical offset, x height.
        touch: push each digit into its left neighbour until the inks touch,
            then on by a random `overlap` share of its own width (written
            quickly: a 2's tail runs into the 0), instead of leaving a gap.
        overlap: range of that extra push, as fractions of the digit's width.
        pen: None, "thin" (1-px pen) or "thick" (fat marker), applied to each
            digit at its final size, so gaps stay gaps between the strokes.

    Returns:
        (ink, boxes): float32 ink array of the number, and each digit's
        (left, top, right, bottom) box in it.
    """
    placed = []
    x = 0
    for ink in digits:
        ink = crop_ink(ink)
        h = height * (1 + rng.uniform(-size_jitter, size_jitter))
        s = h / ink.shape[0]
        a = _resize(ink, (max(1, round(ink.shape[1] * s)), max(1, round(h))))
        if pen == "thin":
            a = thin_pen(a)
        elif pen == "thick":
            a = crop_ink(thick_marker(a, rng))
        y = rng.normal(0, baseline_jitter) * height
        if touch and placed:
            x = _touching_x(placed[-1], a, y) - rng.uniform(*overlap) * a.shape[1]
        placed.append((a, x, y))
        x += a.shape[1] + rng.uniform(*gap) * height
    top = min(y for _, _, y in placed)
    left = min(x0 for _, x0, _ in placed)  # a pushed digit may reach left of the first one
    margin = 4
    H = int(max(y - top + a.shape[0] for a, _, y in placed)) + 2 * margin
    W = int(max(x0 - left + a.shape[1] for a, x0, _ in placed)) + 2 * margin
    out = np.zeros((H, W), np.float32)
    boxes = []
    for a, x0, y in placed:
        r, c = int(round(y - top)) + margin, int(round(x0 - left)) + margin
        out[r:r + a.shape[0], c:c + a.shape[1]] = np.maximum(out[r:r + a.shape[0], c:c + a.shape[1]], a)
        boxes.append((c, r, c + a.shape[1], r + a.shape[0]))
    return out, boxes


# --------------------------------------------------------------------------
# Kinds of user files
# --------------------------------------------------------------------------

def _place(ink, canvas_hw, at, scale=1.0):
    """An ink array scaled and pasted into an empty canvas at (top, left)."""
    if scale != 1.0:
        ink = _resize(ink, (max(1, round(ink.shape[1] * scale)), max(1, round(ink.shape[0] * scale))))
    out = np.zeros(canvas_hw, np.float32)
    t, l = at
    h, w = min(ink.shape[0], canvas_hw[0] - t), min(ink.shape[1], canvas_hw[1] - l)
    out[t:t + h, l:l + w] = ink[:h, :w]
    return out


def with_margin(ink, rng, margin=(0.15, 0.5)):
    """Ink on a canvas with random margins on each side (fractions of its size)."""
    h, w = ink.shape
    m = [int(rng.uniform(*margin) * max(h, w)) for _ in range(4)]
    return _place(ink, (h + m[0] + m[1], w + m[2] + m[3]), (m[0], m[2]))


def _gray(paper_ink, paper=1.0, ink_level=0.0):
    """Gray image array (1 = white) from an ink map and the two tones."""
    return paper + (ink_level - paper) * paper_ink


def _to_l(gray):
    return Image.fromarray(np.uint8(np.clip(gray, 0, 1) * 255 + 0.5), "L")


def _save(img, fmt, **params):
    buf = io.BytesIO()
    img.save(buf, fmt, **params)
    return buf.getvalue()


def kind_plain(ink, rng):
    """Black on white with margins, PNG."""
    return _save(_to_l(_gray(with_margin(ink, rng))), "PNG"), ".png"


def kind_tight(ink, rng):
    """Cropped right to the ink, black on white, PNG."""
    return _save(_to_l(_gray(crop_ink(ink, 0.3))), "PNG"), ".png"


def kind_big_canvas(ink, rng):
    """A small digit somewhere off-centre on a large white canvas (paint program)."""
    H, W = int(rng.integers(900, 1600)), int(rng.integers(1200, 2200))
    scale = min(rng.uniform(0.12, 0.3) * H / ink.shape[0], 0.8 * W / ink.shape[1])
    h, w = int(ink.shape[0] * scale) + 2, int(ink.shape[1] * scale) + 2
    t, l = int(rng.integers(0, H - h)), int(rng.integers(0, W - w))
    return _save(_to_l(_gray(_place(ink, (H, W), (t, l), scale))), "PNG"), ".png"


def kind_transparent_rgba(ink, rng):
    """Dark ink on a fully transparent background; hidden colour is black too."""
    a = with_margin(ink, rng)
    rgba = np.zeros(a.shape + (4,), np.uint8)
    rgba[..., :3] = np.array([20, 20, 40], np.uint8)
    rgba[..., 3] = np.uint8(a * 255 + 0.5)
    transparent = rgba[..., 3] == 0
    rgba[transparent, :3] = 0  # what a naive convert('L') would show as black
    return _save(Image.fromarray(rgba, "RGBA"), "PNG"), ".png"


def kind_transparent_la(ink, rng):
    """Gray + alpha PNG, ink drawn as opacity over black."""
    a = with_margin(ink, rng)
    la = np.zeros(a.shape + (2,), np.uint8)
    la[..., 1] = np.uint8(a * 255 + 0.5)
    return _save(Image.fromarray(la, "LA"), "PNG"), ".png"


def kind_transparent_p(ink, rng):
    """Palette PNG whose entries are black with increasing transparency (tRNS)."""
    a = with_margin(ink, rng)
    idx = np.uint8(np.round(a * 15))
    img = Image.fromarray(idx, "L").convert("P")
    img.putpalette([0, 0, 0] * 16)
    alphas = bytes(int(round(k * 255 / 15)) for k in range(16))
    return _save(img, "PNG", transparency=alphas), ".png"


def kind_white_on_black(ink, rng):
    """White ink on black, like MNIST itself or a dark-mode drawing."""
    return _save(_to_l(with_margin(ink, rng)), "PNG"), ".png"


def _ruling(a, digit_height, rng, thickness):
    """Ruled paper's lines for the canvas `a`: (horizontal lines, margin line) as 0..1 maps.

    Lines run right across the sheet at a spacing of 0.6-1.2 digit heights,
    `thickness` px thick (soft-edged); on two sheets in five a vertical
    margin line runs down the blank paper left of the writing.
    """
    h, w = a.shape
    spacing = rng.uniform(0.6, 1.2) * digit_height
    rows = np.arange(h, dtype=np.float32)[:, None]
    phase = float(rng.uniform(0, spacing))
    # Distance of each row to the nearest line; a line's profile is a
    # trapezoid `thickness` wide with one-pixel soft edges.
    dist = np.abs((rows - phase + 0.5 * spacing) % spacing - 0.5 * spacing)
    lines = np.broadcast_to(np.clip(0.5 * thickness + 0.5 - dist, 0, 1), (h, w)).copy()
    margin = np.zeros_like(lines)
    cols = np.flatnonzero((a > 0.05).any(axis=0))
    if rng.random() < 0.4 and cols.size and cols[0] > 4 * thickness:
        x = float(rng.uniform(0.3, 0.8) * cols[0])
        dist = np.abs(np.arange(w, dtype=np.float32)[None, :] - x)
        margin = np.broadcast_to(np.clip(0.5 * thickness + 0.5 - dist, 0, 1), (h, w)).copy()
    return lines.astype(np.float32), margin.astype(np.float32)


def kind_photo(ink, rng, pencil=None, edge=None, colour=False, shadow=False, slant=False, ruled=False):
    """A phone photo of paper: tinted paper, uneven light, grey ink, noise, JPEG.

    Slightly rotated, blurred, with a lighting gradient and vignette; the pen
    may be a grey pencil; sometimes the table shows past the paper's edge.

    Args:
        colour: red, blue or green ink on white or grey paper under a warm lamp.
        shadow: a large dark shadow (the phone's, a hand's) or a dark table
            band reaching into the frame, and a strong vignette.
        slant: the writing line rises (or falls) by 20-40 degrees.
        ruled: written on ruled paper: thin light blue or grey lines (and
            sometimes a red margin line) under the writing (see _ruling).
    """
    pencil = rng.random() < 0.5 if pencil is None else pencil
    edge = rng.random() < 0.4 if edge is None else edge
    a = with_margin(ink, rng, (0.3, 0.7))
    angle = rng.uniform(-7, 7)
    if slant:
        angle = rng.uniform(20, 40) * rng.choice([-1, 1])
    layers = [a]
    if ruled:
        # The lines are drawn before the sheet is turned and shrunk, so
        # their width on the canvas is the photo's 1-3 px over its scale.
        c, s_ = abs(math.cos(math.radians(angle))), abs(math.sin(math.radians(angle)))
        turned = max(a.shape[1] * c + a.shape[0] * s_, a.shape[1] * s_ + a.shape[0] * c)
        final = rng.uniform(500, 900)
        layers += _ruling(a, ink.shape[0], rng, rng.uniform(1.0, 3.0) * turned / final)
    turned = [np.clip(np.asarray(Image.fromarray(layer, "F").rotate(angle, Image.Resampling.BILINEAR,
                                                                     expand=True), np.float32), 0, 1)
              for layer in layers]
    scale = (final if ruled else rng.uniform(500, 900)) / max(turned[0].shape)
    size = (max(1, round(turned[0].shape[1] * scale)), max(1, round(turned[0].shape[0] * scale)))
    a, *ruling = [_resize(layer, size) for layer in turned]
    h, w = a.shape
    paper = np.array([rng.uniform(0.8, 0.95), rng.uniform(0.78, 0.93), rng.uniform(0.7, 0.88)])
    ink_rgb = (np.full(3, rng.uniform(0.35, 0.55)) if pencil
               else np.array([rng.uniform(0.05, 0.2), rng.uniform(0.05, 0.2), rng.uniform(0.1, 0.45)]))
    if colour:
        paper = np.full(3, rng.uniform(0.7, 0.97)) * np.array([1.0, rng.uniform(0.9, 1.0), rng.uniform(0.75, 0.95)])
        ink_rgb = [np.array([0.85, 0.15, 0.15]), np.array([0.15, 0.25, 0.75]),
                   np.array([0.1, 0.55, 0.25])][int(rng.integers(3))] * rng.uniform(0.8, 1.1)
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    direction = rng.uniform(0, 2 * np.pi)
    light = 1 - rng.uniform(0.15, 0.35) * (np.cos(direction) * xx + np.sin(direction) * yy)
    vignette = rng.uniform(1.0, 2.0) if shadow else rng.uniform(0.1, 0.3)
    light *= 1 - vignette * ((xx - 0.5 * w / max(h, w)) ** 2 + (yy - 0.5 * h / max(h, w)) ** 2)
    if shadow:
        # A soft-edged dark region from one border: a shadow over a third of
        # the picture, or a dark table band.
        side = rng.integers(4)
        coord = [xx, yy, 1 - xx * max(h, w) / w, 1 - yy * max(h, w) / h][side]
        other = [yy, xx, yy, xx][side]
        reach = rng.uniform(0.1, 0.3) + rng.uniform(-0.1, 0.1) * other
        dark = 1 / (1 + np.exp((coord - reach) / rng.uniform(0.005, 0.03)))
        light *= 1 - rng.uniform(0.5, 0.85) * dark
    sheet = np.broadcast_to(paper, (h, w, 3))
    if ruled:
        # Printed under the writing: light blue or grey lines, a red margin.
        line_rgb = (np.array([0.45, 0.6, 0.85]) if rng.random() < 0.6
                    else np.full(3, rng.uniform(0.25, 0.7))) * rng.uniform(0.85, 1.05)
        sheet = sheet + (line_rgb - sheet) * (rng.uniform(0.6, 1.0) * ruling[0])[..., None]
        sheet = sheet + (np.array([0.85, 0.3, 0.3]) - sheet) * (rng.uniform(0.6, 1.0) * ruling[1])[..., None]
    rgb = (sheet + (ink_rgb - sheet) * a[..., None]) * np.clip(light, 0.05, 1)[..., None]
    if edge:
        side = rng.integers(4)
        depth = rng.uniform(0.04, 0.12)
        tilt = rng.uniform(-0.05, 0.05)
        coord = [xx, yy, 1 - xx * max(h, w) / w, 1 - yy * max(h, w) / h][side]
        other = [yy, xx, yy, xx][side]
        table = coord < depth + tilt * other
        rgb[table] = np.array([0.25, 0.2, 0.15]) * rng.uniform(0.6, 1.2)
    rgb += rng.normal(0, rng.uniform(0.01, 0.035), rgb.shape)
    img = Image.fromarray(np.uint8(np.clip(rgb, 0, 1) * 255 + 0.5), "RGB")
    img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.4, 1.2)))
    return _save(img, "JPEG", quality=int(rng.integers(60, 88))), ".jpg"


def kind_photo_colour(ink, rng):
    """A photo of red, blue or green ink on white or grey paper under a warm lamp."""
    return kind_photo(ink, rng, pencil=False, colour=True)


def kind_photo_shadow(ink, rng):
    """A photo with a dark shadow or table reaching into the frame and dark corners."""
    return kind_photo(ink, rng, shadow=True)


def kind_photo_ruled(ink, rng):
    """A photo of writing on ruled paper: light lines under it, sometimes a red margin line."""
    return kind_photo(ink, rng, ruled=True)


def kind_photo_slant(ink, rng):
    """A photo of writing whose line rises or falls by 20-40 degrees."""
    return kind_photo(ink, rng, slant=True)


def kind_scan(ink, rng):
    """A flatbed scan: near-white paper, light noise, dust specks, slight blur."""
    a = with_margin(ink, rng, (0.3, 0.8))
    h, w = a.shape
    g = _gray(a, rng.uniform(0.9, 0.98), rng.uniform(0.05, 0.3))
    g = g + rng.normal(0, 0.015, g.shape)
    for _ in range(int(rng.integers(3, 12))):  # dust, well away from nothing in particular
        y, x = int(rng.integers(h)), int(rng.integers(w))
        r = int(rng.integers(1, 3))
        g[max(0, y - r):y + r, max(0, x - r):x + r] = rng.uniform(0.2, 0.6)
    img = _to_l(g).filter(ImageFilter.GaussianBlur(0.6))
    return _save(img, "PNG"), ".png"


def kind_thin_pen(ink, rng):
    """A 1-px pen line on a white canvas (digit 150-400 px tall)."""
    h = rng.uniform(150, 400)
    big = _resize(ink, (max(1, round(ink.shape[1] * h / ink.shape[0])), round(h)))
    return _save(_to_l(_gray(with_margin(thin_pen(big), rng))), "PNG"), ".png"


def kind_thick_marker(ink, rng):
    """A fat marker on white."""
    return _save(_to_l(_gray(with_margin(thick_marker(ink, rng), rng))), "PNG"), ".png"


_EXIF_STORE = {  # orientation -> transpose that turns the upright picture into the stored one
    2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90, 7: Image.Transpose.TRANSVERSE, 8: Image.Transpose.ROTATE_270,
}


def kind_exif_jpeg(ink, rng, orientation=None):
    """A phone JPEG stored sideways with an EXIF Orientation tag that makes it upright."""
    orientation = orientation or int(rng.choice([3, 6, 8, 2, 5, 7, 4]))
    img = _to_l(_gray(with_margin(ink, rng))).convert("RGB")
    stored = img.transpose(_EXIF_STORE[orientation])
    exif = Image.Exif()
    exif[0x0112] = orientation
    return _save(stored, "JPEG", quality=90, exif=exif.tobytes()), ".jpg"


def kind_png16(ink, rng, lo=None, hi=None):
    """A 16-bit grayscale PNG (mode I;16); ink and paper both far above 255."""
    lo = rng.uniform(2000, 20000) if lo is None else lo
    hi = rng.uniform(40000, 65535) if hi is None else hi
    g = _gray(with_margin(ink, rng), hi, lo)
    return _save(Image.fromarray(np.uint16(g + 0.5)), "PNG"), ".png"


def kind_cmyk(ink, rng):
    """A CMYK JPEG (print workflow)."""
    img = _to_l(_gray(with_margin(ink, rng))).convert("RGB").convert("CMYK")
    return _save(img, "JPEG", quality=92), ".jpg"


def kind_palette(ink, rng):
    """An opaque palette GIF, 16 shades."""
    img = _to_l(_gray(with_margin(ink, rng))).quantize(16)
    return _save(img, "GIF"), ".gif"


def kind_animated_gif(ink, rng):
    """An animated GIF whose first frame is the digit; later frames are not."""
    first = _to_l(_gray(with_margin(ink, rng)))
    blank = Image.new("L", first.size, 255)
    noise = _to_l(rng.random(first.size[::-1]))
    return _save(first, "GIF", save_all=True, append_images=[blank, noise], duration=200, loop=0), ".gif"


def kind_bilevel(ink, rng):
    """A 1-bit image (mode '1', dithered), BMP."""
    return _save(_to_l(_gray(with_margin(ink, rng))).convert("1"), "BMP"), ".bmp"


def kind_webp(ink, rng):
    """Lossy WebP, dark blue ink on white."""
    g = _gray(with_margin(ink, rng))
    rgb = np.stack([g, g, np.clip(g + 0.3 * (1 - g), 0, 1)], axis=-1)
    img = Image.fromarray(np.uint8(rgb * 255 + 0.5), "RGB")
    return _save(img, "WEBP", quality=80), ".webp"


def kind_tiff_float(ink, rng):
    """A 32-bit float TIFF (mode F), values 0..1000."""
    g = _gray(with_margin(ink, rng)) * 1000
    return _save(Image.fromarray(g.astype(np.float32), "F"), "TIFF"), ".tif"


def kind_tiff_int(ink, rng):
    """A 32-bit integer TIFF (mode I)."""
    g = _gray(with_margin(ink, rng), 100000, -5000)
    return _save(Image.fromarray(g.astype(np.int32), "I"), "TIFF"), ".tif"


KINDS = {
    "plain": kind_plain,
    "tight": kind_tight,
    "big_canvas": kind_big_canvas,
    "transparent_rgba": kind_transparent_rgba,
    "transparent_la": kind_transparent_la,
    "transparent_p": kind_transparent_p,
    "white_on_black": kind_white_on_black,
    "photo": kind_photo,
    "photo_colour": kind_photo_colour,
    "photo_shadow": kind_photo_shadow,
    "photo_slant": kind_photo_slant,
    "photo_ruled": kind_photo_ruled,
    "scan": kind_scan,
    "thin_pen": kind_thin_pen,
    "thick_marker": kind_thick_marker,
    "exif_jpeg": kind_exif_jpeg,
    "png16": kind_png16,
    "cmyk": kind_cmyk,
    "palette": kind_palette,
    "animated_gif": kind_animated_gif,
    "bilevel": kind_bilevel,
    "webp": kind_webp,
    "tiff_float": kind_tiff_float,
    "tiff_int": kind_tiff_int,
}


def make(ink, kind, rng):
    """Encode an ink array as a user file of `kind`; returns (bytes, suffix)."""
    return KINDS[kind](ink, rng)


def make_number(digit_inks, kind, rng, **compose):
    """A number file of `kind` from digit ink arrays; returns (bytes, suffix, boxes).

    The pen kinds change each digit's strokes before the digits are laid
    out, as a person with that pen would write them. boxes are the digits'
    boxes in the composed ink (before the kind's margins).
    """
    pen = {"thin_pen": "thin", "thick_marker": "thick"}.get(kind)
    if pen:
        compose.setdefault("height", int(rng.integers(100, 250)))
    ink, boxes = compose_number(digit_inks, rng, pen=pen, **compose)
    data, ext = make(ink, "plain" if pen else kind, rng)
    return data, ext, boxes


def open_image(data):
    """Open encoded bytes the way Pillow opens a file (lazy, with its format)."""
    return Image.open(io.BytesIO(data))


# --------------------------------------------------------------------------
# Sample images for the README (python tests/userstyle.py images/)
# --------------------------------------------------------------------------

SAMPLES = [  # (file stem, digits, style per digit or None, kind, seed)
    ("3_photo", [3], ["round"], "photo", 3),
    ("7_transparent", [7], ["plain"], "transparent_rgba", 7),
    ("5_white_on_black", [5], ["bar"], "white_on_black", 5),
    ("2_tight_crop", [2], ["swan"], "tight", 2),
    ("4_big_canvas", [4], ["open"], "big_canvas", 4),
    ("9_scan", [9], ["stem"], "scan", 9),
    ("8_thick_marker", [8], ["figure"], "thick_marker", 8),
    ("1_thin_pen", [1], ["flag"], "thin_pen", 1),
    ("6_phone_rotated", [6], ["hook"], "exif_jpeg", 6),
    ("0_pencil_photo", [0], ["oval"], "photo", 10),
    ("2026_number", [2, 0, 2, 6], ["swan", "oval", "swan", "hook"], "photo", 2026),
]


def write_samples(directory):
    """Write the sample images (our own drawn digits, never anyone's files)."""
    os.makedirs(directory, exist_ok=True)
    written = []
    for stem, digits, styles, kind, seed in SAMPLES:
        rng = np.random.default_rng(seed)
        height = 120 if kind == "scan" else 200  # a noisy scan compresses badly
        inks = [draw_digit(d, rng, style=s, height=height) for d, s in zip(digits, styles)]
        ink = inks[0] if len(inks) == 1 else compose_number(inks, rng)[0]
        if kind == "photo":
            data, ext = kind_photo(ink, rng, pencil=stem.startswith("0"), edge=stem.startswith("3"))
        else:
            data, ext = make(ink, kind, rng)
        path = os.path.join(directory, stem + ext)
        with open(path, "wb") as f:
            f.write(data)
        written.append(path)
    return written


if __name__ == "__main__":
    for p in write_samples(sys.argv[1] if len(sys.argv) > 1 else "images"):
        print(p, os.path.getsize(p), "bytes")
