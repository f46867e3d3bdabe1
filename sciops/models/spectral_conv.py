"""The Fourier layer of FNO-type models: :class:`SpectralConv`, with tensorly-torch weights.

The transforms it runs are the truncated DFTs of :mod:`sciops.spectral`
(:func:`~sciops.spectral.truncated_rfftn` / :func:`~sciops.spectral.truncated_irfftn`, mode
block layout described there); this module adds the learnable, optionally factorized
(CP, Tucker, TT) spectral weights and how they meet the data.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from sciops import spectral

__all__ = ["SpectralConv"]

_KINDS = ("dense", "cp", "tucker", "tt")
_LETTERS = "abcdefgh"  # mode axes of weights
_RANKS = "pqrstuvwxyz"  # rank axes of their factors


def _kind(w) -> str:
    """'dense', 'cp', 'tucker' or 'tt' for a tltorch (complex) factorized tensor."""
    return type(w).__name__.lower().removeprefix("complex").removesuffix("tensor")


def _modes_first(w, keep: tuple[slice, ...], channels: str) -> Tensor:
    """Kept part of a tltorch (complex) weight, reconstructed with the mode axes first.

    ``w`` has axes ``(channels..., m_1..m_d)`` (neuraloperator's layout); ``keep`` slices
    each axis; ``channels`` orders the channel axes of the result: ``"io"``, or ``"c"`` if
    separable. Returns ``(m_1..m_d, *channels)``, contiguous, from one einsum over the
    sliced factors, so only the kept entries are ever formed.
    """
    kind = _kind(w)
    axes = ("io" if len(channels) == 2 else "c") + _LETTERS[:len(keep) - len(channels)]
    eq_out = axes[len(channels):] + channels
    if kind == "dense":
        return torch.einsum(f"{axes}->{eq_out}", w.tensor[keep]).contiguous()
    if kind == "cp":
        factors = [f[k] for f, k in zip(w.factors, keep)]
        eq = "Z," + ",".join(a + "Z" for a in axes)
        return torch.einsum(f"{eq}->{eq_out}", w.weights, *factors).contiguous()
    if kind == "tucker":
        ranks = _RANKS[:len(axes)]
        factors = [f[k] for f, k in zip(w.factors, keep)]
        eq = ranks + "," + ",".join(a + r for a, r in zip(axes, ranks))
        return torch.einsum(f"{eq}->{eq_out}", w.core, *factors).contiguous()
    if kind == "tt":
        ranks = _RANKS[:len(axes) + 1]
        cores = [f[:, k] for f, k in zip(w.factors, keep)]
        # The boundary TT ranks are 1, so summing over them only drops the axes.
        eq = ",".join(ranks[i] + a + ranks[i + 1] for i, a in enumerate(axes))
        return torch.einsum(f"{eq}->{eq_out}", *cores).contiguous()
    raise ValueError(f"factorization: unsupported weight type {type(w).__name__}")


def _mix(z: Tensor, w, keep: tuple[slice, ...], separable: bool) -> Tensor:
    """Mode block ``(M, b, in)`` times the kept weight: ``(M, b, out)``, one product per mode.

    Tucker weights are contracted through their core (``z U_in``, then per mode the
    ``(r_in, r_out)`` core slice, then ``U_out``), which measured ~1.5x faster than forming
    the ``(M, in, out)`` weight; the other kinds are reconstructed once per call, which
    measured as fast as or faster than neuraloperator's factor-by-factor contraction.
    """
    # Weights follow the data's precision (Module.double() leaves complex parameters alone).
    n_modes, dtype = z.shape[0], z.dtype
    if separable:
        return z * _modes_first(w, keep, "c").to(dtype).reshape(n_modes, 1, -1)
    if _kind(w) != "tucker":
        weight = _modes_first(w, keep, "io").to(dtype).reshape(n_modes, z.shape[-1], -1)
        return torch.bmm(z, weight)
    u_in, u_out, *u_modes = (f[k].to(dtype) for f, k in zip(w.factors, keep))
    d = len(u_modes)
    ranks, axes = _RANKS[:d], _LETTERS[:d]
    eq = f"PQ{ranks}," + ",".join(a + r for a, r in zip(axes, ranks)) + f"->{axes}PQ"
    core = torch.einsum(eq, w.core.to(dtype), *u_modes).reshape(n_modes, *w.core.shape[:2])
    return torch.bmm(z @ u_in, core) @ u_out.T


def _scaling(factor: float | Sequence[float] | None, d: int) -> tuple[float, ...] | None:
    if factor is None:
        return None
    out = (float(factor),) * d if isinstance(factor, (int, float)) else tuple(map(float, factor))
    if len(out) != d or any(f <= 0 for f in out):
        raise ValueError(f"resolution_scaling_factor: expected a positive number or {d} of them, "
                         f"got {factor}")
    return out


class SpectralConv(nn.Module):
    """Fourier layer ``x -> irfftn(W . rfftn(x)[kept modes]) + b``, drop-in for neuraloperator.

    Shapes: ``(batch, in_channels, n_1..n_d) -> (batch, out_channels, *output_shape)``, d = 1..3
    (any d works). The constructor takes the arguments neuraloperator's ``FNOBlocks`` passes
    to its ``conv_module`` with the same meaning and defaults, so
    ``neuralop.models.FNO(..., conv_module=SpectralConv)`` works, and the parameters
    (``weight``: a tltorch ``FactorizedTensor`` of shape ``(in, out, *max_n_modes)``, or
    ``(channels, *max_n_modes)`` if separable; ``bias``: ``(out, 1, ..)``) have the same
    names, shapes and index -> frequency map as neuraloperator's ``SpectralConv``: a state
    dict of one loads into the other and computes the same function.

    Mode ordering: along the last axis weight index ``i`` is frequency ``i``; along the
    others, after keeping ``m`` of ``max_m`` entries (slice ``[(max_m - m)//2 :][:m]``, as
    neuraloperator does), index ``i`` is frequency ``i - m//2``. neuraloperator obtains that
    order with fftshift; here the DFT emits it directly (see
    :func:`sciops.spectral.truncated_rfftn`).

    ``n_modes``: modes per axis; as in neuraloperator the last axis keeps ``n//2 + 1`` rfft
    bins. ``factorization``: None (dense), 'cp', 'tucker' or 'tt' (any case), with ``rank``,
    ``fixed_rank_modes`` and ``decomposition_kwargs`` passed to tltorch. How the factors
    meet the data is chosen per kind by measurement (see ``_mix``), so ``implementation`` is
    accepted for compatibility but both values run the same code. Only real data at full
    precision is supported (``complex_data=False``, ``fno_block_precision='full'``).

    Resampling (``output_shape`` or ``resolution_scaling_factor``) keeps the modes both grids
    hold and places negative frequencies correctly; ``transform`` (used by FNO skips)
    resamples with :func:`sciops.spectral.fourier_resample` where neuraloperator interpolates
    (bicubic in 2D).
    """

    def __init__(self, in_channels: int, out_channels: int, n_modes: int | Sequence[int],
                 complex_data: bool = False, max_n_modes: int | Sequence[int] | None = None,
                 bias: bool = True, separable: bool = False,
                 resolution_scaling_factor: float | Sequence[float] | None = None,
                 fno_block_precision: str = "full", rank: float = 0.5,
                 factorization: str | None = None, implementation: str = "reconstructed",
                 fixed_rank_modes: bool = False, decomposition_kwargs: dict | None = None,
                 init_std: float | str = "auto", fft_norm: str = "forward",
                 device: torch.device | str | None = None):
        super().__init__()
        if complex_data:
            raise ValueError("complex_data: only real-valued data is supported, got True")
        if fno_block_precision != "full":
            raise ValueError(f"fno_block_precision: only 'full' is supported, "
                             f"got {fno_block_precision!r}")
        if implementation not in ("reconstructed", "factorized"):
            raise ValueError(f"implementation: expected 'reconstructed' or 'factorized', "
                             f"got {implementation!r}")
        if factorization is not None and factorization.lower() not in _KINDS:
            raise ValueError(f"factorization: expected None, 'cp', 'tucker' or 'tt', "
                             f"got {factorization!r}")
        if separable and in_channels != out_channels:
            raise ValueError(f"separable: needs in_channels == out_channels, got {in_channels} "
                             f"and {out_channels}")
        spectral.check_norm(fft_norm)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.complex_data = False
        self.n_modes = n_modes
        self.order = len(self.n_modes)
        self.max_n_modes = list(self.n_modes) if max_n_modes is None else (
            [max_n_modes] if isinstance(max_n_modes, int) else list(max_n_modes))
        self.separable, self.fft_norm = separable, fft_norm
        self.rank, self.factorization, self.implementation = rank, factorization, implementation
        self.fno_block_precision = fno_block_precision
        self.resolution_scaling_factor = _scaling(resolution_scaling_factor, self.order)
        if init_std == "auto":
            init_std = (2 / (in_channels + out_channels)) ** 0.5
        # tltorch sets tensorly's global backend on import: import it only when building one.
        from tltorch.factorized_tensors.core import FactorizedTensor

        channels = (in_channels,) if separable else (in_channels, out_channels)
        self.weight = FactorizedTensor.new(
            (*channels, *self.max_n_modes), rank=rank, factorization=factorization or "Dense",
            fixed_rank_modes=[0] if fixed_rank_modes is True else (fixed_rank_modes or None),
            **(decomposition_kwargs or {}), dtype=torch.cfloat, device=device)
        self.weight.normal_(0, init_std)
        self.bias = None if not bias else nn.Parameter(
            init_std * torch.randn(out_channels, *(1,) * self.order, device=device))

    @property
    def n_modes(self) -> list[int]:
        """Kept modes per axis, the last one already halved to rfft bins (``n//2 + 1``)."""
        return self._n_modes

    @n_modes.setter
    def n_modes(self, n_modes: int | Sequence[int]) -> None:
        modes = [n_modes] if isinstance(n_modes, int) else list(n_modes)
        modes[-1] = modes[-1] // 2 + 1
        self._n_modes = modes

    @classmethod
    def from_neuralop(cls, conv: nn.Module) -> SpectralConv:
        """A copy of a neuraloperator ``SpectralConv`` (same weights, same function)."""
        # neuralop stores n_modes with the last axis halved; 2 (m - 1) halves back to m.
        n_modes = [*conv.n_modes[:-1], 2 * (conv.n_modes[-1] - 1)]
        new = cls(conv.in_channels, conv.out_channels, n_modes, max_n_modes=conv.max_n_modes,
                  bias=conv.bias is not None, separable=conv.separable,
                  resolution_scaling_factor=conv.resolution_scaling_factor,
                  fno_block_precision=conv.fno_block_precision, rank=conv.rank,
                  factorization=conv.factorization, implementation=conv.implementation,
                  fft_norm=conv.fft_norm)
        new.weight = copy.deepcopy(conv.weight)
        if conv.bias is not None:
            new.bias = nn.Parameter(conv.bias.detach().clone())
        return new.to(next(conv.parameters()).device)

    def output_shape(self, in_shape: Sequence[int], output_shape: Sequence[int] | None = None
                     ) -> tuple[int, ...]:
        """Spatial output shape: ``output_shape`` if given, else the input scaled."""
        if output_shape is not None:
            return tuple(output_shape)
        if self.resolution_scaling_factor is None:
            return tuple(in_shape)
        return tuple(round(s * r) for s, r in zip(in_shape, self.resolution_scaling_factor))

    def transform(self, x: Tensor, output_shape: Sequence[int] | None = None) -> Tensor:
        """Bring a skip branch ``(b, c, *space)`` onto this layer's output grid."""
        shape = self.output_shape(x.shape[2:], output_shape)
        return x if shape == tuple(x.shape[2:]) else spectral.fourier_resample(x, shape)

    def _kept(self, in_shape: Sequence[int], out_shape: Sequence[int]
              ) -> tuple[list[int], tuple[slice, ...]]:
        """Modes kept on this call and the matching weight slices (channels, then modes)."""
        caps = [min(a, b) for a, b in zip(in_shape, out_shape)]
        caps[-1] = caps[-1] // 2 + 1
        modes = [min(m, c) for m, c in zip(self.n_modes, caps)]
        keep = [slice((mx - m) // 2, (mx - m) // 2 + m)
                for m, mx in zip(modes[:-1], self.max_n_modes)]
        keep.append(slice(0, modes[-1]))
        channels = (slice(None),) * (1 if self.separable else 2)
        return modes, (*channels, *keep)

    def forward(self, x: Tensor, output_shape: Sequence[int] | None = None, *,
                channels_last: bool = False, add: Tensor | None = None) -> Tensor:
        """``(b, in, *space) -> (b, out, *out_space)``; see the class docstring.

        With ``channels_last`` the layout is ``(b, *space, in) -> (b, *out_space, out)``,
        that of models whose pointwise layers are single matmuls over ``(b * points,
        channels)`` (see :class:`sciops.models.fno.FNO`); the arithmetic is the same.
        ``add`` (e.g. a skip branch, contiguous, shaped like the output) is added to the
        result inside the last matmul of the inverse transform.
        """
        c_axis = -1 if channels_last else 1
        if x.ndim != self.order + 2 or x.shape[c_axis] != self.in_channels:
            raise ValueError(f"x: expected {self.order + 2} axes with {self.in_channels} channels "
                             f"on axis {c_axis}, got shape {tuple(x.shape)}")
        in_shape = tuple(x.shape[1:-1] if channels_last else x.shape[2:])
        out_shape = self.output_shape(in_shape, output_shape)
        modes, keep = self._kept(in_shape, out_shape)
        n_modes, trailing = math.prod(modes), int(channels_last)
        # Either layout gives the mode block (*modes, b, in).
        z = spectral.truncated_rfftn(x, modes, self.fft_norm, trailing=trailing)
        z = z.reshape(n_modes, x.shape[0], -1)
        out = _mix(z, self.weight, keep, self.separable)
        if self.bias is not None:
            # A constant output is the zero-frequency coefficient alone: add it there, on
            # the small mode block, instead of on the full output field.
            dc = torch.zeros(modes, dtype=x.dtype, device=x.device)
            dc[tuple(m // 2 for m in modes[:-1]) + (0,)] = 1.0 / math.prod(
                spectral.dft_scale(n, self.fft_norm, True) for n in out_shape)
            out = out + dc.reshape(-1, 1, 1) * self.bias.reshape(-1)
        return spectral.truncated_irfftn(out.view(*modes, *out.shape[1:]), out_shape,
                                         self.fft_norm, trailing=trailing, add=add)
