"""The scene file, as typed pydantic models; the JSON Schema for editors is generated from them.

Regenerate the committed schema with::

    python -m morphstudio.scene.schema > scenes/scene.schema.json

Fields that accept several spellings (``size: 512`` or ``[640, 360]``; ``layers: coarse`` or ``[0, 4]``...) are
normalised by small parsers instead of pydantic unions, so a mistake gives one clear message instead of one per
union member.
"""

from __future__ import annotations

import json
import sys
from pathlib import PurePath
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema, model_validator

from morphstudio import formats
from morphstudio.formats import CRF_MAX, MAX_FPS, MAX_FRAME, MAX_SECONDS, MAX_SIZE, MIN_SIZE, size_problem

# The literal types are built from morphstudio.formats, the one place the names are written
# (Literal[tuple] is Literal[*tuple]: pydantic and the JSON schema see the same enum).
Interp = Literal[formats.INTERPOLATIONS]
Ease = Literal[formats.EASINGS]
FitMode = Literal[formats.FIT_MODES]
CodecName = Literal[formats.CODECS]
NoiseMode = Literal[formats.NOISE_MODES]
GROUPS: tuple[str, ...] = ("coarse", "middle", "fine")
FACE_KINDS: tuple[str, ...] = ("seed", "latent", "image", "average", "blend", "analogy", "mix")

# Output limits live in morphstudio.formats (the command line takes them from there too); re-exported here.
MAX_CRF = CRF_MAX  # the widest encoder range (vp9); the renderer narrows it per codec


class _Spec(BaseModel):
    """Base of every scene model: unknown keys are errors, and no silent type coercion (``fps: yes`` is not 1,
    ``seed: "3"`` is not 3); ints are accepted where numbers are expected."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=(), validate_default=True, strict=True)


def _path_text(value: Any) -> Any:
    # Python users may pass pathlib paths; files keep plain strings (relative to the scene file).
    return str(value) if isinstance(value, PurePath) else value


PathStr = Annotated[str, BeforeValidator(_path_text)]


# --- value parsers (one clear message each) -------------------------------------------------------------------


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _parse_layers(value: Any) -> str | tuple[int, int]:
    if isinstance(value, str) and value in ("all", *GROUPS):
        return value
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(_is_int(v) for v in value):
        if not 0 <= value[0] < value[1]:
            raise ValueError(f"a layer range [start, stop) needs 0 <= start < stop, got {list(value)}")
        return (int(value[0]), int(value[1]))
    raise ValueError(f"must be all, coarse, middle, fine or [start, stop), got {value!r}")


LayerSel = Annotated[
    Any,
    BeforeValidator(_parse_layers),
    WithJsonSchema({
        "anyOf": [
            {"enum": ["all", *GROUPS]},
            {"type": "array", "items": {"type": "integer", "minimum": 0}, "minItems": 2, "maxItems": 2},
        ],
        "description": "Which latents: all, a layer group (coarse <= 8 px, middle 16-32 px, fine >= 64 px) or "
        "[start, stop) indices into the model's num_ws latents.",
    }),
]


def _parse_size(value: Any) -> tuple[int, int] | None:
    if value is None:
        return None
    if _is_int(value):
        value = [value, value]
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(_is_int(v) for v in value):
        w, h = int(value[0]), int(value[1])
        problem = size_problem(w, h)
        if problem:
            raise ValueError(problem)
        return (w, h)
    raise ValueError(f"must be a size in pixels (512) or [width, height], got {value!r}")


SizeSel = Annotated[
    Any,
    BeforeValidator(_parse_size),
    WithJsonSchema({
        "anyOf": [
            {"type": "integer", "minimum": MIN_SIZE, "maximum": MAX_SIZE, "multipleOf": 2},
            {"type": "array", "minItems": 2, "maxItems": 2,
             "items": {"type": "integer", "minimum": MIN_SIZE, "maximum": MAX_SIZE, "multipleOf": 2}},
            {"type": "null"},
        ],
        "description": "Output size: 512 (square) or [width, height]; null = the model's resolution.",
    }),
]


def _parse_weights(value: Any) -> dict[str, float] | None:
    if value is None:
        return None
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        out: dict[str, float] = {}
        for name in value:
            out[name] = out.get(name, 0.0) + 1.0
        return out
    if isinstance(value, dict) and value:
        out = {}
        for name, w in value.items():
            if not _is_number(w):
                raise ValueError(f"weight of {name!r} must be a number, got {w!r}")
            out[str(name)] = float(w)
        if abs(sum(out.values())) < 1e-12:
            raise ValueError(f"weights must not sum to zero, got {value!r}")
        return out
    raise ValueError(f"must be a list of face names or a mapping face -> weight, got {value!r}")


WeightsSel = Annotated[
    Any,
    BeforeValidator(_parse_weights),
    WithJsonSchema({
        "anyOf": [
            {"type": "array", "items": {"type": "string"}, "minItems": 1},
            {"type": "object", "additionalProperties": {"type": "number"}},
        ],
        "description": "Faces to average: [a, b, c] (equal weights) or {a: 2, b: 1} (weighted; normalised to sum 1).",
    }),
]


class GroupValues(_Spec):
    """One number per layer group."""

    coarse: float = Field(1.0, description="Latents driving resolutions <= 8 px (pose, face shape).")
    middle: float = Field(1.0, description="Latents driving 16-32 px (features, identity).")
    fine: float = Field(1.0, description="Latents driving >= 64 px (colour, texture).")


def _parse_psi(value: Any) -> float | GroupValues:
    if _is_number(value):
        if not -1.0 <= value <= 2.0:
            raise ValueError(f"psi must be between -1 and 2, got {value}")
        return float(value)
    if isinstance(value, dict):
        unknown = [k for k in value if k not in GROUPS]
        if unknown:
            raise ValueError(f"unknown layer group {unknown[0]!r} (groups: {', '.join(GROUPS)})")
        for k, v in value.items():
            if not _is_number(v) or not -1.0 <= v <= 2.0:
                raise ValueError(f"psi of {k} must be a number between -1 and 2, got {v!r}")
        return GroupValues(**{k: float(v) for k, v in value.items()})
    raise ValueError(f"must be a number or {{coarse: .., middle: .., fine: ..}}, got {value!r}")


PsiSel = Annotated[
    Any,
    BeforeValidator(_parse_psi),
    WithJsonSchema({
        "anyOf": [
            {"type": "number", "minimum": -1, "maximum": 2},
            {"type": "object", "properties": {g: {"type": "number"} for g in GROUPS}, "additionalProperties": False},
        ],
        "description": "Truncation psi: 1 = untouched, 0 = the average face. A number for all layers or one per "
        "layer group {coarse, middle, fine} (StyleGAN only).",
    }),
]


# --- output and noise (shared with the renderer) ---------------------------------------------------------------


class OutputSpec(_Spec):
    """Where and how the video is written."""

    path: PathStr = Field(
        "out.mp4", description="Output file (a folder when codec is png). Relative to the scene file."
    )
    size: SizeSel = Field(None, description="512 or [width, height]; null = the model's resolution.")
    fit: FitMode = Field(
        formats.FIT_MODES[0],
        description="Non-square sizes: fill = cover and centre-crop, fit = stretch, letterbox = black bars.",
    )
    fps: float = Field(30.0, gt=0, le=MAX_FPS, description="Frames per second.")
    duration: float | None = Field(
        None, gt=0, le=MAX_SECONDS, description="Seconds. null = derived from the timeline (or walk period)."
    )
    codec: CodecName = Field(
        formats.DEFAULT_CODEC,
        description="h264 (default), h265, vp9, prores, gif, png (an image folder) or ffv1 (lossless).",
    )
    crf: int | None = Field(None, ge=0, le=MAX_CRF, description="Quality (lower = better); null = the codec's default.")
    audio: PathStr | None = Field(None, description="Audio file to mux into the video. Relative to the scene file.")
    segment_seconds: float = Field(
        4.0, gt=0, le=3600, description="Video is encoded in segments this long (parallel encoders, --resume)."
    )


class NoiseSpec(_Spec):
    """Per-pixel noise inputs of StyleGAN models (ignored by models without noise)."""

    mode: NoiseMode = Field(
        formats.NOISE_MODES[0],
        description="const = the checkpoint's stored noise; fixed = one seeded map per layer for all frames; "
        "animated = seeded maps that move smoothly and loop; random = fresh every frame (flickers); none = off.",
    )
    seed: int = Field(0, ge=0, lt=2**32, description="Seed of fixed/animated noise.")
    period: float | None = Field(
        None, gt=0, description="Seconds per animated-noise cycle; null = the scene duration (so loops close)."
    )


# --- faces ----------------------------------------------------------------------------------------------------


class AnalogySpec(_Spec):
    """``c + strength * (b - a)``: "a is to b as c is to ?"."""

    a: str = Field(description="Face to subtract.")
    b: str = Field(description="Face to add.")
    c: str = Field(description="Face the difference is applied to.")
    strength: float = Field(1.0, ge=-10, le=10, description="Scale of (b - a).")


class MixPart(_Spec):
    """Some layers of a style-mixed face."""

    face: str = Field(description="Face the layers come from.")
    layers: LayerSel = Field("all", description="Layers taken from this face (later parts override earlier ones).")


class FaceSpec(_Spec):
    """A named face: exactly one of seed, latent, image, average, blend, analogy or mix."""

    seed: int | None = Field(None, ge=0, lt=2**32, description="Random face from this seed (z = RandomState(seed)).")
    psi: float | None = Field(
        None, ge=-1, le=2, description="Truncation of this face toward the average face (1 = none, 0.7 typical)."
    )
    latent: PathStr | None = Field(
        None, description=".npy/.npz file: W [w_dim], W+ [num_ws, w_dim] or z [z_dim]. Relative to the scene file."
    )
    key: str | None = Field(None, description="Array name inside a .npz (default: its only array, or w/ws/z).")
    index: int | None = Field(None, ge=0, description="Row to take when the file holds a batch of latents.")
    space: Literal["w", "z"] | None = Field(None, description="What the latent file holds; default: from its shape.")
    image: PathStr | None = Field(None, description="Photo to project into the model (needs the projector).")
    steps: int | None = Field(None, ge=1, le=100000, description="Projection steps (image faces).")
    align: bool = Field(True, description="Align the face in the photo before projecting (image faces).")
    face_index: int | None = Field(
        None, ge=0, le=7, description="Which face of a photo with several (up to 8), counted from 0 left to "
        "right (image faces; default: the largest). Same as `morphstudio project --face N`.")
    average: WeightsSel = Field(None, description="[a, b, c] or {a: 2, b: 1}: weighted mean of faces.")
    blend: list[str] | None = Field(None, min_length=2, max_length=2, description="[a, b]: the point t of the way.")
    t: float | None = Field(None, ge=-1, le=2, description="Blend position: 0 = first face, 1 = second (0.5).")
    analogy: AnalogySpec | None = Field(None, description="{a, b, c}: c + (b - a).")
    mix: list[MixPart] | None = Field(
        None, min_length=1, description="Style mixing: [{face: a}, {face: b, layers: coarse}] (StyleGAN only)."
    )

    @model_validator(mode="after")
    def _one_kind(self) -> "FaceSpec":
        given = [k for k in FACE_KINDS if getattr(self, k) is not None]
        if not given:
            raise ValueError(f"a face needs one of: {', '.join(FACE_KINDS)}")
        if len(given) > 1:
            raise ValueError(f"a face takes exactly one of {', '.join(FACE_KINDS)}; got {' and '.join(given)}")
        kind = given[0]
        options = {"latent": ("key", "index", "space"), "image": ("steps", "face_index"), "blend": ("t",)}
        for opt in ("key", "index", "space", "steps", "face_index", "t"):
            if getattr(self, opt) is not None and opt not in options.get(kind, ()):
                raise ValueError(f"{opt!r} does not apply to a {kind} face")
        if not self.align and kind != "image":
            raise ValueError(f"'align' does not apply to a {kind} face")
        return self

    @property
    def kind(self) -> str:
        """Which of :data:`FACE_KINDS` this face is."""
        return next(k for k in FACE_KINDS if getattr(self, k) is not None)

    def references(self) -> list[tuple[tuple[str | int, ...], str]]:
        """Faces this one is built from, as ``(field path relative to the face, name)``."""
        if self.average is not None:
            return [(("average", name), name) for name in self.average]
        if self.blend is not None:
            return [(("blend", i), name) for i, name in enumerate(self.blend)]
        if self.analogy is not None:
            return [(("analogy", k), getattr(self.analogy, k)) for k in ("a", "b", "c")]
        if self.mix is not None:
            return [(("mix", i, "face"), part.face) for i, part in enumerate(self.mix)]
        return []


# --- timeline -------------------------------------------------------------------------------------------------


MAX_KEY_SECONDS = MAX_SECONDS
"""Latest time a key may sit at (a day)."""
MAX_KEY_FRAME = MAX_FRAME
"""Latest frame number a key may sit at (see :data:`morphstudio.formats.MAX_FRAME`)."""


class _Timed(_Spec):
    """Something placed in time: ``at`` seconds or ``frame`` number (exactly one)."""

    at: float | None = Field(None, ge=0, le=MAX_KEY_SECONDS, description="Time in seconds.")
    frame: int | None = Field(None, ge=0, le=MAX_KEY_FRAME, description="Time as a frame number (instead of at).")

    @model_validator(mode="after")
    def _one_time(self) -> "_Timed":
        if (self.at is None) == (self.frame is None):
            raise ValueError("give exactly one of 'at' (seconds) or 'frame'" +
                             (" (got both)" if self.at is not None else ""))
        return self

    def seconds(self, fps: float) -> float:
        """The time in seconds at ``fps``."""
        return float(self.at) if self.at is not None else self.frame / fps


class StaggerSpec(_Spec):
    """Per-layer-group time offsets (seconds): when each group reaches the keyframe's face."""

    coarse: float = Field(0.0, ge=-3600, le=3600, description="Offset for coarse layers (pose), e.g. -0.5 = earlier.")
    middle: float = Field(0.0, ge=-3600, le=3600, description="Offset for middle layers (identity).")
    fine: float = Field(0.0, ge=-3600, le=3600, description="Offset for fine layers (texture), e.g. 0.5 = later.")

    def is_zero(self) -> bool:
        return self.coarse == 0 and self.middle == 0 and self.fine == 0


class Keyframe(_Timed):
    """The scene shows ``face`` at time ``at`` (and keeps it for ``hold`` seconds)."""

    face: str = Field(description="Name of a face from faces:.")
    hold: float = Field(0.0, ge=0, le=MAX_SECONDS, description="Seconds to stay on the face before moving on.")
    interp: Interp | None = Field(
        None, description="How to travel to the next keyframe: cubic, pchip, akima (no overshoot), linear, slerp."
    )
    ease: Ease | None = Field(None, description="Easing of the segment to the next keyframe: linear, in, out, in-out.")
    stagger: StaggerSpec | None = Field(
        None,
        description="Layer groups reach this face at different times (StyleGAN only), e.g. "
        "{coarse: -0.5, fine: 0.5}.",
    )


class ValueKey(_Timed):
    """A keyframed number."""

    value: float = Field(ge=-1000, le=1000, description="The value at this time.")


class TruncationKey(_Timed):
    """A keyframed truncation."""

    psi: PsiSel = Field(description="psi at this time: a number or {coarse, middle, fine}.")


class TruncationSpec(_Spec):
    """Scene-wide truncation toward the average latent, applied after everything else (keyframable)."""

    psi: PsiSel = Field(1.0, description="Constant psi (used when keys is empty).")
    keys: list[TruncationKey] = Field(default_factory=list, description="Keyframed psi: [{at: 0, psi: 0.7}, ...].")
    interp: Interp = Field("pchip", description="Interpolation between psi keys (pchip: no overshoot).")

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        # `truncation: 0.7` is short for `truncation: {psi: 0.7}`.
        if _is_number(data):
            return {"psi": data}
        return data


# --- walks, loops, attributes ---------------------------------------------------------------------------------


class WalkSpec(_Spec):
    """A seeded random path through random faces."""

    kind: Literal["loop", "random"] = Field(
        "loop", description="loop = a perfect loop through `faces` random faces each period; random = a new random "
        "face every `step` seconds (does not loop)."
    )
    faces: int = Field(4, ge=2, le=10000, description="Random faces per period (kind: loop).")
    step: float = Field(2.0, gt=0, le=3600, description="Seconds between random faces (kind: random).")
    period: float | None = Field(None, gt=0, le=MAX_SECONDS,
                                 description="Seconds per loop; null = the scene duration.")
    seed: int | None = Field(None, ge=0, lt=2**32, description="Seed of the faces; null = derived from the scene seed.")
    psi: float = Field(1.0, ge=-1, le=2, description="Truncation of the random faces.")
    interp: Interp | None = Field(None, description="Interpolation; default cubic (slerp on z-space models).")
    layers: LayerSel = Field("all", description="Layers the walk drives.")
    mode: Literal["replace", "add"] = Field(
        "replace", description="replace = the walk is the path on its layers; add = add its motion to the timeline."
    )
    strength: float = Field(1.0, ge=0, le=10, description="replace: 1 = fully the walk; add: scale of the motion.")


class LoopSpec(_Spec):
    """A sinusoidal deform loop added on top of the path."""

    layers: LayerSel = Field("all", description="Layers it moves.")
    amplitude: float = Field(
        1.0, ge=0, le=100,
        description="Size, in standard deviations of the model's latents along the direction (1 = gentle, "
        "3 = strong; 0 = no effect).",
    )
    period: float | None = Field(None, gt=0, le=MAX_SECONDS,
                                 description="Seconds per cycle; null = the scene duration.")
    phase: float = Field(0.0, ge=-1000, le=1000, description="Start of the cycle, in cycles (0.25 = a quarter).")
    shape: Literal["sine", "circle"] = Field(
        "sine", description="sine = back and forth along one direction; circle = round a circle in two directions."
    )
    direction: PathStr = Field("random", description="'random' (seeded) or a direction file (.npy/.npz).")
    seed: int | None = Field(
        None, ge=0, lt=2**32, description="Seed of a random direction; null = from the scene seed."
    )
    start: float = Field(0.0, ge=0, le=MAX_SECONDS, description="Seconds when it begins.")
    end: float | None = Field(None, gt=0, le=MAX_SECONDS, description="Seconds when it ends; null = the scene end.")
    fade_in: float = Field(0.0, ge=0, le=MAX_SECONDS, description="Seconds to fade in after start.")
    fade_out: float = Field(0.0, ge=0, le=MAX_SECONDS, description="Seconds to fade out before end.")


class AttributeSpec(_Spec):
    """An attribute edit: move along a direction with a keyframed strength."""

    direction: PathStr = Field(description="Direction file (.npy/.npz): [w_dim] or [num_ws, w_dim], or a name "
                               "from the model's direction library (smile, age...; `morphstudio directions list`).")
    layers: LayerSel = Field("all", description="Layers the edit applies to.")
    mode: Literal["add", "set"] = Field(
        "add", description="add = push by strength; set = put every frame's position along the direction at strength."
    )
    strength: float = Field(1.0, ge=-1000, le=1000, description="Constant strength (used when keys is empty), "
                            "in standard deviations of the model's latents along the direction (3 = strong).")
    keys: list[ValueKey] = Field(default_factory=list, description="Keyframed strength: [{at: 0, value: 0}, ...].")
    interp: Interp = Field(
        "pchip", description="Interpolation of the strength keys: pchip (default) never overshoots a key; cubic is "
        "smoother but swings past closely spaced keys (both periodic when the scene loops).")
    normalize: bool = Field(
        True, description="Rescale the direction per layer so strength is in standard deviations; false = use the "
        "file's vector as is (strength 1 = the vector itself)."
    )


# --- the scene ------------------------------------------------------------------------------------------------


class SceneSpec(_Spec):
    """A morphstudio scene: faces, how to travel between them, and what plays on top."""

    model_config = ConfigDict(
        json_schema_extra={"$schema": "https://json-schema.org/draft/2020-12/schema", "title": "morphstudio scene"},
    )

    model: PathStr = Field(
        "builtin:dcgan-faces64",
        description="Generator: builtin:NAME or a .pkl/.pt/.safetensors path (relative to the scene file).",
    )
    device: str | None = Field(None, description="auto (default), cpu, cuda, cuda:1, mps.")
    seed: int = Field(0, ge=0, lt=2**32, description="Base seed for everything random that has no seed of its own.")
    loop: bool = Field(False, description="The video loops seamlessly: its last frame leads back into the first.")
    interp: Interp | None = Field(
        None, description="Default interpolation between keyframes: cubic (default; slerp on z-space models)."
    )
    ease: Ease = Field("linear", description="Default easing between keyframes.")
    stagger: StaggerSpec | None = Field(None, description="Default per-layer-group offsets for every keyframe.")
    output: OutputSpec = Field(default_factory=OutputSpec, description="Output file, size, fps, duration, codec.")
    noise: NoiseSpec = Field(default_factory=NoiseSpec, description="Noise inputs (StyleGAN).")
    truncation: TruncationSpec = Field(
        default_factory=TruncationSpec, description="0.7, {psi: {coarse: 0.5, fine: 1}} or keyframed {keys: [...]}."
    )
    faces: dict[str, FaceSpec] = Field(default_factory=dict, description="Named faces.")
    timeline: list[Keyframe] = Field(default_factory=list, description="Keyframes: [{at: 0, face: a}, ...].")
    walks: list[WalkSpec] = Field(default_factory=list, description="Seeded random walks.")
    loops: list[LoopSpec] = Field(default_factory=list, description="Sinusoidal deform loops (several may play).")
    attributes: dict[str, AttributeSpec] = Field(default_factory=dict, description="name -> attribute edit track.")
    guard: Literal["warn", "clamp", "off"] = Field(
        "warn", description="A keyframe or attribute edit that takes a latent far from the average face "
        "(morphstudio.edit.guard.LIMIT times the model's typical distance): warn once, clamp it back, or off.")


def json_schema() -> dict[str, Any]:
    """The JSON Schema of a scene file (what ``scenes/scene.schema.json`` holds)."""
    schema = SceneSpec.model_json_schema()
    # `truncation: 0.7` is accepted as short for `{psi: 0.7}`: tell editors too.
    trunc = schema["properties"]["truncation"]
    schema["properties"]["truncation"] = {
        "anyOf": [{"type": "number", "minimum": -1, "maximum": 2}, {"$ref": trunc.pop("$ref")}],
        **trunc,
    }
    return {"$schema": schema.pop("$schema", "https://json-schema.org/draft/2020-12/schema"), **schema}


def json_schema_text() -> str:
    """:func:`json_schema` as the exact text of the committed file."""
    return json.dumps(json_schema(), indent=2, sort_keys=False) + "\n"


if __name__ == "__main__":
    sys.stdout.write(json_schema_text())
