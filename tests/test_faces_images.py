"""Robust photo input: every bad file gets one clear line, convertible files are converted."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from morphstudio.errors import ImageInputError
from morphstudio.faces.images import read_image


def _rgb(h: int = 40, w: int = 60) -> np.ndarray:
    rng = np.random.RandomState(0)
    return rng.randint(0, 256, (h, w, 3), dtype=np.uint8)


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(ImageInputError, match="no such file"):
        read_image(tmp_path / "nobody.jpg")


def test_folder(tmp_path: Path) -> None:
    with pytest.raises(ImageInputError, match="is a folder"):
        read_image(tmp_path)


def test_text_file_named_jpg(tmp_path: Path) -> None:
    p = tmp_path / "face.jpg"
    p.write_text("this is not a picture\n")
    with pytest.raises(ImageInputError) as err:
        read_image(p)
    msg = str(err.value)
    assert "not an image" in msg and "text file" in msg and str(p) in msg
    assert "\n" not in msg


def test_empty_file(tmp_path: Path) -> None:
    p = tmp_path / "empty.png"
    p.write_bytes(b"")
    with pytest.raises(ImageInputError, match="empty"):
        read_image(p)


def test_truncated_jpeg(tmp_path: Path) -> None:
    p = tmp_path / "cut.jpg"
    Image.fromarray(_rgb(200, 200)).save(p, quality=95)
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageInputError, match="truncated or corrupt"):
        read_image(p)


def test_grayscale_converted(tmp_path: Path) -> None:
    p = tmp_path / "gray.png"
    Image.fromarray(_rgb()[..., 0]).save(p)
    img = read_image(p)
    assert img.pixels.shape == (40, 60, 3) and img.pixels.dtype == np.uint8
    assert any("grayscale" in n for n in img.notes)


def test_16bit_png_converted(tmp_path: Path) -> None:
    p = tmp_path / "deep.png"
    arr = (np.linspace(0, 65535, 40 * 60).reshape(40, 60)).astype(np.uint16)
    Image.fromarray(arr).save(p)
    img = read_image(p)
    assert img.pixels.dtype == np.uint8 and img.pixels.shape == (40, 60, 3)
    assert img.pixels.max() == 255 and img.pixels.min() == 0  # full range kept, not clipped to 255/65535
    assert any("16-bit" in n for n in img.notes)


def test_alpha_png_composited_on_white(tmp_path: Path) -> None:
    p = tmp_path / "alpha.png"
    rgba = np.zeros((40, 60, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[:, :30, 3] = 255  # left half opaque red, right half fully transparent
    Image.fromarray(rgba, "RGBA").save(p)
    img = read_image(p)
    assert img.pixels.shape == (40, 60, 3)
    assert tuple(img.pixels[0, 0]) == (200, 0, 0)
    assert tuple(img.pixels[0, -1]) == (255, 255, 255)
    assert any("alpha" in n for n in img.notes)


def test_huge_image_refused(tmp_path: Path) -> None:
    p = tmp_path / "huge.png"
    Image.new("RGB", (3000, 2000)).save(p)
    with pytest.raises(ImageInputError, match="too large"):
        read_image(p, max_pixels=1_000_000)


def test_large_image_downscaled(tmp_path: Path) -> None:
    p = tmp_path / "big.png"
    Image.fromarray(_rgb(300, 500)).save(p)
    img = read_image(p, max_side=100)
    assert img.pixels.shape == (60, 100, 3)
    assert img.scale == pytest.approx(0.2)
    assert any("downscaled" in n for n in img.notes)
