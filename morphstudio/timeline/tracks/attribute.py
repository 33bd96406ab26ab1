"""Attribute tracks: a direction with a constant or keyframed strength, added to the latents or set along it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from morphstudio.edit.directions import load_applied
from morphstudio.timeline.curves import Curve, CurveKey
from morphstudio.timeline.layers import select_rows
from morphstudio.timeline.tracks.base import ClosureItem, TrackContext, measure, value_curve


@dataclass(frozen=True, eq=False)
class AttributeTrack:
    """One entry of ``attributes:``.

    ``add`` adds ``strength * d``; ``set`` moves the latents along ``d`` so that their component there (measured
    from ``origin``: a fitted boundary's point, else ``w_avg``) is ``strength * |d|``.

    Attributes:
        name: Its key in ``attributes:`` (``attributes.NAME`` in reports).
        rows: Latents it edits.
        d: ``[len(rows), w_dim]`` direction (per row; scaled to one standard deviation when normalised).
        norm: ``[len(rows), 1]`` length of each row of ``d``.
        unit: ``[len(rows), w_dim]`` ``d`` per row at length 1.
        mode: ``add`` or ``set``.
        strength: The constant strength (used when there is no curve).
        curve: Keyframed strength, or None.
        origin: ``[1 or len(rows), w_dim]`` float64, where ``set`` measures from.
    """

    name: str
    rows: np.ndarray
    d: np.ndarray
    norm: np.ndarray
    unit: np.ndarray
    mode: Literal["add", "set"]
    strength: float
    curve: Curve | None
    origin: np.ndarray

    @classmethod
    def build(cls, ctx: TrackContext, name: str) -> AttributeTrack:
        """Attribute ``name`` of the scene.

        Raises:
            SceneError: Its layers do not fit the model, its direction file cannot be used, or a key passes the
                loop's end.
        """
        attr = ctx.spec.attributes[name]
        path = ("attributes", name)
        rows = select_rows(attr.layers, ctx.space, path + ("layers",), ctx.loc)
        # The one hook into morphstudio.edit: a name or file -> unit rows, the latent units of strength 1 (a
        # fitted file's label std; None: one std of the latents) and the boundary `set` measures from.
        applied = load_applied(attr.direction, ctx.model or ctx.spec.model, ctx.base_dir, ctx.space, ctx.loc,
                               path + ("direction",))
        d = applied.unit * (applied.scale or ctx.latent_std) if attr.normalize else applied.vector
        curve = None
        if attr.keys:
            keys = [CurveKey(k.seconds(ctx.timing.fps), np.array([k.value]), 0.0, attr.interp, "linear")
                    for k in attr.keys]
            curve = value_curve(keys, ctx.period, path + ("keys",), ctx.loc)
        d = d[rows]
        norm = np.linalg.norm(d, axis=-1, keepdims=True)
        origin = ctx.w_avg if applied.origin is None else applied.origin[rows]
        return cls(name=name, rows=rows, d=d, norm=norm, unit=d / np.maximum(norm, 1e-12), mode=attr.mode,
                   strength=attr.strength, curve=curve, origin=origin)

    def strengths(self, t: np.ndarray) -> np.ndarray:
        """``[T]`` strength at times ``t``."""
        if self.curve is None:
            return np.full(len(t), float(self.strength))
        return self.curve(t)[:, 0]

    def apply(self, w: np.ndarray, t: np.ndarray) -> np.ndarray:
        """``w`` edited along the direction on the track's layers."""
        s = self.strengths(t)[:, None, None]
        rows, d = self.rows, self.d[None]
        if self.mode == "add":
            w[:, rows] += s * d
        else:
            norm, unit = self.norm[None], self.unit[None]
            proj = ((w[:, rows] - self.origin[None]) * unit).sum(-1, keepdims=True)
            w[:, rows] += (s * norm - proj) * unit
        return w

    def closure(self, t0: float, t1: float) -> list[ClosureItem]:
        """Whether the strength returns to its start (in latent units: strength times the largest element)."""
        s = self.strengths(np.array([t0, t1]))
        return [measure(f"attributes.{self.name}", s[:, None] * np.abs(self.d).max(),
                        "its strength differs at the end")]
