"""One self-contained HTML page per run: the data, the training and the mistakes.

`write_report(run_dir)` reloads the saved model and the data, computes the test logits
once (with the penultimate features caught on the way, `fmnist.analysis.features`), draws
every figure of `fmnist.analysis.plots` with what the page says about it (one function per
figure), writes them as PNGs into RUN_DIR/plots/ and embeds them as data URIs in
RUN_DIR/report.html, which needs no network and no other file.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from matplotlib.figure import Figure as Drawing
from torch import nn

from fmnist import augment, data
from fmnist.analysis import plots
from fmnist.analysis.features import Predictions, kept_embed, logits_and_features, random_subset
from fmnist.analysis.report_html import render
from fmnist.analysis.robustness import of_clean
from fmnist.checkpoint import load_model
from fmnist.corruptions import TRAINING
from fmnist.errors import FmnistError
from fmnist.files import NUMBER, output_dir, read_numeric_csv, read_record, write_files

HISTORY_COLUMNS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr")
RUN_FILES = ("config.json", "history.csv", "metrics.json", "model.safetensors", "model.json")


class ReportError(FmnistError):
    pass


@dataclass
class Run:
    """What a run directory records: settings, data checksums, history and metrics."""

    directory: Path
    config: dict  # config.json: {"config", "data", "environment", "started"}
    history: list[dict]  # history.csv rows
    metrics: dict  # metrics.json
    model_info: dict = field(default_factory=dict)  # model.json


NUMBER_OR_NULL = (NUMBER, None)
METRICS_FIELDS = {
    "test_accuracy": NUMBER,
    "test_loss?": NUMBER_OR_NULL,
    "val_accuracy?": NUMBER_OR_NULL,
    "best_epoch?": (int, None),
    "epochs?": int,
    "stopped_early?": bool,
    "train_s?": NUMBER,
    "parameters?": int,
    "non_trainable?": int,
    "device?": str,
}


def read_run(run_dir: str | os.PathLike) -> Run:
    """Read a run directory, refusing anything that is not one in a single line."""
    d = Path(run_dir)
    if not d.exists():
        raise ReportError(f"{d}: no such run directory; give the folder `fmnist train` wrote")
    if not d.is_dir():
        raise ReportError(f"{d}: not a directory; give the run directory `fmnist train` wrote")
    missing = [f for f in RUN_FILES if not (d / f).is_file()]
    if missing:
        raise ReportError(
            f"{d}: not a finished run directory ({', '.join(missing)} missing); "
            "give the folder a completed `fmnist train` wrote"
        )
    # every record through one reader that checks its shape and names the file and field
    metrics = read_record(d / "metrics.json", "run record", METRICS_FIELDS, ReportError)
    config = read_record(d / "config.json", "run record", {"config": dict}, ReportError)
    model_info = read_record(d / "model.json", "model description", {"model": str}, ReportError)
    history = read_numeric_csv(d / "history.csv", "training history", HISTORY_COLUMNS, ReportError)
    return Run(d, config, history, metrics, model_info)


@dataclass
class Figure:
    key: str  # file name stem in plots/
    section: str  # "data" | "training" | "results" | "trust"
    title: str
    caption: str
    png: bytes


class Drawn(NamedTuple):
    """A figure before it is a PNG, with what the page says about it."""

    key: str
    title: str
    caption: str
    figure: Drawing  # matplotlib's


def run_splits(run: Run, ds: data.FashionMNIST) -> tuple[np.ndarray, np.ndarray]:
    """The run's own training and validation indices, rebuilt from its settings."""
    cfg = run.config["config"]
    return data.run_split(
        ds.train_labels,
        cfg.get("val_fraction", 0.2),
        cfg.get("seed", 0),
        cfg.get("train_limit", 0),
        cfg.get("all_data", False),
    )


def augmented(images: np.ndarray, seed: int = 0) -> np.ndarray:
    """The training-time batch augmentation applied to a few images, for the figure."""
    g = torch.Generator().manual_seed(seed)
    return augment.augment(torch.from_numpy(images), "crop_flip_erase", g).numpy()


def data_figures(ds: data.FashionMNIST, train_idx, val_idx, seed: int = 0) -> Iterator[Drawn]:
    """The data section's figures; also what data_visualization.py draws."""
    x, y = ds.train_images[train_idx], ds.train_labels[train_idx]
    splits = {"train": y, "validation": ds.train_labels[val_idx], "test": ds.test_labels}
    if not len(val_idx):
        del splits["validation"]
    yield sample_images_figure(x, y, seed=seed)
    yield class_distribution_figure(splits)
    yield preprocessing_figure(x, y, seed=seed)
    yield mean_images_figure(x, y)
    yield pixel_histograms_figure(x, y)


def sample_images_figure(x: np.ndarray, y: np.ndarray, *, seed: int) -> Drawn:
    caption = "Ten random training images of each class, as 28x28 grayscale pixels."
    figure = plots.sample_grid(x, y, seed=seed)
    return Drawn("sample_images", "Samples of every class", caption, figure)


def class_distribution_figure(splits: dict[str, np.ndarray]) -> Drawn:
    caption = (
        "Images per class in the training, validation and test splits: the classes are "
        "balanced, and the validation split is stratified."
    )
    return Drawn(
        "class_distribution", "Class distribution", caption, plots.class_distribution(splits)
    )


def preprocessing_figure(x: np.ndarray, y: np.ndarray, *, seed: int) -> Drawn:
    first = np.array(
        [np.flatnonzero(y == c)[0] for c in range(len(data.CLASSES)) if (y == c).any()]
    )
    caption = (
        "The first training image of each class: raw bytes, scaled to [0, 1] as the network "
        "receives them, and after the `crop_flip_erase` batch augmentation (a shift of up to "
        "2 pixels, a random mirror, random erasing)."
    )
    figure = plots.preprocessing(x[first], y[first], augmented(x[first], seed))
    return Drawn("preprocessing", "Preprocessing", caption, figure)


def mean_images_figure(x: np.ndarray, y: np.ndarray) -> Drawn:
    caption = "The average of all training images of each class."
    return Drawn("mean_images", "Mean image per class", caption, plots.mean_images(x, y))


def pixel_histograms_figure(x: np.ndarray, y: np.ndarray) -> Drawn:
    caption = "The share of pixels at each intensity, per class (log scale), against all classes."
    return Drawn("pixel_histograms", "Pixel intensities", caption, plots.pixel_histograms(x, y))


def training_figures(run: Run) -> Iterator[Drawn]:
    yield training_curves_figure(run)
    caption = "The optimizer's learning rate per epoch."
    yield Drawn("learning_rate", "Learning rate", caption, plots.learning_rate(run.history))


def training_curves_figure(run: Run) -> Drawn:
    m, cfg = run.metrics, run.config["config"]
    if cfg.get("all_data"):
        caption = (
            "Training loss and accuracy per epoch, on all 60,000 training images (no "
            f"validation split). The weights kept are those of epoch {m.get('best_epoch')}, "
            "the last"
        )
    else:
        kept = {
            "val_loss": "the lowest validation loss",
            "val_acc": "the highest validation accuracy",
        }.get(cfg.get("select", "val_loss"), "the last epoch")
        caption = (
            "Train against validation per epoch. The weights kept are those of epoch "
            f"{m.get('best_epoch')}, {kept}"
        )
    stopped = bool(m.get("stopped_early"))
    caption += f"; training stopped early after {m.get('epochs')} epochs." if stopped else "."
    figure = plots.training_curves(run.history, m.get("best_epoch"), stopped)
    return Drawn("training_curves", "Loss and accuracy", caption, figure)


def results_figures(
    test: Predictions, *, pick: np.ndarray, embedding: Future[np.ndarray]
) -> Iterator[Drawn]:
    yield confusion_matrix_figure(test)
    yield per_class_metrics_figure(test)
    yield classification_report_figure(test)
    yield confused_pairs_figure(test)
    yield misclassified_figure(test)
    yield reliability_figure(test)
    yield feature_map_figure(test, pick=pick, embedding=embedding)


def confusion_matrix_figure(test: Predictions) -> Drawn:
    caption = (
        "Rows are true classes, columns predictions. Right: each row divided by the class "
        "size, so the diagonal is each class's recall."
    )
    figure = plots.confusion_matrix(test.result["confusion_matrix"])
    return Drawn("confusion_matrix", "Confusion matrix", caption, figure)


def per_class_metrics_figure(test: Predictions) -> Drawn:
    caption = (
        "Precision: of the images predicted as the class, the share that are. Recall: of the "
        "class's images, the share found. F1: their harmonic mean."
    )
    figure = plots.per_class_metrics(test.result["per_class"])
    return Drawn("per_class_metrics", "Precision, recall and F1", caption, figure)


def classification_report_figure(test: Predictions) -> Drawn:
    r = test.result
    caption = "The same numbers as a table, in the layout of scikit-learn's classification_report."
    figure = plots.classification_report(
        r["per_class"], r["macro_avg"], r["weighted_avg"], r["test_accuracy"]
    )
    return Drawn("classification_report", "Classification report", caption, figure)


def confused_pairs_figure(test: Predictions) -> Drawn:
    caption = "The class pairs the model mixes up most, with test images it got wrong."
    figure = plots.confused_pairs(
        test.images, test.labels, test.predicted, test.result["confusion_matrix"]
    )
    return Drawn("confused_pairs", "Most confused pairs", caption, figure)


def misclassified_figure(test: Predictions) -> Drawn:
    caption = (
        "Wrong predictions with the highest confidence: some are label noise, some the "
        "model's blind spots."
    )
    figure = plots.misclassified(test.images, test.labels, test.predicted, test.confidence)
    return Drawn("misclassified", "Misclassified test images", caption, figure)


def reliability_figure(test: Predictions) -> Drawn:
    caption = (
        "Accuracy against confidence in 15 bins. The expected calibration error (ECE) is the "
        "mean gap, weighted by the share of predictions in each bin."
    )
    figure = plots.reliability_diagram(test.confidence, test.predicted == test.labels)
    return Drawn("reliability", "Calibration", caption, figure)


def feature_map_figure(
    test: Predictions, *, pick: np.ndarray, embedding: Future[np.ndarray]
) -> Drawn:
    """`embedding`: the t-SNE map of the features of the test images `pick`, computing."""
    caption = (
        f"The input of the last Linear layer for {len(pick):,} test images, reduced by PCA "
        "then t-SNE to two dimensions; colors are the true classes."
    )
    figure = plots.feature_map(embedding.result(), test.labels[pick])
    return Drawn("feature_map", "Feature map", caption, figure)


def trust_figures(
    test: Predictions, *, model: nn.Module, with_robustness: bool = False
) -> list[Drawn]:
    """The explanations (with Captum) and the accuracy under corruptions (when asked)."""
    drawn = [explanations_figure(model, test)]
    if with_robustness:
        from fmnist.analysis.robustness import robustness

        r = robustness(model, test.images, test.labels)
        figure = plots.corruption_heatmap(r)
        caption = robustness_caption(r)
        drawn.append(Drawn("robustness", "Robustness under corruptions", caption, figure))
    return [d for d in drawn if d is not None]


def robustness_caption(r: dict) -> str:
    """The robustness figure's caption: the clean and mean corrupted accuracy, and the mean
    apart for the corruptions `--augment flip_corrupt` trains with and for the others."""
    text = (
        f"Test accuracy under {len(r['accuracy'])} corruptions at severities "
        f"{', '.join(map(str, r['severities']))} (kornia; fmnist robustness): clean "
        f"{r['clean']:.2%}, mean under corruption {r['mean']:.2%} ({of_clean(r)})"
    )
    trained = [n for n in r["accuracy"] if n in TRAINING]
    groups = (
        ("mean_trained", trained, "that training with corruptions (--augment flip_corrupt) uses"),
        ("mean_unseen", [n for n in r["accuracy"] if n not in TRAINING], "others"),
    )
    parts = [
        f"{r[key]:.2%} on the {len(names)} {what}"
        for key, names, what in groups
        if r.get(key) is not None
    ]
    return text + (": " + " and ".join(parts) if parts else "") + "."


FAITHFULNESS_IMAGES = 50  # test images in the report's deletion test


def explanations_figure(model: nn.Module, test: Predictions) -> Drawn | None:
    """The six most confident mistakes and one correct image per class, three methods
    each, with the deletion test on 50 test images; None without Captum."""
    from fmnist.analysis import explain

    try:
        explain.captum_or_fail()
    except explain.ExplainError:
        return None
    y_true, y_pred = test.labels, test.predicted
    wrong = np.flatnonzero(y_pred != y_true)
    wrong = wrong[np.argsort(-test.confidence[wrong])][:6]
    hits = [np.flatnonzero((y_true == c) & (y_pred == c)) for c in range(len(data.CLASSES))]
    right = [int(h[0]) for h in hits if len(h)]
    pick = np.array([*wrong, *right], dtype=int)
    images = test.images
    maps = {m: explain.attribute(model, images[pick], y_pred[pick], m) for m in explain.METHODS}
    titles = [
        f"{'wrong' if y_pred[i] != y_true[i] else 'right'}: {data.CLASSES[y_pred[i]]}"
        + (f"\n(true {data.CLASSES[y_true[i]]})" if y_pred[i] != y_true[i] else "")
        for i in pick
    ]
    faith = explain.faithfulness(model, images[:FAITHFULNESS_IMAGES])
    verdicts = "; ".join(
        f"{m}: area {faith[m]['auc']:.3f}"
        + ("" if faith[m]["better_than_random"] else " (NO BETTER THAN RANDOM)")
        for m in explain.METHODS
    )
    caption = (
        "Why the model decided: for its most confident mistakes and one right answer per "
        "class, Grad-CAM, integrated gradients and occlusion for the predicted class (red "
        f"for, blue against). Deletion test on {FAITHFULNESS_IMAGES} test images (the "
        "predicted class's probability as the most-attributed pixels are blacked out, area "
        "under the curve "
        f"up to 30% of the pixels; lower falls faster): {verdicts}; random order over the "
        f"item's pixels: {faith['random']['auc']:.3f}."
    )
    figure = plots.explanation_grid(images[pick], titles, maps)
    return Drawn("explanations", "Explanations", caption, figure)


def build_figures(
    run: Run,
    ds: data.FashionMNIST,
    test: Predictions,
    *,
    features: np.ndarray,
    model: nn.Module,
    tsne_points: int = 2000,
    seed: int = 0,
    with_robustness: bool = False,
) -> list[Figure]:
    """Every figure of the page, in its order, as PNGs."""
    # The trust figures run the model, so they come before t-SNE: once its OpenMP threads
    # have run in this process, PyTorch's work here took 7 s instead of 1.
    trust = trust_figures(test, model=model, with_robustness=with_robustness)
    train_idx, val_idx = run_splits(run, ds)
    pick = random_subset(test.labels, tsne_points, seed)
    # t-SNE is seconds of work, most of it outside the GIL: it runs beside the drawing
    # unless plots/ keeps the map of these very features from an earlier report
    kept = run.directory / "plots" / "feature_map.npz"
    with ThreadPoolExecutor(max_workers=1) as beside:
        embedding = beside.submit(kept_embed, features[pick], seed, kept)
        sections = {
            "data": data_figures(ds, train_idx, val_idx, seed),
            "training": training_figures(run),
            "results": results_figures(test, pick=pick, embedding=embedding),
            "trust": trust,
        }
        return [
            Figure(drawn.key, section, drawn.title, drawn.caption, plots.to_png(drawn.figure))
            for section, figures in sections.items()
            for drawn in figures
        ]


def write_report(
    run_dir: str | os.PathLike,
    *,
    dataset: data.FashionMNIST | None = None,
    data_dir: str | None = None,
    download: bool = True,
    tsne_points: int = 2000,
    seed: int = 0,
    with_robustness: bool = False,
    **code,
) -> Path:
    """Write RUN_DIR/plots/*.png and RUN_DIR/report.html (and the feature map's points,
    RUN_DIR/plots/feature_map.npz, for the next report); return the page's path. `code`:
    load_model's model_code and allow_changed_code, for a model of the user's own code."""
    if tsne_points < 10:
        raise ReportError(f"--tsne-points must be at least 10, got {tsne_points}")
    run = read_run(run_dir)
    plots_dir = output_dir(run.directory / "plots", "", ReportError)
    model = load_model(run.directory, **code)
    ds = dataset if dataset is not None else data.load(data_dir, download=download)
    logits, features = logits_and_features(model, ds.test_images)
    test = Predictions.from_logits(logits, ds)
    made = not plots_dir.exists()
    plots_dir.mkdir(exist_ok=True)
    try:
        figures = build_figures(
            run,
            ds,
            test,
            features=features,
            model=model,
            tsne_points=tsne_points,
            seed=seed,
            with_robustness=with_robustness,
        )
        ece = plots.calibration(test.confidence, test.predicted == test.labels)["ece"]
        # the figures all or nothing (a full disk leaves the earlier ones), then the page
        write_files(plots_dir, {f"{f.key}.png": f.png for f in figures})
        page = render(run, ds, {**test.result, "ece": ece}, figures)
        out = write_files(run.directory, {"report.html": page})[0]
    except BaseException:
        if made:  # a first report that failed leaves no folder of some of its figures
            shutil.rmtree(plots_dir, ignore_errors=True)
        raise
    return out
