"""The Python API for scenes: ``load_scene`` -> :class:`Scene` -> ``latents`` / ``render``.

Example (the same scene as a YAML file would give)::

    import morphstudio

    scene = morphstudio.load_scene({
        "model": "builtin:dcgan-faces64",
        "loop": True,
        "output": {"path": "media/three.mp4", "size": 256, "fps": 24, "duration": 6},
        "faces": {"a": {"seed": 1}, "b": {"seed": 2}, "mid": {"average": ["a", "b"]}},
        "timeline": [{"at": 0, "face": "a"}, {"at": 2, "face": "mid"}, {"at": 4, "face": "b"}],
        "loops": [{"amplitude": 0.2, "period": 3}],
    })
    ws = scene.latents(range(scene.frame_count))      # numpy [T, num_ws, w_dim] float32
    morphstudio.render(scene)

A dict's relative paths are relative to ``base_dir`` (default: the current folder); a file's to the file.
"""

from __future__ import annotations

import hashlib
import json
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from morphstudio.errors import CheckpointError, MorphError
from morphstudio.faces.cache import file_digest
from morphstudio.latent import LatentSpace
from morphstudio.scene.schema import NoiseSpec, OutputSpec, SceneSpec
from morphstudio.scene.validate import Timing, input_files, load_spec, resolve_path
from morphstudio.scene.yamlmap import Locator, load_yaml, read_scene_text
from morphstudio.timeline.faces import ProjectImage
from morphstudio.timeline.timeline import ClosureItem, Timeline

if TYPE_CHECKING:  # the renderer imports torch: only where a render is asked for
    from morphstudio.rendering.engine import RenderResult
    from morphstudio.rendering.outputs import OutputOverride, OutputSettings

__all__ = ["Scene", "load_scene", "render"]


def _file_identity(path: Path, hash_limit: int = 64 * 2**20) -> dict[str, Any]:
    """Size, mtime and (for files up to ``hash_limit``) a content hash: what makes two inputs the same."""
    st = path.stat()
    ident: dict[str, Any] = {"path": str(path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}
    if st.st_size <= hash_limit and path.is_file():
        ident["sha256"] = file_digest(path)
    return ident


class Scene:
    """A loaded, validated scene.

    Use :func:`load_scene` to make one. The model is loaded only when something needs it
    (:meth:`generator`, :meth:`latent_space`, :meth:`latents`).

    Attributes:
        path: The scene file (None for scenes from Python data).
        spec: The validated :class:`SceneSpec`.
        model: ``builtin:NAME`` or an absolute checkpoint path (the ``--model`` override when given).
        device: Requested device (None = auto).
        seed: The scene seed.
        fps: Frames per second.
        frame_count: Frames to render.
        duration: Seconds (one period for a looping scene).
        is_loop: Frame ``frame_count`` equals frame 0.
        output: The output settings, with ``path`` and ``audio`` made absolute.
        noise: The noise settings.
    """

    def __init__(self, spec: SceneSpec, timing: Timing, *, path: Path | None, base_dir: Path, loc: Locator,
                 model: str, model_override: str | None, device: str | None,
                 latent_space: LatentSpace | None = None, project_image: ProjectImage | None = None) -> None:
        self.path = path
        self.spec = spec
        self.base_dir = base_dir
        self.loc = loc
        self.timing = timing
        self.model = model
        self._model_override = model_override
        self.device = device
        out = spec.output.model_copy()
        out.path = str(resolve_path(base_dir, spec.output.path).resolve())
        if out.audio is not None:
            out.audio = str(resolve_path(base_dir, out.audio).resolve())
        self.output: OutputSpec = out
        self._space = latent_space
        self._project_image = project_image
        self._generator: Any = None
        self._timeline: Timeline | None = None
        self._check_timeline: Timeline | None = None  # validate / --dry-run: photos not projected (see timeline)
        self._unprojected: set[str] = set()  # image faces that stand in as the average face there
        self._lock = threading.Lock()  # the renderer may ask for latents from worker threads

    # --- timing and settings (read-only views of ``spec`` and ``timing``) -----------------------------------------

    @property
    def seed(self) -> int:
        return self.spec.seed

    @property
    def noise(self) -> NoiseSpec:
        return self.spec.noise

    @property
    def fps(self) -> float:
        return float(self.timing.fps)

    @property
    def frame_count(self) -> int:
        return int(self.timing.frame_count)

    @property
    def duration(self) -> float:
        return float(self.timing.duration)

    @property
    def is_loop(self) -> bool:
        return bool(self.timing.is_loop)

    # --- the model ------------------------------------------------------------------------------------------------

    def generator(self) -> Any:
        """The torch generator (loaded once, on :attr:`device`)."""
        if self._generator is None:
            from morphstudio.generators.loading import load_generator

            self._generator = load_generator(self.model, device=self.device)
        return self._generator

    def latent_space(self) -> LatentSpace:
        """The model's :class:`LatentSpace` (from the generator unless one was injected)."""
        if self._space is None:
            self._space = self.generator().latent_space()
        return self._space

    def _projector(self, project: bool = True) -> ProjectImage | None:
        if self._project_image is not None:
            return self._project_image
        if not any(face.image is not None for face in self.spec.faces.values()):
            return None
        try:
            import morphstudio.faces  # noqa: F401 - absent when the projector is not installed
            from morphstudio.faces.scene_photos import cached_only_projector, scene_projector
        except ImportError:
            return None
        inner = scene_projector(self.generator) if project else cached_only_projector(self.generator,
                                                                                      self._unprojected)

        def run(image_path: Path, options: dict) -> np.ndarray:
            ws = inner(image_path, options)
            return np.asarray(ws, dtype=np.float32).reshape(self.latent_space().num_ws, -1)

        return run

    def photos(self) -> list[Any]:
        """The scene's image faces (:class:`morphstudio.faces.scene_photos.PhotoFace`) and whether each one's
        projection is cached already. Loads the model; never projects."""
        if not any(face.image is not None for face in self.spec.faces.values()):
            return []
        from morphstudio.faces.scene_photos import photo_faces

        return photo_faces(self.spec, self.base_dir, self.generator())

    # --- latents --------------------------------------------------------------------------------------------------

    def timeline(self, *, project: bool = True) -> Timeline:
        """The built :class:`Timeline` (faces resolved, model-dependent checks done).

        Args:
            project: False for checks that must not spend minutes projecting photos (``validate``,
                ``--dry-run``): photos already in the cache are used, the others stand in as the average face
                (their names in :attr:`unprojected`). That timeline is never used to render.
        """
        with self._lock:
            if self._timeline is None and (project or self._check_timeline is None):
                tl = Timeline(self.spec, self.timing, self.latent_space(), self.base_dir, self.loc,
                              self._projector(project), model=self.model)
                if project:
                    self._timeline = tl
                else:
                    self._check_timeline = tl
            return self._timeline if self._timeline is not None else self._check_timeline  # type: ignore

    @property
    def unprojected(self) -> list[str]:
        """Image faces that ``timeline(project=False)`` could not read from the cache (not projected yet)."""
        return sorted(self._unprojected) if self._timeline is None else []

    def latents(self, frames: Sequence[int] | np.ndarray) -> np.ndarray:
        """Latents ``[T, num_ws, w_dim]`` float32 for the given frame indices."""
        return self.timeline().latents(frames)

    def closure(self, *, project: bool = True) -> list[ClosureItem]:
        """How every periodic element returns to its start at frame ``frame_count`` (see ``validate``).

        With ``project=False``, elements that depend on photos not projected yet are reported unchecked
        (``checked`` False, the note naming the faces) instead of being measured on a stand-in face.
        """
        items = self.timeline(project=project).closure()
        missing = self.unprojected
        if not missing:
            return items
        from morphstudio.faces.scene_photos import dependents

        needs = dependents(self.spec, set(missing))
        if not any(key.face in needs for key in self.spec.timeline):
            return items  # the photos' faces are not on the path: nothing measured depends on them
        note = "not checked until " + ", ".join(f"faces.{n}" for n in missing) + " " + \
            ("is" if len(missing) == 1 else "are") + " projected"
        return [ClosureItem(i.element, float("nan"), True, note, checked=False)
                if i.element in ("timeline", "total") else i for i in items]

    # --- identity and description ---------------------------------------------------------------------------------

    def _input_files(self) -> list[Path]:
        return [resolve_path(self.base_dir, value) for _, value, _ in input_files(self.spec)]

    def _library_directions(self) -> dict[str, Path]:
        """The library file behind each attribute track that names its direction (``direction: smile``)."""
        from morphstudio.edit.directions import DirectionError, is_file_value, resolve

        found: dict[str, Path] = {}
        for attr in self.spec.attributes.values():
            if is_file_value(attr.direction) or attr.direction in found:
                continue
            try:
                found[attr.direction] = resolve(attr.direction, self.model, self.base_dir)
            except DirectionError:
                continue  # building the timeline reports it, located in the scene
        return {name: p for name, p in found.items() if p.is_file()}

    # --- the output -----------------------------------------------------------------------------------------------

    def output_label(self) -> str:
        """How messages name the scene's output path: ``scene.yaml:4: output.path``."""
        if self.path is None:
            return "output.path"
        line = self.loc.line(("output", "path"))
        return f"{self.path}:{line}: output.path" if line is not None else f"{self.path}: output.path"

    def resolved_output(self, override: OutputOverride = None) -> OutputSettings:
        """The output a render writes: the scene's ``output`` with ``override`` applied (a path, a dict of fields,
        ``False`` for none; see :func:`morphstudio.rendering.outputs.resolve_output`), path absolute, codec
        resolved. ``render``, ``render --dry-run`` and ``validate`` all show this one.

        Raises:
            RenderError: The path has no extension and the codec is not png.
        """
        from morphstudio.rendering.outputs import resolve_output

        return resolve_output(self.output, override, label=self.output_label())

    def input_paths(self) -> list[tuple[str, Path]]:
        """Every file the frames are made from, described for messages: the scene file, the model, the audio,
        photos, latent and direction files. An output may be none of them (nor a folder holding one)."""
        found: list[tuple[str, Path]] = []
        if self.path is not None:
            found.append(("the scene file", Path(self.path)))
        if not self.model.startswith("builtin:"):
            found.append(("the model" + (" (--model)" if self._model_override else " (model:)"), Path(self.model)))
        if self.output.audio is not None:
            found.append(("the audio file (output.audio)", Path(self.output.audio)))
        for field, value, what in input_files(self.spec):
            dotted = ".".join(str(p) for p in field)
            found.append((f"the {what} of {dotted}", resolve_path(self.base_dir, value)))
        return found

    def fingerprint(self) -> str:
        """sha256 of everything that decides the frames: the spec, the model, input files, overrides."""
        ident: dict[str, Any] = {"spec": self.spec.model_dump(mode="json")}
        if self.model.startswith("builtin:"):
            ident["model"] = self.model
        else:
            ident["model"] = _file_identity(Path(self.model))
        ident["overrides"] = {"model": self._model_override, "device": self.device}
        ident["files"] = [_file_identity(p) for p in self._input_files() if p.exists()]
        # A direction named from the model's library is a file too: a refitted smile.npz must re-render.
        ident["library"] = {name: _file_identity(p) for name, p in self._library_directions().items()}
        ident["output"] = {"path": self.output.path, "audio": self.output.audio}
        blob = json.dumps(ident, sort_keys=True, separators=(",", ":")).encode()
        return hashlib.sha256(blob).hexdigest()

    def summary(self) -> str:
        """A few lines describing the scene (for ``render --dry-run`` and ``validate``)."""
        spec, out = self.spec, self.output
        try:
            resolved = self.resolved_output()
            codec, path = resolved.codec, resolved.path  # what a render writes (an extension may pick the codec)
        except MorphError:
            codec, path = out.codec, out.path  # the error itself is reported by whoever checks the output
        size = "model resolution" if out.size is None else f"{out.size[0]}x{out.size[1]} ({out.fit})"
        kinds: dict[str, int] = {}
        for face in spec.faces.values():
            kinds[face.kind] = kinds.get(face.kind, 0) + 1
        faces = ", ".join(f"{n} {k}" for k, n in kinds.items()) or "none"
        lines = [
            f"scene:      {self.path if self.path is not None else '(from Python data)'}",
            f"model:      {self.model}" + (" (--model override)" if self._model_override else ""),
            f"device:     {self.device or 'auto'}",
            f"duration:   {self.duration:g} s at {self.fps:g} fps = {self.frame_count} frames"
            + (" (loops)" if self.is_loop else ""),
            f"output:     {path} [{codec}, {size}"
            + (f", crf {out.crf}" if out.crf is not None else "") + (f", audio {out.audio}" if out.audio else "") + "]",
            f"faces:      {len(spec.faces)} ({faces})",
            f"keyframes:  {len(spec.timeline)}",
            f"walks:      {len(spec.walks)}   loops: {len(spec.loops)}   attributes: {len(spec.attributes)}",
            f"noise:      {spec.noise.mode}" + (f" (seed {spec.noise.seed})" if spec.noise.mode in
                                                 ("fixed", "animated") else ""),
        ]
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"Scene({str(self.path) if self.path else 'dict'}, model={self.model!r}, frames={self.frame_count})"


def load_scene(
    source: str | Path | dict | SceneSpec,
    *,
    model: str | None = None,
    device: str | None = None,
    latent_space: LatentSpace | None = None,
    project_image: ProjectImage | None = None,
    base_dir: str | Path | None = None,
) -> Scene:
    """Load and validate a scene.

    Args:
        source: A YAML file path, or the scene as a dict / :class:`SceneSpec`.
        model: Override the scene's ``model:`` (path relative to the current folder, or ``builtin:NAME``).
        device: Override the scene's ``device:``.
        latent_space: Use this latent space instead of loading the model (tests, tools without torch).
        project_image: Use this projector for image faces instead of :mod:`morphstudio.faces`.
        base_dir: Folder for relative paths of a dict scene (default: the current folder).

    Returns:
        The :class:`Scene`.

    Raises:
        SceneError: The scene is invalid (the message names file:line: field).
        CheckpointError: The ``model`` override does not exist.
    """
    path: Path | None = None
    if isinstance(source, (str, Path)):
        display = str(source)
        path = Path(source).expanduser()
        text = read_scene_text(path, display)
        data, loc = load_yaml(text, display)
        base = path.resolve().parent
    else:
        data, loc = source, Locator()
        base = Path(base_dir).resolve() if base_dir is not None else Path.cwd()
    spec, timing = load_spec(data, loc, base, check_model_file=model is None)
    if model is not None:
        resolved_model = model
        if not model.startswith("builtin:"):
            p = Path(model).expanduser().resolve()
            if not p.exists():
                raise CheckpointError(model, "model file not found (from --model)")
            resolved_model = str(p)
    elif spec.model.startswith("builtin:"):
        resolved_model = spec.model
    else:
        resolved_model = str(resolve_path(base, spec.model).resolve())
    dev = device if device is not None else spec.device
    if dev == "auto":
        dev = None
    return Scene(spec, timing, path=path, base_dir=base, loc=loc, model=resolved_model, model_override=model,
                 device=dev, latent_space=latent_space, project_image=project_image)


def render(scene: Scene | str | Path | dict, *, executor: str = "local", address: str | None = None,
           workers: int | None = None, **kwargs: Any) -> RenderResult:
    """Render a scene (see :func:`morphstudio.rendering.renderer.render_scene` for the options).

    ``executor="ray"`` renders the segments on Ray workers (:func:`morphstudio.distributed.render_distributed`):
    a local instance on 127.0.0.1 for the job, or the cluster at ``address``; ``workers`` sets how many.
    """
    if executor not in ("local", "ray"):
        from morphstudio.errors import RenderError

        raise RenderError(f"executor: expected 'local' or 'ray', got {executor!r}")
    if not isinstance(scene, Scene):
        scene = load_scene(scene, model=kwargs.pop("model", None), device=kwargs.pop("device", None))
    if executor == "ray":
        from morphstudio.distributed import RayExecutor, render_distributed

        threads = kwargs.pop("threads", None)
        return render_distributed(scene, RayExecutor(address, workers=workers, threads=threads), threads=threads,
                                  **kwargs)
    from morphstudio.rendering.renderer import render_scene

    return render_scene(scene, **kwargs)

