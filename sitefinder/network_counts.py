"""Counts of features within N minutes' walk of each plot.

The companion of :mod:`sitefinder.network`, which builds the network and joins plots and
features to it. Counts are bounded searches, one per feature (or per plot when plots are
fewer), on the network with its chains of pass-through nodes contracted
(:class:`Chains`), each only over the junctions within N minutes in a straight line: the
cost grows with the features times the junctions in reach, not times the network.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components, dijkstra

from sitefinder.config import NetworkSettings
from sitefinder.network import _EPS, Joins, PlotAccess, WalkNetwork, _with_virtual_rows

# Sources are searched a square cell of neighbours at a time; the cell side is this
# times the limit (smaller cells: more, cheaper subgraphs; measured best near 2).
_CELL_FACTOR = 2.0
# Searches run together in one scipy call; a handful keeps the distance table in cache.
_SEARCHES_AT_ONCE = 8


@dataclass
class Chains:
    """The walking network with its chains of pass-through nodes contracted.

    Four nodes in five are pass-through nodes (exactly two neighbours: way shape points
    and the points added when splitting long segments). A walk can only pass along the
    chain they form, so a search needs just the other nodes (junctions, dead ends),
    joined by one edge per chain; a node inside a chain is reached from one of its two
    ends, or along the chain itself. The contracted graph has about a fifth of the
    nodes, so bounded searches on it are that much cheaper, with the same distances.

    Attributes
    ----------
    xy : ndarray, shape (c, 2)
        Coordinates of the core nodes (junctions and dead ends).
    graph : csr_matrix, shape (c, c)
        Core nodes joined directly or by a whole chain (shortest of parallel ones).
    core_of : ndarray of int, shape (n,)
        Core index of each network node; ``-1`` for a pass-through node.
    chain, end_a, end_b : ndarray of int, shape (n,)
        For a pass-through node: its chain and the core index of the chain's two ends.
    off_a, off_b : ndarray, shape (n,)
        For a pass-through node: metres along its chain to ``end_a`` and ``end_b``.
    """

    xy: np.ndarray
    graph: csr_matrix
    core_of: np.ndarray
    chain: np.ndarray
    end_a: np.ndarray
    end_b: np.ndarray
    off_a: np.ndarray
    off_b: np.ndarray

    @property
    def n_nodes(self) -> int:
        """Number of core nodes."""
        return len(self.xy)

    def to_core(self, joins: Joins, limit_m: float) -> Joins:
        """The same joins made to core nodes (legs longer than ``limit_m`` dropped).

        A pass-through node's join becomes a join to each end of its chain, the leg
        lengthened by the way along the chain.
        """
        core = self.core_of[joins.node] >= 0
        through = joins.node[~core]
        owner = np.concatenate([joins.owner[core], joins.owner[~core], joins.owner[~core]])
        node = np.concatenate(
            [self.core_of[joins.node[core]], self.end_a[through], self.end_b[through]]
        )
        leg = np.concatenate([
            joins.leg[core], joins.leg[~core] + self.off_a[through],
            joins.leg[~core] + self.off_b[through],
        ])
        keep = leg <= limit_m
        return Joins.from_rows(owner[keep], node[keep], leg[keep], self.n_nodes)


def contract_chains(net: WalkNetwork) -> Chains:
    """Contract the chains of pass-through nodes of ``net`` (see :class:`Chains`)."""
    graph = net.graph
    through = np.diff(graph.indptr) == 2
    # A ring made only of pass-through nodes has no end: one of its nodes becomes one.
    if through.any():
        through[_ring_starts(graph, through)] = False
    coo = graph.tocoo()
    row, col, w = coo.row.astype(np.int64), coo.col.astype(np.int64), coo.data
    chain = np.zeros(0, dtype=np.int64)
    if through.any():
        _, chain = connected_components(graph[through][:, through], directed=False)
    local = np.cumsum(through) - 1
    # Each chain leaves through exactly two end edges (pass-through node -> core node).
    end = np.flatnonzero(through[row] & ~through[col])
    end = end[np.argsort(chain[local[row[end]]], kind="stable")]
    first = end[0::2]  # the chain's end A; end[1::2] its end B
    offset = _distances_along_chains(graph, through, local, row[end], w[end])
    chain_len = offset[local[row[end[1::2]]]] + w[end[1::2]]
    n = net.n_nodes
    core_of = np.full(n, -1, dtype=np.int64)
    core_nodes = np.flatnonzero(~through)
    core_of[core_nodes] = np.arange(len(core_nodes))
    members = np.flatnonzero(through)
    chain_of = np.full(n, -1, dtype=np.int64)
    chain_of[members] = chain
    end_a, end_b = np.full(n, -1, dtype=np.int64), np.full(n, -1, dtype=np.int64)
    off_a, off_b = np.full(n, np.nan), np.full(n, np.nan)
    off_a[members] = offset
    off_b[members] = chain_len[chain] - offset
    direct = ~through[row] & ~through[col]
    chain_a, chain_b = core_of[col[first]], core_of[col[end[1::2]]]
    end_a[members], end_b[members] = chain_a[chain], chain_b[chain]
    rows = np.concatenate([core_of[row[direct]], chain_a, chain_b])
    cols = np.concatenate([core_of[col[direct]], chain_b, chain_a])
    weights = np.concatenate([w[direct], chain_len, chain_len])
    loop = rows == cols  # a chain from a node back to itself never shortens a walk
    edges = Joins.from_rows(rows[~loop], cols[~loop], weights[~loop], len(core_nodes))
    core_graph = csr_matrix((edges.leg, (edges.owner, edges.node)),
                            shape=(len(core_nodes), len(core_nodes)))
    return Chains(net.xy[core_nodes], core_graph, core_of, chain_of, end_a, end_b,
                  off_a, off_b)


def _ring_starts(graph: csr_matrix, through: np.ndarray) -> np.ndarray:
    """One node of each ring that consists of pass-through nodes only."""
    _, chain = connected_components(graph[through][:, through], directed=False)
    coo = graph.tocoo()
    leaving = through[coo.row] & ~through[coo.col]
    local = np.cumsum(through) - 1
    has_end = np.zeros(chain.max() + 1 if len(chain) else 0, dtype=bool)
    has_end[chain[local[coo.row[leaving]]]] = True
    members = np.flatnonzero(through)
    rings = ~has_end[chain]
    _, first = np.unique(chain[rings], return_index=True)
    return members[rings][first]


def _distances_along_chains(
    graph: csr_matrix, through: np.ndarray, local: np.ndarray, end_nodes: np.ndarray,
    end_weights: np.ndarray,
) -> np.ndarray:
    """Metres from each pass-through node to end A of its chain, along the chain.

    The pass-through nodes with one stub node per chain end form separate paths; one
    search from every end-A stub gives each node its distance along its own chain.
    """
    inner = graph[through][:, through].tocoo()
    m, k = int(through.sum()), len(end_nodes)
    if m == 0:
        return np.zeros(0)
    stub = m + np.arange(k)
    at = local[end_nodes]
    rows = np.concatenate([inner.row, at, stub])
    cols = np.concatenate([inner.col, stub, at])
    data = np.concatenate([inner.data, end_weights, end_weights])
    paths = csr_matrix((data, (rows, cols)), shape=(m + k, m + k))
    dist = dijkstra(paths, directed=False, indices=stub[0::2], min_only=True)
    return dist[:m]


def count_within(
    net: WalkNetwork,
    feature_xy: np.ndarray,
    access: PlotAccess,
    limit_m: float,
    settings: NetworkSettings,
    *,
    feature_owner: np.ndarray | None = None,
    weights: np.ndarray | None = None,
    memory_floats: int = 20_000_000,
) -> np.ndarray:
    """Number (or weighted sum) of features within ``limit_m`` walking of each plot.

    Features and plots are joined exactly as for :func:`distance_field` (every access
    point of a feature to its ``snap_candidates`` nearest nodes with its leg; each plot
    through all its access points), so a count is never 0 where the distance to the
    nearest feature is within the limit.

    The searches are bounded: one Dijkstra per member of the smaller side (features, or
    plots when there are fewer plots), on the network with its pass-through chains
    contracted (:class:`Chains`), each limited to the nodes within ``limit_m`` in a
    straight line of where it joins (a walk is never shorter than the straight line),
    for a cell of neighbouring members at a time. The cost grows with the members times
    the junctions *within reach*, not times all nodes of the network. Walks that stay
    inside one chain (a plot and a shop on the same stretch of street) are added from
    the chain offsets.

    Parameters
    ----------
    feature_xy : ndarray, shape (m, 2)
        Access points of the features (:func:`access_points`).
    access : PlotAccess
        How the plots are joined (:func:`plot_access`).
    feature_owner : ndarray of int, optional
        Feature of each access point (default: one point per feature).
    weights : ndarray, optional
        Per-feature weight (e.g. departures per hour at a stop); the result is then the
        sum of weights within reach instead of a count.
    memory_floats : int
        Largest distance table held at once (a cell's searches are run in chunks).

    Returns
    -------
    ndarray, shape (n_plots,)
        Counts (int) or summed weights (float).
    """
    weighted = weights is not None
    counts = np.zeros(access.n_plots, dtype=float if weighted else np.int64)
    if not len(feature_xy) or net.n_nodes == 0 or not np.isfinite(access.legs).any():
        return counts
    owner_f = np.arange(len(feature_xy)) if feature_owner is None else np.asarray(feature_owner)
    nodes, legs = net.snap(feature_xy, settings.snap_candidates, settings.max_snap_m)
    features = Joins.from_candidates(owner_f, nodes, np.maximum(legs, _EPS), net.n_nodes)
    plots = access.joins()
    # A leg longer than the limit cannot be part of a walk within it.
    features = features.subset(features.leg <= limit_m)
    plots = plots.subset(plots.leg <= limit_m)
    if not len(features.owner) or not len(plots.owner):
        return counts
    chains = net.chains()
    # The plots' joins to the contracted network serve every category: made once.
    core_plots = access.cached(("core", limit_m), lambda: chains.to_core(plots, limit_m))
    plot, feature = _plot_feature_pairs(chains, plots, core_plots, features, limit_m,
                                        memory_floats)
    if weighted:
        w = np.asarray(weights, dtype=float)[feature]
        return np.bincount(plot, weights=w, minlength=access.n_plots).astype(float)
    return np.bincount(plot, minlength=access.n_plots).astype(np.int64)


def _plot_feature_pairs(
    chains: Chains,
    plots: Joins,
    core_plots: Joins,
    features: Joins,
    limit_m: float,
    memory_floats: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Every distinct (plot, feature) pair within ``limit_m`` walking of each other."""
    core_features = chains.to_core(features, limit_m)
    found_plots, found_features = [], []
    if len(core_plots.owner) and len(core_features.owner):
        # Search from the side with fewer members: each search costs about the same.
        from_plots = len(core_plots.starts()) < len(core_features.starts())
        source, target = (core_plots, core_features) if from_plots else (core_features,
                                                                           core_plots)
        src, dst = _pairs_within(chains, source, target, limit_m, memory_floats)
        found_plots.append(src if from_plots else dst)
        found_features.append(dst if from_plots else src)
    along_plots, along_features = _pairs_along_chains(chains, plots, features, limit_m)
    plot = np.concatenate([*found_plots, along_plots])
    feature = np.concatenate([*found_features, along_features])
    # A pair can be found both ways (along its chain and through the chain's ends).
    width = int(features.owner.max()) + 1
    key = np.sort(plot * width + feature)
    key = key[np.r_[True, key[1:] != key[:-1]]] if len(key) else key
    return key // width, key % width


def _pairs_along_chains(
    chains: Chains, plots: Joins, features: Joins, limit_m: float
) -> tuple[np.ndarray, np.ndarray]:
    """(plot, feature) pairs joined to the same chain and within the limit along it."""
    def frame(joins: Joins) -> pd.DataFrame:
        chain = chains.chain[joins.node]
        on = chain >= 0
        return pd.DataFrame({"chain": chain[on], "owner": joins.owner[on],
                             "at": chains.off_a[joins.node[on]], "leg": joins.leg[on]})

    both = frame(plots).merge(frame(features), on="chain", suffixes=("_p", "_f"))
    walk = both["leg_p"] + (both["at_p"] - both["at_f"]).abs() + both["leg_f"]
    near = both[walk <= limit_m]
    return near["owner_p"].to_numpy(np.int64), near["owner_f"].to_numpy(np.int64)


@dataclass
class _Tiles:
    """Members of a join set bucketed by square cells of their joins' centre.

    ``order`` lists join rows by (cell, member), so the rows of one cell, and within it
    of one member, are contiguous; ``cell_of_row`` is the cell key of each listed row.
    """

    origin: np.ndarray
    size: float
    width: int
    order: np.ndarray
    cell_of_row: np.ndarray
    reach: np.ndarray  # largest distance (x, y) from a member's centre to its joins


def _tiles(net: WalkNetwork | Chains, joins: Joins, size: float) -> _Tiles:
    xy = net.xy[joins.node]
    starts = joins.starts()
    lo = np.minimum.reduceat(xy, starts, axis=0)
    hi = np.maximum.reduceat(xy, starts, axis=0)
    centre = (lo + hi) / 2
    origin = net.xy.min(axis=0)
    width = int(np.ceil((net.xy[:, 0].max() - origin[0]) / size)) + 1
    cell = np.floor((centre - origin) / size).astype(np.int64)
    member_cell = cell[:, 1] * width + cell[:, 0]
    counts = np.diff(np.r_[starts, len(joins.owner)])
    row_cell = np.repeat(member_cell, counts)
    order = np.argsort(row_cell, kind="stable")  # stable: rows stay grouped by member
    reach = ((hi - lo) / 2).max(axis=0) if len(lo) else np.zeros(2)
    return _Tiles(origin, size, width, order, row_cell[order], reach)


def _rows_in_box(tiles: _Tiles, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Join rows (in ``tiles.order``) of members whose centre cell meets the box."""
    c0 = np.floor((lo - tiles.reach - tiles.origin) / tiles.size).astype(np.int64)
    c1 = np.floor((hi + tiles.reach - tiles.origin) / tiles.size).astype(np.int64)
    c0[0], c1[0] = max(c0[0], 0), min(c1[0], tiles.width - 1)
    parts = []
    for cy in range(max(c0[1], 0), c1[1] + 1):
        a, b = np.searchsorted(
            tiles.cell_of_row, [cy * tiles.width + c0[0], cy * tiles.width + c1[0] + 1]
        )
        if b > a:
            parts.append(tiles.order[a:b])
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def _pairs_within(
    net: WalkNetwork | Chains, source: Joins, target: Joins, limit_m: float, memory_floats: int
) -> tuple[np.ndarray, np.ndarray]:
    """Every (source member, target member) pair within ``limit_m`` walking of each other.

    Sources are taken a cell of neighbours at a time; their searches run on the nodes
    within ``limit_m`` of the cell's joins (plus a metre for rounding), which hold every
    path short enough to count.
    """
    size = limit_m * _CELL_FACTOR
    src_tiles, dst_tiles = _tiles(net, source, size), _tiles(net, target, size)
    by_x = np.argsort(net.xy[:, 0], kind="stable")
    sorted_x = net.xy[by_x, 0]
    local = np.full(net.n_nodes, -1, dtype=np.int64)
    found: list[tuple[np.ndarray, np.ndarray]] = []
    cells, first = np.unique(src_tiles.cell_of_row, return_index=True)
    bounds = np.r_[first, len(src_tiles.order)]
    for i in range(len(cells)):
        rows = src_tiles.order[bounds[i] : bounds[i + 1]]
        cell_joins = source.subset(rows)
        xy = net.xy[cell_joins.node]
        lo, hi = xy.min(axis=0) - limit_m - 1.0, xy.max(axis=0) + limit_m + 1.0
        a, b = np.searchsorted(sorted_x, [lo[0], hi[0]], side="left")
        idx = by_x[a:b]
        idx = idx[(net.xy[idx, 1] >= lo[1]) & (net.xy[idx, 1] <= hi[1])]
        local[idx] = np.arange(len(idx))
        reached = target.subset(_rows_in_box(dst_tiles, lo, hi))
        reached = reached.subset(local[reached.node] >= 0)
        if len(reached.owner):
            found.append(_search_cell(net, idx, local, cell_joins, reached, limit_m,
                                      memory_floats))
        local[idx] = -1
    if not found:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.concatenate([f[0] for f in found]), np.concatenate([f[1] for f in found])


def _ranges(starts: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """The indices ``starts[i] … starts[i] + sizes[i] - 1`` of every range, in order."""
    offsets = np.repeat(starts - np.r_[0, np.cumsum(sizes)[:-1]], sizes)
    return offsets + np.arange(int(sizes.sum()))


def _search_cell(
    net: WalkNetwork | Chains,
    idx: np.ndarray,
    local: np.ndarray,
    sources: Joins,
    targets: Joins,
    limit_m: float,
    memory_floats: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Bounded searches from one cell's source members on the subgraph of nodes ``idx``."""
    picked = net.graph[idx]
    cols = local[picked.indices]
    keep = cols >= 0
    kept_before = np.r_[0, np.cumsum(keep)]
    sub = csr_matrix(
        (picked.data[keep], cols[keep], kept_before[picked.indptr]), shape=(len(idx), len(idx))
    )
    starts = sources.starts()
    sizes = np.diff(np.r_[starts, len(sources.owner)])
    # Neighbouring sources are searched together, a few at a time: the targets any of
    # them reaches stay few, and the tables stay small enough for the cache.
    first_xy = net.xy[sources.node[starts]]
    order = np.lexsort((first_xy[:, 0], np.floor(first_xy[:, 1] / (limit_m / 4))))
    t_local = local[targets.node]
    chunk = max(1, min(_SEARCHES_AT_ONCE, memory_floats // max(1, len(idx) + len(targets.owner))))
    src_out, dst_out = [], []
    for c0 in range(0, len(order), chunk):
        group = order[c0 : c0 + chunk]
        rows = _ranges(starts[group], sizes[group])
        graph = _with_virtual_rows(sub, sizes[group], local[sources.node[rows]],
                                   sources.leg[rows])
        dist = dijkstra(graph, directed=True, indices=len(idx) + np.arange(len(group)),
                        limit=limit_m)[:, : len(idx)]
        # Only targets joined at a node some search reached can be within the limit:
        # far fewer than all targets around the cell.
        near = targets.subset(np.isfinite(dist).any(axis=0)[t_local])
        if not len(near.owner):
            continue
        t_starts = near.starts()
        totals = np.ascontiguousarray(dist.T)[local[near.node]] + near.leg[:, None]
        within = np.minimum.reduceat(totals, t_starts, axis=0) <= limit_m
        t, s = np.nonzero(within)
        src_out.append(sources.owner[starts[group[s]]])
        dst_out.append(near.owner[t_starts[t]])
    if not src_out:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.concatenate(src_out), np.concatenate(dst_out)
