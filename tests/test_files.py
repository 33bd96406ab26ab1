"""Atomic writes: a finished file gets ordinary permissions; a failed write leaves nothing behind."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from morphstudio.files import atomic_path


def test_finished_file_has_ordinary_permissions(tmp_path: Path) -> None:
    out = tmp_path / "model.safetensors"
    with atomic_path(out) as tmp:
        assert tmp.parent == tmp_path and tmp.suffix == ".safetensors" and tmp != out
        tmp.write_bytes(b"data")
    umask = os.umask(0)
    os.umask(umask)
    assert out.read_bytes() == b"data"
    assert stat.S_IMODE(out.stat().st_mode) == 0o666 & ~umask  # not mkstemp's owner-only 0600
    assert [p.name for p in tmp_path.iterdir()] == ["model.safetensors"]


def test_failed_write_leaves_no_file(tmp_path: Path) -> None:
    out = tmp_path / "sheet.png"
    with pytest.raises(RuntimeError):
        with atomic_path(out) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("encoder crashed")
    assert list(tmp_path.iterdir()) == []
