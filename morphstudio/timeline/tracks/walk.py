"""Walks: seeded random faces joined by a spline, replacing the path on their layers or adding their motion."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from morphstudio.scene.validate import walk_knots
from morphstudio.timeline.curves import Curve, CurveKey
from morphstudio.timeline.layers import select_rows
from morphstudio.timeline.seeds import SeedStream, seed_of
from morphstudio.timeline.tracks.base import ClosureItem, TrackContext, measure

MAX_WALK_NUMBERS = 2**25
"""Numbers (knots x layers x w_dim) one walk may hold: 3640 faces of 18 x 512 (two hours at the default 2 s step
on a 1024 px StyleGAN2); its spline fit then peaks near 2 GiB (see tests/test_scene_hostile.py)."""


@dataclass(frozen=True, eq=False)
class WalkTrack:
    """One entry of ``walks:``.

    Attributes:
        index: Its position in ``walks:`` (its name in reports is ``walks[index]``).
        rows: Latents it moves.
        curve: The spline through its faces (``[len(rows) * w_dim]`` values).
        center: ``[len(rows), w_dim]`` mean of its faces: mode ``add`` adds the motion around it.
        mode: ``replace`` (the walk takes over its layers) or ``add``.
        strength: How much of it: 1 is the whole walk.
        kind: ``loop`` (closes on its period) or ``random``.
        duration: The scene's length in seconds (for the closure note).
    """

    index: int
    rows: np.ndarray
    curve: Curve
    center: np.ndarray
    mode: Literal["replace", "add"]
    strength: float
    kind: str
    duration: float

    @classmethod
    def build(cls, ctx: TrackContext, index: int) -> WalkTrack:
        """Walk ``index`` of the scene, its faces drawn from its seed (or one derived from the scene's).

        Raises:
            SceneError: Its layers do not fit the model, or it would pass through too many numbers.
        """
        spec, sp = ctx.spec, ctx.space
        walk = spec.walks[index]
        rows = select_rows(walk.layers, sp, ("walks", index, "layers"), ctx.loc)
        seed = seed_of(walk.seed, spec.seed, SeedStream.WALK, index)
        interp = walk.interp or ("slerp" if sp.is_z_space else "cubic")
        n = walk_knots(walk, ctx.timing.duration)
        numbers = n * len(rows) * sp.w_dim
        if numbers > MAX_WALK_NUMBERS:
            # The spline through the walk's faces is fitted whole (a few arrays of this size): bound it before
            # drawing the faces, so a tiny step on a big model is an error, not an exhausted machine.
            field = "faces" if walk.kind == "loop" else "step"
            most = MAX_WALK_NUMBERS // (len(rows) * sp.w_dim)
            raise ctx.loc.error(("walks", index, field), f"the walk passes through {n} random faces of "
                                f"{len(rows)} x {sp.w_dim} numbers on this model; at most {most} "
                                f"({MAX_WALK_NUMBERS} numbers)")
        if walk.kind == "loop":
            period = walk.period or ctx.timing.duration
            times = [k * period / n for k in range(n)]
        else:
            period = None
            times = [k * walk.step for k in range(n)]
        z = np.random.RandomState(seed).randn(n, sp.z_dim)
        # Rows picked before widening to float64 (the same numbers; one big copy fewer).
        ws = np.asarray(np.asarray(sp.map_z(z, psi=float(walk.psi)))[:, rows], dtype=np.float64)
        keys = [CurveKey(t, ws[k].reshape(-1), 0.0, interp, "linear") for k, t in enumerate(times)]
        return cls(index=index, rows=rows, curve=Curve(keys, period, row_size=sp.w_dim), center=ws.mean(0),
                   mode=walk.mode, strength=float(walk.strength), kind=walk.kind, duration=ctx.timing.duration)

    def apply(self, w: np.ndarray, t: np.ndarray) -> np.ndarray:
        """``w`` with the walk on its layers: replacing them (blended by ``strength``) or adding its motion."""
        rows, s = self.rows, self.strength
        v = self.curve(t).reshape(len(t), len(rows), w.shape[-1])
        if self.mode == "replace":
            w[:, rows] = v if s == 1 else w[:, rows] + s * (v - w[:, rows])
        else:
            w[:, rows] += s * (v - self.center[None])
        return w

    def closure(self, t0: float, t1: float) -> list[ClosureItem]:
        """Whether the walk returns to its first face."""
        note = ("a random walk does not loop (use kind: loop)" if self.kind == "random"
                else f"the scene lasts {self.duration:g} s, not a multiple of the walk period")
        return [measure(f"walks[{self.index}]", self.curve(np.array([t0, t1])), note)]
