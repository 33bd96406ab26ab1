"""The timeline's typed tracks, the one seed derivation, the one latent-statistics function and the one numpy
truncation: each checked against numbers worked out by hand or written as their formula here.
"""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import morphstudio
from morphstudio.latent import sample_latent_stats, truncate
from morphstudio.timeline.seeds import SeedStream, derive_seed, seed_of
from morphstudio.timeline.testing import fake_latent_space
from morphstudio.timeline.tracks import (AttributeTrack, ClosureItem, DeformLoop, PathTrack, TruncationTrack,
                                         WalkTrack)

ROOT = Path(__file__).resolve().parents[1]
SPACE = fake_latent_space()  # 10 latents of 16: coarse 0-3, middle 4-7, fine 8-9


# --- seeds ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("scene_seed, stream, index, expected", [
    (0, SeedStream.WALK, 0, 1000),                # 0 * 7919 + 1000
    (3, SeedStream.WALK, 0, 24757),               # 3 * 7919 + 1000
    (3, SeedStream.WALK, 1, 24758),
    (0, SeedStream.LOOP, 0, 2000),
    (3, SeedStream.LOOP, 2, 25759),               # 3 * 7919 + 2000 + 2
    (2**32 - 1, SeedStream.WALK, 0, 4294960377),  # (2**32 - 7919 + 1000): wraps modulo 2**32
    (2**32 - 1, SeedStream.LOOP, 1, 4294961378),
    (542367, SeedStream.LOOP, 0, 38977),          # 542367 * 7919 + 2000 = 2**32 + 38977: wraps
])
def test_derived_seeds_are_the_documented_numbers(scene_seed: int, stream: SeedStream, index: int,
                                                  expected: int) -> None:
    assert derive_seed(scene_seed, stream, index) == expected


def test_an_own_seed_wins_even_when_it_is_zero() -> None:
    assert seed_of(42, 3, SeedStream.WALK, 0) == 42
    assert seed_of(0, 3, SeedStream.LOOP, 0) == 0  # 0 is a seed, not "no seed"
    assert seed_of(None, 3, SeedStream.LOOP, 0) == 25757


# --- numpy truncation -------------------------------------------------------------------------------------------


def test_truncate_is_the_lerp_toward_w_avg() -> None:
    w = np.array([[2.0, 4.0], [-1.0, 0.0]])
    avg = np.array([1.0, 1.0])
    np.testing.assert_array_equal(truncate(w, avg, 0.5), [[1.5, 2.5], [0.0, 0.5]])
    np.testing.assert_array_equal(truncate(w, avg, 0.0), [[1.0, 1.0], [1.0, 1.0]])
    psi = np.array([[0.5], [2.0]])  # per row
    np.testing.assert_array_equal(truncate(w, avg, psi), [[1.5, 2.5], [-3.0, -1.0]])
    np.testing.assert_array_equal(w, [[2.0, 4.0], [-1.0, 0.0]])  # not in place unless asked


def test_truncate_in_place_and_its_identities() -> None:
    w = np.array([[2.0, 4.0]])
    assert truncate(w, np.zeros(2), 1) is w and truncate(w, np.zeros(2), None) is w
    out = truncate(w, np.array([1.0, 1.0]), 0.5, in_place=True)
    assert out is w
    np.testing.assert_array_equal(w, [[1.5, 2.5]])
    # A keyed psi of 1 is applied like any other (the result is w to within rounding).
    np.testing.assert_allclose(truncate(np.array([[0.3]]), np.array([0.1]), np.array([[1.0]])), [[0.3]])


# --- latent statistics ------------------------------------------------------------------------------------------


def test_sample_latent_stats_of_known_samples() -> None:
    calls: list[tuple[int, int]] = []

    def sample(n: int, seed: int) -> np.ndarray:
        calls.append((n, seed))
        return np.array([[1.0, 2.0], [3.0, 6.0]])

    around_zero = sample_latent_stats(sample, samples=2, seed=9, center=np.zeros(2))
    assert calls == [(2, 9)]
    np.testing.assert_array_equal(around_zero.mean, [2.0, 4.0])
    np.testing.assert_allclose(around_zero.spread, [math.sqrt(5), math.sqrt(20)])  # sqrt((1+9)/2), sqrt((4+36)/2)
    assert around_zero.rms == pytest.approx(math.sqrt(12.5))                       # sqrt((1+4+9+36)/4)
    assert around_zero.typical_distance == pytest.approx((math.sqrt(5) + math.sqrt(45)) / 2)
    around_mean = sample_latent_stats(sample, samples=2, seed=9)
    np.testing.assert_array_equal(around_mean.center, [2.0, 4.0])
    np.testing.assert_allclose(around_mean.spread, [1.0, 2.0])
    assert around_mean.rms == pytest.approx(math.sqrt(2.5))
    assert around_mean.typical_distance == pytest.approx(math.sqrt(5))


def test_latent_space_samples_with_nvidias_seed_convention() -> None:
    ws = SPACE.sample_ws(3, 7)
    z = np.random.RandomState(7).randn(3, SPACE.z_dim)
    assert ws.shape == (3, SPACE.num_ws, SPACE.w_dim) and ws.dtype == np.float64
    np.testing.assert_array_equal(ws, np.asarray(SPACE.map_z(z), dtype=np.float64))


def test_the_timelines_unit_is_the_rms_of_256_latents_of_seed_20240601() -> None:
    scene = morphstudio.load_scene({"output": {"duration": 1}, "faces": {"a": {"seed": 1}},
                                    "timeline": [{"at": 0, "face": "a"}], "loops": [{"amplitude": 1}]},
                                   latent_space=SPACE)
    ws = np.asarray(SPACE.map_z(np.random.RandomState(20240601).randn(256, SPACE.z_dim)), dtype=np.float64)
    expected = np.sqrt(np.mean((ws - SPACE.w_avg.astype(np.float64)) ** 2))
    assert scene.timeline().latent_std == expected


def _tiny_generator() -> object:
    from morphstudio.generators.stylegan2 import StyleGAN2Generator
    from tests.tiny import tiny_stylegan2

    init_kwargs, state = tiny_stylegan2(resolution=16)
    return StyleGAN2Generator.from_state(init_kwargs, state, source="tiny").requires_grad_(False)


def test_projector_statistics_are_bit_for_bit_its_formula() -> None:
    from morphstudio.faces.project import latent_stats

    gen = _tiny_generator()
    w_avg, w_std, typical = latent_stats(gen, samples=300, seed=5)
    # The projector's formulas, written out: 300 z from torch seed 5, the first latent of each.
    z = torch.randn(300, gen.z_dim, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        d = gen.mapping(z, gen.default_c(300))[:, 0].float() - gen.w_avg.float()
    assert torch.equal(w_avg, gen.w_avg.float())
    assert torch.equal(w_std, d.pow(2).mean(0).sqrt().clamp_min(1e-6))
    assert typical == float(d.norm(dim=1).mean())
    assert latent_stats(gen, samples=300, seed=6)[2] != typical  # the seed is used


def test_rosinality_w_avg_estimate_is_the_mean_of_mapped_seeded_z() -> None:
    from morphstudio.generators.checkpoints.rosinality import estimate_w_avg
    from tests.tiny import tiny_stylegan2

    init_kwargs, state = tiny_stylegan2(resolution=16)
    gen = _tiny_generator()
    z = torch.randn([200, gen.z_dim], generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        expected = gen.mapping(z, None)[:, 0].mean(dim=0)
    got = estimate_w_avg(state, init_kwargs, samples=200, seed=3)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-6)
    assert not torch.allclose(estimate_w_avg(state, init_kwargs, samples=200, seed=4), expected, atol=1e-6)


# --- the tracks ---------------------------------------------------------------------------------------------------


def _scene(tmp_path: Path, **extra: object) -> morphstudio.Scene:
    np.save(tmp_path / "d.npy", np.eye(SPACE.w_dim)[0].astype(np.float32) * 3)  # along the first axis, length 3
    spec: dict = {"seed": 3, "loop": True, "output": {"fps": 10, "duration": 4},
                  "faces": {"a": {"seed": 1}, "b": {"seed": 2}},
                  "timeline": [{"at": 0, "face": "a"}, {"at": 2, "face": "b"}]}
    spec.update(extra)
    return morphstudio.load_scene(spec, latent_space=SPACE, base_dir=tmp_path)


def test_tracks_are_composed_in_the_documented_order(tmp_path: Path) -> None:
    scene = _scene(tmp_path, walks=[{"faces": 4, "mode": "add", "strength": 0.5}], loops=[{"amplitude": 1}],
                   attributes={"x": {"direction": "d.npy", "strength": 1}}, truncation=0.7)
    tl = scene.timeline()
    assert [type(t) for t in tl.tracks] == [PathTrack, WalkTrack, DeformLoop, AttributeTrack, TruncationTrack]
    t = np.array([0.0, 0.7, 3.1])
    by_hand = np.broadcast_to(tl.w_avg, (3, SPACE.num_ws, SPACE.w_dim)).copy()
    for track in tl.tracks:
        by_hand = track.apply(by_hand, t)
    np.testing.assert_array_equal(scene.latents([0, 7, 31]), by_hand.astype(np.float32))
    names = [item.element for item in scene.closure()]
    assert names == ["timeline", "walks[0]", "loops[0]", "attributes.x", "truncation", "total"]


def test_a_scene_without_keyframes_or_truncation_has_no_such_tracks() -> None:
    spec = {"output": {"duration": 2}, "walks": [{"faces": 3, "seed": 4}], "loops": [{"amplitude": 0}]}
    tl = morphstudio.load_scene(spec, latent_space=SPACE).timeline()
    assert tl.path is None and tl.truncation is None
    assert [type(t) for t in tl.tracks] == [WalkTrack, DeformLoop]
    # The walk replaces every latent: at t = 0 it is its first face, whatever w_avg was.
    first = np.asarray(SPACE.map_z(np.random.RandomState(4).randn(3, SPACE.z_dim)), dtype=np.float64)[0]
    np.testing.assert_allclose(tl.base(np.array([0.0]))[0], first)


def test_walk_add_moves_around_the_walks_own_centre(tmp_path: Path) -> None:
    tl = _scene(tmp_path, walks=[{"faces": 4, "mode": "add", "strength": 0.5, "seed": 11}]).timeline()
    walk = tl.walks[0]
    faces = np.asarray(SPACE.map_z(np.random.RandomState(11).randn(4, SPACE.z_dim)), dtype=np.float64)
    np.testing.assert_allclose(walk.center, faces.mean(0))
    t = np.array([1.0])  # the walk's second face (4 faces over the 4 s loop), a key of the path's curve too
    plain = tl.path.values(t)
    got = walk.apply(plain.copy(), t)
    np.testing.assert_allclose(got, plain + 0.5 * (faces[1] - faces.mean(0))[None], atol=1e-12)


def test_deform_loop_track_is_its_formula(tmp_path: Path) -> None:
    tl = _scene(tmp_path, loops=[{"amplitude": 2, "period": 2, "phase": 0.1, "shape": "sine",
                                  "layers": "middle", "fade_in": 1}]).timeline()
    loop = tl.loops[0]
    assert list(loop.rows) == [4, 5, 6, 7]
    t = np.array([0.25, 0.5, 1.5])
    u = np.clip(t / 1.0, 0, 1)
    env = 3 * u**2 - 2 * u**3
    expected = (2 * tl.latent_std * env * np.sin(2 * np.pi * (t / 2 + 0.1)))[:, None, None] * loop.d1[None]
    np.testing.assert_allclose(loop.offset(t), expected, atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(loop.d1, axis=-1), 1.0)
    w = np.zeros((3, SPACE.num_ws, SPACE.w_dim))
    loop.apply(w, t)
    assert not w[:, :4].any() and not w[:, 8:].any()  # only its layers move
    # Faded in from 0 at the start, full at the end: not closed. Without the fade a 2 s period divides the 4 s
    # scene: closed; a 3 s one does not, and the note says why.
    assert not loop.closure(0.0, 4.0)[0].closed
    assert _scene(tmp_path, loops=[{"amplitude": 2, "period": 2}]).timeline().loops[0].closure(0.0, 4.0)[0].closed
    odd = _scene(tmp_path, loops=[{"amplitude": 2, "period": 3}]).timeline().loops[0]
    item = odd.closure(0.0, 4.0)[0]
    assert not item.closed and "not a multiple of the loop period (3 s)" in item.note


def test_attribute_track_adds_then_sets_its_strength(tmp_path: Path) -> None:
    keys = [{"at": 0, "value": 0}, {"at": 2, "value": 2}]
    add = _scene(tmp_path, attributes={"x": {"direction": "d.npy", "keys": keys, "normalize": False}})
    track = add.timeline().attributes[0]
    np.testing.assert_allclose(track.strengths(np.array([0.0, 2.0])), [0.0, 2.0])
    w = np.zeros((1, SPACE.num_ws, SPACE.w_dim))
    track.apply(w, np.array([2.0]))
    np.testing.assert_allclose(w[0, :, 0], 6.0)  # strength 2 times the direction's length 3
    assert not w[0, :, 1:].any()
    # Strength 2 at 2 s and 0 at the loop's end: not closed, by 2 x the direction's largest element.
    item = track.closure(2.0, 4.0)[0]
    assert item == ClosureItem("attributes.x", 6.0, False, "its strength differs at the end")
    setter = _scene(tmp_path, attributes={"x": {"direction": "d.npy", "mode": "set", "strength": 0.5,
                                                "normalize": False}}).timeline().attributes[0]
    w = np.full((1, SPACE.num_ws, SPACE.w_dim), 10.0)
    setter.apply(w, np.array([0.0]))
    # The component along the direction, from w_avg, is now 0.5 x 3; the rest is untouched.
    np.testing.assert_allclose(w[0, :, 0] - SPACE.w_avg[0], 1.5, atol=1e-6)
    np.testing.assert_array_equal(w[0, :, 1:], 10.0)


def test_truncation_track_per_group_keys(tmp_path: Path) -> None:
    keys = [{"at": 0, "psi": {"coarse": 0.5, "middle": 1, "fine": 1}}, {"at": 2, "psi": 1}]
    tr = _scene(tmp_path, truncation={"keys": keys, "interp": "linear"}).timeline().truncation
    psi = tr.psi(np.array([0.0, 1.0, 2.0]))
    np.testing.assert_allclose(psi[:, 0], [0.5, 0.75, 1.0])  # coarse: linear from 0.5 to 1
    np.testing.assert_allclose(psi[:, 9], [1.0, 1.0, 1.0])   # fine
    w = np.ones((1, SPACE.num_ws, SPACE.w_dim))
    tr.apply(w, np.array([0.0]))
    avg = SPACE.w_avg.astype(np.float64)
    np.testing.assert_allclose(w[0, 0], avg + 0.5 * (1 - avg))
    np.testing.assert_allclose(w[0, 9], 1.0)
    item = tr.closure(1.0, 4.0)[0]  # psi 0.75 at 1 s, 0.5 at the loop's end (it wraps to the first key)
    assert item.element == "truncation" and not item.closed and item.max_abs == pytest.approx(0.25)
    assert _scene(tmp_path, truncation=1).timeline().truncation is None


def test_path_track_closure_when_the_scene_does_not_loop(tmp_path: Path) -> None:
    path = _scene(tmp_path, loop=False).timeline().path
    item = path.closure(0.0, 4.0)[0]
    a, b = (np.asarray(SPACE.map_z(np.random.RandomState(s).randn(1, SPACE.z_dim)), dtype=np.float64)[0]
            for s in (1, 2))
    assert not item.closed and item.max_abs == pytest.approx(np.abs(b - a).max())
    assert "does not return to its first face" in item.note
    # At a keyframe every latent is the key's face, whatever came before (w_avg here, which is not 0).
    np.testing.assert_array_equal(path.apply(np.ones((1, SPACE.num_ws, SPACE.w_dim)), np.array([2.0]))[0], b)
    assert _scene(tmp_path).timeline().path.closure(0.0, 4.0)[0].closed


# --- no torch -----------------------------------------------------------------------------------------------------


def test_scene_timeline_tracks_and_latent_never_import_torch() -> None:
    code = ("import sys; import morphstudio.latent, morphstudio.scene, morphstudio.scene.validate, "
            "morphstudio.timeline, morphstudio.timeline.tracks, morphstudio.timeline.seeds, "
            "morphstudio.timeline.timeline; print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "False"

