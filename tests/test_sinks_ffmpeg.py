"""ffmpeg failures are typed errors carrying ffmpeg's own words, and leave no output file behind."""

from __future__ import annotations

import stat
from pathlib import Path

import numpy as np
import pytest
from test_render_tinygen import TinyGen, decode, tiny_latents

from morphstudio.errors import EncoderError, RenderError
from morphstudio.rendering.renderer import OutputSettings, render_latents
from morphstudio.sinks.base import StreamInfo
from morphstudio.sinks.ffmpeg import FfmpegSink, container_check

N = 24


@pytest.fixture(scope="module")
def gen() -> TinyGen:
    return TinyGen(resolution=16).eval()


def test_bad_encoder_argument_gives_encoder_error_with_stderr(tmp_path: Path) -> None:
    out = tmp_path / "bad.mp4"
    sink = FfmpegSink(out, "h264", extra_args=["-bogus-option", "1"])
    with pytest.raises(EncoderError) as info:
        sink.open(StreamInfo(16, 16, 24.0))
        for i in range(50):
            sink.write(i, np.zeros((4, 16, 16, 3), np.uint8))
        sink.close()
    err = info.value
    assert "bogus" in err.stderr_tail and err.returncode not in (None, 0)
    assert "bogus" in (err.hint or "")
    assert not out.exists() and not list(tmp_path.iterdir())


def write_fake_ffmpeg(tmp_path: Path, body: str) -> Path:
    exe = tmp_path / "fake-ffmpeg"
    exe.write_text("#!/bin/sh\n" + body)
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)
    return exe


def test_failing_ffmpeg_during_render(gen: TinyGen, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    exe = write_fake_ffmpeg(tmp_path, 'cat > /dev/null; echo "x264 [error]: disk on fire" >&2; exit 3\n')
    monkeypatch.setenv("MORPHSTUDIO_FFMPEG", str(exe))
    out = tmp_path / "video" / "v.mp4"
    with pytest.raises(EncoderError) as info:  # threads and batch given: no calibration run of the fake ffmpeg
        render_latents(gen, tiny_latents(N), N, 24.0, progress=False, batch=4, cpu_threads=1,
                       output=OutputSettings(path=str(out), fps=24.0, segment_seconds=0.5))
    assert info.value.returncode == 3 and "disk on fire" in info.value.stderr_tail
    assert "disk on fire" in str(info.value)
    assert not out.exists() and not list(out.parent.glob(".v.mp4.partial*"))


def test_ffmpeg_failing_at_the_join(gen: TinyGen, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Segments encode, then the concat step fails: still an EncoderError and no output file."""
    import imageio_ffmpeg

    real = imageio_ffmpeg.get_ffmpeg_exe()
    exe = write_fake_ffmpeg(tmp_path, f'case "$*" in *concat*) echo "concat: no way" >&2; exit 1;; esac\n'
                                      f'exec "{real}" "$@"\n')
    monkeypatch.setenv("MORPHSTUDIO_FFMPEG", str(exe))
    out = tmp_path / "v.mkv"
    with pytest.raises(EncoderError, match="concat: no way"):
        render_latents(gen, tiny_latents(N), N, 24.0, progress=False,
                       output=OutputSettings(path=str(out), codec="ffv1", fps=24.0, segment_seconds=0.5))
    assert not out.exists() and not (tmp_path / ".v.mkv.partial").exists()


def test_missing_ffmpeg_is_an_encoder_error(gen: TinyGen, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MORPHSTUDIO_FFMPEG", str(tmp_path / "no-such-ffmpeg"))
    with pytest.raises(EncoderError, match="cannot start ffmpeg"):
        render_latents(gen, tiny_latents(N), N, 24.0, progress=False, batch=4, cpu_threads=1,
                       output=OutputSettings(path=str(tmp_path / "v.mp4"), fps=24.0))


@pytest.mark.parametrize(
    ("codec", "name", "size", "match"),
    [
        ("ffv1", "a.mp4", (16, 16), "cannot be written to a .mp4"),
        ("h264", "a.mp4", (15, 16), "even width and height"),
        ("prores", "a.webm", (16, 16), "use .mov or .mkv"),
        ("nope", "a.mp4", (16, 16), "unknown codec"),
    ],
)
def test_container_checks(codec: str, name: str, size: tuple[int, int], match: str) -> None:
    with pytest.raises(RenderError, match=match):
        container_check(codec, name, *size)


@pytest.mark.parametrize(("codec", "ext"), [("h265", "mp4"), ("vp9", "webm"), ("prores", "mov")])
def test_other_codecs_decode(gen: TinyGen, tmp_path: Path, codec: str, ext: str) -> None:
    out = tmp_path / f"v.{ext}"
    render_latents(gen, tiny_latents(N), N, 24.0, progress=False,
                   output=OutputSettings(path=str(out), codec=codec, fps=24.0, size=(32, 32), segment_seconds=0.5))
    meta, frames = decode(out)
    assert frames.shape == (N, 32, 32, 3) and meta["fps"] == pytest.approx(24.0)
