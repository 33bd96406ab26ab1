"""Tiny seeded StyleGAN2 models in the official naming, for tests that need a real network quickly.

``tiny_stylegan2()`` gives ``(init_kwargs, state)`` exactly as an official ``G_ema`` would store them: constructor
kwargs (StyleGAN2-ADA nested by default, or the StyleGAN3 repository's flat ``stylegan2`` layout) and every
parameter and buffer under its official name. Values are seeded and deliberately non-trivial (biases, noise
strengths, ``w_avg``, affine biases away from 1) so a wrong gain or a forgotten term shows up in the images.

``to_rosinality()`` / ``write_tiny_rosinality()`` convert such a model to rosinality's stylegan2-pytorch ``.pt``
layout (the inverse of ``morphstudio.generators.checkpoints.rosinality``), including a training-checkpoint variant
with an ``argparse.Namespace``, ``g``, ``d`` and optimiser states.

Import as ``from tests.tiny import tiny_stylegan2`` (or ``from tiny import ...`` inside ``tests/``).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

import torch

from morphstudio.generators.stylegan2 import StyleGAN2Generator


def tiny_stylegan2(
    resolution: int = 32,
    c_dim: int = 0,
    seed: int = 0,
    *,
    z_dim: int = 32,
    w_dim: int = 32,
    mapping_layers: int = 2,
    channel_base: int = 256,
    channel_max: int = 32,
    conv_clamp: float | None = None,
    num_fp16_res: int = 0,
    channels: dict[int, int] | None = None,
    flat: bool = False,
) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """A small StyleGAN2 generator with seeded random weights, in the official layout.

    Args:
        resolution: Output size (power of two ≥ 4). 32 px with the defaults has widths 32/32/16/8.
        c_dim: Label size; > 0 makes a conditional model (with ``mapping.embed.*``).
        seed: Seed of every tensor value.
        z_dim, w_dim, mapping_layers, channel_base, channel_max, conv_clamp, num_fp16_res: Official settings.
        channels: Explicit ``{resolution: width}`` (morphstudio's extension for widths no ``channel_base`` fits).
        flat: Return the StyleGAN3 repository's flat ``stylegan2`` kwargs instead of StyleGAN2-ADA's nested ones.

    Returns:
        ``(init_kwargs, state)``: kwargs as stored in an official pickle and ``{official name: float32 tensor}``.
    """
    mapping_kwargs = {"num_layers": mapping_layers}
    synthesis = {"channel_base": channel_base, "channel_max": channel_max, "num_fp16_res": num_fp16_res,
                 "conv_clamp": conv_clamp}
    if channels is not None:
        synthesis["channels"] = {str(r): c for r, c in channels.items()}
    common = {"z_dim": z_dim, "w_dim": w_dim, "c_dim": c_dim, "img_resolution": resolution, "img_channels": 3}
    if flat:
        init_kwargs: dict[str, Any] = {**common, "mapping_kwargs": mapping_kwargs, **synthesis,
                                       "fused_modconv_default": "inference_only"}
    else:
        init_kwargs = {**common, "mapping_kwargs": mapping_kwargs, "synthesis_kwargs": synthesis}
    shapes = StyleGAN2Generator.expected_shapes(init_kwargs)
    gen = torch.Generator().manual_seed(seed)
    lr_mul = 0.01  # the mapping's lr multiplier: its raw weights and biases are stored divided by it

    def randn(shape: tuple, scale: float = 1.0, offset: float = 0.0) -> torch.Tensor:
        return torch.randn(shape, generator=gen) * scale + offset

    f = torch.tensor([1.0, 3.0, 3.0, 1.0])
    resample_filter = f.ger(f) / f.ger(f).sum()
    state: dict[str, torch.Tensor] = {}
    for name in sorted(shapes):  # sorted: values depend on the seed only, not on module order
        shape = shapes[name]
        leaf = name.rsplit(".", 1)[-1]
        if leaf == "resample_filter":
            value = resample_filter.clone()
        elif name.startswith("mapping.fc"):
            value = randn(shape, 1 / lr_mul) if leaf == "weight" else randn(shape, 0.1 / lr_mul)
        elif name == "mapping.w_avg":
            value = randn(shape, 0.3)
        elif ".affine." in name:
            value = randn(shape) if leaf == "weight" else randn(shape, 0.1, 1.0)
        elif leaf == "noise_strength":
            value = randn(shape, 0.1)
        elif leaf == "bias":
            value = randn(shape, 0.1)
        else:  # conv/torgb/embed weights, const, noise_const
            value = randn(shape)
        state[name] = value.float()
    return init_kwargs, state


def to_rosinality(init_kwargs: dict[str, Any], state: dict[str, torch.Tensor]) -> dict[str, Any]:
    """Convert an official-layout StyleGAN2 to rosinality's ``{"g_ema": state_dict, "latent_avg": w_avg}``.

    Only unconditional models with ``z_dim == w_dim`` and the default 0.01 mapping lr exist in that layout.
    """
    if init_kwargs.get("c_dim", 0):
        raise ValueError("rosinality's generator is unconditional")
    res = int(init_kwargs["img_resolution"])
    g: dict[str, torch.Tensor] = {}
    i = 0
    while f"mapping.fc{i}.weight" in state:
        g[f"style.{i + 1}.weight"] = state[f"mapping.fc{i}.weight"].clone()
        g[f"style.{i + 1}.bias"] = state[f"mapping.fc{i}.bias"].clone()
        i += 1
    g["input.input"] = state["synthesis.b4.const"].unsqueeze(0).clone()

    def layer(dst: str, src: str, up: bool) -> None:
        g[f"{dst}.conv.weight"] = state[f"{src}.weight"].unsqueeze(0).clone()
        if up:
            g[f"{dst}.conv.blur.kernel"] = state[f"{src}.resample_filter"] * 4
        g[f"{dst}.conv.modulation.weight"] = state[f"{src}.affine.weight"].clone()
        g[f"{dst}.conv.modulation.bias"] = state[f"{src}.affine.bias"].clone()
        g[f"{dst}.noise.weight"] = state[f"{src}.noise_strength"].reshape(1).clone()
        g[f"{dst}.activate.bias"] = state[f"{src}.bias"].clone()

    def torgb(dst: str, src: str, block: str | None) -> None:
        g[f"{dst}.bias"] = state[f"{src}.bias"].reshape(1, -1, 1, 1).clone()
        if block is not None:
            g[f"{dst}.upsample.kernel"] = state[f"{block}.resample_filter"] * 4
        g[f"{dst}.conv.weight"] = state[f"{src}.weight"].unsqueeze(0).clone()
        g[f"{dst}.conv.modulation.weight"] = state[f"{src}.affine.weight"].clone()
        g[f"{dst}.conv.modulation.bias"] = state[f"{src}.affine.bias"].clone()

    layer("conv1", "synthesis.b4.conv1", up=False)
    torgb("to_rgb1", "synthesis.b4.torgb", None)
    noises = [state["synthesis.b4.conv1.noise_const"]]
    for k, r in enumerate(2**j for j in range(3, int(math.log2(res)) + 1)):
        layer(f"convs.{2 * k}", f"synthesis.b{r}.conv0", up=True)
        layer(f"convs.{2 * k + 1}", f"synthesis.b{r}.conv1", up=False)
        torgb(f"to_rgbs.{k}", f"synthesis.b{r}.torgb", f"synthesis.b{r}")
        noises += [state[f"synthesis.b{r}.conv0.noise_const"], state[f"synthesis.b{r}.conv1.noise_const"]]
    for j, n in enumerate(noises):
        g[f"noises.noise_{j}"] = n.reshape(1, 1, *n.shape).clone()
    return {"g_ema": g, "latent_avg": state["mapping.w_avg"].clone()}


def write_tiny_rosinality(path: str | Path, *, training: bool = False, seed: int = 0, resolution: int = 32,
                          **kwargs: Any) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Save a tiny model as a rosinality ``.pt``; returns the official ``(init_kwargs, state)`` it came from.

    Args:
        path: Where to write.
        training: Write a training checkpoint as rosinality's ``train.py`` does: ``g``, ``d``, ``g_ema``,
            optimiser states and an ``argparse.Namespace`` of arguments, and *no* ``latent_avg``.
        seed, resolution, **kwargs: Passed to :func:`tiny_stylegan2`.
    """
    init_kwargs, state = tiny_stylegan2(resolution, seed=seed, **kwargs)
    ckpt = to_rosinality(init_kwargs, state)
    if training:
        g_ema = ckpt["g_ema"]
        ckpt = {
            "g": {k: v + 0.01 for k, v in g_ema.items()},
            "d": {"convs.0.0.weight": torch.randn(8, 3, 1, 1), "final_linear.1.bias": torch.zeros(1)},
            "g_ema": g_ema,
            "g_optim": {"state": {}, "param_groups": [{"lr": 0.002, "betas": (0.0, 0.99), "params": [0, 1]}]},
            "d_optim": {"state": {}, "param_groups": [{"lr": 0.002, "betas": (0.0, 0.99), "params": [0]}]},
            "args": argparse.Namespace(size=resolution, latent=init_kwargs["w_dim"],
                                       n_mlp=init_kwargs["mapping_kwargs"]["num_layers"], channel_multiplier=2,
                                       batch=4, r1=10.0, path="/data/lmdb", ckpt=None),
            "ada_aug_p": 0.0,
        }
    torch.save(ckpt, path)
    return init_kwargs, state
