"""The One Euro filter against its published formula, its causality, and its vectorisation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from morphstudio.live.smoothing import OneEuroFilter


def reference_one_euro(xs: list[float], ts: list[float], min_cutoff: float, beta: float, d_cutoff: float,
                       scale: float = 1.0) -> list[float]:
    """Casiez et al.'s filter on a scalar signal, written out from the paper (speed from the raw samples, as in
    mediapipe): the expected values of the tests."""
    def alpha(fc: float, dt: float) -> float:
        r = 2 * math.pi * fc * dt
        return r / (r + 1)

    out = [xs[0]]
    x_hat, dx_hat = xs[0], 0.0
    for i in range(1, len(xs)):
        dt = ts[i] - ts[i - 1]
        dx = (xs[i] - xs[i - 1]) * scale / dt
        dx_hat = alpha(d_cutoff, dt) * dx + (1 - alpha(d_cutoff, dt)) * dx_hat
        fc = min_cutoff + beta * abs(dx_hat)
        x_hat = alpha(fc, dt) * xs[i] + (1 - alpha(fc, dt)) * x_hat
        out.append(x_hat)
    return out


def test_step_signal_matches_the_formula_with_mediapipe_defaults() -> None:
    ts = [i / 30 for i in range(40)]
    xs = [0.0] * 10 + [1.0] * 30
    f = OneEuroFilter()  # mediapipe's face settings: 0.05, 80, 1.0
    got = [float(f(np.array(x), t, value_scale=0.5)) for x, t in zip(xs, ts)]
    assert got == pytest.approx(reference_one_euro(xs, ts, 0.05, 80.0, 1.0, scale=0.5), abs=1e-12)


def test_still_signal_is_smoothed_hard_and_fast_motion_lightly() -> None:
    # First step of a jump from 0 to 1 at 30 fps with beta 0: alpha(0.05 Hz, 1/30 s) = r / (r + 1), r = 2 pi 0.05 / 30.
    f = OneEuroFilter(min_cutoff=0.05, beta=0.0)
    f(np.array(0.0), 0.0)
    r = 2 * math.pi * 0.05 / 30
    assert float(f(np.array(1.0), 1 / 30)) == pytest.approx(r / (r + 1), rel=1e-12)
    # With mediapipe's beta the speed opens the cutoff: the same jump passes almost entirely... after the speed
    # estimate has caught up; the first sample already moves much further than with beta 0.
    g = OneEuroFilter()
    g(np.array(0.0), 0.0)
    assert float(g(np.array(1.0), 1 / 30)) > 10 * r / (r + 1)


def test_vectorised_equals_element_by_element_on_a_known_signal() -> None:
    ts = np.arange(50) / 25.0
    rng = np.random.RandomState(3)
    sig = np.cumsum(rng.randn(50, 468, 2), axis=0)
    f = OneEuroFilter(min_cutoff=0.3, beta=2.0, d_cutoff=1.0)
    vec = np.stack([f(sig[i], ts[i], value_scale=0.1) for i in range(50)])
    for j, k in [(0, 0), (17, 1), (467, 0)]:
        ref = reference_one_euro(list(sig[:, j, k]), list(ts), 0.3, 2.0, 1.0, scale=0.1)
        np.testing.assert_allclose(vec[:, j, k], ref, rtol=0, atol=1e-9)


def test_causal_output_at_t_ignores_later_samples() -> None:
    ts = np.arange(30) / 30.0
    a = np.sin(ts * 5)[:, None] * np.ones((1, 4))
    b = a.copy()
    b[15:] += 10.0  # the future changes
    fa, fb = OneEuroFilter(), OneEuroFilter()
    out_a = np.stack([fa(a[i], ts[i]) for i in range(30)])
    out_b = np.stack([fb(b[i], ts[i]) for i in range(30)])
    np.testing.assert_array_equal(out_a[:15], out_b[:15])
    assert not np.array_equal(out_a[15:], out_b[15:])


def test_reset_starts_from_the_new_sample() -> None:
    f = OneEuroFilter()
    f(np.array([0.0, 0.0]), 0.0)
    f(np.array([0.0, 0.0]), 0.1)
    f.reset()
    np.testing.assert_array_equal(f(np.array([5.0, -3.0]), 0.2), [5.0, -3.0])


def test_repeated_timestamp_keeps_the_state() -> None:
    f = OneEuroFilter()
    f(np.array(0.0), 0.0)
    first = float(f(np.array(1.0), 0.1))
    assert float(f(np.array(7.0), 0.1)) == first


@pytest.mark.parametrize("kw", [{"min_cutoff": 0.0}, {"d_cutoff": 0.0}, {"beta": -1.0}])
def test_settings_that_would_divide_by_zero_or_invert_are_refused(kw: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        OneEuroFilter(**kw)


def test_a_different_number_of_points_needs_a_reset() -> None:
    f = OneEuroFilter()
    f(np.zeros((468, 2)), 0.0)
    with pytest.raises(ValueError, match="without reset"):
        f(np.zeros((10, 2)), 0.1)
