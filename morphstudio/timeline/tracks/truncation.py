"""Truncation toward ``w_avg``: one psi, one per layer group, or keyframed; the last step of the path."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from morphstudio.latent import truncate
from morphstudio.scene.schema import GROUPS, GroupValues
from morphstudio.scene.yamlmap import Path_
from morphstudio.timeline.curves import Curve, CurveKey
from morphstudio.timeline.layers import group_of_rows, one_latent_problem
from morphstudio.timeline.tracks.base import ClosureItem, TrackContext, measure, value_curve


@dataclass(frozen=True, eq=False)
class TruncationTrack:
    """The scene's ``truncation:``.

    Attributes:
        group_index: ``[num_ws]`` group of each latent (index into coarse, middle, fine).
        const: ``[3]`` constant psi per group, when not keyframed.
        curve: Keyframed psi per group (``[3]`` values), or None.
        w_avg: ``[1, w_dim]`` float64, the centre.
    """

    group_index: np.ndarray
    const: np.ndarray | None
    curve: Curve | None
    w_avg: np.ndarray

    @classmethod
    def build(cls, ctx: TrackContext) -> TruncationTrack | None:
        """The scene's truncation, or None when psi is 1 everywhere and always (nothing to do).

        Raises:
            SceneError: Per-group psi on a one-latent model, or a key past the loop's end.
        """
        tr = ctx.spec.truncation
        sp = ctx.space
        gidx = np.asarray([GROUPS.index(g) for g in group_of_rows(sp)])

        def triple(psi: float | GroupValues, path: Path_) -> np.ndarray:
            if isinstance(psi, GroupValues):
                vals = np.array([psi.coarse, psi.middle, psi.fine])
                if sp.num_ws == 1 and not np.all(vals == vals[0]):
                    raise ctx.loc.error(path, one_latent_problem(sp, "per-group truncation"))
                return vals
            return np.full(3, float(psi))

        if tr.keys:
            keys = [CurveKey(k.seconds(ctx.timing.fps), triple(k.psi, ("truncation", "keys", i, "psi")), 0.0,
                             tr.interp, "linear") for i, k in enumerate(tr.keys)]
            return cls(gidx, None, value_curve(keys, ctx.period, ("truncation", "keys"), ctx.loc), ctx.w_avg)
        vals = triple(tr.psi, ("truncation", "psi"))
        if np.all(vals == 1.0):
            return None
        return cls(gidx, vals, None, ctx.w_avg)

    def psi(self, t: np.ndarray) -> np.ndarray:
        """``[T, num_ws]`` psi per frame and latent."""
        per_group = self.curve(t) if self.curve is not None else np.tile(self.const, (len(t), 1))
        return per_group[:, self.group_index]

    def apply(self, w: np.ndarray, t: np.ndarray) -> np.ndarray:
        """``w`` pulled toward ``w_avg`` (in place: the frames' block is the biggest array here)."""
        return truncate(w, self.w_avg[None], self.psi(t)[:, :, None], in_place=True)

    def closure(self, t0: float, t1: float) -> list[ClosureItem]:
        """Whether psi returns to its start."""
        return [measure("truncation", self.psi(np.array([t0, t1])), "psi differs at the end")]
