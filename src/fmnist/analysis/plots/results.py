"""Result figures: confusion matrix, per-class scores, mistakes, calibration, feature map."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from matplotlib import colormaps
from matplotlib.figure import Figure

from fmnist.analysis.plots.common import CLASS_COLORS, Tiles, as_labels, figure, show_tiles
from fmnist.data import CLASSES

SHORT = [c.split("/")[0] for c in CLASSES]  # "T-shirt" fits under a matrix column


# ----------------------------------------------------------------------------
# Confusion matrix and per-class scores
# ----------------------------------------------------------------------------


def _matrix_panel(fig, ax, values, *, text, title, cmap, vmax):
    im = ax.imshow(values, cmap=cmap, vmin=0, vmax=vmax)
    n = len(values)
    for i in range(n):
        for j in range(n):
            dark = values[i, j] > 0.6 * vmax
            ax.text(
                j,
                i,
                text[i][j],
                ha="center",
                va="center",
                fontsize=8,
                color="white" if dark else "black",
            )
    ax.set_xticks(range(n), SHORT, rotation=45, ha="right")
    ax.set_yticks(range(n), CLASSES)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.02)


def percent(v: float) -> str:
    if v == 0:
        return "0"
    return "<1%" if v < 0.01 else f"{v:.0%}"


def confusion_matrix(cm) -> Figure:
    """Counts (left) and each row divided by its class's size, i.e. recall on the diagonal
    (right). Rows are true classes, columns predictions."""
    cm = np.asarray(cm, dtype=np.int64)
    rows = cm.sum(1, keepdims=True)
    norm = np.divide(cm, rows, out=np.zeros(cm.shape), where=rows > 0)
    fig = figure(15, 6.6)
    ax_counts, ax_norm = fig.subplots(1, 2)
    counts_text = [[f"{v}" for v in row] for row in cm]
    norm_text = [[percent(v) for v in row] for row in norm]
    _matrix_panel(
        fig, ax_counts, cm, text=counts_text, title="Counts", cmap="Blues", vmax=max(cm.max(), 1)
    )
    _matrix_panel(
        fig,
        ax_norm,
        norm,
        text=norm_text,
        title="Normalized by true class (rows sum to 100%)",
        cmap="Blues",
        vmax=1.0,
    )
    acc = np.trace(cm) / max(cm.sum(), 1)
    fig.suptitle(f"Confusion matrix: {cm.sum():,} test images, accuracy {acc:.2%}", fontsize=13)
    return fig


def per_class_metrics(per_class: Mapping[str, Mapping]) -> Figure:
    """Precision, recall and F1 of every class as grouped bars."""
    names = list(per_class)
    fig = figure(12, 4.8)
    ax = fig.subplots()
    x = np.arange(len(names))
    for i, key in enumerate(("precision", "recall", "f1")):
        values = np.array([per_class[n][key] for n in names])
        bars = ax.bar(x + (i - 1) * 0.27, values, 0.27, label=key if key != "f1" else "F1")
        ax.bar_label(
            bars, labels=[f"{v:.2f}" for v in values], fontsize=6.5, padding=1, rotation=90
        )
    ax.set_xticks(x, names, rotation=20)
    ax.set_ylim(0, 1.12)
    ax.set_ylabel("score")
    ax.axhline(1.0, color="0.8", lw=0.8)
    ax.legend(ncols=3, loc="upper center")
    ax.set_title("Precision, recall and F1 per class (test set)")
    return fig


def classification_report(
    per_class: Mapping[str, Mapping],
    macro_avg: Mapping,
    weighted_avg: Mapping,
    accuracy: float,
) -> Figure:
    """scikit-learn's classification report as a table, each row shaded by its F1."""
    n = sum(int(r["support"]) for r in per_class.values())
    header = ["class", "precision", "recall", "F1", "support"]
    body = [
        [name, f"{r['precision']:.4f}", f"{r['recall']:.4f}", f"{r['f1']:.4f}", f"{r['support']:,}"]
        for name, r in per_class.items()
    ]
    body.append(["accuracy", "", "", f"{accuracy:.4f}", f"{n:,}"])
    for label, r in (("macro avg", macro_avg), ("weighted avg", weighted_avg)):
        body.append(
            [label, f"{r['precision']:.4f}", f"{r['recall']:.4f}", f"{r['f1']:.4f}", f"{n:,}"]
        )
    fig = figure(8, 0.3 * (len(body) + 1) + 0.6)
    ax = fig.subplots()
    ax.axis("off")
    table = ax.table(
        cellText=body,
        colLabels=header,
        bbox=[0, 0, 1, 1],
        cellLoc="center",
        colLoc="center",
        colWidths=[0.3, 0.17, 0.17, 0.17, 0.17],
    )
    table.auto_set_font_size(False)
    table.set_fontsize(10)
    cmap = colormaps["RdYlGn"]
    for (row, col), cell in table.get_celld().items():
        cell.set_edgecolor("0.85")
        if row == 0:
            cell.set_text_props(weight="bold")
            cell.set_facecolor("0.92")
        elif row <= len(per_class):
            f1 = list(per_class.values())[row - 1]["f1"]
            if col == 3:
                cell.set_facecolor(cmap(0.15 + 0.7 * f1))
        else:
            cell.set_facecolor("0.96")
    ax.set_title("Classification report (test set)", fontsize=12)
    return fig


# ----------------------------------------------------------------------------
# Mistakes
# ----------------------------------------------------------------------------


def most_confused(cm, k: int = 6) -> list[tuple[int, int, int]]:
    """The k largest off-diagonal cells as (true class, predicted class, count), largest first."""
    cm = np.array(cm, dtype=np.int64)
    np.fill_diagonal(cm, 0)
    order = np.argsort(-cm, axis=None, kind="stable")[:k]
    pairs = [
        (int(i), int(j), int(cm[i, j]))
        for i, j in zip(*np.unravel_index(order, cm.shape), strict=True)
    ]
    return [p for p in pairs if p[2] > 0]


def confused_pairs(images, y_true, y_pred, cm, *, k: int = 6, examples: int = 8) -> Figure:
    """One row per most confused (true, predicted) pair, with test images it got wrong."""
    y_true, y_pred = as_labels(y_true), as_labels(y_pred)
    pairs = most_confused(cm, k)
    tiles = Tiles(max(len(pairs), 1), examples)
    mosaic = tiles.canvas()
    for r, (t, p, _) in enumerate(pairs):
        for j, i in enumerate(np.flatnonzero((y_true == t) & (y_pred == p))[:examples]):
            mosaic[tiles.cell(r, j)] = images[i]
    fig = figure(examples * 1.0 + 2.6, tiles.rows * 1.15 + 0.6)
    ax = fig.subplots()
    show_tiles(ax, mosaic)
    if pairs:
        labels = [f"{CLASSES[t]}\n→ {CLASSES[p]}\n({count})" for t, p, count in pairs]
        tiles.label_rows(ax, labels, fontsize=9)
    else:
        ax.text(0, 0.5, "no mistakes", fontsize=11, transform=ax.transAxes)
    fig.suptitle("Most confused pairs: true class → predicted class (count)", fontsize=13)
    return fig


def misclassified(images, y_true, y_pred, confidence, *, n: int = 40, cols: int = 10) -> Figure:
    """The most confident mistakes first: true label, prediction and its softmax probability."""
    y_true, y_pred = as_labels(y_true), as_labels(y_pred)
    confidence = np.asarray(confidence, dtype=float)
    wrong = np.flatnonzero(y_true != y_pred)
    wrong = wrong[np.argsort(-confidence[wrong], kind="stable")][:n]
    tiles = Tiles(max((len(wrong) + cols - 1) // cols, 1), cols, gap=4, head=9)
    mosaic = tiles.canvas()
    for place, i in enumerate(wrong):
        mosaic[tiles.cell(*divmod(place, cols))] = images[i]
    fig = figure(cols * 1.35, tiles.rows * 1.75 + 0.5)
    ax = fig.subplots()
    show_tiles(ax, mosaic)
    for place, i in enumerate(wrong):
        title = f"true {SHORT[y_true[i]]}\npred {SHORT[y_pred[i]]} {confidence[i]:.0%}"
        tiles.title(ax, *divmod(place, cols), title, fontsize=8, color="#b22222")
    total = int((y_true != y_pred).sum())
    fig.suptitle(
        f"Misclassified test images, most confident first ({len(wrong)} of {total:,})",
        fontsize=13,
    )
    return fig


# ----------------------------------------------------------------------------
# Calibration and features
# ----------------------------------------------------------------------------


def calibration(confidence, correct, bins: int = 15) -> dict:
    """Equal-width confidence bins over (0, 1]: count, mean confidence and accuracy in each,
    and the expected calibration error, sum over bins of (n_b / N) |accuracy_b - confidence_b|
    (Guo et al. 2017, "On Calibration of Modern Neural Networks")."""
    confidence = np.asarray(confidence, dtype=float)
    correct = np.asarray(correct, dtype=float)
    edges = np.linspace(0.0, 1.0, bins + 1)
    # bin b holds (edges[b], edges[b+1]]; a confidence of exactly 0 goes to the first bin
    which = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, bins - 1)
    counts = np.bincount(which, minlength=bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        conf = np.bincount(which, confidence, minlength=bins) / counts
        acc = np.bincount(which, correct, minlength=bins) / counts
    n = max(len(confidence), 1)
    ece = float(np.nansum(counts / n * np.abs(acc - conf)))
    return {"edges": edges, "counts": counts, "confidence": conf, "accuracy": acc, "ece": ece}


def reliability_diagram(confidence, correct, bins: int = 15) -> Figure:
    """Accuracy against confidence per bin (a calibrated model sits on the diagonal), and
    how many predictions fall in each bin."""
    cal = calibration(confidence, correct, bins)
    edges, width = cal["edges"][:-1], 1.0 / bins
    has = cal["counts"] > 0
    fig = figure(6.4, 7.2)
    ax, ax_hist = fig.subplots(2, 1, height_ratios=[3, 1], sharex=True)
    ax.bar(
        edges[has],
        cal["accuracy"][has],
        width,
        align="edge",
        color="#1f77b4",
        edgecolor="white",
        label="accuracy",
    )
    gap_lo = np.minimum(cal["accuracy"], cal["confidence"])[has]
    gap = np.abs(cal["accuracy"] - cal["confidence"])[has]
    ax.bar(
        edges[has],
        gap,
        width,
        bottom=gap_lo,
        align="edge",
        color=(0.84, 0.15, 0.16, 0.12),
        edgecolor="#d62728",
        hatch="//",
        label="gap to confidence",
    )
    ax.plot([0, 1], [0, 1], "--", color="0.3", label="perfect calibration")
    ax.set_ylabel("accuracy")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.legend(loc="upper left")
    ax.set_title(f"Reliability diagram: ECE {cal['ece']:.2%} ({bins} bins)")
    ax_hist.bar(edges, cal["counts"], width, align="edge", color="0.5", edgecolor="white")
    ax_hist.set_yscale("log")
    ax_hist.set_xlabel("confidence (softmax probability of the predicted class)")
    ax_hist.set_ylabel("predictions")
    return fig


def feature_map(embedding, labels, title: str = "Penultimate-layer features") -> Figure:
    """A 2-D embedding of the network's features, one color per true class, each class
    named at its median point."""
    embedding = np.asarray(embedding, dtype=float)
    labels = as_labels(labels)
    fig = figure(9.5, 8)
    ax = fig.subplots()
    for c, name in enumerate(CLASSES):
        pts = embedding[labels == c]
        ax.scatter(
            pts[:, 0], pts[:, 1], s=6, color=CLASS_COLORS[c], alpha=0.7, label=name, linewidths=0
        )
        if len(pts):
            mx, my = np.median(pts, 0)
            ax.text(
                mx,
                my,
                name,
                fontsize=9,
                weight="bold",
                ha="center",
                va="center",
                bbox={
                    "boxstyle": "round,pad=0.2",
                    "fc": "white",
                    "ec": CLASS_COLORS[c],
                    "alpha": 0.8,
                },
            )
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend(markerscale=3, fontsize=8, loc="best", framealpha=0.9)
    ax.set_title(f"{title} ({len(embedding):,} test images)", fontsize=12)
    return fig
