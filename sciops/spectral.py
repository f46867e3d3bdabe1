"""Spectral kernels on periodic boxes, shared by the generators and the models.

Pure calculus on tensors: this module imports only torch (no ``torch.nn``); the Fourier
layer built on its truncated transforms is :class:`sciops.models.spectral_conv.SpectralConv`.

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
    "sine_basis",
    "synthesize",
    "sine_series_at",
    "mode_numbers_squared",
    "odd_extension",
    "even_extension",
    "interpolate",
    "truncated_rfftn",
    "truncated_irfftn",
    "fourier_resample",
    "NORMS",
    "check_norm",
    "dft_scale",
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
        raise ValueError(f"expected at least {d} spatial axes, got a tensor of shape "
                         f"{tuple(x.shape)}")
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


def _setup(u: Tensor, lengths, **kw
           ) -> tuple[tuple[int, ...], tuple[float, ...], tuple[Tensor, ...]]:
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


# --------------------------------------------------------------------------------------
# Sine series on the unit square (zero Dirichlet problems)
# --------------------------------------------------------------------------------------
#
# Vertex grid ``x_j = j / (n - 1)``, ``j = 0..n-1``, arrays indexed ``[x, y]``. Reflecting a
# field oddly about every side makes it periodic on ``[0, 2)²`` with its sine series as its
# Fourier series, so the periodic kernels above act in the sine basis.


def sine_basis(resolution: int, modes: int, device: torch.device | str = "cpu") -> Tensor:
    """``S[j, k] = sin(pi (k+1) x_j)`` on ``x_j = j/(resolution-1)``: (resolution, modes)."""
    x = torch.linspace(0.0, 1.0, resolution, dtype=torch.float64, device=device)
    k = torch.arange(1, modes + 1, dtype=torch.float64, device=device)
    return torch.sin(math.pi * x[:, None] * k[None, :])


def synthesize(coeffs: Tensor, basis: Tensor) -> Tensor:
    """Evaluate ``sum_kl coeffs[..., k, l] basis[x, k] basis[y, l]``: (..., n, n).

    Real part taken for complex bases (Fourier series of real fields).
    """
    out = basis @ coeffs.to(basis.dtype) @ basis.transpose(0, 1)
    return out.real if out.is_complex() else out


def sine_series_at(coeffs: Tensor, x: Tensor, y: Tensor) -> Tensor:
    """``sum_kl coeffs[k-1, l-1] sin(pi k x) sin(pi l y)`` at points ``x``, ``y`` (N,): (N,).

    ``coeffs`` (K, L); the result is in the dtype of ``x`` and differentiable in ``x``, ``y``.
    """
    c = coeffs.to(dtype=x.dtype, device=x.device)
    k = torch.arange(1, c.shape[0] + 1, dtype=x.dtype, device=x.device)
    l = torch.arange(1, c.shape[1] + 1, dtype=x.dtype, device=x.device)
    return ((torch.sin(math.pi * x[:, None] * k) @ c) * torch.sin(math.pi * y[:, None] * l)).sum(-1)


def mode_numbers_squared(modes: int, device: torch.device | str = "cpu") -> Tensor:
    """``k² + l²`` for sine modes ``k, l = 1..modes``: (modes, modes) float64."""
    k = torch.arange(1, modes + 1, dtype=torch.float64, device=device)
    return k[:, None] ** 2 + k[None, :] ** 2


def _reflect(u: Tensor, dim: int, sign: float) -> Tensor:
    inner = u.narrow(dim, 1, u.shape[dim] - 2).flip(dim)
    return torch.cat((u, sign * inner), dim=dim)


def odd_extension(u: Tensor) -> Tensor:
    """Odd reflection of (..., n, n) about every side of ``[0,1]²``: (..., 2n-2, 2n-2).

    A field vanishing on the boundary becomes a continuous periodic field on ``[0,2)²``
    whose Fourier series is its sine series, so the derivatives here act in the sine
    basis; restrict back with ``[..., :n, :n]``.
    """
    return _reflect(_reflect(u, -2, -1.0), -1, -1.0)


def even_extension(c: Tensor) -> Tensor:
    """Even reflection of (..., n, n) about every side: (..., 2n-2, 2n-2) (coefficients)."""
    return _reflect(_reflect(c, -2, 1.0), -1, 1.0)


def interpolate(u: Tensor, lengths: Sequence[float], points: Sequence[Tensor],
                chunk: int = 2048) -> Tensor:
    """Trigonometric interpolant of a periodic grid field at arbitrary points.

    ``u``: ``(n_1, ..., n_d)`` grid values on the box of side ``lengths``; ``points``: one
    ``(N,)`` coordinate tensor per axis (length units). Returns ``(N,)`` in ``u``'s real
    dtype, differentiable in the points (autograd), so a PINN can take derivatives of it.
    Nyquist modes are dropped (their interpolant is not unique); ``chunk`` bounds memory.
    """
    shape = tuple(u.shape)
    d = len(shape)
    L = _lengths(lengths, d)
    c = torch.fft.fftn(u.to(torch.float64), dim=tuple(range(d))) / math.prod(shape)
    ks = []
    for n, side in zip(shape, L):
        m = torch.fft.fftfreq(n, 1.0 / n, dtype=torch.float64)
        if n % 2 == 0:
            m[n // 2] = 0.0
            c = c.index_fill(len(ks), torch.tensor([n // 2]), 0)
        ks.append((2 * math.pi / side) * m.to(u.device))
    out = []
    for start in range(0, points[0].shape[0], chunk):
        x = [p[start:start + chunk].to(torch.float64) for p in points]
        val = torch.einsum("pi,i...->p...", torch.exp(1j * x[0][:, None] * ks[0]), c)
        for xi, k in zip(x[1:], ks[1:]):
            val = torch.einsum("pi,pi...->p...", torch.exp(1j * xi[:, None] * k), val)
        out.append(val.real)
    return torch.cat(out).to(u.dtype)


# --------------------------------------------------------------------------------------
# Truncated transforms (used by the Fourier layer of FNO-type models, sciops.models)
# --------------------------------------------------------------------------------------
#
# Layout of kept modes. A "mode block" holds the Fourier coefficients a layer keeps, with
# the mode axes first: ``(m_1, ..., m_d, *other axes)``. Along the last spatial axis it holds
# frequencies ``0 .. m_d - 1`` (rfft half-spectrum); along every other axis it holds the
# centred frequencies ``-(m//2) .. m - m//2 - 1`` in increasing order. That is exactly the
# index -> frequency map of neuraloperator's weights, which it obtains by fftshift-ing the
# spectrum; here the DFT itself emits that order (rows of the DFT matrix, or an index gather
# on the FFT path), so nothing is ever shifted and neuraloperator's weights load unchanged.
#
# Each axis is transformed either by a truncated DFT written as one matmul (cost ~ n m per
# line) or by an FFT followed by a gather (cost ~ n log n per line, plus the full spectrum).
# The matmul wins while m <= 4 log2(n): measured on CPU for n = 32..512 (float32), where it
# is up to 3x faster than rfft + slice and irfft + zero-pad for typical FNO mode counts.

NORMS = ("forward", "backward", "ortho")


def check_norm(norm: str) -> None:
    """``ValueError`` unless ``norm`` is one of torch.fft's conventions (:data:`NORMS`)."""
    if norm not in NORMS:
        raise ValueError(f"norm: expected one of {NORMS}, got {norm!r}")


def dft_scale(n: int, norm: str, inverse: bool) -> float:
    """Per-axis factor of a length-``n`` transform under torch.fft's ``norm`` convention."""
    if norm == "ortho":
        return n**-0.5
    return 1.0 / n if (norm == "forward") != inverse else 1.0


def _use_matmul(n: int, m: int) -> bool:
    return m <= 4 * math.log2(max(n, 2))


def _centred(m: int) -> Tensor:
    """Integer frequencies ``-(m//2) .. m - m//2 - 1``: the order of non-last mode axes."""
    return torch.arange(m, dtype=torch.float64) - m // 2


@lru_cache(maxsize=256)
def _rdft_matrix(n: int, m: int, norm: str, inverse: bool, dtype: torch.dtype,
                 device: torch.device) -> Tensor:
    """Real DFT of the last axis as a real matrix, re/im interleaved like ``view_as_real``.

    Forward: ``(n, 2m)``, maps a real line to ``m`` rfft coefficients. Inverse: ``(2m, n)``,
    maps them back the way irfft does: bins other than 0 and n/2 count twice (Hermitian
    partner), and the imaginary parts of bins 0 and n/2 are ignored.
    """
    k = torch.arange(m, dtype=torch.float64)
    j = torch.arange(n, dtype=torch.float64)
    theta = (2 * math.pi / n) * torch.outer(k, j)  # (m, n)
    s = dft_scale(n, norm, inverse)
    if inverse:
        w = torch.where((k == 0) | (2 * k == n), 1.0, 2.0)[:, None] * s
        mat = torch.stack((w * torch.cos(theta), -w * torch.sin(theta)), dim=1).reshape(2 * m, n)
    else:
        mat = torch.stack((s * torch.cos(theta.T), -s * torch.sin(theta.T)), dim=-1)
        mat = mat.reshape(n, 2 * m)
    return mat.to(dtype=dtype, device=device)


@lru_cache(maxsize=256)
def _dft_matrix(n: int, m: int, norm: str, inverse: bool, dtype: torch.dtype,
                device: torch.device) -> Tensor:
    """Complex DFT onto the ``m`` centred frequencies: ``(m, n)``, or ``(n, m)`` if inverse."""
    theta = (2 * math.pi / n) * torch.outer(_centred(m), torch.arange(n, dtype=torch.float64))
    s = dft_scale(n, norm, inverse)
    mat = torch.polar(torch.full_like(theta, s), theta if inverse else -theta)
    return (mat.T if inverse else mat).contiguous().to(dtype=dtype, device=device)


@lru_cache(maxsize=256)
def _centred_index(n: int, m: int, device: torch.device) -> Tensor:
    """Positions of the centred frequencies in FFT order (for the gather/scatter FFT path)."""
    return (_centred(m).long() % n).to(device)


def _check_modes(modes: Sequence[int], shape: Sequence[int]) -> None:
    caps = (*shape[:-1], shape[-1] // 2 + 1)
    for i, (m, cap) in enumerate(zip(modes, caps)):
        if not 1 <= m <= cap:
            raise ValueError(f"modes[{i}]: expected 1..{cap} for spatial shape {tuple(shape)}, "
                             f"got {m}")


def _split_axes(x: Tensor, d: int, trailing: int) -> tuple[tuple[int, ...], ...]:
    """``(lead, spatial, trail)`` sizes of ``x = (*lead, n_1..n_d, *trail)``."""
    if trailing < 0 or x.ndim < d + trailing:
        raise ValueError(f"expected {d} spatial axes followed by {trailing} trailing axes, "
                         f"got a tensor of shape {tuple(x.shape)}")
    end = x.ndim - trailing
    return tuple(x.shape[:end - d]), tuple(x.shape[end - d:end]), tuple(x.shape[end:])


def truncated_rfftn(x: Tensor, modes: Sequence[int], norm: str = "forward", *,
                    trailing: int = 0) -> Tensor:
    """The low Fourier modes of a real field, mode axes first.

    ``x``: real ``(*lead, n_1, ..., n_d, *trail)`` with ``d = len(modes)`` spatial axes and
    ``trailing`` axes after them (e.g. 1 for channels-last data). Returns the complex mode
    block ``(m_1, ..., m_d, *lead, *trail)`` (layout in the section comment): coefficients
    of ``rfftn(x, norm=norm)`` over the spatial axes, at the centred frequencies of axes
    ``1..d-1`` and ``0..m_d-1`` of the last. ``modes[i] <= n_i``, ``modes[-1] <= n_d // 2 + 1``.
    """
    check_norm(norm)
    d = len(modes)
    lead, shape, trail = _split_axes(x, d, trailing)
    _check_modes(modes, shape)
    n, m = shape[-1], modes[-1]
    # Put the spatial axes in front so that each remaining DFT is one (batched) matmul.
    to_back = (tuple(range(len(lead))), tuple(range(d, d + len(lead))))
    if not _use_matmul(n, m):
        y = torch.fft.rfft(x, dim=-1 - len(trail), norm=norm).narrow(-1 - len(trail), 0, m)
        y = y.movedim(*to_back)
    elif not trail:
        y = x.reshape(-1, n) @ _rdft_matrix(n, m, norm, False, x.dtype, x.device)
        y = torch.view_as_complex(y.view(*x.shape[:-1], m, 2)).movedim(*to_back)
    else:
        # Contract the last spatial axis in place, then make re/im innermost for complex
        # arithmetic while moving ``lead`` back: one copy of the (smaller) result.
        mat = _rdft_matrix(n, m, norm, False, x.dtype, x.device).mT
        y = torch.matmul(mat, x.reshape(-1, n, math.prod(trail)))
        y = y.view(*lead, *shape[:-1], m, 2, *trail)
        y = y.movedim(*to_back).movedim(d + len(lead), -1)
        y = torch.view_as_complex(y.contiguous())
    for j in range(d - 1):
        n, m = shape[j], modes[j]
        t = y.reshape(math.prod(modes[:j]), n, -1)
        if _use_matmul(n, m):
            y = torch.matmul(_dft_matrix(n, m, norm, False, t.dtype, t.device), t)
        else:
            y = torch.fft.fft(t, dim=1, norm=norm).index_select(1, _centred_index(n, m, t.device))
    return y.reshape(*modes, *lead, *trail)


def truncated_irfftn(u: Tensor, shape: Sequence[int], norm: str = "forward", *,
                     trailing: int = 0, add: Tensor | None = None) -> Tensor:
    """Inverse of :func:`truncated_rfftn`: the real field whose other modes are zero.

    ``u``: complex mode block ``(m_1, ..., m_d, *lead, *trail)`` with ``trailing`` trailing
    axes; returns real ``(*lead, *shape, *trail)``, equal to ``irfftn`` of the zero-padded
    spectrum with ``s=shape``. The output grid may differ from the input one (spectral
    resampling) as long as it holds the kept modes. ``add`` (the output's shape) is added to
    the result inside the last matmul: one kernel and no intermediate tensor.
    """
    check_norm(norm)
    d = len(shape)
    modes, rest = tuple(u.shape[:d]), tuple(u.shape[d:])
    if trailing < 0 or trailing > len(rest):
        raise ValueError(f"trailing: expected 0..{len(rest)}, got {trailing}")
    lead, trail = rest[:len(rest) - trailing], rest[len(rest) - trailing:]
    _check_modes(modes, shape)
    for j in reversed(range(d - 1)):
        n, m = shape[j], modes[j]
        t = u.reshape(math.prod(modes[:j]), m, -1)
        if _use_matmul(n, m):
            u = torch.matmul(_dft_matrix(n, m, norm, True, t.dtype, t.device), t)
        else:
            full = t.new_zeros(t.shape[0], n, t.shape[2])
            full = full.index_copy(1, _centred_index(n, m, t.device), t)
            u = torch.fft.ifft(full, dim=1, norm=norm)
    u = u.reshape(*shape[:-1], modes[-1], *lead, *trail)
    to_front = (tuple(range(d, d + len(lead))), tuple(range(len(lead))))
    n, m = shape[-1], modes[-1]
    if not _use_matmul(n, m):
        y = torch.fft.irfft(u.movedim(*to_front), n=n, dim=-1 - len(trail), norm=norm)
        return y if add is None else y + add
    mat = _rdft_matrix(n, m, norm, True, u.real.dtype, u.device)
    if not trail:
        real = torch.view_as_real(u.movedim(*to_front)).reshape(-1, 2 * m)
        y = real @ mat if add is None else torch.addmm(add.reshape(-1, n), real, mat)
        return y.view(*lead, *shape)
    # (.., m, *trail, re/im) -> (.., m, re/im, *trail): the rows the inverse matrix expects.
    real = torch.view_as_real(u.movedim(*to_front)).movedim(-1, d + len(lead))
    real = real.reshape(-1, 2 * m, math.prod(trail))
    if add is None:
        y = torch.matmul(mat.mT, real)
    else:
        batch = real.shape[0]
        y = torch.baddbmm(add.reshape(batch, n, -1), mat.mT.expand(batch, -1, -1), real)
    return y.view(*lead, *shape, *trail)


def fourier_resample(x: Tensor, shape: Sequence[int]) -> Tensor:
    """Band-limited interpolation of a periodic real field onto another grid.

    ``x``: ``(*lead, n_1..n_d)`` -> ``(*lead, *shape)``. Keeps the frequencies both grids
    resolve without a Nyquist ambiguity, so a trigonometric polynomial below both Nyquist
    limits is reproduced exactly.
    """
    d = len(shape)
    common = [min(a, b) for a, b in zip(x.shape[-d:], shape)]
    modes = [c - (1 - c % 2) for c in common[:-1]] + [(common[-1] - 1) // 2 + 1]
    return truncated_irfftn(truncated_rfftn(x, modes), shape)
