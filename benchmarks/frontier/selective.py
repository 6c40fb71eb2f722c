"""Hard-example epochs on the validation split: after the first passes over all training
images, an epoch trains only on the share of them the model got most wrong when it last
saw them (their cross-entropy on that pass, kept per image at no extra cost).

    ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 \\
        python benchmarks/frontier/selective.py OUT.jsonl CANDIDATE SHARES [--seed N]

CANDIDATE is one of explore.py's; SHARES the share of the training images each epoch
sees, e.g. 1,1,0.5 (its length is the number of epochs). The learning-rate schedule spans
the steps those shares make. Each line of OUT is one run, as explore.py writes it, with
the shares beside. The test set plays no part.
"""

import argparse

import explore
import torch

from fmnist import data
from fmnist.training import hard as hard_module
from fmnist.training import train as train_module
from fmnist.training.rundir import environment


def patch(shares: list[float], random: bool) -> None:
    """The run's epochs take `shares` of the images (fmnist.training.hard takes one share
    after full epochs); `random`: a control, any images of each share, not the hardest."""

    def epoch_images(cfg, n, epoch):
        return max(1, round(shares[min(epoch, len(shares)) - 1] * n))

    hard_module.epoch_images = train_module.epoch_images = epoch_images
    if random:
        order = hard_module.HardExamples.order

        def any_share(self, epoch, generator):
            k = len(order(self, epoch, generator))
            return torch.randperm(len(self.losses), generator=generator)[:k]

        hard_module.HardExamples.order = any_share


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out")
    p.add_argument("candidate")
    p.add_argument("shares")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--random", action="store_true", help="a random share, not the hardest")
    a = p.parse_args()
    shares = [float(s) for s in a.shares.split(",")]
    patch(shares, a.random)
    recipe, settings = explore.CANDIDATES[a.candidate]
    # any share below 1 keeps the images' losses; the shares themselves come from `patch`
    settings = {**settings, "epochs": len(shares), "seed": a.seed, "hard_share": 0.5}
    kind = "random" if a.random else "hard"
    name = f"{a.candidate}_{kind}{a.shares.replace(',', '-')}@s{a.seed}"
    record = explore.append_record
    explore.append_record = lambda out, row: record(
        out,
        {
            **row,
            "settings": {k: v for k, v in row["settings"].items() if k != "hard_share"},
            "shares": shares,
            "selection": kind,
            "images_seen": round(sum(shares), 3),
            "implementation": "fmnist.training.hard",
        },
    )
    explore.run_one(a.out, name, recipe, settings, data.load(download=False), environment())
