"""imagefile: a file from outside is opened safely and decoded small, in bounded memory and time.

Each hostile file is generated here (tests/hostile_images.py), never checked in.
Figures: Pillow 13.0 with libjpeg-turbo 3.2 and libtiff 4.7 on this project's
2-core machine.
"""

import io
import os
import subprocess
import sys
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

import imagefile
from imagefile import ImageError, jpeg_scans, read

import hostile_images as hostile

ROOT = Path(__file__).resolve().parents[1]

# What a child process runs: read one file, print the result and its own peak RSS (kB).
# VmHWM, not ru_maxrss: the kernel carries ru_maxrss over from the forking
# parent (pytest, after making a big image) into the child, but VmHWM
# belongs to the new program's memory only.
_CHILD = """
import sys
import imagefile
try:
    gray, alpha, size = imagefile.read(sys.argv[1])
    print("read", gray.shape, float(gray.min()), float(gray.max()), size)
except imagefile.ImageError as e:
    print("error", e)
with open("/proc/self/status") as status:
    print(next(line.split()[1] for line in status if line.startswith("VmHWM:")))
"""


def read_in_child(path, timeout=30):
    """Read `path` in a fresh Python process: (result line, peak RSS in MB, stderr, seconds).

    A child that hangs is killed after `timeout` seconds and fails the test.
    """
    start = time.monotonic()
    try:
        done = subprocess.run([sys.executable, "-c", _CHILD, str(path)], cwd=ROOT, capture_output=True,
                              text=True, timeout=timeout, env={**os.environ, "PYTHONPATH": str(ROOT)})
    except subprocess.TimeoutExpired:
        pytest.fail(f"reading {path} did not end within {timeout} s")
    seconds = time.monotonic() - start
    lines = done.stdout.splitlines()
    assert done.returncode == 0 and len(lines) == 2, (done.stdout, done.stderr)
    return lines[0], int(lines[1]) / 1024, done.stderr, seconds


def error_of(path):
    with pytest.raises(ImageError) as info:
        read(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message
    return message


def digit_image(mode="L", size=(120, 90)):
    """A black bar on white paper (transparent paper where the mode has alpha)."""
    im = Image.new("L", size, 255)
    im.paste(0, (size[0] // 3, size[1] // 4, size[0] // 2, size[1] * 3 // 4))
    if mode == "L":
        return im
    if mode in ("LA", "RGBA"):
        rgba = Image.merge("RGBA", [im, im, im, Image.eval(im, lambda v: 255 - v)])
        return rgba.convert(mode)
    return im.convert(mode)


# --------------------------------------------------------------------------
# What is not a regular file never blocks; each problem is named
# --------------------------------------------------------------------------

def test_a_fifo_is_refused_at_once_not_waited_on(tmp_path):
    fifo = tmp_path / "digit.png"
    os.mkfifo(fifo)
    line, _, stderr, seconds = read_in_child(fifo, timeout=20)
    assert line.startswith("error") and "FIFO" in line and stderr == ""
    assert seconds < 10  # a whole Python start; the read itself is immediate


def test_a_symlink_loop_is_named_as_one(tmp_path):
    (tmp_path / "a.png").symlink_to(tmp_path / "b.png")
    (tmp_path / "b.png").symlink_to(tmp_path / "a.png")
    assert "symlink loop" in error_of(tmp_path / "a.png")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a chmod 000 file: no permission check to test")
def test_an_unreadable_file_is_named_permission_denied(tmp_path):
    path = tmp_path / "locked.png"
    digit_image().save(path)
    path.chmod(0)
    assert "permission denied" in error_of(path)


def test_a_directory_is_named_as_one(tmp_path):
    assert "directory" in error_of(tmp_path)


def test_running_out_of_memory_is_named_not_called_a_bad_image(tmp_path, monkeypatch):
    path = tmp_path / "digit.png"
    digit_image().save(path)

    def no_memory(self):
        raise MemoryError

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_memory)
    assert "too large for this computer's memory" in error_of(path)


def test_a_truncated_image_is_named_truncated_or_corrupt(tmp_path):
    buf = io.BytesIO()
    digit_image(size=(400, 300)).save(buf, "PNG", compress_level=0)
    path = tmp_path / "cut.png"
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    assert "truncated or corrupt" in error_of(path)


@pytest.mark.parametrize("name,content", [("notes.png", b"this is not an image\n"), ("empty.jpg", b"")])
def test_a_file_that_is_no_image_is_named_so(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    assert "not an image Pillow can open" in error_of(path)


def test_formats_the_readme_does_not_list_are_not_opened(tmp_path):
    path = tmp_path / "digit.ppm"
    digit_image().save(path)  # Pillow reads PPM, but the reader promises PNG, JPEG, GIF, BMP, WebP, TIFF
    assert "not an image Pillow can open (it reads PNG, JPEG, GIF, BMP, WebP, TIFF)" in error_of(path)


# --------------------------------------------------------------------------
# Time: no file takes more than a few seconds
# --------------------------------------------------------------------------

def test_a_tiff_of_many_pages_reads_its_first_page_without_counting_them(tmp_path):
    # 20,000 one-pixel pages: 7.2 s before (n_frames read every page), 0.01 s now.
    path = hostile.many_pages_tiff(tmp_path / "pages.tif", pages=20_000)
    start = time.monotonic()
    gray, alpha, size = read(path)
    assert time.monotonic() - start < 2
    assert size == (1, 1) and alpha is None and gray[0, 0] == pytest.approx(128 / 255)


def test_a_progressive_jpeg_of_thousands_of_scans_is_refused_quickly(tmp_path):
    # 2,000 empty scans of 4,000^2: 3.2 s to decode before (8,000^2: 12.7 s), refused in 0.01 s now.
    path = hostile.many_scans_jpeg(tmp_path / "scans.jpg", side=4000, scans=2000)
    start = time.monotonic()
    message = error_of(path)
    assert time.monotonic() - start < 2
    assert f"more than {imagefile.MAX_JPEG_SCANS} scans" in message


def test_a_progressive_jpeg_with_the_usual_scans_is_read(tmp_path):
    path = tmp_path / "progressive.jpg"
    digit_image("RGB", (1600, 1200)).save(path, progressive=True)
    gray, alpha, size = read(path)
    assert size == (1600, 1200) and gray.shape == (600, 800)  # decoded at 1/2 scale by the JPEG decoder
    assert gray.min() < 0.1 and gray.max() > 0.9


def scans_in(data, limit=10 ** 6):
    return jpeg_scans(io.BytesIO(data), limit)


def jpeg_bytes(im, **options):
    buf = io.BytesIO()
    im.save(buf, "JPEG", **options)
    return buf.getvalue()


def test_scan_counter_counts_one_for_a_baseline_jpeg_whatever_its_bytes_hold():
    noise = Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8))
    data = jpeg_bytes(noise, exif=b"Exif\x00\x00" + b"\xff\xda" * 40, restart_marker_blocks=1, quality=95)
    assert data.count(b"\xff\x00") > 10  # stuffed 0xFF bytes in the scan's data
    assert data.count(b"\xff\xda") > 40  # SOS-like bytes inside the EXIF block
    assert any(bytes([0xFF, rst]) in data for rst in range(0xD0, 0xD8))  # restart markers
    assert scans_in(data) == 1


def test_scan_counter_counts_each_repeated_scan_and_stops_past_its_limit(tmp_path):
    base = scans_in(jpeg_bytes(Image.new("L", (64, 64), 255), progressive=True))
    data = hostile.many_scans_jpeg(tmp_path / "s.jpg", side=64, scans=150).read_bytes()
    assert base > 1
    assert scans_in(data) == base + 150
    assert scans_in(data, limit=20) == 21


def test_scan_counter_leaves_the_file_where_it_was():
    f = io.BytesIO(jpeg_bytes(Image.new("L", (64, 64), 255), progressive=True))
    f.seek(17)
    jpeg_scans(f)
    assert f.tell() == 17


# --------------------------------------------------------------------------
# Memory: one full-size copy at most, and a budget
# --------------------------------------------------------------------------

# Kind -> bytes per pixel Pillow holds it in (P 1, I;16 2, RGBA and CMYK 4).
_UNDER_LIMIT = {"transparent_gif": 1, "sixteen_bit_png": 2, "transparent_png": 4, "cmyk_tiff": 4}


@pytest.mark.parametrize("kind", _UNDER_LIMIT)
def test_a_big_image_under_the_limit_is_decoded_in_one_full_size_copy(tmp_path, kind):
    # 6,000^2 (36 MP): peaks measured before / now: GIF 338 / 105 MB, 16-bit PNG 239 / 128,
    # RGBA PNG 308 / 204, CMYK TIFF 338 / 207. The bound: the decoded picture once, plus
    # 100 MB for Python, numpy, Pillow (30 MB) and the strips being converted.
    path = hostile.big_image(tmp_path, kind, side=6000)
    line, peak_mb, stderr, _ = read_in_child(path)
    assert line.startswith("read (1000, 1000)") and stderr == ""
    assert peak_mb < 6000 ** 2 * _UNDER_LIMIT[kind] / 2 ** 20 + 100


@pytest.mark.parametrize("kind,side", [("transparent_gif", hostile.AUDIT_SIDE), ("lossless_webp", 4000)])
def test_a_small_file_of_too_many_pixels_is_refused_before_decoding(tmp_path, kind, side):
    # The audit's 9,400^2 GIF (88 MP): 0.79 GB before. A 4,000^2 lossless WebP costs
    # libwebp's and Pillow's copies, 16 bytes a pixel: 256 MB, over the 200 MB budget.
    path = hostile.big_image(tmp_path, kind, side=side)
    line, peak_mb, stderr, seconds = read_in_child(path)
    assert line.startswith("error") and "too large" in line and stderr == ""
    assert peak_mb < 60


def test_a_progressive_jpeg_counts_its_full_size_coefficients(tmp_path, monkeypatch):
    # Progressive decoding keeps every DCT coefficient of the full picture
    # (2 bytes each), even when the JPEG is decoded at 1/8 scale.
    baseline, progressive = tmp_path / "baseline.jpg", tmp_path / "progressive.jpg"
    im = digit_image("RGB", (800, 800))
    im.save(baseline)
    im.save(progressive, progressive=True)
    # Baseline 800^2 RGB holds 2.56 MB; progressive adds 800^2 * 2 bytes * 3 bands = 3.84 MB.
    monkeypatch.setattr(imagefile, "_DECODE_BYTES", 4_000_000)
    assert read(baseline)[0].shape == (800, 800)
    assert "too large" in error_of(progressive)


@pytest.mark.parametrize("mode", ["RGBA", "LA", "P", "I;16", "CMYK", "RGB", "F"])
def test_strips_give_the_pixels_of_converting_the_whole_image(monkeypatch, mode):
    rng = np.random.default_rng(1)
    if mode == "P":
        im = Image.fromarray(rng.integers(0, 4, (901, 2300), dtype=np.uint8), "L").convert("P")
        im.putpalette([255, 255, 255, 0, 0, 0, 90, 160, 30, 200, 10, 10])
        im.info["transparency"] = 0
    elif mode == "I;16":
        im = Image.fromarray(rng.integers(0, 65536, (901, 2300), dtype=np.uint16))
        assert im.mode == "I;16"
    elif mode == "F":
        im = Image.fromarray(rng.normal(0, 1e3, (901, 2300)).astype(np.float32), "F")
    else:
        im = Image.fromarray(rng.integers(0, 256, (901, 2300, 4), dtype=np.uint8), "RGBA").convert(mode)
    whole = read(im.copy())
    monkeypatch.setattr(imagefile, "_STRIP_PIXELS", 2300 * 7)  # strips of 9 rows (3 x factor 3)
    strips = read(im.copy())
    assert whole[2] == strips[2] == (2300, 901)
    np.testing.assert_allclose(strips[0], whole[0], atol=1e-6)
    assert (whole[1] is None) == (strips[1] is None)
    if whole[1] is not None:
        np.testing.assert_allclose(strips[1], whole[1], atol=1e-6)


# --------------------------------------------------------------------------
# Warnings: none leaks onto stderr
# --------------------------------------------------------------------------

def corrupt_deflate_tiff(path):
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (200, 200), dtype=np.uint8)).save(
        buf, "TIFF", compression="tiff_adobe_deflate")
    data = bytearray(buf.getvalue())
    data[20:200] = bytes(b ^ 0x5A for b in data[20:200])  # inside the strip, past zlib's header
    path.write_bytes(bytes(data))
    return path


def extreme_float_tiff(path):
    a = np.zeros((50, 50), np.float32)
    a[0, 0], a[1, 1], a[2, 2] = 3.4e38, -3.4e38, np.inf
    Image.fromarray(a, "F").save(path)
    return path


@pytest.mark.parametrize("make,outcome", [
    (hostile.bad_tag_tiff, "read"),        # Pillow: UserWarning "Tag data larger than file" and its source line
    (corrupt_deflate_tiff, "error"),       # libtiff: "ZIPDecode: Decoding error at scanline 0 ..." printed from C
    (extreme_float_tiff, "read"),          # numpy: overflow in the float32 range 3.4e38 - -3.4e38
])
def test_decoding_prints_nothing_on_stderr(tmp_path, make, outcome):
    line, _, stderr, _ = read_in_child(make(tmp_path / "x.tif"))
    assert stderr == "" and line.startswith(outcome), (line, stderr)


def test_a_float_image_spanning_float32_is_scaled_by_its_range(tmp_path):
    gray, _, _ = read(extreme_float_tiff(tmp_path / "f.tif"))
    # inf is the top (float32's largest after nan_to_num), -3.4e38 the bottom, 0 half way.
    assert gray[2, 2] == 1.0 and gray[1, 1] == 0.0 and gray[5, 5] == pytest.approx(0.5, abs=1e-3)


def test_reading_fuzzed_files_gives_an_answer_or_one_line_and_nothing_on_stderr(tmp_path):
    # Bytes flipped in small valid files of every format: each read ends in
    # a picture or an ImageError, within seconds, silently.
    rng = np.random.default_rng(13)
    sources = []
    for fmt, options in [("PNG", {}), ("JPEG", {"progressive": True}), ("GIF", {}), ("BMP", {}),
                         ("WEBP", {"lossless": True}), ("TIFF", {"compression": "tiff_lzw"})]:
        buf = io.BytesIO()
        digit_image("RGB", (60, 40)).save(buf, fmt, **options)
        sources.append(buf.getvalue())
    paths = []
    for i in range(60):
        data = bytearray(sources[i % len(sources)])
        for at in rng.integers(0, len(data), 1 + i % 5):
            data[at] = rng.integers(0, 256)
        path = tmp_path / f"fuzz{i}.img"
        path.write_bytes(bytes(data))
        paths.append(path)
    code = ("import sys, imagefile\nfor p in sys.argv[1:]:\n    try: imagefile.read(p)\n"
            "    except imagefile.ImageError as e: assert '\\n' not in str(e)\nprint('done')")
    done = subprocess.run([sys.executable, "-c", code, *map(str, paths)], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.stdout == "done\n" and done.stderr == "", done.stderr[-2000:]
