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
    to_mnist(ink)         ink crop -> (28, 28) float32 like an MNIST digit
    prepare(source)       one digit -> (28, 28) float32
    split_digits(source)  a number written side by side -> [Digit, ...]

Only numpy and Pillow are used; importing the module does nothing.
"""

import math
import os
import struct
import warnings
from collections import namedtuple

import numpy as np
from PIL import Image, UnidentifiedImageError

__all__ = ["ImageError", "Digit", "load_ink", "to_mnist", "prepare", "split_digits"]


class ImageError(ValueError):
    """A user-facing, one-line problem with an input image (names the file)."""


Digit = namedtuple("Digit", "array box")
Digit.__doc__ = """One digit found in an image.

array: (28, 28) float32 MNIST-style array (ink = 1).
box: (left, top, right, bottom) of the digit's ink in the pixel coordinates of
    the original image as it is displayed (after EXIF orientation); right and
    bottom are exclusive.
"""

# Larger images are shrunk to this longest side as soon as they are decoded:
# a digit needs far fewer pixels than a phone photo has, and a 1000 px image
# still keeps a fine pen stroke visible.
_MAX_SIDE = 1000

# to_mnist works at _K times the final resolution (a 20*_K box) so that
# stroke-width changes and sub-pixel centring are precise; the final 28x28 is
# an exact _K x _K box average of that, which is what anti-aliases the edges.
_K = 4

# Stroke width, in pixels of the 20x20 digit box, measured as 2 * area /
# perimeter on the working image. Calibrated on MNIST test digits delivered as
# user files: the 3rd..97th percentiles are left alone, so MNIST-like digits
# are untouched, while 1-px pen lines and fat marker strokes are brought into
# the range the network was trained on.
_WIDTH_MIN = 1.6
_WIDTH_MAX = 3.4
_WIDTH_THIN_TARGET = 2.0
_WIDTH_THICK_TARGET = 3.0

# EXIF orientation tag value -> the transpose that shows the image upright.
_EXIF_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


# --------------------------------------------------------------------------
# Decoding
# --------------------------------------------------------------------------

def _source_name(source):
    if isinstance(source, Image.Image):
        return getattr(source, "filename", "") or "the image"
    return os.fspath(source)


def _decode(im):
    """Decode a PIL image into float32 gray (1 = white) at <= _MAX_SIDE.

    Returns (gray, alpha or None, (width, height) of the upright original).
    """
    # Animated GIF/WebP/multi-page TIFF: the first frame is the picture.
    if getattr(im, "n_frames", 1) > 1:
        im.seek(0)

    try:
        orientation = int(im.getexif().get(0x0112, 1))
    except Exception:  # a broken EXIF block must not make a good image fail
        orientation = 1
    transpose = _EXIF_TRANSPOSE.get(orientation)

    width, height = im.size
    factor = math.ceil(max(width, height) / _MAX_SIDE)
    if factor > 1 and im.format == "JPEG":
        # JPEG can decode at 1/2, 1/4 or 1/8 scale directly (DCT scaling),
        # which keeps a 12-megapixel photo from ever being fully decoded.
        im.draft(im.mode, (math.ceil(width / factor), math.ceil(height / factor)))

    mode = im.mode
    has_key = im.info.get("transparency") is not None
    if mode in ("P", "PA"):
        im = im.convert("RGBa" if (mode == "PA" or has_key) else "RGB")
    elif mode == "1":
        im = im.convert("L")
    elif mode in ("L", "RGB") and has_key:
        im = im.convert("La" if mode == "L" else "RGBa")
    elif mode in ("LA", "La"):
        # Premultiplied alpha, so that shrinking below averages colour
        # weighted by opacity: transparent pixels' hidden colour must not
        # bleed into the ink.
        im = im.convert("La")
    elif mode in ("RGBA", "RGBa"):
        im = im.convert("RGBa")
    elif mode.startswith("I;16"):
        im = im.convert("I")  # reduce() has no 16-bit mode; "I" holds it exactly
    elif mode not in ("L", "RGB", "I", "F"):
        im = im.convert("RGB")  # CMYK, YCbCr, LAB, HSV, RGBX ...

    factor = math.ceil(max(im.size) / _MAX_SIDE)
    if factor > 1:
        im = im.reduce(factor)
    if transpose is not None:
        im = im.transpose(transpose)

    a = np.asarray(im)
    alpha = None
    if im.mode in ("I", "F"):
        # 16/32-bit and float images: scale by the values actually used, so a
        # 16-bit scan is neither clipped to white nor squashed to black.
        a = a.astype(np.float32)
        lo, hi = float(a.min()), float(a.max())
        gray = (a - lo) / (hi - lo) if hi > lo else np.ones_like(a)
    else:
        a = a.astype(np.float32) * np.float32(1 / 255)
        if a.ndim == 2:
            gray = a
        else:
            if im.mode in ("La", "RGBa"):
                alpha = a[..., -1]
                a = a[..., :-1]
            if a.shape[-1] == 3:
                gray = a @ np.array([0.299, 0.587, 0.114], np.float32)
            else:
                gray = a[..., 0]
            if alpha is not None:
                # Composite the (premultiplied) colour on white paper.
                gray = gray + (1.0 - alpha)
    if transpose in (Image.Transpose.ROTATE_90, Image.Transpose.ROTATE_270,
                     Image.Transpose.TRANSPOSE, Image.Transpose.TRANSVERSE):
        width, height = height, width
    return np.clip(gray, 0.0, 1.0), alpha, (width, height)



def _read(source):
    """Open and decode `source` safely; see _decode for the result."""
    name = _source_name(source)
    try:
        with warnings.catch_warnings():
            # An image over Image.MAX_IMAGE_PIXELS only warns by default; for a
            # digit reader such a file is an attack or a mistake, so refuse it.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            if isinstance(source, Image.Image):
                return _decode(source)
            with Image.open(name) as im:
                return _decode(im)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(f"cannot read {name}: image is too large "
                         "(decompression-bomb guard)") from None
    except FileNotFoundError:
        raise ImageError(f"cannot read {name}: no such file") from None
    except IsADirectoryError:
        raise ImageError(f"cannot read {name}: it is a directory") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError,
            IndexError, KeyError, TypeError, struct.error, MemoryError) as exc:
        # Pillow's plugins signal a corrupt or truncated file with any of these.
        raise ImageError(f"cannot read {name}: not an image Pillow can open"
                         ) from exc


# --------------------------------------------------------------------------
# Ink extraction: polarity, background flattening, contrast stretch
# --------------------------------------------------------------------------

def _resize(a, size, resample):
    """Resize a float32 array with Pillow ("F" mode); size is (width, height)."""
    return np.asarray(Image.fromarray(np.ascontiguousarray(a, np.float32), "F")
                      .resize(size, resample), dtype=np.float32)


def _filter3(a, op, cross=False):
    """One 3x3 (or plus-shaped) max/min filter step, edges replicated."""
    p = np.pad(a, 1, mode="edge")
    if cross:
        return op(op(op(p[1:-1, 1:-1], p[:-2, 1:-1]), op(p[2:, 1:-1], p[1:-1, :-2])),
                  p[1:-1, 2:])
    rows = op(op(p[:-2], p[1:-1]), p[2:])
    return op(op(rows[:, :-2], rows[:, 1:-1]), rows[:, 2:])


def _morph(a, radius, op):
    """Grey dilation (np.maximum) or erosion (np.minimum) by a disc-like octagon.

    Alternating square and plus-shaped steps grow an octagon, which is close
    enough to a round pen tip that strokes keep their shape in every direction.
    """
    for i in range(radius):
        a = _filter3(a, op, cross=bool(i % 2))
    return a


def _background(x, light):
    """Slowly varying background level of the ink-positive image x.

    Uneven lighting on a photo of paper, a shadow or a tinted sheet: the
    paper is estimated on a coarse grid (cell medians, where ink is a
    minority), with a grey opening removing cells that strokes still fill,
    then smoothly interpolated back to full size.
    """
    h, w = x.shape
    longest = max(h, w)
    if longest < 48:
        return np.float32(np.median(x))
    cells = 16
    gw = max(1, round(cells * w / longest))
    gh = max(1, round(cells * h / longest))
    c = 8
    small = _resize(x, (gw * c, gh * c), Image.Resampling.BOX)
    med = np.median(small.reshape(gh, c, gw, c).transpose(0, 2, 1, 3)
                    .reshape(gh, gw, c * c), axis=2)
    # Opening (erode then dilate) over 5x5 cells: a stroke or a blob of ink
    # up to ~a third of the image across cannot pass for background.
    bg = _morph(_morph(med, 2, np.minimum), 2, np.maximum)
    # Smooth the cell grid so that no block edges show.
    p = np.pad(bg, 1, mode="edge")
    bg = sum(p[i:i + gh, j:j + gw] for i in range(3) for j in range(3)) / 9.0
    return _resize(bg.astype(np.float32), (w, h), Image.Resampling.BILINEAR)


def _polarity_is_light(gray):
    """True when the background is lighter than the ink (dark ink on paper)."""
    h, w = gray.shape
    s = gray
    if max(h, w) > 128:
        f = 128 / max(h, w)
        s = _resize(gray, (max(1, round(w * f)), max(1, round(h * f))),
                    Image.Resampling.BOX)
    lo, hi = float(s.min()), float(s.max())
    mid = 0.5 * (lo + hi)
    light_fraction = float(np.mean(s > mid))
    # Ink is thin strokes, background the rest: whichever side covers most
    # of the picture is the background. Only when that is unclear (a tight
    # crop of a very bold digit) does the image's outer ring decide, which a
    # dark table around a photographed sheet would otherwise fool.
    if light_fraction >= 0.7:
        return True
    if light_fraction <= 0.3:
        return False
    ring = np.concatenate([s[0], s[-1], s[:, 0], s[:, -1]])
    return bool(np.mean(ring > mid) >= 0.5)


def _ink_from_gray(gray, alpha=None):
    """Turn decoded gray (1 = white) into an ink map (1 = ink, 0 = paper)."""
    if alpha is not None and np.ptp(gray) < 0.1 and np.ptp(alpha) > 0.5:
        # Light strokes drawn on a transparent layer vanish when composited
        # on white; then the opacity itself is the drawing.
        x = alpha
        light = False
    else:
        light = _polarity_is_light(gray)
        x = 1.0 - gray if light else gray
    x = x.astype(np.float32, copy=False)

    bg = _background(x, light)
    if light:
        # Paper brightness multiplies the ink's: divide it out, as a scanner's
        # shading correction does, so ink in a shadow is as dark as elsewhere.
        xc = (x - bg) / np.maximum(1.0 - bg, 0.2)
    else:
        xc = x - bg

    step = max(1, int(math.sqrt(xc.size / 65536)))
    sample = xc[::step, ::step].ravel()
    med = float(np.median(sample))
    noise = 1.4826 * float(np.median(np.abs(sample - med)))
    floor = med + max(4.0 * noise, 0.03)
    strong = xc[xc > floor]
    if strong.size < 4:
        return np.zeros_like(xc)
    # The ink's own level (a grey pencil, a faded pen, a photo's dark-grey
    # ink) becomes 1: stroke cores are the upper half of what rose above the
    # noise, split from faint edges and shading by Otsu's threshold.
    t = _otsu(strong)
    core = strong[strong >= t]
    level = float(np.median(core)) if core.size else float(strong.max())
    if level - med < 0.08:
        return np.zeros_like(xc)  # nothing stands out from the paper: blank
    ink = (xc - floor) * np.float32(1.0 / max(level - floor, 1e-3))
    return np.clip(ink, 0.0, 1.0, out=ink)


def _otsu(values, bins=64):
    """Otsu's threshold of a 1-D sample (the cut that best splits two classes)."""
    lo, hi = float(values.min()), float(values.max())
    if hi <= lo:
        return lo
    hist, edges = np.histogram(values, bins=bins, range=(lo, hi))
    centers = 0.5 * (edges[:-1] + edges[1:])
    w0 = np.cumsum(hist)
    w1 = w0[-1] - w0
    m0 = np.cumsum(hist * centers)
    mu0 = m0 / np.maximum(w0, 1)
    mu1 = (m0[-1] - m0) / np.maximum(w1, 1)
    between = w0 * w1 * (mu0 - mu1) ** 2
    return float(edges[1:][np.argmax(between)])


def _load(source):
    """load_ink plus what split_digits needs: (ink, (sx, sy) to original px)."""
    gray, alpha, (width, height) = _read(source)
    ink = _ink_from_gray(gray, alpha)
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

def _label(mask):
    """8-connected components of a boolean image.

    Works on horizontal runs of set pixels (a digit has only a few per row),
    joining runs of neighbouring rows that touch, and resolves the joins with
    vectorised union-find, so that it stays fast without scipy.

    Returns (labels image with -1 as background, number of components).
    """
    h, w = mask.shape
    padded = np.zeros((h, w + 2), np.int8)
    padded[:, 1:-1] = mask
    d = np.diff(padded, axis=1)
    rows, starts = np.nonzero(d == 1)
    ends = np.nonzero(d == -1)[1]
    n = rows.size
    labels = np.full((h, w), -1, np.int32)
    if n == 0:
        return labels, 0

    # Run b (row r) touches run a (row r-1) when a.start <= b.end and
    # a.end >= b.start (ends exclusive, so this is 8-connectivity). Keys
    # row * K + column keep every row's runs in one sorted array.
    k = w + 2
    key_start = rows * k + starts
    key_end = rows * k + ends
    above = (rows - 1) * k
    lo = np.searchsorted(key_end, above + starts, side="left")
    hi = np.searchsorted(key_start, above + ends, side="right")
    count = np.maximum(hi - lo, 0) * (rows > 0)
    total = int(count.sum())
    parent = np.arange(n)
    if total:
        b = np.repeat(np.arange(n), count)
        offset = np.arange(total) - np.repeat(np.cumsum(count) - count, count)
        a = np.repeat(lo, count) + offset
        while True:
            ra, rb = parent[a], parent[b]
            if np.array_equal(ra, rb):
                break
            m = np.minimum(ra, rb)
            np.minimum.at(parent, ra, m)
            np.minimum.at(parent, rb, m)
            while True:
                nxt = parent[parent]
                if np.array_equal(nxt, parent):
                    break
                parent = nxt
    roots, comp = np.unique(parent, return_inverse=True)
    lengths = ends - starts
    flat_start = rows * w + starts
    pos = np.repeat(flat_start - (np.cumsum(lengths) - lengths), lengths) + np.arange(lengths.sum())
    labels.ravel()[pos] = np.repeat(comp, lengths)
    return labels, roots.size


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
        gh, gw = math.ceil(h / f), math.ceil(w / f)
        padded = np.zeros((gh * f, gw * f), np.float32)
        padded[:h, :w] = ink
        blocks = padded.reshape(gh, f, gw, f)
        self.f = f
        self.mass = blocks.sum(axis=(1, 3))
        self.mask = blocks.max(axis=(1, 3)) > self.THRESHOLD
        self.shape = (gh, gw)

    def components(self, mask=None):
        """Label `mask` (default: the ink cells); returns (labels, stats).

        stats is an (n, 5) float array: x0, y0, x1, y1 (cells, exclusive)
        and ink mass of each component.
        """
        labels, n = _label(self.mask if mask is None else mask)
        stats = np.zeros((n, 5))
        if n:
            ys, xs = np.nonzero(labels >= 0)
            lab = labels[ys, xs]
            stats[:, 0] = np.full(n, np.inf)
            stats[:, 1] = np.full(n, np.inf)
            np.minimum.at(stats[:, 0], lab, xs)
            np.minimum.at(stats[:, 1], lab, ys)
            np.maximum.at(stats[:, 2], lab, xs + 1)
            np.maximum.at(stats[:, 3], lab, ys + 1)
            stats[:, 4] = np.bincount(lab, weights=self.mass[ys, xs], minlength=n)
        return labels, stats


def _gap(a, b):
    """Largest axis gap between two boxes (x0, y0, x1, y1); 0 if they touch."""
    return max(a[0] - b[2], b[0] - a[2], a[1] - b[3], b[1] - a[3], 0)


def _clean(pieces):
    """Drop specks and paper edges; returns (labels, stats, keep bool array).

    A speck is a small piece away from the writing; a paper or table edge is
    a piece running across nearly the whole picture while the writing itself
    sits well inside it. Neither may decide where the digit is.
    """
    labels, stats = pieces.components()
    n = len(stats)
    keep = np.ones(n, bool)
    if n == 0:
        return labels, stats, keep
    gh, gw = pieces.shape
    borders = ((stats[:, 0] == 0).astype(int) + (stats[:, 1] == 0)
               + (stats[:, 2] == gw) + (stats[:, 3] == gh))
    # An edge runs into the picture from one border and out at another; the
    # writing, unless it is cropped tight, stays clear of the borders.
    edge = borders >= 2
    if edge.any() and not edge.all():
        rest = stats[~edge]
        big = rest[rest[:, 4] >= 0.1 * rest[:, 4].max()]
        inside = ((big[:, 2].max() - big[:, 0].min()) / gw < 0.75
                  and (big[:, 3].max() - big[:, 1].min()) / gh < 0.75)
        if inside and big[:, 4].max() >= 0.05 * stats[edge, 4].max():
            keep &= ~edge

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
    return labels, stats, core


def _union(stats):
    return (stats[:, 0].min(), stats[:, 1].min(), stats[:, 2].max(), stats[:, 3].max())


# --------------------------------------------------------------------------
# Ink crop -> MNIST 28x28
# --------------------------------------------------------------------------

def _sharpen(m):
    """Steepen soft edges around the 0.5 level (the blog recipe's sharpen)."""
    return np.clip((m - 0.5) * 2.0 + 0.5, 0.0, 1.0)


def _stroke_width(m):
    """Mean stroke width in pixels: twice the ink area over its outline length."""
    dx = np.diff(m, axis=1)[:-1, :]
    dy = np.diff(m, axis=0)[:, :-1]
    outline = float(np.sqrt(dx * dx + dy * dy).sum())
    return 2.0 * float(m.sum()) / max(outline, 1e-6)


def _tight(a, threshold):
    """Crop a 2-D array to the box of values above threshold (or None)."""
    rows = np.flatnonzero((a > threshold).any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero((a > threshold).any(axis=0))
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
    a = np.clip(np.nan_to_num(a), 0.0, 1.0)
    out = np.zeros((28, 28), np.float32)
    peak = float(a.max())
    if peak <= 0.0:
        return out
    a = _tight(a, 0.05 * peak)
    box = 20 * _K
    m = _fit(a, box)
    # Full strength: a fine line shrunk by area averaging, or a faint pen,
    # is as much a stroke as a bold one.
    level = float(np.percentile(m[m > 0.1 * m.max()], 90))
    m = np.clip(m * (1.0 / max(level, 1e-3)), 0.0, 1.0)
    m = _sharpen(np.pad(m, 2 * _K))

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
    out = canvas.reshape(28, _K, 28, _K).mean(axis=(1, 3))
    return np.clip(out, 0.0, 1.0).astype(np.float32)


# --------------------------------------------------------------------------
# Whole images: one digit or a number
# --------------------------------------------------------------------------

def _analyse(source):
    """Load `source` and find its ink pieces; raises ImageError if none."""
    name = _source_name(source)
    ink, scale = _load(source)
    pieces = _Pieces(ink)
    labels, stats, keep = _clean(pieces)
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


def _digit(ink, scale, pieces, cells):
    """Prepare the ink under a boolean cell mask; returns a Digit."""
    f = pieces.f
    rows = np.flatnonzero(cells.any(axis=1))
    cols = np.flatnonzero(cells.any(axis=0))
    cy0, cy1, cx0, cx1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    y0, x0 = cy0 * f, cx0 * f
    y1, x1 = min(cy1 * f, ink.shape[0]), min(cx1 * f, ink.shape[1])
    member = np.repeat(np.repeat(cells[cy0:cy1, cx0:cx1], f, axis=0), f, axis=1)
    crop = ink[y0:y1, x0:x1] * member[:y1 - y0, :x1 - x0]
    # The box is where the ink itself is, in the original image's pixels.
    on = crop > _Pieces.THRESHOLD / 2
    r = np.flatnonzero(on.any(axis=1))
    c = np.flatnonzero(on.any(axis=0))
    if r.size:
        y0, y1 = y0 + r[0], y0 + r[-1] + 1
        x0, x1 = x0 + c[0], x0 + c[-1] + 1
    sx, sy = scale
    box = (int(math.floor(x0 * sx)), int(math.floor(y0 * sy)),
           int(math.ceil(x1 * sx)), int(math.ceil(y1 * sy)))
    return Digit(to_mnist(crop), box)


def prepare(source):
    """Prepare an image of one handwritten digit for an MNIST model.

    Args:
        source: A path (str or os.PathLike) or a PIL.Image.Image.

    Returns:
        (28, 28) float32 in [0, 1], ink = 1, like an MNIST test digit.

    Raises:
        ImageError: Unreadable file, or no digit found in it.
    """
    return split_digits(source, single=True)[0].array


def _groups(pieces, labels, stats, keep):
    """Group the kept ink cells into digits; returns boolean cell masks.

    Pieces close together are joined first (a small closing, so that dotted
    or broken strokes hold together); then pieces stacked over one another
    are merged (the bar of a 5 over its body, the two strokes of a 4) and
    small leftovers join their nearest digit. A piece far wider than the
    digits are tall is split at its thinnest column (touching digits).
    """
    kept = np.isin(labels, np.flatnonzero(keep))
    x0, y0, x1, y1 = _union(stats[keep])
    radius = max(1, round(0.05 * (y1 - y0)))
    closed = kept
    for _ in range(radius):
        closed = _filter3(closed, np.maximum)
    clabels, n = _label(closed)
    groups = [kept & (clabels == i) for i in range(n)]
    groups = [g for g in groups if g.any()]

    def box(g):
        r = np.flatnonzero(g.any(axis=1))
        c = np.flatnonzero(g.any(axis=0))
        return (c[0], r[0], c[-1] + 1, r[-1] + 1)

    def height_scale(boxes):
        heights = np.array([b[3] - b[1] for b in boxes], float)
        tall = heights[heights >= 0.5 * heights.max()]
        return float(np.median(tall))

    changed = True
    while changed and len(groups) > 1:
        changed = False
        boxes = [box(g) for g in groups]
        height = height_scale(boxes)
        best = None
        for i in range(len(groups)):
            for j in range(i + 1, len(groups)):
                a, b = boxes[i], boxes[j]
                overlap = min(a[2], b[2]) - max(a[0], b[0])
                narrow = min(a[2] - a[0], b[2] - b[0])
                low = min(a[3] - a[1], b[3] - b[1]) < 0.6 * height
                if overlap >= (0.5 if low else 0.8) * narrow:
                    best = (i, j)
                    break
            if best:
                break
        if best is None:
            # A piece much shorter than a digit is part of its neighbour.
            for i, a in enumerate(boxes):
                if a[3] - a[1] < 0.4 * height:
                    others = [j for j in range(len(groups)) if j != i]
                    j = min(others, key=lambda j: _gap(a, boxes[j]))
                    if _gap(a, boxes[j]) <= 0.5 * height:
                        best = (min(i, j), max(i, j))
                    else:
                        groups.pop(i)
                        changed = True
                    break
        if best:
            i, j = best
            groups[i] = groups[i] | groups[j]
            groups.pop(j)
            changed = True

    boxes = [box(g) for g in groups]
    height = height_scale(boxes)
    result = []
    for g, b in zip(groups, boxes):
        result.extend(_split_wide(pieces, g, b, height))
    return sorted(result, key=lambda g: box(g)[0] + box(g)[2])


def _split_wide(pieces, g, b, height):
    """Split a group wider than ~1.3 digits at its thinnest columns."""
    x0, y0, x1, y1 = b
    width = x1 - x0
    if width <= 1.3 * height:
        return [g]
    n = max(2, round(width / (0.8 * height)))
    profile = (pieces.mass * g).sum(axis=0)[x0:x1]
    cuts = []
    for k in range(1, n):
        centre = k * width / n
        lo = int(max(1, centre - 0.25 * width / n))
        hi = int(min(width - 1, centre + 0.25 * width / n)) + 1
        if hi <= lo:
            continue
        cuts.append(x0 + lo + int(np.argmin(profile[lo:hi])))
    parts = []
    edges = [x0] + cuts + [x1]
    for a, c in zip(edges[:-1], edges[1:]):
        part = np.zeros_like(g)
        part[:, a:c] = g[:, a:c]
        parts.append(part)
    # Only keep the cuts that leave every part digit-sized: a long tail or
    # underline is not a digit of its own.
    ok = all(p.any() and (np.flatnonzero(p.any(axis=1))[-1]
                          - np.flatnonzero(p.any(axis=1))[0] + 1) >= 0.5 * height
             for p in parts)
    return parts if ok else [g]


def split_digits(source, single=False):
    """Find the digits of a number written side by side, left to right.

    Each digit is prepared exactly like prepare() prepares a single digit.
    Broken strokes (the detached bar of a 5, a 4 whose top is open, a pen
    lifted mid-stroke, dotted or faint pen) stay in one digit; two digits
    that touch are split when the join is thin.

    Args:
        source: A path (str or os.PathLike) or a PIL.Image.Image.
        single: Treat all the ink as one digit (exactly one Digit returned).

    Returns:
        List of Digit(array, box), ordered left to right.

    Raises:
        ImageError: Unreadable file, or no digit found in it.
    """
    ink, scale, pieces, labels, stats, keep = _analyse(source)
    if single:
        cells = [np.isin(labels, np.flatnonzero(keep))]
    else:
        cells = _groups(pieces, labels, stats, keep)
    return [_digit(ink, scale, pieces, c) for c in cells]
