"""What every timeline track shares: the closure record, the build context, and the track protocol.

A track is one typed element of the scene's latent path (the keyframed path, a walk, a deform loop, an attribute,
the truncation), built once from the validated scene and the model's latent space. It has two methods:
``apply(w, t)`` changes the latents ``w [T, num_ws, w_dim]`` (float64) at times ``t [T]`` seconds and returns
them, and ``closure(t0, t1)`` says how far its own contribution is from returning to its start between the first
frame and the frame after the last. :class:`morphstudio.timeline.timeline.Timeline` composes them in order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Protocol

import numpy as np

from morphstudio.latent import LatentSpace, sample_latent_stats
from morphstudio.scene.schema import SceneSpec
from morphstudio.scene.validate import Timing, resolve_path
from morphstudio.scene.yamlmap import Locator, Path_
from morphstudio.timeline.arrays import load_array
from morphstudio.timeline.curves import Curve, CurveKey
from morphstudio.timeline.seeds import LATENT_STATS_SAMPLES, LATENT_STATS_SEED

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


def measure(element: str, values: np.ndarray, note: str = "") -> ClosureItem:
    """The closure of ``values [2, ...]`` (at the first frame and the frame after the last).

    Args:
        element: Name shown in the report.
        values: The element's values at both times.
        note: Why it does not close (shown only when it does not).
    """
    diff = float(np.max(np.abs(values[1] - values[0]))) if values.size else 0.0
    closed = diff <= CLOSE_TOL
    return ClosureItem(element, diff, closed, "" if closed else note)


class Track(Protocol):
    """One element of the latent path (see the module docstring)."""

    def apply(self, w: np.ndarray, t: np.ndarray) -> np.ndarray:
        """The latents ``w [T, num_ws, w_dim]`` (float64, updated in place) with this track at times ``t [T]``."""
        ...

    def closure(self, t0: float, t1: float) -> list[ClosureItem]:
        """How far this track's contribution at ``t1`` is from its value at ``t0``."""
        ...


@dataclass(eq=False)
class TrackContext:
    """What building a track needs: the scene, its timing, the model's latent space and where errors point.

    Attributes:
        spec: The validated scene.
        timing: Its duration and frame count.
        space: The model's latent space.
        base_dir: Folder relative paths are relative to.
        loc: Error locator (file and lines).
        model: The model rendered, when not the scene's own (names of directions are looked up in its library).
    """

    spec: SceneSpec
    timing: Timing
    space: LatentSpace
    base_dir: Path
    loc: Locator
    model: str | None = None
    """The model rendered (``--model``), when it is not the scene's ``model:``: whose direction library names use."""
    w_avg: np.ndarray = field(init=False)
    """``[1, w_dim]`` float64."""

    def __post_init__(self) -> None:
        self.w_avg = np.asarray(self.space.w_avg, dtype=np.float64).reshape(1, -1)

    @property
    def period(self) -> float | None:
        """The loop's period in seconds (the scene's length), or None when the scene does not loop."""
        return self.timing.duration if self.timing.is_loop else None

    @cached_property
    def latent_std(self) -> float:
        """Spread of the model's latents around ``w_avg`` (RMS per element): the unit of amplitudes and strengths.

        A unit direction times this is "one standard deviation" of the latents along it (exact for isotropic
        spaces such as z), so the same scene means about the same motion on different models. Measured on first
        use only: it maps a few hundred random latents through the model.
        """
        std = sample_latent_stats(self.space.sample_ws, samples=LATENT_STATS_SAMPLES, seed=LATENT_STATS_SEED,
                                  center=self.space.w_avg.astype(np.float64)).rms
        return std if std > 0 else 1.0

    def load_direction(self, value: str, path: Path_) -> np.ndarray:
        """A direction file as ``[num_ws, w_dim]`` float64 (a ``[w_dim]`` one on every layer).

        Raises:
            SceneError: The file cannot be read, has several unnamed arrays, the wrong shape, or is zero.
        """
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


def unit_rows(d: np.ndarray) -> np.ndarray:
    """Each row of ``d`` scaled to length 1 (a zero row stays zero)."""
    n = np.linalg.norm(d, axis=-1, keepdims=True)
    return d / np.maximum(n, 1e-12)


def value_curve(keys: list[CurveKey], period: float | None, path: Path_, loc: Locator) -> Curve:
    """The curve of keyed values (strengths, psi): in a loop, a last key at the loop's end equal to the first is
    the explicit closing key and is dropped; any other key at or after it is an error.

    Raises:
        SceneError: A key at or after the loop's end that is not the closing key.
    """
    if period is not None and keys[-1].time >= keys[0].time + period - 1e-9:
        if len(keys) >= 2 and np.array_equal(keys[-1].value, keys[0].value) and \
                abs(keys[-1].time - keys[0].time - period) < 1e-6:
            keys = keys[:-1]  # an explicit closing key
        else:
            raise loc.error(path + (len(keys) - 1,), f"must be before the loop closes at "
                            f"{keys[0].time + period:g} s (or equal the first key there), got {keys[-1].time:g} s")
    return Curve(keys, period)
