"""The scene's latent path: its tracks composed, for any frames.

``Timeline.latents(frames)`` returns ``[T, num_ws, w_dim]`` float32. Each track (:mod:`morphstudio.timeline.tracks`)
is a function of time evaluated for all requested frames at once (numpy, no per-frame Python loop), applied in
this order, starting from ``w_avg`` on every latent:

1. the keyframed path (one curve, or one per layer group when keyframes are staggered);
2. walks (``replace`` takes over their layers, ``add`` adds their motion);
3. deform loops (added offsets, several at once);
4. attribute tracks (``add`` or ``set``, in file order);
5. truncation toward ``w_avg`` (per layer group, keyframable).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import numpy as np

from morphstudio.edit.guard import Guard
from morphstudio.latent import LatentSpace
from morphstudio.scene.schema import NoiseSpec, SceneSpec
from morphstudio.scene.validate import Timing
from morphstudio.scene.yamlmap import Locator
from morphstudio.timeline.faces import FaceResolver, ProjectImage
from morphstudio.timeline.tracks import (CLOSE_TOL, MAX_WALK_NUMBERS, AttributeTrack, ClosureItem, DeformLoop,
                                         PathTrack, Track, TrackContext, TruncationTrack, WalkTrack)
from morphstudio.timeline.tracks.base import measure

__all__ = ["CHUNK", "CLOSE_TOL", "ClosureItem", "MAX_WALK_NUMBERS", "Timeline", "noise_closure"]

CHUNK = 32  # frames per block: small blocks stay in the CPU cache (5x faster than 512 for 18x512 latents)


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
        self.timing = timing
        self.space = space
        self.base_dir = base_dir
        self.loc = loc
        self.context = TrackContext(spec, timing, space, base_dir, loc, model)
        self.w_avg = self.context.w_avg
        self.faces = FaceResolver(spec, space, base_dir, loc, project_image)
        self.face_values = self.faces.all()
        # Built in this order so that a scene with several problems reports the first in reading order.
        self.path = PathTrack.build(self.context, self.face_values)
        self.walks = [WalkTrack.build(self.context, i) for i in range(len(spec.walks))]
        self.loops = [DeformLoop.build(self.context, i) for i in range(len(spec.loops))]
        self.attributes = [AttributeTrack.build(self.context, name) for name in spec.attributes]
        self.truncation = TruncationTrack.build(self.context)
        self._base: tuple[Track, ...] = (*([self.path] if self.path else []), *self.walks)
        self._effects: tuple[Track, ...] = (*self.loops, *self.attributes,
                                            *([self.truncation] if self.truncation else []))
        self.guard = Guard(spec.guard, space)  # far-from-average keyframes and edits: warn once / clamp / off

    @property
    def tracks(self) -> tuple[Track, ...]:
        """Every track, in the order they are applied."""
        return self._base + self._effects

    @property
    def latent_std(self) -> float:
        """The model's latent spread, the unit of loop amplitudes and attribute strengths."""
        return self.context.latent_std

    # --- evaluation -------------------------------------------------------------------------------------------------

    def base(self, t: np.ndarray) -> np.ndarray:
        """The keyframed path plus walks: ``[T, num_ws, w_dim]`` float64 (``w_avg`` where nothing sets a latent)."""
        sp = self.space
        shape = (len(t), sp.num_ws, sp.w_dim)
        # A keyframed path sets every latent (PathTrack.apply), so only a scene without one starts from w_avg.
        w = np.empty(shape) if self.path is not None else np.broadcast_to(self.w_avg, shape).copy()
        for track in self._base:
            w = track.apply(w, t)
        return w

    def _at_times(self, t: np.ndarray) -> np.ndarray:
        w = self.guard.check(self.base(t), t, "the timeline")
        for track in self._effects:
            w = track.apply(w, t)
            if isinstance(track, AttributeTrack):
                w = self.guard.check(w, t, f"attributes.{track.name}")
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
        """Per-track |value(frame N) - value(frame 0)|, then the noise, then the whole latent (``total``)."""
        n = self.timing.frame_count
        t0, t1 = (float(x) for x in self.timing.times(np.array([0, n])))
        items = [item for track in self.tracks for item in track.closure(t0, t1)]
        items += noise_closure(self.spec.noise, self.timing.duration)
        # The whole latent as rendered (float32): what a viewer of the looping video sees at the seam.
        items.append(measure("total", self.latents(np.array([0, n])).astype(np.float64),
                             "the last frame does not lead back into the first"))
        return items


def noise_closure(noise: NoiseSpec, duration: float) -> list[ClosureItem]:
    """The closure of the synthesis noise (none unless it is animated or random): not a track of latents, but
    part of what a viewer sees at the seam.

    Args:
        noise: The scene's noise settings.
        duration: The scene's length in seconds.
    """
    if noise.mode == "animated" and noise.period is not None:
        phase = 2 * np.pi * duration / noise.period
        return [measure("noise", np.array([[1.0, 0.0], [math.cos(phase), math.sin(phase)]]),
                        f"the scene lasts {duration:g} s, not a multiple of noise.period ({noise.period:g} s)")]
    if noise.mode == "random":
        return [ClosureItem("noise", float("nan"), False, "noise mode random changes every frame")]
    return []
