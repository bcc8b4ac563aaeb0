"""Counts of features within N minutes' walk of each plot.

The companion of :mod:`sitefinder.network`, which builds the network and joins plots and
features to it. Counts are bounded searches, one per feature (or per plot when plots are
fewer), on the network with its chains of pass-through nodes contracted
(:class:`~sitefinder.network_chains.Chains`). Each search is compiled (numba): it stops
at the limit, touches only the junctions it reaches, and reads the plots (or features)
joined there, so the cost grows with the features times the junctions in reach, not
times the network, and no table of distances is held. The searches run on a few threads.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from sitefinder.config import NetworkSettings
from sitefinder.network import _EPS, Joins, PlotAccess, WalkNetwork
from sitefinder.network_chains import Chains
from sitefinder.parallel import compiled, usable_cpus

# Width of the buckets of the search queue (see _search). Any width gives the
# same distances; narrower means more buckets to step through, wider more nodes
# expanded twice. Measured best near 5 m on the Oslo network.
_BUCKET_M = 5.0
# From this many sources on, the searches are split into _PARTS parts, each adding up
# into its own sums, run on up to as many threads (the searches release the GIL). The
# split does not depend on the machine, so summed weights (floats) are the same on any.
_PARALLEL_SOURCES = 16
_PARTS = 4
_THREADS = min(_PARTS, usable_cpus())
# Indices into the graph and the joins, in the compiled searches, are unsigned: numba
# then skips the check for negative (from-the-end) indices, which makes them a sixth
# faster. 32 bits index four billion joins (80 GB of them); _as_index checks.
_INDEX = np.uint32


def count_within(
    net: WalkNetwork,
    feature_xy: np.ndarray,
    access: PlotAccess,
    limit_m: float,
    settings: NetworkSettings,
    *,
    feature_owner: np.ndarray | None = None,
    weights: np.ndarray | None = None,
) -> np.ndarray:
    """Number (or weighted sum) of features within ``limit_m`` walking of each plot.

    Features and plots are joined exactly as for
    :func:`~sitefinder.network_distances.distance_field` (every access point of a
    feature to its ``snap_candidates`` nearest nodes with its leg; each plot through all
    its access points), so a count is never 0 where the distance to the nearest feature
    is within the limit.

    The searches are bounded: one shortest-path search per member of the smaller side
    (features, or plots when there are fewer plots), on the network with its
    pass-through chains contracted (:class:`~sitefinder.network_chains.Chains`), stopped
    at ``limit_m``. Each search touches only the junctions it reaches and reads the other
    side's joins at them, so the cost grows with the members times the junctions *within
    reach*, not times all nodes of the network, and memory grows only with the nodes,
    plots and features. Walks that stay inside one chain (a plot and a shop on the same
    stretch of street) are added from the chain offsets.

    Parameters
    ----------
    feature_xy : ndarray, shape (m, 2)
        Access points of the features (:func:`~sitefinder.network.access_points`).
    access : PlotAccess
        How the plots are joined (:func:`~sitefinder.network.plot_access`).
    feature_owner : ndarray of int, optional
        Feature of each access point (default: one point per feature).
    weights : ndarray, optional
        Per-feature weight (e.g. departures per hour at a stop); the result is then the
        sum of weights within reach instead of a count.

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
    # A leg longer than the limit cannot be part of a walk within it.
    features = features.subset(features.leg <= limit_m)
    if not len(features.owner):
        return counts
    # The plots' side serves every category: made once per limit.
    plots = access.cached(("counts", limit_m),
                          lambda: _PlotSide.of(net.chains(), access, limit_m))
    if not len(plots.joins.owner):
        return counts
    n_features = int(owner_f.max()) + 1
    weight = np.asarray(weights, dtype=float) if weighted else np.ones(n_features)
    if len(weight) < n_features:  # the compiled searches do not check their indices
        raise ValueError(f"{len(weight)} weights for {n_features} features")
    total = _reach_sums(net, access, plots, features, limit_m, weight)
    return total if weighted else np.rint(total).astype(np.int64)


def _reach_sums(
    net: WalkNetwork,
    access: PlotAccess,
    plots: _PlotSide,
    features: Joins,
    limit_m: float,
    weight: np.ndarray,
) -> np.ndarray:
    """Per plot, the summed ``weight`` of the features within ``limit_m`` walking."""
    chains = net.chains()
    core_features = chains.to_core(features, limit_m)
    along_plots, along_features = _pairs_along_chains(
        plots.on_chains, _on_chains(chains, features), limit_m)
    # Search from the side with fewer members: each search costs about the same.
    if plots.n_joined < len(core_features.starts()):
        plan = _Plan(plots.core(), access.n_plots,
                     _by_node(core_features, chains.n_nodes), len(weight), along_plots,
                     along_features, from_plots=True)
    else:
        plan = _Plan(core_features, len(weight), plots.by_node, access.n_plots,
                     along_features, along_plots, from_plots=False)
    return plan.run(_Graph.of(chains), limit_m, weight, access.n_plots)


@dataclass
class _PlotSide:
    """The plots' joins as the counts read them, for one limit (shared by categories).

    Attributes
    ----------
    joins : Joins
        The joins with legs within the limit.
    by_node : tuple of ndarray
        Their joins to core nodes as :func:`_by_node` gives them (what a search from a
        feature reads).
    on_chains : _OnChains
        Their joins at pass-through nodes (for walks along one chain).
    n_joined : int
        Plots with at least one join to a core node.
    chains : Chains
        The contracted network they were made for.
    limit_m : float
        The limit the joins were cut to.
    """

    joins: Joins
    by_node: tuple[np.ndarray, np.ndarray, np.ndarray]
    on_chains: _OnChains
    n_joined: int
    chains: Chains
    limit_m: float
    _core: Joins | None = None

    @classmethod
    def of(cls, chains: Chains, access: PlotAccess, limit_m: float) -> _PlotSide:
        joins = access.joins()
        joins = joins.subset(joins.leg <= limit_m)
        by_node = _plots_by_node(chains, joins, limit_m, access.n_plots)
        n_joined = int(np.count_nonzero(np.bincount(by_node[1], minlength=access.n_plots)))
        return cls(joins, by_node, _on_chains(chains, joins), n_joined, chains, limit_m)

    def core(self) -> Joins:
        """The joins to core nodes grouped by plot (what a search from a plot starts)."""
        if self._core is None:
            self._core = self.chains.to_core(self.joins, self.limit_m)
        return self._core


@dataclass
class _Plan:
    """Which side is searched from, and what each search reads."""

    source: Joins  # to core nodes, by member
    n_source: int
    targets: tuple[np.ndarray, np.ndarray, np.ndarray]  # as from _by_node
    n_target: int
    along_source: np.ndarray  # pairs found along chains
    along_target: np.ndarray
    from_plots: bool

    def run(self, graph: _Graph, limit_m: float, weight: np.ndarray,
            n_plots: int) -> np.ndarray:
        """Per plot, the summed ``weight`` of the features within ``limit_m``."""
        order = np.argsort(self.along_source, kind="stable")
        args = (
            *graph.arrays(), _pointers(self.source.owner, self.n_source), self.source.node,
            self.source.leg, *self.targets, _pointers(self.along_source[order], self.n_source),
            self.along_target[order], float(limit_m), weight, self.n_target, self.from_plots,
        )
        n_parts = _PARTS if self.n_source >= _PARALLEL_SOURCES else 1
        parts = [np.zeros(n_plots) for _ in range(n_parts)]
        if n_parts == 1 or _THREADS == 1:
            for k in range(n_parts):
                _sum_within(*args, k, n_parts, parts[k])
        else:
            # Part k takes every n_parts-th source and adds up into its own sums.
            with ThreadPoolExecutor(_THREADS) as pool:
                list(pool.map(lambda k: _sum_within(*args, k, n_parts, parts[k]),
                              range(n_parts)))
        return np.sum(parts, axis=0)


@dataclass
class _Graph:
    """The contracted graph's CSR arrays in the types the compiled searches take."""

    indptr: np.ndarray
    indices: np.ndarray
    data: np.ndarray

    @classmethod
    def of(cls, chains: Chains) -> _Graph:
        g = chains.graph
        return cls(_as_index(g.indptr), _as_index(g.indices), g.data.astype(np.float64))

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.indptr, self.indices, self.data


def _by_node(joins: Joins, n_nodes: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The joins as a search reads them: CSR pointers by node, then members and legs.

    At a node the legs ascend, so reading can stop at the first one out of reach.
    """
    order = np.lexsort((joins.leg, joins.node))
    return (_pointers(joins.node[order], n_nodes), _as_index(joins.owner[order]),
            joins.leg[order])


def _plots_by_node(
    chains: Chains, plots: Joins, limit_m: float, n_plots: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`_by_node` of ``chains.to_core(plots, limit_m)``, in one compiled pass.

    The plots' joins are many (ten thousand plots: a quarter of a million): made to
    core nodes, bucketed by node, sorted by leg and merged per plot without the sorts
    by plot that :meth:`Chains.to_core` makes.
    """
    ptr, owner, leg = _core_by_node(plots.owner, plots.node, plots.leg, chains.core_of,
                                    chains.end_a, chains.end_b, chains.off_a, chains.off_b,
                                    float(limit_m), chains.n_nodes, n_plots)
    return _as_index(ptr), _as_index(owner), leg


def _pointers(sorted_keys: np.ndarray, n: int) -> np.ndarray:
    """CSR pointers: rows ``ptr[k]:ptr[k + 1]`` of ``sorted_keys`` hold key ``k``."""
    return _as_index(np.r_[0, np.cumsum(np.bincount(sorted_keys, minlength=n))])


def _as_index(values: np.ndarray) -> np.ndarray:
    """``values`` (not negative) as the unsigned indices of the compiled searches."""
    if len(values) and values.max() > np.iinfo(_INDEX).max:
        raise OverflowError(f"index {values.max():,} too large for the counting searches")
    return values.astype(_INDEX)


@dataclass
class _OnChains:
    """Joins made at pass-through nodes, ordered by chain, with their offset along it."""

    chain: np.ndarray
    owner: np.ndarray
    at: np.ndarray
    leg: np.ndarray


def _on_chains(chains: Chains, joins: Joins) -> _OnChains:
    chain = chains.chain[joins.node]
    on = _rows_by_key(chain, int(chain.max()) + 1 if len(chain) else 0)
    return _OnChains(chain[on], joins.owner[on], chains.off_a[joins.node[on]], joins.leg[on])


def _pairs_along_chains(
    plots: _OnChains, features: _OnChains, limit_m: float
) -> tuple[np.ndarray, np.ndarray]:
    """(plot, feature) pairs joined to the same chain and within the limit along it.

    A pair may appear more than once (joined at several nodes of the chain).
    """
    first = np.searchsorted(plots.chain, features.chain, side="left")
    sizes = np.searchsorted(plots.chain, features.chain, side="right") - first
    feature_row = np.repeat(np.arange(len(features.chain)), sizes)
    plot_row = np.repeat(first - np.r_[0, np.cumsum(sizes)[:-1]], sizes) + np.arange(
        int(sizes.sum()))
    walk = (plots.leg[plot_row] + np.abs(plots.at[plot_row] - features.at[feature_row])
            + features.leg[feature_row])
    near = walk <= limit_m
    return plots.owner[plot_row[near]], features.owner[feature_row[near]]


# The compiled part. Plain loops over arrays (numba): a search costs the nodes it
# reaches, where one scipy call per search costs a pass over the whole graph and a
# dense table of distances to read back.


@compiled
def _sum_within(  # pragma: no cover - compiled
    indptr, indices, data, src_ptr, src_node, src_leg, tgt_ptr, tgt_member, tgt_leg,
    along_ptr, along_member, limit, weight, n_target, from_plots, first, step, sums,
):
    """Search from every ``step``-th source from ``first``; add up what each reaches.

    A target member counts once per source (``stamp``), whether found along a chain or
    through the network; the weight added to the plot is the feature's.
    """
    space = _space(len(indptr) - 1, limit, len(indices) + 64)
    stamp = np.full(n_target, -1, np.int64)
    found = np.empty(n_target + 1, np.int64)
    for s in range(first, len(src_ptr) - 1, step):
        n_found = 0
        for k in range(along_ptr[s], along_ptr[s + 1]):
            if stamp[along_member[k]] != s:
                stamp[along_member[k]] = s
                found[n_found] = along_member[k]
                n_found += 1
        rows = slice(src_ptr[s], src_ptr[s + 1])
        n_reached = _search(indptr, indices, data, src_node[rows], src_leg[rows], limit, space)
        while n_reached < 0:  # the queue was full: again with room for twice as many
            space = _space(len(indptr) - 1, limit, 2 * len(space[2]) + 64)
            n_reached = _search(indptr, indices, data, src_node[rows], src_leg[rows], limit,
                                space)
        reached, reached_d = space[5], space[6]
        for i in range(n_reached):
            u, d = reached[i], reached_d[i]
            for k in range(tgt_ptr[u], tgt_ptr[u + 1]):
                if d + tgt_leg[k] > limit:
                    break  # legs ascend at a node: the rest are longer
                # Written down either way, kept only if new: no branch to mispredict.
                found[n_found] = tgt_member[k]
                n_found += stamp[tgt_member[k]] != s
                stamp[tgt_member[k]] = s
        for i in range(n_found):
            if from_plots:
                sums[s] += weight[found[i]]
            else:
                sums[found[i]] += weight[s]


@compiled
def _rows_by_key(key, n_keys):  # pragma: no cover - compiled
    """Rows with a key ``>= 0``, ordered by key and in their order within a key.

    A counting sort: for the joins of many plots a third of the time of numpy's stable sort.
    """
    ptr = np.zeros(n_keys + 1, np.int64)
    for r in range(len(key)):
        if key[r] >= 0:
            ptr[key[r] + 1] += 1
    ptr = np.cumsum(ptr)
    rows = np.empty(ptr[-1], np.int64)
    for r in range(len(key)):
        if key[r] >= 0:
            rows[ptr[key[r]]] = r
            ptr[key[r]] += 1
    return rows


@compiled
def _core_by_node(  # pragma: no cover - compiled
    owner, node, leg, core_of, end_a, end_b, off_a, off_b, limit, n_core, n_owners,
):
    """(pointers, owners, legs) of the joins made to core nodes, as :func:`_by_node`.

    Each run of rows of one owner (joins come grouped by plot) is first reduced to its
    shortest join per core node, so the buckets hold a plot once per node; rows of an
    owner in several runs are merged in the buckets.
    """
    m = len(node)
    best = np.full(n_core, np.inf)
    mark = np.full(n_core, -1, np.int64)
    touched = np.empty(n_core, np.int64)
    at, by, length = np.empty(2 * m, np.int64), np.empty(2 * m, np.int64), np.empty(2 * m)
    n = 0
    r = 0
    while r < m:
        run, o, n_touched = r, owner[r], 0
        while r < m and owner[r] == o:
            v = node[r]
            # A core node is its own end; a pass-through node is reached from either end.
            if core_of[v] >= 0:
                u1, d1, u2, d2 = core_of[v], leg[r], core_of[v], np.inf
            else:
                u1, d1, u2, d2 = end_a[v], leg[r] + off_a[v], end_b[v], leg[r] + off_b[v]
            for u, d in ((u1, d1), (u2, d2)):
                if d <= limit:
                    if mark[u] != run:
                        mark[u], best[u] = run, d
                        touched[n_touched] = u
                        n_touched += 1
                    elif d < best[u]:
                        best[u] = d
            r += 1
        for i in range(n_touched):
            u = touched[i]
            at[n], by[n], length[n] = u, o, best[u]
            n += 1
    rows = _rows_by_key(at[:n], n_core)
    out_owner, out_leg = by[rows], length[rows]
    ptr = np.zeros(n_core + 1, np.int64)
    for i in range(n):
        ptr[at[i] + 1] += 1
    ptr = np.cumsum(ptr)
    # Each bucket by leg, then an owner's first (shortest) join only, moved to the front.
    seen = np.full(n_owners, -1, np.int64)
    kept = np.zeros(n_core + 1, np.int64)
    w = 0
    for u in range(n_core):
        a, b = ptr[u], ptr[u + 1]
        if b - a > 64:  # a crowded node (rare): a library sort
            order = np.argsort(out_leg[a:b], kind="mergesort")
            out_owner[a:b], out_leg[a:b] = out_owner[a:b][order], out_leg[a:b][order]
        for i in range(a + 1, b if b - a <= 64 else a):  # else insertion sort
            o, x, j = out_owner[i], out_leg[i], i - 1
            while j >= a and out_leg[j] > x:
                out_owner[j + 1], out_leg[j + 1] = out_owner[j], out_leg[j]
                j -= 1
            out_owner[j + 1], out_leg[j + 1] = o, x
        for i in range(a, b):
            if seen[out_owner[i]] != u:
                seen[out_owner[i]] = u
                out_owner[w], out_leg[w] = out_owner[i], out_leg[i]
                w += 1
        kept[u + 1] = w
    return kept, out_owner[:w].copy(), out_leg[:w].copy()


@compiled
def _space(n, limit, capacity):  # pragma: no cover - compiled
    """Working arrays of :func:`_search` for ``n`` nodes and ``capacity`` queue entries.

    ``dist`` (all ``inf`` between searches); the bucket ``head`` s; the queue entries
    (``key``, ``node``, ``after`` in the same bucket); and the nodes ``reached`` in
    order, with their distance then.
    """
    return (np.full(n, np.inf), np.full(int(limit / _BUCKET_M) + 1, -1, np.int64),
            np.empty(capacity), np.empty(capacity, np.int64), np.empty(capacity, np.int64),
            np.empty(capacity, np.int64), np.empty(capacity))


@compiled
def _search(  # pragma: no cover - compiled
    indptr, indices, data, start_node, start_dist, limit, space,
):
    """Walking distances from a source joined at ``start_node`` up to ``limit``.

    Lists in ``space`` every node it expands with its distance then: a node whose
    distance drops later is listed again, nearer, so the least listed distance of a
    node is its distance, and every listed one is a walk that exists. Returns the
    number listed, or -1 when the queue ran out of room.

    The queue is a row of buckets ``_BUCKET_M`` wide: a bucket is emptied before the
    next, and a node whose distance drops within its bucket is queued and expanded
    again, so the distances are Dijkstra's without a heap's cost per node. Every node
    given a distance is queued and so listed: the list says which ``dist`` to reset.
    (The queue code is written out twice, for the start and for each edge: a helper
    taking the arrays costs twice the time.)
    """
    dist, head, key, node, after, reached, reached_d = space
    count, n_reached = 0, 0
    full = len(start_node) > len(key)
    for r in range(0 if full else len(start_node)):
        v, d = start_node[r], start_dist[r]
        if d <= limit and d < dist[v]:
            dist[v] = d
            b = int(d / _BUCKET_M)
            key[count], node[count], after[count] = d, v, head[b]
            head[b] = count
            count += 1
    for b in range(len(head)):
        while head[b] >= 0:
            e = head[b]
            head[b] = after[e]
            du, u = key[e], node[e]
            if full or du > dist[u]:
                continue  # draining a full queue, or an entry since bettered
            reached[n_reached], reached_d[n_reached] = u, du
            n_reached += 1
            if count + indptr[u + 1] - indptr[u] > len(key):
                full = True
                continue
            for k in range(indptr[u], indptr[u + 1]):
                v, d = indices[k], du + data[k]
                if d <= limit and d < dist[v]:
                    dist[v] = d
                    bv = int(d / _BUCKET_M)
                    key[count], node[count], after[count] = d, v, head[bv]
                    head[bv] = count
                    count += 1
    if full:  # some nodes given a distance were not listed
        dist[:] = np.inf
        return -1
    for i in range(n_reached):
        dist[reached[i]] = np.inf
    return n_reached
