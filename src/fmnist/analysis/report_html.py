"""The report page: one HTML string with inline CSS and figures as data URIs."""

from __future__ import annotations

import base64
from html import escape

SECTIONS = (
    ("data", "Data", "What the network learns from."),
    ("training", "Training", "How the fit went, epoch by epoch."),
    (
        "results",
        "Results",
        "How the kept weights do on the 10,000 test images, and where they fail.",
    ),
    ("trust", "Trust", "Why the model decides as it does, and how it holds up."),
)

CSS = """
:root { --ink: #1d2330; --muted: #5d6678; --line: #dde2ea; --accent: #1f6feb; --bg: #f6f8fb; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
       color: var(--ink); background: var(--bg); }
header { background: #14213d; color: white; padding: 28px 40px 24px; }
header, nav { padding-left: max(40px, calc((100% - 1100px) / 2)); }
header h1 { margin: 0 0 4px; font-size: 26px; font-weight: 650; }
header p { margin: 0; color: #c8d1e3; }
nav { position: sticky; top: 0; z-index: 1; background: white; border-bottom: 1px solid var(--line);
      padding: 10px 40px; display: flex; gap: 22px; font-size: 14px; }
nav a { color: var(--accent); text-decoration: none; }
main { max-width: 1180px; margin: 0 auto; padding: 8px 40px 60px; }
section { margin-top: 34px; }
h2 { font-size: 21px; margin: 0 0 2px; border-bottom: 2px solid var(--line); padding-bottom: 6px; }
h2 + p.lead { color: var(--muted); margin: 6px 0 14px; }
h3 { font-size: 16px; margin: 0 0 4px; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(150px, 1fr)); gap: 12px;
         margin-top: 22px; }
.card { background: white; border: 1px solid var(--line); border-radius: 8px; padding: 12px 14px; }
.card .v { font-size: 24px; font-weight: 650; }
.card .k { color: var(--muted); font-size: 13px; }
figure { background: white; border: 1px solid var(--line); border-radius: 8px; margin: 16px 0;
         padding: 14px 16px; }
figure img { display: block; max-width: 100%; height: auto; margin: 8px auto 0; }
figcaption { color: var(--muted); font-size: 14px; }
table { border-collapse: collapse; background: white; font-size: 14px; margin: 10px 0 6px; }
th, td { border: 1px solid var(--line); padding: 5px 10px; text-align: right; }
th { background: #eef1f6; font-weight: 600; }
td.l, th.l { text-align: left; }
td.nowrap { white-space: nowrap; }
code, .mono { font-family: ui-monospace, "SFMono-Regular", Menlo, monospace; font-size: 12.5px; }
.grid2 { display: grid; grid-template-columns: 1fr 1fr; gap: 18px; align-items: start; }
.warn { background: #fff4e5; border: 1px solid #f0b45a; padding: 8px 12px; border-radius: 6px; }
@media (max-width: 900px) { .grid2 { grid-template-columns: 1fr; } main { padding: 8px 16px; } }
"""


def fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if value is None:
        return "none"
    return str(value)


def table(rows, header=None, left_cols=(0,), mono_cols=()) -> str:
    def cell(tag, i, v):
        flags = (("l", i in left_cols), ("mono nowrap", tag == "td" and i in mono_cols))
        classes = " ".join(c for c, on in flags if on)
        cls = f' class="{classes}"' if classes else ""
        return f"<{tag}{cls}>{escape(fmt(v))}</{tag}>"

    out = ["<table>"]
    if header:
        out.append("<tr>" + "".join(cell("th", i, h) for i, h in enumerate(header)) + "</tr>")
    for row in rows:
        out.append("<tr>" + "".join(cell("td", i, v) for i, v in enumerate(row)) + "</tr>")
    out.append("</table>")
    return "\n".join(out)


def card(value: str, label: str) -> str:
    return (
        f'<div class="card"><div class="v">{escape(value)}</div>'
        f'<div class="k">{escape(label)}</div></div>'
    )


def figure_html(f) -> str:
    uri = "data:image/png;base64," + base64.b64encode(f.png).decode("ascii")
    return (
        f'<figure id="fig-{escape(f.key)}"><h3>{escape(f.title)}</h3>'
        f"<figcaption>{escape(f.caption)}</figcaption>"
        f'<img src="{uri}" alt="{escape(f.title)}"></figure>'
    )


def per_class_table(result: dict) -> str:
    rows = [
        [name, f"{r['precision']:.4f}", f"{r['recall']:.4f}", f"{r['f1']:.4f}", r["support"]]
        for name, r in result["per_class"].items()
    ]
    for key, label in (("macro_avg", "macro avg"), ("weighted_avg", "weighted avg")):
        r = result[key]
        rows.append(
            [label, f"{r['precision']:.4f}", f"{r['recall']:.4f}", f"{r['f1']:.4f}", result["n"]]
        )
    return table(rows, ["class", "precision", "recall", "F1", "support"])


def data_block(run, ds) -> str:
    """Where the data came from, the split sizes, and the checksums against today's copy."""
    rec = run.config.get("data", {})
    source = [
        ["origin", rec.get("origin")],
        ["directory", rec.get("directory")],
        ["training images", f"{rec.get('n_train', 0):,}"],
        ["validation images", f"{rec.get('n_val', 0):,}"],
        ["test images", f"{rec.get('n_test', 0):,}"],
    ]
    checksums = [
        [f, digest, "same" if ds.sha256.get(f) == digest else "DIFFERS"]
        for f, digest in rec.get("sha256", {}).items()
    ]
    return (
        "<h3>Source</h3>"
        + table(source, left_cols=(0, 1))
        + "<h3>SHA-256 of the decompressed files</h3>"
        + "<p>Recorded at training time; <em>now</em> compares the data this report read.</p>"
        + table(checksums, ["file", "sha256", "now"], left_cols=(0, 1, 2), mono_cols=(0, 1))
    )


def config_block(run) -> str:
    m = run.metrics
    settings = list(run.config["config"].items())
    environment = list(run.config.get("environment", {}).items())
    model = (
        [["architecture", run.model_info.get("model")]]
        + [[f"  {k}", v] for k, v in run.model_info.get("args", {}).items()]
        + [["trainable parameters", m.get("parameters")], ["statistics", m.get("non_trainable")]]
    )
    return (
        '<section id="config"><h2>Configuration</h2>'
        '<p class="lead">Everything needed to train this run again.</p><div class="grid2"><div>'
        "<h3>Training settings</h3>"
        + table(settings)
        + "<h3>Model</h3>"
        + table(model)
        + "</div><div><h3>Environment</h3>"
        + table(environment, left_cols=(0, 1))
        + f"<p>Started {escape(fmt(run.config.get('started')))}.</p></div></div></section>"
    )


def history_block(run) -> str:
    keys = ["epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "epoch_s"]
    rows = [[r.get(k) for k in keys] for r in run.history]
    header = ["epoch", "train loss", "train acc", "val loss", "val acc", "lr", "seconds"]
    return "<h3>History</h3>" + table(rows, header)


def headline(run, result: dict) -> str:
    m = run.metrics
    cards = [
        card(f"{result['test_accuracy']:.2%}", "test accuracy"),
        card(f"{result['test_loss']:.4f}", "test loss"),
        card(f"{m['val_accuracy']:.2%}", "validation accuracy (best epoch)")
        if m.get("val_accuracy") is not None
        else card("none", "validation: trained on all 60,000 images"),
        card(f"{m.get('best_epoch')} / {m.get('epochs')}", "best epoch / epochs run"),
        card(f"{m.get('train_s', 0):.0f} s", f"training time ({m.get('device', '?')})"),
        card(f"{result['ece']:.2%}", "expected calibration error"),
    ]
    out = f'<div class="cards">{"".join(cards)}</div>'
    saved = m.get("test_accuracy")
    if saved is not None and abs(saved - result["test_accuracy"]) > 1e-9:
        out += (
            f'<p class="warn">metrics.json records a test accuracy of {saved:.4%}, but the saved '
            f"model gives {result['test_accuracy']:.4%} on this data: the run directory was "
            "changed after training, or the data differs.</p>"
        )
    return out


def render(run, ds, result: dict, figures) -> str:
    """The whole page. `result` is evaluate_logits() of the test set plus "ece"."""
    cfg = run.config["config"]
    before = {
        "data": data_block(run, ds),
        "training": "",
        "results": "<h3>Per-class scores</h3>" + per_class_table(result),
    }
    after = {"training": history_block(run)}
    body = []
    shown = [
        (key, heading, lead)
        for key, heading, lead in SECTIONS
        if before.get(key) is not None or any(f.section == key for f in figures)
    ]
    for key, heading, lead in shown:
        body.append(f'<section id="{key}"><h2>{heading}</h2><p class="lead">{escape(lead)}</p>')
        body.append(before.get(key, ""))
        body += [figure_html(f) for f in figures if f.section == key]
        body.append(after.get(key, ""))
        body.append("</section>")
    body.append(config_block(run))

    links = [(k, h) for k, h, _ in shown] + [("config", "Configuration")]
    nav = "".join(f'<a href="#{k}">{h}</a>' for k, h in links)
    title = f"{cfg.get('model', 'model')} · {run.directory.resolve().name}"
    subtitle = " · ".join(
        [
            str(run.directory),
            f"recipe {fmt(cfg.get('recipe'))}",
            f"seed {fmt(cfg.get('seed'))}",
            f"started {fmt(run.config.get('started'))}",
        ]
    )
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)}</title>
<style>{CSS}</style>
</head>
<body>
<header><h1>{escape(title)}</h1><p>{escape(subtitle)}</p></header>
<nav>{nav}</nav>
<main>
{headline(run, result)}
{"".join(body)}
</main>
</body>
</html>
"""
