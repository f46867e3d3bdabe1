"""Graph kernels against brute force, GIOROM/GNS invariances, and a brief GIOROM training."""

import json

import pytest
import torch

from sciops import models
from sciops.data import generate, load_recipe
from sciops.models.graph import (
    InteractionLayer,
    farthest_point_sampling,
    gather_points,
    radius_graph,
    radius_neighbors,
    scatter_mean,
    scatter_sum,
)
from sciops.train import Trainer, build_config
from sciops.train.particles import ParticleTask


def _pairs(a, b, n_b):
    """Sorted (E, 2) pairs, for set comparison."""
    key = a * n_b + b
    return torch.stack([a, b], 1)[torch.argsort(key)]


@pytest.mark.parametrize("radius", [0.03, 0.1, 0.35])
def test_radius_neighbors_equal_brute_force(radius):
    g = torch.Generator().manual_seed(0)
    B, Q, M = 3, 150, 220
    query = torch.rand(B, Q, 2, generator=g, dtype=torch.float64)
    points = torch.rand(B, M, 2, generator=g, dtype=torch.float64) * 1.3 - 0.1
    points[:, :5] = points[:, 5:6]  # coincident points
    qi, pj = radius_neighbors(query, points, radius)
    d2 = ((query[:, :, None] - points[:, None]) ** 2).sum(-1)
    b, i, j = torch.nonzero(d2 <= radius**2, as_tuple=True)
    assert torch.equal(_pairs(qi, pj, B * M), _pairs(b * Q + i, b * M + j, B * M))
    assert qi.numel() > 100  # a non-trivial graph


def test_radius_graph_equals_brute_force_in_3d_without_self_loops():
    g = torch.Generator().manual_seed(1)
    pos = torch.rand(2, 300, 3, generator=g, dtype=torch.float64)
    s, r = radius_graph(pos, 0.15)
    d2 = ((pos[:, :, None] - pos[:, None]) ** 2).sum(-1)
    d2 = d2 + torch.diag_embed(torch.full((2, 300), float("inf"), dtype=torch.float64))
    b, i, j = torch.nonzero(d2 <= 0.15**2, as_tuple=True)
    assert torch.equal(_pairs(r, s, 600), _pairs(b * 300 + i, b * 300 + j, 600))


def test_scatter_equals_dense_reference():
    g = torch.Generator().manual_seed(2)
    src = torch.randn(500, 7, generator=g, dtype=torch.float64)
    index = torch.randint(0, 40, (500,), generator=g)
    index[index == 3] = 4  # an empty row
    onehot = torch.nn.functional.one_hot(index, 40).double().T  # (40, 500)
    assert torch.allclose(scatter_sum(src, index, 40), onehot @ src, atol=1e-12)
    count = onehot.sum(1, keepdim=True)
    dense_mean = (onehot @ src) / count.clamp_min(1)
    mean = scatter_mean(src, index, 40)
    assert torch.allclose(mean, dense_mean, atol=1e-12) and float(mean[3].abs().max()) == 0.0


def test_farthest_point_sampling_matches_greedy_reference():
    g = torch.Generator().manual_seed(3)
    pos = torch.rand(2, 400, 2, generator=g, dtype=torch.float64)
    idx = farthest_point_sampling(pos, 40)
    for b in range(2):
        chosen = [0]
        dist = torch.cdist(pos[b], pos[b])
        for _ in range(39):
            chosen.append(int(dist[:, chosen].amin(1).argmax()))
        assert idx[b].tolist() == chosen
    # the sample covers the cloud: every point lies within the last insertion distance
    cover = torch.cdist(pos, gather_points(pos, idx)).amin(-1).amax(-1)
    assert float(cover.max()) < 0.15


def test_interaction_layer_split_first_layer_equals_concatenation():
    torch.manual_seed(4)
    layer = InteractionLayer(16).double()
    h = torch.randn(30, 16, dtype=torch.float64)
    e = torch.randn(90, 16, dtype=torch.float64)
    s, r = torch.randint(0, 30, (90,)), torch.randint(0, 30, (90,))
    h_new, e_new = layer(h, e, s, r)
    W = torch.cat([layer.edge_in.weight, layer.edge_sender.weight, layer.edge_receiver.weight], 1)
    pre = torch.cat([e, h[s], h[r]], 1) @ W.T + layer.edge_in.bias
    e_ref = e + layer.edge_out(pre)
    agg = torch.zeros(30, 16, dtype=torch.float64)
    for k in range(90):
        agg[r[k]] += e_ref[k]
    h_ref = h + layer.node(torch.cat([h, agg], 1))
    assert torch.allclose(e_new, e_ref, atol=1e-12) and torch.allclose(h_new, h_ref, atol=1e-12)


@pytest.mark.parametrize("name,kw", [("gns", {"radius": 0.1}),
                                     ("giorom", {"n_nodes": 30, "radius": 0.3, "gno_radius": 0.2})])
def test_models_are_translation_invariant(name, kw):
    torch.manual_seed(5)
    model = models.build(name, in_channels=6, out_channels=2, latent=16, layers=2, **kw).double()
    pos = torch.rand(2, 200, 2, dtype=torch.float64)
    feats = torch.randn(2, 200, 6, dtype=torch.float64)
    with torch.no_grad():
        out = model(pos, feats)
        shifted = model(pos + torch.tensor([0.37, -1.2], dtype=torch.float64), feats)
    assert float(out.abs().mean()) > 1e-3
    assert float((out - shifted).abs().max()) < 1e-10


def test_giorom_query_slices_do_not_change_the_result(monkeypatch):
    from sciops.models import giorom

    torch.manual_seed(6)
    model = models.build("giorom", in_channels=4, out_channels=2, n_nodes=40, radius=0.3,
                         gno_radius=0.15, latent=16, layers=2).double()
    pos = torch.rand(2, 300, 2, dtype=torch.float64)
    feats = torch.randn(2, 300, 4, dtype=torch.float64)
    query = torch.rand(2, 1000, 2, dtype=torch.float64)
    with torch.no_grad():
        whole = model(pos, feats, query=query)
        monkeypatch.setattr(giorom, "_QUERY_CHUNK", 64)
        sliced = model(pos, feats, query=query)
    assert float(whole.abs().mean()) > 1e-3
    assert float((whole - sliced).abs().max()) < 1e-12


def test_gns_rejects_query_points_and_giorom_checks_channels():
    gns = models.build("gns", in_channels=3, out_channels=2)
    with pytest.raises(ValueError, match="query"):
        gns(torch.rand(1, 10, 2), torch.rand(1, 10, 3), query=torch.rand(1, 5, 2))
    giorom = models.build("giorom", in_channels=3, out_channels=2)
    with pytest.raises(ValueError, match="in_channels=3"):
        giorom(torch.rand(1, 10, 2), torch.rand(1, 10, 4))
    with pytest.raises(ValueError, match="n_nodes"):
        models.build("giorom", in_channels=3, out_channels=2, n_nodes=0)


# --- a brief training on a small water set -----------------------------------------------------

HISTORY, STEPS, N_NODES = 5, 10, 64
SMALL = {"n_particles": "640", "n_grid": "32", "n_records": "40", "substeps": "5",
         "block_min": "0.2", "block_max": "0.35", "max_blocks": "2",
         "samples_per_shard": "12", "batch_size": "6"}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("giorom")
    recipe = load_recipe("mpm2d-water").with_changes(samples=12, overrides=SMALL)
    data = generate(recipe, root / "water", progress=False).out
    raw = {"name": "giorom-test",
           "model": {"name": "giorom", "n_nodes": N_NODES, "radius": 0.12, "gno_radius": 0.07,
                     "latent": 32, "layers": 3, "gno_channels": 8, "gno_hidden": 16},
           "data": {"dataset": str(data), "in_steps": HISTORY, "out_steps": STEPS,
                    "windows": "sliding", "train_samples": 10, "test_samples": 2},
           "train": {"epochs": 2, "batch_size": 4, "lr": 3e-3, "loss": "mse",
                     "weight_decay": 0.0, "seed": 0}}
    cfg = build_config(raw)
    task = ParticleTask(cfg, noise_std=1e-4)
    trainer = Trainer(cfg, root / "run", progress=False, task=task)
    trainer.fit()
    return task, trainer.model.eval(), root / "run"


def _test_windows(task):
    for k in task.test_samples:
        item = task.store[k]
        position, material = item["position"][None], item["material"][None].long()
        for s in range(0, position.shape[1] - HISTORY - 1 - STEPS, 4):
            yield position[:, s:s + HISTORY + 1], position[:, s + HISTORY + 1:], material


def test_giorom_rollout_beats_constant_velocity(trained):
    task, model, _ = trained
    err, base = 0.0, 0.0
    for history, future, material in _test_windows(task):
        truth = future[:, :STEPS]
        pred = task.rollout(model, history, material, STEPS)
        velocity = history[:, -1] - history[:, -2]
        steps = torch.arange(1, STEPS + 1, dtype=velocity.dtype)[None, :, None, None]
        constant = history[:, -1:] + steps * velocity[:, None]
        err += float(((pred - truth) ** 2).sum(-1).mean())
        base += float(((constant - truth) ** 2).sum(-1).mean())
    assert base / err >= 2.0, (err, base)


def test_giorom_at_ten_times_more_query_points_than_nodes(trained):
    task, model, _ = trained
    at_nodes, at_all = 0.0, 0.0
    with torch.no_grad():
        for history, future, material in _test_windows(task):
            last = history[:, -1]
            assert last.shape[1] == 10 * N_NODES
            truth = future[:, 0] - 2 * last + history[:, -2]
            nodes = model.select_nodes(last)
            sub = gather_points(history.transpose(1, 2), nodes).transpose(1, 2)
            feats = task.features(sub, gather_points(material, nodes))
            scale, shift = task.acceleration.std, task.acceleration.mean
            pred_nodes = model(sub[:, -1], feats, query=sub[:, -1]) * scale + shift
            pred_all = model(sub[:, -1], feats, query=last) * scale + shift
            at_nodes += float(((pred_nodes - gather_points(truth, nodes)) ** 2).sum(-1).mean())
            at_all += float(((pred_all - truth) ** 2).sum(-1).mean())
    assert at_all <= 1.2 * at_nodes, (at_all, at_nodes)


def test_particle_checkpoint_holds_statistics_and_loads_weights_only(trained):
    task, model, run = trained
    state = torch.load(run / "last.pt", weights_only=True)
    std = state["task"]["acceleration"]["std"]
    assert torch.equal(std, task.acceleration.std.cpu())
    # the noise variance is folded into the statistics, as GNS does
    assert bool((std >= 1e-4).all())
    # the logged test error is the task's rollout MSE of the final weights
    logged = json.loads((run / "metrics.jsonl").read_text().strip().splitlines()[-1])
    assert logged["test_position_mse"] == task.evaluate(model, torch.device("cpu"))
