"""``morphstudio score``: a photo's or a latent's attribute scores, strongest first; one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from morphstudio.cli import main

ROOT = Path(__file__).resolve().parents[1]
ASTRONAUT = ROOT / "scenes" / "photos" / "astronaut.jpg"


def test_score_a_photo(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["score", str(ASTRONAUT), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["scores"]
    by = {r["name"]: r for r in rows}
    assert set(by) >= {"smile", "mouth_open", "eyes_open", "yaw", "pitch", "roll", "age", "gender"}
    assert by["gender"]["value"] < 0.5 and 25 < by["age"]["value"] < 70
    ranked = [abs(r["sigma"]) for r in rows if r["name"] not in ("face_size", "face_x", "face_y")]
    assert ranked == sorted(ranked, reverse=True)
    assert {r["name"] for r in rows[-3:]} == {"face_size", "face_x", "face_y"}  # framing, listed last


def test_score_top_k_text(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["score", str(ASTRONAUT), "--top", "3"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].endswith("astronaut.jpg:") and len(lines) == 4
    assert all(" sd" in line for line in lines[1:])


def test_score_a_latent_renders_it_first(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    z = tmp_path / "z.npy"
    np.save(z, np.random.RandomState(16).randn(100))
    assert main(["score", str(z), "--json"]) == 0
    by = {r["name"]: r["value"] for r in json.loads(capsys.readouterr().out)["scores"]}
    # The z of seed 16 renders the face of scenes/photos/dcgan-seed16.png, turned to the image's left.
    assert by["yaw"] < -10


@pytest.mark.parametrize("make, message", [
    (lambda d: d / "missing.jpg", "missing.jpg: no such file"),
    (lambda d: (d / "notes.jpg").write_text("hello") and d / "notes.jpg", "not an image"),
    (lambda d: d / "missing.npy", "missing.npy: latent file not found"),
    (lambda d: (d / "junk.npy").write_bytes(b"junk") and d / "junk.npy", "junk.npy: is not an .npy or .npz file"),
])
def test_bad_files_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str], make, message) -> None:
    assert main(["score", str(make(tmp_path))]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err
    assert len([line for line in err.splitlines() if line.startswith("error:")]) == 1


def test_no_face_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from PIL import Image

    p = tmp_path / "grey.png"
    Image.fromarray(np.full((128, 128, 3), 128, np.uint8)).save(p)
    assert main(["score", str(p)]) == 2
    assert "grey.png: no face found in the image" in capsys.readouterr().err
