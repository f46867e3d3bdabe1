"""ROM module: sine dissimilarity, k-medoids, POD, local bases and ROM-net."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from PIL import Image

from sciops import rom
from sciops.evaluate import report


def _profiles(n: int, d: int = 256, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Advected, diffused Gaussian pulses ``a exp(-((x - c) / s)² / 2)`` on (0, 1):
    ``a`` log-uniform over 4 decades, centre ``c`` in [0.25, 0.75], width ``s`` in
    [0.03, 0.1]. Returns inputs ``(log10 a, c, s)`` (n, 3) and snapshots (n, d)."""
    rng = np.random.default_rng(seed)
    a = 10 ** rng.uniform(-2, 2, n)
    c = rng.uniform(0.25, 0.75, n)
    s = rng.uniform(0.03, 0.1, n)
    x = (np.arange(d) + 0.5) / d
    u = a[:, None] * np.exp(-0.5 * ((x[None] - c[:, None]) / s[:, None]) ** 2)
    return np.stack([np.log10(a), c, s], axis=1), u


def _cost(dist: np.ndarray, medoids) -> float:
    return float(dist[:, list(medoids)].min(axis=1).sum())


# --------------------------------------------------------------------------- dissimilarity


def test_sine_dissimilarity_matches_a_loop_and_ignores_scale_and_sign():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((12, 7))
    w = rng.uniform(0.5, 2.0, 7)
    ref = np.empty((12, 12))
    for i, j in itertools.product(range(12), repeat=2):
        uv, uu, vv = (x[i] * w) @ x[j], (x[i] * w) @ x[i], (x[j] * w) @ x[j]
        ref[i, j] = np.sqrt(max(0.0, 1.0 - uv**2 / (uu * vv)))
    np.fill_diagonal(ref, 0.0)
    np.testing.assert_allclose(rom.sine_dissimilarity(x, w), ref, atol=1e-12)
    scale = rng.uniform(1e-3, 1e3, 12) * rng.choice([-1.0, 1.0], 12)
    np.testing.assert_allclose(rom.sine_dissimilarity(scale[:, None] * x),
                               rom.sine_dissimilarity(x), atol=1e-10)


def test_sine_dissimilarity_parallel_orthogonal_and_torch():
    u = np.array([[1.0, 2.0, 0.0], [-3.0, -6.0, 0.0], [0.0, 0.0, 5.0], [2.0, -1.0, 0.0]])
    d = rom.sine_dissimilarity(torch.from_numpy(u).float())
    assert isinstance(d, torch.Tensor) and d.dtype == torch.float32
    expected = np.array([[0, 0, 1, 1], [0, 0, 1, 1], [1, 1, 0, 1], [1, 1, 1, 0]], dtype=float)
    np.testing.assert_allclose(d.numpy(), expected, atol=1e-6)
    with pytest.raises(ValueError, match="snapshots: rows \\[1\\]"):
        rom.sine_dissimilarity(np.array([[1.0, 0.0], [0.0, 0.0]]))


# --------------------------------------------------------------------------- k-medoids


def test_kmedoids_recovers_separated_clusters():
    rng = np.random.default_rng(1)
    centres = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0], [10.0, 10.0]])
    truth = np.repeat(np.arange(4), 25)
    pts = centres[truth] + rng.normal(scale=0.5, size=(100, 2))
    dist = np.linalg.norm(pts[:, None] - pts[None], axis=-1)
    labels, medoids = rom.kmedoids(dist, 4, seed=3)
    # a bijection between found and true clusters: every found cluster is one true cluster
    pairs = set(zip(labels.tolist(), truth.tolist()))
    assert len(pairs) == 4 and len({a for a, _ in pairs}) == 4
    assert (labels[medoids] == np.arange(4)).all()


def test_kmedoids_beats_random_and_equals_brute_force():
    for seed in range(10):
        rng = np.random.default_rng(seed)
        pts = rng.standard_normal((10, 3))
        dist = np.linalg.norm(pts[:, None] - pts[None], axis=-1)
        labels, medoids = rom.kmedoids(dist, 3, seed=seed, n_init=8)
        cost = float(dist[np.arange(10), medoids[labels]].sum())
        brute = min(_cost(dist, m) for m in itertools.combinations(range(10), 3))
        assert cost == pytest.approx(brute, rel=1e-12)
        random_labels = rng.integers(0, 3, 10)
        random_medoids = rng.choice(10, 3, replace=False)
        assert cost <= float(dist[np.arange(10), random_medoids[random_labels]].sum())


def test_kmedoids_torch_in_torch_out():
    pts = torch.tensor([[0.0], [0.1], [5.0], [5.2], [5.1]])
    labels, medoids = rom.kmedoids(torch.cdist(pts, pts), 2)
    assert isinstance(labels, torch.Tensor)
    assert labels[0] == labels[1] != labels[2] == labels[3] == labels[4]
    assert sorted(medoids.tolist()) == [0, 4] or sorted(medoids.tolist()) == [1, 4]


# --------------------------------------------------------------------------- POD


def test_pod_orthonormal_exact_rank_and_energy():
    rng = np.random.default_rng(2)
    modes = np.linalg.qr(rng.standard_normal((50, 4)))[0].T  # 4 orthonormal rows
    sv = np.array([10.0, 3.0, 1.0, 0.1])
    x = rng.standard_normal((30, 4)) @ (sv[:, None] * modes)
    basis = rom.pod(x)
    assert basis.shape == (4, 50)
    np.testing.assert_allclose(basis @ basis.T, np.eye(4), atol=1e-12)
    assert rom.projection_error(x, basis).max() < 1e-12
    s = np.linalg.svd(x, compute_uv=False)[:4]
    frac = np.cumsum(s**2) / np.sum(s**2)
    assert rom.pod(x, energy=frac[1]).shape[0] == 2
    assert rom.pod(x, energy=frac[1] + 1e-6).shape[0] == 3
    assert rom.pod(x, rank=3, energy=1.0).shape[0] == 3


def test_randomized_pod_matches_dense():
    # singular values 2^-i: the range finder with power iterations resolves rank 8 exactly
    rng = np.random.default_rng(3)
    u = np.linalg.qr(rng.standard_normal((200, 40)))[0]
    v = np.linalg.qr(rng.standard_normal((150, 40)))[0]
    x = (u * 0.5 ** np.arange(40)) @ v.T
    dense = rom.projection_error(x, rom.pod(x, rank=8, method="dense"))
    rand = rom.projection_error(x, rom.pod(x, rank=8, method="randomized"))
    assert dense.mean() > 1e-3  # the truncation error being compared is not negligible
    np.testing.assert_allclose(rand, dense, rtol=1e-9)


def test_projection_error_of_a_known_vector():
    basis = np.eye(4)[:1]
    err = rom.projection_error(np.array([[3.0, 4.0, 0.0, 0.0], [0.0, 0.0, 2.0, 0.0]]), basis)
    np.testing.assert_allclose(err, [0.8, 1.0], rtol=1e-14)


# --------------------------------------------------------------------------- acceptance


@pytest.fixture(scope="module")
def split() -> tuple[np.ndarray, ...]:
    z, u = _profiles(800, seed=1)
    return z[:600], u[:600], z[600:], u[600:]


@pytest.fixture(scope="module")
def net(split) -> rom.RomNet:
    z_tr, u_tr, _, _ = split
    return rom.RomNet(n_clusters=8, rank=10).fit(z_tr, u_tr)


def test_sine_local_pod_beats_global_and_kmeans(split, net):
    """K = 8 clusters, rank 10, errors on held-out snapshots. Measured (seed 1): global
    4.6e-2, sine local 2.0e-3 (23x lower), k-means local 4.2e-2 (21x)."""
    _, u_tr, _, u_te = split
    local = rom.local_projection_error(u_te, net.assign(u_te), net.bases_).mean()
    glob = rom.projection_error(u_te, rom.pod(u_tr, rank=10)).mean()
    km_labels, centroids = rom.kmeans(u_tr, 8)
    km_test = np.argmin(((u_te[:, None] - centroids[None]) ** 2).sum(-1), axis=1)
    km = rom.local_projection_error(u_te, km_test, rom.local_pod(u_tr, km_labels, 10)).mean()
    assert glob >= 10 * local
    assert km >= 3 * local


def test_romnet_classifier_and_prediction(split, net):
    """Measured (seed 1): oracle agreement 0.75, projection error on the classified
    basis 2.4e-3 (oracle 2.0e-3), ROM-net prediction error mean 0.076, median 0.041."""
    _, _, z_te, u_te = split
    chosen = net.classify(z_te)
    agreement = np.mean(chosen == net.assign(u_te))
    classified = rom.local_projection_error(u_te, chosen, net.bases_).mean()
    pred = net.predict(z_te)
    rel = np.linalg.norm(pred - u_te, axis=1) / np.linalg.norm(u_te, axis=1)
    assert 0.6 <= agreement <= 1.0
    assert classified < 5e-3
    assert np.isfinite(rel).all() and rel.mean() < 0.15 and np.median(rel) < 0.08


def test_efficiency_estimate_on_coarse_snapshots():
    """The a-priori criterion on 64-point snapshots of the same family predicts a large
    gain of local over global bases at rank 10. Measured: gain 15.0 (global 4.8e-2,
    classified local 3.2e-3, oracle local 3.9e-3), misassignment 0.35."""
    z, u = _profiles(400, d=64, seed=2)
    est = rom.efficiency_estimate(z, u, n_clusters=8, rank=10)
    assert est["n_validation"] == 100 and est["n_train"] == 300
    assert est["gain"] > 5
    # the classifier may pick a better basis than the nearest medoid's: no order between them
    assert max(est["local_error_oracle"], est["local_error_classified"]) < est["global_error"] / 5
    assert 0.0 <= est["misassignment_rate"] < 0.5
    assert est["gain"] == pytest.approx(est["global_error"] / est["local_error_classified"])


def test_error_by_cluster_separates_shapes():
    rng = np.random.default_rng(4)
    x = np.linspace(0, 1, 64)
    shapes = np.stack([np.sin(np.pi * x), np.sin(6 * np.pi * x)])
    kind = rng.integers(0, 2, 60)
    snaps = 10 ** rng.uniform(-2, 2, 60)[:, None] * shapes[kind]
    errors = np.where(kind == 1, 0.5, 0.1) + 0.01 * rng.standard_normal(60)
    ds = rom.error_by_cluster(snaps, errors, n_clusters=2)
    assert ds["count"].sum() == 60
    np.testing.assert_allclose(ds["mean_error"].values,
                               [errors[kind == 1].mean(), errors[kind == 0].mean()], rtol=1e-12)
    assert ds["max_error"].values[0] == pytest.approx(errors[kind == 1].max())
    assert (ds["label"].values == 1 - kind).all()


def test_rom_plots_are_images_of_the_requested_size(tmp_path, split):
    z, u = split[0][:200], split[1][:200]
    labels, medoids = rom.kmedoids(rom.sine_dissimilarity(u), 4)
    cmap = report.plot_cluster_map(z[:, 1:], labels, tmp_path / "clusters.png",
                                   medoids=medoids, figsize=(4.5, 4.0), dpi=80)
    ranks = np.arange(1, 11)
    basis = rom.pod(u, rank=10)
    curve = [rom.projection_error(u, basis[:r]).mean() for r in ranks]
    assert all(a >= b for a, b in zip(curve, curve[1:]))  # nested bases: error never grows
    prank = report.plot_projection_error_vs_rank({"global": (ranks, np.array(curve))},
                                                 tmp_path / "rank.png", figsize=(5, 3.5), dpi=60)
    for path, size in ((cmap, (360, 320)), (prank, (300, 210))):
        with Image.open(path) as im:
            assert im.size == size
            pixels = np.asarray(im.convert("L"))
        assert pixels.std() > 5


def test_rom_net_in_the_zoo_equals_romnet_and_survives_a_checkpoint(split, net, tmp_path):
    from sciops import models

    z_tr, u_tr, z_te, u_te = split
    model = models.build("rom-net", in_channels=1, out_channels=1, n_clusters=8, rank=10)
    model.fit(torch.from_numpy(z_tr)[:, None], torch.from_numpy(u_tr)[:, None])
    pred = model(torch.from_numpy(z_te)[:, None])[:, 0].numpy()
    assert np.array_equal(pred, net.predict(z_te))  # the same deterministic fit
    torch.save(model.state_dict(), tmp_path / "rom.pt")
    loaded = models.build("rom-net", in_channels=1, out_channels=1, n_clusters=8, rank=10)
    loaded.load_state_dict(torch.load(tmp_path / "rom.pt", weights_only=True))
    again = loaded(torch.from_numpy(z_te)[:, None])[:, 0].numpy()
    assert np.array_equal(again, pred)
    rel = np.linalg.norm(pred - u_te, axis=1) / np.linalg.norm(u_te, axis=1)
    assert np.median(rel) < 0.08
    with pytest.raises(ValueError, match="rom-net: inputs"):
        model.fit(torch.from_numpy(z_tr)[:, None].expand(-1, 2, -1), torch.zeros(600, 1, 4))
