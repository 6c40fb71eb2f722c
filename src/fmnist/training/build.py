"""Before the first epoch: the run's data split, and the model on its device with everything
that steps it (optimizer, schedule, weight average, graphed step, random generators)."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from fmnist import data
from fmnist.evaluate import autocast, native_bf16, resolve_precision
from fmnist.models import flops, summary
from fmnist.models.user import build_user_model, create_any, is_user_spec
from fmnist.training import distributed
from fmnist.training.config import ConfigError, TrainConfig
from fmnist.training.graphs import GraphedStep
from fmnist.training.hard import HardExamples, steps_through
from fmnist.training.optim import EMA, build_optimizer, build_scheduler

# ----------------------------------------------------------------------------
# Prepare the data
# ----------------------------------------------------------------------------


@dataclass
class RunData:
    """The images a run learns from (on the training device) and validates on (on the host)."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: np.ndarray
    y_val: np.ndarray
    excluded: dict | None  # the exclude list applied: file, sha256, listed, dropped
    train_idx: np.ndarray  # indices into the 60,000 training images
    val_idx: np.ndarray


def prepare_data(cfg: TrainConfig, dataset, device: torch.device) -> RunData:
    """The seeded split, less any excluded images, the training part moved to the device."""
    train_idx, val_idx = data.run_split(
        dataset.train_labels, cfg.val_fraction, cfg.seed, cfg.train_limit, cfg.all_data
    )
    excluded = None
    if cfg.exclude:
        # training images an audit flagged (or any list of indices): dropped from the
        # training part only, so the validation split stays the same as without them
        drop, digest = data.read_exclude(cfg.exclude)
        if drop and drop[-1] >= len(dataset.train_labels):
            raise ConfigError(
                f"--exclude {cfg.exclude}: names training image {drop[-1]}, but there are "
                f"{len(dataset.train_labels):,} (indices 0 to {len(dataset.train_labels) - 1})"
            )
        kept = np.setdiff1d(train_idx, drop)
        dropped = int(len(train_idx) - len(kept))
        excluded = {
            "file": str(cfg.exclude),
            "sha256": digest,
            "listed": len(drop),
            "dropped": dropped,
        }
        train_idx = kept
    check_split(cfg, train_idx, val_idx)
    return RunData(
        x_train=torch.from_numpy(dataset.train_images[train_idx]).to(device),
        y_train=torch.from_numpy(dataset.train_labels[train_idx]).to(device),
        x_val=dataset.train_images[val_idx],
        y_val=dataset.train_labels[val_idx],
        excluded=excluded,
        train_idx=train_idx,
        val_idx=val_idx,
    )


def check_split(cfg: TrainConfig, train_idx: np.ndarray, val_idx: np.ndarray) -> None:
    """Refuse, before the first step, a split that leaves nothing to learn from or, where
    the run selects its epoch on validation, nothing to validate on."""
    if not len(train_idx) and cfg.exclude:
        raise ConfigError(
            f"no training images: --exclude {cfg.exclude} leaves out every one this run has; "
            "exclude fewer, or raise --train-limit"
        )
    if not len(train_idx):
        raise ConfigError(
            f"no training images: val_fraction {cfg.val_fraction} holds out every one; lower it"
        )
    if not cfg.all_data and not len(val_idx):
        raise ConfigError(
            f"no validation images: val_fraction {cfg.val_fraction} of the training images "
            "rounds to none in each class; raise it, or train with --all-data"
        )


# ----------------------------------------------------------------------------
# Build the model, the optimizer and its schedule
# ----------------------------------------------------------------------------


def check_user_model(cfg: TrainConfig) -> None:
    """A model of the user's code costed and run on one batch, before the run makes or reads
    anything: bad code is one line, not a folder made and the data read for nothing. The run
    builds it again from the same module (each version of a file runs once)."""
    if is_user_spec(cfg.model):
        build_user_model(cfg.model, cfg.model_args)


@dataclass
class Run:
    """What a run works with, fixed once it starts (the weights change, the parts do not)."""

    cfg: TrainConfig  # the settings the loop runs: the precision resolved for this device
    ctx: distributed.Context
    device: torch.device
    run_dir: Path | None  # None in torchrun's other processes
    data: RunData
    model: torch.nn.Module
    net: torch.nn.Module  # the model, or its DistributedDataParallel wrapper under torchrun
    optimizer: torch.optim.Optimizer
    scheduler: object | None
    ema: EMA | None
    stepper: GraphedStep | None  # the step replayed as a CUDA graph, on one GPU
    hard: HardExamples | None  # each image's last loss, where later epochs take the hardest
    order_generator: torch.Generator  # batch order: the same in every process
    rank_generators: dict[str, torch.Generator]  # this process's: global, augment (, cuda)
    log: Callable
    used: dict  # what the machine decided where the settings left it open
    init_s: float = 0.0  # seconds of data-dependent initialisation, counted in epoch 1

    @property
    def lead(self) -> bool:
        return self.ctx.rank == 0

    @property
    def judged(self) -> torch.nn.Module:
        """The weights that are validated and kept: the moving average where there is one."""
        return self.ema.model if self.ema is not None else self.model


def build_run(cfg: TrainConfig, split: RunData, *, ctx, device, run_dir, log, fresh) -> Run:
    """The model on its device and everything that steps it, seeded from cfg.seed; `fresh`:
    a new run (a resumed one takes its weights from the checkpoint)."""
    if cfg.sync_bn and ctx.active and device.type != "cuda":
        raise ConfigError("sync_bn needs CUDA (PyTorch's SyncBatchNorm); leave it off on CPUs")
    if cfg.hard_share < 1 and ctx.active:
        raise ConfigError(
            "hard_share below 1 runs in one process: each process would keep the losses of "
            "its own images only; leave it at 1 under torchrun"
        )
    torch.manual_seed(cfg.seed)
    order_generator = torch.Generator().manual_seed(cfg.seed)
    # a model of the user's own code is costed on the meta device and answers one batch
    # here, before the first step (fmnist.models.user)
    model = create_any(cfg.model, cfg.model_args)
    # counting FLOPs is a forward pass in eval mode: no random state or statistics change
    run_cfg = dataclasses.replace(
        cfg, precision=resolve_precision(cfg.precision, device, flops(model) / 1e6)
    )
    model, init_s = place_model(model, run_cfg, split, ctx=ctx, device=device, fresh=fresh)
    net = model
    if ctx.active:
        ids = [device.index] if device.type == "cuda" else None
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)
        # each process its own dropout masks and augmentations (the weights start equal:
        # DistributedDataParallel copied rank 0's)
        torch.manual_seed(cfg.seed + 1000 * ctx.rank)
    optimizer = build_optimizer(model, run_cfg)
    n = len(split.x_train)
    graphed = cfg.cuda_graph and device.type == "cuda" and not ctx.active
    aug_generator = torch.Generator(device).manual_seed(cfg.seed + 1 + 1000 * ctx.rank)
    rank_generators = {"global": torch.default_generator, "augment": aug_generator}
    if device.type == "cuda":
        rank_generators["cuda"] = torch.cuda.default_generators[device.index or 0]
    used = {"precision": run_cfg.precision, "device": str(device), "cuda_graph": graphed}
    if split.excluded:
        used["exclude"] = split.excluded
    return Run(
        cfg=run_cfg,
        ctx=ctx,
        device=device,
        run_dir=run_dir,
        data=split,
        model=model,
        net=net,
        optimizer=optimizer,
        scheduler=build_scheduler(optimizer, run_cfg, steps_through(cfg, n, cfg.epochs, ctx.world)),
        hard=HardExamples(cfg, n, device) if cfg.hard_share < 1 else None,
        ema=EMA(model, cfg.ema) if cfg.ema else None,
        stepper=GraphedStep(model, optimizer, run_cfg, log=log) if graphed else None,
        order_generator=order_generator,
        rank_generators=rank_generators,
        log=log,
        used=used,
        init_s=init_s,
    )


@contextlib.contextmanager
def kernel_choice(cfg: TrainConfig):
    """With cfg.deterministic: PyTorch's deterministic algorithms (an error where an operation
    has none), cuDNN without its timing-based choice, and cuBLAS's fixed workspace, for the
    run only; on a CPU the same seed gives the same numbers already."""
    if not cfg.deterministic:
        yield
        return
    # cuBLAS reads this when its first handle is made; a process that already ran CUDA
    # matrix multiplies without it keeps its handles (set it in the environment then)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    before = (
        torch.are_deterministic_algorithms_enabled(),
        torch.backends.cudnn.deterministic,
        torch.backends.cudnn.benchmark,
    )
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before[0])
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = before[1:]


def place_model(model, cfg: TrainConfig, split: RunData, *, ctx, device, fresh: bool):
    """The model as the settings ask it to train (BatchNorm momentum, synced BatchNorm,
    device, memory layout), initialised from the data where it asks; returns it and the
    seconds that initialisation took."""
    if cfg.bn_momentum:
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.momentum = cfg.bn_momentum
    if cfg.sync_bn and ctx.active:
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    model = model.to(device)
    if device.type == "cuda" and not cfg.deterministic:
        # fixed image size: let cuDNN time its convolution algorithms once and keep the best
        torch.backends.cudnn.benchmark = True
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    init_s = 0.0
    if hasattr(model, "init_from_data") and fresh:
        # weights set from the training images (quick_w's whitening) before the optimizer,
        # the weight average and the processes see them
        t0 = time.perf_counter()
        model.init_from_data(split.x_train)
        init_s = time.perf_counter() - t0
    return model, init_s


def describe(run: Run, asked: TrainConfig, dataset) -> None:
    """The model, the settings and the data, before the first epoch."""
    cfg, log = run.cfg, run.log
    log(summary(run.model))
    log("config: " + json.dumps(dataclasses.asdict(asked)))
    if run.data.excluded:
        log(f"exclude: {run.data.excluded['dropped']:,} training images dropped ({cfg.exclude})")
    if asked.precision != cfg.precision:
        log(f"precision {asked.precision}: {cfg.precision} on this {run.device.type}")
    log(
        f"data: {dataset.origin} ({dataset.directory}), {len(run.data.train_idx)} train / "
        f"{len(run.data.val_idx)} validation images, device {run.device}, "
        f"{torch.get_num_threads()} threads"
        + (f", {run.ctx.world} processes" if run.ctx.active else "")
    )
    if cfg.precision == "bf16" and not native_bf16(run.device):
        log(emulated_bf16_note(run.model, run.device, cfg.batch_size))


def emulated_bf16_note(model, device, batch_size: int, steps: int = 2) -> str:
    """A note for bf16 asked for on a device that would emulate it, with the slowdown
    measured here on a few training steps of this model."""
    x = torch.rand(min(batch_size, 64), 1, 28, 28, device=device)
    probe = copy.deepcopy(model).train()
    seconds = {}
    for precision in ("fp32", "bf16"):
        t0 = time.perf_counter()
        for _ in range(steps):
            with autocast(device, precision):
                loss = probe(x).float().square().mean()
            loss.backward()
        seconds[precision] = time.perf_counter() - t0
    ratio = seconds["bf16"] / max(seconds["fp32"], 1e-9)
    return (
        f"note: this {device.type} has no native bfloat16 and emulates it: a training step "
        f"of {model.model_name} measured {ratio:.1f}x the time of fp32 here; "
        "--precision auto (or fp32) is faster"
    )
