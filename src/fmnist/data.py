"""Fashion-MNIST: find, verify and parse the four IDX files; splits; exclude lists; export.

Sources are tried in the order of DESIGN.md: --data-dir, $FMNIST_DATA_DIR, the
user cache, the system copy of the Debian/Ubuntu package `dataset-fashion-mnist`,
then a download into the cache. Every file is checked by the SHA-256 of its
decompressed bytes, so a gzip made by another tool still verifies.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import json
import os
import shutil
import tempfile
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fmnist.errors import FmnistError
from fmnist.files import make_folders, regular_file

CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)

# name -> (decompressed bytes, sha256 of the decompressed bytes)
FILES = {
    "train-images-idx3-ubyte": (
        47040016,
        "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    ),
    "train-labels-idx1-ubyte": (
        60008,
        "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    ),
    "t10k-images-idx3-ubyte": (
        7840016,
        "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    ),
    "t10k-labels-idx1-ubyte": (
        10008,
        "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    ),
}

MIRRORS = (
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    "https://storage.googleapis.com/tensorflow/tf-keras-datasets/",
    "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
)

SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")

HOW_TO_GET = (
    "install it with `sudo apt-get install dataset-fashion-mnist` (Debian/Ubuntu), "
    "point --data-dir or $FMNIST_DATA_DIR at a folder holding the four IDX files, "
    "or run `fmnist data --download`"
)

# IDX type codes (http://yann.lecun.com/exdb/mnist/): code -> big-endian dtype
_IDX_TYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


class DataError(FmnistError):
    pass


# ----------------------------------------------------------------------------
# Parse
# ----------------------------------------------------------------------------


def parse_idx(raw: bytes, name: str = "IDX data") -> np.ndarray:
    """Parse one IDX file's decompressed bytes; refuse anything not exactly well-formed."""
    if len(raw) < 4:
        raise DataError(f"{name}: {len(raw)} bytes is too short for an IDX header")
    if raw[0] != 0 or raw[1] != 0:
        raise DataError(
            f"{name}: bad magic number 0x{raw[:4].hex()} (an IDX file starts with two zero bytes)"
        )
    code, ndim = raw[2], raw[3]
    if code not in _IDX_TYPES:
        raise DataError(f"{name}: unknown IDX type code 0x{code:02x}")
    if ndim == 0:
        raise DataError(f"{name}: IDX header declares zero dimensions")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{name}: truncated IDX header ({len(raw)} of {header} bytes)")
    dims = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    dtype = _IDX_TYPES[code]
    expected = header + int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    if len(raw) != expected:
        raise DataError(
            f"{name}: {len(raw)} bytes, but its header {dims} of {dtype.name} needs exactly "
            f"{expected}; the file is truncated or corrupt"
        )
    return np.frombuffer(raw, dtype, offset=header).reshape(dims).astype(dtype.newbyteorder("="))


def read_bytes(path: Path, limit: int | None = None) -> bytes:
    """The decompressed bytes of a raw or gzipped file (at most `limit` + 1 of them)."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            gzipped = f.read(2) == b"\x1f\x8b"
        opener = gzip.open if gzipped else open
        with opener(path, "rb") as f:
            return f.read(-1 if limit is None else limit + 1)
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except (EOFError, gzip.BadGzipFile, zlib.error) as e:
        raise DataError(
            f"{path}: corrupt or truncated gzip ({e}); delete it and fetch it again"
        ) from None
    except OSError as e:
        raise DataError(f"{path}: cannot read ({e.strerror or e})") from None


def read_idx(path: Path) -> np.ndarray:
    return parse_idx(read_bytes(path), str(path))


# ----------------------------------------------------------------------------
# Locate and verify
# ----------------------------------------------------------------------------


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "fmnist"


def find_file(directory: Path, name: str) -> Path | None:
    for candidate in (directory / f"{name}.gz", directory / name):
        if candidate.is_file():
            return candidate
    return None


def has_files(directory: Path) -> bool:
    return all(find_file(directory, name) for name in FILES)


def candidates(data_dir: str | os.PathLike | None = None) -> list[tuple[str, Path]]:
    """The places looked at, in order, as (origin, directory).

    A folder named by --data-dir or $FMNIST_DATA_DIR is the only place looked at:
    a user who names a folder never silently gets data from somewhere else.
    """
    if data_dir is not None:
        return [("--data-dir", Path(data_dir))]
    if os.environ.get("FMNIST_DATA_DIR"):
        return [("$FMNIST_DATA_DIR", Path(os.environ["FMNIST_DATA_DIR"]))]
    return [
        ("user cache", cache_dir()),
        ("system package dataset-fashion-mnist", SYSTEM_DIR),
    ]


def verify_bytes(raw: bytes, name: str, path: Path, checksums: dict = FILES) -> str:
    size, expected = checksums[name]
    found = hashlib.sha256(raw).hexdigest()
    if len(raw) != size or found != expected:
        raise DataError(
            f"{path}: checksum mismatch for {name} (expected sha256 {expected}, "
            f"found {found}, {len(raw)} bytes); delete this copy and fetch it again"
        )
    return found


@dataclass(frozen=True)
class FashionMNIST:
    """The whole dataset in memory: uint8 images (N, 28, 28) and int64 labels (N,)."""

    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    directory: Path
    origin: str
    sha256: dict = field(default_factory=dict)


def _load_dir(directory: Path, origin: str, checksums: dict) -> FashionMNIST:
    arrays, digests = {}, {}
    for name in FILES:
        path = find_file(directory, name)
        if path is None:
            raise DataError(f"{directory}: {name}[.gz] is missing; {HOW_TO_GET}")
        raw = read_bytes(path, limit=checksums[name][0])
        digests[name] = verify_bytes(raw, name, path, checksums)
        arrays[name] = parse_idx(raw, str(path))
    parts = []
    for split in ("train", "t10k"):
        images, labels = arrays[f"{split}-images-idx3-ubyte"], arrays[f"{split}-labels-idx1-ubyte"]
        if images.ndim != 3 or images.shape[1:] != (28, 28) or images.dtype != np.uint8:
            raise DataError(
                f"{directory}: {split} images are {images.shape}, not (N, 28, 28) uint8"
            )
        if labels.ndim != 1 or len(labels) != len(images):
            raise DataError(
                f"{directory}: {len(images)} {split} images but {len(labels)} labels; "
                "the files do not belong together"
            )
        if labels.size and labels.max() >= len(CLASSES):
            raise DataError(f"{directory}: {split} label {labels.max()} is not a class index 0-9")
        parts += [images, labels.astype(np.int64)]
    return FashionMNIST(*parts, directory=directory, origin=origin, sha256=digests)


def load(
    data_dir: str | os.PathLike | None = None,
    download: bool = True,
    mirrors: tuple[str, ...] = MIRRORS,
    checksums: dict = FILES,
) -> FashionMNIST:
    """Find, verify and parse Fashion-MNIST; download it into the cache as a last resort."""
    places = candidates(data_dir)
    for origin, directory in places:
        if has_files(directory):
            return _load_dir(directory, origin, checksums)
    if not download:
        if data_dir is not None or len(places) == 1:
            d = places[0][1]
            missing = [n for n in FILES if not find_file(d, n)]
            raise DataError(f"{d}: missing {', '.join(missing)}; {HOW_TO_GET}")
        looked = ", ".join(str(d) for _, d in places)
        raise DataError(f"Fashion-MNIST not found (looked in {looked}); {HOW_TO_GET}")
    target = places[0][1]  # the named folder, else the user cache
    fetch(target, mirrors, checksums)
    return _load_dir(target, f"downloaded into {target}", checksums)


# ----------------------------------------------------------------------------
# Download
# ----------------------------------------------------------------------------


def _download_one(url: str, name: str, target: Path, checksums: dict, timeout: float) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".part", dir=target)
    try:
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
            while chunk := resp.read1(1 << 16):
                out.write(chunk)
        raw = read_bytes(Path(tmp), limit=checksums[name][0])
        parse_idx(raw, url)
        verify_bytes(raw, name, Path(url), checksums)
        os.replace(tmp, target / (f"{name}.gz" if _is_gzip(tmp) else name))
        tmp = None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


def _is_gzip(path: str) -> bool:
    with open(path, "rb") as f:
        return f.read(2) == b"\x1f\x8b"


def fetch(
    target: Path,
    mirrors: tuple[str, ...] = MIRRORS,
    checksums: dict = FILES,
    timeout: float = 30.0,
    log=print,
) -> None:
    """Download any missing file into `target`: temporary file, verify, then rename."""
    target = Path(target)
    try:
        made = make_folders(target)
    except OSError as e:
        raise DataError(f"{target}: cannot create the data folder ({e.strerror or e})") from None
    try:
        _fetch_into(target, mirrors, checksums, timeout, log)
    except BaseException:
        if made:  # a folder this call made holds nothing but what it downloaded
            shutil.rmtree(made[-1], ignore_errors=True)
        raise


def _fetch_into(target: Path, mirrors, checksums: dict, timeout: float, log) -> None:
    if not os.access(target, os.W_OK):
        raise DataError(f"{target}: not writable; choose another --data-dir")
    for name in FILES:
        if find_file(target, name):
            continue
        errors = []
        for mirror in mirrors:
            url = f"{mirror.rstrip('/')}/{name}.gz"
            log(f"downloading {url}")
            try:
                _download_one(url, name, target, checksums, timeout)
                break
            except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as e:
                errors.append(f"{url}: {getattr(e, 'reason', None) or e}")
            except DataError as e:
                errors.append(str(e))
        else:
            raise DataError(
                f"could not download {name} from any mirror ({errors[-1] if errors else 'none'}); "
                f"{HOW_TO_GET.split(', or run')[0]}"
            )


# ----------------------------------------------------------------------------
# Splits and batches
# ----------------------------------------------------------------------------


def stratified_split(
    labels: np.ndarray, val_fraction: float = 0.2, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Seeded train/validation indices with each class split in the same proportion."""
    if not 0.0 <= val_fraction < 1.0:
        raise DataError(f"validation fraction {val_fraction} must be in [0, 1)")
    rng = np.random.default_rng(seed)
    train, val = [], []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        rng.shuffle(idx)
        n_val = int(round(len(idx) * val_fraction))
        val.append(idx[:n_val])
        train.append(idx[n_val:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))


def run_split(
    labels: np.ndarray,
    val_fraction: float = 0.2,
    seed: int = 0,
    train_limit: int = 0,
    all_data: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """The training and validation indices a run uses: the stratified split (or, with
    all_data, every training image and no validation), then a seeded random subset of
    train_limit images of the training part, so every class keeps its share."""
    if all_data:
        train_idx, val_idx = np.arange(len(labels)), np.arange(0)
    else:
        train_idx, val_idx = stratified_split(labels, val_fraction, seed)
    if train_limit:
        pick = np.random.default_rng(seed).permutation(len(train_idx))[:train_limit]
        train_idx = np.sort(train_idx[pick])
    return train_idx, val_idx


def class_counts(labels: np.ndarray) -> np.ndarray:
    return np.bincount(labels, minlength=len(CLASSES))


# ----------------------------------------------------------------------------
# Training images to leave out (fmnist train --exclude)
# ----------------------------------------------------------------------------

AUDIT_FORMAT = "fmnist-audit/1"


# an audit of all 70,000 images, indented, is a few megabytes; a list of indices, less
MAX_EXCLUDE_BYTES = 64 * 2**20


def read_exclude(path) -> tuple[list[int], str]:
    """(indices, sha256) of the training images an --exclude file names: an audit's JSON
    (its `exclude.train`), a JSON list of indices, or one index per line. Anything else
    (an empty file, a list of lists, fractions, negative numbers) is refused naming the
    first entry that is not an index."""
    regular_file(path, "list of indices", DataError)
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_EXCLUDE_BYTES + 1)
    except OSError as e:
        raise DataError(f"--exclude {path}: cannot read ({e.strerror or e})") from None
    if len(raw) > MAX_EXCLUDE_BYTES:
        raise DataError(
            f"--exclude {path}: over {MAX_EXCLUDE_BYTES >> 20} MiB; not a list of indices"
        )
    digest = hashlib.sha256(raw).hexdigest()
    text = raw.decode("utf-8", errors="replace").strip()
    if not text:
        raise DataError(
            f"--exclude {path}: the file is empty; give the training images to leave out "
            "(an audit.json, or indices), or leave --exclude out"
        )
    indices = _exclude_json(text, path) if text[0] in "[{" else _exclude_lines(text, path)
    for n, i in enumerate(indices, 1):
        if isinstance(i, bool) or not isinstance(i, int) or i < 0:
            what = "a list (one index per entry)" if isinstance(i, list) else str(i)[:40]
            raise DataError(
                f"--exclude {path}: not a list of training image indices (0, 1, ...): "
                f"entry {n} is {what}"
            )
    return sorted(set(indices)), digest


def _exclude_json(text: str, path) -> list:
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError) as e:
        raise DataError(f"--exclude {path}: not readable JSON ({str(e)[:100]})") from None
    if isinstance(obj, dict):
        if obj.get("format") != AUDIT_FORMAT:
            raise DataError(f"--exclude {path}: a JSON object that is not an fmnist audit")
        exclude = obj.get("exclude")
        obj = exclude.get("train") if isinstance(exclude, dict) else None
        if not isinstance(obj, list):
            raise DataError(f"--exclude {path}: an audit without a list at exclude.train")
    if not isinstance(obj, list):
        raise DataError(f"--exclude {path}: not a list of training image indices (0, 1, ...)")
    return obj


def _exclude_lines(text: str, path) -> list[int]:
    indices = []
    for n, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                indices.append(int(line.strip()))
            except ValueError:
                raise DataError(
                    f"--exclude {path}: line {n} is not an image index: {line.strip()!r:.40}"
                ) from None
    return indices
