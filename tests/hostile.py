"""What every hostile-input test checks of one run of the command line."""

from __future__ import annotations

import os
from pathlib import Path


def listing(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in Path(folder).rglob("*")} if folder else set()


def assert_kept_promise(result, command: str, cwd: Path, before: set[str]) -> None:
    """Exit 0 or 2, never a traceback or a hang; a 2 is one line on stderr naming the
    command, and leaves the folder as it was."""
    where = f"fmnist {command}: rc={result.rc}\nstderr: {result.stderr[-2000:]}"
    assert not result.hung, f"hung: {where}"
    assert result.rc in (0, 2), where
    assert "Traceback" not in result.stderr, where
    if result.rc == 2:
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, where
        assert lines[0].startswith(f"fmnist {command}: error: "), where
        assert listing(cwd) == before, f"left behind {listing(cwd) - before}: {where}"


def write_file(path: Path, content: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, str):
        content = content.encode()
    path.write_bytes(content)
    return path


def fifo(path: Path) -> Path:
    if not os.path.lexists(path):
        os.mkfifo(path)
    return path
