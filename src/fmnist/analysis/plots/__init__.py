"""Every figure, drawn from arrays and run records only.

Each function takes NumPy arrays (or the records a run directory holds) and returns a
matplotlib `Figure`. Figures are built with `matplotlib.figure.Figure` rather than pyplot,
so there is no global figure state and no backend to select: `to_png` renders with Agg,
and a notebook shows the returned figure as it is.
"""

from __future__ import annotations

from fmnist.analysis.plots.audit import label_suspects
from fmnist.analysis.plots.common import save, to_png
from fmnist.analysis.plots.dataset import (
    class_distribution,
    mean_images,
    pixel_histograms,
    preprocessing,
    sample_grid,
)
from fmnist.analysis.plots.explain import explanation, explanation_grid
from fmnist.analysis.plots.results import (
    calibration,
    classification_report,
    confused_pairs,
    confusion_matrix,
    feature_map,
    misclassified,
    most_confused,
    per_class_metrics,
    reliability_diagram,
)
from fmnist.analysis.plots.robustness import corruption_heatmap
from fmnist.analysis.plots.training import learning_rate, training_curves

__all__ = [
    "explanation",
    "explanation_grid",
    "corruption_heatmap",
    "label_suspects",
    "calibration",
    "class_distribution",
    "classification_report",
    "confused_pairs",
    "confusion_matrix",
    "feature_map",
    "learning_rate",
    "mean_images",
    "misclassified",
    "most_confused",
    "per_class_metrics",
    "pixel_histograms",
    "preprocessing",
    "reliability_diagram",
    "sample_grid",
    "save",
    "to_png",
    "training_curves",
]
