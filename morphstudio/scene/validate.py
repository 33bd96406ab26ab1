"""From raw YAML data to a checked :class:`SceneSpec`, with ``file:line: field: problem`` errors.

Two passes: pydantic checks types and ranges (its errors are translated to the scene's own format, with the line
of the field), then :func:`check_spec` checks what pydantic cannot see: face names, cycles, files, keyframe order
and the scene's duration. Checks that need the model (layer ranges, latent shapes) run when the timeline is built.
"""

from __future__ import annotations

import difflib
import math
import os
import stat
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from pydantic import BaseModel, ValidationError

from morphstudio.errors import SceneError
from morphstudio.scene.schema import MAX_KEY_SECONDS, SceneSpec, WalkSpec, _Timed
from morphstudio.scene.yamlmap import Locator, Path_, file_kind, format_field

_TIME_EPS = 1e-9


def did_you_mean(word: str, choices: typing.Iterable[str]) -> str:
    """`` (did you mean 'seed'?)`` when ``word`` is close to one of ``choices``, else ``""``."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


# --- pydantic error translation -------------------------------------------------------------------------------


def _unwrap(tp: Any) -> list[Any]:
    """The concrete types inside Optional/Union/Annotated."""
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(tp)[0])
    if origin in (typing.Union, types.UnionType):
        out: list[Any] = []
        for arg in typing.get_args(tp):
            if arg is not type(None):
                out.extend(_unwrap(arg))
        return out
    return [tp]


def _step(tp: Any, part: str | int) -> Any | None:
    for cand in _unwrap(tp):
        origin = typing.get_origin(cand)
        if isinstance(cand, type) and issubclass(cand, BaseModel) and isinstance(part, str):
            fld = cand.model_fields.get(part)
            if fld is not None:
                return fld.annotation
        elif origin is list and isinstance(part, int):
            return typing.get_args(cand)[0]
        elif origin is dict and isinstance(part, str):
            return typing.get_args(cand)[1]
    return None


def _model_at(loc: Path_) -> type[BaseModel] | None:
    tp: Any = SceneSpec
    for part in loc:
        tp = _step(tp, part)
        if tp is None:
            return None
    for cand in _unwrap(tp):
        if isinstance(cand, type) and issubclass(cand, BaseModel):
            return cand
    return None


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _translate(err: dict[str, Any]) -> tuple[Path_, str]:
    loc: Path_ = tuple(err["loc"])
    kind = err["type"]
    msg = str(err["msg"])
    if kind == "extra_forbidden":
        key = str(loc[-1])
        model = _model_at(loc[:-1])
        allowed = [n for n in model.model_fields] if model is not None else []
        problem = f"unknown key {key!r}{did_you_mean(key, allowed)}"
        if allowed:
            problem += f"; allowed: {', '.join(allowed)}"
        return loc, problem
    if kind == "missing":
        return loc, "required key is missing"
    if kind in ("value_error", "assertion_error"):
        msg = msg.split(", ", 1)[1] if msg.startswith(("Value error, ", "Assertion failed, ")) else msg
        return loc, msg
    msg = msg.replace("Input should be", "must be")
    for noise in (", got a number with a fractional part", ", unable to parse string as a number",
                  ", unable to interpret input", " after validation"):
        msg = msg.replace(noise, "")
    msg = msg.replace("List should have", "must have").replace("Tuple should have", "must have")
    msg = msg.split(" or instance of ")[0]
    if kind in ("model_type", "model_attributes_type", "dict_type"):
        msg = "must be a mapping of keys"
    return loc, f"{msg}, got {_short(err.get('input'))}"


def parse_spec(data: Any, loc: Locator) -> SceneSpec:
    """Validate raw data into a :class:`SceneSpec`, raising a located :class:`SceneError` on the first problem."""
    if isinstance(data, SceneSpec):
        return data
    if not isinstance(data, dict):
        kind = "a list" if isinstance(data, list) else f"{type(data).__name__} {_short(data)}"
        raise SceneError(f"a scene must be a mapping of keys (model:, faces:, timeline: ...), got {kind}",
                         file=loc.file, line=loc.line(()))
    try:
        return SceneSpec.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors()
        # Sort by line so the first problem in the file is the one reported.
        located = sorted((_translate(e) for e in errors), key=lambda pe: loc.line(pe[0]) or 0)
        path, problem = located[0]
        more = [f"{format_field(p)}: {m}" for p, m in located[1:6]]
        hint = None
        if more:
            hint = f"{len(located) - 1} more problem(s): " + "; ".join(more)
        raise loc.error(path, problem, hint=hint) from None


# --- semantic checks ------------------------------------------------------------------------------------------


def resolve_path(base_dir: Path, value: str) -> Path:
    """A path from the scene, relative to the scene file's folder unless absolute (``~`` expanded)."""
    p = Path(value).expanduser()
    return p if p.is_absolute() else (base_dir / p)


def _require_file(base_dir: Path, value: str, path: Path_, loc: Locator, what: str, hint: str | None = None) -> None:
    full = resolve_path(base_dir, value)
    if not full.exists():
        raise loc.error(path, f"{what} not found: {value!r} (looked for {full})", hint=hint)
    if full.is_dir():
        raise loc.error(path, f"{what} is a folder, not a file: {value!r}")
    mode = full.stat().st_mode
    if not stat.S_ISREG(mode):
        # Refused here, before anything opens it: reading a FIFO blocks until someone writes to it.
        raise loc.error(path, f"{what} {value!r} is not a regular file ({file_kind(mode)})")


def is_direction_file(value: str) -> bool:
    """A direction value with a path separator or an ``.npy`` / ``.npz`` suffix is a file; anything else is a name
    from the model's direction library (:mod:`morphstudio.edit.directions`)."""
    return "/" in value or os.sep in value or value.endswith((".npy", ".npz"))


def input_files(spec: SceneSpec) -> Iterator[tuple[Path_, str, str]]:
    """Every input file the scene names (the model and audio aside), in scene order: ``(field, path as written,
    what it is)``."""
    for name, face in spec.faces.items():
        if face.latent is not None:
            yield ("faces", name, "latent"), face.latent, "latent file"
        if face.image is not None:
            yield ("faces", name, "image"), face.image, "image"
    for name, attr in spec.attributes.items():
        if is_direction_file(attr.direction):  # a name is looked up in the model's library by the timeline
            yield ("attributes", name, "direction"), attr.direction, "direction file"
    for i, lp in enumerate(spec.loops):
        if lp.direction != "random":
            yield ("loops", i, "direction"), lp.direction, "direction file"


def _time_field(key: _Timed) -> str:
    return "at" if key.at is not None else "frame"


def _fmt_s(t: float) -> str:
    return f"{t:g} s"


def _check_order(keys: list[Any], path: Path_, fps: float, loc: Locator, *, holds: bool = False) -> None:
    prev_end: float | None = None
    prev_t = 0.0
    for i, key in enumerate(keys):
        t = key.seconds(fps)
        if t > MAX_KEY_SECONDS:
            # A frame number within the schema's bound can still be later than any time may be at a low fps.
            raise loc.error(path + (i, _time_field(key)), f"frame {key.frame} is {_fmt_s(t)} at {fps:g} fps, "
                            f"after the latest time a key may have ({_fmt_s(MAX_KEY_SECONDS)})")
        if prev_end is not None and t <= prev_end + _TIME_EPS:
            why = f" (the keyframe before holds from {_fmt_s(prev_t)})" if holds and prev_end != prev_t else ""
            raise loc.error(path + (i, _time_field(key)), f"must be after {_fmt_s(prev_end)}{why}, got {_fmt_s(t)}")
        prev_t = t
        prev_end = t + (key.hold if holds else 0.0)


@dataclass(frozen=True)
class Timing:
    """How long a scene is and how frames map to time.

    Attributes:
        duration: Seconds (one loop period for looping scenes).
        fps: Frames per second.
        frame_count: Frames to render (a loop renders frames ``0..N-1``; frame N would equal frame 0).
        is_loop: The scene loops.
    """

    duration: float
    fps: float
    frame_count: int
    is_loop: bool

    def times(self, frames: Any) -> Any:
        """Seconds of each frame index. In a loop, frame N lands exactly on the period, so closure is exact."""
        import numpy as np

        f = np.asarray(frames, dtype=np.float64)
        if self.is_loop:
            return f * (self.duration / self.frame_count)
        return f / self.fps


def closing_key(spec: SceneSpec, fps: float, duration: float | None) -> bool:
    """True when a looping timeline ends on its first face at ``t0 + duration`` (that key closes the loop)."""
    tl = spec.timeline
    if not spec.loop or len(tl) < 2 or tl[-1].face != tl[0].face:
        return False
    if duration is None:
        return True
    return abs(tl[-1].seconds(fps) - (tl[0].seconds(fps) + duration)) < 1e-6


def derive_timing(spec: SceneSpec, loc: Locator) -> Timing:
    """The scene's duration and frame count (explicit, or derived from the timeline / walks)."""
    fps = spec.output.fps
    tl = spec.timeline
    explicit = spec.output.duration
    if explicit is not None:
        duration = float(explicit)
    elif tl and spec.loop:
        if not closing_key(spec, fps, None):
            raise loc.error(
                ("timeline",),
                "a looping scene needs output.duration, or a last keyframe that returns to the first face "
                f"({tl[0].face!r})",
            )
        duration = tl[-1].seconds(fps) - tl[0].seconds(fps)
    elif tl:
        duration = tl[-1].seconds(fps) + tl[-1].hold
        if duration <= 0:
            raise loc.error(("output",), "cannot tell how long the scene is: set output.duration")
    else:
        periods = [w.period for w in spec.walks if w.period is not None and w.kind == "loop"]
        if not periods:
            raise loc.error(("output",), "cannot tell how long the scene is: set output.duration (or give a timeline)")
        duration = float(periods[0])
    if duration > MAX_KEY_SECONDS:
        # Holds can carry the last keyframe past the latest time: bound the scene itself, as output.duration is.
        where: Path_ = ("timeline", len(tl) - 1) if tl else ("output",)
        raise loc.error(where, f"the scene would last {_fmt_s(duration)}; at most {_fmt_s(MAX_KEY_SECONDS)} (a day)")
    if spec.loop or explicit is not None:
        count = int(round(duration * fps))
    else:
        count = int(math.floor(duration * fps + 1e-6)) + 1
    if count < 1:
        raise loc.error(("output", "duration"),
                        f"the scene is shorter than one frame ({_fmt_s(duration)} at {fps:g} fps)")
    if spec.loop and abs(duration * fps - count) > 1e-6:
        raise loc.error(
            ("output", "duration") if explicit is not None else ("timeline",),
            f"a looping scene must last a whole number of frames: {_fmt_s(duration)} at {fps:g} fps is "
            f"{duration * fps:g} frames",
        )
    return Timing(duration=duration, fps=fps, frame_count=count, is_loop=spec.loop)


MAX_WALK_KNOTS = 100_000
"""Random faces one walk may pass through. A walk computes all of them up front (its spline is global), so a tiny
``step`` over a long scene would ask for gigabytes; the timeline also bounds the numbers they hold, per model."""


def walk_knots(walk: WalkSpec, duration: float) -> int:
    """How many random faces (spline knots) ``walk`` uses over a scene of ``duration`` seconds."""
    if walk.kind == "loop":
        return walk.faces
    return int(math.ceil(duration / walk.step)) + 2


def _face_cycles(spec: SceneSpec, loc: Locator) -> None:
    state: dict[str, int] = {}  # 1 = visiting, 2 = done

    def visit(name: str, chain: list[str]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            cycle = chain[chain.index(name):] + [name]
            raise loc.error(("faces", name), f"faces refer to each other in a cycle: {' -> '.join(cycle)}")
        state[name] = 1
        for _, ref in spec.faces[name].references():
            visit(ref, chain + [name])
        state[name] = 2

    for name in spec.faces:
        visit(name, [])


def check_spec(spec: SceneSpec, loc: Locator, base_dir: Path, *, check_model_file: bool = True) -> Timing:
    """Check what the types cannot: names, cycles, files, keyframe order, duration.

    Args:
        spec: The parsed scene.
        loc: Where errors point.
        base_dir: Folder that relative paths are relative to.
        check_model_file: Also check that the ``model:`` file exists (off when ``--model`` overrides it).

    Returns:
        The scene's :class:`Timing`.

    Raises:
        SceneError: The first problem found.
    """
    files: dict[Path_, list[tuple[Path_, str, str]]] = {}  # by owner, e.g. ("faces", "alice")
    for field, value, what in input_files(spec):
        files.setdefault(field[:2], []).append((field, value, what))

    def require_files(owner: Path_) -> None:
        for field, value, what in files.get(owner, []):
            _require_file(base_dir, value, field, loc, what)

    names = list(spec.faces)
    for name, face in spec.faces.items():
        for rel, ref in face.references():
            if ref not in spec.faces:
                raise loc.error(("faces", name) + rel, f"unknown face {ref!r}{did_you_mean(ref, names)}")
        require_files(("faces", name))
    _face_cycles(spec, loc)

    if check_model_file and not spec.model.startswith("builtin:"):
        _require_file(base_dir, spec.model, ("model",), loc, "model file",
                      hint="paths are relative to the scene file; or pass --model PATH (or builtin:dcgan-faces64)")
    if spec.output.audio is not None:
        _require_file(base_dir, spec.output.audio, ("output", "audio"), loc, "audio file")

    fps = spec.output.fps
    for i, key in enumerate(spec.timeline):
        if key.face not in spec.faces:
            hint = None if names else "define faces under faces: (e.g. faces: {alice: {seed: 1}})"
            raise loc.error(("timeline", i, "face"), f"unknown face {key.face!r}{did_you_mean(key.face, names)}",
                            hint=hint)
    _check_order(spec.timeline, ("timeline",), fps, loc, holds=True)
    _check_order(spec.truncation.keys, ("truncation", "keys"), fps, loc)
    for name, attr in spec.attributes.items():
        require_files(("attributes", name))
        _check_order(attr.keys, ("attributes", name, "keys"), fps, loc)
    for i in range(len(spec.loops)):
        require_files(("loops", i))

    timing = derive_timing(spec, loc)
    for i, walk in enumerate(spec.walks):
        knots = walk_knots(walk, timing.duration)
        if knots > MAX_WALK_KNOTS:
            at_least = timing.duration / (MAX_WALK_KNOTS - 2)
            raise loc.error(("walks", i, "step"), f"a random face every {_fmt_s(walk.step)} over "
                            f"{_fmt_s(timing.duration)} is {knots} faces; at most {MAX_WALK_KNOTS} "
                            f"(use a step of at least {at_least:.3g} s)")
    for i, lp in enumerate(spec.loops):
        end = timing.duration if lp.end is None else lp.end
        if end <= lp.start:
            raise loc.error(("loops", i, "end"), f"must be after start ({_fmt_s(lp.start)}), got {_fmt_s(end)}")
        if lp.fade_in + lp.fade_out > end - lp.start + 1e-9:
            raise loc.error(("loops", i, "fade_out" if lp.fade_out else "fade_in"),
                            f"fade_in + fade_out ({_fmt_s(lp.fade_in + lp.fade_out)}) is longer than the loop plays "
                            f"({_fmt_s(end - lp.start)})")
    if spec.loop and spec.timeline:
        t0 = spec.timeline[0].seconds(fps)
        closing = closing_key(spec, fps, timing.duration)
        for i, key in enumerate(spec.timeline):
            if closing and i == len(spec.timeline) - 1:
                if key.hold:
                    raise loc.error(("timeline", i, "hold"), "the keyframe that closes the loop cannot hold "
                                    "(hold on the first keyframe instead)")
                continue
            end = key.seconds(fps) + key.hold
            if end >= t0 + timing.duration - _TIME_EPS:
                raise loc.error(
                    ("timeline", i, "hold" if key.hold else _time_field(key)),
                    f"must end before the loop closes at {_fmt_s(t0 + timing.duration)}, got {_fmt_s(end)}",
                )
    if not spec.timeline and not any(w.mode == "replace" and w.layers == "all" for w in spec.walks):
        raise loc.error(("timeline",), "the scene has no path: give a timeline of keyframes or a walk over all layers")
    return timing


def load_spec(data: Any, loc: Locator, base_dir: Path, *, check_model_file: bool = True) -> tuple[SceneSpec, Timing]:
    """:func:`parse_spec` then :func:`check_spec`."""
    spec = parse_spec(data, loc)
    return spec, check_spec(spec, loc, base_dir, check_model_file=check_model_file)


__all__ = [
    "MAX_WALK_KNOTS",
    "Timing",
    "check_spec",
    "closing_key",
    "derive_timing",
    "did_you_mean",
    "input_files",
    "load_spec",
    "parse_spec",
    "resolve_path",
    "walk_knots",
]
