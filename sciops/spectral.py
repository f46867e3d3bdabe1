"""Spectral kernels on periodic boxes, shared by the generators and the models.

Conventions
-----------
* A field has shape ``(*batch, n_1, ..., n_d)``: the last ``d`` axes are space, where
  ``d = len(lengths)``; axis ``i`` spans ``[0, L_i)`` with ``n_i`` points ``x_j = j L_i / n_i``.
* Transforms are ``torch.fft.rfftn`` over the spatial axes (last axis halved), unnormalized
  forward, so ``u = irfftn(u_hat)`` and a field ``sum_k c_k exp(i k.x)`` has
  ``u_hat[k] = n_1 ... n_d c_k``.
* Wavenumbers are angular, ``k_i = 2 pi m_i / L_i`` in rad per length unit, with integer
  ``m_i`` in FFT order.
* Tensors returned by the cached functions are shared: treat them as read-only.

Every function accepts float32 or float64 (complex64 / complex128 in spectral space) on
any device; set-up (wavenumbers, masks) is cached per (shape, lengths, dtype, device).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache

import torch
from torch import Tensor

__all__ = [
    "grid",
    "wavenumbers",
    "wavenumber_magnitude",
    "dealias_mask",
    "rfft",
    "irfft",
    "gradient",
    "divergence",
    "laplacian",
    "inverse_laplacian",
    "leray_projection",
    "grf",
    "grf_spectrum",
]


def _lengths(lengths: float | Sequence[float], ndim: int | None = None) -> tuple[float, ...]:
    if isinstance(lengths, (int, float)):
        if ndim is None:
            raise ValueError("lengths: give one length per spatial axis, or pass ndim")
        return (float(lengths),) * ndim
    out = tuple(float(v) for v in lengths)
    if any(v <= 0 for v in out):
        raise ValueError(f"lengths: box lengths must be positive, got {out}")
    return out


def _real_dtype(dtype: torch.dtype) -> torch.dtype:
    return {torch.complex64: torch.float32, torch.complex128: torch.float64}.get(dtype, dtype)


def _spatial(x: Tensor, d: int) -> tuple[int, ...]:
    if x.ndim < d:
        raise ValueError(f"expected at least {d} spatial axes, got a tensor of shape {tuple(x.shape)}")
    return tuple(range(-d, 0))


def rfft(u: Tensor, d: int) -> Tensor:
    """Unnormalized rfftn over the last ``d`` axes: ``(*b, n_1..n_d) -> (*b, n_1..n_d//2+1)``."""
    return torch.fft.rfftn(u, dim=_spatial(u, d))


def irfft(u_hat: Tensor, shape: Sequence[int]) -> Tensor:
    """Inverse of :func:`rfft` for spatial ``shape`` (needed to recover odd last sizes)."""
    d = len(shape)
    return torch.fft.irfftn(u_hat, s=tuple(shape), dim=tuple(range(-d, 0)))


@lru_cache(maxsize=128)
def grid(
    shape: tuple[int, ...],
    lengths: tuple[float, ...],
    dtype: torch.dtype = torch.float64,
    device: torch.device | str = "cpu",
) -> tuple[Tensor, ...]:
    """Cell-vertex coordinates ``x_j = j L / n``, one 1-D tensor per axis (length units)."""
    return tuple(
        torch.arange(n, dtype=dtype, device=device) * (L / n) for n, L in zip(shape, lengths)
    )


@lru_cache(maxsize=128)
def wavenumbers(
    shape: tuple[int, ...],
    lengths: tuple[float, ...],
    dtype: torch.dtype = torch.float64,
    device: torch.device | str = "cpu",
    *,
    zero_nyquist: bool = False,
) -> tuple[Tensor, ...]:
    """Angular wavenumbers ``2 pi m / L`` of the rfftn layout of spatial ``shape``.

    Returns ``d`` tensors, tensor ``i`` of shape ``(1,..,n_i,..,1)`` broadcastable to the
    spectral shape ``(n_1, ..., n_d//2 + 1)``. With ``zero_nyquist`` the Nyquist wavenumber
    of even axes is set to 0, which odd-order derivatives need to stay real and exact.
    """
    d = len(shape)
    out = []
    for i, (n, L) in enumerate(zip(shape, lengths)):
        m = torch.fft.rfftfreq(n, 1.0 / n) if i == d - 1 else torch.fft.fftfreq(n, 1.0 / n)
        if zero_nyquist and n % 2 == 0:
            m[n // 2] = 0.0
        k = (2 * math.pi / L) * m.to(dtype=torch.float64)
        view = [1] * d
        view[i] = k.numel()
        out.append(k.to(dtype=dtype, device=device).reshape(view))
    return tuple(out)


@lru_cache(maxsize=128)
def wavenumber_magnitude(
    shape: tuple[int, ...],
    lengths: tuple[float, ...],
    dtype: torch.dtype = torch.float64,
    device: torch.device | str = "cpu",
) -> Tensor:
    """``|k|^2`` on the rfftn layout, shape ``(n_1, ..., n_d//2 + 1)`` (rad²/length²)."""
    ks = wavenumbers(shape, lengths, dtype, device)
    return sum(k * k for k in ks)


@lru_cache(maxsize=128)
def dealias_mask(
    shape: tuple[int, ...], dtype: torch.dtype = torch.float64, device: torch.device | str = "cpu"
) -> Tensor:
    """2/3-rule mask on the rfftn layout: 1 where every integer ``|m_i| <= n_i / 3``, else 0."""
    d = len(shape)
    mask = torch.ones((), dtype=dtype, device=device)
    for i, n in enumerate(shape):
        m = torch.fft.rfftfreq(n, 1.0 / n) if i == d - 1 else torch.fft.fftfreq(n, 1.0 / n)
        keep = (m.abs() <= n / 3.0).to(dtype=dtype, device=device)
        view = [1] * d
        view[i] = keep.numel()
        mask = mask * keep.reshape(view)
    return mask


def _setup(u: Tensor, lengths, **kw) -> tuple[tuple[int, ...], tuple[float, ...], tuple[Tensor, ...]]:
    L = _lengths(lengths)
    shape = tuple(u.shape[-len(L):])
    ks = wavenumbers(shape, L, _real_dtype(u.dtype), u.device, **kw)
    return shape, L, ks


def gradient(u: Tensor, lengths: Sequence[float]) -> tuple[Tensor, ...]:
    """Spectral gradient of a periodic field: ``(*b, n_1..n_d) -> d x (*b, n_1..n_d)``.

    Units: those of ``u`` per length unit of ``lengths``.
    """
    shape, L, ks = _setup(u, lengths, zero_nyquist=True)
    u_hat = rfft(u, len(L))
    return tuple(irfft(1j * k * u_hat, shape) for k in ks)


def divergence(fields: Sequence[Tensor], lengths: Sequence[float]) -> Tensor:
    """Spectral divergence of a vector field given as ``d`` components ``(*b, n_1..n_d)``."""
    L = _lengths(lengths)
    if len(fields) != len(L):
        raise ValueError(f"divergence: expected {len(L)} components, got {len(fields)}")
    shape, _, ks = _setup(fields[0], L, zero_nyquist=True)
    acc = sum(1j * k * rfft(f, len(L)) for k, f in zip(ks, fields))
    return irfft(acc, shape)


def laplacian(u: Tensor, lengths: Sequence[float]) -> Tensor:
    """Spectral Laplacian ``sum_i d²u/dx_i²`` of a periodic field, same shape as ``u``."""
    L = _lengths(lengths)
    shape = tuple(u.shape[-len(L):])
    k2 = wavenumber_magnitude(shape, L, _real_dtype(u.dtype), u.device)
    return irfft(-k2 * rfft(u, len(L)), shape)


def inverse_laplacian(f: Tensor, lengths: Sequence[float]) -> Tensor:
    """Zero-mean ``u`` with ``Laplacian(u) = f - mean(f)`` on the periodic box."""
    L = _lengths(lengths)
    shape = tuple(f.shape[-len(L):])
    k2 = wavenumber_magnitude(shape, L, _real_dtype(f.dtype), f.device)
    inv = torch.where(k2 > 0, -1.0 / torch.where(k2 > 0, k2, 1.0), 0.0)
    return irfft(inv * rfft(f, len(L)), shape)


def leray_projection(u_hat: Sequence[Tensor], ks: Sequence[Tensor]) -> tuple[Tensor, ...]:
    """Divergence-free part of a spectral vector field: ``u - k (k.u) / |k|²`` (mean kept).

    ``u_hat``: ``d`` complex tensors on the rfftn layout; ``ks``: from :func:`wavenumbers`.
    """
    k2 = sum(k * k for k in ks)
    k2 = torch.where(k2 > 0, k2, 1.0)
    kdotu = sum(k * c for k, c in zip(ks, u_hat)) / k2
    return tuple(c - k * kdotu for k, c in zip(ks, u_hat))


def grf_spectrum(
    shape: tuple[int, ...],
    lengths: tuple[float, ...],
    alpha: float,
    tau: float,
    sigma: float | None = None,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str = "cpu",
) -> Tensor:
    """Target variance ``E|c_k|²`` of each Fourier coefficient of :func:`grf`.

    ``sigma² (|k|² + tau²)^(-alpha)`` on the rfftn layout, with the mean mode set to zero.
    ``sigma`` defaults to ``tau^(alpha - d/2)`` (the FNO data convention).
    """
    d = len(shape)
    if sigma is None:
        sigma = tau ** (alpha - d / 2.0)
    k2 = wavenumber_magnitude(shape, lengths, dtype, device)
    var = sigma**2 * (k2 + tau**2) ** (-alpha)
    var = var.clone()
    var.reshape(-1)[0] = 0.0
    return var


def grf(
    n: int,
    shape: Sequence[int],
    lengths: Sequence[float],
    alpha: float = 2.5,
    tau: float = 7.0,
    sigma: float | None = None,
    *,
    generator: torch.Generator | None = None,
    dtype: torch.dtype = torch.float64,
    device: torch.device | str = "cpu",
) -> Tensor:
    """Samples of the Gaussian random field ``N(0, sigma² (-Laplacian + tau² I)^(-alpha))``.

    Periodic box, zero mean mode. Returns ``(n, *shape)``. Written as
    ``u(x) = sum_k c_k exp(i k.x)`` with Hermitian ``c_k``: each ``c_k`` (k != 0) has
    ``E|c_k|² = sigma² (|k|² + tau²)^(-alpha)`` (see :func:`grf_spectrum`).

    Randomness is drawn on the CPU from ``generator`` and moved to ``device``, so a seed
    gives the same field on every device. The draw is a real white-noise field, filtered
    in Fourier space: this keeps the Hermitian symmetry (including Nyquist lines) exact.
    """
    shape = tuple(int(s) for s in shape)
    L = _lengths(lengths, len(shape))
    npts = math.prod(shape)
    white = torch.randn((n, *shape), generator=generator, dtype=torch.float64)
    # rfftn of unit white noise has E|w_k|² = npts, so scale by sqrt(var / npts) * npts.
    var = grf_spectrum(shape, L, alpha, tau, sigma)
    field_hat = rfft(white, len(shape)) * torch.sqrt(var * npts)
    field = irfft(field_hat, shape)
    return field.to(dtype=dtype, device=device)
