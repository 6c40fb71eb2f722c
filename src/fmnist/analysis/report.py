"""One self-contained HTML page per run: the data, the training and the mistakes.

`write_report(run_dir)` reloads the saved model and the data, computes the test logits
once (with the penultimate features caught on the way by a forward hook), draws every
figure of `fmnist.analysis.plots`, writes them as PNGs into RUN_DIR/plots/ and embeds them as
data URIs in RUN_DIR/report.html, which needs no network and no other file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from fmnist import data
from fmnist.analysis import plots
from fmnist.analysis.report_html import render
from fmnist.checkpoint import atomic_write, load_model
from fmnist.corruptions import TRAINING
from fmnist.errors import FmnistError
from fmnist.evaluate import evaluate_logits, infer
from fmnist.files import NUMBER, output_dir, read_numeric_csv, read_record

HISTORY_COLUMNS = ("epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr")
RUN_FILES = ("config.json", "history.csv", "metrics.json", "model.safetensors", "model.json")


class ReportError(FmnistError):
    pass


# ----------------------------------------------------------------------------
# Read the run
# ----------------------------------------------------------------------------


@dataclass
class Run:
    """What a run directory records: settings, data checksums, history and metrics."""

    directory: Path
    config: dict  # config.json: {"config", "data", "environment", "started"}
    history: list[dict]  # history.csv rows
    metrics: dict  # metrics.json
    model_info: dict = field(default_factory=dict)  # model.json


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
    number_or_null = (NUMBER, None)
    metrics = read_record(d / "metrics.json", "run record", {
        "test_accuracy": NUMBER, "test_loss?": number_or_null, "val_accuracy?": number_or_null,
        "best_epoch?": (int, None), "epochs?": int, "stopped_early?": bool,
        "train_s?": NUMBER, "parameters?": int, "non_trainable?": int, "device?": str,
    }, ReportError)  # fmt: skip
    config = read_record(d / "config.json", "run record", {"config": dict}, ReportError)
    model_info = read_record(d / "model.json", "model description", {"model": str}, ReportError)
    history = read_numeric_csv(d / "history.csv", "training history", HISTORY_COLUMNS, ReportError)
    return Run(d, config, history, metrics, model_info)


# ----------------------------------------------------------------------------
# Logits, features, embedding
# ----------------------------------------------------------------------------


def last_linear(model: nn.Module) -> nn.Linear:
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ReportError(f"model {getattr(model, 'model_name', model)!r} has no Linear layer")
    return linears[-1]


def logits_and_features(
    model: nn.Module, images: np.ndarray, batch_size: int = 1000
) -> tuple[torch.Tensor, np.ndarray]:
    """Test logits from one `infer` pass, and the input of the last Linear layer (the
    penultimate features) caught by a forward pre-hook during that same pass."""
    caught: list[torch.Tensor] = []
    hook = last_linear(model).register_forward_pre_hook(
        lambda _m, inputs: caught.append(inputs[0].detach().float().cpu())
    )
    try:
        logits = infer(model, images, batch_size)
    finally:
        hook.remove()
    return logits, torch.cat(caught).numpy()


def embed(features: np.ndarray, seed: int = 0) -> np.ndarray:
    """PCA to at most 50 dimensions, then t-SNE to 2, as in Zalando's own picture of the
    dataset; PCA first removes noise and makes t-SNE's neighbour search cheap."""
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE
    from threadpoolctl import threadpool_limits

    n, dim = features.shape
    reduced = PCA(n_components=min(50, dim, n), random_state=seed).fit_transform(features)
    perplexity = float(min(30.0, max(2.0, (n - 1) / 3)))
    tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed)
    # One thread: after PyTorch has run in this process, t-SNE's OpenMP threads fight its
    # idle ones; on 2 cores 2,000 points took 62 s with all threads and 8 s with one.
    with threadpool_limits(1):
        return tsne.fit_transform(reduced)


def random_subset(labels: np.ndarray, n: int, seed: int = 0) -> np.ndarray:
    """A seeded random subset of n indices (all of them when n >= len(labels))."""
    if n >= len(labels):
        return np.arange(len(labels))
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(len(labels), size=n, replace=False))


# ----------------------------------------------------------------------------
# Figures
# ----------------------------------------------------------------------------


@dataclass
class Figure:
    key: str  # file name stem in plots/
    section: str  # "data" | "training" | "results"
    title: str
    caption: str
    png: bytes


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
    return data.augment(torch.from_numpy(images), "crop_flip_erase", g).numpy()


def data_figures(ds: data.FashionMNIST, train_idx, val_idx, seed: int = 0):
    """(key, title, caption, Figure) for the data figures; also what data_visualization.py
    draws."""
    x, y = ds.train_images[train_idx], ds.train_labels[train_idx]
    first = np.array(
        [np.flatnonzero(y == c)[0] for c in range(len(data.CLASSES)) if (y == c).any()]
    )
    splits = {"train": y, "validation": ds.train_labels[val_idx], "test": ds.test_labels}
    if not len(val_idx):
        del splits["validation"]
    yield (
        "sample_images",
        "Samples of every class",
        "Ten random training images of each class, as 28x28 grayscale pixels.",
        plots.sample_grid(x, y, seed=seed),
    )
    yield (
        "class_distribution",
        "Class distribution",
        "Images per class in the training, validation and test splits: the classes are "
        "balanced, and the validation split is stratified.",
        plots.class_distribution(splits),
    )
    yield (
        "preprocessing",
        "Preprocessing",
        "The first training image of each class: raw bytes, scaled to [0, 1] as the network "
        "receives them, and after the `crop_flip_erase` batch augmentation (a shift of up to "
        "2 pixels, a random mirror, random erasing).",
        plots.preprocessing(x[first], y[first], augmented(x[first], seed)),
    )
    yield (
        "mean_images",
        "Mean image per class",
        "The average of all training images of each class.",
        plots.mean_images(x, y),
    )
    yield (
        "pixel_histograms",
        "Pixel intensities",
        "The share of pixels at each intensity, per class (log scale), against all classes.",
        plots.pixel_histograms(x, y),
    )


def build_figures(
    run: Run,
    ds: data.FashionMNIST,
    logits: torch.Tensor,
    features,
    tsne_points,
    seed: int = 0,
    model_for_trust: nn.Module | None = None,
    robustness_result: dict | None = None,
) -> list[Figure]:
    figures: list[Figure] = []

    def add(section, key, title, caption, fig):
        figures.append(Figure(key, section, title, caption, plots.to_png(fig)))

    train_idx, val_idx = run_splits(run, ds)
    for item in data_figures(ds, train_idx, val_idx, seed):
        add("data", *item)

    m = run.metrics
    cfg = run.config["config"]
    kept = {
        "val_loss": "the lowest validation loss",
        "val_acc": "the highest validation accuracy",
    }.get(cfg.get("select", "val_loss"), "the last epoch")
    if cfg.get("all_data"):
        intro = (
            "Training loss and accuracy per epoch, on all 60,000 training images (no "
            f"validation split). The weights kept are those of epoch {m.get('best_epoch')}, "
            "the last"
        )
    else:
        intro = (
            "Train against validation per epoch. The weights kept are those of epoch "
            f"{m.get('best_epoch')}, {kept}"
        )
    add(
        "training",
        "training_curves",
        "Loss and accuracy",
        intro
        + (
            f"; training stopped early after {m.get('epochs')} epochs."
            if m.get("stopped_early")
            else "."
        ),
        plots.training_curves(run.history, m.get("best_epoch"), bool(m.get("stopped_early"))),
    )
    add(
        "training",
        "learning_rate",
        "Learning rate",
        "The optimizer's learning rate per epoch.",
        plots.learning_rate(run.history),
    )

    y_true = ds.test_labels
    probs = torch.softmax(logits, 1).numpy()
    y_pred, confidence = probs.argmax(1), probs.max(1)
    result = evaluate_logits(logits, y_true)
    cm = result["confusion_matrix"]
    add(
        "results",
        "confusion_matrix",
        "Confusion matrix",
        "Rows are true classes, columns predictions. Right: each row divided by the class size, "
        "so the diagonal is each class's recall.",
        plots.confusion_matrix(cm),
    )
    add(
        "results",
        "per_class_metrics",
        "Precision, recall and F1",
        "Precision: of the images predicted as the class, the share that are. Recall: of the "
        "class's images, the share found. F1: their harmonic mean.",
        plots.per_class_metrics(result["per_class"]),
    )
    add(
        "results",
        "classification_report",
        "Classification report",
        "The same numbers as a table, in the layout of scikit-learn's classification_report.",
        plots.classification_report(
            result["per_class"],
            result["macro_avg"],
            result["weighted_avg"],
            result["test_accuracy"],
        ),
    )
    add(
        "results",
        "confused_pairs",
        "Most confused pairs",
        "The class pairs the model mixes up most, with test images it got wrong.",
        plots.confused_pairs(ds.test_images, y_true, y_pred, cm),
    )
    add(
        "results",
        "misclassified",
        "Misclassified test images",
        "Wrong predictions with the highest confidence: some are label noise, some the "
        "model's blind spots.",
        plots.misclassified(ds.test_images, y_true, y_pred, confidence),
    )
    add(
        "results",
        "reliability",
        "Calibration",
        "Accuracy against confidence in 15 bins. The expected calibration error (ECE) is the "
        "mean gap, weighted by the share of predictions in each bin.",
        plots.reliability_diagram(confidence, y_pred == y_true),
    )
    pick = random_subset(y_true, tsne_points, seed)
    add(
        "results",
        "feature_map",
        "Feature map",
        f"The input of the last Linear layer for {len(pick):,} test images, reduced by PCA "
        "then t-SNE to two dimensions; colors are the true classes.",
        plots.feature_map(embed(features[pick], seed), y_true[pick]),
    )
    explained = explanations(model_for_trust, ds.test_images, y_true, y_pred, confidence)
    if explained is not None:
        add("trust", "explanations", *explained)
    if robustness_result is not None:
        r = robustness_result
        add(
            "trust",
            "robustness",
            "Robustness under corruptions",
            robustness_caption(r),
            plots.corruption_heatmap(r),
        )
    return figures


def robustness_caption(r: dict) -> str:
    """The robustness figure's caption: the clean and mean corrupted accuracy, and the mean
    apart for the corruptions `--augment flip_corrupt` trains with and for the others."""
    text = (
        f"Test accuracy under {len(r['accuracy'])} corruptions at severities "
        f"{', '.join(map(str, r['severities']))} (kornia; fmnist robustness): clean "
        f"{r['clean']:.2%}, mean under corruption {r['mean']:.2%} ({r['relative']:.1%} of "
        f"clean)"
    )
    parts = [
        f"{r[key]:.2%} on the {len(names)} {what}"
        for key, names, what in (
            ("mean_trained", [n for n in r["accuracy"] if n in TRAINING],
             "that training with corruptions (--augment flip_corrupt) uses"),
            ("mean_unseen", [n for n in r["accuracy"] if n not in TRAINING], "others"),
        )
        if r.get(key) is not None
    ]  # fmt: skip
    return text + (": " + " and ".join(parts) if parts else "") + "."


FAITHFULNESS_IMAGES = 50  # test images in the report's deletion test


def explanations(model, images, y_true, y_pred, confidence):
    """(title, caption, figure) of the explanations section: the six most confident
    mistakes and one correct image per class, three methods each, with the deletion test
    on 50 test images; None without a model or without Captum."""
    if model is None:
        return None
    from fmnist.analysis import explain

    try:
        explain.captum_or_fail()
    except explain.ExplainError:
        return None
    wrong = np.flatnonzero(y_pred != y_true)
    wrong = wrong[np.argsort(-confidence[wrong])][:6]
    hits = [np.flatnonzero((y_true == c) & (y_pred == c)) for c in range(len(data.CLASSES))]
    right = [int(h[0]) for h in hits if len(h)]
    pick = np.array([*wrong, *right], dtype=int)
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
    return "Explanations", caption, plots.explanation_grid(images[pick], titles, maps)


# ----------------------------------------------------------------------------
# Write
# ----------------------------------------------------------------------------


def write_report(
    run_dir: str | os.PathLike,
    dataset: data.FashionMNIST | None = None,
    data_dir: str | None = None,
    download: bool = True,
    tsne_points: int = 2000,
    seed: int = 0,
    with_robustness: bool = False,
) -> Path:
    """Write RUN_DIR/plots/*.png and RUN_DIR/report.html; return the page's path."""
    if tsne_points < 10:
        raise ReportError(f"--tsne-points must be at least 10, got {tsne_points}")
    run = read_run(run_dir)
    output_dir(run.directory / "plots", "", ReportError)
    model = load_model(run.directory)
    ds = dataset if dataset is not None else data.load(data_dir, download=download)
    logits, features = logits_and_features(model, ds.test_images)
    robust = None
    if with_robustness:
        from fmnist.analysis.robustness import robustness

        robust = robustness(model, ds.test_images, ds.test_labels)
    figures = build_figures(run, ds, logits, features, tsne_points, seed, model, robust)
    result = evaluate_logits(logits, ds.test_labels)
    probs = torch.softmax(logits, 1).numpy()
    result["ece"] = plots.calibration(probs.max(1), probs.argmax(1) == ds.test_labels)["ece"]

    plots_dir = run.directory / "plots"
    plots_dir.mkdir(exist_ok=True)
    for f in figures:
        write_shared(plots_dir / f"{f.key}.png", f.png)
    out = run.directory / "report.html"
    write_shared(out, render(run, ds, result, figures).encode("utf-8"))
    return out


def write_shared(path: Path, content: bytes) -> None:
    """Atomically, and readable as the umask allows (a temporary file starts owner-only),
    since a report is made to be opened by people and web servers."""
    umask = os.umask(0)
    os.umask(umask)

    def write(tmp):
        Path(tmp).write_bytes(content)
        os.chmod(tmp, 0o666 & ~umask)

    atomic_write(path, write)
