"""The web page in a real headless Chromium: upload, drag and drop, draw, and a bad file.

Needs the Debian/Ubuntu package `chromium` and the Python package `playwright` (which
drives the system's Chromium; it downloads no browser of its own here).
"""

from __future__ import annotations

import re
import shutil
import socket
import threading
import time

import numpy as np
import pytest
from use_helpers import encode, synthetic_photo, usable_model

from fmnist.predict import Predictor, read_image
from fmnist.serve import create_app

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None:
    pytest.skip("no chromium on PATH (apt-get install chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="needs pip install playwright")
expect = sync_api.expect

CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
]


@pytest.fixture(scope="module")
def predictor(tiny_run, dataset):
    return Predictor.load(usable_model(tiny_run, dataset))


@pytest.fixture(scope="module")
def server(predictor):
    """The app under uvicorn on a free loopback port, in a thread."""
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = uvicorn.Config(create_app(predictor), host="127.0.0.1", port=port, log_level="warning")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}/"
    srv.should_exit = True
    thread.join(10)


@pytest.fixture(scope="module")
def page(server, tmp_path_factory):
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        context = browser.new_context(viewport={"width": 1100, "height": 800})
        pg = context.new_page()
        pg.goto(server)
        expect(pg.locator("#bars .name")).to_have_count(10)
        yield pg
        browser.close()


def expected_label(predictor, data: bytes) -> str:
    return predictor.classes[int(predictor.probabilities(read_image(data)[None])[0].argmax())]


def test_upload_shows_label_input_and_bars(page, predictor, dataset, tmp_path):
    rng = np.random.default_rng(11)
    data = encode(synthetic_photo(dataset.test_images[2], rng), "JPEG", quality=90)
    path = tmp_path / "my photo.jpg"
    path.write_bytes(data)
    page.set_input_files("#file", str(path))
    expect(page.locator("#name")).to_have_text("my photo.jpg")
    label = expected_label(predictor, data)
    expect(page.locator("#top-label")).to_have_text(label)
    expect(page.locator("#input-view")).to_be_visible()
    assert page.get_attribute("#input-view", "src").startswith("data:image/png;base64,")
    expect(page.locator("#bars .name.top")).to_have_text(label)
    expect(page.locator("#error")).to_have_text("")
    page.wait_for_timeout(400)  # the bars' width transition
    page.screenshot(path=str(tmp_path / "page.png"), full_page=True)


def test_drag_and_drop(page, predictor, dataset):
    data = encode(dataset.test_images[5])
    transfer = page.evaluate_handle(
        """(bytes) => {
            const t = new DataTransfer();
            t.items.add(new File([new Uint8Array(bytes)], "dropped.png", {type: "image/png"}));
            return t;
        }""",
        list(data),
    )
    page.dispatch_event("#drop", "drop", {"dataTransfer": transfer})
    expect(page.locator("#name")).to_have_text("dropped.png")
    expect(page.locator("#top-label")).to_have_text(expected_label(predictor, data))


def test_drawing_is_classified(page, predictor):
    box = page.locator("#canvas").bounding_box()

    def at(fx, fy):
        return box["x"] + fx * box["width"], box["y"] + fy * box["height"]

    page.mouse.move(*at(0.35, 0.1))
    page.mouse.down()
    for fx, fy in [(0.65, 0.1), (0.7, 0.9), (0.55, 0.9), (0.5, 0.35), (0.45, 0.9), (0.3, 0.9)]:
        page.mouse.move(*at(fx, fy), steps=6)
    page.mouse.up()
    expect(page.locator("#name")).to_have_text("drawing.png")
    any_class = re.compile("^(" + "|".join(re.escape(c) for c in predictor.classes) + ")$")
    expect(page.locator("#top-label")).to_have_text(any_class)
    expect(page.locator("#input-view")).to_be_visible()
    page.click("#clear")


def test_bad_file_shows_the_servers_error(page, tmp_path):
    path = tmp_path / "fake.png"
    path.write_bytes(b"this is not a picture")
    page.set_input_files("#file", str(path))
    expect(page.locator("#error")).to_contain_text("fake.png: not an image")
    # The earlier prediction is cleared, not left looking like this file's.
    expect(page.locator("#top-label")).to_have_text("\u2013")
    expect(page.locator("#input-view")).to_be_hidden()
    expect(page.locator("#bars .top")).to_have_count(0)
