"""What every figure shares: a figure factory, class colors, PNG output."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure

from fmnist.data import CLASSES

DPI = 100  # pixels per inch of the PNGs; figures are 8-14 inches wide
CLASS_COLORS = [colormaps["tab10"](i) for i in range(len(CLASSES))]
TRAIN_COLOR, VAL_COLOR, TEST_COLOR = "#1f77b4", "#ff7f0e", "#2ca02c"


def figure(width: float, height: float, **kwargs) -> Figure:
    """A new figure, laid out with constrained layout so labels never overlap."""
    return Figure(figsize=(width, height), layout="constrained", **kwargs)


def to_png(fig: Figure, dpi: int = DPI) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, facecolor="white")
    return buf.getvalue()


def save(fig: Figure, path: str | os.PathLike, dpi: int = DPI) -> Path:
    """Write the PNG through a temporary file, so a reader never sees half an image."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(to_png(fig, dpi))
    os.replace(tmp, path)
    return path


def show_image(ax, image: np.ndarray, title: str | None = None, color=None, **kwargs) -> None:
    """One 28x28 image: light garment on black, as the network sees it, no ticks."""
    kwargs.setdefault("cmap", "gray")
    kwargs.setdefault("vmin", 0)
    kwargs.setdefault("vmax", 255)
    ax.imshow(image, interpolation="nearest", **kwargs)
    ax.set_xticks([])
    ax.set_yticks([])
    if title is not None:
        ax.set_title(title, fontsize=9, color=color or "black")


def as_labels(labels) -> np.ndarray:
    return np.asarray(labels, dtype=np.int64)
