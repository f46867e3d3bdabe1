"""Shared random fields: GRF statistics, determinism, and that every family draws the same."""

import math

import torch

from sciops import pdes, random_fields, spectral


def test_grf_spectrum_matches_target_and_is_deterministic():
    shape, L, alpha, tau = (32, 32), (1.0, 1.0), 2.5, 7.0
    g = torch.Generator().manual_seed(123)
    u = random_fields.grf(1000, shape, L, alpha, tau, generator=g)
    npts = math.prod(shape)
    power = (spectral.rfft(u, 2).abs() ** 2 / npts**2).mean(0)
    target = random_fields.grf_spectrum(shape, L, alpha, tau)
    # compare shell by shell (|m| integer bands), low shells with many samples each
    m2 = spectral.wavenumber_magnitude(shape, (2 * math.pi,) * 2)
    for shell in range(1, 10):
        band = (m2 >= shell**2) & (m2 < (shell + 1) ** 2)
        ratio = power[band].sum() / target[band].sum()
        assert abs(ratio - 1) < 0.05, (shell, float(ratio))
    assert power[0, 0] < 1e-20  # mean mode is zero
    u2 = random_fields.grf(3, shape, L, alpha, tau, generator=torch.Generator().manual_seed(7))
    u3 = random_fields.grf(3, shape, L, alpha, tau, generator=torch.Generator().manual_seed(7))
    assert torch.equal(u2, u3)
    assert not torch.equal(u2, random_fields.grf(3, shape, L, alpha, tau,
                                                 generator=torch.Generator().manual_seed(8)))


def test_grf_sigma_scales_the_field_and_defaults_to_the_fno_convention():
    shape, L, alpha, tau = (16, 16), (1.0, 1.0), 2.5, 7.0

    def draw(sigma):
        return random_fields.grf(2, shape, L, alpha, tau, sigma,
                                 generator=torch.Generator().manual_seed(3))
    assert torch.allclose(draw(2.0), 2 * draw(1.0), rtol=1e-12, atol=1e-14)
    assert torch.allclose(draw(None), tau ** (alpha - 1.0) * draw(1.0), rtol=1e-12, atol=1e-14)
    assert draw(None).dtype == torch.float64
    assert random_fields.grf(1, shape, L, generator=torch.Generator().manual_seed(3),
                             dtype=torch.float32).dtype == torch.float32


def test_the_families_draw_from_the_shared_module():
    """Same seed, same numbers: the generators' inputs are these draws (no private copies)."""
    def seed():
        return torch.Generator().manual_seed(11)

    poisson = pdes.get("poisson2d")
    p = poisson.make_params({"resolution": 17, "modes": 4})
    assert torch.equal(poisson.sample_inputs(p, 2, seed())["f_hat"],
                       random_fields.sine_coefficients(2, 4, p.decay, seed()))
    wave = pdes.get("wave2d")
    p = wave.make_params({"resolution": 17, "modes": 4, "medium": "grf"})
    g = seed()
    coeffs = random_fields.sine_coefficients(2, 4, p.decay, g)
    c = random_fields.cosine_grf(2, 17, p.c_alpha, p.c_tau, generator=g)
    inputs = wave.sample_inputs(p, 2, seed())
    assert torch.equal(inputs["coeffs"], coeffs)
    assert torch.equal(inputs["c"], p.c * torch.exp(p.c_sigma * c / c.std(dim=(-2, -1),
                                                                          keepdim=True)))
    darcy = pdes.get("darcy2d")
    p = darcy.make_params({"resolution": 17})
    a = random_fields.threshold(random_fields.cosine_grf(2, 17, p.grf_alpha, p.grf_tau,
                                                         generator=seed()), p.a_high, p.a_low)
    assert torch.equal(darcy.sample_inputs(p, 2, seed())["a"], a)
    assert set(a.unique().tolist()) == {p.a_low, p.a_high}
    ns = pdes.get("ns2d")
    p = ns.make_params({"resolution": 16, "output_resolution": 16})
    w0 = random_fields.grf(2, (16, 16), (p.length,) * 2, p.ic_alpha, p.ic_tau, p.ic_sigma,
                           generator=seed(), dtype=p.torch_dtype)
    assert torch.equal(ns.sample_inputs(p, 2, seed())["w0"], w0)
