"""Ladder records combined: a long rung's seeds run apart (on different days, or a few at a
time) and merged into one record, refused unless they were measured alike on one machine."""

from __future__ import annotations

from collections import Counter

from fmnist.analysis.ladder import RUNGS, rung_value, summary
from fmnist.errors import FmnistError
from fmnist.files import NUMBER, check_fields, is_number

# what must be equal for two records' seeds to be counted together
SAME_MACHINE = (
    "cpu",
    "cpu_count",
    "cpu_capability",
    "native_bf16",
    "torch_threads",
    "torch",
    "isa_pins",
    "cuda",
)
SAME_RUNG = ("recipe", "recipe_settings", "model", "epochs", "batch_size", "precision", "tta")
_RECORD = {
    "date": str,
    "device": str,
    "machine": dict,
    "settings": dict,
    "rungs": list,
    "compare?": list,
}
_MACHINE = {
    "cpu": str,
    "cpu_capability": str,
    "native_bf16": bool,
    "torch_threads": int,
    "torch": str,
    "isa_pins?": dict,
}
_RUNG = {
    "rung": str,
    "recipe": str,
    "model": str,
    "parameters": int,
    "mflop_per_image": NUMBER,
    "epochs": int,
    "precision": str,
    "tta": bool,
    "seed_values": list,
    "test_accuracy": dict,
    "train_s": dict,
    "images_per_s_values": list,
}
_COMPARE = {
    "recipe": str,
    "epochs_run": int,
    "finished": bool,
    "curve": list,
    "first_reach_s": dict,
}


class MergeError(FmnistError):
    pass


def merge(records: list[tuple[str, dict]]) -> dict:
    """One ladder record from several `(name, record)` of the same machine, device, settings
    and recipes whose seeds differ (a long rung's seeds run on different days): each rung's
    figures over all its seeds; today's recipes beside them as the first record has them."""
    if len(records) < 2:
        raise MergeError("--merge needs two or more ladder records")
    first_name, first = records[0]
    rungs: dict[str, dict] = {}
    for name, record in records:
        check_same_measurement(name, record, first_name, first)
        for rung in record["rungs"]:
            add_rung_runs(rungs, name, rung)
    for i, c in enumerate(first.get("compare", [])):
        check_compare(f"{first_name}, compare {i}", c)
    merged = []
    for rung, seen in rungs.items():
        runs = sorted(seen["runs"])
        twice = [seed for seed, n in Counter(r[0] for r in runs).items() if n > 1]
        if twice:
            raise MergeError(f"rung {rung}: seed {min(twice)} appears more than once")
        fields = {k: v for k, v in seen["rung"].items() if k not in _SUMMARY_FIELDS}
        figures = [list(column) for column in zip(*runs, strict=True)]
        merged.append({**fields, **summary(rung, *figures)})
    return {
        "date": max(r["date"] for _, r in records),
        "device": first["device"],
        "machine": first["machine"],
        "data_load_s": None,
        "settings": first["settings"],
        "rungs": sorted(merged, key=lambda r: rung_value(r["rung"])),
        "compare": first.get("compare", []),
        "calibration": first.get("calibration"),
        "merged_from": [{"record": name, "date": r["date"]} for name, r in records],
    }


def check_same_measurement(name: str, record: dict, first_name: str, first: dict) -> None:
    """A record that has the ladder's shape, measured as the first was: same device and
    settings, same machine."""
    check_fields(record, _RECORD, name, MergeError)
    check_fields(record["machine"], _MACHINE, f"{name}, machine", MergeError)
    for key in ("device", "settings"):
        if record[key] != first[key]:
            raise MergeError(
                f"{name}: {key} {record[key]!r:.60} differs from {first_name}'s {first[key]!r:.60}"
            )
    for key in SAME_MACHINE:
        mine, theirs = record["machine"].get(key), first["machine"].get(key)
        if mine != theirs:
            raise MergeError(
                f"{name}: measured on another machine ({key} {mine!r:.60}, {first_name}: "
                f"{theirs!r:.60}); timings of different machines do not combine"
            )


def add_rung_runs(rungs: dict[str, dict], name: str, rung: dict) -> None:
    """Check one record's rung and add its (seed, accuracy, time, images/s) runs to those
    of the same rung seen so far."""
    where = f"{name}, rung {rung.get('rung')!r:.40}" if isinstance(rung, dict) else name
    check_fields(rung, _RUNG, where, MergeError)
    if rung["rung"] not in RUNGS:
        raise MergeError(f"{where}: unknown rung; rungs: {', '.join(RUNGS)}")
    seen = rungs.setdefault(rung["rung"], {"rung": rung, "runs": [], "from": name})
    for key in SAME_RUNG:
        if rung.get(key) != seen["rung"].get(key):
            raise MergeError(
                f"{where}: {key} differs from {seen['from']}'s; only runs of one recipe combine"
            )
    values = (
        rung["seed_values"],
        rung["test_accuracy"].get("values"),
        rung["train_s"].get("values"),
        rung["images_per_s_values"],
    )
    if any(not isinstance(v, list) or len(v) != len(values[0]) for v in values):
        raise MergeError(f"{where}: the per-seed lists differ in length")
    if not values[0]:
        raise MergeError(f"{where}: no seeds")
    seeds, accuracies, times, rates = values
    if not all(type(x) is int and 0 <= x <= 2**31 for x in seeds):
        raise MergeError(f"{where}: seeds must be whole numbers from 0 to 2**31")
    if not all(is_number(x) and 0 <= x <= 1 for x in accuracies):
        raise MergeError(f"{where}: test accuracies must be from 0 to 1")
    if not all(is_number(x) and 0 < x < 1e9 for x in times + rates):
        raise MergeError(f"{where}: times and images/s must be positive numbers")
    seen["runs"].extend(zip(*values, strict=True))


def check_compare(where: str, c: dict) -> None:
    """Today's recipe beside the rungs, as the first record has it: a curve of numbers."""
    check_fields(c, _COMPARE, where, MergeError)
    points = c["first_reach_s"].values()
    curve_ok = all(
        isinstance(p, list) and len(p) == 2 and all(is_number(x) for x in p) for p in c["curve"]
    )
    if not curve_ok or not all(p is None or is_number(p) for p in points):
        raise MergeError(f"{where}: curve and first_reach_s must hold numbers")


_SUMMARY_FIELDS = set(summary("90%", [0], [0.9], [1.0], [1.0]))
