"""The keyframed path: one curve through the faces of ``timeline:``, or one per layer group when staggered."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from morphstudio.scene.validate import closing_key
from morphstudio.scene.yamlmap import Path_
from morphstudio.timeline.curves import Curve, CurveKey
from morphstudio.timeline.layers import group_rows, one_latent_problem
from morphstudio.timeline.tracks.base import ClosureItem, TrackContext, measure


@dataclass(frozen=True, eq=False)
class PathTrack:
    """The path through the keyframes; it sets every latent (the curves' rows cover them all).

    Attributes:
        curves: ``(rows, curve)`` per layer group: one group ``all`` unless keyframes are staggered.
        num_ws: Latents per frame.
        w_dim: Size of each latent.
    """

    curves: tuple[tuple[np.ndarray, Curve], ...]
    num_ws: int
    w_dim: int

    @classmethod
    def build(cls, ctx: TrackContext, faces: dict[str, np.ndarray]) -> PathTrack | None:
        """The path of the scene's ``timeline:`` keys (None when it has none).

        Args:
            ctx: The build context.
            faces: Every face of the scene, ``[num_ws, w_dim]``.

        Raises:
            SceneError: Staggered keys on a one-latent model, or a stagger that reorders keys or passes the loop.
        """
        spec, sp, fps = ctx.spec, ctx.space, ctx.timing.fps
        keys = list(spec.timeline)
        if not keys:
            return None
        if spec.loop and closing_key(spec, fps, ctx.timing.duration):
            keys = keys[:-1]
        staggered = spec.stagger is not None and not spec.stagger.is_zero()
        staggered = staggered or any(k.stagger is not None and not k.stagger.is_zero() for k in keys)
        interp_default = spec.interp or ("slerp" if sp.is_z_space else "cubic")
        if not staggered:
            groups = {"all": np.arange(sp.num_ws)}
        else:
            if sp.num_ws == 1:
                where: Path_ = ("stagger",)
                if spec.stagger is None or spec.stagger.is_zero():
                    where = next(("timeline", i, "stagger") for i, k in enumerate(keys)
                                 if k.stagger is not None and not k.stagger.is_zero())
                raise ctx.loc.error(where, one_latent_problem(sp, "staggered keyframes"))
            groups = {g: rows for g, rows in group_rows(sp).items() if rows.size}
        period = ctx.period
        curves = []
        for g, rows in groups.items():
            ckeys = []
            prev_end = None
            for i, key in enumerate(keys):
                stagger = key.stagger or spec.stagger
                offset = 0.0 if g == "all" or stagger is None else float(getattr(stagger, g))
                t = key.seconds(fps) + offset
                if prev_end is not None and t <= prev_end + 1e-9:
                    raise ctx.loc.error(
                        ("timeline", i, "stagger") if key.stagger is not None else ("timeline", i),
                        f"with the stagger, the {g} layers would reach {key.face!r} at {t:g} s, not after the "
                        f"previous keyframe ({prev_end:g} s)")
                prev_end = t + key.hold
                value = faces[key.face][rows].reshape(-1)
                ckeys.append(CurveKey(t, value, key.hold, key.interp or interp_default, key.ease or spec.ease))
            if period is not None and prev_end is not None and prev_end >= ckeys[0].time + period - 1e-9:
                raise ctx.loc.error(("timeline", len(keys) - 1),
                                    f"with the stagger, the {g} layers would end at {prev_end:g} s, after the loop "
                                    f"closes at {ckeys[0].time + period:g} s")
            curves.append((rows, Curve(ckeys, period, row_size=sp.w_dim)))
        return cls(tuple(curves), sp.num_ws, sp.w_dim)

    def values(self, t: np.ndarray) -> np.ndarray:
        """The path alone: ``[T, num_ws, w_dim]`` float64."""
        return self.apply(np.empty((len(t), self.num_ws, self.w_dim)), t)

    def apply(self, w: np.ndarray, t: np.ndarray) -> np.ndarray:
        """``w`` with every latent set to the path's (what came before is replaced)."""
        for rows, curve in self.curves:
            w[:, rows] = curve(t).reshape(len(t), len(rows), self.w_dim)
        return w

    def closure(self, t0: float, t1: float) -> list[ClosureItem]:
        """Whether the path returns to its first face."""
        return [measure("timeline", self.values(np.array([t0, t1])),
                        "the timeline does not return to its first face (set loop: true)")]
