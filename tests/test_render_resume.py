"""A render that dies part-way leaves no output, keeps its finished segments, and ``resume`` completes it with
exactly the frames of an uninterrupted render, without re-encoding what was finished."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from test_render_tinygen import TinyGen, decode, tiny_latents

from morphstudio.rendering.renderer import OutputSettings, render_latents
from morphstudio.sinks.segmented import parts_dir_for
from morphstudio.sinks.base import Sink, StreamInfo

FPS = 24.0
N = 48  # 4 segments of 12 frames


class Boom(RuntimeError):
    pass


class FailAfter(Sink):
    """A sink that raises after ``k`` frames (a crash somewhere in the pipeline)."""

    def __init__(self, k: int) -> None:
        self.k = k
        self.seen = 0

    def open(self, info: StreamInfo) -> None:
        pass

    def write(self, first_index: int, frames: np.ndarray) -> None:
        self.seen += len(frames)
        if self.seen > self.k:
            raise Boom(f"failed after {self.k} frames")

    def close(self) -> None:
        pass


@pytest.fixture(scope="module")
def gen() -> TinyGen:
    return TinyGen(resolution=16).eval()


def settings(path: Path) -> OutputSettings:
    return OutputSettings(path=str(path), codec="ffv1", fps=FPS, segment_seconds=0.5)


def segment_files(parts: Path) -> dict[str, float]:
    return {p.name: p.stat().st_mtime_ns for p in parts.glob("seg_*")}


def test_failed_render_then_resume(gen: TinyGen, tmp_path: Path) -> None:
    fn = tiny_latents(N)
    ref = tmp_path / "ref.mkv"
    render_latents(gen, fn, N, FPS, output=settings(ref), batch=4, fingerprint="fp", progress=False)

    out = tmp_path / "out.mkv"
    with pytest.raises(Boom):
        render_latents(gen, fn, N, FPS, output=settings(out), batch=4, fingerprint="fp", sinks=[FailAfter(30)],
                       progress=False)
    parts = parts_dir_for(out)
    assert not out.exists()
    assert not list(tmp_path.glob(".out.mkv.partial*"))
    done = segment_files(parts)
    assert {"seg_000000-000012.mkv", "seg_000012-000024.mkv"} <= set(done)
    assert not list(parts.glob("*.partial"))  # the unfinished segment was deleted

    time.sleep(0.02)
    res = render_latents(gen, fn, N, FPS, output=settings(out), batch=4, fingerprint="fp", resume=True,
                         progress=False)
    assert res.reused_segments == len(done)
    np.testing.assert_array_equal(decode(out)[1], decode(ref)[1])
    assert not parts.exists()


def test_interrupt_keeps_finished_segments_and_resume_reuses_them(gen: TinyGen, tmp_path: Path) -> None:
    fn = tiny_latents(N)

    def interrupted(frames):
        if max(frames) >= 30:
            raise KeyboardInterrupt
        return fn(frames)

    out = tmp_path / "out.mkv"
    with pytest.raises(KeyboardInterrupt):
        render_latents(gen, interrupted, N, FPS, output=settings(out), batch=4, fingerprint="fp", progress=False)
    parts = parts_dir_for(out)
    before = segment_files(parts)
    assert set(before) == {"seg_000000-000012.mkv", "seg_000012-000024.mkv"} and not out.exists()

    res = render_latents(gen, fn, N, FPS, output=settings(out), batch=4, fingerprint="fp", resume=True,
                         progress=False, sinks=[Spy()])
    assert res.reused_segments == 2
    assert Spy.frames == list(range(24, 48))  # only the missing frames were generated
    assert decode(out)[1].shape[0] == N


class Spy(Sink):
    frames: list[int] = []  # noqa: RUF012 - read back by the test after the render

    def open(self, info: StreamInfo) -> None:
        Spy.frames = []

    def write(self, first_index: int, frames: np.ndarray) -> None:
        Spy.frames.extend(range(first_index, first_index + len(frames)))

    def close(self) -> None:
        pass


def test_reuse_is_checked(gen: TinyGen, tmp_path: Path) -> None:
    """Different fingerprint -> start over; without --resume the parts folder is replaced."""
    fn = tiny_latents(N)
    out = tmp_path / "out.mkv"
    with pytest.raises(Boom):
        render_latents(gen, fn, N, FPS, output=settings(out), batch=4, fingerprint="fp", sinks=[FailAfter(30)],
                       progress=False)
    res = render_latents(gen, fn, N, FPS, output=settings(out), fingerprint="other", resume=True, progress=False)
    assert res.reused_segments == 0 and any("starting over" in n for n in res.notes)

    with pytest.raises(Boom):
        render_latents(gen, fn, N, FPS, output=settings(out), batch=4, fingerprint="fp", sinks=[FailAfter(30)],
                       progress=False)
    finished = segment_files(parts_dir_for(out))
    assert "seg_000012-000024.mkv" in finished
    # Same fingerprint but the latents of segment 1 (frames 12..23) changed: it alone is re-rendered.
    def changed(frames):
        ws = fn(frames)
        ws[np.asarray(list(frames)) == 20] += 1
        return ws

    res = render_latents(gen, changed, N, FPS, output=settings(out), fingerprint="fp", resume=True, progress=False)
    assert res.reused_segments == len(finished) - 1

    with pytest.raises(Boom):
        render_latents(gen, fn, N, FPS, output=settings(out), batch=4, fingerprint="fp", sinks=[FailAfter(30)],
                       progress=False)
    res = render_latents(gen, fn, N, FPS, output=settings(out), fingerprint="fp", resume=False, progress=False)
    assert res.reused_segments == 0


SCRIPT = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    sys.path.insert(0, {tests!r})
    from test_render_tinygen import TinyGen, tiny_latents
    from morphstudio.rendering.renderer import OutputSettings, render_latents
    fn = tiny_latents({n})
    marker = Path({marker!r})
    def slow(frames):
        if max(frames) >= 30:
            marker.write_text("reached")
            time.sleep(60)
        return fn(frames)
    render_latents(TinyGen(resolution=16).eval(), slow, {n}, {fps}, fingerprint="fp", batch=4, progress=False,
                   output=OutputSettings(path={out!r}, codec="ffv1", fps={fps}, segment_seconds=0.5))
""")


def test_sigkill_then_resume(gen: TinyGen, tmp_path: Path) -> None:
    out = tmp_path / "killed.mkv"
    marker = tmp_path / "marker"
    script = SCRIPT.format(tests=str(Path(__file__).parent), n=N, fps=FPS, out=str(out), marker=str(marker))
    proc = subprocess.Popen([sys.executable, "-c", script], stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 120
        while not marker.exists():
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            assert time.time() < deadline
            time.sleep(0.05)
        time.sleep(0.5)  # let segment 1's encoder finish and record itself
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert not out.exists()
    parts = parts_dir_for(out)
    before = segment_files(parts)
    assert "seg_000000-000012.mkv" in before

    fn = tiny_latents(N)
    res = render_latents(gen, fn, N, FPS, output=settings(out), batch=4, fingerprint="fp", resume=True,
                         progress=False)
    assert res.reused_segments == len(before) >= 1
    ref = tmp_path / "ref.mkv"
    render_latents(gen, fn, N, FPS, output=settings(ref), batch=4, fingerprint="fp", progress=False)
    np.testing.assert_array_equal(decode(out)[1], decode(ref)[1])
