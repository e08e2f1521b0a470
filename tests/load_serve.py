"""Load figures of the web server (`predict_2.py --serve`): many clients at once, every answer checked.

    python tests/load_serve.py --checkpoint model2.ckpt      # 8 clients × 50 requests

The server runs as its own process, started the way a user starts it, on a free port. Each client
keeps one connection open and sends its requests one after another, all clients at once. Every
answer must be a 200 whose reading is the one the same server gives that image when it is asked
alone (probabilities within 1e-3: a batch may round differently), so "all answered" means
answered correctly. tests/benchmark.py calls `measure`; this file is not collected by pytest.
"""

import argparse
import http.client
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent


def mnist_bodies(data_dir, count):
    """MNIST test digits as a person's PNG files (black on white, 4× enlarged), as bytes.

    Args:
        data_dir: an MNIST data folder (filled from the packaged copy if empty).
        count: how many test digits.

    Returns:
        A list of PNG files' bytes.
    """
    sys.path.insert(0, str(ROOT))
    import input_data  # noqa: PLC0415

    raw = input_data.load_uint8(data_dir)
    bodies = []
    for i in range(count):
        image = Image.fromarray(255 - raw.test_images[i]).resize((112, 112), Image.Resampling.BILINEAR)
        out = io.BytesIO()
        image.save(out, format="PNG")
        bodies.append(out.getvalue())
    return bodies


def start_server(checkpoint, script="predict_2.py"):
    """Start `SCRIPT --serve --port 0` and wait for the URL it prints.

    Returns:
        (process, url).
    """
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.Popen([sys.executable, str(ROOT / script), "--serve", "--port", "0",
                             "--checkpoint", str(checkpoint)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    line = proc.stdout.readline()
    if "http://" not in line:
        proc.kill()
        raise RuntimeError(f"{script} --serve did not print its URL (exit {proc.wait()}): {line!r}")
    return proc, "http://" + line.split("http://", 1)[1].split()[0]


def _post(conn, body):
    conn.request("POST", "/api/predict", body=body, headers={"Content-Type": "application/octet-stream"})
    response = conn.getresponse()
    return response.status, response.read()


def same_reading(a, b, tol=1e-3):
    """Whether two records give the same number with the same probabilities (within `tol`)."""
    if a.get("number") != b.get("number") or len(a["digits"]) != len(b["digits"]):
        return False
    return all(np.allclose(x["probabilities"], y["probabilities"], atol=tol) and x["box"] == y["box"]
               for x, y in zip(a["digits"], b["digits"]))


def measure(checkpoint, bodies, *, clients=8, per_client=50, script="predict_2.py"):
    """Load the server with `clients` concurrent clients × `per_client` requests each.

    Args:
        checkpoint: the checkpoint the server restores.
        bodies: image files as bytes; client c's request r sends bodies[(c * per_client + r) % len].
        clients: concurrent clients, each on its own keep-alive connection.
        per_client: requests each client sends, one after another.
        script: predict_2.py or predict_1.py.

    Returns:
        A dict of figures: serve_requests, serve_answered_correctly, serve_p50_ms, serve_p99_ms,
        serve_requests_per_second, serve_peak_rss_mb.
    """
    proc, url = start_server(checkpoint, script)
    try:
        host, port = urlsplit(url).hostname, urlsplit(url).port
        # The reference: each image asked alone, one at a time (this also warms the server up).
        conn = http.client.HTTPConnection(host, port, timeout=120)
        reference = []
        for body in bodies:
            status, data = _post(conn, body)
            reference.append(json.loads(data) if status == 200 else None)
        conn.close()

        latencies, correct, failures = [], [0], []
        lock, start_line = threading.Lock(), threading.Barrier(clients + 1)

        def client(c):
            conn = http.client.HTTPConnection(host, port, timeout=120)
            start_line.wait()
            for r in range(per_client):
                k = (c * per_client + r) % len(bodies)
                t = time.perf_counter()
                try:
                    status, data = _post(conn, bodies[k])
                    ok = status == 200 and reference[k] is not None and same_reading(json.loads(data), reference[k])
                except (OSError, http.client.HTTPException, ValueError) as e:
                    ok, status = False, repr(e)
                    conn.close()
                    conn = http.client.HTTPConnection(host, port, timeout=120)
                with lock:
                    latencies.append(time.perf_counter() - t)
                    correct[0] += ok
                    if not ok:
                        failures.append((k, status))
            conn.close()

        threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
        for t in threads:
            t.start()
        start_line.wait()
        began = time.perf_counter()
        for t in threads:
            t.join()
        wall = time.perf_counter() - began
    finally:
        proc.terminate()  # not Ctrl-C: a process started in the background may ignore SIGINT
        _, status, usage = os.wait4(proc.pid, 0)  # its own peak RSS, as tests/benchmark.py's run()
        proc.returncode = os.waitstatus_to_exitcode(status)
        proc.stdout.close()
    ms = sorted(x * 1000 for x in latencies)
    figures = {
        "serve_requests": clients * per_client,
        "serve_answered_correctly": correct[0],
        "serve_p50_ms": statistics.median(ms),
        "serve_p99_ms": ms[min(len(ms) - 1, int(round(0.99 * (len(ms) - 1))))],
        "serve_requests_per_second": len(ms) / wall,
        "serve_peak_rss_mb": usage.ru_maxrss * 1024 / 1e6,
    }
    if failures:
        print(f"# serve: {len(failures)} requests failed, first: {failures[:3]}", flush=True)
    return figures


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", required=True, help="checkpoint for the server to restore (required)")
    p.add_argument("--script", default="predict_2.py", choices=["predict_1.py", "predict_2.py"],
                   help="which model's server (default: %(default)s)")
    p.add_argument("--clients", type=int, default=8, help="concurrent clients (default: %(default)s)")
    p.add_argument("--requests", type=int, default=50, help="requests per client (default: %(default)s)")
    p.add_argument("--images", type=int, default=50, help="distinct MNIST test digits sent (default: %(default)s)")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="mnist-load-") as tmp:
        bodies = mnist_bodies(tmp, args.images)
    figures = measure(args.checkpoint, bodies, clients=args.clients, per_client=args.requests, script=args.script)
    for name, value in figures.items():
        print(f"{name}: {value:.4g}" if isinstance(value, float) else f"{name}: {value}", flush=True)
    return 0 if figures["serve_answered_correctly"] == figures["serve_requests"] else 1


if __name__ == "__main__":
    sys.exit(main())
