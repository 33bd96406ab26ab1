"""StyleGAN2 generator (skip architecture), written from the published formulas.

Numerics follow NVIDIA's StyleGAN2-ADA-PyTorch generator so official checkpoints reproduce the official images
(≤ 1e-4 in fp32, in practice ~1e-6): equalised-learning-rate layers whose gains are applied at run time, a mapping
network with ``lr_mul`` 0.01, modulated/demodulated 3×3 convolutions, transposed-conv upsampling followed by the
[1, 3, 3, 1] FIR filter (gain 4), per-layer noise, biased leaky ReLU × √2 with an optional clamp, and ToRGB
layers without demodulation whose outputs are summed through upsampled skips.

Module and parameter names are the official ``G_ema`` ones (``mapping.fc0.weight``, ``synthesis.b8.conv0.affine
.weight`` ...), so :meth:`torch.nn.Module.state_dict` round-trips with an official checkpoint's tensors. Because
the :class:`Generator` interface already has ``mapping()`` and ``synthesis()`` *methods*, the two sub-networks are
registered under those names in ``_modules`` and reached through :attr:`StyleGAN2Generator.mapping_network` and
:attr:`StyleGAN2Generator.synthesis_network`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from morphstudio.errors import CheckpointError, ModelError
from morphstudio.generators.base import (LayerInfo, NoiseMode, StyleGANBase, build_for_loading, check_state,
                                        refuse_oversized, state_shapes)
from morphstudio.generators.config import (MAX_CHANNEL_BASE, MAX_DIM, MAX_ITEMS, ConfigValueError, GeneratorConfig,
                                           dim, layer_count, mapping_param_count, resolution, setting, show, take)
from morphstudio.generators.layers import ACTIVATIONS, SQRT2, FullyConnectedLayer, MappingNetwork

ModConvMode = Literal["auto", "fused", "unfused"]

# Settings that change nothing at inference time (or that this implementation always does the same way).
_IGNORED_KWARGS = frozenset(
    {"fused_modconv_default", "fp16_channels_last", "channels_last", "class_name", "use_fp16", "force_fp32"}
)


# --- configuration ----------------------------------------------------------------------------------------------

#: Stored mapping-network keys -> config fields (``num_ws``, ``z_dim``, ``c_dim``, ``w_dim`` repeat top-level
#: settings and are ignored).
_MAPPING_KEYS = {"num_layers": "mapping_layers", "embed_features": "embed_features",
                 "layer_features": "layer_features", "activation": "mapping_activation",
                 "lr_multiplier": "mapping_lr_mul", "w_avg_beta": "w_avg_beta"}
_SYNTHESIS_KEYS = {k: k for k in ("channel_base", "channel_max", "num_fp16_res", "conv_clamp", "architecture",
                                  "resample_filter", "channels")}
#: Synthesis keys that must keep their official value, since it is the only one this backend implements.
_FIXED_KWARGS = {"use_noise": True, "activation": "lrelu", "kernel_size": 3}


@dataclass(frozen=True)
class StyleGAN2Config(GeneratorConfig):
    """Every setting that shapes a StyleGAN2 generator, with the official meanings and sane ranges.

    Attributes:
        z_dim, w_dim, c_dim: Latent, intermediate latent and label sizes.
        img_resolution: Output size (a power of two, 4 .. 4096).
        img_channels: Output colour channels.
        mapping_layers: Fully connected layers in the mapping network.
        embed_features: Width of the label embedding (``w_dim`` when conditional, 0 otherwise: derived if None).
        layer_features: Width of the hidden mapping layers (``w_dim`` if None).
        mapping_lr_mul: Learning-rate multiplier of the mapping layers (0.01); it scales weights and biases.
        mapping_activation: Activation of the mapping layers.
        w_avg_beta: Decay of the running ``w_avg`` during training (kept for the config, unused at inference).
        channel_base, channel_max: Feature widths are ``min(channel_base // res, channel_max)``.
        channels: Explicit ``((res, width), ...)`` overriding the formula (morphstudio extension, used for
            rosinality files whose widths fit no ``channel_base``).
        num_fp16_res: How many of the highest resolutions run in half precision on CUDA.
        conv_clamp: Clamp every layer's output to ±this (``None``: no clamp).
        architecture: Only ``"skip"`` (the official default for generators) is implemented.
        resample_filter: 1-D taps of the up-sampling FIR filter.
    """

    label: ClassVar[str] = "StyleGAN2"
    SIZE_KEYS: ClassVar[tuple[str, ...]] = ("img_resolution", "w_dim", "channel_base", "channel_max")

    z_dim: int = dim(512)
    w_dim: int = dim(512)
    c_dim: int = dim(0, minimum=0)
    img_resolution: int = resolution(1024)
    img_channels: int = dim(3)
    mapping_layers: int = layer_count(8)
    embed_features: int | None = dim(None, minimum=0)
    layer_features: int | None = dim(None)
    mapping_lr_mul: float = setting(0.01, positive=True)
    mapping_activation: str = setting("lrelu", choices=ACTIVATIONS)
    w_avg_beta: float | None = 0.995
    channel_base: int = setting(32768, minimum=1, maximum=MAX_CHANNEL_BASE)
    channel_max: int = dim(512)
    channels: tuple[tuple[int, int], ...] | None = setting(None, minimum=1, maximum=MAX_DIM)
    num_fp16_res: int = layer_count(0, minimum=0)
    conv_clamp: float | None = setting(None, positive=True)
    architecture: str = setting("skip", choices=("skip",))
    resample_filter: tuple[float, ...] = (1, 3, 3, 1)

    def _derive(self) -> None:
        embed = self.embed_features
        object.__setattr__(self, "embed_features", (self.w_dim if embed is None else embed) if self.c_dim > 0 else 0)
        if self.layer_features is None:
            object.__setattr__(self, "layer_features", self.w_dim)
        object.__setattr__(self, "resample_filter", tuple(float(t) for t in self.resample_filter))

    def _check(self) -> None:
        if self.channels is not None:
            given = dict(self.channels)
            needed = self.block_resolutions
            if any(r not in given for r in needed):
                raise ConfigValueError("channels", self.channels,
                                       f"must give a width for every resolution {needed}")
            object.__setattr__(self, "channels", tuple((r, given[r]) for r in needed))
        if not self.resample_filter:
            raise ConfigValueError("resample_filter", self.resample_filter, "must have at least one tap")

    @property
    def block_resolutions(self) -> list[int]:
        """``[4, 8, ..., img_resolution]``."""
        return [2**i for i in range(2, int(math.log2(self.img_resolution)) + 1)]

    @property
    def num_ws(self) -> int:
        """Two latents per block except the 4×4 one, plus one for the last ToRGB: ``2·log2(R) − 2``."""
        return 2 * int(math.log2(self.img_resolution)) - 2

    def channels_at(self, res: int) -> int:
        """Feature width of the block at ``res``."""
        if self.channels is not None:
            return dict(self.channels)[res]
        return min(self.channel_base // res, self.channel_max)

    def param_count(self) -> int:
        """Mapping network, then per block: const or conv0, conv1, ToRGB (each: style affine, weight, bias)."""
        w = self.w_dim
        n = mapping_param_count(self.z_dim, self.c_dim, w, self.mapping_layers, int(self.embed_features or 0),
                                int(self.layer_features or w))

        def modconv(cin: int, cout: int, k: int) -> int:
            return (w * cin + cin) + cout * cin * k * k + cout

        prev = 0
        for res in self.block_resolutions:
            ch = self.channels_at(res)
            n += ch * 4 * 4 if res == 4 else modconv(prev, ch, 3) + 1  # const, or conv0 + its noise strength
            n += modconv(ch, ch, 3) + 1 + modconv(ch, self.img_channels, 1)  # conv1 (+ noise strength), ToRGB
            prev = ch
        return n

    def to_kwargs(self) -> dict[str, Any]:
        """Explicit StyleGAN2-ADA-style nested kwargs (JSON-serialisable) that rebuild exactly this config."""
        mapping: dict[str, Any] = {
            "num_layers": self.mapping_layers,
            "layer_features": self.layer_features,
            "lr_multiplier": self.mapping_lr_mul,
            "activation": self.mapping_activation,
            "w_avg_beta": self.w_avg_beta,
        }
        if self.c_dim > 0:
            mapping["embed_features"] = self.embed_features
        synthesis: dict[str, Any] = {
            "channel_base": self.channel_base,
            "channel_max": self.channel_max,
            "num_fp16_res": self.num_fp16_res,
            "conv_clamp": self.conv_clamp,
            "architecture": self.architecture,
            "resample_filter": list(self.resample_filter),
        }
        if self.channels is not None:
            synthesis["channels"] = {str(r): c for r, c in self.channels}
        return {
            "z_dim": self.z_dim,
            "w_dim": self.w_dim,
            "c_dim": self.c_dim,
            "img_resolution": self.img_resolution,
            "img_channels": self.img_channels,
            "mapping_kwargs": mapping,
            "synthesis_kwargs": synthesis,
        }

    def to_init_kwargs(self) -> dict[str, Any]:
        """Same as :meth:`to_kwargs` (the name older callers use)."""
        return self.to_kwargs()

    @classmethod
    def from_init_kwargs(cls, init_kwargs: Mapping[str, Any], source: str | Path | None = None) -> StyleGAN2Config:
        """Same as :meth:`from_kwargs` (the name older callers use)."""
        return cls.from_kwargs(init_kwargs, source)

    @classmethod
    def _unpack(cls, kwargs: dict[str, Any], where: str, source: str | Path | None) -> dict[str, tuple[str, Any]]:
        """Both official stored layouts -> config fields.

        * StyleGAN2-ADA-PyTorch: nested ``mapping_kwargs`` / ``synthesis_kwargs``; defaults ``num_fp16_res=0``,
          ``conv_clamp=None``.
        * StyleGAN3 repository, ``--cfg=stylegan2``: flat synthesis kwargs (``channel_base``, ``channel_max``,
          ``fused_modconv_default``...) beside ``mapping_kwargs``; defaults ``num_fp16_res=4``, ``conv_clamp=256``.

        Raises:
            CheckpointError: An unknown key (named, with its value) or a malformed section.
            ModelError: A setting whose other values this backend does not implement (``architecture='resnet'``).
        """
        kw = dict(kwargs)
        nested = "synthesis_kwargs" in kw
        mapping = kw.pop("mapping_kwargs", None) or {}
        synthesis = (kw.pop("synthesis_kwargs") or {}) if nested else {}
        for name, section in (("mapping_kwargs", mapping), ("synthesis_kwargs", synthesis)):
            if not isinstance(section, Mapping):
                raise CheckpointError(source, f"{where}.{name} is {show(section)}, not a mapping of settings")
        top_names = {k: k for k in ("z_dim", "w_dim", "c_dim", "img_resolution", "img_channels")}
        top = {k: kw.pop(k) for k in list(kw) if k in top_names}
        # Whatever is left at the top level is a flat synthesis/block/layer kwarg (StyleGAN3 repo layout).
        synthesis = {**synthesis, **kw}
        s_where = f"{where}.synthesis_kwargs" if nested else where
        out = take(top, top_names, where, source, cls.label)
        out.update(take(mapping, _MAPPING_KEYS, f"{where}.mapping_kwargs", source, cls.label,
                        ignored={"num_ws", "z_dim", "c_dim", "w_dim"}))
        fixed = {k: synthesis.pop(k) for k in list(synthesis) if k in _FIXED_KWARGS}
        out.update(take(synthesis, _SYNTHESIS_KEYS, s_where, source, cls.label, ignored=_IGNORED_KWARGS))
        if "img_resolution" not in out:
            raise CheckpointError(source, f"{where}.img_resolution is missing: a StyleGAN2 generator needs it")
        for key, value in fixed.items():
            if value != _FIXED_KWARGS[key] or isinstance(value, bool) != isinstance(_FIXED_KWARGS[key], bool):
                raise ModelError(f"{source}: StyleGAN2 with {s_where}.{key}={show(value)} is not supported "
                                 f"(only {_FIXED_KWARGS[key]!r} is implemented)")
        architecture = out.get("architecture", ("", "skip"))[1]
        if architecture != "skip":
            raise ModelError(
                f"{source}: StyleGAN2 architecture {show(architecture)} is not supported; morphstudio implements the "
                "'skip' generator (the official default; 'orig' and 'resnet' generators are not implemented)")
        if not nested:  # the StyleGAN3 repository's defaults differ from StyleGAN2-ADA's
            out.setdefault("num_fp16_res", (f"{where}.num_fp16_res", 4))
            out.setdefault("conv_clamp", (f"{where}.conv_clamp", 256))
        if out.get("channels", ("", None))[1] is not None:
            key, raw = out["channels"]
            if not isinstance(raw, Mapping) or len(raw) > MAX_ITEMS:
                raise CheckpointError(source, f"{key}={show(raw)}: must be a {{resolution: width}} map")
            try:
                out["channels"] = (key, sorted((int(r), c) for r, c in raw.items()))
            except (TypeError, ValueError):
                raise CheckpointError(source, f"{key}={show(raw)}: resolutions must be whole numbers") from None
        return out


# --- numerical building blocks ----------------------------------------------------------------------------------


def _setup_filter(taps: tuple[float, ...]) -> torch.Tensor:
    """Separable 1-D taps -> normalised 2-D FIR filter (outer product, sum 1), as stored in official buffers."""
    f = torch.as_tensor(taps, dtype=torch.float32)
    f = f.ger(f)
    return f / f.sum()


def _bias_act(x: torch.Tensor, b: torch.Tensor, act: str, gain: float, clamp: float | None) -> torch.Tensor:
    """``clamp(act(x + b) * gain)`` with ``b`` broadcast along dim 1 (the official ``bias_act`` order).

    In-place when autograd is off (inference: the renderer's hot path); out of place otherwise so projection and
    other gradient users can backpropagate.
    """
    inplace = not torch.is_grad_enabled()
    shape = [1, -1] + [1] * (x.ndim - 2)
    b = b.to(x.dtype).reshape(shape)
    if inplace:
        x = x.add_(b)
        if act == "lrelu":
            x = F.leaky_relu_(x, 0.2)
        if gain != 1:
            x = x.mul_(gain)
        if clamp is not None:
            x = x.clamp_(-clamp, clamp)
        return x
    x = x + b
    if act == "lrelu":
        x = F.leaky_relu(x, 0.2)
    if gain != 1:
        x = x * gain
    if clamp is not None:
        x = x.clamp(-clamp, clamp)
    return x


def _fir(x: torch.Tensor, f: torch.Tensor, gain: float, padding: int) -> torch.Tensor:
    """Filter every channel with the 2-D FIR ``f`` (true convolution, like ``upfirdn2d`` with flip_filter=False)."""
    c = x.shape[1]
    # A depthwise conv: on CPU ~30x faster than one single-channel kernel over an [N*C, 1, H, W] view.
    k = (f.flip([0, 1]) * gain).to(x.dtype)[None, None].expand(c, 1, -1, -1)
    return F.conv2d(x, k, padding=padding, groups=c)


def upsample2d(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """2× upsampling with FIR ``f`` and gain 4: zero insertion, pad (2, 1), filter — done as one transposed conv.

    ``conv_transpose2d`` with stride 2, padding 1 and kernel ``f`` equals ``upfirdn2d(x, f, up=2, padding=[2,1,2,1],
    gain=4)``: the transposed conv scatters each input sample over the (unflipped) 4×4 kernel.
    """
    c = x.shape[1]
    k = (f * 4).to(x.dtype)[None, None].expand(c, 1, -1, -1)
    return F.conv_transpose2d(x, k, stride=2, padding=1, groups=c)


def modulated_conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    styles: torch.Tensor,
    *,
    demodulate: bool,
    up: bool,
    resample_filter: torch.Tensor | None,
    fused: bool,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """StyleGAN2's modulated convolution, without the noise/bias/activation that follow it.

    Args:
        x: ``[N, I, H, W]`` input (its dtype is the compute dtype).
        weight: ``[O, I, k, k]`` raw weight (fp32 parameter).
        styles: ``[N, I]`` per-sample input scales (fp32).
        demodulate: Normalise each output channel's effective weight to unit norm.
        up: Upsample 2× (transposed conv, then FIR ``resample_filter`` with gain 4).
        resample_filter: ``[4, 4]`` FIR filter, needed when ``up``.
        fused: One grouped convolution with per-sample weights (``True``), or one shared-weight convolution with
            the styles applied to the activations before and the demodulation after (``False``; same maths,
            faster for large batches).

    Returns:
        ``(y, dcoefs)``: ``y [N, O, H', W']``; when ``fused`` is False and ``demodulate`` is True the
        demodulation is *not yet applied* and ``dcoefs [N, O]`` is returned so the caller can fuse it with the
        noise addition. Otherwise ``dcoefs`` is ``None``.
    """
    n, in_ch = x.shape[0], x.shape[1]
    out_ch, _, kh, kw = weight.shape
    pad = kh // 2
    if x.dtype == torch.float16 and demodulate:
        # Pre-normalise as the official code does so fp16 intermediates cannot overflow; demodulation undoes it.
        weight = weight * (1 / math.sqrt(in_ch * kh * kw) / weight.norm(float("inf"), dim=[1, 2, 3], keepdim=True))
        styles = styles / styles.norm(float("inf"), dim=1, keepdim=True)
    if fused:
        w = weight.unsqueeze(0) * styles.reshape(n, 1, in_ch, 1, 1)  # [N, O, I, k, k]
        if demodulate:
            w = w * (w.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt().reshape(n, out_ch, 1, 1, 1)
        xg = x.reshape(1, n * in_ch, *x.shape[2:])
        if up:
            wt = w.transpose(1, 2).reshape(n * in_ch, out_ch, kh, kw).to(x.dtype)
            y = F.conv_transpose2d(xg, wt, stride=2, groups=n)
            y = y.reshape(n, out_ch, *y.shape[2:])
            y = _fir(y, resample_filter, gain=4, padding=1)
        else:
            y = F.conv2d(xg, w.reshape(n * out_ch, in_ch, kh, kw).to(x.dtype), padding=pad, groups=n)
            y = y.reshape(n, out_ch, *y.shape[2:])
        return y, None
    dcoefs = None
    if demodulate:
        # sum_{i,k} (W[o,i,k] s[n,i])^2 = sum_i s[n,i]^2 sum_k W[o,i,k]^2: one small matmul instead of building
        # the [N, O, I, k, k] per-sample weights the fused path needs.
        dcoefs = (styles.square() @ weight.square().sum(dim=[2, 3]).t() + 1e-8).rsqrt()  # [N, O]
    xs = x * styles.to(x.dtype).reshape(n, in_ch, 1, 1)
    if up:
        y = F.conv_transpose2d(xs, weight.transpose(0, 1).to(x.dtype), stride=2)
        y = _fir(y, resample_filter, gain=4, padding=1)
    else:
        y = F.conv2d(xs, weight.to(x.dtype), padding=pad)
    return y, dcoefs


# --- layers -----------------------------------------------------------------------------------------------------


class SynthesisLayer(nn.Module):
    """Modulated 3×3 conv (optionally 2× up) + noise + bias + lrelu·√2 (+ clamp)."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, up: bool,
                 resample_filter: torch.Tensor) -> None:
        super().__init__()
        self.in_channels, self.resolution, self.up = in_channels, resolution, up
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, 3, 3]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))
        self.noise_strength = nn.Parameter(torch.zeros([]))
        self.register_buffer("resample_filter", resample_filter.clone())
        self.register_buffer("noise_const", torch.randn([resolution, resolution]))

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise: torch.Tensor | None, fused: bool,
                clamp: float | None) -> torch.Tensor:
        """``noise`` is the raw (unscaled) noise ``[N or 1, 1, r, r]`` or ``None``; ``clamp`` the effective clamp."""
        styles = self.affine(w)
        y, dcoefs = modulated_conv2d(x, self.weight, styles, demodulate=True, up=self.up,
                                     resample_filter=self.resample_filter, fused=fused)
        scaled_noise = None if noise is None else (noise * self.noise_strength).to(y.dtype)
        inplace = not torch.is_grad_enabled()
        if inplace and dcoefs is not None:
            return self._fused_epilogue(y, dcoefs, scaled_noise, clamp)
        if dcoefs is not None:
            d = dcoefs.to(y.dtype).reshape(y.shape[0], -1, 1, 1)
            if scaled_noise is not None:
                y = torch.addcmul(scaled_noise, y, d)
            else:
                y = y.mul_(d) if inplace else y * d
        elif scaled_noise is not None:
            y = y.add_(scaled_noise) if inplace else y + scaled_noise
        return _bias_act(y, self.bias, "lrelu", SQRT2, clamp)

    def _fused_epilogue(self, y: torch.Tensor, dcoefs: torch.Tensor, scaled_noise: torch.Tensor | None,
                        clamp: float | None) -> torch.Tensor:
        """``clamp(lrelu(y·d + noise + bias)·√2)`` in place (inference only; ``y`` is overwritten).

        ``lrelu(v)·g = lrelu(v·g)`` for ``g > 0``, so the gain moves into the demodulation coefficients, the noise
        and the bias, which are small, and the activations are passed over three times instead of four, with no
        new full-size tensor. Rounding differs from the four-pass order by an ulp.
        """
        d = (dcoefs * SQRT2).to(y.dtype).reshape(y.shape[0], -1, 1, 1)
        if scaled_noise is not None:
            y = torch.addcmul(scaled_noise * SQRT2, y, d, out=y)  # elementwise: writing over an input is allowed
        else:
            y = y.mul_(d)
        y = F.leaky_relu_(y.add_(self.bias.to(y.dtype).reshape(1, -1, 1, 1) * SQRT2), 0.2)
        return y if clamp is None else y.clamp_(-clamp, clamp)


class ToRGBLayer(nn.Module):
    """Modulated 1×1 conv without demodulation, styles scaled by ``1/sqrt(C)``, + bias (+ clamp)."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int) -> None:
        super().__init__()
        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn([out_channels, in_channels, 1, 1]))
        self.bias = nn.Parameter(torch.zeros([out_channels]))
        self.weight_gain = 1 / math.sqrt(in_channels)

    def forward(self, x: torch.Tensor, w: torch.Tensor, fused: bool, clamp: float | None) -> torch.Tensor:
        styles = self.affine(w) * self.weight_gain
        if not fused and not torch.is_grad_enabled() and x.is_contiguous(memory_format=torch.channels_last):
            return self._batched_matmul(x, styles, clamp)
        y, _ = modulated_conv2d(x, self.weight, styles, demodulate=False, up=False, resample_filter=None,
                                fused=fused)
        return _bias_act(y, self.bias, "linear", 1.0, clamp)

    def _batched_matmul(self, x: torch.Tensor, styles: torch.Tensor, clamp: float | None) -> torch.Tensor:
        """The 1×1 modulated conv as one batched matmul with per-sample weights (inference, channels-last input).

        The styles go into the tiny ``[N, 3, C]`` weights instead of a scaled copy of the full-resolution input
        (a whole pass over the largest activations), and the bias is added by the same call.
        """
        n, c, h, w = x.shape
        wn = self.weight[:, :, 0, 0].to(x.dtype).unsqueeze(0) * styles.to(x.dtype).unsqueeze(1)  # [N, O, C]
        pixels = x.permute(0, 2, 3, 1).reshape(n, h * w, c)  # a view: channels-last memory is [N, H, W, C]
        y = torch.baddbmm(self.bias.to(x.dtype).reshape(1, 1, -1), pixels, wn.transpose(1, 2))  # [N, HW, O]
        y = y.reshape(n, h, w, -1).permute(0, 3, 1, 2)
        return y if clamp is None else y.clamp_(-clamp, clamp)


class SynthesisBlock(nn.Module):
    """One resolution: (const | conv0 with 2× up), conv1, ToRGB; buffer ``resample_filter`` for the skip."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, img_channels: int,
                 resample_filter: torch.Tensor) -> None:
        super().__init__()
        self.in_channels, self.out_channels, self.resolution = in_channels, out_channels, resolution
        self.register_buffer("resample_filter", resample_filter.clone())
        if in_channels == 0:
            self.const = nn.Parameter(torch.randn([out_channels, resolution, resolution]))
        else:
            self.conv0 = SynthesisLayer(in_channels, out_channels, w_dim, resolution, up=True,
                                        resample_filter=resample_filter)
        self.conv1 = SynthesisLayer(out_channels, out_channels, w_dim, resolution, up=False,
                                    resample_filter=resample_filter)
        self.torgb = ToRGBLayer(out_channels, img_channels, w_dim)

    def conv_layers(self) -> list[tuple[str, SynthesisLayer]]:
        """``[("conv0", layer)?, ("conv1", layer)]`` in order."""
        names = ["conv1"] if self.in_channels == 0 else ["conv0", "conv1"]
        return [(n, getattr(self, n)) for n in names]


class SynthesisNetwork(nn.Module):
    """Blocks ``b4 … b{R}`` of the skip generator."""

    def __init__(self, cfg: StyleGAN2Config) -> None:
        super().__init__()
        self.block_resolutions = cfg.block_resolutions
        f = _setup_filter(cfg.resample_filter)
        for res in self.block_resolutions:
            in_ch = cfg.channels_at(res // 2) if res > 4 else 0
            block = SynthesisBlock(in_ch, cfg.channels_at(res), cfg.w_dim, res, cfg.img_channels, f)
            self.add_module(f"b{res}", block)

    def blocks(self) -> list[SynthesisBlock]:
        return [getattr(self, f"b{res}") for res in self.block_resolutions]


# --- the generator ----------------------------------------------------------------------------------------------


class StyleGAN2Generator(StyleGANBase):
    """StyleGAN2 (skip architecture) behind the common :class:`Generator` interface.

    Args:
        config: The checked settings (see :meth:`StyleGAN2Config.from_kwargs`).

    Attributes:
        modconv: ``"auto"`` (default), ``"fused"`` or ``"unfused"``: how modulated convolutions run. ``fused``
            is one grouped convolution with per-sample weights; ``unfused`` is one shared-weight convolution with
            the styles applied to the activations before it and the demodulation after (same maths, differences
            ~1e-6; far faster for batches because the convolution becomes one large matrix product). ``auto``
            picks ``fused`` only for a single image on a GPU.
    """

    family = "stylegan2"
    config_class = StyleGAN2Config

    def __init__(self, config: StyleGAN2Config) -> None:
        super().__init__()
        self.config = config
        self.z_dim, self.w_dim, self.c_dim = config.z_dim, config.w_dim, config.c_dim
        self.num_ws = config.num_ws
        self.resolution = config.img_resolution
        self.img_channels = config.img_channels
        self.init_kwargs = config.to_kwargs()
        self.modconv: ModConvMode = "auto"
        self._half_res = 0  # number of highest resolutions computed in self._precision on CUDA
        mapping = MappingNetwork(config.z_dim, config.c_dim, config.w_dim, config.num_ws, config.mapping_layers,
                                 lr_multiplier=config.mapping_lr_mul, activation=config.mapping_activation,
                                 embed_features=config.embed_features, layer_features=config.layer_features)
        self._set_networks(mapping, SynthesisNetwork(config))

    # --- construction from checkpoints ----------------------------------------------------------------------

    @classmethod
    def _from_config_state(cls, config: StyleGAN2Config, state: Mapping[str, torch.Tensor],
                           source: str | Path | None = None, *, adopt: bool = False) -> StyleGAN2Generator:
        """Build for ``config`` and load official ``G_ema`` tensors, checking every key and shape first.

        ``*.resample_filter`` buffers may be left out of ``state`` (they are derived from the config, not
        learned); everything else must be present.
        """
        gen = build_for_loading(lambda: cls(config))
        gen.load_official_state(state, source, adopt=adopt)
        return gen.eval()

    @classmethod
    def expected_shapes(cls, init_kwargs: Mapping[str, Any], source: str | Path | None = None,
                        state: Mapping[str, Any] | None = None) -> dict[str, tuple]:
        """``{official name: shape}`` of a generator with these kwargs, without writing its weights.

        Args:
            init_kwargs: The constructor's arguments.
            source: The file, for messages.
            state: The file's tensors: when given, a config far larger than they are is refused before anything is
                built (as :meth:`from_state` does), and the network is then built in CPU memory, which is fast;
                without them it is built on the meta device, which allocates nothing but is slow the first time.

        Raises:
            CheckpointError: The kwargs are invalid or out of range, or far larger than ``state`` (checked before
                anything is built).
        """
        config = StyleGAN2Config.from_kwargs(init_kwargs, source)
        if state is None:
            # Nothing bounds the size here: build on the meta device, which allocates nothing (its first arithmetic
            # imports torch._dynamo, ~2 s, so file readers pass their tensors instead).
            with torch.device("meta"):
                return state_shapes(cls(config))
        refuse_oversized(config, state, source)
        # Bounded by the file: built as for loading (uninitialised CPU memory, mostly never written).
        return state_shapes(build_for_loading(lambda: cls(config)))

    def _with_derived_buffers(self, state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """``state`` plus the config's FIR filter for every ``resample_filter`` buffer it leaves out."""
        full = dict(state)
        for key in state_shapes(self):
            if key.endswith("resample_filter") and key not in full:
                full[key] = _setup_filter(self.config.resample_filter)
        return full

    def load_official_state(self, state: Mapping[str, torch.Tensor], source: str | Path | None = None, *,
                            adopt: bool = False) -> None:
        """Copy ``state`` into this generator after checking names and shapes (see :func:`check_state`).

        With ``adopt`` a CPU tensor of the right dtype and layout becomes the parameter's or buffer's data
        instead of being copied (the checkpoint reader's fresh tensors: a 256 px StyleGAN2's copy was a quarter of
        its load); the parameter objects stay the same, so nothing holding them is left pointing at old memory.
        """
        own = self.state_dict(keep_vars=True)
        full = self._with_derived_buffers(state)  # derived buffers may be absent: use the config's filter
        check_state(state_shapes(self), full, source, what="StyleGAN2 generator")
        with torch.no_grad():
            for key, value in own.items():
                src = torch.as_tensor(full[key])
                if adopt and src.dtype == value.dtype and src.device == value.device and src.is_contiguous():
                    value.data = src
                else:
                    value.copy_(src.to(value.dtype))

    # --- the interface ----------------------------------------------------------------------------------------

    def _apply_precision(self, dtype: torch.dtype) -> None:
        """The compute precision of the highest-resolution blocks (CUDA only; CPU always runs fp32).

        As in the official code, parameters stay fp32; the ``num_fp16_res`` highest-resolution blocks compute in
        ``dtype`` and the image is accumulated in fp32. A checkpoint trained without mixed precision
        (``num_fp16_res = 0``, e.g. converted TensorFlow models) uses the official training default of 4 blocks;
        in fp16 those blocks then clamp activations to ±256 as mixed-precision checkpoints do, so fp16 cannot
        overflow (bf16 has fp32's range and needs no clamp).

        Args:
            dtype: ``torch.float32``, ``torch.float16`` or ``torch.bfloat16`` (checked by ``set_precision``).
        """
        n = self.config.num_fp16_res
        self._half_res = n if n > 0 else 4

    def _block_dtype(self, res: int, device: torch.device) -> torch.dtype:
        if self._precision == torch.float32 or device.type != "cuda":
            return torch.float32
        fp16_resolution = max(2 ** (int(math.log2(self.resolution)) + 1 - self._half_res), 8)
        return self._precision if res >= fp16_resolution else torch.float32

    def _synthesis(self, ws: torch.Tensor, noise_mode: NoiseMode,
                   noise: dict[str, torch.Tensor] | None) -> torch.Tensor:
        ws = ws.float()
        n = ws.shape[0]
        noise = self._check_noise(noise, n)
        # auto: one shared-weight convolution for batches (and always on CPU, where oneDNN's grouped convolution is
        # the slower path even for one image); the grouped per-sample-weight convolution for one image on a GPU.
        fused = self.modconv == "fused" or (self.modconv == "auto" and n == 1 and ws.device.type != "cpu")
        x = img = None
        w_idx = 0
        for block in self.synthesis_network.blocks():
            dtype = self._block_dtype(block.resolution, ws.device)
            clamp = self.config.conv_clamp
            if clamp is None and dtype == torch.float16 and self.config.num_fp16_res == 0:
                clamp = 256.0  # see set_precision: fp16 on a model trained without it
            # channels_last: on CPU (oneDNN) it makes the convolutions ~2x and the transposed ones ~4x faster for
            # batches; on CUDA it is the tensor-core layout for half precision.
            fmt = torch.channels_last if ws.device.type == "cpu" or dtype != torch.float32 \
                else torch.contiguous_format
            if block.in_channels == 0:
                x = block.const.to(dtype).unsqueeze(0).expand(n, -1, -1, -1).contiguous(memory_format=fmt)
            else:
                x = x.to(dtype).contiguous(memory_format=fmt)
            for name, layer in block.conv_layers():
                layer_noise = self._layer_noise(f"b{block.resolution}.{name}", layer, noise_mode, noise, n, ws.device)
                x = layer(x, ws[:, w_idx], layer_noise, fused, clamp)
                w_idx += 1
            if img is not None:
                img = upsample2d(img, block.resample_filter)
            y = block.torgb(x, ws[:, w_idx], fused, clamp).float()
            img = y if img is None else img.add_(y) if not torch.is_grad_enabled() else img + y
        return img.contiguous()

    def _layer_noise(self, name: str, layer: SynthesisLayer, noise_mode: NoiseMode,
                     noise: dict[str, torch.Tensor] | None, n: int, device: torch.device) -> torch.Tensor | None:
        """Raw per-layer noise ``[N or 1, 1, r, r]`` (scaled by ``noise_strength`` inside the layer)."""
        if noise is not None and name in noise:
            return noise[name]
        r = layer.resolution
        if noise_mode == "const":
            return layer.noise_const.reshape(1, 1, r, r)
        if noise_mode == "random":
            return torch.randn([n, 1, r, r], device=device)
        return None

    def _check_noise(self, noise: dict[str, torch.Tensor] | None, n: int) -> dict[str, torch.Tensor] | None:
        """Validate a per-layer noise override; return it as ``{name: [N or 1, 1, r, r] float32}``."""
        if noise is None:
            return None
        shapes = self.noise_shapes()
        out: dict[str, torch.Tensor] = {}
        for name, value in noise.items():
            if name not in shapes:
                raise ModelError(f"noise override for unknown layer {name!r}; layers with noise: "
                                 + ", ".join(shapes))
            h, w = shapes[name]
            t = torch.as_tensor(value, device=self.device).float()
            if t.shape == (h, w):
                t = t.reshape(1, 1, h, w)
            if t.ndim != 4 or t.shape[1:] != (1, h, w) or t.shape[0] not in (1, n):
                raise ModelError(f"noise override for {name!r} must have shape [{n}, 1, {h}, {w}], [1, 1, {h}, {w}] "
                                 f"or [{h}, {w}], got {list(t.shape)}")
            out[name] = t
        return out

    def layers(self) -> list[LayerInfo]:
        """conv layers and ToRGBs in network order; a ToRGB shares the w index of the next block's conv0."""
        infos: list[LayerInfo] = []
        w_idx = 0
        for block in self.synthesis_network.blocks():
            for name, layer in block.conv_layers():
                infos.append(LayerInfo(w_idx, block.resolution, f"b{block.resolution}.{name}", layer.in_channels))
                w_idx += 1
            infos.append(LayerInfo(w_idx, block.resolution, f"b{block.resolution}.torgb", block.out_channels))
        return infos

    def noise_shapes(self) -> dict[str, tuple[int, int]]:
        return {f"b{block.resolution}.{name}": (block.resolution, block.resolution)
                for block in self.synthesis_network.blocks() for name, _ in block.conv_layers()}


__all__ = ["StyleGAN2Config", "StyleGAN2Generator", "check_state", "modulated_conv2d", "upsample2d"]
