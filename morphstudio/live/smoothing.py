"""Causal landmark smoothing: a vectorised One Euro filter (Casiez, Roussel and Vogel, CHI 2012).

Each coordinate is low-pass filtered with an exponential smoother whose cutoff rises with the (smoothed) speed:
still landmarks get a low cutoff (no jitter), fast ones a high cutoff (no lag). It only looks at the past, so a
frame's output never waits for, or changes with, later frames — unlike a centred window, it does not slow motion
down or drop frames at a clip's ends.

For a sample ``x_i`` at time ``t_i`` (``dt = t_i - t_{i-1}``)::

    alpha(fc) = 1 / (1 + tau / dt),  tau = 1 / (2 pi fc)
    dx_i      = (x_i - x_{i-1}) * value_scale / dt    (raw speed from the raw samples, as mediapipe does,
                                                         in units of the face's size per second)
    dxh_i     = alpha(d_cutoff) * dx_i + (1 - alpha(d_cutoff)) * dxh_{i-1}
    fc_i      = min_cutoff + beta * |dxh_i|
    xh_i      = alpha(fc_i) * x_i + (1 - alpha(fc_i)) * xh_{i-1}

``value_scale`` is mediapipe's: the speed is measured relative to the face's size (1 / size), so the same
``beta`` suits a small face far away and a large one close up. The defaults are mediapipe face pipeline's
(min_cutoff 0.05, beta 80, derivative cutoff 1.0).
"""

from __future__ import annotations

import math

import numpy as np


def smoothing_factor(cutoff: np.ndarray | float, dt: float) -> np.ndarray | float:
    """The exponential smoother's weight of the new sample for a cutoff frequency (Hz) and step ``dt`` (s)."""
    tau = 1.0 / (2.0 * math.pi * np.asarray(cutoff, dtype=np.float64))
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """One Euro filter over an array of any shape (e.g. ``[468, 2]`` landmarks), element by element.

    Args:
        min_cutoff: Cutoff (Hz) when still: lower = less jitter, more lag at slow speeds.
        beta: How fast the cutoff rises with speed: higher = less lag when moving.
        d_cutoff: Cutoff (Hz) of the speed estimate.
    """

    def __init__(self, min_cutoff: float = 0.05, beta: float = 80.0, d_cutoff: float = 1.0) -> None:
        if min_cutoff <= 0 or d_cutoff <= 0 or beta < 0:
            raise ValueError("min_cutoff and d_cutoff must be > 0 and beta >= 0")
        self.min_cutoff = float(min_cutoff)
        self.beta = float(beta)
        self.d_cutoff = float(d_cutoff)
        self.reset()

    def reset(self) -> None:
        """Forget the past (a face left the picture: the next one starts fresh, not dragged from the old place)."""
        self._x: np.ndarray | None = None
        self._raw: np.ndarray | None = None
        self._dx: np.ndarray | None = None
        self._t: float | None = None

    def __call__(self, x: np.ndarray, t: float, value_scale: float = 1.0) -> np.ndarray:
        """Filter one sample taken at time ``t`` (seconds, increasing); returns the smoothed array (float64).

        Args:
            x: The raw sample; its shape must stay the same until :meth:`reset`.
            t: Its timestamp.
            value_scale: Factor on the speed (mediapipe: 1 / the face's size in the same units as ``x``).
        """
        x = np.asarray(x, dtype=np.float64)
        if self._x is None or self._raw is None or self._t is None or self._dx is None:
            self._x, self._raw, self._dx, self._t = x.copy(), x.copy(), np.zeros_like(x), float(t)
            return x.copy()
        if self._x.shape != x.shape:
            raise ValueError(f"sample shape changed from {self._x.shape} to {x.shape} without reset()")
        dt = float(t) - self._t
        if dt <= 0:
            # A repeated or out-of-order timestamp carries no speed information: keep the state as it is.
            return self._x.copy()
        dx = (x - self._raw) * (value_scale / dt)
        a_d = smoothing_factor(self.d_cutoff, dt)
        self._dx = a_d * dx + (1.0 - a_d) * self._dx
        a = smoothing_factor(self.min_cutoff + self.beta * np.abs(self._dx), dt)
        self._x = a * x + (1.0 - a) * self._x
        self._raw = x.copy()
        self._t = float(t)
        return self._x.copy()
