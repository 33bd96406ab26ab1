"""`morphstudio edit` and `morphstudio directions`: set vs add, and one-line errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from morphstudio.cli import main
from morphstudio.commands.edit import apply_edits


def test_apply_edits_set_reaches_the_value_and_add_moves_by_it() -> None:
    unit = np.zeros((1, 8))
    unit[0, 2] = 1.0
    w = np.arange(8.0)[None]
    out = apply_edits(w, [(unit, 2.0, 0.5, "set", 1.25)])
    assert (out[0, 2] + 0.5) / 2.0 == pytest.approx(1.25)  # signed distance in strength units
    np.testing.assert_array_equal(np.delete(out[0], 2), np.delete(w[0], 2))
    out = apply_edits(w, [(unit, 2.0, 0.5, "add", 1.25)])
    assert out[0, 2] - w[0, 2] == pytest.approx(2.5)
    np.testing.assert_array_equal(apply_edits(w, [(unit, 2.0, None, "add", 0.0)]), w)  # strength 0: nothing


def test_edit_and_pca_write_pngs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["directions", "pca", "-k", "2", "-o", "pca"]) == 0
    assert (tmp_path / "pca" / "pca_0.npz").is_file() and (tmp_path / "pca" / "pca_1.png").is_file()
    assert main(["edit", "--seed", "3", "--attr", "pca/pca_0.npz=1.5", "-o", "e.png"]) == 0
    from PIL import Image
    assert Image.open(tmp_path / "e.png").size == (64, 64)


def test_edit_errors_are_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MORPHSTUDIO_HOME", str(tmp_path / "home"))
    assert main(["edit", "--seed", "1", "--attr", "grin=1", "-o", "x.png"]) == 2
    assert "error: no direction named 'grin' for model 'dcgan-faces64'" in capsys.readouterr().err
    assert main(["edit", "--seed", "1", "--attr", "grin", "-o", "x.png"]) == 2
    assert "--attr: expected NAME=VALUE" in capsys.readouterr().err
    for bad in ("smile=nan", "smile=inf", "smile=1e9"):
        assert main(["edit", "--seed", "1", "--attr", bad, "-o", "x.png"]) == 2
        assert f"error: --attr {bad}: strength" in capsys.readouterr().err
    assert main(["directions", "sefa", "-o", "s"]) == 2
    assert "SeFa needs style-modulation weights" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()
