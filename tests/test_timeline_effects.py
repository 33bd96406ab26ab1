"""Walks, deform loops, attribute tracks, truncation and staggered keyframes: behaviour and loop closure."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import morphstudio
from morphstudio.errors import SceneError
from morphstudio.timeline.testing import fake_latent_space

SPACE = fake_latent_space()  # 10 latents: coarse 0-3, middle 4-7, fine 8-9


def _base(**extra: object) -> dict:
    scene: dict = {
        "loop": True,
        "output": {"fps": 10, "duration": 4},
        "faces": {"a": {"seed": 1}, "b": {"seed": 2}},
        "timeline": [{"at": 0, "face": "a"}, {"at": 2, "face": "b"}],
    }
    scene.update(extra)
    return scene


def _closure(scene: morphstudio.Scene) -> dict[str, float]:
    return {item.element: item.max_abs for item in scene.closure()}


@pytest.fixture()
def direction(tmp_path: Path) -> Path:
    path = tmp_path / "dir.npy"
    np.save(path, np.random.default_rng(5).normal(size=SPACE.w_dim).astype(np.float32))
    return path


def test_walk_loop_closes_and_passes_through_its_faces() -> None:
    spec = {"loop": True, "output": {"fps": 10}, "walks": [{"faces": 5, "period": 5, "seed": 3}]}
    scene = morphstudio.load_scene(spec, latent_space=SPACE)
    assert scene.duration == 5 and scene.frame_count == 50
    ws = scene.latents(np.arange(0, 51, 10))  # a face every second
    z = np.random.RandomState(3).randn(5, SPACE.z_dim)
    faces = SPACE.map_z(z)
    np.testing.assert_allclose(ws[:5], faces, atol=1e-6)
    np.testing.assert_array_equal(ws[5], ws[0])
    assert _closure(scene)["total"] == 0.0


def test_random_walk_is_reported_as_not_closing() -> None:
    scene = morphstudio.load_scene(_base(walks=[{"kind": "random", "step": 0.7, "mode": "add", "strength": 0.5}]),
                                   latent_space=SPACE)
    items = {i.element: i for i in scene.closure()}
    assert not items["walks[0]"].closed and "does not loop" in items["walks[0]"].note
    assert not items["total"].closed


def test_walk_on_some_layers_replaces_only_those() -> None:
    plain = morphstudio.load_scene(_base(), latent_space=SPACE).latents(range(40))
    walked = morphstudio.load_scene(_base(walks=[{"layers": "fine", "seed": 1}]), latent_space=SPACE).latents(range(40))
    np.testing.assert_array_equal(walked[:, :8], plain[:, :8])
    assert np.abs(walked[:, 8:] - plain[:, 8:]).max() > 0.1


def test_deform_loop_with_amplitude_zero_changes_nothing_and_is_periodic() -> None:
    plain = morphstudio.load_scene(_base(), latent_space=SPACE)
    zero = morphstudio.load_scene(_base(loops=[{"amplitude": 0, "period": 1.7, "layers": "middle"}]),
                                  latent_space=SPACE)
    frames = np.arange(41)
    np.testing.assert_array_equal(zero.latents(frames), plain.latents(frames))
    items = {i.element: i for i in zero.closure()}
    assert items["loops[0]"].max_abs == 0.0 and items["loops[0]"].closed


def test_deform_loops_close_when_the_period_divides_the_scene() -> None:
    scene = morphstudio.load_scene(
        _base(loops=[{"amplitude": 2, "period": 2},
                     {"amplitude": 1, "period": 4, "shape": "circle", "layers": [2, 6]}]),
        latent_space=SPACE)
    closure = _closure(scene)
    assert closure["loops[0]"] < 1e-9 and closure["loops[1]"] < 1e-9 and closure["total"] < 1e-5
    # ... and they do move the latents, on their layers only.
    plain = morphstudio.load_scene(_base(), latent_space=SPACE).latents([5])
    moved = scene.latents([5])
    assert np.abs(moved - plain).max() > 0.1


def test_deform_loop_that_does_not_fit_is_reported_and_fading_closes_it() -> None:
    bad = morphstudio.load_scene(_base(loops=[{"amplitude": 1, "period": 3}]), latent_space=SPACE)
    items = {i.element: i for i in bad.closure()}
    assert not items["loops[0]"].closed and "not a multiple of the loop period" in items["loops[0]"].note
    faded = morphstudio.load_scene(_base(loops=[{"amplitude": 1, "period": 3, "fade_in": 1, "fade_out": 1}]),
                                   latent_space=SPACE)
    assert _closure(faded)["loops[0]"] < 1e-12


def test_loop_amplitude_is_in_latent_standard_deviations() -> None:
    scene = morphstudio.load_scene(_base(loops=[{"amplitude": 2, "period": 4, "phase": 0.25}]), latent_space=SPACE)
    tl = scene.timeline()
    # The unit, estimated here independently: RMS of many mapped latents around w_avg (a few % sampling error).
    ws = SPACE.map_z(np.random.RandomState(0).randn(20000, SPACE.z_dim)).astype(np.float64)
    std = float(np.sqrt(np.mean((ws - SPACE.w_avg.astype(np.float64)) ** 2)))
    assert tl.latent_std == pytest.approx(std, rel=0.05)
    offset = scene.latents([0]).astype(np.float64) - tl.base(np.array([0.0]))
    # sin(2 pi * 0.25) = 1: the offset of each latent is 2 standard deviations long.
    np.testing.assert_allclose(np.linalg.norm(offset[0], axis=-1), 2 * tl.latent_std, rtol=1e-5)


def test_attribute_add_follows_its_strength_keys(direction: Path) -> None:
    spec = _base(attributes={"x": {"direction": str(direction), "layers": "coarse",
                                   "keys": [{"at": 0, "value": 0}, {"at": 1, "value": 2}, {"at": 3, "value": -1}]}})
    scene = morphstudio.load_scene(spec, latent_space=SPACE)
    tl = scene.timeline()
    d = np.load(direction).astype(np.float64)
    d = d / np.linalg.norm(d) * tl.latent_std
    plain = tl.base(np.array([0.0, 1.0, 3.0]))
    ws = scene.latents([0, 10, 30]).astype(np.float64)
    for row, strength in zip(range(3), [0.0, 2.0, -1.0]):
        np.testing.assert_allclose(ws[row, :4], plain[row, :4] + strength * d, atol=1e-5)
        np.testing.assert_allclose(ws[row, 4:], plain[row, 4:], atol=1e-6)
    assert _closure(scene)["attributes.x"] == 0.0


def test_attribute_set_pins_the_projection(direction: Path) -> None:
    scene = morphstudio.load_scene(_base(attributes={"x": {"direction": str(direction), "mode": "set",
                                                           "strength": 1.5}}), latent_space=SPACE)
    tl = scene.timeline()
    unit = np.load(direction).astype(np.float64)
    unit /= np.linalg.norm(unit)
    ws = scene.latents(range(0, 40, 5)).astype(np.float64)
    proj = ((ws - SPACE.w_avg.astype(np.float64)) @ unit)
    np.testing.assert_allclose(proj, 1.5 * tl.latent_std, atol=1e-4)


def test_attribute_closure_is_reported_when_strength_keys_do_not_loop(direction: Path) -> None:
    # In a loop the strength curve is periodic by construction: it always closes.
    keys = [{"at": 0, "value": 0}, {"at": 3, "value": 5}]
    spec = _base(attributes={"x": {"direction": str(direction), "keys": keys}})
    assert _closure(morphstudio.load_scene(spec, latent_space=SPACE))["attributes.x"] == 0.0
    # Without loop: the strength ends at 5, not 0, and the report says so for this track.
    spec["loop"] = False
    items = {i.element: i for i in morphstudio.load_scene(spec, latent_space=SPACE).closure()}
    assert not items["attributes.x"].closed and items["attributes.x"].note == "its strength differs at the end"
    assert items["attributes.x"].max_abs > 1.0


def test_per_group_truncation_and_keys() -> None:
    plain = morphstudio.load_scene(_base(), latent_space=SPACE).latents(range(40)).astype(np.float64)
    w_avg = SPACE.w_avg.astype(np.float64)
    scene = morphstudio.load_scene(_base(truncation={"psi": {"coarse": 0.5, "fine": 0.0}}), latent_space=SPACE)
    ws = scene.latents(range(40)).astype(np.float64)
    np.testing.assert_allclose(ws[:, :4], w_avg + 0.5 * (plain[:, :4] - w_avg), atol=1e-6)
    np.testing.assert_allclose(ws[:, 4:8], plain[:, 4:8], atol=1e-6)
    np.testing.assert_allclose(ws[:, 8:], np.broadcast_to(w_avg, ws[:, 8:].shape), atol=1e-6)
    keyed = morphstudio.load_scene(_base(truncation={"keys": [{"at": 0, "psi": 1}, {"at": 2, "psi": 0.5}]}),
                                   latent_space=SPACE)
    ws = keyed.latents([0, 20]).astype(np.float64)
    np.testing.assert_allclose(ws[0], plain[0], atol=1e-6)
    np.testing.assert_allclose(ws[1], w_avg + 0.5 * (plain[20] - w_avg), atol=1e-6)
    assert _closure(keyed)["truncation"] == 0.0


def test_truncation_shorthand_number() -> None:
    a = morphstudio.load_scene(_base(truncation=0.7), latent_space=SPACE).latents([5])
    b = morphstudio.load_scene(_base(truncation={"psi": 0.7}), latent_space=SPACE).latents([5])
    np.testing.assert_array_equal(a, b)


def test_staggered_groups_reach_the_face_at_their_own_times() -> None:
    spec = _base(output={"fps": 10, "duration": 6},
                 timeline=[{"at": 1, "face": "a"}, {"at": 3, "face": "b", "stagger": {"coarse": -0.5, "fine": 0.5}}])
    scene = morphstudio.load_scene(spec, latent_space=SPACE)
    faces = scene.timeline().face_values
    b = faces["b"].astype(np.float32)
    ws = scene.latents([25, 30, 35])
    np.testing.assert_array_equal(ws[0, :4], b[:4])      # coarse at 2.5 s
    np.testing.assert_array_equal(ws[1, 4:8], b[4:8])    # middle at 3.0 s
    np.testing.assert_array_equal(ws[2, 8:], b[8:])      # fine at 3.5 s
    assert np.abs(ws[0, 8:] - b[8:]).max() > 1e-3        # fine has not arrived at 2.5 s
    assert _closure(scene)["total"] < 1e-6


def test_stagger_that_reorders_keys_is_an_error() -> None:
    spec = _base(timeline=[{"at": 0, "face": "a"}, {"at": 1, "face": "b", "stagger": {"fine": -1.5}}])
    with pytest.raises(SceneError, match=r"timeline\[1\]\.stagger: .*fine layers would reach 'b' at -0.5 s"):
        morphstudio.load_scene(spec, latent_space=SPACE).latents([0])


def test_animated_noise_closure_is_reported() -> None:
    ok = morphstudio.load_scene(_base(noise={"mode": "animated", "period": 2}), latent_space=SPACE)
    assert {i.element: i.closed for i in ok.closure()}["noise"]
    bad = morphstudio.load_scene(_base(noise={"mode": "animated", "period": 3}), latent_space=SPACE)
    item = {i.element: i for i in bad.closure()}["noise"]
    assert not item.closed and "noise.period" in item.note
