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
readnumber.segment. Where each digit was drawn is known, so each
candidate's ink is split by the digit it came from: one holding one digit
(with at most a sliver of a neighbour) is a labelled example; a fragment,
or parts of two digits, is a non-digit (label -1), trained like
outliers.py's towards the uniform distribution.

Only numpy and Pillow are used (and readnumber); importing does nothing.
"""

import numpy as np
from PIL import Image

import readnumber

# Where each digit was drawn is known, so each candidate's ink can be split
# by the digit it came from (where two digits cross, it is both's). Holding
# more than _STRAY of a second digit's clear ink takes in a neighbour (a 4
# with the 1 it touches, which looks like a 4 alone): no digit. Otherwise a
# candidate is its digit's right cut, with whatever sliver of a neighbour a
# cut through overlapping digits cannot avoid, when it holds about as much
# of the digit as its best such cut (within _AS_GOOD) and at least _HOLDS:
# the cells where a digit crosses its neighbour may go to the neighbour, so
# even a right cut can miss part of it. Holding less than _PART, or _WORSE
# less than the best cut, is a fragment (a 0 cut into "C" and ")"): no
# digit. Between, no label. Set by eye on contact sheets of the candidates
# of 150 numbers of training digits. Against labels by likeness to the
# digit drawn alone (cosine similarity of the 28×28 inputs), with the
# network trained on each (--fast, seed 0; 200 numbers per kind of training
# digits): touching numbers read 24.7 -> 26.5 %, gapped 91.5 -> 93.0 %,
# non-digits answered "?" 75.5 -> 69.2 %.
_STRAY = 0.15
_HOLDS = 0.7
_AS_GOOD = 0.1
_WORSE = 0.25
_PART = 0.6
# Clear ink, as imageprepare's pieces count it; any ink.
_CLEAR = 0.3
_ANY = 0.05

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


def _held(seg, inks, origins):
    """(K, n): the share of each digit's clear ink that each candidate holds."""
    height = max(y + c.shape[0] for c, (_, y) in seg.crops)
    width = max(x + c.shape[1] for c, (x, _) in seg.crops)
    for a, (c, r) in zip(inks, origins):
        height, width = max(height, r + a.shape[0]), max(width, c + a.shape[1])
    owned = np.zeros((len(inks), height, width), bool)
    for j, (a, (c, r)) in enumerate(zip(inks, origins)):
        owned[j, r:r + a.shape[0], c:c + a.shape[1]] = a > _CLEAR
    total = np.maximum(owned.sum(axis=(1, 2)), 1)
    held = np.zeros((len(seg.crops), len(inks)))
    for k, (crop, (x, y)) in enumerate(seg.crops):
        # A digit's clear ink is held where the candidate has any ink (its
        # faint fringe included).
        on = crop > _ANY
        held[k] = (owned[:, y:y + crop.shape[0], x:x + crop.shape[1]] & on).sum(axis=(1, 2)) / total
    return held


def label_candidates(seg, inks, origins, labels):
    """Each candidate's label: the digit it holds, or -1 (no digit), or None (unclear).

    Args:
        seg: readnumber.Segmentation of a composed number, cut as drawn
            (seg.as_drawn: its crops are in the image's pixels).
        inks, origins: each digit's ink alone and where it was drawn, as
            compose returns them.
        labels: the digits' classes.

    Returns:
        list of int or None, one per candidate.
    """
    held = _held(seg, inks, origins)
    most = held.argmax(axis=1)
    share = held[np.arange(len(held)), most]
    second = np.sort(held, axis=1)[:, -2] if len(inks) > 1 else np.zeros(len(held))
    alone = second <= _STRAY
    # The best cut of each digit that takes in no neighbour: cells of a digit
    # pushed into its neighbour go to the neighbour's pieces, so even its
    # right cut may hold only part of its ink.
    best = np.zeros(len(inks))
    np.maximum.at(best, most[alone], share[alone])
    out = []
    for k in range(len(held)):
        if not alone[k] or share[k] < _PART or share[k] < best[most[k]] - _WORSE:
            out.append(-1)
        elif share[k] >= max(_HOLDS, best[most[k]] - _AS_GOOD):
            out.append(int(labels[most[k]]))
        else:
            out.append(None)
    return out


def bank(images, labels, count, seed):
    """`count` candidates cut from made-up numbers, half right cuts and half wrong ones.

    The reader makes about six wrong cuts for each right one; half and
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
        if not seg.as_drawn:
            continue  # shrunk or straightened: where each digit lies in it is not known
        for a, t in zip(seg.arrays, label_candidates(seg, inks, origins, labels[idx])):
            if t is not None:
                (wrong if t < 0 else right).append((a.reshape(784), t))
    both = right[:count // 2] + wrong[:count - count // 2]
    return np.stack([a for a, _ in both]).astype(np.float32), np.array([t for _, t in both], np.int64)
