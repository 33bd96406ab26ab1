"""Contact sheets: a grid of faces from seeds, for ``inspect --grid`` and the quick look at a model."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from morphstudio.generators.base import Generator, to_uint8
from morphstudio.latent import z_from_seed


@torch.no_grad()
def contact_sheet(
    generator: Generator,
    seeds: Sequence[int],
    *,
    psi: float = 1.0,
    tile: int | None = None,
    columns: int | None = None,
    batch: int = 16,
) -> np.ndarray:
    """Render one face per seed and tile them into a grid.

    Args:
        generator: Any backend.
        seeds: Seeds (NVIDIA's ``RandomState(seed).randn`` convention).
        psi: Truncation toward ``w_avg``.
        tile: Size of each face in the grid (default: the model's resolution, at least 128 px).
        columns: Faces per row (default: close to square).
        batch: Faces per generator call.

    Returns:
        ``[rows * tile, columns * tile, 3]`` uint8 RGB.
    """
    tile = tile or max(generator.resolution, 128)
    columns = columns or math.ceil(math.sqrt(len(seeds)))
    rows = math.ceil(len(seeds) / columns)
    sheet = np.zeros((rows * tile, columns * tile, 3), np.uint8)
    for start in range(0, len(seeds), batch):
        chunk = list(seeds[start : start + batch])
        z = torch.from_numpy(np.stack([z_from_seed(s, generator.z_dim) for s in chunk])).float().to(generator.device)
        img = generator.synthesis(generator.mapping(z, generator.default_c(len(chunk)), psi=psi))
        if img.shape[-1] != tile:
            img = F.interpolate(img, size=(tile, tile), mode="bicubic", align_corners=False, antialias=tile < img.shape[-1])
        faces = to_uint8(img).cpu().numpy()
        for i, face in enumerate(faces):
            r, col = divmod(start + i, columns)
            sheet[r * tile : (r + 1) * tile, col * tile : (col + 1) * tile] = face
    return sheet
