"""Exact straight-line proximity of many plots to the features of a layer.

GEOS's tree queries (``query_nearest``, the ``dwithin`` predicate) handle one plot at a
time and measure each candidate pair again for every question asked, which made the
nearest dwelling, the dwellings within 25 m and those within 50 m three separate passes
over 100,000 plots, each measuring most pairs exactly. Here one pass answers them all:

1. candidate pairs come from one tree query: the plots' tree, queried with the
   features' boxes widened by the search radius;
2. from the two boxes of a pair numpy gets a lower bound of its distance (the gap
   between the boxes: a geometry is never closer than its box) and an upper bound (the
   farthest two points of the boxes can be apart). A pair is certainly within a radius
   when its upper bound is, certainly not when its lower bound is beyond; and only
   features whose lower bound is below the smallest upper bound of the plot can be its
   nearest;
3. only the undecided pairs are measured exactly, once (``shapely.distance``, the
   distance GEOS's queries use), for the nearest distance and every count;
4. a plot with nothing within the radius is searched again with a radius
   :data:`GROWTH` times larger, and only what is still unfound after
   :data:`MAX_STAGED_M` goes to GEOS's nearest-neighbour query.

Any feature within the radius has its box within the radius, so the nearest found is
the nearest whenever it is within the radius: the results equal those of per-plot queries.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import shapely

#: First search radius (metres) for the nearest feature: most plots have a dwelling,
#: residential land or a school this close, and the pairs stay few.
SEARCH_M = 50.0
#: Factor by which the search radius grows for plots with nothing found.
GROWTH = 4.0
#: Beyond this radius the last unfound plots go to GEOS's nearest-neighbour query.
MAX_STAGED_M = 12_800.0
#: Plots per tree query: bounds the pair table (about 25 pairs per plot at 150 m).
PLOT_CHUNK = 20_000
#: Fewest plots per query in the wider searches for plots with nothing near.
STAGE_CHUNK_MIN = 1_000
#: Relative slack on the box-gap filter, so rounding never drops a pair at the radius.
_SLACK = 1e-9


class Proximity(NamedTuple):
    """Nearest distance and counts within radii, per plot (NaN for unusable plots)."""

    nearest: np.ndarray
    counts: dict[float, np.ndarray]


def proximity(
    geoms: np.ndarray,
    others: np.ndarray,
    usable: np.ndarray,
    radii: Sequence[float] = (),
    weights: np.ndarray | None = None,
    *,
    nearest: bool = True,
    plots: PlotSet | None = None,
) -> Proximity:
    """Distance to the nearest of ``others`` and how many lie within each radius.

    Parameters
    ----------
    geoms : numpy.ndarray of shapely geometries
        The plots (any geometry type), in a metric CRS.
    others : numpy.ndarray of shapely geometries
        The features of one layer, same CRS.
    usable : numpy.ndarray of bool
        Plots to measure; the others get NaN.
    radii : sequence of float
        Count the features within each of these distances (distance ≤ radius, as
        GEOS's ``dwithin``; features on the plot count).
    weights : numpy.ndarray, optional
        Weight of each feature in the counts (default 1).
    nearest : bool, default True
        Also find the nearest distance (False skips the staged search).
    plots : PlotSet, optional
        ``PlotSet(geoms)``, to share its work between the layers measured.

    Returns
    -------
    Proximity
        ``nearest`` (NaN when there are no features, or ``nearest=False``) and
        ``counts`` keyed by radius (0 for usable plots when there are no features).

    Examples
    --------
    >>> plots = np.array([shapely.box(0, 0, 10, 10), shapely.Point(100, 5)])
    >>> houses = np.array([shapely.Point(20, 5), shapely.Point(40, 5), shapely.Point(5, 5)])
    >>> found = proximity(plots, houses, np.array([True, True]), radii=(25,))
    >>> found.nearest.tolist(), found.counts[25].tolist()
    ([0.0, 60.0], [2.0, 0.0])
    """
    n = len(geoms)
    idx = np.flatnonzero(usable)
    near = np.full(n, np.nan)
    counts = {r: np.where(usable, 0.0, np.nan) for r in radii}
    if len(others) == 0 or idx.size == 0:
        return Proximity(near, counts)
    # Intersection tests use the features prepared; undone after for the caller's layers.
    unprepared = others[~shapely.is_prepared(others)]
    shapely.prepare(unprepared)
    try:
        scan = _Scan(plots if plots is not None else PlotSet(geoms), others, weights)
        radius = max([SEARCH_M if nearest else 0.0, *radii])
        bound = np.full(n, np.inf)  # a distance measured, maybe not yet the nearest
        for part in _chunks(idx):
            bound[part], part_counts = scan.run(part, radius, radii, nearest, keep_tree=True)
            for r, count in part_counts.items():
                counts[r][part] = count
        if nearest:
            near = np.where(bound <= radius, bound, np.nan)
            _nearest_beyond(scan, near, bound, usable, radius)
    finally:
        shapely.destroy_prepared(unprepared)
    return Proximity(near, counts)


class PlotSet:
    """What the proximity to every layer needs of the plots, worked out once.

    Their bounds, which are axis-aligned boxes, and the tree of each chunk of plots,
    kept for the next layer.

    Parameters
    ----------
    geoms : numpy.ndarray of shapely geometries
        The plots, as given to :func:`proximity`.
    """

    def __init__(self, geoms: np.ndarray):
        self.geoms = geoms
        self.bounds = shapely.bounds(geoms)
        # Bounds by column: gathering a contiguous column is several times faster.
        self.columns = [np.ascontiguousarray(c) for c in self.bounds.T]
        self.box = _axis_boxes(geoms, self.bounds)
        self._trees: dict[bytes, shapely.STRtree] = {}

    def tree(self, part: np.ndarray, keep: bool) -> shapely.STRtree:
        """The tree of the plots ``part`` (kept for the next layer when ``keep``)."""
        key = part.tobytes()
        tree = self._trees.get(key)
        if tree is None:
            tree = shapely.STRtree(self.geoms[part])
            if keep:
                self._trees[key] = tree
        return tree


class _Scan:
    """Candidate pairs of plots and one layer's features, decided by bounds or measured."""

    def __init__(self, plots: PlotSet, others: np.ndarray, weights: np.ndarray | None):
        self.plots = plots
        self.geoms, self.others = plots.geoms, others
        self.other_bounds = shapely.bounds(others)
        self.weights = None if weights is None else np.asarray(weights, dtype=float)
        self._widened: dict[float, np.ndarray] = {}
        self.inner_x, self.inner_y = _feature_points(others)
        self._other_cols = [np.ascontiguousarray(c) for c in self.other_bounds.T]

    def run(
        self, part: np.ndarray, radius: float, radii: Sequence[float], nearest: bool,
        keep_tree: bool = False,
    ) -> tuple[np.ndarray, dict[float, np.ndarray]]:
        """Nearest-distance bound and counts of the plots ``part``.

        The first is the nearest distance where it is at most ``radius``; beyond, it is
        the smallest distance measured, an upper bound (inf when none was).
        """
        pos, other = self._candidates(part, radius, keep_tree)
        plot = part[pos]
        gap, upper = self._bounds(plot, other)
        limit = np.full(len(pos), float(max(radii, default=0.0)))
        if nearest:
            smallest = np.full(len(part), np.inf)
            np.minimum.at(smallest, pos, upper)
            np.maximum(limit, smallest[pos], out=limit)
        self._tighten(plot, other, gap <= limit * (1 + _SLACK), upper)
        self._touching(plot, other, gap, upper)
        dist = np.full(len(pos), np.inf)  # inf: not measured
        sure = {}
        undecided = np.zeros(len(pos), dtype=bool)
        for r in radii:
            sure[r] = upper <= r * (1 - _SLACK)
            undecided |= (gap <= r * (1 + _SLACK)) & ~sure[r]
        self._measure(plot, other, undecided, dist)
        found = np.full(len(part), np.inf)
        if nearest:
            found = self._nearest(pos, plot, other, gap, upper, dist, len(part))
        counts = {}
        for r in radii:
            inside = sure[r] | (dist <= r)
            add = None if self.weights is None else self.weights[other[inside]]
            counts[r] = np.bincount(pos[inside], weights=add, minlength=len(part)).astype(float)
        return found, counts

    def _nearest(
        self, pos: np.ndarray, plot: np.ndarray, other: np.ndarray, gap: np.ndarray,
        upper: np.ndarray, dist: np.ndarray, n: int,
    ) -> np.ndarray:
        """Nearest distance per plot of the chunk from its candidate pairs.

        Only pairs whose lower bound is below the plot's smallest upper bound (or
        distance measured) can be nearest. The candidates with the smallest gap are
        measured first: their distance usually rules out all the others.
        """
        smallest = np.full(n, np.inf)
        np.minimum.at(smallest, pos, np.minimum(upper, dist))
        candidate = (gap <= smallest[pos] * (1 + _SLACK)) & (smallest[pos] > 0)
        candidate &= np.isinf(dist)
        least_gap = np.full(n, np.inf)
        np.minimum.at(least_gap, pos[candidate], gap[candidate])
        first = candidate & (gap == least_gap[pos])
        self._measure(plot, other, first, dist)
        np.minimum.at(smallest, pos[first], dist[first])
        rest = candidate & ~first & (gap <= smallest[pos] * (1 + _SLACK))
        self._measure(plot, other, rest, dist)
        found = np.full(n, np.inf)
        np.minimum.at(found, pos, dist)
        # A feature on the plot (upper bound 0): the distance is 0 without measuring.
        found[smallest == 0] = 0.0
        return found

    def _measure(
        self, plot: np.ndarray, other: np.ndarray, which: np.ndarray, dist: np.ndarray
    ) -> None:
        """Exact distance of the pairs ``which`` not measured yet, into ``dist``."""
        which = which & np.isinf(dist)
        dist[which] = shapely.distance(self.geoms[plot[which]], self.others[other[which]])

    def _touching(
        self, plot: np.ndarray, other: np.ndarray, gap: np.ndarray, upper: np.ndarray
    ) -> None:
        """Set ``upper`` to 0 for pairs that intersect: their distance is exactly 0.

        An intersection test against a prepared feature is several times cheaper than a
        distance, and settles the plots that lie on or in a feature (inside residential
        land, on a house) without measuring their other pairs for the nearest.
        """
        sel = np.flatnonzero((gap == 0) & (upper > 0))
        if sel.size:
            hit = shapely.intersects(self.others[other[sel]], self.geoms[plot[sel]])
            upper[sel[hit]] = 0.0

    def _tighten(
        self, plot: np.ndarray, other: np.ndarray, relevant: np.ndarray, upper: np.ndarray
    ) -> None:
        """Lower ``upper`` (in place) for the ``relevant`` pairs whose plot is a box.

        The distance from the box to a point inside the feature bounds the distance
        from above (and equals it for a point feature).
        """
        sel = np.flatnonzero(relevant & self.plots.box[plot])
        if sel.size == 0:
            return
        p, o = plot[sel], other[sel]
        x, y = self.inner_x[o], self.inner_y[o]
        x0, y0, x1, y1 = (c[p] for c in self.plots.columns)
        dx = np.maximum(np.maximum(x0 - x, x - x1, out=x0), 0.0, out=x0)
        dy = np.maximum(np.maximum(y0 - y, y - y1, out=y0), 0.0, out=y0)
        # fmin: a feature without a point (NaN) keeps its box bound.
        upper[sel] = np.fmin(upper[sel], np.hypot(dx, dy, out=dx))

    def _candidates(
        self, part: np.ndarray, radius: float, keep_tree: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        """(position in ``part``, feature) of the pairs whose boxes are within ``radius``.

        The tree is of the plots, queried with the features' widened boxes: a box is
        built per feature, not per plot.
        """
        if radius not in self._widened:
            b = self.other_bounds
            self._widened[radius] = shapely.box(
                b[:, 0] - radius, b[:, 1] - radius, b[:, 2] + radius, b[:, 3] + radius
            )
        other, pos = self.plots.tree(part, keep_tree).query(self._widened[radius])
        return pos, other

    def _bounds(self, plot: np.ndarray, other: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Lower and upper bound of each pair's distance, from the two boxes.

        Lower: the gap between the boxes. Upper: the farthest two points of the boxes,
        since any point of the plot and any point of the feature are no farther apart.
        """
        low, high = [], []
        for lo, hi in ((0, 2), (1, 3)):
            a0, a1 = self.plots.columns[lo][plot], self.plots.columns[hi][plot]
            b0, b1 = self._other_cols[lo][other], self._other_cols[hi][other]
            low.append(np.maximum(np.maximum(a0 - b1, b0 - a1), 0.0))
            high.append(np.maximum(a1 - b0, b1 - a0))
        return np.hypot(*low), np.hypot(*high)


def _nearest_beyond(
    scan: _Scan, near: np.ndarray, bound: np.ndarray, usable: np.ndarray, radius: float
) -> None:
    """Fill ``near`` for usable plots with nothing within ``radius``, in growing steps.

    A plot with a distance already measured (``bound``) waits for the first radius
    that reaches it: beyond the radius a nearer feature may lie outside the candidates,
    within it none can.
    """
    todo = np.flatnonzero(usable & np.isnan(near))
    while todo.size and radius < MAX_STAGED_M:
        radius *= GROWTH
        ready = todo[(bound[todo] <= radius) | np.isinf(bound[todo])]
        # Pairs grow with the radius squared: fewer plots per query, same table size.
        size = max(STAGE_CHUNK_MIN, int(PLOT_CHUNK * (SEARCH_M / radius) ** 2))
        for part in _chunks(ready, size):
            found = scan.run(part, radius, (), nearest=True)[0]
            bound[part] = np.minimum(bound[part], found)
            exact = found <= radius
            near[part[exact]] = found[exact]
        todo = todo[np.isnan(near[todo])]
    if todo.size:
        tree = shapely.STRtree(scan.others)
        pairs, dist = tree.query_nearest(
            scan.geoms[todo], return_distance=True, all_matches=False
        )
        near[todo[pairs[0]]] = dist


def _feature_points(others: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A point of each feature (x, y; NaN when empty), for upper bounds from box plots.

    A point inside it (``point_on_surface``), or for an invalid feature, where inside
    is not well defined, its first vertex.
    """
    x, y = np.full(len(others), np.nan), np.full(len(others), np.nan)
    invalid = ~shapely.is_valid(others)
    points = shapely.point_on_surface(np.where(invalid, None, others))
    for group in (points, np.where(invalid, others, None)):
        xy, owner = shapely.get_coordinates(group, return_index=True)
        first = np.r_[0, np.flatnonzero(np.diff(owner)) + 1] if len(owner) else owner
        x[owner[first]], y[owner[first]] = xy[first, 0], xy[first, 1]
    return x, y


def _chunks(idx: np.ndarray, size: int = PLOT_CHUNK) -> list[np.ndarray]:
    """``idx`` in pieces of at most ``size`` plots (bounds the pair tables)."""
    return np.array_split(idx, max(1, -(-idx.size // size)))


def _axis_boxes(geoms: np.ndarray, bounds: np.ndarray) -> np.ndarray:
    """Which geometries are axis-aligned rectangles (screening cells, drawn boxes).

    Four corners on the bounding box, each step along one axis, no holes.
    """
    out = np.zeros(len(geoms), dtype=bool)
    kind = shapely.get_type_id(geoms)
    cand = np.flatnonzero(kind == 3)
    cand = cand[(shapely.get_num_coordinates(geoms[cand]) == 5)
                & (shapely.get_num_interior_rings(geoms[cand]) == 0)]
    if cand.size == 0:
        return out
    xy = shapely.get_coordinates(geoms[cand]).reshape(-1, 5, 2)
    b = bounds[cand]
    on_x = (xy[..., 0] == b[:, None, 0]) | (xy[..., 0] == b[:, None, 2])
    on_y = (xy[..., 1] == b[:, None, 1]) | (xy[..., 1] == b[:, None, 3])
    step = np.diff(xy, axis=1)
    one_axis = (step[..., 0] == 0) ^ (step[..., 1] == 0)
    out[cand] = (on_x.all(axis=1) & on_y.all(axis=1) & one_axis.all(axis=1)
                 & (b[:, 2] > b[:, 0]) & (b[:, 3] > b[:, 1]))
    return out
