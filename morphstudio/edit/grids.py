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
            if tile is not None and img.shape[-1] != tile:
                img = F.interpolate(img, size=(tile, tile), mode="bilinear", align_corners=False)
            faces = to_uint8(img).cpu().numpy()
            for r, face in enumerate(faces):
                grid[r * tile:(r + 1) * tile, c * tile:(c + 1) * tile] = face
    return grid


def render_faces(generator: Any, ws: np.ndarray, tile: int | None = None) -> np.ndarray:
    """``[N, tile, tile, 3]`` uint8 faces of ``ws [N, num_ws, w_dim]`` (numpy), 32 at a time (``tile``: the
    generator's own resolution when None)."""
    import torch
    import torch.nn.functional as F

    from morphstudio.generators.base import to_uint8

    out = []
    with torch.no_grad():
        for i in range(0, len(ws), 32):
            img = generator.synthesis(torch.from_numpy(np.array(ws[i:i + 32])).float().to(generator.device),
                                      noise_mode="const")
            if tile is not None and img.shape[-1] != tile:
                img = F.interpolate(img, size=(tile, tile), mode="bilinear", align_corners=False)
            out.append(to_uint8(img).cpu().numpy())
    return np.concatenate(out)


def analogy_latents(a: np.ndarray, b: np.ndarray, c: np.ndarray, n: int = 5) -> np.ndarray:
    """``[n, n, ...]`` latents: ``a`` top-left, ``b`` top-right, ``c`` bottom-left, bottom-right ``c + b - a``; the
    rest bilinear (row r, column k: ``a + k/(n-1) (b - a) + r/(n-1) (c - a)``)."""
    u = np.linspace(0.0, 1.0, n)
    a, b, c = (np.asarray(x, np.float64) for x in (a, b, c))
    cols = u.reshape((1, n) + (1,) * a.ndim)  # no starred subscripts: Python 3.10 is supported
    rows = u.reshape((n, 1) + (1,) * a.ndim)
    return a + cols * (b - a) + rows * (c - a)


def analogy_grid(generator: Any, a: np.ndarray, b: np.ndarray, c: np.ndarray, *, n: int = 5,
                 tile: int = 64) -> np.ndarray:
    """The analogy grid of :func:`analogy_latents` as ``[n * tile, n * tile, 3]`` uint8."""
    ws = analogy_latents(a, b, c, n).reshape(n * n, generator.num_ws, generator.w_dim)
    faces = render_faces(generator, ws, tile)
    return faces.reshape(n, n, tile, tile, 3).transpose(0, 2, 1, 3, 4).reshape(n * tile, n * tile, 3)


def latent_map(generator: Any, seeds: Sequence[int], *, method: str = "pca", size: int = 1024, tile: int = 48,
               psi: float = 0.7) -> np.ndarray:
    """Faces of ``seeds`` placed by a 2-D embedding (PCA or t-SNE) of their thumbnails: ``[size, size, 3]``."""
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    from morphstudio.latent import z_from_seed

    space = generator.latent_space()
    ws = space.map_z(np.stack([z_from_seed(s, generator.z_dim) for s in seeds]), psi=psi)
    faces = render_faces(generator, ws, tile)
    feats = faces.reshape(len(faces), -1).astype(np.float64) / 255.0
    if method == "tsne":
        xy = TSNE(n_components=2, perplexity=min(30.0, max(2.0, (len(seeds) - 1) / 3)), random_state=0,
                  init="pca").fit_transform(feats)
    else:
        xy = PCA(n_components=2, random_state=0).fit_transform(feats)
    xy = (xy - xy.min(0)) / np.maximum(np.ptp(xy, 0), 1e-12) * (size - tile)
    canvas = np.full((size, size, 3), 255, np.uint8)
    for (x, y), face in zip(xy.astype(int), faces):
        canvas[y:y + tile, x:x + tile] = face
    return canvas
