"""Small files that are expensive to decode: the worst cases a digit reader is handed.

Issue 13's fault audit found these: a few-hundred-kilobyte file that decodes to
~9,400 x 9,400 pixels (lossless WebP, transparent GIF or PNG, CMYK or RGBA TIFF,
16-bit PNG) pushed predict past 1 GB; a progressive JPEG of 2,000 scans took
96 s; a TIFF of 130,000 one-pixel pages took 94 s. `worst_case_images` writes
them (generated, never checked in) for tests/test_imagefile.py and for
tests/benchmark.py, which reports predict's peak memory on the worst of them.

Only Pillow and the standard library; importing the module does nothing.
"""

import io
import re
import struct
from pathlib import Path

from PIL import Image, ImageDraw

__all__ = ["AUDIT_SIDE", "BIG_KINDS", "big_image", "many_scans_jpeg", "many_pages_tiff", "bad_tag_tiff",
           "worst_case_images"]

# The side of the audit's big-but-small images (88 megapixels).
AUDIT_SIDE = 9400

# Kind -> (file name, Pillow mode, save options) of the big-but-small images.
BIG_KINDS = {
    "lossless_webp": ("lossless.webp", "RGB", {"lossless": True, "method": 0}),
    "transparent_gif": ("transparent.gif", "P", {"transparency": 0}),
    "transparent_png": ("transparent.png", "RGBA", {"compress_level": 1}),
    "sixteen_bit_png": ("sixteen_bit.png", "I;16", {"compress_level": 1}),
    "cmyk_tiff": ("cmyk.tif", "CMYK", {"compression": "tiff_adobe_deflate"}),
    "rgba_tiff": ("rgba.tif", "RGBA", {"compression": "tiff_adobe_deflate"}),
}

# Paper and ink of each mode: white paper (transparent where the mode has
# alpha) and a black stroke, so a reader finds one digit in each.
_PAPER_INK = {
    "RGB": ((255, 255, 255), (0, 0, 0)),
    "P": (0, 1),  # palette: 0 transparent white, 1 black
    "RGBA": ((255, 255, 255, 0), (0, 0, 0, 255)),
    "I;16": (65535, 0),
    "CMYK": ((0, 0, 0, 0), (0, 0, 0, 255)),
}


def big_image(folder, kind, side=AUDIT_SIDE):
    """Write a side x side image of a one-stroke "1" that compresses to a small file.

    Args:
        folder: where to write (a str or Path).
        kind: a key of BIG_KINDS.
        side: width and height in pixels (default AUDIT_SIDE, the audit's).

    Returns:
        The Path written.
    """
    name, mode, options = BIG_KINDS[kind]
    paper, ink = _PAPER_INK[mode]
    im = Image.new(mode, (side, side), paper)
    if mode == "P":
        im.putpalette([255, 255, 255, 0, 0, 0] + [0] * 762)
    # A fat vertical stroke in the middle third: a "1" a reader can find.
    ImageDraw.Draw(im).rectangle((side * 9 // 20, side // 3, side * 11 // 20, side * 2 // 3), fill=ink)
    path = Path(folder) / name
    im.save(path, **options)
    return path


def _jpeg_segments(data):
    """(marker, start, end) of each segment of a JPEG, a scan's entropy-coded data included."""
    out, i = [], 2
    while data[i + 1] != 0xD9:
        marker = data[i + 1]
        end = i + 2 + struct.unpack(">H", data[i + 2:i + 4])[0]
        if marker == 0xDA:  # entropy-coded data runs to the next marker but RSTn and stuffed 0xFF00
            end = re.compile(rb"\xff[^\x00\xd0-\xd7]").search(data, end).start()
        out.append((marker, i, end))
        i = end
    out.append((0xD9, i, i + 2))
    return out


def many_scans_jpeg(path, side=8000, scans=2000):
    """Write a white progressive JPEG whose first AC scan is repeated `scans` times.

    Every repeat is a valid scan over all side^2 / 64 blocks that codes nothing
    but end-of-band runs (a few bytes), so the file stays small while a decoder
    walks every block once per scan: 2,000 scans of 8,000^2 took 12.7 s with
    Pillow 13 / libjpeg-turbo 3.2 on this project's machine.

    Args:
        path: file to write.
        side: width and height in pixels.
        scans: how many times the AC scan is repeated.

    Returns:
        The Path written.
    """
    buf = io.BytesIO()
    Image.new("L", (side, side), 255).save(buf, "JPEG", progressive=True)
    data = buf.getvalue()
    segments = _jpeg_segments(data)
    for k, (marker, start, end) in enumerate(segments):
        if marker == 0xDA and data[start + 7] > 0:  # one component: Ss is byte 7
            # With its own Huffman table (progressive JPEGs carry one per scan).
            first = segments[k - 1][1] if segments[k - 1][0] == 0xC4 else start
            scan = data[first:end]
            break
    eoi = segments[-1][1]
    path = Path(path)
    path.write_bytes(data[:eoi] + scan * scans + data[eoi:])
    return path


def _one_pixel_tiff(pages, extra=()):
    """Bytes of a little-endian TIFF of `pages` one-pixel gray pages sharing one pixel.

    extra: more (tag, type, count, value) entries for every page.
    """
    tags = [(256, 3, 1, 1), (257, 3, 1, 1), (258, 3, 1, 8), (259, 3, 1, 1), (262, 3, 1, 1),  # 1x1, 8 bit, raw, gray
            (273, 4, 1, 8), (277, 3, 1, 1), (278, 3, 1, 1), (279, 4, 1, 1)  # the strip: the byte at 8
            ] + list(extra)
    ifd_size = 2 + 12 * len(tags) + 4
    first = 10
    out = bytearray(b"II*\x00" + struct.pack("<I", first) + b"\x80\x00")
    for page in range(pages):
        following = first + (page + 1) * ifd_size if page + 1 < pages else 0
        out += struct.pack("<H", len(tags))
        for tag, kind, count, value in tags:
            field = struct.pack("<HH", value, 0) if kind == 3 and count == 1 else struct.pack("<I", value)
            out += struct.pack("<HHI", tag, kind, count) + field
        out += struct.pack("<I", following)
    return bytes(out)


def many_pages_tiff(path, pages=130_000):
    """Write a TIFF of `pages` one-pixel pages (114 bytes each), all sharing one pixel.

    Built byte by byte because Pillow's save_all needs one image object per page.

    Args:
        path: file to write.
        pages: number of pages (image file directories).

    Returns:
        The Path written.
    """
    path = Path(path)
    path.write_bytes(_one_pixel_tiff(pages))
    return path


def bad_tag_tiff(path):
    """Write a one-pixel TIFF whose ImageDescription lies past the end of the file.

    Pillow reads the pixel but warns ("Tag data larger than file ...") as it
    opens it, a warning Python prints with its source line unless filtered.

    Args:
        path: file to write.

    Returns:
        The Path written.
    """
    path = Path(path)
    path.write_bytes(_one_pixel_tiff(1, [(270, 2, 1000, 2 ** 31)]))
    return path


def worst_case_images(folder, side=AUDIT_SIDE):
    """Write every hostile image of issue 13 into `folder`.

    Args:
        folder: an existing directory (a str or Path).
        side: the side of the big-but-small images (default AUDIT_SIDE).

    Returns:
        dict kind -> Path: the BIG_KINDS, "many_scans_jpeg" and "many_pages_tiff".
    """
    folder = Path(folder)
    images = {kind: big_image(folder, kind, side) for kind in BIG_KINDS}
    images["many_scans_jpeg"] = many_scans_jpeg(folder / "many_scans.jpg")
    images["many_pages_tiff"] = many_pages_tiff(folder / "many_pages.tif")
    return images
