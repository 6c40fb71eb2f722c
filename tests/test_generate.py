"""docs/generate.py on the committed records: every table row names its machine and date,
two current records of one rung and machine are refused, the tables follow the records,
and the ladder chart is drawn. Fast: it reads records and trains nothing."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = {
    "headline.md",
    "recipes.md",
    "ladder.md",
    "models.md",
    "audit-effect.md",
    "robustness.md",
    "speed.md",
    "all-runs.md",
}
DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def _import_generate():
    # docs/ is no package: load the script by its path, as `python docs/generate.py` runs it
    spec = importlib.util.spec_from_file_location("docs_generate", ROOT / "docs" / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


generate = _import_generate()


@pytest.fixture(scope="module")
def written(tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("docs")
    return {p.name: p for p in generate.write_all(out)}


@pytest.fixture
def records(tmp_path) -> Path:
    """A copy of the records folder to change."""
    return Path(shutil.copytree(generate.RESULTS, tmp_path / "results"))


def tables(text: str) -> list[tuple[list[str], list[list[str]]]]:
    """(header cells, rows of cells) of each Markdown table in `text`."""

    def cells(line: str) -> list[str]:
        return [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]

    found, lines = [], text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("|---") and i > 0 and lines[i - 1].startswith("|"):
            rows = []
            for row in lines[i + 1 :]:
                if not row.startswith("|"):
                    break
                rows.append(cells(row))
            found.append((cells(lines[i - 1]), rows))
    return found


def reference_rung(results_dir: Path, rung: str = "90%") -> tuple[str, dict]:
    """(file name, rung) of the current record of `rung` on the 2-core AVX2 reference."""
    name, _, entry = generate.reference_ladder(generate.current_rungs(results_dir))[rung]
    return name, entry


def test_write_all_writes_every_page_and_the_chart(written):
    assert set(written) == PAGES | {"ladder.png"}
    for name in PAGES:
        assert tables(written[name].read_text()), f"{name} holds no table"


def test_every_row_names_its_machine_and_date(written):
    # recipes.md lists the code's presets, not measurements
    texts = {name: written[name].read_text() for name in PAGES - {"recipes.md"}}
    texts["headline_table()"] = generate.headline_table()
    for name, text in texts.items():
        for head, rows in tables(text):
            assert "machine" in head and "date" in head, f"{name}: a table without them: {head}"
            machine, date = head.index("machine"), head.index("date")
            assert rows, f"{name}: an empty table {head}"
            for row in rows:
                assert len(row) == len(head), f"{name}: {row}"
                assert row[machine] not in ("", "-"), f"{name}: no machine in {row}"
                assert DAY.match(row[date]) or row[date] == "not stated", f"{name}: {row}"


def test_headline_table_quotes_the_tutorial_and_shows_both_machines():
    table = generate.headline_table()
    head, rows = tables(table)[0]
    assert '"89%" (the tutorial\'s claim)' in rows[0]
    assert '"about 10 minutes" (the tutorial\'s claim)' in rows[0]
    default = json.loads((generate.WEIGHTS / "default.json").read_text())
    assert f"{default['metrics']['test_accuracy']:.2%}" in rows[1][2]
    labels = [row[0] for row in rows[2:]]
    assert "90% rung, 2-core AVX2 CPU" in labels and "94% rung, one GPU" in labels
    assert all("fmnist bench --ladder" in row[head.index("command")] for row in rows[2:])


def test_a_second_current_record_for_one_rung_and_machine_is_refused(records, tmp_path):
    generate.check_records(records)  # the committed roles agree
    name, _ = reference_rung(records)
    planted = json.loads((records / name).read_text())
    planted["role"], planted["date"] = "current", "2099-01-01T00:00:00+00:00"
    (records / "2099-01-01-ladder-planted-cpu-avx2.json").write_text(json.dumps(planted))
    with pytest.raises(generate.RecordsError, match=re.escape(name)) as refused:
        generate.check_records(records)
    assert "2099-01-01-ladder-planted-cpu-avx2.json" in str(refused.value)
    with pytest.raises(generate.RecordsError):
        generate.write_all(tmp_path / "out", records)
    planted["role"] = "ablation"  # marked as what it is, it stands beside the current one
    (records / "2099-01-01-ladder-planted-cpu-avx2.json").write_text(json.dumps(planted))
    generate.check_records(records)


def test_an_unknown_role_is_refused(records):
    name, _ = reference_rung(records)
    record = json.loads((records / name).read_text())
    (records / name).write_text(json.dumps({**record, "role": "best"}))
    with pytest.raises(generate.RecordsError, match="none of current, ablation, superseded"):
        generate.check_records(records)


def test_the_tables_follow_the_records(records):
    name, entry = reference_rung(records)
    before = f"{entry['test_accuracy']['mean']:.2%}"
    assert before in generate.ladder_markdown(records)
    assert before in generate.headline_table(records)
    record = json.loads((records / name).read_text())
    changed = next(r for r in record["rungs"] if r["rung"] == "90%")
    changed["test_accuracy"]["mean"] = 0.91234  # a figure no record holds
    (records / name).write_text(json.dumps(record))
    assert "91.23%" not in generate.ladder_markdown()
    assert "91.23%" in generate.ladder_markdown(records)
    assert "91.23%" in generate.headline_table(records)


def side_by_side_table(page: str, name: str):
    """The side-by-side table of the record `name`: its header and its rows."""
    return next(t for t in tables(page) if "before" in t[0] and any(f"`{name}`" in r for r in t[1]))


def test_the_side_by_side_table_follows_its_record(records):
    name = next(
        p.name
        for p in sorted(records.glob("*.json"))
        if generate.is_side_by_side(json.loads(p.read_text()))
    )
    record = json.loads((records / name).read_text())
    record.pop("role", None)
    record["rungs"][0]["ratio"], record["rungs"][0]["new"]["holds"] = 0.4321, False
    (records / name).write_text(json.dumps(record))
    head, rows = side_by_side_table(generate.ladder_markdown(records), name)
    row = next(r for r in rows if r[head.index("rung")] == record["rungs"][0]["rung"])
    assert row[head.index("time, after ÷ before")] == "0.43x"
    assert "**does not hold**" in row[head.index("after")]
    assert record["rungs"][0]["old"]["commit"][:7] in row[head.index("before")]
    assert row[head.index("record")] == f"`{name}`"
    # once a newer measurement supersedes one rung, that row leaves the page; all: the table
    first, *others = [r["rung"] for r in record["rungs"]]
    roles = {first: "superseded", **{rung: "current" for rung in others}}
    (records / name).write_text(json.dumps({**record, "role": roles}))
    head, rows = side_by_side_table(generate.ladder_markdown(records), name)
    assert first not in [r[head.index("rung")] for r in rows]
    # an ablation stays, marked as one
    (records / name).write_text(json.dumps({**record, "role": {**roles, first: "ablation"}}))
    head, rows = side_by_side_table(generate.ladder_markdown(records), name)
    assert f"{first} (ablation)" in [r[head.index("rung")] for r in rows]
    (records / name).write_text(json.dumps({**record, "role": "superseded"}))
    assert f"`{name}`" not in generate.ladder_markdown(records)


def test_the_ladder_chart_is_a_png_with_something_drawn(written):
    from matplotlib.image import imread

    png = written["ladder.png"]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pixels = imread(png)[..., :3]
    assert pixels.shape[0] > 300 and pixels.shape[1] > 500
    drawn = (pixels < 0.9).any(axis=-1).mean()  # the share of pixels that are not white
    assert drawn > 0.02 and pixels.std() > 0.05


def test_main_prints_the_headline_and_refuses_bad_records_in_one_line(records, capsys):
    assert generate.main(["--headline"]) == 0
    assert capsys.readouterr().out.startswith("|  | model and recipe |")
    name, _ = reference_rung(records)
    (records / name).write_text("{not json")
    assert generate.main(["--headline", "--results", str(records)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and name in err


def test_the_readme_shows_the_headline_table_the_records_give():
    readme = (ROOT / "README.md").read_text()
    assert generate.readme_with_headline(readme, generate.headline_table()) == readme, (
        "README.md's headline table differs from the records: python docs/generate.py --readme"
    )


def test_the_readme_block_is_replaced_whole(tmp_path):
    text = "intro\n<!-- headline:start -->\nold | table\n<!-- headline:end -->\nafter\n"
    new = generate.readme_with_headline(text, "| new |\n")
    assert new == "intro\n<!-- headline:start -->\n| new |\n<!-- headline:end -->\nafter\n"
    with pytest.raises(generate.RecordsError, match="markers"):
        generate.readme_with_headline("no markers here", "| new |")
