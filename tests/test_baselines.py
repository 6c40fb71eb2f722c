import pytest

from fmnist.analysis import baselines
from fmnist.errors import FmnistError


@pytest.mark.slow
def test_each_baseline_learns_on_a_slice(dataset):
    results = baselines.run(
        dataset.train_images[:2000],
        dataset.train_labels[:2000],
        dataset.test_images[:500],
        dataset.test_labels[:500],
        log=lambda *a: None,
    )
    assert [r["name"] for r in results] == list(baselines.BASELINES)
    for r in results:
        assert r["test_accuracy"] > 0.6, r  # chance is 0.1
        assert r["n_train"] == 2000
    assert "| classifier |" in baselines.format_table(results)


def test_unknown_baseline():
    with pytest.raises(FmnistError, match="known: logistic_regression"):
        baselines.run(None, None, None, None, names=["xgboost"])
