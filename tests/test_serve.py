"""serve.py over HTTP: the API's answers, its errors, and a server that keeps serving."""

import concurrent.futures
import http.client
import io
import json
import re
import signal
import socket
import struct
import subprocess
import sys
import urllib.request
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import cli
import predict
import serve

pytest.register_assert_rewrite("serve_fixtures")  # imported here before pytest_plugins loads it
from serve_fixtures import serving  # noqa: E402

pytest_plugins = ["serve_fixtures"]

IMAGES = Path(__file__).resolve().parent.parent / "images"


def request(server, method, path, body=None, headers=None):
    """One request on a fresh connection; returns (status, headers, parsed JSON or raw bytes)."""
    conn = http.client.HTTPConnection(*server.server_address[:2], timeout=60)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        data = response.read()
    finally:
        conn.close()
    if response.getheader("Content-Type") == "application/json":
        data = json.loads(data)
    return response.status, response, data


def post(server, body, query=""):
    return request(server, "POST", "/api/predict" + query, body)


def png_bytes(image):
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def mnist_png(array, scale=4):
    """A MNIST digit as a person's file: black ink on white, enlarged."""
    ink = Image.fromarray(np.uint8(array.reshape(28, 28) * 255)).resize((28 * scale, 28 * scale),
                                                                         Image.Resampling.BILINEAR)
    return png_bytes(Image.fromarray(255 - np.asarray(ink)))


def number_png(arrays, scale=4, gap=24):
    """MNIST digits side by side on white paper, as a written number."""
    side = 28 * scale
    page = np.zeros((side + 2 * gap, len(arrays) * (side + gap) + gap), np.uint8)
    for i, a in enumerate(arrays):
        ink = Image.fromarray(np.uint8(a.reshape(28, 28) * 255)).resize((side, side), Image.Resampling.BILINEAR)
        x = gap + i * (side + gap)
        page[gap:gap + side, x:x + side] = np.asarray(ink)
    return png_bytes(Image.fromarray(255 - page))


def reference(body, classifier, single=False, accept_all=False):
    """What the command line's --json says about the same bytes with the same model."""
    (reading,) = predict.read_images([Image.open(io.BytesIO(body))], classifier, single=single, accept_all=accept_all)
    return predict.record(serve.UPLOAD_NAME, reading, accept_all=accept_all)


def png_claiming_size(width, height):
    """A tiny, valid-looking PNG whose header claims width × height pixels (a decompression bomb)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit gray
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def test_a_digit_is_answered_with_the_record_json_prints(server, served_classifier, mnist):
    body = mnist_png(mnist.test.images[0])
    status, _, rec = post(server, body)
    assert status == 200
    assert rec == reference(body, served_classifier)
    assert rec["digit"] == mnist.test.labels[0] and rec["number"] == str(mnist.test.labels[0])
    assert len(rec["digits"]) == 1 and len(rec["digits"][0]["probabilities"]) == 10


def test_a_photo_from_images_reads_as_its_label(server):
    status, _, rec = post(server, (IMAGES / "3_photo.jpg").read_bytes())
    assert status == 200 and rec["number"] == "3"


def test_a_number_is_answered_digit_by_digit_with_boxes(server, served_classifier, mnist):
    body = number_png(mnist.test.images[1:5])
    status, _, rec = post(server, body)
    assert status == 200
    assert rec == reference(body, served_classifier)
    assert rec["number"] == "".join(str(v) for v in mnist.test.labels[1:5])
    lefts = [d["box"][0] for d in rec["digits"]]
    assert lefts == sorted(lefts) and len(lefts) == 4


def test_single_reads_a_number_as_one_digit(server, served_classifier, mnist):
    body = number_png(mnist.test.images[1:3])
    status, _, rec = post(server, body, "?single=1")
    assert status == 200 and len(rec["digits"]) == 1
    assert rec == reference(body, served_classifier, single=True)


class NothingIsADigit:
    """A "not a digit" score that refuses every input, so that refusals do not hang on calibration."""

    def digitness(self, logits):
        return np.full(len(logits), 0.1, np.float32)


@pytest.fixture
def refusing_server(served_classifier):
    """A second server whose classifier refuses every piece of ink as "not a digit"."""
    with serving(predict.Classifier(served_classifier.model, NothingIsADigit())) as running:
        yield running


def test_a_refused_piece_is_the_record_json_prints_and_accept_all_lifts_it(refusing_server, mnist):
    classifier = refusing_server.classify
    body = number_png(mnist.test.images[1:3])
    status, _, rec = post(refusing_server, body)
    assert status == 200 and rec == reference(body, classifier)
    assert rec["number"] == "?" and rec["rejected"] is True
    assert len(rec["digits"]) == 2 and all(d["rejected"] and d["digit"] is None for d in rec["digits"])
    status, _, rec = post(refusing_server, body, "?accept_all=1")
    assert status == 200 and rec == reference(body, classifier, accept_all=True)
    assert rec["number"] == "".join(str(v) for v in mnist.test.labels[1:3])


def test_a_server_started_with_accept_all_refuses_nothing(served_classifier, mnist):
    body = mnist_png(mnist.test.images[0])
    with serving(predict.Classifier(served_classifier.model, NothingIsADigit()), accept_all=True) as running:
        status, _, rec = post(running, body)
    assert status == 200 and rec["digit"] == mnist.test.labels[0] and "rejected" not in rec


def test_inputs_adds_the_28x28_input_the_network_saw(server, served_classifier, mnist):
    body = number_png(mnist.test.images[5:7])
    status, _, rec = post(server, body, "?inputs=1")
    assert status == 200
    (reading,) = predict.read_images([Image.open(io.BytesIO(body))], served_classifier)
    for entry, digit in zip(rec["digits"], reading.digits, strict=True):
        seen = np.array(entry["input"])
        assert seen.shape == (28, 28) and seen.min() >= 0 and seen.max() <= 255
        np.testing.assert_allclose(seen / 255, digit.array, atol=0.5 / 255 + 1e-6)
    status, _, plain = post(server, body)
    assert "input" not in plain["digits"][0]


@pytest.mark.parametrize("body, says", [
    (b"this is not an image at all", "not an image"),
    (b"", "no body"),
    (png_claiming_size(20_000, 20_000), "decompression-bomb"),   # over 2 × Pillow's limit: its error
    (png_claiming_size(10_000, 10_000), "decompression-bomb"),   # over its limit only: its warning
    (png_bytes(Image.new("L", (300, 200), 255)), "no digit found"),
], ids=["garbage", "empty", "bomb", "bomb-warning", "blank"])
@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")  # Pillow warns, then we refuse
def test_a_bad_image_is_a_400_with_a_one_line_json_error(server, body, says):
    status, response, rec = post(server, body)
    assert status == 400 and response.getheader("Content-Type") == "application/json"
    assert set(rec) == {"error"} and says in rec["error"] and "\n" not in rec["error"]


def test_a_truncated_png_is_a_400(server, mnist):
    whole = mnist_png(mnist.test.images[0])
    status, _, rec = post(server, whole[: len(whole) // 2])
    assert status == 400 and "cannot read the image" in rec["error"]


def test_an_unknown_parameter_is_a_400_naming_it(server, mnist):
    status, _, rec = post(server, mnist_png(mnist.test.images[0]), "?colour=red")
    assert status == 400 and "colour" in rec["error"]


def raw_exchange(server, data):
    """Send `data` on a plain socket and read everything until the server closes the connection."""
    with socket.create_connection(server.server_address[:2], timeout=10) as sock:
        sock.sendall(data)
        return sock.makefile("rb").read()


def json_of(reply):
    return json.loads(reply.split(b"\r\n\r\n", 1)[1])


@pytest.mark.parametrize("expect", [b"", b"Expect: 100-continue\r\n"], ids=["plain", "expect-100"])
def test_an_oversized_body_is_refused_from_its_content_length_before_it_is_sent(server, expect):
    # Not one byte of body is sent: the server must answer, and close, without waiting for it.
    reply = raw_exchange(server, b"POST /api/predict HTTP/1.1\r\nHost: x\r\n%sContent-Length: %d\r\n\r\n"
                         % (expect, serve.MAX_BODY + 1))
    assert reply.startswith(b"HTTP/1.1 413 ") and "limit" in json_of(reply)["error"]


def test_an_oversized_chunked_body_is_refused_while_it_is_read(server):
    # Chunks of 1 MiB up to the limit, then the header of one more: refused before its data comes.
    chunk = b"\0" * (1 << 20)
    reply = raw_exchange(server, b"POST /api/predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                         + b"100000\r\n%s\r\n" % chunk * (serve.MAX_BODY // len(chunk)) + b"100000\r\n")
    assert reply.startswith(b"HTTP/1.1 413 ") and "limit" in json_of(reply)["error"]


@pytest.mark.parametrize("size_line", [b"-5", b"zz", b""], ids=["negative", "not-hex", "missing"])
def test_a_malformed_chunked_body_is_a_400(server, size_line):
    reply = raw_exchange(server, b"POST /api/predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                         + size_line + b"\r\nabc")
    assert reply.startswith(b"HTTP/1.1 400 ") and "malformed" in json_of(reply)["error"]


def test_a_chunked_body_under_the_limit_is_read(server, mnist):
    body = mnist_png(mnist.test.images[0])
    status, _, rec = request(server, "POST", "/api/predict", body=iter([body[:100], body[100:]]))  # chunked
    assert status == 200 and rec["number"] == str(mnist.test.labels[0])


@pytest.mark.parametrize("method, path, allow", [
    ("GET", "/api/predict", "POST"), ("POST", "/", "GET"), ("DELETE", "/api/health", "GET"),
    ("PUT", "/api/predict", "POST")])
def test_a_wrong_method_is_a_405_that_says_which_is_allowed(server, method, path, allow):
    status, response, rec = request(server, method, path, body=b"x" if method in ("POST", "PUT") else None)
    assert status == 405 and response.getheader("Allow") == allow and allow in rec["error"]


@pytest.mark.parametrize("path", ["/nope", "/api/predict/../../etc/passwd", "/page.html", "/serve.py"])
def test_an_unknown_path_is_a_404_and_no_file_is_served(server, path):
    status, _, rec = request(server, "GET", path)
    assert status == 404 and "error" in rec


def test_health_names_the_model(server):
    status, _, rec = request(server, "GET", "/api/health")
    assert status == 200 and rec == {"status": "ok", "model": "deep-mnist-cnn", "max_upload_bytes": serve.MAX_BODY}


def test_the_page_is_self_contained_and_forbids_anything_from_outside(server):
    status, response, page = request(server, "GET", "/")
    text = page.decode()
    assert status == 200 and response.getheader("Content-Type").startswith("text/html")
    assert "<canvas" in text and "/api/predict" in text
    assert "http://" not in text and "https://" not in text and "//" + "cdn" not in text
    assert "default-src 'none'" in response.getheader("Content-Security-Policy")


def test_concurrent_clients_are_all_answered_correctly(server, served_classifier, mnist):
    bodies = [mnist_png(mnist.test.images[i]) for i in range(8)] + [number_png(mnist.test.images[8:11])]
    expected = [reference(b, served_classifier) for b in bodies]

    def client(c):
        conn = http.client.HTTPConnection(*server.server_address[:2], timeout=60)  # keep-alive
        answers = []
        for r in range(6):
            k = (c + r) % len(bodies)
            conn.request("POST", "/api/predict", body=bodies[k])
            response = conn.getresponse()
            answers.append((k, response.status, json.loads(response.read())))
        conn.close()
        return answers

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = [a for result in pool.map(client, range(8)) for a in result]
    assert len(answers) == 48
    for k, status, rec in answers:
        assert status == 200 and rec["number"] == expected[k]["number"]
        for got, want in zip(rec["digits"], expected[k]["digits"], strict=True):
            np.testing.assert_allclose(got["probabilities"], want["probabilities"], atol=1e-3)


def test_the_server_keeps_serving_after_bad_requests_and_a_failing_one(server, mnist, monkeypatch):
    for body in (b"junk", b"", png_claiming_size(20_000, 20_000)):
        assert post(server, body)[0] == 400
    assert raw_exchange(server, b"GET / nonsense\r\n\r\n").startswith(b"HTTP/1.1 400 ")  # not even HTTP

    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(predict, "read_images", broken)
    status, _, rec = post(server, mnist_png(mnist.test.images[0]))
    assert status == 500 and "internal error" in rec["error"]
    monkeypatch.undo()
    status, _, rec = post(server, mnist_png(mnist.test.images[0]))
    assert status == 200 and rec["number"] == str(mnist.test.labels[0])


def test_a_port_in_use_is_a_one_line_user_error(served_classifier):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(cli.UserError, match=r"cannot listen on 127\.0\.0\.1:\d+: .* --port"):
            serve.run(served_classifier, "127.0.0.1", taken.getsockname()[1])


def test_a_port_out_of_range_is_a_one_line_user_error(served_classifier):
    with pytest.raises(cli.UserError, match=r"cannot listen on 127\.0\.0\.1:70000: .*0-65535"):
        serve.run(served_classifier, "127.0.0.1", 70000)


ROOT = Path(__file__).resolve().parent.parent


def test_predict_2_serve_prints_its_url_answers_and_stops_on_ctrl_c(served_checkpoint):
    proc = subprocess.Popen([sys.executable, str(ROOT / "predict_2.py"), "--serve", "--port", "0",
                             "--checkpoint", served_checkpoint], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        url = re.search(r"http://127\.0\.0\.1:\d+/", proc.stdout.readline()).group(0)
        with urllib.request.urlopen(url + "api/health", timeout=60) as response:
            assert json.load(response)["model"] == "deep-mnist-cnn"
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and err.strip().endswith("interrupted")
