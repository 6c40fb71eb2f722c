"""Logits once; then accuracy, loss, per-class report and confusion matrix from those logits."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from fmnist.data import CLASSES


def native_bf16(device: torch.device) -> bool:
    """Whether `device` runs bfloat16 natively: on CPUs oneDNN's AVX-512 BF16 or AMX kernels
    (elsewhere it emulates them: 13x slower than fp32 for wide_cnn held to AVX2),
    on CUDA a GPU with bfloat16 (Ampere and newer)."""
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        try:
            return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
        except (AttributeError, RuntimeError):
            return False
    return False


# Below this cost a model gains nothing reliable from native bfloat16: on a 2-core AVX-512
# BF16 EPYC the seed CNN (1.4 MFLOP per image) trained at 0.98x and 1.11x its fp32 images/s
# in two runs, quick_cnn (4.3) at 1.24x, speed_s (8.0) at 1.42x and 1.58x, quick_m (9.1) at
# 1.72x, speed_m (19.3) at 1.53x to 1.98x, wide_cnn (58.3) at 1.73x to 2.0x
# (benchmarks/frontier/precision-*.json). So auto never runs slower.
BF16_MIN_MFLOP = 3.0


def resolve_precision(asked: str, device: torch.device, mflop: float | None = None) -> str:
    """The precision a run uses: "auto" is bf16 where the device runs it natively and the
    model (`mflop` per image, where known) is large enough to gain from it, else fp32."""
    if asked == "auto":
        big = mflop is None or mflop >= BF16_MIN_MFLOP
        return "bf16" if big and native_bf16(device) else "fp32"
    return asked


def autocast(device: torch.device, precision: str = "fp32", cache: bool = True):
    """bfloat16 autocast for precision "bf16" (a no-op context for "fp32"); `cache` keeps
    each weight's bf16 copy for the context's lifetime (off inside a CUDA graph's capture)."""
    return torch.autocast(
        device.type, dtype=torch.bfloat16, enabled=precision == "bf16", cache_enabled=cache
    )


def to_input(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 28, 28) -> float32 (N, 1, 28, 28) in [0, 1]."""
    return images.unsqueeze(1).float().div_(255.0)


@torch.inference_mode()
def infer(
    model: nn.Module,
    images: np.ndarray | torch.Tensor,
    batch_size: int = 1000,
    *,
    tta: bool = False,
    device: str | torch.device | None = None,
    precision: str = "fp32",
) -> torch.Tensor:
    """Logits (N, 10) on the CPU. With tta, the mean of the logits of the image and its mirror;
    with precision "bf16", computed under bfloat16 autocast."""
    device = torch.device(device or next(model.parameters()).device)
    images = torch.as_tensor(images)
    was_training = model.training
    model.eval()
    out = []
    for i in range(0, len(images), batch_size):
        x = to_input(images[i : i + batch_size].to(device))
        with autocast(device, precision):
            logits = model(x).float()
            if tta:
                logits = (logits + model(x.flip(-1)).float()) / 2
        out.append(logits.float().cpu())
    model.train(was_training)
    return torch.cat(out) if out else torch.empty(0, len(CLASSES))


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, n: int = len(CLASSES)) -> np.ndarray:
    """Rows are true classes, columns predicted classes."""
    return np.bincount(n * np.asarray(y_true) + np.asarray(y_pred), minlength=n * n).reshape(n, n)


def per_class(cm: np.ndarray) -> dict:
    tp = np.diag(cm).astype(float)
    support = cm.sum(1)
    predicted = cm.sum(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, tp / predicted, 0.0)
        recall = np.where(support > 0, tp / support, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    return {"precision": precision, "recall": recall, "f1": f1, "support": support}


def evaluate_logits(logits: torch.Tensor, labels: np.ndarray | torch.Tensor) -> dict:
    """Accuracy, mean cross-entropy, per-class precision/recall/F1/support, confusion matrix."""
    labels_t = torch.as_tensor(labels, dtype=torch.long)
    y_pred = logits.argmax(1).numpy()
    y_true = labels_t.numpy()
    cm = confusion_matrix(y_true, y_pred)
    pc = per_class(cm)
    support = pc["support"]
    total = int(support.sum())
    classes = {}
    for i, name in enumerate(CLASSES):
        classes[name] = {
            "precision": float(pc["precision"][i]),
            "recall": float(pc["recall"][i]),
            "f1": float(pc["f1"][i]),
            "support": int(support[i]),
        }

    def avg(weights):
        return {k: float(np.average(pc[k], weights=weights)) for k in ("precision", "recall", "f1")}

    return {
        "test_accuracy": float((y_pred == y_true).mean()) if total else float("nan"),
        "test_loss": float(F.cross_entropy(logits, labels_t)) if total else float("nan"),
        "n": total,
        "per_class": classes,
        "macro_avg": avg(None),
        "weighted_avg": avg(support if total else None),
        "confusion_matrix": cm.tolist(),
    }


def format_report(result: dict) -> str:
    """A text report in the layout of scikit-learn's classification_report, then the matrix."""
    width = max(len(c) for c in CLASSES) + 2
    lines = [
        f"test accuracy {result['test_accuracy']:.2%}   test loss {result['test_loss']:.4f}   "
        f"({result['n']} images)",
        "",
        f"{'':>{width}}{'precision':>10}{'recall':>10}{'f1-score':>10}{'support':>10}",
    ]
    for name, r in result["per_class"].items():
        lines.append(
            f"{name:>{width}}{r['precision']:>10.4f}{r['recall']:>10.4f}{r['f1']:>10.4f}"
            f"{r['support']:>10}"
        )
    lines.append("")
    for key, label in (("macro_avg", "macro avg"), ("weighted_avg", "weighted avg")):
        r = result[key]
        lines.append(
            f"{label:>{width}}{r['precision']:>10.4f}{r['recall']:>10.4f}{r['f1']:>10.4f}"
            f"{result['n']:>10}"
        )
    lines += ["", "confusion matrix (rows: true class, columns: predicted)"]
    short = [c.split("/")[0][:7] for c in CLASSES]
    lines.append(f"{'':>{width}}" + "".join(f"{s:>8}" for s in short))
    for name, row in zip(CLASSES, result["confusion_matrix"], strict=True):
        lines.append(f"{name:>{width}}" + "".join(f"{v:>8}" for v in row))
    return "\n".join(lines)
