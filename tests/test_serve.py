"""fmnist.deploy.serve: the HTTP API, its limits, a schema-driven fuzz, `fmnist serve`'s errors."""

from __future__ import annotations

import asyncio
import base64
import io
import socket

import numpy as np
import pytest
import torch
from PIL import Image

from fmnist import cli
from fmnist.deploy.limits import BodyLimit, display_name, shorten_filenames
from fmnist.deploy.predict import Predictor, read_image
from fmnist.deploy.serve import create_app

from .use_helpers import encode, quiet_import, synthetic_photo, usable_model

TestClient = quiet_import("fastapi.testclient").TestClient

MAX_BYTES = 200_000
MAX_PIXELS = 4_000_000


@pytest.fixture(scope="module")
def predictor(tiny_run, dataset):
    return Predictor.load(usable_model(tiny_run, dataset))


@pytest.fixture(scope="module")
def app(predictor):
    return create_app(predictor, max_bytes=MAX_BYTES, max_pixels=MAX_PIXELS, max_files=4)


@pytest.fixture(scope="module")
def client(app):
    with TestClient(app) as c:
        yield c


@pytest.fixture(scope="module")
def sample(dataset):
    """A test image as a photo (JPEG on a light background) and as a dataset PNG."""
    rng = np.random.default_rng(3)
    return {
        "photo": encode(synthetic_photo(dataset.test_images[0], rng), "JPEG", quality=90),
        "png": encode(dataset.test_images[1]),
    }


def probabilities(result: dict) -> np.ndarray:
    p = np.zeros(10)
    for item in result["predictions"]:
        p[item["index"]] = item["probability"]
    return p


# ----------------------------------------------------------------------------
# Answers
# ----------------------------------------------------------------------------


def test_health(client, predictor):
    body = client.get("/health").json()
    assert body["status"] == "ok" and body["model"] == "seed_cnn"
    assert body["classes"] == list(predictor.classes)
    assert body["test_accuracy"] == predictor.metrics["test_accuracy"] > 0.75


def test_predict_matches_the_library(client, predictor, sample):
    r = client.post("/predict", files={"file": ("shoe.jpg", sample["photo"], "image/jpeg")})
    assert r.status_code == 200
    body = r.json()
    preds = body["predictions"]
    assert len(preds) == 10 and "input" not in body
    assert [p["probability"] for p in preds] == sorted(
        (p["probability"] for p in preds), reverse=True
    )
    assert abs(sum(p["probability"] for p in preds) - 1) < 1e-6
    assert preds[0]["label"] == predictor.classes[preds[0]["index"]]
    expected = predictor.probabilities(read_image(sample["photo"])[None])[0]
    np.testing.assert_allclose(probabilities(body), expected, atol=1e-6)


def test_top_k_and_input_image(client, sample):
    r = client.post(
        "/predict",
        params={"top_k": 3, "include_input": "true"},
        files={"file": ("x.png", sample["png"], "image/png")},
    )
    body = r.json()
    assert r.status_code == 200 and len(body["predictions"]) == 3
    prefix = "data:image/png;base64,"
    assert body["input"].startswith(prefix)
    seen = np.asarray(Image.open(io.BytesIO(base64.b64decode(body["input"][len(prefix) :]))))
    assert np.array_equal(seen, read_image(sample["png"]))


def test_batch(client, sample, predictor):
    files = [
        ("files", ("../../etc/passwd", sample["photo"], "image/jpeg")),
        ("files", ("C:\\Users\\me\\item.png", sample["png"], "image/png")),
    ]
    r = client.post("/predict/batch", files=files, params={"top_k": 1})
    assert r.status_code == 200
    results = r.json()["results"]
    assert [x["filename"] for x in results] == ["passwd", "item.png"]
    png_top = int(predictor.probabilities(read_image(sample["png"])[None])[0].argmax())
    assert results[1]["predictions"][0]["index"] == png_top and len(results[0]["predictions"]) == 1


def test_display_name_is_never_a_path():
    assert display_name("../../a/b.png", "x") == "b.png"
    assert display_name("..\\..\\evil.exe", "x") == "evil.exe"
    assert display_name("a\nb\x00c\u202e.png", "x") == "abc.png"
    assert display_name("", "file 2") == "file 2" and display_name(None, "upload") == "upload"
    assert len(display_name("y" * 1000, "x")) == 100


# ----------------------------------------------------------------------------
# Bad requests: 4xx with a JSON error, and the server goes on serving
# ----------------------------------------------------------------------------


def bomb() -> bytes:
    img = Image.new("L", (3000, 3000), 255)  # 9 megapixels, mostly one colour: a small PNG
    return encode(img)


@pytest.mark.parametrize(
    ("content", "status", "message"),
    [
        (b"", 400, "empty file"),
        (b"%PDF-1.4 not an image", 415, "not an image"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", 400, "truncated"),
        ("truncated", 400, "truncated"),
        ("bomb", 413, "pixels"),
        (b"\0" * (MAX_BYTES + 1), 413, "request body over the limit"),
    ],
)
def test_bad_uploads(client, sample, content, status, message):
    if content == "truncated":
        content = sample["photo"][: len(sample["photo"]) // 2]
    elif content == "bomb":
        content = bomb()
        assert len(content) < MAX_BYTES
    r = client.post("/predict", files={"file": ("bad.png", content, "image/png")})
    assert r.status_code == status, r.text
    assert message in r.json()["error"]
    assert client.post("/predict", files={"file": ("ok.png", sample["png"])}).status_code == 200


def test_bad_requests(client, sample):
    r = client.post("/predict")
    assert r.status_code == 422 and "file" in r.json()["error"]
    r = client.post("/predict", files={"image": ("a.png", sample["png"])})
    assert r.status_code == 422
    r = client.post(
        "/predict",
        content=b"--zz\r\nnot really multipart",
        headers={"content-type": "multipart/form-data; boundary=zz"},
    )
    assert 400 <= r.status_code < 500 and "error" in r.json()
    r = client.post("/predict", params={"top_k": 11}, files={"file": ("a.png", sample["png"])})
    assert r.status_code == 422 and "top_k" in r.json()["error"]
    files = [("files", (f"{i}.png", sample["png"])) for i in range(5)]
    r = client.post("/predict/batch", files=files)
    assert r.status_code == 413 and "at most 4" in r.json()["error"]
    files = [("files", ("good.png", sample["png"])), ("files", ("bad.png", b"nope"))]
    r = client.post("/predict/batch", files=files)
    assert r.status_code == 415 and r.json()["error"].startswith("bad.png")
    assert client.get("/nowhere").status_code == 404
    assert client.post("/health").status_code == 405


def test_one_file_field_per_predict(client, sample):
    two = [("file", ("a.png", sample["png"])), ("file", ("b.png", sample["png"]))]
    r = client.post("/predict", files=two)
    assert r.status_code == 400 and "2 'file' fields" in r.json()["error"]


@pytest.mark.parametrize("length", [999, 5000, 100_000])
def test_long_file_names_are_shortened_never_refused(client, sample, predictor, length):
    name = "x" * length + ".png"
    r = client.post("/predict/batch", files=[("files", (name, sample["png"]))])
    assert r.status_code == 200, r.text
    shown = r.json()["results"][0]["filename"]
    assert shown.endswith(".png") and len(shown) <= 100
    r = client.post("/predict", files={"file": (name, sample["png"])})
    want = int(predictor.probabilities(read_image(sample["png"])[None])[0].argmax())
    assert r.status_code == 200 and r.json()["predictions"][0]["index"] == want


def test_shorten_filenames_touches_only_part_headers():
    content = b'filename="' + b"y" * 3000 + b'"'  # inside a file's bytes: kept as sent
    name = b"n" * 3000 + b".png"
    disposition = b'Content-Disposition: form-data; name="file"; filename="' + name + b'"'
    part_head = b"--b\r\n" + disposition + b"\r\nContent-Type: image/png\r\n\r\n"
    body = part_head + content + b"\r\n--b--\r\n"
    out = shorten_filenames(body, b"b", limit=1000)
    head, _, rest = out.partition(b"\r\n\r\n")
    assert head.count(b"n") < 1100 and b"n" * 996 + b'.png"' in head
    assert rest == content + b"\r\n--b--\r\n"


def test_chunked_body_over_the_limit_is_cut_off():
    """A body without Content-Length is counted as it arrives and never handed on whole."""
    reached_app = []

    async def app(scope, receive, send):
        reached_app.append(scope["path"])

    chunks = [b"x" * 60_000] * 10
    sent = []

    async def receive():
        body = chunks.pop(0)
        return {"type": "http.request", "body": body, "more_body": bool(chunks)}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/predict", "headers": []}
    asyncio.run(BodyLimit(app, max_bytes=MAX_BYTES)(scope, receive, send))
    assert sent[0]["status"] == 413 and not reached_app
    assert len(chunks) == 6  # stopped reading after the fourth chunk


def test_page_and_docs(client):
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "<canvas" in r.text and 'id="file"' in r.text and "http" not in r.text.split("<body>")[1]
    assert "connect-src 'self'" in r.headers["content-security-policy"]
    assert client.get("/docs").status_code == 200
    schema = client.get("/openapi.json").json()
    assert {"/predict", "/predict/batch", "/health"} <= set(schema["paths"])


# ----------------------------------------------------------------------------
# The command
# ----------------------------------------------------------------------------


def test_serve_command_errors(tiny_run, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    # with no --model, the best model that comes with the package, from any folder
    served = {}
    monkeypatch.setattr("uvicorn.run", lambda app, **kw: served.update(app=app, **kw))
    threads = torch.get_num_threads()
    try:
        assert cli.main(["serve", "--port", "8765"]) == 0
    finally:
        torch.set_num_threads(threads)  # serve sets one thread per request worker
    health = TestClient(served["app"]).get("/health").json()
    assert health["model"] == "wide_cnn" and served["port"] == 8765
    assert "serving best at" in capsys.readouterr().out
    assert cli.main(["serve", "--model", str(tmp_path / "none.safetensors")]) == 2
    assert "no such file" in capsys.readouterr().err
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert cli.main(["serve", "--model", str(tiny_run.run_dir), "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pick another --port" in err


def test_explain_returns_the_heat_map_of_the_top_class(client, sample, predictor):
    r = client.post("/explain", files={"file": ("a.png", sample["png"])})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["method"] == "gradcam" and body["input"].startswith("data:image/png;base64,")
    heat = Image.open(io.BytesIO(base64.b64decode(body["heatmap"].split(",", 1)[1])))
    assert heat.mode == "RGBA" and heat.size == (28, 28)
    top = int(predictor.probabilities(read_image(sample["png"])[None])[0].argmax())
    assert body["predictions"][0]["index"] == top
    assert np.asarray(heat)[..., 3].max() > 0  # some evidence shown


def test_explain_keeps_the_upload_rules(client, sample):
    assert client.post("/explain", files={"file": ("a.png", b"nope")}).status_code == 415
    two = [("file", ("a.png", sample["png"])), ("file", ("b.png", sample["png"]))]
    assert client.post("/explain", files=two).status_code == 400
    assert client.post("/explain").status_code == 422
    assert "/explain" in client.get("/openapi.json").json()["paths"]
