"""The photos of a scene (its ``image:`` faces): projecting them for a render, and saying what is left to do.

A render projects every photo not yet in the cache, showing face, step and loss as it goes. ``validate`` and
``render --dry-run`` never project: they list the photos still to project and what that will cost, measured on
this machine with this model.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from morphstudio.scene.schema import SceneSpec
from morphstudio.scene.validate import resolve_path

log = logging.getLogger(__name__)

SCENE_CHOOSE_HINT = "set face_index: N on this face to choose another"


@dataclass(frozen=True)
class PhotoFace:
    """One ``image:`` face of a scene.

    Attributes:
        name: The face's name in ``faces:``.
        image: The photo (absolute).
        written: The path as the scene writes it.
        steps: The face's ``steps:`` (None = the projector's default).
        align: The face's ``align:``.
        face_index: The face's ``face_index:`` (None = the largest face).
        cached: Its projection is already in the cache (a render will not project it again).
    """

    name: str
    image: Path
    written: str
    steps: int | None
    align: bool
    face_index: int | None
    cached: bool


def projection_kwargs(options: dict[str, Any]) -> dict[str, Any]:
    """The :func:`morphstudio.faces.project_cached` settings of a scene face's options (one place, so a render
    and the cache check of ``validate`` compute the same cache key)."""
    return {"space": "w+", "steps": options.get("steps"), "align": options.get("align", True),
            "face": options.get("face_index")}


def _options(spec: SceneSpec, name: str) -> dict[str, Any]:
    face = spec.faces[name]
    return {"steps": face.steps, "align": face.align, "face_index": face.face_index, "name": name}


def photo_faces(spec: SceneSpec, base_dir: Path, generator: Any) -> list[PhotoFace]:
    """Every image face of ``spec`` and whether its projection is cached (reads the cache; never projects)."""
    from morphstudio.faces import cached_projection

    out = []
    for name, face in spec.faces.items():
        if face.image is None:
            continue
        full = resolve_path(base_dir, face.image)
        hit = cached_projection(full, generator, **projection_kwargs(_options(spec, name)))
        out.append(PhotoFace(name, full, face.image, face.steps, face.align, face.face_index, hit is not None))
    return out


def dependents(spec: SceneSpec, names: set[str]) -> set[str]:
    """``names`` and every face built from them (averages, blends, analogies, mixes), transitively."""
    out = set(names)
    changed = True
    while changed:
        changed = False
        for name, face in spec.faces.items():
            if name not in out and any(ref in out for _, ref in face.references()):
                out.add(name)
                changed = True
    return out


def scene_projector(generator: Callable[[], Any], *, progress: bool = True) -> Callable[[Path, dict], np.ndarray]:
    """The projector a scene's timeline calls for each image face: cached, with progress, warnings once."""
    from morphstudio.faces import project_cached

    seen: set[str] = set()

    def warn_once(msg: str) -> None:
        if msg not in seen:  # the same fallback warning for every photo of the scene says nothing new
            seen.add(msg)
            log.warning("%s", msg)

    def project(image_path: Path, options: dict) -> np.ndarray:
        name = options.get("name")
        label = f"faces.{name} ({image_path.name})" if name else str(image_path)
        return project_cached(image_path, generator(), **projection_kwargs(options), progress=progress,
                              label=label, choose_hint=SCENE_CHOOSE_HINT, warn=warn_once)

    return project


def cached_only_projector(generator: Callable[[], Any], missing: set[str]) -> Callable[[Path, dict], np.ndarray]:
    """For ``validate`` / ``--dry-run``: the cached projection, or the average face as a stand-in for a photo not
    projected yet (its name is added to ``missing``). Never projects."""
    from morphstudio.faces import cached_projection

    def lookup(image_path: Path, options: dict) -> np.ndarray:
        from morphstudio.faces.images import read_image

        G = generator()
        hit = cached_projection(image_path, G, **projection_kwargs(options))
        if hit is not None:
            return hit
        read_image(image_path)  # a missing or broken photo is still reported now, not at render time
        missing.add(str(options.get("name")))
        w_avg = G.w_avg.detach().float().cpu().numpy().reshape(1, -1)
        return np.repeat(w_avg, G.num_ws, axis=0)

    return lookup


def default_steps(generator: Any) -> tuple[int, bool]:
    """The projector's default step count for this model, and whether a shipped encoder starts it."""
    from morphstudio.faces.encoder import builtin_encoder_path
    from morphstudio.faces.project import default_step_count

    has_encoder = builtin_encoder_path(generator) is not None
    return default_step_count(has_encoder), has_encoder


def step_seconds(generator: Any, steps: int = 3) -> float:
    """Seconds per projection step of one photo on this machine: a few real steps, timed."""
    from morphstudio.faces.project import ProjectConfig, Projector

    cfg = ProjectConfig(steps=steps, patience=0)
    proj = Projector(generator, cfg, warn=lambda msg: None)
    res = generator.resolution
    target = np.full((1, res, res, 3), 128, np.uint8)
    proj.project(target, None)  # the first steps pay for allocation: warm up once
    t0 = time.perf_counter()
    proj.project(target, None)
    return (time.perf_counter() - t0) / steps


def pending_lines(photos: list[PhotoFace], generator: Any, *, what: str) -> list[str]:
    """Report lines: which photos are not projected yet and what projecting them will cost.

    Args:
        photos: From :func:`photo_faces`.
        generator: The scene's model (its speed is measured).
        what: The command that does not project (``validate``, ``--dry-run``), for the wording.
    """
    if not photos:
        return []
    todo = [p for p in photos if not p.cached]
    if not todo:
        return [f"photos:     {len(photos)} image face(s), all projected already (read from the cache)"]
    default, has_encoder = default_steps(generator)
    per_step = step_seconds(generator)
    lines = [f"photos:     {len(todo)} of {len(photos)} image face(s) not projected yet ({what} does not project "
             "them; the first render does, then caches them):"]
    total = 0.0
    for p in todo:
        steps = p.steps or default
        total += steps * per_step
        start = " from the encoder's guess" if has_encoder else ""
        pick = f", face {p.face_index}" if p.face_index is not None else ""
        lines.append(f"  faces.{p.name:<12} {p.written}{pick}: up to {steps} steps{start}, about "
                     f"{steps * per_step:.0f} s")
    lines.append(f"  projecting will take about {total:.0f} s in all ({per_step * 1000:.0f} ms per step measured "
                 "here, plus face detection)")
    return lines
