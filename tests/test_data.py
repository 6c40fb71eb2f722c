import gzip
import shutil

import numpy as np
import pytest

from fmnist import data
from fmnist.data import DataError, parse_idx, read_idx

from .idx import checksums, idx_bytes, synthetic_set, write_set


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """No real data reachable: empty cache, no env var, system dir pointing nowhere."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("FMNIST_DATA_DIR", raising=False)
    monkeypatch.setattr(data, "SYSTEM_DIR", tmp_path / "no-system-copy")
    return tmp_path


# ---- the parser ------------------------------------------------------------


@pytest.mark.parametrize(
    "dtype,code",
    [(np.uint8, 0x08), (np.int8, 0x09), (np.int16, 0x0B), (np.int32, 0x0C), (np.float32, 0x0D)],
)
def test_parse_roundtrip(dtype, code):
    a = (np.arange(2 * 3 * 4) - 7).astype(dtype).reshape(2, 3, 4)
    out = parse_idx(idx_bytes(a, code))
    assert out.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(out, a)


def test_parse_matches_numpy_reference_on_real_header():
    labels = np.array([9, 0, 0, 3], dtype=np.uint8)
    raw = idx_bytes(labels)
    assert raw[:8] == bytes([0, 0, 8, 1, 0, 0, 0, 4])
    np.testing.assert_array_equal(parse_idx(raw), labels)


@pytest.mark.parametrize(
    "raw,message",
    [
        (b"\x00\x00", "too short"),
        (b"\x08\x03\x00\x00" + bytes(100), "bad magic number"),
        (b"\x00\x00\x07\x01" + bytes(8), "unknown IDX type code"),
        (b"\x00\x00\x08\x00", "zero dimensions"),
        (b"\x00\x00\x08\x03\x00\x00\x00\x02", "truncated IDX header"),
    ],
)
def test_parse_rejects_bad_headers(raw, message):
    with pytest.raises(DataError, match=message):
        parse_idx(raw)


def test_parse_rejects_wrong_length():
    raw = idx_bytes(np.zeros((3, 28, 28), np.uint8))
    with pytest.raises(DataError, match="truncated or corrupt"):
        parse_idx(raw[:-1])
    with pytest.raises(DataError, match="truncated or corrupt"):
        parse_idx(raw + b"\x00")


def test_read_gzip_and_raw(tmp_path):
    a = np.arange(56, dtype=np.uint8).reshape(2, 28)
    (tmp_path / "a").write_bytes(idx_bytes(a))
    (tmp_path / "a.gz").write_bytes(gzip.compress(idx_bytes(a)))
    np.testing.assert_array_equal(read_idx(tmp_path / "a"), a)
    np.testing.assert_array_equal(read_idx(tmp_path / "a.gz"), a)


def test_truncated_gzip_is_a_clear_error(tmp_path):
    blob = gzip.compress(idx_bytes(np.zeros((10, 28, 28), np.uint8)))
    (tmp_path / "t.gz").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(DataError, match="corrupt or truncated gzip"):
        read_idx(tmp_path / "t.gz")


# ---- locating and verifying ------------------------------------------------


def test_synthetic_set_loads_with_its_checksums(isolated):
    files = synthetic_set(30, 10)
    d = write_set(isolated / "d", files)
    ds = data.load(d, download=False, checksums=checksums(files))
    assert ds.train_images.shape == (30, 28, 28) and ds.test_labels.shape == (10,)
    assert ds.origin == "--data-dir"
    assert ds.train_labels.dtype == np.int64


def test_checksum_mismatch_names_file_and_digests(isolated):
    files = synthetic_set()
    sums = checksums(files)
    d = write_set(isolated / "d", files, gz=False)
    raw = bytearray(files["train-images-idx3-ubyte"])
    raw[100] ^= 0xFF  # one flipped byte, same length: only the checksum can catch it
    (d / "train-images-idx3-ubyte").write_bytes(bytes(raw))
    with pytest.raises(DataError) as e:
        data.load(d, download=False, checksums=sums)
    msg = str(e.value)
    assert "train-images-idx3-ubyte" in msg and sums["train-images-idx3-ubyte"][1] in msg
    assert "delete" in msg and "\n" not in msg


def test_count_mismatch(isolated):
    files = synthetic_set(30, 10)
    files["train-labels-idx1-ubyte"] = idx_bytes(np.zeros(29, np.uint8))
    d = write_set(isolated / "d", files)
    with pytest.raises(DataError, match="30 train images but 29 labels"):
        data.load(d, download=False, checksums=checksums(files))


def test_label_out_of_range(isolated):
    files = synthetic_set(30, 10)
    files["t10k-labels-idx1-ubyte"] = idx_bytes(np.full(10, 10, np.uint8))
    d = write_set(isolated / "d", files)
    with pytest.raises(DataError, match="not a class index"):
        data.load(d, download=False, checksums=checksums(files))


def test_real_checksums_reject_synthetic_data(isolated):
    d = write_set(isolated / "d", synthetic_set())
    with pytest.raises(DataError, match="checksum mismatch"):
        data.load(d, download=False)


def test_missing_data_says_how_to_get_it(isolated):
    with pytest.raises(DataError) as e:
        data.load(download=False)
    assert "dataset-fashion-mnist" in str(e.value) and "--data-dir" in str(e.value)


def test_search_order(isolated, monkeypatch):
    files = synthetic_set()
    sums = checksums(files)
    system = write_set(isolated / "system", files)
    monkeypatch.setattr(data, "SYSTEM_DIR", system)
    assert data.load(download=False, checksums=sums).origin.startswith("system package")
    write_set(isolated / "cache" / "fmnist", files)
    assert data.load(download=False, checksums=sums).origin == "user cache"
    env = write_set(isolated / "env", files)
    monkeypatch.setenv("FMNIST_DATA_DIR", str(env))
    assert data.load(download=False, checksums=sums).directory == env
    flag = write_set(isolated / "flag", files)
    assert data.load(flag, download=False, checksums=sums).directory == flag


def test_a_named_folder_is_the_only_place_looked(isolated, monkeypatch):
    files = synthetic_set()
    monkeypatch.setattr(data, "SYSTEM_DIR", write_set(isolated / "system", files))
    with pytest.raises(DataError, match="empty"):
        data.load(isolated / "empty", download=False, checksums=checksums(files))
    monkeypatch.setenv("FMNIST_DATA_DIR", str(isolated / "empty"))
    with pytest.raises(DataError, match="empty"):
        data.load(download=False, checksums=checksums(files))


def test_leftover_partial_download_is_not_data(isolated):
    files = synthetic_set()
    d = write_set(isolated / "d", files)
    shutil.move(d / "train-images-idx3-ubyte.gz", d / ".train-images-idx3-ubyte.abc.part")
    assert not data.has_files(d)


def test_real_data(dataset):
    assert dataset.train_images.shape == (60000, 28, 28)
    assert dataset.test_images.shape == (10000, 28, 28)
    assert (data.class_counts(dataset.train_labels) == 6000).all()
    assert (data.class_counts(dataset.test_labels) == 1000).all()
    assert dataset.sha256 == {k: v[1] for k, v in data.FILES.items()}


# ---- splits ----------------------------------------------------------------


def test_stratified_split(dataset):
    labels = dataset.train_labels
    train, val = data.stratified_split(labels, 0.2, seed=1)
    assert len(train) == 48000 and len(val) == 12000
    assert len(np.intersect1d(train, val)) == 0
    assert (data.class_counts(labels[val]) == 1200).all()
    again, _ = data.stratified_split(labels, 0.2, seed=1)
    other, _ = data.stratified_split(labels, 0.2, seed=2)
    np.testing.assert_array_equal(train, again)
    assert not np.array_equal(train, other)
