"""The guard: notice edits and keyframes that push a latent far outside the model's distribution.

Distance is measured as the mean over latent rows of ``|w - w_avg|``, in units of the model's *typical distance*
(the same mean for mapped random z, as the projector's "far from w_avg" warning measures it). Past :data:`LIMIT`
the guard warns once per track (naming it and the first time it happens), clamps the latent back onto the limit
(``clamp``: the offset from ``w_avg`` is scaled down, direction kept), or does nothing (``off``).

numpy only: the timeline runs it.
"""

from __future__ import annotations

import logging
from typing import Callable

import numpy as np

from morphstudio.latent import LatentSpace, truncate

log = logging.getLogger(__name__)

LIMIT = 2.0
"""Latents farther than this many typical distances from ``w_avg`` are out of distribution (random faces lie
near 1; at 2 faces of the built-in model turn into texture)."""
MODES = ("warn", "clamp", "off")


def typical_distance(space: LatentSpace, samples: int = 512, seed: int = 20240601) -> float:
    """Mean over random faces (psi 1) of the per-row mean ``|w - w_avg|``."""
    z = np.random.RandomState(seed).randn(samples, space.z_dim)
    ws = np.asarray(space.map_z(z, psi=1.0), dtype=np.float64)
    d = np.linalg.norm(ws - np.asarray(space.w_avg, np.float64).reshape(1, 1, -1), axis=-1).mean(-1)
    return float(max(d.mean(), 1e-12))


class Guard:
    """Checks latents after each track that can push them far.

    Args:
        mode: ``warn``, ``clamp`` or ``off``.
        space: The model's latent space.
        limit: Distance limit in typical distances.
        warn: Where warnings go (default: this module's logger).
        typical: The typical distance, when already known (else measured on first use).
    """

    def __init__(self, mode: str, space: LatentSpace, *, limit: float = LIMIT,
                 warn: Callable[[str], None] | None = None, typical: float | None = None) -> None:
        if mode not in MODES:
            raise ValueError(f"guard mode must be one of {MODES}, got {mode!r}")
        self.mode = mode
        self.space = space
        self.limit = float(limit)
        self.warn = warn or log.warning
        self._typical = typical
        self.w_avg = np.asarray(space.w_avg, np.float64).reshape(1, 1, -1)
        self.warned: set[str] = set()

    @property
    def typical(self) -> float:
        if self._typical is None:
            self._typical = typical_distance(self.space)
        return self._typical

    def distance(self, w: np.ndarray) -> np.ndarray:
        """``[T]`` distance of ``w [T, num_ws, w_dim]`` from ``w_avg`` in typical distances."""
        return np.linalg.norm(w - self.w_avg, axis=-1).mean(-1) / self.typical

    def check(self, w: np.ndarray, t: np.ndarray, what: str) -> np.ndarray:
        """Check (and with ``clamp`` fix, in place) the latents ``w`` at times ``t`` after track ``what``.

        Returns:
            ``w`` (clamped where it was too far when the mode is ``clamp``).
        """
        if self.mode == "off" or (self.mode == "warn" and what in self.warned):
            return w  # warned once already: nothing left to do for this track (the check costs a pass per chunk)
        dist = self.distance(w)
        far = dist > self.limit
        if not np.any(far):
            return w
        if what not in self.warned:
            self.warned.add(what)
            i = int(np.argmax(far))
            action = "clamped to the limit" if self.mode == "clamp" else "set guard: clamp to pull it back"
            self.warn(f"guard: {what} takes the latent {dist[i]:.2f}x the model's typical distance from the "
                      f"average face at {t[i]:.3f} s (limit {self.limit:g}x); {action}")
        if self.mode == "clamp":
            factor = np.where(far, self.limit / np.maximum(dist, 1e-12), 1.0)[:, None, None]
            w = truncate(w, self.w_avg, factor, in_place=True)
        return w
