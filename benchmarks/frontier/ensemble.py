"""Is an ensemble of small models a faster way to a rung than one bigger model?

Trains K members of an explore.py candidate on the same 48,000/12,000 split (the split of
seed 0; the members differ in initialisation and augmentation: seeds 0..K-1) and writes,
for the first k = 1..K members, the validation accuracy of the mean of their softmax
outputs (each with its mirror-image TTA) and the summed training seconds. Run it under the
reference pin:
    ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 \\
        python benchmarks/frontier/ensemble.py OUT.jsonl CANDIDATE K
The test set plays no part (its figure is neither printed nor written here).
"""

import argparse
import time

import torch
from explore import CANDIDATES, append_record, machine  # this folder

from fmnist import data
from fmnist.evaluate import infer
from fmnist.training.config import make_config
from fmnist.training.rundir import environment
from fmnist.training.train import train


def main(out, name, k):
    ds = data.load(download=False)
    env = environment()
    split = data.run_split

    def same_split(labels, val_fraction, seed, train_limit, all_data):
        return split(labels, val_fraction, 0, train_limit, all_data)

    data.run_split = same_split  # every member: the split of seed 0
    _, val_idx = split(ds.train_labels, 0.2, 0)
    y_val = torch.from_numpy(ds.train_labels[val_idx])
    recipe, settings = CANDIDATES[name]
    probs, seconds = [], []
    for seed in range(k):
        cfg = make_config(recipe, **settings, seed=seed, patience=0)
        t0 = time.perf_counter()
        res = train(cfg, out=f"runs/explore/ens-{name}-s{seed}-{int(t0)}", dataset=ds,
                    log=lambda *a: None)  # fmt: skip
        seconds.append(res.metrics["train_s"])
        logits = infer(res.model, ds.train_images[val_idx], tta=cfg.tta)
        probs.append(torch.softmax(logits, 1))
        mean = torch.stack(probs).mean(0)
        row = {
            "name": f"{name}x{seed + 1}",
            "candidate": name,
            "members": seed + 1,
            "member_val_accuracy_tta": float((probs[-1].argmax(1) == y_val).float().mean()),
            "val_accuracy_ensemble": float((mean.argmax(1) == y_val).float().mean()),
            "train_s": round(sum(seconds), 2),
            "member_train_s": seconds[-1],
            **machine(env),
        }
        append_record(out, row)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out")
    p.add_argument("candidate")
    p.add_argument("k", type=int)
    a = p.parse_args()
    main(a.out, a.candidate, a.k)
