"""The walking network: graph building, snapping, and how plots and features join it.

This is the only module that builds the network. Design (DESIGN.md, "How distances are
computed"):

* The graph is a symmetric ``scipy.sparse`` matrix of walkable OSM ways in the local metric
  CRS; long segments are split so that snapping to the nearest *node* lands within half a
  segment of the nearest point of the street.
* Plots are joined by their boundary: points are sampled along the boundary, each joined
  to its nearest nodes with the straight leg added. Features and plots on a piece of
  network that is not linked to the rest get ``inf`` (unreachable), never a false short
  distance: a leg is never longer than ``max_snap_m`` and no search crosses gaps.
  All outlines are sampled and snapped in tree queries (a compiled grid search for many
  points, with exactly the tree's answers) and each plot's joins reduced once to one leg
  per (plot, node), shared by every category; many plots are joined in blocks on every
  core.
* The searches live beside it: :mod:`sitefinder.network_chains` (the network with its
  pass-through chains contracted), :mod:`sitefinder.network_distances` (distance to the
  nearest feature, the paths walked, isochrones) and :mod:`sitefinder.network_counts`
  (features within N minutes).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
import shapely.geometry
from pyproj import CRS
from scipy.sparse import coo_matrix, csr_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from sitefinder.config import NetworkSettings
from sitefinder.parallel import compiled, usable_cpus

if TYPE_CHECKING:
    from sitefinder.network_chains import Chains
    from sitefinder.network_distances import _ChainIndex

_T = TypeVar("_T")

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
# Points snapped at once from which the tree query runs on every core.
_PARALLEL_SNAP = 20_000
# Plots joined per thread at least (below, one thread does all).
_PLOTS_PER_BLOCK = 1_000
# Points snapped at once from which the compiled grid search replaces the tree query.
_GRID_SNAP = 20_000


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
        self._chain_index: _ChainIndex | None = None
        self._node_grid: _NodeGrid | None = None

    def chains(self) -> Chains:
        """The network with its chains of pass-through nodes contracted (built once)."""
        from sitefinder.network_chains import contract_chains

        # getattr: a network pickled before chains existed has no such attribute.
        if getattr(self, "_chains", None) is None:
            self._chains = contract_chains(self)
        return self._chains

    def chain_index(self) -> _ChainIndex:
        """The nodes arranged by chain, for spreading junction distances (built once)."""
        from sitefinder.network_distances import _ChainIndex

        if getattr(self, "_chain_index", None) is None:
            self._chain_index = _ChainIndex.of(self.chains())
        return self._chain_index

    @property
    def n_nodes(self) -> int:
        """Number of nodes."""
        return len(self.xy)

    @property
    def n_edges(self) -> int:
        """Number of undirected edges."""
        return self.graph.nnz // 2

    def snap(
        self, points: np.ndarray, k: int, max_dist: float, *, workers: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` nearest nodes of each point within ``max_dist``.

        Many points (all plot outlines) are searched cell by cell on a grid of the nodes
        by compiled code, with exactly the result of the KD-tree query (which decides
        ties); for fewer, ``workers`` threads share the tree query (default: every core
        for many points, one for a few).

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
        if len(points) >= _GRID_SNAP and self.n_nodes > k_eff:
            return self._grid().nearest(points, k_eff, max_dist, self._tree)
        # Every core for many points (all plot outlines: the largest single cost of
        # measuring); one for a few, where starting threads costs more than it saves.
        if workers is None:
            workers = -1 if len(points) >= _PARALLEL_SNAP else 1
        return _tree_query(self._tree, points, k_eff, max_dist, workers)

    def _grid(self) -> _NodeGrid:
        if getattr(self, "_node_grid", None) is None:
            self._node_grid = _NodeGrid.of(self.xy)
        return self._node_grid


def _tree_query(
    tree: cKDTree, points: np.ndarray, k: int, max_dist: float, workers: int
) -> tuple[np.ndarray, np.ndarray]:
    legs, nodes = tree.query(points, k=k, distance_upper_bound=max_dist, workers=workers)
    legs = np.asarray(legs, dtype=float).reshape(len(points), k)
    nodes = np.asarray(nodes, dtype=np.int64).reshape(len(points), k)
    return nodes, legs


@dataclass
class _NodeGrid:
    """The nodes bucketed by square cells, for the compiled nearest-node search.

    ``order`` lists the nodes cell by cell (rows of ``width`` cells from ``origin``);
    the nodes of cell ``c`` are ``order[start[c]:start[c + 1]]``.
    """

    x: np.ndarray
    y: np.ndarray
    origin: np.ndarray
    size: float
    width: int
    height: int
    order: np.ndarray
    start: np.ndarray

    @classmethod
    def of(cls, xy: np.ndarray) -> _NodeGrid:
        """Cells of about one node each on average (at least 20 m a side)."""
        origin = xy.min(axis=0)
        span = np.maximum(xy.max(axis=0) - origin, 1.0)
        size = max(20.0, float(np.sqrt(span[0] * span[1] / len(xy))))
        width, height = (np.floor(span / size).astype(np.int64) + 1).tolist()
        cell = np.floor((xy - origin) / size).astype(np.int64)
        key = cell[:, 1] * width + cell[:, 0]
        order = np.argsort(key, kind="stable")
        start = np.searchsorted(key[order], np.arange(width * height + 1))
        return cls(np.ascontiguousarray(xy[:, 0]), np.ascontiguousarray(xy[:, 1]), origin,
                   size, width, height, order, start)

    def nearest(
        self, points: np.ndarray, k: int, max_dist: float, tree: cKDTree
    ) -> tuple[np.ndarray, np.ndarray]:
        """What ``tree.query(points, k, distance_upper_bound=max_dist)`` returns.

        The compiled search finds the ``k + 1`` nearest; where two of them are equally
        far (two nodes on the same spot, a point halfway between two) the tree's own
        choice and order are taken instead, so the result is the tree's exactly.
        """
        n = len(self.x)
        nodes = np.empty((len(points), k), dtype=np.int64)
        legs = np.empty((len(points), k))
        tie = np.empty(len(points), dtype=np.bool_)
        _grid_nearest(
            np.ascontiguousarray(points, dtype=float), self.x, self.y, self.order,
            self.start, float(self.origin[0]), float(self.origin[1]), self.size, self.width,
            self.height, float(max_dist), n, nodes, legs, tie,
        )
        redo = np.flatnonzero(tie)
        if len(redo):
            nodes[redo], legs[redo] = _tree_query(tree, points[redo], k, max_dist, 1)
        return nodes, legs


@compiled
def _joins_by_owner(owner, nodes, legs, n, out_owner, out_node, out_leg):  # pragma: no cover
    """:meth:`Joins.from_candidates` for rows grouped by owner (compiled); returns the count.

    Within an owner's rows each node is kept once with its shortest leg (``stamp`` and
    ``slot`` say whether and where the owner already has it), then the owner's nodes are
    put in ascending order, as the sorted keys of :meth:`Joins.from_rows` give them.
    """
    m, k = nodes.shape
    stamp = np.full(n + 1, -1, dtype=np.int64)
    slot = np.empty(n + 1, dtype=np.int64)
    count = 0
    i = 0
    while i < m:
        o = owner[i]
        first = count
        while i < m and owner[i] == o:
            for c in range(k):
                v, leg = nodes[i, c], legs[i, c]
                if not leg < np.inf:
                    continue
                if stamp[v] == o:
                    if leg < out_leg[slot[v]]:
                        out_leg[slot[v]] = leg
                else:
                    stamp[v], slot[v] = o, count
                    out_owner[count], out_node[count], out_leg[count] = o, v, leg
                    count += 1
            i += 1
        if count - first > 64:  # a huge outline (rare): a library sort
            order = np.argsort(out_node[first:count]) + first
            out_node[first:count], out_leg[first:count] = out_node[order], out_leg[order]
        # Else an insertion sort: a plot has a few dozen nodes, each once (no ties).
        for a in range(first + 1, count if count - first <= 64 else first):
            v, leg, b = out_node[a], out_leg[a], a - 1
            while b >= first and out_node[b] > v:
                out_node[b + 1], out_leg[b + 1] = out_node[b], out_leg[b]
                b -= 1
            out_node[b + 1], out_leg[b + 1] = v, leg
    return count


@compiled
def _grid_nearest(  # pragma: no cover - compiled
    points, nx, ny, order, start, ox, oy, size, width, height, max_dist, n, nodes, legs, tie,
):
    """Per point, the ``nodes.shape[1]`` nearest nodes within ``max_dist``, nearest first.

    Within as the KD-tree decides: the squared distance below ``max_dist`` squared (a
    leg may then round to ``max_dist`` itself).

    Rings of cells round the point's cell are searched until the last node kept is
    nearer than the nearest edge of the square searched so far (nothing outside can be
    as near) or that edge is ``max_dist`` away. One node more than asked for is kept, to
    see ties: ``tie`` marks points where two of them are equally far (and points that
    are not finite). Missing nodes are ``n`` at ``inf``.
    """
    k = nodes.shape[1] + 1
    best = np.empty(k, dtype=np.int64)
    dist = np.empty(k)  # squared until the end: one root per node kept, not per node seen
    bound = max_dist * max_dist  # the tree's test too: a leg may round to max_dist
    for i in range(len(points)):
        x, y = points[i, 0], points[i, 1]
        best[:] = n
        dist[:] = np.inf
        if not (np.isfinite(x) and np.isfinite(y)):
            tie[i] = True  # left to the tree, whatever it makes of it
            continue
        cx = int(np.floor((x - ox) / size))
        cy = int(np.floor((y - oy) / size))
        r = 0
        while True:
            for yy in range(max(cy - r, 0), min(cy + r, height - 1) + 1):
                step = 1 if yy == cy - r or yy == cy + r or r == 0 else 2 * r
                for xx in range(cx - r, cx + r + 1, step):
                    if xx < 0 or xx >= width:
                        continue
                    c = yy * width + xx
                    for t in range(start[c], start[c + 1]):
                        v = order[t]
                        dx = x - nx[v]
                        dy = y - ny[v]
                        d = dx * dx + dy * dy
                        if d < dist[k - 1] and d < bound:
                            j = k - 1
                            while j > 0 and dist[j - 1] > d:
                                dist[j] = dist[j - 1]
                                best[j] = best[j - 1]
                                j -= 1
                            dist[j] = d
                            best[j] = v
            reach = min(x - (ox + (cx - r) * size), ox + (cx + r + 1) * size - x,
                        y - (oy + (cy - r) * size), oy + (cy + r + 1) * size - y)
            # Nothing outside the square searched is nearer (a margin for rounding).
            if dist[k - 1] < reach * reach * (1 - 1e-12) or reach >= max_dist:
                break
            r += 1
        for j in range(k):
            dist[j] = np.sqrt(dist[j])  # as the tree computes it
        tie[i] = False
        for j in range(k - 1):
            nodes[i, j] = best[j]
            legs[i, j] = dist[j]
            if dist[j] == dist[j + 1] and dist[j] < np.inf:
                tie[i] = True


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
    it to ``step`` metres (a closed outline's last point, the same as its first, left
    out). Empty or missing geometries give no points.

    Returns
    -------
    xy : ndarray, shape (m, 2)
    owner : ndarray of int, shape (m,)
        Position (0-based, in ``geoms``) of the geometry each point belongs to; ascending.
    """
    return _outline_points(geoms.to_numpy(), step)


def _outline_points(arr: np.ndarray, step: float) -> tuple[np.ndarray, np.ndarray]:
    """:func:`access_points` of an array of geometries."""
    type_id = shapely.get_type_id(arr)
    polygonal = np.isin(type_id, [3, 6])
    points = None
    if len(arr) and polygonal.all():
        points = _polygon_outline_points(arr, step, multi=bool((type_id == 6).any()))
    if points is None:  # points, lines, a mix, or outlines only GEOS may densify
        outline = arr.copy()
        outline[polygonal] = shapely.boundary(arr[polygonal])
        points = shapely.get_coordinates(shapely.segmentize(outline, step), return_index=True)
    xy, owner = points
    # A closed outline ends on its first point again: the same joins, snapped twice.
    keep = _not_closing(xy, owner)
    return xy[keep], owner[keep]


def _polygon_outline_points(
    arr: np.ndarray, step: float, *, multi: bool
) -> tuple[np.ndarray, np.ndarray] | None:
    """The densified rings of (multi)polygons, as ``segmentize(boundary(arr))`` gives them.

    Plot outlines are the one large batch densified. Building two new geometries per
    plot in GEOS (the boundary, then the densified boundary) took three quarters of the
    time, so the rings' points are made here by compiled code from the coordinates: to
    the bit the points GEOS makes. ``None`` where GEOS would refuse (coordinates or step
    not finite, a segment cut in more parts than GEOS allows): GEOS then says what is
    wrong.
    """
    if not (np.isfinite(step) and step > 0):
        return None
    if not multi and not shapely.get_num_interior_rings(arr).any():
        # One ring per polygon: its coordinates are the polygon's (no ring objects made).
        coords, coord_ring = shapely.get_coordinates(arr, return_index=True)
        ring_owner = np.arange(len(arr))
    else:
        if multi:
            polygons, polygon_owner = shapely.get_parts(arr, return_index=True)
        else:
            polygons, polygon_owner = arr, np.arange(len(arr))
        rings, ring_polygon = shapely.get_rings(polygons, return_index=True)
        coords, coord_ring = shapely.get_coordinates(rings, return_index=True)
        ring_owner = polygon_owner[ring_polygon]
    if not np.isfinite(coords).all():
        return None
    ring_end = np.searchsorted(coord_ring, np.arange(len(ring_owner)), side="right")
    size = _densified_size(coords, ring_end, float(step))
    if size < 0:
        return None
    xy, ring = _densify_rings(coords, ring_end, float(step), size)
    return xy, ring_owner[ring]


# GEOS refuses to cut a segment in more parts than this (its count is a 32-bit integer).
_MAX_PARTS = 2**31 - 1


@compiled
def _densified_size(coords, ring_end, step):  # pragma: no cover - compiled
    """Room for the points of :func:`_densify_rings`; -1 if a segment needs too many."""
    size = len(ring_end)
    a = 0
    for r in range(len(ring_end)):
        for i in range(a, ring_end[r] - 1):
            dx, dy = coords[i + 1, 0] - coords[i, 0], coords[i + 1, 1] - coords[i, 1]
            parts = np.ceil(np.sqrt(dx * dx + dy * dy) / step)
            if not parts <= _MAX_PARTS:
                return -1
            size += max(int(parts), 1)
        a = ring_end[r]
    return size


@compiled
def _densify_rings(coords, ring_end, step, size):  # pragma: no cover - compiled
    """Points of each ring (``coords[ring_end[r - 1]:ring_end[r]]``) at most ``step`` apart.

    GEOS's densifier, step for step: a segment of length ``L`` is cut into ``ceil(L /
    step)`` equal parts at fractions ``(j * (L / parts)) / L`` of it, and a point equal
    to the one before it is not repeated. ``size`` is :func:`_densified_size`'s (finite
    coordinates and step). Returns the points and the ring of each.
    """
    out = np.empty((size, 2))
    ring = np.empty(size, np.int64)
    n, a = 0, 0
    for r in range(len(ring_end)):
        first = n
        for i in range(a, ring_end[r]):
            x0, y0 = coords[i, 0], coords[i, 1]
            if n == first or out[n - 1, 0] != x0 or out[n - 1, 1] != y0:
                out[n, 0], out[n, 1], ring[n] = x0, y0, r
                n += 1
            if i == ring_end[r] - 1:
                break
            dx, dy = coords[i + 1, 0] - x0, coords[i + 1, 1] - y0
            length = np.sqrt(dx * dx + dy * dy)
            parts = np.ceil(length / step)
            if parts > 1:
                part = length / parts
                for j in range(1, int(parts)):
                    f = (j * part) / length
                    x, y = x0 + f * dx, y0 + f * dy
                    if out[n - 1, 0] != x or out[n - 1, 1] != y:
                        out[n, 0], out[n, 1], ring[n] = x, y, r
                        n += 1
        a = ring_end[r]
    return out[:n], ring[:n]


@compiled
def _not_closing(xy, owner):  # pragma: no cover - compiled
    """False at an owner's last point where it repeats the owner's first (closing) point."""
    keep = np.ones(len(owner), dtype=np.bool_)
    first = 0
    for i in range(len(owner)):
        if i + 1 == len(owner) or owner[i + 1] != owner[i]:
            if i > first and xy[i, 0] == xy[first, 0] and xy[i, 1] == xy[first, 1]:
                keep[i] = False
            first = i + 1
    return keep


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
        owner, nodes, legs = (np.asarray(a) for a in (owner, nodes, legs))
        if not len(legs):
            return cls(owner.astype(np.int64), nodes.astype(np.int64), legs.astype(float))
        key = owner.astype(np.int64) * (n_nodes + 1) + nodes
        # Stable sort: rows usually come grouped by member, and a merge sort uses those
        # runs (three times faster than quicksort on 10,000 plot outlines).
        order = np.argsort(key, kind="stable")
        key, legs = key[order], legs[order]
        first = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
        pick = order[first]
        shortest = np.minimum.reduceat(legs, first)
        # Out-of-reach rows (inf legs) are dropped after the sort, when they are fewest.
        pick, shortest = pick[np.isfinite(shortest)], shortest[np.isfinite(shortest)]
        return cls(owner[pick].astype(np.int64, copy=False),
                   nodes[pick].astype(np.int64, copy=False), shortest)

    def starts(self) -> np.ndarray:
        """Index of each member's first row."""
        return np.flatnonzero(np.r_[True, self.owner[1:] != self.owner[:-1]])

    def subset(self, keep: np.ndarray) -> Joins:
        """The rows where ``keep`` is true."""
        return Joins(self.owner[keep], self.node[keep], self.leg[keep])


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
    _starts: np.ndarray | None = field(default=None, init=False, repr=False)
    _cache: dict = field(default_factory=dict, init=False, repr=False)

    def cached(self, key: tuple, make: Callable[[], _T]) -> _T:
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
        if self._starts is None:
            self._starts = joins.starts()
        starts = self._starts
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
        # Arrays, not a frame of every candidate: at 100,000 plots that frame held 7 million
        # rows (half a gigabyte at the run's peak).
        main = np.append(net.component == net.main_component, False)[self.nodes]
        legs = np.where(main, self.legs, np.inf)
        rows = np.arange(len(legs))
        col = legs.argmin(axis=1) if legs.size else np.zeros(len(legs), dtype=np.int64)
        leg_row = legs[rows, col] if legs.size else np.full(len(legs), np.inf)
        ok = np.isfinite(leg_row)
        # By plot, then leg; the stable sort keeps the first sample of equal legs.
        order = np.lexsort((leg_row[ok], self.owner[ok]))
        owner = self.owner[ok][order]
        first = np.r_[True, owner[1:] != owner[:-1]] if len(owner) else np.zeros(0, bool)
        node = np.full(self.n_plots, -1, dtype=np.int64)
        leg = np.full(self.n_plots, np.inf)
        node[owner[first]] = self.nodes[rows[ok], col[ok]][order][first]
        leg[owner[first]] = leg_row[ok][order][first]
        return node, leg


def plot_access(
    net: WalkNetwork, geoms: gpd.GeoSeries, settings: NetworkSettings
) -> PlotAccess:
    """Join plots to the network by their boundary (or their point).

    All outlines are sampled in vectorised calls and snapped in tree queries, with the
    joins of :meth:`PlotAccess.joins` made at once; many plots are shared out in blocks
    over the processor's cores (the tree query, GEOS and numpy's sort run outside
    Python's lock). The result does not depend on the blocks.
    """
    arr = geoms.to_numpy()
    blocks = _blocks(len(arr))
    if len(blocks) == 1:
        parts = [_access_block(net, arr, settings, 0)]
    else:
        net._grid()  # built once, before the threads that share it
        with ThreadPoolExecutor(len(blocks)) as pool:
            parts = list(pool.map(
                lambda b: _access_block(net, arr[b[0] : b[1]], settings, b[0]), blocks
            ))
    xy, owner, nodes, legs = (np.concatenate([p[i] for p in parts]) for i in range(4))
    access = PlotAccess(owner=owner, nodes=nodes, legs=legs, n_plots=len(arr), xy=xy)
    access._joins = Joins(*(np.concatenate([getattr(p[4], f) for p in parts])
                            for f in ("owner", "node", "leg")))
    return access


def _blocks(n: int) -> list[tuple[int, int]]:
    """Ranges of plots joined in parallel: one per core for many plots, else one."""
    count = max(1, min(usable_cpus(), n // _PLOTS_PER_BLOCK))
    edges = np.linspace(0, n, count + 1).astype(int)
    return list(zip(edges[:-1].tolist(), edges[1:].tolist(), strict=True))


def _access_block(
    net: WalkNetwork, arr: np.ndarray, settings: NetworkSettings, first: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, Joins]:
    """Access samples, their candidates and the joins of the plots ``first …``."""
    xy, owner = _outline_points(arr, settings.boundary_step_m)
    owner = owner + first
    nodes, legs = net.snap(xy, settings.snap_candidates, settings.max_snap_m, workers=1)
    if len(xy) < _GRID_SNAP:
        return xy, owner, nodes, legs, Joins.from_candidates(owner, nodes, legs,
                                                             net.n_nodes + 1)
    # Many plots: their joins made by compiled code (numba is loaded for the grid search).
    size = nodes.size
    out = np.empty(size, np.int64), np.empty(size, np.int64), np.empty(size)
    count = _joins_by_owner(owner, nodes, legs, net.n_nodes, *out)
    return xy, owner, nodes, legs, Joins(*(a[:count] for a in out))


