"""An explanation: the 28x28 input the model saw, its top classes, a heat map per method."""

from __future__ import annotations

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure

from fmnist.analysis.plots.common import Tiles, figure, show_image, show_tiles

TITLES = {"gradcam": "Grad-CAM", "ig": "integrated gradients", "occlusion": "occlusion"}
HEAT_ALPHA = 0.6  # how much of a heat map covers the image under it
UPSCALE = 4  # mosaic pixels per input pixel: room for the heat maps' bilinear smoothing


def explanation(
    image: np.ndarray, top: list[tuple[str, float]], maps: dict, name: str = ""
) -> Figure:
    """`top`: (class, probability) best first; `maps`: {method: (28, 28) attributions for
    the top class}, drawn over the input (positive red, negative blue)."""
    fig = figure(2.6 * (1 + len(maps)), 3.2)
    axes = np.atleast_1d(fig.subplots(1, 1 + len(maps)))
    show_image(axes[0], image, name or "input (28x28)")
    axes[0].set_xlabel("\n".join(f"{label} {p:.1%}" for label, p in top), fontsize=9)
    for ax, (method, a) in zip(axes[1:], maps.items(), strict=True):
        show_image(ax, image, f"{TITLES.get(method, method)}: {top[0][0]}")
        lim = float(np.abs(a).max()) or 1.0
        ax.imshow(a, cmap="bwr", vmin=-lim, vmax=lim, alpha=HEAT_ALPHA, interpolation="bilinear")
    return fig


def explanation_grid(images: np.ndarray, titles: list[str], maps: dict) -> Figure:
    """One row per image: the input, then each method's heat map over it. `maps`:
    {method: (N, 28, 28)}."""
    n, cols = len(images), 1 + len(maps)
    tiles = Tiles(n, cols, size=28 * UPSCALE, gap=2 * UPSCALE, head=6 * UPSCALE)
    mosaic = tiles.canvas(depth=(4,), fill=0.0)  # transparent where no image lies
    gray = np.repeat(np.repeat(images / 255.0, UPSCALE, axis=1), UPSCALE, axis=2)
    for i in range(n):
        mosaic[tiles.cell(i, 0)] = as_rgba(gray[i])
        for j, a in enumerate(maps.values(), 1):
            lim = float(np.abs(a[i]).max()) or 1.0
            mosaic[tiles.cell(i, j)] = heat_over(gray[i], bilinear(a[i], UPSCALE) / lim)
    fig = figure(1.9 * cols, 1.95 * n)
    ax = fig.subplots()
    show_tiles(ax, mosaic)
    for i, title in enumerate(titles):
        tiles.title(ax, i, 0, title, fontsize=8)
    for j, method in enumerate(maps, 1):
        tiles.title(ax, 0, j, TITLES.get(method, method), fontsize=9)
    return fig


def as_rgba(gray: np.ndarray) -> np.ndarray:
    """Gray values in [0, 1] as opaque RGBA, as the gray color map draws them."""
    return np.dstack([gray, gray, gray, np.ones_like(gray)])


def heat_over(gray: np.ndarray, heat: np.ndarray) -> np.ndarray:
    """A heat map in [-1, 1] (red for, blue against) over a gray image, composed as imshow
    composes a translucent layer over an opaque one."""
    colors = colormaps["bwr"]((heat + 1) / 2)
    out = as_rgba(gray)
    out[..., :3] = HEAT_ALPHA * colors[..., :3] + (1 - HEAT_ALPHA) * out[..., :3]
    return out


def bilinear(a: np.ndarray, factor: int) -> np.ndarray:
    """`a` (h, w) enlarged `factor` times by bilinear interpolation between pixel centers,
    held flat beyond the outer ones: the smooth look imshow's "bilinear" gave each map."""

    def weights(n: int):
        position = np.clip((np.arange(n * factor) + 0.5) / factor - 0.5, 0, n - 1)
        low = np.floor(position).astype(int)
        return low, np.minimum(low + 1, n - 1), position - low

    y0, y1, fy = weights(a.shape[0])
    x0, x1, fx = weights(a.shape[1])
    rows = a[y0] * (1 - fy)[:, None] + a[y1] * fy[:, None]
    return rows[:, x0] * (1 - fx) + rows[:, x1] * fx
