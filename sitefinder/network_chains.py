"""The walking network with its chains of pass-through nodes contracted.

Four nodes in five are pass-through nodes (way shape points and the points added when
long segments are split). Searches over the junctions alone, joined by one edge per
chain, give the same distances at a fifth of the cost: :mod:`sitefinder.network_distances`
and :mod:`sitefinder.network_counts` both search here (:meth:`WalkNetwork.chains` builds
it once per network).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components, dijkstra

from sitefinder.network import Joins, WalkNetwork


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
