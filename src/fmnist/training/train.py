"""A training run, in the order it happens: prepare the data, build the model, the optimizer
and its schedule, start (or resume), then for each epoch train, validate, choose and
checkpoint; finish with the test set, the metrics and the model file.

The whole dataset lives on the training device as one uint8 tensor; each batch is
indexed and converted there, so there are no loader processes. Model selection
(early stopping, the best epoch) looks at the validation split only; the test set is
evaluated once, at the end. Every epoch ends with a checkpoint from which
`train(..., resume_run=True)` continues exactly (see `fmnist.training.resume`); under
torchrun the processes share each batch (see `fmnist.training.distributed`).
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from fmnist import data
from fmnist.checkpoint import CheckpointError, save_model
from fmnist.errors import FmnistError
from fmnist.evaluate import evaluate_logits, infer
from fmnist.files import write_json
from fmnist.models import count_parameters
from fmnist.training import distributed, resume
from fmnist.training.build import (
    Run,
    build_run,
    check_user_model,
    describe,
    kernel_choice,
    prepare_data,
)
from fmnist.training.config import TrainConfig
from fmnist.training.epoch import Validation, train_epoch, validate
from fmnist.training.hard import epoch_images
from fmnist.training.rundir import (
    CHECKPOINT,
    Progress,
    run_directory,
    run_record,
    write_history,
)


@dataclass
class RunResult:
    run_dir: Path | None  # None in the processes of a torchrun run other than rank 0
    model: torch.nn.Module
    config: TrainConfig
    history: list
    metrics: dict


def train(
    cfg: TrainConfig,
    out: str | os.PathLike | None = None,
    *,
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
    check_user_model(cfg)  # before anything is made or read
    ctx, device = distributed.setup(cfg.device)
    if ctx.rank != 0:
        log, on_epoch = (lambda *a: None), None
    try:
        with run_directory(cfg, out, ctx=ctx, resume_run=resume_run) as run_dir, kernel_choice(cfg):
            # prepare the data: the verified files, the seeded split
            if dataset is None:
                dataset = data.load(data_dir, download=download)
            split = prepare_data(cfg, dataset, device)
            # build the model, its optimizer and schedule
            run = build_run(
                cfg, split, ctx=ctx, device=device, run_dir=run_dir, log=log, fresh=not resume_run
            )
            describe(run, cfg, dataset)
            # start, or resume from the last checkpoint
            state = start_or_resume(run, cfg, dataset, resume_run=resume_run)
            # each epoch: train, validate, choose the weights to keep, checkpoint
            for epoch in range(state.epoch + 1, cfg.epochs + 1):
                if state.stop:
                    break
                figures = train_pass(run, epoch)
                val = validate_pass(run, figures)
                choose(run, state, figures, val)
                save_checkpoint(run, state, on_epoch)
            # finish: the kept weights on the test set, once; metrics and model files
            return finish(run, state, cfg, dataset)
    finally:
        distributed.teardown(ctx)


# ----------------------------------------------------------------------------
# Start or resume
# ----------------------------------------------------------------------------


@dataclass
class RunState:
    """What changes from epoch to epoch; each checkpoint keeps all of it."""

    epoch: int = 0  # the last epoch finished
    history: list[dict] = field(default_factory=list)  # one row per epoch (history.csv)
    # the chosen epoch so far: its selection score, validation figures and weights
    best: dict = field(default_factory=lambda: {"score": None, "epoch": 0, "state": None})
    train_s: float = 0.0  # training and validation seconds so far
    stop: bool = False  # early stopping has ended the run


def start_or_resume(run: Run, asked: TrainConfig, dataset, *, resume_run: bool) -> RunState:
    """A fresh state with config.json written, or the state of the last checkpoint."""
    if not resume_run:
        if run.lead:
            record = run_record(
                asked,
                dataset,
                run.data.train_idx,
                run.data.val_idx,
                processes=run.ctx.world,
                used=run.used,
                user_model=getattr(run.model, "fmnist_user", None),
            )
            write_json(run.run_dir / "config.json", record)
        return RunState()
    tensors, record = resume.load(run.run_dir, run=run, asked=asked)
    epoch, history, best, train_s, stop = resume.restore(
        tensors,
        record,
        model=run.model,
        optimizer=run.optimizer,
        scheduler=run.scheduler,
        ema=run.ema,
        world=run.ctx.world,
        rank=run.ctx.rank,
        order_generator=run.order_generator,
        rank_generators=run.rank_generators,
        hard=run.hard,
    )
    resume.check_same_data(run.run_dir, dataset)
    run.log(f"resumed {run.run_dir} after epoch {epoch}")
    return RunState(epoch=epoch, history=history, best=best, train_s=train_s, stop=stop)


# ----------------------------------------------------------------------------
# Each epoch: train, validate, choose, checkpoint
# ----------------------------------------------------------------------------


@dataclass
class EpochFigures:
    epoch: int
    lr: float  # the learning rate at the epoch's first step
    train_loss: float
    train_acc: float
    started: float  # perf_counter() at its start (earlier by any data init it includes)
    fit_s: float  # seconds of the training pass
    images: int  # training images the pass took (fewer in hard-example epochs)


def train_pass(run: Run, epoch: int) -> EpochFigures:
    """One pass over the training images; stops the run if the loss is no longer finite."""
    cfg = run.cfg
    started = time.perf_counter() - run.init_s  # the first epoch's time includes the data init
    run.init_s = 0.0
    lr = run.optimizer.param_groups[0]["lr"]
    images = epoch_images(cfg, len(run.data.x_train), epoch)
    progress = Progress(images, f"epoch {epoch:>2}/{cfg.epochs}") if run.lead else None
    loss, accuracy = train_epoch(
        run.net,
        run.optimizer,
        run.data.x_train,
        run.data.y_train,
        cfg,
        generator=run.order_generator,
        aug_generator=run.rank_generators["augment"],
        scheduler=run.scheduler,
        ema=run.ema,
        progress=progress,
        ctx=run.ctx,
        stepper=run.stepper,
        hard=run.hard,
        epoch=epoch,
    )
    if progress is not None:
        progress.close()
    if not math.isfinite(loss):
        raise diverged(epoch, loss, run.run_dir)
    if run.device.type == "cuda":
        torch.cuda.synchronize()
    fit_s = time.perf_counter() - started
    return EpochFigures(epoch, lr, loss, accuracy, started, fit_s, images)


def validate_pass(run: Run, figures: EpochFigures) -> Validation | None:
    """The validation split's figures for the weights that would be kept (rank 0 only)."""
    if not run.lead:
        return None
    val = validate(
        run.judged,
        run.data.x_val,
        run.data.y_val,
        batch_size=run.cfg.eval_batch_size,
        precision=run.cfg.precision,
    )
    if val is not None and not val.finite:
        raise diverged(figures.epoch, val.loss, run.run_dir)
    return val


def choose(run: Run, state: RunState, figures: EpochFigures, val: Validation | None) -> None:
    """Record the epoch, keep its weights if the selection rule prefers them, and decide on
    early stopping (all processes agree)."""
    cfg = run.cfg
    state.epoch = figures.epoch
    if run.lead:
        epoch_s = time.perf_counter() - figures.started
        state.train_s += epoch_s
        row = history_row(figures, val, epoch_s, figures.images)
        state.history.append(row)
        if cfg.select == "val_loss":
            score = -val.loss
        elif cfg.select == "val_acc":
            score = val.accuracy
        else:  # the last epoch
            score = figures.epoch
        improved = state.best["score"] is None or score > state.best["score"]
        if improved:
            state.best = {
                "score": score,
                "val_loss": None if val is None else val.loss,
                "val_acc": None if val is None else val.accuracy,
                "epoch": figures.epoch,
                "state": {k: v.detach().clone() for k, v in run.judged.state_dict().items()},
            }
        run.log(epoch_line(cfg, row, val, improved))
        state.stop = bool(cfg.patience) and figures.epoch - state.best["epoch"] >= cfg.patience
    state.stop = distributed.agree(state.stop, run.ctx, run.device)
    if state.stop:
        run.log(f"early stop: no better {cfg.select} for {cfg.patience} epochs")


def history_row(figures: EpochFigures, val: Validation | None, epoch_s: float, n: int) -> dict:
    return {
        "epoch": figures.epoch,
        "train_loss": round(figures.train_loss, 6),
        "train_acc": round(figures.train_acc, 6),
        "val_loss": None if val is None else round(val.loss, 6),
        "val_acc": None if val is None else round(val.accuracy, 6),
        "lr": figures.lr,
        "epoch_s": round(epoch_s, 3),
        "images_per_s": round(n / figures.fit_s, 1),
    }


def epoch_line(cfg: TrainConfig, row: dict, val: Validation | None, improved: bool) -> str:
    shown = f"  val loss {val.loss:.4f} acc {val.accuracy:.2%}" if val is not None else ""
    return (
        f"epoch {row['epoch']:>2}/{cfg.epochs}  train loss {row['train_loss']:.4f} acc "
        f"{row['train_acc']:.2%}{shown}  {row['epoch_s']:.1f}s  {row['images_per_s']:,.0f} img/s"
        + ("  *" if improved and val is not None else "")
    )


def save_checkpoint(run: Run, state: RunState, on_epoch=None) -> None:
    """The end-of-epoch checkpoint (every process's generators, written by rank 0), the
    history, and the caller's hook."""
    rank_states = distributed.gather_states(
        {k: g.get_state() for k, g in run.rank_generators.items()}, run.ctx, run.device
    )
    if run.lead:
        epoch = state.epoch
        try:
            resume.save(
                run.run_dir,
                epoch=epoch,
                model=run.model,
                optimizer=run.optimizer,
                scheduler=run.scheduler,
                ema=run.ema,
                history=state.history,
                best=state.best,
                train_s=state.train_s,
                stop=state.stop,
                world=run.ctx.world,
                order_generator=run.order_generator,
                rank_states=rank_states,
                hard=run.hard,
                config=dataclasses.asdict(run.cfg),
            )
        except CheckpointError as e:
            then = (
                f"the checkpoint of epoch {epoch - 1} is intact: fix that, then run "
                f"fmnist train --resume {run.run_dir}"
                if epoch > 1
                else "fix that and start the run again"
            )
            raise CheckpointError(f"{e}; {then}") from None
        write_history(run.run_dir / "history.csv", state.history)
        if on_epoch is not None:
            on_epoch(epoch, run.judged, state.train_s, state.history[-1])


def diverged(epoch: int, loss: float, run_dir: Path | None) -> FmnistError:
    kept = (
        f"{run_dir / CHECKPOINT if run_dir else 'the checkpoint'} keeps epoch {epoch - 1}"
        if epoch > 1
        else "no checkpoint was written"
    )
    return FmnistError(
        f"training diverged at epoch {epoch} (loss {loss}); {kept}; "
        "start a new run with a lower --lr"
    )


# ----------------------------------------------------------------------------
# Finish: test, metrics, files
# ----------------------------------------------------------------------------


def finish(run: Run, state: RunState, asked: TrainConfig, dataset) -> RunResult:
    """The chosen weights on the test set, once; the model file and metrics.json."""
    if not run.lead:
        # wait for rank 0's test evaluation: a process that leaves the group early can abort
        # gloo's pending work in the others
        distributed.barrier(run.ctx)
        return RunResult(None, run.model, asked, [], {})
    model = run.model
    model.load_state_dict(state.best["state"])
    metrics = test_metrics(run, state, dataset)
    headline = {k: v for k, v in metrics.items() if k not in ("per_class", "confusion_matrix")}
    try:
        save_model(model, run.run_dir / "model.safetensors", metrics=headline)
        write_json(run.run_dir / "metrics.json", metrics)
    except BaseException:
        # all or nothing (a full disk, a kill): the run stays one to resume from its checkpoint
        for name in ("model.safetensors", "model.json", "metrics.json"):
            (run.run_dir / name).unlink(missing_ok=True)
        raise
    # a finished run is its model and records; the training state served only to resume
    (run.run_dir / CHECKPOINT).unlink(missing_ok=True)
    mirrored = metrics.get("test_accuracy_tta")
    run.log(
        f"test accuracy {metrics['test_accuracy']:.2%} (loss {metrics['test_loss']:.4f}) "
        + (f"({mirrored:.2%} with the mirror image) " if mirrored is not None else "")
        + f"with the weights of epoch {state.best['epoch']}; trained {state.train_s:.1f}s"
    )
    distributed.barrier(run.ctx)
    return RunResult(run.run_dir, model, asked, state.history, metrics)


def test_metrics(run: Run, state: RunState, dataset) -> dict:
    """metrics.json: the test figures of the chosen weights beside their validation figures."""
    cfg, model, best = run.cfg, run.model, state.best
    batch = cfg.eval_batch_size
    test = evaluate_logits(infer(model, dataset.test_images, batch), dataset.test_labels)
    tta = {}
    if cfg.tta:
        mirrored = infer(model, dataset.test_images, batch, tta=True)
        tta["test_accuracy_tta"] = evaluate_logits(mirrored, dataset.test_labels)["test_accuracy"]
        # where a recipe decides on the mirror image: on validation
        val_tta = validate(model, run.data.x_val, run.data.y_val, batch_size=batch, tta=True)
        if val_tta is not None:
            tta["val_accuracy_tta"] = val_tta.accuracy
    trainable, stats = count_parameters(model)
    return {
        "test_accuracy": test["test_accuracy"],
        "test_loss": test["test_loss"],
        "val_accuracy": best["val_acc"],
        "val_loss": best["val_loss"],
        "best_epoch": best["epoch"],
        "epochs": len(state.history),
        "stopped_early": state.stop and len(state.history) < cfg.epochs,
        "all_data": cfg.all_data,
        **tta,
        "train_s": round(state.train_s, 2),
        "parameters": trainable,
        "non_trainable": stats,
        "device": str(run.device),
        "per_class": test["per_class"],
        "confusion_matrix": test["confusion_matrix"],
    }
