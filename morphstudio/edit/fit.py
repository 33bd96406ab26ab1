"""Fitting attribute directions from (latent, label) pairs with scikit-learn.

Methods (each a few lines on top of scikit-learn; the rest is data plumbing):

* ``ridge`` / ``linear``: regression of the label on W (TL-GAN); held-out score R².
* ``logistic`` / ``svm``: a classifier on the top and bottom ``fraction`` of the labels (InterFaceGAN); held-out
  score accuracy. The boundary's intercept is kept: ``set`` moves to a signed distance from it.
* ``meandiff``: the difference of the mean latents of the top and bottom fraction (NVIDIA's DIGITS demo); held-out
  score accuracy of the sign of the projection on the held-out extremes. In an anisotropic space (StyleGAN's W)
  the mean difference leans toward W's covariance times the true direction: prefer a fitted model there.

Every method is calibrated the same way: the label is regressed on the projection ``w . n`` over the training
samples, so ``scale = label_std / slope`` latent units make one standard deviation of the label (strength 1).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from typing import Any

import numpy as np

from morphstudio.errors import MorphError

METHODS = ("ridge", "linear", "logistic", "svm", "meandiff")
SET_METHODS = ("ridge", "linear", "logistic", "svm", "meandiff")  # every fitted direction has a boundary


class FitError(MorphError):
    """Fitting cannot be done with the data given (too few samples, a constant label...)."""


@dataclass
class FitResult:
    """A fitted direction.

    Attributes:
        unit: ``[D]`` unit direction (the label increases along it).
        intercept: Signed distance offset: the boundary is ``w . unit + intercept = 0`` (latent units).
        scale: Latent units along ``unit`` per standard deviation of the label.
        score: Held-out R² (regressions) or accuracy (classifiers, mean difference).
        metric: ``"r2"`` or ``"accuracy"``.
        label_mean: Mean of the labels fitted on.
        label_std: Their standard deviation.
        n: Samples used (NaN rows already dropped).
    """

    unit: np.ndarray
    intercept: float
    scale: float
    score: float
    metric: str
    label_mean: float
    label_std: float
    n: int

    def provenance(self, **extra: Any) -> dict[str, Any]:
        """The record a direction file stores (add model, label, method... as ``extra``)."""
        return {"intercept": self.intercept, "scale": self.scale, "heldout_score": self.score,
                "heldout_metric": self.metric, "label_mean": self.label_mean, "label_std": self.label_std,
                "n_samples": self.n, "semantics": "set",
                "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"), **extra}


def _extremes(y: np.ndarray, fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Indices of the bottom and top ``fraction`` of ``y``."""
    k = max(1, int(round(len(y) * fraction)))
    order = np.argsort(y, kind="stable")
    return order[:k], order[-k:]


def fit_direction(ws: np.ndarray, labels: np.ndarray, method: str = "ridge", *, fraction: float = 0.3,
                  heldout: float = 0.2, seed: int = 0, alpha: float = 1.0) -> FitResult:
    """Fit a direction in W for one label.

    Args:
        ws: ``[N, D]`` latents (W, or the flattened rows of a layer range).
        labels: ``[N]`` labels; NaN rows (no face found) are dropped.
        method: One of :data:`METHODS`.
        fraction: Top / bottom fraction the classifiers and the mean difference use.
        heldout: Fraction of samples held out for the score.
        seed: Split seed.
        alpha: Ridge penalty.

    Raises:
        FitError: Unknown method, too few usable samples, or a constant label.
    """
    from sklearn.linear_model import LinearRegression, LogisticRegression, Ridge
    from sklearn.model_selection import train_test_split
    from sklearn.svm import LinearSVC

    if method not in METHODS:
        raise FitError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
    X = np.asarray(ws, dtype=np.float64).reshape(len(ws), -1)
    y = np.asarray(labels, dtype=np.float64).reshape(-1)
    keep = np.isfinite(y)
    X, y = X[keep], y[keep]
    if len(y) < 10:
        raise FitError(f"only {len(y)} samples have a label; at least 10 are needed")
    if float(np.std(y)) == 0.0:
        raise FitError("the label is the same on every sample: nothing to fit")
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=heldout, random_state=seed)
    if method in ("ridge", "linear"):
        model = Ridge(alpha=alpha) if method == "ridge" else LinearRegression()
        model.fit(Xtr, ytr)
        coef = model.coef_.reshape(-1)
        score, metric = float(model.score(Xte, yte)), "r2"
    else:
        lo, hi = _extremes(ytr, fraction)
        Xc = np.concatenate([Xtr[lo], Xtr[hi]])
        yc = np.concatenate([np.zeros(len(lo)), np.ones(len(hi))])
        tlo, thi = _extremes(yte, fraction)
        Xt = np.concatenate([Xte[tlo], Xte[thi]])
        yt = np.concatenate([np.zeros(len(tlo)), np.ones(len(thi))])
        if method == "logistic":
            model = LogisticRegression(C=1.0, max_iter=2000).fit(Xc, yc)
            coef, score = model.coef_.reshape(-1), float(model.score(Xt, yt))
        elif method == "svm":
            model = LinearSVC(C=1.0, max_iter=20000).fit(Xc, yc)
            coef, score = model.coef_.reshape(-1), float(model.score(Xt, yt))
        else:  # meandiff: DIGITS
            coef = Xtr[hi].mean(0) - Xtr[lo].mean(0)
            mid = 0.5 * (Xtr[hi].mean(0) + Xtr[lo].mean(0))
            score = float(np.mean(((Xt - mid) @ coef > 0) == (yt == 1)))
        metric = "accuracy"
    norm = float(np.linalg.norm(coef))
    if norm == 0.0:
        raise FitError(f"{method} found no direction (all coefficients are zero)")
    unit = coef / norm
    # Calibration along the direction: label ~ a + k * (w . n), so one label std is std / k latent units.
    proj = Xtr @ unit
    calib = LinearRegression().fit(proj[:, None], ytr)
    k = float(calib.coef_[0])
    if k <= 0:
        raise FitError(f"{method}: the label does not increase along the fitted direction (slope {k:.3g})")
    label_std = float(np.std(y))
    if method in ("logistic", "svm"):
        intercept = float(model.intercept_.reshape(-1)[0]) / norm  # the classifier's own boundary
    else:
        # The boundary is where the calibrated label equals its mean: a + k t = mean -> t = (mean - a) / k.
        intercept = -(float(np.mean(y)) - float(calib.intercept_)) / k
    return FitResult(unit, intercept, label_std / k, score, metric, float(np.mean(y)), label_std, int(len(y)))


MIX_OFFSET = 1_000_003
"""Seed offset of the faces that give the latents outside a layer range (see :func:`sample_labels`)."""


def check_layers(layers: tuple[int, int] | None, num_ws: int) -> tuple[int, int]:
    """``layers`` as a valid ``[start, stop)`` latent range of a model with ``num_ws`` latents (None: all).

    Raises:
        FitError: An empty range or one outside ``0 .. num_ws``.
    """
    if layers is None:
        return 0, num_ws
    a, b = int(layers[0]), int(layers[1])
    if not 0 <= a < b <= num_ws:
        raise FitError(f"layers {a}:{b}: a latent range START:STOP needs 0 <= START < STOP <= {num_ws} "
                       f"(this model has {num_ws} latent{'s' if num_ws != 1 else ''})")
    return a, b


def _mapped(generator: Any, seeds: Any, psi: float) -> Any:
    import torch

    from morphstudio.latent import z_from_seed

    z = torch.from_numpy(np.stack([z_from_seed(int(s) % 2**32, generator.z_dim) for s in seeds])).float()
    return generator.mapping(z.to(generator.device), generator.default_c(len(seeds)), psi=psi)


def sample_labels(generator: Any, labeller: Any, n: int, *, seed: int = 0, psi: float = 1.0,
                  batch: int = 32, label: str | None = None,
                  layers: tuple[int, int] | None = None) -> tuple[np.ndarray, np.ndarray, int]:
    """Sample ``n`` faces, label them, drop the faces without a label.

    With a layer range narrower than the model's latents, each face takes the latents of seed ``s`` in the range
    and those of seed ``s + MIX_OFFSET`` elsewhere (style mixing), so a label regressed on the range's latents
    measures what moving only that range does, the rest acting as independent noise; fit on ``ws[:, start]``.

    Args:
        generator: Any backend.
        labeller: ``images uint8 [N,H,W,3] -> float [N, L]`` with ``labels`` (:mod:`morphstudio.edit.labels`).
        n: Faces to sample (seeds ``seed .. seed+n-1``).
        seed: First seed.
        psi: Truncation.
        batch: Faces per generator call.
        label: Keep only this label's column (default: all).
        layers: ``(start, stop)`` latent range the direction is for (default: all).

    Returns:
        ``(ws [M, num_ws, w_dim], labels [M, L], skipped)`` with ``M = n - skipped``.

    Raises:
        FitError: An unknown label or a bad layer range.
    """
    import torch

    from morphstudio.generators.base import to_uint8

    names = [info.name for info in labeller.labels]
    if label is not None and label not in names:
        raise FitError(f"the labeller has no label {label!r}; it gives {', '.join(names)}")
    a, b = check_layers(layers, generator.num_ws)
    mix = (a, b) != (0, generator.num_ws)
    ws_all, ys = [], []
    with torch.no_grad():
        for start in range(seed, seed + n, batch):
            seeds = range(start, min(start + batch, seed + n))
            ws = _mapped(generator, seeds, psi)
            if mix:
                other = _mapped(generator, [s + MIX_OFFSET for s in seeds], psi)
                keep = torch.zeros(generator.num_ws, dtype=torch.bool, device=ws.device)
                keep[a:b] = True
                ws = torch.where(keep[None, :, None], ws, other)
            img = to_uint8(generator.synthesis(ws, noise_mode="const")).cpu().numpy()
            ws_all.append(ws.cpu().numpy().astype(np.float64))
            ys.append(np.asarray(labeller(img), dtype=np.float64))
    W = np.concatenate(ws_all)
    Y = np.concatenate(ys)
    if label is not None:
        Y = Y[:, [names.index(label)]]
    ok = np.all(np.isfinite(Y), axis=1)
    return W[ok], Y[ok], int((~ok).sum())


def seed_labels(generator: Any, labeller: Any, label: str, *, psi: float = 1.0,
                batch: int = 256) -> tuple[np.ndarray, np.ndarray, int, list[int]]:
    """The latents of the seeds a ``csv:`` labeller lists and their labels (no image is rendered).

    Args:
        generator: Any backend (only its mapping runs).
        labeller: A labeller with ``seeds``, ``labels`` and ``for_seeds(seeds)`` (:class:`CsvLabeller`).
        label: The label column to keep.
        psi: Truncation.
        batch: Seeds per mapping call.

    Returns:
        ``(ws [M, num_ws, w_dim], labels [M, 1], skipped, [first seed, last seed + 1])``; ``skipped`` counts the
        seeds whose cell for ``label`` is empty.

    Raises:
        FitError: The CSV has no such label column.
    """
    import torch

    names = [info.name for info in labeller.labels]
    if label not in names:
        raise FitError(f"the labeller has no label {label!r}; it gives {', '.join(names)}")
    seeds = [int(s) for s in labeller.seeds]
    y = np.asarray(labeller.for_seeds(seeds), np.float64)[:, [names.index(label)]]
    ok = np.isfinite(y[:, 0])
    kept = [s for s, k in zip(seeds, ok) if k]
    ws_all = []
    with torch.no_grad():
        for i in range(0, len(kept), batch):
            ws_all.append(_mapped(generator, kept[i:i + batch], psi).cpu().numpy().astype(np.float64))
    W = np.concatenate(ws_all) if ws_all else np.zeros((0, generator.num_ws, generator.w_dim))
    return W, y[ok], int((~ok).sum()), [min(seeds), max(seeds) + 1]
