"""Build the tutorial's CNN and print its Keras-style summary, as the tutorial's file did."""

from __future__ import annotations

import sys
from pathlib import Path

try:
    import fmnist  # noqa: F401
except ImportError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parent / "src"))

from fmnist.models import create_model, summary  # noqa: E402


def build_model(num_classes: int = 10):
    return create_model("seed_cnn", num_classes=num_classes)


if __name__ == "__main__":
    print(summary(build_model()))
