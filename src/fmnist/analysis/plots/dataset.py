"""Data figures: samples, class balance, preprocessing, mean images, pixel intensities."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from fmnist.analysis.plots.common import CLASS_COLORS, as_labels, figure, show_image
from fmnist.data import CLASSES


def sample_grid(images: np.ndarray, labels, per_class: int = 10, seed: int = 0) -> Figure:
    """A row of randomly chosen images for each class, the class named on the left."""
    labels = as_labels(labels)
    rng = np.random.default_rng(seed)
    fig = figure(per_class * 0.95 + 1.4, len(CLASSES) * 0.95 + 0.5)
    axes = fig.subplots(len(CLASSES), per_class, squeeze=False)
    for c, name in enumerate(CLASSES):
        idx = np.flatnonzero(labels == c)
        pick = rng.choice(idx, size=min(per_class, len(idx)), replace=False) if len(idx) else []
        for j in range(per_class):
            ax = axes[c, j]
            if j < len(pick):
                show_image(ax, images[pick[j]])
            else:
                ax.axis("off")
        axes[c, 0].set_ylabel(
            f"{c} {name}", rotation=0, ha="right", va="center", fontsize=10, labelpad=6
        )
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
    n = len(images)
    rows = [
        ("raw\nuint8 0-255", images, 255),
        ("normalized\nfloat 0-1", images.astype(np.float32) / 255.0, 1.0),
        ("augmented\nmirror + shift", augmented.astype(np.float32) / 255.0, 1.0),
    ]
    fig = figure(n * 1.2 + 2.0, 4.6)
    axes = fig.subplots(3, n, squeeze=False)
    for r, (label, arr, vmax) in enumerate(rows):
        for j in range(n):
            show_image(axes[r, j], arr[j], CLASSES[labels[j]] if r == 0 else None, vmax=vmax)
        fig.colorbar(axes[r, -1].images[0], ax=axes[r, :].tolist(), fraction=0.02, aspect=8)
        axes[r, 0].set_ylabel(label, fontsize=10)
    fig.suptitle(
        "Preprocessing: raw pixels, scaled to [0, 1] for the network, then randomly "
        "mirrored and shifted by up to 2 pixels",
        fontsize=12,
    )
    return fig


def mean_images(images: np.ndarray, labels) -> Figure:
    """The pixel-wise mean of every class: the silhouette the network can lean on."""
    labels = as_labels(labels)
    fig = figure(9, 4.4)
    axes = fig.subplots(2, 5)
    for c, ax in enumerate(axes.flat):
        members = images[labels == c]
        mean = members.mean(0) if len(members) else np.zeros(images.shape[1:])
        show_image(ax, mean, f"{CLASSES[c]} (n={len(members):,})", cmap="inferno")
    fig.suptitle("Mean image of each class", fontsize=13)
    return fig


def pixel_histograms(images: np.ndarray, labels) -> Figure:
    """Per-class distribution of pixel intensities (log scale: most pixels are background),
    each against the whole set's distribution in gray."""
    labels = as_labels(labels)
    bins = np.arange(257)

    def density(arr):
        counts = np.bincount(arr.ravel(), minlength=256).astype(float)
        return counts / max(counts.sum(), 1)

    overall = density(images)
    fig = figure(12, 5.2)
    axes = fig.subplots(2, 5, sharex=True, sharey=True)
    for c, ax in enumerate(axes.flat):
        members = images[labels == c]
        ax.stairs(overall, bins, color="0.6", label="all classes")
        ax.stairs(
            density(members), bins, color=CLASS_COLORS[c], fill=True, alpha=0.7, label=CLASSES[c]
        )
        ax.set_yscale("log")
        ax.set_title(f"{CLASSES[c]}  mean {members.mean() if len(members) else 0:.0f}", fontsize=9)
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
