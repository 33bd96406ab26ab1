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

from morphstudio import api
from morphstudio.errors import RenderError
from morphstudio.rendering import engine
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


class Calls:
    """Counts the expensive steps a render takes before it writes: loading the model, planning (calibration)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.model = self.plan = 0
        real_generator, real_plan = api.Scene.generator, engine.plan_render

        def generator(scene: api.Scene):
            self.model += 1
            return real_generator(scene)

        def plan_render(*args, **kwargs):
            self.plan += 1
            return real_plan(*args, **kwargs)

        monkeypatch.setattr(api.Scene, "generator", generator)
        monkeypatch.setattr(engine, "plan_render", plan_render)


def test_issue_repro_two_renders_to_one_output(capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch,
                                               tmp_path: Path) -> None:
    """A slow render in another process holds the output; a second render (the CLI) fails at once — before it
    loads the model or plans (calibrates) anything — touches nothing, and the first one completes with every
    frame."""
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
        calls = Calls(monkeypatch)
        rc, _, err = cli(capsys, "render", str(scene), "-o", str(out), "-q")
        assert rc == 2 and err.startswith(
            f"error: -o/--output: {out} is being written by another render (pid {first.pid} on "
            f"{socket.gethostname()}): wait for it to finish or choose another output (lock file "
            f"{tmp_path / '.shared.mkv.lock'})"), err
        assert len(err.strip().splitlines()) == 1
        assert first.poll() is None, "the first render should still be running (the check is too slow to count)"
        # The refused render did not touch the first one's parts folder (new segments may have appeared).
        parts_after = snapshot(tmp_path / ".shared.mkv.parts")
        assert {k: v for k, v in parts_before.items() if k.startswith("seg_")}.items() <= parts_after.items()
        assert (calls.model, calls.plan) == (0, 0)
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


def test_a_held_lock_refuses_at_once_for_every_codec(gen: TinyGen, monkeypatch: pytest.MonkeyPatch,
                                                     tmp_path: Path) -> None:
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
        calls = Calls(monkeypatch)
        try:
            with pytest.raises(RenderError) as info:
                render_latents(gen, tiny_latents(N), N, FPS, progress=False,
                               output=OutputSettings(path=str(out), codec=codec, fps=FPS, segment_seconds=0.5))
        finally:
            os.close(fd)
        assert calls.plan == 0  # refused before any planning or calibration
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


def test_a_planning_error_after_the_lock_leaves_nothing(gen: TinyGen, tmp_path: Path) -> None:
    """The lock (and the folders made for it) come before planning; a plan that fails gives them back."""
    out = tmp_path / "new" / "deeper" / "v.mkv"
    with pytest.raises(RenderError, match="--batch must be at least 1, got 0"):
        render_latents(gen, tiny_latents(N), N, FPS, progress=False, batch=0,
                       output=OutputSettings(path=str(out), codec="ffv1", fps=FPS))
    assert list(tmp_path.iterdir()) == []
    render_latents(gen, tiny_latents(N), N, FPS, progress=False, batch=8,
                   output=OutputSettings(path=str(out), codec="ffv1", fps=FPS))
    assert decode(out)[1].shape[0] == N and not (out.parent / ".v.mkv.lock").exists()


def test_a_model_that_fails_to_load_releases_the_lock(capsys: pytest.CaptureFixture,
                                                      monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The CLI takes the lock before the model loads; a load that fails leaves no lock and no new folder."""
    def broken(scene: api.Scene):
        raise RenderError("model: cannot read the checkpoint (test)")

    monkeypatch.setattr(api.Scene, "generator", broken)
    scene = write_scene(tmp_path, "path: x.mkv, codec: ffv1")
    before = snapshot(tmp_path)
    rc, _, err = cli(capsys, "render", str(scene), "-o", str(tmp_path / "new" / "v.mkv"), "-q")
    assert rc == 2 and err.strip() == "error: model: cannot read the checkpoint (test)"
    assert snapshot(tmp_path) == before
