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
