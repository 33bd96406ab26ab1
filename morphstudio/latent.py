"""A numpy-only view of a generator's latent space.

The scene and timeline packages never import torch; they learn what they need about the model through this
small record, which the generator side (:meth:`morphstudio.generators.base.Generator.latent_space`) fills in.
It also holds the two latent computations that numpy and torch callers share: :func:`sample_latent_stats` (the
timeline's unit of motion, the projector's spreads, rosinality's ``w_avg``) and :func:`truncate` (numpy).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable, Generic, TypeVar

import numpy as np

MapZ = Callable[..., np.ndarray]
"""``map_z(z [N, z_dim], psi=1.0, cutoff=None) -> ws [N, num_ws, w_dim]`` (float32)."""


@dataclass(frozen=True)
class LatentSpace:
    """What the timeline needs to know about a model.

    Attributes:
        family: ``"stylegan2"``, ``"stylegan3"`` or ``"dcgan"``.
        z_dim: Size of the input noise vector z.
        w_dim: Size of each per-layer latent w.
        num_ws: Number of per-layer latents (1 for DCGAN: its only latent *is* z).
        w_avg: ``[w_dim]`` mean latent, the centre of truncation.
        resolutions: ``[num_ws]`` the largest feature-map size each latent drives (coarse -> fine).
        map_z: Maps z to ws with truncation (see :data:`MapZ`).
    """

    family: str
    z_dim: int
    w_dim: int
    num_ws: int
    w_avg: np.ndarray
    resolutions: tuple[int, ...]
    map_z: MapZ = field(repr=False, compare=False)

    @property
    def is_z_space(self) -> bool:
        """True when the latents are z itself (DCGAN): interpolate with slerp, not linearly."""
        return self.family == "dcgan"

    def sample_ws(self, samples: int, seed: int) -> np.ndarray:
        """``samples`` mapped random latents ``[samples, num_ws, w_dim]`` float64, untruncated: z drawn as
        ``RandomState(seed).randn(samples, z_dim)`` (a :data:`SampleWs` for :func:`sample_latent_stats`)."""
        z = np.random.RandomState(seed).randn(samples, self.z_dim)
        return np.asarray(self.map_z(z, psi=1.0), dtype=np.float64)


def z_from_seed(seed: int, z_dim: int) -> np.ndarray:
    """The z of a seed, ``[z_dim]`` float64: NVIDIA's convention (``RandomState(seed).randn``), so seed 42 here is
    seed 42 in ``gen_images.py`` and in the reference data."""
    if not 0 <= seed < 2**32:
        raise ValueError(f"seed must be in [0, 2**32), got {seed}")
    return np.random.RandomState(seed).randn(z_dim)


ArrayT = TypeVar("ArrayT")
"""numpy arrays for the timeline, torch tensors for the projector and the checkpoint readers."""

SampleWs = Callable[[int, int], Any]
"""``sample(samples, seed) -> ws [samples, ..., w_dim]``: mapped random latents, drawn the caller's way."""


@dataclass(frozen=True, eq=False)
class LatentStats(Generic[ArrayT]):
    """How mapped random latents spread around a centre (see :func:`sample_latent_stats`).

    Attributes:
        mean: The samples' mean over the sample axis (``[..., w_dim]``).
        center: What the spreads are measured from: the given centre (``w_avg``), else ``mean``.
        spread: Per-element RMS of ``sample - center`` over the sample axis (``[..., w_dim]``).
        rms: RMS of ``sample - center`` over every element: one number for the whole space.
        typical_distance: Mean Euclidean length of ``sample - center`` along the last axis.
    """

    mean: ArrayT
    center: ArrayT
    spread: ArrayT
    rms: float
    typical_distance: float


def _numpy_row_norm(d: Any) -> Any:
    return np.linalg.norm(d, axis=-1)


def sample_latent_stats(sample: SampleWs, *, samples: int, seed: int, center: Any = None,
                        row_norm: Callable[[Any], Any] = _numpy_row_norm) -> LatentStats[Any]:
    """Statistics of ``samples`` mapped random latents: the one place they are computed.

    The arithmetic uses only what numpy arrays and torch tensors share (``-``, ``*``, ``mean``, ``sum``,
    ``** 0.5``), so a torch caller gets exactly the numbers it computed itself before; the sample count and the seed
    are each caller's own (they are part of what its output is), never a shared default.

    Args:
        sample: Draws and maps the latents (``sample(samples, seed)``), e.g. :meth:`LatentSpace.sample_ws`, or a
            torch caller's own generator and mapping network.
        samples: How many latents to draw.
        seed: Seed of the draw.
        center: Measure the spread from here (``w_avg``, broadcastable to a sample); ``None``: from the mean.
        row_norm: Euclidean length along the last axis in the samples' array library (numpy's by default; torch
            callers pass ``lambda d: d.norm(dim=-1)``, whose summation order differs from numpy's).

    Returns:
        The :class:`LatentStats`, in the array type ``sample`` returns.
    """
    ws = sample(samples, seed)
    mean = ws.mean(0)
    c = mean if center is None else center
    d = ws - c
    sq = d * d
    return LatentStats(mean=mean, center=c, spread=sq.mean(0) ** 0.5, rms=math.sqrt(float(sq.mean())),
                       typical_distance=float(row_norm(d).mean()))


def truncate(w: np.ndarray, w_avg: np.ndarray, psi: float | np.ndarray | None, *,
             in_place: bool = False) -> np.ndarray:
    """``w_avg + psi * (w - w_avg)``, the numpy truncation toward ``w_avg`` (torch has its own in the generators).

    Args:
        w: Latents.
        w_avg: The centre, broadcastable to ``w``.
        psi: A number, or an array broadcastable to ``w`` (per frame and layer); a number that is ``None`` or 1
            leaves ``w`` untouched (``w_avg + 1 * (w - w_avg)`` is not always ``w`` to the last bit).
        in_place: Write the result into ``w`` (a big float64 block of frames: no temporary copies).

    Returns:
        The truncated latents (``w`` itself when ``in_place`` or when nothing changes).
    """
    if psi is None or (np.ndim(psi) == 0 and psi == 1):
        return w
    if not in_place:
        return w_avg + psi * (w - w_avg)
    # The same operations in the same order as the expression above (IEEE + and * commute exactly).
    w -= w_avg
    w *= psi
    w += w_avg
    return w
