"""``morphstudio render`` / ``preview`` from the command line: user mistakes exit 2 with one ``error:`` line."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_render_tinygen import decode

from morphstudio.cli import main

ROOT = Path(__file__).resolve().parents[1]
SMALL = ROOT / "scenes" / "examples" / "interpolation.yaml"
FPS_OK = ROOT / "scenes" / "examples" / "face-math.yaml"  # keyframes in seconds, so --fps keeps them valid


def run_cli(capsys: pytest.CaptureFixture, *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--frames", "50:10"], "--frames 50:10 selects no frames"),
        (["--frames", "0:100000"], "outside the scene"),
        (["--frames", "ten"], "expected A:B"),
        (["--size", "big"], "--size: expected WxH"),
        (["--batch", "0"], "--batch: must be at least 1"),
        (["--batch", "x"], "--batch: expected a whole number"),
        (["--fps", "-3"], "--fps: must be more than 0 and at most 240"),
        (["--codec", "divx"], "--codec: expected one of"),
        (["--codec", "ffv1"], "ffv1 video cannot be written to a .mp4 file"),
        (["--size", "63x64"], "even width and height"),
        (["--precision", "fp8"], "--precision: expected one of"),
        (["--model", "/nonexistent/model.pkl"], "model file not found"),
    ],
)
def test_user_errors_exit_2_with_one_line(capsys: pytest.CaptureFixture, tmp_path: Path, args: list[str],
                                          message: str) -> None:
    out = tmp_path / "x.mp4"
    rc, _, err = run_cli(capsys, "render", str(SMALL), "-o", str(out), "-q", *args)
    assert rc == 2
    lines = err.strip().splitlines()
    assert lines[0].startswith("error: ") and message in lines[0], err
    assert "Traceback" not in err and len(lines) <= 2  # the error, and at most a hint
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_half_precision_on_cpu_is_a_clear_error(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    rc, _, err = run_cli(capsys, "render", str(SMALL), "-o", str(tmp_path / "x.mp4"), "--precision", "fp16",
                         "--device", "cpu", "-q")
    assert rc == 2 and err.startswith("error: half precision")


def test_missing_and_broken_scenes(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    rc, _, err = run_cli(capsys, "render", str(tmp_path / "nope.yaml"))
    assert rc == 2 and "nope.yaml: scene file not found" in err
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: builtin:dcgan-faces64\noutput:\n  fps: fast\n")
    rc, _, err = run_cli(capsys, "render", str(bad), "-q")
    assert rc == 2 and err.startswith(f"error: {bad}:3") and "Traceback" not in err


def test_dry_run_renders_nothing(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    out = tmp_path / "x.mp4"
    rc, text, _ = run_cli(capsys, "render", str(SMALL), "-o", str(out), "--dry-run", "--frames", "0:30",
                          "--size", "128x72", "--batch", "4")
    assert rc == 0
    assert "30 frames" in text and "128x72" in text and "batch 4 -> 8 batches" in text and "segments:" in text
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_render_fps_and_size_overrides(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    out = tmp_path / "x.mkv"
    rc, text, _ = run_cli(capsys, "render", str(FPS_OK), "-o", str(out), "--codec", "ffv1", "--fps", "4",
                          "--size", "48x32", "-q")
    assert rc == 0 and f"wrote {out}" in text
    meta, frames = decode(out)
    assert meta["fps"] == pytest.approx(4) and frames.shape[1:] == (32, 48, 3)


def test_resume_from_the_cli(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    out = tmp_path / "x.mkv"
    common = ["render", str(FPS_OK), "-o", str(out), "--codec", "ffv1", "--size", "32x32", "--fps", "6", "-q"]
    assert run_cli(capsys, *common)[0] == 0
    first = decode(out)[1]
    assert run_cli(capsys, *common, "--frames", "0:12")[0] == 0  # leaves no parts folder
    rc, _, err = run_cli(capsys, *common, "--resume")
    assert rc == 0 and "nothing to resume" in err
    assert (decode(out)[1] == first).all()


def test_preview_without_display(capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr("sys.platform", "linux")
    for argv in (["preview", str(SMALL)], ["preview", str(SMALL), "--watch"], ["render", str(SMALL), "--watch"]):
        rc, _, err = run_cli(capsys, *argv)
        assert rc == 2 and err.startswith("error: no display"), err


class FakeWindow:
    """Stands in for the OpenCV window: records frames; its idle() 'edits' the scene file."""

    edits: list[str] = []  # noqa: RUF012 - shared on purpose: the watch loop creates its own instance
    shown: list[int] = []  # noqa: RUF012
    path: Path | None = None

    def __init__(self, *args, **kwargs) -> None:
        self.wants_order = True
        self.scale = 1.0
        self.path: Path | None = None

    def open(self, info) -> None:
        pass

    def write(self, first_index: int, frames) -> None:
        FakeWindow.shown.extend(range(first_index, first_index + len(frames)))

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass

    def describe(self) -> str:
        return "fake window"

    def idle(self, seconds: float) -> None:
        if FakeWindow.edits:
            import os
            import time

            FakeWindow.path.write_text(FakeWindow.edits.pop(0))
            st = FakeWindow.path.stat()
            os.utime(FakeWindow.path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
            time.sleep(0.01)

    def destroy(self) -> None:
        pass


def test_watch_rerenders_on_change_and_survives_scene_errors(capsys: pytest.CaptureFixture, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from morphstudio.sinks import window

    scene = tmp_path / "s.yaml"
    good = "model: builtin:dcgan-faces64\noutput: {size: 32, fps: 4}\nfaces: {a: {seed: 1}, b: {seed: 2}}\n" \
           "timeline: [{at: 0, face: a}, {at: 1, face: b}]\n"
    scene.write_text(good)
    FakeWindow.path = scene
    FakeWindow.edits = ["model: builtin:dcgan-faces64\nfaces: {a: {seed: 1}}\ntimeline: [{at: 0, face: zed}]\n",
                        good]
    FakeWindow.shown = []
    monkeypatch.setattr(window, "WindowSink", FakeWindow)
    monkeypatch.setattr(window, "check_display", lambda: None)
    from morphstudio.cli import build_parser
    from morphstudio.commands.preview import watch_preview
    from morphstudio.commands.render import parse_common

    args = build_parser().parse_args(["preview", str(scene), "--watch", "-q"])
    assert watch_preview(args, parse_common(args), max_cycles=3, poll=0.01) == 0
    err = capsys.readouterr().err
    assert "error: " in err and "zed" in err  # the broken edit was reported ...
    n = len(FakeWindow.shown) // 2
    assert n >= 4 and FakeWindow.shown == list(range(n)) * 2  # ... and the watch went on: versions 1 and 3 played


@pytest.mark.parametrize("extra", [["--resume"], ["--dry-run"], ["--ray"], ["--jobs", "2"],
                                   ["--workers", "2", "--resume"]])
def test_watch_refuses_options_it_would_ignore(capsys: pytest.CaptureFixture, extra: list[str]) -> None:
    rc, _, err = run_cli(capsys, "render", str(SMALL), "--watch", *extra, "-q")
    assert rc == 2 and err.startswith("error: --watch: cannot be combined with")
    for flag in extra:
        if flag.startswith("--"):
            assert flag in err


def test_watch_passes_threads_and_recalibrate_and_names_unused_output_options(
        capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    from morphstudio.commands import watch
    from morphstudio.rendering import renderer

    seen: dict = {}

    def fake_watch(args, common, **_):  # the loop itself is tested above; here: what render hands it
        seen["common"] = common
        import morphstudio

        scene = morphstudio.load_scene(SMALL)
        monkeypatch.setattr(renderer, "render_scene", lambda *a, **kw: seen.setdefault("kw", kw))
        watch.render_to_window(scene, args, common, type("W", (), {"scale": 1.0})())
        return 0

    monkeypatch.setattr(watch, "watch_preview", fake_watch)
    rc, _, err = run_cli(capsys, "render", str(SMALL), "--watch", "--threads", "1", "--recalibrate",
                         "--codec", "ffv1", "-q")
    assert rc == 0 and seen["common"]["threads"] == 1
    assert seen["kw"]["threads"] == 1 and seen["kw"]["recalibrate"] is True
    assert "no video is written, so --codec is not used" in err


def test_unwritable_and_folder_outputs(capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    rc, _, err = run_cli(capsys, "render", str(SMALL), "-o", str(blocker / "sub" / "x.mp4"), "-q")
    assert rc == 2 and err.startswith("error: output.path: cannot create the folder")
    (tmp_path / "v.mp4").mkdir()
    rc, _, err = run_cli(capsys, "render", str(SMALL), "-o", str(tmp_path / "v.mp4"), "-q")
    assert rc == 2 and "is a folder" in err


def test_python_api_render(tmp_path: Path) -> None:
    """``morphstudio.render(scene, ...)`` takes a scene object or a path, and still works once the renderer's
    package is imported."""
    import morphstudio
    import morphstudio.rendering.renderer  # noqa: F401

    scene = morphstudio.load_scene(FPS_OK)
    res = morphstudio.render(scene, output={"path": str(tmp_path / "a.mkv"), "codec": "ffv1", "size": (32, 32)},
                             frames="0:6", progress=False)
    assert res.output == tmp_path / "a.mkv" and decode(res.output)[1].shape == (6, 32, 32, 3)
    res = morphstudio.render(str(FPS_OK), output=str(tmp_path / "b.gif"), frames=":4", progress=False)
    assert res.output == tmp_path / "b.gif" and decode(res.output)[1].shape[0] == 4
