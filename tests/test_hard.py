"""Hard-example epochs: the hardest share by last loss, the schedule over their steps, a short
run that learns, and the settings refused out of range."""

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from fmnist.training import distributed
from fmnist.training.build import build_run
from fmnist.training.config import ConfigError, make_config
from fmnist.training.epoch import train_epoch
from fmnist.training.hard import (
    HardExamples,
    epoch_images,
    epochs_phrase,
    images_through,
    steps_through,
)
from fmnist.training.optim import build_scheduler
from fmnist.training.train import train


def quiet(*_):
    pass


def test_an_epoch_after_the_full_ones_takes_the_hardest_share_in_a_seeded_order():
    cfg = make_config("fast", epochs=4, full_epochs=2, hard_share=0.3)
    hard = HardExamples(cfg, 50, "cpu")
    assert sorted(hard.order(1, torch.Generator().manual_seed(0)).tolist()) == list(range(50))
    losses = torch.rand(50, generator=torch.Generator().manual_seed(1))
    logits = torch.randn(50, 10)
    labels = torch.randint(0, 10, (50,))
    hard.note(torch.arange(50), logits, labels)
    np.testing.assert_allclose(
        hard.losses, F.cross_entropy(logits, labels, reduction="none"), rtol=1e-6
    )
    hard.losses.copy_(losses)
    assert len(hard.order(2, torch.Generator().manual_seed(0))) == 50  # still a full epoch
    picked = hard.order(3, torch.Generator().manual_seed(0))
    # the reference: NumPy's ordering of the same losses
    assert sorted(picked.tolist()) == sorted(np.argsort(-losses.numpy())[:15].tolist())
    assert torch.equal(picked, hard.order(3, torch.Generator().manual_seed(0)))
    assert not torch.equal(picked, hard.order(3, torch.Generator().manual_seed(1)))


def test_images_and_steps_per_epoch():
    cfg = make_config("fast", epochs=5, full_epochs=1, hard_share=0.4, batch_size=64)
    assert [epoch_images(cfg, 1000, e) for e in range(1, 6)] == [1000, 400, 400, 400, 400]
    assert steps_through(cfg, 1000, 5) == 16 + 4 * 7
    assert steps_through(make_config("fast", epochs=5, batch_size=64), 1000, 5) == 5 * 16
    assert images_through(cfg, 1000, 5) == 2600
    assert epochs_phrase(5, dataclasses.asdict(cfg)) == "5 epochs, 4 on the hardest 40%"
    assert epochs_phrase(1, {}) == "1 epoch"


def test_a_hard_example_run_learns_and_its_schedule_spans_its_steps(dataset, tmp_path):
    cfg = make_config(
        "rung92", epochs=4, full_epochs=1, hard_share=0.4, train_limit=2000, val_fraction=0.05,
        device="cpu",
    )  # fmt: skip
    res = train(cfg, out=tmp_path / "run", dataset=dataset, log=quiet)
    assert res.metrics["val_accuracy"] > 0.6  # chance is 0.1
    # 2,000 images in 8 steps of 256, then 800 in 4 steps an epoch: the one-cycle schedule
    # spans those 20 steps, and each epoch starts at the rate of its first step
    reference = build_scheduler(
        torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=cfg.lr), cfg, total=20
    )
    rates = []
    for _ in range(20):
        rates.append(reference.get_last_lr()[0])
        reference.optimizer.step()
        reference.step()
    assert [row["lr"] for row in res.history] == pytest.approx([rates[i] for i in (0, 8, 12, 16)])


@pytest.mark.parametrize(
    "settings, message",
    [
        (dict(hard_share=0.0), "hard-share must be in"),
        (dict(hard_share=1.5), "hard-share must be in"),
        (dict(full_epochs=0), "full-epochs must be at least 1"),
        (dict(hard_share="half"), "hard_share must be float"),
    ],
)
def test_hard_settings_out_of_range_are_refused(settings, message):
    with pytest.raises(ConfigError, match=message):
        make_config("fast", **settings)


def test_hard_examples_are_refused_under_torchrun_before_anything_is_built():
    cfg = make_config("rung92", device="cpu")
    two = distributed.Context(rank=0, world=2)
    with pytest.raises(ConfigError, match="hard_share below 1 runs in one process"):
        build_run(cfg, None, ctx=two, device=torch.device("cpu"), run_dir=None, log=quiet,
                  fresh=True)  # fmt: skip


def test_a_hard_epoch_trains_on_the_hardest_images_only_and_keeps_their_losses():
    cfg = make_config("fast", epochs=2, hard_share=0.25, batch_size=8)
    images = torch.zeros((40, 28, 28), dtype=torch.uint8)
    labels = torch.arange(40) % 10
    hard = HardExamples(cfg, 40, "cpu")
    hard.losses.copy_(torch.arange(40, dtype=torch.float32))  # image i: loss i
    taken = []

    def stepper(x, y):  # in place of the training step: answers class 0 with certainty
        taken.append(len(x))
        return torch.tensor(1.0), F.one_hot(torch.zeros(len(y), dtype=torch.long), 10) * 50.0

    train_epoch(torch.nn.Identity(), None, images, labels, cfg, generator=torch.Generator(),
                aug_generator=torch.Generator(), hard=hard, epoch=2, stepper=stepper)  # fmt: skip
    assert sum(taken) == 10
    # the ten hardest were images 30 to 39; each now holds its loss from this epoch
    fresh = hard.losses[30:]
    assert torch.equal(hard.losses[:30], torch.arange(30, dtype=torch.float32))
    np.testing.assert_allclose(fresh[labels[30:] == 0], 0.0, atol=1e-6)
    np.testing.assert_allclose(fresh[labels[30:] != 0], 50.0, rtol=1e-5)


@pytest.mark.parametrize("n", [40, 41, 42, 43])
def test_the_step_count_matches_the_steps_a_torchrun_epoch_makes(n):
    # under 3 processes a last batch of 1 or 2 images is left out, and the schedule and the
    # checkpoint's check count the steps the epoch makes
    cfg = make_config("fast", epochs=1, batch_size=8)
    store = torch.distributed.HashStore()
    torch.distributed.init_process_group("gloo", store=store, rank=0, world_size=1)
    steps = []

    def stepper(x, y):  # in place of the training step
        steps.append(len(x))
        return torch.tensor(1.0), torch.zeros(len(y), 10)

    try:
        train_epoch(torch.nn.Identity(), None, torch.zeros((n, 28, 28), dtype=torch.uint8),
                    torch.zeros(n, dtype=torch.long), cfg, generator=torch.Generator(),
                    aug_generator=torch.Generator(), ctx=distributed.Context(0, 3, 0),
                    stepper=stepper)  # fmt: skip
    finally:
        torch.distributed.destroy_process_group()
    assert len(steps) == steps_through(cfg, n, 1, world=3) == 5 + (n % 8 >= 3)
    assert steps_through(cfg, n, 1) == 5 + (n % 8 > 0)
