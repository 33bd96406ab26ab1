"""Renderer building blocks: frame ranges, segment plans, noise modes, resizing, out-of-memory halving."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_render_tinygen import TinyGen, tiny_latents

from morphstudio.errors import RenderError
from morphstudio.generators.base import to_uint8
from morphstudio.rendering.batcher import Batcher, resize_images
from morphstudio.rendering.clock import parse_frame_range, plan_segments
from morphstudio.rendering.noise import NoiseSource
from morphstudio.scene.schema import NoiseSpec
from morphstudio.rendering.outputs import resolve_codec
from morphstudio.rendering.outputs import OutputSettings, resolve_output


@pytest.mark.parametrize(
    ("text", "expected"),
    [(None, range(10)), (":", range(10)), ("2:5", range(2, 5)), ("7:", range(7, 10)), (":3", range(3)),
     ("-3:", range(7, 10)), ("0:10", range(10)), (range(4, 6), range(4, 6)), ((1, None), range(1, 10)),
     ([3, 4, 5], range(3, 6))],
)
def test_frame_ranges(text, expected) -> None:
    assert parse_frame_range(text, 10) == expected


@pytest.mark.parametrize("bad", ["3:3", "5:2", "0:11", "-11:", "a:b", "1:2:1", slice(0, 4, 2), [1, 3]])
def test_bad_frame_ranges(bad) -> None:
    with pytest.raises(RenderError):
        parse_frame_range(bad, 10)


def test_segments_cut_at_absolute_multiples() -> None:
    assert plan_segments(range(10), 4) == [(0, 4), (4, 8), (8, 10)]
    assert plan_segments(range(5, 13), 4) == [(5, 8), (8, 12), (12, 13)]


def test_noise_modes() -> None:
    shapes = {"a": (4, 4), "b": (8, 8)}
    dev = torch.device("cpu")
    rnd = NoiseSource(NoiseSpec(mode="random", seed=5), shapes, 10.0, 2.0, dev)
    _, together = rnd([3, 4, 5])
    _, alone = rnd([4])
    assert torch.equal(together["b"][1:2], alone["b"])  # per frame, whatever the batch
    assert not torch.equal(together["b"][0], together["b"][1])
    _, fixed = NoiseSource(NoiseSpec(mode="fixed", seed=5), shapes, 10.0, 2.0, dev)([0, 9])
    assert torch.equal(fixed["a"][0], fixed["a"][1])
    anim = NoiseSource(NoiseSpec(mode="animated", seed=5), shapes, 10.0, 2.0, dev)
    _, n = anim([0, 20, 5])  # 20 frames at 10 fps = one 2 s period
    assert torch.allclose(n["b"][0], n["b"][1], atol=1e-5) and not torch.allclose(n["b"][0], n["b"][2])
    big = NoiseSource(NoiseSpec(mode="animated", seed=1), {"x": (64, 64)}, 10.0, 2.0, dev)([3])[1]["x"]
    assert abs(float(big.std()) - 1) < 0.05
    assert NoiseSource(NoiseSpec(mode="const"), shapes, 10, 2, dev)([1]) == ("const", None)
    assert NoiseSource(NoiseSpec(mode="none"), shapes, 10, 2, dev)([1]) == ("none", None)
    with pytest.raises(RenderError, match="unknown mode"):
        NoiseSource(NoiseSpec.model_construct(mode="wobbly", seed=0, period=None), shapes, 10, 2, dev)


def test_resize_modes_and_identity() -> None:
    img = torch.rand(2, 3, 16, 16) * 2 - 1
    assert resize_images(img, 16, 16, "fill") is img  # same size: untouched, so uint8 equals to_uint8 exactly
    assert resize_images(img, 40, 20, "fill").shape == (2, 3, 20, 40)
    assert resize_images(img, 40, 20, "fit").shape == (2, 3, 20, 40)
    box = resize_images(img, 40, 20, "letterbox")
    assert box.shape == (2, 3, 20, 40) and to_uint8(box)[:, :, :10].max() == 0
    down = resize_images(img, 8, 8, "fill")
    assert torch.allclose(down, torch.nn.functional.avg_pool2d(img, 2), atol=1e-6)  # area downscale
    with pytest.raises(RenderError, match="output.fit"):
        resize_images(img, 8, 9, "stretch")


def test_out_of_memory_halves_the_batch() -> None:
    gen = TinyGen().eval()
    calls: list[int] = []
    real = gen._synthesis

    def limited(ws, noise_mode, noise):
        calls.append(len(ws))
        if len(ws) > 3:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(ws, noise_mode, noise)

    gen._synthesis = limited  # type: ignore[method-assign]
    b = Batcher(gen, 16, 16)
    ws = tiny_latents()(range(10))
    pend, batch = b.submit_split(ws, list(range(10)), 16)
    frames = np.concatenate([p.result() for p in pend])
    assert batch == 2 and frames.shape == (10, 16, 16, 3) and b.oom_halvings == 2
    assert calls == [10, 5, 2, 2, 2, 2, 2]

    gen._synthesis = lambda ws, m, n: (_ for _ in ()).throw(torch.OutOfMemoryError("out of memory"))  # type: ignore
    with pytest.raises(RenderError, match="out of memory .* batch size 1"):
        b.submit_split(ws[:2], [0, 1], 2)


def test_output_overrides() -> None:
    base = OutputSettings(path="/x/out.mp4", size=(512, 512), codec="h264")
    gif = resolve_output(base, "/y/a.gif")
    assert gif.codec == "gif" and gif.notes == ("note: output: a.gif is a .gif file, so the output is gif (not codec h264)",)
    with pytest.raises(RenderError, match=r"output: '/y/frames' has no file extension.*codec is h264.*codec png"):
        resolve_output(base, "/y/frames")  # no silent switch to an image folder
    assert resolve_output(base, {"path": "/y/frames", "codec": "png"}).codec == "png"
    assert resolve_output(base, "/y/a.webm").codec == "vp9"
    assert resolve_output(base, {"size": (64, 32), "codec": "ffv1", "path": "/y/a.mkv"}).codec == "ffv1"
    assert resolve_output(base, {"size": None}).size == (512, 512)
    assert resolve_output(base, {"size": None}).notes == ()
    assert resolve_output(base, False).path is None
    assert resolve_codec("a.mov", "prores") == ("prores", None)
    assert resolve_codec("a.mp4", "png")[0] == "h264" and resolve_codec("a.mkv", "gif")[0] == "h264"


@pytest.mark.parametrize("fit", ["fill", "fit", "letterbox"])
@pytest.mark.parametrize("size", [(40, 20), (12, 12), (16, 16)])
def test_cpu_uint8_resize_matches_the_float_path(fit: str, size: tuple[int, int]) -> None:
    """The CPU path (uint8 at model size, OpenCV resize) and the GPU path (float resize, then uint8) agree up to
    interpolation rounding, with the same crop / bar geometry."""
    from morphstudio.rendering.batcher import resize_uint8

    torch.manual_seed(0)
    img = torch.nn.functional.interpolate(torch.rand(2, 3, 4, 4) * 2 - 1, size=(16, 16), mode="bilinear")
    a = to_uint8(resize_images(img, *size, fit)).numpy().astype(int)
    b = resize_uint8(to_uint8(img).numpy(), *size, fit).astype(int)
    assert a.shape == b.shape == (2, size[1], size[0], 3)
    assert np.abs(a - b).mean() < 5.0  # same picture: a shifted crop or bar would differ by tens of levels
