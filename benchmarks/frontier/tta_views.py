"""Validation accuracy of explore.py's saved runs under test-time views: the image alone,
with its mirror, and both with the four one-pixel moves (10 views), logits averaged. Only
the run's own validation split is read; runs of variants.py's variants do not load as they
trained. From the repository root:
    ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 \\
        python benchmarks/frontier/tta_views.py OUT.jsonl runs/explore/RUN...
"""

import argparse
import json
from pathlib import Path

import explore  # this folder; registers its model sizes, so the runs load
import torch
import torch.nn.functional as F

import fmnist
from fmnist import data

MOVES = [(0, 0), (1, 0), (-1, 0), (0, 1), (0, -1)]  # (right, down) in pixels


def moved(x: torch.Tensor, dx: int, dy: int) -> torch.Tensor:
    """The images shifted by (dx, dy) pixels, the edge filled with background (0)."""
    padded = F.pad(x, (1, 1, 1, 1))
    return padded[..., 1 - dy : 29 - dy, 1 - dx : 29 - dx]


@torch.inference_mode()
def view_logits(model, x: torch.Tensor) -> dict:
    """(dx, dy, mirrored) -> logits of every validation image."""
    out = {}
    for dx, dy in MOVES:
        for mirrored in (False, True):
            v = moved(x, dx, dy)
            v = v.flip(-1) if mirrored else v
            out[(dx, dy, mirrored)] = torch.cat(
                [model(v[i : i + 1000]) for i in range(0, len(v), 1000)]
            )
    return out


def accuracy(logits: dict, labels: torch.Tensor, views: list) -> float:
    """The share right with the views' logits summed."""
    right = sum(logits[v] for v in views).argmax(-1) == labels
    return round(right.float().mean().item(), 4)


def main(out: str, runs: list[str]) -> None:
    ds = data.load(download=False)
    for run in map(Path, runs):
        cfg = json.loads((run / "config.json").read_text())["config"]
        _, val = data.run_split(ds.train_labels, cfg["val_fraction"], cfg["seed"])
        model = fmnist.load_model(run).module.eval()
        x = torch.as_tensor(ds.train_images[val]).unsqueeze(1).float() / 255
        y = torch.as_tensor(ds.train_labels[val])
        logits = view_logits(model, x)

        row = {
            "run": run.name,
            "seed": cfg["seed"],
            "plain": accuracy(logits, y, [(0, 0, False)]),
            "mirror": accuracy(logits, y, [(0, 0, False), (0, 0, True)]),
            "mirror_and_moves": accuracy(logits, y, list(logits)),
            "moves": accuracy(logits, y, [(dx, dy, False) for dx, dy in MOVES]),
            # what training measured with the mirror: a run of a variant (variants.py) that
            # loads as another model shows here as a mismatch with "mirror"
            "recorded_mirror": json.loads((run / "metrics.json").read_text())["val_accuracy_tta"],
            **explore.machine(explore.environment()),
        }
        explore.append_record(out, row)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out")
    p.add_argument("runs", nargs="+")
    a = p.parse_args()
    main(a.out, a.runs)
