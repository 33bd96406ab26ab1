"""Building blocks shared by the StyleGAN backends."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

SQRT2 = math.sqrt(2.0)
ACTIVATIONS: tuple[str, ...] = ("linear", "relu", "lrelu")


def normalize_2nd_moment(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Scale each row to unit root-mean-square (how StyleGAN normalises z and label embeddings)."""
    return x * (x.square().mean(dim=1, keepdim=True) + eps).rsqrt()


class FullyConnectedLayer(nn.Module):
    """Equalised-learning-rate dense layer: weights and biases are stored raw and scaled at run time.

    Checkpoints store the raw values, so the gains (``lr_multiplier / sqrt(in)`` for the weight, ``lr_multiplier``
    for the bias) must be applied here exactly as in training for images to match.

    Args:
        in_features, out_features: Sizes.
        activation: ``linear``, ``relu`` or ``lrelu`` (slope 0.2); the non-linear ones are followed by a gain of
            sqrt(2), which keeps the signal's magnitude.
        lr_multiplier: Scales the weight gain and the bias (0.01 in mapping networks).
        bias_init: Initial effective bias, a number or one value per output (1 for style affines, so styles start
            at 1).
        weight_init: Scale of the initial random weights (0 makes a layer start as its bias alone).
    """

    def __init__(self, in_features: int, out_features: int, activation: str = "linear",
                 lr_multiplier: float = 1.0, bias_init: float | list[float] = 0.0, weight_init: float = 1.0) -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
        self.in_features, self.out_features = in_features, out_features
        self.activation = activation
        self.weight_gain = lr_multiplier / math.sqrt(in_features)
        self.bias_gain = lr_multiplier
        self.weight = nn.Parameter(torch.randn(out_features, in_features) * (weight_init / lr_multiplier))
        init = np.broadcast_to(np.asarray(bias_init, dtype=np.float32), [out_features]).copy()
        self.bias = nn.Parameter(torch.from_numpy(init) / lr_multiplier)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.weight.to(x.dtype) * self.weight_gain
        b = self.bias.to(x.dtype)
        if self.bias_gain != 1:
            b = b * self.bias_gain
        if self.activation == "linear":
            return torch.addmm(b.unsqueeze(0), x, w.t())
        y = x.matmul(w.t()) + b
        y = F.leaky_relu(y, 0.2) if self.activation == "lrelu" else F.relu(y)
        return y * SQRT2


class MappingNetwork(nn.Module):
    """z (and an embedded label c) -> one w per sample, broadcast to ``num_ws``; holds the ``w_avg`` buffer.

    The official StyleGAN2 and StyleGAN3 mapping networks (module names ``embed``, ``fc0`` ... ``fc{n-1}`` and
    buffer ``w_avg``). Truncation is done by the generic :meth:`Generator.mapping` wrapper.

    Args:
        z_dim, c_dim, w_dim: Latent, label and output sizes (``c_dim`` 0: no ``embed`` layer).
        num_ws: How many copies of w the output holds.
        num_layers: Fully connected layers.
        lr_multiplier: Learning-rate multiplier of the fully connected layers (0.01).
        activation: Activation of the fully connected layers.
        embed_features: Width of the label embedding (``w_dim`` if ``None``; unused when ``c_dim`` is 0).
        layer_features: Width of the hidden layers (``w_dim`` if ``None``).
    """

    def __init__(self, z_dim: int, c_dim: int, w_dim: int, num_ws: int, num_layers: int,
                 lr_multiplier: float = 0.01, activation: str = "lrelu", embed_features: int | None = None,
                 layer_features: int | None = None) -> None:
        super().__init__()
        self.c_dim, self.num_ws, self.num_layers = c_dim, num_ws, num_layers
        embed_features = (w_dim if embed_features is None else embed_features) if c_dim > 0 else 0
        layer_features = w_dim if layer_features is None else layer_features
        features = [z_dim + embed_features] + [layer_features] * (num_layers - 1) + [w_dim]
        if c_dim > 0:
            self.embed = FullyConnectedLayer(c_dim, embed_features)
        for i in range(num_layers):
            self.add_module(f"fc{i}", FullyConnectedLayer(features[i], features[i + 1], activation,
                                                          lr_multiplier=lr_multiplier))
        self.register_buffer("w_avg", torch.zeros([w_dim]))

    def fc_layers(self) -> list[FullyConnectedLayer]:
        """``[fc0, fc1, ...]`` in order."""
        return [getattr(self, f"fc{i}") for i in range(self.num_layers)]

    def map_one(self, z: torch.Tensor, c: torch.Tensor | None = None) -> torch.Tensor:
        """``[N, w_dim]``: one w per sample, before broadcasting."""
        x = normalize_2nd_moment(z.float())
        if self.c_dim > 0:
            y = normalize_2nd_moment(self.embed(c.float()))
            x = torch.cat([x, y], dim=1)
        for fc in self.fc_layers():
            x = fc(x)
        return x

    def forward(self, z: torch.Tensor, c: torch.Tensor | None) -> torch.Tensor:
        return self.map_one(z, c).unsqueeze(1).repeat(1, self.num_ws, 1)
