"""Deform loops: sinusoidal offsets along a direction (seeded or from a file), faded in and out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from morphstudio.timeline.layers import select_rows
from morphstudio.timeline.seeds import SeedStream, seed_of
from morphstudio.timeline.tracks.base import ClosureItem, TrackContext, measure, unit_rows


@dataclass(frozen=True, eq=False)
class DeformLoop:
    """One entry of ``loops:``: ``amplitude * latent_std * envelope(t) * (cos(theta) d1 + sin(theta) d2)`` on its
    layers (``sin(theta) d1`` alone for ``shape: sine``), ``theta = 2 pi (t / period + phase)``.

    Attributes:
        index: Its position in ``loops:`` (``loops[index]`` in reports).
        rows: Latents it moves.
        d1: ``[len(rows), w_dim]`` unit rows: the first axis (seeded, or the direction file's).
        d2: ``[len(rows), w_dim]`` unit rows orthogonal to ``d1``: the circle's second axis.
        amplitude: In standard deviations of the model's latents.
        latent_std: That standard deviation (measured only when the amplitude is not 0; 1.0, unused, when it is).
        period: Seconds per cycle.
        phase: Start of the cycle, in cycles.
        shape: ``circle`` or ``sine``.
        start: Seconds when it begins.
        end: Seconds when it ends.
        fade_in: Seconds of smoothstep fade after ``start``.
        fade_out: Seconds of smoothstep fade before ``end``.
        duration: The scene's length in seconds (for the closure note).
    """

    index: int
    rows: np.ndarray
    d1: np.ndarray
    d2: np.ndarray
    amplitude: float
    latent_std: float
    period: float
    phase: float
    shape: Literal["sine", "circle"]
    start: float
    end: float
    fade_in: float
    fade_out: float
    duration: float

    @classmethod
    def build(cls, ctx: TrackContext, index: int) -> DeformLoop:
        """Loop ``index`` of the scene; its random axes come from its seed (or one derived from the scene's).

        Raises:
            SceneError: Its layers do not fit the model, or its direction file cannot be used.
        """
        spec, sp = ctx.spec, ctx.space
        lp = spec.loops[index]
        rows = select_rows(lp.layers, sp, ("loops", index, "layers"), ctx.loc)
        rng = np.random.RandomState(seed_of(lp.seed, spec.seed, SeedStream.LOOP, index))
        # Both axes are drawn even with a direction file, so adding a file keeps the seeded second axis.
        r1 = rng.randn(sp.num_ws, sp.w_dim)
        r2 = rng.randn(sp.num_ws, sp.w_dim)
        d1 = r1 if lp.direction == "random" else ctx.load_direction(lp.direction, ("loops", index, "direction"))
        d1 = unit_rows(d1)
        # The circle's second axis: random, made orthogonal to the first (per layer).
        d2 = unit_rows(r2 - (r2 * d1).sum(-1, keepdims=True) * d1)
        duration = ctx.timing.duration
        return cls(index=index, rows=rows, d1=d1[rows], d2=d2[rows], amplitude=lp.amplitude,
                   latent_std=ctx.latent_std if lp.amplitude != 0 else 1.0, period=lp.period or duration,
                   phase=lp.phase, shape=lp.shape, start=lp.start, end=duration if lp.end is None else lp.end,
                   fade_in=lp.fade_in, fade_out=lp.fade_out, duration=duration)

    def offset(self, t: np.ndarray) -> np.ndarray:
        """``[T, len(rows), w_dim]`` offset at times ``t``."""
        if self.amplitude == 0:
            return np.zeros((len(t), len(self.rows), self.d1.shape[-1]))
        theta = 2 * np.pi * (t / self.period + self.phase)
        env = envelope(t, self.start, self.end, self.fade_in, self.fade_out)
        a = self.amplitude * self.latent_std * env  # [T]: folded in before the outer products
        if self.shape == "sine":
            return (a * np.sin(theta))[:, None, None] * self.d1[None]
        return ((a * np.cos(theta))[:, None, None] * self.d1[None]
                + (a * np.sin(theta))[:, None, None] * self.d2[None])

    def apply(self, w: np.ndarray, t: np.ndarray) -> np.ndarray:
        """``w`` plus the loop's offset on its layers."""
        if self.amplitude != 0:
            w[:, self.rows] += self.offset(t)
        return w

    def closure(self, t0: float, t1: float) -> list[ClosureItem]:
        """Whether the offset returns to its start (a whole number of cycles, or faded out)."""
        return [measure(f"loops[{self.index}]", self.offset(np.array([t0, t1])),
                        f"the scene lasts {self.duration:g} s, not a multiple of the loop period "
                        f"({self.period:g} s), and the loop does not fade out")]


def envelope(t: np.ndarray, start: float, end: float, fade_in: float, fade_out: float) -> np.ndarray:
    """0 outside [start, end], smoothstep fades inside (``3u^2 - 2u^3`` over each fade)."""
    env = ((t >= start) & (t <= end)).astype(np.float64)
    if fade_in > 0:
        u = np.clip((t - start) / fade_in, 0, 1)
        env *= u * u * (3 - 2 * u)
    if fade_out > 0:
        u = np.clip((end - t) / fade_out, 0, 1)
        env *= u * u * (3 - 2 * u)
    return env
