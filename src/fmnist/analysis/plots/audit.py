"""The audit's figure: the label suspects of each split, given label against suggested."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from fmnist.analysis.plots.common import Tiles, figure, show_tiles
from fmnist.data import CLASSES


def label_suspects(rows: dict[str, tuple[np.ndarray, list[dict]]], per_row: int = 8) -> Figure:
    """One row of images per split ({split: (images, suspects worst first)}), each titled
    with its index, the given label and the label the models suggest, in red."""
    splits = [s for s, (_, suspects) in rows.items() if suspects]
    fig = figure(1.55 * per_row, 2.0 * max(1, len(splits)))
    if not splits:
        fig.text(0.5, 0.5, "no label suspects", ha="center", va="center")
        return fig
    tiles = Tiles(len(splits), per_row, gap=4, head=10)
    mosaic = tiles.canvas()
    titles = []
    for r, split in enumerate(splits):
        images, suspects = rows[split]
        for c, s in enumerate(suspects[:per_row]):
            mosaic[tiles.cell(r, c)] = images[s["index"]]
            text = f"{split} {s['index']}\n{CLASSES[s['given']]}\n→ {CLASSES[s['suggested']]}"
            titles.append((r, c, text))
    ax = fig.subplots()
    show_tiles(ax, mosaic)
    for r, c, text in titles:
        tiles.title(ax, r, c, text, fontsize=8, color="#b3261e")
    fig.suptitle("Label suspects, worst first: index, given label, suggested label", fontsize=10)
    return fig
