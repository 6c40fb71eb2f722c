"""The audit page: counts, then galleries of duplicate pairs, of the pairs on each side of
the near-duplicate thresholds, and of the label suspects; one self-contained HTML file."""

from __future__ import annotations

import base64
import io
from html import escape

import numpy as np
from PIL import Image

from fmnist.analysis.report_html import CSS, card, table
from fmnist.data import CLASSES

GALLERY = 12  # pairs or images per gallery

PAGE_CSS = """
.gallery { display: flex; flex-wrap: wrap; gap: 10px; margin: 10px 0 18px; }
.item { background: white; border: 1px solid var(--line); border-radius: 6px; padding: 6px;
        font-size: 12px; text-align: center; width: 176px; }
.item img { image-rendering: pixelated; width: 78px; height: 78px; margin: 2px; }
.item .d { color: var(--muted); }
.above { opacity: 0.75; border-style: dashed; }
"""


def img_tag(image: np.ndarray, alt: str) -> str:
    buf = io.BytesIO()
    Image.fromarray(image.astype(np.uint8), "L").save(buf, "PNG")
    src = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
    return f'<img src="{src}" alt="{escape(alt)}" width="28" height="28">'


def pair_item(ds, a: tuple[str, int], b: tuple[str, int], note: str, cls: str = "") -> str:
    def side(split, i):
        images = ds.train_images if split == "train" else ds.test_images
        labels = ds.train_labels if split == "train" else ds.test_labels
        return img_tag(images[i], f"{split} {i}"), f"{split} {i} · {CLASSES[labels[i]]}"

    (ia, ca), (ib, cb) = side(*a), side(*b)
    return (
        f'<div class="item {cls}">{ia}{ib}<div>{escape(ca)}</div><div>{escape(cb)}</div>'
        f'<div class="d">{escape(note)}</div></div>'
    )


def threshold_gallery(ds, pairs: dict, threshold: float, kind: str) -> str:
    """Test images' nearest training neighbours just at/below and just above the threshold."""
    p = pairs["train_test"]
    d = p["distance"]
    order = np.argsort(d)
    below = [i for i in order if 0 < d[i] <= threshold][-GALLERY // 2 :]
    above = [i for i in order if d[i] > threshold][: GALLERY // 2]
    items = [
        pair_item(
            ds,
            ("test", int(i)),
            ("train", int(p["neighbour"][i])),
            f"{kind} distance {d[i]:.4f}",
            "" if d[i] <= threshold else "above",
        )
        for i in [*below, *above]
    ]
    return '<div class="gallery">' + "".join(items) + "</div>"


def suspects_gallery(ds, split: str, rows: list[dict]) -> str:
    images = ds.train_images if split == "train" else ds.test_images
    items = []
    for r in rows[:GALLERY]:
        i = r["index"]
        items.append(
            f'<div class="item">{img_tag(images[i], f"{split} {i}")}'
            f"<div>{split} {i}</div><div>given <b>{escape(CLASSES[r['given']])}</b></div>"
            f"<div>suggested <b>{escape(CLASSES[r['suggested']])}</b></div>"
            f'<div class="d">label quality {r["score"]:.3f}</div></div>'
        )
    return '<div class="gallery">' + "".join(items) + "</div>"


def render(record: dict, arrays: dict, ds) -> str:
    """The whole page: the counts as cards, then a section each for exact duplicates,
    near-duplicates and label issues."""
    digests = ", ".join(f"{k}: {v[:12]}…" for k, v in record["data"]["sha256"].items())
    body = duplicates_section(record, ds) + near_section(record, arrays, ds)
    body += labels_section(record, ds)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Fashion-MNIST audit</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>{CSS}{PAGE_CSS}</style></head>
<body><header><h1>Fashion-MNIST audit</h1>
<p>{record["data"]["train"]:,} training and {record["data"]["test"]:,} test images ·
data {escape(digests)}</p></header>
<nav><a href="#duplicates">Exact duplicates</a><a href="#near">Near-duplicates</a>
<a href="#labels">Label issues</a></nav>
<main><div class="cards">{cards(record)}</div>{body}</main></body></html>
"""


def cards(record: dict) -> str:
    ex = record["exact_duplicates"]["counts"]
    near = record["near_duplicates"]
    issues = record["label_issues"]["counts"]
    return "".join(
        [
            card(f"{ex['test_images_in_train']}", "test images also in train (exact)"),
            card(f"{ex['train_extra_copies']}", "extra exact copies within train"),
            card(
                f"{near['pixel']['counts']['train_test']}",
                "test images near a train image (pixels)",
            ),
            card(f"{near['feature']['counts']['train_test']}", "the same in features"),
            card(f"{issues['train']:,}", "training label suspects"),
            card(f"{issues['test']:,}", "test label suspects"),
            card(f"{record['seconds']['total']:.0f} s", "audit time"),
        ]
    )


def duplicates_section(record: dict, ds) -> str:
    """Counts of identical images within and across the splits, and a gallery of them."""
    ex = record["exact_duplicates"]
    groups, c = ex["groups"], ex["counts"]
    items = [
        pair_item(ds, ("test", g["test"][0]), ("train", g["train"][0]), "identical bytes")
        for g in groups["across"][:GALLERY]
    ] + [
        pair_item(ds, ("train", g[0]), ("train", g[1]), "identical bytes")
        for g in groups["train"][: max(0, GALLERY - len(groups["across"]))]
    ]
    rows = [
        ["within train", c["train_groups"], c["train_extra_copies"]],
        ["within test", c["test_groups"], c["test_extra_copies"]],
        ["test also in train", c["across_groups"], c["test_images_in_train"]],
    ]
    return f"""
<section id="duplicates"><h2>Exact duplicates</h2>
<p class="lead">Images whose 784 bytes are identical.</p>
{table(rows, ["where", "groups", "extra copies / test images"])}
<div class="gallery">{"".join(items) or "<p>none</p>"}</div></section>"""


NEAR_HEADER = [
    "space",
    "test with a near copy in train",
    "pairs within train",
    "pairs within test",
    "threshold",
]


def near_section(record: dict, arrays: dict, ds) -> str:
    """Near-duplicate counts per space, and the pairs on each side of each threshold."""
    near = record["near_duplicates"]
    rows = [
        [kind, c["train_test"], c["train"], c["test"], f"{near[kind]['threshold']:g}"]
        for kind, c in ((k, near[k]["counts"]) for k in ("pixel", "feature"))
    ]
    pixel = threshold_gallery(ds, arrays["pixel"], near["pixel"]["threshold"], "pixel")
    feature = threshold_gallery(ds, arrays["feature"], near["feature"]["threshold"], "feature")
    return f"""
<section id="near"><h2>Near-duplicates</h2>
<p class="lead">Each image's nearest neighbour, in pixel space (RMS difference of pixels in
[0, 1]) and in the penultimate features of the first fold's network (cosine distance); a
pair counts at or below the threshold, above zero (zero is an exact duplicate). Pairs
within a split count once.</p>
{table(rows, NEAR_HEADER)}
<h3>Pixel space: the test images just below the threshold (solid) and just above (dashed)</h3>
{pixel}
<h3>Feature space: just below and just above the threshold</h3>
{feature}
</section>"""


def labels_section(record: dict, ds) -> str:
    """How the suspects were found, their class pairs, and the worst of each split."""
    issues = record["label_issues"]
    s, acc = record["settings"], record["out_of_sample_accuracy"]
    pair_rows = [[p["given"], p["suggested"], p["count"]] for p in issues["class_pairs"][:15]]
    n_train, n_test = issues["counts"]["train"], issues["counts"]["test"]
    return f"""
<section id="labels"><h2>Label issues</h2>
<p class="lead">Out-of-sample probabilities from {s["folds"]}-fold cross-validation of the
<code>{escape(str(s["recipe"]))}</code> recipe (<code>{escape(str(s["model"]))}</code>;
held-out accuracy {acc["train"]:.2%} on train, {acc["test"]:.2%} on test), ranked by
cleanlab's confident learning. A suspect is an image whose given label the models doubt;
some are wrong labels, some are ambiguous garments.</p>
{table(pair_rows, ["given", "suggested", "suspects"], left_cols=(0, 1))}
<h3>Training set: the worst {min(GALLERY, n_train)} of {n_train:,}</h3>
{suspects_gallery(ds, "train", issues["train"])}
<h3>Test set: the worst {min(GALLERY, n_test)} of {n_test:,}</h3>
{suspects_gallery(ds, "test", issues["test"])}
</section>"""
