"""The data audit: exact duplicates, near-duplicates (train/test leakage) and label issues.

- Exact duplicates: images whose 784 bytes are equal, within each split and across.
- Near-duplicates: each image's nearest neighbour, in pixel space (root-mean-square
  difference of the pixels scaled to [0, 1]) and in a trained network's penultimate
  features (cosine distance), for test against train and within each split. A pair is a
  near-duplicate at or below the threshold (PIXEL_THRESHOLD, FEATURE_THRESHOLD).
- Label issues: out-of-sample predicted probabilities for every training image from
  K-fold cross-validation, and for every test image from the K models (none saw it); then
  cleanlab's confident learning (`cleanlab.filter.find_label_issues`) flags the suspects
  and `cleanlab.rank.get_label_quality_scores` ranks them.

The test set selects nothing here: it is audited, never used to choose a setting.
"""

from __future__ import annotations

import csv
import hashlib
import io
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch

from fmnist import data
from fmnist.errors import FmnistError
from fmnist.evaluate import infer
from fmnist.files import read_json

FORMAT = data.AUDIT_FORMAT
# Near-duplicate thresholds. Pixel: an RMS difference of 0.02 is about 5 grey levels per
# pixel, the size of JPEG-like noise; feature: a cosine distance of 0.002 between
# penultimate feature vectors. Both were read off the galleries of pairs just below and
# just above them (audit.html shows both sides), on the real dataset.
PIXEL_THRESHOLD = 0.02
FEATURE_THRESHOLD = 0.002


class AuditError(FmnistError):
    pass


def _cleanlab():
    try:
        import cleanlab.filter
        import cleanlab.rank
    except ImportError:
        raise AuditError(
            "fmnist audit needs cleanlab: pip install 'fashion-mnist-cnn[audit]'"
        ) from None
    return cleanlab


# ----------------------------------------------------------------------------
# Duplicates
# ----------------------------------------------------------------------------


def exact_duplicates(train: np.ndarray, test: np.ndarray) -> dict:
    """Groups of byte-identical images: {"train": [[i, ...]], "test": [...],
    "across": [{"train": [...], "test": [...]}]} (indices into each split)."""
    groups: dict[bytes, list[tuple[str, int]]] = {}
    for split, images in (("train", train), ("test", test)):
        flat = np.ascontiguousarray(images.reshape(len(images), -1))
        for i, row in enumerate(flat):
            key = hashlib.blake2b(row.tobytes(), digest_size=16).digest()
            groups.setdefault(key, []).append((split, i))
    out: dict = {"train": [], "test": [], "across": []}
    for members in groups.values():
        if len(members) < 2:
            continue
        tr = [i for s, i in members if s == "train"]
        te = [i for s, i in members if s == "test"]
        if tr and te:
            out["across"].append({"train": tr, "test": te})
        if len(tr) > 1:
            out["train"].append(tr)
        if len(te) > 1:
            out["test"].append(te)
    return out


def nearest(a: torch.Tensor, b: torch.Tensor | None = None, block: int = 2048):
    """(squared distance, index) of each row of `a`'s nearest row in `b` (in `a` itself,
    never the row itself, when `b` is None), by blocks of matrix products."""
    same = b is None
    b = a if same else b
    b_sq = (b * b).sum(1)
    best_d = torch.empty(len(a))
    best_i = torch.empty(len(a), dtype=torch.long)
    for start in range(0, len(a), block):
        chunk = a[start : start + block]
        d = (chunk * chunk).sum(1, keepdim=True) + b_sq[None] - 2 * chunk @ b.T
        if same:
            rows = torch.arange(len(chunk))
            d[rows, rows + start] = float("inf")
        value, index = d.min(1)
        best_d[start : start + block] = value.clamp_min(0)
        best_i[start : start + block] = index
    return best_d, best_i


def near_pairs(kind: str, train: torch.Tensor, test: torch.Tensor, scale) -> dict:
    """Nearest-neighbour pairs for test->train, train->train and test->test, as
    (distance, index, neighbour) arrays; `scale` turns a squared distance into the kind's
    distance."""
    out = {}
    for name, a, b in (("train_test", test, train), ("train", train, None), ("test", test, None)):
        d2, idx = nearest(a, b)
        out[name] = {"distance": scale(d2).numpy(), "neighbour": idx.numpy()}
    return out


def pixel_scale(d2: torch.Tensor) -> torch.Tensor:
    return torch.sqrt(d2 / 784)


def feature_scale(d2: torch.Tensor) -> torch.Tensor:
    return d2 / 2  # unit vectors: |u - v|^2 / 2 = 1 - cos(u, v)


def count_pairs(pairs: dict, threshold: float) -> dict:
    """Near-duplicate counts (0 < distance <= threshold); a pair within a split counts once."""
    counts = {}
    for name, p in pairs.items():
        hit = (p["distance"] > 0) & (p["distance"] <= threshold)
        if name == "train_test":
            counts[name] = int(hit.sum())
        else:
            idx = np.flatnonzero(hit)
            counts[name] = len({tuple(sorted((int(i), int(p["neighbour"][i])))) for i in idx})
    return counts


# ----------------------------------------------------------------------------
# Out-of-sample probabilities
# ----------------------------------------------------------------------------


def penultimate(model, images: np.ndarray) -> np.ndarray:
    from fmnist.analysis.features import logits_and_features

    return logits_and_features(model, images)[1]


def cross_validated(ds: data.FashionMNIST, folds: int, cfg, log) -> dict:
    """Out-of-sample probabilities for every training image (K-fold), the K models' mean
    for every test image, and the first fold's model's penultimate features of both."""
    from sklearn.model_selection import StratifiedKFold

    from fmnist.training.train import train

    n_train = len(ds.train_labels)
    train_probs = np.zeros((n_train, 10), np.float32)
    test_probs = np.zeros((len(ds.test_labels), 10), np.float32)
    features = None
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=cfg.seed)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="fmnist-audit-") as tmp:
        for k, (fit, held) in enumerate(splitter.split(np.zeros(n_train), ds.train_labels)):
            fold = data.FashionMNIST(
                ds.train_images[fit],
                ds.train_labels[fit],
                ds.train_images[held],
                ds.train_labels[held],
                ds.directory,
                ds.origin,
                ds.sha256,
            )
            result = train(cfg, out=Path(tmp) / f"fold{k}", dataset=fold, log=lambda *a: None)
            model = result.model.cpu().eval()
            train_probs[held] = torch.softmax(infer(model, ds.train_images[held]), 1).numpy()
            test_probs += torch.softmax(infer(model, ds.test_images), 1).numpy() / folds
            if features is None:
                features = (penultimate(model, ds.train_images), penultimate(model, ds.test_images))
            held_out = (train_probs[held].argmax(1) == ds.train_labels[held]).mean()
            log(
                f"fold {k + 1}/{folds}: held-out accuracy {held_out:.2%} "
                f"({time.perf_counter() - t0:.0f} s)"
            )
    return {"train": train_probs, "test": test_probs, "features": features}


def label_issues(labels: np.ndarray, probs: np.ndarray) -> list[dict]:
    """cleanlab's suspects, worst first: index, given, suggested, score (label quality)."""
    cl = _cleanlab()
    flagged = cl.filter.find_label_issues(
        labels, probs, return_indices_ranked_by="self_confidence", n_jobs=1
    )
    scores = cl.rank.get_label_quality_scores(labels, probs)
    return [
        {
            "index": int(i),
            "given": int(labels[i]),
            "suggested": int(probs[i].argmax()),
            "score": round(float(scores[i]), 6),
        }
        for i in flagged
    ]


# ----------------------------------------------------------------------------
# The whole audit
# ----------------------------------------------------------------------------


def audit(ds: data.FashionMNIST, cfg, folds: int = 5, log=print) -> tuple[dict, dict]:
    """(record, arrays): the JSON record and the arrays the page draws from."""
    if folds < 2:
        raise AuditError(f"--folds must be at least 2, got {folds}")
    # stratified folds hold an image of every class each: scikit-learn's limit
    smallest = int(np.bincount(ds.train_labels, minlength=len(data.CLASSES)).min())
    if folds > smallest:
        raise AuditError(
            f"--folds must be at most {smallest:,}, the images of the smallest class, got {folds}"
        )
    _cleanlab()
    t0 = time.perf_counter()
    exact = exact_duplicates(ds.train_images, ds.test_images)
    t_exact = time.perf_counter() - t0
    pixel = near_pairs("pixel", pixels(ds.train_images), pixels(ds.test_images), pixel_scale)
    t_pixel = time.perf_counter() - t0 - t_exact
    log(f"duplicates: exact {t_exact:.1f} s, pixel neighbours {t_pixel:.1f} s")

    oos = cross_validated(ds, folds, cfg, log)
    t_cv = time.perf_counter() - t0 - t_exact - t_pixel
    train_features, test_features = (unit(f) for f in oos["features"])
    feature = near_pairs("feature", train_features, test_features, feature_scale)
    issues = {
        "train": label_issues(ds.train_labels, oos["train"]),
        "test": label_issues(ds.test_labels, oos["test"]),
    }
    seconds = {
        "total": round(time.perf_counter() - t0, 1),
        "exact": round(t_exact, 1),
        "pixel_neighbours": round(t_pixel, 1),
        "cross_validation": round(t_cv, 1),
    }
    record = {
        "format": FORMAT,
        "data": {
            "origin": ds.origin,
            "sha256": ds.sha256,
            "train": len(ds.train_labels),
            "test": len(ds.test_labels),
        },
        "settings": {
            "folds": folds,
            "recipe": cfg.recipe,
            "model": cfg.model,
            "epochs": cfg.epochs,
            "seed": cfg.seed,
        },
        "seconds": seconds,
        "out_of_sample_accuracy": {
            "train": float((oos["train"].argmax(1) == ds.train_labels).mean()),
            "test": float((oos["test"].argmax(1) == ds.test_labels).mean()),
        },
        "exact_duplicates": exact_record(exact),
        "near_duplicates": near_record(pixel, feature),
        "label_issues": issues_record(issues),
        # what `fmnist train --exclude AUDIT.json` drops: the suspects, and every training
        # image that has an exact or near (pixel) copy in the test set
        "exclude": {"train": sorted(exclude_train(issues, exact, pixel))},
        "flagged_test": sorted(flagged_test(issues, exact, pixel)),
    }
    return record, {"pixel": pixel, "feature": feature, "probs": oos}


def pixels(images: np.ndarray) -> torch.Tensor:
    """Images as rows of pixels scaled to [0, 1]."""
    return torch.from_numpy(images.reshape(len(images), -1).astype(np.float32) / 255)


def unit(features: np.ndarray) -> torch.Tensor:
    """Feature rows scaled to length 1, so a squared distance is twice a cosine distance."""
    return torch.nn.functional.normalize(torch.from_numpy(features).float(), dim=1)


def exact_record(exact: dict) -> dict:
    return {
        "counts": {
            "train_groups": len(exact["train"]),
            "train_extra_copies": sum(len(g) - 1 for g in exact["train"]),
            "test_groups": len(exact["test"]),
            "test_extra_copies": sum(len(g) - 1 for g in exact["test"]),
            "across_groups": len(exact["across"]),
            "test_images_in_train": sum(len(g["test"]) for g in exact["across"]),
        },
        "groups": exact,
    }


def near_record(pixel: dict, feature: dict) -> dict:
    return {
        "pixel": {
            "threshold": PIXEL_THRESHOLD,
            "distance": "RMS pixel difference in [0, 1]",
            "counts": count_pairs(pixel, PIXEL_THRESHOLD),
        },
        "feature": {
            "threshold": FEATURE_THRESHOLD,
            "distance": "cosine distance",
            "counts": count_pairs(feature, FEATURE_THRESHOLD),
        },
    }


def issues_record(issues: dict[str, list[dict]]) -> dict:
    """The suspects of each split, their counts, and the (given, suggested) class pairs
    they make, most frequent first."""
    pairs = Counter(
        (data.CLASSES[r["given"]], data.CLASSES[r["suggested"]])
        for split in issues.values()
        for r in split
    )
    return {
        "counts": {split: len(rows) for split, rows in issues.items()},
        "class_pairs": [
            {"given": g, "suggested": s, "count": n} for (g, s), n in pairs.most_common()
        ],
        "train": issues["train"],
        "test": issues["test"],
    }


def exclude_train(issues, exact, pixel) -> set[int]:
    out = {r["index"] for r in issues["train"]}
    out |= {i for g in exact["across"] for i in g["train"]}
    p = pixel["train_test"]
    near = np.flatnonzero(p["distance"] <= PIXEL_THRESHOLD)
    out |= {int(p["neighbour"][i]) for i in near}
    return out


def flagged_test(issues, exact, pixel) -> set[int]:
    out = {r["index"] for r in issues["test"]}
    out |= {i for g in exact["across"] for i in g["test"]}
    out |= {int(i) for i in np.flatnonzero(pixel["train_test"]["distance"] <= PIXEL_THRESHOLD)}
    return out


# ----------------------------------------------------------------------------
# Write
# ----------------------------------------------------------------------------


def _csv(rows: list[list], header: list[str]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()


# what OUT holds after `fmnist audit`, checked before the audit starts
FILES = ("label_issues.csv", "near_duplicates.csv", "exact_duplicates.csv", "audit.html",
         "label_suspects.png", "audit.json")  # fmt: skip


def write_audit(record: dict, arrays: dict, ds: data.FashionMNIST, out: Path) -> Path:
    """OUT/audit.json, audit.html, label_suspects.png and three CSV files (FILES), written
    all or nothing; OUT is made only then."""
    from fmnist.analysis.audit_html import render
    from fmnist.files import json_text, write_files

    out = Path(out)
    issues = [
        [split, r["index"], data.CLASSES[r["given"]], data.CLASSES[r["suggested"]], r["score"]]
        for split in ("train", "test")
        for r in record["label_issues"][split]
    ]
    near = []
    for kind in ("pixel", "feature"):
        threshold = record["near_duplicates"][kind]["threshold"]
        for name, p in arrays[kind].items():
            a_split, b_split = ("test", "train") if name == "train_test" else (name, name)
            for i in np.flatnonzero(p["distance"] <= threshold):
                neighbour, distance = int(p["neighbour"][i]), f"{p['distance'][i]:.6f}"
                near.append([kind, a_split, int(i), b_split, neighbour, distance])
    exact = []
    for n, g in enumerate(record["exact_duplicates"]["groups"]["across"]):
        exact += [[n, "train", i] for i in g["train"]] + [[n, "test", i] for i in g["test"]]
    start = len(record["exact_duplicates"]["groups"]["across"])
    for split in ("train", "test"):
        for n, g in enumerate(record["exact_duplicates"]["groups"][split], start):
            exact += [[n, split, i] for i in g]
        start += len(record["exact_duplicates"]["groups"][split])
    texts = {
        "label_issues.csv": _csv(issues, ["split", "index", "given", "suggested", "score"]),
        "near_duplicates.csv": _csv(
            near, ["space", "split", "index", "neighbour_split", "neighbour", "distance"]
        ),
        "exact_duplicates.csv": _csv(exact, ["group", "split", "index"]),
        "audit.html": render(record, arrays, ds),
    }
    from fmnist.analysis import plots

    suspects = record["label_issues"]
    fig = plots.label_suspects(
        {"train": (ds.train_images, suspects["train"]), "test": (ds.test_images, suspects["test"])}
    )
    texts["label_suspects.png"] = plots.to_png(fig)
    texts["audit.json"] = json_text(record) + "\n"
    assert set(texts) == set(FILES)
    write_files(out, texts)
    return out / "audit.html"


def read_flagged_test(path) -> list[int]:
    """The test images an audit flagged (suspects, exact and near copies of train images)."""
    from fmnist.files import check_fields

    obj = read_json(path, "audit record", error=AuditError)
    check_fields(obj, {"format": str, "flagged_test": list}, str(path), AuditError)
    if obj["format"] != FORMAT:
        raise AuditError(f"{path}: not an fmnist audit (format {FORMAT})")
    flagged = obj["flagged_test"]
    if not all(isinstance(i, int) and not isinstance(i, bool) and i >= 0 for i in flagged):
        raise AuditError(f"{path}: flagged_test must be a list of test image indices")
    return sorted(set(flagged))
