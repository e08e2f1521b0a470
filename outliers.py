"""Non-digits for training: what the CNN learns to give no digit to (outlier exposure).

A network trained on digits alone spreads no doubt over anything else: a
letter, a star or two digits squeezed into one box come out as some digit at
99 %. Outlier exposure (Hendrycks, Mazeika, Dietterich, ICLR 2019, "Deep
anomaly detection with outlier exposure") trains the same network on extra
images that are no digit, with the uniform distribution over the ten digits
as their target; its softmax then separates digits from non-digits far
better (notadigit.py has the figures). The network itself is unchanged.

The non-digits here come from generators of their own, apart from the ones
the project measures on (tests/nondigits.py: handwritten letters, symbols,
shapes, scribbles):

- doodles: a few random strokes, or a closed outline with marks inside or a
  second loop beside it (a digit's loops are empty);
- typed glyphs of Pillow's built-in font, letters and symbols that resemble
  no digit, slanted, stretched, rotated and emboldened;
- two digits of the batch squeezed into one box, as a wrong cut of a number
  would deliver them (the number reader must score such a candidate low);
- digits turned on their side (all but 0, 1 and 8, which stay digit-like).

Doodles and glyphs go through `imageprepare.to_mnist`, so they look exactly
like what the predict scripts feed the network.
"""

import numpy as np
from PIL import Image, ImageDraw, ImageFont

import imageprepare
from quiet_tensorflow import tf

# Typed glyphs that resemble no digit. Left out: O o Q D C c U (0), I l i j J T L t r { } | / \ ! (1),
# Z z (2), S s $ (5), G b (6), B (8), g q p a d y P (9), and "-" "_" "." "," ":" (dashes and
# dots); also the glyphs of the shapes held out of every choice in tests/nondigits.py
# (K k W w h # @ ~), so figures on those stay honest.
GLYPHS = "AEFHMNRVXYefmnuvx%&*+<=>?^"

_CANVAS = 112  # px: a doodle or glyph is drawn here, then prepared by to_mnist like a user's image


def _doodle(rng):
    """A few random strokes, or a closed outline with marks inside or a loop beside it."""
    img = Image.new("L", (_CANVAS, _CANVAS), 0)
    draw = ImageDraw.Draw(img)
    pen = int(rng.integers(5, 12))
    if rng.random() < 0.5:
        centre, radius = rng.uniform(40, 72, 2), rng.uniform(22, 45, 2)
        if rng.random() < 0.5:  # a polygon
            k = int(rng.integers(3, 7))
            angles = rng.uniform(0, 2 * np.pi) + np.arange(k) * 2 * np.pi / k
            pts = [tuple(centre + radius * (np.cos(a), np.sin(a))) for a in angles]
            draw.line(pts + [pts[0]], fill=255, width=pen, joint="curve")
        else:  # a wobbly loop
            t = np.linspace(0, 2 * np.pi, 60)
            wobble = 1 + sum(rng.uniform(0, 0.15) * np.sin(m * t + rng.uniform(0, 6)) for m in (2, 3))
            draw.line([tuple(centre + radius * w * (np.cos(a), np.sin(a))) for a, w in zip(t, wobble)],
                      fill=255, width=pen, joint="curve")
        for mark in range(int(rng.integers(1, 4))):
            if mark == 0 or rng.random() < 0.6:  # inside, clear of the outline: a dot or a dash
                at = centre + rng.uniform(-0.4, 0.4, 2) * radius
                if rng.random() < 0.5:
                    r = pen * rng.uniform(0.7, 1.5)
                    draw.ellipse((at[0] - r, at[1] - r, at[0] + r, at[1] + r), fill=255)
                else:
                    end = at + rng.uniform(-0.35, 0.35, 2) * radius
                    draw.line([tuple(at), tuple(end)], fill=255, width=max(3, pen - 2))
            else:  # a second loop beside the first (side by side, not stacked like an 8)
                c2 = centre + (rng.choice([-1, 1]) * radius[0] * rng.uniform(1.2, 1.8), rng.uniform(-10, 10))
                r2 = radius * rng.uniform(0.5, 1.0)
                draw.ellipse((c2[0] - r2[0], c2[1] - r2[1], c2[0] + r2[0], c2[1] + r2[1]), outline=255, width=pen)
    else:
        for _ in range(int(rng.integers(2, 5))):
            pts = rng.uniform(8, _CANVAS - 8, (int(rng.integers(2, 5)), 2))
            if rng.random() < 0.5:  # a Bézier curve on the points instead of a polyline
                if len(pts) == 2:
                    pts = np.array([pts[0], pts.mean(0) + rng.normal(0, 25, 2), pts[1]])
                pts = _bezier(pts)
            draw.line([tuple(p) for p in pts], fill=255, width=pen, joint="curve")
    return np.asarray(img, np.float32) / 255


def _bezier(points, n=30):
    """n points along the Bézier curve of the control `points` (de Casteljau)."""
    t = np.linspace(0, 1, n)[:, None]
    layers = [np.broadcast_to(p, (n, 2)) for p in points]
    while len(layers) > 1:
        layers = [(1 - t) * a + t * b for a, b in zip(layers[:-1], layers[1:])]
    return layers[0]


def _glyph(rng, fonts):
    """A typed glyph of GLYPHS, emboldened, stretched, slanted and rotated."""
    img = Image.new("L", (_CANVAS, _CANVAS), 0)
    ImageDraw.Draw(img).text((_CANVAS / 2, _CANVAS / 2), GLYPHS[int(rng.integers(len(GLYPHS)))], fill=255,
                             font=fonts[int(rng.integers(len(fonts)))], anchor="mm",
                             stroke_width=int(rng.integers(0, 4)), stroke_fill=255)
    stretch, slant, c = rng.uniform(0.7, 1.3), rng.uniform(-0.3, 0.3), _CANVAS / 2
    img = img.transform(img.size, Image.Transform.AFFINE,
                        (1 / stretch, slant, c - c / stretch - slant * c, 0, 1, 0), Image.Resampling.BILINEAR)
    return np.asarray(img.rotate(rng.uniform(-15, 15), Image.Resampling.BILINEAR), np.float32) / 255


def bank(count, seed):
    """`count` prepared non-digit images, half doodles and half typed glyphs.

    Args:
        count: how many.
        seed: the same seed gives the same images.

    Returns:
        (count, 784) float32, ink = 1, each as imageprepare.to_mnist delivers it.
    """
    rng = np.random.default_rng(seed)
    fonts = [ImageFont.load_default(size=s) for s in (56, 64, 72)]
    images = [_doodle(rng) if i % 2 else _glyph(rng, fonts) for i in range(count)]
    return np.stack([imageprepare.to_mnist(a) for a in images]).reshape(count, 784)


def two_in_one_box(images, seed):
    """Each N×784 digit and its neighbour in the batch side by side in one box, as a wrong cut gives.

    Both digits' central 20×20 (MNIST's box) are put side by side, overlapping by
    0–7 columns, and the pair is fitted into the 20×20 box like to_mnist fits a
    wide piece: 20×~37 → 10×20, centred in 28×28.
    """
    x = tf.reshape(images, [-1, 28, 28, 1])
    overlap = tf.random.stateless_uniform([], seed, 0, 8, tf.int32)
    pair = tf.concat([x[:, 4:24, 4:24 - overlap], tf.roll(x, 1, 0)[:, 4:24, 4:24]], axis=2)
    small = tf.image.resize(pair, [10, 20], antialias=True)                   # N×10×20×1
    return tf.reshape(tf.pad(small, [[0, 0], [9, 9], [4, 4], [0, 0]]), [-1, 784])


def turned(images, labels):
    """The digits of N×784 `images` that are no digit on their side (all but 0, 1, 8), turned 90°."""
    keep = tf.reduce_all(tf.not_equal(labels[:, None], tf.constant([[0, 1, 8]], labels.dtype)), axis=1)
    x = tf.reshape(tf.boolean_mask(images, keep), [-1, 28, 28, 1])
    return tf.reshape(tf.image.rot90(x), [-1, 784])


def batch(images, labels, doodles, count, seed):
    """`count` non-digits for one training step: a third each of two-in-a-box, turned and bank images.

    Args:
        images, labels: the step's digits (N×784 float32, N int64); N ≥ 2·count/3.
        doodles: the bank (M×784 float32 tensor) from `bank`.
        count: how many non-digits (a multiple of 3).
        seed: stateless int32 pair.

    Returns:
        count×784 float32 (fewer when the first digits are mostly 0, 1 and 8).
    """
    third = count // 3
    pick = tf.random.stateless_uniform([third], tf.random.experimental.stateless_fold_in(seed, 1),
                                       0, tf.shape(doodles)[0], tf.int32)
    return tf.concat([two_in_one_box(images[:third], seed), turned(images[:2 * third], labels[:2 * third])[:third],
                      tf.gather(doodles, pick)], axis=0)


def uniform_cross_entropy(logits):
    """Cross-entropy of the softmax of each of N×10 `logits` against the uniform distribution (N).

    −(1/10)·Σ_k log softmax_k = logsumexp(z) − mean(z); its minimum, log 10, is
    reached when every digit gets 10 %.
    """
    return tf.reduce_logsumexp(logits, axis=1) - tf.reduce_mean(logits, axis=1)


def uniform_loss(logits):
    """uniform_cross_entropy of N×10 `logits`, the mean over N."""
    return tf.reduce_mean(uniform_cross_entropy(logits))
