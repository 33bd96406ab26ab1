"""An allow-list unpickler: reads StyleGAN pickles without executing anything from them.

A pickle is a small program: ``GLOBAL module name`` fetches any importable callable and ``REDUCE`` calls it. The
official NVIDIA loader lets it, and also ``exec``\\ s the network source stored inside. Here ``find_class`` hands
out only the callables listed in :meth:`SafeUnpickler._build_table`, each replaced by a stand-in written for
this module:

* ``torch_utils.persistence._reconstruct_persistent_obj`` returns a :class:`PersistentObject` that keeps ``meta``
  (class name, module source *as text*, state) -- the source is never compiled.
* ``dnnlib.tflib.network.Network`` (legacy TensorFlow) is a :class:`TFNetwork` whose ``__setstate__`` only keeps
  the state dict; ``build_module_src`` stays a string.
* tensors become :class:`LazyTensor` records over the storage bytes already in the pickle (each storage blob's
  own small pickles are read by the same allow-list and its sizes checked against the bytes present); a tensor is
  copied out only when a reader keeps it (:meth:`LazyTensor.materialize`), so the discriminator and training
  generator of a snapshot cost nothing, and nothing a file claims is allocated before it is checked;
* numpy arrays/scalars through numpy's own reconstructors (plain numeric data only, sizes checked).

Anything else raises :class:`UnsafeCheckpointError` naming the global, *before* it could be called. Stand-ins
are per-load objects that refuse ``BUILD`` (pickle's "set state" step), so a file cannot rewire them either; that
includes tensors, whose real ``__setstate__`` would call ``set_`` and grow a storage to whatever size the file asks.
Files are read through a memory map, so an opcode claiming more bytes than the file holds reads only what is there.
"""

from __future__ import annotations

import collections
import contextlib
import io
import math
import mmap
import pickle
import re
import struct
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Callable

import numpy as np
import torch

from morphstudio.errors import CheckpointError, MorphError, UnsafeCheckpointError

# --- stand-in objects the unpickler produces --------------------------------------------------------------------


class _Sealed(type):
    """Metaclass of stand-in classes: their attributes cannot be replaced by a pickle's ``BUILD``."""

    def __setattr__(cls, name: str, value: Any) -> None:
        raise CheckpointError(None, f"the pickle tried to modify class {cls.__name__} (attribute {name!r})")

    def __delattr__(cls, name: str) -> None:
        raise CheckpointError(None, f"the pickle tried to modify class {cls.__name__} (attribute {name!r})")


class EasyDict(dict, metaclass=_Sealed):
    """Stand-in for ``dnnlib.util.EasyDict``: a plain dict subclass with attribute reads (no other behaviour)."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


class PersistentObject(metaclass=_Sealed):
    """What ``_reconstruct_persistent_obj(meta)`` returns here: the recorded module, never instantiated.

    Attributes:
        meta: The pickled ``meta`` dict (``type``, ``version``, ``module_src``, ``class_name``, ``state``).
    """

    __slots__ = ("meta",)

    def __init__(self, meta: dict[str, Any]) -> None:
        object.__setattr__(self, "meta", meta)

    @property
    def class_name(self) -> str:
        return str(self.meta.get("class_name", "?"))

    @property
    def module_src(self) -> str:
        src = self.meta.get("module_src")
        return src if isinstance(src, str) else ""

    @property
    def state(self) -> dict[str, Any]:
        state = self.meta.get("state")
        return state if isinstance(state, dict) else {}

    def __setstate__(self, state: Any) -> None:
        raise CheckpointError(None, "malformed pickle: state applied to a persistent object twice")

    def __repr__(self) -> str:
        return f"<persistent {self.class_name}>"


class TFNetwork(metaclass=_Sealed):
    """Stand-in for ``dnnlib.tflib.network.Network``: keeps the pickled state, never builds the graph.

    The official ``__setstate__`` imports ``build_module_src`` as a module (running it); this one stores it as a
    string and nothing more.
    """

    def __setstate__(self, state: Any) -> None:
        if not isinstance(state, dict):
            raise CheckpointError(None, f"malformed TensorFlow network state: {type(state).__name__}")
        self.__dict__["state"] = state

    @property
    def tf_state(self) -> dict[str, Any]:
        return self.__dict__.get("state", {})

    def __repr__(self) -> str:
        return f"<tf network {self.tf_state.get('name', '?')}>"


class Namespace(metaclass=_Sealed):
    """Stand-in for ``argparse.Namespace`` (training arguments inside rosinality checkpoints): plain attributes."""

    def __init__(self, **kwargs: Any) -> None:
        self.__dict__.update(kwargs)


def _refuse_tensor_state(_self: Any, _state: Any) -> None:
    raise CheckpointError(None, "malformed pickle: it tries to set the state of a tensor (BUILD), which would "
                                "let it resize the tensor's storage to any size")


@dataclass(frozen=True)
class StoragePlaceholder:
    """A storage of a ``torch.save`` zip/legacy file seen while only scanning the structure (data not read)."""

    dtype: torch.dtype
    key: str
    numel: int

    __setstate__ = _refuse_tensor_state  # a frozen dataclass is still open to BUILD's __dict__ update

    @property
    def nbytes(self) -> int:
        return self.numel * self.dtype.itemsize


@dataclass(frozen=True)
class TensorPlaceholder:
    """A tensor seen while only scanning structure: its shape and dtype, no data."""

    shape: tuple[int, ...]
    dtype: torch.dtype

    # torch.load's weights-only unpickler applies BUILD on a tensor as set_(storage, offset, size, stride):
    # refusing it here, in the scan that always runs first, keeps torch.load from ever seeing such a file.
    __setstate__ = _refuse_tensor_state


class LazyStorage(metaclass=_Sealed):
    """A tensor storage inside a pickle: ``numel`` values of ``dtype`` at ``offset`` in ``blob`` (not copied).

    Attributes:
        blob: The storage's ``torch.save`` bytes as the pickle holds them.
        offset: Where the raw values start in ``blob``.
        dtype: Element type.
        numel: Number of values (checked to be present in ``blob``).
    """

    __slots__ = ("blob", "offset", "dtype", "numel")

    def __init__(self, blob: bytes, offset: int, dtype: torch.dtype, numel: int) -> None:
        for name, value in (("blob", blob), ("offset", offset), ("dtype", dtype), ("numel", numel)):
            object.__setattr__(self, name, value)

    __setstate__ = _refuse_tensor_state

    def __setattr__(self, name: str, value: Any) -> None:
        raise CheckpointError(None, "the pickle tried to modify a tensor storage")


class LazyTensor(metaclass=_Sealed):
    """A tensor as the pickle describes it -- a strided view of a :class:`LazyStorage` -- not yet copied out.

    The view is checked to lie inside the storage and to hold no more values than the storage (a stride-0 view
    of one value cannot pose as gigabytes).

    Attributes:
        storage: Where its values are.
        offset: First value's index in the storage.
        shape: Tensor shape.
        stride: Strides in values.
    """

    __slots__ = ("storage", "offset", "shape", "stride")

    def __init__(self, storage: LazyStorage, offset: int, shape: tuple[int, ...], stride: tuple[int, ...]) -> None:
        for name, value in (("storage", storage), ("offset", offset), ("shape", shape), ("stride", stride)):
            object.__setattr__(self, name, value)

    __setstate__ = _refuse_tensor_state

    def __setattr__(self, name: str, value: Any) -> None:
        raise CheckpointError(None, "the pickle tried to modify a tensor")

    @property
    def dtype(self) -> torch.dtype:
        return self.storage.dtype

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    def is_floating_point(self) -> bool:
        return self.storage.dtype.is_floating_point

    def materialize(self, dtype: torch.dtype | None = None) -> torch.Tensor:
        """A new contiguous CPU tensor with the values (converted to ``dtype`` when given), owning its memory."""
        st = self.storage
        out = torch.empty(self.shape, dtype=dtype or st.dtype)
        if out.numel() == 0:
            return out
        with warnings.catch_warnings():
            # frombuffer warns that bytes are read-only; the view is only read, once, by the copy below.
            warnings.simplefilter("ignore")
            flat = torch.frombuffer(st.blob, dtype=st.dtype, count=st.numel, offset=st.offset)
        out.copy_(flat.as_strided(self.shape, self.stride, self.offset))
        return out

    def __repr__(self) -> str:
        return f"<tensor {list(self.shape)} {self.dtype}>"


class _Guarded:
    """A stand-in callable. ``__slots__`` and a refusing ``__setstate__`` keep a pickle from modifying it."""

    __slots__ = ("_fn", "name")

    def __init__(self, fn: Callable[..., Any], name: str) -> None:
        object.__setattr__(self, "_fn", fn)
        object.__setattr__(self, "name", name)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._fn(*args, **kwargs)

    def __setattr__(self, name: str, value: Any) -> None:
        raise CheckpointError(None, f"the pickle tried to modify {self.name}")

    def __setstate__(self, state: Any) -> None:
        raise CheckpointError(None, f"the pickle tried to modify {self.name}")

    def __repr__(self) -> str:
        return f"<allowed {self.name}>"


# --- the allow-list ---------------------------------------------------------------------------------------------

_STORAGE_DTYPES: dict[str, torch.dtype] = {
    "FloatStorage": torch.float32,
    "DoubleStorage": torch.float64,
    "HalfStorage": torch.float16,
    "BFloat16Storage": torch.bfloat16,
    "LongStorage": torch.int64,
    "IntStorage": torch.int32,
    "ShortStorage": torch.int16,
    "CharStorage": torch.int8,
    "ByteStorage": torch.uint8,
    "BoolStorage": torch.bool,
}

if int(np.__version__.split(".")[0]) >= 2:
    from numpy._core import multiarray as _NP_MULTIARRAY
else:  # numpy 1.x: numpy._core does not exist yet (pickles from numpy 2 still name it; both map here)
    from numpy.core import multiarray as _NP_MULTIARRAY


class SafeUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` that resolves only the globals of its allow-list (:meth:`_build_table`), to stand-ins.

    Args:
        file: Binary stream positioned at a pickle.
        path: The checkpoint file, for error messages.
        storages: ``None`` for plain pickles (which never use persistent ids: any is refused); ``"placeholder"``
            to accept ``torch.save``'s storage ids without reading data (structure scan).
        found: With ``"placeholder"``, a dict that receives every storage seen, by key.
    """

    def __init__(self, file: BinaryIO, path: str | Path, storages: str | None = None,
                 found: dict[str, StoragePlaceholder] | None = None) -> None:
        super().__init__(file)
        self.path = str(path)
        self._storages = storages
        self._found = found
        self._table = self._build_table()

    # -- globals -------------------------------------------------------------------------------------------------

    def find_class(self, module: str, name: str) -> Any:
        full = f"{module}.{name}"
        found = self._table.get(full)
        if found is None:
            raise UnsafeCheckpointError(self.path, full)
        return found

    def persistent_load(self, pid: Any) -> Any:
        if self._storages == "placeholder" and isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage":
            kind, key, numel = pid[1], pid[2], pid[4]
            dtype = getattr(kind, "_dtype", None)
            if isinstance(dtype, torch.dtype) and isinstance(key, str) and isinstance(numel, int) and numel >= 0:
                storage = StoragePlaceholder(dtype, key, numel)
                if self._found is not None:
                    self._found[key] = storage
                return storage
        raise CheckpointError(
            self.path, f"malformed pickle: it refers to external data {_short(pid)} that this format never uses")

    # -- stand-ins -----------------------------------------------------------------------------------------------

    def _bad(self, what: str) -> CheckpointError:
        return CheckpointError(self.path, f"malformed pickle: {what}")

    def _build_table(self) -> dict[str, Any]:
        """The allow-list: every global a supported file may name (``module.name`` as in the pickle), mapped to
        the stand-in it gets."""
        g = _Guarded
        ndarray_marker = g(self._refuse_call("numpy.ndarray"), "numpy.ndarray")

        def reconstruct(subtype: Any, shape: Any, typecode: Any) -> np.ndarray:
            if subtype is not ndarray_marker:
                raise self._bad("numpy _reconstruct of something that is not numpy.ndarray")
            # numpy pickles an empty array here and fills it with BUILD (whose size numpy checks against the
            # bytes given); a non-empty shape would only allocate memory the file does not hold.
            if not (_int_tuple(shape) and math.prod(shape) <= 1):
                raise self._bad(f"numpy _reconstruct asks for shape {_short(shape)} (numpy writes an empty one)")
            return _NP_MULTIARRAY._reconstruct(np.ndarray, shape, typecode)

        def frombuffer(buf: Any, dtype: Any, shape: Any, order: Any) -> np.ndarray:
            if not isinstance(buf, (bytes, bytearray)):
                raise self._bad(f"numpy _frombuffer given a {type(buf).__name__}, not bytes")
            _check_numeric_dtype(dtype, self, "_frombuffer")
            if not (_int_tuple(shape) and all(n >= 0 for n in shape) and order in ("C", "F")):
                raise self._bad(f"numpy _frombuffer with shape {_short(shape)} / order {_short(order)}")
            if math.prod(shape) * dtype.itemsize != len(buf):
                raise self._bad(f"numpy array of shape {list(shape)} ({dtype}) needs "
                                f"{math.prod(shape) * dtype.itemsize} bytes, the file gives it {len(buf)}")
            return np.frombuffer(buf, dtype=dtype).reshape(shape, order=order).copy()

        def scalar(dtype: Any, *data: Any) -> Any:
            _check_numeric_dtype(dtype, self, "scalar")
            if len(data) != 1 or not isinstance(data[0], bytes) or len(data[0]) != dtype.itemsize:
                raise self._bad(f"numpy {dtype} scalar from something other than its {dtype.itemsize} bytes")
            return _NP_MULTIARRAY.scalar(dtype, *data)

        def make_dtype(spec: Any, *args: Any) -> np.dtype:
            if not isinstance(spec, str):
                raise self._bad(f"numpy dtype from {type(spec).__name__}")
            return np.dtype(spec, *args)

        def codecs_encode(text: Any, encoding: Any = "latin1") -> bytes:
            # Protocol-2 pickles spell bytes as _codecs.encode(str, 'latin1'); nothing else is accepted.
            if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
                raise self._bad("_codecs.encode used for something other than bytes")
            return text.encode("latin1")

        def make_set(items: Any = ()) -> set[Any]:
            return set(_plain_iterable(items, self))

        def make_frozenset(items: Any = ()) -> frozenset[Any]:
            return frozenset(_plain_iterable(items, self))

        def ordered_dict(*args: Any) -> collections.OrderedDict[Any, Any]:
            if args and not isinstance(args[0], (list, tuple, dict)):
                raise self._bad("OrderedDict built from an unexpected object")
            return collections.OrderedDict(*args)

        table: dict[str, Any] = {
            "torch_utils.persistence._reconstruct_persistent_obj": g(self._persistent, "_reconstruct_persistent_obj"),
            "dnnlib.util.EasyDict": EasyDict,
            "dnnlib.EasyDict": EasyDict,
            "dnnlib.tflib.network.Network": TFNetwork,
            "collections.OrderedDict": g(ordered_dict, "OrderedDict"),
            "torch._utils._rebuild_tensor_v2": g(self._rebuild_tensor, "_rebuild_tensor_v2"),
            "torch._utils._rebuild_parameter": g(self._rebuild_parameter, "_rebuild_parameter"),
            "torch._utils._rebuild_parameter_with_state": g(self._rebuild_parameter, "_rebuild_parameter_with_state"),
            "torch.storage._load_from_bytes": g(self._load_from_bytes, "_load_from_bytes"),
            "numpy.dtype": g(make_dtype, "numpy.dtype"),
            "numpy.ndarray": ndarray_marker,
            "numpy.core.multiarray.scalar": g(scalar, "scalar"),
            "numpy._core.multiarray.scalar": g(scalar, "scalar"),
            "numpy.core.multiarray._reconstruct": g(reconstruct, "_reconstruct"),
            "numpy._core.multiarray._reconstruct": g(reconstruct, "_reconstruct"),
            "numpy.core.numeric._frombuffer": g(frombuffer, "_frombuffer"),
            "numpy._core.numeric._frombuffer": g(frombuffer, "_frombuffer"),
            "builtins.set": g(make_set, "set"),
            "__builtin__.set": g(make_set, "set"),
            "builtins.frozenset": g(make_frozenset, "frozenset"),
            "_codecs.encode": g(codecs_encode, "_codecs.encode"),
            "argparse.Namespace": Namespace,
        }
        for storage_name, dtype in _STORAGE_DTYPES.items():
            table[f"torch.{storage_name}"] = _StorageKind(dtype, storage_name, self)
            # Legacy torch.save files written from GPU tensors name the CUDA storage types (as data, not to be called).
            table[f"torch.cuda.{storage_name}"] = _StorageKind(dtype, f"cuda.{storage_name}", self)
        return table

    def _refuse_call(self, name: str) -> Callable[..., Any]:
        def refuse(*args: Any, **kwargs: Any) -> Any:
            raise self._bad(f"{name} called directly")

        return refuse

    def _persistent(self, meta: Any) -> PersistentObject:
        if not isinstance(meta, dict):
            raise self._bad(f"persistent object meta is a {type(meta).__name__}, not a dict")
        # Deliberately NOT looking at meta['module_src'] beyond keeping the text: the official loader exec()s it.
        return PersistentObject(meta)

    def _load_from_bytes(self, blob: Any) -> LazyStorage:
        if not isinstance(blob, (bytes, bytearray)):
            raise self._bad("tensor storage is not bytes")
        return read_storage_blob(bytes(blob) if isinstance(blob, bytearray) else blob, self)

    def _rebuild_tensor(
        self, storage: Any, offset: Any, size: Any, stride: Any, requires_grad: Any = False, hooks: Any = None,
        metadata: Any = None,
    ) -> LazyTensor | TensorPlaceholder:
        if not (isinstance(offset, int) and _int_tuple(size) and _int_tuple(stride) and len(size) == len(stride)):
            raise self._bad("tensor with invalid offset/size/stride")
        if offset < 0 or any(s < 0 for s in size) or any(s < 0 for s in stride):
            raise self._bad("tensor with negative size/stride/offset")
        if isinstance(storage, StoragePlaceholder):
            _check_view(storage.numel, offset, size, stride, self)
            return TensorPlaceholder(tuple(size), storage.dtype)
        if not isinstance(storage, LazyStorage):
            raise self._bad(f"tensor built on a {type(storage).__name__}, not a storage")
        _check_view(storage.numel, offset, size, stride, self)
        return LazyTensor(storage, offset, tuple(size), tuple(stride))

    def _rebuild_parameter(self, data: Any, requires_grad: Any = False, hooks: Any = None, state: Any = None) -> Any:
        if not isinstance(data, (LazyTensor, TensorPlaceholder)):
            raise self._bad(f"parameter wraps a {type(data).__name__}, not a tensor")
        return data


class _StorageKind(_Guarded):
    """``torch.FloatStorage`` & co: only meaningful as the type slot of a storage persistent id."""

    __slots__ = ("_dtype",)

    def __init__(self, dtype: torch.dtype, name: str, owner: SafeUnpickler) -> None:
        super().__init__(owner._refuse_call(f"torch.{name}"), f"torch.{name}")
        object.__setattr__(self, "_dtype", dtype)


def _int_tuple(value: Any) -> bool:
    return isinstance(value, (tuple, list)) and all(isinstance(v, int) for v in value)


def _check_view(available: int, offset: int, size: Any, stride: Any, owner: SafeUnpickler) -> None:
    """A tensor view must lie inside its storage and hold no more values than the storage has.

    The second rule refuses overlapping views (stride 0, or strides smaller than the extents) that would turn a
    few stored values into gigabytes when copied out; official checkpoints never contain such views.
    """
    numel = math.prod(size)
    if numel == 0:
        return
    needed = offset + sum((n - 1) * s for n, s in zip(size, stride)) + 1
    if needed > available:
        raise owner._bad(f"tensor of shape {list(size)} needs {needed} values, its storage has {available} "
                         "(truncated?)")
    if numel > available:
        raise owner._bad(f"tensor of shape {list(size)} (strides {list(stride)}) repeats values: {numel} values "
                         f"from a storage of {available}")


def _check_numeric_dtype(dtype: Any, owner: SafeUnpickler, what: str) -> None:
    # The dtype object may have been altered by BUILD after numpy.dtype() made it: check it where it is used.
    if not isinstance(dtype, np.dtype) or dtype.kind not in "biufc" or not 0 < dtype.itemsize <= 16:
        raise owner._bad(f"numpy {what} with a non-numeric dtype {_short(dtype)}")


#: ``torch.save``'s legacy format: a pickled magic number, protocol version and system info, then the object.
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001


class _SmallPickleReader(pickle.Unpickler):
    """Reads the small pickles around a storage blob's data: only storage type names, storage ids kept as data."""

    def __init__(self, file: BinaryIO, owner: SafeUnpickler) -> None:
        super().__init__(file)
        self._owner = owner

    def find_class(self, module: str, name: str) -> Any:
        kind = self._owner._table.get(f"{module}.{name}")
        if not isinstance(kind, _StorageKind):
            raise UnsafeCheckpointError(self._owner.path, f"{module}.{name}")
        return kind

    def persistent_load(self, pid: Any) -> Any:
        if isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage":
            kind, key, numel = pid[1], pid[2], pid[4]
            if isinstance(kind, _StorageKind) and isinstance(key, str) and isinstance(numel, int) and numel >= 0:
                return StoragePlaceholder(kind._dtype, key, numel)
        raise self._owner._bad(f"a tensor storage with an unreadable id {_short(pid)}")


def read_storage_blob(blob: bytes, owner: SafeUnpickler) -> LazyStorage:
    """Parse the legacy ``torch.save`` bytes of one storage (what torch pickles for a tensor's storage).

    Layout: magic number, protocol version and system info pickles; the storage's persistent id; the list of
    storage keys; then, per key, an int64 element count and the raw little-endian values. The element count
    claimed in the id must match the one before the data and the data must be present, so nothing is allocated
    on the file's say-so -- the values stay in ``blob`` until :meth:`LazyTensor.materialize`.

    Raises:
        CheckpointError: Any part malformed, a size that does not match, or fewer bytes than claimed.
    """
    f = io.BytesIO(blob)  # shares blob's memory until written (never)
    try:
        magic = _SmallPickleReader(f, owner).load()
        protocol = _SmallPickleReader(f, owner).load()
        info = _SmallPickleReader(f, owner).load()
        storage = _SmallPickleReader(f, owner).load()
        keys = _SmallPickleReader(f, owner).load()
    except MorphError:
        raise
    except PICKLE_ERRORS as exc:
        raise owner._bad(f"unreadable tensor storage ({_first_line(exc)})") from None
    if magic != _LEGACY_MAGIC or protocol != _LEGACY_PROTOCOL:
        raise owner._bad("a tensor storage that is not in torch.save's format")
    if not isinstance(info, dict) or info.get("little_endian") is not True:
        raise owner._bad("a tensor storage written on a big-endian machine (not supported)")
    if not isinstance(storage, StoragePlaceholder) or keys != [storage.key]:
        raise owner._bad("a tensor storage blob that does not hold exactly one storage")
    start = f.tell()
    if len(blob) < start + 8:
        raise owner._bad("a truncated tensor storage (no element count)")
    (count,) = struct.unpack_from("<q", blob, start)
    if count != storage.numel:
        raise owner._bad(f"a tensor storage that claims {storage.numel} values in its id and {count} before its "
                         "data")
    if len(blob) - start - 8 < storage.nbytes:
        raise owner._bad(f"a tensor storage of {storage.numel} {storage.dtype} values ({storage.nbytes} bytes) "
                         f"holding only {len(blob) - start - 8} bytes")
    return LazyStorage(blob, start + 8, storage.dtype, storage.numel)


def _plain_iterable(items: Any, owner: SafeUnpickler) -> Any:
    if not isinstance(items, (list, tuple, set, frozenset)):
        raise owner._bad(f"set built from a {type(items).__name__}")
    return items


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) < 60 else text[:57] + "..."


def _first_line(exc: BaseException, with_type: bool = False) -> str:
    """The first line of ``exc``'s message (prefixed ``Type: `` when ``with_type``), or its type name if empty."""
    text = str(exc).strip().splitlines()
    if not text:
        return type(exc).__name__
    return f"{type(exc).__name__}: {text[0]}" if with_type else text[0]


def torch_load_weights_only(
    file: str | Path | BinaryIO,
    path: str | Path,
    *,
    errors: tuple[type[BaseException], ...],
    message: Callable[[bool, str], str],
    safe_globals: list[Any] | None = None,
    with_type: bool = False,
) -> Any:
    """``torch.load(file, weights_only=True)`` on the CPU, every failure translated to one line.

    Args:
        file: What to load.
        path: The checkpoint file, for messages.
        errors: Exceptions (besides ``pickle.UnpicklingError``) that mean an unreadable file.
        message: ``(from_unpickler, first_line) -> text`` of the :class:`CheckpointError`.
        safe_globals: Extra globals for torch's weights-only allow-list.
        with_type: Prefix the exception's first line with its type name.

    Raises:
        UnsafeCheckpointError: torch refused a global (the message names it).
        CheckpointError: Anything in ``errors``, or another unpickling failure.
    """
    try:
        with torch.serialization.safe_globals(safe_globals) if safe_globals else contextlib.nullcontext():
            return torch.load(file, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        match = re.search(r"GLOBAL ([\w.]+)", str(exc))  # "Unsupported global: GLOBAL x" or "unsupported GLOBAL x"
        if match:
            raise UnsafeCheckpointError(path, match.group(1)) from None
        raise CheckpointError(path, message(True, _first_line(exc, with_type))) from None
    except errors as exc:
        raise CheckpointError(path, message(False, _first_line(exc, with_type))) from None


#: Exceptions a damaged or truncated pickle raises inside the unpickler (our own errors pass through).
PICKLE_ERRORS: tuple[type[BaseException], ...] = (
    pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError, IndexError, AttributeError,
    OverflowError, RuntimeError, UnicodeDecodeError, MemoryError, RecursionError,
)


def safe_load(file: BinaryIO, path: str | Path, storages: str | None = None,
              found: dict[str, StoragePlaceholder] | None = None) -> Any:
    """Unpickle one object from ``file`` through :class:`SafeUnpickler`.

    Args:
        file: Binary stream at the start of a pickle (a regular file is best passed through :func:`safe_load_file`,
            which maps it).
        path: The file, for messages.
        storages: See :class:`SafeUnpickler`.
        found: See :class:`SafeUnpickler`.

    Returns:
        The object tree, with stand-ins for networks.

    Raises:
        UnsafeCheckpointError: The pickle names a global that is not allowed (nothing was called).
        CheckpointError: The pickle is truncated or malformed.
    """
    try:
        return SafeUnpickler(file, path, storages, found).load()
    except MorphError as err:
        if isinstance(err, CheckpointError) and err.path is None:
            raise CheckpointError(path, err.message, hint=err.hint) from None
        raise
    except MemoryError:
        # CPython's unpickler reserves the length a bytes opcode claims before reading it; the reservation is
        # never touched (reads through the map stop at the file's end), so only a claim beyond RAM gets here.
        raise CheckpointError(path, "a corrupt pickle: it claims more memory than the machine has") from None
    except PICKLE_ERRORS as exc:
        what = "truncated" if isinstance(exc, EOFError) or "truncated" in str(exc) else "corrupt"
        raise CheckpointError(path, f"a {what} pickle ({_first_line(exc)})") from None


@contextlib.contextmanager
def mapped(file: BinaryIO) -> Any:
    """A read-only memory map of an open regular file, as a stream the unpickler reads from.

    Reading through the map instead of the buffered file is faster for 100 MB snapshots (no second buffer), and
    a read past the end returns what is there instead of first allocating what an opcode claims.
    """
    with mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ) as m:
        m.seek(file.tell())
        yield m


def safe_load_file(file: BinaryIO, path: str | Path, storages: str | None = None, count: int = 1,
                   found: dict[str, StoragePlaceholder] | None = None) -> Any:
    """:func:`safe_load` of ``count`` consecutive pickles from an open regular file (through :func:`mapped`);
    returns the last one (read with ``storages`` and ``found``; the ones before as plain pickles)."""
    with mapped(file) as m:
        for _ in range(count - 1):
            safe_load(m, path)  # type: ignore[arg-type]
        return safe_load(m, path, storages, found)  # type: ignore[arg-type]
