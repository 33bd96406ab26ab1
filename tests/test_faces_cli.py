"""`morphstudio align` / `project` / `encoder` from the command line: outputs, and one clear line per bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from morphstudio.cli import main
from morphstudio.faces.synthetic import compose_photo, generate_faces


@pytest.fixture(scope="module")
def G():
    import morphstudio

    return morphstudio.load_generator("builtin:dcgan-faces64", device="cpu")


@pytest.fixture(scope="module")
def photos(G, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("photos")
    faces, _ = generate_faces(G, [7, 8])
    out: dict[str, Path] = {}
    Image.fromarray(faces[0]).save(out.setdefault("crop", d / "crop.png"))
    Image.fromarray(compose_photo(faces[0], angle=12)[0]).save(out.setdefault("photo", d / "photo.jpg"), quality=95)
    two, _ = compose_photo(faces[0], scale=3, centre=(180, 240), size=(800, 480))
    two, _ = compose_photo(faces[1], scale=5, centre=(560, 240), background=two)
    Image.fromarray(two).save(out.setdefault("two", d / "two.png"))
    Image.fromarray(np.full((200, 300, 3), 128, np.uint8)).save(out.setdefault("blank", d / "blank.png"))
    (d / "text.jpg").write_text("hello, I am not a JPEG\n")
    out["text"] = d / "text.jpg"
    good = d / "photo.jpg"
    data = good.read_bytes()
    (d / "cut.jpg").write_bytes(data[: len(data) // 3])
    out["cut"] = d / "cut.jpg"
    out["missing"] = d / "missing.jpg"
    return out


def _one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


@pytest.mark.parametrize("name, expected", [
    ("missing", "no such file"),
    ("text", "not an image: the file is a text file"),
    ("cut", "truncated or corrupt"),
    ("blank", "no face found"),
])
def test_bad_inputs_one_line_exit_2(photos, name: str, expected: str, tmp_path: Path,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["align", str(photos[name]), "-o", str(tmp_path / "out.png")])
    assert code == 2
    line = _one_error_line(capsys)
    assert expected in line and str(photos[name]) in line


def test_project_bad_input_exit_2(photos, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["project", str(photos["text"]), "-o", str(tmp_path / "x.npz"), "--steps", "2"])
    assert code == 2
    assert "not an image" in _one_error_line(capsys)


def test_two_faces_note_and_face_index(photos, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["align", str(photos["two"]), "-o", str(tmp_path / "a.png"), "--model", "builtin:dcgan-faces64"]) == 0
    err = capsys.readouterr().err
    assert "2 faces found; using the largest" in err
    assert main(["align", str(photos["two"]), "-o", str(tmp_path / "b.png"), "--face", "7"]) == 2
    assert "face 7 requested but the image holds 2" in _one_error_line(capsys)


def test_align_writes_crop_and_transform(photos, tmp_path: Path) -> None:
    out = tmp_path / "crop.png"
    assert main(["align", str(photos["photo"]), "-o", str(out), "--size", "96", "--mask", str(tmp_path / "m.png")]) == 0
    assert Image.open(out).size == (96, 96)
    info = json.loads(out.with_suffix(".transform.json").read_text())
    assert np.asarray(info["transform"]).shape == (3, 3) and info["num_faces"] == 1
    assert Image.open(tmp_path / "m.png").size == (96, 96)


def test_project_cli_saves_ws_settings_report_video(photos, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "me.npz"
    code = main(["project", str(photos["crop"]), str(photos["photo"]), "-o", str(out), "--steps", "12",
                 "--report", str(tmp_path / "r.png"), "--video", str(tmp_path / "p.mp4"), "--device", "cpu"])
    assert code == 0
    text = capsys.readouterr().out
    assert text.count("PSNR") == 2  # one summary line per image
    data = np.load(out)
    assert data["ws"].shape == (2, 1, 100)
    assert list(data["names"]) == ["crop", "photo"]
    settings = json.loads(str(data["settings"]))
    assert settings["space"] == "w+" and settings["steps_run"] == 12 and settings["align"] is True
    assert (tmp_path / "r-crop.png").is_file() and (tmp_path / "r-photo.png").is_file()
    assert (tmp_path / "p-crop.mp4").stat().st_size > 1000


def test_project_single_image_no_align(photos, tmp_path: Path) -> None:
    out = tmp_path / "one.npz"
    assert main(["project", str(photos["crop"]), "--no-align", "-o", str(out), "--steps", "5", "--space", "w",
                 "--encoder", "none"]) == 0
    data = np.load(out)
    assert data["ws"].shape == (1, 100)
    assert json.loads(str(data["settings"]))["init"] == "w_avg"


def test_encoder_train_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["encoder", "train", "--model", "builtin:dcgan-faces64", "--steps", "3", "--batch-size", "4",
                 "--width", "8", "-o", str(tmp_path), "--device", "cpu"])
    assert code == 0
    cfg = json.loads((tmp_path / "dcgan-faces64.json").read_text())
    assert cfg["steps"] == 3 and cfg["space"] == "z" and cfg["model_fingerprint"]
    assert (tmp_path / "dcgan-faces64.safetensors").is_file()
    assert main(["encoder", "info", str(tmp_path / "dcgan-faces64")]) == 0
    assert main(["project", "x.png", "-o", str(tmp_path / "o.npz"), "--encoder", str(tmp_path / "nope")]) == 2
