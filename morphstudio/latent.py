"""A numpy-only view of a generator's latent space.

The scene and timeline packages never import torch; they learn what they need about the model through this
small record, which the generator side (:meth:`morphstudio.generators.base.Generator.latent_space`) fills in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

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


def z_from_seed(seed: int, z_dim: int) -> np.ndarray:
    """The z of a seed, ``[z_dim]`` float64: NVIDIA's convention (``RandomState(seed).randn``), so seed 42 here is
    seed 42 in ``gen_images.py`` and in the reference data."""
    if not 0 <= seed < 2**32:
        raise ValueError(f"seed must be in [0, 2**32), got {seed}")
    return np.random.RandomState(seed).randn(z_dim)
