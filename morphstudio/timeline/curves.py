"""Keyframed curves: piecewise cubic Hermite in time, evaluated for many times at once.

Every interpolation kind is written as a cubic Hermite segment (value and tangent at both ends), so segments of
different kinds (cubic, pchip, akima, linear, slerp) can follow one another and a whole curve is evaluated with a
handful of vectorised numpy operations, whatever the number of frames. Tangents come from scipy's splines fitted
through the run of knots the segment belongs to:

* a *run* is a stretch of moving segments between holds; where the curve stops (a hold, the first or last key of a
  scene that does not loop) the tangent is 0, so the motion eases into the hold and the curve stays C1;
* when the scene loops and nothing holds, the run is periodic (scipy's ``bc_type="periodic"``), so the last frame
  leads smoothly into the first;
* at a keyframe time the value is the key's value exactly (the Hermite form ``y0 + h01*(y1 - y0) + ...`` adds
  exact zeros there).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.interpolate import Akima1DInterpolator, CubicSpline, PchipInterpolator

from morphstudio.formats import EASINGS, INTERPOLATIONS

KINDS: tuple[str, ...] = INTERPOLATIONS
_HERMITE, _LINEAR, _SLERP, _CONST = 0, 1, 2, 3
_SNAP = 1e-7  # |u| below this (relative to the segment) is "at the knot"
TANGENT_COLUMNS = 1024  # columns of knot values fitted at once (bounds scipy's temporaries, not the result)


@dataclass(frozen=True)
class CurveKey:
    """One key of a curve.

    Attributes:
        time: Seconds.
        value: ``[D]`` float64.
        hold: Seconds to stay on the value after ``time``.
        interp: Kind of the segment that leaves this key (see :data:`KINDS`).
        ease: Easing of that segment: ``linear``, ``in``, ``out`` or ``in-out``.
    """

    time: float
    value: np.ndarray
    hold: float = 0.0
    interp: str = "cubic"
    ease: str = "linear"


def ease(u: np.ndarray, kind: np.ndarray) -> np.ndarray:
    """Apply per-element easing codes (0 linear, 1 in, 2 out, 3 in-out) to ``u`` in [0, 1]."""
    out = u.copy()
    m = kind == 1
    out[m] = u[m] ** 2
    m = kind == 2
    out[m] = 1 - (1 - u[m]) ** 2
    m = kind == 3
    out[m] = u[m] * u[m] * (3 - 2 * u[m])
    return out


# ease()'s codes are the easings' positions in formats.EASINGS: 0 linear, 1 in, 2 out, 3 in-out.
_EASE_CODES = {name: code for code, name in enumerate(EASINGS)}


def _tangents(kind: str, x: np.ndarray, y: np.ndarray, periodic: bool, period: float) -> np.ndarray:
    """Tangents ``[M, D]`` at knots ``x [M]`` of the ``kind`` spline through ``y [M, D]``.

    Non-periodic runs are clamped (zero tangent at both ends) because the curve is constant beyond them.
    """
    m = len(x)
    d = y.shape[1]
    if m < 2:
        return np.zeros_like(y)
    if kind == "cubic":
        if periodic:
            if m == 2:  # one key and its copy one period later: a constant curve
                return np.zeros_like(y)
            return CubicSpline(x, y, bc_type="periodic")(x, 1)
        zero = np.zeros(d)
        return CubicSpline(x, y, bc_type=((1, zero), (1, zero)))(x, 1)
    # pchip / akima: local methods; periodic runs are padded with wrapped knots so the ends see their neighbours.
    if periodic:
        if m == 2:
            return np.zeros_like(y)
        pad = min(3, m - 1)
        xe = np.concatenate([x[-1 - pad:-1] - period, x, x[1:1 + pad] + period])
        ye = np.concatenate([y[-1 - pad:-1], y, y[1:1 + pad]])
        interp = PchipInterpolator(xe, ye) if kind == "pchip" else Akima1DInterpolator(xe, ye)
        t = interp.derivative()(x)
    else:
        if m == 2:
            return np.zeros_like(y)
        interp = PchipInterpolator(x, y) if kind == "pchip" else Akima1DInterpolator(x, y)
        t = interp.derivative()(x)
        t[0] = 0.0
        t[-1] = 0.0
    return np.nan_to_num(t)


class Curve:
    """A keyframed curve of ``D``-vectors.

    Args:
        keys: Keys in strictly increasing time (holds included); at least one.
        period: Loop period in seconds, or ``None`` for a curve that is constant before its first key and after
            its last. In a loop the curve returns to the first key's value at ``keys[0].time + period``.
        row_size: Size of the vectors slerp works on (``w_dim``); ``D`` must be a multiple of it.

    Raises:
        ValueError: Keys out of order, or a key at/after the loop's end (callers validate first; this is a guard).
    """

    def __init__(self, keys: list[CurveKey], period: float | None = None, row_size: int | None = None) -> None:
        if not keys:
            raise ValueError("a curve needs at least one key")
        self.period = period
        self.t0 = float(keys[0].time)
        self.dim = int(np.asarray(keys[0].value).size)
        self.row_size = row_size or self.dim
        xs: list[float] = []
        ys: list[np.ndarray] = []
        seg_kind: list[str] = []  # kind of the segment leaving each knot
        seg_ease: list[int] = []
        for key in keys:
            v = np.asarray(key.value, dtype=np.float64).reshape(-1)
            if xs and key.time <= xs[-1]:
                raise ValueError(f"keys out of order at {key.time}")
            xs.append(float(key.time))
            ys.append(v)
            if key.hold > 0:
                seg_kind.append("const")
                seg_ease.append(0)
                xs.append(float(key.time + key.hold))
                ys.append(v)
            seg_kind.append(key.interp)
            seg_ease.append(_EASE_CODES[key.ease])
        if period is not None:
            end = self.t0 + period
            if xs[-1] >= end:
                raise ValueError(f"key at {xs[-1]} is not before the loop end {end}")
            xs.append(end)
            ys.append(ys[0])
        else:
            seg_kind = seg_kind[:-1]  # the last knot starts no segment
            seg_ease = seg_ease[:-1]
        self.x = np.asarray(xs)
        self.y = np.stack(ys)  # [M, D]
        n_seg = len(xs) - 1
        self.seg_kind = seg_kind
        self.seg_ease = np.asarray(seg_ease, dtype=np.int64)
        self.seg_code = np.asarray(
            [{"const": _CONST, "linear": _LINEAR, "slerp": _SLERP}.get(k, _HERMITE) for k in self.seg_kind],
            dtype=np.int64,
        )
        self.m0 = np.zeros((n_seg, self.dim))
        self.m1 = np.zeros((n_seg, self.dim))
        if n_seg > 0:
            self._fit_tangents()

    # --- fitting ------------------------------------------------------------------------------------------------

    def _runs(self) -> list[list[int]]:
        """Lists of consecutive moving segment indices, split at holds (and joined across the loop seam)."""
        runs: list[list[int]] = []
        cur: list[int] = []
        for s, kind in enumerate(self.seg_kind):
            if kind == "const":
                if cur:
                    runs.append(cur)
                cur = []
            else:
                cur.append(s)
        if cur:
            runs.append(cur)
        n_seg = len(self.seg_kind)
        if self.period is not None and len(runs) > 1 and runs[0][0] == 0 and runs[-1][-1] == n_seg - 1:
            # The last run ends on the loop seam and the first starts there: they are one run in a loop.
            runs = [runs[-1] + runs[0]] + runs[1:-1]
        return runs

    def _fit_tangents(self) -> None:
        n_seg = len(self.seg_kind)
        periodic_all = self.period is not None and "const" not in self.seg_kind
        for run in self._runs():
            # Knot times of the run in unwrapped time (segments after the seam are shifted by one period).
            xs = [self.x[run[0]]]
            knots = [run[0]]
            shift = 0.0
            for i, s in enumerate(run):
                if i > 0 and s < run[i - 1]:
                    shift += float(self.period or 0.0)
                xs.append(self.x[s + 1] + shift)
                knots.append(s + 1)
            x = np.asarray(xs)
            knot_idx = np.asarray(knots)
            periodic = periodic_all and len(run) == n_seg
            run_idx = np.asarray(run)
            for kind in {self.seg_kind[s] for s in run} & {"cubic", "pchip", "akima"}:
                mine = np.asarray([self.seg_kind[s] == kind for s in run])
                segs = run_idx[mine]
                # Column blocks: every spline here treats the columns independently (same knots, one right-hand
                # side per column), so a block gives the very same numbers while scipy's temporaries (about
                # ten arrays of knots x columns) stay small for long walks on big models.
                for c0 in range(0, self.dim, TANGENT_COLUMNS):
                    cols = slice(c0, c0 + TANGENT_COLUMNS)
                    tan = _tangents(kind, x, self.y[knot_idx, cols], periodic, float(self.period or 0.0))
                    self.m0[segs, cols] = tan[:-1][mine]
                    self.m1[segs, cols] = tan[1:][mine]

    # --- evaluation ---------------------------------------------------------------------------------------------

    def _locate(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Segment index and local parameter u in [0, 1] of each time."""
        t = np.asarray(t, dtype=np.float64).reshape(-1)
        if self.period is not None:
            t = self.t0 + np.mod(t - self.t0, self.period)
        n_seg = len(self.x) - 1
        if n_seg == 0:
            return np.zeros(t.shape, np.int64), np.zeros(t.shape)
        seg = np.clip(np.searchsorted(self.x, t, side="right") - 1, 0, n_seg - 1)
        h = self.x[seg + 1] - self.x[seg]
        u = np.clip((t - self.x[seg]) / h, 0.0, 1.0)
        u[u < _SNAP] = 0.0
        u[u > 1 - _SNAP] = 1.0
        return seg, u

    def __call__(self, t: np.ndarray) -> np.ndarray:
        """Values ``[T, D]`` (float64) at times ``t [T]`` seconds."""
        seg, u = self._locate(t)
        if len(self.x) == 1:
            return np.repeat(self.y[:1], len(u), axis=0)
        s = ease(u, self.seg_ease[seg])
        code = self.seg_code[seg]
        y0 = self.y[seg]
        y1 = self.y[seg + 1]
        dy = y1 - y0
        out = y0.copy()
        herm = code == _HERMITE
        if herm.any():
            sh = s[herm][:, None]
            h = (self.x[seg + 1] - self.x[seg])[herm][:, None]
            h01 = sh * sh * (3 - 2 * sh)
            h10 = sh * (sh - 1) ** 2
            h11 = sh * sh * (sh - 1)
            out[herm] = y0[herm] + h01 * dy[herm] + h * (h10 * self.m0[seg[herm]] + h11 * self.m1[seg[herm]])
        lin = code == _LINEAR
        if lin.any():
            out[lin] = y0[lin] + s[lin][:, None] * dy[lin]
        sl = code == _SLERP
        if sl.any():
            out[sl] = slerp(y0[sl], y1[sl], s[sl], self.row_size)
        # Exactly the key value at the knots (slerp's sin ratios are not exact there).
        at0 = s == 0.0
        out[at0] = y0[at0]
        at1 = s == 1.0
        out[at1] = y1[at1]
        return out


def slerp(a: np.ndarray, b: np.ndarray, s: np.ndarray, row_size: int) -> np.ndarray:
    """Spherical interpolation of each ``row_size`` block of ``a, b [T, D]`` by ``s [T]``.

    Norms are interpolated linearly and directions along the great circle, so unequal norms are handled; nearly
    parallel rows fall back to linear interpolation.
    """
    t_count, d = a.shape
    ar = a.reshape(t_count, d // row_size, row_size)
    br = b.reshape(t_count, d // row_size, row_size)
    na = np.linalg.norm(ar, axis=-1, keepdims=True)
    nb = np.linalg.norm(br, axis=-1, keepdims=True)
    ua = ar / np.maximum(na, 1e-12)
    ub = br / np.maximum(nb, 1e-12)
    cos = np.clip((ua * ub).sum(-1, keepdims=True), -1.0, 1.0)
    theta = np.arccos(cos)
    sv = s[:, None, None]
    sin = np.sin(theta)
    small = sin < 1e-6
    safe = np.where(small, 1.0, sin)
    wa = np.where(small, 1 - sv, np.sin((1 - sv) * theta) / safe)
    wb = np.where(small, sv, np.sin(sv * theta) / safe)
    direction = wa * ua + wb * ub
    norm = (1 - sv) * na + sv * nb
    dn = np.linalg.norm(direction, axis=-1, keepdims=True)
    out = direction / np.maximum(dn, 1e-12) * norm
    return out.reshape(t_count, d)
