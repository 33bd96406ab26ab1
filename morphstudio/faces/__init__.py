"""Faces from photos: alignment (mediapipe face mesh), projection into a generator's latent space, a trained
latent encoder, a projection cache and quality reports.

The scene loader's entry point is :func:`project_cached`: a photo in, ``ws [num_ws, w_dim]`` out, computed once
per (image bytes, model, settings) and read from the cache afterwards.
"""

from __future__ import annotations

import logging
from pathlib import Path
from collections.abc import Callable
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

# Bump when a change to the projector makes old cache entries stale.
PROJECTOR_VERSION = 1


def projection_settings(generator: Any, *, space: str = "w+", steps: int | None = None, align: bool = True,
                        face: int | None = None, encoder: str | None = "auto") -> dict[str, Any]:
    """Every setting that changes a projection's result (part of its cache key and stored with it)."""
    from morphstudio.faces.align import crop_params_for, settings_dict

    return {
        "space": space, "steps": steps, "align": align, "face": face, "encoder": str(encoder),
        "crop": settings_dict(crop_params_for(generator)) if align else None, "version": PROJECTOR_VERSION,
    }


def cached_projection(image_path: str | Path, generator: Any, *, cache_dir: str | Path | None = None,
                      **settings: Any) -> np.ndarray | None:
    """The cached ``ws [num_ws, w_dim]`` of a photo, or ``None`` when it has not been projected with these
    settings (the keyword arguments of :func:`project_cached`). Never projects."""
    from morphstudio.faces import cache

    path = Path(image_path)
    if not path.is_file():
        return None
    cdir = Path(cache_dir) if cache_dir is not None else cache.default_cache_dir()
    key = cache.cache_key(cache.file_digest(path), cache.model_identity(generator),
                          projection_settings(generator, **settings))
    hit = cache.load_entry(cdir, key)
    if hit is not None and hit.shape == (generator.num_ws, generator.w_dim):
        return hit
    return None


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
    progress: bool | Callable[[str, int], Any] = False,
    label: str | None = None,
    choose_hint: str | None = None,
    warn: Callable[[str], None] | None = None,
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
        progress: ``True`` shows face, step and loss on stderr (:class:`ProjectionProgress`); a callable
            ``progress(label, steps)`` returns the per-step callback to use instead; ``False`` is silent.
        label: Names the photo in notes and progress (default: its path), e.g. ``faces.me (photos/me.jpg)``.
        choose_hint: How the user picks another face of a photo with several (default: ``--face N``).
        warn: Receives the projector's warnings (default: logging).

    Returns:
        ``ws [num_ws, w_dim]`` float32.

    Raises:
        ImageInputError: The image cannot be read.
        FaceNotFoundError: No face found (with ``align``).
    """
    from morphstudio.faces import cache
    from morphstudio.faces.images import read_image

    path = Path(image_path)
    if not path.is_file():
        read_image(path)  # raises the one-line ImageInputError (missing / folder)
    name = label or str(path)
    cdir = Path(cache_dir) if cache_dir is not None else cache.default_cache_dir()
    settings = projection_settings(generator, space=space, steps=steps, align=align, face=face, encoder=encoder)
    key = cache.cache_key(cache.file_digest(path), cache.model_identity(generator), settings)
    hit = cache.load_entry(cdir, key)
    if hit is not None and hit.shape == (generator.num_ws, generator.w_dim):
        log.info("%s: projection read from the cache (%s)", name, cdir)
        return hit

    from morphstudio.faces.pipeline import make_projector, prepare_image

    prepared = prepare_image(path, generator, align=align, face=face, choose_hint=choose_hint)
    for note in prepared.notes:
        log.warning("%s: %s", name, note)
    projector = make_projector(generator, space=space, steps=steps, encoder=encoder, warn=warn)
    callback = None
    shown = None
    if callable(progress):
        callback = progress(name, projector.default_steps())
    elif progress:
        from morphstudio.faces.progress import ProjectionProgress

        callback = shown = ProjectionProgress(name, projector.default_steps())
    result = projector.project(prepared.target[None], None if prepared.mask is None else prepared.mask[None],
                               callback=callback)
    if shown is not None:
        shown.close(result.stopped_early)
    ws = result.ws[0]
    cache.store_entry(cdir, key, ws, {"image": str(path), "settings": settings, "steps_run": result.steps,
                                      "best_loss": float(result.best_loss[0])})
    return ws


__all__ = ["PROJECTOR_VERSION", "cached_projection", "project_cached", "projection_settings"]
