"""Training: the fit loop, end-of-epoch checkpoints, resume, one process or many.

The whole dataset lives on the training device as one uint8 tensor; each batch is
indexed and converted there, so there are no loader processes. Model selection
(early stopping, best epoch) looks at the validation split only; the test set is
evaluated once, at the end. Every epoch ends with a checkpoint from which
`train(..., resume=True)` continues exactly (see `fmnist.training.resume`); under torchrun the
processes share each batch (see `fmnist.training.distributed`).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from fmnist import FmnistError, data
from fmnist.checkpoint import CheckpointError, save_model, write_json
from fmnist.evaluate import (
    autocast,
    evaluate_logits,
    infer,
    native_bf16,
    resolve_precision,
)
from fmnist.models import count_parameters, create_model, flops, summary
from fmnist.training import distributed, resume
from fmnist.training.config import (  # noqa: F401 (the names other stages import from here)
    RECIPES,
    ConfigError,
    TrainConfig,
    config_from_record,
    make_config,
    resolve_device,
)
from fmnist.training.graphs import GraphedStep, forward_backward_update
from fmnist.training.resume import resume_config  # noqa: F401
from fmnist.training.rundir import (  # noqa: F401
    CHECKPOINT,
    HISTORY_FIELDS,
    Progress,
    default_run_dir,
    environment,
    prepare_run_dir,
    run_record,
    write_history,
)

# ----------------------------------------------------------------------------
# Fit
# ----------------------------------------------------------------------------


def parameter_groups(model, cfg: TrainConfig) -> list[dict]:
    """The optimizer's parameter groups: one; with bias_decay off, the one-dimensional
    parameters (biases, BatchNorm shifts, which set where an activation sits rather than
    how large a weight grows) in a second group without weight decay."""
    params = list(model.parameters())
    if cfg.bias_decay:
        return [{"params": params}]
    return [
        {"params": [p for p in params if p.ndim > 1]},
        {"params": [p for p in params if p.ndim <= 1], "weight_decay": 0.0},
    ]


def build_optimizer(model, cfg: TrainConfig) -> torch.optim.Optimizer:
    # AdamW with weight_decay 0 is Adam; Keras's epsilon is 1e-7. The fused kernel updates
    # all parameters in one call: about 5% more training images/s for the seed CNN on a CPU.
    return torch.optim.AdamW(
        parameter_groups(model, cfg),
        lr=cfg.lr,
        eps=cfg.adam_eps,
        weight_decay=cfg.weight_decay,
        fused=True,
    )


def train_step(model, optimizer, images, labels, cfg):
    """One optimizer step on a uint8 batch; returns the (detached) loss and logits."""
    optimizer.zero_grad(set_to_none=True)
    return forward_backward_update(model, optimizer, images, labels, cfg)


def build_scheduler(optimizer, cfg: TrainConfig, steps_per_epoch: int):
    """A per-step learning-rate schedule, or None for a constant rate."""
    total = cfg.epochs * steps_per_epoch
    if cfg.schedule == "onecycle":
        # PyTorch's one-cycle divides by zero when the warm-up is one step or less
        if total < 3:
            raise ConfigError(
                f"the onecycle schedule needs at least 3 steps, this run has {total}; "
                "use more epochs or images, a smaller batch, or another schedule"
            )
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer,
            max_lr=cfg.lr,
            total_steps=total,
            pct_start=max(cfg.warmup or 0.25, 2 / total),
            anneal_strategy="linear",
            cycle_momentum=False,
        )
    if cfg.schedule == "cosine":
        warm = int(cfg.warmup * total)

        def factor(step: int) -> float:
            if step < warm:
                return (step + 1) / warm
            return 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, total - warm)))

        return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    return None


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


class EMA:
    """An exponential moving average of the weights (BatchNorm statistics copied as they are)."""

    def __init__(self, model: torch.nn.Module, decay: float):
        self.decay, self.steps = decay, 0
        self.model = copy.deepcopy(model).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        self.steps += 1
        # a short memory at first, so early weights do not linger (as TensorFlow's EMA does)
        decay = min(self.decay, (1 + self.steps) / (10 + self.steps))
        torch._foreach_lerp_(list(self.model.parameters()), list(model.parameters()), 1.0 - decay)
        torch._foreach_copy_(list(self.model.buffers()), list(model.buffers()))


def train_epoch(
    model, optimizer, images, labels, cfg, generator, aug_generator,
    scheduler=None, ema=None, progress=None, ctx=distributed.SINGLE, stepper=None,
):  # fmt: skip
    """One pass in a seeded random order; returns mean loss and accuracy over the pass.

    Under torchrun each step's global batch is shared out (`distributed.shard`); a last
    batch too small to give every process an image is left out. `stepper(images, labels)`,
    if given, takes the place of `train_step` (a `GraphedStep` on a GPU)."""
    model.train()
    n = len(images)
    order = torch.randperm(n, generator=generator).to(images.device)
    total_loss = torch.zeros((), device=images.device)
    correct = torch.zeros((), dtype=torch.long, device=images.device)
    seen = 0
    steps = (n + cfg.batch_size - 1) // cfg.batch_size
    for step in range(steps):
        batch = order[step * cfg.batch_size : (step + 1) * cfg.batch_size]
        if len(batch) < ctx.world:
            break
        idx = distributed.shard(batch, ctx)
        x = data.augment(images[idx], cfg.augment, aug_generator)
        y = labels[idx]
        if stepper is None:
            loss, logits = train_step(model, optimizer, x, y, cfg)
        else:
            loss, logits = stepper(x, y)
        if scheduler is not None:
            scheduler.step()
        if ema is not None:
            ema.update(getattr(model, "module", model))
        total_loss += loss * len(idx)
        correct += (logits.argmax(1) == y).sum()
        seen += len(idx)
        if progress is not None:
            progress.update(min((step + 1) * cfg.batch_size, n))
    if ctx.active:
        count = distributed.sum_all(torch.tensor(seen, device=images.device), ctx)
        distributed.sum_all(total_loss, ctx)
        distributed.sum_all(correct, ctx)
        seen = int(count)
    return float(total_loss) / seen, int(correct) / seen


@dataclass
class RunResult:
    run_dir: Path | None  # None in the processes of a torchrun run other than rank 0
    model: torch.nn.Module
    config: TrainConfig
    history: list
    metrics: dict


def _diverged(epoch: int, loss: float, run_dir: Path | None) -> FmnistError:
    kept = (
        f"{run_dir / CHECKPOINT if run_dir else 'the checkpoint'} keeps epoch {epoch - 1}"
        if epoch > 1
        else "no checkpoint was written"
    )
    return FmnistError(
        f"training diverged at epoch {epoch} (loss {loss}); {kept}; "
        "start a new run with a lower --lr"
    )


def train(
    cfg: TrainConfig,
    out: str | os.PathLike | None = None,
    dataset: data.FashionMNIST | None = None,
    data_dir: str | None = None,
    download: bool = True,
    log=print,
    on_epoch=None,
    resume_run: bool = False,
) -> RunResult:
    """Train one model (or, with `resume_run`, continue the unfinished run in `out`).

    `on_epoch(epoch, model, train_s, row)` is called untimed after each epoch's checkpoint,
    with the history row; under torchrun only rank 0 logs, calls it and writes files."""
    ctx, device = distributed.setup(cfg.device)
    if ctx.rank != 0:
        log, on_epoch = (lambda *a: None), None
    try:
        return _train(cfg, out, dataset, data_dir, download, log, on_epoch, resume_run, ctx, device)
    finally:
        distributed.teardown(ctx)


def _train(cfg, out, dataset, data_dir, download, log, on_epoch, resume_run, ctx, device):
    tensors = state = None
    if resume_run:
        run_dir = Path(out)
        tensors, state = resume.load(run_dir)
    elif ctx.rank == 0:
        target = Path(out) if out is not None else default_run_dir(cfg, f"s{cfg.seed}")
        made = [p for p in (target, *target.parents) if not os.path.lexists(p)]
        run_dir = prepare_run_dir(target, cfg)
        try:
            return _fit(cfg, run_dir, dataset, data_dir, download, log, on_epoch, False, ctx,
                        device, None, None)  # fmt: skip
        except BaseException:
            # a run that ends before its first checkpoint leaves nothing it made behind
            if not (run_dir / CHECKPOINT).exists() and not (run_dir / "metrics.json").exists():
                for name in ("config.json", "history.csv"):
                    (run_dir / name).unlink(missing_ok=True)
                for folder in made:  # the run directory, then any folder made above it
                    if folder.is_dir() and not any(folder.iterdir()):
                        folder.rmdir()
            raise
    else:
        run_dir = None
    return _fit(cfg, run_dir, dataset, data_dir, download, log, on_epoch, resume_run, ctx,
                device, tensors, state)  # fmt: skip


def _fit(cfg, run_dir, dataset, data_dir, download, log, on_epoch, resume_run, ctx, device,
         tensors, state):  # fmt: skip
    lead = ctx.rank == 0
    if dataset is None:
        dataset = data.load(data_dir, download=download)
    if cfg.sync_bn and ctx.active and device.type != "cuda":
        raise ConfigError("sync_bn needs CUDA (PyTorch's SyncBatchNorm); leave it off on CPUs")
    torch.manual_seed(cfg.seed)
    generator = torch.Generator().manual_seed(cfg.seed)

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
        excluded = {"file": str(cfg.exclude), "sha256": digest, "listed": len(drop),
                    "dropped": int(len(train_idx) - len(kept))}  # fmt: skip
        train_idx = kept
    x_train = torch.from_numpy(dataset.train_images[train_idx]).to(device)
    y_train = torch.from_numpy(dataset.train_labels[train_idx]).to(device)
    x_val = dataset.train_images[val_idx]
    y_val = dataset.train_labels[val_idx]

    model = create_model(cfg.model)
    # what the run was asked for stays in `asked` (config.json); the loop runs `cfg`, with
    # the precision this device runs fastest where the recipe left it to the machine
    # (counting FLOPs is a forward pass in eval mode: no random state or statistics change)
    precision = resolve_precision(cfg.precision, device, flops(model) / 1e6)
    asked, cfg = cfg, dataclasses.replace(cfg, precision=precision)
    graphed = cfg.cuda_graph and device.type == "cuda" and not ctx.active
    used = {"precision": cfg.precision, "device": str(device), "cuda_graph": graphed}
    if excluded:
        used["exclude"] = excluded
    if cfg.bn_momentum:
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.momentum = cfg.bn_momentum
    if cfg.sync_bn and ctx.active:
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    model = model.to(device)
    if device.type == "cuda":
        # fixed image size: let cuDNN time its convolution algorithms once and keep the best
        torch.backends.cudnn.benchmark = True
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    init_s = 0.0
    if hasattr(model, "init_from_data") and not resume_run:
        # weights set from the training images (quick_w's whitening) before the optimizer,
        # the weight average and the processes see them; timed as part of the first epoch
        t0 = time.perf_counter()
        model.init_from_data(x_train)
        init_s = time.perf_counter() - t0
    net = model
    if ctx.active:
        ids = [device.index] if device.type == "cuda" else None
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)
        # each process its own dropout masks and augmentations (the weights start equal:
        # DistributedDataParallel copied rank 0's)
        torch.manual_seed(cfg.seed + 1000 * ctx.rank)
    optimizer = build_optimizer(model, cfg)
    steps_per_epoch = (len(x_train) + cfg.batch_size - 1) // cfg.batch_size
    scheduler = build_scheduler(optimizer, cfg, steps_per_epoch)
    ema = EMA(model, cfg.ema) if cfg.ema else None
    stepper = GraphedStep(model, optimizer, cfg, log=log) if graphed else None
    aug_generator = torch.Generator(device).manual_seed(cfg.seed + 1 + 1000 * ctx.rank)
    rank_generators = {"global": torch.default_generator, "augment": aug_generator}
    if device.type == "cuda":
        rank_generators["cuda"] = torch.cuda.default_generators[device.index or 0]
    trainable, stats = count_parameters(model)
    log(summary(model))
    log("config: " + json.dumps(dataclasses.asdict(asked)))
    if excluded:
        log(f"exclude: {excluded['dropped']:,} training images dropped ({cfg.exclude})")
    if asked.precision != cfg.precision:
        log(f"precision {asked.precision}: {cfg.precision} on this {device.type}")
    log(
        f"data: {dataset.origin} ({dataset.directory}), {len(train_idx)} train / "
        f"{len(val_idx)} validation images, device {device}, {torch.get_num_threads()} threads"
        + (f", {ctx.world} processes" if ctx.active else "")
    )

    if cfg.precision == "bf16" and not native_bf16(device):
        log(emulated_bf16_note(model, device, cfg.batch_size))

    history: list[dict] = []
    best = {"score": None, "epoch": 0, "state": None}
    train_s = 0.0
    stop = False
    start = 1
    if resume_run:
        done, history, best, train_s, stop = resume.restore(
            tensors, state, model=model, optimizer=optimizer, scheduler=scheduler, ema=ema,
            world=ctx.world, rank=ctx.rank, order_generator=generator,
            rank_generators=rank_generators,
        )  # fmt: skip
        start = done + 1
        resume.check_same_data(run_dir, dataset)
        log(f"resumed {run_dir} after epoch {done}")
    elif lead:
        record = run_record(asked, dataset, train_idx, val_idx, ctx.world, used)
        write_json(run_dir / "config.json", record)

    for epoch in range(start, cfg.epochs + 1):
        if stop:
            break
        t0 = time.perf_counter() - init_s  # the first epoch's time includes the data init
        init_s = 0.0
        lr = optimizer.param_groups[0]["lr"]
        progress = Progress(len(x_train), f"epoch {epoch:>2}/{cfg.epochs}") if lead else None
        train_loss, train_acc = train_epoch(
            net, optimizer, x_train, y_train, cfg, generator, aug_generator,
            scheduler, ema, progress, ctx, stepper,
        )  # fmt: skip
        if progress is not None:
            progress.close()
        if not math.isfinite(train_loss):
            raise _diverged(epoch, train_loss, run_dir)
        if device.type == "cuda":
            torch.cuda.synchronize()
        fit_s = time.perf_counter() - t0
        judged = ema.model if ema is not None else model
        if lead:
            val = {"test_loss": None, "test_accuracy": None}
            if len(x_val):
                val = evaluate_logits(
                    infer(judged, x_val, cfg.eval_batch_size, precision=cfg.precision), y_val
                )
            if val["test_loss"] is not None and not math.isfinite(val["test_loss"]):
                raise _diverged(epoch, val["test_loss"], run_dir)
            epoch_s = time.perf_counter() - t0
            train_s += epoch_s
            row = {
                "epoch": epoch,
                "train_loss": round(train_loss, 6),
                "train_acc": round(train_acc, 6),
                "val_loss": None if val["test_loss"] is None else round(val["test_loss"], 6),
                "val_acc": None if val["test_accuracy"] is None else round(val["test_accuracy"], 6),
                "lr": lr,
                "epoch_s": round(epoch_s, 3),
                "images_per_s": round(len(x_train) / fit_s, 1),
            }
            history.append(row)
            if cfg.select == "val_loss":
                score = -val["test_loss"]
            elif cfg.select == "val_acc":
                score = val["test_accuracy"]
            else:
                score = epoch
            improved = best["score"] is None or score > best["score"]
            if improved:
                best = {
                    "score": score,
                    "val_loss": val["test_loss"],
                    "val_acc": val["test_accuracy"],
                    "epoch": epoch,
                    "state": {k: v.detach().clone() for k, v in judged.state_dict().items()},
                }
            shown = (
                f"  val loss {val['test_loss']:.4f} acc {val['test_accuracy']:.2%}"
                if len(x_val)
                else ""
            )
            log(
                f"epoch {epoch:>2}/{cfg.epochs}  train loss {train_loss:.4f} acc "
                f"{train_acc:.2%}{shown}  {epoch_s:.1f}s  {row['images_per_s']:,.0f} img/s"
                + ("  *" if improved and len(x_val) else "")
            )
            stop = bool(cfg.patience) and epoch - best["epoch"] >= cfg.patience
        stop = distributed.agree(stop, ctx, device)
        rank_states = distributed.gather_states(
            {k: g.get_state() for k, g in rank_generators.items()}, ctx, device
        )
        if lead:
            try:
                resume.save(
                    run_dir, epoch=epoch, model=model, optimizer=optimizer,
                    scheduler=scheduler, ema=ema, history=history, best=best,
                    train_s=train_s, stop=stop, world=ctx.world, order_generator=generator,
                    rank_states=rank_states,
                )  # fmt: skip
            except CheckpointError as e:
                then = (
                    f"the checkpoint of epoch {epoch - 1} is intact: fix that, then run "
                    f"fmnist train --resume {run_dir}"
                    if epoch > 1
                    else "fix that and start the run again"
                )
                raise CheckpointError(f"{e}; {then}") from None
            write_history(run_dir / "history.csv", history)
            if on_epoch is not None:
                on_epoch(epoch, judged, train_s, row)
        if stop:
            log(f"early stop: no better {cfg.select} for {cfg.patience} epochs")

    if not lead:
        # wait for rank 0's test evaluation: a process that leaves the group early can abort
        # gloo's pending work in the others
        distributed.barrier(ctx)
        return RunResult(None, model, asked, [], {})
    model.load_state_dict(best["state"])
    test = evaluate_logits(
        infer(model, dataset.test_images, cfg.eval_batch_size), dataset.test_labels
    )
    if cfg.tta:
        mirrored = infer(model, dataset.test_images, cfg.eval_batch_size, tta=True)
        tta_accuracy = evaluate_logits(mirrored, dataset.test_labels)["test_accuracy"]
        if len(x_val):  # where a recipe decides on the mirror image: on validation
            val_mirrored = infer(model, x_val, cfg.eval_batch_size, tta=True)
            val_tta = evaluate_logits(val_mirrored, y_val)["test_accuracy"]
    metrics = {
        "test_accuracy": test["test_accuracy"],
        "test_loss": test["test_loss"],
        "val_accuracy": best["val_acc"],
        "val_loss": best["val_loss"],
        "best_epoch": best["epoch"],
        "epochs": len(history),
        "stopped_early": stop and len(history) < cfg.epochs,
        "all_data": cfg.all_data,
        **({"test_accuracy_tta": tta_accuracy} if cfg.tta else {}),
        **({"val_accuracy_tta": val_tta} if cfg.tta and len(x_val) else {}),
        "train_s": round(train_s, 2),
        "parameters": trainable,
        "non_trainable": stats,
        "device": str(device),
        "per_class": test["per_class"],
        "confusion_matrix": test["confusion_matrix"],
    }
    headline = {k: v for k, v in metrics.items() if k not in ("per_class", "confusion_matrix")}
    save_model(model, run_dir / "model.safetensors", metrics=headline)
    write_json(run_dir / "metrics.json", metrics)
    # a finished run is its model and records; the training state served only to resume
    (run_dir / CHECKPOINT).unlink(missing_ok=True)
    log(
        f"test accuracy {metrics['test_accuracy']:.2%} (loss {metrics['test_loss']:.4f}) "
        + (f"({tta_accuracy:.2%} with the mirror image) " if cfg.tta else "")
        + f"with the weights of epoch {best['epoch']}; trained {train_s:.1f}s"
    )
    distributed.barrier(ctx)
    return RunResult(run_dir, model, asked, history, metrics)
