"""``pinn``: a pointwise MLP of the coordinates, the network of physics-informed solvers.

Input ``(N, in_channels)`` coordinates (length/time units), output ``(N, out_channels)``
fields. The coordinates pass through an embedding before the MLP:

1. non-periodic coordinates are mapped affinely from ``[lower, upper]`` to ``[-1, 1]``;
   a periodic coordinate (``periods[i]`` set) becomes the harmonics
   ``cos, sin(2 pi m x / P)``, ``m = 1..periodic_modes``, so the network is exactly periodic;
2. optionally random Fourier features ``[cos 2 pi B e, sin 2 pi B e]`` of the embedding
   ``e`` with ``B ~ N(0, sigma²)`` fixed (Tancik et al. 2020), which lift the spectral bias
   of plain MLPs on high-frequency solutions. Several ``fourier_scales`` give the
   multi-scale network of Wang, Wang & Perdikaris (2021): one feature map per ``sigma``,
   each through the same MLP trunk, their last hidden layers concatenated before the
   output layer.

Weights are Glorot-normal with zero biases (DeepXDE's default for tanh networks), drawn
from the global torch RNG (the trainer seeds it).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from sciops.models import register

__all__ = ["PINN", "ACTIVATIONS"]


class _Sin(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return torch.sin(x)


ACTIVATIONS: dict[str, type[nn.Module]] = {"tanh": nn.Tanh, "sin": _Sin, "gelu": nn.GELU,
                                           "silu": nn.SiLU}


@register("pinn")
class PINN(nn.Module):
    """Physics-informed MLP: coordinates -> fields, periodic and Fourier-feature embeddings.

    See the module docstring.

    Parameters (defaults documented once, here):
        in_channels: number of coordinates ``d``.
        out_channels: number of output fields.
        width: hidden units per layer (64).
        depth: hidden layers (3).
        activation: ``"tanh"`` (default), ``"sin"``, ``"gelu"`` or ``"silu"``.
        lower, upper: box bounds per coordinate, mapped to ``[-1, 1]`` (default: ``[-1, 1]``).
        periods: per coordinate, its period or None (default: none periodic).
        periodic_modes: harmonics per periodic coordinate (1).
        fourier_features: random Fourier features per scale (0: none).
        fourier_scales: standard deviations ``sigma`` of ``B`` (one map per scale) ((1.0,)).
        dtype: ``"float32"`` (default) or ``"float64"``.
    """

    kind = "point"  # collocation points of one PDE instance (`sciops solve`), no dataset

    def __init__(self, in_channels: int, out_channels: int, width: int = 64, depth: int = 3,
                 activation: str = "tanh", lower: Sequence[float] | None = None,
                 upper: Sequence[float] | None = None,
                 periods: Sequence[float | None] | None = None, periodic_modes: int = 1,
                 fourier_features: int = 0, fourier_scales: Sequence[float] = (1.0,),
                 dtype: str = "float32"):
        super().__init__()
        if in_channels < 1 or out_channels < 1:
            raise ValueError(f"in_channels={in_channels}, out_channels={out_channels}: "
                             "both must be >= 1")
        if width < 1 or depth < 1:
            raise ValueError(f"width={width}, depth={depth}: both must be >= 1")
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation={activation!r} is not allowed; choose one of "
                             f"{list(ACTIVATIONS)}")
        if periodic_modes < 1 or fourier_features < 0:
            raise ValueError(f"periodic_modes={periodic_modes} must be >= 1 and "
                             f"fourier_features={fourier_features} >= 0")
        if fourier_features and (not fourier_scales or any(s <= 0 for s in fourier_scales)):
            raise ValueError(f"fourier_scales={list(fourier_scales)}: need one or more "
                             "scales > 0")
        if dtype not in ("float32", "float64"):
            raise ValueError(f"dtype={dtype!r} is not allowed; choose one of "
                             "['float32', 'float64']")
        dt = getattr(torch, dtype)
        lower = [-1.0] * in_channels if lower is None else [float(v) for v in lower]
        upper = [1.0] * in_channels if upper is None else [float(v) for v in upper]
        periods = [None] * in_channels if periods is None else list(periods)
        if not len(lower) == len(upper) == len(periods) == in_channels:
            raise ValueError(f"lower, upper, periods: need {in_channels} entries each, got "
                             f"{len(lower)}, {len(upper)}, {len(periods)}")
        if any(not hi > lo for lo, hi in zip(lower, upper)):
            raise ValueError(f"lower={lower}, upper={upper}: need lower < upper")
        if any(p is not None and p <= 0 for p in periods):
            raise ValueError(f"periods={periods}: periods must be > 0 (or None)")
        self.in_channels, self.out_channels = in_channels, out_channels
        # The embedding is affine in x before cos/sin: x @ scale + shift for the plain
        # coordinates, x @ harmonics for the periodic phases (one matmul each).
        plain = [i for i in range(in_channels) if periods[i] is None]
        periodic = [i for i in range(in_channels) if periods[i] is not None]
        scale = torch.zeros(in_channels, len(plain), dtype=torch.float64)
        shift = torch.zeros(len(plain), dtype=torch.float64)
        for j, i in enumerate(plain):
            scale[i, j] = 2.0 / (upper[i] - lower[i])
            shift[j] = -(upper[i] + lower[i]) / (upper[i] - lower[i])
        harmonics = torch.zeros(in_channels, len(periodic) * periodic_modes, dtype=torch.float64)
        for j, i in enumerate(periodic):
            for m in range(periodic_modes):
                harmonics[i, j * periodic_modes + m] = 2 * math.pi * (m + 1) / periods[i]
        self.register_buffer("scale", scale.to(dt))
        self.register_buffer("shift", shift.to(dt))
        self.register_buffer("harmonics", harmonics.to(dt))
        embed = len(plain) + 2 * harmonics.shape[1]
        scales = tuple(float(s) for s in fourier_scales) if fourier_features else ()
        self.register_buffer("B", torch.stack(
            [s * torch.randn(embed, fourier_features, dtype=dt) for s in scales])
            if scales else torch.zeros(0, embed, 0, dtype=dt))
        act = ACTIVATIONS[activation]
        trunk_in = 2 * fourier_features if scales else embed
        layers: list[nn.Module] = []
        for j in range(depth):
            layers += [nn.Linear(trunk_in if j == 0 else width, width, dtype=dt), act()]
        self.trunk = nn.Sequential(*layers)
        self.head = nn.Linear(width * max(len(scales), 1), out_channels, dtype=dt)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_normal_(m.weight)
                nn.init.zeros_(m.bias)

    def embed(self, x: Tensor) -> Tensor:
        """Coordinate embedding (step 1 of the module doc): ``(N, d) -> (N, e)``."""
        plain = x @ self.scale + self.shift
        if self.harmonics.shape[1] == 0:
            return plain
        phase = x @ self.harmonics
        return torch.cat((plain, torch.cos(phase), torch.sin(phase)), dim=1)

    def forward(self, x: Tensor) -> Tensor:
        """``(N, in_channels) -> (N, out_channels)``."""
        if x.ndim != 2 or x.shape[1] != self.in_channels:
            raise ValueError(f"x: expected shape (N, {self.in_channels}), got {tuple(x.shape)}")
        e = self.embed(x.to(self.scale.dtype))
        if self.B.shape[0] == 0:
            return self.head(self.trunk(e))
        proj = 2 * math.pi * torch.einsum("ne,sef->snf", e, self.B)
        hidden = self.trunk(torch.cat((torch.cos(proj), torch.sin(proj)), dim=-1))
        return self.head(torch.cat(hidden.unbind(0), dim=-1))
