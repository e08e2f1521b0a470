"""imageprepare: any user image of a digit (or number) -> MNIST-style 28x28 arrays.

The user-style files come from tests/userstyle.py. Everything above the
"needs a trained model" line runs in seconds without a model.
"""

import io
import os
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
from PIL import Image, ImageFilter

import imageprepare
from imageprepare import ImageError, find_writing, load_ink, prepare, to_mnist

import userstyle as us


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------

def corr(a, b):
    return float(np.corrcoef(np.ravel(a), np.ravel(b))[0, 1])


def centre_of_mass(a):
    rows, cols = np.indices(a.shape)
    return float((a * rows).sum() / a.sum()), float((a * cols).sum() / a.sum())


def stroke_width(a):
    """2 * area / outline of the >0.5 part: the same measure on MNIST and on ours."""
    b = a > 0.5
    outline = np.count_nonzero(np.diff(b, axis=0)) + np.count_nonzero(np.diff(b, axis=1))
    return 2 * b.sum() / max(outline, 1)


def drawn(digit=7, style=None, seed=0, height=200, width=None):
    return us.draw_digit(digit, np.random.default_rng(seed), style=style, height=height, width=width)


def gray_file(ink, margin=40, paper=255, ink_level=0):
    """Black-on-white L image of an ink array with a fixed margin."""
    a = np.pad(ink, margin)
    return Image.fromarray(np.uint8(paper + (ink_level - paper) * a + 0.5), "L")


def user_file(ink, kind, seed=0):
    data, _ = us.make(ink, kind, np.random.default_rng(seed))
    return us.open_image(data)


@pytest.fixture(scope="module")
def mnist_digits(mnist):
    """40 MNIST test digits (28x28, ink 1) with their labels."""
    return mnist.test.images[:40].reshape(-1, 28, 28), mnist.test.labels[:40]


@pytest.fixture(scope="module")
def seven():
    return drawn(7, "plain", seed=1)


@pytest.fixture(scope="module")
def seven_ref(seven):
    return prepare(gray_file(seven))


# --------------------------------------------------------------------------
# API shape and module hygiene
# --------------------------------------------------------------------------

def test_importing_the_module_does_nothing_and_keeps_the_bomb_guard(tmp_path):
    # In a fresh interpreter: no output, no files, Pillow's limit untouched.
    code = ("import PIL.Image as I; before = I.MAX_IMAGE_PIXELS; import imageprepare; "
            "assert I.MAX_IMAGE_PIXELS == before is not None; assert not hasattr(I, 'ANTIALIAS')")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": os.path.dirname(imageprepare.__file__)})
    assert done.returncode == 0, done.stderr
    assert done.stdout == "" and done.stderr == ""
    assert os.listdir(tmp_path) == []


def test_prepare_returns_28x28_float32_in_unit_range(seven):
    a = prepare(gray_file(seven))
    assert a.shape == (28, 28) and a.dtype == np.float32
    assert a.min() >= 0.0 and a.max() <= 1.0
    assert a.max() == pytest.approx(1.0, abs=0.02)  # stroke cores are full ink, like MNIST's 255


def test_load_ink_accepts_a_path_and_a_pil_image_alike(seven, tmp_path):
    path = tmp_path / "7_plain.png"
    gray_file(seven).save(path)
    from_path, from_str, from_image = load_ink(path), load_ink(str(path)), load_ink(Image.open(path))
    assert from_path.dtype == np.float32 and from_path.shape == (seven.shape[0] + 80, seven.shape[1] + 80)
    np.testing.assert_array_equal(from_path, from_str)
    np.testing.assert_array_equal(from_path, from_image)
    assert from_path.min() >= 0 and from_path.max() <= 1
    assert from_path[:5].max() == 0  # paper is 0
    assert corr(from_path[40:-40, 40:-40], seven) > 0.95


def test_load_ink_shrinks_a_big_photo_early():
    ink = np.zeros((3000, 4000), np.float32)
    ink[1000:2000, 1500:1600] = 1
    img = Image.fromarray(np.uint8(255 - 255 * ink), "L")
    out = load_ink(img)
    assert max(out.shape) <= 1000
    assert out.max() == pytest.approx(1.0)


def test_to_mnist_of_nothing_is_all_zeros():
    np.testing.assert_array_equal(to_mnist(np.zeros((50, 30))), np.zeros((28, 28)))


# --------------------------------------------------------------------------
# Geometry: MNIST's 20x20 box and centre of mass
# --------------------------------------------------------------------------

def test_to_mnist_of_a_raw_mnist_digit_gives_back_nearly_the_same_array(mnist_digits):
    arrays, _ = mnist_digits
    out = np.array([to_mnist(a) for a in arrays])
    assert np.mean([corr(o, a) for o, a in zip(out, arrays)]) > 0.93
    assert np.abs(out - arrays).mean() < 0.04


def test_mnist_digit_as_user_file_prepares_to_nearly_the_raw_array(mnist_digits):
    # Upscaled, black on white, with margins: what a person's file of that digit is.
    arrays, _ = mnist_digits
    rng = np.random.default_rng(0)
    out = []
    for a in arrays:
        data, _ = us.make(us.from_mnist(a, int(rng.integers(60, 300))), "plain", rng)
        out.append(prepare(us.open_image(data)))
    out = np.array(out)
    assert np.mean([corr(o, a) for o, a in zip(out, arrays)]) > 0.92
    assert np.abs(out - arrays).mean() < 0.045


@pytest.mark.parametrize("kind", ["plain", "big_canvas", "tight", "photo"])
def test_centre_of_mass_is_at_14_14_even_for_an_off_centre_lopsided_digit(kind):
    # A 7 whose long bar puts its mass well off its bounding box's centre.
    ink = drawn(7, "plain", seed=3)
    ink[: ink.shape[0] // 6] = np.maximum(ink[: ink.shape[0] // 6], us.dilate(ink, 4)[4:4 + ink.shape[0] // 6, 4:-4])
    a = prepare(user_file(ink, kind))
    cy, cx = centre_of_mass(a)
    assert abs(cy - 14) <= 0.5 and abs(cx - 14) <= 0.5


def test_digit_fills_the_20_pixel_box_keeping_its_aspect_ratio():
    tall = prepare(gray_file(drawn(1, "stick", seed=0)))
    wide = prepare(gray_file(np.ascontiguousarray(drawn(1, "stick", seed=0).T)))
    for a in (tall, wide):
        rows = np.flatnonzero((a > 0.5).any(axis=1))
        cols = np.flatnonzero((a > 0.5).any(axis=0))
        longest = max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1
        shortest = min(rows[-1] - rows[0], cols[-1] - cols[0]) + 1
        assert 19 <= longest <= 21
        assert shortest <= 8  # a 1 stays narrow: aspect ratio kept, not stretched


@pytest.mark.parametrize("kind", ["thin_pen", "thick_marker"])
def test_pen_width_is_brought_into_mnists_range(kind, mnist_digits):
    arrays, _ = mnist_digits
    lo, hi = np.percentile([stroke_width(a) for a in arrays], [5, 95])
    widths = [stroke_width(prepare(user_file(drawn(d, seed=d), kind, seed=d))) for d in range(10)]
    assert lo - 0.2 <= np.median(widths) <= hi + 0.2


def test_tight_crop_and_big_canvas_give_the_same_array(seven):
    a = prepare(user_file(seven, "tight"))
    b = prepare(user_file(seven, "big_canvas"))
    assert corr(a, b) > 0.93


# --------------------------------------------------------------------------
# Backgrounds and polarity
# --------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["transparent_rgba", "transparent_la", "transparent_p"])
def test_transparent_background_is_composited_on_white_not_black(kind, seven, seven_ref):
    img = user_file(seven, kind)
    ink = load_ink(img)
    assert ink[0, 0] == 0 and ink.mean() < 0.3  # paper, not a black sheet
    assert corr(prepare(img), seven_ref) > 0.95


def test_white_strokes_on_a_transparent_layer_are_still_the_digit(seven, seven_ref):
    rgba = np.zeros(np.pad(seven, 40).shape + (4,), np.uint8)
    rgba[..., :3] = 255
    rgba[..., 3] = np.uint8(np.pad(seven, 40) * 255)
    assert corr(prepare(Image.fromarray(rgba, "RGBA")), seven_ref) > 0.95


def test_white_on_black_prepares_like_black_on_white(seven, seven_ref):
    assert corr(prepare(gray_file(seven, paper=0, ink_level=255)), seven_ref) > 0.97


def test_photo_of_paper_with_uneven_light_and_grey_pencil(seven, seven_ref):
    for seed in range(3):
        img = user_file(seven, "photo", seed=seed)
        assert corr(prepare(img), seven_ref) > 0.85


def test_faint_pencil_on_grey_paper_becomes_full_ink(seven, seven_ref):
    faint = prepare(gray_file(seven, paper=150, ink_level=120))
    assert faint.max() == pytest.approx(1.0, abs=0.02)
    assert corr(faint, seven_ref) > 0.97


def test_specks_do_not_decide_the_crop(seven, seven_ref):
    page = np.pad(seven, 150)
    rng = np.random.default_rng(5)
    for y, x in rng.integers(0, 40, (6, 2)):
        page[y:y + 3, x:x + 3] = 1  # dust near the corners
        page[-1 - y - 3:-1 - y, -1 - x - 3:-1 - x] = 1
    a = prepare(Image.fromarray(np.uint8(255 - 255 * page), "L"))
    assert corr(a, seven_ref) > 0.97


def test_paper_edge_does_not_decide_the_crop(seven, seven_ref):
    page = np.pad(seven, 200)
    g = np.uint8(235 - 215 * page)
    g[:, :60] = 40  # the dark table past the sheet's left edge
    g[:45, :] = 50  # and past its top edge
    assert corr(prepare(Image.fromarray(g, "L")), seven_ref) > 0.95


def shadowed_photo(ink, side, seed=0):
    """A photo of ink on paper with a sharp-edged dark shadow from one border and dark corners.

    The shadow covers 0.3 of the picture from the `side` border (0 left,
    1 top, 2 right, 3 bottom), reaching the digit, and keeps a quarter of
    the light; a vignette halves the light in the corners; camera noise is
    added after the lighting, as a sensor adds it.
    """
    rng = np.random.default_rng(seed)
    a = np.pad(ink, 120)
    h, w = a.shape
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    light = 1 - 1.0 * ((xx - 0.5 * w / max(h, w)) ** 2 + (yy - 0.5 * h / max(h, w)) ** 2)
    coord = [xx, yy, 1 - xx * max(h, w) / w, 1 - yy * max(h, w) / h][side]
    light = light * np.where(coord < 0.3, 0.25, 1.0)
    g = (0.9 - 0.8 * a) * light + rng.normal(0, 0.02, a.shape)
    img = Image.fromarray(np.uint8(np.clip(g, 0, 1) * 255 + 0.5), "L")
    return img.filter(ImageFilter.GaussianBlur(0.8))


@pytest.mark.parametrize("side", range(4))
def test_a_shadow_edge_and_dark_corners_are_not_writing(side, seven, seven_ref):
    # Bars along the shadow's edge or the frame, or corner fragments, taken
    # for writing would be fitted into the box with the digit and shrink it.
    a = prepare(shadowed_photo(seven, side))
    assert corr(a, seven_ref) > 0.9
    rows, cols = np.nonzero(a > 0.1)
    ref_rows, ref_cols = np.nonzero(seven_ref > 0.1)
    assert abs(np.ptp(rows) - np.ptp(ref_rows)) <= 2
    assert abs(np.ptp(cols) - np.ptp(ref_cols)) <= 2


def tight_number_with_a_bold_end(at_left):
    """A tight crop of "1427" (or "4271"): a marker's upright 1 at one end, the rest thin pen.

    The 1 (another writer's pen, as in numbers put together from several
    people's digits) runs along the frame at its end; the 2 is shorter and
    stays inside the frame.
    """
    digits = [us.crop_ink(drawn(d, seed=d, height=h, width=6)) for d, h in ((4, 130), (2, 80), (7, 120))]
    h = max(a.shape[0] for a in digits)
    canvas = np.zeros((h, 400), np.float32)
    x = 40 if at_left else 0
    for a in digits:
        top = (h - a.shape[0]) // 2
        canvas[top:top + a.shape[0], x:x + a.shape[1]] = a
        x += a.shape[1] + 30
    one = slice(0, 26) if at_left else slice(x, x + 26)
    canvas[h // 8:h - h // 8, one] = 1
    ink = canvas[:, :x - 30] if at_left else canvas[:, :x + 26]
    return Image.fromarray(np.uint8(255 - 255 * ink + 0.5), "L")


@pytest.mark.parametrize("at_left", [True, False])
def test_a_bold_digit_at_the_end_of_a_tight_crop_is_writing_not_a_table(at_left):
    # It is solid and runs along the frame like a table band, but it is the
    # size of the other digits, which fill the picture.
    img = tight_number_with_a_bold_end(at_left)
    assert find_writing(img).ink.sum() > 0.98 * load_ink(img).sum()


@pytest.mark.parametrize("seed", [3, 5, 13])
def test_a_small_number_in_a_tilted_photo_beside_a_table_band_is_found(seed):
    # Each pencil digit weighs under 2 % of the dark table band along one
    # side, the writing as a whole more: the band is not the writing.
    ink, _ = us.compose_number([drawn(d, seed=i, height=100) for i, d in enumerate((3, 8, 2, 2, 5))],
                               np.random.default_rng(4))
    data, _ = us.kind_photo(ink, np.random.default_rng(seed), pencil=True, edge=True, slant=True)
    on = find_writing(us.open_image(data)).ink > 0.3
    assert on.sum() > 0
    assert not (on[:, :3].any() or on[:, -3:].any() or on[:3].any() or on[-3:].any())


@pytest.mark.parametrize("name,img", [
    ("white", Image.new("L", (200, 150), 255)),
    ("black", Image.new("L", (200, 150), 0)),
    ("grey", Image.new("RGB", (64, 64), (120, 130, 140))),
    ("transparent", Image.new("RGBA", (100, 100), (0, 0, 0, 0))),
    ("noisy_paper", Image.fromarray(np.uint8(np.clip(
        np.random.default_rng(0).normal(215, 6, (300, 400)), 0, 255)), "L")),
    ("uneven_light", Image.fromarray(np.uint8(np.linspace(120, 240, 500))[None, :].repeat(400, 0), "L")),
])
def test_blank_image_is_an_error_not_a_guess(name, img, tmp_path):
    path = tmp_path / f"{name}.png"
    img.save(path)
    with pytest.raises(ImageError, match=f"no digit found in .*{name}.png"):
        prepare(path)
    with pytest.raises(ImageError, match="no digit found"):
        find_writing(path)


# --------------------------------------------------------------------------
# Ruled paper
# --------------------------------------------------------------------------

def ruled_page(ink, spacing=60, thickness=2, line=0.55, margin=(120, 40), margin_line=None):
    """(page, plain): gray (1 = white) ink written over printed lines every `spacing` px, and without them.

    margin_line: the column of a vertical margin line, if any (stopping
        short of the picture's edges, as on a photo of a page).
    """
    my, mx = margin
    a = np.pad(ink, ((my, my), (mx, mx)))
    rows = np.arange(a.shape[0])[:, None]
    lines = np.where((rows - 7) % spacing < thickness, line, 1.0) * np.ones_like(a)
    if margin_line is not None:
        lines[10:-10, margin_line:margin_line + thickness] = line
    return np.minimum(lines, 1 - a).astype(np.float32), (1 - a).astype(np.float32)


def number_ink(digits=(3, 0, 5, 7), height=120):
    rng = np.random.default_rng(4)
    ink, _ = us.compose_number([drawn(d, seed=i, height=height) for i, d in enumerate(digits)], rng)
    return ink


def gray_image(g):
    return Image.fromarray(np.uint8(np.clip(g, 0, 1) * 255 + 0.5), "L")


def test_ruled_lines_under_a_number_are_not_writing():
    page, plain = ruled_page(number_ink())
    got = find_writing(gray_image(page)).ink
    want = find_writing(gray_image(plain)).ink
    assert got.shape == want.shape
    # Nothing of the lines is left beyond the writing, and the writing is the same.
    ys, xs = np.nonzero(want > 0.1)
    outside = np.ones_like(got, bool)
    outside[ys.min() - 3:ys.max() + 4, xs.min() - 3:xs.max() + 4] = False
    assert got[outside].sum() == 0
    assert corr(got, want) > 0.9


def test_a_margin_line_beside_a_number_on_ruled_paper_is_not_writing():
    page, plain = ruled_page(number_ink(), margin=(120, 80), margin_line=60)
    got = find_writing(gray_image(page)).ink
    assert got[:, :70].max() == 0
    assert corr(got, find_writing(gray_image(plain)).ink) > 0.9


def test_a_stroke_crossing_a_ruling_line_is_kept():
    ink = np.zeros((240, 500), np.float32)
    ink[:, 240:248] = 1  # a 1 written across four lines
    page, _ = ruled_page(ink, margin=(20, 60))
    got = load_ink(gray_image(page))
    column = got[:, 60 + 244]
    assert np.all(column[20:260] > 0.5)
    assert got[:, :60 + 200].max() < 0.05  # the lines beside it are gone


def test_a_tight_digit_with_two_long_parallel_bars_is_not_ruled_paper():
    # A thin-pen Z-like 2: its bars run right across the crop, but are no
    # longer than their distance, unlike printed lines.
    ink = np.zeros((200, 150), np.float32)
    ink[:2] = ink[-2:] = 1
    for y in range(200):
        x = int(149 - y * 149 / 199)
        ink[y, max(0, x - 1):x + 1] = 1
    x = imageprepare._ink_from_gray(1 - ink, None)
    assert imageprepare._unrule(x) is x


def test_a_tight_single_digit_with_a_long_stroke_is_not_changed():
    x = imageprepare._ink_from_gray(1 - us.crop_ink(drawn(7, height=300)), None)
    assert imageprepare._unrule(x) is x


# --------------------------------------------------------------------------
# Modes, formats, EXIF, 16-bit
# --------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["exif_jpeg", "png16", "cmyk", "palette", "animated_gif", "bilevel",
                                  "webp", "tiff_float", "tiff_int", "scan"])
def test_each_file_kind_prepares_the_same_digit(kind, seven, seven_ref):
    assert corr(prepare(user_file(seven, kind)), seven_ref) > 0.9


@pytest.mark.parametrize("mode", ["1", "L", "P", "RGB", "RGBA", "LA", "La", "RGBa", "PA",
                                  "I;16", "I", "F", "CMYK", "YCbCr", "HSV"])
def test_every_pillow_mode_prepares_the_same_digit(mode, seven, seven_ref):
    base = gray_file(seven)
    if mode == "I;16":
        img = Image.fromarray(np.asarray(base, np.uint16) * 257)
    elif mode in ("I", "F"):
        img = base.convert(mode)
    elif mode in ("La", "RGBa", "PA"):
        img = base.convert("RGBA").convert(mode) if mode != "PA" else base.convert("P").convert("PA")
    else:
        img = base.convert(mode)
    assert img.mode == mode
    assert corr(prepare(img), seven_ref) > 0.95


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF"])
def test_every_common_format_prepares_the_same_digit(fmt, seven, seven_ref, tmp_path):
    path = tmp_path / f"7.{fmt.lower()}"
    gray_file(seven).convert("RGB").save(path, fmt)
    assert corr(prepare(path), seven_ref) > 0.95


def test_sixteen_bit_png_is_scaled_by_its_range_not_clipped_to_white(seven, seven_ref, tmp_path):
    for lo, hi in [(3000, 60000), (300, 4000), (20000, 21000)]:
        path = tmp_path / f"7_{lo}.png"
        with open(path, "wb") as f:
            f.write(us.kind_png16(seven, np.random.default_rng(0), lo=lo, hi=hi)[0])
        img = Image.open(path)
        assert img.mode.startswith("I")
        assert corr(prepare(path), seven_ref) > 0.95


@pytest.mark.parametrize("orientation", [2, 3, 4, 5, 6, 7, 8])
def test_exif_orientation_is_honoured(orientation, seven, seven_ref):
    img = us.open_image(us.kind_exif_jpeg(seven, np.random.default_rng(0), orientation=orientation)[0])
    assert img.getexif()[0x0112] == orientation
    assert corr(prepare(img), seven_ref) > 0.93


def test_first_frame_of_an_animation_is_the_picture(seven, seven_ref):
    img = user_file(seven, "animated_gif")
    assert img.n_frames == 3
    img.seek(2)  # even when the caller left it on another frame
    assert corr(prepare(img), seven_ref) > 0.95


# --------------------------------------------------------------------------
# Building blocks: connected pieces, 3x3 filters, the 4x4 box mean
# --------------------------------------------------------------------------

def _flood_labels(mask):
    """Reference 8-connected labelling: flood fill, pieces numbered by their first pixel in reading order."""
    h, w = mask.shape
    labels = np.full((h, w), -1)
    n = 0
    for y, x in zip(*np.nonzero(mask)):
        if labels[y, x] >= 0:
            continue
        labels[y, x] = n
        todo = [(y, x)]
        while todo:
            cy, cx = todo.pop()
            for ny in range(max(cy - 1, 0), min(cy + 2, h)):
                for nx in range(max(cx - 1, 0), min(cx + 2, w)):
                    if mask[ny, nx] and labels[ny, nx] < 0:
                        labels[ny, nx] = n
                        todo.append((ny, nx))
        n += 1
    return labels, n


@pytest.mark.parametrize("seed", range(6))
def test_labelling_finds_8_connected_pieces_numbered_in_reading_order(seed):
    rng = np.random.default_rng(seed)
    # Sparse to dense random masks: specks, diagonal chains, merging blobs;
    # some touch the borders, one row or column may be empty or full.
    mask = rng.random((int(rng.integers(1, 40)), int(rng.integers(1, 40)))) < rng.uniform(0.1, 0.7)
    labels, n, (rows, starts, ends, comp) = imageprepare._label(mask)
    ref, ref_n = _flood_labels(mask)
    assert n == ref_n
    assert np.array_equal(labels, ref)
    # The runs cover the set pixels exactly, each with its piece's number.
    rebuilt = np.full(mask.shape, -1)
    for r, a, b, c in zip(rows, starts, ends, comp):
        rebuilt[r, a:b] = c
    assert np.array_equal(rebuilt, ref)


@pytest.mark.parametrize("cross", [False, True])
@pytest.mark.parametrize("op", [np.maximum, np.minimum])
def test_filter3_is_one_max_or_min_step_with_the_edges_replicated(op, cross):
    rng = np.random.default_rng(3)
    for a in (rng.random((9, 13)).astype(np.float32), rng.random((1, 5)) > 0.5, rng.random((6, 1))):
        p = np.pad(a, 1, mode="edge")
        offsets = ([(0, 1), (1, 0), (1, 1), (1, 2), (2, 1)] if cross
                   else [(dy, dx) for dy in range(3) for dx in range(3)])
        want = p[1:-1, 1:-1]
        for dy, dx in offsets:
            want = op(want, p[dy:dy + a.shape[0], dx:dx + a.shape[1]])
        out = imageprepare._filter3(a, op, cross=cross)
        assert out.dtype == a.dtype
        assert np.array_equal(out, want)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
def test_percentile_and_median_give_numpys_bits(dtype):
    # They replace np.percentile and np.median on the per-image path: the
    # arrays the network sees must not change by a bit.
    rng = np.random.default_rng(6)
    for _ in range(300):
        shape = (int(rng.integers(1, 30)), int(rng.integers(1, 30)))
        a = (rng.random(shape) * 255).astype(dtype) / dtype(255) if dtype != np.int64 else rng.integers(0, 90, shape)
        if rng.random() < 0.5:  # clean paper: the lowest or highest value fills about half of it
            a[rng.random(shape) < rng.uniform(0.4, 0.9)] = a.min() if rng.random() < 0.5 else a.max()
        for q in (0, 3, 25, 50, 75, 90, 99, 100):
            assert imageprepare._percentile(a, q) == float(np.percentile(a, q))
        assert imageprepare._median(a) == float(np.median(a))


def test_majority_is_the_value_held_by_more_than_half_of_the_pixels_or_none():
    rng = np.random.default_rng(5)
    for n in (1, 2, 7, 64, 65):
        for share in (0.0, 0.5, 0.51, 0.9):
            a = rng.random(n).astype(np.float32)
            a[:int(share * n + 0.5)] = 0.25
            rng.shuffle(a)
            held = np.count_nonzero(a == 0.25) > n / 2
            got = imageprepare._majority(a.reshape(1, n))
            assert (got == 0.25) if held else (got is None or np.count_nonzero(a == got) > n / 2)
            if got is not None:
                assert got == np.median(a)  # the same value the median gives


def test_box_mean_is_bit_for_bit_numpys_block_mean():
    # The arrays the network sees must not depend on how the mean is taken.
    rng = np.random.default_rng(4)
    for _ in range(20):
        canvas = (rng.random((112, 112)) * (rng.random((112, 112)) < 0.4)).astype(np.float32)
        want = canvas.reshape(28, 4, 28, 4).mean(axis=(1, 3))
        assert np.array_equal(imageprepare._box_mean(canvas), want)


# --------------------------------------------------------------------------
# Bad input: every one gets its one-line error naming the file
# --------------------------------------------------------------------------

def _png_header_only(width, height):
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b""))


@pytest.mark.parametrize("name,content", [
    ("random.png", bytes(np.random.default_rng(0).integers(0, 256, 3000, dtype=np.uint8))),
    ("empty.jpg", b""),
    ("notes.png", b"this is not an image\n"),
    ("truncated.png", None),
])
def test_unreadable_file_is_an_image_error_naming_the_file(name, content, tmp_path, seven):
    path = tmp_path / name
    if content is None:
        buf = io.BytesIO()
        gray_file(seven).save(buf, "PNG")
        content = buf.getvalue()[: len(buf.getvalue()) // 2]
    path.write_bytes(content)
    with pytest.raises(ImageError, match=f"cannot read .*{name}: not an image Pillow can open"):
        prepare(path)
    with pytest.raises(ImageError, match=name):
        find_writing(str(path))


def test_missing_file_and_folder_are_image_errors(tmp_path):
    with pytest.raises(ImageError, match="nothere.png"):
        prepare(tmp_path / "nothere.png")
    with pytest.raises(ImageError, match="cannot read"):
        prepare(tmp_path)


def test_image_errors_are_value_errors_with_one_line():
    with pytest.raises(ValueError) as info:
        prepare(Image.new("L", (50, 50), 255))
    assert "\n" not in str(info.value)


def test_decompression_bomb_is_refused_with_the_guard_left_on(tmp_path):
    path = tmp_path / "bomb.png"
    path.write_bytes(_png_header_only(30000, 30000))  # 900 megapixels claimed
    assert Image.MAX_IMAGE_PIXELS is not None
    with pytest.raises(ImageError, match="bomb.png.*too large"):
        prepare(path)


def test_image_just_over_the_pillow_limit_is_refused_too(tmp_path, monkeypatch, seven):
    # Between 1x and 2x the limit Pillow only warns; that must not slip through.
    path = tmp_path / "big.png"
    gray_file(seven).save(path)
    w, h = Image.open(path).size
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", int(w * h / 1.5))
    with pytest.raises(ImageError, match="big.png.*too large"):
        prepare(path)


# --------------------------------------------------------------------------
# Needs a trained model (slow): the predicted digits themselves
# --------------------------------------------------------------------------

def digit_reader(prefix):
    """A restored DeepCNN as a function: 28×28 arrays → predicted digits."""
    import checkpoint  # noqa: PLC0415 (TensorFlow only for these tests)
    from create_model_2 import DeepCNN  # noqa: PLC0415

    model = DeepCNN()
    checkpoint.restore_checkpoint(model, prefix)
    return lambda arrays: np.asarray(model(np.asarray(arrays, np.float32).reshape(-1, 784))).argmax(axis=1)


@pytest.fixture(scope="module")
def model2(tutorial_model2):
    """The DeepCNN trained by the tutorial's default schedule (see conftest), as a digit reader."""
    return digit_reader(tutorial_model2[0])


@pytest.mark.slow
def test_mnist_digits_as_user_files_predict_as_the_raw_arrays_do(model2, mnist):
    arrays, labels = mnist.test.images[:300].reshape(-1, 28, 28), mnist.test.labels[:300]
    raw = model2(arrays)
    for kind in ["plain", "tight", "big_canvas", "transparent_rgba", "white_on_black", "photo", "scan"]:
        rng = np.random.default_rng(1)
        prepared = [prepare(us.open_image(us.make(us.from_mnist(a, int(rng.integers(60, 300))), kind, rng)[0]))
                    for a in arrays]
        pred = model2(prepared)
        assert (pred == raw).mean() >= 0.98, kind
        assert (pred == labels).mean() >= (raw == labels).mean() - 0.015, kind


@pytest.mark.slow
def test_digits_in_other_handwriting_styles_are_read(model2):
    arrays, labels = [], []
    for d in range(10):
        for style in sorted(us.STYLES[d]):
            for seed in range(8):
                arrays.append(prepare(gray_file(drawn(d, style, seed=seed))))
                labels.append(d)
    assert (model2(arrays) == np.array(labels)).mean() >= 0.97
