"""Write small synthetic IDX files for tests."""

from __future__ import annotations

import gzip
import hashlib
import struct
from pathlib import Path

import numpy as np

from fmnist.data import FILES


def idx_bytes(array: np.ndarray, code: int = 0x08) -> bytes:
    header = struct.pack(">BBBB", 0, 0, code, array.ndim) + struct.pack(
        f">{array.ndim}I", *array.shape
    )
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def synthetic_set(n_train: int = 50, n_test: int = 20, seed: int = 0) -> dict[str, bytes]:
    rng = np.random.default_rng(seed)
    out = {}
    for split, n in (("train", n_train), ("t10k", n_test)):
        out[f"{split}-images-idx3-ubyte"] = idx_bytes(
            rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        )
        out[f"{split}-labels-idx1-ubyte"] = idx_bytes(np.arange(n, dtype=np.uint8) % 10)
    return out


def checksums(files: dict[str, bytes]) -> dict:
    return {name: (len(raw), hashlib.sha256(raw).hexdigest()) for name, raw in files.items()}


def write_set(directory: Path, files: dict[str, bytes], gz: bool = True) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, raw in files.items():
        if gz:
            (directory / f"{name}.gz").write_bytes(gzip.compress(raw))
        else:
            (directory / name).write_bytes(raw)
    return directory


assert set(synthetic_set()) == set(FILES)
