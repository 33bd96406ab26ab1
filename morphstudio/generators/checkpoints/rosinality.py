"""rosinality/stylegan2-pytorch ``.pt`` checkpoints -> official StyleGAN2 names.

rosinality's files are ``torch.save`` dicts: ``{"g_ema": state_dict, "latent_avg": w}`` from its converter, or
training checkpoints ``{"g", "d", "g_ema", "g_optim", "d_optim", "args": argparse.Namespace, ...}``. They are read
with ``torch.load(weights_only=True)`` (only ``argparse.Namespace`` added to torch's allow-list), so nothing in the
file is executed.

The numerics are the same network as NVIDIA's, with different bookkeeping:

* mapping ``style.{i+1}`` (``EqualLinear``, lr_mul 0.01: scale ``lr_mul/sqrt(in)``, bias × lr_mul) is
  ``mapping.fc{i}`` with identical raw weights;
* ``.conv.modulation`` (``EqualLinear``, lr_mul 1, bias init 1) is ``.affine``, identical raw weights;
* rosinality multiplies every conv weight by ``1/sqrt(fan_in)`` before modulation. With demodulation that factor
  cancels; for ToRGB (no demodulation) it is exactly NVIDIA's ``styles * 1/sqrt(C)``. So ``[1,O,I,k,k]`` weights
  map to ``[O,I,k,k]`` unchanged;
* ``noise.weight [1]`` is ``noise_strength []``, ``activate.bias`` is ``bias`` (biased lrelu × √2 in both),
  ``noises.noise_j [1,1,r,r]`` (layer order) is ``noise_const``, ToRGB ``bias [1,3,1,1]`` is ``bias [3]``;
* the blur / upsample kernels are the official FIR filter × 4 (rosinality folds the up-sampling gain into them).

Channel widths follow no fixed table (``channel_multiplier`` scales rosinality's), so they are read from the
tensor shapes.
"""

from __future__ import annotations

import argparse
import re
import zipfile
from pathlib import Path
from typing import Any, Iterable, Mapping

import torch

from morphstudio.errors import CheckpointError
from morphstudio.generators.checkpoints.safe_pickle import torch_load_weights_only
from morphstudio.generators.layers import MappingNetwork
from morphstudio.generators.checkpoints.data import CheckpointData
from morphstudio.latent import sample_latent_stats

# Samples used to estimate w_avg when a training checkpoint has no latent_avg (rosinality's mean_latent uses 4096).
W_AVG_SAMPLES = 4096


def looks_like_rosinality(keys: Iterable[str]) -> bool:
    """True when a ``torch.save`` dict's top-level keys are those of a rosinality checkpoint (it has ``g_ema``)."""
    return "g_ema" in set(keys)


def read_rosinality(path: str | Path) -> CheckpointData:
    """Read a rosinality stylegan2-pytorch ``.pt`` file as an official-layout StyleGAN2 checkpoint.

    Args:
        path: The ``.pt`` file (converter output or training checkpoint).

    Returns:
        :class:`CheckpointData` with StyleGAN2-ADA-style kwargs (widths inferred from shapes) and official names.

    Raises:
        UnsafeCheckpointError: The pickle asks for a global outside torch's weights-only allow-list.
        CheckpointError: Not a torch file, truncated, no ``g_ema``, or tensors whose shapes do not fit together.
    """
    path = Path(path)
    obj = _load(path)
    if not isinstance(obj, Mapping):
        raise CheckpointError(path, f"not a rosinality checkpoint: the file holds a {type(obj).__name__}, "
                              "not a dict with 'g_ema'")
    if "g_ema" not in obj:
        keys = ", ".join(repr(k) for k in list(obj)[:8]) or "none"
        raise CheckpointError(path, f"not a rosinality checkpoint: no 'g_ema' generator (top-level keys: {keys})",
                              hint="rosinality .pt files hold the generator under 'g_ema'")
    g_ema = obj["g_ema"]
    if not isinstance(g_ema, Mapping) or not all(isinstance(v, torch.Tensor) for v in g_ema.values()):
        raise CheckpointError(path, f"'g_ema' is a {type(g_ema).__name__}, not a state dict of tensors")
    args = obj.get("args")
    lr_mul = float(getattr(args, "lr_mlp", 0.01) or 0.01)
    init_kwargs, state, names = rosinality_to_official(g_ema, source=path, lr_mul=lr_mul)

    extra: dict[str, Any] = {"networks": sorted(str(k) for k in obj)}
    latent_avg = obj.get("latent_avg")
    if latent_avg is not None:
        latent_avg = torch.as_tensor(latent_avg).float().reshape(-1)
        if latent_avg.numel() != init_kwargs["w_dim"]:
            raise CheckpointError(path, f"'latent_avg' has {latent_avg.numel()} values but w_dim is "
                                  f"{init_kwargs['w_dim']}")
        state["mapping.w_avg"] = latent_avg
        extra["w_avg"] = "latent_avg"
    else:
        state["mapping.w_avg"] = torch.zeros([init_kwargs["w_dim"]])  # estimated below, once shapes are known good
    if isinstance(args, argparse.Namespace):
        extra["args"] = {k: v for k, v in vars(args).items() if isinstance(v, (int, float, str, bool, type(None)))}
    _check_shapes(init_kwargs, state, names, path)
    if latent_avg is None:
        # Training checkpoints carry no latent_avg; truncation needs one, so estimate it as rosinality does.
        state["mapping.w_avg"] = estimate_w_avg(state, init_kwargs)
        extra["w_avg"] = f"estimated: mean of {W_AVG_SAMPLES} mapped z (the file has no latent_avg)"
    kind = "training checkpoint" if ("g" in obj or "args" in obj) else "g_ema"
    return CheckpointData(family="stylegan2", init_kwargs=init_kwargs, state=state,
                          format=f"rosinality .pt ({kind})", path=str(path), extra=extra,
                          fresh=True)  # torch.load (no mmap) and the renaming give tensors of its own


def _load(path: Path) -> Any:
    """``torch.load(weights_only=True)`` with ``argparse.Namespace`` allowed; every failure is one clear line."""
    if not path.is_file():
        raise CheckpointError(path, "file not found" if not path.exists() else "not a regular file")
    if path.stat().st_size == 0:
        raise CheckpointError(path, "the file is empty")
    return torch_load_weights_only(
        path, path, safe_globals=[argparse.Namespace], with_type=True,
        errors=(RuntimeError, EOFError, ValueError, OSError, zipfile.BadZipFile, KeyError, IndexError,
                AttributeError, TypeError),
        message=lambda unpickling, first: f"not a readable PyTorch checkpoint ({first})" if unpickling
        else f"not a PyTorch checkpoint, or a truncated one ({first})")


def rosinality_to_official(g: Mapping[str, torch.Tensor], source: str | Path | None = None,
                           lr_mul: float = 0.01) -> tuple[dict[str, Any], dict[str, torch.Tensor], dict[str, str]]:
    """Rename a rosinality ``g_ema`` state dict to official names and infer the constructor kwargs.

    Args:
        g: rosinality ``Generator.state_dict()``.
        source: The file, for messages.
        lr_mul: The mapping network's lr multiplier (rosinality's ``lr_mlp``, 0.01 unless trained otherwise).

    Returns:
        ``(init_kwargs, state, names)``: StyleGAN2-ADA nested kwargs, ``{official name: tensor}`` (without
        ``mapping.w_avg``), and ``{official name: rosinality name}`` for error messages.

    Raises:
        CheckpointError: A required tensor is missing or has an impossible rank.
    """
    def get(name: str, ndim: int) -> torch.Tensor:
        if name not in g:
            raise CheckpointError(source, f"rosinality g_ema has no '{name}' tensor; is this a stylegan2-pytorch "
                                  "generator?")
        t = g[name]
        if t.ndim != ndim:
            raise CheckpointError(source, f"rosinality tensor '{name}' has shape {list(t.shape)}; expected "
                                  f"{ndim} dimensions")
        return t.detach().float()

    state: dict[str, torch.Tensor] = {}
    names: dict[str, str] = {}

    def put(official: str, rosi: str, value: torch.Tensor) -> None:
        state[official] = value.contiguous()
        names[official] = rosi

    style_ids = sorted(int(m.group(1)) for k in g if (m := re.fullmatch(r"style\.(\d+)\.weight", k)))
    if not style_ids:
        raise CheckpointError(source, "rosinality g_ema has no mapping layers ('style.N.weight')")
    if style_ids != list(range(1, len(style_ids) + 1)):
        raise CheckpointError(source, f"rosinality mapping layers are style.{style_ids}: expected style.1 … "
                              f"style.{len(style_ids)} without gaps")
    for i in style_ids:
        put(f"mapping.fc{i - 1}.weight", f"style.{i}.weight", get(f"style.{i}.weight", 2))
        put(f"mapping.fc{i - 1}.bias", f"style.{i}.bias", get(f"style.{i}.bias", 1))
    z_dim = int(g["style.1.weight"].shape[1])
    w_dim = int(g[f"style.{style_ids[-1]}.weight"].shape[0])
    layer_features = int(g["style.1.weight"].shape[0]) if len(style_ids) > 1 else w_dim

    n_rgbs = len([k for k in g if re.fullmatch(r"to_rgbs\.\d+\.conv\.weight", k)])
    resolution = 2 ** (n_rgbs + 2)
    widths = {4: int(get("input.input", 4).shape[1])}
    put("synthesis.b4.const", "input.input", get("input.input", 4)[0])

    def layer(official: str, rosi: str, up: bool) -> None:
        weight = get(f"{rosi}.conv.weight", 5)
        if weight.shape[0] != 1:
            raise CheckpointError(source, f"rosinality tensor '{rosi}.conv.weight' has shape {list(weight.shape)}; "
                                  "expected [1, out, in, k, k]")
        put(f"{official}.weight", f"{rosi}.conv.weight", weight[0])
        put(f"{official}.affine.weight", f"{rosi}.conv.modulation.weight", get(f"{rosi}.conv.modulation.weight", 2))
        put(f"{official}.affine.bias", f"{rosi}.conv.modulation.bias", get(f"{rosi}.conv.modulation.bias", 1))
        strength = get(f"{rosi}.noise.weight", 1)
        if strength.numel() != 1:
            raise CheckpointError(source, f"rosinality tensor '{rosi}.noise.weight' has shape "
                                  f"{list(strength.shape)}; expected [1]")
        put(f"{official}.noise_strength", f"{rosi}.noise.weight", strength.reshape(()))
        put(f"{official}.bias", f"{rosi}.activate.bias", get(f"{rosi}.activate.bias", 1))
        if up and f"{rosi}.conv.blur.kernel" in g:  # rosinality folds the up-sampling gain (4) into the kernel
            put(f"{official}.resample_filter", f"{rosi}.conv.blur.kernel", get(f"{rosi}.conv.blur.kernel", 2) / 4)

    def torgb(official: str, rosi: str, block: str | None) -> None:
        weight = get(f"{rosi}.conv.weight", 5)
        put(f"{official}.weight", f"{rosi}.conv.weight", weight[0])
        put(f"{official}.affine.weight", f"{rosi}.conv.modulation.weight", get(f"{rosi}.conv.modulation.weight", 2))
        put(f"{official}.affine.bias", f"{rosi}.conv.modulation.bias", get(f"{rosi}.conv.modulation.bias", 1))
        put(f"{official}.bias", f"{rosi}.bias", get(f"{rosi}.bias", 4).reshape(-1))
        if block is not None and f"{rosi}.upsample.kernel" in g:
            put(f"{block}.resample_filter", f"{rosi}.upsample.kernel", get(f"{rosi}.upsample.kernel", 2) / 4)

    layer("synthesis.b4.conv1", "conv1", up=False)
    torgb("synthesis.b4.torgb", "to_rgb1", None)
    noise_layers = ["synthesis.b4.conv1"]
    for k in range(n_rgbs):
        r = 2 ** (k + 3)
        widths[r] = int(get(f"convs.{2 * k}.conv.weight", 5).shape[1])
        layer(f"synthesis.b{r}.conv0", f"convs.{2 * k}", up=True)
        layer(f"synthesis.b{r}.conv1", f"convs.{2 * k + 1}", up=False)
        torgb(f"synthesis.b{r}.torgb", f"to_rgbs.{k}", f"synthesis.b{r}")
        noise_layers += [f"synthesis.b{r}.conv0", f"synthesis.b{r}.conv1"]
    for j, official in enumerate(noise_layers):
        noise = get(f"noises.noise_{j}", 4)
        put(f"{official}.noise_const", f"noises.noise_{j}", noise.reshape(noise.shape[-2:]))

    leftovers = sorted(set(g) - set(names.values()))
    if leftovers:
        raise CheckpointError(source, f"rosinality g_ema has unexpected tensor '{leftovers[0]}' with shape "
                              f"{list(g[leftovers[0]].shape)} (for a {resolution} px generator with "
                              f"{n_rgbs} upsampling blocks)")

    img_channels = int(g["to_rgb1.conv.weight"].shape[1])
    init_kwargs: dict[str, Any] = {
        "z_dim": z_dim, "w_dim": w_dim, "c_dim": 0, "img_resolution": resolution, "img_channels": img_channels,
        "mapping_kwargs": {"num_layers": len(style_ids), "layer_features": layer_features, "lr_multiplier": lr_mul},
        "synthesis_kwargs": {**_channel_settings(widths), "num_fp16_res": 0, "conv_clamp": None},
    }
    return init_kwargs, state, names


def _channel_settings(widths: dict[int, int]) -> dict[str, Any]:
    """``channel_base``/``channel_max`` reproducing ``widths`` via ``min(base // r, max)``, else explicit widths."""
    channel_max = max(widths.values())
    below = {r: c for r, c in widths.items() if c < channel_max}
    candidates = [c * r for r, c in below.items()] or [channel_max * max(widths)]
    for base in candidates:
        if all(min(base // r, channel_max) == c for r, c in widths.items()):
            return {"channel_base": base, "channel_max": channel_max}
    return {"channel_base": 32768, "channel_max": channel_max, "channels": {str(r): c for r, c in widths.items()}}


def estimate_w_avg(state: Mapping[str, torch.Tensor], init_kwargs: Mapping[str, Any],
                   samples: int = W_AVG_SAMPLES, seed: int = 0) -> torch.Tensor:
    """Mean of the mapping network over ``samples`` seeded z, as rosinality's ``mean_latent`` computes it."""
    mapping_kwargs = init_kwargs["mapping_kwargs"]
    from morphstudio.generators.base import build_for_loading

    # Every tensor is replaced by the file's below (built as the generators are: no meta device, RNG untouched).
    net = build_for_loading(lambda: MappingNetwork(int(init_kwargs["z_dim"]), 0, int(init_kwargs["w_dim"]), 1,
                                                   int(mapping_kwargs["num_layers"]),
                                                   lr_multiplier=float(mapping_kwargs.get("lr_multiplier", 0.01)),
                                                   layer_features=mapping_kwargs.get("layer_features")))
    net.load_state_dict({k: state[f"mapping.{k}"] for k in net.state_dict()}, assign=True)

    def sample(n: int, s: int) -> torch.Tensor:
        z = torch.randn([n, int(init_kwargs["z_dim"])], generator=torch.Generator().manual_seed(s))
        with torch.no_grad():
            return net.map_one(z)

    return sample_latent_stats(sample, samples=samples, seed=seed, row_norm=lambda d: d.norm(dim=-1)).mean


def _check_shapes(init_kwargs: dict[str, Any], state: dict[str, torch.Tensor], names: dict[str, str],
                  path: Path) -> None:
    """Shape-check against the network the kwargs describe; messages quote the rosinality tensor name."""
    from morphstudio.generators.base import check_state
    from morphstudio.generators.stylegan2 import StyleGAN2Generator

    expected = StyleGAN2Generator.expected_shapes(init_kwargs, path, state)
    expected = {k: v for k, v in expected.items() if k in state or not k.endswith("resample_filter")}
    try:
        check_state(expected, state, None, what="StyleGAN2 generator")
    except CheckpointError as exc:
        message = exc.message
        match = re.search(r"'([\w.]+)'", message)
        if match and match.group(1) in names:
            official = match.group(1)
            message = message.replace(f"'{official}'", f"'{names[official]}' (official '{official}')", 1)
        raise CheckpointError(path, f"inconsistent shapes in rosinality g_ema: {message}") from None
