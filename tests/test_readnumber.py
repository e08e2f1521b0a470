"""readnumber: segmentation graph, decoding, boxes, confidence, photos.

Above the "needs a trained model" line, the network is replaced by a
classifier that knows where the true digits are (from the composed number's
boxes): it pins the graph and the decoding without a model, in seconds.
"""

import io
import math

import numpy as np
import pytest
from PIL import Image, ImageDraw

import imageprepare
import readnumber
from imageprepare import ImageError

import userstyle as us


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------

def drawn(digit, style=None, seed=0, height=120, width=None):
    return us.draw_digit(digit, np.random.default_rng(seed), style=style, height=height, width=width)


def paper(ink, margin=40):
    """Black-on-white L image of an ink array with a fixed margin."""
    return Image.fromarray(np.uint8(255 - 255 * np.pad(ink, margin) + 0.5), "L")


def number_image(inks, seed, margin=40, **compose):
    """(image, digit boxes in its pixels) of a number composed from ink arrays."""
    ink, boxes = us.compose_number(inks, np.random.default_rng(seed), **compose)
    return paper(ink, margin), [(l + margin, t + margin, r + margin, b + margin) for l, t, r, b in boxes]


def iou(a, b):
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def knowing(seg, boxes, digits):
    """Scores of a classifier that knows the true digits: (probs, digitness).

    A candidate whose box matches a true digit's box reads as that digit;
    any other reads as nothing in particular (flat probabilities) and looks
    little like a digit, as a network with a not-a-digit score would judge.
    """
    probs = np.full((len(seg.boxes), 10), 0.1, np.float32)
    digitness = np.full(len(seg.boxes), 0.05, np.float32)
    for k, box in enumerate(seg.boxes):
        best = max(range(len(boxes)), key=lambda i: iou(box, boxes[i]))
        if iou(box, boxes[best]) > 0.6:
            probs[k] = 0.001
            probs[k, digits[best]] = 0.991
            digitness[k] = 1.0
    return probs, digitness


@pytest.fixture(scope="module")
def mnist_digits(mnist):
    """40 MNIST test digits (28x28, ink 1) with their labels."""
    return mnist.test.images[:40].reshape(-1, 28, 28), mnist.test.labels[:40]


# --------------------------------------------------------------------------
# The segmentation graph
# --------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(4))
def test_graph_runs_left_to_right_and_every_node_lies_on_a_path(seed, mnist_digits):
    arrays, _ = mnist_digits
    n = 2 + seed
    img, _ = number_image([us.from_mnist(arrays[i], 100) for i in range(seed, seed + n)], seed,
                          touch=seed % 2 == 1)
    seg = readnumber.segment(img)
    assert seg.arrays.shape == (len(seg.edges), 28, 28) and seg.arrays.dtype == np.float32
    assert len(seg.boxes) == len(seg.edges)
    assert all(0 <= s < e < seg.nodes for s, e in seg.edges)
    starts = {s for s, _ in seg.edges}
    ends = {e for _, e in seg.edges}
    assert starts | ends == set(range(seg.nodes))  # no node is a dead end or unreachable
    assert 0 in starts and seg.nodes - 1 in ends


@pytest.mark.parametrize("seed", range(4))
def test_gapped_number_holds_its_digits_as_candidates_and_reads_them(seed, mnist_digits):
    arrays, labels = mnist_digits
    n = 2 + seed
    idx = range(10 + seed, 10 + seed + n)
    img, boxes = number_image([us.from_mnist(arrays[i], 100) for i in idx], seed)
    seg = readnumber.segment(img)
    reading = readnumber.decode(seg, *knowing(seg, boxes, [int(labels[i]) for i in idx]))
    assert reading.number == "".join(str(int(labels[i])) for i in idx)
    for digit, box in zip(reading.digits, boxes):
        assert iou(digit.box, box) > 0.6
        assert digit.array.shape == (28, 28)


def test_numbers_with_uneven_gaps_sizes_and_baselines(mnist_digits):
    arrays, labels = mnist_digits
    idx = range(10, 15)
    img, boxes = number_image([us.from_mnist(arrays[i], 100) for i in idx], 3,
                              gap=(0.15, 0.9), size_jitter=0.25, baseline_jitter=0.2)
    seg = readnumber.segment(img)
    reading = readnumber.decode(seg, *knowing(seg, boxes, [int(labels[i]) for i in idx]))
    assert [iou(d.box, b) > 0.6 for d, b in zip(reading.digits, boxes)] == [True] * 5


def test_digits_that_touch_are_cut_apart_by_a_candidate_path(mnist_digits):
    arrays, labels = mnist_digits
    # Pushed into each other until the inks touch and overlap a little.
    idx = [3, 1]  # a 0 and a 2
    img, boxes = number_image([us.from_mnist(arrays[i], 100) for i in idx], 0, touch=True,
                              overlap=(0.05, 0.05))
    seg = readnumber.segment(img)
    assert seg.nodes > 2  # the joined ink was cut
    reading = readnumber.decode(seg, *knowing(seg, boxes, [int(labels[i]) for i in idx]))
    assert reading.number == "".join(str(int(labels[i])) for i in idx)


def _rings(count, height=40, pen=1, link=10):
    """Cells of `count` rings side by side, each joined to the next by a bar `link` cells long."""
    r = height // 2 - 1
    pitch = 2 * r + 1 + link
    yy, xx = np.mgrid[:height, :count * pitch - link]  # cropped to the ink, as a piece is
    cells = np.zeros(yy.shape, bool)
    for i in range(count):
        cx = r + i * pitch
        cells |= (np.hypot(yy - r, xx - cx) > r - pen) & (np.hypot(yy - r, xx - cx) <= r)
        if i:
            cells[r - pen // 2:r - pen // 2 + pen, cx - r - link - 1:cx - r + 1] = True
    return cells


@pytest.mark.parametrize("pen", [1, 5])
def test_the_best_cut_through_joined_loops_crosses_the_link_not_a_loop(pen, monkeypatch):
    # Two 0s joined by a bar: a cut through the bar crosses one stroke, any
    # cut through a loop two. With a 1-cell pen a loop's stroke costs as
    # little ink as the bar, so cuts must be ranked by the strokes crossed.
    monkeypatch.setattr(readnumber, "_CUTS_PER_HEIGHT", 0.01)  # a budget of one cut
    height, link = 40, 10
    sub = _rings(2, height, pen, link)
    (path,) = readnumber._cut_paths(sub, float(height))
    right_of_first = 2 * (height // 2 - 1) + 1
    assert right_of_first <= path.min() and path.max() <= right_of_first + link + 1  # at the bar or its ends


def test_one_broad_digit_gets_few_cuts_and_joined_digits_more():
    # A piece a little wider than the line holds one digit: a few cuts at
    # most, so that its fragments stay few; each further line height of
    # width can hold another digit and gets cuts of its own.
    height = 40.0
    yy, xx = np.mgrid[:40, :46]
    outer = ((yy - 19.5) / 19.5) ** 2 + ((xx - 22.5) / 22.5) ** 2 <= 1
    inner = ((yy - 19.5) / 15.5) ** 2 + ((xx - 22.5) / 18.5) ** 2 <= 1
    assert 1 <= len(readnumber._cut_paths(outer & ~inner, height)) <= 3  # a broad 0
    assert len(readnumber._cut_paths(_rings(3, 40, 4), height)) >= 6


@pytest.mark.parametrize("case", ["five_detached_bar", "four_open_top", "seven_crossbar",
                                  "zero_in_two_strokes", "wide_two_flourish"])
def test_a_broken_or_wide_single_digit_is_one_candidate_of_the_graph(case):
    if case == "five_detached_bar":
        ink = drawn(5, "detached_bar", seed=4)
    elif case == "four_open_top":
        ink = drawn(4, "open", seed=4)
    elif case == "seven_crossbar":
        ink = drawn(7, "crossbar", seed=4)
    elif case == "zero_in_two_strokes":
        ink = drawn(0, "oval", seed=4, width=8)
        ink[:6] = 0
        ink[-6:] = 0
    else:  # a 2 whose base runs on far to the right
        ink = drawn(2, "swan", seed=5, width=8)
        h, w = ink.shape
        img = Image.fromarray(np.uint8(np.pad(ink, ((0, 0), (0, int(0.5 * h)))) * 255))
        ImageDraw.Draw(img).line([(w - 10, h - 5), (w + 0.45 * h, 0.9 * h)], fill=255, width=8)
        ink = np.asarray(img, np.float32) / 255
    seg = readnumber.segment(paper(ink))
    assert (0, seg.nodes - 1) in seg.edges


def test_single_reads_all_the_ink_as_one_digit_prepared_as_prepare_does(mnist_digits):
    arrays, _ = mnist_digits
    img, _ = number_image([us.from_mnist(arrays[i], 100) for i in range(3)], 0)
    seg = readnumber.segment(img, single=True)
    assert seg.edges == [(0, 1)]
    np.testing.assert_array_equal(seg.arrays[0], imageprepare.prepare(img))


@pytest.mark.parametrize("kind", ["plain", "tight", "big_canvas", "photo", "thin_pen", "thick_marker"])
def test_a_single_digit_as_a_whole_candidate_is_prepared_like_prepare(kind, mnist_digits):
    arrays, _ = mnist_digits
    for i in range(0, 40, 8):
        data, _ = us.make(us.from_mnist(arrays[i], 150), kind, np.random.default_rng(i))
        seg = readnumber.segment(us.open_image(data))
        whole = [k for k, e in enumerate(seg.edges) if e == (0, seg.nodes - 1)]
        assert whole, kind
        reference = imageprepare.prepare(us.open_image(data))
        assert np.corrcoef(seg.arrays[whole[0]].ravel(), reference.ravel())[0, 1] > 0.97, kind


def test_candidates_of_a_long_number_stay_bounded(mnist_digits):
    arrays, _ = mnist_digits
    inks = [us.from_mnist(arrays[i], 100) for i in range(6)]
    gapped = readnumber.segment(number_image(inks, 1)[0])
    touching = readnumber.segment(number_image(inks, 1, touch=True)[0])
    assert len(gapped.edges) <= 3 * 6
    assert len(touching.edges) <= 8 * 6


# --------------------------------------------------------------------------
# Reading: one network call, boxes, confidence
# --------------------------------------------------------------------------

def test_read_classifies_all_candidates_in_one_call(mnist_digits):
    arrays, _ = mnist_digits
    img, _ = number_image([us.from_mnist(arrays[i], 100) for i in range(5)], 2, touch=True)
    calls = []

    def classify(batch):
        calls.append(len(batch))
        return np.full((len(batch), 10), 0.1, np.float32), np.ones(len(batch), np.float32)

    reading = readnumber.read(img, classify)
    assert calls == [len(readnumber.segment(img).edges)]
    assert len(reading.number) == len(reading.digits) >= 1


def test_boxes_are_in_original_pixels_of_a_shrunk_upright_image():
    seven = drawn(7, "plain", seed=1)
    page = np.zeros((2400, 3200), np.float32)
    big = us._resize(seven, (seven.shape[1] * 2, seven.shape[0] * 2))
    page[1000:1000 + big.shape[0], 2000:2000 + big.shape[1]] = big
    img = Image.fromarray(np.uint8(255 - 255 * page), "L")
    truth = (2000, 1000, 2000 + big.shape[1], 1000 + big.shape[0])
    seg = readnumber.segment(img)
    whole = seg.edges.index((0, seg.nodes - 1))
    assert all(abs(a - b) <= 8 for a, b in zip(seg.boxes[whole], truth))

    # The same page photographed sideways: boxes are in the upright picture.
    stored = img.transpose(Image.Transpose.ROTATE_270)  # tag 8: shown turned back by 90 degrees
    exif = Image.Exif()
    exif[0x0112] = 8
    buf = io.BytesIO()
    stored.save(buf, "JPEG", exif=exif.tobytes())
    seg = readnumber.segment(Image.open(io.BytesIO(buf.getvalue())))
    whole = seg.edges.index((0, seg.nodes - 1))
    assert all(abs(a - b) <= 10 for a, b in zip(seg.boxes[whole], truth))


def test_candidates_ink_lies_where_it_was_drawn_in_an_image_cut_as_drawn(mnist_digits):
    # cutexamples.py tells from the crops which digit's ink each candidate holds.
    arrays, labels = mnist_digits
    image, _ = number_image([us.from_mnist(a, 60) for a in arrays[:3]], seed=0, touch=True)
    seg = readnumber.segment(image)
    assert seg.as_drawn and len(seg.crops) == len(seg.arrays)
    ink = 1 - np.asarray(image, np.float32) / 255
    for (crop, (x, y)), box in zip(seg.crops, seg.boxes):
        on = crop > 0.3
        assert np.all(ink[y:y + crop.shape[0], x:x + crop.shape[1]][on] > 0.2)  # its ink is the image's ink there
        rows, cols = np.flatnonzero(on.any(axis=1)), np.flatnonzero(on.any(axis=0))
        assert abs(x + cols[0] - box[0]) <= 1 and abs(y + rows[0] - box[1]) <= 1


def test_a_shrunk_image_is_not_cut_as_drawn():
    seven = drawn(7, "plain", seed=1)
    page = np.zeros((2400, 3200), np.float32)
    page[1000:1000 + seven.shape[0], 2000:2000 + seven.shape[1]] = seven
    assert not readnumber.segment(Image.fromarray(np.uint8(255 - 255 * page), "L")).as_drawn


def test_confidence_is_low_when_another_cut_reads_nearly_as_well(mnist_digits):
    arrays, labels = mnist_digits
    idx = [2, 0]  # a 1 leaning into a 7: together no wider than a wide digit
    img, boxes = number_image([us.from_mnist(arrays[i], 100) for i in idx], 0, touch=True,
                              overlap=(0.05, 0.05))
    seg = readnumber.segment(img)
    probs, digitness = knowing(seg, boxes, [int(labels[i]) for i in idx])
    clear = readnumber.decode(seg, probs, digitness)
    # Now the whole joined piece reads as a confident digit too, as a
    # network without a not-a-digit score may well say ("219" for "2019").
    whole = seg.edges.index((0, seg.nodes - 1))
    probs[whole] = 0.001
    probs[whole, 8] = 0.991
    digitness[whole] = 1.0
    ambiguous = readnumber.decode(seg, probs, digitness)
    assert clear.probability > 0.9
    assert ambiguous.probability < 0.75
    numbers = [ambiguous.number] + [n for n, _ in ambiguous.alternatives]
    assert "8" in numbers and clear.number in numbers
    assert all(0 <= p <= 1 for _, p in ambiguous.alternatives)
    assert [p for _, p in ambiguous.alternatives] == sorted((p for _, p in ambiguous.alternatives), reverse=True)


def test_a_candidate_that_looks_like_no_digit_is_not_read(mnist_digits):
    arrays, labels = mnist_digits
    idx = [10, 11, 12]
    img, boxes = number_image([us.from_mnist(arrays[i], 100) for i in idx], 3)
    seg = readnumber.segment(img)
    probs, digitness = knowing(seg, boxes, [int(labels[i]) for i in idx])
    # Every candidate is read confidently; only the digitness tells.
    confident = np.where(probs.max(axis=1, keepdims=True) < 0.5, np.eye(10, dtype=np.float32)[1] * 0.99 + 0.001,
                         probs)
    reading = readnumber.decode(seg, confident, digitness)
    assert reading.number == "".join(str(int(labels[i])) for i in idx)


def test_ink_refused_as_a_digit_whose_pieces_read_poorly_is_one_question_mark(mnist_digits):
    arrays, labels = mnist_digits
    idx = [2, 0]  # a 1 leaning into a 7: the whole joined piece is a candidate too
    img, boxes = number_image([us.from_mnist(arrays[i], 100) for i in idx], 0, touch=True,
                              overlap=(0.05, 0.05))
    seg = readnumber.segment(img)
    probs, digitness = knowing(seg, boxes, [int(labels[i]) for i in idx])
    whole = seg.edges.index((0, seg.nodes - 1))
    assert digitness[whole] < 0.5
    clear = readnumber.decode(seg, probs, digitness)
    assert clear.number == "".join(str(int(labels[i])) for i in idx)
    # The same pieces read as doubtful digits (a V's two strokes as 1s, say): "?", the whole ink.
    doubtful = np.where(digitness[:, None] == 1.0, np.full_like(probs, 0.3 / 9), probs)
    doubtful[digitness == 1.0, 1] = 0.7
    seen = np.where(digitness == 1.0, 0.4, digitness)
    reading = readnumber.decode(seg, doubtful, seen)
    assert reading.number == "?" and len(reading.digits) == 1
    assert reading.digits[0].box == tuple(seg.boxes[whole]) and reading.digits[0].digitness < 0.5
    assert 0 < reading.probability < 1 and reading.alternatives[0][0] == "11"
    assert readnumber.decode(seg, doubtful, seen, not_a_number=False).number == "11"


def stroke(lean, height=200, pen=9):
    """Ink of one straight stroke leaning `lean` degrees (its top to the right: positive)."""
    img = Image.new("L", (height + 2 * pen, height + 2 * pen), 0)
    dx = 0.5 * height * math.tan(math.radians(lean))
    c = height / 2 + pen
    ImageDraw.Draw(img).line([(c - dx, c + height / 2), (c + dx, c - height / 2)], fill=255, width=pen)
    return np.asarray(img, np.float32) / 255


@pytest.mark.parametrize("lean", [-35, -10, 0, 20, 40])
def test_the_lean_of_a_stroke_is_measured_in_degrees_from_upright(lean):
    assert readnumber._lean(stroke(lean)) == pytest.approx(lean, abs=1.5)


def test_ink_that_is_no_single_stroke_has_no_lean():
    ring = Image.new("L", (120, 160), 0)
    ImageDraw.Draw(ring).ellipse((10, 10, 110, 150), outline=255, width=9)
    assert math.isnan(readnumber._lean(np.asarray(ring, np.float32) / 255))
    assert math.isnan(readnumber._lean(np.zeros((20, 20), np.float32)))


def two_strokes(leans, cut):
    """A Segmentation of two candidates, each one stroke, joined by a cut through ink or apart."""
    cut_strokes = np.array([-1.0, 1.0 if cut else -1.0, -1.0])
    crops = [(stroke(lean), (i * 200, 0)) for i, lean in enumerate(leans)]
    return readnumber.Segmentation(np.zeros((2, 28, 28), np.float32), [(0, 0, 200, 200), (200, 0, 400, 200)],
                                   [(0, 1), (1, 2)], 3, np.array([[100.0, 200.0]] * 2), 200.0, cut_strokes,
                                   crops)


def test_strokes_joined_by_a_cut_that_lean_apart_read_as_no_number():
    ones = np.full((2, 10), 0.001, np.float32)
    ones[:, 1] = 0.991
    sure = np.ones(2)
    v = readnumber.decode(two_strokes([25.0, -30.0], cut=True), ones, sure)
    assert v.number == "?" and [d.value for d in v.digits] == [1, 1]
    assert v.alternatives[0][0] == "11"
    # What a person writes: neighbouring 1s leaning alike, or two 1s apart from different writers.
    assert readnumber.decode(two_strokes([15.0, -15.0], cut=True), ones, sure).number == "11"
    assert readnumber.decode(two_strokes([25.0, -30.0], cut=False), ones, sure).number == "11"
    assert readnumber.decode(two_strokes([25.0, -30.0], cut=True), ones, sure, not_a_number=False).number == "11"


def test_a_drawn_v_is_cut_into_strokes_that_lean_apart():
    v = Image.new("L", (260, 240), 255)
    ImageDraw.Draw(v).line([(40, 30), (130, 210), (220, 30)], fill=0, width=12, joint="curve")
    seg = readnumber.segment(v)
    leans = np.array([readnumber._lean(crop) for crop, _ in seg.crops])
    leans = leans[np.isfinite(leans)]
    assert leans.max() > 15 and leans.min() < -15


def test_the_shape_prior_weighs_cuts_but_never_overrules_the_networks_class():
    # A lone 7 narrower than MNIST's 7s (width/height 0.35 < 0.5) that the network reads as a 7.
    seg = readnumber.Segmentation(np.zeros((1, 28, 28), np.float32), [(0, 0, 208, 586)], [(0, 1)], 2,
                                  np.array([[208.0, 586.0]]), 586.0, np.full(2, -1.0))
    probs = np.full((1, 10), 0.01, np.float32)
    probs[0, 7], probs[0, 1] = 0.71, 0.21
    assert readnumber.decode(seg, probs, np.array([0.9])).number == "7"


def test_no_writing_is_an_image_error_naming_the_file(tmp_path):
    path = tmp_path / "blank.png"
    Image.new("L", (200, 150), 255).save(path)
    with pytest.raises(ImageError, match="no digit found in .*blank.png"):
        readnumber.segment(path)


# --------------------------------------------------------------------------
# Real photos: find the writing, colour, slant
# --------------------------------------------------------------------------

def test_coloured_ink_reaches_full_contrast_like_black_ink():
    seven = drawn(7, "plain", seed=1)
    reference = imageprepare.prepare(paper(seven))
    for colour in [(200, 30, 30), (40, 60, 190), (30, 140, 60)]:
        rgb = np.empty(np.pad(seven, 40).shape + (3,), np.float32)
        for c in range(3):
            rgb[..., c] = 235 + (colour[c] - 235) * np.pad(seven, 40)
        img = Image.fromarray(np.uint8(rgb), "RGB")
        ink = imageprepare.load_ink(img)
        assert np.percentile(ink[np.pad(seven, 40) > 0.8], 50) > 0.9, colour
        a = imageprepare.prepare(img)
        assert np.corrcoef(a.ravel(), reference.ravel())[0, 1] > 0.95, colour


@pytest.mark.parametrize("seed", range(3))
def test_a_dark_shadow_reaching_the_frame_is_background_not_writing(seed):
    seven = drawn(7, "plain", seed=1)
    data, _ = us.kind_photo_shadow(seven, np.random.default_rng(seed))
    writing = imageprepare.find_writing(us.open_image(data)).ink
    on = writing > 0.4
    rows, cols = np.flatnonzero(on.any(axis=1)), np.flatnonzero(on.any(axis=0))
    h, w = rows[-1] - rows[0], cols[-1] - cols[0]
    # Only the digit is left: a 7 is taller than wide, and far from the picture's size.
    assert h > 0.9 * w and h < 0.7 * writing.shape[0]
    reference = imageprepare.prepare(paper(seven))
    assert np.corrcoef(imageprepare.prepare(us.open_image(data)).ravel(), reference.ravel())[0, 1] > 0.8


def _raw_angle(ink):
    """_line_angle without its dead band."""
    saved = readnumber._SLANT_MIN
    readnumber._SLANT_MIN = -1.0
    try:
        return readnumber._line_angle(ink)
    finally:
        readnumber._SLANT_MIN = saved


@pytest.mark.parametrize("angle", [-35, -20, 25, 40])
def test_a_slanted_line_of_digits_is_straightened_before_it_is_cut(angle, mnist_digits):
    arrays, labels = mnist_digits
    idx = [20, 21, 22, 23]
    img, boxes = number_image([us.from_mnist(arrays[i], 100) for i in idx], 5, margin=0, gap=(0.3, 0.4))
    ink = 1 - np.asarray(img, np.float32) / 255
    level = _raw_angle(ink)  # uneven baselines tilt the line a little already
    turned = Image.fromarray(np.pad(ink, 60), "F").rotate(angle, Image.Resampling.BILINEAR, expand=True)
    assert readnumber._line_angle(np.asarray(turned)) == pytest.approx(angle + level, abs=2)
    page = Image.fromarray(np.uint8(255 - 255 * np.clip(np.asarray(turned), 0, 1)), "L")
    seg = readnumber.segment(page)
    # The straightened digits are candidates, prepared upright: each looks
    # like the digit prepared on its own.
    for i in idx:
        single = imageprepare.to_mnist(us.from_mnist(arrays[i], 100))
        best = max(np.corrcoef(a.ravel(), single.ravel())[0, 1] for a in seg.arrays)
        assert best > 0.85, i
    # Boxes turn back into the picture: each lies within it.
    assert all(0 <= b[0] < b[2] <= page.width + 2 and 0 <= b[1] < b[3] <= page.height + 2 for b in seg.boxes)


@pytest.mark.parametrize("angle", [-30, 20, 35])
def test_two_digits_standing_apart_on_a_slant_give_the_line(angle, mnist_digits):
    # Two digits are too short a line for the ink's principal axis (on
    # photos slanted 20-40 degrees, "37" read "32" untouched): the line
    # through the pieces' centres is the writing's.
    arrays, _ = mnist_digits
    img, _ = number_image([us.from_mnist(arrays[i], 100) for i in (24, 25)], 3, margin=0, gap=(0.3, 0.4))
    ink = 1 - np.asarray(img, np.float32) / 255
    level = _raw_angle(ink)  # this 4 stands higher than its 0: -15 degrees
    turned = Image.fromarray(np.pad(ink, 60), "F").rotate(angle, Image.Resampling.BILINEAR, expand=True)
    assert _raw_angle(np.asarray(turned)) == pytest.approx(angle + level, abs=3)


def test_a_blot_below_a_level_number_does_not_tilt_its_line(mnist_digits):
    # A patch of shade under a real 7-digit number tilted it by 16 degrees
    # when every digit-sized piece counted: pieces off the line are left out.
    arrays, _ = mnist_digits
    img, _ = number_image([us.from_mnist(arrays[i], 100) for i in (0, 1, 2, 3)], 0, margin=0, gap=(0.3, 0.4))
    ink = np.pad(1 - np.asarray(img, np.float32) / 255, ((0, 120), (0, 0)))
    h, w = ink.shape
    ink[h - 30:h - 10, w - 140:w - 20] = 1.0  # a blot 120 px long, below the last digits
    level = _raw_angle(np.pad(1 - np.asarray(img, np.float32) / 255, ((0, 120), (0, 0))))
    assert _raw_angle(ink) == pytest.approx(level, abs=3)


@pytest.mark.parametrize("digit, style", [(4, "open"), (5, "detached_bar"), (7, "crossbar")])
@pytest.mark.parametrize("angle", [0, 20])
def test_a_lone_digit_in_two_pieces_is_not_taken_for_a_slanted_line(digit, style, angle):
    # Its pieces lie across or above one another, not one after the other.
    ink = drawn(digit, style, seed=2)
    turned = np.asarray(Image.fromarray(np.pad(ink, 40), "F").rotate(angle, Image.Resampling.BILINEAR, expand=True))
    _, n, runs = imageprepare._label(turned > 0.4)
    assert readnumber._line_of_pieces(n, *runs) is None


def test_a_number_written_level_is_not_turned():
    inks = [drawn(d, seed=d) for d in (2, 0, 1, 9)]
    img, _ = number_image(inks, 1)
    ink = imageprepare.find_writing(img).ink
    assert readnumber._line_angle(ink) == 0.0
    assert readnumber._line_angle(imageprepare.find_writing(paper(drawn(1, "stick"))).ink) == 0.0


def test_level_touching_numbers_of_mnist_digits_are_seldom_turned(mnist_digits):
    # MNIST digits lean as they were written and sit on uneven baselines: a
    # level line of them is no slant to straighten (at 6 degrees, 7 of these 40 were turned).
    arrays, _ = mnist_digits
    rng = np.random.default_rng(0)
    turned = 0
    for seed in range(40):
        idx = rng.choice(len(arrays), int(rng.integers(2, 6)), replace=False)
        img, _ = number_image([us.from_mnist(arrays[i], 100) for i in idx], seed, touch=True)
        turned += readnumber._line_angle(imageprepare.find_writing(img).ink) != 0.0
    assert turned <= 3


def test_importing_readnumber_does_nothing(tmp_path):
    import subprocess
    import sys
    import os
    done = subprocess.run([sys.executable, "-c", "import readnumber"], cwd=tmp_path, capture_output=True,
                          text=True, env={**os.environ, "PYTHONPATH": os.path.dirname(readnumber.__file__)})
    assert done.returncode == 0 and done.stdout == "" and done.stderr == ""
    assert os.listdir(tmp_path) == []


# --------------------------------------------------------------------------
# Needs a trained model (slow): exact reads
# --------------------------------------------------------------------------

# Floors set an honest margin below what tests/measure_numbers.py measured
# with the --fast model on MNIST test digits (see the README's figures).
# Measured (200 numbers per kind, test digits, the quick start's --fast model, seed 0):
# touching 6-36 % per kind, gapped 92.5-99.5 %, fat marker 93 %, shadows 70.5 %; on these
# tests' own samples: touching 30 %, gapped 97.5 %, fat 93 %, colour and slant 95 %, shadow 67 %.
TOUCHING_FLOOR = 0.2
SHADOW_FLOOR = 0.55
FAT_FLOOR = 0.88


def model_classify(prefix):
    """A restored DeepCNN as predict.py classifies candidates: (probs, digitness)."""
    import predict  # noqa: PLC0415 (TensorFlow only for these tests)
    from create_model_2 import DeepCNN  # noqa: PLC0415

    return predict.load_classifier(DeepCNN, prefix, "create_model_2.py", lambda line: None)


def exact_rate(classify, mnist, kinds, count, seed, **compose):
    """Share of `count` generated numbers (2-5 MNIST test digits) read exactly."""
    arrays, labels = mnist.test.images[:3000].reshape(-1, 28, 28), mnist.test.labels[:3000]
    good = np.flatnonzero(classify(arrays)[0].argmax(axis=1) == labels)
    rng = np.random.default_rng(seed)
    right = 0
    for j in range(count):
        idx = rng.choice(good, int(rng.integers(2, 6)), replace=False)
        data, _, _ = us.make_number([us.from_mnist(arrays[i], 100) for i in idx], kinds[j % len(kinds)], rng,
                                    **compose)
        right += readnumber.read(us.open_image(data), classify).number == "".join(map(str, labels[idx]))
    return right / count


@pytest.fixture(scope="module")
def fast_classify(fast_model2):
    return model_classify(fast_model2[0])


@pytest.mark.slow
def test_numbers_with_gaps_are_read_exactly(fast_classify, mnist):
    # Measured with tests/measure_numbers.py: see the README's figures per kind.
    kinds = ["plain", "photo", "transparent_rgba", "white_on_black", "tight", "big_canvas"]
    assert exact_rate(fast_classify, mnist, kinds, 120, 7) >= 0.90


@pytest.mark.slow
def test_touching_numbers_are_read_better_than_by_a_column_cut(fast_classify, mnist):
    # Digits pushed into each other up to a fifth of a digit's width; the old
    # column cut read about 7 % of these (issue 10).
    kinds = ["plain", "photo", "white_on_black", "thick_marker"]
    assert exact_rate(fast_classify, mnist, kinds, 120, 8, touch=True) >= TOUCHING_FLOOR


@pytest.mark.slow
def test_fat_marker_numbers_are_read(fast_classify, mnist):
    # A marker as fat as a quarter of the digit's height closes gaps (a 5
    # becomes a 3); --fast trains on such pens too.
    assert exact_rate(fast_classify, mnist, ["thick_marker"], 120, 11) >= FAT_FLOOR


@pytest.mark.slow
def test_photos_with_shadows_colour_and_slant_are_read(fast_classify, mnist):
    assert exact_rate(fast_classify, mnist, ["photo_colour", "photo_slant"], 80, 9) >= 0.88
    assert exact_rate(fast_classify, mnist, ["photo_shadow"], 60, 10) >= SHADOW_FLOOR


@pytest.mark.slow
def test_sample_images_read_as_their_file_names_say(fast_classify):
    import os
    folder = os.path.join(os.path.dirname(__file__), os.pardir, "images")
    names = sorted(n for n in os.listdir(folder) if n[0].isdigit())
    assert len(names) >= 8
    right = sum(readnumber.read(os.path.join(folder, n), fast_classify).number == n.split("_")[0] for n in names)
    assert right >= len(names) - 1
