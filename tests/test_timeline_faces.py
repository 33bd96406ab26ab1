"""Faces: seeds, latent files, image faces (injected projector) and face math, exactly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import morphstudio
from morphstudio.errors import SceneError
from morphstudio.timeline.testing import fake_latent_space

SPACE = fake_latent_space()


def _faces(faces: dict, tmp_path: Path | None = None, space=SPACE, **kw) -> dict[str, np.ndarray]:
    first = next(iter(faces))
    spec = {"output": {"duration": 1, "fps": 10}, "faces": faces, "timeline": [{"at": 0, "face": first}]}
    scene = morphstudio.load_scene(spec, latent_space=space, base_dir=tmp_path, **kw)
    return scene.timeline().face_values


def test_seed_faces_use_nvidia_seeds_and_psi() -> None:
    f = _faces({"a": {"seed": 5}, "b": {"seed": 5, "psi": 0.5}})
    # NVIDIA's convention, written out: the z of seed 5 is RandomState(5).randn(z_dim) (not z_from_seed itself).
    z = np.random.RandomState(5).randn(SPACE.z_dim)[None]
    np.testing.assert_array_equal(f["a"], SPACE.map_z(z)[0].astype(np.float64))
    np.testing.assert_array_equal(f["b"], SPACE.map_z(z, psi=0.5)[0].astype(np.float64))


def test_face_math_is_exact() -> None:
    f = _faces({
        "a": {"seed": 1}, "b": {"seed": 2}, "c": {"seed": 3},
        "avg": {"average": ["a", "b", "c"]},
        "wavg": {"average": {"a": 3, "b": 1}},
        "bl": {"blend": ["a", "b"], "t": 0.25},
        "an": {"analogy": {"a": "a", "b": "b", "c": "c"}},
        "an2": {"analogy": {"a": "a", "b": "b", "c": "c", "strength": 0.5}},
        "mx": {"mix": [{"face": "a"}, {"face": "b", "layers": "coarse"}, {"face": "c", "layers": [8, 10]}]},
        "nested": {"average": ["avg", "an"], "psi": 0.5},
    })
    a, b, c = f["a"], f["b"], f["c"]
    np.testing.assert_allclose(f["avg"], (a + b + c) / 3, rtol=0, atol=1e-12)
    np.testing.assert_allclose(f["wavg"], 0.75 * a + 0.25 * b, rtol=0, atol=1e-12)
    np.testing.assert_allclose(f["bl"], 0.75 * a + 0.25 * b, rtol=0, atol=1e-12)
    np.testing.assert_allclose(f["an"], c + b - a, rtol=0, atol=1e-12)
    np.testing.assert_allclose(f["an2"], c + 0.5 * (b - a), rtol=0, atol=1e-12)
    np.testing.assert_array_equal(f["mx"][:4], b[:4])
    np.testing.assert_array_equal(f["mx"][4:8], a[4:8])
    np.testing.assert_array_equal(f["mx"][8:], c[8:])
    w_avg = SPACE.w_avg.astype(np.float64)
    np.testing.assert_allclose(f["nested"], w_avg + 0.5 * ((f["avg"] + f["an"]) / 2 - w_avg), atol=1e-12)


def test_mix_must_cover_every_layer() -> None:
    with pytest.raises(SceneError, match=r"faces\.m\.mix: layers \[4, 5, 6, 7, 8, 9\] come from no face"):
        _faces({"a": {"seed": 1}, "m": {"mix": [{"face": "a", "layers": "coarse"}]}})


@pytest.mark.parametrize(
    "array, options",
    [
        (lambda w, wp, z: w, {}),                                  # W [w_dim]
        (lambda w, wp, z: wp, {}),                                 # W+ [num_ws, w_dim]
        (lambda w, wp, z: wp[None], {}),                           # [1, num_ws, w_dim]
        (lambda w, wp, z: np.stack([wp * 0, wp]), {"index": 1}),   # a batch, row 1
        (lambda w, wp, z: z, {"space": "z"}),                      # z [z_dim]
    ],
    ids=["w", "wplus", "wplus-batch1", "batch-index", "z"],
)
def test_latent_files(tmp_path: Path, array, options: dict) -> None:
    rng = np.random.default_rng(0)
    w = rng.normal(size=SPACE.w_dim).astype(np.float32)
    wp = rng.normal(size=(SPACE.num_ws, SPACE.w_dim)).astype(np.float32)
    z = rng.normal(size=SPACE.z_dim).astype(np.float32)
    np.save(tmp_path / "lat.npy", array(w, wp, z))
    got = _faces({"f": {"latent": "lat.npy", **options}}, tmp_path)["f"]
    expected = {"w": np.tile(w, (SPACE.num_ws, 1)), "z": SPACE.map_z(z[None])[0]}.get(
        "z" if options.get("space") == "z" else ("w" if array(w, wp, z).ndim == 1 else "wp"), wp)
    np.testing.assert_array_equal(got, np.asarray(expected, dtype=np.float64))


def test_npz_key(tmp_path: Path) -> None:
    wp = np.random.default_rng(1).normal(size=(SPACE.num_ws, SPACE.w_dim)).astype(np.float32)
    np.savez(tmp_path / "lat.npz", other=np.zeros(3), ws=wp)
    np.testing.assert_array_equal(_faces({"f": {"latent": "lat.npz", "key": "ws"}}, tmp_path)["f"], wp)
    np.testing.assert_array_equal(_faces({"f": {"latent": "lat.npz"}}, tmp_path)["f"], wp)  # 'ws' by name
    with pytest.raises(SceneError, match=r"faces\.f\.key: 'lat.npz' has no array 'nope' \(it holds: other, ws\)"):
        _faces({"f": {"latent": "lat.npz", "key": "nope"}}, tmp_path)


@pytest.mark.parametrize(
    "shape, message",
    [
        ((7,), r"has shape \[7\]; expected W \[16\], W\+ \[10, 16\] or z \[16\]"),
        ((3, 16), r"holds 3 latents \[3, 16\]: pick one with index:"),
        ((2, 10, 7), r"holds 2 latents"),
        ((4, 4, 4, 4), r"has shape \[4, 4, 4, 4\]"),
    ],
)
def test_latent_file_of_the_wrong_shape(tmp_path: Path, shape: tuple, message: str) -> None:
    np.save(tmp_path / "bad.npy", np.zeros(shape, np.float32))
    (tmp_path / "scene.yaml").write_text(
        "output: {duration: 1}\nfaces:\n  f:\n    latent: bad.npy\ntimeline:\n  - {at: 0, face: f}\n")
    scene = morphstudio.load_scene(tmp_path / "scene.yaml", latent_space=SPACE)
    with pytest.raises(SceneError, match=r"scene\.yaml:4: faces\.f\.latent: .*" + message):
        scene.latents([0])


def test_image_faces_use_the_injected_projector(tmp_path: Path) -> None:
    (tmp_path / "me.png").write_bytes(b"not really a png")
    seen = []
    wp = np.full((SPACE.num_ws, SPACE.w_dim), 0.25, np.float32)

    def project(path: Path, options: dict) -> np.ndarray:
        seen.append((path, options))
        return wp

    f = _faces({"me": {"image": "me.png", "steps": 12, "align": False, "face_index": 1}}, tmp_path,
               project_image=project)
    np.testing.assert_array_equal(f["me"], wp)
    assert seen == [(tmp_path / "me.png", {"steps": 12, "align": False, "face_index": 1, "name": "me"})]


def test_image_face_without_projector_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    (tmp_path / "me.png").write_bytes(b"x")
    monkeypatch.setitem(sys.modules, "morphstudio.faces", None)  # as if the projector were not installed
    with pytest.raises(SceneError, match=r"faces\.me\.image: image faces need the projector, which is not available"):
        _faces({"me": {"image": "me.png"}}, tmp_path)
