"""The projection cache: a second request for the same photo, model and settings does no projection work."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from morphstudio.faces import cache, project_cached
from morphstudio.faces.project import Projector
from morphstudio.faces.synthetic import generate_faces


@pytest.fixture(scope="module")
def G():
    import morphstudio

    return morphstudio.load_generator("builtin:dcgan-faces64", device="cpu")


@pytest.fixture()
def face_png(G, tmp_path: Path) -> Path:
    faces, _ = generate_faces(G, [21])
    p = tmp_path / "face.png"
    Image.fromarray(faces[0]).save(p)
    return p


def _forbid_projection(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args, **kwargs):
        raise AssertionError("the projector ran although the result was cached")

    monkeypatch.setattr(Projector, "project", boom)


def test_second_call_is_a_cache_hit(G, face_png: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cdir = tmp_path / "cache"
    calls = []
    real = Projector.project

    def counting(self, *args, **kwargs):
        calls.append(1)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Projector, "project", counting)
    ws1 = project_cached(face_png, G, steps=15, align=False, cache_dir=cdir)
    assert ws1.shape == (G.num_ws, G.w_dim) and len(calls) == 1
    assert len(list(cdir.glob("*.npz"))) == 1

    _forbid_projection(monkeypatch)
    ws2 = project_cached(face_png, G, steps=15, align=False, cache_dir=cdir)
    np.testing.assert_array_equal(ws1, ws2)
    # The key is the image *bytes*: a copy under another name is the same photo.
    copy = tmp_path / "copy.png"
    shutil.copy(face_png, copy)
    np.testing.assert_array_equal(project_cached(copy, G, steps=15, align=False, cache_dir=cdir), ws1)


def test_settings_and_model_change_the_key(G) -> None:
    mid = cache.model_identity(G)
    assert mid == cache.model_identity(G) and len(mid) == 64
    a = cache.cache_key("img", mid, {"space": "w+", "steps": 10})
    assert a != cache.cache_key("img", mid, {"space": "w", "steps": 10})
    assert a != cache.cache_key("img", "other-model", {"space": "w+", "steps": 10})
    assert a != cache.cache_key("img2", mid, {"space": "w+", "steps": 10})


def test_default_cache_dir_follows_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MORPHSTUDIO_CACHE", str(tmp_path))
    assert cache.default_cache_dir() == tmp_path / "projections"


def test_damaged_entry_is_recomputed(tmp_path: Path) -> None:
    (tmp_path / "k.npz").write_bytes(b"garbage")
    assert cache.load_entry(tmp_path, "k") is None


def test_scene_image_face_uses_the_cache(G, face_png: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import morphstudio

    monkeypatch.setenv("MORPHSTUDIO_CACHE", str(tmp_path / "c"))
    spec = {
        "model": "builtin:dcgan-faces64",
        "output": {"path": str(tmp_path / "o.mp4"), "fps": 4, "duration": 1},
        "faces": {"me": {"image": str(face_png), "steps": 10, "align": False}, "b": {"seed": 2}},
        "timeline": [{"at": 0, "face": "me"}, {"at": 1, "face": "b"}],
    }
    scene = morphstudio.load_scene(spec, device="cpu")
    first = scene.latents([0])
    assert len(list((tmp_path / "c" / "projections").glob("*.npz"))) == 1
    _forbid_projection(monkeypatch)
    again = morphstudio.load_scene(spec, device="cpu").latents([0])
    np.testing.assert_allclose(first, again)


def test_cached_projection_leaves_the_generator_untouched(face_png: Path, tmp_path: Path) -> None:
    import morphstudio

    fresh = morphstudio.load_generator("builtin:dcgan-faces64", device="cpu")  # never hashed before
    before = dict(vars(fresh))
    project_cached(face_png, fresh, steps=3, align=False, cache_dir=tmp_path / "c")
    project_cached(face_png, fresh, steps=3, align=False, cache_dir=tmp_path / "c")  # the cache hit path too
    assert sorted(vars(fresh)) == sorted(before)
    assert all(vars(fresh)[k] is before[k] for k in before)


def _npz_with_header(path: Path, shape: tuple[int, ...]) -> None:
    """An .npz whose ``ws`` member's header claims ``shape`` float32 values but holds 16 bytes of data."""
    import zipfile

    header = np.lib.format.header_data_from_array_1_0(np.zeros(1, np.float32))
    header["shape"] = shape
    import io

    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, header)
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("ws.npy", buf.getvalue() + b"\0" * 16)


def test_hostile_entry_is_refused_in_one_warning_without_allocating(tmp_path: Path,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    import tracemalloc

    _npz_with_header(tmp_path / "big.npz", (2**20, 2**20))  # claims 4 TiB
    tracemalloc.start()
    try:
        with caplog.at_level("WARNING", logger="morphstudio.faces.cache"):
            assert cache.load_entry(tmp_path, "big") is None
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2**24
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and "big.npz" in lines[0] and "projected again" in lines[0] and "\n" not in lines[0]


def test_damaged_entries_each_give_one_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "junk.npz").write_bytes(b"PK\x03\x04 not really a zip")
    np.savez(tmp_path / "nows.npz", other=np.zeros(3, np.float32))
    np.savez(tmp_path / "nan.npz", ws=np.array([[np.nan, 1.0]], np.float32))
    np.savez(tmp_path / "ok.npz", ws=np.array([[0.5, -1.0]], np.float32), meta="{}")
    with caplog.at_level("WARNING", logger="morphstudio.faces.cache"):
        for key in ("junk", "nows", "nan"):
            assert cache.load_entry(tmp_path, key) is None, key
        ok = cache.load_entry(tmp_path, "ok")
    assert ok is not None and ok.dtype == np.float32
    np.testing.assert_array_equal(ok, [[0.5, -1.0]])
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 3
    assert "junk.npz" in messages[0] and "'ws'" in messages[1] and "NaN" in messages[2]
