"""The written video is what the generator made: frame count, size, fps and (lossless) pixels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from test_render_tinygen import TinyGen, decode, expected_frames, tiny_latents

from morphstudio.errors import RenderError
from morphstudio.rendering.batcher import Batcher
from morphstudio.rendering.renderer import OutputSettings, render_latents
from morphstudio.scene.schema import NoiseSpec

FPS = 24.0
N = 48


@pytest.fixture(scope="module")
def gen() -> TinyGen:
    return TinyGen(resolution=16).eval()


def assert_close_uint8(a: np.ndarray, b: np.ndarray) -> None:
    """Equal up to float rounding: a different batch size may run a different conv kernel, which can flip a
    rounding of ``x * 127.5 + 128`` by one level on a handful of pixels."""
    assert a.shape == b.shape
    diff = np.abs(a.astype(np.int16) - b.astype(np.int16))
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-3


def ffv1(path: Path, **kw) -> OutputSettings:
    return OutputSettings(path=str(path), codec="ffv1", fps=FPS, segment_seconds=0.5, **kw)


def test_ffv1_video_matches_generator_exactly(gen: TinyGen, tmp_path: Path) -> None:
    fn = tiny_latents(N)
    out = tmp_path / "v.mkv"
    # batch 1: the same arithmetic as the one-at-a-time reference, so the match is exact
    res = render_latents(gen, fn, N, FPS, output=ffv1(out), batch=1, progress=False)
    meta, frames = decode(out)
    assert frames.shape == (N, 16, 16, 3)
    assert meta["size"] == (16, 16) and meta["fps"] == pytest.approx(FPS)
    np.testing.assert_array_equal(frames, expected_frames(gen, fn, range(N)))
    assert res.segments == 4 and res.output == out
    assert [p.name for p in tmp_path.iterdir()] == ["v.mkv"]  # parts folder and temp files gone


def test_h264_video_has_right_count_size_fps(gen: TinyGen, tmp_path: Path) -> None:
    out = tmp_path / "v.mp4"
    render_latents(gen, tiny_latents(N), N, FPS, output=OutputSettings(path=str(out), size=(32, 18), fps=FPS,
                                                                       segment_seconds=0.5), progress=False)
    meta, frames = decode(out)
    assert frames.shape == (N, 18, 32, 3)
    assert meta["fps"] == pytest.approx(FPS)


def test_frame_range_writes_just_those_frames(gen: TinyGen, tmp_path: Path) -> None:
    fn = tiny_latents(N)
    out = tmp_path / "r.mkv"
    res = render_latents(gen, fn, N, FPS, output=ffv1(out), frames="10:27", progress=False)
    _, frames = decode(out)
    assert res.frames == range(10, 27)
    np.testing.assert_array_equal(frames, expected_frames(gen, fn, range(10, 27)))


@pytest.mark.parametrize("bad", ["5:5", "40:10", "0:100", "x", "1:2:3", "-100:"])
def test_bad_frame_ranges_are_render_errors(gen: TinyGen, tmp_path: Path, bad: str) -> None:
    with pytest.raises(RenderError, match="--frames"):
        render_latents(gen, tiny_latents(N), N, FPS, output=ffv1(tmp_path / "x.mkv"), frames=bad, progress=False)
    assert not list(tmp_path.iterdir())


def test_batch_1_and_16_agree(gen: TinyGen, tmp_path: Path) -> None:
    fn = tiny_latents(N)
    b = Batcher(gen, 24, 24, "fill")
    ws = fn(range(16))
    one = torch.cat([b.images(ws[i : i + 1], [i]) for i in range(16)])
    sixteen = b.images(ws, list(range(16)))
    assert torch.allclose(one, sixteen, atol=1e-5)
    a, c = tmp_path / "a.mkv", tmp_path / "c.mkv"
    render_latents(gen, fn, N, FPS, output=ffv1(a), batch=1, progress=False)
    render_latents(gen, fn, N, FPS, output=ffv1(c), batch=16, progress=False)
    assert_close_uint8(decode(a)[1], decode(c)[1])


@pytest.mark.parametrize("mode", ["const", "random", "fixed", "animated", "none"])
def test_rendering_twice_gives_identical_frames(gen: TinyGen, tmp_path: Path, mode: str) -> None:
    fn = tiny_latents(N)
    noise = NoiseSpec(mode=mode, seed=3)
    a, c = tmp_path / "a.mkv", tmp_path / "c.mkv"
    render_latents(gen, fn, N, FPS, output=ffv1(a), noise=noise, batch=4, progress=False)
    render_latents(gen, fn, N, FPS, output=ffv1(c), noise=noise, batch=4, jobs=2, progress=False)
    fa, fc = decode(a)[1], decode(c)[1]
    np.testing.assert_array_equal(fa, fc)  # same settings twice: bit-identical
    assert_close_uint8(fa, expected_frames(gen, fn, range(N), noise=noise, fps=FPS, duration=N / FPS))


@pytest.mark.parametrize("jobs", [1, 3])
def test_parallel_encoders_give_the_same_video(gen: TinyGen, tmp_path: Path, jobs: int) -> None:
    fn = tiny_latents(N)
    out = tmp_path / "j.mkv"
    render_latents(gen, fn, N, FPS, output=ffv1(out), jobs=jobs, batch=1, progress=False)
    np.testing.assert_array_equal(decode(out)[1], expected_frames(gen, fn, range(N)))


def test_gif_and_png_outputs(gen: TinyGen, tmp_path: Path) -> None:
    import cv2

    fn = tiny_latents(N)
    gif = tmp_path / "a.gif"
    render_latents(gen, fn, N, FPS, output=OutputSettings(path=str(gif), codec="gif", fps=FPS), progress=False)
    _, frames = decode(gif)
    assert frames.shape == (N, 16, 16, 3)
    folder = tmp_path / "frames"
    render_latents(gen, fn, N, FPS, output=OutputSettings(path=str(folder), codec="png", fps=FPS),
                   frames="4:9", progress=False)
    names = sorted(p.name for p in folder.iterdir())
    assert names == [".morphstudio-frames"] + [f"frame_{i:06d}.png" for i in range(4, 9)]  # + the marker
    png = cv2.imread(str(folder / "frame_000004.png"))[:, :, ::-1]
    np.testing.assert_array_equal(png, expected_frames(gen, fn, [4])[0])


@pytest.mark.parametrize("fit", ["fill", "fit", "letterbox"])
def test_non_square_sizes(gen: TinyGen, tmp_path: Path, fit: str) -> None:
    out = tmp_path / "w.mkv"
    render_latents(gen, tiny_latents(N), N, FPS, output=ffv1(out, size=(40, 20), fit=fit), frames=":6",
                   progress=False)
    _, frames = decode(out)
    assert frames.shape == (6, 20, 40, 3)
    if fit == "letterbox":  # 20x20 picture centred, black bars left and right
        assert frames[:, :, :10].max() == 0 and frames[:, :, 30:].max() == 0
        assert frames[:, :, 10:30].max() > 0


def test_audio_is_muxed(gen: TinyGen, tmp_path: Path) -> None:
    from morphstudio.sinks.ffmpeg import run_ffmpeg

    wav = tmp_path / "tone.wav"
    run_ffmpeg(["-f", "lavfi", "-i", "sine=frequency=440:duration=5", str(wav)], "making a test tone")
    out = tmp_path / "a.mp4"
    render_latents(gen, tiny_latents(N), N, FPS, output=OutputSettings(path=str(out), fps=FPS, audio=str(wav)),
                   progress=False)
    meta, frames = decode(out)
    assert len(frames) == N
    assert meta.get("audio_codec"), meta  # the audio track is there (and -shortest cut it to the video)
