"""Every figure renders with content; the numbers figures show agree with references."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from sklearn.metrics import classification_report as sk_report
from sklearn.metrics import confusion_matrix as sk_confusion
from sklearn.metrics import precision_recall_fscore_support

from fmnist.analysis import plots
from fmnist.data import CLASSES
from fmnist.evaluate import evaluate_logits


def gray_pixels(fig) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(plots.to_png(fig))).convert("L"), dtype=float)


def assert_not_blank(fig, min_std: float = 20.0, min_ink: float = 0.02) -> None:
    """A figure with content has contrast and a share of non-white pixels."""
    px = gray_pixels(fig)
    assert px.shape[0] > 200 and px.shape[1] > 300, px.shape
    assert px.std() > min_std, f"pixel std {px.std():.1f}: looks blank"
    assert (px < 200).mean() > min_ink, "almost no ink"


def fake_predictions(n: int = 600, seed: int = 0):
    """Labels, logits that are right about 70% of the time, and the predictions."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, n)
    logits = rng.normal(size=(n, 10))
    logits[np.arange(n), y] += 1.5
    return y, logits, logits.argmax(1)


@pytest.fixture(scope="module")
def sample(dataset):
    return dataset.train_images[:3000], dataset.train_labels[:3000]


HISTORY = [
    {
        "epoch": e,
        "train_loss": 1 / e,
        "train_acc": 1 - 0.3 / e,
        "val_loss": 0.5 + abs(e - 3) / 10,
        "val_acc": 0.8 - abs(e - 3) / 50,
        "lr": 1e-3,
    }
    for e in range(1, 7)
]


@pytest.mark.slow
def test_data_figures_are_not_blank(sample):
    x, y = sample
    first = np.array([np.flatnonzero(y == c)[0] for c in range(10)])
    figs = [
        plots.sample_grid(x, y),
        plots.class_distribution({"train": y, "test": y[:500]}),
        plots.preprocessing(x[first], y[first], x[first][:, ::-1]),
        plots.mean_images(x, y),
        plots.pixel_histograms(x, y),
    ]
    for fig in figs:
        assert_not_blank(fig)
    # class names left of the rows
    labels = [t.get_text() for t in figs[0].axes[0].get_yticklabels()]
    assert labels == [f"{i} {c}" for i, c in enumerate(CLASSES)]
    assert [t.get_text() for t in figs[1].axes[0].get_xticklabels()] == list(CLASSES)


def test_class_distribution_bars_are_the_counts(sample):
    _, y = sample
    ax = plots.class_distribution({"train": y}).axes[0]
    heights = [p.get_height() for p in ax.patches]
    assert heights == np.bincount(y, minlength=10).tolist()


def test_training_figures_mark_best_epoch_and_early_stop():
    fig = plots.training_curves(HISTORY, best_epoch=3, stopped_early=True)
    assert_not_blank(fig, min_ink=0.01)
    for ax in fig.axes:
        vlines = {
            ln.get_label(): ln.get_xdata()[0]
            for ln in ax.lines
            if ln.get_label()[0] != "_" and len(set(ln.get_xdata())) == 1
        }
        assert vlines["best epoch 3"] == 3
        assert vlines["early stop"] == 6
        train = [ln for ln in ax.lines if ln.get_label() == "train"][0]
        assert list(train.get_xdata()) == [1, 2, 3, 4, 5, 6]
    plain = plots.training_curves(HISTORY, best_epoch=6, stopped_early=False)
    assert not any(ln.get_label() == "early stop" for ax in plain.axes for ln in ax.lines)
    assert_not_blank(plots.learning_rate(HISTORY), min_std=10, min_ink=0.01)


def test_training_curves_without_a_validation_split():
    # history.csv of an all_data run: the validation columns are blank
    rows = [{**r, "val_loss": "", "val_acc": ""} for r in HISTORY]
    fig = plots.training_curves(rows, best_epoch=6)
    assert_not_blank(fig, min_ink=0.01)
    for ax in fig.axes:
        assert [ln.get_label() for ln in ax.lines if ln.get_label()[0] != "_"] == ["train"]
        assert "no validation split" in ax.get_title()


def test_confusion_matrix_shows_sklearns_numbers():
    y, logits, pred = fake_predictions()
    import torch

    cm = evaluate_logits(torch.as_tensor(logits, dtype=torch.float32), y)["confusion_matrix"]
    fig = plots.confusion_matrix(cm)
    assert_not_blank(fig)
    counts_ax, norm_ax = fig.axes[:2]  # then the two color bars
    shown = np.array([int(t.get_text()) for t in counts_ax.texts]).reshape(10, 10)
    np.testing.assert_array_equal(shown, sk_confusion(y, pred, labels=range(10)))
    expected = sk_confusion(y, pred, labels=range(10), normalize="true")
    assert [t.get_text() for t in norm_ax.texts] == [
        plots.results.percent(v) for v in expected.ravel()
    ]
    assert [t.get_text() for t in counts_ax.get_yticklabels()] == list(CLASSES)


def test_per_class_figures_match_sklearn():
    import torch

    y, logits, pred = fake_predictions()
    res = evaluate_logits(torch.as_tensor(logits, dtype=torch.float32), y)
    p, r, f1, support = precision_recall_fscore_support(y, pred, labels=range(10))
    fig = plots.per_class_metrics(res["per_class"])
    assert_not_blank(fig)
    heights = np.array([b.get_height() for b in fig.axes[0].patches]).reshape(3, 10)
    np.testing.assert_allclose(heights, [p, r, f1], atol=1e-12)

    fig = plots.classification_report(
        res["per_class"], res["macro_avg"], res["weighted_avg"], res["test_accuracy"]
    )
    assert_not_blank(fig, min_std=5, min_ink=0.01)
    cells = fig.axes[0].tables[0].get_celld()
    sk = sk_report(y, pred, labels=range(10), target_names=CLASSES, output_dict=True)
    for row, name in enumerate(CLASSES, start=1):
        assert cells[row, 0].get_text().get_text() == name
        for col, key in ((1, "precision"), (2, "recall"), (3, "f1-score")):
            assert cells[row, col].get_text().get_text() == f"{sk[name][key]:.4f}"
    assert cells[11, 3].get_text().get_text() == f"{sk['accuracy']:.4f}"
    assert cells[12, 3].get_text().get_text() == f"{sk['macro avg']['f1-score']:.4f}"
    assert cells[13, 1].get_text().get_text() == f"{sk['weighted avg']['precision']:.4f}"


def test_most_confused_pairs():
    cm = np.diag([50] * 10)
    cm[6, 0], cm[4, 2], cm[0, 6], cm[9, 7] = 30, 12, 30, 3
    assert plots.most_confused(cm, k=3) == [(0, 6, 30), (6, 0, 30), (4, 2, 12)]
    assert plots.most_confused(np.diag([5] * 10)) == []


def test_mistake_figures(sample):
    x, _ = sample
    y, logits, pred = fake_predictions(len(x))
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    cm = sk_confusion(y, pred, labels=range(10))
    pairs = plots.confused_pairs(x, y, pred, cm, k=4, examples=5)
    assert_not_blank(pairs)
    top = plots.most_confused(cm, k=4)
    labels = [t.get_text() for t in pairs.axes[0].get_yticklabels()]
    assert labels == [f"{CLASSES[t]}\n→ {CLASSES[p]}\n({n})" for t, p, n in top]

    fig = plots.misclassified(x, y, pred, probs.max(1), n=20)
    assert_not_blank(fig)
    titles = [t.get_text() for t in fig.axes[0].texts]  # one above each image
    assert len(titles) == 20
    wrong = np.flatnonzero(y != pred)
    most = wrong[np.argmax(probs.max(1)[wrong])]
    assert titles[0].startswith(f"true {plots.results.SHORT[y[most]]}\n")


def test_expected_calibration_error_by_hand():
    # two bins: (0, 0.5] holds 0.1, 0.3, 0.35 and 0.5 (accuracy 2/4, mean confidence 0.3125);
    # (0.5, 1] holds 0.9 and 0.95 (accuracy 1, confidence 0.925)
    conf = [0.1, 0.3, 0.35, 0.5, 0.9, 0.95]
    correct = [0, 1, 0, 1, 1, 1]
    cal = plots.calibration(conf, correct, bins=2)
    assert cal["counts"].tolist() == [4, 2]
    np.testing.assert_allclose(cal["accuracy"], [0.5, 1.0])
    np.testing.assert_allclose(cal["confidence"], [0.3125, 0.925])
    assert cal["ece"] == pytest.approx(4 / 6 * 0.1875 + 2 / 6 * 0.075)
    perfect = plots.calibration([1.0] * 5, [1] * 5, bins=10)
    assert perfect["ece"] == 0 and perfect["counts"][-1] == 5


def test_ece_matches_a_plain_loop():
    rng = np.random.default_rng(1)
    conf = rng.uniform(0.1, 1.0, 5000)
    correct = rng.random(5000) < conf**1.5
    ece = 0.0
    for lo in np.arange(15) / 15:
        members = (conf > lo) & (conf <= lo + 1 / 15)
        if members.any():
            ece += members.mean() * abs(correct[members].mean() - conf[members].mean())
    assert plots.calibration(conf, correct, bins=15)["ece"] == pytest.approx(ece)
    fig = plots.reliability_diagram(conf, correct)
    assert_not_blank(fig)
    assert f"ECE {ece:.2%}" in fig.axes[0].get_title()


def test_feature_map_colors_each_class():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(10), 30)
    points = rng.normal(size=(300, 2)) + labels[:, None] * 3
    fig = plots.feature_map(points, labels)
    assert_not_blank(fig, min_std=10, min_ink=0.01)
    ax = fig.axes[0]
    assert [c.get_label() for c in ax.collections] == list(CLASSES)
    assert [len(c.get_offsets()) for c in ax.collections] == [30] * 10


def test_save_writes_a_png(tmp_path):
    path = plots.save(plots.learning_rate(HISTORY), tmp_path / "sub" / "lr.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in path.parent.iterdir()] == ["lr.png"]


def test_image_grids_are_one_image_of_the_images_shown(sample):
    x, _ = sample
    y, logits, pred = fake_predictions(len(x))
    confidence = logits.max(1)
    fig = plots.misclassified(x, y, pred, confidence, n=12, cols=5)
    (ax,) = fig.axes
    (image,) = ax.images
    mosaic = image.get_array()
    tiles = plots.common.Tiles(3, 5, gap=4, head=9)
    wrong = np.flatnonzero(y != pred)
    wrong = wrong[np.argsort(-confidence[wrong], kind="stable")][:12]
    for place, i in enumerate(wrong):
        np.testing.assert_array_equal(mosaic[tiles.cell(*divmod(place, 5))], x[i])
    assert mosaic[tiles.cell(2, 4)].mask.all()  # an empty place draws as background


def test_heat_maps_enlarge_smoothly_between_pixel_centers():
    a = np.array([[0.0, 1.0], [2.0, 3.0]])
    big = plots.explain.bilinear(a, 4)
    assert big.shape == (8, 8)
    # the first column runs from a[0, 0] to a[1, 0], held flat past the outer pixel centers
    np.testing.assert_allclose(big[:, 0], [0, 0, 0.25, 0.75, 1.25, 1.75, 2, 2])
    np.testing.assert_allclose(big, big[:, ::-1][::-1] * -1 + 3)  # symmetric about the middle
