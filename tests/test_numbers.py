"""Numbers live in records: the README and the documentation's own text quote no measured
figure. Tables and charts are generated from the records (docs/generate.py); the README's
headline table sits between markers and is compared with what the generator makes."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
SOURCES = [ROOT / "README.md", *sorted(DOCS.glob("*.md")), DOCS / "conf.py"]

# A figure with a unit of measurement: a share, a time, a rate, a count of operations, a
# ratio of speeds.
MEASURED = re.compile(
    r"\b\d[\d,]*(?:\.\d+)?(?:x\b(?!\d)|\s*"
    r"(?:%|ms\b|s\b|sec\b|seconds?\b|min\b|minutes?\b|hours?\b|h\b"
    r"|images?/s\b|img/s\b|requests?/s\b|[GMT]FLOP\w*))"
)
# Claims quoted from outside, not measured here: the Keras tutorial's own words.
QUOTED = {"89%", "10 minutes"}
GENERATED = re.compile(r"<!-- (\w+):start -->.*?<!-- \1:end -->", re.S)


def typed_figures(text: str) -> list[str]:
    """Measured-looking figures outside generated blocks and quoted claims."""
    text = GENERATED.sub("", text)
    return [m.group(0) for m in MEASURED.finditer(text) if m.group(0) not in QUOTED]


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_figure_is_typed_by_hand(path):
    assert typed_figures(path.read_text()) == []


def test_the_scan_catches_what_it_should():
    planted = "It trains in 40 s to 89.96%, 2,214 images/s, 13x faster, 17.8 MFLOP per image."
    assert typed_figures(planted) == ["40 s", "89.96%", "2,214 images/s", "13x", "17.8 MFLOP"]
    # sizes, counts and settings are not measurements; quoted claims and generated blocks pass
    fine = "28x28 images, 60,000 of them, 5 epochs, Conv 6@5x5, about 10 minutes, 89%."
    assert typed_figures(fine) == []
    assert typed_figures("<!-- headline:start -->\n| 94.06% | 271 s |\n<!-- headline:end -->") == []


def test_the_readme_is_short():
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 150
    assert len(re.findall(r"\w+", GENERATED.sub("", text))) <= 1200
