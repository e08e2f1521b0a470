"""The number reader's candidates as training examples (cutexamples.py)."""

from types import SimpleNamespace

import numpy as np

import cutexamples
import imageprepare


def test_compose_draws_every_digit_at_about_the_chosen_height(mnist):
    digits = mnist.train.images[:3].reshape(3, 28, 28)
    image, inks, origins = cutexamples.compose(digits, np.random.default_rng(0))
    assert image.mode == "L" and len(inks) == 3
    heights = np.array([a.shape[0] for a in inks])
    assert np.all(np.abs(heights - cutexamples._HEIGHT) <= cutexamples._SIZE_JITTER * cutexamples._HEIGHT + 1)
    # Each digit's ink is in the image (dark on white): its darkest pixels match the inks' peaks.
    assert np.asarray(image).min() <= 255 * (1 - max(a.max() for a in inks)) + 1


def _box(ink, origin):
    """Ink box of `ink` drawn at `origin` (column, row), as readnumber gives boxes."""
    rows, cols = np.flatnonzero(ink.max(axis=1) > 0.3), np.flatnonzero(ink.max(axis=0) > 0.3)
    return (origin[0] + cols[0], origin[1] + rows[0], origin[0] + cols[-1] + 1, origin[1] + rows[-1] + 1)


def _number(mnist, classes, overlap):
    """Training digits of `classes` side by side, each pushed `overlap` px into its left neighbour.

    Returns (image ink, inks, origins, labels).
    """
    inks, origins, x = [], [], 0
    for c in classes:
        d = mnist.train.images[mnist.train.labels == c][0].reshape(28, 28)
        cols = np.flatnonzero(d.max(axis=0) > 0.05)
        d = d[:, cols[0]:cols[-1] + 1]
        inks.append(d)
        origins.append((x, 0))
        x += d.shape[1] - overlap
    image = np.zeros((28, max(c + d.shape[1] for d, (c, _) in zip(inks, origins))), np.float32)
    for d, (c, _) in zip(inks, origins):
        image[:, c:c + d.shape[1]] = np.maximum(image[:, c:c + d.shape[1]], d)
    return image, inks, origins, list(classes)


def _segmentation(image, boxes, edges):
    """A stand-in for readnumber.Segmentation whose candidates are all the image's ink inside `boxes`."""
    crops = [(image[t:b, l:r], (l, t)) for l, t, r, b in boxes]
    arrays = [imageprepare.to_mnist(c) for c, _ in crops]
    return SimpleNamespace(arrays=np.stack(arrays), boxes=boxes, edges=edges, crops=crops, as_drawn=True,
                           sizes=np.array([[r - l, b - t] for l, t, r, b in boxes], float))


def test_a_candidate_holding_one_digit_gets_its_label_and_two_merged_digits_get_minus_one(mnist):
    image, inks, origins, labels = _number(mnist, (2, 5), overlap=-4)  # a gap of 4 px
    a, b = (_box(d, o) for d, o in zip(inks, origins))
    pair = (a[0], min(a[1], b[1]), b[2], max(a[3], b[3]))
    seg = _segmentation(image, [a, b, pair], [(0, 1), (1, 2), (0, 2)])
    assert cutexamples.label_candidates(seg, inks, origins, labels) == [2, 5, -1]


def test_a_digit_with_the_narrow_digit_it_touches_is_a_merge(mnist):
    image, inks, origins, labels = _number(mnist, (4, 1), overlap=7)
    four, one = (_box(d, o) for d, o in zip(inks, origins))
    both = (four[0], min(four[1], one[1]), one[2], max(four[3], one[3]))
    seg = _segmentation(image, [both], [(0, 2)])
    assert cutexamples.label_candidates(seg, inks, origins, labels) == [-1]


def test_a_right_cut_keeps_its_label_with_a_sliver_of_the_neighbour_pushed_into_it(mnist):
    image, inks, origins, labels = _number(mnist, (3, 7), overlap=2)
    three = _box(inks[0], origins[0])
    seg = _segmentation(image, [three], [(0, 1)])
    held = cutexamples._held(seg, inks, origins)[0]
    assert 0 < held[1] <= cutexamples._STRAY  # the 7's end is in it
    assert cutexamples.label_candidates(seg, inks, origins, labels) == [3]


def test_the_best_cut_of_a_digit_is_its_digit_even_missing_part_of_its_ink(mnist):
    # Where a digit crosses its neighbour, the cells can go to the neighbour's pieces.
    image, inks, origins, labels = _number(mnist, (7,), overlap=0)
    left, top, right, bottom = _box(inks[0], origins[0])
    on = image > cutexamples._CLEAR
    cols = np.cumsum(on.sum(axis=0)) / on.sum()
    cut = int(np.searchsorted(cols, 0.8))  # keeps about 80 % of the 7's ink
    seg = _segmentation(image, [(left, top, cut, bottom)], [(0, 1)])
    assert cutexamples.label_candidates(seg, inks, origins, labels) == [7]


def test_a_part_of_a_digit_much_smaller_than_its_best_cut_is_a_fragment(mnist):
    image, inks, origins, labels = _number(mnist, (0,), overlap=0)
    zero = _box(inks[0], origins[0])
    half = (zero[0] + zero[2]) // 2 + 2  # the right side of a 0: a ")" much like a 1
    seg = _segmentation(image, [zero, (half, zero[1], zero[2], zero[3])], [(0, 2), (1, 2)])
    assert cutexamples.label_candidates(seg, inks, origins, labels) == [0, -1]


def test_bank_is_half_labelled_digits_half_non_digits_and_repeatable(mnist):
    images, labels = mnist.train.images[:500], mnist.train.labels[:500]
    x, y = cutexamples.bank(images, labels, 40, seed=3)
    assert x.shape == (40, 784) and x.dtype == np.float32 and y.shape == (40,)
    assert (y == -1).sum() == 20 and set(y[y >= 0]) <= set(range(10))
    x2, y2 = cutexamples.bank(images, labels, 40, seed=3)
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)
