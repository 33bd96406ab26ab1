"""Encoder failures and command-line limits (issue 7, item 5, the output side).

- an ffmpeg that exits 0 without writing anything is an error (it used to crash with a traceback, or join nothing);
- the first failed encoder stops the render at once (it used to carry on through 29 more segments);
- ``--fps``, ``--size`` and ``--crf`` accept exactly what a scene file accepts (240 fps, 8..16384 px, crf 0..63),
  and a size or quality the encoder itself would refuse is refused before any work.
"""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from test_output_safety import cli, refused, snapshot, write_scene
from test_render_tinygen import TinyGen, decode, tiny_latents

from morphstudio.errors import EncoderError
from morphstudio.rendering.renderer import OutputSettings, render_latents


def fake(tmp_path: Path, body: str) -> Path:
    exe = tmp_path / "bin" / "ffmpeg"
    exe.parent.mkdir(exist_ok=True)
    exe.write_text("#!/bin/sh\n" + body)
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    return exe


def real_ffmpeg() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


@pytest.fixture(scope="module")
def gen() -> TinyGen:
    return TinyGen(resolution=16).eval()


@pytest.mark.parametrize("name", ["v.mkv", "a.gif"])
def test_ffmpeg_exiting_0_without_writing_is_an_error(capsys: pytest.CaptureFixture, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    work = tmp_path / "work"
    work.mkdir()
    scene = write_scene(work, "path: v.mkv, codec: ffv1")
    monkeypatch.setenv("MORPHSTUDIO_FFMPEG", str(fake(tmp_path, "cat > /dev/null\nexit 0\n")))
    before = snapshot(work)
    rc, _, err = cli(capsys, "render", str(scene), "-o", str(work / name), "-q")
    assert rc == 2 and "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    encoded = work / ".v.mkv.parts" / "seg_000000-000004.mkv" if name == "v.mkv" else work / name
    assert len(errors) == 1 and errors[0].startswith(f"error: {encoded}: ffmpeg exited 0 but wrote nothing to ")
    assert errors[0].endswith("(exit code 0)")
    after = snapshot(work)
    assert not (work / name).exists()
    assert [k for k in after if not k.startswith(".v.mkv.parts")] == list(before)  # nothing else appeared
    assert not [k for k in after if "partial" in k or k.endswith(".lock")]


def test_a_join_that_exits_0_without_writing_is_an_error(gen: TinyGen, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    exe = fake(tmp_path, f'case "$*" in *concat*) exit 0;; esac\nexec "{real_ffmpeg()}" "$@"\n')
    monkeypatch.setenv("MORPHSTUDIO_FFMPEG", str(exe))
    out = tmp_path / "v.mkv"
    with pytest.raises(EncoderError, match=r"v.mkv: joining 4 segment\(s\): ffmpeg exited 0 but wrote nothing to "):
        render_latents(gen, tiny_latents(48), 48, 24.0, progress=False,
                       output=OutputSettings(path=str(out), codec="ffv1", fps=24.0, segment_seconds=0.5))
    assert not out.exists() and not (tmp_path / ".v.mkv.partial").exists()


def test_the_first_failed_encoder_stops_the_render(gen: TinyGen, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Every encoder takes all its frames, then fails as it finishes (as a full disk shows at the end). The
    render must stop at the first failure, not start the other 29 segments."""
    starts = tmp_path / "starts.log"
    exe = fake(tmp_path, f'echo started >> "{starts}"\ncat > /dev/null\necho "No space left on device" >&2\n'
                         "exit 1\n")
    monkeypatch.setenv("MORPHSTUDIO_FFMPEG", str(exe))
    fn = tiny_latents(360)

    def paced(frames):  # a generator slower than a failing ffmpeg, as real ones are
        import time

        time.sleep(0.03)
        return fn(frames)

    with pytest.raises(EncoderError, match="No space left on device") as info:
        render_latents(gen, paced, 360, 24.0, progress=False, jobs=1, batch=12,
                       output=OutputSettings(path=str(tmp_path / "v.mkv"), codec="ffv1", fps=24.0,
                                             segment_seconds=0.5))
    assert info.value.returncode == 1
    assert len(starts.read_text().splitlines()) <= 3  # of 30 segments


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--fps", "241"], "--fps: must be more than 0 and at most 240, got 241"),
        (["--fps", "1000"], "--fps: must be more than 0 and at most 240, got 1000"),
        (["--crf", "64"], "--crf: must be at most 63, got 64"),
        (["--crf", "999"], "--crf: must be at most 63, got 999"),
        (["--size", "4x4"], "--size: 4x4 is out of range (8..16384 per side)"),
        (["--size", "16386x16"], "--size: 16386x16 is out of range (8..16384 per side)"),
        (["--size", "99999999999999999999"], "--size: expected WxH"),
        (["--size", "16384x16384"], "output.size: 16384x16384 is larger than ffmpeg can encode"),
        (["--crf", "52", "--codec", "h265"], "output.crf: h265 quality must be between 0 and 51, got 52"),
        (["--crf", "52"], "output.crf: h264 quality must be between 0 and 51, got 52"),
    ],
)
def test_cli_limits_are_the_schemas(capsys: pytest.CaptureFixture, tmp_path: Path, args: list[str],
                                    message: str) -> None:
    scene = write_scene(tmp_path, "path: v.mp4, codec: h264")
    msg = refused(capsys, tmp_path, "render", str(scene), "-q", *args)
    assert message in msg


@pytest.mark.parametrize(
    ("good", "bad", "flag"),
    [
        ("fps: 240", "fps: 241", ["--fps", "240"]),
        ("crf: 63", "crf: 64", ["--crf", "63"]),
        ("size: [16384, 8]", "size: [16386, 8]", ["--size", "16384x8"]),
    ],
)
def test_the_largest_value_a_scene_accepts_the_cli_accepts(capsys: pytest.CaptureFixture, tmp_path: Path,
                                                           good: str, bad: str, flag: list[str]) -> None:
    """The same bound on both sides: a scene with the value validates (schema), the flag passes the CLI, and one
    more is refused by the schema as by the flag (test_cli_limits_are_the_schemas)."""
    def scene(setting: str) -> Path:
        path = tmp_path / "s.yaml"
        path.write_text("model: builtin:dcgan-faces64\n"
                        f"output: {{path: v.webm, codec: vp9, duration: 1, {setting}}}\n"
                        "faces: {a: {seed: 1}}\ntimeline: [{at: 0, face: a}]\n")
        return path

    rc, _, err = cli(capsys, "validate", str(scene(good)), "-q")
    assert rc == 0, err
    rc, text, err = cli(capsys, "render", str(scene("fps: 4")), "--dry-run", *flag)
    assert rc == 0 and "dry run: nothing rendered" in text, err
    rc, _, err = cli(capsys, "validate", str(scene(bad)), "-q")
    assert rc == 2 and err.startswith(f"error: {tmp_path / 's.yaml'}:2: output."), err


def test_a_video_still_decodes_after_all_these_checks(gen: TinyGen, tmp_path: Path) -> None:
    out = tmp_path / "ok.mp4"
    render_latents(gen, tiny_latents(24), 24, 24.0, progress=False,
                   output=OutputSettings(path=str(out), codec="h264", crf=51, fps=24.0, segment_seconds=0.5))
    assert decode(out)[1].shape == (24, 16, 16, 3)
