"""Fit the directions shipped for the built-in model (morphstudio/edit/builtin/dcgan-faces64/) and their sweep grids
(docs/directions/NAME.png).

    PYTHONPATH=$PWD .venv/bin/python scripts/make_builtin_directions.py --samples 3000

Seeds 0..N-1 are labelled with the "all" labeller (mediapipe geometry + dlib age/gender); a ridge regression per
label gives each direction (set semantics: the boundary is where the label's linear prediction equals its mean;
strength 1 = one standard deviation of the label). bench/directions.py measures them on held-out seeds (from
100000 up).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

NAMES = ("smile", "mouth_open", "eyes_open", "yaw", "pitch", "age", "gender")
MODEL = "builtin:dcgan-faces64"
ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    from PIL import Image

    from morphstudio.edit import directions as dirs
    from morphstudio.edit.fit import fit_direction, sample_labels
    from morphstudio.edit.grids import sweep_grid
    from morphstudio.edit.labels import get_labeller
    from morphstudio.faces.cache import model_identity
    from morphstudio.generators.loading import load_generator

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--samples", type=int, default=3000)
    ap.add_argument("--method", default="ridge")
    args = ap.parse_args()

    gen = load_generator(MODEL, device="cpu")
    labeller = get_labeller("all")
    ws, y, skipped = sample_labels(gen, labeller, args.samples, seed=0)
    print(f"{len(y)} faces labelled, {skipped} skipped (no face found)")
    names = [i.name for i in labeller.labels]
    out = dirs.SHIPPED_DIR / "dcgan-faces64"
    out.mkdir(parents=True, exist_ok=True)
    grids = ROOT / "docs" / "directions"
    grids.mkdir(parents=True, exist_ok=True)
    for name in NAMES:
        info = labeller.labels[names.index(name)]
        fit = fit_direction(ws[:, 0], y[:, names.index(name)], args.method, seed=0)
        prov = fit.provenance(model=MODEL, model_fingerprint=model_identity(gen), method=args.method,
                              label=name, label_unit=info.unit, label_source="all", layers=[0, 1],
                              n_skipped=skipped, space="z", seeds=[0, args.samples])
        dirs.save(out / f"{name}.npz", fit.unit, prov)
        grid = sweep_grid(gen, fit.unit, fit.scale, [1, 2, 3, 4], [-2, -1, 0, 1, 2], psi=1.0)
        # 256 colours: a README image of a few tens of kB instead of ~150 kB, with no visible change at 64 px.
        png = Image.fromarray(grid).quantize(256, method=Image.Quantize.MEDIANCUT)
        png.save(grids / f"{name}.png", optimize=True)
        print(f"{name:<11} held-out {fit.metric} {fit.score:.3f}  label {fit.label_mean:.4g} ± {fit.label_std:.4g} "
              f"{info.unit}  strength 1 = {fit.scale:.3g} latent units")


if __name__ == "__main__":
    main()
