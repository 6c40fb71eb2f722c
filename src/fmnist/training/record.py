"""What a checkpoint's record must hold, checked before a resumed run starts.

A checkpoint (see `fmnist.training.resume`) is a file a user can copy, edit or damage: its
record and tensors are checked here, each key against one schema, and then against the
run its settings build, so a bad one is refused in one line naming the key, before the
first step, never part-way through training or as a finished model of NaN weights.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass

import torch

from fmnist.checkpoint import CheckpointError
from fmnist.models.user import is_user_spec
from fmnist.training.config import COUNTS
from fmnist.training.hard import steps_through
from fmnist.training.rundir import HISTORY_FIELDS

NUMBER = "a finite number"  # an int or a finite float, never a bool


@dataclass(frozen=True)
class Key:
    """A key's kinds (NUMBER, int, bool, list, dict or None for null) and numeric range."""

    kinds: tuple
    low: float | None = None
    high: float | None = None
    optional: bool = False


# The record resume.save writes, key by key
RECORD = {
    "epoch": Key((int,), 1, COUNTS["epochs"]),  # the last epoch finished
    "stop": Key((bool,)),
    "world_size": Key((int,), 1, 2**16),
    "train_s": Key((NUMBER,), 0),
    "history": Key((list,)),  # one row per epoch, HISTORY_FIELDS each
    "best": Key((dict,)),  # BEST
    "optimizer": Key((dict,)),  # OPTIMIZER
    "scheduler": Key((dict, None)),
    "ema_steps": Key((int, None), 0),
    "config": Key((dict,), optional=True),  # the settings it ran (not in older checkpoints)
}
BEST = {
    "score": Key((NUMBER,)),
    "val_loss": Key((NUMBER, None), 0),
    "val_acc": Key((NUMBER, None), 0, 1),
    "epoch": Key((int,), 1),
}
OPTIMIZER = {"param_groups": Key((list,)), "state": Key((dict,))}
# the scheduler's keys that move with each step; the others follow from the settings
MOVING = {
    "last_epoch": Key((int,), -1),
    "_step_count": Key((int,), 0),
    "_last_lr": Key((list,)),
}


def _fits(value, kind) -> bool:
    if kind is None:
        return value is None
    if kind == NUMBER:
        if isinstance(value, float):
            return math.isfinite(value)
        kind = int
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)


def _name(kind) -> str:
    names = {int: "a whole number", bool: "true or false", list: "a list", dict: "an object"}
    return "null" if kind is None else names.get(kind, kind)


def check_keys(obj, schema: dict, where: str, prefix: str = "") -> None:
    """Refuse `obj` unless each key of `schema` is there (or optional) with a value of its
    kinds and range; the message names the key."""
    if not isinstance(obj, dict):
        raise CheckpointError(f"{where}: {prefix.rstrip('.') or 'the record'} must be an object")
    for name, key in schema.items():
        if name not in obj:
            if key.optional:
                continue
            raise CheckpointError(f"{where}: key {prefix + name!r} is missing")
        value = obj[name]
        ok = any(_fits(value, k) for k in key.kinds)
        if ok and isinstance(value, (int, float)) and not isinstance(value, bool):
            ok = (key.low is None or value >= key.low) and (key.high is None or value <= key.high)
        if not ok:
            span = f" from {key.low} to {key.high}" if key.high is not None else ""
            span = span or (f" of at least {key.low}" if key.low is not None else "")
            kinds = " or ".join(_name(k) for k in key.kinds)
            raise CheckpointError(
                f"{where}: key {prefix + name!r} must be {kinds}{span}, got {value!r:.40}"
            )


def check_record(record, where: str) -> None:
    """The record's keys, kinds and ranges, and that its parts agree (a history row per
    epoch, the best epoch among them)."""
    check_keys(record, RECORD, where)
    epoch = record["epoch"]
    check_keys(record["best"], {**BEST, "epoch": Key((int,), 1, epoch)}, where, "best.")
    check_keys(record["optimizer"], OPTIMIZER, where, "optimizer.")
    history = record["history"]
    if len(history) != epoch:
        raise CheckpointError(
            f"{where}: key 'history' must hold one row per epoch ({epoch}), got {len(history)}"
        )
    rows = {f: Key((NUMBER, None)) for f in HISTORY_FIELDS}
    for i, row in enumerate(history):
        check_keys(row, {**rows, "epoch": Key((int,), i + 1, i + 1)}, where, f"history[{i}].")
        extra = sorted(set(row) - set(HISTORY_FIELDS))
        if extra:
            raise CheckpointError(f"{where}: key 'history[{i}]' has unknown field {extra[0]!r}")
    groups = record["optimizer"]["param_groups"]
    if not groups or not all(isinstance(g, dict) for g in groups):
        raise CheckpointError(f"{where}: key 'optimizer.param_groups' must be a list of objects")


def check_tensors(tensors: dict, where: str) -> None:
    """Every floating tensor finite: NaN weights are never resumed, nor kept as a model."""
    for name, tensor in tensors.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise CheckpointError(f"{where}: tensor {name!r} holds NaN or infinite values")


def _plain(value):
    """A state dict's value as its JSON record holds it (tuples as lists)."""
    return json.loads(json.dumps(value))


def check_settings(recorded, settings: dict, where: str, *, machine_precision: bool) -> None:
    """The settings the checkpoint ran under, against the settings of this run: a setting
    edited in config.json since would break the schedule or the data part-way through.
    `machine_precision`: precision was left to the machine, which may differ now."""
    if recorded is None:
        return  # an older checkpoint: its scheduler and optimizer are compared instead
    for name, value in settings.items():
        was = recorded.get(name, value)
        if name == "precision" and machine_precision or name == "device":
            continue
        if name == "model" and is_user_spec(value) and is_user_spec(was):
            # the class; its code is named again on resume and its SHA-256 checked apart
            value, was = value.rpartition(":")[2], was.rpartition(":")[2]
        if _plain(was) != _plain(value):
            raise CheckpointError(
                f"{where}: the checkpoint ran with {name} {was!r:.40}, config.json now says "
                f"{value!r:.40}; a run continues only with the settings it started with"
            )


def check_fit(tensors: dict, record: dict, where: str, *, run, asked) -> None:
    """The record and tensors against the run its settings built (`run`, a
    fmnist.training.build.Run, before any step; `asked`, its settings as config.json holds
    them): settings, scheduler, optimizer, weight average and best weights alike."""
    cfg = run.cfg
    check_settings(
        record.get("config"),
        dataclasses.asdict(cfg),
        where,
        machine_precision=asked.precision == "auto",
    )
    if record["epoch"] > cfg.epochs:
        raise CheckpointError(
            f"{where}: key 'epoch' is {record['epoch']}, past the run's {cfg.epochs} epochs"
        )
    # the steps so far: the schedule and the weight average move once per step
    steps = steps_through(cfg, len(run.data.x_train), record["epoch"], run.ctx.world)
    if record["ema_steps"] != (None if run.ema is None else steps):
        raise CheckpointError(
            f"{where}: key 'ema_steps' must be {'null' if run.ema is None else steps} for this "
            f"run's settings (ema {cfg.ema}), got {record['ema_steps']!r:.40}"
        )
    check_scheduler(record["scheduler"], run.scheduler, steps, where)
    check_optimizer(record["optimizer"], tensors, run.optimizer, where)
    check_best(tensors, run.judged, where)
    if run.hard is not None:
        check_losses(tensors.get("hard.losses"), len(run.hard.losses), where)


def check_losses(saved, n: int, where: str) -> None:
    """Each training image's last loss, where the run's later epochs take the hardest."""
    if saved is None or saved.dtype != torch.float32 or tuple(saved.shape) != (n,):
        raise CheckpointError(
            f"{where}: tensor 'hard.losses' must hold the last loss of each of the run's "
            f"{n:,} training images (float32), for its hard-example epochs"
        )


def check_scheduler(saved, scheduler, steps: int, where: str) -> None:
    """The learning-rate schedule's state: the one these settings make, `steps` along."""
    if saved is None or scheduler is None:
        if (saved is None) != (scheduler is None):
            has = "a schedule" if saved is not None else "none"
            raise CheckpointError(
                f"{where}: key 'scheduler': the checkpoint has {has}, this run's settings "
                f"{'none' if scheduler is None else 'one'}"
            )
        return
    check_keys(saved, MOVING, where, "scheduler.")
    fresh = _plain(scheduler.state_dict())
    for name, value in fresh.items():
        if name not in MOVING and name in saved and _plain(saved[name]) != value:
            raise CheckpointError(
                f"{where}: key 'scheduler.{name}' is {saved[name]!r:.40}, this run's settings "
                f"give {value!r:.40}"
            )
    if saved["last_epoch"] != steps:
        raise CheckpointError(
            f"{where}: key 'scheduler.last_epoch' must be {steps}, the steps of the epochs "
            f"so far, got {saved['last_epoch']!r}"
        )
    lrs = saved["_last_lr"]
    if len(lrs) != len(fresh["_last_lr"]) or not all(_fits(v, NUMBER) and v >= 0 for v in lrs):
        raise CheckpointError(f"{where}: key 'scheduler._last_lr' must be a rate per group")


def check_optimizer(saved: dict, tensors: dict, optimizer, where: str) -> None:
    """The optimizer's groups as these settings make them (their rate aside), and its
    moments each of its parameter's shape."""
    fresh = _plain(optimizer.state_dict()["param_groups"])
    groups = saved["param_groups"]
    if len(groups) != len(fresh):
        raise CheckpointError(
            f"{where}: key 'optimizer.param_groups' holds {len(groups)} groups, this run's "
            f"settings make {len(fresh)}"
        )
    for i, (group, want) in enumerate(zip(groups, fresh, strict=True)):
        for name, value in want.items():
            key = f"optimizer.param_groups[{i}].{name}"
            if name not in group:
                raise CheckpointError(f"{where}: key {key!r} is missing")
            if name == "lr" and not (_fits(group[name], NUMBER) and group[name] >= 0):
                raise CheckpointError(f"{where}: key {key!r} must be a finite rate of at least 0")
            if name != "lr" and _plain(group[name]) != value:
                raise CheckpointError(
                    f"{where}: key {key!r} is {group[name]!r:.40}, this run's settings give "
                    f"{value!r:.40}"
                )
    params = [p for g in optimizer.param_groups for p in g["params"]]
    for pid, entries in saved["state"].items():
        if not (pid.isdigit() and int(pid) < len(params)) or not isinstance(entries, dict):
            raise CheckpointError(f"{where}: key 'optimizer.state.{pid:.20}' names no parameter")
        if not all(_fits(v, NUMBER) for v in entries.values()):
            raise CheckpointError(f"{where}: key 'optimizer.state.{pid}' must hold numbers")
    check_moments(tensors, params, where)


def check_moments(tensors: dict, params: list, where: str) -> None:
    """Each tensor optimizer.<parameter>.<name>: a parameter's, floating, of its shape (or a
    single number, as a step count); every parameter with state has the same names."""
    names: dict[int, set] = {}
    for key, tensor in tensors.items():
        if not key.startswith("optimizer."):
            continue
        pid, _, name = key.removeprefix("optimizer.").partition(".")
        if not (pid.isdigit() and int(pid) < len(params) and name):
            raise CheckpointError(f"{where}: tensor {key!r:.60} names no parameter")
        shape = params[int(pid)].shape
        if not tensor.is_floating_point() or tensor.shape not in (shape, torch.Size([])):
            raise CheckpointError(
                f"{where}: tensor {key!r} is {tensor.dtype} {tuple(tensor.shape)}; its "
                f"parameter is {tuple(shape)}"
            )
        names.setdefault(int(pid), set()).add(name)
    if len({frozenset(n) for n in names.values()}) > 1:
        raise CheckpointError(
            f"{where}: the optimizer's tensors differ from one parameter to another"
        )


def check_best(tensors: dict, judged, where: str) -> None:
    """The best weights so far (best.*): the kept model's every tensor, name, shape, dtype."""
    want = judged.state_dict()
    best = {k.removeprefix("best."): v for k, v in tensors.items() if k.startswith("best.")}
    odd = sorted(set(want) - set(best)) or sorted(set(best) - set(want))
    if odd:
        how = "missing" if odd[0] in want else "not the model's"
        raise CheckpointError(f"{where}: tensor 'best.{odd[0]:.60}' is {how}")
    for name, tensor in best.items():
        if tensor.shape != want[name].shape or tensor.dtype != want[name].dtype:
            raise CheckpointError(
                f"{where}: tensor 'best.{name}' is {tensor.dtype} {tuple(tensor.shape)}, the "
                f"model's {want[name].dtype} {tuple(want[name].shape)}"
            )
