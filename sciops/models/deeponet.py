"""DeepONet and MultiONet as grid models: sensors and queries are the data's grid.

DeepONet (Lu et al. 2021, "Learning nonlinear operators via DeepONet"): a branch net
encodes the input function ``v`` from its values at fixed sensors, a trunk net encodes a
query point ``y``, and

    G(v)(y)_c = sum_k b_{c,k}(v) t_k(y) + bias_c,      k = 1..p (``latent``),

one branch output block of ``p`` per output channel ``c`` sharing one trunk ("split
branch" multi-output). As in DeepXDE, hidden layers and the trunk's last layer are
activated, the branch's last layer is linear.

MultiONet (Zang & Koutsourelakis 2025, DGNO/DGenNO, sec. "MultiONet"): the same two nets,
but the inner product is taken at each of the last ``sum_layers`` layers and combined with
learned scalar weights,

    G(v)(y)_c = (1/K) sum_{l=1..K} w_l <b^l_c(v), t^l(y)> + bias_c,

where ``b^l``, ``t^l`` are the (activated) outputs of the ``l``-th of the last ``K`` layers
(the branch's last one linear, as above). With ``K = 1`` there are no ``w`` and the model
*is* DeepONet, parameter for parameter.

Grid use (so the one trainer fits them): ``forward`` takes ``(batch, C_in, *space)``; the
branch sees the inputs at the ``sensors`` grid (all points when it matches the data, else
sub-sampled), the trunk is evaluated at every grid point (Cartesian-product form) and the
output is ``(batch, C_out, *space)`` at *any* resolution. Coordinates lie on ``[0, 1]^d``:
``x_j = j / (n - 1)`` for ``grid="closed"`` (both ends stored, e.g. Darcy) or ``j / n``
for ``grid="periodic"`` (as :func:`sciops.spectral.grid`, e.g. ns2d); the trunk receives
them centred on ``[-1, 1]``.
:meth:`DeepONet.query` evaluates at arbitrary points, shared (Cartesian) or per sample
(unstacked).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sciops import spectral
from sciops.models import register

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU, "silu": nn.SiLU}
GRIDS = ("closed", "periodic")


def grid_coordinates(shape: Sequence[int], grid: str = "closed", *,
                     dtype: torch.dtype = torch.float32,
                     device: torch.device | str = "cpu") -> Tensor:
    """Coordinates of a grid on ``[0, 1]^d``: shape ``(*shape, d)``, axis order as ``shape``.

    ``"closed"``: ``x_j = j / (n - 1)`` (a single point sits at 0); ``"periodic"``: ``j / n``.
    """
    if grid not in GRIDS:
        raise ValueError(f"grid={grid!r} is not allowed; choose one of {list(GRIDS)}")
    shape = tuple(int(n) for n in shape)
    if grid == "periodic":
        axes = spectral.grid(shape, (1.0,) * len(shape), dtype, device)
    else:
        axes = tuple(torch.linspace(0.0, 1.0, n, dtype=dtype, device=device) for n in shape)
    return torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1)


def sample_sensors(x: Tensor, sensors: Sequence[int], grid: str) -> Tensor:
    """Values of ``x`` (batch, C, *space) at the ``sensors`` grid: (batch, C, *sensors).

    Closed grids: multilinear interpolation with matching end points, which is exact
    sub-sampling when ``(n - 1)`` is a multiple of ``(m - 1)``. Periodic grids: strided
    sub-sampling, so ``n`` must be a multiple of ``m``.
    """
    space = tuple(x.shape[2:])
    sensors = tuple(sensors)
    if len(space) != len(sensors):
        raise ValueError(f"input has {len(space)} spatial axes, sensors={list(sensors)} has "
                         f"{len(sensors)}")
    if space == sensors:
        return x
    if grid == "periodic":
        if any(n % m for n, m in zip(space, sensors)):
            raise ValueError(f"periodic grid {list(space)} is not a multiple of "
                             f"sensors={list(sensors)}")
        index = tuple(slice(None, None, n // m) for n, m in zip(space, sensors))
        return x[(slice(None), slice(None), *index)]
    mode = {1: "linear", 2: "bilinear", 3: "trilinear"}.get(len(space))
    if mode is None:
        raise ValueError(f"sensors: 1 to 3 spatial axes are supported, got {len(space)}")
    return F.interpolate(x, size=sensors, mode=mode, align_corners=True)


class MLP(nn.Module):
    """Fully connected net ``widths[0] -> ... -> widths[-1]`` returning every layer's output.

    Every layer is followed by the activation except the last when ``activate_last`` is
    False. Input ``(..., widths[0])``; :meth:`forward` returns a list of
    ``(..., widths[i])``, i = 1..len(widths)-1.
    """

    def __init__(self, widths: Sequence[int], activation: str, activate_last: bool):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation={activation!r} is not allowed; choose one of "
                             f"{sorted(ACTIVATIONS)}")
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.act = ACTIVATIONS[activation]()
        self.activate_last = activate_last

    def forward(self, x: Tensor) -> list[Tensor]:
        out = []
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if self.activate_last or i < len(self.layers) - 1:
                x = self.act(x)
            out.append(x)
        return out


def _widths(name: str, value: Sequence[int]) -> list[int]:
    widths = [int(w) for w in value]
    if any(w < 1 for w in widths):
        raise ValueError(f"{name}={list(value)}: widths must be >= 1")
    return widths


class _BranchTrunk(nn.Module):
    """Shared body of DeepONet (``sum_layers=1``) and MultiONet (see the module docstring).

    Parameters
    ----------
    in_channels, out_channels: channels of the input and output grids.
    sensors: sensor grid shape, one size per spatial axis (fixes ``d``).
    latent: ``p``, trunk width of each summed layer (branch: ``out_channels * p``).
    branch_layers, trunk_layers: widths of the hidden layers *before* the summed ones.
    sum_layers: ``K``, number of final layers whose inner products are combined.
    activation: 'relu', 'tanh', 'gelu' or 'silu' (both nets).
    grid: 'closed' or 'periodic' coordinates on [0, 1]^d.
    """

    def __init__(self, in_channels: int, out_channels: int, sensors: Sequence[int], *,
                 latent: int = 64, branch_layers: Sequence[int] = (128,),
                 trunk_layers: Sequence[int] = (128,), sum_layers: int = 1,
                 activation: str = "gelu", grid: str = "closed"):
        super().__init__()
        if isinstance(sensors, int) or not sensors:
            raise ValueError(f"sensors={sensors!r}: give the sensor grid shape as a list, one "
                             "size per spatial axis, e.g. [100] or [29, 29]")
        self.sensors = tuple(int(m) for m in sensors)
        if any(m < 1 for m in self.sensors):
            raise ValueError(f"sensors={list(sensors)}: sizes must be >= 1")
        if in_channels < 1 or out_channels < 1:
            raise ValueError(f"in_channels={in_channels}, out_channels={out_channels}: "
                             "must be >= 1")
        if latent < 1:
            raise ValueError(f"latent={latent} must be >= 1")
        if sum_layers < 1:
            raise ValueError(f"sum_layers={sum_layers} must be >= 1")
        if grid not in GRIDS:
            raise ValueError(f"grid={grid!r} is not allowed; choose one of {list(GRIDS)}")
        self.grid, self.out_channels, self.latent = grid, out_channels, latent
        self.sum_layers = sum_layers
        n_in = in_channels * math.prod(self.sensors)
        self.branch = MLP([n_in, *_widths("branch_layers", branch_layers),
                           *[out_channels * latent] * sum_layers], activation, False)
        self.trunk = MLP([len(self.sensors), *_widths("trunk_layers", trunk_layers),
                          *[latent] * sum_layers], activation, True)
        self.bias = nn.Parameter(torch.zeros(out_channels))
        if sum_layers > 1:
            self.layer_weights = nn.Parameter(torch.ones(sum_layers))

    def encode(self, x: Tensor) -> list[Tensor]:
        """Branch features of the summed layers: K x (batch, C_out, p)."""
        v = sample_sensors(x, self.sensors, self.grid).flatten(1)
        feats = self.branch(v)[-self.sum_layers:]
        return [f.unflatten(-1, (self.out_channels, self.latent)) for f in feats]

    def basis(self, y: Tensor) -> list[Tensor]:
        """Trunk features of the summed layers at points ``y`` (..., d): K x (..., p)."""
        # centred inputs [-1, 1]: a bubble-shaped Darcy solution fitted 3x faster than on [0, 1]
        return self.trunk(2.0 * y - 1.0)[-self.sum_layers:]

    def combine(self, b: list[Tensor], t: list[Tensor]) -> Tensor:
        """``(1/K) sum_l w_l <b_l, t_l> + bias``; ``t_l`` (Q, p) shared or (batch, Q, p)
        per sample. Returns (batch, C_out, Q)."""
        eq = "bcp,qp->bcq" if t[0].ndim == 2 else "bcp,bqp->bcq"
        if self.sum_layers == 1:
            out = torch.einsum(eq, b[0], t[0])
        else:
            out = sum(w * torch.einsum(eq, bl, tl)
                      for w, bl, tl in zip(self.layer_weights, b, t)) / self.sum_layers
        return out + self.bias[:, None]

    def query(self, x: Tensor, y: Tensor) -> Tensor:
        """Operator output for inputs ``x`` (batch, C_in, *space) at points ``y`` in
        ``[0, 1]^d``: ``(Q, d)`` shared by the batch (Cartesian product) or
        ``(batch, Q, d)`` one set per sample (unstacked). Returns (batch, C_out, Q)."""
        if y.shape[-1] != len(self.sensors) or y.ndim not in (2, 3):
            raise ValueError(f"y: expected (Q, {len(self.sensors)}) or (batch, Q, "
                             f"{len(self.sensors)}) points, got {tuple(y.shape)}")
        return self.combine(self.encode(x), self.basis(y.to(x.dtype)))

    def forward(self, x: Tensor) -> Tensor:
        """``(batch, C_in, *space) -> (batch, C_out, *space)`` on the same grid."""
        space = tuple(x.shape[2:])
        y = grid_coordinates(space, self.grid, dtype=x.dtype, device=x.device)
        return self.query(x, y.reshape(-1, len(space))).unflatten(-1, space)


@register("deeponet")
class DeepONet(_BranchTrunk):
    """DeepONet (Lu et al. 2021): branch net of the input at sensors times trunk net of the point.

    On grids; see the module docstring and :class:`_BranchTrunk`.

    Defaults: ``latent=64``, ``branch_layers=[128]``, ``trunk_layers=[128]``, 'gelu',
    'closed' grid; ``sensors`` is required.
    """

    kind = "grid"

    def __init__(self, in_channels: int, out_channels: int, sensors: Sequence[int], *,
                 latent: int = 64, branch_layers: Sequence[int] = (128,),
                 trunk_layers: Sequence[int] = (128,), activation: str = "gelu",
                 grid: str = "closed"):
        super().__init__(in_channels, out_channels, sensors, latent=latent,
                         branch_layers=branch_layers, trunk_layers=trunk_layers, sum_layers=1,
                         activation=activation, grid=grid)


@register("multionet")
class MultiONet(_BranchTrunk):
    """MultiONet (Zang & Koutsourelakis 2025): DeepONet summed over its last layers.

    ``sum_layers=1`` is DeepONet exactly.

    Defaults: ``latent=64``, no hidden layers before ``sum_layers=4`` summed layers,
    'gelu', 'closed' grid; ``sensors`` is required.
    """

    kind = "grid"

    def __init__(self, in_channels: int, out_channels: int, sensors: Sequence[int], *,
                 latent: int = 64, branch_layers: Sequence[int] = (),
                 trunk_layers: Sequence[int] = (), sum_layers: int = 4,
                 activation: str = "gelu", grid: str = "closed"):
        super().__init__(in_channels, out_channels, sensors, latent=latent,
                         branch_layers=branch_layers, trunk_layers=trunk_layers,
                         sum_layers=sum_layers, activation=activation, grid=grid)
