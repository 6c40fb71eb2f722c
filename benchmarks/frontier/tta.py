"""Test-time augmentation chosen on the validation split: for finished runs (explore.py's run
directories), validation accuracy with each way of averaging the logits of moved copies.

    python benchmarks/frontier/tta.py OUT.jsonl RUN_DIR...

Views: the image (plain), its mirror (flip), and each of those moved by one pixel (zero fill,
the background of Fashion-MNIST) up, down, left and right (flip_shift4) or along the
diagonal both ways (flip_diag2), averaged with the unmoved views weighted as all the moved
ones together (as airbench weights its translations). The test set plays no part.
"""

import argparse
import json

import torch
from explore import append_record, machine  # this folder

from fmnist import data
from fmnist.checkpoint import load_model
from fmnist.evaluate import evaluate_logits, to_input
from fmnist.training.rundir import environment

MOVES = {
    "flip": [],
    "flip_shift4": [(1, 0), (-1, 0), (0, 1), (0, -1)],
    "flip_diag2": [(1, 1), (-1, -1)],
    "flip_shift8": [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx],
}


def shift(x: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """x (N, C, H, W) moved dy rows down and dx columns right (|dy|, |dx| < H, W); what
    leaves is dropped, what comes in is zero."""
    out = torch.zeros_like(x)
    h, w = x.shape[-2:]
    out[..., max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = x[
        ..., max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)
    ]
    return out


@torch.inference_mode()
def logits_by_mode(model, images, batch_size: int = 1000) -> dict[str, torch.Tensor]:
    model.eval()
    out = {"plain": [], **{m: [] for m in MOVES}}
    for i in range(0, len(images), batch_size):
        x = to_input(torch.as_tensor(images[i : i + batch_size]))
        views = {"plain": model(x), "mirror": model(x.flip(-1))}
        out["plain"].append(views["plain"])
        still = (views["plain"] + views["mirror"]) / 2
        for mode, moves in MOVES.items():
            if not moves:
                out[mode].append(still)
                continue
            moved = sum(model(shift(v, dy, dx)) for v in (x, x.flip(-1)) for dy, dx in moves) / (
                2 * len(moves)
            )
            out[mode].append((still + moved) / 2)
    return {k: torch.cat(v) for k, v in out.items()}


def main(out: str, runs: list[str]) -> None:
    ds = data.load(download=False)
    env = environment()
    for run in runs:
        cfg = json.loads(open(f"{run}/config.json").read())
        asked = cfg["config"]
        _, val_idx = data.run_split(
            ds.train_labels, asked["val_fraction"], asked["seed"], 0, asked["all_data"]
        )
        model = load_model(f"{run}/model.safetensors")
        logits = logits_by_mode(model, ds.train_images[val_idx])
        y = ds.train_labels[val_idx]
        row = {
            "run": run.rstrip("/").rsplit("/", 1)[-1],
            "model": asked["model"],
            "epochs": asked["epochs"],
            "seed": asked["seed"],
            **{f"val_{k}": evaluate_logits(v, y)["test_accuracy"] for k, v in logits.items()},
            **machine(env),
        }
        append_record(out, row)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out")
    p.add_argument("runs", nargs="+")
    a = p.parse_args()
    main(a.out, a.runs)
