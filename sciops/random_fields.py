"""Random fields shared by the PDE families: every random input a generator draws from.

All draws are made on the CPU in float64 from the given ``torch.Generator`` (so a seed gives
the same field on every device and at every storage dtype); callers convert afterwards.

* :func:`grf` — Gaussian random field ``N(0, sigma² (-Laplacian + tau² I)^(-alpha))`` on a
  periodic box (FNO's Navier–Stokes initial vorticity, periodic wave media);
* :func:`cosine_grf` — the same covariance with the Neumann Laplacian on ``[0,1]²`` (FNO's
  Darcy coefficient; smooth under even reflection, so Dirichlet problems use it);
* :func:`threshold` — a two-valued field from the sign of a GRF (FNO's Darcy coefficient);
* :func:`sine_coefficients` — random sine-series coefficients with power-law decay (CNO's
  Poisson source, wave initial displacements);
* :func:`smooth_periodic` — a random truncated Fourier series scaled to a given maximum
  (initial data of the semilinear families, :func:`sciops.pdes.semilinear.smooth_random`);
* :func:`pdebench_sines`, :func:`lpsda_sines` — the random sine sums of PDEBench's and
  LPSDA's 1D data (:mod:`sciops.pdes.catalog.conventions`).

Family-specific draws that are tied to their family's closed form or operators stay with
the family (``antiderivative1d``'s RBF process, ``les3d``'s solenoidal spectrum-matched
field, ``mpm2d``'s particle blocks).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor

from sciops import spectral

__all__ = ["grf", "grf_spectrum", "cosine_grf", "threshold", "sine_coefficients",
           "smooth_periodic", "pdebench_sines", "lpsda_sines"]


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
    k2 = spectral.wavenumber_magnitude(shape, lengths, dtype, device)
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
    L = tuple(float(v) for v in lengths)
    if len(L) != len(shape) or any(v <= 0 for v in L):
        raise ValueError(f"lengths: expected {len(shape)} positive box lengths, got {lengths}")
    npts = math.prod(shape)
    white = torch.randn((n, *shape), generator=generator, dtype=torch.float64)
    # rfftn of unit white noise has E|w_k|² = npts, so scale by sqrt(var / npts) * npts.
    var = grf_spectrum(shape, L, alpha, tau, sigma)
    field_hat = spectral.rfft(white, len(shape)) * torch.sqrt(var * npts)
    field = spectral.irfft(field_hat, shape)
    return field.to(dtype=dtype, device=device)


def cosine_grf(n: int, resolution: int, alpha: float, tau: float, *,
               generator: torch.Generator | None = None, modes: int | None = None) -> Tensor:
    """Samples of ``N(0, tau^(2 alpha - 2) (-Laplacian + tau² I)^(-alpha))`` on ``[0,1]²``
    with the Neumann Laplacian, on the vertex grid ``x_j = j / (resolution - 1)``.

    Karhunen-Loeve series over the Neumann eigenfunctions
    ``phi_k(x) phi_l(y)``, ``phi_0 = 1``, ``phi_k = sqrt(2) cos(pi k x)``, eigenvalues
    ``pi² (k² + l²)``, for ``k, l < modes`` (default ``resolution``, as the FNO data), mean
    mode dropped. With i.i.d. standard normal weights this is exactly the FNO ``GRF.m``
    field (there evaluated at cell centres). Reflecting it evenly about any side adds no
    kink, which is why Dirichlet problems here use it rather than the periodic
    :func:`grf`. Returns ``(n, resolution, resolution)`` float64 (CPU).
    """
    modes = resolution if modes is None else modes
    k = torch.arange(modes, dtype=torch.float64)
    x = torch.linspace(0.0, 1.0, resolution, dtype=torch.float64)
    norm = torch.where(k == 0, 1.0, math.sqrt(2.0))
    phi = torch.cos(math.pi * x[:, None] * k[None, :]) * norm
    k2 = k[:, None] ** 2 + k[None, :] ** 2
    sqrt_eig = tau ** (alpha - 1) * (math.pi**2 * k2 + tau**2) ** (-alpha / 2)
    sqrt_eig[0, 0] = 0.0
    xi = torch.randn((n, modes, modes), generator=generator, dtype=torch.float64)
    return spectral.synthesize(sqrt_eig * xi, phi)


def threshold(g: Tensor, high: float, low: float) -> Tensor:
    """``high`` where ``g >= 0``, ``low`` elsewhere, in the dtype of ``g`` (same shape)."""
    return torch.where(g >= 0, high, low).to(g.dtype)


def sine_coefficients(n: int, modes: int, decay: float, generator: torch.Generator) -> Tensor:
    """``(pi / K²) a_kl (k² + l²)^(-decay)``, ``a_kl ~ U(-1, 1)``, ``k, l = 1..K``:
    ``(n, K, K)`` float64 coefficients of a sine series (:func:`sciops.spectral.synthesize`
    with :func:`sciops.spectral.sine_basis`), the CNO Poisson source convention."""
    a = 2.0 * torch.rand((n, modes, modes), generator=generator, dtype=torch.float64) - 1.0
    return (math.pi / modes**2) * a * spectral.mode_numbers_squared(modes) ** (-decay)


def smooth_periodic(n: int, shape: Sequence[int], modes: int, generator: torch.Generator, *,
                    mean: float = 0.0, amplitude: float = 1.0) -> Tensor:
    """Random truncated Fourier series on the periodic grid ``shape``: ``(n, *shape)`` float64.

    Independent standard normal coefficients for every wavenumber ``|m_i| <= modes`` (mean
    mode excluded), each sample scaled to ``max |u - mean| = amplitude``.
    """
    shape = tuple(shape)
    ndim = len(shape)
    hat_shape = (*shape[:-1], shape[-1] // 2 + 1)
    c = torch.randn((n, *hat_shape, 2), generator=generator, dtype=torch.float64)
    c = torch.view_as_complex(c)
    keep = torch.ones(hat_shape, dtype=torch.bool)
    for i, m in enumerate(shape):
        freq = torch.fft.rfftfreq(m, 1.0 / m) if i == ndim - 1 else torch.fft.fftfreq(m, 1.0 / m)
        view = [1] * ndim
        view[i] = freq.numel()
        keep = keep & (freq.abs() <= modes).reshape(view)
    keep.reshape(-1)[0] = False
    u = spectral.irfft(c * keep, shape)
    u = u / u.flatten(1).abs().amax(1).reshape(-1, *([1] * ndim))
    return mean + amplitude * u


def pdebench_sines(n: int, resolution: int, length: float, modes: int, kinks: float,
                   generator: torch.Generator, *, normalize: bool = False) -> Tensor:
    """PDEBench's random 1D initial condition (``init_multi``) on ``x_i = i length /
    resolution``: ``(n, resolution)`` float64.

    ``u = sum_{j=1}^{J} A_j sin(2 pi c_j j x / L + phi_j)``, ``J = modes``, where two draws
    of ``j`` (with replacement) give the counts ``c_j`` (an undrawn ``j`` adds the constant
    ``A_j sin phi_j``), ``A_j ~ U[0, 1)``, ``phi_j ~ U[0, 2 pi)``. With probability
    ``kinks`` ``u -> |u|``; a random sign; with probability ``kinks`` ``u`` times the
    window ``(tanh((x - a)/w) - tanh((x - b)/w))/2``, ``w = 0.01 L``, ``a/L ~ U[0.1, 0.45)``,
    ``b/L ~ U[0.55, 0.9)``. ``normalize`` rescales each sample to ``[0, 1]`` (PDEBench's
    diffusion–reaction data). PDEBench divides by ``L - dx`` instead of ``L``, which leaves
    its sines slightly aperiodic; here they are periodic.
    """
    g = {"generator": generator, "dtype": torch.float64}
    x = torch.arange(resolution, dtype=torch.float64) * (length / resolution)
    j = torch.arange(1, modes + 1)
    counts = (torch.randint(1, modes + 1, (n, 2, 1), generator=generator) == j).sum(1)
    amp, phase = torch.rand(n, modes, 1, **g), 2 * math.pi * torch.rand(n, modes, 1, **g)
    u = (amp * torch.sin((counts * j)[..., None] * x * (2 * math.pi / length) + phase)).sum(1)
    u = torch.where(torch.rand(n, 1, **g) < kinks, u.abs(), u)
    u = torch.where(torch.rand(n, 1, **g) < 0.5, -u, u)
    a = length * (0.1 + 0.35 * torch.rand(n, 1, **g))
    b = length * (0.55 + 0.35 * torch.rand(n, 1, **g))
    w = 0.01 * length
    window = 0.5 * (torch.tanh((x - a) / w) - torch.tanh((x - b) / w))
    u = torch.where(torch.rand(n, 1, **g) < kinks, u * window, u)
    if normalize:
        u = u - u.amin(1, keepdim=True)
        u = u / u.amax(1, keepdim=True)
    return u


def lpsda_sines(n: int, resolution: int, length: float, modes: int,
                generator: torch.Generator) -> Tensor:
    """LPSDA's random 1D initial condition on ``x_i = i length / resolution``, ``(n,
    resolution)`` float64: ``u = sum_{i=1}^{10} A_i sin(2 pi l_i x / L + phi_i)``,
    ``A_i ~ U[-0.5, 0.5)``, ``l_i`` uniform in ``1..modes`` (LPSDA: 1, 2),
    ``phi_i ~ U[0, 2 pi)``."""
    g = {"generator": generator, "dtype": torch.float64}
    x = torch.arange(resolution, dtype=torch.float64) * (length / resolution)
    amp, phase = torch.rand(n, 10, 1, **g) - 0.5, 2 * math.pi * torch.rand(n, 10, 1, **g)
    l = torch.randint(1, modes + 1, (n, 10, 1), generator=generator)
    return (amp * torch.sin(l * x * (2 * math.pi / length) + phase)).sum(1)
