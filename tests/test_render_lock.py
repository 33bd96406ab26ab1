"""One render per output at a time (issue 7, item 2): a lock file with the owner's host and pid beside the output.

The issue's repro: two renders to the same output used to delete each other's parts folder and both crash. Now
the second fails at once with one line naming the first, and the first finishes untouched.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from test_output_safety import cli, snapshot, write_scene
from test_render_tinygen import TinyGen, decode, tiny_latents

from morphstudio.errors import RenderError
from morphstudio.rendering.renderer import OutputSettings, render_latents
from morphstudio.sinks.base import Sink, StreamInfo

N = 48
FPS = 24.0

SLOW_RENDER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    sys.path.insert(0, {tests!r})
    from test_render_tinygen import TinyGen, tiny_latents
    from morphstudio.rendering.renderer import OutputSettings, render_latents
    fn = tiny_latents({n})
    marker = Path({marker!r})
    go = Path({marker!r} + ".go")
    def slow(frames):
        marker.write_text("running")
        # Held until the test's second render has tried (however long its planning takes on a busy machine).
        deadline = time.time() + 120
        while not go.exists() and time.time() < deadline:
            time.sleep(0.05)
        return fn(frames)
    render_latents(TinyGen(resolution=16).eval(), slow, {n}, {fps}, fingerprint="fp", batch=4, progress=False,
                   output=OutputSettings(path={out!r}, codec="ffv1", fps={fps}, segment_seconds=0.5))
    print("first render done")
""")


@pytest.fixture(scope="module")
def gen() -> TinyGen:
    return TinyGen(resolution=16).eval()


def test_issue_repro_two_renders_to_one_output(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    """A slow render in another process holds the output; a second render (the CLI) fails at once, touches
    nothing, and the first one completes with every frame."""
    out = tmp_path / "shared.mkv"
    marker = tmp_path / "started"
    script = SLOW_RENDER.format(tests=str(Path(__file__).parent), n=N, fps=FPS, out=str(out), marker=str(marker))
    first = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 120
        while not marker.exists():
            assert first.poll() is None, first.stderr.read().decode() if first.stderr else ""
            assert time.time() < deadline
            time.sleep(0.02)
        other = tmp_path / "elsewhere"
        other.mkdir()
        scene = write_scene(other, "path: x.mkv, codec: ffv1")
        parts_before = snapshot(tmp_path / ".shared.mkv.parts")
        t0 = time.perf_counter()
        rc, _, err = cli(capsys, "render", str(scene), "-o", str(out), "-q")
        took = time.perf_counter() - t0
        assert rc == 2 and err.startswith(
            f"error: -o/--output: {out} is being written by another render (pid {first.pid} on "
            f"{socket.gethostname()}): wait for it to finish or choose another output (lock file "
            f"{tmp_path / '.shared.mkv.lock'})"), err
        assert len(err.strip().splitlines()) == 1
        assert first.poll() is None, "the first render should still be running (the check is too slow to count)"
        # The refused render did not touch the first one's parts folder (new segments may have appeared).
        parts_after = snapshot(tmp_path / ".shared.mkv.parts")
        assert {k: v for k, v in parts_before.items() if k.startswith("seg_")}.items() <= parts_after.items()
        assert took < 30
    finally:
        Path(str(marker) + ".go").write_text("go")
        stdout, stderr = first.communicate(timeout=300)
    assert first.returncode == 0, stderr.decode()
    assert decode(out)[1].shape[0] == N
    assert not (tmp_path / ".shared.mkv.lock").exists() and not (tmp_path / ".shared.mkv.parts").exists()


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_stale_lock_of_a_dead_render_is_taken_over(gen: TinyGen, tmp_path: Path) -> None:
    out = tmp_path / "v.mkv"
    lock = tmp_path / ".v.mkv.lock"
    pid = dead_pid()
    lock.write_text(json.dumps({"host": socket.gethostname(), "pid": pid}))
    notes: list[str] = []
    res = render_latents(gen, tiny_latents(N), N, FPS, progress=False, log=notes.append,
                         output=OutputSettings(path=str(out), codec="ffv1", fps=FPS, segment_seconds=0.5))
    expected = (f"note: took over the lock {lock} of an earlier render (pid {pid} on {socket.gethostname()}) that "
                "is no longer running")
    assert notes == [expected] and res.notes == [expected]
    assert decode(out)[1].shape[0] == N and not lock.exists()


def test_a_held_lock_refuses_at_once_for_every_codec(gen: TinyGen, tmp_path: Path) -> None:
    """Another process holding the lock (flock) on this host: refused before anything is written."""
    decoy = tmp_path / "decoy"
    decoy.mkdir()
    (decoy / "keep.txt").write_text("mine")
    for name, codec in (("v.mkv", "ffv1"), ("a.gif", "gif"), ("frames", "png")):
        out = tmp_path / name
        lock = tmp_path / f".{name}.lock"
        lock.write_text(json.dumps({"host": socket.gethostname(), "pid": 4242}))
        fd = os.open(lock, os.O_RDWR)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a separate open file: conflicts like another process
        before = snapshot(tmp_path)
        try:
            with pytest.raises(RenderError) as info:
                render_latents(gen, tiny_latents(N), N, FPS, progress=False,
                               output=OutputSettings(path=str(out), codec=codec, fps=FPS, segment_seconds=0.5))
        finally:
            os.close(fd)
        assert str(info.value) == (f"output.path: {out} is being written by another render (pid 4242 on "
                                   f"{socket.gethostname()}): wait for it to finish or choose another output "
                                   f"(lock file {lock})")
        assert snapshot(tmp_path) == before
        lock.unlink()


def test_a_lock_from_another_host_is_never_taken_over(gen: TinyGen, tmp_path: Path) -> None:
    out = tmp_path / "v.gif"
    lock = tmp_path / ".v.gif.lock"
    lock.write_text(json.dumps({"host": "render-farm-7", "pid": 99}))
    with pytest.raises(RenderError) as info:
        render_latents(gen, tiny_latents(N), N, FPS, progress=False,
                       output=OutputSettings(path=str(out), codec="gif", fps=FPS))
    assert str(info.value) == (f"output.path: {out} is locked by a render on another host (pid 99 on "
                               f"render-farm-7); if none is running there, delete {lock}")
    assert json.loads(lock.read_text()) == {"host": "render-farm-7", "pid": 99} and not out.exists()


class LockSpy(Sink):
    """Records, at each batch, whether the lock file exists and what it says."""

    def __init__(self, lock: Path) -> None:
        self.lock = lock
        self.seen: list[dict] = []

    def open(self, info: StreamInfo) -> None:
        pass

    def write(self, first_index: int, frames: np.ndarray) -> None:
        self.seen.append(json.loads(self.lock.read_text()) if self.lock.exists() else {})

    def close(self) -> None:
        pass


@pytest.mark.parametrize(("name", "codec"), [("a.gif", "gif"), ("frames", "png"), ("v.mkv", "ffv1")])
def test_the_lock_sits_beside_the_output_while_rendering(gen: TinyGen, tmp_path: Path, name: str,
                                                         codec: str) -> None:
    lock = tmp_path / f".{name}.lock"
    spy = LockSpy(lock)
    render_latents(gen, tiny_latents(N), N, FPS, progress=False, batch=8, sinks=[spy],
                   output=OutputSettings(path=str(tmp_path / name), codec=codec, fps=FPS, segment_seconds=0.5))
    assert spy.seen and all(s.get("pid") == os.getpid() and s.get("host") == socket.gethostname()
                            for s in spy.seen)
    assert not lock.exists()


def test_a_failed_render_releases_its_lock(gen: TinyGen, tmp_path: Path) -> None:
    def broken(frames):
        raise ValueError("latents exploded")

    with pytest.raises(ValueError):
        render_latents(gen, broken, N, FPS, progress=False,
                       output=OutputSettings(path=str(tmp_path / "v.mkv"), codec="ffv1", fps=FPS))
    assert not (tmp_path / ".v.mkv.lock").exists()
    render_latents(gen, tiny_latents(N), N, FPS, progress=False,
                   output=OutputSettings(path=str(tmp_path / "v.mkv"), codec="ffv1", fps=FPS))
    assert decode(tmp_path / "v.mkv")[1].shape[0] == N
