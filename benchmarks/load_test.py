"""Load test of `fmnist serve`: many concurrent clients on 127.0.0.1, zero errors expected.

Starts the server as a subprocess on a free loopback port, then CLIENTS threads, each
with its own keep-alive connection and all released at once, POST images to the --routes
in turn (/predict by default; /explain beside it tests the explanations under load) until
REQUESTS answers have come back (or --max-seconds passes). The images cycle through
dataset test images as PNG and the same items as product-like JPEG photos (light
background, larger, off-centre), so both paths of the preparation are timed. Writes the
count of each status per route, p50/p90/p99 latency and requests/s as JSON with the
machine (CPU model, whether it has AVX512-BF16, its threads) and exits non-zero on any
error.

    python benchmarks/load_test.py --model default
    OMP_NUM_THREADS=1 python benchmarks/load_test.py --model default --routes predict explain \
        --clients 200 --requests 800 --out benchmarks/results/load_test-DATE-explain.json
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
import tempfile
import threading
import time
import uuid
from collections import Counter
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


def start_server(model: str, port: int, flags=(), timeout: float = 60) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    cmd = [sys.executable, "-m", "fmnist", "serve", "--model", model, "--port", str(port)]
    # a file, not a pipe: a server logging more than a pipe holds would stop when it fills
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen([*cmd, *flags], env=env, stdout=subprocess.DEVNULL, stderr=log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log.seek(0)
            raise SystemExit(f"the server exited: {log.read().decode().strip()}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/health")
            if conn.getresponse().status == 200:
                return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit(f"the server did not answer /health within {timeout:.0f} s")


# what a good answer of each route holds
EXPECTED = {"/predict": b'"predictions"', "/explain": b'"heatmap"'}


def run_clients(port, bodies, routes, requests, clients, max_seconds):
    """(route, status or the error that stood for it, seconds) of each request."""
    answers: list[tuple[str, int | str, float]] = []
    lock = threading.Lock()
    issued = 0
    stop_at = time.monotonic() + max_seconds
    start = threading.Barrier(clients)

    def take() -> int | None:
        nonlocal issued
        with lock:
            if issued >= requests or time.monotonic() > stop_at:
                return None
            issued += 1
            return issued - 1

    def client():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        start.wait()
        while (i := take()) is not None:
            body, boundary = bodies[i % len(bodies)]
            route = routes[i % len(routes)]
            headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
            t0 = time.perf_counter()
            try:
                conn.request("POST", route, body=body, headers=headers)
                response = conn.getresponse()
                text = response.read()
                status = response.status
                if status == 200 and EXPECTED[route] not in text:
                    status = "200 without its fields"
            except OSError as e:
                status = type(e).__name__
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            with lock:
                answers.append((route, status, time.perf_counter() - t0))
        conn.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return answers, time.perf_counter() - t0


def percentiles(seconds: list[float]) -> dict:
    ms = np.array(seconds) * 1000
    return {
        q: round(float(np.percentile(ms, v)), 2) if len(ms) else None
        for q, v in (("p50", 50), ("p90", 90), ("p99", 99), ("max", 100))
    }


def machine() -> dict:
    """Where it ran: the run environment of fmnist's records (CPU model, cores, kernels,
    versions) with the CPU's AVX512-BF16 flag, the cores this process may use, and the
    torch threads of the server, which `fmnist serve` sets to one per request."""
    from fmnist.training.rundir import environment

    try:
        flags = next(
            line.split(":", 1)[1].split()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("flags")
        )
    except (OSError, StopIteration):
        flags = None
    return {
        **environment(),
        "avx512_bf16": None if flags is None else "avx512_bf16" in flags,
        "usable_cpus": len(os.sched_getaffinity(0)),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "torch_threads": 1,
    }


def git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=5
        )
        return out.stdout.strip() or None
    except OSError:
        return None


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--model",
        default="default",
        help="default, best, a run directory or a model file (default: default)",
    )
    p.add_argument(
        "--routes",
        nargs="+",
        choices=sorted(r.strip("/") for r in EXPECTED),
        default=["predict"],
        help="routes the requests go to, in turn (default: predict)",
    )
    p.add_argument("--requests", type=int, default=2000, help="answers to wait for (default: 2000)")
    p.add_argument("--clients", type=int, default=8, help="concurrent connections (default: 8)")
    p.add_argument("--images", type=int, default=64, help="distinct images cycled (default: 64)")
    p.add_argument("--max-seconds", type=float, default=300, help="stop early after (default: 300)")
    p.add_argument(
        "--max-concurrent",
        type=int,
        help="the server's --max-concurrent (default: the server's own default)",
    )
    p.add_argument(
        "--out",
        default=str(ROOT / "benchmarks" / "results" / "load_test.json"),
        help="JSON result file (default: benchmarks/results/load_test.json)",
    )
    return p.parse_args(argv)


def record(args, argv, answers, wall: float) -> dict:
    """The JSON record: counts of each status, per route and in all, and the latencies."""
    errors = [f"{route}: {status}" for route, status, _ in answers if status != 200]
    by_route = {}
    for route in sorted({route for route, _, _ in answers}):
        mine = [(status, t) for r, status, t in answers if r == route]
        by_route[route] = {
            "requests": len(mine),
            "statuses": dict(Counter(str(status) for status, _ in mine).most_common()),
            "latency_ms": percentiles([t for _, t in mine]),
        }
    from fmnist.deploy.limits import MAX_CONCURRENT

    server_flags = {"max_concurrent": args.max_concurrent or MAX_CONCURRENT}
    to = " and ".join("/" + r for r in args.routes) + (" in turn" if len(args.routes) > 1 else "")
    return {
        "benchmark": "load_test",
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": "python benchmarks/load_test.py " + " ".join(argv or sys.argv[1:]),
        "model": args.model,
        "routes": ["/" + r for r in args.routes],
        "requests": len(answers),
        "clients": args.clients,
        "server": server_flags,
        "errors": len(errors),
        "first_errors": errors[:5],
        "statuses": dict(Counter(str(status) for _, status, _ in answers).most_common()),
        "wall_s": round(wall, 3),
        "requests_per_s": round(len(answers) / wall, 1),
        "latency_ms": percentiles([t for _, _, t in answers]),
        "by_route": by_route,
        "payloads": f"{args.images} images: half dataset PNGs (28x28), half 300x300 JPEG photos; "
        f"to {to}",
        "machine": {**machine(), "platform": platform.platform()},
        "git_commit": git_commit(),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    bodies = [multipart(ct, data) for ct, data in payloads(args.images)]
    port = free_port()
    flags = ["--max-concurrent", str(args.max_concurrent)] if args.max_concurrent else []
    server = start_server(args.model, port, flags)
    try:
        routes = ["/" + r for r in args.routes]
        answers, wall = run_clients(
            port, bodies, routes, args.requests, args.clients, args.max_seconds
        )
    finally:
        server.terminate()
        server.wait(10)
    from fmnist.files import write_json

    result = record(args, argv, answers, wall)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_json(out, result)
    lat = result["latency_ms"]
    print(
        f"{result['requests']} requests to {' '.join(result['routes'])}, {args.clients} clients, "
        f"{result['errors']} errors {result['statuses']}: p50 {lat['p50']} ms, "
        f"p99 {lat['p99']} ms, {result['requests_per_s']} requests/s -> {out}"
    )
    complete = len(answers) >= args.requests
    if not complete:
        print(f"stopped after {args.max_seconds} s with {len(answers)} of {args.requests}")
    return 0 if not result["errors"] and complete else 1


if __name__ == "__main__":
    sys.exit(main())
