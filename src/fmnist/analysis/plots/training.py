"""Training figures: loss and accuracy per epoch, the learning rate."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from fmnist.analysis.plots.common import TRAIN_COLOR, VAL_COLOR, figure


def columns(history: Sequence[Mapping]) -> dict[str, np.ndarray]:
    """history.csv rows (strings or numbers) -> one float array per column; a blank or
    missing figure (no validation split) is NaN."""
    if not history:
        raise ValueError("the training history is empty")

    def number(value) -> float:
        return float("nan") if value in ("", None) else float(value)

    return {k: np.array([number(row.get(k)) for row in history]) for k in history[0]}


def training_curves(
    history: Sequence[Mapping], best_epoch: int | None = None, stopped_early: bool = False
) -> Figure:
    """Loss and accuracy per epoch, train against validation, with the epoch whose weights
    were kept (lowest validation loss) and the early stop marked."""
    h = columns(history)
    epochs = h["epoch"]
    fig = figure(12, 4.6)
    ax_loss, ax_acc = fig.subplots(1, 2)
    panels = ((ax_loss, "loss", "cross-entropy loss", 1.0), (ax_acc, "acc", "accuracy (%)", 100.0))
    for ax, key, ylabel, scale in panels:
        ax.plot(epochs, h[f"train_{key}"] * scale, "o-", color=TRAIN_COLOR, ms=4, label="train")
        val = h[f"val_{key}"] * scale
        validated = not np.isnan(val).all()
        if validated:
            ax.plot(epochs, val, "s-", color=VAL_COLOR, ms=4, label="validation")
        if best_epoch and validated:
            best = h[f"val_{key}"][epochs == best_epoch] * scale
            ax.axvline(best_epoch, color="0.3", ls="--", lw=1, label=f"best epoch {best_epoch}")
            if len(best):
                at_end = best_epoch == epochs[-1]
                ax.annotate(
                    f"{best[0]:.3f}" if key == "loss" else f"{best[0]:.2f}%",
                    (best_epoch, best[0]),
                    textcoords="offset points",
                    xytext=(-6 if at_end else 6, 8),
                    ha="right" if at_end else "left",
                    fontsize=9,
                )
        if stopped_early:
            ax.axvline(epochs[-1], color="#d62728", ls=":", lw=1.5, label="early stop")
        ax.set_xlabel("epoch")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
    against = " vs validation" if not np.isnan(h["val_loss"]).all() else " (no validation split)"
    ax_loss.set_title("Loss: train" + against)
    ax_acc.set_title("Accuracy: train" + against)
    ax_loss.legend(loc="best")
    ax_acc.legend(loc="best")
    note = "stopped early" if stopped_early else "ran all epochs"
    fig.suptitle(f"Training curves ({len(epochs)} epochs, {note})", fontsize=13)
    return fig


def learning_rate(history: Sequence[Mapping]) -> Figure:
    """The optimizer's learning rate at each epoch."""
    h = columns(history)
    fig = figure(7, 3.4)
    ax = fig.subplots()
    ax.plot(h["epoch"], h["lr"], "o-", color=TRAIN_COLOR, ms=4)
    lo, hi = h["lr"].min(), h["lr"].max()
    if hi > 0 and hi / max(lo, 1e-12) > 20:
        ax.set_yscale("log")
    elif lo == hi:
        ax.set_ylim(0, hi * 1.5 if hi > 0 else 1)  # a constant rate reads as a flat line
    ax.set_xlabel("epoch")
    ax.set_ylabel("learning rate")
    ax.grid(alpha=0.3)
    ax.xaxis.get_major_locator().set_params(integer=True)
    kind = f"constant {hi:g}" if lo == hi else f"{h['lr'][0]:g} to {h['lr'][-1]:g}"
    ax.set_title(f"Learning rate per epoch ({kind})")
    return fig
