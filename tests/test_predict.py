"""fmnist.deploy.predict: photos to dataset images, predictions, `fmnist predict`."""

from __future__ import annotations

import csv
import json
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from fmnist import cli
from fmnist.deploy.predict import (
    MAX_PIXELS,
    ImageError,
    ImageTooLarge,
    Predictor,
    UnsupportedImage,
    predict_files,
    prepare,
    read_image,
)

from .use_helpers import encode, synthetic_photo, usable_model


@pytest.fixture(scope="module")
def model_path(tiny_run, dataset):
    return usable_model(tiny_run, dataset)


@pytest.fixture(scope="module")
def predictor(model_path):
    return Predictor.load(model_path)


def png_bomb(width: int, height: int) -> bytes:
    """A real decompression bomb: a valid grayscale PNG whose zeros inflate to width*height
    bytes, while the file itself is about a thousandth of that."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    z = zlib.compressobj(9)
    row = b"\0" * (width + 1)  # filter byte + pixels
    idat = b"".join(z.compress(row) for _ in range(height)) + z.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


# ----------------------------------------------------------------------------
# The dataset's own images, and photos made from them
# ----------------------------------------------------------------------------


def test_dataset_pngs_predict_exactly_as_tensors(dataset, predictor, tmp_path):
    images = dataset.test_images[:200]
    for i, image in enumerate(images):
        Image.fromarray(image).save(tmp_path / f"{i:03d}.png")
    # An RGB copy of a dataset image is dataset-like too.
    Image.fromarray(images[0]).convert("RGB").save(tmp_path / "rgb.png")
    results = predict_files(predictor, [tmp_path], top_k=10)
    by_name = {r["file"].rsplit("/", 1)[-1]: r for r in results}
    expected = predictor.probabilities(images)
    for i in range(len(images)):
        got = by_name[f"{i:03d}.png"]["predictions"]
        assert got[0]["index"] == int(expected[i].argmax())
        probs = np.zeros(10)
        for p in got:
            probs[p["index"]] = p["probability"]
        np.testing.assert_allclose(probs, expected[i], rtol=0, atol=1e-6)
        assert np.array_equal(read_image(tmp_path / f"{i:03d}.png"), images[i])
    assert np.array_equal(read_image(tmp_path / "rgb.png"), images[0])


@pytest.mark.slow
def test_synthetic_photos_keep_their_label(dataset, predictor):
    rng = np.random.default_rng(7)
    idx = rng.choice(len(dataset.test_images), 120, replace=False)
    originals = dataset.test_images[idx]
    prepared = []
    for n, image in enumerate(originals):
        photo = synthetic_photo(image, rng)
        fmt = ("PNG", "JPEG", "WEBP")[n % 3]
        data = encode(photo, fmt, **({"quality": 92} if fmt != "PNG" else {}))
        prepared.append(read_image(data, f"photo {n}"))
    prepared = np.stack(prepared)
    on_tensors = predictor.probabilities(originals).argmax(1)
    on_photos = predictor.probabilities(prepared).argmax(1)
    kept = (on_photos == on_tensors).mean()
    assert kept >= 0.90, f"only {kept:.0%} of photos keep the label their dataset image gets"
    labels = dataset.test_labels[idx]
    assert (on_photos == labels).mean() >= (on_tensors == labels).mean() - 0.05


# ----------------------------------------------------------------------------
# The steps of the recipe
# ----------------------------------------------------------------------------


def test_photo_on_white_becomes_centred_item_on_black():
    photo = np.full((300, 500, 3), 255, np.uint8)
    photo[40:140, 30:230] = (20, 40, 200)  # a 200x100 blue item, far from the centre
    out = prepare(Image.fromarray(photo))
    assert out.shape == (28, 28) and out.dtype == np.uint8
    rows, cols = np.flatnonzero(out.max(1) > 0), np.flatnonzero(out.max(0) > 0)
    assert (cols[0], cols[-1]) == (0, 27)  # the longer edge fills 28 pixels
    assert (rows[0], rows[-1]) == (7, 20)  # 14 rows, centred: 7 above, 7 below
    assert out.max() == 255 and out[0, 0] == 0 and out[27, 27] == 0


def test_odd_margin_goes_left_and_top_like_the_dataset():
    photo = np.full((100, 280, 3), 255, np.uint8)
    photo[:, :] = 255
    photo[10:60, 0:280] = 0  # 280x50 -> 28x5: 23 spare rows
    out = prepare(Image.fromarray(photo))
    rows = np.flatnonzero(out.max(1) > 0)
    assert rows[0] == 12 and rows[-1] == 16  # 12 rows above, 11 below


def test_dark_background_is_not_negated():
    drawing = np.zeros((280, 280), np.uint8)
    drawing[50:230, 100:180] = 255  # white item on black, not 28x28
    out = prepare(Image.fromarray(drawing))
    assert out[14, 14] == 255 and out[0, 0] == 0


def test_transparency_counts_as_white_background():
    rgba = np.zeros((60, 60, 4), np.uint8)
    rgba[10:50, 20:40] = (30, 30, 30, 255)  # opaque dark item, transparent elsewhere
    out = prepare(Image.fromarray(rgba, "RGBA"))
    assert out[14, 14] == 255 and out[0, 0] == 0 and out[14, 2] == 0


def test_exif_orientation_is_applied():
    photo = np.full((100, 200, 3), 255, np.uint8)
    photo[20:80, 10:190] = 0  # wide item
    img = Image.fromarray(photo)
    exif = img.getexif()
    exif[0x0112] = 6  # stored sideways: view rotated 90 degrees
    data = encode(img, "JPEG", exif=exif, quality=95)
    out = read_image(data)
    rows, cols = np.flatnonzero(out.max(1) > 64), np.flatnonzero(out.max(0) > 64)
    assert len(rows) > len(cols)  # tall, as a viewer shows it


def test_sixteen_bit_png_is_scaled_not_clipped():
    deep = np.full((50, 50), 65535, np.uint16)
    deep[10:40, 15:35] = 1000
    img = Image.fromarray(deep)
    assert img.mode == "I;16"
    out = read_image(encode(img))
    assert out[14, 14] == 255 and out[0, 0] == 0


# ----------------------------------------------------------------------------
# Bad input: one line, a named file, no decoding of bombs
# ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "error", "message"),
    [
        (b"", ImageError, "empty file"),
        (b"just some text\n", UnsupportedImage, "not an image"),
        (b"GIF89a" + b"\0" * 3, UnsupportedImage, "not an image"),
        (encode(Image.new("RGB", (16, 16)), "TIFF"), UnsupportedImage, "not an image"),
        (encode(Image.new("RGB", (40, 40), (200, 10, 10))), ImageError, "no item found"),
    ],
)
def test_unreadable_bytes(data, error, message):
    with pytest.raises(error, match=message) as info:
        read_image(data, "up.bin")
    assert "\n" not in str(info.value) and str(info.value).startswith("up.bin")


def test_truncated_image():
    full = encode(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8))
    with pytest.raises(ImageError, match="truncated"):
        read_image(full[: len(full) // 2])


def test_decompression_bomb_is_refused_before_decoding():
    bomb = png_bomb(8000, 8000)  # 64 megapixels in about 60 kB
    assert len(bomb) < 200_000
    with pytest.raises(ImageTooLarge, match="64,000,000 pixels"):
        read_image(bomb)
    assert 8000 * 8000 > MAX_PIXELS
    with pytest.raises(ImageTooLarge):
        read_image(png_bomb(100, 100), max_pixels=5000)


def test_folder_and_missing_file_errors(tmp_path):
    with pytest.raises(ImageError, match="no images in this folder"):
        predict_files("unused", [tmp_path])
    with pytest.raises(ImageError, match="no such file or folder"):
        predict_files("unused", [tmp_path / "nope.png"])


# ----------------------------------------------------------------------------
# The command
# ----------------------------------------------------------------------------


@pytest.fixture()
def image_dir(dataset, tmp_path):
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(4):
        Image.fromarray(dataset.test_images[i]).save(folder / f"item{i}.png")
    (folder / "notes.txt").write_text("not an image, and not picked up by suffix")
    return folder


def test_cli_json(model_path, predictor, dataset, image_dir, capsys):
    assert (
        cli.main(["predict", "--model", str(model_path), str(image_dir), "--json", "--top-k", "2"])
        == 0
    )
    results = json.loads(capsys.readouterr().out)
    assert [r["file"].rsplit("/", 1)[-1] for r in results] == [f"item{i}.png" for i in range(4)]
    expected = predictor.probabilities(dataset.test_images[:4]).argmax(1)
    assert [r["predictions"][0]["index"] for r in results] == list(expected)
    assert all(len(r["predictions"]) == 2 for r in results)


def test_cli_text(model_path, image_dir, capsys):
    assert cli.main(["predict", "--model", str(model_path), str(image_dir / "item0.png")]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(str(image_dir / "item0.png")) and line.count("%") == 3


def test_cli_csv(model_path, predictor, dataset, image_dir, tmp_path):
    expected = predictor.probabilities(dataset.test_images[:4]).argmax(1)
    out = tmp_path / "p.csv"
    assert cli.main(["predict", "--model", str(model_path), str(image_dir), "--csv", str(out)]) == 0
    rows = list(csv.DictReader(out.open()))
    assert len(rows) == 4 * 3 and rows[0]["rank"] == "1"
    assert int(rows[0]["index"]) == expected[0]


def test_cli_bad_image_is_one_line_and_writes_nothing(model_path, image_dir, tmp_path, capsys):
    (image_dir / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    out = tmp_path / "p.csv"
    assert cli.main(["predict", "--model", str(model_path), str(image_dir), "--csv", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "broken.png" in err and "Traceback" not in err
    assert not out.exists()


def test_cli_bad_model_and_flags(image_dir, tmp_path, capsys):
    (tmp_path / "m.safetensors").write_bytes(b"not weights")
    (tmp_path / "m.json").write_text("{}")
    assert cli.main(["predict", "--model", str(tmp_path / "m.safetensors"), str(image_dir)]) == 2
    assert "not an fmnist model description" in capsys.readouterr().err
    assert cli.main(["predict", "--model", "m", str(image_dir), "--top-k", "0"]) == 2
    assert "--top-k 0" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["predict", "--model", "m", "x.png", "--json", "--csv", "out.csv"])
    assert exit_info.value.code == 2
