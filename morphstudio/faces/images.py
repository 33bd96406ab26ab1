"""Reading user photos robustly: every way a file can be unusable becomes one clear :class:`ImageInputError`.

Handled (converted) rather than refused: grayscale and palette images (to RGB), 16-bit PNGs (scaled to 8 bits),
alpha channels (composited on white, so transparent backgrounds do not turn black), EXIF rotation, and large
photos (downscaled so the longer side is at most ``max_side``, with a note). Refused with one line: a missing
path, a directory, a file that is not an image (e.g. a text file named ``.jpg``), a truncated file, and anything
above ``max_pixels`` (Pillow's decompression-bomb check turned into a clear error).
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from morphstudio.errors import ImageInputError

log = logging.getLogger(__name__)

# Above this many pixels an image is refused outright (about a 16k x 12k photo); Pillow's own bomb limit is
# lower (89 MP warns, 179 MP raises), so we lift it to ours and say clearly what happened.
MAX_PIXELS = 200_000_000
# Photos are downscaled to this longer side before face detection: mediapipe works at 192 px internally and a
# 4k crop holds no more usable detail for a 64-1024 px generator.
MAX_SIDE = 4096


@dataclass
class LoadedImage:
    """An RGB photo ready for alignment.

    Attributes:
        pixels: ``[H, W, 3]`` uint8 RGB.
        path: Where it came from (``None`` for in-memory arrays).
        notes: What was converted on the way in (grayscale, 16-bit, alpha, downscale...), for the user.
        scale: Factor applied to the original size (1.0 unless downscaled).
    """

    pixels: np.ndarray
    path: Path | None = None
    notes: list[str] = field(default_factory=list)
    scale: float = 1.0


def read_image(path: str | Path, *, max_side: int = MAX_SIDE, max_pixels: int = MAX_PIXELS) -> LoadedImage:
    """Read a photo as 8-bit RGB, converting what can be converted and refusing the rest with one line.

    Args:
        path: Image file (JPEG, PNG, WebP, BMP, TIFF...).
        max_side: Longer side above which the image is downscaled (with a note).
        max_pixels: Pixel count above which the image is refused.

    Returns:
        The decoded image with notes on any conversion.

    Raises:
        ImageInputError: The path is missing or a folder, the file is not an image, is truncated or too large.
    """
    p = Path(path)
    if not p.exists():
        raise ImageInputError(p, "no such file")
    if p.is_dir():
        raise ImageInputError(p, "is a folder, not an image file")
    if p.stat().st_size == 0:
        raise ImageInputError(p, "the file is empty")
    notes: list[str] = []
    old_limit = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = max_pixels
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(p) as im:
                fmt = im.format
                w, h = im.size
                if w * h > max_pixels:
                    raise ImageInputError(
                        p, f"image is too large: {w}x{h} = {w * h / 1e6:.0f} megapixels (limit {max_pixels / 1e6:.0f})",
                        hint="downscale it first, e.g. with `ffmpeg -i in.jpg -vf scale=4096:-1 out.jpg`")
                im.load()  # decode now, so truncation is caught here and not later
                im = ImageOps.exif_transpose(im) or im
                rgb = _to_rgb8(im, notes)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageInputError(p, f"image is too large (Pillow's decompression-bomb check: {exc})") from None
    except UnidentifiedImageError:
        head = p.read_bytes()[:64]
        kind = "a text file" if _looks_like_text(head) else "not an image Pillow can read"
        raise ImageInputError(p, f"not an image: the file is {kind} (despite its '{p.suffix}' name)") from None
    except OSError as exc:
        # Pillow reports truncated files as OSError("image file is truncated ...") / "broken data stream".
        raise ImageInputError(p, f"cannot decode the image (truncated or corrupt file: {exc})") from None
    finally:
        Image.MAX_IMAGE_PIXELS = old_limit
    if fmt is None:
        notes.append("unknown format")
    img = LoadedImage(rgb, p, notes)
    return downscale(img, max_side)


def from_array(pixels: np.ndarray, *, max_side: int = MAX_SIDE) -> LoadedImage:
    """Wrap an in-memory ``[H, W]``, ``[H, W, 3]`` or ``[H, W, 4]`` array (uint8 or uint16) as a photo."""
    arr = np.asarray(pixels)
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] not in (3, 4):
        raise ImageInputError(None, f"image array must be [H, W], [H, W, 3] or [H, W, 4], got {list(arr.shape)}")
    notes: list[str] = []
    if arr.dtype == np.uint16:
        arr = (arr.astype(np.float32) / 257.0).round().astype(np.uint8)
        notes.append("16-bit image scaled to 8 bits")
    elif arr.dtype != np.uint8:
        arr = np.clip(arr, 0, 255).astype(np.uint8)
    if arr.shape[2] == 4:
        arr = _composite_on_white(arr[..., :3].astype(np.float32), arr[..., 3].astype(np.float32) / 255.0)
        notes.append("alpha channel composited on white")
    return downscale(LoadedImage(np.ascontiguousarray(arr), None, notes), max_side)


def downscale(img: LoadedImage, max_side: int) -> LoadedImage:
    """Downscale (area filter) so the longer side is at most ``max_side``; records a note and the scale."""
    h, w = img.pixels.shape[:2]
    if max(h, w) <= max_side:
        return img
    s = max_side / max(h, w)
    new = (max(1, round(w * s)), max(1, round(h * s)))
    small = np.asarray(Image.fromarray(img.pixels).resize(new, Image.BOX))
    note = f"large image {w}x{h} downscaled to {new[0]}x{new[1]} before face detection"
    log.info(note)
    return LoadedImage(small, img.path, img.notes + [note], img.scale * s)


def _to_rgb8(im: Image.Image, notes: list[str]) -> np.ndarray:
    mode = im.mode
    if mode in ("I;16", "I;16B", "I;16L", "I", "I;16N"):
        arr = np.asarray(im).astype(np.float64)
        top = 65535.0 if arr.max() > 255 or mode.startswith("I;16") else 255.0
        arr = np.clip(arr / top * 255.0, 0, 255).round().astype(np.uint8)
        notes.append(f"{'16-bit' if top > 255 else 'integer'} grayscale image converted to 8-bit RGB")
        return np.repeat(arr[..., None], 3, axis=2)
    if mode == "F":
        arr = np.asarray(im).astype(np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        arr = ((arr - lo) / max(hi - lo, 1e-12) * 255).round().astype(np.uint8)
        notes.append("floating-point image rescaled to 8-bit RGB")
        return np.repeat(arr[..., None], 3, axis=2)
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in im.info):
        rgba = np.asarray(im.convert("RGBA")).astype(np.float32)
        notes.append("alpha channel composited on white")
        return _composite_on_white(rgba[..., :3], rgba[..., 3] / 255.0)
    if mode in ("L", "1"):
        notes.append("grayscale image converted to RGB")
    elif mode == "CMYK":
        notes.append("CMYK image converted to RGB")
    elif mode not in ("RGB", "P"):
        notes.append(f"{mode} image converted to RGB")
    if mode in ("RGB;16", "RGB;16B") or getattr(im, "bits", 8) == 16:
        notes.append("16-bit image scaled to 8 bits")
    return np.ascontiguousarray(np.asarray(im.convert("RGB")))


def _composite_on_white(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    out = rgb * alpha[..., None] + 255.0 * (1.0 - alpha[..., None])
    return np.clip(out.round(), 0, 255).astype(np.uint8)


def _looks_like_text(head: bytes) -> bool:
    if not head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(b >= 9 for b in head)
