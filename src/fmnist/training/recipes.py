"""The named recipes: presets of TrainConfig, each setting with its reason.

A recipe lists only what differs from TrainConfig's defaults (the tutorial's settings) or
from the recipe it builds on. Every choice was made on the validation split (48,000 /
12,000 images), never on the test set; the experiments behind them, with their records,
are in benchmarks/frontier/ (README.md there). The ladder's recipes (rung90 ... rung95,
gpu94, gpu95) are the fastest schedules found to clear each rung of test accuracy by a
margin fixed beforehand (0.3 points on validation); their figures come from runs on all
60,000 training images with the same schedule (`fmnist bench --ladder`).
"""

from __future__ import annotations

# The tutorial: Adam 1e-3, batch 128, up to 30 epochs, early stopping on validation loss
# with the best weights restored, a 20% validation split (TrainConfig's defaults).
SEED = {
    "precision": "fp32",  # as Keras trains it, on every machine: the tutorial's digits too
}

# The seed CNN, trained for speed.
FAST = {
    "epochs": 2,  # the shortest schedule above 89.5% on validation
    "lr": 8e-3,  # peak of the one-cycle schedule
    "schedule": "onecycle",  # warm up, then anneal linearly to zero
    "label_smoothing": 0.1,  # softer targets: better calibrated, a little more accurate
    "bn_momentum": 0.1,  # BatchNorm averages that keep up with two epochs (Keras: 0.01)
    "select": "last",  # a fixed schedule keeps its last weights
    "patience": 0,  # no early stopping
}

# The seed CNN trained better.
TUNED = {
    "epochs": 30,
    "lr": 4e-3,
    "schedule": "onecycle",
    "augment": "flip",  # random mirroring; random crops as well did no better on validation
    "label_smoothing": 0.1,
    "weight_decay": 0.05,  # decoupled (AdamW)
    "bn_momentum": 0.1,
    "select": "val_acc",  # the epoch with the best validation accuracy
    "patience": 0,
}

# Bigger models, longer: 80 epochs of wide_cnn in under 25 minutes on 2 cores with bf16.
BEST = {
    "model": "wide_cnn",
    "epochs": 80,
    "lr": 3e-3,
    "schedule": "onecycle",
    "augment": "crop_flip_erase",  # random crops, mirroring and random erasing
    "label_smoothing": 0.1,
    "weight_decay": 0.05,
    "ema": 0.999,  # the weights' moving average is what is validated and kept
    "select": "val_acc",
    "patience": 0,
    "precision": "auto",  # bf16 where native: 2.3x the images/s of fp32 for wide_cnn
    "channels_last": True,  # NHWC activations, which bf16 convolutions run fastest on
    "tta": True,  # the mirror-image figure recorded beside the plain one
}

# The schedule of the quick (whitened) models on the ladder.
QUICK = {
    **TUNED,
    "batch_size": 256,  # fewer, larger steps: more images/s on 2 cores
    "lr": 8e-3,
    "select": "last",  # fixed schedules: no early stopping, the last weights
    "channels_last": True,
    "tta": True,  # mirror-image TTA is part of the figure: +0.3 to 0.6 points on validation
}

RECIPES: dict[str, dict] = {
    "seed": SEED,
    "fast": FAST,
    "tuned": TUNED,
    "best": BEST,
    "rung90": {
        **FAST,
        # frozen whitening of 2x2 patches: one epoch is enough. Two cheaper networks at
        # lr 2e-2, width 24 with ReLU (quick_w2r24) and the same with the whitening's bias
        # frozen (quick_w2r24f), cleared 90.3% on validation in about two thirds of the time
        # but did not hold on the test set (benchmarks/results: their side-by-side records,
        # role "ablation"); Muon on the filters made one epoch of quick_w2 more accurate on
        # validation but not cheaper, nor the cheaper networks accurate enough
        # (benchmarks/frontier/README.md, rung90's fifth try)
        "model": "quick_w2",
        "channels_last": True,
        "epochs": 1,
    },
    "rung92": {
        **QUICK,
        # whitened 2x2 patches, two convolutions per stage, width 24: under half the MFLOP
        # of quick_wd (patches 3x3, width 32) for the same figure
        "model": "quick_w2d24",
        "epochs": 5,
        # after one full epoch, four of the hardest quarter (fmnist.training.hard): two
        # epochs' images, as accurate on validation as three full epochs
        "hard_share": 0.25,
        "lr": 1.6e-2,  # the narrower model takes a faster rate
    },
    "rung93": {
        **QUICK,
        # whitened 2x2 patches, two convolutions per stage, width 32: about half the MFLOP
        # of quick_wd40 (patches 3x3, width 40)
        "model": "quick_w2d32",
        "epochs": 6,
        # four full epochs, then two of the hardest half (fmnist.training.hard): five
        # epochs' images, more accurate on validation than five full epochs
        "full_epochs": 4,
        "hard_share": 0.5,
        "lr": 1.6e-2,
    },
    "rung94": {
        **QUICK,
        "model": "quick_wd64",  # width 64
        # the shortest whose mean of 3 seeds cleared 94.3% on validation: 10 epochs did not
        "epochs": 12,
        "weight_decay": 0.5,  # strong decay on the weights ...
        "bias_decay": False,  # ... but not on biases and BatchNorm shifts (16 epochs if so)
    },
    "rung95": {
        **BEST,  # nothing faster cleared 95.3% on validation
        "select": "last",  # all 60,000 images: no validation to choose on
        "tta": False,
    },
    # On a GPU each full batch's step is one replayed CUDA graph (cuda_graph), so small
    # models pay there too; chosen on validation on an H100.
    "gpu94": {
        **QUICK,
        "model": "speed_l",  # a learned convolution at 28x28 before the first pooling
        "epochs": 10,
        "weight_decay": 0.5,
        "bias_decay": False,
    },
    "gpu95": {
        **BEST,
        "model": "wide_cnn96",  # width 96: a GPU step costs little more than width 32's
        "epochs": 40,
        "batch_size": 512,  # fewer steps for a GPU
        "lr": 6e-3,
        "ema": 0.99,  # an average over about one epoch's steps
        "select": "last",
    },
    "robust": {
        **QUICK,
        "model": "quick_m",
        "epochs": 6,
        # half of each batch corrupted: 0.6 points less clean accuracy, 15.5 more under
        # corruption (benchmarks/corruption_training.py)
        "augment": "flip_corrupt",
    },
}

# One line each, for `fmnist recipes` and the help.
PURPOSES: dict[str, str] = {
    "seed": "the tutorial's CNN and training, as Keras runs it",
    "fast": "the tutorial's CNN in two epochs of a one-cycle schedule",
    "tuned": "the tutorial's CNN trained better: 30 epochs, mirroring, weight decay",
    "best": "wide_cnn, 80 epochs with crops, erasing and a weight average",
    "rung90": "the ladder's 90% rung: fastest to 90% on 2 CPU cores",
    "rung92": "the ladder's 92% rung on 2 CPU cores",
    "rung93": "the ladder's 93% rung on 2 CPU cores",
    "rung94": "the ladder's 94% rung on 2 CPU cores",
    "rung95": "the ladder's 95% rung: the best recipe on all 60,000 images",
    "gpu94": "the ladder's 94% rung on one GPU",
    "gpu95": "the ladder's 95% rung on one GPU",
    "robust": "trained with corrupted images: holds up under noise, blur and contrast",
}
