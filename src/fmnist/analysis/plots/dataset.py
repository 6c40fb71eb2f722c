"""Data figures: samples, class balance, preprocessing, mean images, pixel intensities."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from fmnist.analysis.plots.common import CLASS_COLORS, Tiles, as_labels, figure, show_tiles
from fmnist.data import CLASSES


def sample_grid(images: np.ndarray, labels, per_class: int = 10, seed: int = 0) -> Figure:
    """A row of randomly chosen images for each class, the class named on the left."""
    labels = as_labels(labels)
    rng = np.random.default_rng(seed)
    tiles = Tiles(len(CLASSES), per_class)
    mosaic = tiles.canvas()
    for c in range(len(CLASSES)):
        idx = np.flatnonzero(labels == c)
        pick = rng.choice(idx, size=min(per_class, len(idx)), replace=False) if len(idx) else []
        for j, i in enumerate(pick):
            mosaic[tiles.cell(c, j)] = images[i]
    fig = figure(per_class * 0.95 + 1.4, len(CLASSES) * 0.95 + 0.5)
    ax = fig.subplots()
    show_tiles(ax, mosaic)
    tiles.label_rows(ax, [f"{c} {name}" for c, name in enumerate(CLASSES)], fontsize=10)
    fig.suptitle(f"Fashion-MNIST: {per_class} random images of each class", fontsize=13)
    return fig


def class_distribution(splits: dict[str, np.ndarray]) -> Figure:
    """Images per class for each split (e.g. train / validation / test), as grouped bars."""
    fig = figure(11, 4.8)
    ax = fig.subplots()
    x = np.arange(len(CLASSES))
    width = 0.8 / max(len(splits), 1)
    for i, (name, labels) in enumerate(splits.items()):
        counts = np.bincount(as_labels(labels), minlength=len(CLASSES))
        bars = ax.bar(x + (i - (len(splits) - 1) / 2) * width, counts, width, label=name)
        ax.bar_label(bars, fontsize=7, padding=1)
    ax.set_xticks(x, CLASSES, rotation=20)
    ax.set_ylabel("images")
    total = ", ".join(f"{n} {len(v):,}" for n, v in splits.items())
    ax.set_title(f"Images per class in each split ({total})")
    ax.legend(loc="lower right")
    ax.margins(y=0.12)
    return fig


def preprocessing(images: np.ndarray, labels, augmented: np.ndarray) -> Figure:
    """The same images raw (uint8 0-255), normalized as the network receives them (float
    0-1), and augmented; each row has its own color bar, so the value ranges show."""
    labels = as_labels(labels)
    rows = [
        ("raw\nuint8 0-255", images, 255),
        ("normalized\nfloat 0-1", images.astype(np.float32) / 255.0, 1.0),
        ("augmented\nmirror + shift", augmented.astype(np.float32) / 255.0, 1.0),
    ]
    fig = figure(len(images) * 1.2 + 2.0, 4.6)
    for ax, (r, (label, arr, vmax)) in zip(fig.subplots(3, 1), enumerate(rows), strict=True):
        # room above every row, so all three are drawn at one size; the first names classes
        tiles = Tiles(1, len(images), head=5)
        strip = tiles.canvas()
        for j, image in enumerate(arr):
            strip[tiles.cell(0, j)] = image
        show_tiles(ax, strip, vmax=vmax)
        if r == 0:
            for j, c in enumerate(labels):
                tiles.title(ax, 0, j, CLASSES[c], fontsize=9)
        fig.colorbar(ax.images[0], ax=ax, fraction=0.02, aspect=8)
        ax.set_ylabel(label, fontsize=10)
    fig.suptitle(
        "Preprocessing: raw pixels, scaled to [0, 1] for the network, then randomly "
        "mirrored and shifted by up to 2 pixels",
        fontsize=12,
    )
    return fig


def mean_images(images: np.ndarray, labels) -> Figure:
    """The pixel-wise mean of every class: the silhouette the network can lean on."""
    labels = as_labels(labels)
    tiles = Tiles(2, 5, gap=5, head=6)
    mosaic = tiles.canvas()
    fig = figure(9, 4.4)
    ax = fig.subplots()
    titles = []
    for c in range(len(CLASSES)):
        members = images[labels == c]
        mosaic[tiles.cell(*divmod(c, 5))] = members.mean(0) if len(members) else 0.0
        titles.append(f"{CLASSES[c]} (n={len(members):,})")
    show_tiles(ax, mosaic, cmap="inferno")
    for c, title in enumerate(titles):
        tiles.title(ax, *divmod(c, 5), title, fontsize=9)
    fig.suptitle("Mean image of each class", fontsize=13)
    return fig


def pixel_histograms(images: np.ndarray, labels) -> Figure:
    """Per-class distribution of pixel intensities (log scale: most pixels are background),
    each against the whole set's distribution in gray."""
    labels = as_labels(labels)
    bins = np.arange(257)
    # one pass over the pixels: each class's counts; the whole set's and the means follow
    counts = np.array(
        [np.bincount(images[labels == c].ravel(), minlength=256) for c in range(len(CLASSES))],
        dtype=float,
    )
    overall = counts.sum(0) / max(counts.sum(), 1)
    fig = figure(12, 5.2)
    axes = fig.subplots(2, 5, sharex=True, sharey=True)
    for c, ax in enumerate(axes.flat):
        n = counts[c].sum()
        ax.stairs(overall, bins, color="0.6", label="all classes")
        ax.stairs(
            counts[c] / max(n, 1),
            bins,
            color=CLASS_COLORS[c],
            fill=True,
            alpha=0.7,
            label=CLASSES[c],
        )
        mean = counts[c] @ np.arange(256) / n if n else 0
        ax.set_yscale("log")
        ax.set_title(f"{CLASSES[c]}  mean {mean:.0f}", fontsize=9)
        ax.set_xlim(0, 255)
    for ax in axes[1]:
        ax.set_xlabel("pixel value (0-255)")
    for ax in axes[:, 0]:
        ax.set_ylabel("share of pixels")
    axes[0, 0].legend(fontsize=7, loc="upper center")
    fig.suptitle(
        f"Pixel intensity by class ({len(images):,} images; gray: all classes)", fontsize=13
    )
    return fig
