"""Safe checkpoint loading: every format users bring, nothing from a file ever executed.

:func:`read_checkpoint` detects the format from the file's content (never its name) and hands it to one reader:

===================  ==========================================================================================
content              reader
===================  ==========================================================================================
pickle (``0x80``)    :mod:`.safe_pickle` allow-list unpickler, then :mod:`.nvidia_pkl` (StyleGAN2-ADA / StyleGAN3
                     PyTorch snapshots) or :mod:`.tf_pkl` (legacy TensorFlow StyleGAN2 ``(G, D, Gs)``)
zip / legacy torch   ``torch.save`` files: structure scanned by the same allow-list, then rosinality's reader
safetensors          :mod:`.native` (morphstudio's own, or a plain file with a ``config.json`` beside it)
===================  ==========================================================================================

Every reader returns :class:`~morphstudio.generators.checkpoints.data.CheckpointData` with the official NVIDIA ``G_ema``
tensor names; shape checks against the constructor kwargs happen in the backends' ``from_state``.
"""

from __future__ import annotations

import io
import re
import zipfile
import zlib
from pathlib import Path
from typing import Any

from morphstudio.errors import CheckpointError, ModelError
from morphstudio.generators.checkpoints.data import CheckpointData
from morphstudio.generators.checkpoints.native import read_native, save_native
from morphstudio.generators.checkpoints.nvidia_pkl import is_nvidia_snapshot, read_nvidia_pickle
from morphstudio.generators.checkpoints.rosinality import looks_like_rosinality, read_rosinality
from morphstudio.generators.checkpoints.safe_pickle import (
    EasyDict,
    StoragePlaceholder,
    safe_load,
    safe_load_file,
)
from morphstudio.generators.checkpoints.sniff import open_regular, sniff
from morphstudio.generators.checkpoints.tf_pkl import is_tf_pickle, read_tf_pickle

__all__ = ["BUILTIN_DIR", "available_builtins", "read_checkpoint", "resolve_source", "save_native"]

BUILTIN_DIR = Path(__file__).resolve().parents[1] / "builtin"
BUILTIN_PREFIX = "builtin:"
#: Largest ``data.pkl`` accepted inside a ``torch.save`` zip (the structure only; tensors are separate entries).
MAX_DATA_PKL = 64 * 2**20
#: ``torch.save`` stores zip members uncompressed; a re-zipped file may deflate them, but real weights shrink by a
#: few percent at most. All members together may unpack to this many times the file's size (plus 1 MiB), which
#: leaves zip bombs (zeros deflate ~1000:1) no room.
MAX_ZIP_EXPANSION = 4


def available_builtins() -> list[str]:
    """Names usable as ``builtin:NAME`` (the ``.safetensors`` files shipped in the package)."""
    return sorted(p.stem for p in BUILTIN_DIR.glob("*.safetensors"))


def resolve_source(source: str | Path) -> Path:
    """The file behind ``source``: a path as given, or the shipped file for ``builtin:NAME``.

    Raises:
        ModelError: Unknown builtin name (the message lists the available ones).
    """
    if isinstance(source, str) and source.startswith(BUILTIN_PREFIX):
        name = source[len(BUILTIN_PREFIX):]
        path = BUILTIN_DIR / f"{name}.safetensors"
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name) or not path.is_file():
            names = ", ".join(BUILTIN_PREFIX + n for n in available_builtins()) or "none"
            raise ModelError(f"unknown built-in model {source!r}; available: {names}")
        return path
    return Path(source).expanduser()


def read_checkpoint(source: str | Path) -> CheckpointData:
    """Read any supported checkpoint without executing anything from it.

    Args:
        source: A file path (``.pkl``, ``.pt``, ``.safetensors``: the extension is ignored) or ``builtin:NAME``.

    Returns:
        The family, constructor kwargs and every tensor under its official ``G_ema`` name.

    Raises:
        ModelError: Unknown ``builtin:`` name.
        UnsafeCheckpointError: A pickle asks for a global off the allow-list (the message names it).
        CheckpointError: Missing, empty, truncated, corrupt or unsupported file (one line saying which).
    """
    path = resolve_source(source)
    found = sniff(path)
    if found.format == "safetensors":
        ckpt = read_native(path)
    elif found.format == "pickle":
        ckpt = _read_pickle(path)
    else:
        ckpt = _read_torch_file(path, found.format)
    if isinstance(source, str) and source.startswith(BUILTIN_PREFIX):
        ckpt.path = source
    return ckpt


def _read_pickle(path: Path) -> CheckpointData:
    with open_regular(path) as f:
        obj = safe_load_file(f, path)
    if is_tf_pickle(obj):
        return read_tf_pickle(obj, path)
    if is_nvidia_snapshot(obj):
        return read_nvidia_pickle(obj, path)
    raise CheckpointError(path, f"a pickle, but not a StyleGAN checkpoint: it holds {_describe_obj(obj)}")


def _read_torch_file(path: Path, fmt: str) -> CheckpointData:
    """``torch.save`` files: scan the structure through the allow-list (no tensor data), then dispatch.

    The scan is also the size check for what ``torch.load`` will allocate afterwards: every storage's claimed
    size must be present in the file (and, in a zip, match its member's unpacked size), and no tensor may ask
    for values beyond its storage or set its own state.
    """
    obj, storages = _scan_torch(path, fmt)
    if isinstance(obj, dict) and looks_like_rosinality(obj):
        return read_rosinality(path)
    raise CheckpointError(path, f"a PyTorch file, but not a generator checkpoint morphstudio knows: it holds "
                                f"{_describe_obj(obj)}",
                          hint="supported .pt files are rosinality stylegan2-pytorch checkpoints (with 'g_ema')")


def _scan_torch(path: Path, fmt: str) -> tuple[Any, dict[str, StoragePlaceholder]]:
    size = path.stat().st_size
    with open_regular(path) as f:
        if fmt == "torch-zip":
            return _scan_torch_zip(path, f, size)
        storages: dict[str, StoragePlaceholder] = {}
        # magic number, protocol version, system info, then the object
        obj = safe_load_file(f, path, storages="placeholder", count=4, found=storages)
    claimed = sum(s.nbytes for s in storages.values())
    if claimed > size:
        raise CheckpointError(path, f"its tensors claim {claimed} bytes of data, the file has {size} (truncated or "
                                    "malformed)")
    return obj, storages


def _scan_torch_zip(path: Path, f: Any, size: int) -> tuple[Any, dict[str, StoragePlaceholder]]:
    try:
        with zipfile.ZipFile(f) as zf:
            infos = zf.infolist()
            pkls = [i for i in infos if i.filename == "data.pkl" or i.filename.endswith("/data.pkl")]
            if not pkls:
                raise CheckpointError(path, "a zip archive, but not a PyTorch checkpoint (no data.pkl inside)")
            if len(pkls) > 1:  # torch.load picks one by its own rule; the scan must see the same one
                raise CheckpointError(path, f"a zip archive with {len(pkls)} data.pkl files; a PyTorch checkpoint "
                                            "has one")
            unpacked = sum(i.file_size for i in infos)
            if unpacked > MAX_ZIP_EXPANSION * size + 2**20:
                biggest = max(infos, key=lambda i: i.file_size)
                raise CheckpointError(path, f"a zip whose members unpack to {unpacked} bytes from a {size}-byte file "
                                            f"({biggest.filename}: {biggest.file_size}); refusing a zip bomb")
            info = pkls[0]
            if info.file_size > MAX_DATA_PKL:  # tensor data lives in other entries: this is no checkpoint
                raise CheckpointError(path, f"{info.filename} inside is {info.file_size / 2**20:.0f} MiB; a PyTorch "
                                            "checkpoint's pickle is small, refusing to unpack it")
            data = zf.read(info)
            members = {i.filename: i for i in infos}
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as exc:
        raise CheckpointError(path, f"a truncated or corrupt zip/PyTorch file ({exc})") from None
    storages: dict[str, StoragePlaceholder] = {}
    obj = safe_load(io.BytesIO(data), path, storages="placeholder", found=storages)
    prefix = info.filename[: -len("data.pkl")]
    for key, storage in storages.items():
        member = members.get(f"{prefix}data/{key}")
        if member is None:
            raise CheckpointError(path, f"tensor storage {key!r} has no data/{key} entry in the zip (truncated?)")
        if member.file_size != storage.nbytes:
            raise CheckpointError(path, f"tensor storage {key!r} claims {storage.numel} {storage.dtype} values "
                                        f"({storage.nbytes} bytes); its zip entry unpacks to {member.file_size}")
    return obj, storages
def _describe_obj(obj: Any) -> str:
    if isinstance(obj, dict) and not isinstance(obj, EasyDict):
        keys = ", ".join(repr(k) for k in list(obj)[:8])
        return f"a dict with keys {keys}" + (" ..." if len(obj) > 8 else "")
    if isinstance(obj, dict):
        return f"a dict with keys {', '.join(map(repr, list(obj)[:8]))}"
    if isinstance(obj, (list, tuple)):
        return f"a {type(obj).__name__} of {len(obj)} items"
    return f"a {type(obj).__name__}"
