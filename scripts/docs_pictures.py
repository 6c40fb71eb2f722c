"""The documentation's pictures that need a trained model, made from the packaged one.

`make default-model` runs this after it rewrites the default model, so the pictures always
show the model that comes with the package: an explanation figure for a few test images
(Grad-CAM, integrated gradients, occlusion) and the robustness heat map (every corruption
at every severity, over the whole test set).

    python scripts/docs_pictures.py [--model default] [--out docs/images/trust]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from fmnist import data

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = (0, 1, 2)  # the first test images: an ankle boot, a pullover, a trouser


def fmnist(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "fmnist", *args], check=True, cwd=ROOT)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="default", help="the model to picture")
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "images" / "trust")
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    test = data.load().test_images
    with tempfile.TemporaryDirectory() as tmp:
        images = []
        for i in EXAMPLES:
            path = Path(tmp) / f"test-{i:05d}.png"
            Image.fromarray(np.asarray(test[i])).save(path)
            images.append(str(path))
        fmnist("explain", "--model", args.model, *images, "--out", str(args.out))
    fmnist("robustness", "--model", args.model, "--figure", str(args.out / "robustness.png"))
    print(f"pictures in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
