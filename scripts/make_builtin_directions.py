"""Fit the directions shipped for the built-in model (morphstudio/edit/builtin/dcgan-faces64/) and their sweep grids
(docs/directions/NAME.png).

    PYTHONPATH=$PWD OMP_NUM_THREADS=1 nice -n 19 .venv/bin/python scripts/make_builtin_directions.py --samples 16000

(last run: 2026-12-01, with the geometry read on each face and its mirror: 8 min 52 s wall on the shared 2-core
machine, labelling the 16,000 faces 508 s of it. It changed the five geometry directions (smile, mouth_open,
eyes_open, yaw, pitch: cosines 0.992-1.000 with the previous files, held-out R² up by 0.003-0.05); age and gender
came out the same but for float rounding and kept their files.)

Seeds 0..N-1 are labelled once with the "all" labeller (mediapipe geometry + dlib age/gender, both averaged over
each face and its mirror). Then, per label, the method is chosen by 5-fold cross-validation among ridge
regressions (penalty 1, 10, 100, 1000), logistic regression and linear SVM on the top/bottom 30 %, and the mean
difference: the criterion is the correlation, on each fold's unseen faces, between the projection ``w . n`` and the
label, which every method has (R² and accuracy are not comparable). The winner is refitted on all faces with the
usual 20 % held out for its ``heldout_score``; the provenance's ``selection`` records every candidate's figure.
Set semantics (the boundary: where the label's linear prediction equals its mean, or the classifier's own); strength
1 = one standard deviation of the label. bench/directions.py measures them on held-out seeds (from 100000 up).

Why so many samples: the age and gender readings of 64 px faces are noisy, and the fits are 100-dimensional. On
1,412 faces the age fit's held-out R² was -0.04 (worse than the mean); on 15,000 it is about 0.15.
"""

from __future__ import annotations

import argparse
import time
import zipfile
from pathlib import Path

import numpy as np

NAMES = ("smile", "mouth_open", "eyes_open", "yaw", "pitch", "age", "gender")
MODEL = "builtin:dcgan-faces64"
ROOT = Path(__file__).resolve().parents[1]
LABELLER_TAG = "all: geometry on the 3-D mesh, image and mirror averaged; age-gender mirror-averaged"
"""What ``--labels-cache`` files record of the labeller; change it whenever a labeller's readings change."""


CANDIDATES: dict[str, tuple[str, dict[str, float]]] = {
    "ridge1": ("ridge", {"alpha": 1.0}), "ridge10": ("ridge", {"alpha": 10.0}),
    "ridge100": ("ridge", {"alpha": 100.0}), "ridge1000": ("ridge", {"alpha": 1000.0}),
    "logistic": ("logistic", {}), "svm": ("svm", {}), "meandiff": ("meandiff", {}),
}


def cv_correlation(X: np.ndarray, y: np.ndarray, method: str, kw: dict[str, float], folds: int = 5) -> float:
    """Mean over ``folds`` folds of the correlation between ``X_test @ n`` and ``y_test``, ``n`` fitted on the rest."""
    from sklearn.model_selection import KFold

    from morphstudio.edit.fit import fit_direction

    out = []
    for train, test in KFold(folds, shuffle=True, random_state=0).split(X):
        unit = fit_direction(X[train], y[train], method, seed=0, **kw).unit
        out.append(float(np.corrcoef(X[test] @ unit, y[test])[0, 1]))
    return float(np.mean(out))


def main() -> None:
    from PIL import Image

    from morphstudio.edit import directions as dirs
    from morphstudio.edit.fit import fit_direction, sample_labels
    from morphstudio.edit.grids import sweep_grid
    from morphstudio.edit.labels import get_labeller
    from morphstudio.faces.cache import model_identity
    from morphstudio.generators.loading import load_generator

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--samples", type=int, default=16000)
    ap.add_argument("--method", default="auto", help="auto (chosen per label by cross-validation) or one method")
    ap.add_argument("--labels-cache", type=Path, metavar="NPZ",
                    help="keep the labelled samples in this file and reuse them when it exists (to refit or redraw "
                         "the grids without labelling again; delete it after changing a labeller)")
    args = ap.parse_args()
    t0 = time.perf_counter()

    gen = load_generator(MODEL, device="cpu")
    labeller = get_labeller("all")
    names = [i.name for i in labeller.labels]
    cache = args.labels_cache
    if cache is not None and cache.suffix != ".npz":
        raise SystemExit(f"--labels-cache {cache}: give a .npz file name (numpy would add the suffix on saving and "
                         "never find the file again)")
    if cache is not None and cache.exists():
        try:
            with np.load(cache) as cached:
                ws, y, skipped = cached["ws"], cached["labels"], int(cached["skipped"])
                tag = str(cached["labeller"]) if "labeller" in cached.files else "not recorded"
                cached_names = [str(n) for n in cached["label_names"]] if "label_names" in cached.files else []
        except (OSError, ValueError, KeyError, AttributeError, zipfile.BadZipFile) as exc:  # not ours, or damaged
            raise SystemExit(f"--labels-cache {cache}: not a labels cache this script wrote ({exc}); delete it "
                             "to label again") from None
        if tag != LABELLER_TAG or cached_names != names:
            raise SystemExit(f"{cache} was labelled by another labeller ({tag!r}, labels {cached_names}); "
                             f"this one is {LABELLER_TAG!r}: delete the file to label again")
        if int(len(y) + skipped) != args.samples:
            raise SystemExit(f"{cache} holds {len(y) + skipped} samples, not --samples {args.samples}")
        origin = f"read from {cache}"
    else:
        ws, y, skipped = sample_labels(gen, labeller, args.samples, seed=0)
        if cache is not None:
            np.savez(cache, ws=ws, labels=y, skipped=skipped, labeller=LABELLER_TAG, label_names=np.array(names))
        origin = f"{time.perf_counter() - t0:.0f} s"
    print(f"{len(y)} faces labelled, {skipped} skipped (no face found), {origin}")
    out = dirs.SHIPPED_DIR / "dcgan-faces64"
    out.mkdir(parents=True, exist_ok=True)
    grids = ROOT / "docs" / "directions"
    grids.mkdir(parents=True, exist_ok=True)
    for name in NAMES:
        info = labeller.labels[names.index(name)]
        X, label = ws[:, 0], y[:, names.index(name)]
        scores: dict[str, float] = {}
        if args.method == "auto":
            scores = {key: cv_correlation(X, label, method, kw) for key, (method, kw) in CANDIDATES.items()}
            best = max(scores, key=lambda k: scores[k])
        else:
            best = args.method
        method, kw = CANDIDATES.get(best, (best, {}))
        fit = fit_direction(X, label, method, seed=0, **kw)
        extra = {"selection": {"criterion": "5-fold cross-validated correlation of w.n with the label",
                               "scores": scores, "chosen": best}} if scores else {}
        if "alpha" in kw:
            extra["alpha"] = kw["alpha"]
        prov = fit.provenance(model=MODEL, model_fingerprint=model_identity(gen), method=method,
                              label=name, label_unit=info.unit, label_source="all", layers=[0, 1],
                              n_skipped=skipped, space="z", seeds=[0, args.samples], **extra)
        dirs.save(out / f"{name}.npz", fit.unit, prov)
        grid = sweep_grid(gen, fit.unit, fit.scale, [1, 2, 3, 4], [-2, -1, 0, 1, 2], psi=1.0)
        # 256 colours: a README image of a few tens of kB instead of ~150 kB, with no visible change at 64 px.
        png = Image.fromarray(grid).quantize(256, method=Image.Quantize.MEDIANCUT)
        png.save(grids / f"{name}.png", optimize=True)
        print(f"{name:<11} {best:<10} cv corr " + ", ".join(f"{k} {v:.3f}" for k, v in scores.items()))
        print(f"{name:<11} held-out {fit.metric} {fit.score:.3f}  label {fit.label_mean:.4g} ± {fit.label_std:.4g} "
              f"{info.unit}  strength 1 = {fit.scale:.3g} latent units")
    print(f"total {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
