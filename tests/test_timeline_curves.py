"""Keyframed curves and the keyframed path: exact at keys, C1 between, closed loops, vectorised."""

from __future__ import annotations

import numpy as np
import pytest

import morphstudio
from morphstudio.timeline.curves import Curve, CurveKey, slerp
from morphstudio.timeline.testing import fake_latent_space

SMOOTH = ("cubic", "pchip", "akima")


def _keys(kind: str, holds: tuple[float, ...] = (0, 0, 0, 0), dim: int = 6) -> list[CurveKey]:
    rng = np.random.default_rng(1)
    times = (0.0, 2.0, 3.5, 5.0)
    return [CurveKey(t, rng.normal(size=dim), h, kind) for t, h in zip(times, holds)]


def _max_derivative_jump(curve: Curve, t0: float, t1: float, n: int = 8001) -> tuple[float, float]:
    """Largest change of the finite-difference derivative between neighbouring steps, and the derivative scale."""
    t = np.linspace(t0, t1, n)
    d = np.diff(curve(t), axis=0) / np.diff(t)[:, None]
    return float(np.abs(np.diff(d, axis=0)).max()), float(np.abs(d).max())


@pytest.mark.parametrize("period", [None, 8.0])
@pytest.mark.parametrize("kind", [*SMOOTH, "linear", "slerp"])
def test_curve_hits_every_key_exactly(kind: str, period: float | None) -> None:
    keys = _keys(kind, holds=(0.5, 0, 0.25, 0))
    curve = Curve(keys, period, row_size=3)
    for key in keys:
        np.testing.assert_array_equal(curve(np.array([key.time]))[0], key.value)
        if key.hold:
            np.testing.assert_array_equal(curve(np.array([key.time + key.hold / 2, key.time + key.hold])),
                                          np.stack([key.value, key.value]))


@pytest.mark.parametrize("period", [None, 8.0])
@pytest.mark.parametrize("kind", SMOOTH)
@pytest.mark.parametrize("holds", [(0, 0, 0, 0), (0.5, 0, 0.25, 0), (0, 0.3, 0, 0.4)])
def test_smooth_curves_are_c1(kind: str, period: float | None, holds: tuple[float, ...]) -> None:
    curve = Curve(_keys(kind, holds), period)
    # Over two periods for loops, so the seam is inside the range; a C1 curve's derivative changes by
    # O(step) between steps, a kink by O(1).
    jump, scale = _max_derivative_jump(curve, -1.0, 15.0 if period else 6.0)
    assert jump < 0.02 * scale, (jump, scale)


def test_linear_segments_have_kinks_so_the_c1_check_can_fail() -> None:
    jump, scale = _max_derivative_jump(Curve(_keys("linear"), None), -1.0, 6.0)
    assert jump > 0.1 * scale


@pytest.mark.parametrize("kind", [*SMOOTH, "linear", "slerp"])
def test_loop_closes_and_repeats(kind: str) -> None:
    curve = Curve(_keys(kind), 8.0, row_size=3)
    t = np.linspace(0, 8, 97)
    np.testing.assert_array_equal(curve(np.array([8.0])), curve(np.array([0.0])))
    np.testing.assert_allclose(curve(t + 8.0), curve(t), atol=1e-12)
    np.testing.assert_allclose(curve(t - 16.0), curve(t), atol=1e-12)


def test_not_looping_is_constant_outside_the_keys() -> None:
    keys = _keys("cubic")
    curve = Curve(keys, None)
    np.testing.assert_array_equal(curve(np.array([-3.0, 99.0])), np.stack([keys[0].value, keys[-1].value]))


def test_pchip_does_not_overshoot_but_cubic_may() -> None:
    keys = [CurveKey(t, np.array([v]), 0, "pchip") for t, v in [(0, 0.0), (1, 0.0), (2, 1.0), (3, 1.0)]]
    y = Curve(keys)(np.linspace(0, 3, 301))
    assert y.min() >= 0.0 and y.max() <= 1.0
    cubic = Curve([CurveKey(k.time, k.value, 0, "cubic") for k in keys])(np.linspace(0, 3, 301))
    assert cubic.min() < -1e-3 or cubic.max() > 1 + 1e-3


def test_easing_changes_the_path_but_not_the_ends() -> None:
    a, b = np.zeros(2), np.ones(2)
    plain = Curve([CurveKey(0, a, 0, "linear"), CurveKey(1, b, 0, "linear")])
    eased = Curve([CurveKey(0, a, 0, "linear", "in-out"), CurveKey(1, b, 0, "linear")])
    t = np.array([0.0, 0.25, 0.5, 1.0])
    np.testing.assert_allclose(plain(t)[:, 0], t)
    np.testing.assert_allclose(eased(t)[:, 0], [0.0, 0.15625, 0.5, 1.0])


def test_slerp_keeps_norm_between_equal_norm_vectors() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(size=(1, 100))
    b = rng.normal(size=(1, 100))
    b *= np.linalg.norm(a) / np.linalg.norm(b)
    s = np.linspace(0, 1, 11)
    out = slerp(np.repeat(a, 11, 0), np.repeat(b, 11, 0), s, 100)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), np.linalg.norm(a), rtol=1e-10)


def _scene(**extra: object) -> dict:
    scene = {
        "output": {"fps": 10},
        "faces": {"a": {"seed": 1}, "b": {"seed": 2}, "c": {"seed": 3}},
        "timeline": [{"at": 0, "face": "a"}, {"at": 1.5, "face": "b", "hold": 0.5}, {"at": 3, "face": "c"}],
    }
    scene.update(extra)
    return scene


@pytest.mark.parametrize("space", [fake_latent_space(), fake_latent_space(1, 32, family="dcgan")],
                         ids=["stylegan-like", "dcgan-like"])
@pytest.mark.parametrize("loop", [False, True])
def test_scene_latents_equal_faces_at_their_keyframes(space, loop: bool) -> None:
    extra = {"loop": True, "output": {"fps": 10, "duration": 4}} if loop else {}
    scene = morphstudio.load_scene(_scene(**extra), latent_space=space)
    faces = scene.timeline().face_values
    ws = scene.latents([0, 15, 17, 20, 30])
    assert ws.dtype == np.float32 and ws.shape == (5, space.num_ws, space.w_dim)
    for row, name in zip(ws, ["a", "b", "b", "b", "c"]):
        np.testing.assert_array_equal(row, faces[name].astype(np.float32))
    if loop:
        np.testing.assert_array_equal(scene.latents([scene.frame_count]), scene.latents([0]))


def test_latents_are_the_same_in_any_batch_order() -> None:
    scene = morphstudio.load_scene(_scene(loops=[{"amplitude": 1.0, "period": 1.3}]),
                                   latent_space=fake_latent_space())
    frames = np.arange(scene.frame_count)
    together = scene.latents(frames)
    shuffled = np.random.default_rng(0).permutation(frames)
    np.testing.assert_array_equal(scene.latents(shuffled), together[shuffled])
    singles = np.concatenate([scene.latents([f]) for f in frames[::7]])
    np.testing.assert_array_equal(singles, together[::7])


def test_frame_keys_equal_second_keys() -> None:
    space = fake_latent_space()
    by_time = morphstudio.load_scene(_scene(), latent_space=space).latents(range(31))
    spec = _scene()
    spec["timeline"][1] = {"frame": 15, "face": "b", "hold": 0.5}
    by_frame = morphstudio.load_scene(spec, latent_space=space).latents(range(31))
    np.testing.assert_array_equal(by_time, by_frame)


def test_default_interp_is_slerp_for_z_space_and_cubic_otherwise() -> None:
    dc = morphstudio.load_scene(_scene(), latent_space=fake_latent_space(1, 32, family="dcgan"))
    sg = morphstudio.load_scene(_scene(), latent_space=fake_latent_space())
    assert {s for _, c in dc.timeline().path.curves for s in c.seg_kind} <= {"slerp", "const"}
    assert {s for _, c in sg.timeline().path.curves for s in c.seg_kind} <= {"cubic", "const"}
