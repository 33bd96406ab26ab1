"""From photo files to latents: read, align (or just resize), project; used by the CLI and the scene cache."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from morphstudio.faces.align import AlignedFace, CropParams, align_face, crop_params_for
from morphstudio.faces.images import LoadedImage, read_image
from morphstudio.faces.project import ProjectConfig, ProjectionResult, Projector

log = logging.getLogger(__name__)


@dataclass
class PreparedImage:
    """A photo made ready for the generator.

    Attributes:
        name: File stem (unique within a batch).
        path: Source file.
        target: ``[S, S, 3]`` uint8 at the generator's resolution.
        mask: ``[S, S]`` face mask in [0, 1] (``None`` without alignment).
        aligned: The alignment (transform for pasting back), ``None`` with ``align=False``.
        photo: The decoded photo.
        notes: Conversions and choices made on the way (shown to the user).
    """

    name: str
    path: Path
    target: np.ndarray
    mask: np.ndarray | None
    aligned: AlignedFace | None
    photo: LoadedImage
    notes: list[str] = field(default_factory=list)


def square_resize(pixels: np.ndarray, size: int) -> tuple[np.ndarray, list[str]]:
    """Centre-crop to a square and resize to ``size`` (for images that are already face crops)."""
    h, w = pixels.shape[:2]
    notes = []
    if h != w:
        s = min(h, w)
        y, x = (h - s) // 2, (w - s) // 2
        pixels = pixels[y:y + s, x:x + s]
        notes.append(f"not square ({w}x{h}): centre-cropped to {s}x{s}")
    if pixels.shape[0] != size:
        notes.append(f"resized from {pixels.shape[0]} to {size} px")
        pixels = np.asarray(Image.fromarray(pixels).resize((size, size), Image.LANCZOS))
    return np.ascontiguousarray(pixels), notes


def prepare_image(path: str | Path, generator: Any, *, align: bool = True, face: int | None = None,
                  params: CropParams | None = None, name: str | None = None,
                  choose_hint: str | None = None) -> PreparedImage:
    """Read and align one photo for ``generator``.

    ``choose_hint`` says how to pick another face of a photo with several (default: ``--face N``).

    Raises:
        ImageInputError: The file cannot be used (see :func:`morphstudio.faces.images.read_image`).
        FaceNotFoundError: ``align`` is on and no (or not the requested) face is found.
    """
    p = Path(path)
    photo = read_image(p)
    size = int(generator.resolution)
    if align:
        af = align_face(photo, size, face=face, params=params or crop_params_for(generator),
                        **({"choose_hint": choose_hint} if choose_hint else {}))
        return PreparedImage(name or p.stem, p, af.image, af.mask, af, photo, list(af.notes))
    target, notes = square_resize(photo.pixels, size)
    return PreparedImage(name or p.stem, p, target, None, None, photo, photo.notes + notes)


def unique_names(paths: Sequence[str | Path]) -> list[str]:
    """File stems, suffixed ``-2``, ``-3``... where two files share a stem."""
    seen: dict[str, int] = {}
    out = []
    for p in paths:
        stem = Path(p).stem
        seen[stem] = seen.get(stem, 0) + 1
        out.append(stem if seen[stem] == 1 else f"{stem}-{seen[stem]}")
    return out


def project_prepared(images: Sequence[PreparedImage], projector: Projector,
                     callback: Callable[..., Any] | None = None) -> ProjectionResult:
    """Project several prepared images as one batch (face masks used where every image has one).

    ``callback(step, loss, ws)`` is called after every step (e.g. a :class:`ProjectionProgress`)."""
    targets = np.stack([im.target for im in images])
    masks = None
    if all(im.mask is not None for im in images):
        masks = np.stack([im.mask for im in images])
    return projector.project(targets, masks, callback=callback)


def make_projector(generator: Any, *, space: str = "w+", steps: int | None = None, encoder: Any = "auto",
                   vgg_path: str | None = None, config: ProjectConfig | None = None,
                   warn: Callable[[str], None] | None = None) -> Projector:
    """A :class:`Projector` with the encoder resolved (``"auto"`` = the shipped one for this model, if any)."""
    from morphstudio.faces.encoder import LatentEncoder, resolve_encoder

    enc = encoder if isinstance(encoder, LatentEncoder) or encoder is None else resolve_encoder(encoder, generator)
    cfg = config or ProjectConfig()
    cfg.space, cfg.steps = space, steps if steps is not None else cfg.steps
    return Projector(generator, cfg, encoder=enc, vgg_path=vgg_path, warn=warn)
