"""Latent Spectral Model (LSM; Wu et al. 2023, "Solving High-Dimensional PDEs with Latent
Spectral Models", ICML) for 2D and 3D grids.

Pipeline, ``(batch, C_in, *space) -> (batch, C_out, *space)``:

1. lifting: a pointwise linear map of the inputs and their ``[0, 1]^d`` coordinates to
   ``width`` channels;
2. a U-Net backbone of ``levels`` down-samplings (max-pool + two conv-BN-ReLU) and as many
   up-samplings (multilinear interpolation + skip concatenation + two conv-BN-ReLU); channels
   double per level as in the paper's code;
3. on every scale, before it is used, a *neural spectral block*: the feature map is cut into
   patches; inside each patch ``n_tokens`` learned latent tokens attend to the pixels
   (cross-attention, ``heads`` heads), pass a *latent transition*
   ``z <- z + sum_j (W_sin[c, j] sin(pi m_j z) + W_cos[c, j] cos(pi m_j z))`` with
   ``m_j = j / n_basis`` (the learned sin/cos basis), and the pixels attend back to them
   (both attentions residual);
4. projection: pointwise ``width -> projection_channels -> GELU -> C_out``.

Any resolution works: the U-Net up-samples to the exact size of each skip connection (odd
sizes included) and every spectral block pads its map to a multiple of the patch size by
edge replication, then crops. Nothing is tied to a grid size or device.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from sciops.models import register
from sciops.models.deeponet import GRIDS, grid_coordinates

_INTERP = {2: "bilinear", 3: "trilinear"}


def _conv(dim: int) -> type[nn.Module]:
    return nn.Conv2d if dim == 2 else nn.Conv3d


class DoubleConv(nn.Module):
    """Two (3^d conv -> BatchNorm -> ReLU) layers: ``in -> mid -> out`` channels."""

    def __init__(self, dim: int, c_in: int, c_out: int, c_mid: int | None = None):
        super().__init__()
        conv, norm = _conv(dim), (nn.BatchNorm2d if dim == 2 else nn.BatchNorm3d)
        c_mid = c_mid or c_out
        self.net = nn.Sequential(
            conv(c_in, c_mid, 3, padding=1, bias=False), norm(c_mid), nn.ReLU(),
            conv(c_mid, c_out, 3, padding=1, bias=False), norm(c_out), nn.ReLU())

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


def patchify(x: Tensor, patch: Sequence[int]) -> tuple[Tensor, tuple[int, ...]]:
    """``(B, C, *space)`` with space divisible by ``patch`` -> ``(B * n_patches, C, N)``,
    ``N = prod(patch)``; also returns the patch-grid shape for :func:`unpatchify`."""
    b, c, *space = x.shape
    d = len(space)
    counts = tuple(s // p for s, p in zip(space, patch))
    split = [b, c]
    for n, p in zip(counts, patch):
        split += [n, p]
    x = x.reshape(split)
    # (B, C, n1, p1, n2, p2, ...) -> (B, n1, n2, ..., C, p1, p2, ...)
    order = [0, *range(2, 2 + 2 * d, 2), 1, *range(3, 3 + 2 * d, 2)]
    return x.permute(order).reshape(-1, c, math.prod(patch)), counts


def unpatchify(x: Tensor, counts: Sequence[int], patch: Sequence[int]) -> Tensor:
    """Inverse of :func:`patchify`: ``(B * n_patches, C, N) -> (B, C, *space)``."""
    d = len(patch)
    c = x.shape[1]
    x = x.reshape(-1, *counts, c, *patch)
    # (B, n1, .., nd, C, p1, .., pd) -> (B, C, n1, p1, n2, p2, ...)
    order = [0, d + 1]
    for i in range(d):
        order += [1 + i, d + 2 + i]
    space = [n * p for n, p in zip(counts, patch)]
    return x.permute(order).reshape(x.shape[0], c, *space)


def _attend(q: Tensor, k: Tensor, v: Tensor) -> Tensor:
    """Softmax attention over heads: q (B, h, L, e), k/v (B, h, S, e) -> (B, h, L, e).

    Unscaled logits, as the LSM code (its tokens start small, so attention starts flat).
    """
    return torch.softmax(q @ k.transpose(-1, -2), dim=-1) @ v


class NeuralSpectralBlock(nn.Module):
    """Patchified latent attention + learned sin/cos latent transition (see module doc).

    Input and output ``(B, C, *space)``, any spatial size.
    """

    def __init__(self, channels: int, patch: Sequence[int], n_basis: int, n_tokens: int,
                 heads: int):
        super().__init__()
        if channels % heads:
            raise ValueError(f"heads={heads} must divide the channels ({channels}) of every "
                             "scale; choose width as a multiple of heads")
        self.patch, self.heads = tuple(patch), heads
        # pointwise maps, applied to patchified pixels (B', C, N) whatever the dimension
        self.to_kv = nn.Conv1d(channels, 2 * channels, 1)
        self.to_q = nn.Conv1d(channels, channels, 1)
        # Small uniform starts as in the paper's code: near-flat attention, mild transition.
        self.tokens = nn.Parameter(torch.rand(heads, n_tokens, channels // heads) / channels)
        self.basis_weights = nn.Parameter(torch.rand(channels, 2 * n_basis) / channels)
        self.register_buffer("frequencies", math.pi * torch.arange(n_basis) / n_basis,
                             persistent=False)

    def _heads(self, x: Tensor) -> Tensor:
        """(B', C, N) -> (B', h, N, C/h)."""
        return x.unflatten(1, (self.heads, -1)).transpose(-1, -2)

    def transition(self, z: Tensor) -> Tensor:
        """``z + sum_j w_sin sin(pi m_j z) + w_cos cos(pi m_j z)``, per channel; z (B', C, T)."""
        phase = z[..., None] * self.frequencies.to(z.dtype)
        feats = torch.cat((torch.sin(phase), torch.cos(phase)), dim=-1)
        return z + torch.einsum("bctk,ck->bct", feats, self.basis_weights)

    def forward(self, x: Tensor) -> Tensor:
        space = x.shape[2:]
        pad = [(-s) % p for s, p in zip(space, self.patch)]
        if any(pad):
            # F.pad lists the last axis first; pad at the high end of each axis only.
            x = F.pad(x, [v for p in reversed(pad) for v in (0, p)], mode="replicate")
        pixels, counts = patchify(x, self.patch)                     # (B', C, N)
        k, v = (self._heads(t) for t in self.to_kv(pixels).chunk(2, dim=1))
        q = self._heads(self.to_q(pixels))
        tokens = self.tokens.expand(k.shape[0], -1, -1, -1)
        tokens = _attend(tokens, k, v) + tokens                       # (B', h, T, C/h)
        z = self.transition(tokens.transpose(-1, -2).flatten(1, 2))   # (B', C, T)
        z = self._heads(z)
        out = _attend(q, z, z).transpose(-1, -2).flatten(1, 2) + pixels
        out = unpatchify(out, counts, self.patch)
        return out[(slice(None), slice(None), *(slice(0, s) for s in space))]


@register("lsm")
class LSM(nn.Module):
    """Latent Spectral Model (Wu et al. 2023): U-Net with latent-token spectral blocks, 2D/3D.

    See the module docstring.

    Parameters
    ----------
    in_channels, out_channels: channels of the input and output grids.
    dim: 2 or 3 spatial axes.
    width: channels of the finest scale (doubling per level; bottom = top scale's).
    levels: down-samplings of the U-Net (the paper: 4); inputs need >= 2^levels points
        per axis.
    patch_size: patch edge per axis (int or one per axis; the paper: 6 on Darcy 85²).
    n_basis: sin/cos frequencies of the latent transition (paper: 12).
    n_tokens: latent tokens per patch (paper: 4).
    heads: attention heads; must divide ``width`` (paper: 8).
    projection_channels: hidden channels of the output projection (paper: 128).
    grid: 'closed' (x_j = j/(n-1), the paper's) or 'periodic' lifting coordinates.
    """

    kind = "grid"

    def __init__(self, in_channels: int, out_channels: int, *, dim: int = 2, width: int = 32,
                 levels: int = 4, patch_size: int | Sequence[int] = 3, n_basis: int = 12,
                 n_tokens: int = 4, heads: int = 8, projection_channels: int = 128,
                 grid: str = "closed"):
        super().__init__()
        if dim not in _INTERP:
            raise ValueError(f"dim={dim} is not allowed; choose 2 or 3")
        for name, value in (("in_channels", in_channels), ("out_channels", out_channels),
                            ("width", width), ("levels", levels), ("n_basis", n_basis),
                            ("n_tokens", n_tokens), ("heads", heads),
                            ("projection_channels", projection_channels)):
            if value < 1:
                raise ValueError(f"{name}={value} must be >= 1")
        patch = [patch_size] * dim if isinstance(patch_size, int) else list(patch_size)
        if len(patch) != dim or any(p < 1 for p in patch):
            raise ValueError(f"patch_size={patch_size!r}: give one size >= 1 or {dim} of them")
        if width % heads:
            raise ValueError(f"heads={heads} must divide width={width}")
        self.dim, self.levels, self.grid = dim, levels, grid
        if grid not in GRIDS:
            raise ValueError(f"grid={grid!r} is not allowed; choose one of {list(GRIDS)}")
        conv = _conv(dim)
        # channels of scales 0..levels; the bottom keeps the channels of the scale above it
        chans = [width * 2**s for s in range(levels)] + [width * 2 ** (levels - 1)]
        self.lift = conv(in_channels + dim, width, 1)
        self.inc = DoubleConv(dim, width, width)
        self.down = nn.ModuleList(DoubleConv(dim, chans[i], chans[i + 1]) for i in range(levels))
        self.up = nn.ModuleList(DoubleConv(dim, 2 * chans[i], chans[max(i - 1, 0)], chans[i])
                                for i in range(levels))
        self.blocks = nn.ModuleList(
            NeuralSpectralBlock(c, patch, n_basis, n_tokens, heads) for c in chans)
        self.outc = conv(width, width, 1)
        self.proj = nn.Sequential(conv(width, projection_channels, 1), nn.GELU(),
                                  conv(projection_channels, out_channels, 1))

    def forward(self, x: Tensor) -> Tensor:
        """``(batch, C_in, *space) -> (batch, C_out, *space)``."""
        space = tuple(x.shape[2:])
        if len(space) != self.dim:
            raise ValueError(f"lsm(dim={self.dim}): expected (batch, C, {self.dim} spatial "
                             f"axes), got {tuple(x.shape)}")
        if min(space) < 2**self.levels:
            raise ValueError(f"lsm(levels={self.levels}): every spatial size must be >= "
                             f"{2**self.levels}, got {list(space)}")
        coords = grid_coordinates(space, self.grid, dtype=x.dtype, device=x.device)
        coords = coords.movedim(-1, 0).expand(x.shape[0], *coords.shape[-1:], *space)
        h = self.inc(self.lift(torch.cat((x, coords), dim=1)))
        skips = [h]
        for down in self.down:
            skips.append(down(F.max_pool2d(skips[-1], 2) if self.dim == 2
                              else F.max_pool3d(skips[-1], 2)))
        skips = [block(s) for block, s in zip(self.blocks, skips)]
        h = skips[-1]
        for i in reversed(range(self.levels)):
            skip = skips[i]
            h = F.interpolate(h, size=skip.shape[2:], mode=_INTERP[self.dim], align_corners=True)
            h = self.up[i](torch.cat((skip, h), dim=1))
        return self.proj(self.outc(h))
