"""One configuration mechanism for every generator backend: stored constructor kwargs -> a checked dataclass.

Each backend describes its settings as a frozen dataclass deriving from :class:`GeneratorConfig`. Every field
says its type and its sane range (:func:`setting`, :func:`dim`, :func:`layer_count`, :func:`resolution`), so one
routine reads the kwargs a checkpoint stores, for every family alike:

* unknown keys are refused, naming the key (``init_kwargs.synthesis_kwargs.wobble=3: unknown StyleGAN2 setting``);
* every value is type-checked and range-checked *before* any module is built -- a config is a few numbers, but
  ``w_dim: 1e9`` or ``num_layers: 1e6`` would make the constructor allocate gigabytes or loop for minutes;
* :meth:`GeneratorConfig.param_count` computes the parameter count the config implies by formula (no module is
  constructed), and :meth:`GeneratorConfig.check_fits` refuses a config that asks for more parameters than the
  file holds values: a DCGAN with ``ngf: 1500`` passes every range check yet means ~1.5 G parameters;
* :meth:`GeneratorConfig.to_kwargs` gives JSON-serialisable kwargs that :meth:`GeneratorConfig.from_kwargs`
  reads back to an equal config (so a model rebuilds from its safetensors file without pickled code).

Backends whose stored layout is not their field layout (StyleGAN2's nested ``mapping_kwargs`` /
``synthesis_kwargs``) override :meth:`GeneratorConfig._unpack` to translate it; everything else is shared.
"""

from __future__ import annotations

import json
import math
import typing
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from types import NoneType, UnionType
from typing import Any, ClassVar, Iterable, Mapping, TypeVar

from morphstudio.errors import CheckpointError

#: Largest latent size, label size, channel width or feature count any config may ask for.
MAX_DIM = 8192
#: Largest number of layers (mapping layers, synthesis layers, fp16 resolutions...).
MAX_LAYERS = 64
#: Largest output resolution (a power of two).
MAX_RESOLUTION = 4096
#: Largest ``channel_base`` (widths are ``min(channel_base / res, channel_max)``; config-R uses 65536).
MAX_CHANNEL_BASE = 2**20
#: Longest list a config field may hold (filter taps, explicit widths).
MAX_ITEMS = 64

C = TypeVar("C", bound="GeneratorConfig")


@dataclass(frozen=True)
class Bounds:
    """The sane range of one numeric setting (``None``: unbounded on that side)."""

    minimum: float | None = None
    maximum: float | None = None
    positive: bool = False
    power_of_two: bool = False
    choices: tuple[Any, ...] | None = None

    def problem(self, value: Any) -> str | None:
        """Why ``value`` is out of range, or ``None`` when it is fine."""
        if self.choices is not None and value not in self.choices:
            return "must be one of " + ", ".join(map(str, self.choices))
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return None
        if self.positive and not value > 0:
            return "must be positive"
        if self.minimum is not None and value < self.minimum:
            return f"must be at least {self.minimum:g}"
        if self.maximum is not None and value > self.maximum:
            return f"must be at most {self.maximum:g}"
        if self.power_of_two and (int(value) & (int(value) - 1)):
            return "must be a power of two"
        return None


def setting(default: Any = MISSING, *, minimum: float | None = None, maximum: float | None = None,
            positive: bool = False, power_of_two: bool = False, choices: Iterable[Any] | None = None,
            default_factory: Any = MISSING) -> Any:
    """A dataclass field with a sane range, checked whenever a config is made."""
    bounds = Bounds(minimum, maximum, positive, power_of_two, None if choices is None else tuple(choices))
    if default_factory is not MISSING:
        return field(default_factory=default_factory, metadata={"bounds": bounds})
    return field(default=default, metadata={"bounds": bounds})


def dim(default: Any = MISSING, *, minimum: int = 1) -> Any:
    """A size (latent, label, channels, features): ``minimum`` .. :data:`MAX_DIM`."""
    return setting(default, minimum=minimum, maximum=MAX_DIM)


def layer_count(default: Any = MISSING, *, minimum: int = 1) -> Any:
    """A number of layers: ``minimum`` .. :data:`MAX_LAYERS`."""
    return setting(default, minimum=minimum, maximum=MAX_LAYERS)


def resolution(default: Any = MISSING, *, minimum: int = 4) -> Any:
    """An output size: a power of two, ``minimum`` .. :data:`MAX_RESOLUTION`."""
    return setting(default, minimum=minimum, maximum=MAX_RESOLUTION, power_of_two=True)


class ConfigValueError(ValueError):
    """A setting is out of range. ``key`` is dotted, relative to the config that raised it."""

    def __init__(self, key: str, value: Any, problem: str) -> None:
        super().__init__(f"{key}={show(value)}: {problem}")
        self.key, self.value, self.problem = key, value, problem


def show(value: Any) -> str:
    """A short, safe rendering of a value for a one-line message (containers are summarised, never walked:
    a stored value may be self-referencing or nested thousands deep)."""
    if isinstance(value, Mapping):
        return f"<a mapping of {len(value)} keys>"
    if isinstance(value, (list, tuple)) and (len(value) > 8 or any(isinstance(v, (list, tuple, Mapping))
                                                                     for v in value)):
        return f"<a list of {len(value)} items>"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


@dataclass(frozen=True)
class GeneratorConfig:
    """Base of every backend's config dataclass (and of nested sections such as StyleGAN3's ``mapping_kwargs``).

    Subclasses declare fields with :func:`setting` and friends, set :attr:`label`, and implement
    :meth:`param_count` (sections need not). :meth:`_derive` fills settings that default to others (run before the
    range checks); :meth:`_check` holds checks spanning several fields.
    """

    #: Name used in messages, e.g. ``"StyleGAN2"``.
    label: ClassVar[str] = "generator"
    #: Stored keys that are accepted and ignored (training-only settings that change nothing at inference).
    IGNORED: ClassVar[frozenset[str]] = frozenset()
    #: Settings quoted when a config does not fit the file (the ones that drive its size).
    SIZE_KEYS: ClassVar[tuple[str, ...]] = ()

    def __post_init__(self) -> None:
        self._derive()
        for f in fields(self):
            value = getattr(self, f.name)
            _check_finite(value, f.name)
            bounds: Bounds | None = f.metadata.get("bounds")
            if bounds is not None:
                for item in _leaves(value):
                    problem = bounds.problem(item)
                    if problem:
                        raise ConfigValueError(f.name, value, problem)
        self._check()

    # --- hooks ------------------------------------------------------------------------------------------------

    def _derive(self) -> None:
        """Fill settings whose default depends on others (``object.__setattr__``: the dataclass is frozen)."""

    def _check(self) -> None:
        """Checks that span several fields; raise :class:`ConfigValueError`."""

    @classmethod
    def _unpack(cls, kwargs: dict[str, Any], where: str, source: str | Path | None) -> dict[str, tuple[str, Any]]:
        """Stored kwargs -> ``{field name: (stored key path, raw value)}``; unknown keys are refused.

        The default reads a flat layout whose keys are the field names (nested sections as nested mappings).
        """
        names = {f.name: f.name for f in fields(cls) if f.init}
        return take(kwargs, names, where, source, cls.label, ignored=cls.IGNORED)

    def param_count(self) -> int:
        """Learned parameters of the network this config describes, by formula (no module is built)."""
        raise NotImplementedError(f"{type(self).__name__} is a config section, not a whole generator")

    # --- the mechanism ----------------------------------------------------------------------------------------

    @classmethod
    def from_kwargs(cls: type[C], kwargs: Any, source: str | Path | None = None, where: str = "init_kwargs") -> C:
        """Read stored constructor kwargs into a checked config.

        Args:
            kwargs: The kwargs as a checkpoint stores them (``dict`` / ``EasyDict``; numpy scalars allowed).
            source: The file they came from, for messages.
            where: The key path of ``kwargs`` itself, for messages.

        Raises:
            CheckpointError: One line naming the file, the key and the value: an unknown or missing key, a value
                of the wrong type, not finite, or outside its sane range.
        """
        if not isinstance(kwargs, Mapping):
            raise CheckpointError(source, f"{where} is {show(kwargs)} ({type(kwargs).__name__}), not a mapping "
                                          f"of {cls.label} settings")
        raw = cls._unpack(dict(kwargs), where, source)
        hints = _hints(cls)
        values: dict[str, Any] = {}
        for f in fields(cls):
            if not f.init:
                continue
            if f.name not in raw:
                if f.default is MISSING and f.default_factory is MISSING:
                    raise CheckpointError(source, f"{where}.{f.name} is missing: a {cls.label} generator needs it")
                continue
            key, value = raw[f.name]
            values[f.name] = _coerce(value, hints[f.name], key, source)
        try:
            return cls(**values)
        except ConfigValueError as exc:
            head, _, rest = exc.key.partition(".")
            key = raw[head][0] if head in raw else f"{where}.{head}"
            raise CheckpointError(source, f"{key}{'.' + rest if rest else ''}={show(exc.value)}: "
                                          f"{exc.problem}") from None

    def to_kwargs(self) -> dict[str, Any]:
        """JSON-serialisable kwargs that :meth:`from_kwargs` reads back to an equal config."""
        return {f.name: _jsonable(getattr(self, f.name)) for f in fields(self)}

    def to_json(self) -> str:
        """:meth:`to_kwargs` as JSON text."""
        return json.dumps(self.to_kwargs(), allow_nan=False)

    @classmethod
    def from_json(cls: type[C], text: str, source: str | Path | None = None) -> C:
        """The inverse of :meth:`to_json`."""
        try:
            kwargs = json.loads(text)
        except ValueError as exc:
            raise CheckpointError(source, f"the {cls.label} config is not valid JSON ({exc})") from None
        return cls.from_kwargs(kwargs, source)

    def check_fits(self, state: Mapping[str, Any], source: str | Path | None = None) -> None:
        """Refuse a config that implies more parameters than ``state`` holds values, before anything is built.

        Every parameter is one stored value whatever its dtype, so the comparison is by element count; the bytes
        present (elements x element size) are quoted in the message.

        Raises:
            CheckpointError: The config describes a network larger than the tensors in the file.
        """
        need = self.param_count()
        tensors = _tensors(state)
        have = sum(int(t.numel()) for t in tensors)
        if need <= have:
            return
        nbytes = sum(int(t.numel()) * int(t.element_size()) for t in tensors)
        shaping = ", ".join(f"{k}={getattr(self, k)}" for k in self.SIZE_KEYS)
        raise CheckpointError(source, f"init_kwargs describe a {self.label} generator with {need:,} parameters "
                                      f"({_human(need * 4)} in float32; {shaping}), but the file holds only "
                                      f"{have:,} tensor values ({_human(nbytes)}): refusing to build it")


def stored_values(state: Mapping[str, Any]) -> int:
    """How many tensor values ``state`` holds (what :meth:`GeneratorConfig.check_fits` compares against)."""
    return sum(int(t.numel()) for t in _tensors(state))


def _tensors(state: Mapping[str, Any]) -> list[Any]:
    return [t for t in state.values() if hasattr(t, "numel") and hasattr(t, "element_size")]


def take(kwargs: Mapping[str, Any], names: Mapping[str, str], where: str, source: str | Path | None, label: str,
         ignored: Iterable[str] = ()) -> dict[str, tuple[str, Any]]:
    """Pick the stored keys ``names`` (``{stored key: field name}``) out of ``kwargs``, refusing any other key.

    Returns:
        ``{field name: (stored key path, value)}``.

    Raises:
        CheckpointError: Naming the first unknown key and its value.
    """
    skip = set(ignored)
    out: dict[str, tuple[str, Any]] = {}
    for key, value in kwargs.items():
        if key in names:
            out[names[key]] = (f"{where}.{key}", value)
        elif key not in skip:
            known = ", ".join(sorted(names))
            raise CheckpointError(source, f"{where}.{key}={show(value)}: unknown {label} setting (known: {known})")
    return out


def mapping_param_count(z_dim: int, c_dim: int, w_dim: int, num_layers: int, embed_features: int,
                        layer_features: int) -> int:
    """Parameters of StyleGAN's mapping network: the label embedding (when ``c_dim`` > 0) and ``num_layers``
    dense layers from ``z_dim + embed_features`` through ``layer_features`` to ``w_dim``, weights and biases."""
    embed = c_dim * embed_features + embed_features if c_dim > 0 else 0
    widths = [z_dim + (embed_features if c_dim > 0 else 0)] + [layer_features] * (num_layers - 1) + [w_dim]
    return embed + sum(a * b + b for a, b in zip(widths, widths[1:]))


# --- typing helpers -----------------------------------------------------------------------------------------------


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _union_args(hint: Any) -> tuple[Any, ...]:
    if isinstance(hint, UnionType) or typing.get_origin(hint) is typing.Union:
        return typing.get_args(hint)
    return (hint,)


def _coerce(value: Any, hint: Any, key: str, source: str | Path | None) -> Any:
    """``value`` as the field type ``hint`` wants (JSON lists -> tuples, integral floats -> int, numpy scalars ->
    Python), or a :class:`CheckpointError` naming ``key``."""
    if hasattr(value, "item") and type(value).__module__ == "numpy" and getattr(value, "ndim", 1) == 0:
        value = value.item()
    options = _union_args(hint)
    if value is None:
        if NoneType in options:
            return None
        raise CheckpointError(source, f"{key}=None: a value is required")
    hint = next(h for h in options if h is not NoneType)
    if isinstance(hint, type) and issubclass(hint, GeneratorConfig):
        return hint.from_kwargs(value, source, where=key)
    if hint is bool:
        if not isinstance(value, bool):
            raise CheckpointError(source, f"{key}={show(value)}: must be true or false")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise CheckpointError(source, f"{key}={show(value)}: must be text")
        return value
    if hint in (int, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise CheckpointError(source, f"{key}={show(value)}: must be a number")
        if not math.isfinite(value):
            raise CheckpointError(source, f"{key}={show(value)}: must be a finite number")
        if hint is float:
            return float(value)
        if value != int(value):
            raise CheckpointError(source, f"{key}={show(value)}: must be a whole number")
        return int(value)
    if typing.get_origin(hint) is tuple:
        if not isinstance(value, (list, tuple)):
            raise CheckpointError(source, f"{key}={show(value)}: must be a list")
        if len(value) > MAX_ITEMS:
            raise CheckpointError(source, f"{key}={show(value)}: more than {MAX_ITEMS} items")
        args = typing.get_args(hint)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], f"{key}[{i}]", source) for i, v in enumerate(value))
        if len(value) != len(args):
            raise CheckpointError(source, f"{key}={show(value)}: must have {len(args)} items")
        return tuple(_coerce(v, a, f"{key}[{i}]", source) for i, (v, a) in enumerate(zip(value, args)))
    raise TypeError(f"config field type {hint!r} is not supported")  # a backend bug, not a user error


def _check_finite(value: Any, key: str) -> None:
    """Direct construction (``StyleGAN2Config(w_dim=...)``) gets the same finite-number rule as stored kwargs."""
    for item in _leaves(value):
        if isinstance(item, float) and not math.isfinite(item):
            raise ConfigValueError(key, value, "must be a finite number")


def _leaves(value: Any) -> list[Any]:
    if isinstance(value, tuple):
        return [leaf for v in value for leaf in _leaves(v)]
    return [value]


def _jsonable(value: Any) -> Any:
    if isinstance(value, GeneratorConfig):
        return value.to_kwargs()
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    return value


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


__all__ = ["Bounds", "ConfigValueError", "GeneratorConfig", "MAX_CHANNEL_BASE", "MAX_DIM", "MAX_LAYERS",
           "MAX_RESOLUTION", "dim", "layer_count", "mapping_param_count", "resolution", "setting",
           "show", "stored_values", "take"]
