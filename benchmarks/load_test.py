"""Load test of `fmnist serve`: many concurrent clients on 127.0.0.1, zero errors expected.

Starts the server as a subprocess on a free loopback port, then CLIENTS threads, each
with its own keep-alive connection, POST images to /predict until REQUESTS answers have
come back (or --max-seconds passes). The images cycle through dataset test images as
PNG and the same items as product-like JPEG photos (light background, larger, off-centre),
so both paths of the preparation are timed. Writes p50/p90/p99 latency and requests/s
as JSON and exits non-zero on any error.

    python benchmarks/load_test.py --model default
"""

from __future__ import annotations

import argparse
import http.client
import io
import os
import platform
import socket
import subprocess
import sys
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))


def payloads(n: int, seed: int = 0) -> list[tuple[str, bytes]]:
    """n/2 dataset test images as PNG and n/2 of them as light-background JPEG photos."""
    from fmnist import data

    images = data.load(download=False).test_images
    rng = np.random.default_rng(seed)
    out = []
    for i, idx in enumerate(rng.choice(len(images), n, replace=False)):
        img = Image.fromarray(images[idx])
        buf = io.BytesIO()
        if i % 2 == 0:
            img.save(buf, "PNG")
            out.append(("image/png", buf.getvalue()))
            continue
        big = np.asarray(img.resize((224, 224), Image.Resampling.BICUBIC), dtype=np.float64)
        photo = np.full((300, 300, 3), 245.0)
        photo[20:244, 50:274] = 245.0 - big[..., None] * 0.8
        Image.fromarray(photo.astype(np.uint8)).save(buf, "JPEG", quality=90)
        out.append(("image/jpeg", buf.getvalue()))
    return out


def multipart(content_type: str, data: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="item"\r\n'
        f"Content-Type: {content_type}\r\n\r\n"
    ).encode()
    return head + data + f"\r\n--{boundary}--\r\n".encode(), boundary


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model: str, port: int, timeout: float = 60) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    cmd = [sys.executable, "-m", "fmnist", "serve", "--model", model, "--port", str(port)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited: {proc.stderr.read().decode().strip()}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/health")
            if conn.getresponse().status == 200:
                return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"the server did not answer /health within {timeout:.0f} s")


def run_clients(port, bodies, requests, clients, max_seconds):
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    issued = 0
    stop_at = time.monotonic() + max_seconds

    def take() -> int | None:
        nonlocal issued
        with lock:
            if issued >= requests or time.monotonic() > stop_at:
                return None
            issued += 1
            return issued - 1

    def client():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while (i := take()) is not None:
            body, boundary = bodies[i % len(bodies)]
            headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
            t0 = time.perf_counter()
            try:
                conn.request("POST", "/predict", body=body, headers=headers)
                response = conn.getresponse()
                text = response.read()
                ok = response.status == 200 and b'"predictions"' in text
                problem = None if ok else f"HTTP {response.status}: {text[:120]!r}"
            except OSError as e:
                problem = f"{type(e).__name__}: {e}"
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            elapsed = time.perf_counter() - t0
            with lock:
                latencies.append(elapsed)
                if problem:
                    errors.append(problem)
        conn.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, errors, time.perf_counter() - t0


def git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=5
        )
        return out.stdout.strip() or None
    except OSError:
        return None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--model",
        default="default",
        help="default, best, a run directory or a model file (default: default)",
    )
    p.add_argument("--requests", type=int, default=2000, help="answers to wait for (default: 2000)")
    p.add_argument("--clients", type=int, default=8, help="concurrent connections (default: 8)")
    p.add_argument("--images", type=int, default=64, help="distinct images cycled (default: 64)")
    p.add_argument("--max-seconds", type=float, default=300, help="stop early after (default: 300)")
    p.add_argument(
        "--out",
        default=str(ROOT / "benchmarks" / "results" / "load_test.json"),
        help="JSON result file (default: benchmarks/results/load_test.json)",
    )
    args = p.parse_args(argv)
    bodies = [multipart(ct, data) for ct, data in payloads(args.images)]
    port = free_port()
    server = start_server(args.model, port)
    try:
        latencies, errors, wall = run_clients(
            port, bodies, args.requests, args.clients, args.max_seconds
        )
    finally:
        server.terminate()
        server.wait(10)
    ms = np.array(latencies) * 1000
    import torch

    from fmnist.files import write_json

    result = {
        "benchmark": "load_test",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": "python benchmarks/load_test.py " + " ".join(argv or sys.argv[1:]),
        "model": args.model,
        "requests": len(latencies),
        "clients": args.clients,
        "errors": len(errors),
        "first_errors": errors[:5],
        "wall_s": round(wall, 3),
        "requests_per_s": round(len(latencies) / wall, 1),
        "latency_ms": {
            q: round(float(np.percentile(ms, v)), 2)
            for q, v in (("p50", 50), ("p90", 90), ("p99", 99), ("max", 100))
        },
        "payloads": f"{args.images} images: half dataset PNGs (28x28), half 300x300 JPEG photos",
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "torch": torch.__version__,
        },
        "git_commit": git_commit(),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_json(out, result)
    lat = result["latency_ms"]
    print(
        f"{result['requests']} requests, {args.clients} clients, {result['errors']} errors: "
        f"p50 {lat['p50']} ms, p99 {lat['p99']} ms, {result['requests_per_s']} requests/s "
        f"-> {out}"
    )
    complete = len(latencies) >= args.requests
    if not complete:
        print(f"stopped after {args.max_seconds} s with {len(latencies)} of {args.requests}")
    return 0 if not errors and complete else 1


if __name__ == "__main__":
    sys.exit(main())
