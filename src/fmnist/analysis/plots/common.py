"""What every figure shares: a figure factory, class colors, PNG output."""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
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


# ----------------------------------------------------------------------------
# Image grids as one image
# ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Tiles:
    """Where the cells of an image grid lie in one mosaic: `rows` by `cols` square cells of
    `size` pixels, `gap` pixels apart, each row with `head` pixels above it for titles.

    One image with its labels as text draws and saves in a fraction of the time of one axes
    per image, which constrained layout would have to place one by one."""

    rows: int
    cols: int
    size: int = 28
    gap: int = 3
    head: int = 0

    def canvas(self, depth: tuple[int, ...] = (), fill: float = np.nan) -> np.ndarray:
        """An empty mosaic; NaN draws as the background, so gaps and empty cells stay white."""
        height = self.rows * (self.head + self.size + self.gap) - self.gap
        width = self.cols * (self.size + self.gap) - self.gap
        return np.full((height, width, *depth), fill, dtype=float)

    def top(self, row: int) -> int:
        return row * (self.head + self.size + self.gap) + self.head

    def left(self, col: int) -> int:
        return col * (self.size + self.gap)

    def cell(self, row: int, col: int) -> tuple[slice, slice]:
        top, left = self.top(row), self.left(col)
        return slice(top, top + self.size), slice(left, left + self.size)

    def title(self, ax, row: int, col: int, text: str, **kwargs) -> None:
        """`text` just above cell (row, col), in the row's head."""
        x = self.left(col) + (self.size - 1) / 2
        ax.text(x, self.top(row) - 1, text, ha="center", va="bottom", **kwargs)

    def label_rows(self, ax, labels: list[str], **kwargs) -> None:
        """A label left of each row, as the y axis's tick labels."""
        centers = [self.top(r) + (self.size - 1) / 2 for r in range(len(labels))]
        ax.set_yticks(centers, labels, **kwargs)
        ax.tick_params(axis="y", length=0)


def show_tiles(ax, mosaic: np.ndarray, **kwargs) -> None:
    """A mosaic as one image, light garments on black as the network sees them; NaN cells
    (gaps, empty places) are masked and show the white behind them."""
    if mosaic.ndim == 2:  # gray values through a color map; an RGBA mosaic draws as it is
        kwargs = {"cmap": "gray", "vmin": 0, "vmax": 255, "interpolation": "nearest", **kwargs}
        mosaic = np.ma.masked_invalid(mosaic)
    ax.imshow(mosaic, **kwargs)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_frame_on(False)
