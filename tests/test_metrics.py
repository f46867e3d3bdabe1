"""Evaluator metrics against hand-computed values on analytic fields."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import xarray as xr
from PIL import Image

from sciops import spectral
from sciops.data import open_dataset
from sciops.evaluate import metrics as M
from sciops.evaluate import report

N = 32


def _grid(n: int = N, m: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    x = np.arange(n) / n
    y = np.arange(n if m is None else m) / (n if m is None else m)
    return np.meshgrid(x, y, indexing="ij")


def _random(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape)


@pytest.mark.parametrize(("mode", "band", "rms"), [
    ((1, 2), "low", 1 / math.sqrt(2)),      # |m| = 2.24
    ((0, 3), "low", 1 / math.sqrt(2)),      # along the halved (rfft) axis
    ((4, 0), "mid", 1 / math.sqrt(2)),      # |m| = 4 is the first mid shell
    ((3, -4), "mid", 1 / math.sqrt(2)),     # |m| = 5, negative wavenumber
    ((8, 9), "high", 1 / math.sqrt(2)),     # |m| = 12.04, just past the mid band
    ((0, 12), "high", 1 / math.sqrt(2)),    # |m| = 12 is the first high shell
    ((16, 0), "high", 1.0),                 # Nyquist row: cos(pi j) = (-1)^j, rms 1
    ((0, 16), "high", 1.0),                 # Nyquist column of the halved axis
])
def test_single_mode_lands_in_its_band(mode, band, rms):
    x, y = _grid()
    amp = 0.7
    err = amp * np.cos(2 * np.pi * (mode[0] * x + mode[1] * y))
    target = _random((2, 3, N, N))
    ds = M.evaluate_all(target + err, target)
    for b in M.BANDS:
        expected = amp * rms if b == band else 0.0
        np.testing.assert_allclose(ds[f"rmse_{b}"].values, expected, atol=1e-12)
    np.testing.assert_allclose(ds.rmse.values, amp * rms, rtol=1e-12)
    np.testing.assert_allclose(ds.max_error.values, amp, rtol=1e-12)


@pytest.mark.parametrize("shape", [(32, 32), (24, 17), (15, 20)])
def test_parseval_band_mses_sum_to_total(shape):
    pred, target = _random((3, 4, *shape), 1), _random((3, 4, *shape), 2)
    ds = M.evaluate_all(pred, target)
    total = ((pred - target) ** 2).mean(axis=(1, 2, 3))
    bands = sum(ds[f"rmse_{b}"].values ** 2 for b in M.BANDS)
    np.testing.assert_allclose(bands, total, rtol=1e-12)
    np.testing.assert_allclose(ds.rmse.values ** 2, total, rtol=1e-12)


def test_scaled_field_gives_the_scale_error_everywhere():
    target = _random((4, 6, N, N), 3)
    alpha = -0.3
    ds = M.evaluate_all((1 + alpha) * target, target)
    for name in ("relative_l2", "nrmse", "h1_error"):
        np.testing.assert_allclose(ds[name].values, abs(alpha), rtol=1e-12)
    np.testing.assert_allclose(ds.rollout_error.values, abs(alpha), rtol=1e-12)
    np.testing.assert_allclose(ds.spectrum_error.values, abs((1 + alpha) ** 2 - 1), rtol=1e-12)
    np.testing.assert_allclose(ds.max_error.values, abs(alpha) * np.abs(target).max((1, 2, 3)),
                               rtol=1e-12)
    np.testing.assert_allclose(ds.correlation.values, 1.0, rtol=1e-12)
    assert (ds.correlation_time.values == 6).all()


def test_relative_metrics_differ_when_error_varies_in_time():
    # e is 0 at t0 and equals y at t1 with |y_t1| = 2 |y_t0|: trajectory vs per-step means
    x, y = _grid()
    f = np.sin(2 * np.pi * x)[None, None]
    target = np.concatenate([f, 2 * f], axis=1)
    pred = np.concatenate([f, 4 * f], axis=1)
    ds = M.evaluate_all(pred, target)
    assert ds.relative_l2.item() == pytest.approx(math.sqrt(4 / 5), rel=1e-12)
    assert ds.nrmse.item() == pytest.approx(0.5, rel=1e-12)
    np.testing.assert_allclose(ds.rollout_error.values[0], [0.0, 1.0], atol=1e-12)


def test_h1_error_of_a_known_gradient_with_box_lengths_from_coords():
    lx, ly = 1.0, 2.0
    n, m = 32, 48
    x = np.arange(n) * lx / n
    y = np.arange(m) * ly / m
    X, Y = np.meshgrid(x, y, indexing="ij")
    k1, k2, k3 = 2 * np.pi, 2 * np.pi * 3 / ly, 2 * np.pi * 2
    a, b = 0.2, 1.5
    err = a * np.sin(k1 * X) * np.cos(k2 * Y)
    tgt = b * np.cos(k3 * X)
    coords = {"x": x, "y": y}
    target = xr.DataArray(tgt[None], dims=("sample", "x", "y"), coords=coords)
    pred = target + err[None]
    expected = math.sqrt(a**2 * (1 + k1**2 + k2**2) / 4 / (b**2 * (1 + k3**2) / 2))
    assert M.h1_error(pred, target).item() == pytest.approx(expected, rel=1e-12)
    # the same fields on a unit box (no coords) give a different, also exact, value
    k2u = 2 * np.pi * 3
    expected_unit = math.sqrt(a**2 * (1 + k1**2 + k2u**2) / 4 / (b**2 * (1 + k3**2) / 2))
    got = M.h1_error(pred.values, target.values, dims=("sample", "x", "y")).item()
    assert got == pytest.approx(expected_unit, rel=1e-12)


def test_h1_error_equals_the_spectral_gradient_reference():
    pred, target = _random((3, 2, 16, 20), 4), _random((3, 2, 16, 20), 5)
    lengths = (2.0, 3.0)

    def h1sq(u):
        t = torch.from_numpy(u)
        g = spectral.gradient(t, lengths)
        return (t**2 + sum(c**2 for c in g)).sum(dim=(1, 2, 3)).numpy()

    ref = np.sqrt(h1sq(pred - target) / h1sq(target))
    np.testing.assert_allclose(M.h1_error(pred, target, lengths=lengths).values, ref, rtol=1e-12)


def test_energy_spectrum_of_one_mode_and_parseval():
    x, y = _grid()
    amp = 1.3
    u = amp * np.cos(2 * np.pi * (3 * x + 4 * y))[None]
    e = M.energy_spectrum(u, dims=("sample", "x", "y")).values[0]
    assert e[5] == pytest.approx(amp**2 / 4, rel=1e-12)
    assert np.abs(np.delete(e, 5)).max() < 1e-12
    f = _random((2, 3, 24, 17), 6)
    np.testing.assert_allclose(M.energy_spectrum(f).sum("k").values, 0.5 * (f**2).mean((2, 3)),
                               rtol=1e-12)


def test_correlation_time_counts_the_leading_run():
    x, _ = _grid()
    c, s = np.cos(2 * np.pi * x), np.sin(2 * np.pi * x)  # orthogonal, equal norms, mean 0
    theta = np.array([0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.1, 0.0])
    target = np.broadcast_to(c, (1, len(theta), N, N))
    pred = np.cos(theta)[None, :, None, None] * c + np.sin(theta)[None, :, None, None] * s
    ds = M.evaluate_all(pred, target, metrics=["correlation", "correlation_time"])
    np.testing.assert_allclose(ds.correlation.values[0], np.cos(theta), atol=1e-12)
    # cos(0.7) = 0.765 < 0.8 first at step 7; the later recovery does not count
    assert ds.correlation_time.item() == 7
    assert M.correlation_time(pred, target, threshold=0.5).item() == len(theta)


def test_boundary_rmse_sees_only_the_faces():
    err = np.zeros((1, N, N))
    err[:, 0, :] = err[:, -1, :] = err[:, :, 0] = err[:, :, -1] = 2.0
    target = _random((1, N, N), 7)
    ds = M.evaluate_all(target + err, target, dims=("sample", "x", "y"))
    n_face = 4 * N - 4
    assert ds.boundary_rmse.item() == pytest.approx(2.0, rel=1e-12)
    assert ds.rmse.item() == pytest.approx(2.0 * math.sqrt(n_face / N**2), rel=1e-12)


def test_float32_keeps_small_errors_accurate():
    target = _random((4, 3, N, N), 8)
    pred = target + 1e-4 * _random((4, 3, N, N), 9)
    ref = M.evaluate_all(pred, target)
    got = M.evaluate_all(pred.astype(np.float32), target.astype(np.float32))
    # the float32 rounding of pred itself (1e-7 of |y|) is ~1e-3 of a 1e-4 error
    for name in ("relative_l2", "rmse", "rmse_high", "h1_error"):
        np.testing.assert_allclose(got[name].values, ref[name].values, rtol=5e-3)


def test_chunked_dask_tensor_and_channel_inputs_agree(tmp_path):
    pred, target = _random((7, 4, 16, 12), 10), _random((7, 4, 16, 12), 11)
    ref = M.evaluate_all(pred, target)
    dims = ("sample", "time", "x", "y")
    path = tmp_path / "shard-00000.nc"
    xr.Dataset({"pred": (dims, pred), "target": (dims, target)}).to_netcdf(
        path, engine="h5netcdf", encoding={"pred": {"chunksizes": (1, 4, 16, 12)}})
    lazy = open_dataset(path)
    assert lazy.pred.chunks is not None
    got = M.evaluate_all(lazy.pred, lazy.target, chunk_size=3)
    for name in ref.data_vars:
        np.testing.assert_allclose(got[name].values, ref[name].values, rtol=1e-12, err_msg=name)
    t = M.evaluate_all(torch.from_numpy(pred), torch.from_numpy(target))
    np.testing.assert_allclose(t.spectrum_error.values, ref.spectrum_error.values, rtol=1e-12)
    chan = M.evaluate_all(xr.Dataset({"u": (dims, pred), "v": (dims, 3 * pred)}),
                          xr.Dataset({"u": (dims, target), "v": (dims, 3 * target)}))
    np.testing.assert_allclose(chan.rmse.sel(channel="v").values, 3 * ref.rmse.values, rtol=1e-12)
    np.testing.assert_allclose(chan.nrmse.sel(channel="u").values, ref.nrmse.values, rtol=1e-12)


def test_band_rmse_and_summarize():
    pred, target = _random((5, 2, N, N), 12), _random((5, 2, N, N), 13)
    ds = M.evaluate_all(pred, target)
    bands = M.band_rmse(pred, target)
    np.testing.assert_allclose(bands.sel(band="mid").values, ds.rmse_mid.values, rtol=1e-12)
    summary = M.summarize(ds)
    assert summary["rmse"] == pytest.approx(float(ds.rmse.mean()), rel=1e-12)
    assert summary["max_error"] == pytest.approx(float(np.abs(pred - target).max()), rel=1e-12)
    assert "rollout_error" not in summary and "spectrum_pred" not in summary


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"metrics": ["rmse", "bogus"]}, "metrics: unknown"),
    ({"chunk_size": 0}, "chunk_size"),
    ({"threshold": 1.5}, "threshold"),
    ({"spatial_dims": ("x", "z")}, "spatial_dims"),
])
def test_bad_arguments_name_the_field(kwargs, match):
    a = xr.DataArray(np.ones((2, 3, 8, 8)), dims=("sample", "time", "x", "y"))
    with pytest.raises(ValueError, match=match):
        M.evaluate_all(a, a, **kwargs)


def test_plots_are_images_of_the_requested_size(tmp_path):
    rng = np.random.default_rng(0)
    ds = M.evaluate_all(_random((6, 2, N, N), 14), _random((6, 2, N, N), 15))
    hist = report.plot_error_histogram({"a": 10 ** rng.uniform(-3, 0, 50), "b": ds.rmse.values},
                                       tmp_path / "hist.png", figsize=(5, 3.5), dpi=80)
    spec = report.plot_spectra({"pred": ds.spectrum_pred.mean("sample").values,
                                "target": ds.spectrum_target.mean("sample").values},
                               tmp_path / "spec.png", figsize=(4, 3), dpi=50)
    for path, size in ((hist, (400, 280)), (spec, (200, 150))):
        with Image.open(path) as im:
            assert im.size == size
            pixels = np.asarray(im.convert("L"))
        assert pixels.std() > 5  # something was drawn, not a blank canvas


@pytest.mark.parametrize("space", [("x",), ("x", "y", "z")])
def test_metrics_take_the_space_dims_from_the_data(space):
    rng = np.random.default_rng(len(space))
    shape = (3, 2, *(8,) * len(space))
    y = xr.DataArray(rng.normal(size=shape), dims=("sample", "time", *space))
    p = y + 0.1 * rng.normal(size=shape)
    ds = M.evaluate_all(p, y)
    assert ds.relative_l2.dims == ("sample",)  # no space dim mistaken for a batch dim
    axes = tuple(range(1, len(shape)))
    ref = np.sqrt(((p - y).values ** 2).sum(axes) / (y.values**2).sum(axes))
    np.testing.assert_allclose(ds.relative_l2.values, ref, rtol=1e-12)
    energy = M.energy_spectrum(y).sum("k").values
    np.testing.assert_allclose(energy, 0.5 * (y.values**2).mean(axes[1:]), rtol=1e-12)


def test_particle_errors_are_distances_in_metres():
    truth = np.zeros((2, 3, 4, 2))
    pred = truth.copy()
    pred[0, :, :, 0] = 3.0  # every particle 3 m off at every step
    pred[1, 2, 0] = (3.0, 4.0)  # one particle 5 m off at the last step
    m = M.particle_errors(pred, truth)
    np.testing.assert_allclose(m.rollout_error.values, [[3, 3, 3], [0, 0, 2.5]])
    np.testing.assert_allclose(m.final_rmse.values, [3.0, 2.5])
    np.testing.assert_allclose(m.mse.values, [9.0, 25 / 12])
    np.testing.assert_allclose(m.position_rmse.values, np.sqrt([9.0, 25 / 12]))
    np.testing.assert_allclose(m.max_error.values, [3.0, 5.0])
    s = M.summarize(m)
    assert s["max_error"] == 5.0 and s["mse"] == pytest.approx((9 + 25 / 12) / 2)
    with pytest.raises(ValueError, match="sample, time, particle, dim"):
        M.particle_errors(pred[0], truth[0])
    # float32 positions are compared in float64
    m32 = M.particle_errors(pred.astype(np.float32), truth.astype(np.float32))
    assert all(v.dtype == np.float64 for v in m32.data_vars.values())


def test_wrappers_pass_their_keywords_on():
    # 1-D fields named by `dims`: without them the wrappers would read (sample, x, y)
    x = np.arange(N) / N
    theta = np.array([0.0, 0.5, 1.0])
    target = np.broadcast_to(np.cos(2 * np.pi * x), (2, 3, N))
    pred = np.cos(theta)[None, :, None] * target \
        + np.sin(theta)[None, :, None] * np.sin(2 * np.pi * x)
    kw = {"dims": ("sample", "time", "x")}
    assert M.correlation_time(pred, target, threshold=0.6, **kw).values.tolist() == [2, 2]
    np.testing.assert_allclose(M.rollout_error(pred, target, **kw).values[0],
                               np.sqrt(2 - 2 * np.cos(theta)), atol=1e-12)
    e = M.energy_spectrum(target, **kw)
    assert e.name == "energy_spectrum" and e.dims == ("sample", "time", "k")
    assert e.sel(k=1).values == pytest.approx(0.25, rel=1e-12)


def test_nonfinite_and_summarize_look_at_scalar_metrics_only():
    target = _random((3, 2, 8, 8), 14)
    pred = target.copy()
    pred[1, 0, 0, 0] = np.nan
    ds = M.evaluate_all(pred, target)
    assert M.nonfinite(ds).values.tolist() == [False, True, False]
    clean = M.evaluate_all(target + 1.0, target)
    clean["rollout_error"][0, 0] = np.nan  # a time-resolved variable is not looked at
    clean["spectrum_pred"][0, 0] = np.inf
    assert not M.nonfinite(clean).any()
    summary = M.summarize(ds)
    assert summary["nonfinite_samples"] == 1 and math.isnan(summary["rmse"])
    assert M.summarize(clean)["nonfinite_samples"] == 0


def test_each_wrapper_is_its_column_of_evaluate_all():
    pred, target = _random((3, 2, 12, 10), 15), _random((3, 2, 12, 10), 16)
    ds = M.evaluate_all(pred, target)
    for fn in (M.relative_l2, M.rmse, M.nrmse, M.max_error, M.boundary_rmse, M.h1_error,
               M.spectrum_error, M.rollout_error):
        got = fn(pred, target)
        assert got.name == fn.__name__
        np.testing.assert_allclose(got.values, ds[fn.__name__].values, rtol=1e-12)
    # swapping pred and target changes the relative metrics: the order is kept
    assert not np.allclose(M.relative_l2(target, pred).values, ds.relative_l2.values)
    assert not np.allclose(M.spectrum_error(target, pred).values, ds.spectrum_error.values)
