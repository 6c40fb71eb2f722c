"""The results table, read from run records: sweeps' summary.json, run directories, model
descriptions and model cards (`fmnist card`'s card.json)."""

from __future__ import annotations

import dataclasses
import json
import math
import shlex
import statistics
from pathlib import Path

from fmnist.checkpoint import FORMAT
from fmnist.errors import FmnistError
from fmnist.files import NUMBER, check_fields, json_text, read_json
from fmnist.training.config import RECIPES, SETTING_FLAGS, TrainConfig, make_config


class ResultsError(FmnistError):
    pass


def command(config: dict, n: int = 1) -> str:
    """The `fmnist train` line that gives these settings: the recipe, then every flag whose
    value differs from the recipe's, each value quoted for a POSIX shell (a record's text
    is never a command of its own)."""
    recipe = config.get("recipe", "seed")
    # what the recipe gives, with what --all-data implies (select, patience) where it is set
    all_data = config.get("all_data") or None
    preset = dataclasses.asdict(
        make_config(recipe, all_data=all_data) if recipe in RECIPES else TrainConfig()
    )
    preset["all_data"] = RECIPES.get(recipe, {}).get("all_data", False)
    parts = ["fmnist train"] + ([f"--recipe {shlex.quote(recipe)}"] if recipe != "seed" else [])
    for field in SETTING_FLAGS:
        value = config.get(field, preset[field])
        if value == preset[field]:
            continue
        flag = "--" + field.replace("_", "-")
        if isinstance(value, bool):
            parts.append(flag)
        elif isinstance(value, float):
            parts.append(f"{flag} {value:g}")
        else:
            text = json.dumps(value) if isinstance(value, dict) else str(value)
            parts.append(f"{flag} {shlex.quote(text)}")
    if n > 1:
        parts.append(f"--seeds {n}")
    return " ".join(parts)


def machine(env: dict | None, device: str | None) -> str:
    if not env:
        return "-"
    if device and device.startswith("cuda") and env.get("cuda"):
        where = env["cuda"]
    else:
        where = f"{env.get('cpu', '?')}, {env.get('cpu_count', '?')} cores"
    return f"{where}, torch {str(env.get('torch', '?')).split('+')[0]}"


def _figure(summary: dict, key: str) -> dict | None:
    """{mean, std, values} of a sweep's figure, or None when its runs did not record it."""
    fig = summary.get(key)
    return fig if isinstance(fig, dict) and "mean" in fig else None


def read(path: str | Path) -> dict:
    """One table row from a sweep's summary.json, a run directory (or its metrics.json),
    a model description such as models/fashion_mnist_model.json, or a model card (its
    card.json or its folder)."""
    path = Path(path)
    if path.is_dir():
        kinds = ("summary.json", "card.json", "metrics.json")
        path = path / next((k for k in kinds if (path / k).is_file()), "metrics.json")
    obj = read_json(path, "results record", missing="no such record", error=ResultsError)
    if not isinstance(obj, dict):
        raise ResultsError(f"{path}: not a results record")
    where = str(path)
    if "format" in obj and str(obj["format"]).startswith("fmnist-card/"):
        return card_row(path)
    if "n" in obj and _figure(obj, "test_accuracy"):  # a sweep's summary.json
        _check_summary(obj, where)
        test, tta = _figure(obj, "test_accuracy"), _figure(obj, "test_accuracy_tta")
        return {
            "config": _checked_config(obj.get("config", {}), where),
            "n": obj["n"],
            "test": test["values"],
            "tta": tta["values"] if tta else None,
            "train_s": obj["train_s"]["mean"],
            "parameters": obj.get("parameters"),
            "machine": machine(obj.get("environment"), obj.get("device")),
        }
    if "metrics" in obj and ("record" in obj or obj.get("format") == FORMAT):  # a model's
        check_fields(obj, {"metrics": dict, "record?": dict, "model?": str}, where, ResultsError)
        metrics, record = obj["metrics"], obj.get("record")
        where += ": metrics"
    elif "test_accuracy" in obj and (path.parent / "config.json").is_file():  # metrics.json
        metrics = obj
        record = read_json(path.parent / "config.json", "run record", error=ResultsError)
        check_fields(record, {}, str(path.parent / "config.json"), ResultsError)
    else:
        raise ResultsError(f"{path}: not a sweep summary, a run directory or a model description")
    check_fields(metrics, METRICS, where, ResultsError)
    row = {
        "n": 1,
        "test": [metrics["test_accuracy"]],
        "tta": [metrics["test_accuracy_tta"]] if "test_accuracy_tta" in metrics else None,
        "train_s": metrics["train_s"],
        "parameters": metrics.get("parameters"),
    }
    if record is None:  # a packaged model's description (weights/best.json): no run record
        return {**row, "config": {"model": obj.get("model", "?")}, "machine": "-", "command": "-"}
    where = where.replace(": metrics", ": record")
    check_fields(record, RECORD, where, ResultsError)
    return {
        **row,
        "config": _checked_config(record.get("config", {}), where),
        "machine": machine(record.get("environment"), metrics.get("device")),
    }


def card_row(path: Path) -> dict:
    """A model card's row: its seeds' figures (the recipe's figure in the TTA column where
    the recipe includes the mirror image), and the `fmnist card` line that made it."""
    from fmnist.analysis.card import CardError
    from fmnist.analysis.card_board import read_card

    try:
        card = read_card(path)
    except CardError as e:
        raise ResultsError(str(e)) from None
    plain = card.get("test_accuracy_plain") or card["test_accuracy"]
    return {
        "config": card.get("config") or {"model": card["model"], "recipe": card["recipe"]},
        "n": card["protocol"]["seeds"],
        "test": plain["values"],
        "tta": card["test_accuracy"]["values"] if card.get("tta") else None,
        "train_s": card["train_s"]["mean"],
        "parameters": card["parameters"],
        "machine": machine(card["machine"], card["device"]),
        "command": card.get("command"),
    }


# the fields a row needs, by kind (see fmnist.files.check_fields)
METRICS = {"test_accuracy": NUMBER, "test_accuracy_tta?": NUMBER, "train_s": NUMBER,
           "parameters?": (int, None), "device?": (str, None)}  # fmt: skip
RECORD = {"config?": dict, "environment?": (dict, None)}
# a record's settings, by the kind of their defaults; settings this version lacks are ignored
CONFIG = {f"{f.name}?": NUMBER if f.type in ("float", float) else
          {"int": int, "bool": bool, "str": str, "dict": dict}.get(str(f.type), object)
          for f in dataclasses.fields(TrainConfig)}  # fmt: skip


def _checked_config(config: dict, where: str) -> dict:
    """A record's settings, each of its kind: a table row prints them into a command."""
    check_fields(config, CONFIG, f"{where}: config", ResultsError)
    try:
        json_text(config.get("model_args", {}))
    except FmnistError as e:
        raise ResultsError(f"{where}: config: model_args: {e}") from None
    return config


FIGURE = {"mean": NUMBER, "values": list}


def _check_summary(obj: dict, where: str) -> None:
    check_fields(obj, {"n": int, "train_s": dict, "parameters?": (int, None), **RECORD},
                 where, ResultsError)  # fmt: skip
    check_fields(obj["train_s"], {"mean": NUMBER}, f"{where}: train_s", ResultsError)
    for key in ("test_accuracy", "test_accuracy_tta"):
        if _figure(obj, key):
            check_fields(obj[key], FIGURE, f"{where}: {key}", ResultsError)
            values = obj[key]["values"]
            if not values or not all(_is_number(v) for v in values):
                raise ResultsError(f"{where}: {key}.values must be a list of numbers")


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def parameters(model: str | None) -> int | None:
    """Trainable parameters of a registered model (for records that predate the field)."""
    from fmnist.models import count_parameters, create_model, list_models

    return count_parameters(create_model(model))[0] if model in list_models() else None


def accuracy(values: list[float] | None) -> str:
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.2%}"
    mean, std = statistics.mean(values), statistics.stdev(values)
    each = ", ".join(f"{100 * v:.2f}" for v in values)
    return f"{mean:.2%} ± {std:.2%} ({len(values)} seeds: {each})"


def table(rows: list[dict]) -> str:
    """A Markdown table: model, parameters, recipe, test accuracy (mean ± sample std over
    seeds), with flip test-time augmentation, training time per run, machine, command."""
    lines = [
        "| model | parameters | recipe | test accuracy | with flip TTA | training time "
        "| machine | command |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        cfg = r["config"]
        params = r["parameters"] or parameters(cfg.get("model"))
        cells = [
            f"`{cfg.get('model', '?')}`",
            f"{params:,}" if params else "-",
            f"`{cfg.get('recipe', '?')}`" + (" (all 60,000)" if cfg.get("all_data") else ""),
            accuracy(r["test"]),
            accuracy(r["tta"]),
            f"{r['train_s']:,.0f} s" + (" each" if r["n"] > 1 else ""),
            r["machine"],
            f"`{r.get('command') or command(cfg, r['n'])}`",
        ]
        lines.append("| " + " | ".join(map(_cell, cells)) + " |")
    return "\n".join(lines)


def _cell(text: str) -> str:
    """One Markdown table cell, whatever a record's text holds: one line, its pipes
    escaped."""
    return " ".join(str(text).split()).replace("|", "\\|")
