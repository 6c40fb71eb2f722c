"""Hostile images and hostile arguments to the Python API: image files whose metadata Pillow
refuses (built byte by byte here), images with an alpha channel, and the API's argument
types, devices and empty inputs. Whatever comes in: a result, or an FmnistError of one
line (exit status 2 from the command line, a 4xx from the server), never a traceback."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image, ImageFile, PngImagePlugin

import fmnist
from fmnist import FmnistError
from fmnist.deploy.serve import create_app
from tests.hostile import assert_kept_promise, write_file

from .use_helpers import quiet_import

PROPERTY = settings(
    max_examples=30,
    deadline=None,
    derandomize=True,  # the same cases every run
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


# ----------------------------------------------------------------------------
# PNG files by hand
# ----------------------------------------------------------------------------


def chunk(kind: bytes, data: bytes, crc: bool = True) -> bytes:
    check = zlib.crc32(kind + data) if crc else zlib.crc32(kind + data) ^ 1
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", check & 0xFFFFFFFF)


def pixels(size: int = 64) -> np.ndarray:
    """A dark rectangle on white: a photo the recipe trims, resizes and classifies."""
    a = np.full((size, size), 255, np.uint8)
    a[size // 4 : 3 * size // 4, size // 3 : 2 * size // 3] = 40
    return a


def png(before=(), after=(), size: int = 64, ihdr: bytes | None = None) -> bytes:
    """A grayscale PNG with `before` chunks between IHDR and IDAT, `after` ones after IDAT."""
    raw = b"".join(b"\0" + row.tobytes() for row in pixels(size))
    header = ihdr if ihdr is not None else struct.pack(">IIBBBBB", size, size, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + b"".join(before)
        + chunk(b"IDAT", zlib.compress(raw))
        + b"".join(after)
        + chunk(b"IEND", b"")
    )


def inflates_past(limit: int) -> bytes:
    return zlib.compress(b"\0" * (limit + 1024), 9)


def exif(entries: list[tuple[int, int, int, bytes]]) -> bytes:
    """A big-endian TIFF header and one IFD of (tag, type, count, value) entries."""
    body = b"".join(struct.pack(">HHI", *e[:3]) + e[3] for e in entries)
    return b"MM\0*" + struct.pack(">IH", 8, len(entries)) + body + b"\0\0\0\0"


def jpeg_with_segment(marker: int, payload: bytes) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(pixels()).save(buf, "JPEG", quality=90)
    data = buf.getvalue()
    segment = b"\xff" + bytes([marker]) + struct.pack(">H", len(payload) + 2) + payload
    return data[:2] + segment + data[2:]


# Pillow refuses each of these while reading the header or the chunks after the pixels
REFUSED = {
    "iccp_past_limit": png([chunk(b"iCCP", b"icc\0\0" + inflates_past(ImageFile.SAFEBLOCK))]),
    "ztxt_past_limit": png(
        [chunk(b"zTXt", b"Comment\0\0" + inflates_past(PngImagePlugin.MAX_TEXT_CHUNK))]
    ),
    "itxt_past_limit": png(
        [chunk(b"iTXt", b"Comment\0\1\0\0\0" + inflates_past(PngImagePlugin.MAX_TEXT_CHUNK))]
    ),
    "ztxt_after_pixels": png(
        after=[chunk(b"zTXt", b"k\0\0" + inflates_past(PngImagePlugin.MAX_TEXT_CHUNK))]
    ),
    "truncated_phys": png([chunk(b"pHYs", b"\0")]),
    "truncated_srgb": png([chunk(b"sRGB", b"")]),
    "truncated_ihdr": png(ihdr=b"\0" * 5),
    "truncated_actl": png([chunk(b"acTL", b"\0")]),
    "cut_in_a_chunk": png()[:70],
    # past Pillow's bomb warning (89 megapixels) and our limit: one line, not a warning too
    "bomb_sized_header": png(ihdr=struct.pack(">IIBBBBB", 9500, 9500, 8, 0, 0, 0, 0)),
}

# malformed metadata around good pixels: classified, or refused in one line
BROKEN_EXIF = {
    "exif_garbage.png": png([chunk(b"eXIf", b"MM\0*\0\0\0\x08\0\x09garbage")]),
    "exif_far_offset.png": png([chunk(b"eXIf", exif([(0x8769, 4, 1, b"\0\1\0\0")]))]),
    "exif_orientation_list.png": png([chunk(b"eXIf", exif([(0x0112, 3, 2, b"\0\6\0\6")]))]),
    "exif_garbage.jpg": jpeg_with_segment(0xE1, b"Exif\0\0MM\0*\0\0\0\x08\0\x09"),
    "mpf_garbage.jpg": jpeg_with_segment(0xE2, b"MPF\0garbage"),
}


def one_line(e: BaseException) -> str:
    text = str(e)
    assert text and "\n" not in text, repr(text)
    return text


# ----------------------------------------------------------------------------
# The command line
# ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory):
    base = tmp_path_factory.mktemp("hostile_images")
    files = {name: write_file(base / f"{name}.png", data) for name, data in REFUSED.items()}
    files.update({name: write_file(base / name, data) for name, data in BROKEN_EXIF.items()})
    return files


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_predict_refuses_metadata_pillow_refuses(cli, bad_files, tmp_path, name):
    argv = ["predict", "--model", "default", str(bad_files[name])]
    result = cli(argv, cwd=tmp_path, timeout=60)
    assert_kept_promise(result, "predict", tmp_path, set())
    assert result.rc == 2 and str(bad_files[name]) in result.stderr, result.stderr


@pytest.mark.parametrize("name", ["iccp_past_limit", "truncated_phys"])
def test_explain_refuses_metadata_pillow_refuses(cli, bad_files, tmp_path, name):
    argv = ["explain", "--model", "default", "--json", str(bad_files[name])]
    result = cli(argv, cwd=tmp_path, timeout=60)
    assert_kept_promise(result, "explain", tmp_path, set())
    assert result.rc == 2 and "corrupt" in result.stderr, result.stderr


def test_broken_exif_keeps_the_pixels_and_stays_quiet(cli, bad_files, tmp_path):
    """Orientation is a hint: a photo whose EXIF block is malformed is classified as stored,
    without Pillow's warnings on stderr."""
    names = [str(bad_files[n]) for n in sorted(BROKEN_EXIF)]
    result = cli(["predict", "--model", "default", "--json", *names], cwd=tmp_path, timeout=60)
    assert_kept_promise(result, "predict", tmp_path, set())
    assert result.rc == 0 and result.stderr == "", result.stderr
    # the same photo with a refused chunk among them: still exactly one line
    names.append(str(bad_files["ztxt_past_limit"]))
    result = cli(["predict", "--model", "default", *names], cwd=tmp_path, timeout=60)
    assert_kept_promise(result, "predict", tmp_path, set())
    assert result.rc == 2


# ----------------------------------------------------------------------------
# The Python API and the server
# ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def model():
    return fmnist.load_model("default")


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_api_refuses_metadata_pillow_refuses(model, bad_files, name):
    for given_as in (bad_files[name], REFUSED[name]):  # a path, then the bytes
        with pytest.raises(FmnistError) as e:
            model.predict(given_as)
        one_line(e.value)


@pytest.fixture(scope="module")
def client(model):
    TestClient = quiet_import("fastapi.testclient").TestClient
    with TestClient(create_app(model), raise_server_exceptions=False) as c:
        yield c


@pytest.mark.parametrize("name", ["iccp_past_limit", "ztxt_after_pixels", "truncated_ihdr"])
def test_server_answers_4xx_for_metadata_pillow_refuses(client, name):
    data = REFUSED[name]
    answers = [
        client.post("/predict", files={"file": ("x.png", data, "image/png")}),
        client.post(
            "/predict/batch", files=[("files", ("a.png", png())), ("files", ("b.png", data))]
        ),
        client.post("/explain", files={"file": ("x.png", data, "image/png")}),
    ]
    for r in answers:
        assert 400 <= r.status_code < 500, (r.status_code, r.text)
        assert "x.png" in r.text or "b.png" in r.text, r.text


def rgba_item(image: np.ndarray, size: int, mode: str = "RGBA") -> Image.Image:
    """A dataset item as a cut-out: black, as opaque as the item is bright, on transparency."""
    a = np.zeros((28, 28, 4), np.uint8)
    a[..., 3] = image
    img = Image.fromarray(a, "RGBA").convert(mode)
    return img if size == 28 else img.resize((size, size), Image.Resampling.BICUBIC)


@pytest.mark.parametrize("mode", ["RGBA", "LA"])
def test_alpha_is_composited_at_28_pixels_as_at_64(model, dataset, tmp_path, mode):
    images, labels = dataset.test_images[:12], dataset.test_labels[:12]
    small = [rgba_item(x, 28, mode) for x in images]
    large = [rgba_item(x, 64, mode) for x in images]
    at28, at64 = model.predict(small).labels, model.predict(large).labels
    np.testing.assert_array_equal(at28, at64)
    assert (at28 == labels).mean() >= 0.9
    small[0].save(tmp_path / "item.png")  # the same through a file
    assert model.predict(tmp_path / "item.png").labels[0] == at28[0]


# ----------------------------------------------------------------------------
# The Python API's arguments
# ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("device", "words"),
    [("tpu", "unknown"), ("cuda:99", "cuda"), (5, "device"), (["cpu"], "device")],
)
def test_load_model_refuses_devices_this_machine_lacks(device, words):
    import torch

    if device == "cuda:99" and torch.cuda.device_count() > 99:
        pytest.skip("a machine with a hundred GPUs")
    with pytest.raises(FmnistError, match=words) as e:
        fmnist.load_model("default", device=device)
    one_line(e.value)
    assert isinstance(e.value, TypeError if not isinstance(device, str) else ValueError)


def test_load_model_takes_auto_and_none_as_devices_this_machine_has():
    import torch

    for device in ("auto", None, torch.device("cpu")):
        model = fmnist.load_model("default", device=device)
        want = "cuda" if device == "auto" and torch.cuda.is_available() else "cpu"
        assert next(model.module.parameters()).device.type == want


def test_load_model_refuses_a_model_that_is_not_a_name(tmp_path):
    for model in (123, None, ["best"]):
        with pytest.raises(FmnistError, match="model") as e:
            fmnist.load_model(model)
        assert isinstance(e.value, TypeError)


A = np.zeros((28, 28), np.uint8)
A[4:24, 8:20] = 200

REFUSED_ARGUMENTS = [
    (123, TypeError, "got int"),
    (None, TypeError, "got None"),
    ({"a": A}, TypeError, "got dict"),
    ([A, 5], TypeError, "image 1"),
    ([A, None], TypeError, "image 1"),
    (np.zeros((0, 28, 28), np.uint8), FmnistError, "empty"),
    (np.zeros((0, 0), np.uint8), FmnistError, "empty"),
    (Image.new("L", (0, 0)), FmnistError, "no pixels"),
    (Image.new("RGB", (0, 7)), FmnistError, "no pixels"),
    (np.zeros((2, 3, 28, 28), np.uint8), FmnistError, "shape"),
    (np.zeros((28, 28), bool), TypeError, "bool"),
    (np.zeros((28, 28), complex), TypeError, "complex"),
    (np.full((28, 28), 1000, np.int64), FmnistError, "0 to 255"),
    (A.astype(np.float32), FmnistError, r"\[0, 1\]"),  # 0-255 in floats: not all white
    (np.full((28, 28), np.nan), FmnistError, "NaN"),
    (np.full((28, 28), np.inf), FmnistError, "NaN or infinite"),
    ("", FmnistError, "empty path"),
    (b"not an image", FmnistError, "not an image"),
]


@pytest.mark.parametrize(
    ("images", "kind", "words"), REFUSED_ARGUMENTS, ids=[r[2] for r in REFUSED_ARGUMENTS]
)
def test_predict_refuses_arguments_with_clear_words(model, images, kind, words):
    with pytest.raises(FmnistError, match=words) as e:
        model.predict(images)
    one_line(e.value)
    assert isinstance(e.value, kind)


def test_predict_takes_floats_as_intensities_and_other_layouts(model):
    want = model.predict(A).labels[0]
    assert model.predict(A / 255.0).labels[0] == want  # floats in [0, 1]
    assert model.predict(A.astype(np.int64)).labels[0] == want  # integers 0 to 255
    assert model.predict(A[None, None]).labels.tolist() == [want]  # (N, 1, 28, 28)
    assert model.predict(A.tolist()).labels.tolist() == [want]  # nested lists
    buf = io.BytesIO()
    Image.fromarray(A).save(buf, "PNG")
    assert model.predict(buf.getvalue()).labels.tolist() == [want]  # encoded bytes
    half = model.probabilities(np.full((1, 28, 28), 0.5))  # not cast to 0
    np.testing.assert_allclose(half, model.probabilities(np.full((1, 28, 28), 128, np.uint8)))


def test_load_data_and_train_refuse_arguments_of_the_wrong_type():
    cases = [
        lambda: fmnist.load_data(123, download=False),
        lambda: fmnist.load_data(download="yes"),
        lambda: fmnist.train(recipe=5, log=None),
        lambda: fmnist.train(dataset="x", log=None),
        lambda: fmnist.train(log="quiet"),
    ]
    for case in cases:
        with pytest.raises(FmnistError) as e:
            case()
        one_line(e.value)
        assert isinstance(e.value, TypeError)


# ----------------------------------------------------------------------------
# Properties
# ----------------------------------------------------------------------------

KINDS = [b"iCCP", b"zTXt", b"iTXt", b"tEXt", b"eXIf", b"pHYs", b"gAMA", b"sRGB", b"tRNS",
         b"PLTE", b"acTL", b"fcTL", b"cHRM", b"sBIT", b"bKGD", b"tIME", b"IDAT", b"IEND",
         b"zzZz"]  # fmt: skip
payloads = st.one_of(
    st.binary(max_size=40),
    st.builds(
        lambda key, body: key + b"\0\0" + zlib.compress(body),
        st.binary(min_size=1, max_size=12).filter(lambda k: b"\0" not in k),
        st.sampled_from([b"", b"x" * 100, b"\0" * (PngImagePlugin.MAX_TEXT_CHUNK + 1)]),
    ),
)
chunks = st.builds(
    chunk, st.sampled_from(KINDS), payloads, st.integers(0, 7).map(bool)
)  # a bad CRC now and then
headers = st.builds(
    lambda w, h, depth, colour: struct.pack(">IIBBBBB", w, h, depth, colour, 0, 0, 0),
    st.sampled_from([0, 1, 28, 64, 2**31 - 1]),
    st.sampled_from([0, 1, 28, 64, 100_000]),
    st.sampled_from([1, 8, 16, 3]),
    st.sampled_from([0, 2, 3, 4, 6, 5]),
)


def mostly_none(strategy):
    """None (the good header, the whole file) three times in four: the chunks are the test."""
    return st.integers(0, 3).flatmap(lambda i: strategy if i == 0 else st.none())


@PROPERTY
@given(
    before=st.lists(chunks, max_size=3),
    after=st.lists(chunks, max_size=2),
    ihdr=mostly_none(headers),
    cut=mostly_none(st.integers(8, 400)),
)
def test_any_png_is_classified_or_refused_in_one_line(model, tmp_path, before, after, ihdr, cut):
    path = write_file(tmp_path / "mutated.png", png(before, after, ihdr=ihdr)[:cut])
    try:
        out = model.predict(path)
    except FmnistError as e:
        one_line(e)
    else:
        assert out.probabilities.shape == (1, 10)


dtypes = st.sampled_from([np.uint8, np.int16, np.int64, np.float16, np.float32, np.float64,
                          np.bool_, np.complex64])  # fmt: skip
shapes = st.one_of(
    st.sampled_from([(28, 28), (2, 28, 28), (1, 1, 28, 28), (1, 28, 28, 1), (0, 28, 28)]),
    hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=30),
)
arrays = hnp.arrays(dtypes, shapes)
things = st.one_of(arrays, st.none(), st.integers(), st.text(max_size=5), st.binary(max_size=8))


@PROPERTY
@given(images=st.one_of(things, st.lists(things, max_size=3)))
def test_any_array_is_classified_or_refused_never_cast(model, images):
    """predict and probabilities take the same things, refuse the same things in one line,
    and read floats as intensities in [0, 1]: never a silent cast to uint8."""
    try:
        out = model.predict(images)
    except FmnistError as e:
        one_line(e)
        with pytest.raises(FmnistError):
            model.probabilities(images)
        return
    assert out.probabilities.shape[1] == 10 and len(out.labels) >= 1
    np.testing.assert_allclose(model.probabilities(images), out.probabilities)
    if isinstance(images, np.ndarray) and np.issubdtype(images.dtype, np.floating):
        assert np.isfinite(images).all() and images.min() >= 0 and images.max() <= 1
        as_uint8 = np.round(images.astype(np.float64) * 255).astype(np.uint8)
        np.testing.assert_allclose(model.probabilities(as_uint8), out.probabilities)
