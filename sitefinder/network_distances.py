"""Walking distances to the nearest feature, the paths walked, and isochrones.

Design (DESIGN.md, "How distances are computed"; the network and the joins are built by
:mod:`sitefinder.network`):

* Distances to a category are **one** Dijkstra run, on the network with its chains of
  pass-through nodes contracted (:meth:`WalkNetwork.chains`: about a fifth of the nodes):
  a virtual source node is joined to every feature's nearby network nodes (for a
  pass-through node: to the junctions at both ends of its chain) with an edge as long as
  the feature's off-network leg (plus the way along the chain), and
  ``scipy.sparse.csgraph.dijkstra`` runs once from it. The result is then
  spread to every pass-through node, vectorised chain by chain: the better of the ways
  through the chain's two ends and, where a feature joins the same chain, the way along
  it (running minima over the chain's nodes in order). Every network node then knows its
  distance to the nearest feature, exactly as a search over all nodes would give it (to
  rounding); a plot reads it at its access nodes. The cost does not grow with the number
  of plots, and there is no Python loop over plots, chains or pairs.
* The same search keeps its predecessors on request (:func:`shortest_path_tree`), so
  :mod:`sitefinder.routes` can draw the walk that was measured: the paths from a search
  over all nodes, the distances those of :func:`distance_field`.
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import shapely
import shapely.geometry
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import dijkstra

from sitefinder.config import NetworkSettings
from sitefinder.network import _EPS, Joins, WalkNetwork
from sitefinder.network_chains import Chains


@dataclass
class PathTree:
    """Shortest paths from the nearest of a set of features to every network node.

    Attributes
    ----------
    dist : ndarray, shape (n_nodes,)
        Metres to the nearest feature (its leg included); ``inf`` where none is reached.
    predecessor : ndarray of int, shape (n_nodes,)
        The node before each node on its path *from* the feature; ``-1`` where the path
        enters the network at this node (or the node is not reached).
    entry : ndarray of int, shape (n_nodes,)
        Where the path enters the network at a node: the index of the feature access
        point whose straight leg leads there; ``-1`` elsewhere.
    """

    dist: np.ndarray
    predecessor: np.ndarray
    entry: np.ndarray


def _source_edges(
    feature_xy: np.ndarray, net: WalkNetwork, settings: NetworkSettings
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per network node joined to a feature: the node, its shortest leg and that leg's point.

    Each access point is joined to its ``snap_candidates`` nearest nodes within
    ``max_snap_m``.
    """
    nodes, legs = net.snap(feature_xy, settings.snap_candidates, settings.max_snap_m)
    point = np.broadcast_to(np.arange(len(feature_xy))[:, None], nodes.shape)
    ok = np.isfinite(legs)
    point, nodes, legs = point[ok], nodes[ok], np.maximum(legs[ok], _EPS)
    order = np.lexsort((legs, nodes))
    first = np.ones(len(order), dtype=bool)
    first[1:] = nodes[order][1:] != nodes[order][:-1]
    pick = order[first]
    return nodes[pick], legs[pick], point[pick]


def _with_virtual_rows(
    graph: csr_matrix, row_sizes: np.ndarray, cols: np.ndarray, weights: np.ndarray
) -> csr_matrix:
    """``graph`` with one virtual node per entry of ``row_sizes`` appended.

    Virtual node ``i`` has edges *out* only (to ``cols`` of its row, in row order), so no
    path can use it as a shortcut between the nodes it is joined to. Built from the CSR
    arrays directly: no conversion of the whole graph.
    """
    n, extra = graph.shape[0], len(row_sizes)
    indptr = np.concatenate([graph.indptr, graph.nnz + np.cumsum(row_sizes)])
    return csr_matrix(
        (np.concatenate([graph.data, weights]), np.concatenate([graph.indices, cols]), indptr),
        shape=(n + extra, n + extra),
    )


def shortest_path_tree(
    net: WalkNetwork, feature_xy: np.ndarray, settings: NetworkSettings
) -> PathTree:
    """Walking distance from every node to the nearest feature, and the paths there.

    The distances are exactly those of :func:`distance_field`; the predecessors, so that
    routes can be drawn, come from one more Dijkstra run over every node of the network
    from the same virtual source.

    Parameters
    ----------
    net : WalkNetwork
    feature_xy : ndarray, shape (m, 2)
        Access points of the features (see :func:`~sitefinder.network.access_points`).
    settings : NetworkSettings

    Returns
    -------
    PathTree
    """
    return _tree(net, feature_xy, settings, predecessors=True)


def distance_field(
    net: WalkNetwork, feature_xy: np.ndarray, settings: NetworkSettings
) -> np.ndarray:
    """Walking distance from every node to the nearest of a set of features.

    One Dijkstra run on the contracted network from a virtual source joined to each
    feature's nearby nodes, spread along the chains to every node (see the module notes).

    Parameters
    ----------
    net : WalkNetwork
    feature_xy : ndarray, shape (m, 2)
        Access points of the features (see :func:`~sitefinder.network.access_points`).
    settings : NetworkSettings

    Returns
    -------
    ndarray, shape (n_nodes,)
        Metres; ``inf`` beyond ``max_distance_m`` or where no feature can be reached.
    """
    return _tree(net, feature_xy, settings, predecessors=False).dist


def _tree(
    net: WalkNetwork, feature_xy: np.ndarray, settings: NetworkSettings, *, predecessors: bool
) -> PathTree:
    n = net.n_nodes
    none = np.full(n, -1, dtype=np.int64)
    if n == 0 or not len(feature_xy):
        return PathTree(np.full(n, np.inf), none, none.copy())
    nodes, legs, point = _source_edges(np.asarray(feature_xy, dtype=float), net, settings)
    if not len(nodes):
        return PathTree(np.full(n, np.inf), none, none.copy())
    limit = settings.max_distance_m
    dist = _contracted_field(net, nodes, legs, limit)
    if not predecessors:
        return PathTree(dist, none, none.copy())
    # The paths themselves come from a search of the whole network (chains have no
    # predecessors), a metre further than the limit so that it reaches every node the
    # field reaches whatever the rounding; the distances stay those of the field.
    augmented = _with_virtual_rows(net.graph, np.array([len(nodes)]), nodes, legs)
    _, pred = dijkstra(augmented, directed=True, indices=n, limit=limit + 1.0,
                       return_predecessors=True)
    pred = pred[:n].astype(np.int64)
    entry = none.copy()
    entered = pred == n  # reached straight from the virtual source
    entry[nodes] = point
    reached = np.isfinite(dist)
    entry[~entered | ~reached] = -1
    pred[entered | (pred < 0) | ~reached] = -1
    return PathTree(dist, pred, entry)


@dataclass
class _ChainIndex:
    """The network's nodes arranged for spreading junction distances to all nodes.

    Attributes
    ----------
    core_nodes : ndarray of int, shape (c,)
        Network node of each core node.
    through : ndarray of int, shape (t,)
        The pass-through nodes; ``end_a``, ``end_b``, ``off_a``, ``off_b`` are theirs.
    layout : ndarray of int, shape (t,)
        Pass-through nodes ordered by chain, then by their offset along it.
    chain_start, chain_size : ndarray of int, shape (chains,)
        Where each chain's nodes lie in ``layout``.
    position : ndarray of int, shape (n,)
        Index of each pass-through node in ``layout``.
    """

    core_nodes: np.ndarray
    through: np.ndarray
    end_a: np.ndarray
    end_b: np.ndarray
    off_a: np.ndarray
    off_b: np.ndarray
    layout: np.ndarray
    chain_start: np.ndarray
    chain_size: np.ndarray
    position: np.ndarray

    @classmethod
    def of(cls, chains: Chains) -> _ChainIndex:
        """The index of a contracted network."""
        core = chains.core_of >= 0
        through = np.flatnonzero(~core)
        layout = through[np.lexsort((chains.off_a[through], chains.chain[through]))]
        size = np.bincount(chains.chain[through]) if len(through) else np.zeros(0, np.int64)
        position = np.full(len(core), -1, dtype=np.int64)
        position[layout] = np.arange(len(layout))
        return cls(
            np.flatnonzero(core), through, chains.end_a[through], chains.end_b[through],
            chains.off_a[through], chains.off_b[through], layout,
            np.r_[0, np.cumsum(size)[:-1]].astype(np.int64), size, position,
        )


def _contracted_field(
    net: WalkNetwork, nodes: np.ndarray, legs: np.ndarray, limit: float
) -> np.ndarray:
    """Distance from every node to the nearest source (``legs`` at ``nodes``) within ``limit``.

    One Dijkstra run on the junctions of :meth:`WalkNetwork.chains` from a virtual source
    joined to the sources' chain ends, then spread to the pass-through nodes: the better
    of the way through either end of the node's chain and, for a source on the same
    chain, the way along it.
    """
    chains = net.chains()
    index = net.chain_index()
    core = chains.to_core(Joins(np.zeros(len(nodes), dtype=np.int64), nodes, legs), limit)
    dist = np.full(net.n_nodes, np.inf)
    if len(core.node):
        c = chains.n_nodes
        augmented = _with_virtual_rows(chains.graph, np.array([len(core.node)]), core.node,
                                       core.leg)
        at_core = dijkstra(augmented, directed=True, indices=c, limit=limit)[:c]
        dist[index.core_nodes] = at_core
        dist[index.through] = np.minimum(at_core[index.end_a] + index.off_a,
                                         at_core[index.end_b] + index.off_b)
    _along_chains(chains, index, nodes, legs, dist)
    dist[dist > limit] = np.inf
    return dist


def _along_chains(
    chains: Chains, index: _ChainIndex, nodes: np.ndarray, legs: np.ndarray, dist: np.ndarray
) -> None:
    """Lower ``dist`` on every chain with a source to the walk along the chain from it.

    A node at offset ``x`` on a chain with sources at offsets ``x_s`` (legs ``l_s``) is
    ``min(l_s + |x - x_s|)`` away along it: a running minimum of ``l_s - x_s`` forwards and
    of ``l_s + x_s`` backwards over the chain's nodes in order of offset.
    """
    on = chains.core_of[nodes] < 0
    src, leg = nodes[on], legs[on]
    if not len(src):
        return
    chain = chains.chain[src]
    touched = np.unique(chain)
    sizes = index.chain_size[touched]
    sub_start = np.r_[0, np.cumsum(sizes)[:-1]]
    rows = _ranges(index.chain_start[touched], sizes)
    members = index.layout[rows]
    segment = np.repeat(np.arange(len(touched)), sizes)
    at = sub_start[np.searchsorted(touched, chain)] + index.position[src] \
        - index.chain_start[chain]
    x = chains.off_a[members]
    forward = np.full(len(members), np.inf)
    forward[at] = leg - x[at]
    backward = np.full(len(members), np.inf)
    backward[at] = leg + x[at]
    forward = _running_min(forward, segment) + x
    backward = _running_min(backward[::-1], segment[::-1])[::-1] - x
    dist[members] = np.minimum(dist[members], np.minimum(forward, backward))


def _running_min(values: np.ndarray, segment: np.ndarray) -> np.ndarray:
    """Cumulative minimum of ``values`` restarting wherever ``segment`` changes.

    Doubling steps (each element takes the minimum of itself and the one ``shift``
    before it in the same segment): exact, and log2(longest segment) passes.
    """
    out = values.copy()
    shift = 1
    while shift < len(out):
        same = segment[shift:] == segment[:-shift]
        if not same.any():
            break
        np.minimum(out[shift:], np.where(same, out[:-shift], np.inf), out=out[shift:])
        shift *= 2
    return out


def _ranges(starts: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """The indices ``starts[i] … starts[i] + sizes[i] - 1`` of every range, in order."""
    offsets = np.repeat(starts - np.r_[0, np.cumsum(sizes)[:-1]], sizes)
    return offsets + np.arange(int(sizes.sum()))




def isochrones(
    net: WalkNetwork,
    origin_nodes: np.ndarray,
    origin_legs: np.ndarray,
    labels: list[str],
    minutes: tuple[float, ...],
    speed_m_per_min: float,
    buffer_m: float = 25.0,
    cell_m: float = 5.0,
) -> gpd.GeoDataFrame:
    """Walking isochrones as polygons that follow the streets (not convex hulls).

    For each origin, one Dijkstra run (limited to the largest time) gives the distance to
    every node. The streets reachable within each time are burnt into a fine grid
    (``cell_m``), widened by ``buffer_m`` and turned back into polygons, so a river or a
    railway without a crossing stays a hole. (Buffering thousands of street segments as
    vectors and merging them is about a hundred times slower for the same picture.)

    Parameters
    ----------
    origin_nodes, origin_legs : ndarray
        Primary node and off-network leg of each origin
        (:meth:`~sitefinder.network.PlotAccess.primary`); origins with node ``-1`` are skipped.
    labels : list of str
        Plot id of each origin.
    minutes : tuple of float
        Isochrone times, e.g. ``(5, 10, 15)``.
    speed_m_per_min : float
        Walking speed.
    buffer_m : float
        Half-width of the walkable corridor drawn around reached streets.
    cell_m : float
        Grid cell size; the polygon edges are this precise.

    Returns
    -------
    GeoDataFrame
        Columns ``plot_id``, ``minutes``, geometry (local CRS), largest time first.
    """
    rows: list[dict] = []
    ok = origin_nodes >= 0
    if not ok.any():
        return gpd.GeoDataFrame({"plot_id": [], "minutes": []}, geometry=[], crs=net.crs)
    limit = max(minutes) * speed_m_per_min
    dist = dijkstra(net.graph, directed=False, indices=origin_nodes[ok], limit=limit)
    dist = np.atleast_2d(dist) + origin_legs[ok][:, None]
    from rasterio import features
    from rasterio.transform import from_origin
    from scipy import ndimage

    coo = net.graph.tocoo()
    upper = coo.row < coo.col  # each undirected edge once
    u, v = coo.row[upper], coo.col[upper]
    segments = shapely.linestrings(
        np.stack([net.xy[u], net.xy[v]], axis=1).reshape(-1, 2),
        indices=np.repeat(np.arange(len(u)), 2),
    )
    radius = int(np.ceil(buffer_m / cell_m))
    yy, xx = np.mgrid[-radius : radius + 1, -radius : radius + 1]
    disk = xx**2 + yy**2 <= radius**2
    for row, label in zip(dist, np.asarray(labels, dtype=object)[ok], strict=True):
        widest = (row[u] <= limit) & (row[v] <= limit)
        if not widest.any():
            continue
        minx, miny, maxx, maxy = shapely.total_bounds(segments[widest])
        pad = buffer_m + 2 * cell_m
        transform = from_origin(minx - pad, maxy + pad, cell_m, cell_m)
        shape = (
            int(np.ceil((maxy - miny + 2 * pad) / cell_m)),
            int(np.ceil((maxx - minx + 2 * pad) / cell_m)),
        )
        for m in sorted(minutes, reverse=True):
            budget = m * speed_m_per_min
            reached = (row[u] <= budget) & (row[v] <= budget)
            if not reached.any():
                continue
            grid = features.rasterize(
                segments[reached], out_shape=shape, transform=transform, all_touched=True,
                dtype="uint8",
            )
            grid = ndimage.binary_dilation(grid > 0, structure=disk).astype("uint8")
            parts = [
                shapely.geometry.shape(geom)
                for geom, _ in features.shapes(grid, mask=grid > 0, transform=transform)
            ]
            rows.append({"plot_id": label, "minutes": m, "geometry": shapely.union_all(parts)})
    return gpd.GeoDataFrame(rows, geometry="geometry", crs=net.crs)
