"""ns2d: exact solutions, the FNO generator's step bit for bit, the momentum equation,
temporal and spatial convergence, residual, divergence guard."""

import math

import numpy as np
import pytest
import torch

from sciops import pdes, spectral
from sciops.derivatives import time_derivative

NS = pdes.get("ns2d")


def _params(**kw):
    base = dict(resolution=32, output_resolution=32, t_final=1.0, n_records=4, dtype="float64")
    base.update(kw)
    return NS.make_params(base)


@pytest.mark.parametrize("forcing,mode,drag", [("none", (2, 3), 0.0), ("fno", (1, 1), 0.0),
                                               ("fno", (1, -1), 0.0), ("kolmogorov", (4, 0), 0.1)])
@pytest.mark.parametrize("scheme", ["ifrk4", "etdrk4", "fno"])
def test_single_shell_flow_matches_closed_form(forcing, mode, drag, scheme):
    # the FNO scheme is first order: give it a small fixed step
    p = _params(forcing=forcing, drag=drag, nu=1e-2, scheme=scheme,
                dt=1e-3 if scheme == "fno" else None)
    t = NS.coords(p)["t"][1]
    ex = NS.exact(p, t, mode, a=0.7, b=-0.4)
    out = NS.solve(p, {"w0": ex[0][None]})["vorticity"][0]
    err = float((out - ex).norm() / ex.norm())
    # IFRK4 and ETDRK4 integrate the linear part exactly; the FNO scheme's Crank–Nicolson
    # does not.
    assert err < (1e-3 if scheme == "fno" else 1e-8), err


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_fno_scheme_is_the_fno_generators_step_bit_for_bit(dtype):
    """scheme='fno' against the FNO data generator's step written out here: velocity from the
    streamfunction, dealiased advection ``u.grad w``, explicit Euler for advection and
    forcing, Crank–Nicolson for viscosity."""
    n, h, nu = 32, 1 / 16, 1e-3
    p = _params(resolution=n, nu=nu, t_final=0.5, n_records=2, scheme="fno", dt=h, dtype=dtype)
    w0 = NS.sample_inputs(p, 2, torch.Generator().manual_seed(5))["w0"]
    got = NS.solve(p, {"w0": w0})["vorticity"]

    real = getattr(torch, dtype)
    kx, ky = spectral.wavenumbers((n, n), (1.0, 1.0), real, zero_nyquist=True)
    k2 = spectral.wavenumber_magnitude((n, n), (1.0, 1.0), real)
    inv_k2 = torch.where(k2 > 0, 1.0 / torch.where(k2 > 0, k2, 1.0), 0.0)
    mask = spectral.dealias_mask((n, n), real)
    x, y = spectral.grid((n, n), (1.0, 1.0), real)
    s = 2 * math.pi * (x[:, None] + y[None, :])
    f_hat = spectral.rfft(0.1 * (torch.sin(s) + torch.cos(s)), 2)
    lap = -nu * k2 - 0.0

    def advection(w_hat):
        psi = w_hat * inv_k2
        u = spectral.irfft(1j * ky * psi, (n, n))
        v = spectral.irfft(-1j * kx * psi, (n, n))
        wx = spectral.irfft(1j * kx * w_hat, (n, n))
        wy = spectral.irfft(1j * ky * w_hat, (n, n))
        return mask * spectral.rfft(u * wx + v * wy, 2)

    w_hat = spectral.rfft(w0, 2)
    want = [w_hat]
    for _ in range(2):  # records every 0.25: 4 steps of 1/16
        for _ in range(4):
            w_hat = ((1.0 + 0.5 * h * lap) * w_hat + h * (f_hat - advection(w_hat))) / (
                1.0 - 0.5 * h * lap)
        want.append(w_hat)
    want = spectral.irfft(torch.stack(want, 1), (n, n))
    assert got.dtype == real and torch.equal(got, want)


def test_velocity_satisfies_the_momentum_equation():
    """The stored velocity solves ``P[u_t + (u.grad)u - nu Lap u - F] = 0`` (P: Leray
    projection, F: the body force with curl F = f), written here in velocity form,
    independently of the solver's vorticity form; the advection's sign matters."""
    n, nu = 64, 1e-3
    p = _params(resolution=n, output_resolution=n, nu=nu, t_final=0.02, n_records=8, dt=5e-4,
                store_velocity=True)
    # a GRF kept to |m_i| <= 8 (far inside the 2/3 band, where the dealiased products of
    # both forms are exact), strong enough that advection dominates
    m = torch.fft.fftfreq(n, 1 / n).abs()
    low = (m[:, None] <= 8) & (m[: n // 2 + 1][None, :] <= 8)
    w0 = NS.sample_inputs(p, 2, torch.Generator().manual_seed(11))["w0"]
    w0 = spectral.irfft(low * spectral.rfft(w0, 2), (n, n))
    out = NS.solve(p, {"w0": w0 * (10.0 / w0.abs().amax())})
    u, v = out["u"], out["v"]  # (batch, time, n, n)
    t = torch.as_tensor(NS.coords(p)["t"][1])
    box = (1.0, 1.0)
    ux, uy = spectral.gradient(u, box)
    vx, vy = spectral.gradient(v, box)
    # F = (d psi/dy, -d psi/dx) with -Lap psi = f = 0.1 (sin s + cos s), s = 2 pi (x + y)
    x = torch.arange(n, dtype=torch.float64) / n
    s = 2 * math.pi * (x[:, None] + x[None, :])
    force = 0.1 * (torch.cos(s) - torch.sin(s)) / (4 * math.pi)
    ks = spectral.wavenumbers((n, n), box, torch.float64)
    mask = spectral.dealias_mask((n, n), torch.float64)

    def projected(a, b):
        """Leray projection of the dealiased field (a, b), spectral."""
        return spectral.leray_projection((mask * spectral.rfft(a, 2), mask * spectral.rfft(b, 2)),
                                         ks)

    advection = projected(u * ux + v * uy, u * vx + v * vy)
    rest = projected(time_derivative(u, t, dim=1) - nu * spectral.laplacian(u, box) - force,
                     time_derivative(v, t, dim=1) - nu * spectral.laplacian(v, box) + force)
    size = math.hypot(*(float(a.norm()) for a in advection))
    residual = math.hypot(*(float((r + a).norm()) for r, a in zip(rest, advection)))
    print(f"relative momentum residual {residual / size:.2e}")
    # viscosity and forcing are 8% and 3% of the advection here: their signs count too
    assert residual < 1e-5 * size


def _grf_run(dt, scheme, n=64, t_final=1.0, nu=1e-3):
    p = NS.make_params(dict(resolution=n, output_resolution=n, t_final=t_final, n_records=1,
                            nu=nu, dt=dt, scheme=scheme, dtype="float64"))
    w0 = NS.sample_inputs(p, 2, torch.Generator().manual_seed(1))["w0"]
    return NS.solve(p, {"w0": w0})["vorticity"][:, -1]


def _order(scheme, dt):
    ref = _grf_run(dt / 16, scheme)
    errs = [float((_grf_run(dt / 2**j, scheme) - ref).norm() / ref.norm()) for j in range(3)]
    return [math.log2(errs[j] / errs[j + 1]) for j in range(2)], errs


@pytest.mark.parametrize("scheme", ["ifrk4", "etdrk4"])
def test_temporal_order_of_the_fourth_order_schemes(scheme):
    orders, errs = _order(scheme, 0.05)
    print(scheme, "errors", errs, "orders", orders)
    assert min(orders) >= 1.9


def test_temporal_order_fno_scheme_is_first_order():
    orders, errs = _order("fno", 4e-3)
    print("fno errors", errs, "orders", orders)
    # against dt/16, a first-order scheme shows log2((1-1/16)/(1/2-1/16)) = 1.1 then 1.2
    assert all(0.9 <= o <= 1.4 for o in orders), orders


def test_spatial_convergence_smooth_case():
    def run(n):
        p = NS.make_params(dict(resolution=n, output_resolution=16, t_final=1.0, n_records=1,
                                nu=1e-2, dt=2e-3, forcing="fno", dtype="float64"))
        x = torch.arange(n, dtype=torch.float64) / n
        X, Y = x[:, None], x[None, :]
        w0 = (torch.sin(2 * math.pi * X) * torch.cos(4 * math.pi * Y)
              + 0.5 * torch.cos(2 * math.pi * (3 * X + Y)) + 0.3 * torch.sin(2 * math.pi * 2 * Y))
        return NS.solve(p, {"w0": w0[None]})["vorticity"][0, -1]

    ref = run(128)
    e32 = float((run(32) - ref).norm() / ref.norm())
    e64 = float((run(64) - ref).norm() / ref.norm())
    print("spatial errors", e32, e64)
    assert e64 * 10 <= e32


def test_residual_vanishes_on_exact_solution():
    p = _params(forcing="fno", nu=1e-2, n_records=200, t_final=1.0)
    coords = {k: torch.as_tensor(v) for k, (_, v) in NS.coords(p).items()}
    ex = NS.exact(p, coords["t"].numpy(), (1, 1), a=1.0, b=0.5)[None]
    r = NS.residual({"vorticity": ex}, coords, p)
    scale = float(ex.abs().max()) * 1e-2 * 8 * math.pi**2  # |nu Lap w|
    assert float(r.abs().max()) < 1e-4 * scale  # O(dt^2) time differencing only
    # a perturbed field does not satisfy the equation
    r_bad = NS.residual({"vorticity": ex * 1.1}, coords, p)
    assert float(r_bad.abs().max()) > 1e3 * float(r.abs().max())


def test_blow_up_raises_solver_diverged_naming_sample():
    p = _params(nu=1e-4, dt=0.5, scheme="fno", t_final=50.0, n_records=5)
    w0 = NS.sample_inputs(p, 3, torch.Generator().manual_seed(0))["w0"] * 50
    with pytest.raises(pdes.SolverDiverged) as info:
        NS.solve(p, {"w0": w0})
    assert info.value.samples and all(0 <= s < 3 for s in info.value.samples)


def test_burn_in_shifts_start():
    p0 = _params(nu=1e-2, t_final=1.0, n_records=2, dt=0.01)
    w0 = NS.sample_inputs(p0, 1, torch.Generator().manual_seed(3))["w0"]
    full = NS.solve(p0, {"w0": w0})["vorticity"]
    p1 = _params(nu=1e-2, t_final=0.5, n_records=1, t_burn_in=0.5, dt=0.01)
    burned = NS.solve(p1, {"w0": w0})["vorticity"]
    assert torch.allclose(burned[:, 0], full[:, 1], atol=1e-12)
    assert torch.allclose(burned[:, 1], full[:, 2], atol=1e-12)


@pytest.mark.parametrize("values,field", [
    (dict(nu=0.0), "nu"), (dict(nu=-1.0), "nu"), (dict(resolution=64, output_resolution=48),
                                                  "output_resolution"),
    (dict(forcing="bogus"), "forcing"), (dict(scheme="euler"), "scheme"), (dict(dt=-1.0), "dt"),
    (dict(n_records=0), "n_records"), (dict(bogus_key=1), "bogus_key"),
])
def test_bad_params_name_the_field(values, field):
    with pytest.raises(ValueError, match=field):
        NS.make_params(values)


def test_string_overrides_are_parsed():
    p = NS.make_params({"nu": "1e-4", "dt": "none", "store_velocity": "true", "resolution": "64"})
    assert p.nu == 1e-4 and p.dt is None and p.store_velocity is True and p.resolution == 64
    assert np.isclose(NS.coords(p)["t"][1][-1], p.t_final)


def test_grid_residual_with_drag_on_kolmogorov_flow():
    p = _params(forcing="kolmogorov", nu=1e-2, drag=0.1, n_records=200, t_final=1.0)
    coords = {k: torch.as_tensor(v) for k, (_, v) in NS.coords(p).items()}
    ex = NS.exact(p, coords["t"].numpy(), (4, 0), a=1.0, b=0.5)[None]
    r = NS.residual({"vorticity": ex}, coords, p)
    # a wrong drag term would leave 2 drag w ~ 0.2 |w|
    assert float(r.abs().max()) < 1e-3 * float(ex.abs().max())


def test_input_is_cast_to_the_solver_dtype_first():
    p = _params(nu=1e-2, n_records=1, t_final=0.1, dt=0.05)
    w0 = NS.sample_inputs(p, 1, torch.Generator().manual_seed(5))["w0"].float()
    out = NS.solve(p, {"w0": w0})["vorticity"]
    assert out.dtype == torch.float64
    assert torch.equal(out, NS.solve(p, {"w0": w0.double()})["vorticity"])


def test_velocity_of_the_longest_kolmogorov_mode():
    # on [0, 2 pi)², w = cos x has |k|² = 1: psi = cos x, u = psi_y = 0, v = -psi_x = sin x
    p = _params(forcing="kolmogorov", resolution=16, output_resolution=16, n_records=1,
                t_final=1e-3, store_velocity=True)
    x = torch.arange(16, dtype=torch.float64) * (2 * math.pi / 16)
    w0 = torch.cos(x)[:, None].expand(16, 16)[None]
    out = NS.solve(p, {"w0": w0})
    assert out["u"][0, 0].abs().max() < 1e-12
    assert torch.allclose(out["v"][0, 0], torch.sin(x)[:, None].expand(16, 16), atol=1e-12)


def test_operators_are_built_on_the_requested_device():
    from sciops.pdes.ns2d import _Operators
    ops = _Operators(_params(drag=0.1), torch.device("meta"))
    for t in (ops.kx, ops.inv_k2, ops.linear, ops.mask, ops.f_hat):
        assert t.device.type == "meta"


def test_domain_of_the_kolmogorov_box():
    dom = NS.domain(_params(forcing="kolmogorov", t_final=3.0))
    L = 2 * math.pi
    assert dom.box == {"t": (0.0, 3.0), "x": (0.0, L), "y": (0.0, L)}
    assert dom.outputs == ("vorticity", "psi") and dom.periodic == ("x", "y")
    assert [(c.name, c.coord, c.value, c.sets) for c in dom.conditions] == [
        ("t=0", "t", 0.0, ("vorticity", "w0"))]
