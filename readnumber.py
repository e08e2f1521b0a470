"""Read a whole handwritten number by recognition, as production cheque readers do.

LeCun, Bottou, Bengio and Haffner (1998), "Gradient-based learning applied to
document recognition", sections VI-VII: the writing is over-segmented into
primitive pieces (connected pieces, and pieces cut out of joined ink along
paths that follow the gap between strokes); every run of 1-4 neighbouring
primitives (and the longest run no wider than a digit) is a candidate digit; all candidates are prepared like a single
digit (imageprepare.to_mnist) and classified in one network call; the reading
is the path through this segmentation graph whose candidates together score
best. The network, not a heuristic, decides where a number is cut.

Public API:
    segment(source, single=False) -> Segmentation   (no network)
    decode(segmentation, probs, digitness) -> Reading
    read(source, classify, single=False) -> Reading  (segment + one classify + decode)

Only numpy and Pillow are used (and imageprepare); importing does nothing.
"""

import math
from collections import namedtuple

import numpy as np
from PIL import Image

import imageprepare
from imageprepare import ImageError

__all__ = ["ImageError", "Segmentation", "Digit", "Reading", "segment", "decode", "read"]

Digit = namedtuple("Digit", "value array box probs digitness")
Digit.__doc__ = """One digit of a reading.

value: int, the digit read: probs.argmax() (the network's class; a "?"
    reading keeps it as the guess).
array: (28, 28) float32, what the network saw.
box: (left, top, right, bottom) of its ink in the original image's pixels
    (as displayed, after EXIF orientation); right and bottom exclusive.
probs: (10,) float32 softmax of the network.
digitness: float in [0, 1], how much it looks like a digit at all.
"""

Reading = namedtuple("Reading", "number probability digits alternatives")
Reading.__doc__ = """The best reading of an image.

number: str, the digits left to right.
probability: float, the share of the whole segmentation graph's weight
    held by the paths that spell `number`: low when another cut (or another
    digit) is nearly as good, e.g. "219" against "2019".
digits: list of Digit, left to right.
alternatives: list of (number, probability) runner-up readings, best first.
"""


class Segmentation:
    """Candidate digits of one image and the graph they form.

    Attributes:
        arrays: (K, 28, 28) float32, every candidate prepared with to_mnist.
        boxes: list of K (left, top, right, bottom) boxes in original pixels.
        edges: list of K (start, end) node pairs: candidate k covers the
            primitives start..end-1 (left to right); nodes run 0..nodes-1.
        nodes: number of graph nodes (primitives + 1).
        sizes: (K, 2) float width and height of each candidate's ink.
        line_height: height of the digits, same units as sizes.
        cut_strokes: (nodes,) float, pen widths of ink cut at each node;
            -1 where two separate pieces meet (no cut), and at both ends.
        crops: list of K (ink, (x, y)): each candidate's ink before
            to_mnist, and its top left, in the pixels of the writing as
            cut: the original image's when `as_drawn`. Training on the
            reader's own cuts (cutexamples.py) tells from them which
            digit's ink each candidate holds. None for a `single` read.
        as_drawn: the writing was cut at the original image's scale and
            angle (not shrunk, not straightened).
    """

    def __init__(self, arrays, boxes, edges, nodes, sizes, line_height, cut_strokes, crops=None, as_drawn=False):
        self.arrays = arrays
        self.boxes = boxes
        self.edges = edges
        self.nodes = nodes
        self.sizes = sizes
        self.line_height = line_height
        self.cut_strokes = cut_strokes
        self.crops = crops
        self.as_drawn = as_drawn


# --------------------------------------------------------------------------
# Tuned constants
# --------------------------------------------------------------------------

# A cell of the analysis grid is ink when any pixel in it is above this.
_CELL_INK = 0.05

# The writing is analysed on a grid where the line of digits is about this
# many cells tall: fine enough to cut between strokes, coarse enough that the
# analysis costs the same for any image.
_GRID_HEIGHT = 40

# A connected piece narrower than this (x line height) is one digit (or a 1
# and its neighbour's tip): it is not cut. On 800 numbers of MNIST training
# digits (thin pen, plain, tight, drawn styles; touching and gapped), 0.8
# and 1.0 read alike (within 1 in 100 per kind); 1.0 makes fewer candidates.
_CUT_MIN_WIDTH = 1.0
# Cut paths keep at least this far from a piece's sides (x line height): a
# narrow 1 is ~0.15 wide; and a path hugging the side would run along the
# outer stroke of the first or last digit, crossing "one stroke".
_CUT_MARGIN = 0.12
# A cut path may wander this far (x line height) from its starting column to
# follow the gap between two strokes.
_CUT_WANDER = 0.25
# Cut paths start at the valleys of the profiles and every _CUT_PITCH line
# heights between them.
_CUT_PITCH = 0.1
# The cuts crossing the fewest strokes are kept first, each at least
# _CUT_SPACING line heights from the others; the first _UNCUT_WIDTH line
# heights of a piece's width hold none, the rest up to _CUTS_PER_HEIGHT per
# line height: a piece as wide as one broad digit (1.0-1.2) gets one to three
# cuts, two joined digits (1.3-1.8) four to seven. Measured on 150 touching
# numbers of MNIST training digits per pen (the oracle: how often some path
# of candidates matches the true digits' boxes), plain/thin/thick:
# 95/14/117 with the least ink first, 3 cuts per line height from zero
# width, spacing 0.2 and wander 0.35; 119/16/132 with these (thin pen 39 ->
# 52 when its true boxes are the ink's, not the skeleton's array), at 1.3-1.7x
# the candidates (22-26 a number) and as many for single MNIST digits as
# before (2.3 a digit). A budget per line height from zero width cuts broad
# single digits into more fragments (more candidates, and gapped numbers
# read worse); wander 0.2 or spacing 0.12 add little for their candidates.
_CUT_SPACING = 0.15
_UNCUT_WIDTH = 0.8
_CUTS_PER_HEIGHT = 7
# Never more than this many in one piece (eight joined digits, ~6 line heights),
# which bounds the candidates of a long stroke or an underline.
_MAX_CUTS = 36

# A part cut out of a piece with less than _SLIVER of its ink is merged
# into the next part; a primitive with less than _CRUMB of the median
# primitive's ink joins its nearest neighbour. (Shares, not areas: a 1-px
# pen's digits hold few cells.)
_SLIVER = 0.03
_CRUMB = 0.1

# A candidate digit is at most this many primitives, and at most this wide
# (x line height): MNIST's widest digits (a long-based 2) reach 1.5. Four
# rather than three: on the same 150 touching numbers per pen the oracle
# rises from 119/16/132 to 124/20/132 (plain/thin/thick) at 26 -> 29
# candidates a number (plain) and 46 -> 50 ms a 6-digit touching number;
# gapped numbers (600, 6 kinds) read the same.
_MAX_RUN = 4
_MAX_WIDTH = 1.6
# A primitive whose middle is farther than this (x line height) from the
# line's is not part of the number.
_OFF_LINE = 1.0

# Separate digit-tall pieces are parts of one digit only when they overlap
# sideways or come within this (x line height, a hair's breadth); a short
# piece (a tail, a bar) joins a neighbour up to _MAX_INNER_GAP away.
_TOUCH_GAP = 0.05
_MAX_INNER_GAP = 0.3

# MNIST training digits' width/height of the ink box (>0.3), 2nd and 98th
# percentile per class (60,000 digits): a candidate outside this range for
# the class it is read as is penalised with a log-normal falloff of
# _ASPECT_SPREAD.
_ASPECT_RANGE = np.array([
    (0.60, 1.33), (0.20, 0.90), (0.60, 1.54), (0.50, 1.18), (0.50, 1.18),
    (0.50, 1.67), (0.45, 1.11), (0.50, 1.18), (0.50, 1.11), (0.40, 1.00)])
_ASPECT_SPREAD = 0.15
# A digit is nearly as tall as the line: a candidate shorter than this share
# of the line height (a 5's bar, a tail cut off) is penalised with a
# log-normal falloff of _HEIGHT_SPREAD.
_MIN_HEIGHT = 0.6
_HEIGHT_SPREAD = 0.15
# A path through a cut in joined ink multiplies its score by
# exp(_LOG_PER_STROKE) for each pen width of ink the cut crosses. Tuned on
# 560 numbers of MNIST *training* digits (7 kinds, touching and gapped):
# log priors per digit and per cut in {-0.7, 0, 0.7} and per stroke in
# {-0.5, -0.2, 0}. No prior per digit or per cut, and -0.5 per stroke,
# kept gapped numbers at their best (95 %, the rest lose up to 15 points as
# fragments of single digits start to read as digits) with touching ones
# the best they can be without a "not a digit" score (10 %, 18 % at most).
_LOG_PER_STROKE = -0.5
# A candidate's score is multiplied by digitness ** _DIGITNESS_POWER. With
# notadigit's margin score (threshold: 99.5 % of validation digits pass) of
# a network trained on digits alone, touching numbers of training digits
# read 9.3 % (power 0), 10.7 % (1), 11.8 % (2), 13.9 % (4); gapped ones
# stay at 95.4 %. A network shown non-digits (outlier exposure) scores
# fragments and merged digits lower, and needs less.
_DIGITNESS_POWER = 2.0

# A writing at least this many times as long as wide has a line of digits;
# its slant is corrected when beyond _SLANT_MIN degrees (up to _SLANT_MAX).
# Level numbers of 2-5 MNIST training digits (baselines spread 0.1 of a
# digit's height; each digit slanted as written) measure 6-15 degrees in one
# of four when they touch and one of six with gaps, beyond 15 in 3 %:
# turned by 6-15 degrees, touching plain numbers read 29 % (15: 31 %; never
# turned: 33 %), while numbers photographed 20-40 degrees up need it (4 %
# read when never turned, 13 % at 6 or 15). Real numbers
# (../shared/field-numbers) read the same at 6 and 15.
# Separate pieces at least _SLANT_PIECE as long as the longest are digits
# whose line is measured directly (_line_of_pieces): two digits are too
# short a line for the principal axis. On 200 numbers with gaps per kind
# (MNIST training digits, the quick start's network): photographed 20-40
# degrees up 95.0 -> 98.5 %, tight crops 94 -> 96 %, plain 97 -> 97.5 %,
# photos 98 -> 99 %, other styles 97 % both; touching numbers and single
# digits the same (within 1 in 200). Without leaving out pieces off the line,
# a shadow's blot under a level real number tilted it by 16 degrees.
_SLANT_ELONGATION = 2.0
_SLANT_WIDE = 0.9
_SLANT_PIECE = 0.5
# Two digit-sized pieces one after the other along a line up to 50 degrees
# steep span at least this much of their height sideways (0.76 at 50
# degrees): narrower ink is not looked at for them (most lone digits).
_SLANT_APART_WIDE = 0.7
_SLANT_MIN = 15.0
_SLANT_MAX = 50.0

# One person's digits lean the same way; the strokes of a V, a w, an N or a
# wave, cut apart, are "1"s that lean opposite ways. A reading in which two
# neighbouring candidates joined by a cut are each one straight stroke (ink
# at least _STROKE_ELONGATION times as long as wide) and lean apart by more
# than _LEAN_APART degrees is no number: it reads "?". MNIST training 1s
# lean from -41 to +17 degrees (1st-99th percentile); two of them from
# different writers lean apart by more than 30 / 35 / 40 degrees in 15 / 9
# / 4.5 % of pairs. On 600 non-digits of tuning seeds (6 kinds) the rule at
# 30 / 35 / 40 degrees answered 72.2 / 72.0 / 71.0 % "?" against 65.5 %
# without it (w, wave, V, N: 40 of 207 misreadings at 30); of 3,600
# numbers of MNIST training digits (gapped and touching, 6 kinds) and 500
# single digits none changed. Among those numbers, strokes joined by a cut
# (at least 4 times as long as wide) never leaned apart by more than 23
# degrees; counting ink 2.5 times as long as wide as a stroke (some 7s and
# 4s) would have lost up to 1.5 % of gapped numbers.
_STROKE_ELONGATION = 4.0
_LEAN_APART = 35.0

# Runner-up readings kept per graph node while decoding.
_BEAM = 16

# The whole ink, when it is one candidate that the network refuses as a
# digit (digitness < 0.5), may also be read as "?" -- one thing that is not
# a number -- with the score exp(_LOG_NOT_A_NUMBER) x (1 - digitness) **
# _DIGITNESS_POWER, against the digit paths' scores. Otherwise the pieces
# of a letter or a drawing (a V's two strokes, an h's stem) read as digits.
# On 100 images per kind (numbers of MNIST training digits, single test
# digits, tests/nondigits.py shapes; network trained with --fast): log C =
# -2 / -1 / 0 answered 63 / 67 / 71 % of non-digits "?" (56 % without), cost
# touching numbers 1 / 3 / 5 points (of 26 %: a merged pair of touching
# digits is refused as a digit too), and moved neither numbers with gaps
# nor single digits.
_LOG_NOT_A_NUMBER = -1.0


# --------------------------------------------------------------------------
# Over-segmentation
# --------------------------------------------------------------------------

def _reduce_max(mask, f):
    """Boolean (h, w) -> cells of f x f that hold any set pixel (partial cells at the far edges).

    Strided ORs of the rows, then of the columns, of each cell: no float
    copy through Pillow.
    """
    rows = mask[::f].copy()
    for i in range(1, f):
        part = mask[i::f]
        rows[:len(part)] |= part
    cells = rows[:, ::f].copy()
    for i in range(1, f):
        part = rows[:, i::f]
        cells[:, :part.shape[1]] |= part
    return cells


def _box(mask):
    """(x0, y0, x1, y1) of a boolean mask, exclusive ends; None if it is empty."""
    r = mask.any(axis=1).nonzero()[0]
    if r.size == 0:
        return None
    c = mask.any(axis=0).nonzero()[0]
    return int(c[0]), int(r[0]), int(c[-1]) + 1, int(r[-1]) + 1


def _line_height(on, f):
    """Height of the digits in pixels, from the columns of the substantial pieces.

    Pieces holding at least a fifth of the biggest one's ink are digits (or
    runs of touching digits). Within a column, a digit's ink spans its
    height at the sides of its loops and along its stems, less at its top
    and bottom, and a column never spans two digits' different baselines as
    a whole piece's box does: a high percentile of the column spans is the
    digits' height.
    """
    # Cells a cell apart are one piece: a 1-px pen line shrunk into cells
    # comes out dotted.
    cells = imageprepare._filter3(_reduce_max(on, f), np.maximum)
    labels, n, (rows, starts, ends, comp) = imageprepare._label(cells)
    mass = np.bincount(comp, weights=ends - starts, minlength=n)
    top = np.full(n, np.inf)
    bottom = np.zeros(n)
    np.minimum.at(top, comp, rows)
    np.maximum.at(bottom, comp, rows + 1)
    left = np.full(n, np.inf)
    right = np.zeros(n)
    np.minimum.at(left, comp, starts)
    np.maximum.at(right, comp, ends)
    # Pieces one above the other, or side by side but mostly sharing their
    # columns, are parts of one digit (a 5's bar over its body, the two
    # strokes of an open 4, a broken 0): measured as one, so that a lone
    # digit in two pieces is not taken for a line of half its height. (On
    # 150 images per kind, network trained with --fast: non-digits answered
    # "?" 67 -> 70 %, single digits 96.9 -> 97.1 %, numbers unchanged.)
    order = np.argsort(-mass)[:64]  # the pieces that matter: not every speck of a noisy photo
    merged = np.zeros(n, bool)
    smallest = 0.05 * mass.max()
    for i in order:
        # The order is by original mass: a piece already merged into a
        # bigger one (mass 0 now) is skipped, not taken for the end.
        if mass[i] == 0:
            continue
        if mass[i] < smallest:
            break
        for j in order:
            if j == i or mass[j] == 0 or mass[j] > mass[i] or (mass[j] == mass[i] and j < i):
                continue
            shared = min(right[i], right[j]) - max(left[i], left[j])
            if shared > 0.5 * min(right[i] - left[i], right[j] - left[j]):
                top[i], bottom[i] = min(top[i], top[j]), max(bottom[i], bottom[j])
                left[i], right[i] = min(left[i], left[j]), max(right[i], right[j])
                mass[i] += mass[j]
                mass[j] = 0.0
                merged[i] = True
    substantial = mass >= 0.2 * mass.max()
    # Pieces no wider than a digit are digits: their median height is the
    # line's, whatever the baselines.
    single = substantial & (right - left <= 1.2 * (bottom - top))
    # A lone digit in several pieces is its own height (one joined piece may be two
    # touching digits on different baselines: the columns below tell).
    singles = np.count_nonzero(single)
    if singles >= 2 or (singles == np.count_nonzero(substantial) == 1 and merged[single].all()):
        return imageprepare._median((bottom - top)[single]) * f
    top_p, bottom_p = top, bottom
    big = imageprepare._cells_of(labels, substantial)
    cols = big.any(axis=0)
    h = big.shape[0]
    top = big.argmax(axis=0)[cols]
    bottom = h - big[::-1].argmax(axis=0)[cols]
    # Otherwise (touching digits) the columns tell -- but a thin pen's
    # columns mostly cross one stroke, so never less than three quarters of
    # the joined pieces' own height (which two baselines stretch).
    spans = imageprepare._percentile(bottom - top, 90)
    pieces = imageprepare._median((bottom_p - top_p)[substantial])
    return max(spans, 0.75 * pieces) * f


def _cut_paths(sub, height):
    """Candidate cut paths through one joined piece, left to right.

    Starting columns are the minima of the ink profile and the valleys of
    the upper and lower contour (where two digits meet); from each, the path
    of least ink from top to bottom is found by dynamic programming, moving
    at most one cell sideways per row, at most _CUT_WANDER line heights
    from its start and never nearer the sides than _CUT_MARGIN, so that it
    follows the gap between two strokes.

    Args:
        sub: (h, w) bool cells of the piece.
        height: line height in cells.

    Returns:
        list of (h,) int arrays: per row, the first column right of the cut.
    """
    h, w = sub.shape
    margin = max(1, int(round(_CUT_MARGIN * height)))
    if w - 2 * margin < 1:
        return []
    profile = sub.sum(axis=0).astype(float)
    smooth = np.convolve(_pad_edge(profile), np.ones(3) / 3, mode="valid")
    any_ink = sub.any(axis=0)
    top = np.where(any_ink, sub.argmax(axis=0), h).astype(float)
    bottom = np.where(any_ink, h - sub[::-1].argmax(axis=0), 0).astype(float)
    starts = set()
    for signal in (smooth, -top, bottom):
        s = _pad_edge(signal)
        local = (s[1:-1] <= s[:-2]) & (s[1:-1] <= s[2:])
        starts.update((np.flatnonzero(local[margin:w - margin]) + margin).tolist())
    # Between the valleys, starts at a regular pitch too: where two digits
    # overlap, no valley marks the way between them.
    starts.update(range(margin, w - margin, max(1, int(round(_CUT_PITCH * height)))))
    if not starts:
        return []
    starts = np.array(sorted(starts))
    n = len(starts)
    r = max(1, int(round(_CUT_WANDER * height)))
    offsets = np.arange(-r, r + 1)
    cols = starts[:, None] + offsets[None, :]  # (n, 2r+1) columns each path may use
    inside = (cols >= margin) & (cols <= w - margin)
    colc = np.clip(cols, 0, w - 1)
    # Crossing ink costs 1 a cell; straying from the start costs a little,
    # so that among equally clean paths the straightest wins.
    base = np.where(inside, 0.02 * np.abs(offsets)[None, :], np.inf)
    ink = sub.astype(float)[:, colc]  # (h, n, 2r+1): the ink under each path's columns
    padded = np.full((n, 2 * r + 3), np.inf)  # the cost row with an inf border
    padded[:, 1:-1] = base + ink[0]
    back = np.zeros((h, n, 2 * r + 1), np.int8)
    left, middle, right = padded[:, :-2], padded[:, 1:-1], padded[:, 2:]
    best = np.empty_like(middle)
    for y in range(1, h):
        np.minimum(left, middle, out=best)
        np.minimum(best, right, out=best)
        # The move to the cheapest of the three, the leftmost among equals
        # (when neither the left nor the middle one is the cheapest, the
        # right one is).
        back[y] = np.where(left == best, -1, middle != best)
        np.add(best, base, out=middle)
        middle += ink[y]
    cost = middle
    end = cost.argmin(axis=1)
    each = np.arange(n)
    total = cost[each, end]
    # Back from each path's end, its column index (into cols) row by row.
    at = np.empty((h, n), int)
    at[-1] = end
    for y in range(h - 1, 0, -1):
        at[y - 1] = at[y] + back[y, each, at[y]]
    paths = cols[each[:, None], at.T]
    # Nearly the same path from several starts: keep the best; then the best
    # few, as many as the piece's width can hold digits for. Best first: the
    # cuts that cross the fewest strokes (where two digits meet, one stroke
    # or none; through a digit's loop, two), then the least ink, then the
    # nearest the middle. (Ink alone favours any path across a thin pen's
    # lines.)
    # (A path stepping sideways can pass between the cells of a diagonal
    # line one cell thick: spread each ink cell one to the right, and it
    # cannot.)
    wall = sub.copy()
    wall[:, 1:] |= sub[:, :-1]
    on = wall[np.arange(h)[None, :], np.minimum(paths, w - 1)]
    strokes = on[:, 0] + np.count_nonzero(on[:, 1:] & ~on[:, :-1], axis=1)
    order = np.lexsort((np.abs(paths.mean(axis=1) - w / 2), total, strokes))
    # Cuts neither cross nor run close to one another: each pair leaves a
    # primitive between them. (Their mean distance as an integer sum
    # divided once: np.mean's bits.)
    apart = paths[:, None, :] - paths[None, :, :]
    apart = (((apart.min(axis=2) > 0) | (apart.max(axis=2) < 0))
             & (np.abs(apart).sum(axis=2) / h > _CUT_SPACING * height))
    kept = []
    allowed = np.ones(n, bool)  # apart from every cut kept so far (apart is symmetric)
    for i in order:
        if allowed[i]:
            kept.append(i)
            allowed &= apart[i]
    kept = kept[:min(_MAX_CUTS, max(1, int(round(_CUTS_PER_HEIGHT * (w / height - _UNCUT_WIDTH)))))]
    return [paths[i] for i in sorted(kept, key=lambda i: paths[i].mean())]


def _pad_edge(a):
    """np.pad(a, 1, mode="edge") of a 1-D array, without np.pad's general machinery."""
    return np.concatenate((a[:1], a, a[-1:]))


def _primitives(cells, height):
    """Split the ink cells into primitive pieces.

    Returns (bool cell masks, id of the joined piece each came from, ink
    cells its left cut crossed (0 at a piece's own edge)).

    Pieces a cell apart (a dotted or skipping pen) are one piece; a piece
    wide enough to hold two digits is cut along its candidate cut paths.
    Crumbs too small to be a digit's stroke join their nearest primitive.
    """
    grown = imageprepare._filter3(cells, np.maximum)
    labels, n, _ = imageprepare._label(grown)
    prims, blob, cut = [], [], []
    for i in range(n):
        piece = cells & (labels == i)
        box = _box(piece)
        if box is None:
            continue
        x0, y0, x1, y1 = box
        if x1 - x0 < _CUT_MIN_WIDTH * height:
            prims.append(piece)
            blob.append(i)
            cut.append(0.0)
            continue
        sub = piece[y0:y1, x0:x1]
        paths = _cut_paths(sub, height)
        cols = np.arange(x1 - x0)[None, :]
        previous = np.zeros(y1 - y0, int)
        bounds = []
        for p in paths:
            p = np.maximum(p, previous)  # cuts never cross
            bounds.append(p)
            previous = p
        bounds.append(np.full(y1 - y0, x1 - x0))
        previous = np.zeros(y1 - y0, int)
        rows = np.arange(y1 - y0)
        crossed = 0.0
        for n, p in enumerate(bounds):
            part = sub & (cols >= previous[:, None]) & (cols < p[:, None])
            if part.sum() < _SLIVER * sub.sum() and n < len(bounds) - 1:
                # A sliver between two near cuts: that cut is dropped, the
                # sliver belongs to the next part.
                continue
            previous = p
            full = np.zeros_like(cells)
            full[y0:y1, x0:x1] = part
            prims.append(full)
            blob.append(i)
            cut.append(crossed)
            crossed = float(sub[rows, np.minimum(p, x1 - x0 - 1)].sum())
    if len(prims) < 2:
        return prims, blob, cut  # (a lone primitive is no crumb)
    # Crumbs join their nearest primitive (by box gap).
    masses = np.array([p.sum() for p in prims], float)
    boxes = [_box(p) for p in prims]
    crumb = masses < _CRUMB * np.median(masses)
    if crumb.all():
        return prims, blob, cut
    keep = [i for i in range(len(prims)) if not crumb[i]]
    for i in np.flatnonzero(crumb):
        j = min(keep, key=lambda k: imageprepare._gap(boxes[i], boxes[k]))
        prims[j] = prims[j] | prims[i]
    return [prims[i] for i in keep], [blob[i] for i in keep], [cut[i] for i in keep]


def _on_the_line(prims, blob, crossed, height):
    """Keep the primitives on the number's line: a number is written on one.

    The line runs through the median height of the joined pieces; a
    primitive whose middle lies more than _OFF_LINE line heights above or
    below it (a blot of shade in a corner, a mark under the number) is not
    one of its digits. Returns the kept (prims, blob, crossed) and their boxes.
    """
    boxes = [_box(p) for p in prims]
    middle = [0.5 * (b[1] + b[3]) for b in boxes]
    # Each joined piece votes once, at its ink's middle height, however many
    # primitives it was cut into and however big it is (a blot is big).
    # (Middles are halves of whole cells: a plain sum is exact, np.mean's bits.)
    of_piece = {}
    for m, b in zip(middle, blob):
        of_piece.setdefault(b, []).append(m)
    votes = [sum(ms) / len(ms) for _, ms in sorted(of_piece.items())]
    line = imageprepare._median(votes)
    keep = [i for i in range(len(prims)) if abs(middle[i] - line) <= _OFF_LINE * height]
    if not keep:
        return prims, blob, crossed, boxes
    return ([prims[i] for i in keep], [blob[i] for i in keep], [crossed[i] for i in keep],
            [boxes[i] for i in keep])


def _linked(a, b, joined, height):
    """Can two neighbouring primitives (boxes a, b) be parts of one digit?

    Yes when they were cut out of one joined piece, when they overlap or
    touch sideways (the bar of a 5 over its body, the two strokes of an
    open 4 or of a 0), or when one is much shorter than a digit and close
    (a tail, a bar). Two digit-tall pieces side by side with paper between
    them are two digits: the writer left the gap.
    """
    if joined:
        return True
    overlap = min(a[2], b[2]) - max(a[0], b[0])
    if overlap > -_TOUCH_GAP * height:
        return True
    short = min(a[3] - a[1], b[3] - b[1]) < _MIN_HEIGHT * height
    return short and imageprepare._gap(a, b) <= _MAX_INNER_GAP * height


def _stroke_cells(cells):
    """Pen width in cells (2 x area / outline), at least 1."""
    # Edges between ink and paper, the picture's border counting as paper.
    outline = (np.count_nonzero(cells[1:] != cells[:-1]) + np.count_nonzero(cells[:, 1:] != cells[:, :-1])
               + np.count_nonzero(cells[0]) + np.count_nonzero(cells[-1])
               + np.count_nonzero(cells[:, 0]) + np.count_nonzero(cells[:, -1]))
    return max(1.0, 2.0 * float(np.count_nonzero(cells)) / max(outline, 1))


def _grid(inked, height):
    """Analysis cells for the writing: (cell size f, bool cells).

    inked: the pixels holding any ink at all (above _CELL_INK). A cell
    holding one is set: find_writing has already cleared everything but
    the writing, and a 1-px pen line shrunk into a cell is faint.
    """
    f = max(1, int(round(height / _GRID_HEIGHT)))
    return f, _reduce_max(inked, f)


def _candidate_ink(ink, f, member):
    """The ink of a candidate's cells (plus their faint fringe), cropped; and its offset."""
    x0, y0, x1, y1 = _box(member)
    y1p, x1p = min(y1 * f, ink.shape[0]), min(x1 * f, ink.shape[1])
    m = member[y0:y1, x0:x1].repeat(f, axis=0).repeat(f, axis=1)
    crop = ink[y0 * f:y1p, x0 * f:x1p] * m[:y1p - y0 * f, :x1p - x0 * f]
    return crop, (x0 * f, y0 * f)


def _original_box(crop, offset, scale, turn=None):
    """Box of a crop's clear ink in the original image's pixels.

    turn: None, or (radians, centre of the decoded ink, centre of the
    straightened ink) when the writing was rotated by that angle
    (counter-clockwise as shown) to straighten it; the box is then the
    bounding box of the crop's ink turned back.
    """
    on = crop > imageprepare._Pieces.THRESHOLD / 2
    box = _box(on)
    if box is None:
        on = crop > 0
        box = _box(on)
    x0, y0, x1, y1 = box
    ox, oy = offset
    sx, sy = scale
    if turn is None:
        return (int(math.floor((x0 + ox) * sx)), int(math.floor((y0 + oy) * sy)),
                int(math.ceil((x1 + ox) * sx)), int(math.ceil((y1 + oy) * sy)))
    if on.sum() <= 4096:
        # The ink's own pixels turned back, not the corners of its box,
        # which would make the box too big.
        yy, xx = np.nonzero(on)
        xs, ys = np.concatenate([xx, xx + 1]) + ox, np.concatenate([yy, yy + 1]) + oy
    else:
        xs = np.array([x0, x1, x1, x0], float) + ox
        ys = np.array([y0, y0, y1, y1], float) + oy
    a, (cx, cy), (rx, ry) = turn
    dx, dy = xs - rx, ys - ry
    # Turning back is a counter-clockwise turn as shown (y runs down).
    xs = cx + math.cos(a) * dx + math.sin(a) * dy
    ys = cy - math.sin(a) * dx + math.cos(a) * dy
    return (int(math.floor(xs.min() * sx)), int(math.floor(ys.min() * sy)),
            int(math.ceil(xs.max() * sx)), int(math.ceil(ys.max() * sy)))


def _line_angle(ink):
    """Angle (degrees, counter-clockwise as shown) of the line the writing runs along, or 0.

    Digits standing apart (two or more pieces of a digit's size following
    one another along a line) give the line directly (_line_of_pieces).
    Otherwise only a clearly elongated writing (its principal axis at least
    _SLANT_ELONGATION times its width, and wider than tall) has a line to
    speak of: with three or more separate pieces the median slope between
    their centres (Theil-Sen); else (digits joined into one piece) the
    principal axis of the ink, which runs along the line of digits whatever
    each digit's own slant. Only a slant beyond _SLANT_MIN degrees is
    corrected.
    """
    step = max(1, int(max(ink.shape) // 256))
    small = ink[::step, ::step]
    on = small > imageprepare._Pieces.THRESHOLD
    if np.count_nonzero(on) < 10:
        return 0.0
    inked_x = on.any(axis=0).nonzero()[0]
    inked_y = on.any(axis=1).nonzero()[0]
    extent = (inked_x[-1] - inked_x[0], inked_y[-1] - inked_y[0])
    angle = None
    if extent[0] >= _SLANT_APART_WIDE * extent[1]:
        # The pieces are told apart on cells of 1/64 of the writing's longer
        # side: a 2-3 digit number's gaps (1/20 of a digit's height or more)
        # stay open, and labelling costs little (a longer number whose gaps
        # close is measured by its principal axis below, as joined digits are).
        angle = _line_of_pieces(*_pieces_of(_reduce_max(on, max(1, math.ceil(max(on.shape) / 64)))))
    if angle is None:
        angle = _principal_angle(small, on, extent)
    return angle if _SLANT_MIN < abs(angle) <= _SLANT_MAX else 0.0


def _line_of_pieces(n, rows, starts, ends, comp):
    """Angle of the line through separate digit-sized pieces, or None.

    The pieces at least _SLANT_PIECE as long as the longest one are the
    digits (a 1 holds a quarter of an 8's ink, a speck is no digit); the
    line is the median slope between the middles of their boxes (a 7's ink
    sits high and a 4's does not, while both span the line's height), and
    a piece whose middle lies more than half a digit's height off it (a
    blot of shade) is left out. The line counts only when, seen along it,
    each digit ends before the next begins: digits written one after
    another. The pieces of one digit (a 5's bar over its body, the strokes
    of an open 4) lie above or across one another.

    Args:
        n, rows, starts, ends, comp: the pieces as imageprepare._label
            gives them (runs of ink per row, and the piece of each run).
    """
    mass = np.bincount(comp, weights=ends - starts, minlength=n)
    x0, y0 = np.full(n, np.inf), np.full(n, np.inf)
    x1, y1 = np.zeros(n), np.zeros(n)
    np.minimum.at(x0, comp, starts)
    np.maximum.at(x1, comp, ends)
    np.minimum.at(y0, comp, rows)
    np.maximum.at(y1, comp, rows + 1)
    size = np.maximum(x1 - x0, y1 - y0) * (mass >= 0.05 * mass.max())
    big = np.flatnonzero(size >= _SLANT_PIECE * size.max())
    if big.size < 2:
        return None
    cx, cy = 0.5 * (x0 + x1)[big], 0.5 * (y0 + y1)[big]
    i, j = np.triu_indices(big.size, 1)
    apart = np.abs(cx[j] - cx[i]) > 1e-6
    if not apart.any():
        return None
    slope = float(np.median((cy[j] - cy[i])[apart] / (cx[j] - cx[i])[apart]))
    off = cy - slope * cx
    height = float(np.median((y1 - y0)[big]))
    on_line = np.abs(off - np.median(off)) <= 0.5 * height
    if on_line.sum() < 2:
        return None
    # Each piece's run of positions along the line (unit vector (1, slope)).
    lo, hi = np.full(n, np.inf), np.full(n, -np.inf)
    for x in (starts, ends - 1):  # a run's two ends
        along = (x + slope * rows) / math.hypot(1.0, slope)
        np.minimum.at(lo, comp, along)
        np.maximum.at(hi, comp, along)
    lo, hi = lo[big[on_line]], hi[big[on_line]]
    order = np.argsort(lo)
    if np.any(lo[order][1:] < hi[order][:-1]):
        return None
    return math.degrees(math.atan(-slope))


def _pieces_of(mask):
    """(n, rows, starts, ends, comp): imageprepare._label's pieces of a bool mask."""
    _, n, runs = imageprepare._label(mask)
    return (n,) + tuple(runs)


def _principal_angle(small, on, extent):
    """The line's angle from the ink's principal axis (0 when it has none); see _line_angle.

    extent: (width, height) of the ink `on`.
    """
    if extent[0] < _SLANT_WIDE * extent[1]:
        # A line of digits is wider than tall even at 40 degrees; a single
        # slanted 1 or 7, drawn with a thin pen, is long and narrow too.
        # (Decided on the ink's extent, before its pixels are listed.)
        return 0.0
    ys, xs = np.nonzero(on)
    w = small[ys, xs]
    mx, my = np.average(xs, weights=w), np.average(ys, weights=w)
    cov = np.cov(np.stack([xs - mx, ys - my]), aweights=w)
    values, vectors = np.linalg.eigh(cov)
    if values[1] < _SLANT_ELONGATION ** 2 * max(values[0], 1e-9):
        return 0.0
    vx, vy = vectors[:, 1]
    angle = math.degrees(math.atan2(-vy, vx))
    angle = (angle + 90.0) % 180.0 - 90.0  # the line's direction, not its sense
    # Digits standing apart: the median slope between their centres
    # (Theil-Sen), which a blot off the line cannot tilt as it tilts the
    # principal axis.
    labels, n, (rows, starts, ends, comp) = imageprepare._label(on)
    mass = np.bincount(comp, weights=ends - starts, minlength=n)
    big = np.flatnonzero(mass >= 0.05 * mass.max())
    if big.size >= 3:
        inked = labels >= 0
        cx = np.bincount(labels[inked], weights=np.nonzero(inked)[1], minlength=n)[big] / mass[big]
        cy = np.bincount(labels[inked], weights=np.nonzero(inked)[0], minlength=n)[big] / mass[big]
        i, j = np.triu_indices(big.size, 1)
        apart = np.abs(cx[j] - cx[i]) > 1e-6
        if apart.any():
            slope = np.median((cy[j] - cy[i])[apart] / (cx[j] - cx[i])[apart])
            angle = math.degrees(math.atan(-slope))
    return angle


def _ink_size(crop):
    """(width, height) of a crop's clear ink, in its pixels."""
    box = _box(crop > imageprepare._Pieces.THRESHOLD)
    if box is None:
        return (0.0, 0.0)
    x0, y0, x1, y1 = box
    return (float(x1 - x0), float(y1 - y0))


def _lean(crop):
    """Degrees from upright that a crop's ink leans (top to the right: positive), NaN unless a stroke.

    The principal axis of the ink's second moments; a crop counts as one
    straight stroke when that axis is at least _STROKE_ELONGATION times the
    other (the square root of the moments' ratio).
    """
    total = crop.sum()
    if total <= 0:
        return math.nan
    xs, ys = np.arange(crop.shape[1], dtype=np.float32), np.arange(crop.shape[0], dtype=np.float32)
    col, row = crop.sum(axis=0), crop.sum(axis=1)
    mx, my = col @ xs / total, row @ ys / total
    cxx = float(col @ (xs - mx) ** 2 / total)
    cyy = float(row @ (ys - my) ** 2 / total)
    cxy = float((ys - my) @ crop @ (xs - mx) / total)
    spread = math.hypot(cxx - cyy, 2 * cxy)
    major, minor = (cxx + cyy + spread) / 2, (cxx + cyy - spread) / 2
    if major < _STROKE_ELONGATION ** 2 * max(minor, 1e-9):
        return math.nan
    # y grows downwards: a stroke whose top is to the right has x falling as y grows.
    return -math.degrees(0.5 * math.atan2(2 * cxy, cyy - cxx))


def _log_shape(sizes, line_height):
    """(K, 10) log prior of each candidate's shape for each class it could be read as.

    Its width is measured against its own height and, when it is taller
    than the line (two digits on different baselines), against the line's;
    a candidate much shorter than the line is a fragment.
    """
    w = np.maximum(sizes[:, :1], 1.0)
    h = np.maximum(sizes[:, 1:], 1.0)
    lo, hi = _ASPECT_RANGE[None, :, 0], _ASPECT_RANGE[None, :, 1]
    out = np.maximum(0.0, np.maximum(np.log(w / np.minimum(h, line_height) / hi), np.log(lo * h / w)))
    short = np.maximum(0.0, np.log(_MIN_HEIGHT * line_height / h))
    return -0.5 * (out / _ASPECT_SPREAD) ** 2 - 0.5 * (short / _HEIGHT_SPREAD) ** 2


def segment(source, single=False):
    """Find the writing in an image and build its candidate digits (no network).

    Args:
        source: A path (str or os.PathLike) or a PIL.Image.Image.
        single: Read all the ink as one digit (one candidate).

    Returns:
        Segmentation; its `arrays` go to the network in one call.

    Raises:
        ImageError: Unreadable file, or no digit found in it.
    """
    writing = imageprepare.find_writing(source)
    ink, scale = writing.ink, writing.scale
    turn = None
    angle = 0.0 if single else _line_angle(ink)
    if angle:
        # Straighten the line of digits before cutting it into digits.
        turned = np.asarray(Image.fromarray(ink, "F").rotate(-angle, Image.Resampling.BILINEAR, expand=True))
        turn = (math.radians(angle), ((ink.shape[1]) / 2, (ink.shape[0]) / 2),
                ((turned.shape[1]) / 2, (turned.shape[0]) / 2))
        ink = np.clip(turned, 0.0, 1.0)
    if single:
        crop, offset = ink, (0, 0)
        box = _original_box(crop, offset, scale)
        size = np.array([[box[2] - box[0], box[3] - box[1]]], float)
        return Segmentation(imageprepare.to_mnist(ink)[None], [box], [(0, 1)], 2, size,
                            float(size[0, 1]), np.full(2, -1.0))
    inked = ink > _CELL_INK
    height_px = _line_height(inked, max(1, math.ceil(max(ink.shape) / 256)))
    f, cells = _grid(inked, height_px)
    height = height_px / f
    prims, blob, crossed = _primitives(cells, height)
    prims, blob, crossed, boxes = _on_the_line(prims, blob, crossed, height)
    order = sorted(range(len(prims)), key=lambda i: boxes[i][0] + boxes[i][2])
    prims = [prims[i] for i in order]
    boxes = [boxes[i] for i in order]
    blob = [blob[i] for i in order]
    crossed = [crossed[i] for i in order]
    # A path that cuts joined ink pays for it, the more the more strokes
    # the cut crosses: only the network's clear preference makes it cut.
    stroke = _stroke_cells(cells)
    cut_strokes = np.full(len(prims) + 1, -1.0)
    for i in range(1, len(prims)):
        if blob[i] == blob[i - 1]:
            cut_strokes[i] = crossed[i] / stroke
    runs = []
    for i in range(len(prims)):
        x0, x1 = boxes[i][0], boxes[i][2]
        longest = None
        for j in range(i, len(prims)):
            if j > i and not _linked(boxes[j - 1], boxes[j], blob[j - 1] == blob[j], height):
                break
            x0, x1 = min(x0, boxes[j][0]), max(x1, boxes[j][2])
            if j > i and x1 - x0 > _MAX_WIDTH * height:
                break
            if j < i + _MAX_RUN:
                runs.append((i, j + 1))
            else:
                longest = (i, j + 1)
        # A digit cut (or broken) into more primitives than a run holds is
        # still a candidate as a whole: the longest linked run that is no
        # wider than a digit.
        if longest:
            runs.append(longest)
    arrays, out_boxes, sizes, crops = [], [], [], []
    for i, j in runs:
        member = prims[i].copy()
        for k in range(i + 1, j):
            member |= prims[k]
        # The candidate's cells and their faint fringe, but not the ink
        # cells of the rest.
        grown = imageprepare._filter3(member, np.maximum) & (member | ~cells)
        crop, offset = _candidate_ink(ink, f, grown)
        arrays.append(imageprepare.to_mnist(crop))
        out_boxes.append(_original_box(crop, offset, scale, turn))
        sizes.append(_ink_size(crop))
        crops.append((crop, offset))
    edges = runs
    return Segmentation(np.array(arrays, np.float32).reshape(-1, 28, 28), out_boxes, edges,
                        len(prims) + 1, np.array(sizes, float).reshape(-1, 2), height_px, cut_strokes,
                        crops, turn is None and tuple(scale) == (1, 1))


# --------------------------------------------------------------------------
# Decoding: the best path through the segmentation graph
# --------------------------------------------------------------------------

def decode(seg, probs, digitness=None, not_a_number=True):
    """Pick the best reading of a segmentation from its candidates' scores.

    A candidate k read as class c scores probs[k, c] x the shape prior of
    its best class x digitness[k] ** _DIGITNESS_POWER x the prior of the cut it starts at
    (if any); a path's score is the product over its candidates. The whole
    ink, if the network refuses it as a digit, may also read "?" (see
    _LOG_NOT_A_NUMBER) when that beats every digit path: then `number` is
    "?", its one Digit is the whole ink with the network's guess as its
    value, and the digit readings are its alternatives. The best path also
    reads "?" when two of its strokes lean apart (see _LEAN_APART): then its
    Digits are the pieces, the probability that of the path. The reading's probability is
    the summed score of the paths that spell its number over the summed
    score of all paths and class choices (the forward algorithm). The
    number itself is the one whose best single path scores highest.

    Args:
        seg: Segmentation from segment().
        probs: (K, 10) softmax of the network for seg.arrays.
        digitness: (K,) in [0, 1], or None for all ones.
        not_a_number: let the whole ink read "?" (off for --accept-all).

    Returns:
        Reading.
    """
    probs = np.asarray(probs, np.float64)
    k = len(seg.edges)
    digitness = np.ones(k) if digitness is None else np.asarray(digitness, np.float64)
    starts = np.array([s for s, _ in seg.edges])
    cut = seg.cut_strokes[starts]
    log_cut = np.where(cut >= 0, _LOG_PER_STROKE * cut, 0.0)
    # A candidate's shape prior is that of the digit the network reads in it: the prior
    # weighs cuts against each other, it does not overrule the network's class (a 7
    # narrower than MNIST's was read as a 1 while the prior was per class).
    shape = _log_shape(seg.sizes, seg.line_height)[np.arange(k), probs.argmax(axis=1)][:, None]
    log_w = (shape + log_cut[:, None]
             + _DIGITNESS_POWER * np.log(np.maximum(digitness, 1e-9))[:, None])
    log_score = np.log(np.maximum(probs, 1e-12)) + log_w  # (K, 10)
    out_of = [[] for _ in range(seg.nodes)]
    for idx, (s, e) in enumerate(seg.edges):
        out_of[s].append((idx, e))

    # Forward: log of the summed score of all paths and classes to each node.
    log_z = np.full(seg.nodes, -np.inf)
    log_z[0] = 0.0
    # Beam: per node, the best partial readings {number: (log score, candidates)}.
    beams = [dict() for _ in range(seg.nodes)]
    beams[0][""] = (0.0, 0.0, ())
    for node in range(seg.nodes):
        if not np.isfinite(log_z[node]):
            continue
        here = sorted(beams[node].items(), key=lambda kv: -kv[1][0])[:_BEAM]
        for idx, end in out_of[node]:
            total = np.logaddexp.reduce(log_score[idx])
            log_z[end] = np.logaddexp(log_z[end], log_z[node] + total)
            top = np.argsort(-log_score[idx])[:3]
            for number, (best, summed, path) in here:
                for c in top:
                    key = number + str(int(c))
                    new = best + log_score[idx, c]
                    new_sum = summed + log_score[idx, c]
                    old = beams[end].get(key)
                    if old is None:
                        beams[end][key] = (new, new_sum, path + (idx,))
                    else:
                        # The same number by another path: the better path
                        # is the reading (ranking by the sum instead favours
                        # numbers with many ways to merge digits, as "87"
                        # for "847"), and both count for its probability.
                        beams[end][key] = (max(new, old[0]), np.logaddexp(old[1], new_sum),
                                           path + (idx,) if new > old[0] else old[2])
    final = sorted(beams[-1].items(), key=lambda kv: -kv[1][0])
    norm = log_z[-1]
    whole = [i for i, (s, e) in enumerate(seg.edges) if s == 0 and e == seg.nodes - 1 and digitness[i] < 0.5]
    if whole and not_a_number:
        # "?": the whole ink as one thing that is no digit (see _LOG_NOT_A_NUMBER). It
        # overrides the digit paths only when it beats the best of them, so the
        # probabilities of digit readings are those of the digit paths alone.
        i = whole[0]
        log_q = _LOG_NOT_A_NUMBER + _DIGITNESS_POWER * np.log(max(1.0 - digitness[i], 1e-9))
        if log_q > final[0][1][0]:
            norm = np.logaddexp(norm, log_q)
            digit = Digit(int(probs[i].argmax()), seg.arrays[i], tuple(seg.boxes[i]), probs[i].astype(np.float32),
                          float(digitness[i]))
            runners = sorted(final, key=lambda kv: -kv[1][1])[:5]
            return Reading("?", float(np.exp(log_q - norm)), [digit],
                           [(n, float(np.exp(t - norm))) for n, (_, t, _) in runners])
    number, (_, summed, path) = final[0]
    digits = [Digit(int(v), seg.arrays[i], tuple(seg.boxes[i]), probs[i].astype(np.float32),
                    float(digitness[i])) for v, i in zip(number, path)]
    if not_a_number and _leans_apart(seg, path):
        # Strokes of one drawn shape (a V, a w), not a number (see _LEAN_APART): its pieces
        # are kept as the guess, and the digit readings are the alternatives.
        runners = sorted(final, key=lambda kv: -kv[1][1])[:5]
        return Reading("?", float(np.exp(summed - norm)), digits,
                       [(n, float(np.exp(t - norm))) for n, (_, t, _) in runners])
    runners = sorted(final[1:], key=lambda kv: -kv[1][1])[:5]
    alternatives = [(n, float(np.exp(t - norm))) for n, (_, t, _) in runners]
    return Reading(number, float(np.exp(summed - norm)), digits, alternatives)


def _leans_apart(seg, path):
    """Whether two neighbouring candidates of `path`, joined by a cut, are strokes leaning apart.

    Args:
        seg: the Segmentation.
        path: candidate indices, left to right.

    Returns:
        bool: some pair is joined by a cut through ink, is one straight stroke
        each, and leans apart by more than _LEAN_APART degrees.
    """
    if seg.crops is None:  # a `single` read: one candidate
        return False
    for a, b in zip(path[:-1], path[1:]):
        # Measured only here, for the few pairs on the best path that a cut joins (≈ 0.07 ms a
        # candidate on a large crop: too dear for every candidate).
        if seg.cut_strokes[seg.edges[b][0]] >= 0:
            if abs(_lean(seg.crops[a][0]) - _lean(seg.crops[b][0])) > _LEAN_APART:  # NaN: no stroke, False
                return True
    return False


def read(source, classify, single=False):
    """Read the number in an image: segment, one classify call, decode.

    Args:
        source: A path (str or os.PathLike) or a PIL.Image.Image.
        classify: function (K, 28, 28) float32 -> (probs (K, 10), digitness (K,)).
        single: Read all the ink as one digit.

    Returns:
        Reading.

    Raises:
        ImageError: Unreadable file, or no digit found in it.
    """
    seg = segment(source, single=single)
    probs, digitness = classify(seg.arrays)
    return decode(seg, probs, digitness)
