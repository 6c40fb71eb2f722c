"""Accuracy under corruptions: a heat map, corruption by severity."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from fmnist.analysis.plots.common import figure


def corruption_heatmap(result: dict, title: str = "") -> Figure:
    """Test accuracy (%) per corruption (rows) and severity (columns), with the clean
    accuracy and the mean corruption accuracy in the title."""
    names = list(result["accuracy"])
    severities = [str(s) for s in result["severities"]]
    acc = np.array([[result["accuracy"][n][s] for s in severities] for n in names]) * 100
    fig = figure(2.2 + 0.9 * len(severities), 1.0 + 0.38 * len(names))
    ax = fig.subplots()
    im = ax.imshow(acc, cmap="RdYlGn", vmin=0, vmax=100, aspect="auto")
    ax.set_xticks(range(len(severities)), severities)
    ax.set_yticks(range(len(names)), [n.replace("_", " ") for n in names])
    ax.set_xlabel("severity")
    for i in range(len(names)):
        for j in range(len(severities)):
            color = "black" if 25 < acc[i, j] < 85 else "white"
            ax.text(j, i, f"{acc[i, j]:.1f}", ha="center", va="center", fontsize=8, color=color)
    fig.colorbar(im, ax=ax, label="test accuracy (%)")
    head = f"{title}: " if title else ""
    clean, mean = 100 * result["clean"], 100 * result["mean"]
    ax.set_title(f"{head}clean {clean:.2f}%, mean under corruption {mean:.2f}%", fontsize=10)
    return fig
