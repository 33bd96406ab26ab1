"""Sweep grids: rows faces, columns strengths along one direction (``directions show`` / ``pca`` / ``sefa``)."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np


def sweep_grid(generator: Any, unit: np.ndarray, scale: float, seeds: Sequence[int], strengths: Sequence[float],
               *, psi: float = 0.7, tile: int = 64) -> np.ndarray:
    """``[rows * tile, cols * tile, 3]`` uint8: face ``seeds[r]`` moved by ``strengths[c] * scale`` along ``unit``
    (``[w_dim]`` or ``[num_ws, w_dim]``, added to every latent row it covers)."""
    import torch
    import torch.nn.functional as F

    from morphstudio.generators.base import to_uint8
    from morphstudio.latent import z_from_seed

    u = np.asarray(unit, np.float64)
    u = np.broadcast_to(u if u.ndim == 2 else u[None], (generator.num_ws, generator.w_dim))
    grid = np.zeros((len(seeds) * tile, len(strengths) * tile, 3), np.uint8)
    with torch.no_grad():
        z = torch.from_numpy(np.stack([z_from_seed(s, generator.z_dim) for s in seeds])).float().to(generator.device)
        ws = generator.mapping(z, generator.default_c(len(seeds)), psi=psi)
        step = torch.from_numpy(np.array(u)).float().to(generator.device) * float(scale)
        for c, s in enumerate(strengths):
            img = generator.synthesis(ws + float(s) * step[None], noise_mode="const")
            if img.shape[-1] != tile:
                img = F.interpolate(img, size=(tile, tile), mode="bilinear", align_corners=False)
            faces = to_uint8(img).cpu().numpy()
            for r, face in enumerate(faces):
                grid[r * tile:(r + 1) * tile, c * tile:(c + 1) * tile] = face
    return grid
