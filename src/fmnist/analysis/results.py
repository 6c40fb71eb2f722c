"""The results table, read from run records: sweeps' summary.json, run directories, model
descriptions and model cards (`fmnist card`'s card.json)."""

from __future__ import annotations

import dataclasses
import math
import statistics
from pathlib import Path

from fmnist.errors import FmnistError
from fmnist.files import NUMBER, check_fields, read_json
from fmnist.training.config import RECIPES, SETTING_FLAGS, TrainConfig, make_config


class ResultsError(FmnistError):
    pass


def command(config: dict, n: int = 1) -> str:
    """The `fmnist train` line that gives these settings: the recipe, then every flag whose
    value differs from the recipe's."""
    recipe = config.get("recipe", "seed")
    # what the recipe gives, with what --all-data implies (select, patience) where it is set
    all_data = config.get("all_data") or None
    preset = dataclasses.asdict(
        make_config(recipe, all_data=all_data) if recipe in RECIPES else TrainConfig()
    )
    preset["all_data"] = RECIPES.get(recipe, {}).get("all_data", False)
    parts = ["fmnist train"] + ([f"--recipe {recipe}"] if recipe != "seed" else [])
    for field in SETTING_FLAGS:
        value = config.get(field, preset[field])
        if value == preset[field]:
            continue
        flag = "--" + field.replace("_", "-")
        if isinstance(value, bool):
            parts.append(flag)
        else:
            parts.append(f"{flag} {value:g}" if isinstance(value, float) else f"{flag} {value}")
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
            "config": obj.get("config", {}),
            "n": obj["n"],
            "test": test["values"],
            "tta": tta["values"] if tta else None,
            "train_s": obj["train_s"]["mean"],
            "parameters": obj.get("parameters"),
            "machine": machine(obj.get("environment"), obj.get("device")),
        }
    if "metrics" in obj and "record" in obj:  # a model description
        check_fields(obj, {"metrics": dict, "record": dict}, where, ResultsError)
        metrics, record = obj["metrics"], obj["record"]
        where += ": metrics"
    elif "test_accuracy" in obj and (path.parent / "config.json").is_file():  # metrics.json
        metrics = obj
        record = read_json(path.parent / "config.json", "run record", error=ResultsError)
        check_fields(record, {}, str(path.parent / "config.json"), ResultsError)
    else:
        raise ResultsError(f"{path}: not a sweep summary, a run directory or a model description")
    check_fields(metrics, METRICS, where, ResultsError)
    check_fields(record, RECORD, where.replace(": metrics", ": record"), ResultsError)
    return {
        "config": record.get("config", {}),
        "n": 1,
        "test": [metrics["test_accuracy"]],
        "tta": [metrics["test_accuracy_tta"]] if "test_accuracy_tta" in metrics else None,
        "train_s": metrics["train_s"],
        "parameters": metrics.get("parameters"),
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
        params = f"{params:,}" if params else "-"
        lines.append(
            f"| `{cfg.get('model', '?')}` | {params} | `{cfg.get('recipe', '?')}`"
            + (" (all 60,000)" if cfg.get("all_data") else "")
            + f" | {accuracy(r['test'])} | {accuracy(r['tta'])} | {r['train_s']:,.0f} s"
            + (" each" if r["n"] > 1 else "")
            + f" | {r['machine']} | `{r.get('command') or command(cfg, r['n'])}` |"
        )
    return "\n".join(lines)
