"""MgNO (He, Liu & Xu 2024, "MgNO: Efficient Parameterization of Linear Operators via
Multigrid", ICLR): neural-operator layers whose linear operators are V-cycles.

A layer maps ``u`` (``c_in`` channels) to ``sigma(V(u) + W u + b)`` (``c_out`` channels):
``W`` is pointwise, ``b`` a per-channel bias, and ``V`` one multigrid V-cycle for the
"equation" ``A v = f`` with right-hand side ``f = u``, every component a learned
convolution (3 points per axis):

* down, on levels ``l = 1..levels``: ``v_1 = S f_1`` then ``pre_smooth - 1`` more,
  on coarser levels ``pre_smooth`` smoothings ``v_l <- v_l + S_l (f_l - A_l v_l)``;
  restriction ``f_{l+1} = R_l (f_l - A_l v_l)`` and ``v_{l+1} = Pi_l v_l`` (stride 2);
* up: ``v_l <- v_l + P_l v_{l+1}`` (transposed convolution, stride 2), then
  ``post_smooth`` smoothings.

``S``: f-channels -> v-channels, ``A``: v -> f. There is no lifting: the first layer's
V-cycle takes the input channels as ``f`` directly; a pointwise linear read-out maps the
last layer's channels to the outputs (the paper's code has the same final 1x1 map). The
boundary type picks the padding of every convolution: ``"zeros"`` for Dirichlet data
(e.g. Darcy), ``"circular"`` for periodic data (e.g. ns2d). Grids of any size work (odd
ones included: coarse sizes are ``ceil(n / 2)`` and prolongation returns exactly ``n``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from sciops.models import register
from sciops.models.deeponet import ACTIVATIONS

PADDINGS = ("zeros", "circular")


def _conv(dim: int) -> type[nn.Module]:
    return {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}[dim]


def _conv_t(dim: int) -> type[nn.Module]:
    return {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}[dim]


class Prolongation(nn.Module):
    """Learned stride-2 prolongation ``(B, C, *coarse) -> (B, C, *fine)``, the transpose of
    a 3-point stride-2 restriction with the same boundary type."""

    def __init__(self, dim: int, channels: int, padding: str):
        super().__init__()
        self.circular = padding == "circular"
        # PyTorch's transposed convolutions only pad with zeros: wrap by hand when periodic.
        self.conv = _conv_t(dim)(channels, channels, 3, stride=2, padding=0 if self.circular
                                 else 1, bias=False)

    def forward(self, v: Tensor, fine: Sequence[int]) -> Tensor:
        if not self.circular:
            return self.conv(v, output_size=list(fine))
        d = len(fine)
        out = self.conv(F.pad(v, [1] * (2 * d), mode="circular"))
        # coarse point j sits at fine 2j; after one wrapped cell of padding it lands at 2j+3
        return out[(slice(None), slice(None), *(slice(3, 3 + n) for n in fine))]


class Smoothing(nn.Module):
    """One smoothing step ``v <- v + S (f - A v)``; S: f -> v channels, A: v -> f."""

    def __init__(self, S: nn.Module, A: nn.Module):
        super().__init__()
        self.S, self.A = S, A

    def forward(self, v: Tensor, f: Tensor) -> Tensor:
        return v + self.S(f - self.A(v))


class VCycle(nn.Module):
    """One multigrid V-cycle as a linear operator ``(B, c_f, *space) -> (B, c_v, *space)``."""

    def __init__(self, dim: int, c_f: int, c_v: int, levels: int, pre_smooth: int,
                 post_smooth: int, padding: str):
        super().__init__()
        conv = _conv(dim)

        def S() -> nn.Module:
            return conv(c_f, c_v, 3, padding=1, padding_mode=padding, bias=False)

        def A() -> nn.Module:
            return conv(c_v, c_f, 3, padding=1, padding_mode=padding, bias=False)

        def stride2(c: int) -> nn.Module:
            return conv(c, c, 3, stride=2, padding=1, padding_mode=padding, bias=False)

        def steps(n: int) -> nn.ModuleList:
            return nn.ModuleList(Smoothing(S(), A()) for _ in range(n))

        self.start = S()  # v_1 = S f: the first pre-smoothing from v = 0
        self.pre = nn.ModuleList(steps(pre_smooth - 1 if level == 0 else pre_smooth)
                                 for level in range(levels))
        # the coarsest level has no post-smoothing: its pre-smoothing already is the last visit
        self.post = nn.ModuleList(steps(post_smooth) for _ in range(levels - 1))
        self.residual = nn.ModuleList(A() for _ in range(levels - 1))
        self.restrict_f = nn.ModuleList(stride2(c_f) for _ in range(levels - 1))
        self.restrict_v = nn.ModuleList(stride2(c_v) for _ in range(levels - 1))
        self.prolong = nn.ModuleList(Prolongation(dim, c_v, padding) for _ in range(levels - 1))

    def forward(self, f: Tensor) -> Tensor:
        v = self.start(f)
        for step in self.pre[0]:
            v = step(v, f)
        stack = []
        for level in range(len(self.residual)):
            stack.append((v, f))
            f = self.restrict_f[level](f - self.residual[level](v))
            v = self.restrict_v[level](v)
            for step in self.pre[level + 1]:
                v = step(v, f)
        for level in reversed(range(len(self.residual))):
            v_fine, f = stack.pop()
            v = v_fine + self.prolong[level](v, v_fine.shape[2:])
            for step in self.post[level]:
                v = step(v, f)
        return v


@register("mgno")
class MgNO(nn.Module):
    """Multigrid neural operator (He, Liu & Xu 2024): layers whose operators are V-cycles.

    See the module docstring.

    Parameters
    ----------
    in_channels, out_channels: channels of the input and output grids.
    dim: spatial axes (1, 2 or 3).
    hidden_channels: channels of every layer's output ``v`` (the paper: 24-32).
    n_layers: nonlinear operator layers (the paper: 5).
    levels: grids of each V-cycle, the finest included (the paper: 5); inputs need
        ``>= 2^(levels - 1)`` points per axis to keep every level distinct.
    pre_smooth, post_smooth: smoothings per level on the way down / up (paper: 1, 0).
    padding: 'zeros' (Dirichlet) or 'circular' (periodic).
    activation: 'gelu' (paper), 'relu', 'tanh' or 'silu'.
    """

    kind = "grid"

    def __init__(self, in_channels: int, out_channels: int, *, dim: int = 2,
                 hidden_channels: int = 24, n_layers: int = 5, levels: int = 5,
                 pre_smooth: int = 1, post_smooth: int = 0, padding: str = "zeros",
                 activation: str = "gelu"):
        super().__init__()
        if dim not in (1, 2, 3):
            raise ValueError(f"dim={dim} is not allowed; choose 1, 2 or 3")
        for name, value in (("in_channels", in_channels), ("out_channels", out_channels),
                            ("hidden_channels", hidden_channels), ("n_layers", n_layers),
                            ("levels", levels), ("pre_smooth", pre_smooth)):
            if value < 1:
                raise ValueError(f"{name}={value} must be >= 1")
        if post_smooth < 0:
            raise ValueError(f"post_smooth={post_smooth} must be >= 0")
        if padding not in PADDINGS:
            raise ValueError(f"padding={padding!r} is not allowed; choose one of {list(PADDINGS)}")
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation={activation!r} is not allowed; choose one of "
                             f"{sorted(ACTIVATIONS)}")
        self.dim, self.levels = dim, levels
        conv = _conv(dim)
        chans = [in_channels] + [hidden_channels] * n_layers
        self.cycles = nn.ModuleList(
            VCycle(dim, c_in, c_out, levels, pre_smooth, post_smooth, padding)
            for c_in, c_out in zip(chans[:-1], chans[1:]))
        self.skips = nn.ModuleList(conv(c_in, c_out, 1) for c_in, c_out in zip(chans[:-1],
                                                                                chans[1:]))
        self.act = ACTIVATIONS[activation]()
        self.readout = conv(hidden_channels, out_channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        """``(batch, C_in, *space) -> (batch, C_out, *space)``."""
        if x.ndim != self.dim + 2:
            raise ValueError(f"mgno(dim={self.dim}): expected (batch, C, {self.dim} spatial "
                             f"axes), got {tuple(x.shape)}")
        for cycle, skip in zip(self.cycles, self.skips):
            x = self.act(cycle(x) + skip(x))
        return self.readout(x)
