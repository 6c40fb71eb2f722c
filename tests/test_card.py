"""fmnist card: a model through the fair protocol, its record, its page in a browser, its
leaderboard among records of the same machine (and of others, marked), and bad input."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import statistics
from pathlib import Path

import pytest

from fmnist.analysis import card, card_board, card_html
from fmnist.analysis.ladder import RUNGS
from fmnist.corruptions import CORRUPTIONS
from fmnist.errors import FmnistError
from tests.hostile import assert_kept_promise, listing, write_file

from . import chromium

ROOT = Path(__file__).resolve().parents[1]
MLP = ROOT / "examples" / "mlp.py"
TINY = ["--epochs", "1", "--train-limit", "300", "--seeds", "2", "--test-limit", "200"]
HERE = {"cpu": "Planted CPU 9000", "cpu_capability": "AVX2", "torch_threads": 2, "cuda": None}


def figure(values: list[float]) -> dict:
    return card.spread(values)


def planted_card(name: str, accuracy: float, machine: dict = HERE, **more) -> dict:
    """A card record as fmnist card writes one, with the fields a leaderboard reads."""
    return {
        "format": card.CARD_FORMAT, "name": name, "model": name, "recipe": "tuned",
        "device": "cuda" if machine.get("cuda") else "cpu", "date": "2026-12-01T10:00:00+00:00",
        "machine": machine, "protocol": {"seeds": 2, "reduced": {}},
        "test_accuracy": figure([accuracy - 0.001, accuracy + 0.001]),
        "train_s": figure([10.0, 12.0]), "training_images_per_s": figure([5000.0, 5100.0]),
        "parameters": 1000, "mflop_per_image": 1.5, "tta": False,
        "command": f"fmnist card --model {name}", "ece": figure([0.02, 0.03]),
        "robustness": {"mean": 0.6, "inverted_image": 0.2}, "inference_images_per_s": 9000.0,
        "rungs": {r: {"median_s": 5.0 if r == "90%" else None} for r in RUNGS}, **more,
    }  # fmt: skip


def planted_ladder(machine: dict, date: str, rungs: list[tuple], role=None) -> dict:
    """A ladder record: (rung, recipe, mean accuracy) per rung."""
    record = {
        "date": date, "device": "cpu", "machine": machine, "settings": {},
        "rungs": [{"rung": r, "recipe": recipe, "model": "quick_wd", "seeds": 5,
                   "test_accuracy": {"mean": acc, "std": 0.001, "min": acc - 0.002},
                   "train_s": {"median": 40.0, "min": 39.0, "max": 41.0},
                   "parameters": 90000, "mflop_per_image": 5.67, "images_per_s": 4500.0}
                  for r, recipe, acc in rungs],
    }  # fmt: skip
    return {**record, "role": role} if role else record


# ----------------------------------------------------------------------------
# The protocol, without training
# ----------------------------------------------------------------------------


def test_fixed_schedules_train_on_all_images_and_others_choose_on_validation():
    ladder = card.make_plan(recipe="rung90")
    cfg = ladder.config(1)
    assert ladder.fixed and cfg.all_data and cfg.select == "last" and cfg.patience == 0
    assert (
        cfg.seed == 1
        and ladder.name == "rung90"
        and ladder.command == "fmnist card --recipe rung90"
    )
    mine = card.make_plan(f"{MLP}:MLP", seeds=2, epochs=1, model_args={"width": 32})
    cfg = mine.config(0)
    assert not mine.fixed and not cfg.all_data and cfg.select == "val_acc"  # tuned's choice
    assert cfg.recipe == card.MODEL_RECIPE and cfg.model_args == {"width": 32}
    assert mine.name == "MLP" and mine.reduced() == {"epochs": 1}
    assert "--model-args '{\"width\": 32}'" in mine.command and "--seeds 2" in mine.command
    both = card.make_plan("quick_w2", "rung92", test_limit=100)
    assert both.name == "quick_w2-rung92" and both.config(0).model == "quick_w2"
    assert both.reduced() == {"test_limit": 100}


def test_a_record_with_a_figure_that_is_not_finite_is_not_written(tmp_path):
    record = planted_card("x", 0.9)
    record["ece"] = {"mean": float("nan")}
    with pytest.raises(FmnistError, match="ece.mean"):
        card.write(tmp_path / "out", record, "<html></html>")
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------
# The leaderboard
# ----------------------------------------------------------------------------


def test_the_leaderboard_places_the_card_among_the_same_machine(tmp_path):
    board = tmp_path / "board"
    other_cpu = {**HERE, "cpu_capability": "AVX512"}  # the same CPU, other kernels: another
    bf16 = {**other_cpu, "native_bf16": True}  # and with native bfloat16, another still
    gpu = {"cpu": "host", "cpu_capability": "AVX512", "torch_threads": 16, "cuda": "Big GPU"}
    old = planted_ladder(HERE, "2026-11-01", [("92%", "rung92", 0.921)])
    rungs = [("90%", "rung90", 0.905), ("92%", "rung92", 0.926), ("93%", "rung93", 0.937)]
    roles = {"90%": "current", "92%": "current", "93%": "superseded"}
    new = planted_ladder(HERE, "2026-11-20", rungs, role=roles)
    write_file(board / "2026-11-01-ladder-cpu.json", json.dumps(old))
    write_file(board / "2026-11-20-ladder-cpu.json", json.dumps(new))
    write_file(
        board / "2026-11-21-ladder-cpu-avx512.json",
        json.dumps(planted_ladder(other_cpu, "2026-11-21", [("92%", "rung92", 0.93)])),
    )
    write_file(board / "gpu-card" / "card.json", json.dumps(planted_card("on_gpu", 0.95, gpu)))
    write_file(board / "bf16" / "card.json", json.dumps(planted_card("bf16", 0.94, bf16)))
    write_file(board / "smoke" / "card.json", json.dumps(
        planted_card("smoke", 0.99, protocol={"seeds": 2, "reduced": {"epochs": 1}})))  # fmt: skip
    mine = planted_card("mine", 0.915)
    rows = card_board.leaderboard(mine, card_board.read_board([board]))
    by = {(r["name"], r["machine_label"]): r for r in rows}
    here = "Planted CPU 9000, AVX2, 2 threads"
    # the same machine, the same settings: placed by mean accuracy
    assert [(r["name"], r["place"]) for r in rows if r["compares"]] == [
        ("rung92 (92% rung)", 1), ("mine", 2), ("rung90 (90% rung)", 3)]  # fmt: skip
    assert by["rung92 (92% rung)", here]["test_accuracy"]["mean"] == 0.926  # the newest only
    assert rows[1]["this"] and rows[1]["kind"] == "this card"
    assert not any(r["name"].startswith("rung93") for r in rows)  # superseded
    # a smoke run on this machine: the same machine, not ranked with the full protocol
    assert by["smoke", here]["same_machine"] and by["smoke", here]["place"] is None
    # another capability, native bfloat16, a GPU: other machines, shown and never placed
    for key in (
        ("rung92 (92% rung)", "Planted CPU 9000, AVX512, 2 threads"),
        ("bf16", "Planted CPU 9000, AVX512 with native BF16, 2 threads"),
        ("on_gpu", "Big GPU"),
    ):
        assert not by[key]["same_machine"] and by[key]["place"] is None
    html = {r["name"] + r["machine_label"]: card_html.board_row(r) for r in rows}
    assert "another machine" in html["on_gpuBig GPU"]
    assert "another machine" not in html["rung90 (90% rung)" + here]
    assert "other settings: epochs 1" in html["smoke" + here]


def test_a_garbled_record_on_the_board_is_refused_by_name(tmp_path):
    bad = planted_ladder(HERE, "2026-11-20", [("92%", "rung92", 0.926)])
    del bad["rungs"][0]["train_s"]
    write_file(tmp_path / "2026-11-20-ladder-cpu.json", json.dumps(bad))
    with pytest.raises(card.CardError, match=r"ladder-cpu.json: rungs\[0\]: field 'train_s'"):
        card_board.read_board([tmp_path])


def test_the_docs_results_pages_read_cards(tmp_path):
    spec = importlib.util.spec_from_file_location("docs_generate", ROOT / "docs" / "generate.py")
    generate = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(generate)
    cards = tmp_path / "cards"
    write_file(cards / "planted" / "card.json", json.dumps(planted_card("planted_net", 0.9)))
    models = generate.models_markdown(generate.RESULTS, generate.WEIGHTS, cards)
    rows = [ln for ln in models.splitlines() if "`planted_net`" in ln]
    assert len(rows) == 2 and all("Planted CPU 9000" in r and "2026-12-01" in r for r in rows)
    assert "## Model cards" in models and "90% 5.0" in rows[1] and "60.00% / 20.00%" in rows[1]
    assert all("`fmnist card --model planted_net`" in r for r in rows)
    runs = generate.all_runs_markdown(cards_dir=cards)
    assert "model card of `planted_net`, recipe `tuned`, 2 seeds" in runs
    assert "## Model cards" not in generate.models_markdown(cards_dir=tmp_path / "none")


# ----------------------------------------------------------------------------
# The command, end to end
# ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def made(cli, tmp_path_factory):
    """`fmnist card` on examples/mlp.py, tiny: 300 training images, 1 epoch, 2 seeds, 200 test
    images, with rung90 re-run beside it; its leaderboard reads a planted ladder record of
    another machine."""
    base = tmp_path_factory.mktemp("card")
    away = {**HERE, "cpu": "Elsewhere CPU"}
    write_file(
        base / "board" / "2026-11-20-ladder-cpu.json",
        json.dumps(planted_ladder(away, "2026-11-20", [("92%", "rung92", 0.926)])),
    )
    argv = ["card", "--model", f"{MLP}:MLP", *TINY, "--out", base / "card", "--board",
            base / "board", "--compare", "rung90", "--no-download"]  # fmt: skip
    result = cli(argv, cwd=base, timeout=300)
    assert result.rc == 0, result.stderr[-3000:]
    return base / "card", result


@pytest.mark.slow
def test_the_card_of_a_model_of_your_own(made):
    out, result = made

    def no_constants(name):
        raise AssertionError(f"{name} in card.json: not strict JSON")

    rec = json.loads((out / "card.json").read_text(), parse_constant=no_constants)
    assert rec["format"] == card.CARD_FORMAT and rec["name"] == "MLP"
    assert rec["user_model"]["sha256"] == hashlib.sha256(MLP.read_bytes()).hexdigest()
    reduced = {"epochs": 1, "train_limit": 300, "test_limit": 200}
    assert rec["protocol"] == {"seeds": 2, "selection": rec["config"]["select"],
                               "all_data": False, "n_train": 300, "reduced": reduced}  # fmt: skip
    acc = rec["test_accuracy"]
    assert rec["seed_values"] == [0, 1] and len(acc["values"]) == 2
    assert acc["mean"] == pytest.approx(statistics.mean(acc["values"]))
    assert acc["std"] == pytest.approx(statistics.stdev(acc["values"]))
    assert all(0.3 < v <= 1 for v in acc["values"])  # one short epoch that learned
    assert list(rec["rungs"]) == list(RUNGS) and len(rec["curves"]) == 2
    assert rec["robustness"]["images"] == 200 and list(rec["robustness"]["accuracy"]) == list(
        CORRUPTIONS
    )
    assert rec["robustness"]["inverted_image"] == rec["robustness"]["accuracy"]["inverse"]["5"]
    assert len(rec["ece"]["values"]) == 2 and 0 <= rec["ece"]["mean"] <= 1
    assert rec["parameters"] > 0 and rec["mflop_per_image"] > 0
    assert rec["training_images_per_s"]["median"] > 0 and rec["inference_images_per_s"] > 0
    assert rec["machine"]["cpu"] and rec["machine"]["torch_threads"] == 1  # OMP_NUM_THREADS=1
    assert rec["command"].startswith(f"fmnist card --model {MLP}:MLP --seeds 2 --epochs 1")
    ranked = [r for r in rec["leaderboard"] if r["compares"]]
    assert {r["kind"] for r in ranked} == {"this card", "re-run beside it"}
    means = [r["test_accuracy"]["mean"] for r in ranked]
    assert [r["place"] for r in ranked] == [1, 2] and means == sorted(means, reverse=True)
    (away,) = [r for r in rec["leaderboard"] if not r["same_machine"]]
    assert away["place"] is None and away["machine_label"].startswith("Elsewhere CPU")
    (rerun,) = rec["compare"]
    assert rerun["recipe"] == "rung90" and rerun["protocol"]["all_data"]  # a fixed schedule
    assert "MLP" in result.stdout and "card.html" in result.stdout


@pytest.mark.slow
def test_the_card_page_opens_with_its_images(made):
    if not Path(chromium.CHROMIUM).exists():
        pytest.skip(f"{chromium.CHROMIUM} is absent: install Debian's `chromium` package")
    browser = chromium.Chromium()
    try:
        seen = browser.open(made[0] / "card.html")
    finally:
        browser.close()
    assert seen["errors"] == [] and seen["broken"] == []
    keys = ["learning_curves", "confusion_matrix", "per_class", "robustness", "reliability"]
    assert seen["figures"] == [f"fig-{k}" for k in keys] and min(seen["widths"]) > 300
    assert seen["sections"][0] == "leaderboard" and "protocol" in seen["sections"]
    page = (made[0] / "card.html").read_text()
    assert "another machine" in page and "Elsewhere CPU" in page


@pytest.mark.slow
def test_fmnist_results_reads_the_card(cli, made):
    out = made[0]
    result = cli(["results", out, out / "card.json"], cwd=out)
    assert result.rc == 0, result.stderr
    rows = [ln for ln in result.stdout.splitlines() if "`fmnist card --model" in ln]
    assert len(rows) == 2 and "(2 seeds:" in rows[0]


# ----------------------------------------------------------------------------
# Bad input: one line, exit status 2, nothing left behind, before any data is read
# ----------------------------------------------------------------------------

BAD = [
    (["--model", "nosuch"], "unknown model"),
    (["--model", "seed_cnn", "--seeds", "0"], "--seeds must be 1 to"),
    (["--model", "seed_cnn", "--seeds", "1000000"], "--seeds must be 1 to"),
    (["--model", "seed_cnn", "--out", "/proc/card"], "cannot write"),
    (["--model", "seed_cnn", "--out", "{afile}"], "is a file, not a folder"),
    (["--model", "seed_cnn", "--out", "{done}"], "already holds a card"),
    ([], "give a model"),
    (["--recipe", "nosuch"], "unknown recipe"),
    (["--model", "seed_cnn", "--compare", "nosuch"], "--compare: unknown recipe"),
    (["--model", "seed_cnn", "--board", "{base}/missing"], "no such folder"),
    (["--model", "seed_cnn", "--board", "{garbled}"], "ladder-cpu.json: field 'device' is missing"),
    (["--model", f"{MLP}:MLP", "--model-args", "{{nope"], "not JSON"),
    (["--model", f"{MLP}:Nope"], "Nope"),
    (["--model", "seed_cnn", "--test-limit", "-1"], "--test-limit"),
]


@pytest.mark.parametrize(("args", "fragment"), BAD, ids=[" ".join(a)[:50] for a, _ in BAD])
def test_bad_input_is_one_line_and_exit_2(cli, tmp_path_factory, args, fragment):
    base = tmp_path_factory.mktemp("bad")
    garbled = write_file(base / "g" / "2026-01-01-ladder-cpu.json", "{}").parent
    names = {"base": base, "afile": write_file(base / "afile", "x"), "garbled": garbled,
             "done": write_file(base / "done" / "card.json", "{}").parent}  # fmt: skip
    here = base / "cwd"
    here.mkdir()
    before = listing(base)
    result = cli(["card", *[a.format(**names) for a in args]], cwd=here, timeout=60)
    assert_kept_promise(result, "card", here, set())
    assert result.rc == 2 and fragment in result.stderr, result.stderr
    assert listing(base) == before


def test_results_refuses_a_garbled_card(cli, tmp_path):
    bad = planted_card("x", 0.9)
    bad["test_accuracy"]["values"] = ["a", "b"]
    path = write_file(tmp_path / "card.json", json.dumps(bad))
    result = cli(["results", path], cwd=tmp_path)
    assert result.rc == 2 and "test_accuracy.values must be a list of numbers" in result.stderr
