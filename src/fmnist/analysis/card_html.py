"""The card's page: one HTML string, the report's style, figures as data URIs, and the
leaderboard with every row from another machine marked."""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import NamedTuple

from fmnist.analysis.card_board import machine_label, machine_of
from fmnist.analysis.report_html import CSS, card, figure_html, fmt, table
from fmnist.analysis.robustness import of_clean

EXTRA_CSS = """
tr.this td { background: #e8f1ff; font-weight: 600; }
tr.other td { color: var(--muted); }
td .tag { font-size: 12px; color: #a4580b; font-weight: 600; }
"""


class Figure(NamedTuple):
    key: str
    title: str
    caption: str
    png: bytes


def pct(value) -> str:
    return "-" if value is None else f"{value:.2%}"


def mean_std(fig: dict | None) -> str:
    return "-" if not fig else f"{fig['mean']:.2%} ± {fig['std']:.2%}"


def settings_text(reduced: dict) -> str:
    return ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in reduced.items())


def headline(rec: dict) -> str:
    n, rob = rec["protocol"]["seeds"], rec["robustness"]
    cards = [
        card(mean_std(rec["test_accuracy"]), f"test accuracy, mean ± std over {n} seeds"
             + (" (with the mirror image, as the recipe says)" if rec["tta"] else "")),
        card(f"{rec['parameters']:,}", "trainable parameters"),
        card(f"{rec['mflop_per_image']:g}", "MFLOP per image"),
        card(f"{rec['train_s']['median']:,.1f} s", "training time, median per seed"),
        card(f"{rec['training_images_per_s']['median']:,.0f}", "training images/s"),
        card(f"{rec['inference_images_per_s']:,.0f}", "inference images/s"),
        card(pct(rec["ece"]["mean"]), "expected calibration error"),
        card(pct(rob["mean"]), "mean accuracy under corruptions"),
        card(pct(rob["inverted_image"]), "accuracy on inverted images"),
    ]  # fmt: skip
    out = f'<div class="cards">{"".join(cards)}</div>'
    reduced = rec["protocol"].get("reduced")
    if reduced:
        out += (
            f'<p class="warn">A smaller run than the protocol\'s ({escape(settings_text(reduced))}'
            "): its figures compare only with runs made with the same settings.</p>"
        )
    return out


BOARD_HEAD = ["place", "model", "recipe", "measured by", "test accuracy", "seeds",
              "training s", "training images/s", "parameters", "MFLOP", "machine", "date",
              "record"]  # fmt: skip


def record_cell(record: str | None) -> str:
    """A record's file name (with its folder for a card.json), the whole path on hover."""
    if not record:
        return "-"
    path = Path(record)
    short = f"{path.parent.name}/{path.name}" if path.name == "card.json" else path.name
    return f'<code title="{escape(record)}">{escape(short)}</code>'


def board_row(row: dict) -> str:
    machine = escape(row["machine_label"])
    if not row["same_machine"]:
        machine = f'<span class="tag">another machine:</span> {machine}'
    elif not row["compares"]:
        other = settings_text(row["reduced"]) or "the full protocol"
        machine += f' <span class="tag">other settings: {escape(other)}</span>'
    cells = [
        str(row["place"]) if row["place"] else "-",
        f"<code>{escape(row['model'])}</code>",
        f"<code>{escape(row['recipe'])}</code>",
        escape(row["kind"]),
        escape(mean_std(row["test_accuracy"])),
        str(row["seeds"]),
        f"{row['train_s']:,.1f}",
        "-" if row["images_per_s"] is None else f"{row['images_per_s']:,.0f}",
        f"{row['parameters']:,}",
        f"{row['mflop_per_image']:g}",
        machine,
        escape(row["date"] or "-"),
        record_cell(row["record"]),
    ]
    kind = "this" if row["this"] else "" if row["same_machine"] else "other"
    tds = "".join(f'<td class="l">{c}</td>' if i in (1, 2, 3, 10, 12) else f"<td>{c}</td>"
                  for i, c in enumerate(cells))  # fmt: skip
    return f'<tr class="{kind}">{tds}</tr>'


def leaderboard_block(rec: dict) -> str:
    rows = rec.get("leaderboard", [])
    me = next((r for r in rows if r["this"]), None)
    ranked = sum(1 for r in rows if r["compares"])
    others = sum(1 for r in rows if not r["same_machine"])
    lead = (
        f"Place {me['place']} of {ranked} by mean test accuracy among the rows measured on "
        f"this machine ({escape(rec['machine_label'])}) with the same settings"
        if me and me["place"]
        else "No place: nothing else was measured here with the same settings"
    )
    lead += f"; {others} rows from other machines stand below, marked, for scale only."
    head = "".join(f"<th>{h}</th>" for h in BOARD_HEAD)
    body = "".join(board_row(r) for r in rows)
    return (
        '<section id="leaderboard"><h2>Leaderboard</h2>'
        f'<p class="lead">{lead}</p><table><tr>{head}</tr>{body}</table>'
        "<p>Rows come from the ladder's records (<code>fmnist bench --ladder</code>), other "
        "cards, and recipes re-run beside this one (<code>fmnist card --compare</code>). The "
        "same machine: the same CPU model, capability and thread count, or the same GPU.</p>"
        "</section>"
    )


def seeds_block(rec: dict) -> str:
    n = len(rec["seed_values"])
    val = rec.get("val_accuracy")
    rows = [
        [seed, pct(rec["test_accuracy"]["values"][i]),
         pct(rec["test_accuracy_plain"]["values"][i]),
         pct(val["values"][i]) if val else "- (all 60,000 images)",
         rec["epochs_run"][i], rec["best_epoch"][i], f"{rec['train_s']['values'][i]:,.1f}",
         pct(rec["ece"]["values"][i])]
        for i, seed in enumerate(rec["seed_values"])
    ]  # fmt: skip
    header = ["seed", "test accuracy", "without the mirror image", "validation accuracy",
              "epochs", "kept epoch", "training s", "ECE"]  # fmt: skip
    how = (
        "a fixed number of epochs: all 60,000 training images, the last weights"
        if rec["protocol"]["all_data"]
        else f"the epoch chosen on validation ({rec['protocol']['selection']})"
    )
    return (
        '<section id="seeds"><h2>Seeds</h2>'
        f'<p class="lead">{n} seeds, each trained with {escape(how)}, then evaluated on the '
        f"{rec['test_images']:,} test images once.</p>" + table(rows, header) + "</section>"
    )


def rungs_block(rec: dict) -> str:
    n = len(rec["seed_values"])
    rows = []
    for rung, r in rec["rungs"].items():
        times = ", ".join("-" if t is None else f"{t:,.1f}" for t in r["first_reach_s"])
        median = "-" if r["median_s"] is None else f"{r['median_s']:,.1f} s"
        rows.append([rung, f"{r['reached']}/{n}", times, median])
    return (
        '<section id="ladder"><h2>The ladder\'s rungs</h2><p class="lead">When each seed\'s '
        "test accuracy, checked after each epoch, first reached each rung (training seconds): "
        "a measurement beside the runs that selects nothing.</p>"
        + table(
            rows, ["rung", "seeds that reached it", "first reached, s per seed", "median"]
        )  # fmt: skip
        + "</section>"
    )


def robustness_text(rec: dict) -> str:
    rob = rec["robustness"]
    return (
        f"<p>Clean {pct(rob['clean'])}; mean under the corruptions {pct(rob['mean'])} "
        f"({of_clean(rob)}); on the corruptions the <code>corrupt</code> "
        f"augmentation trains with {pct(rob['mean_trained'])}, on the others "
        f"{pct(rob['mean_unseen'])}; inverted images (light background) "
        f"{pct(rob['inverted_image'])}. Seed {rob['model_seed']}'s model, "
        f"{rob['images']:,} test images.</p>"
    )


def protocol_block(rec: dict) -> str:
    user = rec.get("user_model")
    model = [["model", rec["model"]], ["arguments", rec.get("model_args") or "its defaults"]]
    if user:
        model += [["source", user.get("path")], ["SHA-256", user.get("sha256")]]
    model += [["parameters", f"{rec['parameters']:,}"], ["MFLOP per image", rec["mflop_per_image"]]]
    settings = list(rec["config"].items())
    machine = list(rec["machine"].items()) + [["device", rec["device"]]]
    return (
        '<section id="protocol"><h2>Model, recipe and machine</h2>'
        '<p class="lead">Everything needed to make this card again.</p><div class="grid2"><div>'
        "<h3>Model</h3>" + table(model, left_cols=(0, 1))
        + f"<h3>Training settings (recipe {escape(rec['recipe'])}, seed 0)</h3>"
        + table(settings)
        + "</div><div><h3>Machine</h3>" + table(machine, left_cols=(0, 1))
        + f"<p>Measured {escape(fmt(rec['date']))}.</p></div></div></section>"
    )  # fmt: skip


SECTIONS = (
    ("training", "Training", ["learning_curves"]),
    ("results", "Results", ["confusion_matrix", "per_class"]),
    ("robustness", "Robustness", ["robustness"]),
    ("calibration", "Calibration", ["reliability"]),
)


def render(rec: dict, figures) -> str:
    """The whole page of a card record (with its leaderboard) and its figures."""
    figures = [Figure(*f) for f in figures]
    rec = {**rec, "machine_label": machine_label(machine_of(rec["machine"], rec["device"]))}
    body = [leaderboard_block(rec), seeds_block(rec), rungs_block(rec)]
    for key, heading, keys in SECTIONS:
        body.append(f'<section id="{key}"><h2>{heading}</h2>')
        body.append(robustness_text(rec) if key == "robustness" else "")
        if key == "calibration":
            body.append(f"<p>ECE over the seeds: {escape(mean_std(rec['ece']))}.</p>")
        body += [figure_html(f) for f in figures if f.key in keys]
        body.append("</section>")
    body.append(protocol_block(rec))
    links = ["leaderboard", "seeds", "ladder"] + [k for k, _, _ in SECTIONS] + ["protocol"]
    nav = "".join(f'<a href="#{k}">{k.capitalize()}</a>' for k in links)
    title = f"Model card: {rec['name']}"
    subtitle = " · ".join([rec["model"], f"recipe {rec['recipe']}",
                           f"{rec['protocol']['seeds']} seeds", rec["date"][:10],
                           rec["machine_label"]])  # fmt: skip
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title>
<style>{CSS}{EXTRA_CSS}</style>
</head>
<body>
<header><h1>{escape(title)}</h1><p>{escape(subtitle)}</p></header>
<nav>{nav}</nav>
<main>
{headline(rec)}
{"".join(body)}
</main>
</body>
</html>
"""
