"""The audit's figure: the label suspects of each split, given label against suggested."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from fmnist.analysis.plots.common import figure, show_image
from fmnist.data import CLASSES


def label_suspects(rows: dict[str, tuple[np.ndarray, list[dict]]], per_row: int = 8) -> Figure:
    """One row of images per split ({split: (images, suspects worst first)}), each titled
    with its index, the given label (red) and the label the models suggest."""
    splits = [s for s, (_, suspects) in rows.items() if suspects]
    fig = figure(1.55 * per_row, 2.0 * max(1, len(splits)))
    if not splits:
        fig.text(0.5, 0.5, "no label suspects", ha="center", va="center")
        return fig
    axes = np.atleast_2d(fig.subplots(len(splits), per_row, squeeze=False))
    for r, split in enumerate(splits):
        images, suspects = rows[split]
        for c in range(per_row):
            ax = axes[r, c]
            if c >= len(suspects):
                ax.axis("off")
                continue
            s = suspects[c]
            show_image(ax, images[s["index"]])
            ax.set_title(
                f"{split} {s['index']}\n{CLASSES[s['given']]}\n→ {CLASSES[s['suggested']]}",
                fontsize=8,
            )
            ax.title.set_color("#b3261e")
    fig.suptitle("Label suspects, worst first: index, given label, suggested label", fontsize=10)
    return fig
