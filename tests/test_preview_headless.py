"""``--preview`` on a machine without a display: the file is still written, the window is skipped with a note."""

from __future__ import annotations

from pathlib import Path

import pytest

import morphstudio
from morphstudio.cli import main
from morphstudio.errors import DisplayError


def _scene_file(tmp_path: Path) -> Path:
    p = tmp_path / "s.yaml"
    p.write_text("model: builtin:dcgan-faces64\n"
                 "output: {path: out.mp4, size: 64, fps: 8, duration: 1}\n"
                 "faces: {a: {seed: 1}, b: {seed: 2}}\n"
                 "timeline: [{at: 0, face: a}, {at: 1, face: b}]\n")
    return p


@pytest.fixture()
def no_display(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr("sys.platform", "linux")


def test_preview_with_a_file_writes_the_file(tmp_path: Path, no_display: None,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    scene = _scene_file(tmp_path)
    assert main(["render", str(scene), "--preview", "-o", str(tmp_path / "v.mp4"), "--device", "cpu", "-q"]) == 0
    assert (tmp_path / "v.mp4").stat().st_size > 500
    err = capsys.readouterr().err
    assert "preview window is unavailable" in err and "DISPLAY" in err
    assert "error:" not in err


def test_preview_without_a_file_is_still_an_error(tmp_path: Path, no_display: None) -> None:
    scene = morphstudio.load_scene(_scene_file(tmp_path), device="cpu")
    with pytest.raises(DisplayError, match="no display for a preview window"):
        morphstudio.render(scene, output=False, preview=True, progress=False)
