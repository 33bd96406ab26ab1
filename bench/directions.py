"""How well the shipped directions of the built-in model do what their names say, before and after disentangling.

    PYTHONPATH=$PWD .venv/bin/python bench/directions.py [--faces 400] [--first-seed 100000] [--only yaw,smile]

For each shipped direction, on held-out seeds (100000 up by default; the directions were fitted on seeds 0..N-1, so
any first seed from 16000 up is held out), every face is
moved by strengths -2..2 (add: strength times the file's scale) and labelled again with the same labeller:

* ``spearman``: Spearman correlation between the applied strength and the direction's own label, within each
  face (the face's mean over strengths removed, so faces that differ do not blur it), pooled over faces; goal >= 0.8.
* ``cross``: mean over the other labels of |change per unit strength| in that label's standard deviations (least
  squares slope over all faces), for the fitted direction and for its conditional boundary (the other shipped
  directions projected out, InterFaceGAN), rescaled so one unit still moves its own label as much; goal: halved.
  ``largest after`` names the other label the conditional boundary still moves most (signed, per unit, in sd).
* ``ratio 95%``: the ratio's spread over faces, by bootstrap (the same resampled faces before and after), and
  ``floor``: what ``cross`` would read for a direction that moved no other label at all, from the slopes' standard
  errors (a mean of absolute values is never zero on noisy slopes: about 0.8 standard errors each). A ratio whose
  ``after`` is near the floor is a measurement of the labeller's noise, not of the direction; more ``--faces``
  lower the floor as 1/sqrt(faces). At 40 faces the floor is about 0.03, as large as yaw's whole ``after``; the
  default of 400 brings it to about 0.01 (about 75 s a direction on two cores).

Figures only, never pass/fail.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

STRENGTHS = np.array([-2.0, -1.0, 0.0, 1.0, 2.0])


def main() -> None:
    import torch
    from scipy.stats import spearmanr

    from morphstudio.edit import directions as dirs
    from morphstudio.edit.disentangle import condition, cosines
    from morphstudio.edit.labels import get_labeller
    from morphstudio.edit.grids import render_faces
    from morphstudio.generators.loading import load_generator
    from morphstudio.latent import z_from_seed

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--faces", type=int, default=400)
    ap.add_argument("--first-seed", type=int, default=100000, help="first held-out seed (16000 up are held out)")
    ap.add_argument("--only", default="", help="comma-separated directions to measure (default: all shipped)")
    ap.add_argument("--model", default="builtin:dcgan-faces64")
    ap.add_argument("--bootstrap", type=int, default=1000, help="resamples of the faces for the ratio's interval")
    args = ap.parse_args()

    gen = load_generator(args.model, device="cpu")
    lib = dirs.library(args.model)
    loaded = {name: dirs.load(p) for name, p in lib.items() if dirs.load(p).provenance.get("label")}
    names = list(loaded)
    units = np.stack([loaded[n].unit.reshape(-1) for n in names])
    labeller = get_labeller(loaded[names[0]].provenance.get("label_source", "all"))
    lnames = [i.name for i in labeller.labels]
    cols = [lnames.index(loaded[n].provenance["label"]) for n in names]
    stds = np.array([float(loaded[n].provenance["label_std"]) for n in names])
    only = [n for n in args.only.split(",") if n]
    unknown = sorted(set(only) - set(names))
    if unknown:
        raise SystemExit(f"--only: no shipped direction {', '.join(unknown)} (shipped: {', '.join(names)})")
    seeds = range(args.first_seed, args.first_seed + args.faces)
    z = np.stack([z_from_seed(s, gen.z_dim) for s in seeds])
    with torch.no_grad():
        base = gen.mapping(torch.from_numpy(z).float(), None).double().numpy()  # [F, 1, w_dim]

    def measure(unit: np.ndarray, scale: float) -> np.ndarray:
        """``[F, S, K]`` labels (shipped labels' columns) of every face at every strength."""
        ws = base[:, None] + STRENGTHS[None, :, None, None] * scale * unit.reshape(1, 1, 1, -1)
        imgs = render_faces(gen, ws.reshape(-1, gen.num_ws, gen.w_dim))
        lab = np.asarray(labeller(imgs), np.float64)[:, cols]
        return lab.reshape(len(base), len(STRENGTHS), len(names))

    s_c = STRENGTHS - STRENGTHS.mean()

    def face_slopes(lab: np.ndarray) -> np.ndarray:
        """``[F, K]`` each face's least squares change per unit strength of each label, in its stds (NaN for a
        face with a missing label)."""
        centred = lab - lab.mean(1, keepdims=True)
        per = (centred * s_c[None, :, None]).sum(1) / (s_c ** 2).sum() / stds
        per[~np.all(np.isfinite(lab), axis=(1, 2))] = np.nan
        return per

    def slopes(per: np.ndarray) -> np.ndarray:
        """``[K]`` pooled change per unit strength (faces with a missing label dropped); with every face seeing the
        same strengths, the pooled least squares slope is the mean of the faces' slopes."""
        return np.nanmean(per, axis=0)

    def floor(per: np.ndarray, mask: np.ndarray) -> float:
        """Expected ``cross`` of a direction that moves no other label, given these slopes' spread over faces:
        the mean over the other labels of E|N(0, se)| = se * sqrt(2 / pi)."""
        ok = per[np.all(np.isfinite(per), axis=1)]
        se = ok.std(0, ddof=1) / np.sqrt(len(ok))
        return float(np.mean(se[mask]) * np.sqrt(2.0 / np.pi))


    cos = cosines(units)
    print(f"{args.model}: {len(names)} shipped directions, {args.faces} held-out faces (seeds {args.first_seed} up),"
          f" strengths {STRENGTHS.tolist()}")
    print("largest |cosine| between shipped directions: "
          + ", ".join(f"{names[i]}/{names[j]} {cos[i, j]:+.2f}" for i, j in
                      sorted(((i, j) for i in range(len(names)) for j in range(i + 1, len(names))),
                             key=lambda ij: -abs(cos[ij]))[:3]))
    print(f"{'direction':<11} {'spearman':>8} {'own/unit':>8} {'cross before':>12} {'cross after':>11} {'ratio':>6}"
          f" {'ratio 95%':>11} {'floor':>6} {'largest after':>20} {'time':>6}")
    for k, name in enumerate(names):
        if only and name not in only:
            continue
        t0 = time.perf_counter()
        d = loaded[name]
        scale = float(d.provenance["scale"])
        lab = measure(units[k], scale)
        ok = np.all(np.isfinite(lab[:, :, k]), axis=1)
        own = lab[ok, :, k] - lab[ok, :, k].mean(1, keepdims=True)
        rho = spearmanr(np.tile(STRENGTHS, ok.sum()), own.reshape(-1)).statistic
        per_before = face_slopes(lab)
        before = slopes(per_before)
        others = np.delete(units, k, axis=0)
        cond = condition(units[k], others)
        # The same latent movement along the label's own direction per unit strength as before.
        after_lab = measure(cond, scale / max(float(cond @ units[k]), 1e-6))
        per_after = face_slopes(after_lab)
        after = slopes(per_after)
        mask = np.arange(len(names)) != k
        cb, ca = np.mean(np.abs(before[mask])), np.mean(np.abs(after[mask]))
        boot = []
        rng = np.random.default_rng(k)  # one stream per direction: --only gives the same interval as a full run
        for _ in range(args.bootstrap):
            pick = rng.integers(0, len(base), len(base))
            b = np.mean(np.abs(slopes(per_before[pick])[mask]))
            boot.append(np.mean(np.abs(slopes(per_after[pick])[mask])) / max(b, 1e-12))
        lo, hi = np.percentile(boot, [2.5, 97.5]) if boot else (np.nan, np.nan)
        # Which other label is dragged most after conditioning (signed change per unit, in its sd).
        j = int(np.argmax(np.where(mask, np.abs(after), -1.0)))
        worst = f"{names[j]} {after[j]:+.3f}"
        print(f"{name:<11} {rho:8.3f} {before[k]:8.3f} {cb:12.3f} {ca:11.3f} {ca / max(cb, 1e-12):6.2f}"
              f" {f'{lo:.2f}-{hi:.2f}':>11} {floor(per_after, mask):6.3f} {worst:>20}"
              f" {time.perf_counter() - t0:5.1f}s")


if __name__ == "__main__":
    main()
