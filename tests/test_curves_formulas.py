"""Easing curves, interpolation kinds and deform-loop fades against their formulas, written out here.

The expected values are the documented formulas (or literal numbers worked out from them by hand), never the
functions under test: if someone changes an easing or a fade, these fail.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

import morphstudio
from morphstudio.latent import LatentSpace
from morphstudio.timeline import Curve, CurveKey

U = np.array([0.0, 0.25, 0.5, 0.75, 1.0])

# The easings of the scene reference, u in [0, 1] -> s in [0, 1]:
#   linear: s = u;  in: s = u^2;  out: s = 1 - (1 - u)^2;  in-out: s = 3u^2 - 2u^3 (smoothstep)
EASE_LITERALS = {
    "linear": [0.0, 0.25, 0.5, 0.75, 1.0],
    "in": [0.0, 0.0625, 0.25, 0.5625, 1.0],
    "out": [0.0, 0.4375, 0.75, 0.9375, 1.0],
    "in-out": [0.0, 0.15625, 0.5, 0.84375, 1.0],
}
EASE_FORMULAS = {
    "linear": lambda u: u,
    "in": lambda u: u ** 2,
    "out": lambda u: 1 - (1 - u) ** 2,
    "in-out": lambda u: 3 * u ** 2 - 2 * u ** 3,
}


def test_the_literals_are_the_formulas() -> None:
    # Guards the table above: the hand-computed literals agree with the written formulas.
    for name, values in EASE_LITERALS.items():
        np.testing.assert_allclose(EASE_FORMULAS[name](U), values, rtol=0, atol=1e-15)


@pytest.mark.parametrize("name", list(EASE_LITERALS))
def test_easing_of_a_linear_segment(name: str) -> None:
    # A linear segment from 0 to 10 over 2 s: value = 10 * ease(t / 2).
    curve = Curve([CurveKey(1.0, np.array([0.0]), 0.0, "linear", name), CurveKey(3.0, np.array([10.0]))])
    got = curve(1.0 + 2.0 * U)[:, 0]
    np.testing.assert_allclose(got, 10.0 * np.asarray(EASE_LITERALS[name]), rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", ["in", "out", "in-out"])
def test_easing_applies_to_the_segment_that_leaves_the_key_only(name: str) -> None:
    keys = [CurveKey(0.0, np.array([0.0]), 0.0, "linear", name), CurveKey(1.0, np.array([1.0]), 0.0, "linear"),
            CurveKey(2.0, np.array([3.0]))]
    got = Curve(keys)(np.array([0.25, 1.25, 1.5]))[:, 0]
    np.testing.assert_allclose(got, [EASE_LITERALS[name][1], 1.5, 2.0], rtol=0, atol=1e-12)


def test_two_key_cubic_and_pchip_are_smoothstep_between_resting_ends() -> None:
    # A curve that does not loop stops at its first and last key (tangent 0 there), so with two keys the cubic
    # Hermite segment is y0 + (3u^2 - 2u^3) (y1 - y0).
    for kind in ("cubic", "pchip", "akima"):
        curve = Curve([CurveKey(0.0, np.array([2.0, -1.0]), 0.0, kind), CurveKey(4.0, np.array([6.0, 1.0]))])
        got = curve(4.0 * U)
        s = np.asarray(EASE_LITERALS["in-out"])[:, None]
        np.testing.assert_allclose(got, np.array([2.0, -1.0]) + s * np.array([4.0, 2.0]), rtol=0, atol=1e-12)


def test_cubic_through_three_keys_matches_the_clamped_spline_formula() -> None:
    # Keys (0, 0), (1, 1), (2, 0), tangents 0 at both ends. The clamped cubic spline's middle tangent m solves
    # continuity of the second derivative at t = 1: by symmetry m = 0, so each half is a smoothstep.
    curve = Curve([CurveKey(t, np.array([v]), 0.0, "cubic") for t, v in [(0, 0.0), (1, 1.0), (2, 0.0)]])
    t = np.array([0.25, 0.5, 1.5, 1.75])
    np.testing.assert_allclose(curve(t)[:, 0], [0.15625, 0.5, 0.5, 0.15625], rtol=0, atol=1e-12)


def test_slerp_follows_the_great_circle() -> None:
    # Between orthogonal unit vectors e0 and e1: cos(u pi/2) e0 + sin(u pi/2) e1.
    e0, e1 = np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0])
    curve = Curve([CurveKey(0.0, e0, 0.0, "slerp"), CurveKey(1.0, e1)], row_size=3)
    got = curve(U)
    expected = np.stack([np.cos(U * math.pi / 2), np.sin(U * math.pi / 2), np.zeros_like(U)], axis=1)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
    # Unequal norms: the norm is interpolated linearly (|2 e0| -> |e1|: 2 - u).
    curve = Curve([CurveKey(0.0, 2 * e0, 0.0, "slerp"), CurveKey(1.0, e1)], row_size=3)
    np.testing.assert_allclose(np.linalg.norm(curve(U), axis=1), 2 - U, rtol=0, atol=1e-12)


def test_a_hold_keeps_the_value_then_moves() -> None:
    curve = Curve([CurveKey(0.0, np.array([1.0]), 1.0, "linear"), CurveKey(3.0, np.array([5.0]))])
    got = curve(np.array([0.0, 0.5, 1.0, 2.0, 2.5, 3.0]))[:, 0]
    # Holds 1 until t = 1, then linear from (1, 1) to (3, 5).
    np.testing.assert_allclose(got, [1.0, 1.0, 1.0, 3.0, 4.0, 5.0], rtol=0, atol=1e-12)


# --- through the scene: easing and fades as a user writes them ------------------------------------------------


def _sign_space(num_ws: int = 4, w_dim: int = 8) -> LatentSpace:
    """A latent space whose latents are +-1 around w_avg = 0: its standard deviation is exactly 1, so loop
    amplitudes are in latent units here."""

    def map_z(z: np.ndarray, psi: float = 1.0, cutoff: int | None = None) -> np.ndarray:
        w = np.where(np.asarray(z) >= 0, 1.0, -1.0)
        return np.repeat((psi * w)[:, None], num_ws, axis=1).astype(np.float32)

    return LatentSpace(family="stylegan2", z_dim=w_dim, w_dim=w_dim, num_ws=num_ws, w_avg=np.zeros(w_dim, np.float32),
                       resolutions=(4, 8, 32, 64)[:num_ws], map_z=map_z)


SIGN = _sign_space()


@pytest.fixture()
def files(tmp_path: Path) -> Path:
    np.save(tmp_path / "zero.npy", np.zeros(8, np.float32))
    np.save(tmp_path / "one.npy", np.ones(8, np.float32))
    e0 = np.zeros(8, np.float32)
    e0[0] = 3.0  # not unit length: the loop normalises it
    np.save(tmp_path / "e0.npy", e0)
    return tmp_path


@pytest.mark.parametrize("name", list(EASE_LITERALS))
def test_scene_keyframe_easing(files: Path, name: str) -> None:
    spec = {
        "output": {"fps": 4, "duration": 1},
        "faces": {"a": {"latent": "zero.npy"}, "b": {"latent": "one.npy"}},
        "timeline": [{"at": 0, "face": "a", "interp": "linear", "ease": name}, {"at": 1, "face": "b"}],
    }
    ws = morphstudio.load_scene(spec, latent_space=SIGN, base_dir=files).latents(range(5))
    np.testing.assert_allclose(ws[:, 0, 0], EASE_LITERALS[name], rtol=0, atol=1e-7)
    # The scene-wide default applies to keys without their own.
    spec["ease"] = name
    del spec["timeline"][0]["ease"]
    ws = morphstudio.load_scene(spec, latent_space=SIGN, base_dir=files).latents(range(5))
    np.testing.assert_allclose(ws[:, 0, 0], EASE_LITERALS[name], rtol=0, atol=1e-7)


def _loop_scene(files: Path, **loop: object) -> morphstudio.Scene:
    spec = {
        "output": {"fps": 4, "duration": 4},
        "faces": {"zero": {"latent": "zero.npy"}},
        "timeline": [{"at": 0, "face": "zero"}],
        "loops": [{"direction": "e0.npy", "shape": "sine", **loop}],
    }
    return morphstudio.load_scene(spec, latent_space=SIGN, base_dir=files)


def _smoothstep(u: np.ndarray) -> np.ndarray:
    u = np.clip(u, 0.0, 1.0)
    return 3 * u ** 2 - 2 * u ** 3


def test_deform_loop_sine_with_smooth_fades(files: Path) -> None:
    # offset(t) = amplitude * std * env(t) * sin(2 pi (t / period + phase)) along the unit direction e0, std = 1;
    # env(t) = smoothstep((t - start) / fade_in) * smoothstep((end - t) / fade_out) inside [start, end], else 0.
    scene = _loop_scene(files, amplitude=2, period=8, phase=0.125, fade_in=1.5, fade_out=1)
    frames = np.arange(17)
    t = frames / 4.0
    env = _smoothstep(t / 1.5) * _smoothstep((4.0 - t) / 1.0)
    expected = 2.0 * env * np.sin(2 * np.pi * (t / 8.0 + 0.125))
    ws = scene.latents(frames)
    np.testing.assert_allclose(ws[:, :, 0], np.repeat(expected[:, None], 4, axis=1), rtol=0, atol=1e-6)
    np.testing.assert_array_equal(ws[:, :, 1:], 0.0)
    # Literal spot checks: at t = 0.75 the fade-in is smoothstep(0.5) = 0.5, sin(2 pi (0.75/8 + 1/8)) = sin(0.4375 pi)
    assert ws[3, 0, 0] == pytest.approx(2 * 0.5 * math.sin(0.4375 * math.pi), abs=1e-6)
    # ... and at t = 3.75 the fade-out is smoothstep(0.25) = 0.15625.
    assert ws[15, 0, 0] == pytest.approx(2 * 0.15625 * math.sin(2 * math.pi * (3.75 / 8 + 0.125)), abs=1e-6)


def test_deform_loop_plays_only_between_start_and_end(files: Path) -> None:
    scene = _loop_scene(files, amplitude=1, period=2, start=1, end=3)
    ws = scene.latents(np.arange(17))[:, 0, 0]
    t = np.arange(17) / 4.0
    expected = np.where((t >= 1) & (t <= 3), np.sin(2 * np.pi * t / 2), 0.0)
    np.testing.assert_allclose(ws, expected, rtol=0, atol=1e-6)
    assert np.all(ws[:4] == 0.0) and ws[5] != 0.0


def test_circle_loop_has_constant_radius_and_orthogonal_axes(files: Path) -> None:
    # circle: amplitude * (cos(theta) d1 + sin(theta) d2) with d2 a unit vector orthogonal to d1: radius 1.5.
    scene = _loop_scene(files, amplitude=1.5, period=4, shape="circle")
    ws = scene.latents(np.arange(16)).astype(np.float64)
    np.testing.assert_allclose(np.linalg.norm(ws, axis=-1), 1.5, rtol=1e-6)
    np.testing.assert_allclose(ws[0, :, 0], 1.5, rtol=1e-6)  # cos(0) along e0
    np.testing.assert_allclose(ws[4, :, 0], 0.0, atol=1e-6)  # a quarter turn later: all along d2, orthogonal to e0


# --- tangents of the spline kinds, worked out by hand --------------------------------------------------------------


def _hermite(y0: float, y1: float, m0: float, m1: float, s: float, h: float = 1.0) -> float:
    """The cubic Hermite segment: y0 h00 + y1 h01 + h (m0 h10 + m1 h11), the h.. the Hermite basis at s."""
    h00, h01 = 2 * s ** 3 - 3 * s ** 2 + 1, 3 * s ** 2 - 2 * s ** 3
    h10, h11 = s ** 3 - 2 * s ** 2 + s, s ** 3 - s ** 2
    return y0 * h00 + y1 * h01 + h * (m0 * h10 + m1 * h11)


def test_periodic_cubic_tangents() -> None:
    # Keys 0, 1, 0, -1 at t = 0, 1, 2, 3, period 4. A periodic cubic spline with unit spacing has tangents
    # m[i-1] + 4 m[i] + m[i+1] = 3 (y[i+1] - y[i-1]): by symmetry m1 = m3 = 0, so 4 m0 = 6, m0 = 1.5, m2 = -1.5.
    keys = [CurveKey(float(t), np.array([v]), 0.0, "cubic") for t, v in enumerate([0.0, 1.0, 0.0, -1.0])]
    got = Curve(keys, period=4.0)(np.array([0.5, 1.5, 2.5, 3.5]))[:, 0]
    expected = [_hermite(0, 1, 1.5, 0, 0.5), _hermite(1, 0, 0, -1.5, 0.5), _hermite(0, -1, -1.5, 0, 0.5),
                _hermite(-1, 0, 0, 1.5, 0.5)]
    np.testing.assert_allclose(expected, [0.6875, 0.6875, -0.6875, -0.6875], rtol=0, atol=1e-15)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)


def test_pchip_interior_tangent_is_the_harmonic_mean_of_the_slopes() -> None:
    # Keys (0, 0), (1, 1), (2, 3): slopes 1 and 2, equal spacing, so the interior tangent is
    # 2 / (1/1 + 1/2) = 4/3; the ends rest (tangent 0). At t = 0.5: 0.5 - 0.125 * 4/3 = 1/3.
    keys = [CurveKey(float(t), np.array([v]), 0.0, "pchip") for t, v in [(0, 0.0), (1, 1.0), (2, 3.0)]]
    got = Curve(keys)(np.array([0.5, 1.5]))[:, 0]
    np.testing.assert_allclose(got, [_hermite(0, 1, 0, 4 / 3, 0.5), _hermite(1, 3, 4 / 3, 0, 0.5)], atol=1e-12)
    assert got[0] == pytest.approx(1 / 3, abs=1e-12)


def test_one_key_curves_are_constant() -> None:
    v = np.array([2.0, -3.0])
    for period in (None, 5.0):
        got = Curve([CurveKey(1.0, v, 0.0, "cubic")], period)(np.array([-10.0, 1.0, 2.5, 99.0]))
        np.testing.assert_array_equal(got, np.tile(v, (4, 1)))


def test_curve_guards_its_keys() -> None:
    with pytest.raises(ValueError, match="a curve needs at least one key"):
        Curve([])
    with pytest.raises(ValueError, match="keys out of order at 1"):
        Curve([CurveKey(2.0, np.zeros(1)), CurveKey(1.0, np.zeros(1))])
    with pytest.raises(ValueError, match="key at 4.0 is not before the loop end 4.0"):
        Curve([CurveKey(0.0, np.zeros(1)), CurveKey(4.0, np.ones(1))], period=4.0)
