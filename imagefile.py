"""Open one image file from outside safely and decode it small.

A digit reader is handed files it knows nothing about: a phone photo, a scan,
a FIFO, a symlink loop, or a few hundred kilobytes crafted to decode into
gigabytes or to take minutes. `read` opens only regular files, only in the
formats the README lists, refuses what would cost too much memory or time
with a one-line ImageError that says which problem it is, and shrinks the
picture to at most MAX_SIDE pixels a side while it converts, never holding
more than one full-size copy of it.

Public API:
    ImageError           a one-line, user-facing problem with an image (a ValueError)
    read(source)         path or PIL image -> (gray, alpha, (width, height))
    source_name(source)  how `read` names a source in its errors

Only numpy and Pillow are used; importing the module does nothing.
"""

import ctypes
import errno
import functools
import math
import os
import re
import stat
import struct
import threading
import warnings

import numpy as np
from PIL import Image, UnidentifiedImageError

__all__ = ["ImageError", "FORMATS", "MAX_SIDE", "MAX_PIXELS", "MAX_JPEG_SCANS", "read", "source_name"]


class ImageError(ValueError):
    """A user-facing, one-line problem with an input image (names the file)."""


# The formats the README promises; Pillow's other plugins (EPS, PSD, ICNS,
# FITS ...) are never tried on a user's file. MPO is how Pillow names a JPEG
# that carries a second picture (phones write them for depth or previews).
FORMATS = ("PNG", "JPEG", "GIF", "BMP", "WEBP", "TIFF")
_JPEG = ("JPEG", "MPO")

# Larger images are shrunk to this longest side as soon as they are decoded:
# a digit needs far fewer pixels than a phone photo has, and a 1000 px image
# still keeps a fine pen stroke visible.
MAX_SIDE = 1000

# Pixels decoded at full size, at most. The largest photos phones save by
# default are 48-50 megapixels (8064 x 6048, 8160 x 6120); bigger sensor
# modes save JPEG, which is decoded at 1/2-1/8 scale (this limit then counts
# the reduced pixels). The audit's 88-megapixel files took predict (0.70 GB
# with TensorFlow) to 1.1-2.1 GB.
MAX_PIXELS = 50_000_000

# Bytes a decoder may hold at once: 50 MP at the 4 bytes a pixel of Pillow's
# RGB, RGBA, CMYK, I and F. Measured: a 49-megapixel RGBA PNG or CMYK TIFF
# peaks at 256 MB RSS in a process that only decodes it (30 MB of which is
# Python, numpy and Pillow), so predict stays near 0.70 + 0.23 GB.
_DECODE_BYTES = 4 * MAX_PIXELS

# Bytes held per decoded pixel. libwebp decodes to RGBA in a buffer of its
# own, Pillow copies it to bytes and then into the image: a 25-megapixel
# lossless WebP peaked at 415 MB, so 16 bytes a pixel.
_WEBP_BYTES_PER_PIXEL = 16
# Pillow reads a WebP file whole: its size counts as well (phones' WebP
# photos are a few MB).
_MAX_WEBP_FILE = 64 * 2 ** 20

# A progressive JPEG is decoded scan by scan, each scan walking every block of
# the picture however few bytes it has: 2,000 near-empty scans of 8,000^2 took
# 12.7 s (and the audit's 2,000 scans 96 s). Encoders write 6 (gray) to 10
# (colour) scans with libjpeg's default script, up to 24 for CMYK; 100 empty
# scans of an 89-megapixel JPEG (the decompression-bomb limit) take ~1 s.
MAX_JPEG_SCANS = 100

# Rows are converted and shrunk in strips of about this many pixels, so a
# conversion (RGBA -> premultiplied, CMYK -> RGB, 16 -> 32 bit) never makes a
# second full-size copy of a big image.
_STRIP_PIXELS = 2 ** 22

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
_SWAPS_SIDES = (Image.Transpose.ROTATE_90, Image.Transpose.ROTATE_270,
                Image.Transpose.TRANSPOSE, Image.Transpose.TRANSVERSE)

# One decode at a time: a server reading several uploads at once then holds
# at most one full-size picture, and the warning filters below (process-wide
# state) are changed by one thread only.
_DECODING = threading.Lock()

# A JPEG marker: 0xFF then a byte that is not a stuffed 0x00, a restart
# marker RSTn (both occur inside a scan's data) or another 0xFF (fill).
_MARKER = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")

# Exceptions Pillow's plugins signal a corrupt or truncated file with.
_CORRUPT = (OSError, ValueError, SyntaxError, EOFError, IndexError, KeyError, TypeError,
            struct.error, ZeroDivisionError)


@functools.cache
def _silence_libtiff():
    """Stop the libtiff inside Pillow printing its messages on stderr (once per process).

    libtiff reports a damaged strip ("ZIPDecode: Decoding error at scanline
    0, ...") by printing it from C, where no Python filter reaches, and then
    returns an error that Pillow raises and `read` turns into its one line.
    Found through the process's mapped libraries (Linux); elsewhere the
    messages stay.
    """
    try:
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            paths = {line.split()[-1] for line in maps if "/libtiff" in line}
    except OSError:
        return
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
            for setter in (lib.TIFFSetErrorHandler, lib.TIFFSetWarningHandler):
                setter.restype = ctypes.c_void_p
                setter.argtypes = [ctypes.c_void_p]
                setter(None)
        except (OSError, AttributeError):
            pass


def source_name(source):
    """How `read` names `source` in its errors: the path, or a PIL image's file name.

    Args:
        source: A path (str or os.PathLike) or a PIL.Image.Image.

    Returns:
        str.
    """
    if isinstance(source, Image.Image):
        return getattr(source, "filename", "") or "the image"
    return os.fspath(source)


def _kind(mode):
    """What a stat mode is, for an error that says what was given instead of a file."""
    for test, what in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
                       (stat.S_ISBLK, "a block device")):
        if test(mode):
            return what
    return "not a regular file"


def _open_regular(name):
    """Open `name` for reading if it is a regular file; returns the binary file object.

    Opened without blocking and checked on the open descriptor, so a FIFO
    never waits for a writer and nothing can swap the file between check and
    open.
    """
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise ImageError(f"cannot read {name}: no such file") from None
    except PermissionError:
        raise ImageError(f"cannot read {name}: permission denied") from None
    except OSError as exc:
        why = {errno.ELOOP: "a symlink loop (too many levels of links)",
               errno.ENXIO: "a socket or device, not a file",
               errno.ENOTDIR: "a part of its path is not a directory",
               errno.ENAMETOOLONG: "the name is too long"}.get(exc.errno, exc.strerror or str(exc))
        raise ImageError(f"cannot read {name}: {why}") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            what = _kind(mode)
            raise ImageError(f"cannot read {name}: it is {what}" if what[0] == "a"
                             else f"cannot read {name}: {what}")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def _next_marker(fp, pos):
    """Offset of the first JPEG marker at or after `pos` in fp (None at the end)."""
    while True:
        fp.seek(pos)
        chunk = fp.read(2 ** 20)
        if len(chunk) < 2:
            return None
        found = _MARKER.search(chunk)
        if found:
            return pos + found.start()
        pos += len(chunk) - 1  # a last 0xFF may have its marker byte in the next chunk


def jpeg_scans(fp, limit=MAX_JPEG_SCANS):
    """Count the scans (SOS segments) of the JPEG in a binary file, up to its first EOI.

    Walks the segments by their lengths (an EXIF thumbnail inside APP1 is
    skipped whole) and a scan's entropy-coded data to the next marker, in
    1 MB reads; stops counting past `limit`. A broken structure ends the count
    early: the decoder itself then reports the damage.

    Args:
        fp: a seekable binary file holding a JPEG from offset 0; its position
            is restored.
        limit: stop once more than this many scans are found.

    Returns:
        int, the number of scans (at most limit + 1).
    """
    start = fp.tell()
    try:
        pos, scans = 2, 0
        while scans <= limit:
            fp.seek(pos)
            head = fp.read(4)
            if len(head) < 2 or head[0] != 0xFF or head[1] == 0xD9:
                break
            marker = head[1]
            if marker == 0xFF or marker == 0x01 or 0xD0 <= marker <= 0xD7:
                pos += 1 if marker == 0xFF else 2  # fill byte, or a marker without length
                continue
            if len(head) < 4:
                break
            pos += 2 + struct.unpack(">H", head[2:])[0]
            if marker == 0xDA:
                scans += 1
                pos = _next_marker(fp, pos)
                if pos is None:
                    break
        return scans
    finally:
        fp.seek(start)


def _check_cost(im, name):
    """Refuse an opened image whose decoding would cost too much memory or time.

    A JPEG is set to decode at the smallest DCT scale that keeps it over
    MAX_SIDE (the pixel limit counts what is decoded).
    """
    width, height = im.size
    if width * height > Image.MAX_IMAGE_PIXELS:
        # Checked here too, not only by Pillow's warning: a PIL image handed
        # in was opened under someone else's warning filters.
        raise ImageError(f"cannot read {name}: image is too large (decompression-bomb guard: "
                         f"{width}x{height} is over {Image.MAX_IMAGE_PIXELS:,} pixels)")
    scans = 1
    if im.format in _JPEG:
        factor = math.ceil(max(width, height) / MAX_SIDE)
        if factor > 1:
            # JPEG can decode at 1/2, 1/4 or 1/8 scale directly (DCT scaling),
            # which keeps a 12-megapixel photo from ever being fully decoded.
            im.draft(im.mode, (math.ceil(width / factor), math.ceil(height / factor)))
        fp = getattr(im, "fp", None)
        if fp is not None and fp.seekable():
            scans = jpeg_scans(fp)
            if scans > MAX_JPEG_SCANS:
                raise ImageError(f"cannot read {name}: a progressive JPEG of more than {MAX_JPEG_SCANS} "
                                 "scans takes too long to decode: save it again as a plain JPEG")
    pixels = im.size[0] * im.size[1]
    if pixels > MAX_PIXELS:
        raise ImageError(f"cannot read {name}: image is too large: {width}x{height} is "
                         f"{pixels / 1e6:.0f} megapixels to decode, over the {MAX_PIXELS / 1e6:.0f} "
                         "read: scale it down")
    if im.format == "WEBP":
        held = pixels * _WEBP_BYTES_PER_PIXEL
    else:
        held = pixels * (1 if im.mode in ("1", "L", "P") else 2 if im.mode.startswith("I;16") else 4)
    if scans > 1:
        # A progressive (or multi-scan) JPEG keeps every DCT coefficient of
        # the full-size picture, 2 bytes each, whatever scale it decodes at.
        hmax = max(h for _, h, _, _ in im.layer)
        vmax = max(v for _, _, v, _ in im.layer)
        held += sum(128 * math.ceil(math.ceil(width * h / hmax) / 8) * math.ceil(math.ceil(height * v / vmax) / 8)
                    for _, h, v, _ in im.layer)
    if held > _DECODE_BYTES:
        raise ImageError(f"cannot read {name}: image is too large: decoding this {width}x{height} "
                         f"{im.format} takes {held / 1e6:.0f} MB, over the {_DECODE_BYTES / 1e6:.0f} MB "
                         "allowed: scale it down or save it as a plain JPEG")


def _reducible(im, transparent):
    """Convert a strip to a mode that reduce() averages correctly, gray where it can."""
    mode = im.mode
    if transparent and mode in ("1", "L", "P", "RGB"):
        # A transparent colour key or palette alpha becomes a real alpha band.
        im = im.convert("LA" if mode in ("1", "L") else "RGBA")
        mode = im.mode
    if mode in ("LA", "La", "RGBA", "RGBa", "PA"):
        # Premultiplied alpha, so that shrinking averages colour weighted by
        # opacity: transparent pixels' hidden colour (often black) must not
        # bleed into the picture.
        if mode == "PA":
            im = im.convert("RGBA")
        return im.convert("La" if mode in ("LA", "La") else "RGBa")
    if mode in ("P", "1"):
        return im.convert("L")
    if mode.startswith("I;16"):
        return im.convert("I")  # reduce() has no 16-bit mode; "I" holds it exactly
    if mode not in ("L", "RGB", "I", "F"):
        im = im.convert("RGB")  # CMYK, YCbCr, LAB, HSV, RGBX ...
    if im.mode == "RGB":
        im = im.convert("L")  # Pillow's ITU-R 601 luminance, in C
    return im


def _shrink(im, factor, transparent):
    """_reducible(im).reduce(factor), converted strip by strip (same pixels, one full copy)."""
    if factor <= 1:
        return _reducible(im, transparent)
    width, height = im.size
    # Whole multiples of `factor` rows, so each strip reduces exactly as the
    # whole picture would (reduce() averages factor x factor blocks from the top).
    rows = factor * max(1, _STRIP_PIXELS // (width * factor))
    out = None
    for top in range(0, height, rows):
        part = _reducible(im.crop((0, top, width, min(height, top + rows))), transparent).reduce(factor)
        if out is None:
            out = Image.new(part.mode, (math.ceil(width / factor), math.ceil(height / factor)))
        out.paste(part, (0, top // factor))
    return out


def _decode(im, name):
    """Check and decode an opened PIL image into float32 gray (1 = white) at <= MAX_SIDE.

    Returns (gray, alpha or None, (width, height) of the upright original).
    """
    # Animated GIF/WebP/multi-page TIFF: the first frame is the picture. Asked
    # of the frame the image is on, never by counting frames (n_frames reads
    # every page of a TIFF: 94 s for 130,000 one-pixel pages).
    if im.tell() != 0:
        im.seek(0)
    try:
        orientation = int(im.getexif().get(0x0112, 1))
    except Exception:  # a broken EXIF block must not make a good image fail
        orientation = 1
    transpose = _EXIF_TRANSPOSE.get(orientation)

    width, height = im.size
    _check_cost(im, name)
    if im.format == "TIFF":
        _silence_libtiff()
    im.load()
    transparent = im.info.get("transparency") is not None
    im = _shrink(im, math.ceil(max(im.size) / MAX_SIDE), transparent)
    if transpose is not None:
        im = im.transpose(transpose)

    alpha = None
    if im.mode in ("La", "RGBa"):
        # Pillow's own luminance conversion (ITU-R 601, as convert('L')) of
        # the premultiplied colour bands, and the opacity band.
        bands = im.split()
        alpha = np.asarray(bands[-1], np.float32) * np.float32(1 / 255)
        im = bands[0] if im.mode == "La" else Image.merge("RGB", bands[:3]).convert("L")
    if im.mode in ("I", "F"):
        # 16/32-bit and float images: scale by the values actually used, so a
        # 16-bit scan is neither clipped to white nor squashed to black. In
        # float64: the range of float32 extremes (+-3.4e38) overflows float32.
        a = np.nan_to_num(np.asarray(im, np.float32)).astype(np.float64)
        lo, hi = float(a.min()), float(a.max())
        gray = ((a - lo) / (hi - lo) if hi > lo else np.ones_like(a)).astype(np.float32)
    else:
        gray = np.asarray(im, np.float32) * np.float32(1 / 255)
        if alpha is not None:
            # Composite the (premultiplied) colour on white paper.
            gray += 1.0 - alpha
    if transpose in _SWAPS_SIDES:
        width, height = height, width
    return np.clip(gray, 0.0, 1.0), alpha, (width, height)


def _load(source, name):
    """Open (if a path), check and decode `source`; warnings silenced, one thread at a time."""
    with _DECODING, warnings.catch_warnings(), np.errstate(all="ignore"):
        # Pillow's metadata warnings (odd TIFF tags, EXIF) do not stop a good
        # picture and tell the user nothing they can act on: not shown. An
        # image over Image.MAX_IMAGE_PIXELS only warns by default; for a digit
        # reader such a file is an attack or a mistake, so refuse it.
        warnings.simplefilter("ignore")
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        if isinstance(source, Image.Image):
            if source.format is not None and source.format not in FORMATS + _JPEG:
                raise ImageError(f"cannot read {name}: a {source.format} image, not one of "
                                 "PNG, JPEG, GIF, BMP, WebP, TIFF")
            return _decode(source, name)
        with _open_regular(name) as f:
            if os.fstat(f.fileno()).st_size == 0:
                raise ImageError(f"cannot read {name}: not an image Pillow can open (the file is empty)")
            try:
                im = Image.open(f, formats=FORMATS)
            except UnidentifiedImageError:
                raise ImageError(f"cannot read {name}: not an image Pillow can open "
                                 "(it reads PNG, JPEG, GIF, BMP, WebP, TIFF)") from None
            with im:
                if im.format == "WEBP" and os.fstat(f.fileno()).st_size > _MAX_WEBP_FILE:
                    raise ImageError(f"cannot read {name}: a WebP file over "
                                     f"{_MAX_WEBP_FILE // 2 ** 20} MB: save it as JPEG or PNG")
                return _decode(im, name)


def read(source):
    """Open and decode an image from outside, bounded in memory and time.

    Reads only a regular file (a FIFO, device or socket would block or never
    end) in PNG, JPEG, GIF, BMP, WebP or TIFF; the first frame of an
    animation or multi-page file; any Pillow mode (1, L, P, RGB, RGBA, LA,
    PA, I;16, I, F, CMYK ...), transparency composited on white paper, EXIF
    orientation applied, shrunk to at most MAX_SIDE pixels a side.

    Args:
        source: A path (str or os.PathLike) or a PIL.Image.Image (decoded from
            its first frame; an image from a file is checked as a file is).

    Returns:
        (gray, alpha, (width, height)): gray is float32 (H, W) in [0, 1],
        1 = white, with transparency already composited on white; alpha is
        the float32 (H, W) opacity in [0, 1], or None when the image has none;
        (width, height) is the upright original's size in pixels, so boxes
        scale back by width / W and height / H.

    Raises:
        ImageError: one line naming the file and the problem: no such file,
            permission denied, a symlink loop, a directory/FIFO/device, not
            an image Pillow can open (or its data truncated or corrupt), too
            large (decompression-bomb guard, over MAX_PIXELS, over
            MAX_JPEG_SCANS scans) or too large for memory.
    """
    name = source_name(source)
    try:
        return _load(source, name)
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageError(f"cannot read {name}: image is too large "
                         "(decompression-bomb guard)") from None
    except MemoryError:
        raise ImageError(f"cannot read {name}: too large for this computer's memory") from None
    except PermissionError:
        raise ImageError(f"cannot read {name}: permission denied") from None
    except _CORRUPT as exc:
        # Pillow's plugins signal a corrupt or truncated file with any of these.
        raise ImageError(f"cannot read {name}: not an image Pillow can open "
                         f"(its data is truncated or corrupt: {_first_line(exc)})") from None


def _first_line(exc):
    """An exception's message cut to one short line (it may echo bytes of the file)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 80 else text[:77] + "..."
