"""Turn a person's image of a handwritten digit (or number) into MNIST input.

MNIST digits are white ink (1.0) on black (0.0): the digit's bounding box was
fitted into 20x20 pixels keeping its aspect ratio (anti-aliased), then placed
in a 28x28 field so that its centre of mass, not its bounding box, sits at the
centre. A model trained on MNIST only reads digits that look like that, so
every user image -- a phone photo of paper, a scan, a drawing from a paint
program with a transparent or black background, a tight crop or a huge canvas
-- is brought into exactly that form here.

Public API:
    load_ink(source)      image file or PIL image -> float32 ink map (1 = ink)
    find_writing(source)  the ink of the writing only (specks, edges, shadows
                          dropped) and its scale to the original pixels
    to_mnist(ink)         ink crop -> (28, 28) float32 like an MNIST digit
    prepare(source)       one digit -> (28, 28) float32

Reading a whole number (cutting it into digits) is readnumber.py's job.

Only numpy and Pillow are used; importing the module does nothing.
"""

import math
from collections import namedtuple

import numpy as np
from PIL import Image

from imagefile import ImageError, read as _read, source_name as _source_name

__all__ = ["ImageError", "Writing", "load_ink", "find_writing", "to_mnist", "prepare"]


Writing = namedtuple("Writing", "ink scale")
Writing.__doc__ = """The writing found in an image.

ink: float32 (H, W) ink map (1 = ink), zero but on the writing's pieces.
scale: (sx, sy), from its pixel coordinates to the original image's (as
    displayed, after EXIF orientation).
"""


# to_mnist works at _K times the final resolution (a 20*_K box) so that
# stroke-width changes and sub-pixel centring are precise; the final 28x28 is
# an exact _K x _K box average of that, which is what anti-aliases the edges.
_K = 4

# Stroke width, in pixels of the 20x20 digit box, measured as 2 * area /
# outline on the working image. On MNIST test digits delivered as user files
# this measure runs from 1.5 (3rd percentile) over 2.3 (median) to 3.9 (97th);
# a 1-px pen line measures ~0.3 and a fat marker 4-6. Thin strokes are
# thickened and fat ones thinned into the range the network was trained on,
# while digits already inside it are left alone.
_WIDTH_MIN = 1.6
_WIDTH_MAX = 3.2
_WIDTH_THIN_TARGET = 2.0
_WIDTH_THICK_TARGET = 2.7

# Polarity: when thin dark lines outweigh thin light lines this many times
# (or the reverse) on a 128 px thumbnail, they are the ink.
_LINES_RATIO = 1.5

# ... or when this share of the thumbnail lies within 10 % of its local light
# level (a closing 1/8 of the picture wide): 0.61-0.85 on shadowed photos
# of paper that the lines misjudged (60 training digits), 0.08-0.20 on
# light strokes on black.
_PAPER_NEAR = 0.9
_PAPER_SHARE = 0.5

# A piece reaching the frame with strokes this many times as wide as the
# writing's is background (a shadow, a table, a finger), not a digit.
_SOLID_WIDTHS = 2.0
# ... and as wide as this share of its own smaller extent (a shadow or a
# table band is a blob), meeting the frame along twice that share, beside
# writing of at least _SOLID_BESIDE of its ink.
_SOLID_SHARE = 0.1
_SOLID_BESIDE = 0.02
# ... unless it is one more digit of a picture the writing fills (a tight
# crop of a number, whose end digits touch the frame): no longer than this
# many times the writing's largest piece, not running from border to border,
# beside writing that spans at least _DIGIT_SPAN of the picture. Measured on
# the 819 pieces the rule above drops in generated numbers and digits
# (training digits, 200 numbers and 200 digits of each of tight, photo,
# photo_ruled, photo_shadow, photo_slant): 11 of the 12 in tight crops are
# bold end digits, 0.93-1.39 times the writing's largest piece, beside
# writing spanning 0.65-0.84 of the picture, none running from border to
# border (the 12th lies beside a speck spanning 0.18, and is still dropped);
# of the 807 shadows and tables, all that lie beside writing spanning half
# the picture or more run from border to border, and those no longer than
# 1.45 times the writing that do not lie beside writing spanning 0.29 at most.
_DIGIT_SIZE = 1.45
_DIGIT_SPAN = 0.5

# Dark regions this many stroke widths across (and wider) are background
# in a photo: shadows, tables, hands.
_WIDE_STROKES = 4
# ... measured as the median of the runs of dark pixels shorter than this
# share of the picture (the longer ones are the shadows themselves).
_WIDE_RUNS = 0.1



# --------------------------------------------------------------------------
# Ink extraction: polarity, background flattening, contrast stretch
# --------------------------------------------------------------------------

def _resize(a, size, resample):
    """Resize a float32 array with Pillow ("F" mode); size is (width, height).

    (Through frombuffer and tobytes: the same pixels as fromarray and
    np.asarray, without their array-interface handling, a good part of the
    cost for a digit-sized array.)
    """
    h, w = a.shape
    image = Image.frombuffer("F", (w, h), np.ascontiguousarray(a, np.float32), "raw", "F", 0, 1)
    return np.frombuffer(image.resize(size, resample).tobytes(), np.float32).reshape(size[1], size[0])


def _filter3(a, op, cross=False):
    """One 3x3 (or plus-shaped) max/min filter step, edges replicated.

    A replicated edge adds nothing to a max or a min, so each neighbour is
    combined in place with shifted slices, without padding.
    """
    out = a.copy()
    op(out[1:], a[:-1], out=out[1:])
    op(out[:-1], a[1:], out=out[:-1])
    if cross:
        op(out[:, 1:], a[:, :-1], out=out[:, 1:])
        op(out[:, :-1], a[:, 1:], out=out[:, :-1])
        return out
    rows = out.copy()
    op(out[:, 1:], rows[:, :-1], out=out[:, 1:])
    op(out[:, :-1], rows[:, 1:], out=out[:, :-1])
    return out


def _morph(a, radius, op):
    """Grey dilation (np.maximum) or erosion (np.minimum) by a disc-like octagon.

    Alternating square and plus-shaped steps grow an octagon, which is close
    enough to a round pen tip that strokes keep their shape in every direction.
    """
    for i in range(radius):
        a = _filter3(a, op, cross=bool(i % 2))
    return a


def _percentile(a, q):
    """float(np.percentile(a, q)) of a non-empty array without NaN: the same bits, faster.

    numpy's linear method with a plain-number q: the value at virtual index
    (n - 1) q / 100 between the two order statistics around it, found by
    one partial sort and interpolated with numpy's own arithmetic (in the
    array's type), without numpy's general machinery.
    """
    flat = np.ravel(a)
    virtual = (flat.size - 1) * float(np.true_divide(q, 100))
    if virtual >= flat.size - 1:
        return float(flat.max())
    below = math.floor(virtual)
    part = np.partition(flat, [below, below + 1])
    lo, hi = part[below], part[below + 1]
    diff = hi - lo
    t = virtual - below
    return float(hi - diff * (1 - t) if t >= 0.5 else lo + diff * t)


def _median(a):
    """float(np.median(a)) of a non-empty array without NaN: the same bits, faster.

    As numpy does it: the middle one or two values by one partial sort, and
    their mean (np.mean, so in numpy's arithmetic), without its general
    machinery; and no sort at all when the lowest or highest value fills
    more than half the array (clean paper), as it then is the median.
    """
    flat = np.ravel(a)
    held = _extreme_majority(flat)
    if held is not None:
        return float(held)
    k = flat.size // 2
    if flat.size % 2:
        return float(np.mean(np.partition(flat, k)[k:k + 1]))
    return float(np.mean(np.partition(flat, [k - 1, k])[k - 1:k + 1]))


def _extreme_majority(flat):
    """The lowest or the highest value of a 1-D array if it fills more than half of it, else None."""
    for extreme in (flat.min, flat.max):
        value = extreme()
        if np.count_nonzero(flat == value) > 0.5 * flat.size:
            return value
    return None


def _majority(a):
    """The value more than half of the array's elements hold, or None.

    Such a value fills the middle of the sorted array, so it is the element
    in the middle: one partial sort finds it (and it is the median). Most
    often it is the paper, the lowest or highest value: tried first.
    """
    flat = a.ravel()
    if flat.size == 0:
        return None
    held = _extreme_majority(flat)
    if held is not None:
        return held
    middle = np.partition(flat, flat.size // 2)[flat.size // 2]
    return middle if np.count_nonzero(flat == middle) > 0.5 * flat.size else None


def _background(x, dense):
    """Slowly varying paper level of the ink-positive image x (0 = clean paper).

    Uneven lighting on a photo of paper -- a gradient, a vignette, a tinted
    sheet -- is smooth across the picture, while strokes are narrow. So the
    paper is modelled as a quadratic surface fitted to coarse cell medians,
    starting from the lightest cells and rejecting, fit after fit, the cells
    that sit well above it (ink). A surface that smooth cannot bend into a
    stroke; a table edge stays dark and is judged later, as a piece. Returns
    a scalar when the paper is even, and None when the picture is mostly
    ink-like and the surface does not explain it (a tight crop, or a photo
    with a shadow: the caller tells which).

    Args:
        x: ink-positive image.
        dense: fraction of the picture that looked like ink. A picture that
            is mostly ink (a tight crop) has too little paper to model
            lighting from, unless the surface explains nearly all of it.
    """
    h, w = x.shape
    longest = max(h, w)
    if longest < 64:
        return np.float32(_percentile(x, 25))
    step = max(1, round(math.sqrt(x.size / 4096)))
    sample = x[::step, ::step]
    level = _majority(sample)
    if level is not None:
        return np.float32(level)  # a drawing on a flat digital background
    gw = max(2, round(16 * w / longest))
    gh = max(2, round(16 * h / longest))
    c = 8
    small = _resize(x, (gw * c, gh * c), Image.Resampling.BOX)
    med = np.median(small.reshape(gh, c, gw, c).transpose(0, 2, 1, 3)
                    .reshape(gh, gw, c * c), axis=2).ravel()
    v, u = np.mgrid[-1:1:gh * 1j, -1:1:gw * 1j]
    u, v = u.ravel(), v.ravel()
    basis = np.stack([np.ones_like(u), u, v, u * u, u * v, v * v], axis=1)
    use = med <= np.percentile(med, 25)
    for _ in range(6):
        coef = np.linalg.lstsq(basis[use], med[use], rcond=None)[0]
        resid = med - basis @ coef
        spread = 1.4826 * float(np.median(np.abs(resid[use]))) + 1e-3
        nxt = resid < 2.5 * spread + 0.02
        if nxt.sum() < 6 or np.array_equal(nxt, use):
            break
        use = nxt
    if dense >= 0.3 and use.mean() < 0.85:
        return None
    fit = basis @ coef
    if fit.max() - fit.min() < 0.04:
        return np.float32(np.median(fit))
    # Evaluate the surface on a small grid; bilinear resizing spreads it.
    v, u = np.mgrid[-1:1:32j, -1:1:32j]
    grid = (coef[0] + coef[1] * u + coef[2] * v + coef[3] * u * u
            + coef[4] * u * v + coef[5] * v * v).astype(np.float32)
    return _resize(grid, (w, h), Image.Resampling.BILINEAR)


def _wide_dark(x):
    """Regions of the ink-positive image x far wider than a pen stroke (0 elsewhere).

    A grey opening (erosion, then dilation) by a disc a few stroke widths
    across: thin strokes vanish from it, a shadow or a table keeps its level
    and its edge. The stroke width is the median length of the short runs
    of the pixels that stand clearly above a far wider opening (the strokes,
    not the shadows) along rows and columns. Computed on a copy shrunk to
    about 256 px, then spread back bilinearly.
    """
    h, w = x.shape
    d = max(1, math.ceil(max(h, w) / 256))
    small = np.asarray(Image.fromarray(x, "F").reduce(d), np.float32) if d > 1 else x
    # Strokes are what stands above an opening by the widest disc used
    # below (a white top-hat), by half its high end. Halfway between the
    # picture's own median and maximum were the shadows and dark corners
    # instead, darker than a grey pencil: their runs measured bold strokes
    # as a few cells wide, the opening kept the strokes as background, and
    # the digit vanished or lost a loop (photo_shadow training digits, 150:
    # 88 % read right before, 92 % with this).
    cap = max(2, int(_WIDE_RUNS / 2 * max(small.shape)))
    top = small - _morph(_morph(small, cap, np.minimum), cap, np.maximum)
    on = top > 0.5 * _percentile(top, 99.5)
    runs = []
    for m in (on, on.T):
        p = np.zeros((m.shape[0], m.shape[1] + 2), np.int8)
        p[:, 1:-1] = m
        dd = np.diff(p, axis=1)
        runs.append(np.nonzero(dd == -1)[1] - np.nonzero(dd == 1)[1])
    runs = np.concatenate(runs)
    # A bold digit's strokes on a photo are up to a tenth of the picture
    # wide; a limit of a twentieth measured them too thin, and the opening
    # then took their thick parts for shadow (photo_shadow single training
    # digits read 73 % with it, 80 % with a tenth; 250 digits).
    runs = runs[runs < _WIDE_RUNS * max(small.shape)]
    stroke = float(np.median(runs)) if runs.size else 2.0
    radius = int(min(max(2, round(_WIDE_STROKES * stroke / 2)), 0.05 * max(small.shape)))
    # A shadow or dark corner runs on past the frame: continued outward (the
    # border's values replicated) by the disc's diameter, it still holds the
    # disc where it meets the frame. Clipped at the frame instead, a dark
    # band along the frame narrower than the disc, or the darkest tip of a
    # vignetted corner, was cut off the opening and left as a bar of "ink".
    # (photo_shadow training digits, 150: 92 % read right before, 96 %.)
    pad = 2 * radius
    opened = _morph(_morph(np.pad(small, pad, mode="edge"), radius, np.minimum),
                    radius, np.maximum)[pad:-pad, pad:-pad]
    if d > 1:
        # One more cell of dilation, so that spreading a sharp shadow edge
        # back to full size never leaves its dark side under the surface
        # (which would show as a thin line of "ink" along it).
        opened = _resize(_morph(opened, 1, np.maximum), (w, h), Image.Resampling.BILINEAR)
    return opened


def _polarity(gray):
    """(light background?, fraction of the picture that is ink-like, shaded?).

    shaded: a large dark region (a shadow, a table, dark corners) made the
    picture look like light ink on a dark background, while its thin lines
    are dark: a photo of paper in bad light.
    """
    s = _thumbnail(gray)
    light, dense = _polarity_by_area(s)
    # (A drawing on a flat black background has no shadows to mistake.)
    flat = _majority(s) is not None
    if not light and not flat:
        # Strokes are thin: thin dark lines on light paper (the black
        # top-hat, closing minus picture) that clearly outweigh thin light
        # lines (the white top-hat) are ink on paper, however much of the
        # picture a shadow or dark corners cover. (Only this way round: a
        # bold digit in a tight crop leaves thin light gaps between its
        # strokes, and a drawing on black has no shadows.)
        if _dark_lines_outweigh(s):
            return True, 1.0 - dense, True
        # Bold strokes are wider than those lines, and a shadow's straight
        # edges and corners make light "lines" too. But paper is what lies
        # near the picture's local light level (a closing far wider than a
        # stroke follows the shadows): on a photo of paper most of the
        # picture does, on a dark board only the chalk does.
        r = max(2, round(max(s.shape) / 8))
        level = _morph(_morph(s, r, np.maximum), r, np.minimum)
        if float(np.mean(s > _PAPER_NEAR * level)) >= _PAPER_SHARE:
            return True, 1.0 - dense, True
    return light, dense, False


def _thumbnail(gray):
    """gray shrunk (box filter) so that its longer side is at most 128 px."""
    h, w = gray.shape
    if max(h, w) <= 128:
        return gray
    f = 128 / max(h, w)
    return _resize(gray, (max(1, round(w * f)), max(1, round(h * f))), Image.Resampling.BOX)


def _dark_lines_outweigh(s):
    """True if thin dark lines clearly outweigh thin light lines on thumbnail s.

    Thin dark lines on light paper are the black top-hat (closing minus
    picture), thin light lines the white top-hat.
    """
    r = max(2, round(max(s.shape) / 40))
    # How strongly lines stand out, not how many: noise and a soft
    # shadow's rim add many faint values to both.
    dark_lines = float(np.percentile(_morph(_morph(s, r, np.maximum), r, np.minimum) - s, 99))
    light_lines = float(np.percentile(s - _morph(_morph(s, r, np.minimum), r, np.maximum), 99))
    return dark_lines >= _LINES_RATIO * max(light_lines, 1e-6)


def _polarity_by_area(s):
    """(light background?, ink-like fraction) of a thumbnail, by area and border."""
    lo, hi = float(s.min()), float(s.max())
    mid = 0.5 * (lo + hi)
    light_fraction = np.count_nonzero(s > mid) / s.size  # (np.mean's bits)
    # Ink is thin strokes, background the rest: whichever side covers most
    # of the picture is the background. When that is not clear-cut (a tight
    # crop of a bold digit covers half its picture or more), the picture's
    # outer ring and corners decide, which are paper in a crop. A clear
    # majority overrules them, as a dark table around a photographed sheet
    # would otherwise fool them.
    if 0.2 < light_fraction < 0.8:
        sh, sw = s.shape
        ch, cw = max(1, sh // 7), max(1, sw // 7)
        ring = np.concatenate([s[0], s[-1], s[:, 0], s[:, -1]])
        corners = np.concatenate([s[:ch, :cw].ravel(), s[:ch, -cw:].ravel(),
                                  s[-ch:, :cw].ravel(), s[-ch:, -cw:].ravel()])
        vote = 0.5 * float(np.mean(ring > mid)) + 0.5 * float(np.mean(corners > mid))
        if abs(vote - 0.5) > 0.1:
            light = vote > 0.5
            return light, (1.0 - light_fraction if light else light_fraction)
    light = light_fraction >= 0.5
    return light, (1.0 - light_fraction if light else light_fraction)


def _ink_from_gray(gray, alpha=None):
    """Turn decoded gray (1 = white) into an ink map (1 = ink, 0 = paper)."""
    if alpha is not None and np.ptp(gray) < 0.1 and np.ptp(alpha) > 0.5:
        # Light strokes drawn on a transparent layer vanish when composited
        # on white; then the opacity itself is the drawing.
        x, light, dense, shaded = alpha, False, float(np.mean(alpha > 0.5)), False
    else:
        light, dense, shaded = _polarity(gray)
        x = 1.0 - gray if light else gray
    x = x.astype(np.float32, copy=False)

    bg = _background(x, dense)
    if bg is None:
        bg = np.float32(0.0)
        # Much of a light picture is dark and no smooth lighting explains
        # it: a tight crop (mostly ink), or a photo of paper with a shadow
        # or dark corners that took a third of the picture. Thin dark lines
        # (the pen) outweighing thin light ones tell the photo (a bold
        # digit's crop leaves thin light gaps between wide strokes).
        shaded = shaded or (light and _dark_lines_outweigh(_thumbnail(gray)))
    if shaded:
        # A photo: what the smooth surface cannot follow -- a shadow's
        # edge, a dark table band, a hand -- is still far wider than the
        # pen's strokes, so it is paper too.
        bg = np.maximum(bg, _wide_dark(x))
    if light:
        # Paper brightness multiplies the ink's: divide it out, as a scanner's
        # shading correction does, so ink in a shadow is as dark as elsewhere.
        xc = (x - bg) / np.maximum(1.0 - bg, 0.2)
    else:
        xc = x - bg

    step = max(1, round(math.sqrt(xc.size / 16384)))
    sub = xc[::step, ::step]
    sample = sub.ravel()
    # (A shaded photo is paper with a digit: its shadows and dark corners
    # counted as ink-like in `dense`, but are background now.)
    if dense <= 0.15 or shaded:
        med = _median(sample)
        noise = 1.4826 * _median(np.abs(sample - med))
    else:
        # So much ink (a tight crop) that the median is a stroke's soft edge,
        # not paper: take the paper's level from the lightest pixels, and the
        # noise from differences of neighbours along whichever axis the
        # strokes mostly run, where edges barely show.
        med = _percentile(sample, 3)
        diffs = [np.abs(np.diff(sub, axis=k)) for k in (0, 1) if sub.shape[k] > 1]
        noise = 1.4826 / math.sqrt(2) * min((_median(d) for d in diffs), default=0.0)
    floor = med + max(4.0 * noise, 0.03)
    strong = xc[xc > floor]
    if strong.size < 4:
        return np.zeros_like(xc)
    # The ink's own level (a grey pencil, a faded pen, a photo's dark-grey
    # ink) becomes 1: stroke cores are the upper part of what rose above the
    # noise, split from faint edges and shading by Otsu's threshold.
    if strong.size > 20000:
        strong = strong[:: strong.size // 20000]
    t = _otsu(strong)
    core = strong[strong >= t]
    level = _median(core) if core.size else float(strong.max())
    if level - med < max(0.1, 6.0 * noise):
        return np.zeros_like(xc)  # nothing stands out from the paper: blank
    ink = (xc - floor) * np.float32(1.0 / max(level - floor, 1e-3))
    return np.clip(ink, 0.0, 1.0, out=ink)


def _otsu(values, bins=64):
    """Otsu's threshold of a 1-D sample (the cut that best splits two classes)."""
    lo, hi = float(values.min()), float(values.max())
    if hi <= lo:
        return lo
    hist, edges = _histogram(values, bins, lo, hi)
    centers = 0.5 * (edges[:-1] + edges[1:])
    w0 = np.cumsum(hist)
    w1 = w0[-1] - w0
    m0 = np.cumsum(hist * centers)
    mu0 = m0 / np.maximum(w0, 1)
    mu1 = (m0[-1] - m0) / np.maximum(w1, 1)
    between = w0 * w1 * (mu0 - mu1) ** 2
    return float(edges[1:][np.argmax(between)])


def _histogram(values, bins, lo, hi):
    """np.histogram(values, bins, range=(lo, hi)) of values all within [lo, hi]: the same bits, faster.

    numpy's edges (spaced by np.linspace in the values' type) and counts (a
    value counts in the bin whose edges hold it, the last bin closed), but
    the edges are looked up in the sorted values at once, without binning
    each value through numpy's general machinery.
    """
    edges = np.linspace(lo, hi, bins + 1, dtype=np.result_type(lo, hi, values))
    at = np.searchsorted(np.sort(values), edges)
    at[-1] = values.size  # (the last bin holds the values equal to hi too)
    return at[1:] - at[:-1], edges


# --------------------------------------------------------------------------
# Ruled paper: printed lines are not writing
# --------------------------------------------------------------------------

# A printed ruling line is a thin run in every column it crosses: at most
# this share of the picture's longest side (and 5 px) thick. Lines of the
# ruled field photos measure 1-4 px on 480-683 px ink maps, a 5-degree
# tilted photo_ruled line 4-5 px on 565 px (which a limit of 0.007 broke
# up); a pen stroke in a tight crop of one digit is far thicker.
_RULE_THIN = 0.01
# A piece of thin ink at least this share of the width is worth fitting.
_RULE_PIECE = 0.1
# A full ruling line spans this share of the width; the paper is ruled when
# two or more do and they are this many times longer than their spacing
# (a tight digit's two parallel bars are shorter than the digit is tall).
_RULE_SPAN = 0.7
# Printed lines are often much fainter than the writing (light blue, grey):
# they are looked for among all ink above this level.
_RULE_INK = 0.15
_RULE_LENGTH_SPACING = 1.5


def _vertical_runs(mask):
    """Vertical runs of a bool image: (column, start row, end row) arrays, column by column."""
    return _runs(mask.T)


def _robust_polyfit(x, y, deg):
    """Polynomial y(x), refitted twice without the points far off it (a stroke crossing)."""
    keep = np.ones(x.size, bool)
    coef = np.polyfit(x, y, deg)
    for _ in range(2):
        r = np.abs(y - np.polyval(coef, x))
        keep = r <= max(1.5, 2.5 * float(np.median(r[keep])))
        if keep.sum() < deg + 2:
            break
        coef = np.polyfit(x[keep], y[keep], deg)
    return coef


def _ruling(ink, beside=None):
    """Printed horizontal ruling lines of an ink map: (row-per-column curves, spacing).

    Thin runs (columns' runs of ink no thicker than a printed line) join
    into pieces; long pieces that lie on one smooth curve make a line. The
    paper is ruled when two or more lines cross most of the width and are
    much longer than their spacing: a single digit's long stroke (a 1, a
    7's bar) is one line, and a digit's two bars are no longer than their
    distance. Pieces of lines cut by the writing or the frame are kept when
    they follow the family of full lines (interpolated between the two
    nearest), which also follows the photo's perspective.

    Args:
        ink: ink map; its transpose finds vertical lines.
        beside: the spacing of the ruling lines found across these (the
            page is ruled): then every full line longer than two of their
            spacings is a line too (a margin line, squared paper's), but
            no shorter one (no digit written between two ruling lines is
            that long, while a number of thin 1s is a row of parallel lines).

    Returns:
        (curves, spacing): a float array of each line's row at every column,
        and the lines' median spacing (None when there are fewer than two).
        No curves when the paper is not ruled.
    """
    h, w = ink.shape
    on = ink > _RULE_INK
    thin_max = max(5, math.ceil(_RULE_THIN * max(h, w)))
    least = 1 if beside else 2
    cols, starts, ends = _vertical_runs(on)
    length = ends - starts
    # `least` lines crossing _RULE_SPAN of the width each give that many thin
    # runs together in (least * _RULE_SPAN - least + 1) of the columns, less
    # where the writing crosses them (ruled photos found: at least 0.56 of
    # the columns for two lines, against 0.4). Without half that, the costly
    # labelling below is skipped (0.7 ms of a picture's 4-5 ms): no answer
    # changes.
    runs_per_col = np.bincount(cols[length <= thin_max], minlength=w)
    if np.count_nonzero(runs_per_col >= least) < 0.5 * (least * _RULE_SPAN - least + 1) * w:
        return [], None
    thin_t = np.zeros((w, h), bool)
    thin_t[on.T] = np.repeat(length <= thin_max, length)
    thin = thin_t.T
    labels, n, (rows, rs, re, comp) = _label(thin)
    if n < least:
        return [], None
    order = np.argsort(comp, kind="stable")
    first = np.searchsorted(comp[order], np.arange(n))
    span = np.maximum.reduceat(re[order], first) - np.minimum.reduceat(rs[order], first)
    long_ = np.flatnonzero(span >= _RULE_PIECE * w)
    if long_.size < least:
        return [], None
    ys, xs = np.nonzero(thin)
    lab = labels[ys, xs]
    pieces = []
    for k in long_:
        sel = lab == k
        count = np.bincount(xs[sel], minlength=w)
        at = np.flatnonzero(count)
        # A line is one thin run per column, not a blob of strokes.
        if float(np.median(count[at])) <= thin_max:
            pieces.append((at, np.bincount(xs[sel], ys[sel], minlength=w)[at] / count[at]))
    pieces.sort(key=lambda p: -p[0].size)
    tol = max(2.0, 0.006 * max(h, w))
    used = np.zeros(len(pieces), bool)
    lines = []
    for i, (x, y) in enumerate(pieces):
        if used[i]:
            continue
        used[i] = True
        px, py = [x], [y]
        coef = _robust_polyfit(x.astype(float), y, 1)
        grown = True
        while grown:
            grown = False
            for j in np.flatnonzero(~used):
                x2, y2 = pieces[j]
                if float(np.median(np.abs(np.polyval(coef, x2) - y2))) <= tol:
                    used[j] = True
                    px.append(x2)
                    py.append(y2)
                    grown = True
            if grown:
                ax, ay = np.concatenate(px).astype(float), np.concatenate(py)
                # A photographed line bows a little (lens, paper).
                coef = _robust_polyfit(ax, ay, 2 if np.ptp(ax) >= 0.5 * w else 1)
        ax, ay = np.concatenate(px), np.concatenate(py)
        lines.append((coef, ax, ay))
    full = [c for c in lines if np.ptp(c[1]) + 1 >= _RULE_SPAN * w]
    every = np.arange(w, dtype=float)
    length = float(np.median([np.ptp(c[1]) + 1 for c in full])) if full else 0.0
    if beside:
        return [np.polyval(c[0], every) for c in full if np.ptp(c[1]) + 1 >= 2 * beside], None
    if len(full) < 2:
        return [], None
    curves = sorted((np.polyval(c[0], every) for c in full), key=lambda c: c[w // 2])
    mids = [c[w // 2] for c in curves]
    spacing = float(np.median(np.diff(mids)))
    if length < _RULE_LENGTH_SPACING * spacing:
        return [], None
    out = list(curves)
    for coef, x, y in lines:
        if np.ptp(x) + 1 >= _RULE_SPAN * w or not (x.min() <= 0.05 * w or x.max() >= 0.95 * w - 1):
            continue
        # A piece from the picture's side (not a bar inside the writing).
        i = int(np.clip(np.searchsorted(mids, float(np.median(y))) - 1, 0, len(curves) - 2))
        a, b = curves[i], curves[i + 1]
        gap = b[x] - a[x]
        alpha = float(np.median((y - a[x]) / gap))
        if float(np.median(np.abs(y - (a[x] + alpha * gap)))) <= 1.5:
            out.append(a + alpha * (b - a))
    return out, spacing


def _nearest_runs(cols, offset, thin, reach):
    """Per column, the index of the thin run whose offset from a line is smallest (within reach)."""
    d = np.abs(offset)
    near = np.flatnonzero(thin & (d <= reach))
    near = near[np.lexsort((d[near], cols[near]))]
    return near[np.r_[True, cols[near][1:] != cols[near][:-1]]] if near.size else near


def _unrule(ink):
    """The ink map without printed ruling lines; strokes crossing them are kept.

    Horizontal ruling lines, and then vertical ones (a margin line, the
    columns of squared paper), are found (_ruling) and erased (_erase).
    """
    rows, spacing = _ruling(ink)
    if not rows:
        return ink
    cols, _ = _ruling(ink.T, beside=spacing)
    ink = _erase(ink, rows)
    if cols:
        ink = np.ascontiguousarray(_erase(ink.T, cols).T)
    return ink


def _erase(ink, curves):
    """Erase the lines along `curves` (a row per column) from the ink map.

    In each column, the run of ink at the line is erased whole when it is
    no thicker than the line itself (its commonest thickness, plus a
    pixel). A thicker run holds a stroke too: when it reaches past the line
    on one side only (a stroke lying along the line or ending at it) just
    the line's rows go; when it reaches past on both sides (a stroke
    crossing the line) it stays whole.
    """
    h, w = ink.shape
    cols, starts, ends = _vertical_runs(ink > 0.1)
    length = ends - starts
    centre = 0.5 * (starts + ends - 1)
    spans = []
    thin_len = max(5, math.ceil(_RULE_THIN * max(h, w))) + 3
    thin = length <= thin_len
    reach = max(3.0, 0.01 * max(h, w))
    for curve in curves:
        # A photographed line waves a little off any smooth curve: follow
        # it by the nearest thin runs' median offset over a few columns.
        near = _nearest_runs(cols, centre - curve[cols], thin, reach)
        if near.size < 8:
            continue
        off = centre[near] - curve[cols[near]]
        window = np.lib.stride_tricks.sliding_window_view(np.pad(off, 7, mode="edge"), 15)
        path = curve.copy()
        path[cols[near]] += np.median(window, axis=1)
        path = np.interp(np.arange(w), cols[near], path[cols[near]])
        # The run at the line in each column: the line alone (erased with
        # its soft fringe), or the line and a stroke on one side of it,
        # lying along it or ending at it (only the line's rows are erased),
        # or a stroke crossing it (kept).
        at = path[cols]
        near = _nearest_runs(cols, centre - at, (starts <= at + 1.5) & (ends - 1 >= at - 1.5), 2.5)
        alone = near[length[near] <= thin_len]
        if alone.size == 0:
            continue
        m = float(np.median(length[alone]))
        half = 0.5 * m + 1.5
        whole = near[length[near] <= m + 1]
        side = near[(length[near] > m + 1)
                    & ((starts[near] < at[near] - half) != (ends[near] - 1 > at[near] + half))]
        spans.append((cols[whole], starts[whole] - 1, ends[whole] + 1))
        spans.append((cols[side], np.round(at[side] - half).astype(int),
                      np.round(at[side] + half).astype(int) + 1))
    if not spans:
        return ink
    # Every pixel of every span [lo, hi) of its column, at once.
    c, lo, hi = (np.concatenate(v) for v in zip(*spans))
    lo, hi = np.clip(lo, 0, h), np.clip(hi, 0, h)
    n = np.maximum(hi - lo, 0)
    row = np.repeat(lo - np.cumsum(n) + n, n) + np.arange(int(n.sum()))
    out = np.array(ink)
    out[row, np.repeat(c, n)] = 0
    return out


def _load(source):
    """load_ink plus what find_writing needs: (ink, (sx, sy) to original px)."""
    gray, alpha, (width, height) = _read(source)
    ink = _unrule(_ink_from_gray(gray, alpha))
    h, w = ink.shape
    return ink, (width / w, height / h)


def load_ink(source):
    """Decode any image into an ink map: 1 where there is ink, 0 on paper.

    Handles every Pillow mode and format it can open (first frame of an
    animation, EXIF orientation, alpha composited on white, 16-bit ranges),
    detects light ink on a dark background, flattens uneven paper, stretches
    faint ink to full strength and removes background noise. Images larger
    than about 1000 px are shrunk as they are decoded.

    Args:
        source: A path (str or os.PathLike) or a PIL.Image.Image.

    Returns:
        float32 array (H, W) in [0, 1].

    Raises:
        ImageError: The file is missing, not an image, corrupt, or larger than
            Pillow's decompression-bomb limit.
    """
    return _load(source)[0]


# --------------------------------------------------------------------------
# Connected pieces of ink
# --------------------------------------------------------------------------

def _runs(mask):
    """Horizontal runs of set pixels of a bool image: (row, start, end) arrays in reading order, ends exclusive."""
    h, w = mask.shape
    padded = np.zeros((h, w + 2), bool)
    padded[:, 1:-1] = mask
    # Where a row changes between ink and paper: in reading order these
    # alternate run start, run end (a 1-D search is much faster than a 2-D one).
    edges = (padded[:, 1:] != padded[:, :-1]).ravel().nonzero()[0]
    rows, starts = np.divmod(edges[0::2], w + 1)
    return rows, starts, edges[1::2] - rows * (w + 1)


def _label(mask):
    """8-connected components of a boolean image.

    Works on horizontal runs of set pixels (a digit has only a few per row),
    joining runs of neighbouring rows that touch, and resolves the joins with
    vectorised union-find, so that it stays fast without scipy.

    Returns (labels image with -1 as background, number of components,
    runs as (rows, starts, ends, component) arrays).
    """
    mask = np.asarray(mask, bool)
    h, w = mask.shape
    rows, starts, ends = _runs(mask)
    n = rows.size
    labels = np.full((h, w), -1, np.int32)
    if n == 0:
        return labels, 0, (rows, starts, ends, rows)

    # Run b (row r) touches run a (row r-1) when a.start <= b.end and
    # a.end >= b.start (ends exclusive, so this is 8-connectivity). Keys
    # row * K + column keep every row's runs in one sorted array.
    # (Row 0's keys less K are negative: no run lies above it.)
    k = w + 2
    row_key = rows * k
    key_start, key_end = row_key + starts, row_key + ends
    lo = np.searchsorted(key_end, key_start - k, side="left")
    hi = np.searchsorted(key_start, key_end - k, side="right")
    count = np.maximum(hi - lo, 0)
    total = int(count.sum())
    parent = np.arange(n)
    if total:
        b = parent.repeat(count)
        a = np.arange(total) + (lo - count.cumsum() + count).repeat(count)
        while True:
            ra, rb = parent[a], parent[b]
            if not np.count_nonzero(ra != rb):  # (cheaper than .any() on a few hundred)
                break
            # ra and rb are roots (parent[r] == r): the larger one joins the smaller.
            np.minimum.at(parent, np.maximum(ra, rb), np.minimum(ra, rb))
            while True:
                nxt = parent[parent]
                if not np.count_nonzero(nxt != parent):
                    break
                parent = nxt
    # Every run now points at its component's first run (a root, which
    # points at itself); components are numbered in the order of their roots.
    root = parent == np.arange(n)
    comp = (np.cumsum(root) - 1)[parent]
    # Set pixels in reading order are the runs' pixels in order.
    labels[mask] = comp.repeat(ends - starts)
    return labels, int(np.count_nonzero(root)), (rows, starts, ends, comp)


class _Pieces:
    """Ink pieces of an image on a coarse analysis grid.

    The ink map is pooled into cells of f x f pixels (at most ~256 cells
    across) so that the analysis costs the same for any image size; a cell
    is set when it holds clear ink.
    """

    THRESHOLD = 0.4

    def __init__(self, ink):
        self.ink = ink
        h, w = ink.shape
        f = max(1, math.ceil(max(h, w) / 256))
        self.f = f
        if f == 1:
            self.mass = ink
            self.mask = ink > self.THRESHOLD
        else:
            # Pillow's reduce() is a fast box mean that keeps partial edge cells.
            mean = Image.fromarray(ink, "F").reduce(f)
            self.mass = np.asarray(mean, np.float32) * np.float32(f * f)
            on = Image.fromarray((ink > self.THRESHOLD).astype(np.float32), "F").reduce(f)
            self.mask = np.asarray(on) > 0
        self.shape = self.mask.shape

    def pixels(self, cells):
        """The ink map's pixels (a bool mask) of a bool mask of cells (the cells themselves when f is 1)."""
        if self.f == 1:
            return cells
        h, w = self.ink.shape
        return cells.repeat(self.f, axis=0).repeat(self.f, axis=1)[:h, :w]

    def components(self, mask=None):
        """Label `mask` (default: the ink cells); returns (labels, stats).

        stats is an (n, 5) float array: x0, y0, x1, y1 (cells, exclusive)
        and ink mass of each component.
        """
        labels, n, (rows, starts, ends, comp) = _label(self.mask if mask is None else mask)
        stats = np.zeros((n, 5))
        if n:
            order = np.argsort(comp, kind="stable")
            first = np.searchsorted(comp[order], np.arange(n))
            stats[:, 0] = np.minimum.reduceat(starts[order], first)
            stats[:, 1] = np.minimum.reduceat(rows[order], first)
            stats[:, 2] = np.maximum.reduceat(ends[order], first)
            stats[:, 3] = np.maximum.reduceat(rows[order], first) + 1
            # Each run's ink from the prefix sums along its row: summed only
            # from the first run's row to the last's, up to the last end.
            top, bottom, right = rows[0], rows[-1] + 1, int(ends.max())
            cum = np.zeros((bottom - top, right + 1))
            np.cumsum(self.mass[top:bottom, :right], axis=1, out=cum[:, 1:])
            at = rows - top
            stats[:, 4] = np.bincount(comp, weights=cum[at, ends] - cum[at, starts], minlength=n)
        return labels, stats


def _edges(pieces, labels, stats):
    """Pieces that look like a paper or table edge: bands along the borders.

    Such a piece runs (nearly) right across the picture from a border and
    stays near the borders: a band along one side, or along two or more (a
    corner of the table, a frame). A digit in a tight
    crop also runs from border to border, but it fills the crop's middle
    too. _writing_inside must still confirm that the rest is much smaller.
    """
    gh, gw = pieces.shape
    # "At a border" allows a sliver: the very edge of a photo is often
    # lighter (lens, JPEG) than the table just inside it.
    tol_x, tol_y = max(1, 0.02 * gw), max(1, 0.02 * gh)
    left, right = stats[:, 0] <= tol_x, stats[:, 2] >= gw - tol_x
    top, bottom = stats[:, 1] <= tol_y, stats[:, 3] >= gh - tol_y
    x0, y0, x1, y1 = stats[:, 0], stats[:, 1], stats[:, 2], stats[:, 3]
    vertical = ((top | bottom) & (left | right) & ((y1 - y0) >= 0.75 * gh)
                & ((x1 - x0) <= 0.35 * gw))
    horizontal = ((left | right) & (top | bottom) & ((x1 - x0) >= 0.75 * gw)
                  & ((y1 - y0) <= 0.35 * gh))
    borders = left.astype(int) + top + right + bottom
    across = (borders >= 2) & (((x1 - x0) >= 0.9 * gw) | ((y1 - y0) >= 0.9 * gh))
    frame = np.zeros(len(stats), bool)
    if across.any():
        rows, cols = np.ogrid[:gh, :gw]
        band = ((rows < 0.2 * gh) | (rows >= 0.8 * gh) | (cols < 0.2 * gw) | (cols >= 0.8 * gw))
        on = labels >= 0
        total = np.bincount(labels[on], minlength=len(stats))
        near = np.bincount(labels[on & band], minlength=len(stats))
        frame = across & (near >= 0.95 * np.maximum(total, 1))
    return vertical | horizontal | frame


def _writing_inside(pieces, stats, rest, edge):
    """Per edge piece: True if the writing (`rest`) is much smaller than it.

    In a tight crop the digits reach the borders too, but then each is about
    as tall (or wide) as the picture; beside a real edge they are not.
    """
    out = np.zeros(len(stats), bool)
    rest = stats[rest]
    if rest.size == 0:
        return out
    gh, gw = pieces.shape
    big = rest[rest[:, 4] >= 0.1 * rest[:, 4].max()]
    rest_w = float((big[:, 2] - big[:, 0]).max())
    rest_h = float((big[:, 3] - big[:, 1]).max())
    # Only dust besides: the "edge" is the writing itself. The writing's ink
    # is weighed as a whole: each digit of a small number in pencil beside a
    # table band running along the whole side of a photo can weigh under 2 %
    # of the band (1.4 % in a 5-digit number, photo_slant), all of them not.
    if max(rest_w, rest_h) < 0.03 * max(gw, gh) or big[:, 4].sum() < 0.02 * stats[edge, 4].max():
        return out
    span_w = stats[:, 2] - stats[:, 0]
    span_h = stats[:, 3] - stats[:, 1]
    return edge & (((span_w >= 0.75 * gw) & (rest_w < 0.75 * span_w))
                   | ((span_h >= 0.75 * gh) & (rest_h < 0.75 * span_h)))


def _cells_of(labels, chosen):
    """Boolean mask of the cells whose component is chosen (a bool per component)."""
    if np.all(chosen):
        return labels >= 0
    # Background (-1) takes the lookup's last entry, which is False.
    lookup = np.zeros(len(chosen) + 1, bool)
    lookup[:-1] = chosen
    return np.take(lookup, labels)


def _gap(a, b):
    """Largest axis gap between two boxes (x0, y0, x1, y1); 0 if they touch."""
    return max(a[0] - b[2], b[0] - a[2], a[1] - b[3], b[1] - a[3], 0)


def _solid_at_frame(pieces, labels, stats):
    """Pieces that reach the frame and are far thicker than the writing's strokes.

    Handwriting is thin strokes of one pen; what is left of a shadow, a
    table, a finger or the sheet's edge where it reaches into the picture
    is solid. The writing's pen width is the (ink-weighted) median width,
    2 x area / outline, of the pieces that stay inside the frame. A solid
    piece the size of the writing's digits, in a picture the writing fills,
    is a bold digit of a tight crop and is not returned.
    """
    n = len(stats)
    out = np.zeros(n, bool)
    gh, gw = pieces.shape
    at_frame = ((stats[:, 0] <= 0) | (stats[:, 1] <= 0) | (stats[:, 2] >= gw) | (stats[:, 3] >= gh))
    if not at_frame.any() or at_frame.all():
        return out
    on = labels >= 0
    area = np.bincount(labels[on], minlength=n).astype(float)
    outline = np.zeros(n)
    for a, b in ((labels[:-1], labels[1:]), (labels[:, :-1], labels[:, 1:])):
        change = a != b
        for side in (a, b):
            hit = change & (side >= 0)
            outline += np.bincount(side[hit], minlength=n)
    # (The frame cuts a piece off, it is not its outline.)
    width = 2.0 * area / np.maximum(outline, 1.0)
    inner = ~at_frame
    order = np.argsort(width[inner])
    cum = np.cumsum(stats[inner, 4][order])
    pen = float(width[inner][order][np.searchsorted(cum, 0.5 * cum[-1])])
    # Solid, not a stroke: as wide as a good part of its own extent (a bold
    # digit running off the picture beside a thin speck is a stroke still).
    extent = np.minimum(stats[:, 2] - stats[:, 0], stats[:, 3] - stats[:, 1])
    # And only beside writing of some substance, not a speck or a cursor
    # ring next to a bold digit that runs off the picture.
    beside = stats[inner, 4].sum() >= _SOLID_BESIDE * stats[:, 4]
    # A shadow or a table meets the frame along a stretch; a digit of a
    # tight crop touches it at a point.
    contact = np.zeros(n)
    for edge in (labels[0], labels[-1], labels[:, 0], labels[:, -1]):
        contact += np.bincount(edge[edge >= 0], minlength=n)
    solid = (at_frame & beside & (width > _SOLID_WIDTHS * max(pen, 1.0))
             & (width > _SOLID_SHARE * extent) & (contact >= _SOLID_SHARE * 2 * extent))
    if not solid.any():
        return solid
    # A bold digit at the end of a tight crop (another writer's pen than the
    # rest of the number) is solid too, but it is the size of the other
    # digits, which fill the picture; a shadow or a table is larger than
    # the writing or runs along a whole side of the picture.
    rest = stats[inner]
    rest = rest[rest[:, 4] >= 0.1 * rest[:, 4].max()]
    size = float(np.maximum(rest[:, 2] - rest[:, 0], rest[:, 3] - rest[:, 1]).max())
    span = float(np.maximum((rest[:, 2] - rest[:, 0]) / gw, (rest[:, 3] - rest[:, 1]) / gh).max())
    w, h = stats[:, 2] - stats[:, 0], stats[:, 3] - stats[:, 1]
    across = ((stats[:, 0] <= 0) & (stats[:, 2] >= gw)) | ((stats[:, 1] <= 0) & (stats[:, 3] >= gh))
    digit = (np.maximum(w, h) <= _DIGIT_SIZE * size) & ~across & (span >= _DIGIT_SPAN)
    return solid & ~digit


def _clean(pieces):
    """Drop specks and paper edges; returns (labels, stats, keep, edge bool arrays).

    A speck is a small piece away from the writing; a paper or table edge is
    a piece running across nearly the whole picture while the writing itself
    sits well inside it. Neither may decide where the digit is. `edge` marks
    the pieces that look like an edge (_edges), whether dropped or not.
    """
    labels, stats = pieces.components()
    n = len(stats)
    keep = np.ones(n, bool)
    if n == 0:
        return labels, stats, keep, np.zeros(0, bool)
    edge = _edges(pieces, labels, stats)
    if edge.any() and not edge.all():
        keep &= ~(edge & _writing_inside(pieces, stats, ~edge, edge))
    keep &= ~_solid_at_frame(pieces, labels, stats)

    mass = stats[:, 4]
    top = mass[keep].max()
    core = keep & (mass >= 0.1 * top)
    # Grow from the substantial pieces: a smaller piece joins when it lies
    # near what is already kept (the dot of a broken stroke, the bar of a 5),
    # so stray specks farther away are left out.
    box = _union(stats[core])
    candidate = keep & ~core & (mass >= 0.005 * top)
    changed = True
    while changed and candidate.any():
        changed = False
        size = max(box[2] - box[0], box[3] - box[1])
        for i in np.flatnonzero(candidate):
            gap = _gap(stats[i], box)
            if gap <= 0.05 * size or (gap <= 0.25 * size and mass[i] >= 0.03 * top):
                core[i] = True
                candidate[i] = False
                box = _union(stats[core])
                changed = True
    return labels, stats, core, edge


def _union(stats):
    return (stats[:, 0].min(), stats[:, 1].min(), stats[:, 2].max(), stats[:, 3].max())


# --------------------------------------------------------------------------
# Ink crop -> MNIST 28x28
# --------------------------------------------------------------------------

def _sharpen(m):
    """Steepen soft edges around the 0.5 level (the blog recipe's sharpen)."""
    s = m - 0.5
    s *= 2.0
    s += 0.5
    return np.clip(s, 0.0, 1.0, out=s)


def _stroke_width(m):
    """Mean stroke width in pixels: twice the ink area over its outline length."""
    dx = m[:-1, 1:] - m[:-1, :-1]
    dy = m[1:, :-1] - m[:-1, :-1]
    dx *= dx
    dy *= dy
    dx += dy
    outline = float(np.sqrt(dx, out=dx).sum())
    return 2.0 * float(m.sum()) / max(outline, 1e-6)


def _tight(a, threshold):
    """Crop a 2-D array to the box of values above threshold (or None)."""
    on = a > threshold
    rows = on.any(axis=1).nonzero()[0]
    if rows.size == 0:
        return None
    cols = on.any(axis=0).nonzero()[0]
    return a[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]


def _fit(a, longest):
    """Resize so that the longer side is `longest` pixels, keeping the aspect."""
    h, w = a.shape
    s = longest / max(h, w)
    size = (max(1, round(w * s)), max(1, round(h * s)))
    # Area averaging when shrinking keeps a thin line as a faint line rather
    # than dropping it; bilinear when enlarging a tiny drawing.
    resample = Image.Resampling.BOX if s < 1 else Image.Resampling.BILINEAR
    return _resize(a, size, resample)


def to_mnist(ink):
    """Turn an ink crop into a 28x28 array the way MNIST digits were made.

    The ink is brought to full strength, its stroke width is moved into the
    range MNIST's pens had (a 1-px pen line is thickened, a fat marker
    thinned), its bounding box is fitted into 20x20 keeping the aspect ratio,
    and it is placed in the 28x28 field with its centre of mass at the
    centre. Everything happens at 4x resolution and is box-averaged down,
    which anti-aliases the edges the way MNIST's are.

    Args:
        ink: 2-D array, 1 = ink, 0 = background; any size. Margins are fine.

    Returns:
        (28, 28) float32 in [0, 1], ink = 1, scaled like MNIST training data
        (pixel / 255); all zeros if there is no ink.
    """
    a = np.asarray(ink, dtype=np.float32)
    if a.ndim != 2:
        raise ValueError(f"to_mnist needs a 2-D ink array, got shape {a.shape}")
    # Into [0, 1], NaN to 0 (fmax and fmin ignore a NaN).
    a = np.fmax(a, np.float32(0.0))
    np.fmin(a, np.float32(1.0), out=a)
    out = np.zeros((28, 28), np.float32)
    peak = float(a.max())
    if peak <= 0.0:
        return out
    a = _tight(a, 0.05 * peak)
    box = 20 * _K
    m = _fit(a, box)
    # Full strength: a fine line shrunk by area averaging, or a faint pen,
    # is as much a stroke as a bold one.
    level = _percentile(m[m > 0.1 * m.max()], 90)
    m = m * (1.0 / max(level, 1e-3))
    np.clip(m, 0.0, 1.0, out=m)
    padded = np.zeros((m.shape[0] + 4 * _K, m.shape[1] + 4 * _K), np.float32)
    padded[2 * _K:-2 * _K, 2 * _K:-2 * _K] = m
    m = _sharpen(padded)

    width = _stroke_width(m) / _K
    if width < _WIDTH_MIN:
        m = _morph(m, round((_WIDTH_THIN_TARGET - width) * _K / 2), np.maximum)
    elif width > _WIDTH_MAX:
        radius = round((width - _WIDTH_THICK_TARGET) * _K / 2)
        total = m.sum()
        # Never thin so far that parts of the digit vanish.
        while radius > 0:
            thinner = _morph(m, radius, np.minimum)
            if thinner.sum() >= 0.45 * total:
                m = thinner
                break
            radius -= 1

    # Fit the (possibly re-stroked) digit exactly into the 20x20 box.
    solid = _tight(m, 0.5)
    if solid is None:
        return out
    extent = max(solid.shape)
    m = _tight(m, 0.02)
    if abs(extent - box) > 1:
        m = _sharpen(_fit(m, max(m.shape) * box / extent))

    # Centre of mass to the field's centre pixel (index 14, as MNIST's own
    # digits are), to a quarter pixel.
    total = float(m.sum())
    ys = np.arange(m.shape[0], dtype=np.float64)
    xs = np.arange(m.shape[1], dtype=np.float64)
    cy = float(m.sum(axis=1) @ ys) / total
    cx = float(m.sum(axis=0) @ xs) / total
    target = 14 * _K + (_K - 1) / 2
    oy, ox = int(round(target - cy)), int(round(target - cx))
    size = 28 * _K
    canvas = np.zeros((size, size), np.float32)
    y0, x0 = max(oy, 0), max(ox, 0)
    y1, x1 = min(oy + m.shape[0], size), min(ox + m.shape[1], size)
    if y1 > y0 and x1 > x0:
        canvas[y0:y1, x0:x1] = m[y0 - oy:y1 - oy, x0 - ox:x1 - ox]
    field = _box_mean(canvas)
    return np.clip(field, 0.0, 1.0, out=field)


def _box_mean(canvas):
    """Mean of each _K x _K block of a float32 canvas.

    Strided sums: the same additions in the same order as
    canvas.reshape(h, _K, w, _K).mean(axis=(1, 3)), so the same bits, but
    without numpy's slow reduction over short axes.
    """
    cols = canvas[:, 0::_K] + canvas[:, 1::_K]
    for i in range(2, _K):
        cols += canvas[:, i::_K]
    out = cols[0::_K] + cols[1::_K]
    for i in range(2, _K):
        out += cols[i::_K]
    out /= np.float32(_K * _K)
    return out


# --------------------------------------------------------------------------
# Whole images: one digit or a number
# --------------------------------------------------------------------------

def _analyse(source):
    """Load `source` and find its ink pieces; raises ImageError if none."""
    name = _source_name(source)
    ink, scale = _load(source)
    pieces = _Pieces(ink)
    labels, stats, keep, edge = _clean(pieces)
    edge = edge & keep
    if edge.any():
        # A dark table or paper edge set the contrast stretch, and grey
        # pencil beside it may have fallen under the ink threshold: look
        # again without the edge, stretched by what remains. Kept only if
        # what remains is writing clearly smaller than the edge.
        gone = pieces.pixels(_morph(_cells_of(labels, edge), 3, np.maximum))
        rest = np.where(gone, np.float32(0), ink)
        vals = rest[rest > 0.1]
        level = float(np.percentile(vals, 75)) if vals.size > 16 else 0.0
        if level >= 0.25:  # real ink, not the faint fringe of what was removed
            rest = np.clip(rest * np.float32(1.0 / level), 0, 1)
            p2 = _Pieces(rest)
            l2, s2, k2, _ = _clean(p2)
            both = np.concatenate([stats[edge], s2[k2]])
            is_edge = np.arange(len(both)) < edge.sum()
            if k2.any() and _writing_inside(pieces, both, ~is_edge, is_edge).any():
                ink, pieces, labels, stats, keep = rest, p2, l2, s2, k2
    if keep.any():
        # The contrast stretch was set by all the dark things in the picture;
        # if a table edge or a blot outweighed the writing (grey pencil next
        # to a dark table), stretch again by the writing's own ink.
        vals = ink[pieces.pixels(_cells_of(labels, keep))]
        vals = vals[vals > 0.1]
        # The 75th percentile lies between the sorted values at
        # floor(0.75 (n - 1)) and the next: when no more values than that
        # are below 0.75, it is at least 0.75 without sorting anything (and
        # only a level below 0.75 is used).
        faint = np.count_nonzero(vals < 0.75)
        if not vals.size or faint <= math.floor(0.75 * (vals.size - 1)):
            level = 1.0
        else:
            level = _percentile(vals, 75)
        if level < 0.75:
            ink = np.clip(ink * np.float32(1.0 / level), 0.0, 1.0)
            pieces = _Pieces(ink)
            labels, stats, keep, _ = _clean(pieces)
    if keep.any():
        x0, y0, x1, y1 = _union(stats[keep])
        longest = max(x1 - x0, y1 - y0) * pieces.f
        # A digit is more than a dot of dust: at least a few pixels and a
        # few hundredths of the picture across.
        if longest < max(4, 0.02 * max(ink.shape)) or stats[keep, 4].sum() < 6:
            keep[:] = False
    if not keep.any():
        raise ImageError(f"no digit found in {name}")
    return ink, scale, pieces, labels, stats, keep


def find_writing(source):
    """Decode `source` and keep only its writing: specks, paper and table edges dropped.

    Args:
        source: A path (str or os.PathLike) or a PIL.Image.Image.

    Returns:
        Writing(ink, scale): ink is a float32 (H, W) map (1 = ink) that is zero
        everywhere but on the writing's pieces; scale is (sx, sy), the factors
        that take its pixel coordinates to the original image's (as displayed).

    Raises:
        ImageError: Unreadable file, or no digit found in it.
    """
    ink, scale, pieces, labels, stats, keep = _analyse(source)
    return Writing(ink * pieces.pixels(_cells_of(labels, keep)), scale)


def prepare(source):
    """Prepare an image of one handwritten digit for an MNIST model.

    Args:
        source: A path (str or os.PathLike) or a PIL.Image.Image.

    Returns:
        (28, 28) float32 in [0, 1], ink = 1, like an MNIST test digit.

    Raises:
        ImageError: Unreadable file, or no digit found in it.
    """
    return to_mnist(find_writing(source).ink)
