"""The draw-a-digit page and the HTTP API behind `predict_1.py --serve` and `predict_2.py --serve`.

    GET  /                 page.html: draw a digit or a number, or upload a photo, and see it read
    POST /api/predict      the raw bytes of an image → the JSON record `--json` prints
    GET  /api/health       {"status": "ok", "model": MODEL_ID, "max_upload_bytes": MAX_BODY}

`POST /api/predict?single=1` reads the image as one digit (`--single`); `?accept_all=1` never
answers "not a digit" (`--accept-all`); `?inputs=1` adds to each digit the 28×28 input the network
saw (`"input"`: 28 rows of 28 values, 0 = paper, 255 = ink).
Errors are `{"error": MESSAGE}` with status 400 (no image, not an image, or no digit in it),
413 (over MAX_BODY), 404 (unknown path) or 405 (wrong method).

Nothing from a request names a file or runs as code: the body is only ever handed to Pillow as
bytes, and the page is the one file next to this script.
"""

import io
import json
import socket
import threading
import traceback
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import numpy as np
from PIL import Image, UnidentifiedImageError

import cli
import predict

# The largest body accepted, checked from Content-Length before anything is read (and counted
# while a chunked body is read): a 12-megapixel phone JPEG is 3–8 MB, so 20 MB leaves room for
# PNG and TIFF photos while a few concurrent uploads stay far below the memory budget.
MAX_BODY = 20 * 1024 * 1024

# Seconds a connection may sit idle or stall mid-body before its thread gives up on it.
TIMEOUT = 30

PAGE = Path(__file__).resolve().with_name("page.html")

# The page may run its own inline script and style and talk to this server, and nothing else:
# no script, style, font or image from anywhere on the internet.
PAGE_POLICY = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
               "img-src blob: data:; connect-src 'self'; base-uri 'none'; form-action 'none'")

UPLOAD_NAME = "upload"  # the record's "image": never a name taken from the request


class ApiError(Exception):
    """A request the API refuses: an HTTP status and the one-line message sent as {"error": …}."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


class SharedClassifier:
    """One restored model shared by all request threads: one network call at a time.

    A request spends most of its time decoding and preparing its image, which runs in parallel;
    the network call (≈ 4 ms for one digit on 2 cores) waits for the lock. Batching the requests
    that arrive together into one call was measured against this lock with tests/load_serve.py
    (8 clients × 50 requests, medians of 6 alternating runs on 2 cores): its batches held 1.5–2
    requests on average, throughput stayed the same (104 vs 102 requests/s for 112-px digit PNGs,
    72 vs 70 for 480×320 drawings), the median latency grew (66 vs 55 ms) and only p99 fell
    (104 vs 173 ms). Not worth a queue and a worker thread, so the lock stays.

    Args:
        classify: a predict.Classifier.
    """

    def __init__(self, classify):
        self._classify = classify
        self._lock = threading.Lock()

    def __call__(self, arrays):
        """Classify (K, 28, 28) float32 inputs; see predict.Classifier."""
        with self._lock:
            return self._classify(arrays)


def read_body(rfile, headers, limit=MAX_BODY):
    """Read a request's body, refusing it as soon as it is known to be over `limit` bytes.

    Args:
        rfile: the request's input stream.
        headers: the request's headers.
        limit: the most bytes accepted.

    Returns:
        The body as bytes.

    Raises:
        ApiError: 413 over the limit, 400 for a body cut short or malformed.
    """
    if "chunked" in headers.get("Transfer-Encoding", "").lower():
        return _read_chunked(rfile, limit)
    try:
        # HTTP/1.1: a request with neither Content-Length nor chunked encoding has an empty body.
        length = int(headers.get("Content-Length", "0"))
    except ValueError:
        length = -1
    if length < 0:
        raise ApiError(HTTPStatus.BAD_REQUEST, "Content-Length is not a byte count")
    if length > limit:
        raise ApiError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, _too_large(limit))
    body = rfile.read(length)
    if len(body) < length:
        raise ApiError(HTTPStatus.BAD_REQUEST, "the request ended before all its Content-Length bytes came")
    return body


def _read_chunked(rfile, limit):
    """A Transfer-Encoding: chunked body, counted against `limit` chunk by chunk as it arrives."""
    parts, total = [], 0
    while True:
        line = rfile.readline(64)
        try:
            size = int(line.split(b";")[0].strip(), 16)
        except ValueError:
            size = -1
        if size < 0:
            raise ApiError(HTTPStatus.BAD_REQUEST, "malformed chunked body")
        if size == 0:
            while rfile.readline(1024).strip():  # trailer headers, up to the blank line
                pass
            return b"".join(parts)
        total += size
        if total > limit:
            raise ApiError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, _too_large(limit))
        chunk = rfile.read(size)
        if len(chunk) < size or rfile.readline(3).strip():
            raise ApiError(HTTPStatus.BAD_REQUEST, "malformed chunked body")
        parts.append(chunk)


def _too_large(limit):
    return f"the image is over the {limit // 2 ** 20} MB limit: send a smaller file"


def open_upload(body):
    """Open an uploaded image's bytes with Pillow (the header only; decoding comes later).

    The pixel count is checked here against Pillow's decompression-bomb limit rather than by
    turning its warning into an error: warning filters are process-wide and not thread-safe.

    Args:
        body: the request's bytes.

    Returns:
        An unloaded PIL image, for imageprepare.

    Raises:
        ApiError: 400 for an empty body, bytes that are no image, or an image too large to decode.
    """
    if not body:
        raise ApiError(HTTPStatus.BAD_REQUEST, "the request has no body: send the image's bytes")
    try:
        image = Image.open(io.BytesIO(body))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        image = None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError, IndexError, KeyError,
            TypeError, MemoryError):
        # Pillow's format plugins signal a corrupt header with any of these.
        raise ApiError(HTTPStatus.BAD_REQUEST, "cannot read the image: not an image Pillow can open "
                                               "(PNG, JPEG, GIF, BMP, WebP, TIFF)") from None
    if image is None or image.width * image.height > Image.MAX_IMAGE_PIXELS:
        raise ApiError(HTTPStatus.BAD_REQUEST, f"cannot read the image: over {Image.MAX_IMAGE_PIXELS:,} "
                                               "pixels (decompression-bomb guard)")
    return image


def predict_record(body, classify, *, single=False, accept_all=False, inputs=False):
    """Read the digit or number in an uploaded image: the API's answer.

    Args:
        body: the image's bytes, any format predict_2.py reads.
        classify: the shared classifier.
        single: read the image as one digit.
        accept_all: never refuse a piece as "not a digit".
        inputs: add each digit's 28×28 input (`"input"`, rows of 0–255, 255 = ink).

    Returns:
        The record `--json` prints for the image, named UPLOAD_NAME.

    Raises:
        ApiError: 400 when the image cannot be read or holds no digit.
    """
    image = open_upload(body)
    with image:
        (reading,) = predict.read_images([image], classify, single=single, accept_all=accept_all)
    rec = predict.record(UPLOAD_NAME, reading, accept_all=accept_all)
    if "error" in rec:
        raise ApiError(HTTPStatus.BAD_REQUEST, rec["error"])
    if inputs:
        for entry, digit in zip(rec["digits"], reading.digits):
            entry["input"] = np.uint8(np.clip(digit.array, 0, 1) * 255 + 0.5).tolist()
    return rec


def _flag(query, name):
    values = query.pop(name, ["0"])
    value = values[-1].lower()
    if value in ("", "1", "true", "yes"):
        return True
    if value in ("0", "false", "no"):
        return False
    raise ApiError(HTTPStatus.BAD_REQUEST, f"?{name}= takes 1 or 0, not {value[:20]!r}")


class Handler(BaseHTTPRequestHandler):
    """Routes a request to the page, the health check or the predictor; every failure is JSON."""

    server_version = "mnist-predict"
    protocol_version = "HTTP/1.1"  # keep-alive: the page asks again at every pause in drawing
    timeout = TIMEOUT

    ROUTES = {"/": {"GET": "page"}, "/api/health": {"GET": "health"}, "/api/predict": {"POST": "predict"}}

    def _dispatch(self, method):
        allowed = {}
        try:
            url = urlsplit(self.path)
            allowed = self.ROUTES.get(url.path)
            if allowed is None:
                raise ApiError(HTTPStatus.NOT_FOUND, f"no such page: {url.path[:100]} "
                                                     "(the API is POST /api/predict and GET /api/health)")
            name = allowed.get("GET" if method == "HEAD" else method)
            if name is None:
                raise ApiError(HTTPStatus.METHOD_NOT_ALLOWED,
                               f"{url.path} takes {' or '.join(allowed)}, not {method}")
            getattr(self, "_" + name)(parse_qs(url.query, keep_blank_values=True), head=method == "HEAD")
        except ApiError as e:
            if method not in ("GET", "HEAD"):
                self.close_connection = True  # a body left unread must not be parsed as the next request
            extra = {"Allow": ", ".join(allowed)} if e.status == HTTPStatus.METHOD_NOT_ALLOWED else {}
            self._json(e.status, {"error": str(e)}, extra)
        except (TimeoutError, ConnectionError):
            self.close_connection = True  # the client stalled or left: nobody to answer
        except Exception:  # a bug must cost one request, never the server
            self.log_error("internal error on %s %s:", method, self.path[:100])
            traceback.print_exc()  # whole, on stderr (log_error would fold it into one escaped line)
            self.close_connection = True
            self._json(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": "internal error while reading the image"})

    def send_error(self, code, message=None, explain=None):
        """What http.server itself refuses (a malformed request line, headers too long): JSON too."""
        self.close_connection = True
        if self.request_version == "HTTP/0.9":  # what a malformed request line leaves: no status line
            self.request_version = "HTTP/1.0"
        self._json(code, {"error": message or HTTPStatus(code).phrase})

    def handle_expect_100(self):
        """Refuse an oversized body before the client sends it (curl asks first for bodies over 1 MB)."""
        length = self.headers.get("Content-Length", "")
        if length.isdigit() and int(length) > MAX_BODY:
            self.close_connection = True
            self._json(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"error": _too_large(MAX_BODY)})
            return False
        return super().handle_expect_100()

    def do_GET(self):  # noqa: N802 (http.server's naming)
        self._dispatch("GET")

    def do_HEAD(self):  # noqa: N802
        self._dispatch("HEAD")

    def do_POST(self):  # noqa: N802
        self._dispatch("POST")

    def do_PUT(self):  # noqa: N802
        self._dispatch("PUT")

    def do_DELETE(self):  # noqa: N802
        self._dispatch("DELETE")

    def do_PATCH(self):  # noqa: N802
        self._dispatch("PATCH")

    def do_OPTIONS(self):  # noqa: N802
        self._dispatch("OPTIONS")

    def _page(self, query, head):
        self._send(HTTPStatus.OK, self.server.page, "text/html; charset=utf-8",
                   {"Content-Security-Policy": PAGE_POLICY}, head=head)

    def _health(self, query, head):
        self._json(HTTPStatus.OK, {"status": "ok", "model": self.server.model_id, "max_upload_bytes": MAX_BODY},
                   head=head)

    def _predict(self, query, head):
        if self.headers.get_content_type().startswith("multipart/"):
            raise ApiError(HTTPStatus.BAD_REQUEST,
                           "send the image's raw bytes (curl --data-binary @FILE), not a form upload")
        single, inputs = _flag(query, "single"), _flag(query, "inputs")
        accept_all = _flag(query, "accept_all") or self.server.accept_all
        if query:
            raise ApiError(HTTPStatus.BAD_REQUEST, f"unknown parameter {sorted(query)[0][:40]!r} "
                                                   "(known: single, accept_all, inputs)")
        body = read_body(self.rfile, self.headers)
        self._json(HTTPStatus.OK, predict_record(body, self.server.classify, single=single, accept_all=accept_all,
                                                 inputs=inputs))

    def _json(self, status, obj, extra=None, head=False):
        self._send(status, json.dumps(obj).encode(), "application/json", extra, head=head)

    def _send(self, status, body, content_type, extra=None, head=False):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if not head:
            self.wfile.write(body)


class Server(ThreadingHTTPServer):
    """The page and the API over one restored model; a thread per connection.

    Args:
        classifier: a predict.Classifier of the restored model.
        host: the address to listen on ("127.0.0.1": this machine only).
        port: the TCP port (0: any free port; see `.url`).
        accept_all: never answer "not a digit" (`--accept-all`), whatever the request asks.
    """

    daemon_threads = True  # Ctrl-C must not wait for a client that keeps its connection open

    def __init__(self, classifier, host, port, accept_all=False):
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.accept_all = accept_all
        self.classify = SharedClassifier(classifier)
        self.model_id = classifier.model.MODEL_ID
        self.page = PAGE.read_bytes()
        super().__init__((host, port), Handler)

    @property
    def url(self):
        host, port = self.server_address[:2]
        return f"http://{f'[{host}]' if ':' in host else host}:{port}/"


def run(classifier, host, port, accept_all=False):
    """Serve the page and the API until the process is stopped (what `predict_2.py --serve` runs).

    Args:
        classifier: a predict.Classifier of the restored model.
        host: the address to listen on.
        port: the TCP port.
        accept_all: never answer "not a digit" (`--accept-all`).

    Returns:
        0, once another thread calls the server's shutdown(); Ctrl-C ends the process instead.

    Raises:
        cli.UserError: the address cannot be listened on (port taken, unknown host).
    """
    try:
        server = Server(classifier, host, port, accept_all)
    except (OSError, OverflowError) as e:  # OverflowError: a port outside 0–65535
        raise cli.UserError(f"cannot listen on {host}:{port}: {getattr(e, 'strerror', None) or str(e).rstrip('.')} — "
                               "choose another with --port (or --host)") from None
    with server:
        print(f"serving the draw-a-digit page on {server.url}  (API: POST {server.url}api/predict; "
              "Ctrl-C stops)", flush=True)
        if host not in ("127.0.0.1", "localhost", "::1"):
            print(f"listening on {host}: other machines can reach this page", flush=True)
        server.serve_forever()
    return 0
