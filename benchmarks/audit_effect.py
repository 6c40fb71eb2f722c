"""Does leaving out what the audit flagged help? A recipe over seeds, with and without
`--exclude AUDIT`; each run's test accuracy on all 10,000 images and, beside it, on the test
images the audit did not flag.

    python benchmarks/audit_effect.py AUDIT_JSON OUT_JSON [--recipe tuned] [--seeds 3]

The test set selects nothing: both arms run the same fixed recipe (its epoch is chosen on
the same validation split), and the flagged test images only split the figure in two.
"""

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np

import fmnist
from fmnist import data
from fmnist.analysis.audit import read_flagged_test
from fmnist.evaluate import infer
from fmnist.training.config import make_config
from fmnist.training.rundir import environment
from fmnist.training.train import train


def main():
    p = argparse.ArgumentParser()
    p.add_argument("audit")
    p.add_argument("out")
    p.add_argument("--recipe", default="tuned")
    p.add_argument("--seeds", type=int, default=3)
    args = p.parse_args()
    ds = data.load(download=False)
    flagged = read_flagged_test(args.audit)
    keep = np.setdiff1d(np.arange(len(ds.test_labels)), flagged)
    rows = []
    for arm, exclude in (("all training images", None), ("without the flagged", args.audit)):
        for seed in range(args.seeds):
            cfg = make_config(args.recipe, seed=seed, exclude=exclude)
            t0 = time.perf_counter()
            run = f"runs/audit-effect/{args.recipe}-{'ex' if exclude else 'all'}-s{seed}"
            res = train(cfg, out=run, dataset=ds, log=lambda *a: None)
            pred = infer(res.model, ds.test_images, tta=cfg.tta).argmax(1).numpy()
            row = {
                "arm": arm, "seed": seed, "seconds": round(time.perf_counter() - t0, 1),
                "test_accuracy": float((pred == ds.test_labels).mean()),
                "unflagged_test_accuracy": float((pred[keep] == ds.test_labels[keep]).mean()),
                "val_accuracy": res.metrics.get("val_accuracy"),
            }  # fmt: skip
            print(json.dumps(row), flush=True)
            rows.append(row)
    summary = {}
    for arm in dict.fromkeys(r["arm"] for r in rows):
        mine = [r for r in rows if r["arm"] == arm]
        summary[arm] = {
            key: {"mean": statistics.mean(r[key] for r in mine),
                  "std": statistics.stdev(r[key] for r in mine) if len(mine) > 1 else 0.0}
            for key in ("test_accuracy", "unflagged_test_accuracy", "val_accuracy")
        }  # fmt: skip
    record = {
        "recipe": args.recipe, "seeds": args.seeds, "audit": args.audit,
        "flagged_test_images": len(flagged), "unflagged_test_images": len(keep),
        "excluded_training_images": len(data.read_exclude(args.audit)[0]),
        "runs": rows, "summary": summary, "environment": environment(),
        "version": fmnist.__version__,
    }  # fmt: skip
    Path(args.out).write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
