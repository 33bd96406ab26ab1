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


def _proc_umask() -> int:
    # Read without setting it (Linux): the process umask as every thread sees it.
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("Umask:"):
            return int(line.split()[1], 8)
    raise AssertionError("/proc/self/status has no Umask line")


def test_writes_never_touch_the_umask_while_other_threads_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    calls: list[int] = []
    real = os.umask
    monkeypatch.setattr(os, "umask", lambda mask: (calls.append(mask), real(mask))[1])
    start = _proc_umask()
    seen: set[int] = set()
    stop = threading.Event()

    def watch() -> None:  # another thread, as a render's sink threads are
        while not stop.is_set():
            seen.add(_proc_umask())

    t = threading.Thread(target=watch)
    t.start()
    try:
        for i in range(200):
            with atomic_path(tmp_path / f"f{i}.bin") as tmp:
                tmp.write_bytes(b"x")
    finally:
        stop.set()
        t.join()
    assert calls == [] and seen == {start}
    assert len(list(tmp_path.iterdir())) == 200


def test_finished_file_follows_the_umask_in_force(tmp_path: Path) -> None:
    # A process whose umask is 027 gets 0640 files, as from any ordinary open(): the kernel applies it.
    import subprocess
    import sys

    code = ("import os, stat, sys; os.umask(0o027)\n"
            "from morphstudio.files import atomic_path\n"
            "p = sys.argv[1]\n"
            "with atomic_path(p) as tmp: tmp.write_bytes(b'x')\n"
            "print(oct(stat.S_IMODE(os.stat(p).st_mode)))")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "a.txt")], capture_output=True, text=True,
                         check=True, env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    assert out.stdout.strip() == "0o640"
