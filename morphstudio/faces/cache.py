"""On-disk cache of projections, so a re-render never projects the same photo twice.

A projection is keyed by the sha256 of the image *bytes* (not its path or mtime: a copied or touched file is the
same photo), the model's identity (a hash of its state dict, computed once per loaded generator) and every
setting that changes the result. Entries are small ``.npz`` files written atomically (temporary name + rename)
and read back through the bounded array loader, so a damaged or hostile entry costs one warning and a fresh
projection, never a traceback or an allocation its header asks for.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import weakref
from pathlib import Path
from typing import Any

import numpy as np

from morphstudio.errors import SceneError
from morphstudio.files import atomic_path
from morphstudio.scene.yamlmap import Locator
from morphstudio.timeline.arrays import load_array

log = logging.getLogger(__name__)

MAX_ENTRY_ELEMENTS = 2**20
"""Numbers a cache entry may hold: twice a W+ latent of 64 layers x 8192 (the largest num_ws and w_dim a
generator config accepts); an entry claiming more is damaged."""

# Identities of the generators seen so far, held weakly: the caller's object is never touched (no attribute set
# on it) and an entry goes away with its generator. The lock makes "look up, else hash and remember" safe when
# several threads project at once.
_identities: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()
_identities_lock = threading.Lock()


def default_cache_dir() -> Path:
    """``$MORPHSTUDIO_CACHE/projections`` if set, else ``~/.cache/morphstudio/projections``."""
    env = os.environ.get("MORPHSTUDIO_CACHE")
    if env:
        return Path(env).expanduser() / "projections"
    return Path.home() / ".cache" / "morphstudio" / "projections"


def model_identity(generator: Any) -> str:
    """sha256 over the generator's family, constructor kwargs and every tensor of its state dict.

    Computed once per generator object and remembered in this module, not on the object (hashing 15 MB takes
    ~30 ms; a 1024 px StyleGAN's 130 MB about 0.3 s). An object that cannot be weakly referenced is hashed again
    on every call.
    """
    import torch  # only here: the cache key helpers below stay numpy-only

    try:
        with _identities_lock:
            cached = _identities.get(generator)
    except TypeError:  # not weakly referenceable (or not hashable): no memo for it
        cached = None
    if cached is not None:
        return cached
    h = hashlib.sha256()
    h.update(str(getattr(generator, "family", type(generator).__name__)).encode())
    h.update(json.dumps(getattr(generator, "init_kwargs", {}), sort_keys=True, default=str).encode())
    for name, tensor in sorted(generator.state_dict().items()):
        if name.endswith("num_batches_tracked"):  # BatchNorm bookkeeping: some checkpoints carry it, some don't
            continue
        h.update(name.encode())
        t = tensor.detach().cpu().contiguous()
        h.update(str(tuple(t.shape)).encode() + str(t.dtype).encode())
        h.update(t.view(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    digest = h.hexdigest()
    try:
        with _identities_lock:
            _identities[generator] = digest
    except TypeError:
        pass
    return digest


def file_digest(path: str | Path) -> str:
    """sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def cache_key(image_digest: str, model_id: str, settings: dict[str, Any]) -> str:
    """The entry name: sha256 of image digest, model identity and canonical settings JSON."""
    blob = json.dumps({"image": image_digest, "model": model_id, "settings": settings}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def load_entry(cache_dir: Path, key: str) -> np.ndarray | None:
    """The cached ``ws [num_ws, w_dim]`` for ``key``, or ``None`` when absent or unreadable.

    A damaged entry (not an ``.npz``, truncated, without ``ws``, a header claiming more than
    :data:`MAX_ENTRY_ELEMENTS` numbers, values that are not finite) is logged as one warning and treated as absent,
    so the photo is projected again and the entry rewritten; it is never trusted.
    """
    path = cache_dir / f"{key}.npz"
    if not path.is_file():
        return None
    shown = str(path)

    def choose(names: list[str]) -> str:
        if "ws" not in names:
            raise SceneError(f"{shown!r} holds no 'ws' array (it holds {', '.join(names)})")
        return "ws"

    try:
        ws = load_array(path, shown, Locator(), (), choose=choose, max_elements=MAX_ENTRY_ELEMENTS)
    except SceneError as err:
        log.warning("projection cache: %s; ignoring the entry, the photo is projected again", err)
        return None
    return ws.astype(np.float32)


def store_entry(cache_dir: Path, key: str, ws: np.ndarray, meta: dict[str, Any]) -> Path:
    """Write ``ws`` and its settings atomically; returns the entry's path."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    path = cache_dir / f"{key}.npz"
    with atomic_path(path) as tmp:
        np.savez(tmp, ws=np.asarray(ws, dtype=np.float32), meta=json.dumps(meta, sort_keys=True, default=str))
    return path
