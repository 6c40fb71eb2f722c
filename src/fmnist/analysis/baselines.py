"""Classic scikit-learn classifiers beside the CNNs: a subset of Zalando's own benchmark.

Each is fitted with the hyperparameters Zalando published on all 60,000 training images
and scored once on the test set, so the figures compare with theirs; nothing is tuned.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from fmnist.errors import FmnistError


@dataclass(frozen=True)
class Baseline:
    name: str
    description: str
    zalando: float  # Zalando's published test accuracy for this classifier and setting
    pca: int  # principal components fed to the classifier; 0 = the raw 784 pixels

    def make(self, seed: int):
        from sklearn.ensemble import RandomForestClassifier
        from sklearn.linear_model import LogisticRegression
        from sklearn.neighbors import KNeighborsClassifier
        from sklearn.svm import SVC

        return {
            "logistic_regression": lambda: LogisticRegression(C=1.0, max_iter=300),
            "random_forest": lambda: RandomForestClassifier(
                n_estimators=100, criterion="entropy", max_depth=100, n_jobs=-1, random_state=seed
            ),
            "knn": lambda: KNeighborsClassifier(n_neighbors=5, weights="distance", p=1),
            "svc_rbf": lambda: SVC(C=10.0, kernel="rbf", gamma="scale"),
        }[self.name]()


BASELINES = {
    b.name: b
    for b in (
        Baseline("logistic_regression", "logistic regression, C=1, raw pixels", 0.842, 0),
        Baseline(
            "random_forest", "random forest, 100 trees, entropy, depth 100, raw pixels", 0.873, 0
        ),
        Baseline("knn", "5 nearest neighbours, L1, distance-weighted, PCA-50", 0.860, 50),
        Baseline("svc_rbf", "RBF support vector machine, C=10, PCA-50", 0.897, 50),
    )
}


def run(
    train_x: np.ndarray,
    train_y: np.ndarray,
    test_x: np.ndarray,
    test_y: np.ndarray,
    names: list[str] | None = None,
    seed: int = 0,
    log=print,
) -> list[dict]:
    """Fit each baseline on uint8 images (N, 28, 28) and score it on the test images."""
    from sklearn.decomposition import PCA

    names = names or list(BASELINES)
    unknown = [n for n in names if n not in BASELINES]
    if unknown:
        raise FmnistError(f"unknown baseline {', '.join(unknown)}; known: {', '.join(BASELINES)}")
    xtr = train_x.reshape(len(train_x), -1).astype(np.float32) / 255.0
    xte = test_x.reshape(len(test_x), -1).astype(np.float32) / 255.0
    results = []
    for name in names:
        b = BASELINES[name]
        log(f"{name}: {b.description} ...")
        t0 = time.perf_counter()
        a, c = xtr, xte
        if b.pca:
            pca = PCA(n_components=b.pca, random_state=seed).fit(xtr)
            a, c = pca.transform(xtr), pca.transform(xte)
        model = b.make(seed).fit(a, train_y)
        fit_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        acc = float((model.predict(c) == test_y).mean())
        predict_s = time.perf_counter() - t0
        results.append(
            {
                "name": name,
                "description": b.description,
                "test_accuracy": round(acc, 4),
                "zalando": b.zalando,
                "fit_s": round(fit_s, 1),
                "predict_s": round(predict_s, 1),
                "n_train": len(train_y),
            }
        )
        log(
            f"  test accuracy {acc:.2%} (Zalando: {b.zalando:.1%}), "
            f"fit {fit_s:.1f} s, predict {predict_s:.1f} s"
        )
    return results


def format_table(results: list[dict]) -> str:
    lines = [
        "| classifier | test accuracy | Zalando's | fit | predict 10,000 |",
        "|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['description']} | {r['test_accuracy']:.2%} | {r['zalando']:.1%} | "
            f"{r['fit_s']:.1f} s | {r['predict_s']:.1f} s |"
        )
    return "\n".join(lines)
