"""Per-frame noise inputs from a scene's noise settings, deterministic and independent of batch size.

Modes (``NoiseSpec.mode``): ``const`` uses the checkpoint's stored noise, ``none`` disables noise, ``random``
draws fresh noise per frame seeded by (seed, frame index), ``fixed`` uses one seeded map per layer for every
frame, ``animated`` moves along ``cos(2 pi t / period) A + sin(2 pi t / period) B`` with seeded unit-variance A, B,
which is periodic (so loops close) and keeps unit variance at every t.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch

from morphstudio.errors import RenderError
from morphstudio.scene.schema import NoiseSpec

NOISE_MODES: tuple[str, ...] = ("const", "random", "none", "fixed", "animated")


def noise_identity(spec: NoiseSpec) -> dict[str, Any]:
    """What the segment manifest records of the noise (a change means no segment can be reused)."""
    return {"mode": spec.mode, "seed": spec.seed, "period": spec.period}


def _seeded_normal(shape: tuple[int, ...], *seeds: int) -> torch.Tensor:
    # CPU generator: identical numbers on every machine and device, whatever the batch.
    g = torch.Generator()
    g.manual_seed(hash_seeds(*seeds))
    return torch.randn(shape, generator=g)


def hash_seeds(*values: int) -> int:
    """Combine integers into one 63-bit seed (stable across runs, unlike ``hash``)."""
    h = 0x9E3779B97F4A7C15
    for v in values:
        h ^= (int(v) + 0x9E3779B97F4A7C15 + ((h << 6) & 0xFFFFFFFFFFFFFFFF) + (h >> 2)) & 0xFFFFFFFFFFFFFFFF
    return h & 0x7FFFFFFFFFFFFFFF


class NoiseSource:
    """Builds the ``noise_mode`` / ``noise`` arguments of ``Generator.synthesis`` for a batch of frames.

    Args:
        settings: The scene's noise (``NoiseSpec``).
        shapes: ``generator.noise_shapes()`` (``{layer: (H, W)}``).
        fps: Frames per second (animated noise is a function of time).
        duration: Scene duration in seconds, the default animated period.
        device: Where the noise tensors are made.
        dtype: Their dtype.
    """

    def __init__(self, settings: NoiseSpec, shapes: dict[str, tuple[int, int]], fps: float,
                 duration: float, device: torch.device, dtype: torch.dtype = torch.float32) -> None:
        if settings.mode not in NOISE_MODES:
            raise RenderError(f"noise.mode: unknown mode {settings.mode!r} (use one of {', '.join(NOISE_MODES)})")
        self.settings = settings
        self.shapes = dict(shapes)
        self.fps = fps
        self.device = device
        self.dtype = dtype
        self.period = settings.period if settings.period is not None else duration
        if settings.mode == "animated" and not (self.period and self.period > 0):
            raise RenderError(f"noise.period: animated noise needs a positive period, got {self.period}")
        self._fixed: dict[str, torch.Tensor] = {}
        self._ab: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
        for k, (name, (h, w)) in enumerate(sorted(self.shapes.items())):
            if settings.mode == "fixed":
                self._fixed[name] = _seeded_normal((1, 1, h, w), settings.seed, k).to(device, dtype)
            elif settings.mode == "animated":
                a = _seeded_normal((1, 1, h, w), settings.seed, k, 0).to(device, dtype)
                b = _seeded_normal((1, 1, h, w), settings.seed, k, 1).to(device, dtype)
                self._ab[name] = (a, b)

    def __call__(self, frames: Sequence[int]) -> tuple[str, dict[str, torch.Tensor] | None]:
        """``(noise_mode, noise)`` for synthesising ``frames`` in one batch."""
        mode = self.settings.mode
        if mode in ("const", "none"):
            return mode, None
        if not self.shapes:  # a model without noise inputs (DCGAN): nothing to vary
            return "const", None
        n = len(frames)
        if mode == "fixed":
            return "const", {name: t.expand(n, -1, -1, -1) for name, t in self._fixed.items()}
        if mode == "random":
            out: dict[str, torch.Tensor] = {}
            for k, (name, (h, w)) in enumerate(sorted(self.shapes.items())):
                maps = [_seeded_normal((1, 1, h, w), self.settings.seed, k, int(f), 7) for f in frames]
                out[name] = _to_device(torch.cat(maps).to(self.dtype), self.device)
            return "const", out
        # animated: cos and sin rounded to the dtype on the CPU, then one copy for both
        phase = torch.tensor([2 * math.pi * (int(f) / self.fps) / self.period for f in frames], dtype=torch.float64)
        cos_sin = _to_device(torch.stack((phase.cos(), phase.sin())).to(self.dtype), self.device)
        cos, sin = cos_sin[0].view(n, 1, 1, 1), cos_sin[1].view(n, 1, 1, 1)
        return "const", {name: cos * a + sin * b for name, (a, b) in self._ab.items()}


def _to_device(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Copy a CPU tensor to ``device``; on CUDA from pinned memory and ``non_blocking``, so the host does not wait
    (the copy is queued on the current stream, ahead of the synthesis that reads it)."""
    if device.type == "cuda":
        return t.pin_memory().to(device, non_blocking=True)
    return t.to(device)
