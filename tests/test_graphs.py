"""The graphed training step's bookkeeping (static buffers, the learning rate through a
tensor, warm-up, an epoch's short last batch), checked against ordinary steps on the CPU.
The capture itself needs CUDA: `benchmarks/frontier/graph_check.py` compares it there."""

import copy

import torch

from fmnist.models import create_model
from fmnist.training.config import make_config
from fmnist.training.epoch import train_epoch
from fmnist.training.graphs import GraphedStep
from fmnist.training.optim import build_optimizer, build_scheduler


def _run(cfg, model, images, labels, graphed: bool, epochs: int = 2):
    optimizer = build_optimizer(model, cfg)
    steps = (len(images) + cfg.batch_size - 1) // cfg.batch_size
    scheduler = build_scheduler(optimizer, cfg, cfg.epochs * steps)
    stepper = GraphedStep(model, optimizer, cfg, warmup=2, capture=False) if graphed else None
    order, aug = torch.Generator().manual_seed(0), torch.Generator().manual_seed(1)
    losses = []
    for _ in range(epochs):
        loss, _ = train_epoch(
            model,
            optimizer,
            images,
            labels,
            cfg,
            generator=order,
            aug_generator=aug,
            scheduler=scheduler,
            stepper=stepper,
        )
        losses.append(loss)
    return losses, optimizer, stepper


def test_graphed_step_without_capture_matches_ordinary_steps():
    torch.manual_seed(0)
    images = torch.randint(0, 256, (100, 28, 28), dtype=torch.uint8)
    labels = torch.randint(0, 10, (100,))
    # two parameter groups (no decay on biases), a frozen whitening, a one-cycle schedule,
    # mirroring and erasing, and 100 images in batches of 32: 3 full, then one of 4
    cfg = make_config("rung94", batch_size=32, epochs=2, augment="flip_erase", precision="fp32")
    model = create_model("quick_wd")
    model.init_from_data(images)
    twin = copy.deepcopy(model)
    plain_losses, _, _ = _run(cfg, model, images, labels, graphed=False)
    graphed_losses, optimizer, stepper = _run(cfg, twin, images, labels, graphed=True)

    assert stepper.ready and stepper.graph is None and not stepper.failed
    assert stepper.static_x.shape == (32, 28, 28)
    # the schedule moved the rate, the tensor followed it, the optimizer kept its floats
    assert all(isinstance(g["lr"], float) for g in optimizer.param_groups)
    assert stepper.lr[0].item() != cfg.lr / 25
    torch.testing.assert_close(plain_losses, graphed_losses, rtol=1e-5, atol=1e-6)
    for p, q in zip(model.parameters(), twin.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)
    for a, b in zip(model.buffers(), twin.buffers(), strict=True):
        torch.testing.assert_close(a.float(), b.float(), rtol=1e-5, atol=1e-6)
