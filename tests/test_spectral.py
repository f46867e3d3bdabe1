"""Spectral core: exactness on trigonometric polynomials, GRF statistics and determinism."""

import math

import pytest
import torch

from sciops import spectral

L2 = (1.0, 2 * math.pi)


def _trig(shape, lengths):
    """u = sin(2 k1 x) cos(3 k2 y) + cos(k1 x + 5 k2 y), k_i = 2 pi / L_i, and its derivatives."""
    x, y = spectral.grid(shape, lengths, torch.float64, "cpu")
    X, Y = x[:, None], y[None, :]
    a, b = 2 * math.pi / lengths[0], 2 * math.pi / lengths[1]
    u = torch.sin(2 * a * X) * torch.cos(3 * b * Y) + torch.cos(a * X + 5 * b * Y)
    ux = 2 * a * torch.cos(2 * a * X) * torch.cos(3 * b * Y) - a * torch.sin(a * X + 5 * b * Y)
    uy = -3 * b * torch.sin(2 * a * X) * torch.sin(3 * b * Y) - 5 * b * torch.sin(a * X + 5 * b * Y)
    lap = -((2 * a) ** 2 + (3 * b) ** 2) * torch.sin(2 * a * X) * torch.cos(3 * b * Y) \
        - (a**2 + (5 * b) ** 2) * torch.cos(a * X + 5 * b * Y)
    return u, ux, uy, lap


@pytest.mark.parametrize("shape", [(32, 32), (24, 17), (33, 40)])
def test_derivatives_exact_on_trig_polynomials(shape):
    u, ux, uy, lap = _trig(shape, L2)
    gx, gy = spectral.gradient(u[None], L2)
    assert (gx[0] - ux).abs().max() < 1e-10
    assert (gy[0] - uy).abs().max() < 1e-10
    assert (spectral.laplacian(u, L2) - lap).abs().max() < 1e-10
    assert (spectral.divergence((u, u), L2) - (ux + uy)).abs().max() < 1e-10
    # inverse Laplacian recovers the zero-mean field
    assert (spectral.inverse_laplacian(lap, L2) - u).abs().max() < 1e-10


def test_3d_gradient_and_leray_projection():
    shape, L = (16, 12, 10), (2 * math.pi,) * 3
    x, y, z = spectral.grid(shape, L, torch.float64, "cpu")
    X, Y, Z = x[:, None, None], y[None, :, None], z[None, None, :]
    phi = torch.sin(X) * torch.cos(2 * Y) * torch.sin(3 * Z)
    # solenoidal part: curl of a potential; gradient part: grad(phi)
    sol = (torch.cos(Y) * torch.sin(Z) + 0 * X, torch.cos(Z) * torch.sin(X) + 0 * Y,
           torch.cos(X) * torch.sin(Y) + 0 * Z)
    grad = spectral.gradient(phi, L)
    assert (grad[2] - 3 * torch.sin(X) * torch.cos(2 * Y) * torch.cos(3 * Z)).abs().max() < 1e-10
    ks = spectral.wavenumbers(shape, L, torch.float64, "cpu")
    mixed = [spectral.rfft(s + g, 3) for s, g in zip(sol, grad)]
    proj = [spectral.irfft(c, shape) for c in spectral.leray_projection(mixed, ks)]
    for p, s in zip(proj, sol):
        assert (p - s).abs().max() < 1e-10


def test_float32_and_cache_reuse():
    u, ux, _, _ = _trig((32, 32), L2)
    gx32 = spectral.gradient(u.float(), L2)[0]
    assert gx32.dtype == torch.float32
    assert (gx32.double() - ux).abs().max() / ux.abs().max() < 1e-5
    a = spectral.wavenumbers((32, 32), L2, torch.float32, "cpu")
    b = spectral.wavenumbers((32, 32), L2, torch.float32, "cpu")
    assert a[0] is b[0]  # cached: repeated calls cost no set-up


def test_dealias_mask_two_thirds():
    m = spectral.dealias_mask((64, 64))
    assert m[21, 0] == 1 and m[22, 0] == 0 and m[64 - 21, 0] == 1 and m[0, 22] == 0
    assert int(m.sum()) == 43 * 22


def test_grf_spectrum_matches_target_and_is_deterministic():
    shape, L, alpha, tau = (32, 32), (1.0, 1.0), 2.5, 7.0
    g = torch.Generator().manual_seed(123)
    u = spectral.grf(1000, shape, L, alpha, tau, generator=g)
    npts = math.prod(shape)
    power = (spectral.rfft(u, 2).abs() ** 2 / npts**2).mean(0)
    target = spectral.grf_spectrum(shape, L, alpha, tau)
    # compare shell by shell (|m| integer bands), low shells with many samples each
    m2 = spectral.wavenumber_magnitude(shape, (2 * math.pi,) * 2)
    for shell in range(1, 10):
        band = (m2 >= shell**2) & (m2 < (shell + 1) ** 2)
        ratio = power[band].sum() / target[band].sum()
        assert abs(ratio - 1) < 0.05, (shell, float(ratio))
    assert power[0, 0] < 1e-20  # mean mode is zero
    u2 = spectral.grf(3, shape, L, alpha, tau, generator=torch.Generator().manual_seed(7))
    u3 = spectral.grf(3, shape, L, alpha, tau, generator=torch.Generator().manual_seed(7))
    assert torch.equal(u2, u3)
    assert not torch.equal(u2, spectral.grf(3, shape, L, alpha, tau,
                                            generator=torch.Generator().manual_seed(8)))
