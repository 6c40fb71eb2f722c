import numpy as np
import pytest
import torch
from sklearn.metrics import classification_report, confusion_matrix, log_loss

from fmnist.data import CLASSES
from fmnist.evaluate import evaluate_logits, format_report


@pytest.fixture
def logits_and_labels():
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 10, (500,), generator=g)
    logits = torch.randn(500, 10, generator=g)
    logits[torch.arange(500), labels] += 1.5  # better than chance, far from perfect
    logits[:40, 3] += 10  # many predictions of one class
    return logits, labels.numpy()


def test_report_matches_scikit_learn(logits_and_labels):
    logits, labels = logits_and_labels
    pred = logits.argmax(1).numpy()
    ours = evaluate_logits(logits, labels)
    ref = classification_report(
        labels, pred, labels=range(10), target_names=CLASSES, output_dict=True, zero_division=0
    )
    for name in CLASSES:
        for ours_key, ref_key in (
            ("precision", "precision"),
            ("recall", "recall"),
            ("f1", "f1-score"),
        ):
            assert ours["per_class"][name][ours_key] == pytest.approx(ref[name][ref_key])
        assert ours["per_class"][name]["support"] == ref[name]["support"]
    for ours_key, ref_key in (("macro_avg", "macro avg"), ("weighted_avg", "weighted avg")):
        for k, rk in (("precision", "precision"), ("recall", "recall"), ("f1", "f1-score")):
            assert ours[ours_key][k] == pytest.approx(ref[ref_key][rk])
    assert ours["test_accuracy"] == pytest.approx(ref["accuracy"])
    np.testing.assert_array_equal(ours["confusion_matrix"], confusion_matrix(labels, pred))
    probs = torch.softmax(logits.double(), 1).numpy()
    assert ours["test_loss"] == pytest.approx(log_loss(labels, probs, labels=range(10)), rel=1e-5)


def test_a_class_never_predicted(logits_and_labels):
    logits, labels = logits_and_labels
    logits[:, 8] = -100
    ours = evaluate_logits(logits, labels)
    assert ours["per_class"]["Bag"]["precision"] == 0.0
    assert ours["per_class"]["Bag"]["recall"] == 0.0


def test_text_report(logits_and_labels):
    text = format_report(evaluate_logits(*logits_and_labels))
    assert "precision" in text and "Ankle boot" in text and "confusion matrix" in text
