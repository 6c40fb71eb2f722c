"""The wheel as users get it: build it, install it into a fresh virtual environment outside
the checkout, and from an empty folder run `fmnist predict`, `fmnist serve` (one request)
and the README's Python example, with no model path and no repository.

    python scripts/wheel_check.py [--keep]

Exit status 0 when every check passed; the last line counts them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TORCH = os.environ.get("TORCH", "torch==2.13.0")
MAX_WHEEL_MB = 8  # two models and the code; data, tests or runs would blow it
PACKAGED = ("default.safetensors", "default.json", "best.safetensors", "best.json")
# three test images as PNG files, with their labels printed
WRITE_PNGS = """
import fmnist
from PIL import Image
ds = fmnist.load_data(download=False)
for i in range(3):
    Image.fromarray(ds.test_images[i]).save(f"item{i}.png")
print(*ds.test_labels[:3])
"""


def run(cmd, **kw):
    kw.setdefault("check", True)
    return subprocess.run([str(c) for c in cmd], text=True, **kw)


class Checks:
    def __init__(self):
        self.passed, self.failed = 0, 0

    def __call__(self, ok: bool, what: str) -> None:
        print(f"  {'ok  ' if ok else 'FAIL'} {what}", flush=True)
        if ok:
            self.passed += 1
        else:
            self.failed += 1


def build(tmp: Path) -> Path:
    # built from a copy, so the build's own folders (build/, *.egg-info) stay out of the checkout
    src = tmp / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(
        ".git", ".venv", "runs", "build", "dist", "*.egg-info", "__pycache__", ".*_cache",
        "tune", "*.db", "mlruns",
    ))  # fmt: skip
    dist = tmp / "dist"
    run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", dist, src])
    (wheel,) = dist.glob("fashion_mnist_cnn-*.whl")
    return wheel


def inspect(wheel: Path, check: Checks) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    mb = wheel.stat().st_size / 2**20
    check(mb < MAX_WHEEL_MB, f"wheel size {mb:.1f} MB (under {MAX_WHEEL_MB} MB)")
    check(
        all(f"fmnist/weights/{n}" in names for n in PACKAGED),
        "the default and best models are in the wheel",
    )
    stray = [n for n in names if re.search(r"(^|/)(tests|runs|benchmarks)/|ubyte|\.db$", n)]
    check(not stray, f"no tests, runs, data or databases in the wheel {stray[:3]}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post_image(url: str, png: bytes) -> dict:
    boundary = "fmnistwheelcheck"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n'
            "Content-Type: image/png\r\n\r\n"
        ).encode()
        + png
        + f"\r\n--{boundary}--\r\n".encode()
    )
    req = urllib.request.Request(
        url, body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def serve_once(fmnist: Path, work: Path, png: Path, env: dict, check: Checks) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [str(fmnist), "serve", "--port", str(port)],
        cwd=work,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        health = None
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                    health = json.loads(r.read())
                break
            except OSError:
                time.sleep(0.5)
        check(health is not None and health["model"] == "wide_cnn", "fmnist serve: the best model")
        if health is not None:
            answer = post_image(f"http://127.0.0.1:{port}/predict", png.read_bytes())
            check(bool(answer.get("predictions")), "fmnist serve: POST /predict answers")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def main(keep: bool = False) -> int:
    check = Checks()
    tmp = Path(tempfile.mkdtemp(prefix="fmnist-wheel-"))
    try:
        print("building the wheel ...", flush=True)
        wheel = build(tmp)
        inspect(wheel, check)
        print("installing it into a fresh virtual environment ...", flush=True)
        venv = tmp / "venv"
        run([sys.executable, "-m", "venv", venv])
        py, fmnist = venv / "bin" / "python", venv / "bin" / "fmnist"
        run([py, "-m", "pip", "install", "--quiet", TORCH])
        run([py, "-m", "pip", "install", "--quiet", wheel])
        work = tmp / "work"
        work.mkdir()
        # nothing from the checkout: no PYTHONPATH, an empty folder
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        where = run([py, "-c", "import fmnist; print(fmnist.__file__)"], cwd=work, env=env,
                    capture_output=True).stdout.strip()  # fmt: skip
        check(str(venv) in where and str(ROOT) not in where, "fmnist imports from the wheel")
        labels = run([py, "-c", WRITE_PNGS], cwd=work, env=env, capture_output=True).stdout.split()
        res = run([fmnist, "predict", "item0.png", "item1.png", "item2.png", "--json"],
                  cwd=work, env=env, capture_output=True, check=False)  # fmt: skip
        ok = res.returncode == 0
        got = [r["predictions"][0]["index"] for r in json.loads(res.stdout)] if ok else []
        check(ok and got == [int(v) for v in labels], f"fmnist predict: {got} for {labels}")
        serve_once(fmnist, work, work / "item0.png", env, check)
        readme = (ROOT / "README.md").read_text().split("## Python API", 1)[1]
        example = re.search(r"```python\n(.*?)```", readme, re.S).group(1)
        res = run([py, "-c", example], cwd=work, env=env, capture_output=True, check=False)
        check(
            res.returncode == 0,
            "the README's Python example" + (f": {res.stderr[-300:]}" if res.returncode else ""),
        )
        leftover = sorted(p.name for p in work.iterdir())
        check(leftover == ["item0.png", "item1.png", "item2.png", "runs"],
              f"only the example's files in the folder: {leftover}")  # fmt: skip
    except subprocess.CalledProcessError as e:
        check(False, f"{' '.join(map(str, e.cmd))} exited {e.returncode}")
    finally:
        if not keep:
            shutil.rmtree(tmp, ignore_errors=True)
    print(f"wheel check: {check.passed} passed, {check.failed} failed")
    return 1 if check.failed else 0


if __name__ == "__main__":
    sys.exit(main(keep="--keep" in sys.argv[1:]))
