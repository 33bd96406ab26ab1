"""Writing files so that nothing half-written ever looks finished."""

from __future__ import annotations

import os
import secrets
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

_NAME_TRIES = 100  # random 64-bit names: a clash is already astronomically unlikely once


def _create_temp(path: Path) -> Path:
    """Create an empty, new file beside ``path`` (keeping its extension) and return its name.

    The file is created with mode 0o666 and the kernel applies the process umask (and any default ACL) to it, as
    it does for any ordinary new file. That is why this is not ``tempfile.mkstemp``: its owner-only 0o600 would
    have to be widened afterwards, which needs the umask, and reading the umask means setting it, a process-wide
    change that races with every other thread creating files.
    """
    for _ in range(_NAME_TRIES):
        tmp = path.parent / f".{path.name}.{secrets.token_hex(8)}.part{path.suffix}"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
        except FileExistsError:
            continue
        os.close(fd)
        return tmp
    raise FileExistsError(f"no free temporary name beside {path} after {_NAME_TRIES} tries")


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` to write to; on success it replaces ``path``, on failure it is removed.

    The temporary name keeps ``path``'s extension (writers such as Pillow choose the format from it). It is created
    with the permissions an ordinary new file gets under the process umask, so the finished file has them too.
    """
    path = Path(path)
    tmp = _create_temp(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
