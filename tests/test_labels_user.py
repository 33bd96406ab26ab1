"""User labellers: module:function, folder:PATH and csv:PATH specs load, label, and refuse bad input in one line."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from morphstudio.edit.labels import LabellerError, get_labeller

IMAGES = np.stack([np.full((16, 16, 3), v, np.uint8) for v in (10, 200, 90)])


@pytest.fixture()
def user_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    (tmp_path / "my_labels.py").write_text(textwrap.dedent("""
        import numpy as np

        def brightness(images):
            return images.reshape(len(images), -1).mean(1)

        def two(images):
            m = images.reshape(len(images), -1).mean(1)
            return np.stack([m, -m], 1)
        two.labels = ("bright", "dark")

        def wrong_shape(images):
            return np.zeros(len(images) + 1)

        def broken(images):
            raise RuntimeError("model file missing")

        NOT_A_FUNCTION = 3
    """))
    (tmp_path / "bad_import.py").write_text("raise ImportError('needs tensorflow')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    return "my_labels"


def test_module_function_scores_images(user_module: str) -> None:
    lab = get_labeller(f"{user_module}:brightness")
    assert [i.name for i in lab.labels] == ["brightness"]
    np.testing.assert_allclose(lab(IMAGES), [[10.0], [200.0], [90.0]])
    lab2 = get_labeller(f"{user_module}:two")
    assert [i.name for i in lab2.labels] == ["bright", "dark"]
    np.testing.assert_allclose(lab2(IMAGES)[:, 1], [-10.0, -200.0, -90.0])


@pytest.mark.parametrize("spec, message", [
    ("no_such_module_xyz:f", "no module named 'no_such_module_xyz'"),
    ("my_labels:nope", "module 'my_labels' has no attribute 'nope'"),
    ("my_labels:NOT_A_FUNCTION", "'NOT_A_FUNCTION' is a int, not a function"),
    ("bad_import:f", "importing 'bad_import' failed: ImportError: needs tensorflow"),
    ("geometri", "unknown labeller 'geometri'"),
    ("", "labeller spec must be a non-empty string"),
])
def test_bad_specs_are_one_line_errors(user_module: str, spec: str, message: str) -> None:
    with pytest.raises(LabellerError) as err:
        get_labeller(spec)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_a_misbehaving_function_is_one_line(user_module: str) -> None:
    with pytest.raises(LabellerError, match=r"returned shape \[4, 1\] for 3 images; expected \[3\]"):
        get_labeller(f"{user_module}:wrong_shape")(IMAGES)
    with pytest.raises(LabellerError, match="failed: RuntimeError: model file missing"):
        get_labeller(f"{user_module}:broken")(IMAGES)
    with pytest.raises(LabellerError, match=r"shape \[16, 16\]"):
        get_labeller(f"{user_module}:brightness")(IMAGES[0, :, :, 0])


def _folder(root: Path, groups: dict[str, list[int]]) -> Path:
    for name, values in groups.items():
        (root / name).mkdir(parents=True)
        for k, v in enumerate(values):
            Image.fromarray(np.full((12, 12, 3), v, np.uint8)).save(root / name / f"img{k}.png")
    return root


def test_folder_labels_its_images(tmp_path: Path) -> None:
    root = _folder(tmp_path / "smile", {"smiling": [250, 240], "neutral": [5]})
    lab = get_labeller(f"folder:{root}")
    assert lab.classes == ("neutral", "smiling")
    assert [p.name for p in lab.paths] == ["img0.png", "img0.png", "img1.png"]
    np.testing.assert_array_equal(lab.values, [0.0, 1.0, 1.0])
    assert lab.labels[0].name == "smile" and "0 = neutral, 1 = smiling" in lab.labels[0].description
    imgs = lab.load_images()
    stranger = np.full((12, 12, 3), 77, np.uint8)
    out = lab(np.stack([imgs[1], imgs[0], stranger]))
    assert out[0, 0] == 1.0 and out[1, 0] == 0.0 and np.isnan(out[2, 0])


def test_folder_with_numeric_names_uses_them(tmp_path: Path) -> None:
    lab = get_labeller(f"folder:{_folder(tmp_path / 'age', {'60': [1], '20': [2], '35.5': [3]})}")
    assert lab.classes == ("20", "35.5", "60")
    np.testing.assert_array_equal(lab.values, [20.0, 35.5, 60.0])


def test_bad_folders(tmp_path: Path) -> None:
    with pytest.raises(LabellerError, match="no such folder"):
        get_labeller(f"folder:{tmp_path / 'missing'}")
    one = _folder(tmp_path / "one", {"a": [1]})
    with pytest.raises(LabellerError, match="needs at least two subfolders.*found 1"):
        get_labeller(f"folder:{one}")
    (one / "b").mkdir()
    (one / "b" / "notes.txt").write_text("x")
    with pytest.raises(LabellerError, match="subfolder 'b' holds no images"):
        get_labeller(f"folder:{one}")
    with pytest.raises(LabellerError, match="give a folder"):
        get_labeller("folder:")


def test_csv_labels_seeds(tmp_path: Path) -> None:
    p = tmp_path / "labels.csv"
    p.write_text("seed,smile,age\n3,0.5,40\n7,-1.25,\n\n12,2,25\n")
    lab = get_labeller(f"csv:{p}")
    assert [i.name for i in lab.labels] == ["smile", "age"]
    np.testing.assert_array_equal(lab.seeds, [3, 7, 12])
    out = lab.for_seeds([12, 99, 7])
    np.testing.assert_array_equal(out[0], [2.0, 25.0])
    assert np.all(np.isnan(out[1])) and out[2, 0] == -1.25 and np.isnan(out[2, 1])
    with pytest.raises(LabellerError, match="labels seeds, not images"):
        lab(IMAGES)


@pytest.mark.parametrize("text, message", [
    ("", "empty"),
    ("id,smile\n1,2\n", ":1: the header must be 'seed,LABEL"),
    ("seed,smile\n1,2\nx,3\n", ":3: seed 'x' is not a whole number"),
    ("seed,smile\n1,2\n1,3\n", ":3: seed 1 is labelled twice (first on line 2)"),
    ("seed,smile\n1,lots\n", ":2: smile = 'lots' is not a finite number"),
    ("seed,smile\n1,nan\n", ":2: smile = 'nan' is not a finite number"),
    ("seed,smile\n1,2,3\n", ":2: 3 values, the header has 2"),
    ("seed,smile\n-4,1\n", ":2: seed -4 is outside"),
    ("seed,smile\n", "has a header but no rows"),
])
def test_bad_csvs(tmp_path: Path, text: str, message: str) -> None:
    p = tmp_path / "l.csv"
    p.write_text(text)
    with pytest.raises(LabellerError) as err:
        get_labeller(f"csv:{p}")
    assert message in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(LabellerError, match="no such file"):
        get_labeller(f"csv:{tmp_path / 'none.csv'}")


def test_a_module_in_the_current_folder_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    (tmp_path / "here_labels.py").write_text("def red(images):\n    return images[..., 0].mean((1, 2))\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", ".")])
    before = list(sys.path)
    lab = get_labeller("here_labels:red")
    np.testing.assert_allclose(lab(IMAGES)[:, 0], [10.0, 200.0, 90.0])
    assert sys.path == before  # the current folder was on the path only while importing
