"""`morphstudio project` on a batch: a photo without a face is skipped and counted, the rest is saved."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from morphstudio.cli import main
from morphstudio.faces.synthetic import compose_photo, generate_faces


@pytest.fixture(scope="module")
def frames(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import morphstudio

    G = morphstudio.load_generator("builtin:dcgan-faces64", device="cpu")
    d = tmp_path_factory.mktemp("frames")
    faces, _ = generate_faces(G, [7, 8])
    Image.fromarray(compose_photo(faces[0], angle=5)[0]).save(d / "frame_000.png")
    Image.fromarray(np.full((240, 320, 3), 128, np.uint8)).save(d / "frame_001.png")  # no face: a blank frame
    Image.fromarray(compose_photo(faces[1], angle=-5)[0]).save(d / "frame_002.png")
    (d / "notes.txt").write_text("not a photo, and not named like one: ignored in a folder\n")
    return d


def test_a_frame_without_a_face_is_skipped(frames: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "all.npz"
    files = [str(frames / f"frame_00{i}.png") for i in range(3)]
    assert main(["project", *files, "-o", str(out), "--steps", "4", "--device", "cpu", "-q"]) == 0
    err = capsys.readouterr().err
    assert "note: skipped" in err and "frame_001.png: no face found" in err
    assert "skipped 1 of 3 photos" in err
    data = np.load(out)
    assert data["ws"].shape == (2, 1, 100)
    assert list(data["names"]) == ["frame_000", "frame_002"]
    settings = json.loads(str(data["settings"]))
    assert [Path(s["image"]).name for s in settings["skipped"]] == ["frame_001.png"]


def test_a_folder_is_its_image_files(frames: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "folder.npz"
    assert main(["project", str(frames), "-o", str(out), "--steps", "2", "--device", "cpu", "-q"]) == 0
    assert list(np.load(out)["names"]) == ["frame_000", "frame_002"]
    assert "skipped 1 of 3 photos" in capsys.readouterr().err


def test_no_usable_photo_fails_before_any_work(frames: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    blank = frames / "frame_001.png"
    out = tmp_path / "none.npz"
    assert main(["project", str(blank), str(blank), "-o", str(out), "--steps", "2", "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert [ln for ln in err.splitlines() if ln.startswith("error:")] == [
        ln for ln in err.splitlines() if "none of the 2 photos can be projected" in ln]
    assert not out.exists()


def test_help_says_what_happens_to_bad_photos(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["project", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "is skipped with a note and counted at the end" in text


def test_progress_shows_step_and_loss(frames: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["project", str(frames / "frame_000.png"), "-o", str(tmp_path / "one.npz"), "--steps", "10",
                 "--device", "cpu"]) == 0
    err = capsys.readouterr().err
    assert "project frame_000: step 5/10  loss " in err and "project frame_000: done" in err
