"""The server under concurrent requests: /explain beside /predict, odd model descriptions
at /health, and the cap on uploads in flight, against a real uvicorn server."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import importlib.util
import io
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fmnist import FmnistError
from fmnist.checkpoint import save_model
from fmnist.cli import build_parser
from fmnist.deploy.predict import Predictor
from fmnist.deploy.serve import MAX_BYTES, create_app, serve
from fmnist.models import create_model

from .hostile import assert_kept_promise, listing
from .use_helpers import quiet_import

httpx = quiet_import("httpx")
uvicorn = quiet_import("uvicorn")
TestClient = quiet_import("fastapi.testclient").TestClient


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running(app):
    """The app served by uvicorn on a free loopback port in a thread; yields its URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def png(seed: int) -> bytes:
    """A 28x28 dataset-like image: a bright blob on a dark background."""
    rng = np.random.default_rng(seed)
    image = np.zeros((28, 28), np.uint8)
    image[6:22, 8:20] = rng.integers(120, 255, (16, 12))
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def untrained(tmp_path_factory):
    """The seed CNN with its initial weights: what it says does not matter here, only that
    every answer comes back whole."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model") / "model.safetensors"
    return save_model(create_model("seed_cnn").eval(), path, metrics={"test_accuracy": 0.5})


def slowed(predictor: Predictor, seconds: float) -> Predictor:
    """The predictor with every forward pass held for `seconds` at its end, so that requests
    sent together overlap inside the model: Captum's hook on a layer is in place until the
    pass ends, and sleeping lets the other threads run through that layer meanwhile."""
    predictor.module.register_forward_hook(lambda *_: time.sleep(seconds))
    return predictor


def fire(url: str, routes: list[str], workers: int) -> list[tuple[str, int | str, dict]]:
    """POST image i % 3 to routes[i] from `workers` threads released together: each
    answer's (route, status or the error that stood for it, body)."""
    start = threading.Barrier(workers)
    # one client, made once: making its TLS context takes a tenth of a second
    client = httpx.Client(base_url=url, timeout=60, limits=httpx.Limits(max_connections=workers))

    def send(i: int) -> tuple[str, int | str, dict]:
        if i < workers:
            start.wait()
        try:
            r = client.post(routes[i], files={"file": (f"{i % 3}.png", png(i % 3), "image/png")})
        except httpx.TransportError as e:  # a server that fails may also drop the connection
            return routes[i], type(e).__name__, {}
        return routes[i], r.status_code, r.json() if r.status_code == 200 else {}

    with client, ThreadPoolExecutor(workers) as pool:
        return list(pool.map(send, range(len(routes))))


# ----------------------------------------------------------------------------
# /explain beside /predict
# ----------------------------------------------------------------------------


def test_explain_and_predict_at_once(untrained):
    """Captum hooks the model it explains; a forward pass through the hooked model, from
    /predict or from another /explain, broke the explanation (500) before explanations
    borrowed copies of their own. Each answer is the one the image gets alone."""
    pytest.importorskip("captum")
    app = create_app(slowed(Predictor.load(untrained), 0.01))
    with TestClient(app) as client:
        alone = {
            (route, f"{i}.png"): client.post(route, files={"file": ("x", png(i), "image/png")})
            for route in ("/explain", "/predict")
            for i in range(3)
        }
    with running(app) as url:
        answers = fire(url, ["/explain", "/predict"] * 15, workers=12)
    assert Counter((route, status) for route, status, _ in answers) == {
        ("/explain", 200): 15,
        ("/predict", 200): 15,
    }
    for i, (route, _, body) in enumerate(answers):
        assert body == alone[route, f"{i % 3}.png"].json()


# ----------------------------------------------------------------------------
# /health with odd metrics
# ----------------------------------------------------------------------------

ODD_METRICS = [
    {"test_accuracy": "0.9"},
    {"test_accuracy": float("nan")},
    {"test_accuracy": float("inf")},
    {"test_accuracy": -float("inf")},
    {"test_accuracy": 10**400},
    {"test_accuracy": -3},
    {"test_accuracy": 1.5},
    {"test_accuracy": True},
    {"test_accuracy": None},
    {"test_accuracy": {"value": 0.9}},
    {"test_accuracy": [0.9]},
    {"nested": {"deeper": [float("nan")]}},
    "not an object",
    [0.9],
    None,
]


@pytest.mark.parametrize("metrics", ODD_METRICS, ids=repr)
def test_health_answers_with_odd_metrics(untrained, metrics):
    loaded = Predictor.load(untrained)
    predictor = Predictor(loaded.model, loaded.classes, loaded.name, metrics)
    with TestClient(create_app(predictor)) as client:
        r = client.get("/health")
    assert r.status_code == 200, r.text
    assert r.json()["test_accuracy"] is None and r.json()["status"] == "ok"


@pytest.mark.parametrize("accuracy", [0, 0.5, 1, 0.9123])
def test_health_shows_a_sane_accuracy(untrained, accuracy):
    loaded = Predictor.load(untrained)
    predictor = Predictor(loaded.model, loaded.classes, loaded.name, {"test_accuracy": accuracy})
    with TestClient(create_app(predictor)) as client:
        assert client.get("/health").json()["test_accuracy"] == accuracy


# ----------------------------------------------------------------------------
# The cap on bodies in flight
# ----------------------------------------------------------------------------


@pytest.fixture
def limits():
    """fmnist.deploy.limits, imported here so that in a tree without it only the tests of
    the cap fail, and the others still report their own findings."""
    return importlib.import_module("fmnist.deploy.limits")


class Holding:
    """An ASGI app that reads the body, then holds its turn until `release` is set (or for
    `seconds`), counting the requests inside it at once."""

    def __init__(self, seconds: float | None = None):
        self.inside = self.most = 0
        self.seconds = seconds
        self.release = asyncio.Event()

    async def __call__(self, scope, receive, send):
        await receive()
        self.inside += 1
        self.most = max(self.most, self.inside)
        if self.seconds is None:
            await self.release.wait()
        else:
            await asyncio.sleep(self.seconds)
        self.inside -= 1
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


def upload_scope(method: str = "POST", length: int | None = 100) -> dict:
    headers = [(b"content-type", b"application/octet-stream")]
    if length is not None:
        headers.append((b"content-length", b"%d" % length))
    return {"type": "http", "method": method, "path": "/predict", "headers": headers}


async def call(middleware, scope=None, receive=None) -> dict:
    """One request through `middleware`: its status, headers and body."""
    sent: list[dict] = []

    async def one_body():
        return {"type": "http.request", "body": b"x" * 100, "more_body": False}

    async def send(message):
        sent.append(message)

    await middleware(scope or upload_scope(), receive or one_body, send)
    start, body = sent[0], b"".join(m.get("body", b"") for m in sent[1:])
    return {"status": start["status"], "headers": dict(start["headers"]), "body": body}


def test_uploads_wait_their_turn(limits):
    app = Holding(seconds=0.02)
    limit = limits.BodyLimit(app, max_bytes=1000, max_concurrent=2)

    async def main():
        return await asyncio.gather(*(call(limit) for _ in range(9)))

    answers = asyncio.run(main())
    assert [a["status"] for a in answers] == [200] * 9
    assert app.most == 2


def test_no_turn_in_time_answers_503_with_retry_after(limits):
    app = Holding()
    limit = limits.BodyLimit(app, max_bytes=1000, max_concurrent=1, wait_seconds=0.05)

    async def main():
        first = asyncio.create_task(call(limit))
        await asyncio.sleep(0.01)
        second = await call(limit)
        app.release.set()
        return await first, second

    first, second = asyncio.run(main())
    assert first["status"] == 200
    assert second["status"] == 503 and second["headers"][b"retry-after"] == b"1"
    assert b"no turn came within 0.05 s" in second["body"]


def test_a_full_line_answers_503_at_once(limits):
    app = Holding()
    limit = limits.BodyLimit(app, max_bytes=1000, max_concurrent=1, wait_seconds=30)

    async def main():
        held = [asyncio.create_task(call(limit))]
        await asyncio.sleep(0.01)  # the first in its turn, then a full line behind it
        held += [asyncio.create_task(call(limit)) for _ in range(limits.QUEUE_PER_TURN)]
        await asyncio.sleep(0.01)
        t0 = time.monotonic()
        late = await call(limit)
        waited = time.monotonic() - t0
        app.release.set()
        return await asyncio.gather(*held), late, waited

    held, late, waited = asyncio.run(main())
    assert [a["status"] for a in held] == [200] * (1 + limits.QUEUE_PER_TURN)
    assert late["status"] == 503 and late["headers"][b"retry-after"] == b"1"
    assert b"already waiting" in late["body"] and waited < 1


def test_a_slow_body_gives_its_turn_back(monkeypatch, limits):
    """A client trickling its body cannot keep a turn: 408 after BODY_SECONDS."""
    monkeypatch.setattr(limits, "BODY_SECONDS", 0.05)
    app = Holding(seconds=0)
    limit = limits.BodyLimit(app, max_bytes=1000, max_concurrent=1, wait_seconds=5)

    async def trickle():
        await asyncio.sleep(0.01)
        return {"type": "http.request", "body": b"x", "more_body": True}

    async def main():
        slow = await call(limit, receive=trickle)
        return slow, await call(limit)

    slow, after = asyncio.run(main())
    assert slow["status"] == 408 and b"not received within 0.05 s" in slow["body"]
    assert after["status"] == 200


def test_a_client_gone_gives_its_turn_back(limits):
    app = Holding(seconds=0)
    limit = limits.BodyLimit(app, max_bytes=1000, max_concurrent=1, wait_seconds=0.5)

    async def gone():
        return {"type": "http.disconnect"}

    async def main():
        await limit(upload_scope(), gone, lambda message: asyncio.sleep(0))
        return await call(limit)

    assert asyncio.run(main())["status"] == 200


def test_requests_without_a_body_take_no_turn(limits):
    """/health and the page answer while every turn is held by an upload."""
    app = Holding()
    limit = limits.BodyLimit(app, max_bytes=1000, max_concurrent=1, wait_seconds=0.05)
    quick = Holding(seconds=0)

    async def main():
        upload = asyncio.create_task(call(limit))
        await asyncio.sleep(0.01)
        limit.app = quick  # the same turns, an app that answers at once
        get = await call(limit, upload_scope("GET", length=None))
        empty = await call(limit, upload_scope("POST", length=0))
        limit.app = app
        app.release.set()
        return get, empty, await upload

    get, empty, upload = asyncio.run(main())
    assert get["status"] == empty["status"] == upload["status"] == 200


@pytest.mark.parametrize("value", ["0", "1025", "lots"])
def test_max_concurrent_out_of_range_is_refused(cli, tmp_path, value):
    before = listing(tmp_path)
    result = cli(["serve", "--model", "default", "--max-concurrent", value], cwd=tmp_path)
    assert_kept_promise(result, "serve", tmp_path, before)
    assert result.rc == 2 and "--max-concurrent" in result.stderr


@pytest.mark.parametrize("value", [0, 1025])
def test_serve_refuses_max_concurrent_out_of_range(value):
    with pytest.raises(FmnistError, match="--max-concurrent"):
        serve("default", port=8000, max_concurrent=value)


def test_max_concurrent_flag(limits):
    """Its default is the server's; 1 and 1024 are taken."""
    parser = build_parser()
    assert parser.parse_args(["serve"]).max_concurrent == limits.MAX_CONCURRENT
    for n in (1, 1024):
        assert parser.parse_args(["serve", "--max-concurrent", str(n)]).max_concurrent == n


def memory(pid: int, field: str) -> int:
    """VmRSS or VmHWM (the peak since the last reset) of a process, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} in /proc/{pid}/status")


@contextlib.contextmanager
def served(model: Path, *flags: str):
    """`fmnist serve` in a subprocess on a free port: its process and URL."""
    port = free_port()
    argv = [sys.executable, "-m", "fmnist", "serve", "--model", str(model), "--port", str(port)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([*argv, *flags], env=env, stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None and time.monotonic() < deadline, "the server did not start"
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{url}/health").status_code == 200:
                    break
            time.sleep(0.1)
        yield proc, url
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux's /proc")
def test_memory_under_many_large_uploads_is_bounded_by_the_cap(untrained):
    """Twelve uploads of the largest body at once, against a cap of two: the server's peak
    memory grows by what two requests hold, not twelve.

    What a request holds in its turn, measured for this upload (a PNG of noise, so its
    pixels take as many bytes as its file): the body, the bytes the route reads from the
    parsed part, the decoded pixels and the arrays of the preparation, about 6x the upload
    limit. The bound allows 8x per turn and 32 MB of allocator slack; without the cap the
    twelve grow it by about 700 MB (58 MB each), well over the 192 MB allowed here."""
    cap, n = 2, 12
    side = int(((MAX_BYTES - 4096) / 3) ** 0.5)  # room for the multipart framing
    noise = np.random.default_rng(0).integers(0, 256, (side, side, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(noise).save(buf, "PNG", compress_level=0)
    upload = buf.getvalue()
    with served(untrained, "--max-concurrent", str(cap)) as (proc, url):
        httpx.post(f"{url}/predict", files={"file": ("warm.png", png(0), "image/png")})
        Path(f"/proc/{proc.pid}/clear_refs").write_text("5")  # the peak starts again here
        base = memory(proc.pid, "VmRSS")
        start = threading.Barrier(n)
        limits_ = httpx.Limits(max_connections=n)
        with httpx.Client(base_url=url, timeout=120, limits=limits_) as client:

            def send(i: int) -> int:
                start.wait()
                files = {"file": (f"{i}.png", upload, "image/png")}
                return client.post("/predict", files=files).status_code

            with ThreadPoolExecutor(n) as pool:
                codes = list(pool.map(send, range(n)))
        peak = memory(proc.pid, "VmHWM")
    assert codes == [200] * n
    growth = peak - base
    allowed = cap * 8 * MAX_BYTES + 32 * 2**20
    assert growth <= allowed, f"grew {growth / 2**20:.0f} MB; allowed {allowed / 2**20:.0f} MB"


@pytest.mark.slow
def test_load_of_explain_and_predict_has_no_errors(untrained, tmp_path):
    """A short run of benchmarks/load_test.py over both routes: more clients than turns, so
    requests wait their turn, and every answer is a 200 with its fields."""
    script = Path(__file__).resolve().parent.parent / "benchmarks" / "load_test.py"
    spec = importlib.util.spec_from_file_location("load_test", script)
    load_test = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(load_test)
    out = tmp_path / "load.json"
    argv = ["--model", str(untrained), "--routes", "predict", "explain", "--requests", "60"]
    argv += ["--clients", "30", "--images", "6", "--max-concurrent", "2", "--out", str(out)]
    assert load_test.main(argv) == 0
    record = json.loads(out.read_text())
    assert record["statuses"] == {"200": 60} and record["errors"] == 0
    assert {route: r["statuses"] for route, r in record["by_route"].items()} == {
        "/explain": {"200": 30},
        "/predict": {"200": 30},
    }
    assert record["server"] == {"max_concurrent": 2}
    assert isinstance(record["machine"]["avx512_bf16"], bool) and record["machine"]["cpu"]
