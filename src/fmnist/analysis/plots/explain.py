"""An explanation: the 28x28 input the model saw, its top classes, a heat map per method."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from fmnist.analysis.plots.common import figure, show_image

TITLES = {"gradcam": "Grad-CAM", "ig": "integrated gradients", "occlusion": "occlusion"}


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
        ax.imshow(a, cmap="bwr", vmin=-lim, vmax=lim, alpha=0.6, interpolation="bilinear")
    return fig


def explanation_grid(images: np.ndarray, titles: list[str], maps: dict) -> Figure:
    """One row per image: the input, then each method's heat map over it. `maps`:
    {method: (N, 28, 28)}."""
    n, cols = len(images), 1 + len(maps)
    fig = figure(1.9 * cols, 1.95 * n)
    axes = np.atleast_2d(fig.subplots(n, cols, squeeze=False))
    for i in range(n):
        show_image(axes[i, 0], images[i], titles[i])
        axes[i, 0].title.set_fontsize(8)
        for j, (method, a) in enumerate(maps.items(), 1):
            show_image(axes[i, j], images[i], TITLES.get(method, method) if i == 0 else None)
            lim = float(np.abs(a[i]).max()) or 1.0
            axes[i, j].imshow(a[i], cmap="bwr", vmin=-lim, vmax=lim, alpha=0.6,
                              interpolation="bilinear")  # fmt: skip
    return fig
