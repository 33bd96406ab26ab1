"""Distributed rendering: segments rendered by Ray workers (or in memory) give the frames of a single-process
render, Ray stays on 127.0.0.1, and a missing Ray is one line."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from netcheck import assert_loopback_only, offending
from test_render_tinygen import decode

import morphstudio
from morphstudio.cli import main
from morphstudio.distributed import LocalExecutor, RayExecutor, SegmentRenderer, WorkerSpec, render_distributed
from morphstudio.distributed.job import SegmentJob
from morphstudio.distributed.ray_executor import OWNER_FILE, _sweep_stale_temp
from morphstudio.errors import RenderError
from morphstudio.sinks.segmented import latents_digest

FRAMES = 24  # 2 s at 12 fps: 4 segments of 6 frames


def write_scene(folder: Path, duration: float = 2.0) -> Path:
    scene = folder / "scene.yaml"
    scene.write_text(textwrap.dedent(f"""\
        model: builtin:dcgan-faces64
        output: {{path: out.mkv, size: 64, fps: 12, duration: {duration}, codec: ffv1, segment_seconds: 0.5}}
        faces:
          a: {{seed: 1}}
          b: {{seed: 4}}
          c: {{seed: 9}}
        timeline:
          - {{at: 0.0, face: a}}
          - {{at: 1.0, face: b}}
          - {{at: {duration}, face: c}}
        loops:
          - {{amplitude: 0.6, period: 1.5}}
        noise: {{mode: random, seed: 3}}
        """))
    return scene


class RecordingRay(RayExecutor):
    """A Ray executor that checks the network once its workers are up and records who rendered what."""

    def __init__(self, **kw: object) -> None:
        super().__init__(on_ready=self._check, **kw)  # type: ignore[arg-type]
        self.sockets = 0
        self.rendered_by: dict[int, str] = {}

    def _check(self, ex: RayExecutor) -> None:
        self.sockets = assert_loopback_only(os.getpid())

    def results(self, jobs):  # type: ignore[no-untyped-def]
        for job, res in super().results(jobs):
            self.rendered_by[job.start] = res.worker
            yield job, res


def test_two_ray_workers_match_a_single_process_render_on_loopback_only(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))  # Ray must not write ~/.ray (token) or anything else there
    scene = morphstudio.load_scene(write_scene(tmp_path))
    single = tmp_path / "single.mkv"
    morphstudio.render(scene, output=str(single), batch=4, threads=1, progress=False)

    ex = RecordingRay(workers=2)  # its own short temp folder (Ray's socket paths must fit 107 bytes)
    out = tmp_path / "ray.mkv"
    res = render_distributed(scene, ex, output=str(out), batch=4, threads=1, progress=False)

    assert res.segments == 4 and len(res.frames) == FRAMES
    _, a = decode(single)
    _, b = decode(out)
    assert a.shape == (FRAMES, 64, 64, 3)
    assert np.array_equal(a, b)
    assert ex.sockets > 0  # the loopback check saw Ray's sockets (it did not pass vacuously)
    assert len(ex.worker_ids) == 2 and all(ex.shared)
    assert set(ex.rendered_by) == {0, 6, 12, 18}
    assert len(set(ex.rendered_by.values())) == 2  # both workers rendered segments
    assert not list(home.iterdir())
    assert ex.session_root is not None and not ex.session_root.exists()  # Ray's session folder is gone
    assert not (tmp_path / ".ray.mkv.parts").exists() and not (tmp_path / ".ray.mkv.lock").exists()
    import ray

    assert not ray.is_initialized()
    assert os.environ.get("RAY_AUTH_TOKEN") is None  # the job's environment was restored


def test_segments_travel_as_bytes_when_the_parts_folder_is_not_shared(tmp_path: Path) -> None:
    """A worker that cannot read the driver's probe file returns the encoded segment itself; the driver writes
    it, and the video is the one a shared-folder render makes."""
    scene = morphstudio.load_scene(write_scene(tmp_path))
    ref = tmp_path / "ref.mkv"  # the single-process renderer's video: the reference comes from outside
    morphstudio.render(scene, output=str(ref), batch=4, threads=1, progress=False)

    parts = tmp_path / "elsewhere"
    parts.mkdir()
    (parts / ".probe").write_text("another job's token")
    worker = SegmentRenderer(WorkerSpec("builtin:dcgan-faces64", "cpu", str(parts), probe="this job's token"))
    assert worker.shared is False
    ws = np.asarray(scene.latents(list(range(6, 12))), dtype=np.float32)
    job = SegmentJob(6, 12, ws, latents_digest(ws), "seg_000006-000012.mkv", 64, 64, "fill", 12.0, "ffv1", None,
                     "torch.float32", {"mode": "random", "seed": 3, "period": None}, 2.0, FRAMES, 4, 1, None)
    res = worker.render(job)
    assert res.temp is None and res.data
    assert res.sha256 == hashlib.sha256(res.data).hexdigest()  # the driver checks what arrives against this
    assert list(parts.iterdir()) == [parts / ".probe"]  # nothing written into a folder it does not share
    seg = tmp_path / "seg.mkv"
    seg.write_bytes(res.data)
    _, frames = decode(seg)
    _, whole = decode(ref)
    assert np.array_equal(frames, whole[6:12])


def test_the_in_process_executor_gives_the_single_process_video(tmp_path: Path) -> None:
    scene = morphstudio.load_scene(write_scene(tmp_path))
    ref = tmp_path / "ref.mkv"
    morphstudio.render(scene, output=str(ref), batch=4, threads=1, progress=False)
    out = tmp_path / "local.mkv"
    res = render_distributed(scene, LocalExecutor(), output=str(out), batch=4, threads=1, progress=False)
    assert res.segments == 4
    assert np.array_equal(decode(ref)[1], decode(out)[1])


class DamagingExecutor(LocalExecutor):
    """Renders like the in-process worker, then damages the second segment on its way to the driver (a torn
    copy on a shared folder)."""

    def __init__(self, parts: Path) -> None:
        super().__init__()
        self.parts = parts

    def results(self, jobs):  # type: ignore[no-untyped-def]
        for i, (job, res) in enumerate(super().results(jobs)):
            if i == 1:
                assert res.temp is not None
                with open(self.parts / res.temp, "r+b") as f:
                    f.seek(200)
                    f.write(b"\0" * 16)
            yield job, res


def test_a_segment_damaged_between_worker_and_driver_is_refused(tmp_path: Path) -> None:
    scene = morphstudio.load_scene(write_scene(tmp_path))
    out = tmp_path / "out.mkv"
    with pytest.raises(RenderError, match=r"segment 6\.\.11"):
        render_distributed(scene, DamagingExecutor(tmp_path / ".out.mkv.parts"), output=str(out), batch=4,
                           threads=1, progress=False)
    assert not out.exists()  # nothing that looks finished
    manifest = (tmp_path / ".out.mkv.parts" / "manifest.json").read_text()
    assert "seg_000006-000012" not in manifest  # the damaged segment was never recorded: --resume redoes it


def test_stale_ray_temp_folders_of_dead_drivers_on_this_host_are_swept(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = os.uname().nodename
    folders = {}
    for name, owner in [("dead", f"{host} {dead.pid}"), ("alive", f"{host} {os.getppid()}"),
                        ("other-host", f"elsewhere.example {dead.pid}"), ("no-owner", None)]:
        folder = tmp_path / f"msray-{name}"
        (folder / "session_x" / "logs").mkdir(parents=True)
        if owner is not None:
            (folder / OWNER_FILE).write_text(owner + "\n")
        folders[name] = folder
    (tmp_path / "unrelated-dead").mkdir()
    (tmp_path / "unrelated-dead" / OWNER_FILE).write_text(f"{host} {dead.pid}\n")
    assert _sweep_stale_temp(tmp_path) == [folders["dead"]]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["msray-alive", "msray-no-owner", "msray-other-host",
                                                           "unrelated-dead"]


def test_ray_option_without_ray_says_how_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError, as on an install without the extra
    scene = write_scene(tmp_path)
    assert main(["render", str(scene), "--ray", "-q"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["error: --ray: Ray is not installed; install it with: pip install 'morphstudio[ray]' "
                   "(or pip install 'ray>=2.40')"]
    assert not (tmp_path / "out.mkv").exists()


def test_the_loopback_check_fails_on_a_wildcard_listener_or_a_remote_peer() -> None:
    listen = ("LISTEN 0 4096 [::ffff:127.0.0.1]:40133 *:* users:((\"gcs_server\",pid=11,fd=44))\n"
              "LISTEN 0 4096 *:45029 *:* users:((\"raylet\",pid=12,fd=30))\n"
              "LISTEN 0 128 0.0.0.0:2024 0.0.0.0:* users:((\"other\",pid=99,fd=3))\n")
    bad, owned = offending(listen, {11, 12}, listening=True)
    assert owned == 2 and bad == ["LISTEN 0 4096 *:45029 *:* users:((\"raylet\",pid=12,fd=30))"]
    conns = ("ESTAB 0 0 127.0.0.1:5000 127.0.0.1:6000 users:((\"python\",pid=11,fd=7))\n"
             "ESTAB 0 0 127.0.0.1:5001 192.0.2.2:6000 users:((\"python\",pid=11,fd=8))\n")
    bad, owned = offending(conns, {11}, listening=False)
    assert owned == 2 and bad == ["ESTAB 0 0 127.0.0.1:5001 192.0.2.2:6000 users:((\"python\",pid=11,fd=8))"]
    assert offending(listen, {12}, listening=True)[0]  # 0.0.0.0 / * is never loopback


def test_a_ray_temp_folder_too_long_for_its_sockets_is_one_line(tmp_path: Path) -> None:
    ex = RayExecutor(temp_dir=tmp_path / ("x" * 60))
    with pytest.raises(morphstudio.errors.RenderError, match="is too long for Ray's socket paths"):
        ex.start(WorkerSpec("builtin:dcgan-faces64", "cpu", str(tmp_path), "t"))
    import ray

    assert not ray.is_initialized()


def test_api_rejects_an_unknown_executor(tmp_path: Path) -> None:
    with pytest.raises(morphstudio.errors.RenderError, match="executor: expected 'local' or 'ray', got 'dask'"):
        morphstudio.render(write_scene(tmp_path), executor="dask")


def test_a_local_ray_instance_settles_its_worker_count_before_the_driver_plans_threads(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The driver gives each worker ``cores // workers`` torch threads before the workers start: a local
    instance's default count (one per GPU, else one per core's share of --threads) must be known by then, or
    every one of the 16 default workers would run 16 threads."""
    from morphstudio.distributed import ray_executor

    monkeypatch.setattr(ray_executor, "_cores", lambda: 16)
    monkeypatch.setattr(ray_executor, "_cuda_count", lambda: 0)
    assert RayExecutor().workers == 16
    assert RayExecutor(threads=4).workers == 4
    assert RayExecutor(workers=3).workers == 3
    monkeypatch.setattr(ray_executor, "_cuda_count", lambda: 2)
    assert RayExecutor().workers == 2
