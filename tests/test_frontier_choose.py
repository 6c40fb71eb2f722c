"""benchmarks/frontier/choose.py: the ladder's rule for picking a rung's recipe from
validation records, and the recipe file it writes running under the ladder."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fmnist.training.config import load_recipe, make_config

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "frontier" / "choose.py"


def row(name, epochs, val_tta, images_per_s, model="wide_cnn", batch=512):
    settings = {"recipe": "best", "model": model, "epochs": epochs, "batch_size": batch}
    return {"name": name, "settings": {**settings, "tta": True}, "val_accuracy": val_tta - 0.003,
            "val_accuracy_tta": val_tta, "images_per_s": images_per_s}  # fmt: skip


def test_the_fastest_candidate_clearing_the_rung_by_the_margin(tmp_path):
    rows = [
        # the alone-on-the-machine probe of wide_cnn at batch 512: 60,000 images/s
        row("gpu_a_e2", 2, 0.90, 60_000),
        # timed while sharing the machine: its own images/s is not used
        row("gpu_a_e10", 10, 0.9431, 10_000),
        row("gpu_a_e20", 20, 0.9450, 10_000),
        row("gpu_b_e8", 8, 0.9429, 90_000, model="wide_cnn64"),  # just under 94.3
        row("cpu_c_e5", 5, 0.99, 90_000),  # another prefix: not a candidate
        row("gpu_a_e3@s1", 3, 0.99, 90_000),  # a seed repeat: not a candidate
    ]
    records = tmp_path / "records.jsonl"
    records.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "chosen"
    res = subprocess.run(
        [sys.executable, str(SCRIPT), str(records), str(out), "--prefix", "gpu_",
         "--rungs", "94", "95"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    r94 = json.loads((out / "gpu94.json").read_text())
    assert r94["chosen_from"]["candidate"] == "gpu_a_e10"
    assert r94["chosen_from"]["cleared_rung_plus_margin"]
    assert r94["chosen_from"]["estimated_train_s_all_images"] == 10 * 60_000 / 60_000
    r95 = json.loads((out / "gpu95.json").read_text())
    # none clears 95.3: the best on validation, said so
    assert r95["chosen_from"]["candidate"] == "gpu_a_e20"
    assert not r95["chosen_from"]["cleared_rung_plus_margin"]
    assert "none cleared" in res.stdout
    # a recipe the ladder can run: the whole preset, no seed, no smoke settings
    name, settings = load_recipe(str(out / "gpu94.json"))
    cfg = make_config(str(out / "gpu94.json"), all_data=True)
    assert name == "gpu94" and cfg.model == "wide_cnn" and cfg.epochs == 10
    assert cfg.augment == "crop_flip_erase" and "seed" not in settings


@pytest.mark.slow
def test_a_size_of_explore_py_is_written_as_the_package_names_it(tmp_path):
    """explore.py's own sizes (sp16x32, qw64d2) are registered models under other names
    (speed_l, quick_wd64); the recipe file names those, so the ladder can run it; a size
    the package lacks (sp8x16b2: two blocks) keeps its name."""
    rows = [
        row("a_e10", 10, 0.9443, 229_000, model="sp16x32", batch=256),
        row("b_e10", 10, 0.9401, 300_000, model="qw64d2", batch=256),
        row("c_e10", 10, 0.9601, 100_000, model="sp8x16b2", batch=256),
    ]
    records = tmp_path / "records.jsonl"
    records.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "chosen"
    subprocess.run(
        [sys.executable, str(SCRIPT), str(records), str(out), "--rungs", "93", "94", "95"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    chosen = {r: json.loads((out / f"gpu{r}.json").read_text()) for r in (93, 94, 95)}
    assert {r: c["chosen_from"]["candidate"] for r, c in chosen.items()} == {
        93: "b_e10",
        94: "a_e10",
        95: "c_e10",
    }
    assert {r: c["settings"]["model"] for r, c in chosen.items()} == {
        93: "quick_wd64",
        94: "speed_l",
        95: "sp8x16b2",
    }
    assert make_config(str(out / "gpu94.json")).model == "speed_l"
