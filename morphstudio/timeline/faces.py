"""Named faces as per-layer latents ``[num_ws, w_dim]``: seeds, files, photos and face math."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from morphstudio.errors import FaceNotFoundError
from morphstudio.latent import LatentSpace, truncate, z_from_seed
from morphstudio.scene.schema import FaceSpec, SceneSpec
from morphstudio.scene.validate import resolve_path
from morphstudio.scene.yamlmap import Locator, Path_
from morphstudio.timeline.arrays import load_array
from morphstudio.timeline.layers import one_latent_problem, select_rows

ProjectImage = Callable[[Path, dict], np.ndarray]
"""``project_image(path, options) -> [num_ws, w_dim]``: the projector, injected by the API. ``options`` holds the
face's ``steps``, ``align`` and ``face_index`` and its ``name`` in the scene."""


def _load_array(full: Path, face: FaceSpec, path: Path_, loc: Locator, space: LatentSpace) -> np.ndarray:
    shown = face.latent or ""

    def choose(names: list[str]) -> str:
        if face.key is not None:
            if face.key not in names:
                raise loc.error(path + ("key",), f"{shown!r} has no array {face.key!r} (it holds: {', '.join(names)})")
            return face.key
        if len(names) == 1:
            return names[0]
        common = [n for n in ("ws", "w", "z", "latent", "latents") if n in names]
        if not common:
            raise loc.error(path + ("latent",), f"{shown!r} holds several arrays ({', '.join(names)}): say which "
                            "with key:")
        return common[0]

    def check_shape(shape: tuple[int, ...]) -> str | None:
        # A latent, optionally with a batch axis, has 1 to 3 axes; load_latent names what is wrong with the rest
        # (the element bound of load_array has already kept the array small).
        return None if 1 <= len(shape) <= 3 else f"has shape {list(shape)}; {_expected(space)}"

    return load_array(full, shown, loc, path + ("latent",), choose=choose, check_shape=check_shape)


def _expected(space: LatentSpace) -> str:
    return (f"expected W [{space.w_dim}], W+ [{space.num_ws}, {space.w_dim}] or z [{space.z_dim}] "
            "(optionally with a leading batch axis and index:)")


def load_latent(face: FaceSpec, space: LatentSpace, base_dir: Path, path: Path_, loc: Locator) -> np.ndarray:
    """A latent file as ``[num_ws, w_dim]`` (W broadcast to every layer, z mapped through the model)."""
    full = resolve_path(base_dir, face.latent or "")
    arr = _load_array(full, face, path, loc, space)
    shape = list(arr.shape)
    expected = _expected(space)
    # A leading batch axis: [N, num_ws, w_dim], or [N, dim] unless it is exactly one W+ latent.
    is_wplus = arr.ndim == 2 and arr.shape == (space.num_ws, space.w_dim) and face.index is None
    if arr.ndim == 3 or (arr.ndim == 2 and not is_wplus):
        n = arr.shape[0]
        idx = face.index if face.index is not None else 0
        if face.index is None and n != 1:
            raise loc.error(path + ("latent",), f"{face.latent!r} holds {n} latents {shape}: pick one with index:")
        if idx >= n:
            raise loc.error(path + ("index",), f"index {idx} is out of range: {face.latent!r} holds {n} latents")
        arr = arr[idx]
    elif face.index is not None:
        raise loc.error(path + ("index",), f"{face.latent!r} holds a single latent {shape}; remove index:")
    elif arr.ndim not in (1, 2):
        raise loc.error(path + ("latent",), f"{face.latent!r} has shape {shape}; {expected}")
    space_kind = face.space
    if space_kind is None:
        if arr.shape[-1] == space.w_dim and arr.ndim in (1, 2):
            space_kind = "w"
        elif arr.ndim == 1 and arr.shape[0] == space.z_dim:
            space_kind = "z"
        else:
            raise loc.error(path + ("latent",), f"{face.latent!r} has shape {shape}; {expected}")
    if space_kind == "z":
        if arr.ndim != 1 or arr.shape[0] != space.z_dim:
            raise loc.error(path + ("latent",), f"{face.latent!r} has shape {shape}; z must be [{space.z_dim}]")
        return np.asarray(space.map_z(arr[None], psi=1.0), dtype=np.float64)[0]
    if arr.ndim == 1 and arr.shape[0] == space.w_dim:
        return np.tile(arr, (space.num_ws, 1))
    if arr.ndim == 2 and arr.shape == (space.num_ws, space.w_dim):
        return arr
    raise loc.error(path + ("latent",), f"{face.latent!r} has shape {shape}; {expected}")


class FaceResolver:
    """Computes faces on demand (dependencies first, each once).

    Args:
        spec: The scene.
        space: The model's latent space.
        base_dir: Folder that relative paths are relative to.
        loc: Error locator.
        project_image: The projector for image faces, or None when it is not available.
    """

    def __init__(self, spec: SceneSpec, space: LatentSpace, base_dir: Path, loc: Locator,
                 project_image: ProjectImage | None) -> None:
        self.spec = spec
        self.space = space
        self.base_dir = base_dir
        self.loc = loc
        self.project_image = project_image
        self._cache: dict[str, np.ndarray] = {}

    def all(self) -> dict[str, np.ndarray]:
        """Every face of the scene."""
        return {name: self[name] for name in self.spec.faces}

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self._cache:
            face = self.spec.faces[name]
            w = self._compute(name, face, ("faces", name))
            # A seed face's psi is applied by the mapping network (as NVIDIA's gen_images.py does it).
            w = truncate(w, self.space.w_avg.astype(np.float64), face.psi if face.kind != "seed" else None)
            self._cache[name] = np.asarray(w, dtype=np.float64)
        return self._cache[name]

    def _compute(self, name: str, face: FaceSpec, path: Path_) -> np.ndarray:
        sp = self.space
        if face.seed is not None:
            psi = 1.0 if face.psi is None else float(face.psi)
            return np.asarray(sp.map_z(z_from_seed(face.seed, sp.z_dim)[None], psi=psi), dtype=np.float64)[0]
        if face.latent is not None:
            return load_latent(face, sp, self.base_dir, path, self.loc)
        if face.image is not None:
            if self.project_image is None:
                raise self.loc.error(path + ("image",), "image faces need the projector, which is not available")
            full = resolve_path(self.base_dir, face.image)
            options = {"steps": face.steps, "align": face.align, "face_index": face.face_index, "name": name}
            try:
                ws = np.asarray(self.project_image(full, options), dtype=np.float64)
            except FaceNotFoundError as exc:  # no face, or no face number face_index: say where in the scene
                field = ("face_index",) if face.face_index is not None else ("image",)
                raise self.loc.error(path + field, str(exc)) from None
            if ws.shape != (sp.num_ws, sp.w_dim):
                raise self.loc.error(path + ("image",), f"the projector returned shape {list(ws.shape)}, expected "
                                     f"[{sp.num_ws}, {sp.w_dim}]")
            return ws
        if face.average is not None:
            total = sum(face.average.values())
            return sum(wt * self[ref] for ref, wt in face.average.items()) / total
        if face.blend is not None:
            t = 0.5 if face.t is None else float(face.t)
            a, b = self[face.blend[0]], self[face.blend[1]]
            return a + t * (b - a)
        if face.analogy is not None:
            an = face.analogy
            return self[an.c] + an.strength * (self[an.b] - self[an.a])
        if face.mix is not None:
            if sp.num_ws == 1:
                raise self.loc.error(path + ("mix",), one_latent_problem(sp, "style mixing"))
            out = np.full((sp.num_ws, sp.w_dim), np.nan)
            for i, part in enumerate(face.mix):
                rows = select_rows(part.layers, sp, path + ("mix", i, "layers"), self.loc)
                out[rows] = self[part.face][rows]
            missing = [i for i in range(sp.num_ws) if np.isnan(out[i, 0])]
            if missing:
                raise self.loc.error(path + ("mix",), f"layers {missing} come from no face: start the mix with "
                                     "a part that has all layers, e.g. {face: NAME}")
            return out
        raise AssertionError(f"face {name} has no kind")  # the schema guarantees one
