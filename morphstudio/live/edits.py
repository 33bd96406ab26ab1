"""The edits live mode applies to each frame's latent: a scene's attribute tracks and deform loops, ``--attr``
directions (library names or files) with their strengths, and ``--target`` (a morph toward another face).

Everything is read through the scene machinery (:mod:`morphstudio.api` / :mod:`morphstudio.timeline`): direction
files are loaded, checked and scaled exactly as in a render, and strengths follow the scene's keyframes. What live
mode changes is the base latent: a render starts from the scene's keyframed path, live mode from the encoder's
latent of the face in the frame.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from morphstudio.errors import MorphError
from morphstudio.live.controls import ATTR_RANGE, MORPH_RANGE, LiveControls

LATENT_SUFFIXES = (".npy", ".npz")
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")


def resolve_attr(name_or_path: str, model: str) -> Path:
    """The direction file an ``--attr NAME=VALUE`` refers to, by the directions library's rule
    (:func:`morphstudio.edit.directions.resolve`): a value with a path separator or an ``.npy`` / ``.npz``
    suffix is a file (relative to the current folder); anything else is a name in ``model``'s library.

    Raises:
        MorphError: An unknown or ambiguous name (the message names the library), or a file that does not exist.
    """
    from morphstudio.edit import directions as dirs

    try:
        path = dirs.resolve(name_or_path, model, Path.cwd())
    except dirs.DirectionError as err:
        raise MorphError(f"--attr {name_or_path}: {err.message}") from None
    if not path.is_file():
        raise MorphError(f"--attr {name_or_path}: direction file not found")
    return path


def parse_attr(text: str, model: str = "builtin:dcgan-faces64") -> tuple[Path, float]:
    """``NAME=VALUE`` or ``PATH=VALUE`` -> (direction file, strength).

    Raises:
        MorphError: No ``=``, a value that is not a finite number, or an unknown direction.
    """
    key, sep, value = text.rpartition("=")
    if not sep or not key:
        raise MorphError(f"--attr {text}: expected NAME=VALUE or PATH=VALUE (e.g. smile=1.5 or dirs/smile.npz=1.5)")
    try:
        strength = float(value)
    except ValueError:
        raise MorphError(f"--attr {text}: strength {value!r} is not a number") from None
    if not np.isfinite(strength) or abs(strength) > 100:
        raise MorphError(f"--attr {text}: strength {value} must be a finite number between -100 and 100")
    return resolve_attr(key, model), strength


def attr_semantics(path: Path, shown: str) -> str:
    """``"set"`` or ``"add"``: what the direction file says its value means (``add`` for a bare file), as in
    ``morphstudio edit --attr``.

    Raises:
        SceneError: The file is damaged or its provenance is not valid.
    """
    from morphstudio.edit import directions as dirs
    from morphstudio.scene.yamlmap import Locator

    return dirs.load(path, shown=shown, loc=Locator(), field_path=("--attr", shown)).semantics


def _short_name(key: str) -> str:
    """What a control is called: a library name as is, a file by its stem."""
    from morphstudio.edit.directions import is_file_value

    return Path(key).stem if is_file_value(key) else key


def target_face_spec(target: str, scene_faces: set[str]) -> dict[str, Any] | str:
    """What ``--target`` names: a scene face (returned as its name), ``seed:N``, or a photo / latent file
    (returned as a scene face spec).

    Raises:
        MorphError: None of those.
    """
    if target in scene_faces:
        return target
    if target.startswith("seed:"):
        try:
            seed = int(target[5:])
        except ValueError:
            raise MorphError(f"--target {target}: seed:N needs an integer seed") from None
        if not 0 <= seed < 2**32:
            raise MorphError(f"--target {target}: seed must be between 0 and 2^32 - 1")
        return {"seed": seed}
    p = Path(target).expanduser()
    suffix = p.suffix.lower()
    if p.is_file() and suffix in LATENT_SUFFIXES:
        return {"latent": str(p.resolve())}
    if p.is_file() and suffix in PHOTO_SUFFIXES:
        return {"image": str(p.resolve())}
    names = f" (scene faces: {', '.join(sorted(scene_faces))})" if scene_faces else ""
    if p.exists():
        raise MorphError(f"--target {target}: not a latent (.npy/.npz) or photo ({', '.join(PHOTO_SUFFIXES)})")
    raise MorphError(f"--target {target}: not a scene face, seed:N, or an existing photo / latent file{names}")


@dataclass
class LiveEdits:
    """Edits for a stream of encoded latents.

    Attributes:
        timelines: Built timelines whose ``loops`` and ``attributes`` are applied (the user's scene, the ``--attr``
            files).
        duration: Length of the user scene (its tracks repeat when it loops; else they hold their last value).
        loop: Whether the scene loops.
        target: ``[num_ws, w_dim]`` latent to morph toward, or None.
        morph: 0 = the face in the frame, 1 = the target.
        attr_tracks: The ``--attr`` attribute tracks and their short names (``smile``, a file's stem), in order.
        controls: Live strengths (the preview window's trackbars and keys), or None: the fixed strengths above.
            Made by :meth:`make_controls`.
    """

    timelines: list[Any] = field(default_factory=list)
    duration: float = 0.0
    loop: bool = False
    target: np.ndarray | None = None
    morph: float = 0.5
    attr_tracks: list[tuple[Any, str]] = field(default_factory=list)
    controls: LiveControls | None = None
    _control_of: dict[int, str] = field(default_factory=dict, repr=False)
    _morph_control: str | None = field(default=None, repr=False)

    def make_controls(self) -> LiveControls:
        """One control per ``--attr`` (range -3..3, widened to its start) and one for ``--morph`` when there is a
        target (0..1); :meth:`apply` reads them from now on."""
        specs = [(label, float(track.strength), ATTR_RANGE) for track, label in self.attr_tracks]
        if self.target is not None:
            specs.append(("morph", float(self.morph), MORPH_RANGE))
        self.controls = LiveControls(specs)
        # The last control is the morph's (an --attr file called morph.npz would otherwise take its name).
        self._morph_control = self.controls.names[-1] if self.target is not None else None
        # A control per track, by identity (a scene's own tracks may carry any name; they keep their keyframes).
        self._control_of = {id(track): name for (track, _), name in zip(self.attr_tracks, self.controls.names)}
        return self.controls

    def describe(self) -> str:
        parts = []
        short = {id(track): name for track, name in self.attr_tracks}
        for tl in self.timelines:
            # An --attr reads as the user wrote it (``smile=1 (set)``); a scene's attribute by its key.
            parts += [f"{short[id(t)]}={t.strength:g} ({t.mode})" if id(t) in short else f"attribute {t.name}"
                      for t in tl.attributes]
            parts += [f"{len(tl.loops)} deform loop(s)"] if tl.loops else []
        if self.target is not None:
            parts.append(f"morph {self.morph:g} toward the target")
        return ", ".join(parts) if parts else "no edits (reconstruction only)"

    def apply(self, ws: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Edited latents ``[N, num_ws, w_dim]`` float32 for encoded ``ws`` at stream times ``t`` (seconds)."""
        w = ws.astype(np.float64, copy=True)
        controls = self.controls
        if self.target is not None:
            morph = controls.get(self._morph_control) if controls is not None and self._morph_control else self.morph
            w += morph * (self.target[None] - w)
        t = np.asarray(t, dtype=np.float64)
        if self.duration > 0:
            t = np.mod(t, self.duration) if self.loop else np.clip(t, 0.0, self.duration)
        for tl in self.timelines:
            # The scene's deform loops and attribute tracks, applied to the encoder's latent instead of the
            # keyframed path (truncation and walks belong to a path; they are not applied).
            for track in (*tl.loops, *tl.attributes):
                name = self._control_of.get(id(track)) if controls is not None else None
                if name is not None:
                    # The same track with the strength the user has set now (read once per batch).
                    track = dataclasses.replace(track, strength=controls.get(name))
                w = track.apply(w, t)
        return w.astype(np.float32)


def build_edits(generator: Any, *, scene: str | None, attrs: list[str], target: str | None, morph: float,
                model: str) -> LiveEdits:
    """Load the edit scene, ``--attr`` files and ``--target`` for ``generator``.

    Raises:
        SceneError: The scene or a direction file is invalid (file:line: field).
        MorphError: A bad ``--attr`` or ``--target``.
    """
    from morphstudio.api import load_scene

    space = generator.latent_space()
    edits = LiveEdits(morph=morph)
    user = None
    if scene is not None:
        user = load_scene(scene, model=model, latent_space=space)
        edits.timelines.append(user.timeline())
        edits.duration, edits.loop = user.duration, user.is_loop
    parsed = [parse_attr(a, model) for a in attrs]
    scene_faces = set(user.spec.faces) if user is not None else set()
    tspec = target_face_spec(target, scene_faces) if target is not None else None
    if isinstance(tspec, str):
        assert user is not None
        edits.target = np.asarray(user.timeline().face_values[tspec], dtype=np.float64).reshape(space.num_ws, -1)
    if parsed or isinstance(tspec, dict):
        # A one-keyframe scene that exists only to load the --attr directions and the target face through the
        # scene machinery (the same checks, messages and strength units as a scene file's attributes).
        faces: dict[str, Any] = {"_live_base": {"seed": 0}}
        if isinstance(tspec, dict):
            faces["_live_target"] = tspec
        # Each --attr keeps its file's semantics (set for fitted boundaries, add for PCA / SeFa / bare files),
        # as `morphstudio edit --attr` does; a scene's own attributes choose with `mode:` instead.
        attributes = {f"--attr {i + 1} {a.rpartition('=')[0]}": {
                          "direction": str(p.resolve()), "strength": s,
                          "mode": attr_semantics(p, a.rpartition("=")[0])}
                      for i, ((p, s), a) in enumerate(zip(parsed, attrs))}
        extra = load_scene({"model": model, "output": {"duration": 1, "fps": 30}, "faces": faces,
                            "timeline": [{"at": 0, "face": "_live_base"}], "attributes": attributes},
                           latent_space=space)
        tl = extra.timeline()
        if parsed:
            edits.timelines.append(tl)
            edits.attr_tracks = [(track, _short_name(a.rpartition("=")[0])) for track, a in zip(tl.attributes, attrs)]
        if isinstance(tspec, dict):
            edits.target = np.asarray(tl.face_values["_live_target"], dtype=np.float64).reshape(space.num_ws, -1)
    return edits
