"""Faults in a distributed render: a worker killed part-way is replaced by Ray and the video is complete and
identical; a driver killed part-way is continued by ``--resume``, which renders only the missing segments."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from netcheck import assert_loopback_only, descendants
from test_distributed import write_scene
from test_render_tinygen import decode

import morphstudio
from morphstudio.distributed import RayExecutor, render_distributed

ROOT = Path(__file__).resolve().parents[1]
DURATION = 4.0  # 48 frames at 12 fps: 8 segments of 6
SEGMENTS = 8


def committed(manifest: Path) -> int:
    try:
        return len(json.loads(manifest.read_text())["segments"])
    except (OSError, ValueError, KeyError):
        return 0


def wait_for(cond, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.mark.slow
def test_a_killed_worker_is_replaced_and_the_video_is_complete_and_identical(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    scene = morphstudio.load_scene(write_scene(tmp_path, DURATION))
    single = tmp_path / "single.mkv"
    morphstudio.render(scene, output=str(single), batch=4, threads=1, progress=False)

    out = tmp_path / "ray.mkv"
    manifest = tmp_path / ".ray.mkv.parts" / "manifest.json"
    ready = threading.Event()
    seen: dict[str, object] = {}
    by: dict[int, str] = {}

    class Killing(RayExecutor):
        def results(self, jobs):  # type: ignore[no-untyped-def]
            for job, res in super().results(jobs):
                by[job.start] = res.worker
                yield job, res

    def on_ready(ex: RayExecutor) -> None:
        seen["sockets"] = assert_loopback_only(os.getpid())
        seen["pids"] = [int(w.rsplit(":", 1)[1]) for w in ex.worker_ids]
        ready.set()

    def killer() -> None:
        ready.wait(300)
        wait_for(lambda: committed(manifest) >= 1, 300, "a first committed segment")
        victim = seen["pids"][0]  # type: ignore[index]
        os.kill(victim, signal.SIGKILL)
        seen["killed"] = victim
        seen["at"] = committed(manifest)

    t = threading.Thread(target=killer, daemon=True)
    t.start()
    res = render_distributed(scene, Killing(workers=2, on_ready=on_ready), output=str(out), batch=4, threads=1,
                             progress=False)
    t.join(5)
    assert "killed" in seen and seen["at"] < SEGMENTS  # the kill landed part-way
    assert res.segments == SEGMENTS
    _, a = decode(single)
    _, b = decode(out)
    assert a.shape[0] == 48 and np.array_equal(a, b)
    assert seen["sockets"] > 0  # type: ignore[operator]
    pids = {int(w.rsplit(":", 1)[1]) for w in by.values()}
    assert pids - set(seen["pids"])  # type: ignore[arg-type]  # Ray restarted the dead worker and it rendered
    assert set(by) == set(range(0, 48, 6))


@pytest.mark.slow
def test_a_killed_driver_is_continued_by_resume_rendering_only_the_missing_segments(tmp_path: Path) -> None:
    scene_path = write_scene(tmp_path, DURATION)
    scene = morphstudio.load_scene(scene_path)
    single = tmp_path / "single.mkv"
    morphstudio.render(scene, output=str(single), batch=4, threads=1, progress=False)

    out = tmp_path / "out.mkv"
    manifest = tmp_path / ".out.mkv.parts" / "manifest.json"
    short_tmp = Path(tempfile.mkdtemp(prefix="mst-"))  # Ray's session folders go here (short socket paths)
    env = dict(os.environ, HOME=str(tmp_path / "home"), TMPDIR=str(short_tmp), PYTHONPATH=str(ROOT))
    cmd = [sys.executable, "-m", "morphstudio", "render", str(scene_path), "--ray", "--workers", "2",
           "--batch", "4", "--threads", "1", "-q"]
    try:
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            wait_for(lambda: committed(manifest) >= 2 or proc.poll() is not None, 600, "two committed segments")
            assert proc.poll() is None, proc.communicate()[1].decode()[-2000:]
            assert assert_loopback_only(proc.pid) > 0
            tree = descendants(proc.pid) - {proc.pid}
            proc.kill()
            proc.wait(30)
        finally:
            if proc.poll() is None:
                proc.kill()
        done = committed(manifest)
        assert 2 <= done < SEGMENTS
        assert not out.exists()
        # Ray's own processes follow their driver; anything left after a grace period is ours to end.
        end = time.monotonic() + 30
        while time.monotonic() < end and any(Path(f"/proc/{p}").exists() for p in tree):
            time.sleep(0.2)
        for p in tree:
            if Path(f"/proc/{p}").exists():
                os.kill(p, signal.SIGKILL)

        again = subprocess.run(cmd + ["--resume"], env=env, capture_output=True, text=True, timeout=600)
        assert again.returncode == 0, again.stderr[-2000:]
        m = re.search(r"(\d+) of (\d+) segments reused", again.stdout)
        assert m, again.stdout
        assert (int(m.group(1)), int(m.group(2))) == (done, SEGMENTS)  # only the missing ones were rendered
        _, a = decode(single)
        _, b = decode(out)
        assert np.array_equal(a, b)
        assert not (tmp_path / "home").exists() or not list((tmp_path / "home").iterdir())
        # The killed driver could not remove its Ray session folder; the next render swept it.
        assert not list(short_tmp.glob("msray-*"))
    finally:
        import shutil

        shutil.rmtree(short_tmp, ignore_errors=True)
