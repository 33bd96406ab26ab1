"""Disentangling directions: project out reference directions (TL-GAN's Gram–Schmidt) or condition on them
(InterFaceGAN's conditional boundary), and report cosines and cross-effects before and after."""

from __future__ import annotations

import numpy as np


def gram_schmidt(directions: np.ndarray) -> np.ndarray:
    """Orthonormalise ``[K, D]`` directions in order (TL-GAN): row k keeps only what rows ``< k`` do not explain.

    The span of the first ``k`` rows is kept for every ``k``; a row already in the span of the earlier ones comes
    out zero.
    """
    d = np.asarray(directions, dtype=np.float64)
    out = np.zeros_like(d)
    for k in range(len(d)):
        v = d[k].copy()
        for j in range(k):
            v -= (v @ out[j]) * out[j]
        n = np.linalg.norm(v)
        out[k] = v / n if n > 1e-10 * max(np.linalg.norm(d[k]), 1e-300) else 0.0
    return out


def condition(primary: np.ndarray, references: np.ndarray) -> np.ndarray:
    """InterFaceGAN's conditional boundary: ``primary`` with the span of ``references [K, D]`` projected out,
    normalised. Moving along it leaves every reference label's linear prediction unchanged."""
    p = np.asarray(primary, dtype=np.float64).reshape(-1)
    r = np.asarray(references, dtype=np.float64).reshape(-1, p.size)
    # Least squares instead of sequential subtraction: exact for references that are far from orthogonal.
    coeffs, *_ = np.linalg.lstsq(r.T, p, rcond=None)
    v = p - r.T @ coeffs
    n = np.linalg.norm(v)
    if n < 1e-10 * np.linalg.norm(p):
        raise ValueError("the primary direction lies in the span of the references: nothing is left")
    return v / n


def cosines(directions: np.ndarray) -> np.ndarray:
    """``[K, K]`` cosines between rows."""
    d = np.asarray(directions, dtype=np.float64)
    u = d / np.maximum(np.linalg.norm(d, axis=1, keepdims=True), 1e-300)
    return u @ u.T


def cross_effects(units: np.ndarray, scales: np.ndarray, fitted_units: np.ndarray,
                  fitted_scales: np.ndarray) -> np.ndarray:
    """``[K, L]`` predicted change of label ``j`` (in its stds) per unit strength along direction ``i``.

    Label ``j``'s linear model rises one std per ``fitted_scales[j]`` latent units along ``fitted_units[j]``;
    strength 1 along ``units[i]`` moves ``scales[i]`` latent units.
    """
    u = np.asarray(units, np.float64)
    f = np.asarray(fitted_units, np.float64)
    return (u @ f.T) * np.asarray(scales, np.float64)[:, None] / np.asarray(fitted_scales, np.float64)[None, :]
