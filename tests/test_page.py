"""The web page in a real headless Chromium: upload, drag and drop, draw, and a bad file.

Driven over the DevTools protocol by tests/chromium.py (Debian's `chromium` package);
the server is the real app under uvicorn on a loopback port.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fmnist.deploy.predict import Predictor, read_image
from fmnist.deploy.serve import create_app

from . import chromium
from .use_helpers import encode, synthetic_photo, usable_model


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


class Tab:
    """One page in Chromium, with the few actions these tests need."""

    def __init__(self, browser: chromium.Chromium, url: str):
        self.b = browser
        target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.target = target
        self.session = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        for domain in ("Runtime", "Log", "Page", "DOM"):
            self.send(f"{domain}.enable")
        self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": 1100, "height": 800, "deviceScaleFactor": 1, "mobile": False},
        )
        with browser._lock:
            self.start = len(browser.events)
        self.send("Page.navigate", {"url": url})
        browser.wait_event("Page.loadEventFired", self.session, self.start)

    def send(self, method: str, params: dict | None = None) -> dict:
        return self.b.send(method, params, session=self.session)

    def js(self, expression: str):
        reply = self.send(
            "Runtime.evaluate",
            {"expression": expression, "awaitPromise": True, "returnByValue": True},
        )
        if "exceptionDetails" in reply:
            raise AssertionError(f"{expression}: {reply['exceptionDetails']}")
        return reply["result"].get("value")

    def wait(self, expression: str, timeout: float = 15.0):
        """Poll until the expression is truthy; return its value."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.js(expression)
            if value:
                return value
            time.sleep(0.05)
        raise AssertionError(f"still false after {timeout:.0f}s: {expression}")

    def text(self, selector: str) -> str:
        return self.js(f"document.querySelector({json.dumps(selector)}).textContent")

    def upload(self, selector: str, path: Path) -> None:
        root = self.send("DOM.getDocument")["root"]["nodeId"]
        node = self.send("DOM.querySelector", {"nodeId": root, "selector": selector})["nodeId"]
        self.send("DOM.setFileInputFiles", {"nodeId": node, "files": [str(path)]})

    def mouse(self, kind: str, x: float, y: float) -> None:
        self.send(
            "Input.dispatchMouseEvent",
            {"type": kind, "x": x, "y": y, "button": "left", "buttons": 1, "clickCount": 1},
        )

    def screenshot(self) -> bytes:
        size = self.send("Page.getLayoutMetrics")["cssContentSize"]
        clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
        shot = self.send(
            "Page.captureScreenshot",
            {"format": "png", "captureBeyondViewport": True, "clip": clip},
        )
        return base64.b64decode(shot["data"])

    def errors(self) -> list[str]:
        with self.b._lock:
            mine = [e for e in self.b.events[self.start :] if e.get("sessionId") == self.session]
        return chromium.console_errors(mine)


@pytest.fixture(scope="module")
def tab(server):
    if not Path(chromium.CHROMIUM).exists():
        pytest.skip(f"{chromium.CHROMIUM} is absent: install Debian's `chromium` package")
    browser = chromium.Chromium()
    try:
        t = Tab(browser, server)
        t.wait("document.querySelectorAll('#bars .name').length === 10")
        yield t
    finally:
        browser.close()


def expected_label(predictor, data: bytes) -> str:
    return predictor.classes[int(predictor.probabilities(read_image(data)[None])[0].argmax())]


def shown(tab, name: str) -> str:
    """Wait for the page to show the prediction for `name`; return the label it shows."""
    tab.wait(f"document.getElementById('name').textContent === {json.dumps(name)}")
    return tab.text("#top-label")


def test_upload_shows_label_input_and_bars(tab, predictor, dataset, tmp_path_factory):
    rng = np.random.default_rng(11)
    data = encode(synthetic_photo(dataset.test_images[2], rng), "JPEG", quality=90)
    path = tmp_path_factory.mktemp("upload") / "my photo.jpg"
    path.write_bytes(data)
    tab.upload("#file", path)
    label = expected_label(predictor, data)
    assert shown(tab, "my photo.jpg") == label
    assert tab.js("document.getElementById('input-view').src").startswith("data:image/png;base64,")
    assert tab.js("!document.getElementById('input-view').hidden")
    assert tab.text("#bars .name.top") == label
    assert tab.text("#error") == ""
    assert tab.errors() == []
    time.sleep(0.4)  # the bars' width transition
    artifacts = Path(os.environ.get("FMNIST_ARTIFACTS") or tmp_path_factory.mktemp("artifacts"))
    artifacts.mkdir(parents=True, exist_ok=True)
    (artifacts / "serve-page.png").write_bytes(tab.screenshot())


def test_drag_and_drop(tab, predictor, dataset):
    data = encode(dataset.test_images[5])
    tab.js(
        f"""(() => {{
            const bytes = Uint8Array.from(atob("{base64.b64encode(data).decode()}"),
                                          (c) => c.charCodeAt(0));
            const t = new DataTransfer();
            t.items.add(new File([bytes], "dropped.png", {{type: "image/png"}}));
            const drop = document.getElementById("drop");
            drop.dispatchEvent(new DragEvent("drop", {{dataTransfer: t, bubbles: true,
                                                       cancelable: true}}));
        }})()"""
    )
    assert shown(tab, "dropped.png") == expected_label(predictor, data)


@pytest.mark.slow
def test_drawing_is_classified(tab, predictor):
    box = tab.js(
        "(() => { const r = document.getElementById('canvas').getBoundingClientRect();"
        " return [r.x, r.y, r.width, r.height]; })()"
    )
    x0, y0, w, h = box
    tab.js("window.scrollTo(0, 0)")
    stroke = [(0.35, 0.1), (0.65, 0.1), (0.7, 0.9), (0.55, 0.9), (0.5, 0.35), (0.45, 0.9)]
    tab.mouse("mousePressed", x0 + stroke[0][0] * w, y0 + stroke[0][1] * h)
    for (ax, ay), (bx, by) in zip(stroke, stroke[1:], strict=False):
        for s in np.linspace(0, 1, 6)[1:]:
            tab.mouse("mouseMoved", x0 + (ax + s * (bx - ax)) * w, y0 + (ay + s * (by - ay)) * h)
    tab.mouse("mouseReleased", x0 + stroke[-1][0] * w, y0 + stroke[-1][1] * h)
    assert shown(tab, "drawing.png") in predictor.classes
    assert tab.js("!document.getElementById('input-view').hidden")
    # Something was drawn: the canvas is no longer plain white.
    assert tab.js(
        "(() => { const c = document.getElementById('canvas');"
        " const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;"
        " return d.some((v, i) => i % 4 !== 3 && v < 128); })()"
    )


def test_bad_file_shows_the_servers_error(tab, tmp_path):
    path = tmp_path / "fake.png"
    path.write_bytes(b"this is not a picture")
    tab.upload("#file", path)
    error = tab.wait("document.getElementById('error').textContent")
    assert error.startswith("fake.png: not an image")
    # The earlier prediction is cleared, not left looking like this file's.
    assert tab.text("#top-label") == "\u2013"
    assert tab.js("document.getElementById('input-view').hidden")
    assert tab.js("document.querySelectorAll('#bars .top').length") == 0


def test_grad_cam_toggle_overlays_the_heat_map(tab, dataset, tmp_path_factory):
    earlier = tab.errors()  # the bad-file test's 415 is logged in this tab already
    path = tmp_path_factory.mktemp("explain") / "boot.png"
    Image.fromarray(dataset.test_images[0]).save(path)
    tab.upload("#file", path)
    shown(tab, "boot.png")
    assert tab.js("document.getElementById('heat').hidden")  # off until asked
    tab.js("document.getElementById('explain-toggle').click()")
    tab.wait("!document.getElementById('heat').hidden")
    assert tab.js("document.getElementById('heat').src").startswith("data:image/png;base64,")
    tab.wait("document.getElementById('heat').naturalWidth === 28")
    artifacts = Path(os.environ.get("FMNIST_ARTIFACTS") or tmp_path_factory.mktemp("artifacts"))
    artifacts.mkdir(parents=True, exist_ok=True)
    (artifacts / "serve-page-grad-cam.png").write_bytes(tab.screenshot())
    tab.js("document.getElementById('explain-toggle').click()")
    tab.wait("document.getElementById('heat').hidden")
    assert tab.errors() == earlier
