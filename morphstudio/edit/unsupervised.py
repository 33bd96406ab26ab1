"""Directions without labels: GANSpace (PCA of sampled W) and SeFa (eigenvectors of the style weights).

On the built-in DCGAN (``num_ws = 1``, w = z, isotropic) PCA of z finds nothing (every direction has the same
variance), so :func:`pca_directions` follows GANSpace's recipe for non-style generators: PCA of an early layer's
activations (the first transposed convolution's output), each component mapped back to z by linear regression of
the component's coordinate on z. SeFa needs style-modulation weights, which a DCGAN does not have: a clear error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from morphstudio.errors import ModelError


@dataclass
class Components:
    """Unsupervised directions.

    Attributes:
        directions: ``[K, w_dim]`` unit directions in W (z on a DCGAN), strongest first.
        stds: ``[K]`` standard deviation of the sampled latents along each (latent units): strength 1.
        explained: ``[K]`` explained variance ratio (PCA) or eigenvalue share (SeFa).
        method: ``"pca"``, ``"pca-activations"`` or ``"sefa"``.
        layers: ``[start, stop)`` latent range (SeFa's layer range; all for PCA).
    """

    directions: np.ndarray
    stds: np.ndarray
    explained: np.ndarray
    method: str
    layers: tuple[int, int]


def _sample_ws(generator: Any, n: int, seed: int) -> np.ndarray:
    import torch

    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, generator.z_dim, generator=g).to(generator.device)
    with torch.no_grad():
        return generator.mapping(z, generator.default_c(n))[:, 0].double().cpu().numpy()


def pca_directions(generator: Any, k: int = 10, *, n: int = 10000, seed: int = 0) -> Components:
    """GANSpace: the top ``k`` principal components of ``n`` sampled W (of early activations on a DCGAN)."""
    import torch
    from sklearn.decomposition import PCA
    from sklearn.linear_model import LinearRegression

    if getattr(generator, "family", "") == "dcgan":
        g = torch.Generator().manual_seed(seed)
        z = torch.randn(n, generator.z_dim, generator=g)
        with torch.no_grad():
            first = generator.main[:3]  # first ConvTranspose2d + BatchNorm + ReLU: the coarse layout
            acts = first(z[:, :, None, None].to(generator.device)).flatten(1).double().cpu().numpy()
        pca = PCA(n_components=k, random_state=seed).fit(acts)
        coords = pca.transform(acts)
        reg = LinearRegression().fit(z.double().numpy(), coords)
        dirs = reg.coef_  # [k, z_dim]: how each component's coordinate grows along z
        dirs = dirs / np.linalg.norm(dirs, axis=1, keepdims=True)
        stds = np.std(z.double().numpy() @ dirs.T, axis=0)
        return Components(dirs, stds, pca.explained_variance_ratio_, "pca-activations", (0, 1))
    ws = _sample_ws(generator, n, seed)
    pca = PCA(n_components=k, random_state=seed).fit(ws)
    return Components(pca.components_, np.sqrt(pca.explained_variance_), pca.explained_variance_ratio_, "pca",
                      (0, generator.num_ws))


def sefa_directions(generator: Any, k: int = 10, layers: tuple[int, int] | None = None, *, n: int = 2000,
                    seed: int = 0) -> Components:
    """SeFa: eigenvectors of ``AᵀA`` where ``A`` stacks the column-normalised style affine weights of the
    convolution layers driven by latents ``layers = [start, stop)`` (ToRGB layers excluded, as in the paper).

    Raises:
        ModelError: The model has no style modulation (DCGAN), or the range holds no modulated layer.
    """
    if getattr(generator, "family", "") == "dcgan" or not hasattr(generator, "synthesis_network"):
        raise ModelError("SeFa needs style-modulation weights; this dcgan model has none (its latent is z, fed "
                         "straight into the first convolution): use `directions pca` instead")
    start, stop = layers if layers is not None else (0, generator.num_ws)
    if not 0 <= start < stop <= generator.num_ws:
        raise ModelError(f"layer range [{start}, {stop}) is outside [0, {generator.num_ws}) for this model")
    modules = dict(generator.named_modules())
    weights = []
    for info in generator.layers():
        if start <= info.w_index < stop and "torgb" not in info.name.lower():
            mod = modules.get(f"synthesis.{info.name}.affine")
            if mod is not None:
                weights.append(mod.weight.detach().double().cpu().numpy())
    if not weights:
        raise ModelError(f"no style-modulated convolution is driven by latents [{start}, {stop}) on this model")
    A = np.concatenate(weights, axis=0)  # [sum of channels, w_dim]
    A = A / np.linalg.norm(A, axis=0, keepdims=True)
    vals, vecs = np.linalg.eigh(A.T @ A)
    order = np.argsort(vals)[::-1][:k]
    dirs = vecs[:, order].T
    ws = _sample_ws(generator, n, seed)
    stds = np.std(ws @ dirs.T, axis=0)
    return Components(dirs, stds, vals[order] / vals.sum(), "sefa", (start, stop))
