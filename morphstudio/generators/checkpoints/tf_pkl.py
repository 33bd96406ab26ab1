"""Legacy TensorFlow StyleGAN2 pickles (``stylegan2-ffhq-config-f.pkl`` & co) -> official PyTorch names.

The file is a tuple ``(G, D, Gs)`` of ``dnnlib.tflib.network.Network`` states; images come from ``Gs``. Each state
lists its variables as ``(name, ndarray)`` and nests its components (``mapping``, ``synthesis``). Conversion
follows the layout facts: dense weights transposed; conv kernels ``[kh, kw, in, out] -> [out, in, kh, kw]``, and
the transposed-conv kernels of ``Conv0_up`` (and ``Skip``) also flipped in both spatial axes; modulation bias
``+ 1``; noise inputs assigned in layer order. The result uses StyleGAN2-ADA's nested constructor kwargs.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from morphstudio.errors import CheckpointError
from morphstudio.generators.checkpoints.nvidia_pkl import to_plain
from morphstudio.generators.checkpoints.safe_pickle import TFNetwork
from morphstudio.generators.checkpoints.data import CheckpointData


def is_tf_pickle(obj: Any) -> bool:
    """True for ``(G, D, Gs)`` or a single pickled TF network."""
    if isinstance(obj, TFNetwork):
        return True
    return isinstance(obj, tuple) and bool(obj) and all(isinstance(o, TFNetwork) for o in obj)


def read_tf_pickle(obj: Any, path: Path) -> CheckpointData:
    """Convert an unpickled TF StyleGAN2 pickle to :class:`CheckpointData` (family ``stylegan2``).

    Raises:
        CheckpointError: Not a StyleGAN2 generator (StyleGAN1, missing variables, unsupported settings).
    """
    if isinstance(obj, TFNetwork):
        gs, used = obj, "the pickled network"
    elif len(obj) == 3:
        gs, used = obj[2], "Gs"
    else:
        raise CheckpointError(path, f"a TensorFlow pickle of {len(obj)} networks; expected (G, D, Gs)")
    st = gs.tf_state
    version = st.get("version")
    if not isinstance(version, int) or version < 4:
        raise CheckpointError(path, f"TensorFlow network pickle version {version!r} is too old "
                                    "(StyleGAN1-era); only StyleGAN2 pickles (version 4) are supported")
    comps = st.get("components") or {}
    synth = comps.get("synthesis")
    if not isinstance(comps.get("mapping"), TFNetwork) or not isinstance(synth, TFNetwork):
        raise CheckpointError(path, f"{used} has no mapping/synthesis components; not a StyleGAN2 generator")
    func = str(synth.tf_state.get("build_func_name", ""))
    if func and func != "G_synthesis_stylegan2":
        raise CheckpointError(path, f"the synthesis network is {func!r}; only StyleGAN2's G_synthesis_stylegan2 "
                                    "is supported")

    params: dict[str, np.ndarray] = {}
    _collect(gs, "", params, path, depth=0, seen=set())
    tf_kwargs = to_plain(st.get("static_kwargs") or {}, path, "static_kwargs")
    kwargs = _convert_kwargs(tf_kwargs, params, path)
    state = _convert_params(params, kwargs, path)
    return CheckpointData(
        family="stylegan2",
        init_kwargs=kwargs,
        state=state,
        format="tensorflow-pkl (stylegan2)",
        path=str(path),
        extra={"networks": [str(n.tf_state.get("name", "?")) for n in (obj if isinstance(obj, tuple) else (obj,))],
               "used": used, "notes": [], "source_repo": "stylegan2 (tensorflow)"},
        fresh=True,  # converted from numpy copies of the pickle's arrays
    )


def _collect(net: TFNetwork, prefix: str, out: dict[str, np.ndarray], path: Path, depth: int,
             seen: set[int]) -> None:
    if depth > 8:
        raise CheckpointError(path, "malformed TensorFlow pickle: components nested too deeply")
    if id(net) in seen:  # a shared component would make the walk exponential in a small file
        raise CheckpointError(path, f"malformed TensorFlow pickle: component {prefix.rstrip('/') or 'Gs'} appears "
                                    "more than once")
    seen.add(id(net))
    st = net.tf_state
    variables = st.get("variables") or []
    if not isinstance(variables, (list, tuple)):
        raise CheckpointError(path, "malformed TensorFlow pickle: 'variables' is not a list")
    for item in variables:
        if not (isinstance(item, (list, tuple)) and len(item) == 2 and isinstance(item[0], str)):
            raise CheckpointError(path, "malformed TensorFlow pickle: a variable is not a (name, array) pair")
        name, value = item
        if isinstance(value, np.generic):
            value = np.asarray(value)
        if not isinstance(value, np.ndarray) or value.dtype.kind not in "biuf":
            raise CheckpointError(path, f"TensorFlow variable {prefix}{name} is not a numeric array")
        out[prefix + name] = value
    for name, comp in (st.get("components") or {}).items():
        if not isinstance(comp, TFNetwork):
            raise CheckpointError(path, f"malformed TensorFlow pickle: component {name!r} is not a network")
        _collect(comp, f"{prefix}{name}/", out, path, depth + 1, seen)


def _convert_kwargs(tf: dict[str, Any], params: dict[str, np.ndarray], path: Path) -> dict[str, Any]:
    """TF ``static_kwargs`` -> StyleGAN2-ADA ``Generator`` kwargs (nested), with the TF code's defaults."""

    def get(name: str, default: Any) -> Any:
        value = tf.get(name)
        return default if value is None else value

    arch = get("architecture", "skip")
    if arch != "skip" or any("ToRGB_lod" in k for k in params):
        raise CheckpointError(path, f"TensorFlow generator architecture {arch!r} is not supported (only 'skip', "
                                    "as in StyleGAN2 configs e and f)")
    num_layers = get("mapping_layers", 8)
    mapping: dict[str, Any] = {
        "num_layers": num_layers,
        "embed_features": tf.get("label_fmaps"),
        "layer_features": tf.get("mapping_fmaps"),
        "activation": get("mapping_nonlinearity", "lrelu"),
        "lr_multiplier": get("mapping_lrmul", 0.01),
    }
    synthesis: dict[str, Any] = {
        "channel_base": int(get("fmap_base", 16 << 10)) * 2,
        "channel_max": get("fmap_max", 512),
        "num_fp16_res": get("num_fp16_res", 0),
        "conv_clamp": tf.get("conv_clamp"),
        "architecture": arch,
        "resample_filter": list(get("resample_kernel", [1, 3, 3, 1])),
        "use_noise": get("use_noise", True),
        "activation": get("nonlinearity", "lrelu"),
    }
    return {
        "z_dim": get("latent_size", 512),
        "c_dim": get("label_size", 0),
        "w_dim": get("dlatent_size", 512),
        "img_resolution": get("resolution", 1024),
        "img_channels": get("num_channels", 3),
        "mapping_kwargs": {k: v for k, v in mapping.items() if v is not None},
        "synthesis_kwargs": {k: v for k, v in synthesis.items() if k == "conv_clamp" or v is not None},
    }


def _convert_params(p: dict[str, np.ndarray], kwargs: dict[str, Any], path: Path) -> dict[str, torch.Tensor]:
    """Rename and re-lay-out every variable to the official PyTorch ``G_ema`` names."""

    def need(name: str) -> np.ndarray:
        if name not in p:
            raise CheckpointError(path, f"TensorFlow variable {name!r} is missing "
                                        f"(resolution {kwargs['img_resolution']} needs it)")
        return p[name]

    def conv(name: str, flip: bool = False) -> np.ndarray:
        w = need(name)
        if w.ndim != 4:
            raise CheckpointError(path, f"TensorFlow variable {name!r} has shape {list(w.shape)}, expected 4-D")
        if flip:  # TF's transposed conv correlates with the kernel the other way round
            w = w[::-1, ::-1]
        return w.transpose(3, 2, 0, 1)

    def mat(name: str) -> np.ndarray:
        w = need(name)
        if w.ndim != 2:
            raise CheckpointError(path, f"TensorFlow variable {name!r} has shape {list(w.shape)}, expected 2-D")
        return w.T

    out: dict[str, np.ndarray] = {"mapping.w_avg": need("dlatent_avg")}
    if "mapping/LabelEmbed/weight" in p:
        out["mapping.embed.weight"] = mat("mapping/LabelEmbed/weight")
        out["mapping.embed.bias"] = need("mapping/LabelEmbed/bias")
    for i in range(int(kwargs["mapping_kwargs"]["num_layers"])):
        out[f"mapping.fc{i}.weight"] = mat(f"mapping/Dense{i}/weight")
        out[f"mapping.fc{i}.bias"] = need(f"mapping/Dense{i}/bias")

    res = int(kwargs["img_resolution"])
    if res < 4 or 2 ** int(math.log2(res)) != res:
        raise CheckpointError(path, f"resolution {res} is not a power of two")
    filt = _resample_filter(kwargs["synthesis_kwargs"]["resample_filter"])
    const = need("synthesis/4x4/Const/const")
    out["synthesis.b4.const"] = const[0] if const.ndim == 4 else const

    def layer(dst: str, src: str, noise_index: int, flip: bool) -> None:
        out[f"{dst}.weight"] = conv(f"{src}/weight", flip=flip)
        out[f"{dst}.bias"] = need(f"{src}/bias")
        out[f"{dst}.affine.weight"] = mat(f"{src}/mod_weight")
        out[f"{dst}.affine.bias"] = need(f"{src}/mod_bias") + np.float32(1)
        if f"{src}/noise_strength" in p:
            out[f"{dst}.noise_strength"] = need(f"{src}/noise_strength")
            noise = need(f"synthesis/noise{noise_index}")
            out[f"{dst}.noise_const"] = noise.reshape(noise.shape[-2:])
        out[f"{dst}.resample_filter"] = filt

    def torgb(dst: str, src: str) -> None:
        out[f"{dst}.weight"] = conv(f"{src}/weight")
        out[f"{dst}.bias"] = need(f"{src}/bias")
        out[f"{dst}.affine.weight"] = mat(f"{src}/mod_weight")
        out[f"{dst}.affine.bias"] = need(f"{src}/mod_bias") + np.float32(1)

    r = 4
    while r <= res:
        log2 = int(math.log2(r))
        if r == 4:
            layer("synthesis.b4.conv1", "synthesis/4x4/Conv", 0, flip=False)
        else:
            layer(f"synthesis.b{r}.conv0", f"synthesis/{r}x{r}/Conv0_up", 2 * log2 - 5, flip=True)
            layer(f"synthesis.b{r}.conv1", f"synthesis/{r}x{r}/Conv1", 2 * log2 - 4, flip=False)
            if f"synthesis/{r}x{r}/Skip/weight" in p:
                out[f"synthesis.b{r}.skip.weight"] = conv(f"synthesis/{r}x{r}/Skip/weight", flip=True)
        torgb(f"synthesis.b{r}.torgb", f"synthesis/{r}x{r}/ToRGB")
        out[f"synthesis.b{r}.resample_filter"] = filt
        r *= 2
    # A fresh copy per tensor: the shared filter array must not become shared tensor memory.
    return {k: torch.from_numpy(np.array(v, dtype=np.float32, order="C", copy=True)) for k, v in out.items()}


def _resample_filter(kernel: list[float]) -> np.ndarray:
    """The 2-D FIR buffer the PyTorch code registers: outer product of the 1-D kernel, normalised to sum 1."""
    k = np.asarray(kernel, dtype=np.float32)
    f = np.outer(k, k)
    return f / f.sum()

