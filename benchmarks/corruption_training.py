"""Does training with corruptions help? One recipe over seeds, with its augmentation without
and with `_corrupt` (half of each batch gets one of `fmnist.corruptions.TRAINING` at a
random severity); each run's clean test accuracy and its accuracy under all 14 corruptions
at 5 severities, also apart over the 6 trained-with and the 8 unseen corruptions.

    python benchmarks/corruption_training.py OUT_JSON [--recipe robust] [--seeds 3]

Both arms run the same fixed schedule; the test set selects nothing.
"""

import argparse
import json
import statistics
import time
from pathlib import Path

import fmnist
from fmnist import data
from fmnist.analysis.robustness import robustness
from fmnist.training.config import make_config
from fmnist.training.rundir import environment
from fmnist.training.train import train

KEYS = ("val_accuracy", "clean", "mean", "mean_trained", "mean_unseen")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--recipe", default="robust")
    p.add_argument("--seeds", type=int, default=3)
    args = p.parse_args()
    ds = data.load(download=False)
    base = make_config(args.recipe).augment.replace("_corrupt", "")
    arms = {base: base, "with corruptions": base + "_corrupt"}
    rows = []
    for seed in range(args.seeds):
        for arm, augment in arms.items():
            cfg = make_config(args.recipe, seed=seed, augment=augment)
            t0 = time.perf_counter()
            res = train(cfg, out=f"runs/corruption-training/{augment}-s{seed}", dataset=ds,
                        log=lambda *a: None)  # fmt: skip
            seconds = time.perf_counter() - t0
            model = res.model.cpu().eval()
            r = robustness(model, ds.test_images, ds.test_labels)
            row = {"arm": arm, "augment": augment, "seed": seed,
                   "train_seconds": round(seconds, 1),
                   "val_accuracy": res.metrics.get("val_accuracy"),
                   **{k: r[k] for k in ("clean", "mean", "mean_trained", "mean_unseen")},
                   "accuracy": r["accuracy"]}  # fmt: skip
            print(json.dumps({k: v for k, v in row.items() if k != "accuracy"}), flush=True)
            rows.append(row)
    summary = {}
    for arm in arms:
        mine = [r for r in rows if r["arm"] == arm]
        summary[arm] = {
            key: {"mean": statistics.mean(r[key] for r in mine),
                  "std": statistics.stdev(r[key] for r in mine) if len(mine) > 1 else 0.0}
            for key in KEYS + ("train_seconds",)
        }  # fmt: skip
    record = {"recipe": args.recipe, "model": make_config(args.recipe).model,
              "seeds": args.seeds, "arms": arms, "runs": rows, "summary": summary,
              "environment": environment(), "version": fmnist.__version__}  # fmt: skip
    Path(args.out).write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
