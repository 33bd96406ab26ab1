"""The scene's latent path: keyframes, walks, deform loops, attribute tracks and truncation, for any frames.

``Timeline.latents(frames)`` returns ``[T, num_ws, w_dim]`` float32. Each element is a function of time evaluated
for all requested frames at once (numpy, no per-frame Python loop). Order of composition:

1. the keyframed path (one curve, or one per layer group when keyframes are staggered);
2. walks (``replace`` takes over their layers, ``add`` adds their motion);
3. deform loops (added offsets, several at once);
4. attribute tracks (``add`` or ``set``, in file order);
5. truncation toward ``w_avg`` (per layer group, keyframable).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from morphstudio.latent import LatentSpace
from morphstudio.scene.schema import GROUPS, GroupValues, SceneSpec
from morphstudio.scene.validate import Timing, closing_key, resolve_path, walk_knots
from morphstudio.scene.yamlmap import Locator, Path_
from morphstudio.timeline.curves import Curve, CurveKey
from morphstudio.timeline.arrays import load_array
from morphstudio.edit.directions import load_applied
from morphstudio.edit.guard import Guard
from morphstudio.timeline.faces import FaceResolver, ProjectImage
from morphstudio.timeline.layers import group_of_rows, group_rows, one_latent_problem, select_rows

CHUNK = 32  # frames per block: small blocks stay in the CPU cache (5x faster than 512 for 18x512 latents)
MAX_WALK_NUMBERS = 2**25
"""Numbers (knots x layers x w_dim) one walk may hold: 3640 faces of 18 x 512 (two hours at the default 2 s step
on a 1024 px StyleGAN2); its spline fit then peaks near 2 GiB (see tests/test_scene_hostile.py)."""
CLOSE_TOL = 1e-4  # max |latent(N) - latent(0)| for a loop to count as closed (float32 latents)


@dataclass(frozen=True)
class ClosureItem:
    """How well one periodic element returns to its start.

    Attributes:
        element: e.g. ``timeline``, ``walks[0]``, ``loops[1]``, ``attributes.smile``, ``noise``.
        max_abs: max |value at frame N - value at frame 0|.
        closed: ``max_abs`` is within tolerance.
        note: Why it does not close, when it does not (or why it was not checked).
        checked: False when it could not be measured yet (it depends on photos not projected yet).
    """

    element: str
    max_abs: float
    closed: bool
    note: str = ""
    checked: bool = True


def _latent_std(space: LatentSpace) -> float:
    """Spread of the model's latents around ``w_avg`` (RMS per element): the unit of amplitudes and strengths.

    A unit direction times this is "one standard deviation" of the latents along it (exact for isotropic spaces
    such as z), so the same scene means about the same motion on different models.
    """
    z = np.random.RandomState(20240601).randn(256, space.z_dim)
    ws = np.asarray(space.map_z(z, psi=1.0), dtype=np.float64)
    std = float(np.sqrt(np.mean((ws - space.w_avg.astype(np.float64)) ** 2)))
    return std if std > 0 else 1.0


def _unit_rows(d: np.ndarray) -> np.ndarray:
    n = np.linalg.norm(d, axis=-1, keepdims=True)
    return d / np.maximum(n, 1e-12)


class Timeline:
    """Latents of a scene for any frame indices.

    Args:
        spec: The validated scene.
        timing: Its duration / frame count (from :func:`morphstudio.scene.validate.derive_timing`).
        space: The model's latent space.
        base_dir: Folder relative paths are relative to.
        loc: Error locator (file and lines).
        project_image: Projector for image faces (None: image faces are an error).
        model: The model rendered, when it is not the scene's ``model:`` (``--model``); names its direction library.

    Raises:
        SceneError: Problems that need the model to see: layer ranges, latent/direction shapes, stagger order.
    """

    def __init__(self, spec: SceneSpec, timing: Timing, space: LatentSpace, base_dir: Path, loc: Locator,
                 project_image: ProjectImage | None = None, model: str | None = None) -> None:
        self.spec = spec
        self.model = model or spec.model  # the model actually rendered (--model): whose direction library names use
        self.timing = timing
        self.space = space
        self.base_dir = base_dir
        self.loc = loc
        self.w_avg = np.asarray(space.w_avg, dtype=np.float64).reshape(1, -1)
        self.faces = FaceResolver(spec, space, base_dir, loc, project_image)
        self.face_values = self.faces.all()
        self._std: float | None = None
        self.period = timing.duration if timing.is_loop else None
        self.path_curves = self._build_path()
        self.walks = [self._build_walk(i) for i in range(len(spec.walks))]
        self.loops = [self._build_loop(i) for i in range(len(spec.loops))]
        self.attributes = [self._build_attribute(name) for name in spec.attributes]
        self.truncation = self._build_truncation()
        self.guard = Guard(spec.guard, space)  # far-from-average keyframes and edits: warn once / clamp / off

    # --- helpers ------------------------------------------------------------------------------------------------

    @property
    def latent_std(self) -> float:
        if self._std is None:
            self._std = _latent_std(self.space)
        return self._std

    def _default_interp(self) -> str:
        return self.spec.interp or ("slerp" if self.space.is_z_space else "cubic")

    def _load_direction(self, value: str, path: Path_) -> np.ndarray:
        """A direction file as ``[num_ws, w_dim]`` float64."""
        full = resolve_path(self.base_dir, value)
        sp = self.space

        def choose(names: list[str]) -> str:
            name = names[0] if len(names) == 1 else next((n for n in ("direction", "d", "w") if n in names), None)
            if name is None:
                raise self.loc.error(path, f"{value!r} holds several arrays ({', '.join(names)}); "
                                     "save the direction alone or as 'direction'")
            return name

        def check_shape(shape: tuple[int, ...]) -> str | None:
            if shape in ((sp.w_dim,), (1, sp.w_dim), (sp.num_ws, sp.w_dim)):
                return None
            return (f"has shape {list(shape)}; a direction must be [{sp.w_dim}] or [{sp.num_ws}, {sp.w_dim}] for "
                    "this model")

        arr = load_array(full, value, self.loc, path, choose=choose, check_shape=check_shape)
        if arr.ndim == 2 and arr.shape[0] == 1:
            arr = arr[0]
        if arr.shape == (sp.w_dim,):
            arr = np.tile(arr, (sp.num_ws, 1))
        if arr.shape != (sp.num_ws, sp.w_dim):
            raise self.loc.error(path, f"{value!r} has shape {list(arr.shape)}; a direction must be [{sp.w_dim}] "
                                 f"or [{sp.num_ws}, {sp.w_dim}] for this model")
        if not np.any(arr):  # load_array has refused non-finite values
            raise self.loc.error(path, f"{value!r} is zero: a direction needs a length")
        return arr

    # --- the keyframed path ---------------------------------------------------------------------------------------

    def _build_path(self) -> list[tuple[np.ndarray, Curve]]:
        spec, sp, fps = self.spec, self.space, self.timing.fps
        keys = list(spec.timeline)
        if not keys:
            return []
        if spec.loop and closing_key(spec, fps, self.timing.duration):
            keys = keys[:-1]
        staggered = spec.stagger is not None and not spec.stagger.is_zero()
        staggered = staggered or any(k.stagger is not None and not k.stagger.is_zero() for k in keys)
        interp_default = self._default_interp()
        if not staggered:
            groups = {"all": np.arange(sp.num_ws)}
        else:
            if sp.num_ws == 1:
                where: Path_ = ("stagger",)
                if spec.stagger is None or spec.stagger.is_zero():
                    where = next(("timeline", i, "stagger") for i, k in enumerate(keys)
                                 if k.stagger is not None and not k.stagger.is_zero())
                raise self.loc.error(where, one_latent_problem(sp, "staggered keyframes"))
            groups = {g: rows for g, rows in group_rows(sp).items() if rows.size}
        curves = []
        for g, rows in groups.items():
            ckeys = []
            prev_end = None
            for i, key in enumerate(keys):
                stagger = key.stagger or spec.stagger
                offset = 0.0 if g == "all" or stagger is None else float(getattr(stagger, g))
                t = key.seconds(fps) + offset
                if prev_end is not None and t <= prev_end + 1e-9:
                    raise self.loc.error(
                        ("timeline", i, "stagger") if key.stagger is not None else ("timeline", i),
                        f"with the stagger, the {g} layers would reach {key.face!r} at {t:g} s, not after the "
                        f"previous keyframe ({prev_end:g} s)")
                prev_end = t + key.hold
                value = self.face_values[key.face][rows].reshape(-1)
                ckeys.append(CurveKey(t, value, key.hold, key.interp or interp_default, key.ease or spec.ease))
            if self.period is not None and prev_end is not None and prev_end >= ckeys[0].time + self.period - 1e-9:
                raise self.loc.error(("timeline", len(keys) - 1),
                                     f"with the stagger, the {g} layers would end at {prev_end:g} s, after the loop "
                                     f"closes at {ckeys[0].time + self.period:g} s")
            curves.append((rows, Curve(ckeys, self.period, row_size=sp.w_dim)))
        return curves

    # --- walks ------------------------------------------------------------------------------------------------------

    def _build_walk(self, i: int) -> dict[str, Any]:
        spec, sp = self.spec, self.space
        walk = spec.walks[i]
        rows = select_rows(walk.layers, sp, ("walks", i, "layers"), self.loc)
        seed = walk.seed if walk.seed is not None else (spec.seed * 7919 + 1000 + i) % 2**32
        interp = walk.interp or ("slerp" if sp.is_z_space else "cubic")
        n = walk_knots(walk, self.timing.duration)
        numbers = n * len(rows) * sp.w_dim
        if numbers > MAX_WALK_NUMBERS:
            # The spline through the walk's faces is fitted whole (a few arrays of this size): bound it before
            # drawing the faces, so a tiny step on a big model is an error, not an exhausted machine.
            field = "faces" if walk.kind == "loop" else "step"
            most = MAX_WALK_NUMBERS // (len(rows) * sp.w_dim)
            raise self.loc.error(("walks", i, field), f"the walk passes through {n} random faces of "
                                 f"{len(rows)} x {sp.w_dim} numbers on this model; at most {most} "
                                 f"({MAX_WALK_NUMBERS} numbers)")
        if walk.kind == "loop":
            period = walk.period or self.timing.duration
            times = [k * period / n for k in range(n)]
        else:
            period = None
            times = [k * walk.step for k in range(n)]
        z = np.random.RandomState(seed).randn(n, sp.z_dim)
        # Rows picked before widening to float64 (the same numbers; one big copy fewer).
        ws = np.asarray(np.asarray(sp.map_z(z, psi=float(walk.psi)))[:, rows], dtype=np.float64)
        keys = [CurveKey(t, ws[k].reshape(-1), 0.0, interp, "linear") for k, t in enumerate(times)]
        return {"rows": rows, "curve": Curve(keys, period, row_size=sp.w_dim), "center": ws.mean(0),
                "spec": walk}

    # --- deform loops -----------------------------------------------------------------------------------------------

    def _build_loop(self, i: int) -> dict[str, Any]:
        spec, sp = self.spec, self.space
        lp = spec.loops[i]
        rows = select_rows(lp.layers, sp, ("loops", i, "layers"), self.loc)
        seed = lp.seed if lp.seed is not None else (spec.seed * 7919 + 2000 + i) % 2**32
        rng = np.random.RandomState(seed)
        r1 = rng.randn(sp.num_ws, sp.w_dim)
        r2 = rng.randn(sp.num_ws, sp.w_dim)
        d1 = r1 if lp.direction == "random" else self._load_direction(lp.direction, ("loops", i, "direction"))
        d1 = _unit_rows(d1)
        # The circle's second axis: random, made orthogonal to the first (per layer).
        d2 = _unit_rows(r2 - (r2 * d1).sum(-1, keepdims=True) * d1)
        return {"rows": rows, "d1": d1[rows], "d2": d2[rows], "spec": lp}

    def _loop_offset(self, item: dict[str, Any], t: np.ndarray) -> np.ndarray:
        """``[T, len(rows), w_dim]`` offset of one deform loop."""
        lp = item["spec"]
        n_rows = len(item["rows"])
        if lp.amplitude == 0:
            return np.zeros((len(t), n_rows, self.space.w_dim))
        period = lp.period or self.timing.duration
        theta = 2 * np.pi * (t / period + lp.phase)
        end = self.timing.duration if lp.end is None else lp.end
        env = _envelope(t, lp.start, end, lp.fade_in, lp.fade_out)
        a = lp.amplitude * self.latent_std * env  # [T]: folded in before the outer products
        if lp.shape == "sine":
            return (a * np.sin(theta))[:, None, None] * item["d1"][None]
        return ((a * np.cos(theta))[:, None, None] * item["d1"][None]
                + (a * np.sin(theta))[:, None, None] * item["d2"][None])

    # --- attributes -------------------------------------------------------------------------------------------------

    def _build_attribute(self, name: str) -> dict[str, Any]:
        attr = self.spec.attributes[name]
        path = ("attributes", name)
        rows = select_rows(attr.layers, self.space, path + ("layers",), self.loc)
        # The one hook into morphstudio.edit: a name or file -> unit rows, the latent units of strength 1 (a
        # fitted file's label std; None: one std of the latents) and the boundary `set` measures from.
        applied = load_applied(attr.direction, self.model, self.base_dir, self.space, self.loc,
                               path + ("direction",))
        d = applied.unit * (applied.scale or self.latent_std) if attr.normalize else applied.vector
        curve = None
        if attr.keys:
            keys = [CurveKey(k.seconds(self.timing.fps), np.array([k.value]), 0.0, attr.interp, "linear")
                    for k in attr.keys]
            curve = _value_curve(keys, self.period, path + ("keys",), self.loc)
        d = d[rows]
        norm = np.linalg.norm(d, axis=-1, keepdims=True)
        origin = self.w_avg if applied.origin is None else applied.origin[rows]
        return {"name": name, "rows": rows, "d": d, "curve": curve, "spec": attr, "origin": origin,
                "norm": norm, "unit": d / np.maximum(norm, 1e-12)}  # for mode set

    def _strength(self, item: dict[str, Any], t: np.ndarray) -> np.ndarray:
        if item["curve"] is None:
            return np.full(len(t), float(item["spec"].strength))
        return item["curve"](t)[:, 0]

    # --- truncation -------------------------------------------------------------------------------------------------

    def _build_truncation(self) -> dict[str, Any] | None:
        tr = self.spec.truncation
        sp = self.space
        groups = group_of_rows(sp)
        gidx = np.asarray([GROUPS.index(g) for g in groups])

        def triple(psi: float | GroupValues, path: Path_) -> np.ndarray:
            if isinstance(psi, GroupValues):
                vals = np.array([psi.coarse, psi.middle, psi.fine])
                if sp.num_ws == 1 and not np.all(vals == vals[0]):
                    raise self.loc.error(path, one_latent_problem(sp, "per-group truncation"))
                return vals
            return np.full(3, float(psi))

        if tr.keys:
            keys = [CurveKey(k.seconds(self.timing.fps), triple(k.psi, ("truncation", "keys", i, "psi")), 0.0,
                             tr.interp, "linear") for i, k in enumerate(tr.keys)]
            return {"curve": _value_curve(keys, self.period, ("truncation", "keys"), self.loc), "gidx": gidx}
        vals = triple(tr.psi, ("truncation", "psi"))
        if np.all(vals == 1.0):
            return None
        return {"const": vals, "gidx": gidx}

    def _psi(self, t: np.ndarray) -> np.ndarray:
        """``[T, num_ws]`` psi per frame and latent."""
        tr = self.truncation
        assert tr is not None
        per_group = tr["curve"](t) if "curve" in tr else np.tile(tr["const"], (len(t), 1))
        return per_group[:, tr["gidx"]]

    # --- evaluation -------------------------------------------------------------------------------------------------

    def _path(self, t: np.ndarray) -> np.ndarray:
        """The keyframed path alone: ``[T, num_ws, w_dim]`` float64 (the path curves cover every latent)."""
        sp = self.space
        out = np.empty((len(t), sp.num_ws, sp.w_dim))
        for rows, curve in self.path_curves:
            out[:, rows] = curve(t).reshape(len(t), len(rows), sp.w_dim)
        return out

    def base(self, t: np.ndarray) -> np.ndarray:
        """The keyframed path plus walks: ``[T, num_ws, w_dim]`` float64."""
        sp = self.space
        if self.path_curves:
            out = self._path(t)
        else:
            out = np.broadcast_to(self.w_avg, (len(t), sp.num_ws, sp.w_dim)).copy()
        for walk in self.walks:
            rows = walk["rows"]
            w = walk["curve"](t).reshape(len(t), len(rows), sp.w_dim)
            s = float(walk["spec"].strength)
            if walk["spec"].mode == "replace":
                out[:, rows] = w if s == 1 else out[:, rows] + s * (w - out[:, rows])
            else:
                out[:, rows] += s * (w - walk["center"][None])
        return out

    def _at_times(self, t: np.ndarray) -> np.ndarray:
        w = self.guard.check(self.base(t), t, "the timeline")
        for item in self.loops:
            if item["spec"].amplitude != 0:
                w[:, item["rows"]] += self._loop_offset(item, t)
        for item in self.attributes:
            s = self._strength(item, t)[:, None, None]
            rows, d = item["rows"], item["d"][None]
            if item["spec"].mode == "add":
                w[:, rows] += s * d
            else:
                norm, unit = item["norm"][None], item["unit"][None]
                proj = ((w[:, rows] - item["origin"][None]) * unit).sum(-1, keepdims=True)
                w[:, rows] += (s * norm - proj) * unit
            w = self.guard.check(w, t, f"attributes.{item['name']}")
        if self.truncation is not None:
            psi = self._psi(t)[:, :, None]
            w -= self.w_avg[None]
            w *= psi
            w += self.w_avg[None]
        return w

    def latents(self, frames: Sequence[int] | np.ndarray) -> np.ndarray:
        """Latents ``[T, num_ws, w_dim]`` float32 of the given frame indices (any order, repeats allowed)."""
        t_all = self.timing.times(np.asarray(frames, dtype=np.float64).reshape(-1))
        out = np.empty((len(t_all), self.space.num_ws, self.space.w_dim), dtype=np.float32)
        for start in range(0, len(t_all), CHUNK):
            t = t_all[start:start + CHUNK]
            out[start:start + CHUNK] = self._at_times(t)
        return out

    # --- loop closure -----------------------------------------------------------------------------------------------

    def closure(self) -> list[ClosureItem]:
        """Per-element |value(frame N) - value(frame 0)|, then the whole latent (``total``)."""
        n = self.timing.frame_count
        t = self.timing.times(np.array([0, n]))
        items: list[ClosureItem] = []

        def add(name: str, a: np.ndarray, note: str = "") -> None:
            diff = float(np.max(np.abs(a[1] - a[0]))) if a.size else 0.0
            closed = diff <= CLOSE_TOL
            items.append(ClosureItem(name, diff, closed, "" if closed else note))

        if self.path_curves:
            add("timeline", self._path(t), "the timeline does not return to its first face (set loop: true)")
        for i, walk in enumerate(self.walks):
            note = ("a random walk does not loop (use kind: loop)" if walk["spec"].kind == "random"
                    else f"the scene lasts {self.timing.duration:g} s, not a multiple of the walk period")
            add(f"walks[{i}]", walk["curve"](t), note)
        for i, item in enumerate(self.loops):
            add(f"loops[{i}]", self._loop_offset(item, t),
                f"the scene lasts {self.timing.duration:g} s, not a multiple of the loop period "
                f"({item['spec'].period or self.timing.duration:g} s), and the loop does not fade out")
        for item in self.attributes:
            s = self._strength(item, t)
            add(f"attributes.{item['name']}", s[:, None] * np.abs(item["d"]).max(),
                "its strength differs at the end")
        if self.truncation is not None:
            add("truncation", self._psi(t), "psi differs at the end")
        noise = self.spec.noise
        if noise.mode == "animated" and noise.period is not None:
            phase = 2 * np.pi * self.timing.duration / noise.period
            add("noise", np.array([[1.0, 0.0], [math.cos(phase), math.sin(phase)]]),
                f"the scene lasts {self.timing.duration:g} s, not a multiple of noise.period ({noise.period:g} s)")
        elif noise.mode == "random":
            items.append(ClosureItem("noise", float("nan"), False, "noise mode random changes every frame"))
        # The whole latent as rendered (float32): what a viewer of the looping video sees at the seam.
        add("total", self.latents(np.array([0, n])).astype(np.float64),
            "the last frame does not lead back into the first")
        return items


def _envelope(t: np.ndarray, start: float, end: float, fade_in: float, fade_out: float) -> np.ndarray:
    """0 outside [start, end], smoothstep fades inside."""
    env = ((t >= start) & (t <= end)).astype(np.float64)
    if fade_in > 0:
        u = np.clip((t - start) / fade_in, 0, 1)
        env *= u * u * (3 - 2 * u)
    if fade_out > 0:
        u = np.clip((end - t) / fade_out, 0, 1)
        env *= u * u * (3 - 2 * u)
    return env


def _value_curve(keys: list[CurveKey], period: float | None, path: Path_, loc: Locator) -> Curve:
    if period is not None and keys[-1].time >= keys[0].time + period - 1e-9:
        if len(keys) >= 2 and np.array_equal(keys[-1].value, keys[0].value) and \
                abs(keys[-1].time - keys[0].time - period) < 1e-6:
            keys = keys[:-1]  # an explicit closing key
        else:
            raise loc.error(path + (len(keys) - 1,), f"must be before the loop closes at "
                            f"{keys[0].time + period:g} s (or equal the first key there), got {keys[-1].time:g} s")
    return Curve(keys, period)
