"""Make the direction files the example scenes use (run from the repository root).

    .venv/bin/python scenes/directions/make_directions.py

* ``dcgan-light.npy`` ``[100]``: a lighting direction for the built-in DCGAN. 512 seeded faces are ranked by the
  brightness of the centre of the image; the direction is the normalised difference between the mean latent of
  the 64 brightest and of the 64 darkest (a "difference of group means" direction, the simplest attribute edit).
* ``test-w512.npy`` ``[512]``: a seeded random unit vector for StyleGAN (w_dim 512) examples and tests.
* ``test-w100.npy`` ``[100]``: the same for the DCGAN (w_dim 100).

Results are deterministic (seeded faces, fp32 on the CPU).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

import morphstudio
from morphstudio.latent import z_from_seed

HERE = Path(__file__).resolve().parent


def group_difference(n: int = 512, top: int = 64) -> np.ndarray:
    gen = morphstudio.load_generator("builtin:dcgan-faces64", device="cpu")
    z = np.stack([z_from_seed(s, gen.z_dim) for s in range(n)]).astype(np.float32)
    bright = []
    with torch.no_grad():
        for i in range(0, n, 64):
            ws = gen.mapping(torch.from_numpy(z[i:i + 64]))
            img = gen.synthesis(ws)  # [B, 3, 64, 64] in [-1, 1]
            bright.append(img[:, :, 16:48, 16:48].mean(dim=(1, 2, 3)).numpy())
    order = np.argsort(np.concatenate(bright))
    d = z[order[-top:]].mean(0) - z[order[:top]].mean(0)
    return (d / np.linalg.norm(d)).astype(np.float32)


def random_unit(dim: int, seed: int) -> np.ndarray:
    d = np.random.RandomState(seed).randn(dim)
    return (d / np.linalg.norm(d)).astype(np.float32)


if __name__ == "__main__":
    np.save(HERE / "dcgan-light.npy", group_difference())
    np.save(HERE / "test-w512.npy", random_unit(512, 512))
    np.save(HERE / "test-w100.npy", random_unit(100, 100))
    print("wrote", ", ".join(p.name for p in sorted(HERE.glob("*.npy"))))
