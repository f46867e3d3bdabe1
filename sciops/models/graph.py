"""Graph building blocks for particle models, in pure torch (no torch_geometric/scatter).

Conventions: a batch of point clouds is ``(B, M, d)``; graph code works on the flattened
set of ``B * M`` points, so point ``i`` of cloud ``b`` has flat index ``b * M + i`` and
edges never join two clouds. An edge list is a pair of ``(E,)`` int64 tensors; for
message passing ``senders -> receivers``.

* :func:`radius_neighbors` / :func:`radius_graph` — all pairs within a radius, found with
  a cell list, so the cost grows with the number of points and candidates (log-linear
  for a fixed density), not with their product.
* :func:`farthest_point_sampling` — the greedy sub-sampling GIOROM reduces a cloud with.
* :func:`scatter_sum` / :func:`scatter_mean` — aggregation onto receivers (``index_add_``).
* :class:`InteractionLayer` — one interaction-network block (Battaglia et al. 2016, as in
  GNS, Sanchez-Gonzalez et al. 2020): residual edge update from (edge, sender, receiver),
  then residual node update from (node, sum of incoming edges).
"""

from __future__ import annotations

import itertools

import torch
from torch import Tensor, nn


def _flat(x: Tensor) -> Tensor:
    return x.reshape(-1, x.shape[-1])


def radius_neighbors(query: Tensor, points: Tensor, radius: float, *,
                     exclude_self: bool = False) -> tuple[Tensor, Tensor]:
    """Pairs ``(q, p)`` with ``|query_q - points_p| <= radius`` inside each cloud.

    ``query``: (B, Q, d), ``points``: (B, M, d), same units as ``radius``. Returns flat
    indices ``(q, p)`` into ``B * Q`` and ``B * M``, each (E,) int64.
    ``exclude_self`` drops ``q == p`` (meaningful when ``query`` is ``points``).

    Cell list with cells of side ``radius``: every point is entered in the ``3^d`` cells
    around its own, so each query reads one contiguous run of candidates (those of its
    own cell) — O(3^d M log M + Q log Q + candidates) work, no pairwise matrix.
    """
    if not radius > 0:
        raise ValueError(f"radius={radius!r} must be > 0")
    if query.ndim != 3 or points.ndim != 3 or query.shape[0] != points.shape[0] \
            or query.shape[2] != points.shape[2]:
        raise ValueError(f"query {tuple(query.shape)} and points {tuple(points.shape)} must be "
                         f"(B, Q, d) and (B, M, d) with the same B and d")
    B, Q, d = query.shape
    M = points.shape[1]
    dev = query.device
    q_flat, p_flat = _flat(query), _flat(points)
    lo = torch.minimum(q_flat.amin(0), p_flat.amin(0))
    # +1 so that the neighbouring cell c-1 of cell 0 still has a non-negative key.
    cell_q = torch.floor((q_flat - lo) / radius).long() + 1
    cell_p = torch.floor((p_flat - lo) / radius).long() + 1
    extent = torch.maximum(cell_q.amax(0), cell_p.amax(0)) + 2
    strides = [1] * d
    for k in range(d - 2, -1, -1):
        strides[k] = strides[k + 1] * int(extent[k + 1])
    per_cloud = strides[0] * int(extent[0])

    def key(cells: Tensor, n: int) -> Tensor:
        out = torch.arange(B, device=dev).repeat_interleave(n) * per_cloud
        for k in range(d):
            out = out + cells[:, k] * strides[k]
        return out

    shift_keys = torch.tensor([sum(s * st for s, st in zip(shift, strides))
                               for shift in itertools.product((-1, 0, 1), repeat=d)], device=dev)
    entry_key, order = torch.sort((key(cell_p, M)[:, None] + shift_keys).reshape(-1), stable=True)
    entry_point = order // shift_keys.numel()
    key_q = key(cell_q, Q)
    # Visit queries in cell order: consecutive queries then read neighbouring memory.
    key_q, q_order = torch.sort(key_q, stable=True)
    n_cells = B * per_cloud
    if n_cells <= 4 * (entry_key.numel() + key_q.numel()) + 4096:
        # Dense cell -> run table: O(1) lookups instead of binary searches.
        count_of_cell = torch.bincount(entry_key, minlength=n_cells)
        end = torch.cumsum(count_of_cell, 0).index_select(0, key_q)
        start = end - count_of_cell.index_select(0, key_q)
    else:
        start = torch.searchsorted(entry_key, key_q, right=False)
        end = torch.searchsorted(entry_key, key_q, right=True)
    counts = end - start
    first = torch.cumsum(counts, 0) - counts
    total = int(counts.sum())

    def expand(values: Tensor) -> Tensor:  # each query's value, once per candidate
        return values.repeat_interleave(counts, output_size=total)

    slot = torch.arange(total, device=dev) + expand(start - first)
    cand_p = entry_point.index_select(0, slot)
    cand_q = expand(q_order)
    # Per-coordinate 1-D gathers: much faster than gathering (total, d) rows on the CPU.
    q_cols = q_flat.index_select(0, q_order).T.contiguous()
    p_cols = p_flat.T.contiguous()
    dist2 = torch.zeros(total, dtype=query.dtype, device=dev)
    for k in range(d):
        diff = expand(q_cols[k]) - p_cols[k].index_select(0, cand_p)
        dist2 += diff * diff
    keep = dist2 <= radius * radius
    if exclude_self:
        keep &= cand_q != cand_p
    kept = keep.nonzero().squeeze(1)
    return cand_q.index_select(0, kept), cand_p.index_select(0, kept)


def radius_graph(position: Tensor, radius: float, *, loop: bool = False) -> tuple[Tensor, Tensor]:
    """Edges ``senders -> receivers`` between points of a cloud closer than ``radius``.

    ``position``: (B, M, d). Returns flat (E,) index tensors into ``B * M``; every pair
    appears in both directions; self-loops only if ``loop``.
    """
    receivers, senders = radius_neighbors(position, position, radius, exclude_self=not loop)
    return senders, receivers


def farthest_point_sampling(position: Tensor, n: int) -> Tensor:
    """Indices (B, n) of ``n`` points per cloud chosen greedily farthest from those chosen.

    ``position``: (B, M, d). Starts from point 0 (deterministic); each next point maximizes
    the distance to the chosen set, so the result covers the cloud evenly, including
    isolated points. ``n >= M`` returns all points in order. Cost O(n M).
    """
    B, M, _ = position.shape
    if n < 1:
        raise ValueError(f"n={n} must be >= 1")
    if n >= M:
        return torch.arange(M, device=position.device).expand(B, M)
    dev = position.device
    rows = torch.arange(B, device=dev)
    # Coordinate-major copy and preallocated buffers: the loop is memory-bound, and
    # in-place 1-D passes run several times faster than (B, M, d) temporaries.
    cols = position.permute(2, 0, 1).contiguous()
    chosen = torch.empty(B, n, dtype=torch.long, device=dev)
    dist = torch.full((B, M), float("inf"), dtype=position.dtype, device=dev)
    d2, tmp = torch.empty_like(dist), torch.empty_like(dist)
    current = torch.zeros(B, dtype=torch.long, device=dev)
    for k in range(n):
        chosen[:, k] = current
        centre = position[rows, current]
        torch.sub(cols[0], centre[:, :1], out=d2).mul_(d2)
        for j in range(1, position.shape[2]):
            torch.sub(cols[j], centre[:, j:j + 1], out=tmp)
            d2.addcmul_(tmp, tmp)
        torch.minimum(dist, d2, out=dist)
        current = dist.argmax(1)
    return chosen


def gather_points(x: Tensor, index: Tensor) -> Tensor:
    """``x[b, index[b]]`` for ``x`` (B, M, ...) and ``index`` (B, n) -> (B, n, ...)."""
    rows = torch.arange(x.shape[0], device=x.device)[:, None]
    return x[rows, index]


def scatter_sum(src: Tensor, index: Tensor, size: int) -> Tensor:
    """``out[i] = sum_{e: index[e] = i} src[e]``; ``src`` (E, ...) -> (size, ...)."""
    return src.new_zeros((size, *src.shape[1:])).index_add_(0, index, src)


def scatter_mean(src: Tensor, index: Tensor, size: int) -> Tensor:
    """Mean of ``src`` rows per ``index`` value; rows with no entries are 0."""
    total = scatter_sum(src, index, size)
    count = torch.bincount(index, minlength=size).clamp_min(1).to(src.dtype)
    return total / count.view(-1, *([1] * (src.ndim - 1)))


def mlp(sizes: list[int], *, layer_norm: bool = True) -> nn.Sequential:
    """Linear layers with ReLU between them; a LayerNorm on the output if ``layer_norm``
    (GNS normalizes every latent MLP output, not the decoder's)."""
    layers: list[nn.Module] = []
    for k, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if k < len(sizes) - 2:
            layers.append(nn.ReLU())
    if layer_norm:
        layers.append(nn.LayerNorm(sizes[-1]))
    return nn.Sequential(*layers)


class InteractionLayer(nn.Module):
    """One residual interaction-network block on latent nodes ``h`` and edges ``e``.

        e'_k = e_k + phi_e([e_k, h_{s(k)}, h_{r(k)}]),
        h'_i = h_i + phi_v([h_i, sum_{k: r(k)=i} e'_k]).

    ``phi_e``'s first layer is applied as three blocks so the node parts are computed once
    per node and gathered, not once per edge — the same function as the concatenation.
    """

    def __init__(self, latent: int, hidden: int | None = None):
        super().__init__()
        hidden = hidden or latent
        self.edge_in = nn.Linear(latent, hidden)
        self.edge_sender = nn.Linear(latent, hidden, bias=False)
        self.edge_receiver = nn.Linear(latent, hidden, bias=False)
        self.edge_out = nn.Sequential(nn.ReLU(), nn.Linear(hidden, latent), nn.LayerNorm(latent))
        self.node = mlp([2 * latent, hidden, latent])

    def forward(self, h: Tensor, e: Tensor, senders: Tensor,
                receivers: Tensor) -> tuple[Tensor, Tensor]:
        """``h`` (P, latent), ``e`` (E, latent), edge index (E,) -> updated ``(h, e)``."""
        # index_select, not h[senders]: the same rows, ~25% faster on the CPU at 1e5+ edges.
        pre = (self.edge_in(e) + self.edge_sender(h).index_select(0, senders)
               + self.edge_receiver(h).index_select(0, receivers))
        e = e + self.edge_out(pre)
        incoming = scatter_sum(e, receivers, h.shape[0])
        h = h + self.node(torch.cat([h, incoming], dim=-1))
        return h, e
