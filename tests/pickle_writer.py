"""A small pickler that writes checkpoints in the official NVIDIA layouts, for tests only.

Nothing here imports or copies NVIDIA's code: the files are built from what the format doc says the pickles hold.
:class:`OfficialPickler` is the pure-Python ``pickle._Pickler`` with three extra object kinds:

* :class:`Global` -- writes a ``GLOBAL module name`` reference to anything, importable or not
  (``torch_utils.persistence._reconstruct_persistent_obj``, ``dnnlib.util.EasyDict``, ``os.system``...);
* :class:`Persistent` -- a network as the official ``persistence`` module pickles it:
  ``_reconstruct_persistent_obj({type, version, module_src, class_name, state})``;
* :class:`FakeEasyDict` / :class:`FakeTFNetwork` -- ``NEWOBJ`` of ``dnnlib`` classes, with dict items or
  ``BUILD`` state like the real ones.

Tensors pickle themselves as torch does (``_rebuild_tensor_v2`` on ``_load_from_bytes(legacy torch.save)``);
numpy scalars and arrays are written under the numpy 1 names (``numpy.core.multiarray``) or, with
``numpy_names="numpy2"``, the numpy 2 names (``numpy._core.multiarray``).
"""

from __future__ import annotations

import io
import json
import os
import pickle
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from safetensors.torch import load_file


class Global:
    """A reference ``module.name`` written as a pickle global; never resolved while writing."""

    _cache: dict[tuple[str, str], "Global"] = {}

    def __new__(cls, module: str, name: str) -> "Global":
        key = (module, name)
        if key not in cls._cache:
            obj = super().__new__(cls)
            obj.module, obj.name = module, name
            cls._cache[key] = obj
        return cls._cache[key]

    def __call__(self, *args: Any) -> Any:  # save_reduce insists that a reduce function be callable
        raise TypeError("Global is a marker for the pickler")


class Persistent:
    """A persistent network object: what ``torch_utils.persistence`` writes for every network class."""

    def __init__(self, class_name: str, module_src: str, state: dict[str, Any]) -> None:
        self.meta = {"type": "class", "version": 6, "module_src": module_src, "class_name": class_name,
                     "state": state}


class FakeEasyDict(dict):
    """Pickled as ``dnnlib.util.EasyDict``."""


class FakeTFNetwork:
    """Pickled as ``dnnlib.tflib.network.Network`` with ``state`` applied by ``BUILD``."""

    def __init__(self, state: dict[str, Any]) -> None:
        self.state = state


class Reduce:
    """An object whose pickle is ``func(*args)``: the classic malicious ``__reduce__`` payload. With ``state``,
    a ``BUILD`` opcode then applies that state to the result (``result.__setstate__(state)``)."""

    def __init__(self, func: Global, args: tuple[Any, ...], state: Any = None) -> None:
        self.func, self.args, self.state = func, args, state


class OfficialPickler(pickle._Pickler):  # the pure-Python pickler: its dispatch table can be extended
    """Writes :class:`Global`, :class:`Persistent`, :class:`FakeEasyDict`, :class:`FakeTFNetwork`, :class:`Reduce`.

    Args:
        file: Binary output.
        protocol: 2, 3 (Python 3.7 era, StyleGAN2-ADA) or 4 (StyleGAN3 era).
        numpy_names: ``"numpy1"`` or ``"numpy2"`` global names for numpy scalars and arrays.
    """

    dispatch = dict(pickle._Pickler.dispatch)

    def __init__(self, file: io.BufferedIOBase, protocol: int = 4, numpy_names: str = "numpy1") -> None:
        super().__init__(file, protocol=protocol)
        self.numpy_core = "numpy._core" if numpy_names == "numpy2" else "numpy.core"

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, np.generic):
            _, args = obj.__reduce__()[:2]
            return Global(f"{self.numpy_core}.multiarray", "scalar"), args
        if type(obj) is np.ndarray:
            _, args, state = obj.__reduce__()
            return Global(f"{self.numpy_core}.multiarray", "_reconstruct"), args, state
        return NotImplemented

    def save_global_ref(self, obj: Global) -> None:
        if self.proto >= 4:
            self.save(obj.module)
            self.save(obj.name)
            self.write(pickle.STACK_GLOBAL)
        else:
            self.write(pickle.GLOBAL + f"{obj.module}\n{obj.name}\n".encode("utf-8"))
        self.memoize(obj)

    def save_persistent(self, obj: Persistent) -> None:
        self.save_reduce(Global("torch_utils.persistence", "_reconstruct_persistent_obj"), (obj.meta,), obj=obj)

    def save_easydict(self, obj: FakeEasyDict) -> None:
        self.save(Global("dnnlib.util", "EasyDict"))
        self.save(())
        self.write(pickle.NEWOBJ)
        self.memoize(obj)
        self._batch_setitems(iter(obj.items()))

    def save_tf_network(self, obj: FakeTFNetwork) -> None:
        self.save(Global("dnnlib.tflib.network", "Network"))
        self.save(())
        self.write(pickle.NEWOBJ)
        self.memoize(obj)
        self.save(obj.state)
        self.write(pickle.BUILD)

    def save_call(self, obj: Reduce) -> None:
        self.save_reduce(obj.func, obj.args, state=obj.state, obj=obj)

    dispatch[Global] = save_global_ref
    dispatch[Persistent] = save_persistent
    dispatch[FakeEasyDict] = save_easydict
    dispatch[FakeTFNetwork] = save_tf_network
    dispatch[Reduce] = save_call


def dump(obj: Any, path: Path, protocol: int = 4, numpy_names: str = "numpy1") -> Path:
    """Pickle ``obj`` to ``path`` with :class:`OfficialPickler`."""
    with open(path, "wb") as f:
        OfficialPickler(f, protocol=protocol, numpy_names=numpy_names).dump(obj)
    return path


# --- networks in the official layout ----------------------------------------------------------------------------

BUFFERS = {"w_avg", "noise_const", "resample_filter", "transform", "freqs", "phases", "magnitude_ema", "up_filter",
           "down_filter"}

SRC_ADA = ("# training/networks.py of StyleGAN2-ADA-PyTorch -- a stand-in text written for morphstudio's tests.\n"
           "class MappingNetwork(torch.nn.Module): ...\nclass SynthesisBlock(torch.nn.Module): ...\n")
SRC_SG3_SG2 = ("# training/networks_stylegan2.py of the StyleGAN3 repo -- stand-in text for tests.\n"
               "class SynthesisBlock(torch.nn.Module):\n    fused_modconv_default = 'inference_only'\n")
SRC_SG3 = ("# training/networks_stylegan3.py -- stand-in text for tests.\n"
           "class SynthesisInput(torch.nn.Module): ...\nclass SynthesisLayer(torch.nn.Module): ...\n")


def class_name_for(path: str) -> str:
    """Official class of the submodule at dotted ``path`` inside a generator."""
    last = path.split(".")[-1] if path else ""
    if not path:
        return "Generator"
    if path == "mapping":
        return "MappingNetwork"
    if path == "synthesis":
        return "SynthesisNetwork"
    if last.startswith("fc") or last in ("affine", "embed"):
        return "FullyConnectedLayer"
    if last == "input":
        return "SynthesisInput"
    if last.startswith("b") and last[1:].isdigit():
        return "SynthesisBlock"
    if last == "torgb":
        return "ToRGBLayer"
    return "SynthesisLayer"


def module_state(params: dict[str, torch.Tensor], buffers: dict[str, torch.Tensor | None],
                 modules: dict[str, Any], init_args: tuple[Any, ...], init_kwargs: dict[str, Any],
                 attrs: dict[str, Any]) -> dict[str, Any]:
    """An ``nn.Module.__dict__`` as torch keeps it, plus the persistence decorator's constructor record."""
    state: dict[str, Any] = {
        "training": False,
        "_parameters": OrderedDict(params),
        "_buffers": OrderedDict(buffers),
        "_non_persistent_buffers_set": set(),
        "_backward_hooks": OrderedDict(),
        "_forward_hooks": OrderedDict(),
        "_forward_pre_hooks": OrderedDict(),
        "_state_dict_hooks": OrderedDict(),
        "_load_state_dict_pre_hooks": OrderedDict(),
        "_modules": OrderedDict(modules),
    }
    state.update(attrs)
    state["_init_args"] = init_args
    state["_init_kwargs"] = init_kwargs
    return state


def to_easydict(value: Any) -> Any:
    if isinstance(value, dict):
        return FakeEasyDict({k: to_easydict(v) for k, v in value.items()})
    return value


def generator_tree(flat: dict[str, torch.Tensor], init_kwargs: dict[str, Any], module_src: str,
                   none_buffers: tuple[str, ...] = (), numpy_attrs: bool = True,
                   src_for: Callable[[str], str] | None = None) -> Persistent:
    """Nest an official-named state dict into persistent objects, one per module.

    Args:
        flat: ``{official.name: tensor}``.
        init_kwargs: The Generator's constructor kwargs (stored as EasyDicts).
        module_src: Source text recorded for every module.
        none_buffers: Dotted buffer names to register as ``None`` (like StyleGAN3's identity filters).
        numpy_attrs: Add numpy scalar/array attributes as the official modules have.
        src_for: Optional per-module override of the source text (for hostile tests).
    """
    tree: dict[str, Any] = {}
    for name, t in list(flat.items()) + [(n, None) for n in none_buffers]:
        *mods, leaf = name.split(".")
        node = tree
        for m in mods:
            node = node.setdefault(m, {})
        node[leaf] = t

    def build(node: dict[str, Any], path: str) -> Persistent:
        params, buffers, children = {}, {}, {}
        for key, value in node.items():
            if isinstance(value, dict):
                children[key] = build(value, f"{path}.{key}" if path else key)
            elif key in BUFFERS:
                buffers[key] = value
            else:
                params[key] = torch.nn.Parameter(value, requires_grad=False)
        cls = class_name_for(path)
        attrs: dict[str, Any] = {}
        args: tuple[Any, ...] = ()
        kwargs: dict[str, Any] = {}
        if cls == "Generator":
            kwargs = to_easydict(init_kwargs)
            attrs = {k: init_kwargs[k] for k in ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels")}
        elif cls == "FullyConnectedLayer":
            out_f, in_f = params["weight"].shape
            args = (int(in_f), int(out_f))  # positional, as the official code builds its layers
            kwargs = FakeEasyDict(bias_init=1 if path.endswith("affine") else 0)
            if numpy_attrs:
                attrs = {"activation": "linear", "weight_gain": np.float64(1.0 / np.sqrt(in_f)), "bias_gain": 1}
        elif cls in ("SynthesisLayer", "SynthesisInput") and numpy_attrs:
            attrs = {"in_size": np.broadcast_to(np.asarray(36), [2]), "in_sampling_rate": np.float64(16.0),
                     "conv_clamp": 256, "layer_flags": np.array([True, False])}
        src = src_for(path) if src_for else module_src
        return Persistent(cls, src, module_state(params, buffers, children, args, kwargs, attrs))

    return build(tree, "")


def simple_module(class_name: str, src: str, params: dict[str, torch.Tensor],
                  buffers: dict[str, torch.Tensor], kwargs: dict[str, Any]) -> Persistent:
    return Persistent(class_name, src, module_state({k: torch.nn.Parameter(v, requires_grad=False)
                                                      for k, v in params.items()},
                                                     buffers, {}, (), to_easydict(kwargs), {}))


def reference_state(reference_dir: Path, name: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(state, init_kwargs) of ``reference/<name>/``."""
    state = load_file(str(reference_dir / name / "G_ema.safetensors"))
    cfg = json.loads((reference_dir / name / "config.json").read_text())
    return state, cfg["init_kwargs"]


def snapshot(g_ema: Persistent, g: Persistent | None = None, order: str = "ada",
             extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """A full training snapshot dict around ``g_ema``: G, D, augment_pipe and training_set_kwargs included."""
    gen = torch.Generator().manual_seed(0)
    D = simple_module("Discriminator", "# training/networks.py stand-in\nclass Discriminator: ...\n",
                      {"b64.fromrgb.weight": torch.randn(8, 3, 1, 1, generator=gen),
                       "b4.out.bias": torch.randn(1, generator=gen)},
                      {"b64.resample_filter": torch.ones(4, 4) / 16}, {"c_dim": 0, "img_resolution": 64})
    aug = simple_module("AugmentPipe", "# training/augment.py stand-in\nclass AugmentPipe: ...\n", {},
                        {"p": torch.tensor(0.2), "Hz_geom": torch.randn(12, generator=gen)},
                        {"xflip": 1, "rotate90": 1, "xint": 1})
    tsk = FakeEasyDict(class_name="training.dataset.ImageFolderDataset", path="~/datasets/faces.zip",
                       use_labels=False, max_size=70000, xflip=False, resolution=64)
    items = {"G": g if g is not None else g_ema, "D": D, "G_ema": g_ema, "augment_pipe": aug,
             "training_set_kwargs": tsk}
    keys = (("training_set_kwargs", "G", "D", "G_ema", "augment_pipe") if order == "ada"
            else ("G", "D", "G_ema", "augment_pipe", "training_set_kwargs"))
    out = {k: items[k] for k in keys}
    out.update(extra or {})
    return out


def sg2ada_pickle(reference_dir: Path, path: Path, protocol: int = 3, numpy_names: str = "numpy1",
                  flat_kwargs: bool = False, with_g_ema: bool = True) -> Path:
    """The ``sg2ada`` reference weights as a full StyleGAN2-ADA snapshot (or, with ``flat_kwargs``, as the
    StyleGAN3 repo's ``stylegan2`` config writes it). ``G`` holds different weights, so using it shows."""
    state, kwargs = reference_state(reference_dir, "sg2ada")
    src = SRC_ADA
    if flat_kwargs:
        syn = kwargs["synthesis_kwargs"]
        kwargs = {k: v for k, v in kwargs.items() if k != "synthesis_kwargs"}
        kwargs.update(syn)
        kwargs["fused_modconv_default"] = "inference_only"
        src = SRC_SG3_SG2
    g_ema = generator_tree(state, kwargs, src)
    g = generator_tree({k: v + 0.25 for k, v in state.items()}, kwargs, src)
    snap = snapshot(g_ema, g, order="sg3" if flat_kwargs else "ada")
    if not with_g_ema:
        del snap["G_ema"]
    return dump(snap, path, protocol=protocol, numpy_names=numpy_names)


def sg3_pickle(reference_dir: Path, path: Path, protocol: int = 4, numpy_names: str = "numpy2") -> Path:
    """The ``sg3_t`` reference weights as a full StyleGAN3 snapshot, the last layer's filters as ``None``."""
    state, kwargs = reference_state(reference_dir, "sg3_t")
    last = max((k.split(".")[1] for k in state if k.startswith("synthesis.L")), key=lambda n: int(n[1:].split("_")[0]))
    none = tuple(f"synthesis.{last}.{b}" for b in ("up_filter", "down_filter") if f"synthesis.{last}.{b}" not in state)
    g_ema = generator_tree(state, kwargs, SRC_SG3, none_buffers=none)
    return dump(snapshot(g_ema, order="sg3"), path, protocol=protocol, numpy_names=numpy_names)


# --- legacy TensorFlow ------------------------------------------------------------------------------------------


def to_tf_variables(state: dict[str, torch.Tensor], res: int, n_mapping: int) -> dict[str, dict[str, np.ndarray]]:
    """Official PyTorch names -> the TF StyleGAN2 variables, per component (the inverse of the loader's layout)."""
    s = {k: v.numpy().astype(np.float32) for k, v in state.items()}

    def conv(w: np.ndarray, flip: bool = False) -> np.ndarray:
        tf = w.transpose(2, 3, 1, 0)  # [out, in, kh, kw] -> [kh, kw, in, out]
        return np.ascontiguousarray(tf[::-1, ::-1] if flip else tf)

    mapping = {}
    for i in range(n_mapping):
        mapping[f"Dense{i}/weight"] = np.ascontiguousarray(s[f"mapping.fc{i}.weight"].T)
        mapping[f"Dense{i}/bias"] = s[f"mapping.fc{i}.bias"]
    synth: dict[str, np.ndarray] = {"4x4/Const/const": s["synthesis.b4.const"][None]}

    def layer(src: str, dst: str, noise: int, flip: bool) -> None:
        synth[f"{dst}/weight"] = conv(s[f"{src}.weight"], flip)
        synth[f"{dst}/mod_weight"] = np.ascontiguousarray(s[f"{src}.affine.weight"].T)
        synth[f"{dst}/mod_bias"] = s[f"{src}.affine.bias"] - np.float32(1)
        synth[f"{dst}/noise_strength"] = s[f"{src}.noise_strength"]
        synth[f"{dst}/bias"] = s[f"{src}.bias"]
        synth[f"noise{noise}"] = s[f"{src}.noise_const"][None, None]

    r = 4
    while r <= res:
        lg = int(np.log2(r))
        if r == 4:
            layer("synthesis.b4.conv1", "4x4/Conv", 0, False)
        else:
            layer(f"synthesis.b{r}.conv0", f"{r}x{r}/Conv0_up", 2 * lg - 5, True)
            layer(f"synthesis.b{r}.conv1", f"{r}x{r}/Conv1", 2 * lg - 4, False)
        t = f"synthesis.b{r}.torgb"
        synth[f"{r}x{r}/ToRGB/weight"] = conv(s[f"{t}.weight"])
        synth[f"{r}x{r}/ToRGB/mod_weight"] = np.ascontiguousarray(s[f"{t}.affine.weight"].T)
        synth[f"{r}x{r}/ToRGB/mod_bias"] = s[f"{t}.affine.bias"] - np.float32(1)
        synth[f"{r}x{r}/ToRGB/bias"] = s[f"{t}.bias"]
        r *= 2
    return {"Gs": {"dlatent_avg": s["mapping.w_avg"], "lod": np.float32(0)}, "mapping": mapping, "synthesis": synth}


def tf_network(name: str, func: str, variables: dict[str, np.ndarray], static_kwargs: dict[str, Any],
               components: dict[str, Any] | None = None, build_module_src: str = "") -> FakeTFNetwork:
    return FakeTFNetwork({
        "version": 4, "name": name, "static_kwargs": static_kwargs, "components": components or {},
        "build_module_src": build_module_src or "# networks_stylegan2.py stand-in text for tests\n",
        "build_func_name": func, "variables": list(variables.items()),
    })


def tf_pickle(reference_dir: Path, path: Path, build_module_src: str = "") -> Path:
    """The ``sg2ada`` reference weights as a legacy TensorFlow StyleGAN2 pickle ``(G, D, Gs)``."""
    state, kwargs = reference_state(reference_dir, "sg2ada")
    res = kwargs["img_resolution"]
    n_map = kwargs["mapping_kwargs"]["num_layers"]
    v = to_tf_variables(state, res, n_map)
    static = {"num_channels": 3, "resolution": res, "label_size": 0, "latent_size": kwargs["z_dim"],
              "dlatent_size": kwargs["w_dim"], "fmap_base": kwargs["synthesis_kwargs"]["channel_base"] // 2,
              "fmap_max": kwargs["synthesis_kwargs"]["channel_max"], "mapping_layers": n_map,
              "truncation_psi": 0.5}
    mapping = tf_network("G_mapping", "G_mapping", v["mapping"], static, build_module_src=build_module_src)
    synthesis = tf_network("G_synthesis", "G_synthesis_stylegan2", v["synthesis"], static,
                           build_module_src=build_module_src)
    gs = tf_network("G", "G_main", v["Gs"], static, {"mapping": mapping, "synthesis": synthesis},
                    build_module_src=build_module_src)
    d = tf_network("D", "D_stylegan2", {"4x4/Dense0/weight": np.zeros((8, 1), np.float32)}, {"resolution": res},
                   build_module_src=build_module_src)
    return dump((gs, d, gs), path, protocol=4)


def write_marker_src(marker: Path) -> str:
    """Python source that, if anyone executed it, would create ``marker``."""
    return f"import pathlib\npathlib.Path({os.fspath(marker)!r}).write_text('executed')\n"
