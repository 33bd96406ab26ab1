"""DCGAN backend: the PyTorch DCGAN-tutorial generator (transposed convs, BatchNorm + ReLU, Tanh).

A DCGAN has no mapping network and a single latent, so it is presented through the StyleGAN seam with
``num_ws = 1`` and ``w = z``: ``mapping`` is the identity plus truncation toward the mean of z (zero), and
``synthesis`` takes ``ws [N, 1, z_dim]``. The timeline interpolates such latents with slerp, since z lives on a
Gaussian shell rather than in a flat W space.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Mapping

import torch
from torch import nn

from morphstudio.generators.base import Generator, LayerInfo, NoiseMode, build_for_loading, check_state, state_shapes
from morphstudio.generators.config import GeneratorConfig, dim, resolution


@dataclass(frozen=True)
class DCGANConfig(GeneratorConfig):
    """Shape of a DCGAN-tutorial generator, with sane ranges.

    Attributes:
        z_dim: Length of the input noise vector (``nz`` in the tutorial).
        ngf: Feature maps of the last hidden layer; earlier layers have ``ngf * 2**k``.
        img_channels: Output colour channels (``nc``).
        resolution: Output size; 64 px means 5 transposed convolutions (4 -> 8 -> 16 -> 32 -> 64).
    """

    label: ClassVar[str] = "DCGAN"
    SIZE_KEYS: ClassVar[tuple[str, ...]] = ("z_dim", "ngf", "resolution")

    z_dim: int = dim(100)
    ngf: int = dim(64)
    img_channels: int = dim(3)
    resolution: int = resolution(64, minimum=8)

    @property
    def num_layers(self) -> int:
        return self.resolution.bit_length() - 2  # 4 px after the first layer, doubling after each further one

    @property
    def channels(self) -> list[int]:
        """Output channels of every transposed convolution: 512, 256, 128, 64, 3 for ngf 64 at 64 px."""
        n = self.num_layers
        return [self.ngf * 2 ** (n - 2 - i) for i in range(n - 1)] + [self.img_channels]

    def param_count(self) -> int:
        """Bias-free 4x4 transposed convolutions, each hidden one followed by a BatchNorm (scale and shift)."""
        widths = [self.z_dim] + self.channels
        convs = sum(a * b * 16 for a, b in zip(widths, widths[1:]))
        return convs + sum(2 * c for c in self.channels[:-1])


class DCGANGenerator(Generator):
    """DCGAN generator behind the common interface (``family = "dcgan"``, ``num_ws = 1``, ``w = z``)."""

    family = "dcgan"
    config_class = DCGANConfig
    PRECISIONS = (torch.float32, torch.float16, torch.bfloat16)

    def __init__(self, config: DCGANConfig) -> None:
        super().__init__()
        self.config = config
        self.z_dim = self.w_dim = config.z_dim
        self.c_dim = 0
        self.num_ws = 1
        self.resolution = config.resolution
        self.img_channels = config.img_channels
        self.init_kwargs = config.to_kwargs()
        # The mean of z ~ N(0, I) is the origin; truncation pulls toward it.
        self.register_buffer("w_avg", torch.zeros(config.z_dim))

        channels = config.channels[:-1]  # 512, 256, 128, 64 for ngf 64 @ 64 px
        layers: list[nn.Module] = []
        in_ch = config.z_dim
        for i, out_ch in enumerate(channels):
            # First layer: 1x1 -> 4x4 (stride 1, no padding); the rest double the size.
            stride, pad = (1, 0) if i == 0 else (2, 1)
            layers += [nn.ConvTranspose2d(in_ch, out_ch, 4, stride, pad, bias=False), nn.BatchNorm2d(out_ch), nn.ReLU(True)]
            in_ch = out_ch
        layers += [nn.ConvTranspose2d(in_ch, config.img_channels, 4, 2, 1, bias=False), nn.Tanh()]
        # Named `main` like the tutorial, so the state dict keeps the checkpoint's own names.
        self.main = nn.Sequential(*layers)
        self._channels = channels + [config.img_channels]

    @classmethod
    def _from_config_state(cls, config: DCGANConfig, state: Mapping[str, torch.Tensor],
                           source: str | Path | None = None, *, adopt: bool = False) -> DCGANGenerator:
        """Build for ``config`` and load a ``main.*`` state dict, checking every tensor's name and shape first."""
        gen = build_for_loading(lambda: cls(config))
        # BatchNorm's step counter is training bookkeeping; checkpoints may or may not carry it.
        expected = {k: shape for k, shape in state_shapes(gen).items()
                    if k != "w_avg" and not k.endswith("num_batches_tracked")}
        given = {k: v for k, v in state.items() if k != "w_avg" and not k.endswith("num_batches_tracked")}
        check_state(expected, given, source, what="DCGAN generator")
        with torch.no_grad():
            gen.w_avg.zero_()  # the mean of z ~ N(0, I)
            for key, value in gen.state_dict().items():
                if key.endswith("num_batches_tracked"):
                    value.zero_()
        gen.load_state_dict(given, strict=False)
        return gen.eval()

    def _mapping(self, z: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        return z.unsqueeze(1)

    def _synthesis(
        self, ws: torch.Tensor, noise_mode: NoiseMode, noise: dict[str, torch.Tensor] | None
    ) -> torch.Tensor:
        # DCGAN has no noise inputs: every noise mode renders the same image.
        dtype = self.main[0].weight.dtype
        x = ws[:, 0, :].to(dtype)[:, :, None, None]
        return self.main(x).float()

    def layers(self) -> list[LayerInfo]:
        size = 4
        out = []
        for i, ch in enumerate(self._channels):
            out.append(LayerInfo(w_index=0, resolution=size, name=f"main.{3 * i}", channels=ch))
            size *= 2
        return out

    def _apply_precision(self, dtype: torch.dtype) -> None:
        """Run the network in ``dtype`` (a GPU speed setting); outputs stay float32."""
        self.main.to(dtype)
