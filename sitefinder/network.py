"""The walking network: graph building, snapping, multi-source shortest paths.

This is the only module that touches the network. Design (DESIGN.md, "How distances are
computed"):

* The graph is a symmetric ``scipy.sparse`` matrix of walkable OSM ways in the local metric
  CRS; long segments are split so that snapping to the nearest *node* lands within half a
  segment of the nearest point of the street.
* Distances to a category are **one** Dijkstra run: a virtual source node is joined to every
  feature's nearby network nodes with an edge as long as the feature's off-network leg, and
  ``scipy.sparse.csgraph.dijkstra`` runs once from it. Every network node then knows its
  distance to the nearest feature; a plot reads it at its access nodes. The cost does not
  grow with the number of plots, and there is no Python loop over plots or pairs.
* Plots are joined by their boundary: points are sampled along the boundary, each joined
  to its nearest nodes with the straight leg added. Features and plots on a piece of
  network that is not linked to the rest get ``inf`` (unreachable), never a false short
  distance: a leg is never longer than ``max_snap_m`` and Dijkstra does not cross gaps.
  All outlines are snapped in one tree query; each plot's joins are reduced once to one
  leg per (plot, node) and shared by every category.
* The same search keeps its predecessors on request (:func:`shortest_path_tree`), so
  :mod:`sitefinder.routes` can draw the walk that was measured.
* Counts within N minutes live in :mod:`sitefinder.network_counts`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
import shapely.geometry
from pyproj import CRS
from scipy.sparse import coo_matrix, csr_matrix
from scipy.sparse.csgraph import connected_components, dijkstra
from scipy.spatial import cKDTree

from sitefinder.config import NetworkSettings

if TYPE_CHECKING:
    from sitefinder.network_counts import Chains

# Ways tagged like this are not walkable even if their highway class is.
_NO_FOOT = {"no", "private"}
_FOOT_OK = {"yes", "designated", "permissive", "official"}
# highway values of ways that are not there to walk on (yet, or any more), whatever
# their foot tag says: a footway under construction tagged foot=designated is still a
# building site.
_NOT_BUILT = {
    "construction", "proposed", "planned", "abandoned", "disused", "razed", "demolished",
    "dismantled", "removed", "no",
}
# Smallest edge weight: scipy treats an explicit zero in a sparse matrix as "no edge".
_EPS = 1e-3


@dataclass
class WalkNetwork:
    """A walking network ready for shortest-path queries.

    Attributes
    ----------
    xy : ndarray, shape (n, 2)
        Node coordinates in the local CRS.
    graph : csr_matrix, shape (n, n)
        Symmetric edge lengths in metres.
    component : ndarray, shape (n,)
        Connected-component label of every node.
    main_component : int
        Label of the largest component.
    crs : CRS
        The local metric CRS.
    osm_ids : ndarray of int, shape (n,)
        OSM node id of each node; -1 for nodes added when splitting long segments.
    """

    xy: np.ndarray
    graph: csr_matrix
    component: np.ndarray
    main_component: int
    crs: CRS
    osm_ids: np.ndarray

    def __post_init__(self) -> None:
        self._tree = cKDTree(self.xy) if len(self.xy) else None
        self._chains: Chains | None = None

    def chains(self) -> Chains:
        """The network with its chains of pass-through nodes contracted (built once)."""
        from sitefinder.network_counts import contract_chains

        # getattr: a network pickled before chains existed has no such attribute.
        if getattr(self, "_chains", None) is None:
            self._chains = contract_chains(self)
        return self._chains

    @property
    def n_nodes(self) -> int:
        """Number of nodes."""
        return len(self.xy)

    @property
    def n_edges(self) -> int:
        """Number of undirected edges."""
        return self.graph.nnz // 2

    def snap(
        self, points: np.ndarray, k: int, max_dist: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest nodes of each point within ``max_dist``.

        Returns
        -------
        nodes : ndarray of int, shape (m, k)
            Node indices; ``n_nodes`` where fewer than ``k`` nodes are within reach.
        legs : ndarray of float, shape (m, k)
            Straight-line distance to each node; ``inf`` where there is none.
        """
        points = np.asarray(points, dtype=float).reshape(-1, 2)
        if self._tree is None or len(points) == 0:
            return (
                np.full((len(points), k), self.n_nodes, dtype=np.int64),
                np.full((len(points), k), np.inf),
            )
        k_eff = min(k, self.n_nodes)
        legs, nodes = self._tree.query(points, k=k_eff, distance_upper_bound=max_dist)
        legs = np.asarray(legs, dtype=float).reshape(len(points), k_eff)
        nodes = np.asarray(nodes, dtype=np.int64).reshape(len(points), k_eff)
        return nodes, legs


def walkable_ways(lines: gpd.GeoDataFrame, settings: NetworkSettings) -> gpd.GeoDataFrame:
    """The OSM ways people may walk on, by highway class and foot/access tags.

    A way is walkable when its ``highway`` class is in ``settings.highway_types`` (or it
    is any existing highway with an explicit ``foot`` permission, e.g. a trunk road with
    ``foot=yes``), unless

    * it is not built: ``highway=construction``, ``proposed``, ``abandoned`` ... (even
      with ``foot=designated``);
    * ``foot=no`` or ``foot=private``;
    * ``access=no`` or ``access=private`` without a ``foot=yes/designated/permissive/
      official`` exception.

    Parameters
    ----------
    lines : GeoDataFrame
        ``OsmData.lines`` with columns ``highway``, ``foot``, ``access``.
    settings : NetworkSettings
        Supplies ``highway_types``.

    Returns
    -------
    GeoDataFrame
        The walkable rows of ``lines``.
    """
    if not len(lines):
        return lines
    highway = lines["highway"]
    foot = lines["foot"].fillna("").str.strip()
    access = lines["access"].fillna("").str.strip()
    foot_ok = foot.isin(_FOOT_OK)
    # A trunk road or motorway with an explicit foot=yes is walkable (rare, but legal).
    ok = highway.isin(settings.highway_types) | (highway.notna() & foot_ok)
    ok &= ~highway.isin(_NOT_BUILT)
    ok &= ~foot.isin(_NO_FOOT)
    ok &= ~access.isin(_NO_FOOT) | foot_ok
    return lines.loc[ok]


def build_walk_network(
    lines: gpd.GeoDataFrame, crs: CRS, settings: NetworkSettings
) -> WalkNetwork:
    """Build the walking network from OSM lines.

    Parameters
    ----------
    lines : GeoDataFrame
        ``OsmData.lines`` (EPSG:4326, with ``node_ids``).
    crs : CRS
        Local metric CRS.
    settings : NetworkSettings
        Which highway classes are walkable and how finely to split segments.

    Returns
    -------
    WalkNetwork
    """
    ways = walkable_ways(lines, settings)
    if not len(ways):
        empty = csr_matrix((0, 0))
        none = np.zeros(0, dtype=np.int64)
        return WalkNetwork(np.zeros((0, 2)), empty, none, 0, crs, none)
    projected = ways.geometry.to_crs(crs)
    coords, line_index = shapely.get_coordinates(projected.to_numpy(), return_index=True)
    osm_ids = np.concatenate([np.asarray(ids, dtype=np.int64) for ids in ways["node_ids"]])
    # Shared OSM node ids are what connects ways into a network.
    unique_ids, first, inverse = np.unique(osm_ids, return_index=True, return_inverse=True)
    xy = coords[first]
    same_way = line_index[:-1] == line_index[1:]
    u, v = inverse[:-1][same_way], inverse[1:][same_way]
    keep = u != v
    u, v = u[keep], v[keep]
    xy, u, v, length = _split_long_segments(xy, u, v, settings.segment_m)

    # Two ways can share a segment (e.g. a footway drawn on a road): keep the shortest,
    # because a sparse matrix built from duplicates would add their lengths up.
    a, b = np.minimum(u, v), np.maximum(u, v)
    edges = pd.DataFrame({"a": a, "b": b, "w": np.maximum(length, _EPS)})
    edges = edges.groupby(["a", "b"], sort=False)["w"].min().reset_index()
    n = len(xy)
    rows = np.concatenate([edges["a"], edges["b"]])
    cols = np.concatenate([edges["b"], edges["a"]])
    weights = np.concatenate([edges["w"], edges["w"]])
    graph = coo_matrix((weights, (rows, cols)), shape=(n, n)).tocsr()
    _, component = connected_components(graph, directed=False)
    main = int(np.bincount(component).argmax())
    osm_node_ids = np.concatenate([unique_ids, np.full(n - len(unique_ids), -1, dtype=np.int64)])
    return WalkNetwork(
        xy=xy, graph=graph, component=component, main_component=main, crs=crs,
        osm_ids=osm_node_ids,
    )


def _split_long_segments(
    xy: np.ndarray, u: np.ndarray, v: np.ndarray, max_len: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Split segments longer than ``max_len`` into equal pieces (vectorised)."""
    length = np.hypot(*(xy[u] - xy[v]).T)
    long = length > max_len
    if not long.any():
        return xy, u, v, length
    lu, lv, ll = u[long], v[long], length[long]
    pieces = np.ceil(ll / max_len).astype(np.int64)
    extra = pieces - 1
    seg = np.repeat(np.arange(len(pieces)), extra)
    first_new = np.concatenate([[0], np.cumsum(extra)[:-1]])
    k = np.arange(extra.sum()) - first_new[seg] + 1  # 1..pieces-1 within each segment
    t = (k / pieces[seg])[:, None]
    new_xy = xy[lu[seg]] + t * (xy[lv[seg]] - xy[lu[seg]])
    new_ids = len(xy) + np.arange(len(new_xy))
    # Chain u -> n1 -> ... -> n(m-1) -> v for every long segment.
    prev = np.where(k == 1, lu[seg], new_ids - 1)
    last_new = new_ids[first_new + extra - 1]
    piece_len = ll / pieces
    u2 = np.concatenate([u[~long], prev, last_new])
    v2 = np.concatenate([v[~long], new_ids, lv])
    len2 = np.concatenate([length[~long], piece_len[seg], piece_len])
    return np.vstack([xy, new_xy]), u2, v2, len2


def access_points(geoms: gpd.GeoSeries, step: float) -> tuple[np.ndarray, np.ndarray]:
    """Points where a plot or feature can be joined to the network.

    Points are themselves; areas and lines give their boundary vertices after densifying
    it to ``step`` metres. Empty or missing geometries give no points.

    Returns
    -------
    xy : ndarray, shape (m, 2)
    owner : ndarray of int, shape (m,)
        Position (0-based, in ``geoms``) of the geometry each point belongs to; ascending.
    """
    arr = geoms.to_numpy()
    polygonal = np.isin(shapely.get_type_id(arr), [3, 6])
    outline = arr.copy()
    outline[polygonal] = shapely.boundary(arr[polygonal])
    dense = shapely.segmentize(outline, step)
    xy, owner = shapely.get_coordinates(dense, return_index=True)
    return xy, owner


@dataclass
class Joins:
    """Straight legs joining the members of a set (plots or features) to network nodes.

    One row per (member, node) pair, with the shortest leg of that pair, grouped by
    member in ascending order.

    Attributes
    ----------
    owner : ndarray of int, shape (j,)
        Member position.
    node : ndarray of int, shape (j,)
        Network node.
    leg : ndarray of float, shape (j,)
        Straight-line leg in metres.
    """

    owner: np.ndarray
    node: np.ndarray
    leg: np.ndarray

    @classmethod
    def from_candidates(
        cls, owner: np.ndarray, nodes: np.ndarray, legs: np.ndarray, n_nodes: int
    ) -> Joins:
        """Joins from snapping results (``nodes``/``legs`` of shape (m, k), ``owner`` (m,)).

        Candidates out of reach (``inf`` leg) are dropped; of repeated (member, node)
        pairs only the shortest leg is kept, which is all a shortest path can use.
        """
        k = nodes.shape[1]
        owner = np.repeat(np.asarray(owner, dtype=np.int64), k)
        return cls.from_rows(owner, nodes.ravel(), legs.ravel(), n_nodes)

    @classmethod
    def from_rows(
        cls, owner: np.ndarray, nodes: np.ndarray, legs: np.ndarray, n_nodes: int
    ) -> Joins:
        """Joins from (member, node, leg) rows in any order.

        ``inf`` legs are dropped; repeated (member, node) pairs keep their shortest leg.
        """
        ok = np.isfinite(legs)
        owner, nodes, legs = owner[ok], nodes[ok], legs[ok]
        if not len(legs):
            return cls(owner, nodes, legs)
        key = owner * (n_nodes + 1) + nodes
        # Stable sort: rows usually come grouped by member, and a merge sort uses those
        # runs (three times faster than quicksort on 10,000 plot outlines).
        order = np.argsort(key, kind="stable")
        key, legs = key[order], legs[order]
        first = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
        key = key[first]
        return cls(key // (n_nodes + 1), key % (n_nodes + 1), np.minimum.reduceat(legs, first))

    def starts(self) -> np.ndarray:
        """Index of each member's first row."""
        return np.flatnonzero(np.r_[True, self.owner[1:] != self.owner[:-1]])

    def subset(self, keep: np.ndarray) -> Joins:
        """The rows where ``keep`` is true."""
        return Joins(self.owner[keep], self.node[keep], self.leg[keep])


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

    One Dijkstra run from a virtual source joined to each feature's nearby nodes (see
    :func:`distance_field`), keeping the predecessors so routes can be drawn.

    Parameters
    ----------
    net : WalkNetwork
    feature_xy : ndarray, shape (m, 2)
        Access points of the features (see :func:`access_points`).
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

    One Dijkstra run from a virtual source joined to each feature's nearby nodes.

    Parameters
    ----------
    net : WalkNetwork
    feature_xy : ndarray, shape (m, 2)
        Access points of the features (see :func:`access_points`).
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
    augmented = _with_virtual_rows(net.graph, np.array([len(nodes)]), nodes, legs)
    found = dijkstra(augmented, directed=True, indices=n, limit=settings.max_distance_m,
                     return_predecessors=predecessors)
    if not predecessors:
        return PathTree(np.asarray(found[:n]), none, none.copy())
    dist, pred = found[0][:n], found[1][:n].astype(np.int64)
    entry = none.copy()
    entered = pred == n  # reached straight from the virtual source
    entry[nodes] = point
    entry[~entered] = -1
    pred[entered | (pred < 0)] = -1
    return PathTree(np.asarray(dist), pred, entry)


@dataclass
class PlotAccess:
    """How each plot is joined to the network.

    Attributes
    ----------
    owner : ndarray of int, shape (s,)
        Plot position of each access sample.
    nodes : ndarray of int, shape (s, k)
        Candidate nodes of each sample (``n_nodes`` = none).
    legs : ndarray, shape (s, k)
        Off-network leg to each candidate (``inf`` = none).
    n_plots : int
        Number of plots.
    xy : ndarray, shape (s, 2), optional
        Coordinates of the access samples (where a route leaves the plot).
    """

    owner: np.ndarray
    nodes: np.ndarray
    legs: np.ndarray
    n_plots: int
    xy: np.ndarray | None = None
    _joins: Joins | None = field(default=None, init=False, repr=False)
    _cache: dict = field(default_factory=dict, init=False, repr=False)

    def cached(self, key: tuple, make: Callable[[], Joins]) -> Joins:
        """A value derived from these joins, made once per ``key`` (e.g. per limit)."""
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    def joins(self) -> Joins:
        """Every (plot, node) join in reach with its shortest leg, grouped by plot.

        Computed once and shared by the distances and counts of every category.
        """
        if self._joins is None:
            n_nodes = int(self.nodes.max()) + 1 if self.nodes.size else 0
            self._joins = Joins.from_candidates(self.owner, self.nodes, self.legs, n_nodes)
        return self._joins

    def nearest_leg(self) -> np.ndarray:
        """Shortest off-network leg of each plot (``inf`` when nothing is in reach)."""
        out = np.full(self.n_plots, np.inf)
        np.minimum.at(out, self.owner, self.legs.min(axis=1))
        return out

    def read(self, node_values: np.ndarray) -> np.ndarray:
        """Per plot: min over its access candidates of ``leg + node_values[node]``."""
        joins = self.joins()
        out = np.full(self.n_plots, np.inf)
        if not len(joins.owner):
            return out
        starts = joins.starts()
        totals = joins.leg + np.asarray(node_values)[joins.node]
        out[joins.owner[starts]] = np.minimum.reduceat(totals, starts)
        return out

    def best(self, node_values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per plot: the access sample and node where ``leg + node_values[node]`` is least.

        Returns
        -------
        sample, node : ndarray of int, shape (n_plots,)
            Row in ``owner``/``nodes`` and the node; ``-1`` for plots that reach nothing.
        total : ndarray, shape (n_plots,)
            That least value (as :meth:`read`); ``inf`` for plots that reach nothing.
        """
        padded = np.append(np.asarray(node_values, dtype=float), np.inf)
        totals = self.legs + padded[self.nodes]
        col = totals.argmin(axis=1)
        per_sample = totals[np.arange(len(totals)), col]
        frame = pd.DataFrame({"owner": self.owner, "total": per_sample})
        frame = frame[np.isfinite(frame["total"])]
        sample = np.full(self.n_plots, -1, dtype=np.int64)
        node = np.full(self.n_plots, -1, dtype=np.int64)
        total = np.full(self.n_plots, np.inf)
        if len(frame):
            rows = frame.groupby("owner")["total"].idxmin().to_numpy()
            plots = self.owner[rows]
            sample[plots], node[plots] = rows, self.nodes[rows, col[rows]]
            total[plots] = per_sample[rows]
        return sample, node, total

    def primary(self, net: WalkNetwork) -> tuple[np.ndarray, np.ndarray]:
        """Per plot: the main-component node with the shortest leg, and that leg.

        Plots with no main-component node in reach get node ``-1`` and leg ``inf``.
        """
        component = np.append(net.component, -1)[self.nodes]
        legs = np.where(component == net.main_component, self.legs, np.inf)
        flat = pd.DataFrame(
            {
                "owner": np.repeat(self.owner, legs.shape[1]),
                "node": self.nodes.ravel(),
                "leg": legs.ravel(),
            }
        )
        flat = flat[np.isfinite(flat["leg"])]
        best = flat.loc[flat.groupby("owner")["leg"].idxmin()]
        node = np.full(self.n_plots, -1, dtype=np.int64)
        leg = np.full(self.n_plots, np.inf)
        node[best["owner"].to_numpy()] = best["node"].to_numpy()
        leg[best["owner"].to_numpy()] = best["leg"].to_numpy()
        return node, leg


def plot_access(
    net: WalkNetwork, geoms: gpd.GeoSeries, settings: NetworkSettings
) -> PlotAccess:
    """Join plots to the network by their boundary (or their point).

    All outlines are sampled in one vectorised call and snapped in one tree query.
    """
    xy, owner = access_points(geoms, settings.boundary_step_m)
    nodes, legs = net.snap(xy, settings.snap_candidates, settings.max_snap_m)
    return PlotAccess(owner=owner, nodes=nodes, legs=legs, n_plots=len(geoms), xy=xy)


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
        Primary node and off-network leg of each origin (:meth:`PlotAccess.primary`);
        origins with node ``-1`` are skipped.
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
