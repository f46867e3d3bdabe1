"""The derived machinery of equation-level PDEs (sciops/pdes/semilinear.py): parameters,
random initial fields, coordinates, domain, Fourier symbol, solve and residual, checked on
small test-local families with closed-form answers."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from sciops import pdes, spectral
from sciops.pdes.base import param
from sciops.pdes.semilinear import SemilinearParams, SemilinearPDE, register_dims, smooth_random


class Decay(SemilinearPDE):
    """u_t = -a u + f, v_t = nu v_xx + u (coupling in N): every term exact in closed form."""

    name, ndim = "decay-test", 1
    fields = {"u": ("1", "decaying"), "v": ("1", "diffusing")}

    @dataclass(frozen=True)
    class Params(SemilinearParams.defaults(resolution=16, ic_modes=2, t_final=0.5,
                                           n_records=5, dt=0.01, dtype="float64")):
        a: float = param(2.0, "decay rate (1/time)")
        nu: float = param(0.05, "diffusivity (length²/time)")
        f: float = param(0.0, "forcing amplitude (1/time)")

    def linear(self, u, d, p):
        return {"u": -p.a * u["u"], "v": p.nu * d.laplacian(u["v"])}

    def nonlinear(self, u, d, p):
        return {"v": u["u"]}  # a field returned as it is must still be transformed

    def forcing(self, x, p):
        return {"u": p.f * torch.cos(2 * math.pi * x["x"] / p.length)}

    def initial(self, p, n, generator):
        return {"u": smooth_random(p, n, generator), "v": smooth_random(p, n, generator)}


def test_params_validation_messages():
    P = Decay.Params
    assert P().stored_resolution == 16 and P(output_resolution=8).stored_resolution == 8
    assert P().torch_dtype == torch.float64 and P(dtype="float32").torch_dtype == torch.float32
    with pytest.raises(ValueError) as e:
        P(output_resolution=6)
    assert str(e.value) == ("output_resolution=6 must divide resolution=16 "
                            "(data are stored by subsampling)")
    assert P(ic_modes=7).ic_modes == 7
    with pytest.raises(ValueError) as e:
        P(ic_modes=8)
    assert str(e.value) == "ic_modes=8 must be below resolution/2=8"


@pytest.mark.parametrize("ndim", [1, 2])
def test_smooth_random_band_limit_zero_mean_and_amplitude(ndim):
    p = Decay.Params(resolution=12, ic_modes=3)
    u = smooth_random(p, 4, torch.Generator().manual_seed(0), ndim, mean=0.5, amplitude=2.0)
    assert u.shape == (4, *(12,) * ndim) and u.dtype == torch.float64
    full = torch.full((4,), 2.0, dtype=torch.float64)
    assert torch.allclose((u - 0.5).flatten(1).abs().amax(1), full)
    assert torch.allclose(u.flatten(1).mean(1), full / 4)  # mean mode excluded
    power = torch.fft.fftn(u - 0.5, dim=tuple(range(1, ndim + 1))).abs().sum(0)
    m = torch.fft.fftfreq(12, 1 / 12).abs()
    high = (m > 3)
    for axis in range(ndim):
        view = [1] * ndim
        view[axis] = 12
        assert power[high.reshape(view).expand_as(power)].max() < 1e-10
    # every kept mode is drawn: mode 3 along each axis carries power
    assert power.reshape(-1)[3 * 12 ** (ndim - 1)] > 1e-3 and power.reshape(-1)[3] > 1e-3
    same = smooth_random(p.replace(dtype="float32"), 4, torch.Generator().manual_seed(0), ndim,
                         mean=0.5, amplitude=2.0)
    assert same.dtype == torch.float32 and torch.allclose(same.double(), u, atol=1e-6)


def test_coords_domain_axes_and_metadata():
    pde = Decay()
    p = Decay.Params(length=2.0, output_resolution=4, t_final=1.0, n_records=4)
    c = pde.coords(p)
    assert c["x"][0] == "x" and np.allclose(c["x"][1], [0.0, 0.5, 1.0, 1.5])
    assert c["t"][0] == "time" and np.allclose(c["t"][1], [0, 0.25, 0.5, 0.75, 1.0])
    assert pde.axes == ("x",) and pde.lengths(p) == (2.0,)
    assert pde.variables["v"].dims == ("sample", "time", "x")
    assert (pde.variables["v"].units, pde.variables["v"].long_name) == ("1", "diffusing")
    dom = pde.domain(p)
    assert dom.box == {"t": (0.0, 1.0), "x": (0.0, 2.0)}
    assert dom.outputs == ("u", "v") and dom.periodic == ("x",)
    assert [(c.name, c.coord, c.value, c.sets) for c in dom.conditions] == [
        ("u(t=0)", "t", 0.0, ("u", "u0")), ("v(t=0)", "t", 0.0, ("v", "v0"))]
    g = pde.grid_coords(p, (4,), torch.float64, "cpu")
    assert torch.allclose(g["x"], torch.tensor([0.0, 0.5, 1.0, 1.5], dtype=torch.float64))
    heat2 = pdes.get("heat2d")
    g2 = heat2.grid_coords(heat2.make_params({"length": 2.0}), (4, 6), torch.float64, "cpu")
    assert g2["x"].shape == (4, 1) and g2["y"].shape == (1, 6)
    assert torch.allclose(g2["y"][0], torch.arange(6, dtype=torch.float64) / 3)


def test_symbol_is_the_fourier_symbol_of_l():
    pde = Decay()
    p = Decay.Params(length=2.0, resolution=8, ic_modes=2)
    sym = pde.symbol(p)
    k = torch.fft.rfftfreq(8, 1 / 8, dtype=torch.float64) * 2 * math.pi / 2.0
    assert sym.dtype == torch.float64 and sym.shape == (2, 5)
    assert torch.allclose(sym[0], torch.full((5,), -2.0, dtype=torch.float64))
    assert torch.allclose(sym[1], -0.05 * k**2)


def test_coupled_linear_part_is_refused():
    class Coupled(Decay):
        def linear(self, u, d, p):
            return {"u": -p.a * u["u"] + u["v"], "v": p.nu * d.laplacian(u["v"])}
    with pytest.raises(ValueError) as e:
        Coupled().symbol(Decay.Params())
    assert str(e.value) == ("decay-test: the linear part of 'u' involves 'v'; L must be "
                            "diagonal (move couplings into the nonlinear part)")


def test_complex_symbol_of_advection():
    adv = pdes.get("advection1d")
    p = adv.make_params({"resolution": 8, "length": 1.0, "beta": 2.0, "ic_modes": 2})
    sym = adv.symbol(p)
    k = torch.fft.rfftfreq(8, 1 / 8, dtype=torch.float64) * 2 * math.pi
    assert sym.is_complex() and torch.allclose(sym[0], -2.0j * k * (k < 8 * math.pi))


def test_solve_matches_the_closed_form_with_forcing_coupling_and_subsampling():
    # u = (u0 - s) e^{-a t} + s with s = f cos(2 pi x / L) / a; v_hat of the mean mode
    # integrates u's mean: with zero-mean initial fields, mean(v)(t) = 0 and the mode-1 part of
    # v follows v' = -nu k² v + u_1. Checked on u and on the whole v against a fine-step
    # reference of the scalar ODEs per Fourier mode.
    pde = Decay()
    p = Decay.Params(f=0.4, output_resolution=8, method="etdrk4", dt=0.01)
    inp = pde.sample_inputs(p, 2, torch.Generator().manual_seed(1))
    assert set(inp) == {"u0", "v0"} and inp["u0"].shape == (2, 16)
    out = pde.solve(p, inp)
    assert out["u"].shape == (2, 6, 8) and out["v"].shape == (2, 6, 8)
    t = torch.tensor(pde.coords(p)["t"][1])[None, :, None]
    x = torch.arange(16, dtype=torch.float64) / 16
    s = 0.4 * torch.cos(2 * math.pi * x) / 2.0
    u = (inp["u0"][:, None] - s) * torch.exp(-2.0 * t) + s
    assert torch.allclose(out["u"], u[..., ::2], atol=1e-9)
    # v per Fourier mode: v_k(t) = e^{l t} v_k(0) + int_0^t e^{l (t - r)} u_k(r) dr, exact
    k = torch.fft.fftfreq(16, 1 / 16, dtype=torch.float64) * 2 * math.pi
    lam = (-0.05 * k**2)[None, None]
    u0k, sk = torch.fft.fft(inp["u0"])[:, None], torch.fft.fft(s)[None, None]
    v0k = torch.fft.fft(inp["v0"])[:, None]

    def phi(z):  # (e^z - 1) / z, and 1 at z = 0
        return torch.where(z == 0, 1.0, torch.expm1(z) / torch.where(z == 0, 1.0, z))
    vk = (torch.exp(lam * t) * v0k + t * phi(lam * t) * sk
          + (u0k - sk) * t * torch.exp(lam * t) * phi((-2.0 - lam) * t))
    v = torch.fft.ifft(vk).real
    assert torch.allclose(out["v"], v[..., ::2], atol=1e-7)


def test_solve_checks_the_input_shape():
    pde = Decay()
    p = Decay.Params()
    bad = {"u0": torch.zeros(2, 8), "v0": torch.zeros(2, 16)}
    with pytest.raises(ValueError) as e:
        pde.solve(p, bad)
    assert str(e.value) == "u0: expected shape (batch, 16), got (2, 8)"


def test_perturb_scales_n_or_l():
    pde = Decay()
    p = Decay.Params()
    ode = pde.ode(p, perturb=3.0)
    u_hat = torch.fft.rfft(torch.randn(1, 2, 16, generator=torch.Generator().manual_seed(2),
                                       dtype=torch.float64))
    n1 = pde.ode(p).nonlinear(u_hat)
    assert torch.allclose(ode.nonlinear(u_hat), 3.0 * n1)
    heat = pdes.get("heat1d")
    hp = heat.make_params({"resolution": 16, "ic_modes": 2})
    assert torch.allclose(heat.ode(hp, perturb=3.0).linear, 3.0 * heat.symbol(hp).to(
        heat.ode(hp).linear.dtype))


def test_grid_residual_of_the_closed_form_is_small_and_sees_the_forcing():
    pde = Decay()
    p = Decay.Params(f=0.4)
    t = np.linspace(0.0, 0.5, 41)
    x = torch.arange(16, dtype=torch.float64) / 16
    s = 0.4 * torch.cos(2 * math.pi * x) / 2.0
    u0 = torch.sin(2 * math.pi * x)
    tt = torch.tensor(t)[:, None]
    u = ((u0 - s) * torch.exp(-2.0 * tt) + s)[None]
    # v = 0 would need u = 0: use the v-equation's residual of v = 0 as a check of N
    fields = {"u": u, "v": torch.zeros_like(u)}
    r = pde.residual(fields, {"t": t}, p)
    assert r.shape == (1, 41, 2, 16)
    assert r[:, :, 0].abs().max() < 1e-5  # fourth-order time differences
    assert torch.allclose(r[:, :, 1], -u)  # v_t - nu v_xx - u with v = 0
    # fewer than 5 records: second-order differences, still consistent
    r2 = pde.residual({"u": u[:, :3], "v": fields["v"][:, :3]}, {"t": t[:3]}, p)
    assert r2[:, :, 0].abs().max() < 5e-3


def test_autograd_residual_and_point_sample():
    pde = Decay()
    p = Decay.Params(f=0.4)
    t = torch.linspace(0, 0.5, 7, dtype=torch.float64, requires_grad=True)
    x = torch.linspace(0, 1, 7, dtype=torch.float64, requires_grad=True)
    s = 0.4 * torch.cos(2 * math.pi * x) / 2.0
    u = (torch.sin(2 * math.pi * x) - s) * torch.exp(-2.0 * t) + s
    r = pde.residual({"u": u, "v": torch.zeros_like(u) + 0 * x}, {"t": t, "x": x}, p)
    assert r.shape == (7, 2)
    assert r[:, 0].abs().max() < 1e-12
    assert torch.allclose(r[:, 1], -u)
    inp = pde.sample_inputs(p, 2, torch.Generator().manual_seed(3))
    given = pde.point_sample(p, inp).given
    grid = torch.arange(16, dtype=torch.float64) / 16
    vals = given({"x": grid})
    assert torch.allclose(vals["u0"], inp["u0"][0]) and torch.allclose(vals["v0"], inp["v0"][0])


def test_fields_only_differentiated_are_not_transformed_back():
    # N = d.x(u): u is only handed to the derivative provider, so the stepper reads no grid
    # values; the result is still the exact derivative
    class Drift(Decay):
        def nonlinear(self, u, d, p):
            return {"v": d.x(u["u"])}
    p = Decay.Params()
    x = torch.arange(16, dtype=torch.float64) / 16
    u_hat = torch.fft.rfft(torch.stack([torch.sin(2 * math.pi * x), 0 * x])[None])
    n = torch.fft.irfft(Drift().ode(p).nonlinear(u_hat), 16)
    assert torch.allclose(n[0, 1], 2 * math.pi * torch.cos(2 * math.pi * x))
    assert torch.allclose(n[0, 0], torch.zeros(16, dtype=torch.float64))


def test_register_dims_registers_one_family_per_dimension(monkeypatch):
    from sciops.pdes import base
    monkeypatch.setattr(base, "_REGISTRY", dict(base._REGISTRY))

    class Generic(Decay):
        """generic doc"""
    assert register_dims("gen", dims=(1, 2), verify_cases={1: {"a": 1}, 2: {"a": 2}})(
        Generic) is Generic
    one, two = pdes.get("gen1d"), pdes.get("gen2d")
    assert (one.ndim, two.ndim, type(two).__name__) == (1, 2, "Generic2D")
    assert two.verify_case == {"a": 2} and type(one).__doc__ == "generic doc"
    assert two.variables["u"].dims == ("sample", "time", "x", "y")
    register_dims("plain", dims=(3,))(Generic)
    assert pdes.get("plain3d").verify_case == {}
    assert spectral is not None


def test_float32_solver_works_in_float32():
    seen = []

    class Probe(Decay):
        def nonlinear(self, u, d, p):
            r = d.x(u["u"])
            seen.append(r.dtype)
            return {"v": r}
    p = Decay.Params(dtype="float32")
    u_hat = torch.fft.rfft(torch.randn(1, 2, 16, generator=torch.Generator().manual_seed(4)))
    assert Probe().ode(p).nonlinear(u_hat).dtype == torch.complex64
    assert seen and set(seen) == {torch.float32}


def test_grid_residual_takes_nearly_even_times_as_uneven():
    # u = t² has u_t = 2t exactly under second-order differences on any grid; steps that
    # differ by 5e-7 (relative 5e-6) must not be taken as even by the fourth-order formula
    pde = Decay()
    p = Decay.Params(a=0.0)
    t = np.arange(8) * 0.1
    t[3] += 5e-7
    u = torch.tensor(t**2)[None, :, None].expand(1, 8, 16)
    r = pde.residual({"u": u, "v": torch.zeros_like(u)}, {"t": t}, p)
    assert torch.allclose(r[0, :, 0], 2 * torch.tensor(t)[:, None].expand(8, 16), atol=1e-9)
