"""Image distances for projection: perceptual (VGG16 LPIPS-like, discriminator features or MS-SSIM), pixel, masks.

The perceptual term is chosen by :func:`perceptual_loss`, best first:

1. **VGG16 features** (LPIPS-like: unit-normalised activations of five VGG16 stages, squared differences
   averaged) when VGG16 weights are on disk: a path the user gives (``--vgg PATH``), or torchvision's own cache
   file if it is already there. Nothing is ever downloaded: torchvision's model is built with ``weights=None``
   and filled from the local file.
2. **Discriminator features**, with a warning, when the generator object exposes a discriminator
   (``generator.discriminator`` with a ``features(img) -> list[Tensor]`` method). The checkpoint loaders do not
   expose D yet; this is the hook for when they do.
3. **Multi-scale SSIM**, with a warning: needs no weights and still cares about structure more than pixels do.

All functions take images ``[N, 3, H, W]`` in [-1, 1] and return per-image losses ``[N]``.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from morphstudio.errors import ProjectionError

log = logging.getLogger(__name__)

VGG16_FILENAME = "vgg16-397923af.pth"  # torchvision's ImageNet VGG16 weights, as its cache names them


class _TargetCache:
    """What a loss derives from its constant target (and loss weights), reused while the same tensors come back.

    The projector passes the same target and weight tensors at every step; recomputing their features each time
    is wasted work. Keyed on tensor identity and version counter (an in-place edit invalidates it); a target that
    requires grad is never cached.
    """

    def __init__(self) -> None:
        self._key: tuple[Any, ...] | None = None
        self._value: Any = None

    def get(self, b: torch.Tensor, weight: torch.Tensor | None, make: Callable[[], Any]) -> Any:
        if b.requires_grad or (weight is not None and weight.requires_grad):
            return make()
        k = self._key
        wv = None if weight is None else weight._version
        if k is None or k[0] is not b or k[1] != b._version or k[2] is not weight or k[3] != wv:
            with torch.no_grad():
                self._value = make()
            self._key = (b, b._version, weight, wv)
        return self._value


def _unit(f: torch.Tensor) -> torch.Tensor:
    return f / (f.norm(dim=1, keepdim=True) + 1e-10)


def _resized_weight(weight: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor | None:
    if weight is None or weight.shape[-2:] == like.shape[-2:]:
        return weight
    return F.interpolate(weight, size=like.shape[-2:], mode="area")


def _target_features(feats: list[torch.Tensor], weight: torch.Tensor | None) -> list[tuple[torch.Tensor, Any]]:
    """Per stage: the target's unit-normalised features and the loss weight resized to them."""
    return [(_unit(f), _resized_weight(weight, f)) for f in feats]


def _feature_distance(feats_a: list[torch.Tensor], target: list[tuple[torch.Tensor, Any]]) -> torch.Tensor:
    """LPIPS-style distance: per stage, squared differences of unit-normalised features, weighted-averaged over
    space; summed over stages. ``target`` comes from :func:`_target_features`."""
    total = torch.zeros(feats_a[0].shape[0], device=feats_a[0].device)
    for fa, (fb, w) in zip(feats_a, target):
        total = total + _weighted_mean((_unit(fa) - fb).pow(2).sum(1, keepdim=True), w)
    return total


# --- VGG16 ---------------------------------------------------------------------------------------------------


def torchvision_cache_vgg16() -> Path | None:
    """torchvision's cached VGG16 weights (``$TORCH_HOME/hub/checkpoints/vgg16-397923af.pth``) if present."""
    home = os.environ.get("TORCH_HOME")
    if home is None:
        xdg = os.environ.get("XDG_CACHE_HOME", str(Path.home() / ".cache"))
        home = str(Path(xdg) / "torch")
    path = Path(home).expanduser() / "hub" / "checkpoints" / VGG16_FILENAME
    return path if path.is_file() else None


class VGG16Features(nn.Module):
    """LPIPS-style distance on torchvision VGG16 activations (relu1_2, relu2_2, relu3_3, relu4_3, relu5_3).

    Each stage's activations are normalised to unit length over channels, then squared differences are averaged
    over space and summed over stages (LPIPS with equal channel weights, its "baseline" variant: LPIPS's learned
    linear heads are a separate download this project does not make).
    """

    name = "lpips-vgg16"
    _CUTS = (4, 9, 16, 23, 30)  # indices after relu1_2, relu2_2, relu3_3, relu4_3, relu5_3

    def __init__(self, weights_path: str | Path) -> None:
        super().__init__()
        from torchvision.models import vgg16

        path = Path(weights_path)
        if not path.is_file():
            raise ProjectionError(f"{path}: VGG16 weights file not found")
        model = vgg16(weights=None)  # never downloads; filled from the local file below
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except (OSError, RuntimeError, EOFError) as exc:
            raise ProjectionError(f"{path}: cannot read VGG16 weights ({exc})") from None
        if isinstance(state, dict) and "state_dict" in state:
            state = state["state_dict"]
        feats = {k[len("features."):]: v for k, v in state.items() if k.startswith("features.")}
        try:
            model.features.load_state_dict(feats)
        except RuntimeError as exc:
            raise ProjectionError(f"{path}: not torchvision VGG16 weights ({str(exc).splitlines()[0]})") from None
        self.features = model.features[: self._CUTS[-1]].eval().requires_grad_(False)
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1))
        self.path = path
        self._target = _TargetCache()

    def _stages(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = ((x + 1) / 2 - self.mean) / self.std
        if x.shape[-1] > 256:  # as StyleGAN2's projector: features of a 256 px image are enough
            x = F.interpolate(x, size=(256, 256), mode="area")
        elif x.shape[-1] < 128:  # VGG's receptive fields want some pixels to work with
            x = F.interpolate(x, scale_factor=128 / x.shape[-1], mode="bilinear", align_corners=False)
        out = []
        start = 0
        for cut in self._CUTS:
            x = self.features[start:cut](x)
            out.append(x)
            start = cut
        return out

    def forward(self, a: torch.Tensor, b: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
        target = self._target.get(b, weight, lambda: _target_features(self._stages(b), weight))
        return _feature_distance(self._stages(a), target)


# --- discriminator features ----------------------------------------------------------------------------------


class DiscriminatorFeatures(nn.Module):
    """Distance between a discriminator's intermediate features (normalised per layer, like LPIPS)."""

    name = "discriminator"

    def __init__(self, discriminator: Any) -> None:
        super().__init__()
        self.d = discriminator
        self._target = _TargetCache()

    def forward(self, a: torch.Tensor, b: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
        target = self._target.get(b, weight, lambda: _target_features(list(self.d.features(b)), weight))
        return _feature_distance(list(self.d.features(a)), target)


def discriminator_of(generator: Any) -> Any | None:
    """The generator's discriminator if its loader exposed one with a ``features`` method (none do yet)."""
    d = getattr(generator, "discriminator", None)
    return d if d is not None and callable(getattr(d, "features", None)) else None


# --- MS-SSIM -------------------------------------------------------------------------------------------------


def _gaussian_window(size: int, sigma: float, device: torch.device) -> torch.Tensor:
    x = torch.arange(size, device=device, dtype=torch.float32) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).expand(3, 1, size, size).contiguous()


_WINDOWS: dict[tuple[int, float, torch.device], torch.Tensor] = {}


def _window(size: int, sigma: float, device: torch.device) -> torch.Tensor:
    """:func:`_gaussian_window`, built once per (size, sigma, device)."""
    key = (size, sigma, torch.device(device))
    win = _WINDOWS.get(key)
    if win is None:
        win = _WINDOWS[key] = _gaussian_window(size, sigma, device)
    return win


def _conv(x: torch.Tensor, win: torch.Tensor) -> torch.Tensor:
    pad = win.shape[-1] // 2
    return F.conv2d(F.pad(x, (pad,) * 4, mode="reflect"), win, groups=3)


def _ssim_stats(b: torch.Tensor, win: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """What SSIM needs of one image alone: ``(b, local mean, local variance)``."""
    mu_b = _conv(b, win)
    return b, mu_b, _conv(b * b, win) - mu_b**2


def _ssim_parts(a: torch.Tensor, b: torch.Tensor | tuple[torch.Tensor, torch.Tensor, torch.Tensor],
                win: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-pixel luminance*contrast*structure (``ssim``) and contrast*structure (``cs``) maps, data range 2.

    ``b`` may be given as its :func:`_ssim_stats` (a constant target's, computed once).
    """
    c1, c2 = (0.01 * 2) ** 2, (0.03 * 2) ** 2
    b, mu_b, sbb = b if isinstance(b, tuple) else _ssim_stats(b, win)
    mu_a = _conv(a, win)
    saa = _conv(a * a, win) - mu_a**2
    sab = _conv(a * b, win) - mu_a * mu_b
    cs = (2 * sab + c2) / (saa + sbb + c2)
    ssim = (2 * mu_a * mu_b + c1) / (mu_a**2 + mu_b**2 + c1) * cs
    return ssim, cs


def ssim(a: torch.Tensor, b: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Single-scale SSIM per image (11 px Gaussian window, sigma 1.5; images in [-1, 1])."""
    win = _window(11, 1.5, a.device)
    s, _ = _ssim_parts(a.float(), b.float(), win)
    return _weighted_mean(s.mean(1, keepdim=True), weight)


class MSSSIMLoss(nn.Module):
    """``1 - MS-SSIM`` with as many scales (up to 5) as the image size allows; weights as Wang et al. 2003."""

    name = "ms-ssim"
    _WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)

    def __init__(self) -> None:
        super().__init__()
        self._weights: dict[tuple[torch.device, int], torch.Tensor] = {}
        self._target = _TargetCache()

    @staticmethod
    def scales_for(size: int) -> int:
        """Scales used for images whose shorter side is ``size`` (each halves it; the last is at least 8 px)."""
        return max(1, min(5, int(math.log2(size / 8.0)) + 1))

    def _scale_weights(self, scales: int, device: torch.device) -> torch.Tensor:
        key = (device, scales)
        w = self._weights.get(key)
        if w is None:
            w = torch.tensor(self._WEIGHTS[:scales], device=device)
            w = self._weights[key] = w / w.sum()
        return w

    @staticmethod
    def _pyramid(b: torch.Tensor, weight: torch.Tensor | None, scales: int, win: torch.Tensor) -> list[tuple]:
        """Per scale: the target's SSIM statistics and the loss weight at that scale."""
        out = []
        w = weight
        for i in range(scales):
            out.append((_ssim_stats(b, win), w))
            if i < scales - 1:
                b = F.avg_pool2d(b, 2)
                w = F.avg_pool2d(w, 2) if w is not None else None
        return out

    def forward(self, a: torch.Tensor, b: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
        win = _window(7, 1.0, a.device)  # a smaller window than SSIM's 11 so 64 px images get 3 scales
        scales = self.scales_for(min(a.shape[-2:]))
        weights = self._scale_weights(scales, a.device)
        pyramid = self._target.get(b, weight, lambda: self._pyramid(b.float(), weight, scales, win))
        if len(pyramid) != scales:  # same tensors, other size: cannot happen, but never trust a stale cache
            pyramid = self._pyramid(b.float(), weight, scales, win)
        a = a.float()
        vals = []
        for i, (stats, w) in enumerate(pyramid):
            s, cs = _ssim_parts(a, stats, win)
            m = (s if i == scales - 1 else cs).mean(1, keepdim=True)
            # relu: negative structure correlations would make the fractional power undefined.
            vals.append(_weighted_mean(m, w).clamp_min(1e-6))
            if i < scales - 1:
                a = F.avg_pool2d(a, 2)
        stacked = torch.stack(vals, dim=1)  # [N, scales]
        return 1 - torch.prod(stacked ** weights, dim=1)


# --- pixel, mask, regularisers -------------------------------------------------------------------------------


def _weighted_mean(x: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    """Mean over everything but the batch axis, weighted by ``weight [N, 1, H, W]`` when given."""
    if weight is None:
        return x.flatten(1).mean(1)
    if weight.shape[-2:] != x.shape[-2:]:
        weight = F.interpolate(weight, size=x.shape[-2:], mode="area")
    w = weight.expand_as(x)
    return (x * w).flatten(1).sum(1) / w.flatten(1).sum(1).clamp_min(1e-8)


def pixel_l2(a: torch.Tensor, b: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Mean squared error per image on [-1, 1] images (optionally weighted)."""
    return _weighted_mean((a.float() - b.float()).pow(2).mean(1, keepdim=True), weight)


def mask_weights(mask: torch.Tensor | None, face_weight: float) -> torch.Tensor | None:
    """Per-pixel loss weights: 1 outside the face, ``face_weight`` inside (``mask [N, 1, H, W]`` in [0, 1])."""
    if mask is None or face_weight == 1.0:
        return None
    return 1.0 + (face_weight - 1.0) * mask


def noise_regulariser(noises: list[torch.Tensor]) -> torch.Tensor:
    """StyleGAN2's noise regulariser: squared autocorrelation at one-pixel shifts, over a pyramid of scales.

    Pushes the optimised noise maps to stay white noise, so they cannot smuggle the target image into the
    synthesis. Returns a per-image ``[N]`` tensor.
    """
    if not noises:
        return torch.zeros(())
    total = torch.zeros(noises[0].shape[0], device=noises[0].device)
    for n in noises:
        x = n
        while True:
            total = total + (x * torch.roll(x, 1, dims=3)).flatten(1).mean(1).pow(2)
            total = total + (x * torch.roll(x, 1, dims=2)).flatten(1).mean(1).pow(2)
            if x.shape[-1] <= 8:
                break
            x = F.avg_pool2d(x, 2)
    return total


def perceptual_loss(
    kind: str = "auto",
    *,
    vgg_path: str | Path | None = None,
    generator: Any = None,
    warn: Callable[[str], None] | None = None,
) -> tuple[nn.Module | None, str]:
    """Pick the perceptual distance.

    Args:
        kind: ``auto`` (best available), ``lpips``/``vgg`` (require VGG16 weights), ``disc``, ``msssim`` or ``none``.
        vgg_path: VGG16 weights file (torchvision's ``vgg16-397923af.pth`` or any state dict of that model).
        generator: Searched for a discriminator hook.
        warn: Where fallback warnings go (default: the logging module).

    Returns:
        ``(module or None, name)``.

    Raises:
        ProjectionError: An explicitly requested kind is unavailable.
    """
    warn = warn or log.warning
    kind = kind.lower()
    if kind not in ("auto", "lpips", "vgg", "disc", "msssim", "none"):
        raise ProjectionError(f"unknown perceptual loss {kind!r}: use auto, lpips, disc, msssim or none")
    if kind == "none":
        return None, "none"
    if kind in ("auto", "lpips", "vgg"):
        path = Path(vgg_path) if vgg_path else torchvision_cache_vgg16()
        if path is not None:
            return VGG16Features(path), VGG16Features.name
        if kind != "auto":
            raise ProjectionError(
                "LPIPS needs VGG16 weights, and none were given or found in torchvision's cache",
                hint=f"pass --vgg PATH to a local {VGG16_FILENAME} (nothing is downloaded)")
    if kind in ("auto", "disc"):
        d = discriminator_of(generator)
        if d is not None:
            if kind == "auto":
                warn("no VGG16 weights (pass --vgg PATH): using the discriminator's features as the perceptual loss")
            return DiscriminatorFeatures(d), DiscriminatorFeatures.name
        if kind == "disc":
            raise ProjectionError("this checkpoint exposes no discriminator to use as a perceptual loss")
    if kind == "auto":
        warn("no VGG16 weights (pass --vgg PATH) and no discriminator: using multi-scale SSIM as the perceptual loss")
    return MSSSIMLoss(), MSSSIMLoss.name
