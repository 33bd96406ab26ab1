"""Thread and batch planning from measured stage costs (fake timings throughout: no wall-clock asserts).

Expected plans come from the cost model written out by hand: with a core left over the slower stage sets the
pace, ``max(gen, enc / free)``; with every core given to torch the encoder's CPU time adds in full, ``gen + enc``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from test_render_tinygen import TinyGen, decode, tiny_latents

from morphstudio.errors import RenderError
from morphstudio.rendering import plan as planmod
from morphstudio.rendering.plan import CalibrationCache, choose_plan, plan_cpu_render, torch_threads
from morphstudio.rendering.renderer import OutputSettings, plan_render, render_latents
from morphstudio.sinks.segmented import parts_dir_for

ROOT = Path(__file__).resolve().parents[1]

# A 256 px StyleGAN2-like generator: two threads nearly halve the time, batching barely helps.
BIG = {(1, 1): 0.200, (1, 2): 0.195, (2, 1): 0.110, (2, 2): 0.108}
# A small DCGAN-like one: batching pays, and a second thread helps a little.
SMALL = {(1, 1): 0.013, (1, 2): 0.009, (1, 4): 0.007, (1, 8): 0.0055, (2, 1): 0.009, (2, 8): 0.004}


def test_idle_encoder_gives_torch_every_core() -> None:
    p = choose_plan(BIG, 0.010, cores=2)
    # 2 threads: 0.108 + 0.010 = 0.118 s/frame; 1 thread: max(0.195, 0.010 / 1) = 0.195.
    assert (p.threads, p.batch) == (2, 2)
    assert p.seconds_per_frame == pytest.approx(0.118)
    assert any("generator-bound" in line for line in p.why)


def test_busy_encoder_keeps_a_core_for_itself() -> None:
    p = choose_plan(SMALL, 0.0276, cores=2)
    # 1 thread: max(gen, 0.0276 / 1) = 0.0276 at every batch; 2 threads: 0.004 + 0.0276 = 0.0316.
    assert p.threads == 1
    assert p.seconds_per_frame == pytest.approx(0.0276)
    # Every 1-thread batch ties at the encoder's pace: the one using the least CPU (batch 8) is taken.
    assert p.batch == 8
    assert any("encoder-bound" in line for line in p.why)


def test_threads_fall_as_the_encoder_gets_busier() -> None:
    got = [choose_plan(BIG, enc, cores=2).threads for enc in (0.0, 0.01, 0.05, 0.1, 0.3, 1.0)]
    # Crossing point by hand: 0.108 + e = max(0.195, e) -> e = 0.087.
    assert got == [2, 2, 2, 1, 1, 1]
    many = [choose_plan({(t, 1): 1.0 / t for t in (1, 4, 8, 15, 16)}, enc, cores=16).threads
            for enc in (0.0, 0.5, 4.0)]
    assert many[0] == 16 and many[0] >= many[1] >= many[2] and many[2] < 16


def test_near_ties_go_to_the_least_cpu_per_frame() -> None:
    # 1 thread: 20.0 ms, 2 threads: 19.8 ms -- within 3 %; CPU per frame 1 x 20.0 = 20.0 ms < 2 x 19.8 = 39.6 ms.
    assert choose_plan({(1, 1): 0.0200, (2, 1): 0.0198}, None, cores=2).threads == 1
    # Beyond 3 % (17.0 ms is 15 % faster) the faster one wins despite its CPU.
    assert choose_plan({(1, 1): 0.0200, (2, 1): 0.0170}, None, cores=2).threads == 2
    # An exact tie in threads and time goes to the smaller batch, whatever order the figures come in.
    assert choose_plan({(1, 16): 0.01, (1, 2): 0.01}, None, cores=1).batch == 2


def test_batch_follows_the_measurements() -> None:
    assert choose_plan({(1, 1): 0.02, (1, 2): 0.012, (1, 4): 0.008}, None, cores=1).batch == 4
    assert choose_plan({(1, 1): 0.20, (1, 2): 0.22, (1, 4): 0.25}, None, cores=1).batch == 1
    # No batch beyond the frames there are.
    assert choose_plan({(1, 1): 0.02, (1, 4): 0.008}, None, cores=1, max_batch=2).batch == 1
    # A one-frame render (a still) never plans a batch of two, however much faster batch 2 measured.
    assert choose_plan({(1, 1): 0.02, (1, 2): 0.008}, None, cores=1, max_batch=1).batch == 1


def test_thread_candidates_are_the_documented_counts() -> None:
    """1, a quarter, half, all but one and all of the cores: never more threads than cores."""
    assert planmod.thread_candidates(1) == [1]
    assert planmod.thread_candidates(2) == [1, 2]
    assert planmod.thread_candidates(8) == [1, 2, 4, 7, 8]
    assert planmod.thread_candidates(16) == [1, 4, 8, 15, 16]


def test_a_measurement_keeps_the_fastest_of_three_calls_within_a_quarter_second() -> None:
    """Fake durations on a fake clock: one warm-up call, then at most 3 timed calls, fewer once 0.25 s is spent."""

    def timed(durations: list[float]) -> tuple[float, int]:
        now = [0.0]
        calls = [0]

        def fn() -> None:
            now[0] += durations[calls[0]]
            calls[0] += 1

        return planmod._time_call(fn, clock=lambda: now[0]), calls[0]

    # 0.05 + 0.04 + 0.03 = 0.12 s < 0.25 s: three timed calls; the fourth (0.01) is never made.
    assert timed([0.5, 0.05, 0.04, 0.03, 0.01]) == (pytest.approx(0.03), 4)
    # 0.2 + 0.1 >= 0.25 s: the budget ends it after two timed calls.
    assert timed([0.5, 0.2, 0.1, 0.01]) == (pytest.approx(0.1), 3)
    # 0.2 + 0.04 < 0.25 s: a third call is made.
    assert timed([0.5, 0.2, 0.04, 0.03]) == (pytest.approx(0.03), 4)


def test_a_calibration_is_not_reused_when_the_cores_change(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The default cache file belongs to this machine's description (host, CPU, usable cores, torch, Python):
    narrowing the process to other cores (taskset, a container) measures again, in another file."""
    fake = FakeMeasure(SMALL, 0.02).install(monkeypatch)
    folder = tmp_path / "cal"
    kw = {"codec": "h264", "crf": None, "fps": 24.0, "ext": ".mp4", "frames": 8}

    def plan() -> None:  # a fresh generator each time, as each CLI run loads one (TinyGen adds buffers lazily)
        plan_cpu_render(TinyGen(resolution=16).eval(), 64, 64, "fill", torch.float32, cache=CalibrationCache(folder),
                        **kw)

    desc = planmod.machine_description()
    assert desc["cores"] == 2 and desc["torch"] == torch.__version__ and desc["host"]
    plan()
    plan()
    assert fake.gen_calls == 1
    monkeypatch.setattr(planmod, "usable_cores", lambda: 4)
    assert planmod.machine_description()["cores"] == 4
    plan()
    assert fake.gen_calls == 2 and len(list(folder.glob("*.json"))) == 2


def test_several_encoders_share_the_cores(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """With 2 encoders on 8 cores each gets 8 // 2 = 4 ffmpeg threads (shown by --dry-run); one encoder is left
    to ffmpeg's own choice."""
    monkeypatch.setenv("MORPHSTUDIO_CACHE", str(tmp_path / "cache"))
    fake = FakeMeasure(BIG, 0.01).install(monkeypatch)
    # The cores this process may use (its affinity, as taskset or a container sets it), not the machine's.
    monkeypatch.setattr(planmod.os, "cpu_count", lambda: 64)
    monkeypatch.setattr(planmod, "usable_cores", lambda: 8)
    assert planmod.default_jobs() == 4
    gen = TinyGen(resolution=16).eval()
    out = OutputSettings(path=str(tmp_path / "o.mkv"), codec="ffv1", size=16, fps=24, segment_seconds=0.5)
    two = plan_render(gen, 48, 24.0, out, jobs=2)
    assert (two.jobs, two.encoder_threads) == (2, 4)
    # The encoder is measured as the render encodes: its codec in the output's container (ffmpeg cannot put
    # every codec in every container: prores in .mp4 fails).
    assert fake.enc_args == [("ffv1", None, ".mkv")]
    assert "segments:  4 of up to 12 frames, 2 encoder(s) at once (4 thread(s) each), joined losslessly" \
        in two.describe()
    one = plan_render(gen, 48, 24.0, out, jobs=1)
    assert (one.jobs, one.encoder_threads) == (1, None)
    assert "segments:  4 of up to 12 frames, 1 encoder(s) at once, joined losslessly" in one.describe()


def test_given_threads_or_batch_are_kept() -> None:
    p = choose_plan(BIG, 0.01, cores=2, threads=1)
    assert p.threads == 1 and p.batch == 2  # batch from the 1-thread figures (0.195 < 0.200)
    p = choose_plan(SMALL, 0.0276, cores=2, batch=3)
    assert p.batch == 3 and p.threads == 1


class FakeMeasure:
    """Stands in for the measuring functions: fixed figures, and a count of how often it was asked."""

    def __init__(self, gen: dict, enc: float) -> None:
        self.gen, self.enc = gen, enc
        self.gen_calls = self.enc_calls = 0
        self.enc_args: list[tuple] = []

    def install(self, monkeypatch: pytest.MonkeyPatch) -> FakeMeasure:
        def measure_generator(generator, width, height, fit, precision, threads, max_batch):
            self.gen_calls += 1
            return {k: v for k, v in self.gen.items() if k[0] in threads and k[1] <= max_batch}

        def measure_encoder(frames, codec, crf, fps, ext):
            self.enc_calls += 1
            self.enc_args.append((codec, crf, ext))
            return self.enc

        monkeypatch.setattr(planmod, "measure_generator", measure_generator)
        monkeypatch.setattr(planmod, "measure_encoder", measure_encoder)
        monkeypatch.setattr(planmod, "usable_cores", lambda: 2)
        return self


def test_plan_render_uses_the_measurements(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MORPHSTUDIO_CACHE", str(tmp_path / "cache"))
    gen = TinyGen(resolution=16).eval()
    out = OutputSettings(path=str(tmp_path / "o.mp4"), size=64, fps=24)
    FakeMeasure(BIG, 0.01).install(monkeypatch)
    idle = plan_render(gen, 48, 24.0, out)
    assert (idle.cpu_threads, idle.batch) == (2, 2)
    assert any("generator-bound" in line for line in idle.describe())
    monkeypatch.setenv("MORPHSTUDIO_CACHE", str(tmp_path / "cache2"))
    FakeMeasure(BIG, 0.5).install(monkeypatch)
    busy = plan_render(gen, 48, 24.0, out)
    assert busy.cpu_threads == 1


def test_calibration_is_cached_per_machine_and_model(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    fake = FakeMeasure(SMALL, 0.02).install(monkeypatch)
    folder = tmp_path / "cal"
    machine = {"host": "a", "cpu": "x", "cores": 2, "torch": "t", "python": "p"}
    g16, g32 = TinyGen(resolution=16).eval(), TinyGen(resolution=32).eval()
    kw = {"codec": "h264", "crf": None, "fps": 24.0, "ext": ".mp4", "frames": 8}

    def plan(gen, machine=machine):
        return plan_cpu_render(gen, 64, 64, "fill", torch.float32, cache=CalibrationCache(folder, machine), **kw)

    first = plan(g16)
    assert (fake.gen_calls, fake.enc_calls, first.source) == (1, 1, "measured")
    again = plan(TinyGen(resolution=16, seed=5).eval())  # other weights, same architecture: same costs
    assert (fake.gen_calls, fake.enc_calls, again.source) == (1, 1, "cached")
    assert (again.threads, again.batch) == (first.threads, first.batch)
    plan(g32)  # another architecture: its generator is measured, the encoder figure is reused
    assert (fake.gen_calls, fake.enc_calls) == (2, 1)
    plan(g16, {**machine, "cores": 4})  # another machine: everything again, in its own file
    assert (fake.gen_calls, fake.enc_calls) == (3, 2)
    assert len(list(folder.glob("*.json"))) == 2

    # A damaged file, or one from another format, is re-measured rather than trusted.
    path = CalibrationCache(folder, machine).path
    path.write_text("{not json")
    plan(g16)
    assert fake.gen_calls == 4
    data = json.loads(path.read_text())
    data["format"] = "morphstudio-calibration/0"
    path.write_text(json.dumps(data))
    plan(g16)
    assert fake.gen_calls == 5


def test_real_measurement_on_a_tiny_model(tmp_path: Path) -> None:
    """The measuring code itself runs (figures are positive, the cache file is written), no timing asserted."""
    gen = TinyGen(resolution=16).eval()
    cache = CalibrationCache(tmp_path, {"host": "t"})
    p = plan_cpu_render(gen, 32, 32, "fill", torch.float32, codec="h264", crf=None, fps=24.0, ext=".mp4",
                        frames=4, cache=cache)
    assert p.threads >= 1 and 1 <= p.batch <= 4 and p.seconds_per_frame > 0
    entries = json.loads(cache.path.read_text())["entries"]
    assert any(k.startswith("gen:") for k in entries) and entries["enc:h264:None:32x32:.mp4"] > 0


def test_resume_reuses_the_recorded_plan(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MORPHSTUDIO_CACHE", str(tmp_path / "cache"))
    gen = TinyGen(resolution=16).eval()
    n, fps = 48, 24.0
    fn = tiny_latents(n)
    out = tmp_path / "out.mkv"
    settings = OutputSettings(path=str(out), codec="ffv1", fps=fps, segment_seconds=0.5)

    def interrupted(frames):
        if max(frames) >= 30:
            raise KeyboardInterrupt
        return fn(frames)

    # The first render is planned from measurements saying 1 thread, batch 4 ...
    FakeMeasure({(1, 1): 0.02, (1, 4): 0.01, (2, 1): 0.05}, 0.001).install(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        render_latents(gen, interrupted, n, fps, output=settings, fingerprint="fp", progress=False)
    manifest = json.loads((parts_dir_for(out) / "manifest.json").read_text())
    assert manifest["plan"] == {"batch": 4, "threads": 1}

    # ... then the machine's figures change (a fresh calibration would now say 2 threads, batch 2), but the
    # resumed render keeps the recorded plan and never measures.
    monkeypatch.setenv("MORPHSTUDIO_CACHE", str(tmp_path / "cache-new"))
    fake = FakeMeasure({(1, 1): 0.5, (2, 1): 0.02, (2, 2): 0.01}, 0.001).install(monkeypatch)
    seen: list[int] = []
    real_set = torch.set_num_threads
    monkeypatch.setattr(torch, "set_num_threads", lambda k: (seen.append(k), real_set(k))[1])
    res = render_latents(gen, fn, n, fps, output=settings, fingerprint="fp", resume=True, progress=False)
    assert res.reused_segments == 2 and res.batch == 4
    assert seen and seen[0] == 1
    assert (fake.gen_calls, fake.enc_calls) == (0, 0)
    assert decode(out)[1].shape[0] == n

    # A plan given explicitly that differs from the recorded one cannot mix with its segments: start over.
    with pytest.raises(KeyboardInterrupt):
        render_latents(gen, interrupted, n, fps, output=settings, fingerprint="fp", batch=4, cpu_threads=1,
                       progress=False)
    notes: list[str] = []
    res = render_latents(gen, fn, n, fps, output=settings, fingerprint="fp", resume=True, batch=2, progress=False,
                         log=notes.append)
    assert res.reused_segments == 0 and any("starting over" in m for m in notes)


def test_thread_count_is_restored(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    before = torch.get_num_threads()
    other = 2 if before != 2 else 1
    with pytest.raises(ValueError), torch_threads(other):
        assert torch.get_num_threads() == other
        raise ValueError
    assert torch.get_num_threads() == before
    gen = TinyGen(resolution=16).eval()
    render_latents(gen, tiny_latents(8), 8, 24.0, output=OutputSettings(path=str(tmp_path / "a.mkv"),
                   codec="ffv1"), cpu_threads=other, batch=2, progress=False)
    assert torch.get_num_threads() == before


def test_projection_threads_follow_load(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(planmod, "usable_cores", lambda: 2)
    monkeypatch.setattr(planmod, "measure_training_step", lambda g, b, threads: {1: 0.30, 2: 0.18})
    gen = TinyGen(resolution=16).eval()
    cache = CalibrationCache(tmp_path, {"host": "t"})
    assert planmod.plan_torch_threads(gen, 1, cache=cache, load=0.2)[0] == 2
    assert planmod.plan_torch_threads(gen, 1, cache=cache, load=3.0)[0] == 1  # a busy machine: one thread
    assert planmod.plan_torch_threads(gen, 1, threads=2, cache=cache, load=3.0)[0] == 2


def test_parse_threads_errors() -> None:
    assert planmod.parse_threads("3") == 3
    with pytest.raises(RenderError, match="--threads: must be at least 1"):
        planmod.parse_threads("0")
    with pytest.raises(RenderError, match="whole number"):
        planmod.parse_threads("two")


def test_cli_threads_and_dry_run_plan(tmp_path: Path) -> None:
    env = {"PYTHONPATH": str(ROOT), "MORPHSTUDIO_CACHE": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1",
           "PATH": "/usr/bin:/bin"}
    scene = ROOT / "scenes" / "demo.yaml"
    bad = subprocess.run([sys.executable, "-m", "morphstudio", "render", str(scene), "--threads", "0", "--dry-run"],
                         capture_output=True, text=True, env=env, cwd=tmp_path)
    assert bad.returncode == 2 and bad.stderr.strip() == "error: --threads: must be at least 1, got 0"
    ok = subprocess.run([sys.executable, "-m", "morphstudio", "render", str(scene), "--threads", "1", "--batch", "4",
                         "--dry-run"], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert "batch 4 -> 75 batches, 1 torch thread(s)" in ok.stdout and "plan:      given" in ok.stdout


# --- recalibration and the load a calibration was measured under -------------------------------------------------

NIGHT = 1796076900.0  # 2026-11-30 22:15 UTC (calendar.timegm((2026, 11, 30, 22, 15, 0)))
MACHINE = {"host": "a", "cpu": "x", "cores": 2, "torch": "t", "python": "p"}
KW = {"codec": "h264", "crf": None, "fps": 24.0, "ext": ".mp4", "frames": 8}


def plan_with(folder: Path, **extra) -> planmod.CpuPlan:
    """A CPU plan from the calibration file in ``folder`` (a fresh generator each time, as each CLI run loads one)."""
    return plan_cpu_render(TinyGen(resolution=16).eval(), 64, 64, "fill", torch.float32,
                           cache=CalibrationCache(folder, MACHINE), **KW, **extra)


def at_load(monkeypatch: pytest.MonkeyPatch, load: float | None, when: float = NIGHT) -> None:
    monkeypatch.setattr(planmod, "load_average", lambda: load)
    monkeypatch.setattr(planmod, "wall_clock", lambda: when)


def test_recalibrate_measures_again_and_keeps_the_new_figures(monkeypatch: pytest.MonkeyPatch,
                                                              tmp_path: Path) -> None:
    folder = tmp_path / "cal"
    at_load(monkeypatch, 0.5)
    FakeMeasure(BIG, 0.01).install(monkeypatch)
    assert (plan_with(folder).threads, plan_with(folder).threads) == (2, 2)  # measured once, then cached
    # The machine's figures change (here: a much busier encoder, which wants a core of its own) ...
    fake = FakeMeasure(BIG, 0.5).install(monkeypatch)
    assert plan_with(folder).threads == 2 and (fake.gen_calls, fake.enc_calls) == (0, 0)  # ... the cache rules
    fresh = plan_with(folder, recalibrate=True)
    assert (fake.gen_calls, fake.enc_calls, fresh.source, fresh.threads) == (1, 1, "measured", 1)
    assert plan_with(folder).threads == 1 and (fake.gen_calls, fake.enc_calls) == (1, 1)  # the new ones are kept


def test_the_cache_records_when_and_under_what_load(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    folder = tmp_path / "cal"
    FakeMeasure(SMALL, 0.02).install(monkeypatch)
    at_load(monkeypatch, 3.5)
    first = plan_with(folder)
    data = json.loads(CalibrationCache(folder, MACHINE).path.read_text())
    assert sorted(data["measured"]) == sorted(data["entries"])
    assert all(m == {"at": NIGHT, "load": 3.5} for m in data["measured"].values())
    path = CalibrationCache(folder, MACHINE).path
    assert (f"calibration: generator measured now (load 3.5); encoder measured now (load 3.5); 2 core(s) ({path})"
            in first.why)
    # Measured under a load above the cores: said so, with the way out, now and whenever the figures are used.
    busy = ("   measured under load 3.5 > 2 core(s): other work slowed the measurement, so the plan may be off; "
            "--recalibrate measures again (best on a quieter machine)")
    assert busy in first.why
    at_load(monkeypatch, 0.1, NIGHT + 3600)  # a quiet hour later: the cached figures keep their own time and load
    later = plan_with(folder)
    assert later.why[-2:] == [
        f"calibration: generator cached, measured 2026-11-30 22:15 UTC (load 3.5); encoder cached, measured "
        f"2026-11-30 22:15 UTC (load 3.5); 2 core(s) ({path})", busy]


def test_a_calibration_under_normal_load_suggests_nothing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    folder = tmp_path / "cal"
    FakeMeasure(SMALL, 0.02).install(monkeypatch)
    at_load(monkeypatch, 2.0)  # exactly the cores: busy, not overloaded
    plan_with(folder)
    lines = plan_with(folder).why
    assert lines[-1].startswith("calibration: generator cached, measured 2026-11-30 22:15 UTC (load 2.0)")
    assert not any("recalibrate" in line for line in lines)


def test_an_older_cache_file_without_times_is_still_used(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    folder = tmp_path / "cal"
    fake = FakeMeasure(SMALL, 0.02).install(monkeypatch)
    at_load(monkeypatch, None)  # no load average on this platform
    first = plan_with(folder)
    assert "generator measured now;" in first.why[-1]
    path = CalibrationCache(folder, MACHINE).path
    data = json.loads(path.read_text())
    del data["measured"]
    path.write_text(json.dumps(data))
    again = plan_with(folder)
    assert fake.gen_calls == 1 and again.source == "cached"
    assert again.why[-1] == (f"calibration: generator cached, measured at an unknown time and load; encoder cached, "
                             f"measured at an unknown time and load; 2 core(s) ({path})")


def test_cli_dry_run_shows_the_calibration_and_recalibrate_measures_again(
        capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from test_output_safety import cli, write_scene

    monkeypatch.setenv("MORPHSTUDIO_CACHE", str(tmp_path / "cache"))
    fake = FakeMeasure(SMALL, 0.02).install(monkeypatch)
    at_load(monkeypatch, 5.0)
    scene = write_scene(tmp_path, "path: v.mp4, codec: h264")
    rc, out, err = cli(capsys, "render", str(scene), "--dry-run")
    assert rc == 0, err
    assert "plan:      calibration: generator measured now (load 5.0); encoder measured now (load 5.0)" in out
    assert "--recalibrate measures again" in out
    at_load(monkeypatch, 0.3, NIGHT + 600)
    rc, out, err = cli(capsys, "render", str(scene), "--dry-run")
    assert rc == 0 and fake.gen_calls == 1, err
    assert "generator cached, measured 2026-11-30 22:15 UTC (load 5.0)" in out and "--recalibrate" in out
    rc, out, err = cli(capsys, "render", str(scene), "--dry-run", "--recalibrate")
    assert rc == 0 and (fake.gen_calls, fake.enc_calls) == (2, 2), err
    assert "generator measured now (load 0.3); encoder measured now (load 0.3)" in out and "--recalibrate" not in out
