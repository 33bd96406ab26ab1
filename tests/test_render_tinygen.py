"""A tiny generator for renderer tests (fast on 2 CPU cores), and checks that it honours the Generator contract.

Other ``test_render_*`` / ``test_sinks_*`` files import :class:`TinyGen` and the helpers from here.
"""

from __future__ import annotations

from pathlib import Path

import imageio_ffmpeg
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from morphstudio.generators.base import Generator, LayerInfo, to_uint8


class TinyGen(Generator):
    """A seeded conv net on ws: linear -> 4x4 -> upsample + conv per level, with one noise input per level.

    Every op is per-sample, so batch size never changes the result.
    """

    def __init__(self, resolution: int = 16, num_ws: int = 3, w_dim: int = 8, noise: bool = True,
                 seed: int = 0) -> None:
        super().__init__()
        self.family = "stylegan2"
        self.z_dim = self.w_dim = w_dim
        self.c_dim = 0
        self.num_ws = num_ws
        self.resolution = resolution
        self.init_kwargs = {"resolution": resolution, "num_ws": num_ws, "w_dim": w_dim}
        g = torch.Generator().manual_seed(seed)
        self.register_buffer("w_avg", torch.randn(w_dim, generator=g) * 0.1)
        self.fc = nn.Parameter(torch.randn(num_ws * w_dim, 8 * 16, generator=g) / (num_ws * w_dim) ** 0.5)
        self.conv = nn.Parameter(torch.randn(3, 8, 3, 3, generator=g) * 0.2)
        self.levels = [2 ** k for k in range(2, int(np.log2(resolution)) + 1)]
        self.use_noise = noise

    def _mapping(self, z: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        return z[:, None].repeat(1, self.num_ws, 1)

    def _synthesis(self, ws, noise_mode, noise):
        x = (ws.flatten(1) @ self.fc).view(-1, 8, 4, 4)
        for res in self.levels:
            if x.shape[-1] != res:
                x = F.interpolate(x, size=(res, res), mode="nearest")
            if self.use_noise and noise_mode != "none":
                if noise is not None:
                    n = noise[f"noise{res}"]
                elif noise_mode == "random":
                    n = torch.randn(x.shape[0], 1, res, res, device=x.device)
                else:
                    n = getattr(self, f"const{res}", None)
                    if n is None:
                        n = torch.randn(1, 1, res, res, generator=torch.Generator().manual_seed(res)).to(x.device)
                        self.register_buffer(f"const{res}", n)
                x = x + 0.2 * n
        return torch.tanh(F.conv2d(x, self.conv, padding=1))

    def layers(self) -> list[LayerInfo]:
        return [LayerInfo(i, min(self.resolution, 4 * 2 ** i), f"l{i}") for i in range(self.num_ws)]

    def noise_shapes(self) -> dict[str, tuple[int, int]]:
        return {f"noise{r}": (r, r) for r in self.levels} if self.use_noise else {}


def tiny_latents(frame_count: int = 48, num_ws: int = 3, w_dim: int = 8, seed: int = 1):
    """A smooth latent path and its ``frames -> ws`` function (a loop through random points)."""
    rng = np.random.RandomState(seed)
    a, b = rng.randn(num_ws, w_dim), rng.randn(num_ws, w_dim)

    def fn(frames):
        t = 2 * np.pi * np.asarray(list(frames), dtype=np.float64) / frame_count
        return (np.cos(t)[:, None, None] * a + np.sin(t)[:, None, None] * b).astype(np.float32)

    return fn


def expected_frames(gen: Generator, fn, frames, noise=None, fps: float = 24.0, duration=None) -> np.ndarray:
    """Reference: the generator's own output for ``frames``, one at a time, through to_uint8."""
    from morphstudio.rendering.noise import NoiseSource
    from morphstudio.scene.schema import NoiseSpec

    src = NoiseSource(noise if noise is not None else NoiseSpec(), gen.noise_shapes(), fps, duration or 2.0, gen.device)
    out = []
    with torch.no_grad():
        for f in frames:
            mode, nz = src([f])
            img = gen.synthesis(torch.from_numpy(fn([f])), noise_mode=mode, noise=nz)
            out.append(to_uint8(img).numpy()[0])
    return np.stack(out)


def decode(path: Path | str) -> tuple[dict, np.ndarray]:
    """Decode a video with imageio-ffmpeg's reader: (metadata, uint8 [T, H, W, 3])."""
    gen = imageio_ffmpeg.read_frames(str(path))
    meta = next(gen)
    w, h = meta["size"]
    frames = [np.frombuffer(buf, np.uint8).reshape(h, w, 3) for buf in gen]
    return meta, np.stack(frames) if frames else np.zeros((0, h, w, 3), np.uint8)


def test_tinygen_batch_independent() -> None:
    gen = TinyGen().eval()
    ws = torch.from_numpy(tiny_latents()(range(8)))
    with torch.no_grad():
        together = gen.synthesis(ws)
        alone = torch.cat([gen.synthesis(ws[i : i + 1]) for i in range(8)])
    assert together.shape == (8, 3, 16, 16)
    assert torch.allclose(together, alone, atol=1e-6)
    assert gen.latent_space().resolutions == (4, 8, 16)
