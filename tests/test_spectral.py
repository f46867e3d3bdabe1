"""Spectral core: exactness on trigonometric polynomials, dtypes, caching, interpolation."""

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


def test_operators_keep_float32():
    u, _, _, lap = _trig((16, 12), L2)
    for out in (spectral.laplacian(u.float(), L2), spectral.inverse_laplacian(lap.float(), L2),
                spectral.divergence((u.float(), u.float()), L2)):
        assert out.dtype == torch.float32
    assert (spectral.inverse_laplacian(lap.float(), L2).double() - u).abs().max() < 1e-5


@pytest.mark.parametrize("shape", [(8, 6), (7, 9)])
def test_interpolate_is_the_trigonometric_interpolant(shape):
    # a trig polynomial below Nyquist is reproduced at any point, with exact derivatives;
    # the Nyquist modes of even grids are dropped (their interpolant is not unique)
    L = (2.0, 3.0)
    a, b = 2 * math.pi / L[0], 2 * math.pi / L[1]
    x, y = spectral.grid(shape, L, torch.float64, "cpu")
    X, Y = x[:, None], y[None, :]
    u = torch.cos(a * X - 2 * b * Y) + 0.5 * torch.sin(3 * a * X)
    if shape[0] % 2 == 0:
        u = u + 0.25 * torch.cos(shape[0] / 2 * a * X)  # Nyquist row: dropped
    g = torch.Generator().manual_seed(0)
    px = (torch.rand(50, generator=g, dtype=torch.float64) * 2.0).requires_grad_()
    py = torch.rand(50, generator=g, dtype=torch.float64) * 3.0
    got = spectral.interpolate(u, L, [px, py], chunk=16)
    exact = torch.cos(a * px - 2 * b * py) + 0.5 * torch.sin(3 * a * px)
    assert got.shape == (50,) and got.dtype == torch.float64
    assert torch.allclose(got, exact, atol=1e-12)
    (gx,) = torch.autograd.grad(got.sum(), px)
    exact_x = -a * torch.sin(a * px - 2 * b * py) + 1.5 * a * torch.cos(3 * a * px)
    assert torch.allclose(gx, exact_x.detach(), atol=1e-10)
    assert spectral.interpolate(u.float(), L, [px.detach(), py]).dtype == torch.float32


def test_transforms_name_a_bad_norm():
    with pytest.raises(ValueError) as e:
        spectral.truncated_rfftn(torch.zeros(2, 8), [3], norm="unit")
    assert str(e.value) == ("norm: expected one of ('forward', 'backward', 'ortho'), "
                            "got 'unit'")


def test_truncated_transforms_shapes_and_fused_add():
    with pytest.raises(ValueError) as e:
        spectral.truncated_rfftn(torch.zeros(4), [2, 2])
    assert str(e.value) == ("expected 2 spatial axes followed by 0 trailing axes, "
                            "got a tensor of shape (4,)")
    x = torch.randn(3, 16, 12, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    u = spectral.truncated_rfftn(x, [4, 3])  # few modes: the matmul path
    add = torch.randn(3, 16, 12, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    plain = spectral.truncated_irfftn(u, (16, 12))
    assert torch.allclose(spectral.truncated_irfftn(u, (16, 12), add=add), plain + add,
                          atol=1e-12)


def test_spectral_conv_init_transform_and_copy():
    from neuralop.layers.spectral_convolution import SpectralConv as NeuralopConv

    from sciops.models.spectral_conv import SpectralConv
    conv = SpectralConv(1, 4000, 2, init_std=0.1)
    b = conv.bias.detach()
    assert b.shape == (4000, 1) and abs(float(b.std()) - 0.1) < 0.01
    assert float(b.abs().max()) < 0.6  # normal, not heavy-tailed
    x = torch.randn(2, 1, 8, dtype=torch.float64)
    assert torch.allclose(conv.transform(x, output_shape=(16,)),
                          spectral.fourier_resample(x, (16,)))
    assert conv.transform(x) is x
    ref = NeuralopConv(2, 3, (4, 4), factorization="cp", rank=0.3)
    assert SpectralConv.from_neuralop(ref).rank == 0.3


def test_sine_series_at_points_equals_the_synthesized_grid():
    """The sine series evaluated at scattered points (PINN/GP inputs) equals the grid
    synthesis at the grid's own points, for a non-square set of modes."""
    coeffs = torch.randn(5, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    n = 9
    grid = spectral.sine_basis(n, 5) @ coeffs @ spectral.sine_basis(n, 3).T  # (x, y)
    x, y = torch.meshgrid(torch.linspace(0, 1, n, dtype=torch.float64),
                          torch.linspace(0, 1, n, dtype=torch.float64), indexing="ij")
    at = spectral.sine_series_at(coeffs, x.flatten(), y.flatten())
    assert at.shape == (n * n,)
    assert torch.allclose(at.reshape(n, n), grid, atol=1e-13)


def test_divergence_names_the_component_count():
    with pytest.raises(ValueError, match="divergence: expected 2 components, got 1"):
        spectral.divergence([torch.zeros(4, 4)], (1.0, 1.0))
