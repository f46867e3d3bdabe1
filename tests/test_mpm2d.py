"""mpm2d: conservation of mass and momentum, free flight, determinism, plasticity, storage."""

import math

import numpy as np
import pytest
import torch

from sciops import pdes
from sciops.data import generate, load_recipe, open_dataset, sample_generator
from sciops.pdes.mpm2d import (
    MATERIALS,
    MPM2DParams,
    drucker_prager_return,
    p2g,
    stencil,
    svd2x2,
)

MPM = pdes.get("mpm2d")



def _params(**kw) -> MPM2DParams:
    base = dict(n_particles=400, n_grid=32, n_records=5, substeps=5, dtype="float64",
                block_min=0.15, block_max=0.25)
    base.update(kw)
    return MPM.make_params(base)


def _inputs(p: MPM2DParams, seed: int = 0, n: int = 2) -> dict:
    return MPM.sample_inputs(p, n, torch.Generator().manual_seed(seed))


def test_grid_transfer_conserves_mass_and_momentum_after_a_run():
    p = _params(material="mixed", n_records=10)
    inputs = _inputs(p)
    out = MPM.solve(p, inputs)
    x, v = out["position"][:, -1], out["velocity"][:, -1]
    mass = inputs["volume"] * p.density
    # APIC affine momentum must add nothing to the total: sum_i w_ip (x_i - x_p) = 0.
    affine = torch.randn(*mass.shape, 2, 2, dtype=torch.float64)
    grid_mass, grid_momentum = p2g(stencil(x, p), v, affine, mass, p)
    assert abs(float(grid_mass.sum() / mass.sum()) - 1) < 1e-13
    particle_momentum = (mass[..., None] * v).sum((0, 1))
    err = (grid_momentum.sum(0) - particle_momentum).norm() / particle_momentum.norm()
    assert float(err) < 1e-12
    # particles stay inside the walls they are projected onto
    lo, hi = p.walls
    assert float(out["position"].min()) >= lo and float(out["position"].max()) <= hi


def _block(corner, size, n, material, velocity, g):
    """n particles uniform in a rectangle, as ``sample_inputs`` lays them out."""
    x = torch.tensor(corner, dtype=torch.float64) + torch.tensor(size, dtype=torch.float64) \
        * torch.rand(n, 2, generator=g, dtype=torch.float64)
    return {"position": x, "velocity": torch.tensor(velocity, dtype=torch.float64).expand(n, 2),
            "material": torch.full((n,), material, dtype=torch.long),
            "volume": torch.full((n,), size[0] * size[1] / n, dtype=torch.float64)}


def test_momentum_conserved_without_gravity_and_walls():
    # elastic, water and sand blocks on collision courses in a periodic box
    p = _params(boundary="periodic", gravity=0.0, material="mixed", n_particles=600,
                n_records=5, substeps=20, dt=2e-2, bulk_modulus=5e4, youngs_modulus=5e4)
    g = torch.Generator().manual_seed(0)
    blocks = [_block((0.15, 0.3), (0.2, 0.2), 200, 1, (1.5, 0.3), g),
              _block((0.45, 0.3), (0.2, 0.2), 200, 0, (-1.0, 0.0), g),
              _block((0.3, 0.6), (0.2, 0.2), 200, 2, (0.2, -1.5), g)]
    inputs = {k: torch.cat([b[k] for b in blocks])[None] for k in blocks[0]}
    out = MPM.solve(p, inputs)  # 100 MPM steps
    mass = inputs["volume"] * p.density
    momentum = (mass[:, None, :, None] * out["velocity"]).sum(2)[0]  # (time, dim)
    drift = float((momentum - momentum[0]).norm(dim=-1).max() / momentum[0].norm())
    assert drift < 1e-6, drift
    # the bodies collided: velocities changed by far more than round-off
    assert float((out["velocity"][0, -1] - out["velocity"][0, 0]).abs().max()) > 0.5


@pytest.mark.parametrize("material", ["water", "elastic", "sand"])
def test_free_flight_matches_ballistic_solution(material):
    p = _params(material=material, n_records=8, substeps=6)
    n = p.n_particles
    g = torch.Generator().manual_seed(1)
    x0 = torch.tensor([0.3, 0.6], dtype=torch.float64) + 0.2 * torch.rand(1, n, 2, generator=g,
                                                                          dtype=torch.float64)
    v0 = torch.tensor([0.4, 0.8], dtype=torch.float64).expand(1, n, 2)
    (mat,) = MATERIALS[material]
    inputs = {"position": x0, "velocity": v0, "material": torch.full((1, n), mat),
              "volume": torch.full((1, n), 0.04 / n, dtype=torch.float64)}
    out = MPM.solve(p, inputs)["position"][0]
    t = MPM.coords(p)["t"][1]
    exact = MPM.exact(p, t, x0[0], v0[0])
    # symplectic Euler trails the parabola by exactly g * dt_sub * t / 2 along -y
    lag = 0.5 * p.gravity * (p.dt / p.substeps) * torch.as_tensor(t)
    err = (out - exact).norm(dim=-1).amax(-1)
    assert torch.allclose(err, lag, rtol=1e-8, atol=1e-12), (err, lag)


def test_same_seed_same_trajectory_and_different_seed_differs():
    p = _params(dtype="float32", material="mixed", max_blocks=3)
    a = MPM.solve(p, _inputs(p, seed=5))
    b = MPM.solve(p, _inputs(p, seed=5))
    c = MPM.solve(p, _inputs(p, seed=6))
    assert torch.equal(a["position"], b["position"]) and torch.equal(a["velocity"], b["velocity"])
    assert torch.equal(a["material"], b["material"])
    assert float((a["position"] - c["position"]).abs().max()) > 1e-2


def test_svd2x2_reconstructs_with_rotations():
    F = torch.eye(2, dtype=torch.float64) + 0.4 * torch.randn(500, 2, 2, dtype=torch.float64,
                                                              generator=torch.Generator().manual_seed(0))
    F = F[torch.linalg.det(F) > 0]
    U, s, V = svd2x2(F)
    eye = torch.eye(2, dtype=torch.float64)
    assert float((U @ torch.diag_embed(s) @ V.mT - F).abs().max()) < 1e-12
    assert float((U.mT @ U - eye).abs().max()) < 1e-12
    assert float((V.mT @ V - eye).abs().max()) < 1e-12
    ref = torch.linalg.svdvals(F)
    assert float((s.sort(-1, descending=True)[0] - ref).abs().max()) < 1e-12


def test_drucker_prager_return_lands_on_or_inside_the_cone():
    p = _params(material="sand", friction_angle=30.0)
    mu, lam = p.lame
    g = torch.Generator().manual_seed(2)
    eps = 0.05 * torch.randn(2000, 2, dtype=torch.float64, generator=g)
    out = drucker_prager_return(eps, mu, lam, p.friction_angle)
    s = math.sin(math.radians(p.friction_angle))
    alpha = math.sqrt(2 / 3) * 2 * s / (3 - s)
    trace = out.sum(-1)
    dev = (out - trace[:, None] / 2).norm(dim=-1)
    cone = -(2 * lam + 2 * mu) / (2 * mu) * alpha * trace
    assert float((dev - cone).max()) < 1e-12  # never outside the cone
    tension = eps.sum(-1) > 0
    assert float(out[tension].abs().max()) == 0.0  # tension goes to the tip
    e_tr = eps.sum(-1)
    e_dev = (eps - e_tr[:, None] / 2).norm(dim=-1)
    inside = (~tension) & (e_dev <= -(2 * lam + 2 * mu) / (2 * mu) * alpha * e_tr)
    assert inside.sum() > 100 and torch.equal(out[inside], eps[inside])
    yielded = (~tension) & (~inside)
    assert float((dev[yielded] - cone[yielded]).abs().max()) < 1e-12  # projected onto it
    assert torch.allclose(trace[yielded], e_tr[yielded], atol=1e-15)  # volume kept


def test_params_reject_unstable_steps_and_bad_geometry():
    with pytest.raises(ValueError, match="substeps"):
        MPM.make_params({"substeps": 1, "n_grid": 128})
    with pytest.raises(ValueError, match="block_max"):
        MPM.make_params({"block_min": 0.1, "block_max": 0.95})
    with pytest.raises(ValueError, match="friction_angle"):
        MPM.make_params({"friction_angle": 80.0})


def test_recipe_generation_stores_the_solver_output(tmp_path):
    r = load_recipe("mpm2d-sand").with_changes(samples=2, overrides={
        "n_particles": "300", "n_grid": "32", "n_records": "4", "substeps": "5",
        "samples_per_shard": "2", "batch_size": "2"})
    ds = open_dataset(generate(r, tmp_path / "sand", progress=False).out)
    assert ds["position"].dims == ("sample", "time", "particle", "dim")
    assert ds["material"].dims == ("sample", "particle")
    # the driver solves samples 0 and 1 as one batch, each from its own seeded inputs
    per_sample = [MPM.sample_inputs(r.params, 1, sample_generator(r.seed, k)) for k in (0, 1)]
    inputs = {k: torch.cat([s[k] for s in per_sample]) for k in per_sample[0]}
    ref = MPM.solve(r.params, inputs)
    assert np.array_equal(ds["position"].values, ref["position"].numpy())
    assert np.array_equal(ds["material"].values, ref["material"].numpy())
    assert np.array_equal(ds["t"].values, np.arange(5) * 2.5e-3)


def test_guard_reports_the_sample_that_outruns_the_grid():
    p = _params(n_records=2)
    inputs = _inputs(p)
    inputs["velocity"][1] = 300.0  # m/s: over 4 cells per sub-step
    with pytest.raises(pdes.SolverDiverged) as info:
        MPM.solve(p, inputs)
    assert info.value.samples == [1]


def test_stresses_keep_the_solver_precision_under_a_float64_default():
    from sciops.pdes.mpm2d import ELASTIC, WATER, constitutive
    p = _params(dtype="float32")
    F = torch.tensor([[1.1, 0.2], [0.0, 0.9]], dtype=torch.float32).expand(1, 2, 2, 2)
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        for mat in (WATER, ELASTIC):
            F_new, tau = constitutive(F.clone(), torch.full((1, 2), mat), p)
            assert F_new.dtype == tau.dtype == torch.float32
    finally:
        torch.set_default_dtype(default)
    # neo-Hookean: tau = mu (F F^T - I) + lambda log(J) I
    mu, lam = p.lame
    _, tau = constitutive(F.double(), torch.full((1, 2), ELASTIC), p)
    F0 = F[0, 0].double()
    expected = mu * (F0 @ F0.T - torch.eye(2, dtype=torch.float64)) \
        + lam * torch.log(torch.det(F0)) * torch.eye(2, dtype=torch.float64)
    assert torch.allclose(tau[0, 1], expected, rtol=1e-12)
