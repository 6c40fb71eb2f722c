"""Explanations and robustness of the packaged models, timed, on this machine.

    python benchmarks/trust.py OUT_JSON [--faithfulness-images 200]

For `default` (the tutorial's CNN) and `best` (wide_cnn): seconds per image per method of
`explain` (median of 3 passes over 20 test images, one image at a time as the command
does it), the deletion test of each method on the first N test images, and `robustness`
over all 10,000 test images at 5 severities, with its wall time.
"""

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

import fmnist
from fmnist import data
from fmnist.analysis import explain, robustness
from fmnist.checkpoint import load_model
from fmnist.evaluate import infer
from fmnist.training.rundir import environment


def main():
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--faithfulness-images", type=int, default=200)
    args = p.parse_args()
    ds = data.load(download=False)
    record = {"environment": environment(), "version": fmnist.__version__, "models": {}}
    for name in ("default", "best"):
        model = load_model(name)
        row = {"model": model.model_name}
        x = ds.test_images[:20]
        targets = infer(model, x).argmax(1).numpy()
        per_image = {}
        for method in explain.METHODS:
            runs = []
            for _ in range(3):
                t0 = time.perf_counter()
                for i in range(len(x)):
                    explain.attribute(model, x[i : i + 1], targets[i : i + 1], method)
                runs.append((time.perf_counter() - t0) / len(x))
            per_image[method] = round(statistics.median(runs), 4)
        row["explain_s_per_image"] = per_image
        n = args.faithfulness_images
        row["faithfulness"] = explain.faithfulness(model, ds.test_images[:n])
        t0 = time.perf_counter()
        row["robustness"] = robustness.robustness(model, ds.test_images, ds.test_labels)
        row["robustness_s"] = round(time.perf_counter() - t0, 1)
        print(json.dumps({k: v for k, v in row.items() if k != "robustness"}), flush=True)
        print(f"{name}: clean {row['robustness']['clean']:.4f}, mean under corruption "
              f"{row['robustness']['mean']:.4f}, {row['robustness_s']} s", flush=True)  # fmt: skip
        record["models"][name] = row
    record["torch_threads"] = torch.get_num_threads()
    Path(args.out).write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
