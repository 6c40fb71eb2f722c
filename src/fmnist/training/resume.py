"""What an end-of-epoch checkpoint holds, and how a run continues from it.

A resumed run must end where the uninterrupted one would, to the last digit on the same
device, so the checkpoint keeps every piece of state the next epoch reads: the weights
and BatchNorm averages, the optimizer's moments and step counts, the schedule's position,
the weight average (EMA), the best weights so far, the history, and each random
generator: batch order, augmentation and the global one that draws dropout masks (one of
the last two per process under torchrun). The data split is recomputed from the seed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from fmnist.checkpoint import CheckpointError, load_state, save_state
from fmnist.errors import FmnistError
from fmnist.files import read_json
from fmnist.models.user import is_module_name, is_user_spec, parse_spec, read_source
from fmnist.training.config import TrainConfig, config_from_record
from fmnist.training.record import check_fit, check_record, check_tensors
from fmnist.training.rundir import CHECKPOINT


def _prefixed(prefix: str, state: dict) -> dict[str, torch.Tensor]:
    return {f"{prefix}.{k}": v for k, v in state.items()}


def _unprefixed(prefix: str, tensors: dict) -> dict[str, torch.Tensor]:
    cut = len(prefix) + 1
    return {k[cut:]: v for k, v in tensors.items() if k.startswith(prefix + ".")}


def _optimizer_parts(state: dict) -> tuple[dict, dict]:
    tensors, plain = {}, {}
    for pid, entries in state["state"].items():
        for name, value in entries.items():
            if torch.is_tensor(value):
                tensors[f"optimizer.{pid}.{name}"] = value
            else:
                plain.setdefault(str(pid), {})[name] = value
    return tensors, {"param_groups": state["param_groups"], "state": plain}


def _optimizer_state(tensors: dict, record: dict) -> dict:
    state: dict[int, dict] = {int(pid): dict(v) for pid, v in record["state"].items()}
    for key, value in _unprefixed("optimizer", tensors).items():
        pid, name = key.split(".", 1)
        state.setdefault(int(pid), {})[name] = value
    groups = [dict(g) for g in record["param_groups"]]
    for g in groups:  # JSON has no tuples; Adam's betas are one
        if "betas" in g:
            g["betas"] = tuple(g["betas"])
    return {"state": state, "param_groups": groups}


def save(
    run_dir: Path,
    *,
    epoch,
    model,
    optimizer,
    scheduler,
    ema,
    history,
    best,
    train_s,
    stop,
    world,
    order_generator,
    rank_states,
    hard=None,
    config=None,
):
    """Write the end-of-epoch state. `rank_states[r]` holds process r's generator states;
    `hard`, the images' last losses where later epochs take the hardest; `config`, the
    settings the loop ran (TrainConfig's fields), so that a setting edited in config.json
    since is refused on resume rather than breaking the schedule part-way."""
    tensors = _prefixed("model", model.state_dict())
    opt_tensors, opt_record = _optimizer_parts(optimizer.state_dict())
    tensors.update(opt_tensors)
    if ema is not None:
        tensors.update(_prefixed("ema", ema.model.state_dict()))
    if best["state"] is not None:
        tensors.update(_prefixed("best", best["state"]))
    tensors["rng.order"] = order_generator.get_state()
    if hard is not None:
        tensors["hard.losses"] = hard.losses
    for r, states in enumerate(rank_states):
        tensors.update(_prefixed(f"rng.{r}", states))
    record = {
        "epoch": epoch,
        "stop": stop,  # early stopping had decided to end the run after this epoch
        "world_size": world,
        "train_s": train_s,
        "history": history,
        "best": {k: v for k, v in best.items() if k != "state"},
        "optimizer": opt_record,
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "ema_steps": ema.steps if ema is not None else None,
        **({"config": config} if config is not None else {}),
    }
    save_state(run_dir / CHECKPOINT, tensors, record)


def load(run_dir: Path, *, run=None, asked=None) -> tuple[dict, dict]:
    """The checkpoint's (tensors, record), each key of the record checked against its schema
    and every tensor finite (fmnist.training.record); with `run` (the Run its settings built,
    before any step) and `asked` (those settings), checked against that run too."""
    path = Path(run_dir) / CHECKPOINT
    if not path.is_file():
        raise FmnistError(
            f"{path}: no checkpoint; the run stopped before its first epoch ended, "
            "so start it again without --resume"
        )
    # what a killed atomic write left behind (see checkpoint.atomic_write)
    for stale in Path(run_dir).glob(".*.tmp"):
        stale.unlink(missing_ok=True)
    tensors, record = load_state(path)
    check_record(record, str(path))
    check_tensors(tensors, str(path))
    if run is not None:
        check_fit(tensors, record, str(path), run=run, asked=asked)
    return tensors, record


def match_layouts(optimizer) -> None:
    """Give each moment its parameter's memory layout (NHWC under channels_last): the
    checkpoint holds them dense, and the fused optimizer walks parameter and moments as
    flat memory side by side."""
    for group in optimizer.param_groups:
        for p in group["params"]:
            for name, value in optimizer.state.get(p, {}).items():
                if torch.is_tensor(value) and value.shape == p.shape:
                    optimizer.state[p][name] = torch.empty_like(p).copy_(value)


def restore(
    tensors: dict,
    record: dict,
    *,
    model,
    optimizer,
    scheduler,
    ema,
    world,
    rank,
    order_generator,
    rank_generators,
    hard=None,
):
    """Put a checkpoint's state back; returns (epoch, history, best, train_s, stop)."""
    if record["world_size"] != world:
        raise FmnistError(
            f"the checkpoint was written by {record['world_size']} process(es); resume with "
            f"the same number (this is {world})"
        )
    try:
        model.load_state_dict(_unprefixed("model", tensors))
        optimizer.load_state_dict(_optimizer_state(tensors, record["optimizer"]))
        match_layouts(optimizer)
        if scheduler is not None:
            scheduler.load_state_dict(record["scheduler"])
        if ema is not None:
            ema.model.load_state_dict(_unprefixed("ema", tensors))
            ema.steps = record["ema_steps"]
        order_generator.set_state(tensors["rng.order"])
        mine = _unprefixed(f"rng.{rank}", tensors)
        for name, generator in rank_generators.items():
            generator.set_state(mine[name])
        if hard is not None:
            hard.losses.copy_(tensors["hard.losses"])
    except (KeyError, RuntimeError, ValueError, TypeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"checkpoint does not fit this run ({first})") from None
    best = dict(record["best"])
    state = _unprefixed("best", tensors)
    best["state"] = state or None
    return record["epoch"], record["history"], best, record["train_s"], record["stop"]


def resume_config(run_dir: str | os.PathLike, model_code=None) -> TrainConfig:
    """The settings an unfinished run directory was started with; a run of the user's own
    code continues from the code named again in `model_code` (its SHA-256 the recorded one),
    never from the path its record holds."""
    run_dir = Path(run_dir)
    path = run_dir / "config.json"
    if (run_dir / "metrics.json").exists():
        raise FmnistError(f"{run_dir}: this run has finished; nothing to resume")
    record = read_json(
        path, "run record", missing="no such file; give the directory of a run to resume"
    )
    settings = record.get("config") if isinstance(record, dict) else None
    if isinstance(settings, dict) and is_user_spec(settings.get("model")):
        code = named_code(settings["model"], record.get("user_model"), model_code, run_dir)
        settings = {**settings, "model": code}
    elif model_code is not None:
        raise FmnistError(f"--model-code: {run_dir} trains no model of your own code; drop it")
    return config_from_record(settings, path)


def named_code(spec: str, user, model_code, run_dir: Path) -> str:
    """The spec to resume with: the class recorded, from the code the user names."""
    source, name = parse_spec(spec)
    if model_code is None:
        path = user.get("path") if isinstance(user, dict) else None
        give = source if is_module_name(source) or not isinstance(path, str) else path
        raise FmnistError(
            f"{run_dir}: a run of your own code ({name}); fmnist imports no code a record "
            f"names: give it again with --model-code {give}"
        )
    recorded = user.get("sha256") if isinstance(user, dict) else None
    if read_source(str(model_code)).sha256 != recorded:
        raise FmnistError(
            f"--model-code {model_code}: its SHA-256 differs from the code {run_dir} started "
            "with; a run continues only with the code it started with"
        )
    return f"{model_code}:{name}"


def check_same_data(run_dir: Path, dataset) -> None:
    try:
        recorded = json.loads((run_dir / "config.json").read_text())["data"]["sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        return
    if recorded != dataset.sha256:
        raise FmnistError(
            f"{run_dir}: the run was started on other data (checksums differ); "
            "resume it with the data it started with (--data-dir)"
        )
