"""Faces from photos: alignment (mediapipe face mesh), projection into a generator's latent space, a trained
latent encoder, a projection cache and quality reports.

The scene loader's entry point is :func:`project_cached`: a photo in, ``ws [num_ws, w_dim]`` out, computed once
per (image bytes, model, settings) and read from the cache afterwards.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

# Bump when a change to the projector makes old cache entries stale.
PROJECTOR_VERSION = 1


def project_cached(
    image_path: str | Path,
    generator: Any,
    *,
    space: str = "w+",
    steps: int | None = None,
    align: bool = True,
    cache_dir: str | Path | None = None,
    face: int | None = None,
    encoder: str | None = "auto",
) -> np.ndarray:
    """Project a photo into ``generator``'s latent space, or read the earlier result from the cache.

    The cache key is the sha256 of the image bytes, the model's identity (a hash of its state dict) and every
    setting below, so a re-render of a scene does no projection work at all.

    Args:
        image_path: The photo.
        generator: A loaded :class:`morphstudio.generators.base.Generator`.
        space: ``w+`` (default) or ``w``.
        steps: Optimisation steps; ``None`` = the projector's default (fewer when an encoder exists).
        align: Detect and align the face (``False`` for images that are already aligned crops).
        cache_dir: Where entries live; default ``$MORPHSTUDIO_CACHE/projections`` or
            ``~/.cache/morphstudio/projections``.
        face: Which face (0-based, left to right); ``None`` = the largest.
        encoder: ``auto`` (the shipped encoder for this model, if any), ``none`` or a path.

    Returns:
        ``ws [num_ws, w_dim]`` float32.

    Raises:
        ImageInputError: The image cannot be read.
        FaceNotFoundError: No face found (with ``align``).
    """
    from morphstudio.faces import cache
    from morphstudio.faces.align import crop_params_for, settings_dict
    from morphstudio.faces.images import read_image

    path = Path(image_path)
    if not path.is_file():
        read_image(path)  # raises the one-line ImageInputError (missing / folder)
    cdir = Path(cache_dir) if cache_dir is not None else cache.default_cache_dir()
    settings = {
        "space": space, "steps": steps, "align": align, "face": face, "encoder": str(encoder),
        "crop": settings_dict(crop_params_for(generator)) if align else None, "version": PROJECTOR_VERSION,
    }
    key = cache.cache_key(cache.file_digest(path), cache.model_identity(generator), settings)
    hit = cache.load_entry(cdir, key)
    if hit is not None and hit.shape == (generator.num_ws, generator.w_dim):
        log.info("%s: projection read from the cache (%s)", path, cdir)
        return hit

    from morphstudio.faces.pipeline import make_projector, prepare_image

    prepared = prepare_image(path, generator, align=align, face=face)
    for note in prepared.notes:
        log.warning("%s: %s", path, note)
    projector = make_projector(generator, space=space, steps=steps, encoder=encoder)
    result = projector.project(prepared.target[None], None if prepared.mask is None else prepared.mask[None])
    ws = result.ws[0]
    cache.store_entry(cdir, key, ws, {"image": str(path), "settings": settings, "steps_run": result.steps,
                                      "best_loss": float(result.best_loss[0])})
    return ws


__all__ = ["PROJECTOR_VERSION", "project_cached"]
