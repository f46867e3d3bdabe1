"""FNO and TFNO (Li et al. 2021; Kossaifi et al. 2023), with neuraloperator's parameters.

Why a module of our own instead of ``neuralop.models.FNO(conv_module=SpectralConv)`` (which
also works): measured on CPU, neuraloperator's FNO spends about half of a training step in
its kernel-size-1 ``Conv1d`` layers (lifting, projection, channel MLPs, linear skips) run by
mkldnn over ``(batch, channels, points)``, and neuraloperator does not let those be swapped.
Here the hidden state is channels-last, ``(batch, *space, channels)``: every pointwise layer
is one ``addmm`` of ``(batch * points, c_in) @ (c_in, c_out)``, the orientation MKL runs
fastest (about 2x the ``(c_out, c_in) @ (c_in, points)`` one at these widths), and the
spectral convolution works in that layout directly
(:class:`sciops.models.spectral_conv.SpectralConv` with ``channels_last=True``). The linear
skip is added inside the convolution's last matmul and the channel-MLP skip and bias inside
the MLP's last one. Also, neuraloperator's
``state_dict`` holds a ``_metadata`` entry with Python callables, which
``torch.load(weights_only=True)`` rejects; ours holds tensors only.

Parameters have neuraloperator's names, shapes and initialisation, and the forward is the
same function: :meth:`FNO.from_neuralop` copies one of its FNO/TFNO models. Supported are
neuraloperator's defaults plus the keyword options in :class:`FNO`'s signature; its other
options (norms, pre-activation, complex data, resolution scaling, dropout, mixed precision)
are not, and build such a model with ``neuralop.models.FNO(..., conv_module=SpectralConv)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sciops import spectral
from sciops.models import register
from sciops.models.spectral_conv import SpectralConv

__all__ = ["FNO", "TFNO", "Pointwise", "ChannelMLP"]

_SKIPS = ("linear", "soft-gating", "identity", None)


def _linear(h: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """``h @ weight[:, :, 0].T + bias`` over the last axis of ``h``.

    Not ``F.linear``: its backward forms the weight gradient as ``grad.T @ h``, which MKL
    runs ~5x slower than ``h.T @ grad`` when ``h`` has few channels (the lifting layer);
    ``addmm`` with a contiguous ``(c_in, c_out)`` operand gets the latter.
    """
    flat, w = h.reshape(-1, h.shape[-1]), weight[:, :, 0].T.contiguous()
    out = flat @ w if bias is None else torch.addmm(bias, flat, w)
    return out.view(*h.shape[:-1], -1)


class Pointwise(nn.Module):
    """1x1 linear layer on channels-last data: ``(*rest, c_in) -> (*rest, c_out)``.

    ``weight`` is ``(c_out, c_in, 1)`` and ``bias`` ``(c_out,)``, shaped and initialised like
    ``nn.Conv1d(c_in, c_out, 1)`` (neuraloperator's pointwise layers), run as one matmul.
    """

    def __init__(self, in_channels: int, out_channels: int, bias: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, 1))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        # Conv1d's default initialisation.
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1 / math.sqrt(in_channels)
            nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, h: Tensor) -> Tensor:
        return _linear(h, self.weight, self.bias)


class ChannelMLP(nn.Module):
    """Pointwise MLP with GELU between its layers (neuraloperator's ``ChannelMLP``)."""

    def __init__(self, in_channels: int, out_channels: int, hidden_channels: int,
                 n_layers: int = 2):
        super().__init__()
        widths = [in_channels] + [hidden_channels] * (n_layers - 1) + [out_channels]
        self.fcs = nn.ModuleList(Pointwise(a, b) for a, b in zip(widths[:-1], widths[1:]))

    def forward(self, h: Tensor) -> Tensor:
        for i, fc in enumerate(self.fcs):
            h = fc(h)
            if i < len(self.fcs) - 1:
                h = F.gelu(h)
        return h


# Skips take an optional ``bias`` added in the same pass (the MLP's last bias, see FNOBlocks).

class LinearSkip(nn.Module):
    """Bias-free 1x1 skip (neuraloperator's ``Flattened1dConv``, hence the ``conv`` name)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = Pointwise(channels, channels, bias=False)

    def forward(self, h: Tensor, bias: Tensor | None = None) -> Tensor:
        return _linear(h, self.conv.weight, bias)


class SoftGating(nn.Module):
    """Per-channel scaling ``h * w``, ``weight`` shaped ``(1, c, 1, ..)`` as in neuraloperator."""

    def __init__(self, channels: int, n_dim: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(1, channels, *(1,) * n_dim))

    def forward(self, h: Tensor, bias: Tensor | None = None) -> Tensor:
        w = self.weight.reshape(-1)
        return h * w if bias is None else torch.addcmul(bias, h, w)


class IdentitySkip(nn.Module):
    """The identity skip (no parameters, like neuraloperator's ``nn.Identity``)."""

    def forward(self, h: Tensor, bias: Tensor | None = None) -> Tensor:
        return h if bias is None else h + bias


def _skip(kind: str | None, channels: int, n_dim: int, field: str) -> nn.Module | None:
    if kind not in _SKIPS:
        raise ValueError(f"{field}: expected one of {_SKIPS}, got {kind!r}")
    if kind is None:
        return None
    if kind == "linear":
        return LinearSkip(channels)
    return SoftGating(channels, n_dim) if kind == "soft-gating" else IdentitySkip()


class FNOBlocks(nn.Module):
    """The Fourier layers of :class:`FNO` (attribute names follow neuraloperator's)."""

    def __init__(self, channels: int, n_modes: Sequence[int], n_layers: int, *,
                 use_channel_mlp: bool, channel_mlp_expansion: float, channel_mlp_skip: str | None,
                 fno_skip: str | None, max_n_modes: Sequence[int] | None,
                 factorization: str | None, rank: float, fixed_rank_modes: bool,
                 implementation: str, decomposition_kwargs: dict | None, separable: bool):
        super().__init__()
        d = len(n_modes)
        self.n_layers = n_layers
        self.convs = nn.ModuleList(
            SpectralConv(channels, channels, n_modes, max_n_modes=max_n_modes, rank=rank,
                         factorization=factorization, implementation=implementation,
                         fixed_rank_modes=fixed_rank_modes, separable=separable,
                         decomposition_kwargs=decomposition_kwargs)
            for _ in range(n_layers))
        skips = [_skip(fno_skip, channels, d, "fno_skip") for _ in range(n_layers)]
        self.fno_skips = nn.ModuleList(skips) if fno_skip is not None else None
        self.channel_mlp = self.channel_mlp_skips = None
        if use_channel_mlp:
            hidden = round(channels * channel_mlp_expansion)
            self.channel_mlp = nn.ModuleList(
                ChannelMLP(channels, channels, hidden) for _ in range(n_layers))
            skips = [_skip(channel_mlp_skip, channels, d, "channel_mlp_skip")
                     for _ in range(n_layers)]
            self.channel_mlp_skips = nn.ModuleList(skips) if channel_mlp_skip is not None else None

    def forward(self, h: Tensor, index: int) -> Tensor:
        """Layer ``index`` on channels-last ``h``: ``(b, *space, c) -> (b, *space, c)``.

        ``gelu(conv(h) + skip(h))``, then ``W2 gelu(W1 . + b1) + b2 + mlp_skip(h)``, each
        followed by GELU except in the last layer. ``skip(h)`` is added inside the conv's
        last matmul and ``mlp_skip(h) + b2`` (one pass) inside ``W2``'s: no separate
        additions and no intermediate sums (measured ~10% faster per fused matmul).
        """
        inner = index < self.n_layers - 1
        skip = self.fno_skips[index](h) if self.fno_skips is not None else None
        y = self.convs[index](h, channels_last=True, add=skip)
        if inner:
            y = F.gelu(y)
        if self.channel_mlp is not None:
            first, last = self.channel_mlp[index].fcs
            hidden = F.gelu(first(y))
            if self.channel_mlp_skips is None:
                y = last(hidden)
            else:
                shift = self.channel_mlp_skips[index](h, last.bias)
                y = torch.addmm(shift.view(-1, shift.shape[-1]), hidden.view(-1, hidden.shape[-1]),
                                last.weight[:, :, 0].T.contiguous()).view(shift.shape)
        # neuraloperator applies this second GELU with or without a channel MLP.
        return F.gelu(y) if inner else y


def _positive_int(value: int, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{field}: expected a positive integer, got {value!r}")
    return value


@register("fno")
class FNO(nn.Module):
    """Fourier neural operator (Li et al. 2021): spectral convolutions on 1-3D grids.

    ``(b, in_channels, *space) -> (b, out_channels, *space)``.

    Keyword names and defaults are neuraloperator's ``FNO``'s. ``n_modes``: modes per
    spatial axis (1 to 3 axes; the last keeps ``n//2 + 1`` rfft bins); lifting and projection
    are 2-layer pointwise MLPs of width ``ratio * hidden_channels``; ``positional_embedding``
    'grid' appends the coordinates ``j / n`` in ``[0, 1)`` as channels; ``domain_padding``
    pads each spatial axis with zeros by that fraction on both sides (non-periodic data);
    ``factorization`` (None, 'cp', 'tucker', 'tt') and ``rank`` factorize the spectral
    weights. See the module docstring for what is not supported.
    """

    kind = "grid"

    def __init__(self, n_modes: Sequence[int], in_channels: int, out_channels: int,
                 hidden_channels: int, n_layers: int = 4, lifting_channel_ratio: float = 2,
                 projection_channel_ratio: float = 2, positional_embedding: str | None = "grid",
                 use_channel_mlp: bool = True, channel_mlp_expansion: float = 0.5,
                 channel_mlp_skip: str | None = "soft-gating", fno_skip: str | None = "linear",
                 domain_padding: float | Sequence[float] | None = None,
                 max_n_modes: Sequence[int] | None = None, factorization: str | None = None,
                 rank: float = 1.0, fixed_rank_modes: bool = False,
                 implementation: str = "factorized", decomposition_kwargs: dict | None = None,
                 separable: bool = False):
        super().__init__()
        self.n_modes = [n_modes] if isinstance(n_modes, int) else list(n_modes)
        if not 1 <= len(self.n_modes) <= 3:
            raise ValueError(f"n_modes: expected 1 to 3 spatial axes, got {len(self.n_modes)}")
        for i, m in enumerate(self.n_modes):
            _positive_int(m, f"n_modes[{i}]")
        self.n_dim = len(self.n_modes)
        self.in_channels = _positive_int(in_channels, "in_channels")
        self.out_channels = _positive_int(out_channels, "out_channels")
        self.hidden_channels = _positive_int(hidden_channels, "hidden_channels")
        self.n_layers = _positive_int(n_layers, "n_layers")
        if positional_embedding not in ("grid", None):
            raise ValueError(f"positional_embedding: expected 'grid' or None, "
                             f"got {positional_embedding!r}")
        self.positional_embedding = positional_embedding
        self.domain_padding = self._padding_fractions(domain_padding)

        lifting = int(lifting_channel_ratio * hidden_channels)
        lifting_in = in_channels + (self.n_dim if positional_embedding else 0)
        self.lifting = ChannelMLP(lifting_in, hidden_channels, lifting, n_layers=2) if lifting \
            else ChannelMLP(lifting_in, hidden_channels, hidden_channels, n_layers=1)
        self.fno_blocks = FNOBlocks(
            hidden_channels, self.n_modes, n_layers, use_channel_mlp=use_channel_mlp,
            channel_mlp_expansion=channel_mlp_expansion, channel_mlp_skip=channel_mlp_skip,
            fno_skip=fno_skip, max_n_modes=max_n_modes, factorization=factorization, rank=rank,
            fixed_rank_modes=fixed_rank_modes, implementation=implementation,
            decomposition_kwargs=decomposition_kwargs, separable=separable)
        self.projection = ChannelMLP(hidden_channels, out_channels,
                                     int(projection_channel_ratio * hidden_channels))

    def _padding_fractions(self, padding: float | Sequence[float] | None) -> list[float] | None:
        if padding is None:
            return None
        scalar = isinstance(padding, (int, float))
        fractions = [float(padding)] * self.n_dim if scalar else list(padding)
        if len(fractions) != self.n_dim or any(not 0 <= p < 1 for p in fractions):
            raise ValueError(f"domain_padding: expected a fraction in [0, 1) or {self.n_dim} "
                             f"of them, got {padding!r}")
        return fractions if any(fractions) else None

    def _grid(self, x: Tensor) -> Tensor:
        """Coordinates ``j / n_i`` as channels-last ``(b, *space, d)``."""
        space = tuple(x.shape[2:])
        axes = spectral.grid(space, (1.0,) * len(space), x.dtype, x.device)
        return torch.stack(torch.meshgrid(*axes, indexing="ij"), -1).expand(x.shape[0], *space, -1)

    def forward(self, x: Tensor) -> Tensor:
        """``(b, in_channels, *space) -> (b, out_channels, *space)``."""
        if x.ndim != self.n_dim + 2 or x.shape[1] != self.in_channels:
            raise ValueError(f"x: expected (batch, {self.in_channels}, {self.n_dim} spatial axes), "
                             f"got {tuple(x.shape)}")
        h = x.movedim(1, -1)
        if self.positional_embedding == "grid":
            h = torch.cat((h, self._grid(x)), -1)
        h = self.lifting(h)
        if self.domain_padding is not None:
            pads = [round(p * n) for p, n in zip(self.domain_padding, x.shape[2:])]
            h = F.pad(h, [0, 0] + [q for p in reversed(pads) for q in (p, p)])
        for i in range(self.n_layers):
            h = self.fno_blocks(h, i)
        if self.domain_padding is not None:
            h = h[(slice(None), *(slice(p, h.shape[1 + i] - p) for i, p in enumerate(pads)))]
        return self.projection(h).movedim(-1, 1).contiguous()

    @classmethod
    def from_neuralop(cls, model: nn.Module) -> FNO:
        """This module with the weights of a ``neuralop.models.FNO`` (or ``TFNO``): same function.

        Raises ``ValueError`` if ``model`` uses an option this module does not implement.
        """
        blocks = model.fno_blocks
        unsupported = {
            "norm": blocks.norm is not None, "preactivation": blocks.preactivation,
            "complex_data": model.complex_data, "stabilizer": blocks.stabilizer is not None,
            "resolution_scaling_factor": model.resolution_scaling_factor is not None,
            "fno_block_precision": model.fno_block_precision != "full",
            "non_linearity": blocks.non_linearity is not F.gelu,
            "channel_mlp_dropout": bool(blocks.channel_mlp_dropout),
        }
        bad = [k for k, v in unsupported.items() if v]
        if bad:
            raise ValueError(f"from_neuralop: options not implemented here: {', '.join(bad)}")
        padding = model.domain_padding.domain_padding if model.domain_padding is not None else None
        new = cls(
            model.n_modes, model.in_channels, model.out_channels, model.hidden_channels,
            model.n_layers, lifting_channel_ratio=model.lifting_channel_ratio,
            projection_channel_ratio=model.projection_channel_ratio,
            positional_embedding="grid" if model.positional_embedding is not None else None,
            use_channel_mlp=blocks.use_channel_mlp,
            channel_mlp_expansion=blocks.channel_mlp_expansion,
            channel_mlp_skip=blocks.channel_mlp_skip, fno_skip=blocks.fno_skip,
            domain_padding=padding, max_n_modes=blocks.max_n_modes,
            factorization=model.factorization, rank=model.rank,
            fixed_rank_modes=model.fixed_rank_modes, implementation=model.implementation,
            decomposition_kwargs=model.decomposition_kwargs, separable=model.separable)
        # neuraloperator adds a "_metadata" entry (init kwargs) to its state dicts.
        new.load_state_dict({k: v for k, v in model.state_dict().items() if k != "_metadata"})
        return new.to(next(model.parameters()).device)


@register("tfno")
class TFNO(FNO):
    """FNO with Tucker-factorized spectral weights (Kossaifi et al. 2023), rank 0.1 by default.

    Those are neuraloperator's ``TFNO`` defaults (about 10% of the dense spectral weights).
    """

    extends = FNO  # every other option is FNO's (see sciops.models)

    def __init__(self, *args, factorization: str | None = "tucker", rank: float = 0.1, **kwargs):
        super().__init__(*args, factorization=factorization, rank=rank, **kwargs)
