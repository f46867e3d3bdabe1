"""GIOROM and its full-order baseline GNS: learned Lagrangian dynamics on particle graphs.

Both models map per-particle input features (a history of velocities, distances to the
walls, material one-hot; built by :mod:`sciops.train.particles`) at positions ``x`` to a
per-particle output (the normalized acceleration), through the same encode–process–decode
interaction network (Sanchez-Gonzalez et al. 2020, "Learning to simulate complex physics
with graph networks"): node and edge encoders, ``layers`` residual interaction blocks on a
radius graph (edge features ``(x_s - x_r)/R`` and ``|x_s - x_r|/R``), a decoder.

* ``gns`` runs that network on every particle: cost O(N · degree) per step.
* ``giorom`` (Viswanath et al. 2024, "Reduced-order neural operators: learning Lagrangian
  dynamics on highly sparse graphs") runs it on ``n_nodes`` particles chosen by
  farthest-point sampling (a sparse graph with a larger radius), decodes a latent field
  ``f_j`` on them, and evaluates it at arbitrary query points ``q`` with a graph-kernel
  integral operator (GNO)

      u(q) = 1/|N(q)| sum_{j in N(q)} k(q - x_j, f_j) ⊙ f_j,   N(q) = {j : |q - x_j| <= r},

  followed by a pointwise decoder. The processor cost is fixed by ``n_nodes``; only the
  GNO (a few kernel evaluations per query) grows with the number of queries. A query with
  no node within ``gno_radius`` gets ``u = 0``; farthest-point sampling bounds the distance
  from any particle to the nearest node, so choose ``gno_radius`` above that spacing.

Calling convention: ``model(position, features, query=None)`` with ``position`` (B, M, d),
``features`` (B, M, in_channels) and optional ``query`` (B, Q, d) returns (B, M or Q,
out_channels). ``giorom`` sub-samples the M inputs to ``n_nodes`` itself (pass the nodes
only, and the full cloud as ``query``, for a reduced-order rollout; see
:meth:`GIOROM.select_nodes`); ``gns`` has no query points.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from sciops.models import register
from sciops.models.graph import (
    InteractionLayer,
    farthest_point_sampling,
    gather_points,
    mlp,
    radius_graph,
    radius_neighbors,
    scatter_mean,
)

# Queries per GNO slice; see GraphKernelIntegral.forward.
_QUERY_CHUNK = 32768


def _check_inputs(position: Tensor, features: Tensor, in_channels: int) -> None:
    if position.ndim != 3 or features.ndim != 3 or features.shape[:2] != position.shape[:2]:
        raise ValueError(f"position {tuple(position.shape)} and features {tuple(features.shape)} "
                         f"must be (B, M, d) and (B, M, C)")
    if features.shape[-1] != in_channels:
        raise ValueError(f"features have {features.shape[-1]} channels; the model was built "
                         f"with in_channels={in_channels}")


def _positive(**values: float) -> None:
    for name, value in values.items():
        if not value > 0:
            raise ValueError(f"{name}={value!r} must be > 0")


def _edge_features(position: Tensor, senders: Tensor, receivers: Tensor, scale: float) -> Tensor:
    """``[(x_s - x_r)/scale, |x_s - x_r|/scale]`` per edge: (E, d + 1)."""
    flat = position.reshape(-1, position.shape[-1])
    rel = (flat.index_select(0, senders) - flat.index_select(0, receivers)) / scale
    return torch.cat([rel, rel.norm(dim=-1, keepdim=True)], dim=-1)


class GraphNetwork(nn.Module):
    """Encode–process–decode interaction network on the radius graph of its inputs.

    ``forward(position (B, M, d), features (B, M, in_channels)) -> (B * M, out_channels)``.
    """

    def __init__(self, in_channels: int, out_channels: int, *, radius: float, latent: int,
                 layers: int, dim: int = 2):
        super().__init__()
        _positive(radius=radius, latent=latent, layers=layers)
        self.radius = float(radius)
        self.node_encoder = mlp([in_channels, latent, latent])
        self.edge_encoder = mlp([dim + 1, latent, latent])
        self.layers = nn.ModuleList(InteractionLayer(latent) for _ in range(layers))
        self.decoder = mlp([latent, latent, out_channels], layer_norm=False)

    def forward(self, position: Tensor, features: Tensor) -> Tensor:
        senders, receivers = radius_graph(position, self.radius)
        h = self.node_encoder(features.reshape(-1, features.shape[-1]))
        e = self.edge_encoder(_edge_features(position, senders, receivers, self.radius))
        for layer in self.layers:
            h, e = layer(h, e, senders, receivers)
        return self.decoder(h)


class GraphKernelIntegral(nn.Module):
    """GNO layer ``u(q) = mean_{|q - x_j| <= r} k(q - x_j, f_j) ⊙ f_j``.

    ``k`` is a one-hidden-layer MLP of ``[(q - x_j)/r, |q - x_j|/r, f_j]``; its first layer
    is split so the ``f_j`` part is computed once per node and only the geometric part
    per (query, node) pair.
    """

    def __init__(self, channels: int, hidden: int, radius: float, dim: int = 2):
        super().__init__()
        _positive(channels=channels, hidden=hidden, radius=radius)
        self.radius = float(radius)
        self.geometry = nn.Linear(dim + 1, hidden)
        self.feature = nn.Linear(channels, hidden, bias=False)
        self.out = nn.Linear(hidden, channels)

    def forward(self, query: Tensor, nodes: Tensor, f: Tensor) -> Tensor:
        """``query`` (B, Q, d), ``nodes`` (B, n, d), ``f`` (B * n, C) -> (B * Q, C)."""
        B, Q, _ = query.shape
        # The per-edge tensors of all queries at once overflow the CPU caches; slices of
        # _QUERY_CHUNK queries ran 1.7x faster at Q = 1e5 (same arithmetic, same result).
        parts = [self._evaluate(query[:, a:a + _QUERY_CHUNK], nodes, f).view(B, -1, f.shape[1])
                 for a in range(0, Q, _QUERY_CHUNK)]
        return torch.cat(parts, dim=1).reshape(B * Q, -1)

    def _evaluate(self, query: Tensor, nodes: Tensor, f: Tensor) -> Tensor:
        d, hidden_size = query.shape[-1], self.geometry.out_features
        qi, nj = radius_neighbors(query, nodes, self.radius)
        rel = (query.reshape(-1, d).index_select(0, qi)
               - nodes.reshape(-1, d).index_select(0, nj)) / self.radius
        geo = torch.cat([rel, rel.norm(dim=-1, keepdim=True)], dim=-1)
        # One gather for both node terms and in-place updates: fewer passes over the
        # (edges, width) tensors, which dominate the cost at many queries.
        per_node = torch.cat([self.feature(f), f], dim=-1).index_select(0, nj)
        hidden = self.geometry(geo).add_(per_node[:, :hidden_size]).relu_()
        messages = self.out(hidden) * per_node[:, hidden_size:]
        return scatter_mean(messages, qi, query.shape[0] * query.shape[1])


@register("gns")
class GNS(nn.Module):
    """Graph network simulator on all particles (the full-order baseline of GIOROM).

    Defaults are GNS's 2D settings: ``radius=0.015`` (length units of the positions, for
    ~2k particles in a unit box), ``latent=128``, ``layers=10`` message-passing steps.
    """

    kind = "particle"

    def __init__(self, in_channels: int, out_channels: int, *, radius: float = 0.015,
                 latent: int = 128, layers: int = 10, dim: int = 2):
        super().__init__()
        self.in_channels = in_channels
        self.network = GraphNetwork(in_channels, out_channels, radius=radius, latent=latent,
                                    layers=layers, dim=dim)

    def forward(self, position: Tensor, features: Tensor, query: Tensor | None = None) -> Tensor:
        """(B, M, d), (B, M, C_in) -> (B, M, C_out); ``query`` must be None."""
        if query is not None:
            raise ValueError("gns predicts at its input particles only: query must be None "
                             "(use giorom for arbitrary query points)")
        _check_inputs(position, features, self.in_channels)
        return self.network(position, features).reshape(*position.shape[:2], -1)


@register("giorom")
class GIOROM(nn.Module):
    """GIOROM: interaction network on a farthest-point sparse graph + GNO to query points.

    Defaults, for ~2k particles in a unit box (``mpm2d`` recipes): ``n_nodes=256`` graph
    nodes (node spacing ~0.02), processor ``radius=0.05``, ``latent=128``, ``layers=10``
    (GNS's processor); GNO ``gno_radius=0.03``, ``gno_channels=8`` (width of ``f_j``),
    ``gno_hidden=8`` (kernel width). Lengths in the units of the positions; scale the
    radii with the node spacing, ∝ 1/sqrt(n_nodes) in 2D.
    """

    kind = "particle"

    def __init__(self, in_channels: int, out_channels: int, *, n_nodes: int = 256,
                 radius: float = 0.05, latent: int = 128, layers: int = 10,
                 gno_radius: float = 0.03, gno_channels: int = 8, gno_hidden: int = 8,
                 dim: int = 2):
        super().__init__()
        _positive(n_nodes=n_nodes)
        self.in_channels = in_channels
        self.n_nodes = int(n_nodes)
        self.processor = GraphNetwork(in_channels, gno_channels, radius=radius, latent=latent,
                                      layers=layers, dim=dim)
        self.gno = GraphKernelIntegral(gno_channels, gno_hidden, gno_radius, dim)
        self.decoder = mlp([gno_channels, gno_hidden, out_channels], layer_norm=False)

    def select_nodes(self, position: Tensor) -> Tensor:
        """Indices (B, min(n_nodes, M)) of the graph nodes among ``position`` (B, M, d)."""
        return farthest_point_sampling(position, self.n_nodes)

    def forward(self, position: Tensor, features: Tensor, query: Tensor | None = None) -> Tensor:
        """(B, M, d), (B, M, C_in)[, query (B, Q, d)] -> (B, M or Q, C_out).

        Inputs beyond ``n_nodes`` are sub-sampled; without ``query`` the output is at all
        M input positions (nodes and the particles left out of the graph).
        """
        _check_inputs(position, features, self.in_channels)
        if query is None:
            query = position
        elif query.ndim != 3 or query.shape[0] != position.shape[0] \
                or query.shape[2] != position.shape[2]:
            raise ValueError(f"query {tuple(query.shape)} must be (B, Q, d) with the B and d of "
                             f"position {tuple(position.shape)}")
        if position.shape[1] > self.n_nodes:
            nodes = self.select_nodes(position)
            position, features = gather_points(position, nodes), gather_points(features, nodes)
        f = self.processor(position, features)
        u = self.gno(query, position, f)
        return self.decoder(u).reshape(*query.shape[:2], -1)
