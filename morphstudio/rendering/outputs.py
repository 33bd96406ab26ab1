"""Where a render writes, decided and checked before anything is written.

One set of rules, used by ``render``, ``render --dry-run`` and ``validate`` alike, so all three show the same
output path and codec:

- the codec follows the scene (or ``--codec``); a name whose extension implies another codec (``.gif``, ``.webm``,
  a still codec asked to write ``.mp4``) wins with a one-line note, and a name without an extension is an error
  unless the codec is ``png`` (an image folder) — never a silent switch to a folder;
- an output never replaces one of the render's inputs (scene, model, audio, photo, latent or direction file), nor
  a folder that holds one of them, the current folder or one of its parents;
- a folder is replaced only when morphstudio wrote it (see :mod:`morphstudio.sinks.image_folder`).

This module imports no torch: ``validate`` and the scene API use it too.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from morphstudio.errors import RenderError
from morphstudio.scene.schema import OutputSpec
from morphstudio.sinks.ffmpeg import CONTAINERS
from morphstudio.sinks.image_folder import describe_names, foreign_entries

# A still codec asked to write a video file becomes the first of these whose containers take the extension.
_VIDEO_FALLBACK: tuple[str, ...] = ("h264", "vp9", "ffv1", "prores")
# Extensions that hold exactly one of our codecs: the name decides.
_IMPLIED: dict[str, str] = {".gif": "gif", ".webm": "vp9"}

Inputs = Sequence[tuple[str, "str | Path"]]


@dataclass(frozen=True)
class OutputSettings:
    """The resolved output a render writes: a scene's ``OutputSpec`` (:meth:`from_spec`) with the caller's
    override applied, the path made absolute and the codec resolved (:func:`resolve_output`).

    Attributes:
        path: Output file (a folder for ``png``); ``None`` = no file, frames only go to the extra sinks.
        size: ``(W, H)``, one int for a square, or ``None`` for the model's resolution.
        fit: ``fill`` | ``fit`` | ``letterbox``.
        fps: Frames per second.
        codec: ``h264`` | ``h265`` | ``vp9`` | ``prores`` | ``gif`` | ``png`` | ``ffv1``.
        crf: Quality; ``None`` = codec default.
        audio: Audio file to mux, or ``None``.
        segment_seconds: Length of independently encoded segments.
        label: How messages name where the path came from (``scene.yaml:4: output.path``, ``-o``).
        notes: One-line notes about how the output was resolved (an extension that chose the codec).
    """

    path: str | None = "out.mp4"
    size: tuple[int, int] | int | None = None
    fit: str = "fill"
    fps: float = 30.0
    codec: str = "h264"
    crf: int | None = None
    audio: str | None = None
    segment_seconds: float = 4.0
    label: str = field(default="output.path", compare=False)
    notes: tuple[str, ...] = field(default=(), compare=False)

    @classmethod
    def from_spec(cls, spec: OutputSpec | OutputSettings | None) -> OutputSettings:
        """The one place a scene's ``OutputSpec`` becomes the renderer's record (``None``: the defaults)."""
        if spec is None:
            return cls()
        if isinstance(spec, OutputSettings):
            return spec
        return cls(
            path=None if spec.path is None else str(spec.path),
            size=tuple(spec.size) if isinstance(spec.size, (list, tuple)) else spec.size,
            fit=spec.fit,
            fps=float(spec.fps),
            codec=spec.codec,
            crf=spec.crf,
            audio=None if spec.audio is None else str(spec.audio),
            segment_seconds=float(spec.segment_seconds),
        )

    def with_path(self, path: str | Path | None, *, explicit_codec: bool = False,
                  label: str | None = None) -> OutputSettings:
        """A copy writing to ``path`` (made absolute), its codec resolved by :func:`resolve_codec`.

        Raises:
            RenderError: ``path`` has no extension and the codec is not ``png``.
        """
        if path is None:
            return replace(self, path=None, notes=())
        label = label or self.label
        codec, note = resolve_codec(str(path), self.codec, label, explicit=explicit_codec)
        # abspath, not resolve: '.', '..' and trailing slashes are normalised, symlinks kept as the user named them.
        return replace(self, path=os.path.abspath(os.path.expanduser(str(path))), codec=codec, label=label,
                       notes=(note,) if note else ())


# What a caller may give as an output override (see :func:`resolve_output`).
OutputOverride = None | bool | str | Path | dict[str, Any] | OutputSpec | OutputSettings


def _folder_like(path: str) -> bool:
    name = Path(path).name
    return path.endswith(("/", os.sep)) or name in ("", ".", "..") or Path(path).suffix == ""


def resolve_codec(path: str, codec: str, label: str = "output.path", *, explicit: bool = False) -> tuple[str, str | None]:
    """The codec a render of ``path`` uses, and a note when the name overrides the scene's codec.

    Args:
        path: The output path as given.
        codec: The scene's codec (or ``--codec``).
        label: Where the path came from, for messages.
        explicit: The codec was asked for explicitly (``--codec``): the name never overrides it.

    Raises:
        RenderError: A name without an extension (a folder) while the codec is not ``png``.
    """
    if _folder_like(path):
        if codec == "png":
            return codec, None
        stem = Path(path).name if Path(path).name not in ("", ".", "..") else "out"
        ext = CONTAINERS.get(codec, (".mp4",))[0]
        raise RenderError(
            f"{label}: {path!r} has no file extension, so it would be a folder of PNG frames, but the codec is "
            f"{codec}: name a file such as {stem}{ext}, or use codec png for an image folder"
        )
    if explicit:
        return codec, None  # --codec wins; container_check says when the name cannot hold it
    ext = Path(path).suffix.lower()
    implied = _IMPLIED.get(ext)
    if implied is None and codec in ("gif", "png"):
        implied = next((c for c in _VIDEO_FALLBACK if ext in CONTAINERS[c]), None)
    if implied is None or implied == codec:
        return codec, None
    return implied, f"note: {label}: {Path(path).name} is a {ext} file, so the output is {implied} (not codec {codec})"


def resolve_output(base: OutputSpec | OutputSettings | None, output: OutputOverride, *,
                   label: str = "output.path") -> OutputSettings:
    """Combine a scene's ``output`` block with a caller's override.

    Args:
        base: The scene's ``OutputSpec`` (or an already resolved :class:`OutputSettings`).
        output: ``None`` (use ``base``), ``False`` (no file), a path (``base`` with that path; codec from the
            extension when it implies one), a dict of field overrides (``codec`` given = used as is; ``label``
            names where its path came from, e.g. ``-o``), or a full ``OutputSpec``/``OutputSettings``.
        label: How messages name ``base``'s path.

    Raises:
        RenderError: The path has no extension and the codec is not ``png``.
    """
    settings = replace(OutputSettings.from_spec(base), label=label)
    if output is None:
        return settings.with_path(settings.path) if settings.path else settings
    if output is False:
        return replace(settings, path=None)
    if isinstance(output, (str, Path)):
        return settings.with_path(output, label="output")
    if isinstance(output, dict):
        fields = {k: v for k, v in output.items() if v is not None}
        path_given = "path" in fields
        path = fields.pop("path", settings.path)
        path_label = fields.pop("label", "output") if path_given else settings.label
        fields.pop("label", None)
        merged = replace(settings, **{k: (tuple(v) if k == "size" and isinstance(v, list) else v)
                                      for k, v in fields.items()})
        return merged.with_path(path, explicit_codec="codec" in fields, label=path_label)
    return OutputSettings.from_spec(output)


def _within(child: str, folder: str) -> bool:
    return child != folder and os.path.commonpath([child, folder]) == folder


def check_output(out: OutputSettings, inputs: Inputs = (), *, cwd: str | Path | None = None) -> None:
    """Refuse an output that would destroy something the render did not create. Touches nothing.

    Args:
        out: Resolved output settings (``path`` absolute).
        inputs: ``(what, path)`` of every file the render reads, e.g. ``("the audio file (output.audio)", p)``.
        cwd: The current folder (default: ``os.getcwd()``).

    Raises:
        RenderError: The output is an input or a folder holding one, the current folder or a parent of it, a
            folder morphstudio did not write (png), a folder or a non-regular file (video).
    """
    if out.path is None:
        return
    path = Path(out.path)
    real = os.path.realpath(path)
    for what, inp in inputs:
        rin = os.path.realpath(inp)
        same = rin == real
        if not same and os.path.exists(real) and os.path.exists(rin):
            same = os.path.samefile(real, rin)  # hard links
        if same:
            raise RenderError(f"{out.label}: {path} is {what}: refusing to overwrite an input of the render")
        if _within(rin, real):
            raise RenderError(f"{out.label}: {path} is a folder that holds {what} ({inp}): "
                              "the output would replace it")
    here = os.path.realpath(cwd if cwd is not None else os.getcwd())
    if real == here or _within(here, real):
        raise RenderError(f"{out.label}: {path} is the current folder or holds it: write into a new folder "
                          f"(e.g. {Path(here) / 'frames'})")
    if out.codec == "png":
        if path.exists() and not path.is_dir():
            raise RenderError(f"{out.label}: {path} exists and is not a folder (png output is a folder of frames)")
        if path.is_dir():
            foreign = foreign_entries(path)
            if foreign:
                raise RenderError(
                    f"{out.label}: {path} is a folder morphstudio did not write (it holds {describe_names(foreign)}): png "
                    "frames go into a new or empty folder, or one an earlier png render wrote"
                )
        return
    if path.is_dir():
        raise RenderError(f"{out.label}: {path} is a folder; give a file name such as {path / 'out.mp4'}")
    if path.exists() and not path.is_file():
        raise RenderError(f"{out.label}: {path} exists and is not a regular file (a pipe or device?)")

