"""Fitting, disentangling and unsupervised directions: recovered from synthetic labels with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from morphstudio.edit.disentangle import condition, cosines, gram_schmidt
from morphstudio.edit.fit import METHODS, FitError, fit_direction

D = 32


def _synthetic(n: int = 2000, noise: float = 0.3, seed: int = 1, spread: tuple[float, float] = (0.5, 1.5)
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """W with per-axis spreads in ``spread`` and a label that is a known linear function of it plus noise."""
    rng = np.random.default_rng(seed)
    ws = rng.normal(size=(n, D)) * np.linspace(*spread, D)
    true = rng.normal(size=D)
    true /= np.linalg.norm(true)
    labels = 3.0 + 2.0 * (ws @ true) + noise * rng.normal(size=n)
    return ws, labels, true


@pytest.mark.parametrize("method", METHODS)
def test_each_method_recovers_a_known_linear_label(method: str) -> None:
    ws, labels, true = _synthetic(spread=(1.0, 1.0))  # isotropic, as z (the built-in model's latent)
    fit = fit_direction(ws, labels, method)
    assert float(fit.unit @ true) >= 0.95, f"{method}: cosine {fit.unit @ true:.3f}"
    assert fit.score > (0.9 if fit.metric == "r2" else 0.95)


@pytest.mark.parametrize("method", [m for m in METHODS if m != "meandiff"])
def test_models_recover_the_label_in_an_anisotropic_space(method: str) -> None:
    # Mean difference points along cov(W) @ true, not true, when W is anisotropic (documented); the fitted models
    # do not have that bias.
    ws, labels, true = _synthetic()
    fit = fit_direction(ws, labels, method)
    assert float(fit.unit @ true) >= 0.95, f"{method}: cosine {fit.unit @ true:.3f}"
    assert fit.score > (0.9 if fit.metric == "r2" else 0.95)


def test_calibration_makes_one_strength_one_label_std() -> None:
    ws, labels, true = _synthetic(noise=0.05)
    fit = fit_direction(ws, labels, "ridge")
    # label = 3 + 2 (w . true): moving `scale` along the direction changes it by 2 * scale * cos = one label std.
    assert 2.0 * fit.scale * float(fit.unit @ true) == pytest.approx(np.std(labels), rel=0.02)
    # The boundary passes through the label's mean: at w . n = -intercept the label is its mean.
    t0 = -fit.intercept
    assert 3.0 + 2.0 * t0 * float(fit.unit @ true) == pytest.approx(np.mean(labels), abs=0.05)


def test_nan_rows_are_dropped_and_counted() -> None:
    ws, labels, _ = _synthetic(n=500)
    labels[:100] = np.nan
    assert fit_direction(ws, labels, "linear").n == 400


def test_constant_label_and_unknown_method_are_clear_errors() -> None:
    ws, _, _ = _synthetic(n=100)
    with pytest.raises(FitError, match="same on every sample"):
        fit_direction(ws, np.ones(100), "ridge")
    with pytest.raises(FitError, match="unknown method 'svr'"):
        fit_direction(ws, np.arange(100.0), "svr")


def test_gram_schmidt_is_orthonormal_and_keeps_the_span() -> None:
    rng = np.random.default_rng(3)
    d = rng.normal(size=(4, 10))
    d[1] += 2 * d[0]  # strongly correlated, as smile and mouth_open are
    q = gram_schmidt(d)
    np.testing.assert_allclose(q @ q.T, np.eye(4), atol=1e-10)
    for k in range(1, 5):  # the first k outputs span the first k inputs
        proj = d[:k] @ q[:k].T @ q[:k]
        np.testing.assert_allclose(proj, d[:k], atol=1e-9)
    np.testing.assert_allclose(q[0], d[0] / np.linalg.norm(d[0]))


def test_conditional_boundary_is_orthogonal_to_its_references() -> None:
    rng = np.random.default_rng(4)
    refs = rng.normal(size=(2, 12))
    primary = refs[0] * 0.8 + rng.normal(size=12) * 0.5
    before = cosines(np.vstack([primary, refs]))[0, 1:]
    v = condition(primary, refs)
    assert np.max(np.abs(before)) > 0.5
    np.testing.assert_allclose(refs @ v, 0.0, atol=1e-10)
    assert np.linalg.norm(v) == pytest.approx(1.0)
    assert float(v @ primary) > 0  # still points the way of the primary attribute
