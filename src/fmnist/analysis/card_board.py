"""Where a card stands: the packaged recipes measured on the same machine, from the ladder's
records, from other cards, or re-run beside it (`fmnist card --compare`).

"The same machine" is the same GPU, or the same CPU model string, capability (the kernels
PyTorch runs: AVX2 where a run was held to it) and thread count. Rows from another machine
are shown and marked as such; the card's place counts only rows of its own machine measured
with the same settings (a smoke run's reduced epochs or images rank with its like alone).
"""

from __future__ import annotations

from pathlib import Path

from fmnist.analysis.card import CARD_FORMAT, CardError
from fmnist.files import NUMBER, check_fields, is_number, read_json

ROOT = Path(__file__).resolve().parents[3]  # the checkout, where the package runs from one
DEFAULT_BOARD = (ROOT / "benchmarks" / "results", ROOT / "benchmarks" / "cards", Path("cards"))

FIGURE = {"mean": NUMBER, "std": NUMBER}
LADDER = {"device": str, "machine": dict, "rungs": list, "date?": str, "settings?": dict}
RUNG = {"rung": str, "recipe": str, "model": str, "seeds": int, "test_accuracy": dict,
        "train_s": dict, "parameters": int, "mflop_per_image": NUMBER,
        "images_per_s?": NUMBER}  # fmt: skip
CARD = {"format": str, "name": str, "model": str, "recipe": str, "device": str, "date": str,
        "machine": dict, "protocol": dict, "test_accuracy": dict, "train_s": dict,
        "parameters": int, "mflop_per_image": NUMBER}  # fmt: skip


def machine_of(env: dict | None, device: str) -> dict:
    """What "the same machine" compares: the GPU, or the CPU model, its capability (AVX2,
    AVX512, AVX512 with native bfloat16) and the thread count."""
    env = env or {}
    if str(device).startswith("cuda"):
        return {"gpu": env.get("cuda")}
    capability = env.get("cpu_capability")
    if capability and env.get("native_bf16"):
        capability += " with native BF16"
    return {"cpu": env.get("cpu"), "cpu_capability": capability,
            "torch_threads": env.get("torch_threads")}  # fmt: skip


def machine_label(machine: dict) -> str:
    if "gpu" in machine:
        return machine["gpu"] or "a GPU, name not recorded"
    threads = machine.get("torch_threads")
    threads = f"{threads} thread{'s' * (threads != 1)}" if threads else "threads not recorded"
    return f"{machine.get('cpu') or '?'}, {machine.get('cpu_capability') or '?'}, {threads}"


def role_of(record: dict, rung: str) -> str:
    """A ladder record's role for one rung (benchmarks/results/README.md); none: current."""
    role = record.get("role", "current")
    return role.get(rung, "superseded") if isinstance(role, dict) else role


def read_card(path) -> dict:
    """A card.json, its fields checked."""
    obj = read_json(path, "card", error=CardError)
    where = str(path)
    if not isinstance(obj, dict) or obj.get("format") != CARD_FORMAT:
        raise CardError(f"{where}: not a card (a JSON object with format {CARD_FORMAT!r})")
    check_fields(obj, {**CARD, "test_accuracy_plain?": dict}, where, CardError)
    for key in ("test_accuracy", "test_accuracy_plain", "train_s"):
        if key in obj:
            figure = check_fields(obj[key], {**FIGURE, "median?": NUMBER, "values": list},
                                  f"{where}: {key}", CardError)  # fmt: skip
            if not figure["values"] or not all(map(is_number, figure["values"])):
                raise CardError(f"{where}: {key}.values must be a list of numbers")
    check_fields(obj["train_s"], {"median": NUMBER}, f"{where}: train_s", CardError)
    check_fields(obj["protocol"], {"seeds": int, "reduced?": dict}, where, CardError)
    return obj


def card_row(card: dict, record: str | None, kind: str = "card") -> dict:
    rate = card.get("training_images_per_s")
    machine = machine_of(card["machine"], card["device"])
    return {
        "name": card["name"],
        "model": card["model"],
        "recipe": card["recipe"],
        "kind": kind,
        "seeds": card["protocol"]["seeds"],
        "test_accuracy": {k: card["test_accuracy"][k] for k in ("mean", "std")},
        "train_s": card["train_s"]["median"],
        "images_per_s": rate.get("median") if isinstance(rate, dict) else None,
        "parameters": card["parameters"],
        "mflop_per_image": card["mflop_per_image"],
        "machine": machine,
        "machine_label": machine_label(machine),
        "reduced": card["protocol"].get("reduced") or {},
        "date": card["date"][:10],
        "record": record,
    }


def ladder_rows(path: Path, record: dict) -> list[dict]:
    """A ladder record's current rungs, as rows."""
    where = str(path)
    check_fields(record, LADDER, where, CardError)
    machine = machine_of(record["machine"], record["device"])
    rows = []
    for i, rung in enumerate(record["rungs"]):
        check_fields(rung, RUNG, f"{where}: rungs[{i}]", CardError)
        check_fields(rung["test_accuracy"], FIGURE, f"{where}: rungs[{i}]", CardError)
        check_fields(rung["train_s"], {"median": NUMBER}, f"{where}: rungs[{i}]", CardError)
        if role_of(record, rung["rung"]) != "current":
            continue
        rows.append({
            "name": f"{rung['recipe']} ({rung['rung']} rung)", "model": rung["model"],
            "recipe": rung["recipe"], "kind": "ladder record", "seeds": rung["seeds"],
            "test_accuracy": {k: rung["test_accuracy"][k] for k in ("mean", "std")},
            "train_s": rung["train_s"]["median"], "images_per_s": rung.get("images_per_s"),
            "parameters": rung["parameters"], "mflop_per_image": rung["mflop_per_image"],
            "machine": machine, "machine_label": machine_label(machine),
            "reduced": record.get("settings") or {}, "date": record.get("date", "")[:10],
            "record": str(path),
        })  # fmt: skip
    return rows


def card_files(folder: Path) -> list[Path]:
    found = {*folder.glob("*card*.json"), *folder.glob("*/card.json")}
    return sorted(p for p in found if p.is_file())


def read_board(folders=None) -> list[dict]:
    """Rows from every ladder record (`*-ladder-*.json`) and card (`card.json`, `*card*.json`,
    `*/card.json`) in `folders` (default: the checkout's benchmarks/results and
    benchmarks/cards, and ./cards, those that exist); a record that is not one is refused."""
    if folders is None:
        folders = [f for f in DEFAULT_BOARD if f.is_dir()]
    rows: list[dict] = []
    newest: dict[tuple, dict] = {}
    for folder in map(Path, folders):
        if not folder.is_dir():
            raise CardError(f"--board {folder}: no such folder")
        for path in sorted(folder.glob("*-ladder-*.json")):
            record = read_json(path, "ladder record", error=CardError)
            for row in ladder_rows(path, record):  # the newest current one per rung, machine
                key = (row["machine_label"], row["name"])
                if key not in newest or row["date"] >= newest[key]["date"]:
                    newest[key] = row
        rows += [card_row(read_card(p), str(p)) for p in card_files(folder)]
    return list(newest.values()) + rows


def leaderboard(card: dict, board: list[dict], compared: list[dict] = ()) -> list[dict]:
    """The card among `board` rows and re-runs beside it: its own machine first, each row
    marked with whether it is the same machine, and the place of each row that compares
    (same machine, same settings) by mean test accuracy."""
    me = card_row(card, None, "this card")
    rows = [me] + [card_row(c, None, "re-run beside it") for c in compared] + list(board)
    for row in rows:
        row["same_machine"] = row["machine"] == me["machine"]
        row["compares"] = row["same_machine"] and row["reduced"] == me["reduced"]
        row["this"] = row is me
    rows.sort(key=lambda r: (not r["compares"], not r["same_machine"], -r["test_accuracy"]["mean"]))
    place = 0
    for row in rows:
        row["place"] = (place := place + 1) if row["compares"] else None
    return rows
