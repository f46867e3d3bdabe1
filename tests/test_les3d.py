"""les3d: exact decay, incompressibility, energy budget, IC spectrum, fDNS, determinism, CLI."""

import math

import numpy as np
import pytest
import torch

from sciops import pdes, spectral
from sciops.cli import main as cli_main
from sciops.data import open_dataset
from sciops.pdes import les3d

LES = pdes.get("les3d")
BOX = (2 * math.pi,) * 3



def _params(**kw):
    base = dict(resolution=16, dns_resolution=32, k0=2.0, t_final=0.5, n_records=5,
                dtype="float64")
    base.update(kw)
    return LES.make_params(base)


def _velocity(out, suffix=""):
    return [out[f"{c}{suffix}"] for c in "uvw"]


@pytest.fixture(scope="module")
def les_run():
    """LES 16³ beside fDNS from 32³, 2 HIT samples, records every 0.01."""
    p = _params(mode="les", store_fdns=True, n_records=50)
    u0 = LES.sample_inputs(p, 2, torch.Generator().manual_seed(4))["u0"]
    return p, LES.solve(p, {"u0": u0})


def test_velocity_is_divergence_free_at_every_record(les_run):
    _, out = les_run
    for suffix in ("", "_fdns"):
        vel = _velocity(out, suffix)
        div = spectral.divergence(vel, BOX)
        scale = max(float(v.abs().max()) for v in vel)
        assert float(div.abs().max()) <= 1e-10, (suffix, float(div.abs().max()))
        assert scale > 0.3  # a real flow, not a zero field


def test_les_energy_budget_includes_the_model(les_run):
    p, out = les_run
    t = LES.coords(p)["t"][1]
    energy, eps = out["energy"].numpy(), out["dissipation"].numpy()
    dedt = np.gradient(energy, t, axis=1, edge_order=2)
    mismatch = np.abs(dedt + eps).max() / np.abs(eps).max()
    # the resolved part alone (no model) must miss the budget: the model matters here
    ops = LES.operators(p, p.resolution, False, torch.device("cpu"))
    u_hat = spectral.rfft(torch.stack(_velocity(out), dim=2).flatten(0, 1), 3)
    resolved = les3d.diagnostics(ops, u_hat)["dissipation"].reshape(energy.shape).numpy()
    model_share = float(((eps - resolved) / eps).min())
    print(f"budget mismatch {mismatch:.2e}, model share >= {model_share:.2f}")
    assert mismatch < 0.01
    assert model_share > 0.2
    assert np.abs(dedt + resolved).max() / np.abs(eps).max() > 0.1


def test_energy_and_spectrum_match_the_stored_fields(les_run):
    _, out = les_run
    u, v, w = _velocity(out)
    energy = 0.5 * (u**2 + v**2 + w**2).mean(dim=(-3, -2, -1))
    assert torch.allclose(out["energy"], energy, rtol=1e-12, atol=0)
    assert torch.allclose(out["spectrum"].sum(-1), out["energy"], rtol=1e-12, atol=0)
    assert torch.allclose(out["spectrum_fdns"].sum(-1), out["energy_fdns"], rtol=1e-12, atol=0)


def test_fdns_starts_from_the_les_field_and_loses_energy_to_the_filter(les_run):
    _, out = les_run
    for a, b in zip(_velocity(out), _velocity(out, "_fdns")):
        assert float((a[:, 0] - b[:, 0]).abs().max()) < 1e-13
    # the sharp filter removes the DNS energy beyond the LES band, more as it cascades
    gap = (out["energy_dns"] - out["energy_fdns"]) / out["energy_dns"]
    assert float(gap[:, 0].max()) < 1e-3
    assert float(gap[:, -1].min()) > float(gap[:, 0].max())
    # the DNS dissipates (resolved only, no model)
    assert bool((out["energy_dns"][:, 1:] < out["energy_dns"][:, :-1]).all())


@pytest.mark.parametrize("dt", [None, 0.1])
@pytest.mark.parametrize("m", [1, 3])
def test_shear_wave_decays_exactly(dt, m):
    p = _params(mode="dns", nu=0.05, t_final=2.0, n_records=4, dt=dt)
    t = LES.coords(p)["t"][1]
    exact = LES.exact(p, t, m=m, amplitude=0.8)
    out = LES.solve(p, {"u0": exact[:1]})
    got = torch.stack(_velocity(out), dim=2)[0]
    err = float((got - exact).norm() / exact.norm())
    assert err < 1e-8, err
    assert float(out["energy"][0, -1]) == pytest.approx(0.16 * math.exp(-2 * 0.05 * m * m * 2.0),
                                                        rel=1e-10)


def test_exact_refuses_les_mode():
    with pytest.raises(ValueError, match="dns"):
        LES.exact(_params(mode="les"), [0.0])


def test_temporal_order_is_four():
    p = _params(mode="dns", nu=0.01, t_final=0.4, n_records=1)
    u0 = LES.sample_inputs(p, 1, torch.Generator().manual_seed(2))["u0"] * 2

    def run(dt):
        out = LES.solve(p.replace(dt=dt), {"u0": u0})
        return torch.stack(_velocity(out), dim=2)[:, -1]

    ref = run(0.00625)
    errs = [float((run(dt) - ref).norm() / ref.norm()) for dt in (0.1, 0.05)]
    order = math.log2(errs[0] / errs[1])
    print("errors", errs, "order", order)
    assert order > 3.7


def test_hit_initial_field_has_the_target_spectrum():
    p = _params(mode="les", resolution=32, k0=4.0, energy=0.7)
    u0 = LES.sample_inputs(p, 2, torch.Generator().manual_seed(0))["u0"]
    ops = LES.operators(p, 32, False, torch.device("cpu"))
    d = les3d.diagnostics(ops, spectral.rfft(u0, 3))
    target = torch.as_tensor(les3d.hit_target_spectrum(p, 32))
    assert torch.allclose(d["spectrum"], target.expand(2, -1), rtol=1e-10, atol=1e-14)
    assert torch.allclose(d["energy"], torch.full((2,), 0.7, dtype=torch.float64), rtol=1e-12)
    assert float(spectral.divergence(list(u0.unbind(1)), BOX).abs().max()) < 1e-12
    assert float((u0[0] - u0[1]).abs().max()) > 0.1  # two different realizations


def test_taylor_green_initial_energy_and_dissipation():
    p = _params(mode="dns", ic="tgv", nu=1 / 1600)
    u0 = LES.sample_inputs(p, 1, torch.Generator())["u0"]
    ops = LES.operators(p, p.resolution, False, torch.device("cpu"))
    d = les3d.diagnostics(ops, spectral.rfft(u0, 3))
    # E = 1/8 and <|grad u|²> = 3/4 for sin x cos y cos z, -cos x sin y cos z, 0
    assert float(d["energy"][0]) == pytest.approx(0.125, rel=1e-13)
    assert float(d["dissipation"][0]) == pytest.approx(0.75 / 1600, rel=1e-13)


def test_sharp_filter_is_exact_on_band_limited_fields():
    coarse = les3d.taylor_green(16)[None]
    fine_hat = spectral.rfft(les3d.taylor_green(32)[None], 3)
    filtered = spectral.irfft(les3d.truncate(fine_hat, 32, 16), (16, 16, 16))
    assert float((filtered - coarse).abs().max()) < 1e-14


def test_fused_projection_equals_spectral_leray():
    p = _params()
    ops = LES.operators(p, 16, False, torch.device("cpu"))
    f = spectral.rfft(torch.randn(2, 3, 16, 16, 16, dtype=torch.float64,
                                  generator=torch.Generator().manual_seed(1)), 3)
    ref = torch.stack(spectral.leray_projection(tuple((f * ops.mask).unbind(1)), ops.ks), dim=1)
    assert float((ops.project(f) - ref).abs().max()) < 1e-12 * float(f.abs().max())


def test_same_seed_gives_identical_data_and_float32_agrees():
    p = _params(mode="les", t_final=0.2, n_records=2)

    def run(seed, params):
        u0 = LES.sample_inputs(params, 1, torch.Generator().manual_seed(seed))["u0"]
        return LES.solve(params, {"u0": u0})

    a, b, c = run(7, p), run(7, p), run(8, p)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert float((a["u"] - c["u"]).abs().max()) > 0.1
    single = run(7, p.replace(dtype="float32"))
    assert single["u"].dtype == torch.float32
    assert float((single["u"].double() - a["u"]).abs().max()) < 1e-4


def test_residual_vanishes_on_the_solution_only():
    p = _params(mode="dns", ic="tgv", nu=0.02, t_final=0.2, n_records=40)
    out = LES.solve(p, {"u0": LES.sample_inputs(p, 1, torch.Generator())["u0"]})
    coords = {"t": torch.as_tensor(LES.coords(p)["t"][1])}
    r = LES.residual(out, coords, p)[:, 1:-1]  # interior: centered differences
    r_bad = LES.residual(out, coords, p.replace(nu=0.03))[:, 1:-1]
    scale = float(out["u"].abs().max()) ** 2  # advection, |u x w| ~ |u|² / length
    print("residual", float(r.abs().max()), "wrong nu", float(r_bad.abs().max()))
    # time differencing and the modes the 2/3 rule drops at 16³ only
    assert float(r.abs().max()) < 2e-4 * scale
    assert float(r_bad.abs().max()) > 100 * float(r.abs().max())


def test_blow_up_names_the_diverging_sample():
    p = _params(mode="dns", nu=1e-3, dt=0.5, t_final=20.0, n_records=4)
    u0 = LES.sample_inputs(p, 2, torch.Generator().manual_seed(0))["u0"]
    u0 = u0 * torch.tensor([0.01, 100.0], dtype=torch.float64)[:, None, None, None, None]
    with pytest.raises(pdes.SolverDiverged) as info:
        LES.solve(p, {"u0": u0})
    assert info.value.samples == [1]


@pytest.mark.parametrize("values,field", [
    (dict(nu=0.0), "nu"), (dict(nu=-1e-3), "nu"), (dict(cs=-0.1), "cs"),
    (dict(resolution=48), "resolution"), (dict(resolution=30), "resolution"),
    (dict(resolution=31), "resolution"), (dict(dns_resolution=16, resolution=32, store_fdns=True),
                                          "dns_resolution"),
    (dict(k0=20.0, resolution=32), "k0"), (dict(mode="smag"), "mode"), (dict(ic="abc"), "ic"),
    (dict(cfl=0.0), "cfl"), (dict(dt=0.0), "dt"),
])
def test_bad_params_raise_one_line_naming_the_field(values, field):
    with pytest.raises(ValueError, match=field) as info:
        LES.make_params(values)
    assert "\n" not in str(info.value)


def test_cli_generate_end_to_end(tmp_path):
    out = tmp_path / "hit"
    sets = ["resolution=16", "dns_resolution=32", "k0=2", "t_final=0.2", "n_records=2",
            "dtype=float64"]
    argv = ["generate", "les3d-hit-32", "--out", str(out), "--samples", "1", "--quiet"]
    for s in sets:
        argv += ["--set", s]
    assert cli_main(argv) == 0
    ds = open_dataset(out)
    vel = [torch.as_tensor(ds[c].values) for c in "uvw"]
    assert vel[0].shape == (1, 3, 16, 16, 16)
    assert float(spectral.divergence(vel, BOX).abs().max()) < 1e-10
    energy = 0.5 * sum(v**2 for v in vel).mean(dim=(-3, -2, -1))
    assert np.allclose(ds["energy"].values, energy.numpy(), rtol=1e-12, atol=0)
    assert np.array_equal(ds["u"].values[:, 0], ds["u_fdns"].values[:, 0])
    assert ds["spectrum"].sizes["k"] == les3d.n_shells(16)


def test_domain_is_the_periodic_cube_with_initial_velocity():
    p = _params(t_final=2.0)
    dom = LES.domain(p)
    L = 2 * math.pi
    assert dom.box == {"t": (0.0, 2.0), "x": (0.0, L), "y": (0.0, L), "z": (0.0, L)}
    assert dom.outputs == ("u", "v", "w", "p") and dom.periodic == ("x", "y", "z")
    assert [(c.name, c.coord, c.value, c.sets) for c in dom.conditions] == [
        ("u(t=0)", "t", 0.0, ("u", "u0")), ("v(t=0)", "t", 0.0, ("v", "v0")),
        ("w(t=0)", "t", 0.0, ("w", "w0"))]


def test_grid_residual_stays_on_the_fields_device():
    # the meta device stands in for a GPU: record times given as numpy must follow the fields
    p = _params(mode="les", resolution=8, dns_resolution=8, k0=1.0)
    fields = {c: torch.empty(1, 5, 8, 8, 8, dtype=torch.float64, device="meta") for c in "uvw"}
    r = LES.residual(fields, {"t": np.linspace(0.0, 1.0, 5)}, p)
    assert r.device.type == "meta" and r.shape == (1, 5, 3, 8, 8, 8)
