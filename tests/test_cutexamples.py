"""The number reader's candidates as training examples (cutexamples.py)."""

from types import SimpleNamespace

import numpy as np

import cutexamples
import imageprepare


def test_compose_draws_every_digit_at_about_the_chosen_height(mnist):
    digits = mnist.train.images[:3].reshape(3, 28, 28)
    image, inks = cutexamples.compose(digits, np.random.default_rng(0))
    assert image.mode == "L" and len(inks) == 3
    heights = np.array([a.shape[0] for a in inks])
    assert np.all(np.abs(heights - cutexamples._HEIGHT) <= cutexamples._SIZE_JITTER * cutexamples._HEIGHT + 1)
    # Each digit's ink is in the image (dark on white): its darkest pixels match the inks' peaks.
    assert np.asarray(image).min() <= 255 * (1 - max(a.max() for a in inks)) + 1


def test_a_candidate_showing_one_digit_gets_its_label_and_two_merged_digits_get_minus_one(mnist):
    a, b = (mnist.train.images[i].reshape(28, 28) for i in (0, 1))
    pair = np.concatenate([a[:, 4:24], b[:, 4:24]], axis=1)
    seg = SimpleNamespace(arrays=np.stack([imageprepare.to_mnist(x) for x in (a, b, pair)]),
                          edges=[(0, 1), (1, 2), (0, 2)], sizes=np.array([[20, 20], [20, 20], [40, 20]], float))
    labels = mnist.train.labels[:2]
    assert cutexamples.label_candidates(seg, [a, b], labels) == [int(labels[0]), int(labels[1]), -1]


def test_a_digit_like_part_of_a_right_cut_is_a_fragment_and_no_digit(mnist):
    zero = mnist.train.images[mnist.train.labels == 0][0].reshape(28, 28)
    cols = np.flatnonzero(zero.max(axis=0) > 0.3)
    right = zero.copy()
    right[:, :(cols[0] + cols[-1]) // 2 + 2] = 0  # the right side of a 0: a ")" much like a 1
    seg = SimpleNamespace(arrays=np.stack([imageprepare.to_mnist(zero), imageprepare.to_mnist(right)]),
                          edges=[(0, 2), (1, 2)], sizes=np.array([[16, 20], [7, 20]], float))
    assert cutexamples.label_candidates(seg, [zero], [0]) == [0, -1]


def test_bank_is_half_labelled_digits_half_non_digits_and_repeatable(mnist):
    images, labels = mnist.train.images[:500], mnist.train.labels[:500]
    x, y = cutexamples.bank(images, labels, 40, seed=3)
    assert x.shape == (40, 784) and x.dtype == np.float32 and y.shape == (40,)
    assert (y == -1).sum() == 20 and set(y[y >= 0]) <= set(range(10))
    x2, y2 = cutexamples.bank(images, labels, 40, seed=3)
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)
