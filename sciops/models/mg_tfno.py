"""MG-TFNO: multi-grid domain decomposition around a TFNO (Kossaifi et al. 2023).

A field ``(b, c, n_1..n_d)`` is cut into ``P = 2**levels`` patches per axis, of size
``s_i = n_i / P``. Each patch carries, as extra channels, its coarse context at levels
``l = 1..levels``: the field around the patch, over ``2**l`` times the patch extent and
centred on it, subsampled every ``2**l`` points so it has the patch's size. Level ``levels``
covers the whole (periodic) domain. Indices wrap around (circular padding: periodic data).
The patches are stacked into the batch, the TFNO runs on them, and the outputs are stitched
back into the full field, so the loss sees the whole field.

Precisely, along axis ``i``, patch ``p`` at level ``l`` holds the samples
``x[(start + 2**l * j) mod n_i]``, ``j = 0 .. s_i + 2 pad_i - 1``, with
``start = p s_i - floor((2**l - 1) s_i / 2) - 2**l pad_i`` (``pad_i``: optional overlap
in points, cropped again by :func:`stitch`). :func:`split` and :func:`stitch` are pure
functions, usable without the model.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from sciops.models import register
from sciops.models.fno import TFNO

__all__ = ["split", "stitch", "MGTFNO"]


def _check_levels(levels: int) -> None:
    if isinstance(levels, bool) or not isinstance(levels, int) or levels < 0:
        raise ValueError(f"levels: expected an integer >= 0, got {levels!r}")


def _patch_size(shape: Sequence[int], levels: int) -> list[int]:
    _check_levels(levels)
    patches = 2**levels
    for n in shape:
        if n % patches:
            raise ValueError(f"resolution {tuple(shape)} is not divisible by the patch count "
                             f"{patches} (2**levels, levels={levels}) on every axis")
    return [n // patches for n in shape]


def _indices(n: int, size: int, level: int, pad: int, patches: int, device: torch.device) -> Tensor:
    """``(patches, size + 2 pad)`` grid indices of each patch's window at ``level``."""
    step = 2**level
    start = torch.arange(patches, device=device) * size - ((step - 1) * size) // 2 - step * pad
    return (start[:, None] + step * torch.arange(size + 2 * pad, device=device)) % n


def split(x: Tensor, levels: int, pad: int | Sequence[int] = 0) -> Tensor:
    """Multi-grid patches: ``(b, c, n_1..n_d) -> (b P^d, c (levels + 1), s_1 + 2 pad_1, ..)``.

    ``P = 2**levels``. Batch index ``(sample, p_1, .., p_d)`` row-major; channels level by
    level, level 0 (the patch itself) first. ``pad``: overlap in points added around each
    patch (one value, or one per axis). Exact gathers: no interpolation, no smoothing.
    """
    d = x.ndim - 2
    shape = list(x.shape[2:])
    size = _patch_size(shape, levels)
    pads = [pad] * d if isinstance(pad, int) else list(pad)
    if len(pads) != d or any(p < 0 for p in pads):
        raise ValueError(f"pad: expected a non-negative integer or {d} of them, got {pad!r}")
    patches, (b, c) = 2**levels, x.shape[:2]
    out = []
    for level in range(levels + 1):
        y = x
        for i in range(d):
            idx = _indices(shape[i], size[i], level, pads[i], patches, x.device)
            # Axis 2 + 2i (the next raw axis) becomes (patch index, position in the window).
            y = y.index_select(2 + 2 * i, idx.reshape(-1)).unflatten(2 + 2 * i, idx.shape)
        # y: (b, c, p_1, w_1, .., p_d, w_d) -> (b, p_1..p_d, c, w_1..w_d)
        perm = [0, *range(2, 2 + 2 * d, 2), 1, *range(3, 3 + 2 * d, 2)]
        out.append(y.permute(perm).reshape(b * patches**d, c, *y.shape[3::2]))
    return torch.cat(out, dim=1)


def stitch(patches: Tensor, levels: int, pad: int | Sequence[int] = 0) -> Tensor:
    """Inverse of :func:`split` on level 0: ``(b P^d, c, s_1 + 2 pad_1, ..) -> (b, c, n_1..n_d)``.

    Crops ``pad`` points from each side of every patch and puts the patches in place.
    """
    d = patches.ndim - 2
    pads = [pad] * d if isinstance(pad, int) else list(pad)
    if len(pads) != d or any(p < 0 for p in pads):
        raise ValueError(f"pad: expected a non-negative integer or {d} of them, got {pad!r}")
    _check_levels(levels)
    n_patches = 2**levels
    if patches.shape[0] % n_patches**d:
        raise ValueError(f"patches: batch {patches.shape[0]} is not a multiple of the "
                         f"{n_patches**d} patches per sample")
    crop = patches[(..., *(slice(p, w - p) for p, w in zip(pads, patches.shape[2:])))]
    b, c, size = patches.shape[0] // n_patches**d, patches.shape[1], crop.shape[2:]
    y = crop.reshape(b, *(n_patches,) * d, c, *size)
    # (b, p_1..p_d, c, w_1..w_d) -> (b, c, p_1, w_1, .., p_d, w_d)
    perm = [0, 1 + d] + [k for i in range(d) for k in (1 + i, 2 + d + i)]
    return y.permute(perm).reshape(b, c, *(n_patches * s for s in size))


@register("mg-tfno")
class MGTFNO(nn.Module):
    """Multi-grid TFNO (Kossaifi et al. 2023): a TFNO on patches with coarse context levels.

    ``(b, in_channels, *space) -> (b, out_channels, *space)``.

    ``levels``: patches per axis ``2**levels``, each with ``levels`` coarse context levels
    (so the TFNO sees ``in_channels * (levels + 1)`` channels); ``padding_fraction``:
    overlap added around each patch, as a fraction of the full resolution (neuraloperator's
    ``MultigridPatching2D`` convention), cropped before stitching. Other keywords go to
    :class:`sciops.models.fno.TFNO` (Tucker rank 0.1 by default). Every spatial size must be
    divisible by ``2**levels``.
    """

    kind = "grid"
    extends = TFNO  # options beyond levels/padding_fraction go to the TFNO

    def __init__(self, n_modes: Sequence[int], in_channels: int, out_channels: int,
                 hidden_channels: int, levels: int = 1, padding_fraction: float = 0.0, **tfno):
        super().__init__()
        if len(n_modes) not in (2, 3):
            raise ValueError(f"n_modes: MG-TFNO is defined for 2 or 3 spatial axes, "
                             f"got {len(n_modes)}")
        _check_levels(levels)
        if not 0 <= padding_fraction < 0.5:
            raise ValueError(f"padding_fraction: expected a number in [0, 0.5), "
                             f"got {padding_fraction!r}")
        self.levels, self.padding_fraction = levels, padding_fraction
        self.tfno = TFNO(n_modes, in_channels * (levels + 1), out_channels, hidden_channels, **tfno)

    def forward(self, x: Tensor) -> Tensor:
        """``(b, in_channels, *space) -> (b, out_channels, *space)``."""
        pad = [round(n * self.padding_fraction) for n in x.shape[2:]]
        return stitch(self.tfno(split(x, self.levels, pad)), self.levels, pad)
