"""Direction files in scenes: names vs files, fitted strength units, set vs add, strength 0, and the guard."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

import morphstudio
from morphstudio.edit import directions as dirs
from morphstudio.edit.guard import Guard, typical_distance
from morphstudio.errors import SceneError
from morphstudio.timeline.testing import fake_latent_space

SPACE = fake_latent_space(num_ws=1, w_dim=16, family="dcgan")  # like the built-in model: w = z, w_avg = 0


def _scene(attr: dict, base: Path, **extra: object) -> morphstudio.Scene:
    spec = {"model": "builtin:testmodel", "output": {"fps": 10, "duration": 2},
            "faces": {"a": {"seed": 1}}, "timeline": [{"at": 0, "face": "a"}],
            "attributes": {"smile": attr}, **extra}
    path = base / "scene.yaml"
    import yaml
    path.write_text(yaml.safe_dump(spec))
    return morphstudio.load_scene(path, latent_space=SPACE)


@pytest.fixture()
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MORPHSTUDIO_HOME", str(tmp_path / "home"))
    lib = tmp_path / "home" / "directions" / "testmodel"
    lib.mkdir(parents=True)
    return lib


def _fitted(path: Path, *, scale: float = 2.0, intercept: float = 0.5, semantics: str = "set") -> np.ndarray:
    v = np.zeros(SPACE.w_dim)
    v[3] = 4.0  # any length: only its direction counts
    dirs.save(path, v, {"method": "svm", "label": "smile", "scale": scale, "intercept": intercept,
                        "semantics": semantics})
    return v / 4.0


def _face() -> np.ndarray:
    return SPACE.map_z(np.random.RandomState(1).randn(1, SPACE.z_dim))[0, 0].astype(np.float64)


def test_a_name_finds_the_library_file_and_keyframes_hit_their_strengths(home: Path, tmp_path: Path) -> None:
    n = _fitted(home / "smile.npz")
    scene = _scene({"direction": "smile", "keys": [{"at": 0, "value": 0}, {"at": 1, "value": 1.5}]}, tmp_path)
    ws = scene.latents([0, 10]).astype(np.float64)
    # add: strength s moves s * scale (2.0) latent units along the unit direction; strength 0 changes nothing.
    np.testing.assert_allclose(ws[0, 0], _face(), atol=1e-6)
    np.testing.assert_allclose(ws[1, 0] - _face(), 1.5 * 2.0 * n, atol=1e-5)


def test_set_puts_the_signed_distance_to_the_boundary_at_the_value(home: Path, tmp_path: Path) -> None:
    n = _fitted(home / "smile.npz", scale=2.0, intercept=0.5)
    scene = _scene({"direction": "smile", "mode": "set", "strength": -0.75}, tmp_path)
    w = scene.latents([0, 5])[:, 0].astype(np.float64)
    # signed distance in strength units = (w . n + intercept) / scale
    np.testing.assert_allclose((w @ n + 0.5) / 2.0, [-0.75, -0.75], atol=1e-6)
    d = dirs.load(home / "smile.npz")
    np.testing.assert_allclose(dirs.signed_distance(w, d), -0.75, atol=1e-6)
    # only the component along n moved
    rest = w[0] - (w[0] @ n) * n
    np.testing.assert_allclose(rest, _face() - (_face() @ n) * n, atol=1e-6)


def test_a_bare_file_keeps_latent_std_units(tmp_path: Path, home: Path) -> None:
    v = np.zeros(SPACE.w_dim)
    v[0] = 7.0
    np.save(tmp_path / "bare.npy", v)
    scene = _scene({"direction": "bare.npy", "strength": 1.0}, tmp_path)
    moved = scene.latents([0])[0, 0].astype(np.float64) - _face()
    std = float(np.sqrt(np.mean(SPACE.map_z(np.random.RandomState(20240601).randn(256, 16)).astype(np.float64) ** 2)))
    np.testing.assert_allclose(moved, np.eye(16)[0] * std, atol=1e-5)


def test_a_name_that_is_also_a_file_is_an_error_naming_both(home: Path, tmp_path: Path) -> None:
    _fitted(home / "smile.npz")
    (tmp_path / "smile").write_bytes(b"x")
    with pytest.raises(SceneError, match=r"attributes\.smile\.direction: direction 'smile' is ambiguous: .*"
                       r"library direction .*smile\.npz and the file .*smile"):
        _scene({"direction": "smile"}, tmp_path).latents([0])


def test_an_unknown_name_lists_the_library(home: Path, tmp_path: Path) -> None:
    _fitted(home / "smile.npz")
    with pytest.raises(SceneError, match=r"scene\.yaml:\d+: attributes\.smile\.direction: no direction named "
                       r"'grin' for model 'testmodel' \(library: smile;"):
        _scene({"direction": "grin"}, tmp_path).latents([0])


def test_value_with_separator_or_suffix_is_a_file_else_a_name() -> None:
    assert dirs.is_file_value("d/smile") and dirs.is_file_value("smile.npz") and dirs.is_file_value("x.npy")
    assert not dirs.is_file_value("smile") and not dirs.is_file_value("mouth_open")


def test_provenance_round_trips(tmp_path: Path) -> None:
    dirs.save(tmp_path / "d.npz", np.ones(16), {"method": "ridge", "scale": 1.5, "n_samples": 800,
                                                "semantics": "set"})
    d = dirs.load(tmp_path / "d.npz")
    assert d.provenance["n_samples"] == 800 and d.provenance["format"] == dirs.FORMAT and d.fitted
    assert d.semantics == "set"


def test_guard_warns_once_naming_track_and_time(home: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
                                                ) -> None:
    _fitted(home / "smile.npz", scale=1.0, intercept=0.0)
    typ = typical_distance(SPACE)
    keys = [{"at": 0, "value": 0}, {"at": 1, "value": 10 * typ}]
    with caplog.at_level(logging.WARNING, logger="morphstudio.edit.guard"):
        scene = _scene({"direction": "smile", "keys": keys}, tmp_path)
        scene.latents(range(20))
        scene.latents(range(20))
    msgs = [r.getMessage() for r in caplog.records if "guard:" in r.getMessage()]
    assert len(msgs) == 1 and "attributes.smile" in msgs[0] and " s (limit 2x)" in msgs[0]


def test_guard_clamp_pulls_back_to_the_limit_and_off_does_not(home: Path, tmp_path: Path) -> None:
    _fitted(home / "smile.npz", scale=1.0, intercept=0.0)
    typ = typical_distance(SPACE)
    attr = {"direction": "smile", "strength": 10 * typ}
    w_clamp = _scene(attr, tmp_path, guard="clamp").latents([0]).astype(np.float64)
    w_off = _scene(attr, tmp_path, guard="off").latents([0]).astype(np.float64)
    g = Guard("off", SPACE)
    assert g.distance(w_off)[0] > 5
    assert g.distance(w_clamp)[0] == pytest.approx(2.0, rel=1e-4)
    cos = float(w_clamp.ravel() @ w_off.ravel() / np.linalg.norm(w_clamp) / np.linalg.norm(w_off))
    assert cos == pytest.approx(1.0)  # same way from w_avg (0 here), only shorter


def test_names_come_from_the_library_of_the_model_rendered(home: Path, tmp_path: Path) -> None:
    # --model other: the scene says builtin:testmodel, but `smile` must come from the overriding model's library.
    other = home.parent / "othermodel"
    other.mkdir()
    v = np.zeros(SPACE.w_dim)
    v[5] = 1.0
    dirs.save(other / "smile.npz", v, {"scale": 3.0, "semantics": "add"})
    spec = {"model": "builtin:testmodel", "output": {"fps": 10, "duration": 2}, "faces": {"a": {"seed": 1}},
            "timeline": [{"at": 0, "face": "a"}], "attributes": {"smile": {"direction": "smile", "strength": 1}}}
    scene = morphstudio.load_scene(spec, base_dir=tmp_path, latent_space=SPACE, model="builtin:othermodel")
    np.testing.assert_allclose(scene.latents([0])[0, 0].astype(np.float64) - _face(), 3.0 * v, atol=1e-5)
