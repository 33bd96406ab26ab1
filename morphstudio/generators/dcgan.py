"""DCGAN backend: the PyTorch DCGAN-tutorial generator (transposed convs, BatchNorm + ReLU, Tanh).

A DCGAN has no mapping network and a single latent, so it is presented through the StyleGAN seam with
``num_ws = 1`` and ``w = z``: ``mapping`` is the identity plus truncation toward the mean of z (zero), and
``synthesis`` takes ``ws [N, 1, z_dim]``. The timeline interpolates such latents with slerp, since z lives on a
Gaussian shell rather than in a flat W space.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Mapping

import torch
from torch import nn

from morphstudio.errors import CheckpointError
from morphstudio.generators.base import Generator, LayerInfo, NoiseMode, check_state, state_shapes


@dataclass(frozen=True)
class DCGANConfig:
    """Shape of a DCGAN-tutorial generator.

    Attributes:
        z_dim: Length of the input noise vector (``nz`` in the tutorial).
        ngf: Feature maps of the last hidden layer; earlier layers have ``ngf * 2**k``.
        img_channels: Output colour channels (``nc``).
        resolution: Output size; 64 px means 5 transposed convolutions (4 -> 8 -> 16 -> 32 -> 64).
    """

    z_dim: int = 100
    ngf: int = 64
    img_channels: int = 3
    resolution: int = 64

    @property
    def num_layers(self) -> int:
        return self.resolution.bit_length() - 2  # 4 px after the first layer, doubling after each further one

    def __post_init__(self) -> None:
        if self.resolution < 8 or self.resolution & (self.resolution - 1):
            raise ValueError(f"DCGAN resolution must be a power of two >= 8, got {self.resolution}")


class DCGANGenerator(Generator):
    """DCGAN generator behind the common interface (``family = "dcgan"``, ``num_ws = 1``, ``w = z``)."""

    family = "dcgan"

    def __init__(self, config: DCGANConfig) -> None:
        super().__init__()
        self.config = config
        self.z_dim = self.w_dim = config.z_dim
        self.c_dim = 0
        self.num_ws = 1
        self.resolution = config.resolution
        self.img_channels = config.img_channels
        self.init_kwargs = asdict(config)
        # The mean of z ~ N(0, I) is the origin; truncation pulls toward it.
        self.register_buffer("w_avg", torch.zeros(config.z_dim))

        n = config.num_layers
        channels = [config.ngf * 2 ** (n - 2 - i) for i in range(n - 1)]  # 512, 256, 128, 64 for ngf 64 @ 64 px
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
    def from_state(
        cls, init_kwargs: Mapping[str, Any], state: Mapping[str, torch.Tensor], source: str | None = None
    ) -> "DCGANGenerator":
        """Build from constructor kwargs and a ``main.*`` state dict, checking every tensor's name and shape.

        Raises:
            CheckpointError: A tensor is missing, unexpected, or of the wrong shape; or the kwargs are invalid.
        """
        known = {f for f in DCGANConfig.__dataclass_fields__}
        unknown = set(init_kwargs) - known
        if unknown:
            raise CheckpointError(source, f"unknown DCGAN config keys: {', '.join(sorted(unknown))}")
        try:
            gen = cls(DCGANConfig(**dict(init_kwargs)))
        except (TypeError, ValueError) as exc:
            raise CheckpointError(source, f"invalid DCGAN config {dict(init_kwargs)}: {exc}") from None
        # BatchNorm's step counter is training bookkeeping; checkpoints may or may not carry it.
        expected = {k: shape for k, shape in state_shapes(gen).items()
                    if k != "w_avg" and not k.endswith("num_batches_tracked")}
        given = {k: v for k, v in state.items() if k != "w_avg" and not k.endswith("num_batches_tracked")}
        check_state(expected, given, source, what="DCGAN generator")
        gen.load_state_dict({**given, "w_avg": gen.w_avg}, strict=False)
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

    @property
    def precision(self) -> torch.dtype:
        """The dtype the network runs in (see :meth:`set_precision`)."""
        return self.main[0].weight.dtype

    def set_precision(self, dtype: torch.dtype) -> None:
        """Run the network in ``dtype`` (a GPU speed setting); outputs stay float32."""
        self.main.to(dtype)
