"""Drive headless Chromium over the DevTools protocol on a pipe (--remote-debugging-pipe):
no websocket library, no open port. Chromium reads NUL-terminated JSON commands from its
file descriptor 3 and writes responses and events to its descriptor 4."""

from __future__ import annotations

import base64
import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--remote-debugging-pipe",
]

# What a page must pass: every <img> decoded with a non-zero natural width.
IMAGE_CHECK = """(async () => {
  const imgs = Array.from(document.images);
  await Promise.allSettled(imgs.map(i => i.decode()));
  return {
    title: document.title,
    images: imgs.length,
    broken: imgs.filter(i => !i.complete || i.naturalWidth === 0)
                .map(i => i.alt || i.src.slice(0, 60)),
    widths: imgs.map(i => i.naturalWidth),
    sections: Array.from(document.querySelectorAll("section[id]")).map(s => s.id),
    figures: Array.from(document.querySelectorAll("figure[id]")).map(f => f.id),
  };
})()"""


class Chromium:
    def __init__(self, executable: str = CHROMIUM, width: int = 1280, height: int = 1000):
        self.profile = tempfile.mkdtemp(prefix="fmnist-chromium-")
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()

        def place_pipes():  # in the child, before exec: the pipe ends become fds 3 and 4
            os.dup2(to_child_r, 3)
            os.dup2(from_child_w, 4)

        self.proc = subprocess.Popen(
            [executable, *FLAGS, f"--user-data-dir={self.profile}", "about:blank"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            pass_fds=(3, 4),
            preexec_fn=place_pipes,
        )
        os.close(to_child_r)
        os.close(from_child_w)
        self._next_id = 0
        self._responses: dict[int, queue.Queue] = {}
        self.events: list[dict] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()
        self.width, self.height = width, height

    # -- protocol ------------------------------------------------------------

    def _read(self) -> None:
        buf = b""
        while True:
            chunk = os.read(self._from_child, 1 << 20)
            if not chunk:
                return
            buf += chunk
            *messages, buf = buf.split(b"\0")
            for raw in messages:
                msg = json.loads(raw)
                if "id" in msg:
                    with self._lock:
                        box = self._responses.get(msg["id"])
                    if box is not None:
                        box.put(msg)
                else:
                    with self._lock:
                        self.events.append(msg)

    def send(
        self,
        method: str,
        params: dict | None = None,
        session: str | None = None,
        timeout: float = 30.0,
    ) -> dict:
        with self._lock:
            self._next_id += 1
            msg_id = self._next_id
            box = self._responses[msg_id] = queue.Queue()
        msg = {"id": msg_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._to_child, json.dumps(msg).encode() + b"\0")
        try:
            reply = box.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(f"Chromium did not answer {method} in {timeout:.0f}s") from None
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    def wait_event(self, method: str, session: str, since: int, timeout: float = 30.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                for e in self.events[since:]:
                    if e.get("method") == method and e.get("sessionId") == session:
                        return e
            time.sleep(0.02)
        raise TimeoutError(f"no {method} from Chromium in {timeout:.0f}s")

    # -- one page ------------------------------------------------------------

    def open(self, path: Path) -> dict:
        """Load a local file in a fresh tab; return the image check, the console errors and
        PNG screenshots of the first screen and of the whole page."""
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        for domain in ("Runtime", "Log", "Page"):
            self.send(f"{domain}.enable", session=session)
        self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": self.width, "height": self.height, "deviceScaleFactor": 1, "mobile": False},
            session=session,
        )
        with self._lock:
            start = len(self.events)
        self.send("Page.navigate", {"url": Path(path).resolve().as_uri()}, session=session)
        self.wait_event("Page.loadEventFired", session, start)
        check = self.send(
            "Runtime.evaluate",
            {"expression": IMAGE_CHECK, "awaitPromise": True, "returnByValue": True},
            session=session,
        )["result"]["value"]
        first = self.send("Page.captureScreenshot", {"format": "png"}, session=session)
        size = self.send("Page.getLayoutMetrics", session=session)["cssContentSize"]
        clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
        full = self.send(
            "Page.captureScreenshot",
            {"format": "png", "captureBeyondViewport": True, "clip": clip},
            session=session,
        )
        time.sleep(0.2)  # let late console messages arrive
        with self._lock:
            mine = [e for e in self.events[start:] if e.get("sessionId") == session]
        self.send("Target.closeTarget", {"targetId": target})
        return {
            **check,
            "errors": console_errors(mine),
            "screenshot": base64.b64decode(first["data"]),
            "full_page": base64.b64decode(full["data"]),
        }

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout=5)
        except (OSError, RuntimeError, TimeoutError):
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._to_child)
        shutil.rmtree(self.profile, ignore_errors=True)


def console_errors(events: list[dict]) -> list[str]:
    """Uncaught exceptions, console.error/assert calls and browser log errors (such as a
    resource that failed to load), one line each."""
    out = []
    for e in events:
        method, p = e.get("method"), e.get("params", {})
        if method == "Runtime.exceptionThrown":
            d = p["exceptionDetails"]
            out.append(f"exception: {d.get('exception', {}).get('description') or d.get('text')}")
        elif method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            args = " ".join(str(a.get("value", a.get("description", ""))) for a in p["args"])
            out.append(f"console.{p['type']}: {args}")
        elif method == "Log.entryAdded" and p["entry"].get("level") == "error":
            out.append(f"log: {p['entry'].get('text')} {p['entry'].get('url', '')}".strip())
    return out
