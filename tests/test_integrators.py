"""integrators: temporal orders, exactness for constant N, phi functions, blow-up, CFL steps."""

import math

import numpy as np
import pytest
import torch
from scipy.integrate import solve_ivp

from sciops import integrators
from sciops.pdes.base import SolverDiverged

# A diagonal test problem u' = L u + N(u) + f with decaying, neutral, growing and oscillating
# modes; N couples nothing, so every mode is a scalar ODE (batch 1, 5 modes).
L = torch.tensor([-4.0, -1.0, 0.0, 0.5 + 3.0j, -2.0 - 8.0j], dtype=torch.complex128)
F = torch.tensor([0.3, -0.2, 0.1j, 0.0, 0.5], dtype=torch.complex128)
U0 = torch.tensor([[0.8, -0.5 + 0.2j, 0.3, 1.0j, 0.6]], dtype=torch.complex128)


def _n(u):
    return 0.5 * torch.cos(u) - 0.3 * u**2


def _final(method, dt, t_final=1.0, ode=None, u0=U0):
    ode = ode or integrators.SemilinearODE(L, _n, F)
    *_, last = integrators.trajectory(ode, u0, [0.0, t_final], method=method, dt=dt)
    return last


@pytest.fixture(scope="module")
def reference():
    """u(1) by scipy's DOP853 at rtol 1e-13, independent of the integrators."""
    lam, f = L.numpy(), F.numpy()

    def rhs(_, u):
        return lam * u + 0.5 * np.cos(u) - 0.3 * u**2 + f

    sol = solve_ivp(rhs, (0.0, 1.0), U0[0].numpy(), method="DOP853", rtol=1e-13, atol=1e-15)
    return torch.as_tensor(sol.y[:, -1])


@pytest.mark.parametrize("method", integrators.METHODS)
def test_temporal_order(method, reference):
    order = integrators.ORDER[method]
    dts = (1 / 16, 1 / 32) if order > 1 else (1 / 64, 1 / 128)
    errs = [float((_final(method, dt)[0] - reference).abs().max()) for dt in dts]
    observed = math.log2(errs[0] / errs[1])
    print(method, errs, observed)
    assert abs(observed - order) < 0.25, (method, errs, observed)


def _series(z, k, terms=40):
    """phi_k(z) = sum_j z^j / (j + k)!, no cancellation for |z| <~ 1."""
    return sum(z**j / float(math.factorial(j + k)) for j in range(terms))


def _linear_forced(lam, u0, c, t):
    """Exact ``u(t)`` of ``u' = lam u + c``: ``e^{lam t} u0 + t phi_1(lam t) c``."""
    z = lam * t
    small = z.abs() < 1
    phi1 = torch.where(small, _series(z, 1), (torch.exp(z) - 1) / torch.where(small, 1, z))
    return torch.exp(z) * u0 + t * phi1 * c


@pytest.mark.parametrize("method", ["etdrk1", "etdrk2", "etdrk3", "etdrk4"])
def test_etdrk_is_exact_for_constant_n(method):
    # u' = L u + c with N returning the same tensor c every call: exact in one big step,
    # and the steppers must not write into what N returns
    lam = torch.tensor([-50.0, -1.0, -1e-9, 0.0, 2.0j], dtype=torch.complex128)
    c = torch.tensor([[1.0, -2.0, 0.5, 3.0, 1.0 + 1.0j]], dtype=torch.complex128)
    u0 = torch.tensor([[0.3, 0.7, -1.0, 0.2, 0.5]], dtype=torch.complex128)
    ode = integrators.SemilinearODE(lam, lambda u: c)
    t = 0.7
    got = _final(method, t, t, ode, u0)
    exact = _linear_forced(lam, u0, c, t)
    assert torch.equal(c, torch.tensor([[1.0, -2.0, 0.5, 3.0, 1.0 + 1.0j]],
                                       dtype=torch.complex128))
    assert float((got - exact).abs().max()) < 1e-14 * float(exact.abs().max())


@pytest.mark.parametrize("method", ["ifrk4", "etdrk4", "etdrk1"])
def test_forced_linear_decay_is_exact(method):
    # the constant forcing as `forcing`, with a zero N: IFRK4 moves it to the steady state
    lam = torch.tensor([-50.0, -1.0, 0.0, 2.0j], dtype=torch.complex128)
    f = torch.tensor([1.0, -2.0, 3.0, 1.0 + 1.0j], dtype=torch.complex128)
    u0 = torch.tensor([[0.3, 0.7, 0.2, 0.5]], dtype=torch.complex128)
    ode = integrators.SemilinearODE(lam, torch.zeros_like, f)
    exact = _linear_forced(lam, u0, f, 0.7)
    assert float((_final(method, 0.7, 0.7, ode, u0) - exact).abs().max()) < 1e-14


@pytest.mark.parametrize("k", [1, 2, 3])
def test_phi_matches_series_near_zero_and_across_abs_z_1(k):
    # near |z| = 1 the evaluation switches from series to closed form; a contour integral on
    # a circle of radius 1 (the former evaluation) passes close to 0 there, errors up to 1e-12
    r = torch.tensor([0.0, 1e-12, 1e-6, 1e-3, 0.1, 0.5, 0.9, 0.99, 0.999, 1.0, 1.001, 1.5])
    angles = torch.linspace(0.0, 2 * math.pi, 97)
    z = (r[:, None] * torch.exp(1j * angles[None, :])).flatten().to(torch.complex128)
    got, want = integrators.phi(z, k), _series(z, k)
    assert float(((got - want).abs() / want.abs()).max()) < 1e-14


def test_phi_far_from_zero_matches_the_closed_form():
    z = torch.tensor([-300.0, -20.0, -2.0, 3.0, 5j, -4.0 + 30j], dtype=torch.complex128)
    e = torch.exp(z)
    closed = (e - 1 - z - z**2 / 2) / z**3
    assert float(((integrators.phi(z, 3) - closed).abs() / closed.abs()).max()) < 1e-13


@pytest.mark.parametrize("state", [torch.complex64, torch.complex128])
def test_coefficients_stay_accurate_for_tiny_l_h(state):
    # one etdrk1 step of u' = L u + c is e^{Lh} u + h phi_1(Lh) c; at |L h| = 1e-9 the closed
    # form (e^{Lh} - 1)/(L h) loses ~eps/|L h| (all of float32, half of float64)
    lam = torch.tensor([-1e-7, -1e-4, -1.0, 0.0], dtype=torch.float64)
    c = torch.ones(1, 4, dtype=state)
    u0 = torch.full((1, 4), 0.5, dtype=state)
    h = 1e-2
    ode = integrators.SemilinearODE(lam, lambda u: c)
    got = integrators.stepper(ode, "etdrk1", h, u0)(u0, ode.tendency(u0)).to(torch.complex128)
    z = (lam * h).to(torch.complex128)
    exact = torch.exp(z) * 0.5 + h * _series(z, 1)
    eps = torch.finfo(torch.float32 if state == torch.complex64 else torch.float64).eps
    assert float(((got - exact).abs() / exact.abs()).max()) < 4 * eps


def test_blow_up_names_the_diverging_sample():
    # u' = -u + u², which blows up in finite time for u0 > 1: only sample 1
    ode = integrators.SemilinearODE(torch.tensor([-1.0]), lambda u: u * u)
    u0 = torch.tensor([[0.5], [3.0], [0.9]], dtype=torch.complex128)
    with pytest.raises(SolverDiverged) as info:
        list(integrators.trajectory(ode, u0, [0.0, 1.0, 2.0, 3.0], method="etdrk4", dt=0.01,
                                    name="riccati"))
    assert info.value.samples == [1]
    assert "riccati" in str(info.value)


def _euler_cfl_run(a, u0, times, r=10.0, cfl=0.5):
    """u' = a u (given as N, L = 0) with CFL rate r |u|, by etdrk1 = explicit Euler, which
    calls N once per step at the state; returns the records and the steps read back from the
    states (u_{n+1} = (1 + a h) u_n)."""
    seen = []

    def nonlinear(u):
        seen.append(u.clone())
        return a * u

    ode = integrators.SemilinearODE(torch.zeros(1), nonlinear,
                                    rate=lambda u: r * u.abs().flatten(1).amax(1))
    records = list(integrators.trajectory(ode, u0, times, method="etdrk1", cfl=cfl))
    states = torch.stack([s[:, 0].real for s in seen] + [records[-1][:, 0].real])
    steps = (states[1:, 0] / states[:-1, 0] - 1) / a
    return records, states, steps


def test_cfl_steps_obey_the_bound_and_hit_the_records():
    u0 = torch.tensor([[1.0], [0.5]], dtype=torch.complex128)
    records, states, steps = _euler_cfl_run(2.0, u0, [0.0, 0.25, 0.5])
    rates = 10.0 * states[:-1].amax(1)
    assert bool((rates * steps <= 0.5 * (1 + 1e-12)).all())
    # the records are hit exactly; the step shrank as |u| grew
    ends = torch.cumsum(steps, 0)
    assert bool((ends - 0.25).abs().min() < 1e-14) and abs(float(ends[-1]) - 0.5) < 1e-14
    assert float(steps[-1]) < 0.8 * float(steps[0])
    # every sample takes the same steps
    assert torch.allclose(records[-1].real, u0.real * (1 + 2.0 * steps).prod(), rtol=1e-12)


def test_cfl_step_is_kept_while_the_bound_holds():
    # decay: the rate only falls, so each interval keeps its first step, ceil(span rate/cfl)
    u0 = torch.tensor([[1.0]], dtype=torch.complex128)
    _, states, steps = _euler_cfl_run(-2.0, u0, [0.0, 0.25, 0.5])
    n1 = math.ceil(0.25 * 10.0 / 0.5)
    rate1 = 10.0 * float(states[n1])
    n2 = math.ceil(0.25 * rate1 / 0.5)
    assert len(steps) == n1 + n2
    assert torch.allclose(steps[:n1], torch.full((n1,), 0.25 / n1, dtype=torch.float64))
    assert torch.allclose(steps[n1:], torch.full((n2,), 0.25 / n2, dtype=torch.float64))


def test_fixed_dt_and_burn_in_split_spans_into_equal_steps():
    calls = []
    ode = integrators.SemilinearODE(torch.tensor([-1.0]), lambda u: calls.append(1) or 0 * u)
    u0 = torch.ones(1, 1, dtype=torch.complex128)
    out = list(integrators.trajectory(ode, u0, [0.0, 0.3], method="etdrk1", dt=0.1,
                                      burn_in=0.25))
    assert len(out) == 2 and len(calls) == 3 + 3  # ceil(0.25/0.1) + ceil(0.3/0.1)
    assert complex(out[-1][0, 0]) == pytest.approx(math.exp(-0.55), rel=1e-14)
