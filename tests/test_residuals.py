"""PDE residuals vanish on exact solutions, for both backends.

Autograd backend (coordinates that require grad, :mod:`sciops.autodiff`): to round-off.
Grid backend (spectral / finite differences): to the discretization error, whose order is
checked where it is not round-off. Side conditions declared by ``domain()`` vanish on the
exact point samples.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sciops import autodiff, pdes
from sciops.pdes.darcy2d import flux_residual

torch.set_num_threads(1)
F64 = torch.float64


def points(n: int, box: dict[str, tuple[float, float]], seed: int = 0) -> dict[str, torch.Tensor]:
    """``n`` uniform random points in ``box`` as (n,) float64 leaves that require grad."""
    g = torch.Generator().manual_seed(seed)
    return {k: (lo + (hi - lo) * torch.rand(n, generator=g, dtype=F64)).requires_grad_()
            for k, (lo, hi) in box.items()}


def rel_max(res: torch.Tensor, scale: torch.Tensor | float) -> float:
    scale = float(scale.detach().abs().max()) if isinstance(scale, torch.Tensor) else scale
    return float(res.detach().abs().max()) / scale


# ---------------------------------------------------------------- autodiff helper


def test_autodiff_derivatives_of_a_polynomial_are_exact():
    c = points(50, {"x": (-1, 1), "y": (-1, 1)})
    x, y = c["x"], c["y"]
    u = x**3 * y + 2 * y**2
    assert float((autodiff.grad(u, x) - 3 * x**2 * y).detach().abs().max()) < 1e-14
    assert float((autodiff.laplacian(u, (x, y)) - (6 * x * y + 4)).detach().abs().max()) < 1e-13
    div = autodiff.divergence([x * y, y * y], (x, y))
    assert float((div - 3 * y).detach().abs().max()) < 1e-14
    # a field independent of x has derivative exactly 0 (no error from autograd)
    assert float(autodiff.grad(torch.ones_like(x), x).abs().max()) == 0.0


# ---------------------------------------------------------------- poisson2d


def test_poisson2d_manufactured_solution_both_backends():
    pde = pdes.get("poisson2d")
    params = pde.make_params({"resolution": 33})
    terms = ((1.0, 3, 5), (0.5, 1, 7))

    def u_and_f(x, y):
        u = sum(a * torch.sin(math.pi * k * x) * torch.sin(math.pi * l * y) for a, k, l in terms)
        f = sum(a * math.pi**2 * (k * k + l * l) * torch.sin(math.pi * k * x)
                * torch.sin(math.pi * l * y) for a, k, l in terms)
        return u, f

    c = points(400, pde.domain(params).box)
    u, f = u_and_f(c["x"], c["y"])
    assert rel_max(pde.residual({"u": u, "f": f}, c, params), f) < 1e-13
    # a wrong solution is caught: 1% perturbation of one mode
    bad = u + 0.01 * torch.sin(math.pi * 3 * c["x"]) * torch.sin(math.pi * 5 * c["y"])
    assert rel_max(pde.residual({"u": bad, "f": f}, c, params), f) > 1e-3

    x = torch.linspace(0, 1, 33, dtype=F64)
    ug, fg = u_and_f(x[:, None], x[None, :])
    res = pde.residual({"u": ug[None], "f": fg[None]}, {"x": x, "y": x}, params)
    assert rel_max(res, fg) < 1e-11


def test_poisson_autograd_backend_in_1d_is_minus_u_xx():
    pde = pdes.get("poisson2d")
    c = points(200, {"x": (0, 1)})
    x = c["x"]
    u, f = torch.sin(math.pi * x), math.pi**2 * torch.sin(math.pi * x)
    assert rel_max(pde.residual({"u": u, "f": f}, c, pde.make_params()), math.pi**2) < 1e-14


def test_poisson2d_point_sample_satisfies_equation_and_boundary():
    pde = pdes.get("poisson2d")
    params = pde.make_params({"source": "multiscale", "k_max": 20, "resolution": 32})
    inputs = pde.sample_inputs(params, 1, torch.Generator().manual_seed(3))
    sample = pde.point_sample(params, inputs)
    dom = pde.domain(params)
    c = points(300, dom.box)
    fields = {**sample.exact(c), **sample.given(c)}
    assert rel_max(pde.residual(fields, c, params), fields["f"]) < 1e-12
    for cond in dom.conditions:
        face = {k: v.detach().clone() for k, v in c.items()}
        face[cond.coord] = torch.full_like(face[cond.coord], cond.value)
        fields = {**sample.exact(face), **sample.given(face)}
        assert float(cond.residual(fields, face).detach().abs().max()) < 1e-12
    # the point sample agrees with the stored-grid exact solution
    x = torch.linspace(0, 1, 32, dtype=F64)
    X, Y = torch.meshgrid(x, x, indexing="ij")
    at = sample.exact({"x": X.flatten(), "y": Y.flatten()})["u"].reshape(32, 32)
    assert float((at - pde.exact(params, inputs["f_hat"])[0]).abs().max()) < 1e-12


# ---------------------------------------------------------------- wave2d


@pytest.mark.parametrize("boundary", ["dirichlet", "periodic"])
def test_wave2d_standing_wave_autograd(boundary):
    pde = pdes.get("wave2d")
    params = pde.make_params({"boundary": boundary, "c": 0.7, "modes": 4, "resolution": 16,
                              "t_final": 2.0})
    c = points(300, pde.domain(params).box)
    t, x, y = c["t"], c["x"], c["y"]
    if boundary == "dirichlet":
        omega = 0.7 * math.pi * math.sqrt(13)
        u = torch.sin(2 * math.pi * x) * torch.sin(3 * math.pi * y) * torch.cos(omega * t)
    else:
        omega = 2 * math.pi * 0.7 * math.sqrt(5)
        u = torch.cos(2 * math.pi * (x + 2 * y)) * torch.cos(omega * t)
    speed = torch.full_like(x, 0.7)
    res = pde.residual({"u": u, "c": speed}, c, params)
    assert rel_max(res, omega**2) < 1e-13
    # a wrong frequency is caught
    bad = u * torch.cos(0.01 * omega * t)
    assert rel_max(pde.residual({"u": bad, "c": speed}, c, params), omega**2) > 1e-3


def test_wave2d_variable_speed_autograd_includes_grad_c():
    # u = sin(pi x) with c² = 1 + x: div(c² u_x) = cos(pi x) pi - (1 + x) pi² sin(pi x)
    pde = pdes.get("wave2d")
    params = pde.make_params({"modes": 4, "resolution": 16})
    c = points(200, pde.domain(params).box)
    x = c["x"]
    u = torch.sin(math.pi * x) + 0 * c["t"] + 0 * c["y"]
    speed = torch.sqrt(1 + x)
    expected = -(math.pi * torch.cos(math.pi * x) - (1 + x) * math.pi**2 * torch.sin(math.pi * x))
    res = pde.residual({"u": u, "c": speed}, c, params)
    assert rel_max(res - expected, math.pi**2) < 1e-13


def test_wave2d_point_sample_satisfies_equation_and_conditions():
    pde = pdes.get("wave2d")
    params = pde.make_params({"modes": 5, "resolution": 16, "c": 0.3, "t_final": 1.0})
    inputs = pde.sample_inputs(params, 1, torch.Generator().manual_seed(0))
    sample = pde.point_sample(params, inputs)
    dom = pde.domain(params)
    assert [cd.name for cd in dom.conditions][:2] == ["t=0", "u_t(t=0)"]
    c = points(300, dom.box)
    fields = {**sample.exact(c), **sample.given(c)}
    scale = float(fields["u"].detach().abs().max()) * (0.3 * math.pi * 5 * math.sqrt(2)) ** 2
    assert rel_max(pde.residual(fields, c, params), scale) < 1e-13
    for cond in dom.conditions:
        face = {k: v.detach().clone().requires_grad_() for k, v in c.items()}
        with torch.no_grad():
            face[cond.coord].fill_(cond.value)
        fields = {**sample.exact(face), **sample.given(face)}
        assert float(cond.residual(fields, face).detach().abs().max()) < 1e-13, cond.name


def test_wave2d_grid_residual_is_second_order_in_time():
    pde = pdes.get("wave2d")
    params = pde.make_params({"modes": 3, "resolution": 16, "c": 0.5})
    inputs = pde.sample_inputs(params, 1, torch.Generator().manual_seed(1))
    x = torch.linspace(0, 1, 16, dtype=F64)
    errs = []
    for n_t in (41, 81):
        t = torch.linspace(0, 2.0, n_t, dtype=F64)
        u = pde.exact(params, inputs["coeffs"], t)
        res = pde.residual({"u": u, "c": inputs["c"]}, {"t": t, "x": x}, params)
        errs.append(float(res.abs().max()))
    assert errs[0] < 1e-2 and 3.8 < errs[0] / errs[1] < 4.2


# ---------------------------------------------------------------- ns2d


@pytest.mark.parametrize("forcing,mode", [("none", (2, 1)), ("fno", (1, 1))])
def test_ns2d_single_mode_taylor_green_autograd(forcing, mode):
    pde = pdes.get("ns2d")
    params = pde.make_params({"forcing": forcing, "nu": 0.05, "drag": 0.1, "t_final": 2.0,
                              "resolution": 16, "output_resolution": 16})
    c = points(300, pde.domain(params).box)
    t, x, y = c["t"], c["x"], c["y"]
    k2 = (2 * math.pi) ** 2 * (mode[0] ** 2 + mode[1] ** 2)
    rate = params.nu * k2 + params.drag
    phase = 2 * math.pi * (mode[0] * x + mode[1] * y)
    w0 = 1.5 * torch.cos(phase) - 0.5 * torch.sin(phase)
    ws = 0.0 if forcing == "none" else 0.1 * (torch.sin(phase) + torch.cos(phase)) / rate
    w = ws + (w0 - ws) * torch.exp(-rate * t)
    res = pde.residual({"vorticity": w, "psi": w / k2}, c, params)
    assert res.shape == (300, 2)
    assert rel_max(res[:, 0], rate * 2.0) < 1e-13 and rel_max(res[:, 1], 2.0) < 1e-14
    # without the nonlinear term's cancellation a two-shell flow is not a solution
    w2 = w + 0.3 * torch.cos(2 * math.pi * x)
    bad = pde.residual({"vorticity": w2, "psi": w / k2 + 0.3 * torch.cos(2 * math.pi * x)
                        / (2 * math.pi) ** 2}, c, params)
    assert rel_max(bad[:, 0], rate * 2.0) > 1e-2


def test_ns2d_grid_residual_matches_the_closed_form_to_time_discretization():
    pde = pdes.get("ns2d")
    params = pde.make_params({"forcing": "fno", "nu": 0.05, "resolution": 16,
                              "output_resolution": 16, "dtype": "float64"})
    errs = []
    for n_t in (21, 41):
        t = np.linspace(0, 1.0, n_t)
        w = pde.exact(params, t, (1, 1), a=1.0, b=0.5)
        x = torch.arange(16, dtype=F64) / 16
        res = pde.residual({"vorticity": w[None]}, {"t": t, "x": x, "y": x}, params)
        errs.append(float(res.abs().max()))
    assert errs[1] < 2e-2 and 3.5 < errs[0] / errs[1] < 4.5


# ---------------------------------------------------------------- les3d


def shear_wave(c, nu, m=1, amp=1.0):
    decay = torch.exp(-nu * m * m * c["t"])
    u = amp * torch.sin(m * c["y"]) * decay
    zero = 0.0 * (c["x"] + c["z"])
    return {"u": u + zero, "v": zero, "w": zero, "p": zero}


def test_les3d_shear_wave_autograd_dns_is_exact():
    pde = pdes.get("les3d")
    params = pde.make_params({"mode": "dns", "nu": 0.05, "t_final": 2.0})
    c = points(300, pde.domain(params).box)
    res = pde.residual(shear_wave(c, 0.05, m=2), c, params)
    assert res.shape == (300, 4)
    assert rel_max(res, 0.05 * 4) < 1e-12


def test_les3d_shear_wave_autograd_les_is_the_smagorinsky_stress_divergence():
    # u = A sin(my) E: 2 nu_t S_xy = C² A² m² |cos my| cos(my) E², so the x-momentum residual
    # is -d_y of it = 2 C² A² m³ |cos my| sin(my) E², with C = C_s 2 pi / n; others vanish.
    pde = pdes.get("les3d")
    params = pde.make_params({"mode": "les", "nu": 0.05, "cs": 0.17, "resolution": 32})
    c = points(300, pde.domain(params).box)
    m, amp = 2, 1.3
    res = pde.residual(shear_wave(c, 0.05, m, amp), c, params)
    coef = (0.17 * 2 * math.pi / 32) ** 2
    y, e2 = c["y"], torch.exp(-2 * 0.05 * m * m * c["t"])
    expected = 2 * coef * amp**2 * m**3 * torch.cos(m * y).abs() * torch.sin(m * y) * e2
    assert float(expected.detach().abs().max()) > 1e-3  # the model term is not negligible here
    assert rel_max(res[:, 0] - expected, expected) < 1e-12
    assert rel_max(res[:, 1:], expected) < 1e-14


def test_les3d_shear_wave_grid_residual_is_second_order_in_time():
    pde = pdes.get("les3d")
    params = pde.make_params({"mode": "dns", "nu": 0.2, "resolution": 16, "dtype": "float64"})
    errs = []
    for n_t in (11, 21):
        t = np.linspace(0, 1.0, n_t)
        vel = pde.exact(params, t, m=2)
        res = pde.residual({k: vel[None, :, i] for i, k in enumerate("uvw")}, {"t": t}, params)
        errs.append(float(res[:, 1:-1].abs().max()))  # interior times: central differences
    assert errs[1] < 1e-3 and 3.8 < errs[0] / errs[1] < 4.2


# ---------------------------------------------------------------- darcy2d


def darcy_manufactured(x, y):
    """``a = 1 + x y``, ``u = sin(pi x) sin(2 pi y)`` and ``f = -div(a grad u)``."""
    a = 1 + x * y
    s, c = torch.sin, torch.cos
    u = s(math.pi * x) * s(2 * math.pi * y)
    u_x = math.pi * c(math.pi * x) * s(2 * math.pi * y)
    u_y = 2 * math.pi * s(math.pi * x) * c(2 * math.pi * y)
    f = -(y * u_x + x * u_y - a * 5 * math.pi**2 * u)
    return a, u, f


def test_darcy2d_autograd_residual_with_variable_coefficient():
    pde = pdes.get("darcy2d")
    params = pde.make_params({"resolution": 17})
    c = points(300, pde.domain(params).box)
    a, u, f = darcy_manufactured(c["x"], c["y"])
    assert rel_max(pde.residual({"a": a, "u": u, "f": f}, c, params), f) < 1e-13
    # with a detached coefficient grad(a) drops out: the residual is then -grad a . grad u
    res = pde.residual({"a": a.detach(), "u": u, "f": f}, c, params)
    assert rel_max(res, f) > 1e-2


def test_darcy2d_grid_residual_is_second_order_in_space():
    pde = pdes.get("darcy2d")
    errs = []
    for n in (33, 65):
        params = pde.make_params({"resolution": n})
        x = torch.linspace(0, 1, n, dtype=F64)
        a, u, f = darcy_manufactured(x[:, None], x[None, :])
        res = pde.residual({"a": a[None], "u": u[None], "f": f[None]}, {"x": x, "y": x}, params)
        errs.append(float(res.abs().max()))
    assert errs[1] < 0.1 and 3.5 < errs[0] / errs[1] < 4.5
    # the residual uses the solver's own stencil
    x = torch.linspace(0, 1, 33, dtype=F64)
    a, u, f = darcy_manufactured(x[:, None], x[None, :])
    assert torch.equal(flux_residual(a, u, f, 1 / 32),
                       pde.residual({"a": a, "u": u, "f": f}, {"x": x}, pde.make_params(
                           {"resolution": 33})))


# ---------------------------------------------------------------- antiderivative1d


def test_antiderivative1d_both_backends():
    pde = pdes.get("antiderivative1d")
    params = pde.make_params({"resolution": 201})
    inputs = pde.sample_inputs(params, 1, torch.Generator().manual_seed(0))
    sample = pde.point_sample(params, inputs)
    c = points(300, pde.domain(params).box)
    fields = {**sample.exact(c), **sample.given(c)}
    assert rel_max(pde.residual(fields, c, params), fields["f"]) < 1e-13
    (cond,) = pde.domain(params).conditions
    assert float(cond.residual(sample.exact({"x": torch.zeros(1, dtype=F64)}), {}).abs()) < 1e-15
    # grid: second-order differences; the point sample equals the solver's output
    errs = []
    for n in (101, 201):
        params = pde.make_params({"resolution": n, "dtype": "float64"})
        out = pde.solve(params, inputs)
        x = torch.linspace(0, 1, n, dtype=F64)
        assert float((sample.exact({"x": x})["u"] - out["u"][0]).abs().max()) < 1e-13
        errs.append(float(pde.residual(out, {"x": x}, params)[..., 1:-1].abs().max()))
    assert 3.8 < errs[0] / errs[1] < 4.2


def test_antiderivative1d_kernel_modes_and_inputs():
    from sciops.pdes.antiderivative1d import embedded_covariance, mode_variances
    pde = pdes.get("antiderivative1d")
    p = pde.make_params({"length_scale": 0.2, "variance": 2.0})
    assert p.embedding_period == pytest.approx(2.8) and p.torch_dtype == torch.float32
    # modes m = 0 .. n_modes - 1 are those with k_m l <= 9
    k_l = 2 * math.pi * 0.2 / 2.8
    assert (p.n_modes - 1) * k_l <= 9.0 < p.n_modes * k_l
    # the embedding is exact on [0, 1]: the covariance is the RBF kernel
    r = torch.linspace(0, 1, 11, dtype=F64)
    rbf = 2.0 * torch.exp(-0.5 * (r / 0.2) ** 2)
    assert torch.allclose(embedded_covariance(p, r), rbf, atol=1e-12)
    assert float(mode_variances(p).sum()) == pytest.approx(2.0, rel=1e-12)
    # a shorter period gives the periodized kernel: two images at lag 0.5 on P = 1
    q = pde.make_params({"length_scale": 0.2, "period": 1.0})
    half = 2 * math.exp(-0.5 * (0.5 / 0.2) ** 2)
    assert float(embedded_covariance(q, torch.tensor(0.5))) == pytest.approx(half, rel=1e-9)
    # sampled amplitudes have the mode variances
    inp = pde.sample_inputs(p, 4000, torch.Generator().manual_seed(1))["f_modes"]
    assert inp.shape == (4000, 2, p.n_modes)
    ratio = inp.var(0) / mode_variances(p)
    assert float((ratio[:, :8] - 1).abs().max()) < 0.1


def test_antiderivative1d_exact_domain_and_errors():
    pde = pdes.get("antiderivative1d")
    p = pde.make_params({"resolution": 5, "period": 1.0, "dtype": "float64"})
    ex = pde.exact(p, 2)
    x = torch.linspace(0, 1, 5, dtype=F64)
    assert torch.allclose(ex["f"], torch.cos(4 * math.pi * x))
    assert torch.allclose(ex["u"], torch.sin(4 * math.pi * x) / (4 * math.pi))
    with pytest.raises(ValueError, match=r"^k=0 must be >= 1$"):
        pde.exact(p, 0)
    # cos(2 pi 2 x) as amplitudes on period 1 integrates to the same closed form
    modes = torch.zeros(1, 2, p.n_modes, dtype=F64)
    modes[0, 0, 2] = 1.0
    modes[0, 1, 0] = 7.0  # the sine of k = 0 is zero: ignored
    seen = []
    out = pde.solve(p, {"f_modes": modes}, callback=seen.append)
    assert seen == [1.0] and out["u"].dtype == F64
    assert torch.allclose(out["u"][0], ex["u"], atol=1e-14)
    const = torch.zeros(1, 2, p.n_modes, dtype=F64)
    const[0, 0, 0] = 3.0  # f = 3: u = 3 x
    assert torch.allclose(pde.solve(p, {"f_modes": const})["u"][0], 3 * x)
    with pytest.raises(ValueError) as e:
        pde.solve(p, {"f_modes": torch.zeros(1, 2, p.n_modes + 1)})
    assert str(e.value) == (f"f_modes: expected shape (batch, 2, {p.n_modes}), "
                            f"got (1, 2, {p.n_modes + 1})")
    dom = pde.domain(p)
    assert dom.box == {"x": (0.0, 1.0)} and dom.outputs == ("u",)
    assert [(c.name, c.coord, c.value, c.sets) for c in dom.conditions] == [
        ("x=0", "x", 0.0, ("u", None))]
    assert np.allclose(pde.coords(p)["x"][1], x.numpy()) and pde.coords(p)["x"][0] == "x"
    assert pde.solve(p.replace(dtype="float32"), {"f_modes": modes})["f"].dtype == torch.float32


def test_antiderivative1d_long_periods_dtypes_and_devices():
    pde = pdes.get("antiderivative1d")
    # l = 1: period 10, so k_1 = 2 pi / 10 < 1 and the first modes are slow
    p = pde.make_params({"resolution": 9, "length_scale": 1.0, "dtype": "float64"})
    k1 = 2 * math.pi / p.embedding_period
    modes = torch.zeros(1, 2, p.n_modes, dtype=F64)
    modes[0, 0, 1] = 1.0
    x = torch.linspace(0, 1, 9, dtype=F64)
    out = pde.solve(p, {"f_modes": modes.float()})  # float32 amplitudes are accepted
    assert torch.allclose(out["u"][0], torch.sin(k1 * x) / k1, atol=1e-12)
    ex = pde.exact(p, 1)
    assert torch.allclose(ex["u"], torch.sin(2 * math.pi * x) / (2 * math.pi))
    # point samples follow the points' dtype
    given = pde.point_sample(p, {"f_modes": modes})
    xs = torch.linspace(0, 1, 4)
    assert given.given({"x": xs})["f"].dtype == torch.float32
    assert torch.allclose(given.exact({"x": xs})["u"], (torch.sin(k1 * xs) / k1))
    # grid residual: numpy coordinates follow the fields' device (meta stands in for a GPU)
    u = torch.empty(2, 9, dtype=F64, device="meta")
    r = pde.residual({"u": u, "f": u}, {"x": np.linspace(0, 1, 9)}, p)
    assert r.device.type == "meta"
