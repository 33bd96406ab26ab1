"""Direction files: the format, their provenance, strength units and the per-model library of named directions.

A direction file is an ``.npz`` with two members:

* ``direction``: float32 ``[w_dim]`` (a W direction, applied to every latent of its layer range) or
  ``[num_ws, w_dim]``;
* ``provenance``: the UTF-8 bytes of a JSON object (as a uint8 array, so the one bounded array loader of
  :mod:`morphstudio.timeline.arrays` reads it like any other member).

Strength units. With provenance, strength 1 is *one standard deviation of the direction's label* (for a fitted
direction: the label's spread over the samples it was fitted on, calibrated along the direction), or one standard
deviation of the sampled latents along it (PCA / SeFa): ``provenance["scale"]`` is that many latent units. A bare
``.npy`` (or an ``.npz`` without provenance) keeps the old meaning: one standard deviation of the latents along it.

Set and add. ``provenance["semantics"]`` is ``"set"`` for boundaries (InterFaceGAN: logistic regression / linear
SVM) and fitted regressions, ``"add"`` for PCA / SeFa components (they have no boundary). ``set v`` moves a latent
along the unit direction ``n`` until its signed distance to the boundary, ``(w . n + intercept) / scale``, is
``v``; ``add v`` moves it by ``v * scale``. ``intercept`` is stored in latent units along ``n``.

Names. In ``--attr NAME=VALUE`` and in a scene's ``direction:``, a value with a path separator or an ``.npy`` /
``.npz`` suffix is a file; anything else is a name looked up in the model's library: the directions shipped for
the model (:data:`SHIPPED_DIR`) and the user's own (``$MORPHSTUDIO_HOME/directions/MODEL`` or
``~/.local/share/morphstudio/directions/MODEL``). A name that is also an existing file beside the scene is an
error naming both.

This module is numpy-only (the timeline imports it).
"""

from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from morphstudio.errors import MorphError
from morphstudio.latent import LatentSpace
from morphstudio.scene.validate import is_direction_file
from morphstudio.scene.yamlmap import Locator, Path_

FORMAT = "morphstudio-direction/1"
SHIPPED_DIR = Path(__file__).parent / "builtin"
"""Directions shipped with the package, one folder per model key (``dcgan-faces64`` for the built-in model)."""
MAX_PROVENANCE_BYTES = 1 << 20
SEMANTICS = ("set", "add")


class DirectionError(MorphError):
    """A direction name or file cannot be used (unknown name, ambiguous name, bad provenance...)."""


@dataclass
class Direction:
    """A direction and what produced it.

    Attributes:
        vector: ``[w_dim]`` or ``[num_ws, w_dim]`` float64 (any length: it is normalised where it is applied).
        provenance: The JSON record (empty for a bare file).
    """

    vector: np.ndarray
    provenance: dict[str, Any] = field(default_factory=dict)

    @property
    def fitted(self) -> bool:
        """True when the file says how strength maps to latent units (``scale``)."""
        return "scale" in self.provenance

    @property
    def semantics(self) -> str:
        """``"set"`` or ``"add"``: what a value in ``morphstudio edit --attr`` does (see the module docstring)."""
        return str(self.provenance.get("semantics", "add"))

    @property
    def unit(self) -> np.ndarray:
        """The direction scaled to length 1 (over all its numbers)."""
        v = np.asarray(self.vector, dtype=np.float64)
        return v / max(float(np.linalg.norm(v)), 1e-12)

    def unit_strength(self) -> str:
        """What strength 1 means, for ``directions show`` and messages."""
        if not self.fitted:
            return "one standard deviation of the model's latents along the direction (no provenance)"
        label = self.provenance.get("label")
        if label and self.provenance.get("method") not in ("pca", "sefa"):
            return (f"one standard deviation of its label {label!r} ({self.provenance.get('label_std', float('nan')):.4g} "
                    f"{self.provenance.get('label_unit', '')}), {float(self.provenance['scale']):.4g} latent units")
        return f"one standard deviation of the sampled latents along it ({float(self.provenance['scale']):.4g} latent units)"


def model_key(model: str) -> str:
    """The library folder name of a model: ``builtin:dcgan-faces64`` -> ``dcgan-faces64``, a path -> its stem."""
    if model.startswith("builtin:"):
        return model.split(":", 1)[1]
    return Path(model).stem


def user_dir() -> Path:
    """The user's direction library root (``$MORPHSTUDIO_HOME/directions`` or ``~/.local/share/morphstudio/...``)."""
    home = os.environ.get("MORPHSTUDIO_HOME")
    if home:
        return Path(home).expanduser() / "directions"
    return Path.home() / ".local" / "share" / "morphstudio" / "directions"


def library_dirs(model: str) -> list[Path]:
    """Folders searched for named directions of ``model``, shipped first."""
    key = model_key(model)
    return [SHIPPED_DIR / key, user_dir() / key]


def library(model: str) -> dict[str, Path]:
    """Every named direction of ``model``: name -> file (the user's override shipped ones of the same name)."""
    found: dict[str, Path] = {}
    for folder in library_dirs(model):
        if folder.is_dir():
            for p in sorted(folder.iterdir()):
                if p.suffix in (".npz", ".npy") and p.is_file():
                    found[p.stem] = p
    return found


is_file_value = is_direction_file
"""The naming rule (one copy, in scene validation): a path separator or an ``.npy`` / ``.npz`` suffix makes a
value a file."""


def resolve(value: str, model: str, base_dir: Path) -> Path:
    """The file a direction value names (see the module docstring for the rule).

    Raises:
        DirectionError: An unknown name, or a name that is both a library direction and a file in ``base_dir``.
    """
    if is_file_value(value):
        p = Path(value).expanduser()
        return p if p.is_absolute() else base_dir / p
    lib = library(model)
    beside = base_dir / value
    if value in lib and beside.exists():
        raise DirectionError(f"direction {value!r} is ambiguous: it names both the library direction {lib[value]} "
                             f"and the file {beside}; write ./{value} for the file")
    if value in lib:
        return lib[value]
    if beside.exists():
        return beside
    known = ", ".join(sorted(lib)) or "none"
    raise DirectionError(f"no direction named {value!r} for model {model_key(model)!r} (library: {known}; "
                         f"searched {', '.join(str(d) for d in library_dirs(model))})")


def save(path: str | Path, vector: np.ndarray, provenance: dict[str, Any]) -> Path:
    """Write a direction file (atomically: nothing half-written is left looking finished)."""
    from morphstudio.files import atomic_path

    prov = {"format": FORMAT, **provenance}
    if prov.get("semantics", "add") not in SEMANTICS:
        raise ValueError(f"semantics must be one of {SEMANTICS}")
    text = json.dumps(prov, sort_keys=True, default=float).encode()
    path = Path(path)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, direction=np.asarray(vector, dtype=np.float32),
                     provenance=np.frombuffer(text, dtype=np.uint8))
    return path


def _members(path: Path) -> list[str]:
    try:
        with zipfile.ZipFile(path) as zf:
            return [i.filename[:-4] for i in zf.infolist() if i.filename.endswith(".npy")]
    except (zipfile.BadZipFile, OSError):
        return []  # the array loader says what is wrong with it


def load(path: str | Path, *, shown: str | None = None, loc: Locator | None = None,
         field_path: Path_ = ("direction",)) -> Direction:
    """Read a direction file (``.npy`` or ``.npz``, with or without provenance) through the bounded loader.

    Raises:
        SceneError: The file is missing, damaged, too large, or its provenance is not a JSON object.
    """
    from morphstudio.timeline.arrays import load_array

    path = Path(path)
    shown = shown or str(path)
    loc = loc or Locator()
    names = _members(path) if path.suffix == ".npz" or _is_zip(path) else []

    def choose(want: str):  # noqa: ANN202 - a ChooseMember
        def pick(found: list[str]) -> str:
            if want in found:
                return want
            if len(found) == 1:
                return found[0]
            for n in ("direction", "d", "w"):
                if n in found:
                    return n
            raise loc.error(field_path, f"{shown!r} holds several arrays ({', '.join(found)}); "
                            "save the direction alone or as 'direction'")
        return pick

    vector = load_array(path, shown, loc, field_path, choose=choose("direction"))
    prov: dict[str, Any] = {}
    if "provenance" in names:
        raw = load_array(path, shown, loc, field_path, choose=choose("provenance"),
                         max_elements=MAX_PROVENANCE_BYTES)
        try:
            prov = json.loads(raw.astype(np.uint8).tobytes().decode())
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise loc.error(field_path, f"{shown!r} has a provenance member that is not JSON ({exc})") from None
        if not isinstance(prov, dict):
            raise loc.error(field_path, f"{shown!r} has a provenance member that is not a JSON object")
        scale = prov.get("scale")
        if scale is not None and not (isinstance(scale, (int, float)) and np.isfinite(scale) and scale > 0):
            raise loc.error(field_path, f"{shown!r}: provenance scale must be a positive number, got {scale!r}")
        if prov.get("semantics", "add") not in SEMANTICS:
            raise loc.error(field_path, f"{shown!r}: provenance semantics must be set or add, "
                            f"got {prov.get('semantics')!r}")
    return Direction(vector, prov)


def _is_zip(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(2) == b"PK"
    except OSError:
        return False


# --- what the timeline applies ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Applied:
    """A direction ready for the timeline: per latent row, a unit vector, a scale and an origin.

    Attributes:
        unit: ``[num_ws, w_dim]`` unit rows (zero rows outside a fitted layer range).
        scale: Latent units per strength unit (None: the caller's default, one std of the latents).
        origin: ``[num_ws, w_dim]`` a point on the boundary (``set`` measures from it), None: ``w_avg``.
        vector: ``[num_ws, w_dim]`` the file's vector as is (for a scene's ``normalize: false``).
    """

    unit: np.ndarray
    scale: float | None
    origin: np.ndarray | None
    vector: np.ndarray


def for_space(d: Direction, space: LatentSpace, shown: str, loc: Locator, field_path: Path_) -> Applied:
    """Shape a loaded direction for ``space``: ``[num_ws, w_dim]`` unit rows, its scale and boundary origin."""
    sp = space
    arr = np.asarray(d.vector, dtype=np.float64)
    if arr.ndim == 2 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.shape == (sp.w_dim,):
        arr = np.tile(arr, (sp.num_ws, 1))
    if arr.shape != (sp.num_ws, sp.w_dim):
        raise loc.error(field_path, f"{shown!r} has shape {list(d.vector.shape)}; a direction must be [{sp.w_dim}] "
                        f"or [{sp.num_ws}, {sp.w_dim}] for this model")
    if not np.any(arr):
        raise loc.error(field_path, f"{shown!r} is zero: a direction needs a length")
    layers = d.provenance.get("layers")
    if layers is not None and arr.shape[0] > 1:
        a, b = int(layers[0]), int(layers[1])
        keep = np.zeros(sp.num_ws, bool)
        keep[max(a, 0):min(b, sp.num_ws)] = True
        arr = np.where(keep[:, None], arr, 0.0)
    norm = np.linalg.norm(arr, axis=-1, keepdims=True)
    unit = np.where(norm > 0, arr / np.maximum(norm, 1e-300), 0.0)
    scale = float(d.provenance["scale"]) if d.fitted else None
    origin = None
    if "intercept" in d.provenance:
        # The boundary is {w : w . n + intercept = 0}; its point nearest the origin is -intercept * n.
        origin = -float(d.provenance["intercept"]) * unit
    return Applied(unit, scale, origin, arr)


def signed_distance(w: np.ndarray, d: Direction) -> np.ndarray:
    """``(w . n + intercept) / scale`` of ``[N, w_dim]`` W latents: the value ``set`` makes it (strength units)."""
    n = d.unit.reshape(-1)
    w = np.asarray(w, dtype=np.float64).reshape(len(w), -1)
    scale = float(d.provenance.get("scale", 1.0))
    return (w @ n + float(d.provenance.get("intercept", 0.0))) / scale


def load_applied(value: str, model: str, base_dir: Path, space: LatentSpace, loc: Locator,
                 field_path: Path_) -> Applied:
    """What a scene's ``direction:`` (a name or a file) applies: the timeline's one entry point.

    Raises:
        SceneError: Unknown or ambiguous name, or a file that cannot be used, located at ``field_path``.
    """
    try:
        full = resolve(value, model, base_dir)
    except DirectionError as err:
        raise loc.error(field_path, err.message) from None
    return for_space(load(full, shown=value, loc=loc, field_path=field_path), space, value, loc, field_path)
