"""StyleGAN3 backend (config-T and config-R, "Alias-Free Generative Adversarial Networks").

Written from the published formulas; parameter and buffer names equal the official ``G_ema`` ones
(``mapping.fc0.weight``, ``synthesis.input.transform``, ``synthesis.L0_36_512.weight`` ...) so a state dict read
from an official checkpoint loads as is and ``state_dict()`` round-trips.

The network, in short:

* **Mapping**: z normalised to unit RMS, optional label embedding (also normalised) concatenated, ``num_layers``
  fully connected layers with leaky ReLU and learning-rate multiplier 0.01, broadcast to ``num_ws``.
* **Input**: Fourier features. Each of ``C`` channels is ``sin(2 pi (f . p + phase))`` on a grid of ``size`` pixels
  at the first layer's sampling rate. ``w[0]`` gives a rotation and translation of that grid; the ``transform``
  buffer adds a user transform (e.g. to pan or rotate the whole image). A final ``C x C`` linear map mixes channels.
* **Layers** ``L{i}_{size}_{channels}``: modulated convolution (weights and styles normalised by their RMS,
  demodulated, input scaled by ``rsqrt(magnitude_ema)``), then the *filtered leaky ReLU*: add bias, upsample by
  ``up_factor`` with ``up_filter``, ``lrelu(0.2) * sqrt(2)``, clamp to +-``conv_clamp``, low-pass with
  ``down_filter`` and keep every ``down_factor``-th pixel. Config-R uses 1x1 convolutions and radially symmetric
  (2-D) down-sampling filters. The last layer is ToRGB: no demodulation, slope 1, gain 1.
* **Output** is multiplied by ``output_scale`` (0.25).

Every layer hyper-parameter (sizes, sampling rates, cutoffs, up/down factors, paddings) is derived from the
constructor kwargs exactly as the official constructor derives them. A model built from kwargs designs its filters
the same way (a complete random model; they equal the filters in official checkpoints); a model loaded from a
checkpoint uses the stored filter buffers. The filtered leaky ReLU is plain torch (depthwise transposed convolution
for the zero-insertion upsampling, strided depthwise convolution for the decimation): the official reference path's
arithmetic, on any device. The modulated convolution scales activations rather than weights so a whole batch
shares one convolution; images match the official ones to ~1e-6 in fp32.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from morphstudio.errors import CheckpointError, ModelError
from morphstudio.generators.base import (LayerInfo, NoiseMode, StyleGANBase, build_for_loading, check_state,
                                        state_shapes)
from morphstudio.generators.config import (MAX_CHANNEL_BASE, MAX_RESOLUTION, ConfigValueError, GeneratorConfig, dim,
                                           layer_count, mapping_param_count, resolution, setting, show)
from morphstudio.generators.layers import SQRT2, FullyConnectedLayer, MappingNetwork

#: Largest convolution kernel, FIR filter length factor and nonlinearity upsampling (the official values are 1-6).
MAX_KERNEL = 16

# --- configuration ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MappingConfig(GeneratorConfig):
    """Mapping-network settings (``mapping_kwargs`` in the official kwargs).

    Attributes:
        num_layers: Fully connected layers (2 for StyleGAN3).
        lr_multiplier: Learning-rate multiplier; weights are stored divided by it and rescaled at run time.
        w_avg_beta: Training-time decay of the ``w_avg`` tracker (kept for completeness; unused in inference).
        freeze_layers: Training option, kept so official kwargs load unchanged.
        freeze_embed: Training option, kept so official kwargs load unchanged.
    """

    label: ClassVar[str] = "StyleGAN3 mapping"

    num_layers: int = layer_count(2)
    lr_multiplier: float = setting(0.01, positive=True)
    w_avg_beta: float = 0.998
    freeze_layers: int = layer_count(0, minimum=0)
    freeze_embed: bool = False


@dataclass(frozen=True)
class StyleGAN3Config(GeneratorConfig):
    """Constructor kwargs of an official StyleGAN3 ``Generator`` (flat, as stored in its pickle), with sane ranges.

    Defaults are the official ones; config-R differs by ``conv_kernel=1`` and ``use_radial_filters=True`` (and
    usually doubled ``channel_base`` / ``channel_max``). A nested ``synthesis_kwargs`` is merged into the top level.
    """

    label: ClassVar[str] = "StyleGAN3"
    SIZE_KEYS: ClassVar[tuple[str, ...]] = ("img_resolution", "w_dim", "num_layers", "channel_base", "channel_max")

    z_dim: int = dim()
    w_dim: int = dim()
    img_resolution: int = resolution(minimum=4)
    c_dim: int = dim(0, minimum=0)
    img_channels: int = dim(3)
    channel_base: int = setting(32768, minimum=1, maximum=MAX_CHANNEL_BASE)
    channel_max: int = dim(512)
    num_layers: int = layer_count(14)
    num_critical: int = layer_count(2, minimum=0)
    first_cutoff: float = setting(2.0, positive=True)
    first_stopband: float = setting(2**2.1, positive=True)
    last_stopband_rel: float = setting(2**0.3, positive=True)
    margin_size: int = setting(10, minimum=0, maximum=MAX_RESOLUTION)
    output_scale: float = 0.25
    num_fp16_res: int = layer_count(4, minimum=0)
    conv_kernel: int = setting(3, minimum=1, maximum=MAX_KERNEL)
    filter_size: int = setting(6, minimum=1, maximum=MAX_KERNEL)
    lrelu_upsampling: int = setting(2, minimum=1, maximum=MAX_KERNEL)
    use_radial_filters: bool = False
    conv_clamp: float | None = setting(256, positive=True)
    magnitude_ema_beta: float = 0.999
    mapping_kwargs: MappingConfig = field(default_factory=MappingConfig)

    def _check(self) -> None:
        if self.num_layers <= self.num_critical:
            raise ConfigValueError("num_layers", self.num_layers, f"must exceed num_critical ({self.num_critical})")
        try:
            network_layout(self)
        except ValueError as exc:
            raise ConfigValueError("img_resolution", self.img_resolution,
                                   f"no valid layer layout with these settings ({exc})") from None

    @classmethod
    def _unpack(cls, kwargs: dict[str, Any], where: str, source: str | Path | None) -> dict[str, tuple[str, Any]]:
        """The official flat layout; a nested ``synthesis_kwargs`` is read as if its keys were at the top."""
        nested = kwargs.pop("synthesis_kwargs", None) or {}
        if not isinstance(nested, Mapping):
            raise CheckpointError(source, f"{where}.synthesis_kwargs is {show(nested)}, not a mapping of settings")
        out = super()._unpack(kwargs, where, source)
        out.update(super()._unpack(dict(nested), f"{where}.synthesis_kwargs", source))
        return out

    def param_count(self) -> int:
        """Mapping network, Fourier input (channel mix + transform affine), then every layer's affine, weight and
        bias, from the same layout the constructor derives (no module is built)."""
        inp, specs = network_layout(self)
        w = self.w_dim
        n = mapping_param_count(self.z_dim, self.c_dim, w, self.mapping_kwargs.num_layers, w, w)
        n += inp.channels * inp.channels + (w * 4 + 4)
        for s in specs:
            n += (w * s.in_channels + s.in_channels) + s.out_channels * s.in_channels * s.conv_kernel**2
            n += s.out_channels
        return n


@dataclass(frozen=True)
class LayerSpec:
    """Everything one synthesis layer needs, derived from the config as the official constructor does."""

    name: str
    is_torgb: bool
    is_critically_sampled: bool
    use_fp16: bool
    in_channels: int
    out_channels: int
    in_size: int
    out_size: int
    in_sampling_rate: int
    out_sampling_rate: int
    in_cutoff: float
    out_cutoff: float
    in_half_width: float
    out_half_width: float
    tmp_sampling_rate: int
    conv_kernel: int
    up_factor: int
    down_factor: int
    up_taps: int
    down_taps: int
    down_radial: bool
    padding: tuple[int, int, int, int]  # x0, x1, y0, y1 in the upsampled image


@dataclass(frozen=True)
class InputSpec:
    """The Fourier-feature input's size, sampling rate, bandwidth and channel count."""

    channels: int
    size: int
    sampling_rate: float
    bandwidth: float


def network_layout(cfg: StyleGAN3Config) -> tuple[InputSpec, list[LayerSpec]]:
    """Derive the input and per-layer hyper-parameters from the config (the official progression).

    Cutoffs and minimum stopbands grow geometrically from the first layer to the last non-critical one; sampling
    rates are the next power of two above twice the stopband (capped at the image resolution); feature maps carry
    ``margin_size`` extra pixels on each side except the last two layers, which are exactly the image size.
    """
    n, res = cfg.num_layers, cfg.img_resolution
    last_cutoff = res / 2
    last_stopband = last_cutoff * cfg.last_stopband_rel
    exponents = np.minimum(np.arange(n + 1) / (n - cfg.num_critical), 1)
    cutoffs = cfg.first_cutoff * (last_cutoff / cfg.first_cutoff) ** exponents
    stopbands = cfg.first_stopband * (last_stopband / cfg.first_stopband) ** exponents
    rates = np.exp2(np.ceil(np.log2(np.minimum(stopbands * 2, res))))
    half_widths = np.maximum(stopbands, rates / 2) - cutoffs
    sizes = rates + cfg.margin_size * 2
    sizes[-2:] = res
    channels = np.rint(np.minimum((cfg.channel_base / 2) / cutoffs, cfg.channel_max))
    channels[-1] = cfg.img_channels

    inp = InputSpec(channels=int(channels[0]), size=int(sizes[0]), sampling_rate=float(rates[0]),
                    bandwidth=float(cutoffs[0]))
    specs: list[LayerSpec] = []
    for idx in range(n + 1):
        prev = max(idx - 1, 0)
        is_torgb = idx == n
        critical = idx >= n - cfg.num_critical
        in_rate, out_rate = int(rates[prev]), int(rates[idx])
        tmp_rate = max(in_rate, out_rate) * (1 if is_torgb else cfg.lrelu_upsampling)
        up = int(np.rint(tmp_rate / in_rate))
        down = int(np.rint(tmp_rate / out_rate))
        if in_rate * up != tmp_rate or out_rate * down != tmp_rate:
            raise ValueError(f"layer {idx}: sampling rates {in_rate} -> {tmp_rate} -> {out_rate} "
                             "are not integer ratios")
        up_taps = cfg.filter_size * up if up > 1 and not is_torgb else 1
        down_taps = cfg.filter_size * down if down > 1 and not is_torgb else 1
        kernel = 1 if is_torgb else cfg.conv_kernel
        in_size, out_size = int(sizes[prev]), int(sizes[idx])
        # Output size before decimation, minus the input size after upsampling, plus what the two FIR filters eat.
        pad_total = (out_size - 1) * down + 1 - (in_size + kernel - 1) * up + up_taps + down_taps - 2
        # Symmetric sample-location convention (paper, appendix C.3): shift by half an upsampling step.
        pad_lo = (pad_total + up) // 2
        pad_hi = pad_total - pad_lo
        out_ch = int(channels[idx])
        specs.append(LayerSpec(
            name=f"L{idx}_{out_size}_{out_ch}", is_torgb=is_torgb, is_critically_sampled=critical,
            use_fp16=bool(rates[idx] * (2**cfg.num_fp16_res) > res),
            in_channels=int(channels[prev]), out_channels=out_ch, in_size=in_size, out_size=out_size,
            in_sampling_rate=in_rate, out_sampling_rate=out_rate,
            in_cutoff=float(cutoffs[prev]), out_cutoff=float(cutoffs[idx]),
            in_half_width=float(half_widths[prev]), out_half_width=float(half_widths[idx]),
            tmp_sampling_rate=tmp_rate, conv_kernel=kernel, up_factor=up, down_factor=down,
            up_taps=up_taps, down_taps=down_taps, down_radial=bool(cfg.use_radial_filters and not critical),
            padding=(pad_lo, pad_hi, pad_lo, pad_hi),
        ))
    return inp, specs


def design_lowpass_filter(numtaps: int, cutoff: float, width: float, fs: float,
                          radial: bool = False) -> torch.Tensor | None:
    """A Kaiser-windowed low-pass filter: separable 1-D ``[numtaps]`` or radial (jinc) 2-D ``[numtaps, numtaps]``.

    Returns ``None`` for a single tap, which the filtered leaky ReLU treats as the identity (as the official code).
    """
    import scipy.signal
    import scipy.special

    if numtaps <= 1:
        return None
    if not radial:
        taps = scipy.signal.firwin(numtaps=numtaps, cutoff=cutoff, width=width, fs=fs)
        return torch.as_tensor(taps, dtype=torch.float32)
    coords = (np.arange(numtaps) - (numtaps - 1) / 2) / fs
    r = np.hypot(*np.meshgrid(coords, coords))
    # The 2-D ideal low-pass of radius `cutoff` is a jinc; at r = 0 its limit is `cutoff`.
    with np.errstate(divide="ignore", invalid="ignore"):
        jinc = np.where(r > 0, scipy.special.j1(2 * np.pi * cutoff * r) / (np.pi * np.where(r > 0, r, 1)), cutoff)
    beta = scipy.signal.kaiser_beta(scipy.signal.kaiser_atten(numtaps, width / (fs / 2)))
    window = np.kaiser(numtaps, beta)
    taps = jinc * np.outer(window, window)
    return torch.as_tensor(taps / taps.sum(), dtype=torch.float32)


# --- resampling ---------------------------------------------------------------------------------------------------


def _crop_or_pad(x: torch.Tensor, dim: int, start: int, length: int) -> torch.Tensor:
    """``x[start : start + length]`` along ``dim``, reading zeros outside ``x`` (start may be negative)."""
    size = x.shape[dim]
    lo, hi = max(-start, 0), max(start + length - size, 0)
    x = x.narrow(dim, max(start, 0), min(start + length, size) - max(start, 0))
    if lo or hi:
        pad = [0, 0] * (x.ndim - 1 - dim) + [lo, hi]
        x = F.pad(x, pad)
    return x


def _depthwise(f: torch.Tensor, channels: int, shape: tuple[int, int]) -> torch.Tensor:
    """A filter as a depthwise conv weight ``[C, 1, kh, kw]`` (one copy per channel: much faster on the CPU than
    folding channels into the batch)."""
    return f.reshape(1, 1, *shape).expand(channels, 1, *shape).contiguous()


def _upsample_fir(x: torch.Tensor, f: torch.Tensor | None, up: int, padding: tuple[int, int, int, int]) -> torch.Tensor:
    """Insert ``up - 1`` zeros after each pixel, pad/crop by ``padding``, convolve with ``f`` (gain ``up**2``).

    Same result as zero insertion + padding + "valid" convolution, computed with a transposed convolution so the
    inserted zeros cost nothing. ``x`` is ``[N, C, H, W]``; all channels share the filter.
    """
    if f is None and up == 1:  # no filter, no upsampling: just the padding (negative pads crop)
        return F.pad(x, list(padding))
    c, h, w = x.shape[1:]
    px0, px1, py0, py1 = padding
    if f is None:
        f = torch.ones(1, dtype=torch.float32, device=x.device)
    f = f.to(x.dtype)
    if f.ndim == 1:
        k = f.shape[0]
        x = F.conv_transpose2d(x, _depthwise(f * up, c, (1, k)), stride=(1, up), groups=c)
        x = _crop_or_pad(x, 3, k - 1 - px0, w * up + px0 + px1 - k + 1)
        x = F.conv_transpose2d(x, _depthwise(f * up, c, (k, 1)), stride=(up, 1), groups=c)
        x = _crop_or_pad(x, 2, k - 1 - py0, h * up + py0 + py1 - k + 1)
    else:
        kh, kw = f.shape
        x = F.conv_transpose2d(x, _depthwise(f * (up * up), c, (kh, kw)), stride=up, groups=c)
        x = _crop_or_pad(x, 3, kw - 1 - px0, w * up + px0 + px1 - kw + 1)
        x = _crop_or_pad(x, 2, kh - 1 - py0, h * up + py0 + py1 - kh + 1)
    return x


def _downsample_fir(x: torch.Tensor, f: torch.Tensor | None, down: int) -> torch.Tensor:
    """Convolve with ``f`` ("valid", no padding) and keep every ``down``-th pixel, as one strided convolution."""
    if f is None:
        return x[:, :, ::down, ::down] if down > 1 else x
    c = x.shape[1]
    f = f.to(x.dtype).flip(list(range(f.ndim)))  # convolution, not correlation
    if f.ndim == 1:
        k = f.shape[0]
        x = F.conv2d(x, _depthwise(f, c, (1, k)), stride=(1, down), groups=c)
        x = F.conv2d(x, _depthwise(f, c, (k, 1)), stride=(down, 1), groups=c)
    else:
        x = F.conv2d(x, _depthwise(f, c, tuple(f.shape)), stride=down, groups=c)
    return x


def filtered_lrelu(
    x: torch.Tensor,
    fu: torch.Tensor | None,
    fd: torch.Tensor | None,
    b: torch.Tensor,
    up: int,
    down: int,
    padding: tuple[int, int, int, int],
    gain: float,
    slope: float,
    clamp: float | None,
) -> torch.Tensor:
    """Bias, upsample (``fu``), leaky ReLU with gain, clamp, low-pass (``fd``) and decimate: the alias-free
    non-linearity. A ``None`` filter is the identity."""
    x = x + b.to(x.dtype).view(1, -1, 1, 1)
    x = _upsample_fir(x, fu, up, padding)
    if slope != 1:
        x = F.leaky_relu(x, slope)
    if gain != 1:
        x = x * gain
    if clamp is not None:
        x = x.clamp(-clamp, clamp)
    return _downsample_fir(x, fd, down)


# --- modules (names mirror the official ones) -------------------------------------------------------------------


class SynthesisInput(nn.Module):
    """Fourier features, rotated and translated by ``w[0]`` and by the user ``transform`` buffer."""

    def __init__(self, w_dim: int, spec: InputSpec) -> None:
        super().__init__()
        self.channels, self.size = spec.channels, spec.size
        self.sampling_rate, self.bandwidth = spec.sampling_rate, spec.bandwidth
        # Random frequencies inside a disc of radius `bandwidth` (only matters for a freshly built model).
        freqs = torch.randn(self.channels, 2)
        radii = freqs.square().sum(dim=1, keepdim=True).sqrt()
        freqs = freqs / (radii * radii.square().exp().pow(0.25)) * self.bandwidth
        self.weight = nn.Parameter(torch.randn(self.channels, self.channels))
        self.affine = FullyConnectedLayer(w_dim, 4, weight_init=0.0, bias_init=[1.0, 0.0, 0.0, 0.0])
        self.register_buffer("transform", torch.eye(3))  # inverse transform of the output image
        self.register_buffer("freqs", freqs)
        self.register_buffer("phases", torch.rand(self.channels) - 0.5)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        n = w.shape[0]
        t = self.affine(w)  # (cos, sin, tx, ty), up to scale
        t = t / t[:, :2].norm(dim=1, keepdim=True)
        m_r = torch.eye(3, device=w.device).repeat(n, 1, 1)
        m_r[:, 0, 0] = t[:, 0]
        m_r[:, 0, 1] = -t[:, 1]
        m_r[:, 1, 0] = t[:, 1]
        m_r[:, 1, 1] = t[:, 0]
        m_t = torch.eye(3, device=w.device).repeat(n, 1, 1)
        m_t[:, 0, 2] = -t[:, 2]
        m_t[:, 1, 2] = -t[:, 3]
        # Rotate the image, then translate it, then apply the user's transform (all as inverse maps).
        transforms = m_r @ m_t @ self.transform.unsqueeze(0)

        freqs = self.freqs.unsqueeze(0)
        phases = self.phases.unsqueeze(0) + (freqs @ transforms[:, :2, 2:]).squeeze(2)
        freqs = freqs @ transforms[:, :2, :2]
        # A user transform can push frequencies past the band: fade them out rather than alias.
        amplitudes = (1 - (freqs.norm(dim=2) - self.bandwidth) / (self.sampling_rate / 2 - self.bandwidth)).clamp(0, 1)

        theta = torch.eye(2, 3, device=w.device)
        theta[0, 0] = 0.5 * self.size / self.sampling_rate
        theta[1, 1] = 0.5 * self.size / self.sampling_rate
        grid = F.affine_grid(theta.unsqueeze(0), [1, 1, self.size, self.size], align_corners=False)

        x = (grid.unsqueeze(3) @ freqs.permute(0, 2, 1).unsqueeze(1).unsqueeze(2)).squeeze(3)  # [N, H, W, C]
        x = x + phases.unsqueeze(1).unsqueeze(2)
        x = torch.sin(x * (2 * math.pi)) * amplitudes.unsqueeze(1).unsqueeze(2)
        x = x @ (self.weight / math.sqrt(self.channels)).t()
        return x.permute(0, 3, 1, 2)


class SynthesisLayer(nn.Module):
    """Modulated convolution + filtered leaky ReLU (or the final ToRGB)."""

    def __init__(self, w_dim: int, spec: LayerSpec, cfg: StyleGAN3Config, design_filters: bool = True) -> None:
        super().__init__()
        self.spec = spec
        self.conv_clamp = cfg.conv_clamp
        self.affine = FullyConnectedLayer(w_dim, spec.in_channels, bias_init=1.0)
        k = spec.conv_kernel
        self.weight = nn.Parameter(torch.randn(spec.out_channels, spec.in_channels, k, k))
        self.bias = nn.Parameter(torch.zeros(spec.out_channels))
        self.register_buffer("magnitude_ema", torch.ones([]))
        if design_filters:
            up = design_lowpass_filter(spec.up_taps, spec.in_cutoff, spec.in_half_width * 2, spec.tmp_sampling_rate)
            down = design_lowpass_filter(spec.down_taps, spec.out_cutoff, spec.out_half_width * 2,
                                         spec.tmp_sampling_rate, radial=spec.down_radial)
        else:  # placeholders of the official shapes, about to be overwritten by a checkpoint's filters
            up = torch.zeros(spec.up_taps) if spec.up_taps > 1 else None
            down_shape = [spec.down_taps] * (2 if spec.down_radial else 1)
            down = torch.zeros(down_shape) if spec.down_taps > 1 else None
        self.register_buffer("up_filter", up)
        self.register_buffer("down_filter", down)

    def forward(self, x: torch.Tensor, w: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
        spec = self.spec
        styles = self.affine(w)  # [N, I]
        weight = self.weight
        if spec.is_torgb:
            styles = styles / math.sqrt(spec.in_channels * spec.conv_kernel**2)
            dcoefs = None
        else:
            # Normalise weights and styles by their RMS before modulating (keeps fp16 in range). The official code
            # takes the style RMS over the whole batch; per sample is equivalent after demodulation (a per-sample
            # scale cancels) and keeps every image independent of its batch-mates.
            weight = weight * weight.square().mean([1, 2, 3], keepdim=True).rsqrt()
            styles = styles * styles.square().mean(1, keepdim=True).rsqrt()
            # Demodulation: 1 / ||W * s|| per sample and output channel, without forming per-sample weights.
            dcoefs = (styles.square() @ weight.square().sum(dim=[2, 3]).t() + 1e-8).rsqrt()  # [N, O]
        # Modulate the activations instead of the weights, so the whole batch shares one plain convolution (far
        # faster than a grouped convolution with per-sample weights, and the same sums). The input gain
        # rsqrt(magnitude_ema) undoes the tracked RMS magnitude of the layer's input.
        x = x.to(dtype) * (styles * self.magnitude_ema.rsqrt()).to(dtype)[:, :, None, None]
        x = F.conv2d(x, weight.to(dtype), padding=spec.conv_kernel - 1)
        if dcoefs is not None:
            x = x * dcoefs.to(dtype)[:, :, None, None]
        return filtered_lrelu(
            x, self.up_filter, self.down_filter, self.bias, spec.up_factor, spec.down_factor, spec.padding,
            gain=1.0 if spec.is_torgb else SQRT2, slope=1.0 if spec.is_torgb else 0.2, clamp=self.conv_clamp)


class SynthesisNetwork(nn.Module):
    """Input + ``num_layers + 1`` synthesis layers; ``ws[:, 0]`` drives the input, ``ws[:, i + 1]`` layer ``L{i}``."""

    def __init__(self, cfg: StyleGAN3Config, design_filters: bool = True) -> None:
        super().__init__()
        in_spec, specs = network_layout(cfg)
        self.output_scale = cfg.output_scale
        self.input = SynthesisInput(cfg.w_dim, in_spec)
        self.layer_names: list[str] = []
        for spec in specs:
            setattr(self, spec.name, SynthesisLayer(cfg.w_dim, spec, cfg, design_filters))
            self.layer_names.append(spec.name)

    def forward(self, ws: torch.Tensor, reduced: torch.dtype | None) -> torch.Tensor:
        ws = ws.to(torch.float32).unbind(dim=1)
        x = self.input(ws[0])
        for name, w in zip(self.layer_names, ws[1:]):
            layer: SynthesisLayer = getattr(self, name)
            dtype = reduced if (reduced is not None and layer.spec.use_fp16) else torch.float32
            x = layer(x, w, dtype)
        if self.output_scale != 1:
            x = x * self.output_scale
        return x.to(torch.float32)


# --- the generator ------------------------------------------------------------------------------------------------


class StyleGAN3Generator(StyleGANBase):
    """StyleGAN3 (config-T / config-R) behind the common interface (``family = "stylegan3"``).

    Args:
        config: Constructor settings; see :class:`StyleGAN3Config`.
        design_filters: Design the resampling filters (a complete random model). :meth:`from_state` passes False
            since the checkpoint brings its own filters (and then scipy is never imported).
    """

    family = "stylegan3"
    config_class = StyleGAN3Config

    def __init__(self, config: StyleGAN3Config, design_filters: bool = True) -> None:
        super().__init__()
        self.config = config
        self.z_dim, self.w_dim, self.c_dim = config.z_dim, config.w_dim, config.c_dim
        self.resolution = config.img_resolution
        self.img_channels = config.img_channels
        self.num_ws = config.num_layers + 2
        self.init_kwargs = config.to_kwargs()
        # On the CPU, images are synthesised this many at a time however large the batch: the filtered
        # nonlinearities work on 2x-upsampled feature maps, and beyond ~2 images those fall out of the CPU caches
        # (64 px reference model, 2 cores: 62 img/s in pairs vs 16 img/s as one batch of 32). GPUs take the batch whole.
        self.cpu_micro_batch = 2
        self._set_networks(
            mapping=MappingNetwork(config.z_dim, config.c_dim, config.w_dim, self.num_ws,
                                   config.mapping_kwargs.num_layers,
                                   lr_multiplier=config.mapping_kwargs.lr_multiplier),
            synthesis=SynthesisNetwork(config, design_filters),
        )

    @classmethod
    def from_kwargs(cls, init_kwargs: Mapping[str, Any], source: str | Path | None = None,
                    design_filters: bool = True) -> StyleGAN3Generator:
        """Build a randomly initialised generator from official-style kwargs.

        Raises:
            CheckpointError: The kwargs are invalid (unknown keys, missing dims, out of range, impossible layout).
        """
        return cls(StyleGAN3Config.from_kwargs(init_kwargs, source), design_filters)

    @classmethod
    def _from_config_state(cls, config: StyleGAN3Config, state: Mapping[str, torch.Tensor],
                           source: str | Path | None = None, *, adopt: bool = False) -> StyleGAN3Generator:
        """Build for ``config`` and load an official-named ``G_ema`` state dict, checking every tensor.

        ``None`` filter buffers (identity filters) may simply be absent from ``state``.
        """
        gen = build_for_loading(lambda: cls(config, design_filters=False))
        given = {k: v for k, v in state.items() if v is not None}
        check_state(state_shapes(gen), given, source, what="StyleGAN3 generator")
        # Own copies unless adopting (the caller's tensors stay untouched when e.g. the transform buffer is
        # changed later).
        gen.load_state_dict({k: v.detach().to("cpu", torch.float32, copy=not adopt) for k, v in given.items()},
                            strict=True, assign=True)
        return gen.eval()

    # --- interface ----------------------------------------------------------------------------------------------

    def _synthesis(
        self, ws: torch.Tensor, noise_mode: NoiseMode, noise: dict[str, torch.Tensor] | None
    ) -> torch.Tensor:
        # StyleGAN3 has no noise inputs: every noise mode renders the same image.
        if noise:
            raise ModelError(f"StyleGAN3 has no noise inputs, got noise for {', '.join(sorted(noise))}")
        dtype = self._reduced_dtype()
        step = self.cpu_micro_batch
        if ws.device.type == "cpu" and step > 0 and ws.shape[0] > step:
            return torch.cat([self.synthesis_network(ws[i : i + step], dtype) for i in range(0, ws.shape[0], step)])
        return self.synthesis_network(ws, dtype)

    def layers(self) -> list[LayerInfo]:
        """w index -> layer. ``resolution`` is the layer's sampling rate (its image-scale resolution, coarse to
        fine); the padded feature-map size is in the name, as in the official ``L{i}_{size}_{channels}``.
        ``detail`` is twice the layer's cutoff frequency: the finest content it can carry (4 px for the first
        layers, the image size for the last), which is what coarse / middle / fine groups mean."""
        inp = self.synthesis_network.input
        out = [LayerInfo(w_index=0, resolution=int(inp.sampling_rate), name="input", channels=inp.channels,
                         detail=round(2 * inp.bandwidth))]
        for i, name in enumerate(self.synthesis_network.layer_names):
            spec = getattr(self.synthesis_network, name).spec
            out.append(LayerInfo(w_index=i + 1, resolution=spec.out_sampling_rate, name=name,
                                 channels=spec.out_channels, detail=round(2 * spec.out_cutoff)))
        return out

    def noise_shapes(self) -> dict[str, tuple[int, int]]:
        return {}

    # --- extras -------------------------------------------------------------------------------------------------

    def _reduced_dtype(self) -> torch.dtype | None:
        """The dtype of the official ``num_fp16_res`` layers: fp16 on CUDA only (on the CPU those layers stay fp32,
        as in the official code), bf16 on any device, else ``None`` (fp32). Weights and outputs stay fp32."""
        if self._precision == torch.float16 and self.device.type == "cuda":
            return torch.float16
        if self._precision == torch.bfloat16:
            return torch.bfloat16
        return None

    @torch.no_grad()
    def set_input_transform(self, translate: tuple[float, float] = (0.0, 0.0), rotate_deg: float = 0.0) -> None:
        """Translate and rotate the generated image through the input's ``transform`` buffer.

        Same convention as the official ``gen_images.py`` (``--translate``, ``--rotate``): the buffer holds the
        inverse of the image transform. Affects every later :meth:`synthesis` call of this model.

        Args:
            translate: ``(x, y)`` shift of the image content; 1.0 is one full image width.
            rotate_deg: Rotation of the image content in degrees.
        """
        a = math.radians(rotate_deg)
        forward = torch.tensor([[math.cos(a), math.sin(a), translate[0]],
                                [-math.sin(a), math.cos(a), translate[1]],
                                [0.0, 0.0, 1.0]], dtype=torch.float64)
        # The buffer holds the inverse of the image transform.
        self.synthesis_network.input.transform.copy_(torch.linalg.inv(forward).to(torch.float32))
