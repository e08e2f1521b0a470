"""Training examples cut out of made-up numbers exactly as the number reader cuts them.

The number reader (readnumber.py) over-segments a number and lets the
network judge every candidate: a whole digit, a digit with a bit of its
touching neighbour, a fragment, two digits merged. A network trained on
clean single digits alone reads correctly cut digits of a touching number
poorly (the neighbour's stroke at its edge) and reads fragments and merged
pairs as confident digits. LeCun, Bottou, Bengio and Haffner (1998, §VI-VII)
trained their recogniser on the segmenter's own candidates for this reason:
the right cuts with their labels, the wrong ones as "no digit".

Here numbers of 1-4 MNIST *training* digits are laid out the way people
write them (mostly pushed into one another until they touch or overlap,
sometimes with gaps), drawn into an image, and segmented by
readnumber.segment. Each candidate is compared with every digit of the
number prepared alone: one that looks like one of them is a labelled
example; one that looks like none (a fragment, or parts of two digits) is a
non-digit (label -1), trained like outliers.py's towards the uniform
distribution.

Only numpy and Pillow are used (and readnumber); importing does nothing.
"""

import numpy as np
from PIL import Image

import imageprepare
import readnumber

# A candidate is compared with each digit alone, prepared the same way
# (cosine similarity of the 28×28 arrays). At or above RIGHT_SIMILAR it is
# that digit, perhaps with the sliver of a neighbour that a cut through
# overlapping digits cannot avoid; below WRONG_SIMILAR it is no digit (a
# fragment, or parts of two neighbours); between, neither, and not used.
# Set by eye on contact sheets of 2,125 candidates of 150 numbers of
# training digits in bands of 0.1: at 0.55-0.6 most are fragments and
# pairs, at 0.7-0.8 most are digits with a sliver of a neighbour.
RIGHT_SIMILAR = 0.75
WRONG_SIMILAR = 0.55
# A part of a right cut is a fragment when its ink box has less than this
# share of the right cut's area; more of the ink than a right cut is a
# merge when this much wider (a crumb or a sliver changes neither much).
_SMALLER = 0.8
_WIDER = 1.2
# Where each digit was drawn is known: a candidate whose box edges are all
# within _FIT (x the digit's height) of one digit's ink box is that digit's
# right cut; one whose box holds _TWO of two digits' ink is a merge.
_FIT = 0.1
_TWO = 0.5

# How the numbers are made. Digit height in px (the reader works on a grid
# of its own, so the size matters little), the spread of heights and
# baselines (x height), the share of neighbours pushed into one another, and
# how far past touching (x the pushed digit's width).
_HEIGHT = 48
_SIZE_JITTER = 0.15
_BASELINE_JITTER = 0.1
_TOUCHING = 0.75
_OVERLAP = 0.2
_GAP = (0.05, 0.4)
_MARGIN = 6


def _touch_x(prev, a, y):
    """Left edge for `a` (top at y) where its ink first touches `prev` = (array, x, y), row by row."""
    b, bx, by = prev
    dy = int(round(y - by))
    need = []
    on_a, on_b = a > 0.3, b > 0.3
    for r in range(a.shape[0]):
        rb = r + dy
        if 0 <= rb < b.shape[0] and on_a[r].any() and on_b[rb].any():
            need.append(bx + b.shape[1] - on_b[rb][::-1].argmax() - on_a[r].argmax())
    return max(need) if need else bx + b.shape[1]


def compose(digits, rng):
    """Lay MNIST digits side by side like a written number.

    Args:
        digits: (n, 28, 28) float arrays, ink = 1.
        rng: numpy Generator.

    Returns:
        (image, inks, origins): a black-on-white "L" PIL image of the
        number; each digit's ink alone at the size it was drawn, left to
        right; and where each was drawn, (column, row) of its top left in
        the image's pixels.
    """
    placed = []
    x = 0.0
    for d in digits:
        rows = np.flatnonzero((d > 0.05).any(axis=1))
        cols = np.flatnonzero((d > 0.05).any(axis=0))
        d = d[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
        h = _HEIGHT * (1 + rng.uniform(-_SIZE_JITTER, _SIZE_JITTER))
        size = (max(1, round(d.shape[1] * h / d.shape[0])), max(1, round(h)))
        a = np.asarray(Image.fromarray(d.astype(np.float32), "F").resize(size, Image.Resampling.BILINEAR))
        y = rng.normal(0, _BASELINE_JITTER) * _HEIGHT
        if placed and rng.random() < _TOUCHING:
            x = _touch_x(placed[-1], a, y) - rng.uniform(0, _OVERLAP) * a.shape[1]
        placed.append((a, x, y))
        x += a.shape[1] + rng.uniform(*_GAP) * _HEIGHT
    top = min(y for _, _, y in placed)
    left = min(x for _, x, _ in placed)
    height = int(max(y - top + a.shape[0] for a, _, y in placed)) + 2 * _MARGIN
    width = int(max(x - left + a.shape[1] for a, x, _ in placed)) + 2 * _MARGIN
    ink = np.zeros((height, width), np.float32)
    origins = []
    for a, x, y in placed:
        r, c = int(round(y - top)) + _MARGIN, int(round(x - left)) + _MARGIN
        ink[r:r + a.shape[0], c:c + a.shape[1]] = np.maximum(ink[r:r + a.shape[0], c:c + a.shape[1]], a)
        origins.append((c, r))
    image = Image.fromarray((255 * (1 - np.clip(ink, 0, 1))).astype(np.uint8), "L")
    return image, [a for a, _, _ in placed], origins


def _placement(boxes, inks, origins):
    """How candidates sit on the digits as drawn.

    Returns:
        (fit, cover): (K, n) the largest distance of a candidate's box edge
        from the digit's ink box edge (x the digit's height), and (K, n)
        the share of each digit's clear ink inside each candidate's box.
    """
    fit = np.zeros((len(boxes), len(inks)))
    cover = np.zeros((len(boxes), len(inks)))
    for j, (a, (c, r)) in enumerate(zip(inks, origins)):
        on = a > 0.3
        total = max(int(on.sum()), 1)
        rows, cols = np.flatnonzero(on.any(axis=1)), np.flatnonzero(on.any(axis=0))
        own = np.array([c + cols[0], r + rows[0], c + cols[-1] + 1, r + rows[-1] + 1], float)
        for k, (left, top, right, bottom) in enumerate(boxes):
            fit[k, j] = np.abs(np.array([left, top, right, bottom], float) - own).max() / (own[3] - own[1])
            cover[k, j] = on[max(top - r, 0):max(bottom - r, 0), max(left - c, 0):max(right - c, 0)].sum() / total
    return fit, cover


def label_candidates(seg, inks, origins, labels):
    """Each candidate's label: the digit it shows, or -1 (no digit), or None (unclear).

    A candidate is that digit when it looks like the digit alone, or when
    its box holds nearly all of one digit's ink and little of any other:
    the right cut of a digit pushed into its neighbour, sliver and all,
    which is what the reader must read in a touching number. A strict part
    of a right cut, clearly smaller, is a fragment of that digit (a 0 cut
    into "C" and ")" that the network must not read as 6 and 1), however
    digit-like; a candidate holding much of two digits, or clearly wider
    than a right cut it contains, takes in a neighbour. Both are no digit,
    as is any candidate like no digit at all.

    Args:
        seg: readnumber.Segmentation of a composed number (its arrays,
            boxes, edges and sizes are used).
        inks, origins: each digit's ink alone and where it was drawn, as
            compose returns them.
        labels: the digits' classes.

    Returns:
        list of int or None, one per candidate.
    """
    alone = np.stack([imageprepare.to_mnist(a) for a in inks]).reshape(len(inks), 784)
    alone /= np.maximum(np.linalg.norm(alone, axis=1, keepdims=True), 1e-6)
    cands = seg.arrays.reshape(len(seg.arrays), 784)
    similar = (cands / np.maximum(np.linalg.norm(cands, axis=1, keepdims=True), 1e-6)) @ alone.T  # K×n
    fit, cover = _placement(seg.boxes, inks, origins)  # K×n each
    at = fit.argmin(axis=1)
    best = similar.argmax(axis=1)
    right = similar[np.arange(len(cands)), best] >= RIGHT_SIMILAR
    in_place = (fit[np.arange(len(cands)), at] <= _FIT) & (similar[np.arange(len(cands)), at] >= WRONG_SIMILAR)
    best = np.where(right, best, at)
    # Most of two digits' ink is a merge, however much it looks like one of
    # them (a 4 with the 1 it touches looks like a 4 alone).
    merged = (cover >= _TWO).sum(axis=1) >= 2
    right = (right | in_place) & ~merged
    out = []
    for k, (start, end) in enumerate(seg.edges):
        if right[k]:
            out.append(int(labels[best[k]]))
            continue
        width, height = seg.sizes[k]
        part_or_more = merged[k]
        for j in np.flatnonzero(right):
            s, e = seg.edges[j]
            w, h = seg.sizes[j]
            inside = s <= start and end <= e and (start, end) != (s, e)
            around = start <= s and e <= end and (start, end) != (s, e)
            part_or_more |= (inside and width * height < _SMALLER * w * h) or (around and width > _WIDER * w)
        if part_or_more or similar[k, best[k]] < WRONG_SIMILAR:
            out.append(-1)
        else:
            out.append(None)
    return out


def bank(images, labels, count, seed):
    """`count` candidates cut from made-up numbers, half right cuts and half wrong ones.

    The reader makes about three wrong cuts for each right one; half and
    half keeps the non-digits from outweighing the digits they were cut from.

    Args:
        images: (N, 784) float32 MNIST training digits, ink = 1.
        labels: (N,) their classes.
        count: how many candidates (even).
        seed: the same seed gives the same examples.

    Returns:
        ((count, 784) float32 prepared like the reader prepares them,
         (count,) int64 labels, -1 for no digit).
    """
    rng = np.random.default_rng(seed)
    right, wrong = [], []
    while len(right) < count // 2 or len(wrong) < count // 2:
        idx = rng.choice(len(images), int(rng.integers(1, 5)), replace=False)
        image, inks, origins = compose(images[idx].reshape(-1, 28, 28), rng)
        seg = readnumber.segment(image)
        for a, t in zip(seg.arrays, label_candidates(seg, inks, origins, labels[idx])):
            if t is not None:
                (wrong if t < 0 else right).append((a.reshape(784), t))
    both = right[:count // 2] + wrong[:count - count // 2]
    return np.stack([a for a, _ in both]).astype(np.float32), np.array([t for _, t in both], np.int64)
