"""Shared fixtures: the real dataset (installed by `make test`) and one small trained run."""

from __future__ import annotations

import dataclasses
import signal

import pytest
import torch

from fmnist import data
from fmnist.training.config import make_config
from fmnist.training.train import train


def pytest_configure(config):
    """Ctrl-C reaches the commands under test even when pytest started with SIGINT ignored, as
    a non-interactive shell does for a command run with `&`: children inherit an ignored signal,
    and the tests of what Ctrl-C does would then wait for a command that never hears it."""
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(scope="session")
def dataset() -> data.FashionMNIST:
    """The verified real dataset; never downloads during tests."""
    return data.load(download=False)


@pytest.fixture(scope="session")
def few_test_images(dataset) -> data.FashionMNIST:
    """The real dataset with only its first 1,000 test images, for runs whose test figure is
    not what a test checks: in bfloat16 where it is emulated, 10,000 test images alone take
    about 4 s of the seed CNN's inference."""
    n = 1000
    return dataclasses.replace(dataset, test_images=dataset.test_images[:n],
                               test_labels=dataset.test_labels[:n])  # fmt: skip


@pytest.fixture(scope="session")
def tiny_run(dataset, tmp_path_factory):
    """A real seed-CNN run on 6,000 training images for 2 epochs (a few seconds on 2 cores).

    Batches of 32 give BatchNorm's slow running averages (Keras momentum 0.99) enough steps.
    """
    out = tmp_path_factory.mktemp("runs") / "tiny"
    cfg = make_config("seed", epochs=2, train_limit=6000, batch_size=32, seed=0)
    return train(cfg, out=out, dataset=dataset, log=lambda *a: None)


@pytest.fixture
def one_thread():
    """One PyTorch thread for a test's runs, as in the subprocesses it starts beside them
    (OMP_NUM_THREADS=1): two processes with two threads each on two cores spin-wait for
    each other and run ten times slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def cli():
    """The real command line, run in a forked child per call (tests/cliserver.py)."""
    from tests.cliserver import CommandServer

    with CommandServer() as run:
        yield run
