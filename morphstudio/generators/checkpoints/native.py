"""morphstudio's own format: one ``.safetensors`` with the model description embedded, plus a JSON sidecar.

The header metadata key ``"morphstudio"`` holds JSON ``{"format_version": 1, "family", "init_kwargs",
"source_format", "source"}``; the same JSON is written beside the file as ``<stem>.json`` for people to read (the
loader trusts the embedded copy). A plain safetensors file without that key is accepted when a ``<stem>.json`` or a
``config.json`` (as in the reference folders: ``source_family`` + ``init_kwargs``) sits next to it.
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from morphstudio.errors import CheckpointError
from morphstudio.files import atomic_path
from morphstudio.generators.checkpoints.nvidia_pkl import to_plain
from morphstudio.generators.checkpoints.sniff import MAX_SAFETENSORS_HEADER, open_regular
from morphstudio.generators.checkpoints.data import CheckpointData
from morphstudio.generators.registry import FAMILIES

FORMAT_VERSION = 1
META_KEY = "morphstudio"

#: Largest JSON config read from beside a safetensors file.
MAX_CONFIG_BYTES = 4 * 2**20

_DTYPE_SIZES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1,
                "BOOL": 1, "U16": 2, "U32": 4, "U64": 8, "F8_E4M3": 1, "F8_E5M2": 1}


# --- writing ----------------------------------------------------------------------------------------------------


def native_metadata(ckpt: CheckpointData) -> dict[str, Any]:
    """The JSON description stored inside the file and in the sidecar."""
    return {
        "format_version": FORMAT_VERSION,
        "family": ckpt.family,
        "init_kwargs": ckpt.init_kwargs,
        "source_format": ckpt.format,
        "source": ckpt.path,
    }


def save_native(ckpt: CheckpointData, path: str | Path) -> Path:
    """Write ``ckpt`` as ``path`` (safetensors) and ``<stem>.json``, atomically: on any failure neither appears.

    Args:
        ckpt: The checkpoint (official names, any source format).
        path: Output file, normally ending in ``.safetensors``.

    Returns:
        The sidecar path.

    Raises:
        CheckpointError: The kwargs are not JSON-serialisable or the folder is not writable.
    """
    path = Path(path)
    sidecar = path.with_suffix(".json")
    if sidecar == path:
        raise CheckpointError(path, "the output must not end in .json (that name is used for the sidecar)")
    meta = native_metadata(ckpt)
    try:
        meta_json = json.dumps(meta, sort_keys=False)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(ckpt.path, f"cannot describe this model as JSON: {exc}") from None
    tensors = _owned_contiguous(ckpt.state)
    if not path.parent.is_dir():
        raise CheckpointError(path, f"output folder {path.parent} does not exist")
    try:
        with atomic_path(path) as tmp_st, atomic_path(sidecar) as tmp_js:
            save_file(tensors, str(tmp_st), metadata={META_KEY: meta_json})
            tmp_js.write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    except OSError as exc:
        raise CheckpointError(path, f"cannot write: {exc.strerror or exc}") from None
    return sidecar


def _owned_contiguous(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Contiguous CPU tensors, none sharing memory (safetensors refuses shared storage)."""
    seen: set[int] = set()
    out: dict[str, torch.Tensor] = {}
    for name in sorted(state):
        t = state[name].detach().to("cpu").contiguous()
        ptr = t.untyped_storage().data_ptr()
        if ptr in seen or t.untyped_storage().nbytes() != t.numel() * t.element_size():
            t = t.clone()
        seen.add(t.untyped_storage().data_ptr())
        out[name] = t
    return out


# --- reading ----------------------------------------------------------------------------------------------------


def read_native(path: Path) -> CheckpointData:
    """Read a safetensors checkpoint (morphstudio's own, or a plain one with a JSON config beside it).

    Raises:
        CheckpointError: Truncated/corrupt file (naming the bad tensor), or no way to tell which model it is.
    """
    header = read_header(path)
    embedded = (header.get("__metadata__") or {}).get(META_KEY)
    if embedded is not None:
        meta = _json_object(embedded, path, "the embedded morphstudio metadata")
        fmt = "morphstudio safetensors"
    else:
        meta, fmt = _sidecar(path)
    family, init_kwargs = _interpret(meta, path, header)
    try:
        state = load_file(str(path), device="cpu")
    except (SafetensorError, OSError, RuntimeError) as exc:
        raise CheckpointError(path, f"corrupt safetensors file: {exc}") from None
    state = {k: (v.float() if v.is_floating_point() else v) for k, v in state.items()}
    return CheckpointData(family=family, init_kwargs=init_kwargs, state=state, format=fmt, path=str(path),
                          extra={"source_format": _text(meta.get("source_format")), "source": _text(meta.get("source")),
                                 "notes": []})


def _json_object(text: str | bytes, path: Path, what: str) -> dict[str, Any]:
    """``json.loads`` of a JSON object; anything else (a list, a number, too deep to parse) is one clear error."""
    try:
        value = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise CheckpointError(path, f"{what} is not valid JSON ({_first_line(exc)})") from None
    except RecursionError:
        raise CheckpointError(path, f"{what} is nested too deeply to be a model description") from None
    if not isinstance(value, dict):
        raise CheckpointError(path, f"{what} is a JSON {_json_type(value)}, not an object")
    return value


def _text(value: Any) -> str | None:
    """A description field as a short string (configs are read from files: they may hold anything)."""
    return value[:200] if isinstance(value, str) else None


def _json_type(value: Any) -> str:
    return {list: "list", str: "string", bool: "boolean", type(None): "null"}.get(type(value), "number")


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:200] if lines else type(exc).__name__


def read_header(path: Path) -> dict[str, Any]:
    """Parse and check the safetensors header: every tensor's dtype, shape and byte range must fit the file.

    Raises:
        CheckpointError: Naming the first tensor that does not fit, or what is wrong with the header.
    """
    with open_regular(path) as f:
        size = os.fstat(f.fileno()).st_size
        raw = f.read(8)
        if len(raw) < 8:
            raise CheckpointError(path, "truncated safetensors file (no header)")
        (n,) = struct.unpack("<Q", raw)
        if n > MAX_SAFETENSORS_HEADER:
            raise CheckpointError(path, f"safetensors header of {n} bytes; refusing headers over "
                                        f"{MAX_SAFETENSORS_HEADER // 2**20} MiB")
        if 8 + n > size:
            raise CheckpointError(path, f"truncated safetensors file: header of {n} bytes, file of {size}")
        header = _json_object(f.read(n), path, "the safetensors header")
    metadata = header.get("__metadata__")
    if metadata is not None and not (isinstance(metadata, dict)
                                     and all(isinstance(v, str) for v in metadata.values())):
        what = "an object with non-string values" if isinstance(metadata, dict) else f"a JSON {_json_type(metadata)}"
        raise CheckpointError(path, f"safetensors __metadata__ is {what}; the format requires string values")
    data_size = size - 8 - n
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if not isinstance(info, dict):
            raise CheckpointError(path, f"tensor '{name}': corrupt header entry")
        dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
        if dtype not in _DTYPE_SIZES:
            raise CheckpointError(path, f"tensor '{name}': unsupported dtype {dtype!r}")
        if not (isinstance(shape, list) and len(shape) <= 8 and all(isinstance(s, int) and s >= 0 for s in shape)):
            raise CheckpointError(path, f"tensor '{name}': invalid shape {shape!r}")
        if not (isinstance(offsets, list) and len(offsets) == 2 and all(isinstance(o, int) for o in offsets)
                and 0 <= offsets[0] <= offsets[1]):
            raise CheckpointError(path, f"tensor '{name}': invalid data offsets {offsets!r}")
        numel = 1
        for s in shape:
            numel *= s
        if offsets[1] - offsets[0] != numel * _DTYPE_SIZES[dtype]:
            raise CheckpointError(path, f"tensor '{name}': shape {shape} ({dtype}) needs {numel * _DTYPE_SIZES[dtype]}"
                                        f" bytes but the file gives it {offsets[1] - offsets[0]}")
        if offsets[1] > data_size:
            raise CheckpointError(path, f"truncated safetensors file: tensor '{name}' ends at byte "
                                        f"{8 + n + offsets[1]}, the file has {size}")
    return header


def _sidecar(path: Path) -> tuple[dict[str, Any], str]:
    for cand in (path.with_suffix(".json"), path.parent / "config.json"):
        if cand.is_file() and cand != path:  # is_file: a FIFO or device of that name is never opened
            if cand.stat().st_size > MAX_CONFIG_BYTES:
                raise CheckpointError(cand, f"model config beside {path.name} is {cand.stat().st_size} bytes; a "
                                            f"config is a few KB (limit {MAX_CONFIG_BYTES // 2**20} MiB)")
            try:
                with open_regular(cand) as f:
                    text = f.read(MAX_CONFIG_BYTES + 1)
            except OSError as exc:
                raise CheckpointError(cand, f"unreadable model config beside {path.name}: {exc}") from None
            return _json_object(text, cand, "model config"), f"safetensors + {cand.name}"
    raise CheckpointError(path, "a safetensors file without morphstudio metadata, and no "
                                f"{path.with_suffix('.json').name} or config.json beside it to say which model it is",
                          hint="convert it with `morphstudio convert` from the original checkpoint, or add a "
                               "JSON file with 'family' and 'init_kwargs'")


def family_from_config(meta: dict[str, Any], names: set[str]) -> str | None:
    """The family from a config's ``family`` / ``source_family`` / ``class_name``, else from tensor names."""
    fam = meta.get("family")
    if isinstance(fam, str) and fam in FAMILIES:
        return fam
    text = " ".join(v for k in ("source_family", "class_name") if isinstance(v := meta.get(k), str)).lower()
    if "dcgan" in text:
        return "dcgan"
    if "networks_stylegan3" in text or "config-t" in text or "config-r" in text:
        return "stylegan3"
    if "stylegan2" in text:
        return "stylegan2"
    if "stylegan3" in text:
        return "stylegan3"
    if "synthesis.input.freqs" in names:
        return "stylegan3"
    if "synthesis.b4.const" in names:
        return "stylegan2"
    return None


def _interpret(meta: dict[str, Any], path: Path, header: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    version = meta.get("format_version", FORMAT_VERSION)
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise CheckpointError(path, f"written by a newer morphstudio (format_version {version!r}; this one reads "
                                    f"{FORMAT_VERSION})", hint="upgrade morphstudio")
    family = family_from_config(meta, set(header) - {"__metadata__"})
    if family is None:
        raise CheckpointError(path, f"cannot tell the generator family (family {_text(meta.get('family'))!r}; known: "
                                    f"{', '.join(FAMILIES)})")
    init_kwargs = meta.get("init_kwargs")
    if not isinstance(init_kwargs, dict):
        got = "none" if init_kwargs is None else f"a JSON {_json_type(init_kwargs)}"
        raise CheckpointError(path, f"the model description has no 'init_kwargs' object (it has {got})")
    return family, to_plain(init_kwargs, path)
