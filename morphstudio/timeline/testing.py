"""A hand-made :class:`LatentSpace` for tests and torch-free experiments with scenes.

``fake_latent_space()`` behaves like a small StyleGAN2 (10 latents of 16 numbers, coarse/middle/fine groups) whose
mapping is a fixed random linear map; ``fake_latent_space(num_ws=1, family="dcgan")`` like the built-in DCGAN
(its latent *is* z). Use it with ``load_scene(..., latent_space=fake_latent_space())``.
"""

from __future__ import annotations

import numpy as np

from morphstudio.latent import LatentSpace, truncate

_STYLEGAN_RES = (4, 4, 8, 8, 16, 16, 32, 32, 64, 64, 128, 128, 256, 256, 512, 512, 1024, 1024)


def fake_latent_space(num_ws: int = 10, w_dim: int = 16, z_dim: int | None = None, family: str = "stylegan2",
                      seed: int = 0) -> LatentSpace:
    """A small deterministic latent space.

    Args:
        num_ws: Number of per-layer latents (1 = a DCGAN-like model).
        w_dim: Size of each latent.
        z_dim: Size of z (default ``w_dim``).
        family: ``"stylegan2"`` or ``"dcgan"`` (z-space: the mapping is the identity and ``w_avg`` is 0).
        seed: Seed of the random mapping and ``w_avg``.
    """
    z_dim = w_dim if z_dim is None else z_dim
    rng = np.random.RandomState(seed)
    if family == "dcgan":
        if z_dim != w_dim or num_ws != 1:
            raise ValueError("a dcgan-like space has num_ws 1 and z_dim == w_dim")
        matrix = np.eye(w_dim)
        w_avg = np.zeros(w_dim)
        resolutions: tuple[int, ...] = (64,)
    else:
        matrix = rng.randn(z_dim, w_dim) / np.sqrt(z_dim)
        w_avg = rng.randn(w_dim) * 0.1
        resolutions = _STYLEGAN_RES[:num_ws] if num_ws > 1 else (64,)

    def map_z(z: np.ndarray, psi: float = 1.0, cutoff: int | None = None) -> np.ndarray:
        w = np.asarray(z, dtype=np.float64) @ matrix
        ws = np.repeat(w[:, None], num_ws, axis=1)
        if psi != 1:
            stop = num_ws if cutoff is None else cutoff
            ws[:, :stop] = truncate(ws[:, :stop], w_avg, psi)
        return ws.astype(np.float32)

    return LatentSpace(family=family, z_dim=z_dim, w_dim=w_dim, num_ws=num_ws, w_avg=w_avg.astype(np.float32),
                       resolutions=resolutions, map_z=map_z)
