"""The download path against a local HTTP server: good, corrupt, truncated, missing, killed."""

import gzip
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from fmnist import data
from fmnist.data import DataError

from .idx import checksums, synthetic_set

FILES = synthetic_set(200, 50)
SUMS = checksums(FILES)


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        _, kind, fname = self.path.split("/", 2)
        name = fname.removesuffix(".gz")
        if kind == "missing" or name not in FILES:
            self.send_error(404)
            return
        body = gzip.compress(FILES[name])
        if kind == "corrupt":  # a valid gzip of the wrong bytes: only the checksum catches it
            raw = bytearray(FILES[name])
            raw[-1] ^= 0x01
            body = gzip.compress(bytes(raw))
        length = len(body)
        if kind == "truncated":  # honest length header, half the file
            body = body[: len(body) // 2]
            length = len(body)
        self.send_response(200)
        self.send_header("Content-Length", str(length if kind != "cut" else len(body)))
        self.end_headers()
        if kind == "cut":  # promises the whole file, sends half, closes
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        if kind == "slow":  # half now, the rest much later
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            time.sleep(20)
            body = body[len(body) // 2 :]
        self.wfile.write(body)


@pytest.fixture(scope="module")
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def leftovers(d):
    return sorted(p.name for p in d.iterdir()) if d.exists() else []


def test_falls_through_bad_mirrors_to_a_good_one(server, tmp_path):
    mirrors = tuple(f"{server}/{k}/" for k in ("missing", "corrupt", "truncated", "cut", "good"))
    data.fetch(tmp_path, mirrors, SUMS, timeout=5, log=lambda *a: None)
    assert leftovers(tmp_path) == sorted(f"{n}.gz" for n in FILES)
    ds = data.load(tmp_path, download=False, checksums=SUMS)
    assert ds.train_images.shape == (200, 28, 28)


def test_load_downloads_into_the_cache(server, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("FMNIST_DATA_DIR", raising=False)
    monkeypatch.setattr(data, "SYSTEM_DIR", tmp_path / "none")
    ds = data.load(mirrors=(f"{server}/good/",), checksums=SUMS)
    assert ds.directory == tmp_path / "fmnist" and ds.origin.startswith("downloaded")


@pytest.mark.parametrize("kind", ["missing", "corrupt", "truncated", "cut"])
def test_bad_mirror_leaves_nothing(server, tmp_path, kind):
    with pytest.raises(DataError) as e:
        data.fetch(tmp_path, (f"{server}/{kind}/",), SUMS, timeout=5, log=lambda *a: None)
    assert "could not download" in str(e.value) and "\n" not in str(e.value)
    assert leftovers(tmp_path) == []


def test_killed_download_never_passes_for_data(server, tmp_path):
    script = textwrap.dedent(
        f"""
        from fmnist import data
        from tests.test_download import SUMS
        data.fetch({str(tmp_path)!r}, ({server + "/slow/"!r},), SUMS, timeout=60, log=print)
        """
    )
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([os.path.join(root, "src"), root])}
    proc = subprocess.Popen([sys.executable, "-c", script], env=env, cwd=root)
    deadline = time.time() + 30
    while time.time() < deadline:
        parts = [p for p in tmp_path.iterdir() if p.name.endswith(".part")]
        if parts and parts[0].stat().st_size > 0:
            break
        time.sleep(0.05)
    else:
        proc.kill()
        pytest.fail("the download never started")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not data.has_files(tmp_path)
    assert all(p.name.endswith(".part") for p in tmp_path.iterdir())
    with pytest.raises(DataError, match="checksum|missing|no such"):
        data.load(tmp_path, download=False, checksums=SUMS)
