"""The server under concurrent requests: /explain beside /predict, odd model descriptions
at /health, and the cap on uploads in flight, against a real uvicorn server."""

from __future__ import annotations

import contextlib
import io
import socket
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from PIL import Image

from fmnist.checkpoint import save_model
from fmnist.deploy.predict import Predictor
from fmnist.deploy.serve import create_app
from fmnist.models import create_model

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
