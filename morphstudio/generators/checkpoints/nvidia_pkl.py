"""Official NVIDIA PyTorch pickles (StyleGAN2-ADA-PyTorch and StyleGAN3 repos) -> :class:`CheckpointData`.

The safe unpickler turns every network into a :class:`PersistentObject` holding the module's ``__dict__``
(``_parameters``, ``_buffers``, ``_modules``, ``_init_args``/``_init_kwargs``, plain attributes). This module walks
that tree from ``G_ema`` into ``{official.name: tensor}``; it decides which repo and family wrote it from the
structure (tensor names, kwargs layout) and from *reading* the stored module source as text, never running it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from morphstudio.errors import CheckpointError
from morphstudio.generators.checkpoints.safe_pickle import LazyTensor, PersistentObject
from morphstudio.generators.checkpoints.data import CheckpointData

log = logging.getLogger(__name__)

#: Positional constructor arguments of every official ``Generator`` (both repos), for ``_init_args``.
_GENERATOR_ARGS = ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels")

#: Keys a snapshot may hold; the generator for images is G_ema.
SNAPSHOT_KEYS = ("G", "D", "G_ema", "augment_pipe", "training_set_kwargs")


def is_nvidia_snapshot(obj: Any) -> bool:
    """True for an official snapshot dict (or a bare pickled persistent network)."""
    if isinstance(obj, PersistentObject):
        return True
    return isinstance(obj, dict) and any(isinstance(obj.get(k), PersistentObject) for k in SNAPSHOT_KEYS)


def read_nvidia_pickle(obj: Any, path: Path) -> CheckpointData:
    """Convert an unpickled official snapshot to :class:`CheckpointData`.

    Args:
        obj: What the safe unpickler returned: the snapshot dict, or a single persistent network.
        path: The file, for messages.

    Raises:
        CheckpointError: No generator in the snapshot, or its tree is malformed.
    """
    notes: list[str] = []
    held: list[str] = []
    if isinstance(obj, PersistentObject):
        net, used = obj, "(whole file)"
    else:
        held = [k for k, v in obj.items() if v is not None]
        if isinstance(obj.get("G_ema"), PersistentObject):
            net, used = obj["G_ema"], "G_ema"
        elif isinstance(obj.get("G"), PersistentObject):
            net, used = obj["G"], "G"
            notes.append("the snapshot has no G_ema; using the training generator G (its images are usually worse)")
            log.warning("%s: %s", path, notes[-1])
        else:
            raise CheckpointError(path, f"a StyleGAN pickle without a generator: it holds {', '.join(map(str, held))} "
                                        "but neither G_ema nor G")
    if net.class_name != "Generator":
        raise CheckpointError(path, f"{used} is a {net.class_name!r}, not a StyleGAN Generator")

    state: dict[str, torch.Tensor] = {}
    # Copied-out tensors may take at most twice the file's size (fp16 values become fp32): a file that shares one
    # storage among many tensors cannot make the copies grow beyond what it holds.
    budget = [2 * _file_size(path) + 2**20]
    _walk(net, "", state, path, depth=0, seen=set(), budget=budget)
    init_kwargs = _init_kwargs(net, path)
    family, repo = _identify(net, state, init_kwargs, path)
    return CheckpointData(
        family=family,
        init_kwargs=init_kwargs,
        state=state,
        format=f"nvidia-pkl ({repo})",
        path=str(path),
        extra={"networks": held or ["Generator"], "used": used, "notes": notes, "source_repo": repo},
        fresh=True,  # every tensor was materialised from the pickle's bytes into its own memory
    )


def _file_size(path: Path) -> int:
    try:
        return Path(path).stat().st_size
    except OSError:
        return 0


def _walk(obj: PersistentObject, prefix: str, out: dict[str, torch.Tensor], path: Path, depth: int,
          seen: set[int], budget: list[int]) -> None:
    """Collect parameters and buffers of ``obj`` and its children under dotted official names.

    Args:
        seen: ids of the modules visited so far: a module reached twice (shared or cyclic, which no official
            network is) is refused, so a small file cannot make the walk exponential.
        budget: Bytes the copied-out tensors may still take (a one-element list, decremented).
    """
    if depth > 32:
        raise CheckpointError(path, f"malformed network: modules nested deeper than 32 levels at {prefix!r}")
    if id(obj) in seen:
        raise CheckpointError(path, f"malformed network: module {prefix.rstrip('.') or 'G'} appears more than once "
                                    "in the generator")
    seen.add(id(obj))
    st = obj.state
    for slot in ("_parameters", "_buffers"):
        tensors = st.get(slot) or {}
        if not isinstance(tensors, dict):
            raise CheckpointError(path, f"malformed network: {prefix or 'G'}.{slot} is a {type(tensors).__name__}")
        for name, value in tensors.items():
            if value is None:  # e.g. StyleGAN3's identity filters are registered as None buffers
                continue
            if not isinstance(value, LazyTensor):
                raise CheckpointError(path, f"malformed network: {prefix}{name} is a {type(value).__name__}, "
                                            "not a tensor")
            dtype = torch.float32 if value.is_floating_point() else value.dtype
            cost = value.numel * dtype.itemsize
            if cost > budget[0]:
                raise CheckpointError(path, f"tensor {prefix}{name} of shape {list(value.shape)} would take {cost} "
                                            "bytes, more than the file holds (its tensors share storage)")
            budget[0] -= cost
            out[f"{prefix}{name}"] = value.materialize(dtype)
    children = st.get("_modules") or {}
    if not isinstance(children, dict):
        raise CheckpointError(path, f"malformed network: {prefix or 'G'}._modules is a {type(children).__name__}")
    for name, child in children.items():
        if child is None:
            continue
        if not isinstance(child, PersistentObject):
            raise CheckpointError(path, f"malformed network: submodule {prefix}{name} is a {type(child).__name__}")
        _walk(child, f"{prefix}{name}.", out, path, depth + 1, seen, budget)


def _init_kwargs(net: PersistentObject, path: Path) -> dict[str, Any]:
    """The Generator's constructor kwargs as plain JSON-able data (positional ``_init_args`` named)."""
    st = net.state
    args = st.get("_init_args") or ()
    kwargs = st.get("_init_kwargs") or {}
    if not isinstance(args, (tuple, list)) or not isinstance(kwargs, dict):
        raise CheckpointError(path, "malformed network: the generator's constructor arguments are unreadable")
    if len(args) > len(_GENERATOR_ARGS):
        raise CheckpointError(path, f"the generator was built with {len(args)} positional arguments; "
                                    f"expected at most {len(_GENERATOR_ARGS)}")
    merged = dict(zip(_GENERATOR_ARGS, args))
    merged.update(kwargs)
    if not merged:
        raise CheckpointError(path, "the generator's constructor arguments (_init_kwargs) are missing")
    return to_plain(merged, path)


#: Deepest nesting and most values accepted in constructor kwargs (official ones nest 3 deep, hold < 100 values).
MAX_KWARGS_DEPTH = 16
MAX_KWARGS_VALUES = 10_000


def to_plain(value: Any, path: Path | str, where: str = "init_kwargs") -> Any:
    """EasyDicts, numpy scalars/arrays and tuples -> plain JSON-able dict/list/int/float/str/None.

    Also the check for JSON configs: containers nested deeper than :data:`MAX_KWARGS_DEPTH`, more than
    :data:`MAX_KWARGS_VALUES` values, or a container inside itself are refused (a pickle's memo makes all three
    cheap to write and each would otherwise end in a RecursionError or an exponential copy).

    Raises:
        CheckpointError: A value that cannot be represented (a tensor, a network...), or one of the above.
    """
    return _plain(value, path, where, 0, [MAX_KWARGS_VALUES], set())


def _plain(value: Any, path: Path | str, where: str, depth: int, left: list[int], active: set[int]) -> Any:
    left[0] -= 1
    if left[0] < 0:
        raise CheckpointError(path, f"{where}: more than {MAX_KWARGS_VALUES} values in the constructor arguments")
    if isinstance(value, (dict, list, tuple)):
        if depth >= MAX_KWARGS_DEPTH:
            raise CheckpointError(path, f"{where}: nested deeper than {MAX_KWARGS_DEPTH} levels")
        if id(value) in active:
            raise CheckpointError(path, f"{where}: contains itself")
        active.add(id(value))
        try:
            if isinstance(value, dict):
                return {str(k): _plain(v, path, f"{where}.{k}", depth + 1, left, active) for k, v in value.items()}
            return [_plain(v, path, f"{where}[{i}]", depth + 1, left, active) for i, v in enumerate(value)]
        finally:
            active.discard(id(value))
    if isinstance(value, np.ndarray) and value.dtype.kind in "biuf":
        if value.size > left[0]:
            raise CheckpointError(path, f"{where}: an array of {value.size} values in the constructor arguments")
        left[0] -= value.size
        return value.tolist()
    if isinstance(value, np.generic) and value.dtype.kind in "biuf":
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise CheckpointError(path, f"{where}: unsupported value of type {type(value).__name__}")


def _identify(net: PersistentObject, state: dict[str, torch.Tensor], kwargs: dict[str, Any],
              path: Path) -> tuple[str, str]:
    """(family, repo description) from tensor names, kwargs layout and the module source's text."""
    src = net.module_src
    src_sg3 = "class SynthesisInput" in src or "filtered_lrelu" in src
    if "synthesis.input.freqs" in state or (src_sg3 and not any(k.startswith("synthesis.b4.") for k in state)):
        radial = bool(kwargs.get("use_radial_filters")) or kwargs.get("conv_kernel") == 1
        return "stylegan3", f"stylegan3 config-{'r' if radial else 't'}"
    if "synthesis.b4.const" in state:
        flat = "synthesis_kwargs" not in kwargs and ("channel_base" in kwargs or "fused_modconv_default" in src)
        if flat or "fused_modconv_default" in kwargs:
            return "stylegan2", "stylegan3 repo, stylegan2 config"
        return "stylegan2", "stylegan2-ada-pytorch"
    names = ", ".join(sorted(state)[:3]) or "no tensors"
    raise CheckpointError(path, f"a NVIDIA pickle whose generator is neither StyleGAN2 nor StyleGAN3 "
                                f"(tensors: {names}...)")
