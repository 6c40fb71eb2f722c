"""A fuzz of the HTTP API generated from its OpenAPI schema (schemathesis): no 5xx.

The fuzz is about request handling, not accuracy, so the app serves an untrained seed CNN:
the schema has to exist when pytest collects the tests, before any fixture has run.
"""

from __future__ import annotations

import pytest

from fmnist.data import CLASSES
from fmnist.deploy.predict import Predictor
from fmnist.deploy.serve import create_app
from fmnist.models import create_model

from .use_helpers import quiet_import

pytest.importorskip("schemathesis", reason="the fuzz needs schemathesis")
schemathesis = quiet_import("schemathesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

predictor = Predictor(create_model("seed_cnn").eval(), CLASSES, "seed_cnn", {})
app = create_app(predictor, max_bytes=200_000, max_files=4)
schema = schemathesis.openapi.from_asgi("/openapi.json", app)
client = quiet_import("fastapi.testclient").TestClient(app)


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_no_server_errors(case):
    """Requests the schema allows, and ones it nearly allows, answer below 500; errors are JSON."""
    response = case.call()
    assert response.status_code < 500, f"{case.method} {case.path}: {response.text[:200]}"
    if response.status_code >= 400:
        assert "error" in response.json()


def _valid_images() -> list[bytes]:
    import io

    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 255, (40, 30, 3), dtype=np.uint8)
    out = []
    for fmt in ("PNG", "JPEG", "GIF", "BMP", "WEBP"):
        buf = io.BytesIO()
        Image.fromarray(pixels).save(buf, fmt)
        out.append(buf.getvalue())
    return out


VALID = _valid_images()


@st.composite
def damaged_image(draw):
    """A real image in an allowed format with bytes flipped, cut off or inserted."""
    data = bytearray(draw(st.sampled_from(VALID)))
    for _ in range(draw(st.integers(0, 8))):
        i = draw(st.integers(0, len(data) - 1))
        data[i] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    if draw(st.booleans()):
        i = draw(st.integers(0, len(data)))
        data[i:i] = draw(st.binary(max_size=64))
    return bytes(data)


@given(data=damaged_image())
@settings(max_examples=80, deadline=None, derandomize=True)
def test_damaged_images_answer_4xx_or_a_prediction(data):
    response = client.post("/predict", files={"file": ("x", data, "application/octet-stream")})
    assert response.status_code in (200, 400, 413, 415), response.text
    body = response.json()
    assert ("predictions" in body) == (response.status_code == 200)
