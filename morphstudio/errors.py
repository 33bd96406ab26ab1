"""Every error a user can cause, in one place.

Anything raised from here is a *user-facing* error: the CLI prints ``str(error)`` as one line (plus an optional
hint) and exits with status 2, without a traceback. Bugs in morphstudio itself are ordinary exceptions and keep
their traceback. A message says what is wrong and where: file, line, field and the offending value.
"""

from __future__ import annotations

from pathlib import Path


class MorphError(Exception):
    """Base class of all user-facing errors.

    Args:
        message: One line saying what is wrong and where.
        hint: Optional second line saying what to do about it.
    """

    exit_code = 2

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


def report(err: MorphError) -> tuple[str, int]:
    """How a user error is shown and which status it exits with: the one reporter of ``cli.main`` and the watch
    loop, so a scene mistake reads the same whether it stops a command or is shown while a preview waits for a fix.

    Args:
        err: The error.

    Returns:
        ``(text, exit_code)``: the text is ``error: MESSAGE`` plus, when the error has a hint, a second line
        ``hint: HINT``; the exit code is the error class's (2).
    """
    text = f"error: {err}"
    if err.hint:
        text += f"\nhint: {err.hint}"
    return text, err.exit_code


# --- generators and checkpoints -------------------------------------------------------------------------------


class CheckpointError(MorphError):
    """A model file cannot be read: missing, empty, truncated, unknown format or mismatched shapes."""

    def __init__(self, path: str | Path | None, problem: str, *, hint: str | None = None) -> None:
        self.path = None if path is None else str(path)
        super().__init__(f"{path}: {problem}" if path is not None else problem, hint=hint)


class UnsafeCheckpointError(CheckpointError):
    """A pickle asked for a global that is not on the allow-list; nothing from it was executed."""

    def __init__(self, path: str | Path | None, global_name: str) -> None:
        self.global_name = global_name
        super().__init__(
            path,
            f"refused to load: the pickle asks for '{global_name}', which is not on morphstudio's allow-list "
            "(nothing from the file was executed)",
            hint="only StyleGAN2/3 generator pickles, rosinality .pt files and morphstudio .safetensors are accepted",
        )


class ModelError(MorphError):
    """A model was asked for something it cannot do (unknown builtin, wrong latent shape, bad layer range...)."""


class DeviceError(MorphError):
    """The requested compute device does not exist or cannot be used."""


# --- scenes ---------------------------------------------------------------------------------------------------


class SceneError(MorphError):
    """A scene file is invalid. The message reads ``file:line: field: problem``.

    Args:
        problem: What is wrong, quoting the bad value.
        file: Scene file path, if the scene came from a file.
        line: 1-based line number of the offending field, if known.
        field: Dotted/indexed path of the field, e.g. ``timeline[2].at``.
    """

    def __init__(
        self,
        problem: str,
        *,
        file: str | Path | None = None,
        line: int | None = None,
        field: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.problem = problem
        self.file = None if file is None else str(file)
        self.line = line
        self.field = field
        where = ""
        if self.file is not None:
            where = self.file + (f":{line}" if line is not None else "") + ": "
        elif line is not None:
            where = f"line {line}: "
        what = f"{field}: " if field else ""
        super().__init__(f"{where}{what}{problem}", hint=hint)


# --- rendering and output -------------------------------------------------------------------------------------


class RenderError(MorphError):
    """A render could not be carried out (bad frame range, output not writable, resume mismatch...)."""


class EncoderError(RenderError):
    """ffmpeg failed. ``stderr_tail`` holds the last lines ffmpeg printed."""

    def __init__(self, message: str, *, returncode: int | None = None, stderr_tail: str = "") -> None:
        self.returncode = returncode
        self.stderr_tail = stderr_tail
        detail = f" (exit code {returncode})" if returncode is not None else ""
        tail = stderr_tail.strip().splitlines()[-1:] if stderr_tail.strip() else []
        super().__init__(
            f"{message}{detail}" + (f": {tail[0]}" if tail else ""),
            hint=("ffmpeg said:\n" + stderr_tail.strip()) if stderr_tail.strip() else None,
        )


class DisplayError(RenderError):
    """A preview window or virtual camera was asked for but there is no display/device for it."""


# --- faces, images and projection -----------------------------------------------------------------------------


class ImageInputError(MorphError):
    """An input image cannot be used: missing, not an image, truncated, too large..."""

    def __init__(self, path: str | Path | None, problem: str, *, hint: str | None = None) -> None:
        self.path = None if path is None else str(path)
        super().__init__(f"{path}: {problem}" if path is not None else problem, hint=hint)


class FaceNotFoundError(ImageInputError):
    """No face (or not the requested face) was found in an image."""


class ProjectionError(MorphError):
    """Projection of an image into the latent space failed or was misconfigured."""


class EncoderModelError(MorphError):
    """A latent encoder file is missing, broken or does not fit the generator."""
