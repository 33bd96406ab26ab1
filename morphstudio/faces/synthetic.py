"""Photo-like test images made from the generator itself (there are no real photos in this project).

A generated face is upscaled, rotated and blended (soft elliptical edge) onto a larger noisy gradient
background, so alignment, projection and the CLI can be exercised on something shaped like a user's photo,
with a known latent and a known rotation.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
import torch

from morphstudio.generators.base import to_uint8
from morphstudio.latent import z_from_seed


def generate_faces(generator: Any, seeds: list[int], psi: float = 0.8) -> tuple[np.ndarray, np.ndarray]:
    """``([N, S, S, 3] uint8 faces, [N, num_ws, w_dim] latents)`` for the given seeds (truncated by ``psi``)."""
    zs = torch.stack([torch.from_numpy(z_from_seed(s, generator.z_dim)).float() for s in seeds])
    with torch.no_grad():
        ws = generator.mapping(zs.to(generator.device), generator.default_c(len(seeds)), psi=psi)
        img = generator.synthesis(ws, noise_mode="const")
    return to_uint8(img).cpu().numpy(), ws.float().cpu().numpy()


def compose_photo(face: np.ndarray, *, angle: float = 0.0, scale: float = 4.0, size: tuple[int, int] = (640, 480),
                  centre: tuple[float, float] | None = None, seed: int = 0,
                  background: np.ndarray | None = None) -> tuple[np.ndarray, tuple[float, float]]:
    """Paste ``face`` (upscaled by ``scale``, rotated by ``angle`` degrees CCW) onto a gradient-noise background.

    Returns:
        ``(photo [H, W, 3] uint8, centre (x, y))``.
    """
    w, h = size if background is None else (background.shape[1], background.shape[0])
    rng = np.random.RandomState(seed)
    if background is None:
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        base = np.stack([90 + 80 * xx / w, 110 + 60 * yy / h, 150 - 50 * xx / w], axis=-1)
        background = np.clip(base + rng.randn(h, w, 3) * 12, 0, 255).astype(np.uint8)
    photo = background.copy()
    s = face.shape[0]
    big = cv2.resize(face, (int(s * scale), int(s * scale)), interpolation=cv2.INTER_CUBIC)
    bs = big.shape[0]
    cx, cy = centre if centre is not None else (w / 2, h / 2)
    # photo <- big: rotate about the face centre, then translate it to (cx, cy).
    m = cv2.getRotationMatrix2D((bs / 2, bs / 2), angle, 1.0)
    m[:, 2] += (cx - bs / 2, cy - bs / 2)
    warped = cv2.warpAffine(big, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    mask = np.zeros((bs, bs), np.float32)
    cv2.ellipse(mask, (bs // 2, bs // 2), (int(bs * 0.47), int(bs * 0.49)), 0, 0, 360, 1.0, -1)
    mask = cv2.GaussianBlur(mask, (0, 0), bs * 0.02)
    alpha = cv2.warpAffine(mask, m, (w, h), flags=cv2.INTER_LINEAR, borderValue=0)[..., None]
    photo = (photo * (1 - alpha) + warped * alpha).round().clip(0, 255).astype(np.uint8)
    return photo, (cx, cy)

