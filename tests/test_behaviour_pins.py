"""Behaviour a user would notice, pinned with values from outside the code: derived seeds as literal numbers, walk
centring, the loop-closure report (its "not closed" branches, named), and the seed convention of faces.

Derived seeds are documented as ``(scene seed * 7919 + 1000 + i) mod 2**32`` for walk ``i`` and
``(scene seed * 7919 + 2000 + i) mod 2**32`` for deform loop ``i``; the numbers below were worked out by hand
from that rule (e.g. 3 * 7919 + 1000 = 24757), so a change of convention (a renamed scheme that forgets ``+ i``,
another multiplier) changes every scene's random faces and fails here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import morphstudio
from morphstudio.cli import main
from morphstudio.latent import LatentSpace
from morphstudio.timeline import ClosureItem

W_DIM = 8
NUM_WS = 4


def _identity_space() -> LatentSpace:
    """w = z on every layer, w_avg = 0: a walk's faces are the seed's normal draws themselves."""

    def map_z(z: np.ndarray, psi: float = 1.0, cutoff: int | None = None) -> np.ndarray:
        w = psi * np.asarray(z, dtype=np.float64)
        return np.repeat(w[:, None], NUM_WS, axis=1).astype(np.float32)

    return LatentSpace(family="stylegan2", z_dim=W_DIM, w_dim=W_DIM, num_ws=NUM_WS,
                       w_avg=np.zeros(W_DIM, np.float32), resolutions=(4, 8, 32, 64), map_z=map_z)


SPACE = _identity_space()


@pytest.fixture()
def zero(tmp_path: Path) -> Path:
    np.save(tmp_path / "zero.npy", np.zeros(W_DIM, np.float32))
    return tmp_path


def _draws(seed: int, n: int) -> np.ndarray:
    """``n`` z vectors of NVIDIA's convention for ``seed``: ``RandomState(seed).randn(n, z_dim)``."""
    return np.random.RandomState(seed).randn(n, W_DIM)


def _unit(a: np.ndarray) -> np.ndarray:
    return a / np.linalg.norm(a, axis=-1, keepdims=True)


# --- derived seeds ----------------------------------------------------------------------------------------------


def _walk_scene(scene_seed: int, walks: list[dict]) -> morphstudio.Scene:
    spec = {"seed": scene_seed, "loop": True, "output": {"fps": 4, "duration": 4}, "walks": walks}
    return morphstudio.load_scene(spec, latent_space=SPACE)


@pytest.mark.parametrize(
    "scene_seed, index, derived",
    [
        (0, 0, 1000),                 # 0 * 7919 + 1000 + 0
        (3, 0, 24757),                # 3 * 7919 + 1000
        (3, 1, 24758),                # ... + 1 for the second walk
        (2**32 - 1, 0, 4294960377),   # (-1 * 7919 + 1000) mod 2**32
    ],
)
def test_walk_seed_derived_from_the_scene_seed(scene_seed: int, index: int, derived: int) -> None:
    # Walk `index` over all layers replaces the path; at t = 0 it is exactly its first face.
    walks = [{"faces": 4, "seed": 99, "layers": [0, 2]}] * index + [{"faces": 4}]
    ws = _walk_scene(scene_seed, walks).latents([0, 4])
    np.testing.assert_array_equal(ws[0, NUM_WS - 1], _draws(derived, 4)[0].astype(np.float32))
    np.testing.assert_array_equal(ws[1, NUM_WS - 1], _draws(derived, 4)[1].astype(np.float32))  # t = 1 s


def test_walk_with_its_own_seed_and_psi() -> None:
    ws = _walk_scene(3, [{"faces": 2, "seed": 42, "psi": 0.5}]).latents([0, 8])
    np.testing.assert_allclose(ws[:, 0], 0.5 * _draws(42, 2), rtol=1e-6)


def test_random_walk_faces_every_step() -> None:
    spec = {"seed": 3, "output": {"fps": 4, "duration": 3}, "walks": [{"kind": "random", "step": 1.5}]}
    ws = morphstudio.load_scene(spec, latent_space=SPACE).latents([0, 6, 12])
    # ceil(3 / 1.5) + 2 = 4 faces from seed 24757, one every 1.5 s.
    np.testing.assert_allclose(ws[:, 0], _draws(24757, 4)[:3], rtol=1e-6)


def _loop_scene(zero: Path, scene_seed: int, loops: list[dict]) -> morphstudio.Scene:
    spec = {"seed": scene_seed, "output": {"fps": 4, "duration": 4}, "faces": {"z": {"latent": "zero.npy"}},
            "timeline": [{"at": 0, "face": "z"}], "loops": loops}
    return morphstudio.load_scene(spec, latent_space=SPACE, base_dir=zero)


@pytest.mark.parametrize(
    "scene_seed, index, derived",
    [(0, 0, 2000), (3, 0, 25757), (3, 1, 25758), (3, 2, 25759), (2**32 - 1, 1, 4294961378)],
)
def test_deform_loop_direction_derived_from_the_scene_seed(zero: Path, scene_seed: int, index: int,
                                                           derived: int) -> None:
    # Loops before `index` have amplitude 0 (no effect), so the latent at t = 0 is loop `index` alone:
    # phase 0.25 puts it at sin(pi / 2) = 1 times its first direction, RandomState(derived).randn(num_ws, w_dim)
    # normalised per layer.
    loops = [{"amplitude": 0}] * index + [{"amplitude": 1, "phase": 0.25}]
    ws = _loop_scene(zero, scene_seed, loops).latents([0]).astype(np.float64)
    d1 = _unit(np.random.RandomState(derived).randn(NUM_WS, W_DIM))
    np.testing.assert_allclose(_unit(ws[0]), d1, atol=1e-6)


def test_two_unseeded_loops_move_along_different_directions(zero: Path) -> None:
    one = _loop_scene(zero, 5, [{"amplitude": 1, "phase": 0.25}]).latents([0])[0]
    two = _loop_scene(zero, 5, [{"amplitude": 0}, {"amplitude": 1, "phase": 0.25}]).latents([0])[0]
    cos = np.sum(_unit(one.astype(np.float64)) * _unit(two.astype(np.float64)), axis=-1)
    assert np.all(np.abs(cos) < 0.99), cos


def test_deform_loop_with_its_own_seed(zero: Path) -> None:
    ws = _loop_scene(zero, 3, [{"amplitude": 1, "phase": 0.25, "seed": 42}]).latents([0]).astype(np.float64)
    np.testing.assert_allclose(_unit(ws[0]), _unit(np.random.RandomState(42).randn(NUM_WS, W_DIM)), atol=1e-6)


def test_circle_loop_second_axis_from_the_same_seed(zero: Path) -> None:
    # circle at phase 0.25 = sin along d2: the second draw of RandomState(42), made orthogonal to d1 per layer.
    ws = _loop_scene(zero, 3, [{"amplitude": 1, "phase": 0.25, "seed": 42, "shape": "circle"}]).latents([0])
    rng = np.random.RandomState(42)
    d1 = _unit(rng.randn(NUM_WS, W_DIM))
    r2 = rng.randn(NUM_WS, W_DIM)
    d2 = _unit(r2 - np.sum(r2 * d1, axis=-1, keepdims=True) * d1)
    np.testing.assert_allclose(_unit(ws[0].astype(np.float64)), d2, atol=1e-5)


def test_face_seed_is_nvidias_convention() -> None:
    # A seed face's z is RandomState(seed).randn(z_dim) (seed 42 here is seed 42 in NVIDIA's gen_images.py).
    spec = {"output": {"duration": 1}, "faces": {"a": {"seed": 42}, "b": {"seed": 7, "psi": 0.5}},
            "timeline": [{"at": 0, "face": "a"}, {"at": 0.5, "face": "b"}]}
    ws = morphstudio.load_scene(spec, latent_space=SPACE).latents([0, 15])
    np.testing.assert_array_equal(ws[0, 0], np.random.RandomState(42).randn(W_DIM).astype(np.float32))
    np.testing.assert_allclose(ws[1, 0], 0.5 * np.random.RandomState(7).randn(W_DIM), rtol=1e-6)


# --- walks: add mode moves around the path, centred -------------------------------------------------------------


def test_walk_in_add_mode_adds_its_motion_around_its_centre(zero: Path) -> None:
    # mode add: latent = path + strength * (walk(t) - mean of the walk's faces). The path is 0 here, so at the
    # face times the latent is strength * (face_k - mean): the faces' offsets, which sum to zero.
    spec = {"loop": True, "output": {"fps": 4, "duration": 4}, "faces": {"z": {"latent": "zero.npy"}},
            "timeline": [{"at": 0, "face": "z"}],
            "walks": [{"faces": 4, "seed": 7, "mode": "add", "strength": 0.5}]}
    ws = morphstudio.load_scene(spec, latent_space=SPACE, base_dir=zero).latents([0, 4, 8, 12]).astype(np.float64)
    faces = _draws(7, 4)
    expected = 0.5 * (faces - faces.mean(axis=0))
    np.testing.assert_allclose(ws[:, 2], expected, atol=1e-6)
    np.testing.assert_allclose(ws.sum(axis=0), 0.0, atol=1e-5)


def test_walk_replace_with_partial_strength_blends_toward_the_walk(zero: Path) -> None:
    spec = {"loop": True, "output": {"fps": 4, "duration": 4}, "faces": {"z": {"latent": "zero.npy"}},
            "timeline": [{"at": 0, "face": "z"}], "walks": [{"faces": 2, "seed": 7, "strength": 0.25}]}
    ws = morphstudio.load_scene(spec, latent_space=SPACE, base_dir=zero).latents([0, 8])
    np.testing.assert_allclose(ws[:, 1], 0.25 * _draws(7, 2), rtol=1e-6)


# --- the loop-closure report: the "not closed" branches, with the element named ---------------------------------


def _closure(spec: dict, base: Path) -> dict[str, ClosureItem]:
    return {i.element: i for i in morphstudio.load_scene(spec, latent_space=SPACE, base_dir=base).closure()}


def test_closure_reports_each_element_that_does_not_close(zero: Path) -> None:
    np.save(zero / "d.npy", np.ones(W_DIM, np.float32))
    spec = {
        "output": {"fps": 4, "duration": 4}, "faces": {"z": {"latent": "zero.npy"}, "a": {"seed": 1}},
        "timeline": [{"at": 0, "face": "z"}, {"at": 2, "face": "a"}],
        "walks": [{"kind": "random", "mode": "add"}],
        "loops": [{"amplitude": 1, "period": 3}],
        "attributes": {"x": {"direction": "d.npy", "keys": [{"at": 0, "value": 0}, {"at": 3, "value": 2}]}},
        "truncation": {"keys": [{"at": 0, "psi": 1}, {"at": 3, "psi": 0.5}]},
        "noise": {"mode": "random"},
    }
    items = _closure(spec, zero)
    notes = {
        "timeline": "the timeline does not return to its first face (set loop: true)",
        "walks[0]": "a random walk does not loop (use kind: loop)",
        "loops[0]": "the scene lasts 4 s, not a multiple of the loop period (3 s), and the loop does not fade out",
        "attributes.x": "its strength differs at the end",
        "truncation": "psi differs at the end",
        "noise": "noise mode random changes every frame",
        "total": "the last frame does not lead back into the first",
    }
    for element, note in notes.items():
        assert not items[element].closed, element
        assert items[element].note == note
    assert items["truncation"].max_abs == pytest.approx(0.5)
    assert items["timeline"].max_abs > 0.1


def test_closure_of_a_closing_loop_is_reported_closed_with_no_note(zero: Path) -> None:
    spec = {"loop": True, "output": {"fps": 4, "duration": 4}, "faces": {"z": {"latent": "zero.npy"}},
            "timeline": [{"at": 0, "face": "z"}], "loops": [{"amplitude": 1, "period": 2}],
            "noise": {"mode": "animated", "period": 4}}
    items = _closure(spec, zero)
    assert set(items) == {"timeline", "loops[0]", "noise", "total"}
    assert all(i.closed and i.note == "" for i in items.values()), items


def test_validate_cli_names_the_element_that_does_not_close(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("model: builtin:dcgan-faces64\nloop: true\noutput: {fps: 10, duration: 4}\n"
                    "faces: {a: {seed: 1}, b: {seed: 2}}\ntimeline: [{at: 0, face: a}, {at: 2, face: b}]\n"
                    "loops: [{amplitude: 1, period: 3}]\n")
    assert main(["validate", str(path)]) == 2
    captured = capsys.readouterr()
    assert "loops[0]" in captured.out and "NOT closed" in captured.out
    assert captured.err.startswith(f"error: {path}:2: loop: the scene is marked loop: true but does not close: "
                                   "loops[0] (the scene lasts 4 s, not a multiple of the loop period (3 s)")
    path.write_text(path.read_text().replace("period: 3", "period: 2"))
    assert main(["validate", str(path)]) == 0
    out = capsys.readouterr().out
    assert "NOT closed" not in out and "ok: " in out


# --- the unit of amplitudes: the documented latent sample ----------------------------------------------------------


def test_loop_amplitude_unit_is_the_rms_of_the_documented_latent_sample(zero: Path) -> None:
    # One standard deviation = RMS of 256 mapped latents from RandomState(20240601) around w_avg; with w = z
    # that is the RMS of those draws. A change of sample size or seed changes every loop and attribute.
    std = float(np.sqrt(np.mean(np.random.RandomState(20240601).randn(256, W_DIM) ** 2)))
    ws = _loop_scene(zero, 3, [{"amplitude": 2, "phase": 0.25}]).latents([0]).astype(np.float64)
    np.testing.assert_allclose(np.linalg.norm(ws[0], axis=-1), 2 * std, rtol=1e-6)


def test_a_model_whose_latents_do_not_vary_uses_unit_amplitudes(zero: Path) -> None:
    # A degenerate mapping (every z gives w_avg) has no spread to measure: amplitudes fall back to latent units.
    flat = LatentSpace(family="stylegan2", z_dim=W_DIM, w_dim=W_DIM, num_ws=NUM_WS, w_avg=np.zeros(W_DIM, np.float32),
                       resolutions=(4, 8, 32, 64),
                       map_z=lambda z, psi=1.0, cutoff=None: np.zeros((len(z), NUM_WS, W_DIM), np.float32))
    spec = {"output": {"fps": 4, "duration": 4}, "faces": {"z": {"latent": "zero.npy"}},
            "timeline": [{"at": 0, "face": "z"}], "loops": [{"amplitude": 2, "phase": 0.25}]}
    ws = morphstudio.load_scene(spec, latent_space=flat, base_dir=zero).latents([0]).astype(np.float64)
    np.testing.assert_allclose(np.linalg.norm(ws[0], axis=-1), 2.0, rtol=1e-6)


def test_constant_attribute_keys_in_a_loop(zero: Path) -> None:
    # One key and its explicit closing copy: a constant strength of 1 along the (unit, unnormalised) direction.
    d = np.zeros(W_DIM, np.float32)
    d[1] = 1.0
    np.save(zero / "e1.npy", d)
    spec = {"loop": True, "output": {"fps": 4, "duration": 4}, "faces": {"z": {"latent": "zero.npy"}},
            "timeline": [{"at": 0, "face": "z"}],
            "attributes": {"x": {"direction": "e1.npy", "normalize": False,
                                 "keys": [{"at": 0, "value": 1}, {"at": 4, "value": 1}]}}}
    ws = morphstudio.load_scene(spec, latent_space=SPACE, base_dir=zero).latents(range(16))
    np.testing.assert_array_equal(ws, np.broadcast_to(d, ws.shape))
