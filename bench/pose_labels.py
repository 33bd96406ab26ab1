"""Do the expression labels follow the expression or the head pose? Image-plane (2-D) vs 3-D mesh measures.

    PYTHONPATH=$PWD .venv/bin/python bench/pose_labels.py [--faces 40]

The geometry labeller measures smile, smile_lift, mouth_open and eyes_open as ratios of distances on mediapipe's
face mesh. In the image plane those ratios change when the head turns (the side turning away is foreshortened);
on the 3-D mesh (mediapipe's depth, :func:`morphstudio.edit.labels.geometry.expression`) they should not. On
held-out seeds (100000 up, as bench/directions.py) every face is moved along a shipped direction by strengths
-2..2 and each expression ratio is taken both ways on the same mesh:

* along ``yaw`` (and ``pitch``): the change of each ratio per unit strength, in that ratio's standard deviation over
  the built-in model's faces of seeds 0-199 (least squares slope over all faces). Smaller is better: the
  head turns, the expression should read the same.
* along the expression directions themselves: the within-face Spearman correlation between strength and the
  direction's own ratio (as bench/directions.py computes it), which must stay high.

Figures only, never pass/fail. The shipped directions are whatever the package holds (fitted against whichever
labeller was current when they were made: see their provenance).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

STRENGTHS = np.array([-2.0, -1.0, 0.0, 1.0, 2.0])
RATIOS = ("smile", "smile_lift", "mouth_open", "eyes_open")


def main() -> None:
    import torch
    from scipy.stats import spearmanr

    from morphstudio.edit import directions as dirs
    from morphstudio.edit.labels.geometry import expression
    from morphstudio.edit.labels.mesh import find_faces
    from morphstudio.edit.grids import render_faces
    from morphstudio.generators.loading import load_generator
    from morphstudio.latent import z_from_seed

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--faces", type=int, default=40)
    args = ap.parse_args()
    t0 = time.perf_counter()
    model = "builtin:dcgan-faces64"
    gen = load_generator(model, device="cpu")
    lib = dirs.library(model)

    def render(ws: np.ndarray) -> np.ndarray:
        return render_faces(gen, ws.reshape(-1, gen.num_ws, gen.w_dim))

    def ratios(images: np.ndarray) -> np.ndarray:
        """``[N, 2, len(RATIOS)]``: image-plane and 3-D ratios of each image's face, NaN where none was found."""
        out = np.full((len(images), 2, len(RATIOS)), np.nan)
        for i, face in enumerate(find_faces(images)):
            if face is not None:
                out[i] = [expression(face.mesh), expression(face.mesh3d)]
        return out

    def latents(seeds: range) -> np.ndarray:
        z = torch.from_numpy(np.stack([z_from_seed(s, gen.z_dim) for s in seeds])).float()
        with torch.no_grad():
            return gen.mapping(z, None).double().numpy()

    ref = ratios(render(latents(range(200))))
    ref = ref[np.all(np.isfinite(ref), axis=(1, 2))]
    sd = ref.std(0)  # [2, R]
    base = latents(range(100000, 100000 + args.faces))

    def sweep(name: str) -> np.ndarray:
        """``[F, S, 2, R]`` ratios of every face along the shipped direction ``name``, faces with a miss dropped."""
        d = dirs.load(lib[name])
        step = float(d.provenance["scale"]) * d.unit.reshape(1, 1, 1, -1)
        lab = ratios(render(base[:, None] + STRENGTHS[None, :, None, None] * step))
        lab = lab.reshape(len(base), len(STRENGTHS), 2, len(RATIOS))
        return lab[np.all(np.isfinite(lab), axis=(1, 2, 3))]

    print(f"{model}: {args.faces} held-out faces, strengths {STRENGTHS.tolist()}; ratios' sd over seeds 0-199 "
          f"({len(ref)} faces): " + ", ".join(f"{r} 2-D {sd[0, k]:.3f} / 3-D {sd[1, k]:.3f}"
                                               for k, r in enumerate(RATIOS)))
    s = STRENGTHS - STRENGTHS.mean()
    print("change per unit strength of a pose direction, in sd (2-D -> 3-D, ratio):")
    for name in ("yaw", "pitch"):
        lab = sweep(name)
        centred = lab - lab.mean(1, keepdims=True)
        slope = (centred * s[None, :, None, None]).sum((0, 1)) / (len(lab) * (s ** 2).sum()) / sd  # [2, R]
        print(f"  {name:<6} ({len(lab)} faces) " + "  ".join(
            f"{r} {slope[0, k]:+.3f} -> {slope[1, k]:+.3f} ({abs(slope[1, k]) / max(abs(slope[0, k]), 1e-12):.2f})"
            for k, r in enumerate(RATIOS)))
    print("Spearman of strength with the direction's own ratio (2-D -> 3-D):")
    for name, k in (("smile", 0), ("mouth_open", 2), ("eyes_open", 3)):
        lab = sweep(name)
        own = lab[:, :, :, k] - lab[:, :, :, k].mean(1, keepdims=True)
        rho = [spearmanr(np.tile(STRENGTHS, len(lab)), own[:, :, j].reshape(-1)).statistic for j in (0, 1)]
        print(f"  {name:<10} ({len(lab)} faces) {rho[0]:.3f} -> {rho[1]:.3f}")
    print(f"total {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
