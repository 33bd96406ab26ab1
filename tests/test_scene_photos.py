"""Image faces in scenes: validate / --dry-run never project (they list what is left and its cost), a render
shows face, step and loss while it projects, and ``face_index`` picks one face of a photo with several."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import morphstudio
import morphstudio.faces
from morphstudio.cli import main
from morphstudio.errors import SceneError
from morphstudio.faces.progress import ProjectionProgress
from morphstudio.faces.synthetic import compose_photo, generate_faces


@pytest.fixture(scope="module")
def G():
    return morphstudio.load_generator("builtin:dcgan-faces64", device="cpu")


@pytest.fixture(scope="module")
def photos(G, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("scene-photos")
    faces, _ = generate_faces(G, [7, 8])
    Image.fromarray(faces[0]).save(d / "crop.png")
    two, _ = compose_photo(faces[0], scale=3, centre=(180, 240), size=(800, 480))
    two, _ = compose_photo(faces[1], scale=5, centre=(560, 240), background=two)
    Image.fromarray(two).save(d / "two.png")
    return {"crop": d / "crop.png", "two": d / "two.png"}


@pytest.fixture()
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MORPHSTUDIO_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "projections"


def _entries(cache_dir: Path) -> list[Path]:
    return sorted(cache_dir.glob("*.npz")) if cache_dir.is_dir() else []


def _forbid_projection(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: object, **kwargs: object) -> None:
        raise AssertionError("a photo was projected")

    monkeypatch.setattr(morphstudio.faces, "project_cached", boom)


def _loop_scene(tmp_path: Path, photo: Path, steps: int = 30) -> Path:
    p = tmp_path / "photos.yaml"
    p.write_text("model: builtin:dcgan-faces64\nloop: true\n"
                 "output: {path: out.mp4, size: 64, fps: 4, duration: 2}\n"
                 f"faces:\n  me: {{image: {photo}, steps: {steps}, align: false}}\n  b: {{seed: 2}}\n"
                 "  mid: {average: [me, b]}\n"
                 "timeline: [{at: 0, face: b}, {at: 1, face: mid}]\n")
    return p


def test_validate_does_not_project_and_reports_the_cost(photos, tmp_path: Path, cache_dir: Path,
                                                       monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    _forbid_projection(monkeypatch)
    scene = _loop_scene(tmp_path, photos["crop"], steps=30)
    assert main(["validate", str(scene), "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert _entries(cache_dir) == []
    assert "1 of 1 image face(s) not projected yet" in out
    line = next(ln for ln in out.splitlines() if "faces.me" in ln and "steps" in ln)
    assert "up to 30 steps" in line and " s" in line  # the face's own steps: and the time they will take
    assert "projecting will take about" in out
    # `mid` is built from the photo and sits on the path: that closure waits for the projection, by name.
    closure = out[out.index("loop closure"):]
    assert "timeline" in closure and "not checked until faces.me is projected" in closure
    assert "NOT closed" not in closure


def test_dry_run_does_not_project(photos, tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    _forbid_projection(monkeypatch)
    scene = _loop_scene(tmp_path, photos["crop"])
    assert main(["render", str(scene), "--dry-run", "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert _entries(cache_dir) == []
    assert "not projected yet" in out and "dry run: nothing rendered" in out


def test_render_shows_face_step_and_loss_then_validate_reads_the_cache(
        photos, tmp_path: Path, cache_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scene = morphstudio.load_scene(_loop_scene(tmp_path, photos["crop"], steps=20), device="cpu")
    scene.latents([0])  # projects the photo
    err = capsys.readouterr().err
    assert "project faces.me (crop.png): 20 steps at most" in err
    assert "project faces.me (crop.png): step 10/20  loss " in err
    assert "project faces.me (crop.png): done" in err
    assert len(_entries(cache_dir)) == 1
    assert main(["validate", str(tmp_path / "photos.yaml"), "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "all projected already" in out and "not checked" not in out


def test_progress_bar_on_a_terminal() -> None:
    buf = io.StringIO()
    bar = ProjectionProgress("faces.me (me.jpg)", 50, stream=buf, bar=True)
    for step in range(30):
        bar(step, 1.0 / (step + 1))
    bar.close(stopped_early=True)
    text = buf.getvalue()
    assert "faces.me (me.jpg)" in text and "loss=0.0333" in text and "30/30" in text


def test_face_index_picks_a_face_of_a_photo_with_two(G, photos, tmp_path: Path, cache_dir: Path,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    spec = {
        "model": "builtin:dcgan-faces64",
        "output": {"path": str(tmp_path / "o.mp4"), "fps": 2, "duration": 1},
        "faces": {"left": {"image": str(photos["two"]), "face_index": 0, "steps": 3},
                  "right": {"image": str(photos["two"]), "face_index": 1, "steps": 3},
                  "big": {"image": str(photos["two"]), "steps": 3}},
        "timeline": [{"at": 0, "face": "left"}, {"at": 0.5, "face": "right"}, {"at": 1, "face": "big"}],
    }
    with caplog.at_level(logging.WARNING):
        tl = morphstudio.load_scene(spec, device="cpu").timeline()
    left, right, big = (tl.face_values[n] for n in ("left", "right", "big"))
    assert not np.allclose(left, right)
    np.testing.assert_allclose(big, right)  # unset = the largest face, the right one (scale 5 vs 3)
    # The note on the photo with two faces names the scene key to use, not a command-line flag.
    note = next(r.getMessage() for r in caplog.records if "2 faces found" in r.getMessage())
    assert "face_index" in note and "faces.big" in note and "--face" not in note
    # And the same projection as `morphstudio project --face 1` (the cache key carries the index).
    hit = morphstudio.faces.cached_projection(photos["two"], G, space="w+", steps=3, align=True, face=1)
    np.testing.assert_allclose(hit, right)


def test_face_index_out_of_range_names_the_field(photos, tmp_path: Path, cache_dir: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("model: builtin:dcgan-faces64\noutput: {path: o.mp4, fps: 2, duration: 1}\n"
                    f"faces:\n  a: {{image: {photos['two']}, face_index: 5, steps: 2}}\n"
                    "timeline: [{at: 0, face: a}]\n")
    with pytest.raises(SceneError, match=r"bad\.yaml:4: faces\.a\.face_index: .*face 5 requested but the image "
                                         r"holds 2 face"):
        morphstudio.load_scene(path, device="cpu").timeline()


def test_face_index_is_only_for_image_faces() -> None:
    with pytest.raises(SceneError, match="'face_index' does not apply to a seed face"):
        morphstudio.load_scene({"faces": {"a": {"seed": 1, "face_index": 0}},
                                "timeline": [{"at": 0, "face": "a"}]})
