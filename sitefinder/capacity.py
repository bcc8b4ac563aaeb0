"""How many småhus units each plot takes, by laying the units out geometrically.

Plot capacity is the cost driver in docs/CRITERIA.md §18 (the plot cost is spread
over "usually four per plot", some plots take only 2–3) and it is capped by the clustering
limits of criterion 10 (Sandnes' main rule 4 co-located units, national guidance 6–8 at
most). A number read off the plot area alone over-counts narrow and irregular plots, so
each plot gets a real layout that a map can draw and a planner can check.

The layout, per plot
--------------------
1. *Buildable area* = the plot shrunk inwards by ``setback_m`` (distance from the plot
   boundary to any unit wall).
2. Units are ``unit_width_m`` × ``unit_length_m`` rectangles (default 6 m × 8.5 m, the
   exterior of a road-transportable unit in Verdal, SINTEF 2021 §6.1, §6.1).
   For each of ``n_angles`` orientations — starting from the orientation of the
   buildable area's minimum rotated rectangle (plots usually follow a road) — every
   position on a ``position_step_m`` lattice where the buildable area covers a unit is a
   candidate. Units are then placed greedily from one corner of the plot (all four
   corners are tried), each at least ``unit_spacing_m`` (fire separation) from the
   units already placed. The layout with most units wins; the search stops as soon as
   one reaches ``max_units_per_site``. A fixed grid would be simpler but loses a unit on
   about a third of tight, irregular plots.
3. *Per-unit extras* — an outdoor store/technical room (§6.1), a share of guest parking
   (0.5 space per unit, Sandnes rule f, §6.6) and a fireproof waste container (Sandnes
   rule g, §6.6) — are not drawn. They take an area budget: each unit needs
   ``extras_area_m2`` of plot that is neither under a unit nor inside its
   fire-separation zone (the unit grown by half the spacing). The setback strip counts
   as free: parking and bins usually sit by the access road. When the budget does not
   fit, units are dropped (the last placed first) until it does.
4. Capacity = units placed, capped at ``max_units_per_site``. A plot that takes fewer than
   ``min_units_per_site`` keeps its count and layout but gets status ``too_small`` with a
   reason in bokmål and English. The minimum is 1 by default: a single house is a valid
   site (docs/CRITERIA.md §16, §6.1), so a plot is ``too_small`` only when not even one unit fits.

The search is computed with arrays, not one geometry per lattice position: on a convex
buildable area a unit fits when its four corners do, which numpy decides (GEOS only for
units within a hair of an edge, so every answer is GEOS's); other areas ask GEOS
``covers`` only for units whose corners all fit. The greedy placement holds the lattice
as one Python integer, a bit per position: the next unit is the lowest (or highest) set
bit, and placing it clears a precomputed conflict stencil with one shift and one ``&``.
An orientation whose lattice cannot hold more units than the best layout so far is
skipped, and so are corner orders once a layout cannot be beaten. The layouts are
exactly those of testing every position and pair one by one
(tests/test_capacity_fast.py).

The buildable areas, their centroids, coordinates, orientations and convexity are
prepared for all plots with one array call each. Clearly convex plots (rectangles and
other convex outlines) are then laid out a thousand at a time, orientation by orientation:
their rings are rotated by one stack of matrix products, their lattices are numbers
(start, step, count), and the positions where a unit fits are solved per lattice row
and column as a span from the edges, with no grid of positions at all; only the greedy
runs per plot (tests/test_capacity_batch.py holds this to the plot-by-plot search, float
for float). Other plots (concave, with holes, in parts) are searched one at a time.
From :data:`POOL_MIN_PLOTS` plots on (Linux), the plots are laid out in chunks by this
process and a forked worker process side by side (``SITEFINDER_WORKERS=1`` keeps the
work in one process); the layouts do not depend on which process drew them.

How many of those units a selection actually builds on a site is decided by
:mod:`sitefinder.select`, which prefers ``preferred_units_per_site`` (2–3, §6.1) and values
units above it at ``extra_unit_value`` of the plot's score.

Invalid polygons are repaired with :func:`shapely.make_valid` (the ranked output reports
invalid geometry itself); plots without polygon area get capacity 0 and a reason, never an
exception.
"""

from __future__ import annotations

import functools
import math
import multiprocessing
import os
import sys
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from sitefinder.errors import InputError
from sitefinder.language import fmt_number
from sitefinder.progress import progress

# The settings live in the light settings module (reading a scenario loads no geodata
# library); they are re-exported here, where they were always imported from.
from sitefinder.settings import HARD_MAX_UNITS_PER_SITE, CapacitySettings

__all__ = [
    "HARD_MAX_UNITS_PER_SITE",
    "POOL_MIN_PLOTS",
    "STATUS_NOT_POLYGON",
    "STATUS_NO_GEOMETRY",
    "STATUS_OK",
    "STATUS_TOO_SMALL",
    "STATUS_UNKNOWN",
    "WORKERS_ENV",
    "CapacitySettings",
    "cap_units",
    "layout_workers",
    "layouts_by_units",
    "plan_units",
    "require_projected",
    "too_small_texts",
    "units_text",
]

STATUS_OK = "ok"
STATUS_TOO_SMALL = "too_small"
STATUS_NO_GEOMETRY = "no_geometry"
STATUS_NOT_POLYGON = "not_polygon"


def require_projected(gdf: gpd.GeoDataFrame | gpd.GeoSeries, what: str) -> None:
    """Raise :class:`InputError` unless ``gdf`` has a projected (metric) CRS.

    Parameters
    ----------
    gdf : GeoDataFrame or GeoSeries
        The layer to check.
    what : str
        The layer's name, for the message (e.g. ``"plots"``).

    """
    crs = gdf.crs
    if crs is None:
        raise InputError(
            f"the {what} layer has no coordinate reference system",
            where=what,
            hint="Set it (e.g. gdf.set_crs(25833)) to the local UTM CRS the pipeline uses",
        )
    if not crs.is_projected:
        raise InputError(
            f"the {what} layer is in {crs.to_string()}, a geographic CRS in degrees; "
            "distances and areas need metres",
            where=what,
            hint="Reproject it first, e.g. gdf.to_crs(25832) or gdf.to_crs(25833)",
        )


def _polygonal(geom: shapely.Geometry | None) -> shapely.Geometry | None:
    """Return the polygonal part of ``geom`` (repaired if invalid), or None if it has none."""
    if geom is None or geom.is_empty:
        return None
    if not geom.is_valid:
        geom = shapely.make_valid(geom)
    if geom.geom_type in ("Polygon", "MultiPolygon"):
        return geom
    if geom.geom_type == "GeometryCollection":
        parts = [g for g in shapely.get_parts(geom) if g.geom_type in ("Polygon", "MultiPolygon")]
        if parts:
            return shapely.union_all(parts)
    return None


def _mrr_angle_deg(geom: shapely.Geometry) -> float:
    """Orientation of the long side of ``geom``'s minimum rotated rectangle, degrees."""
    env = shapely.oriented_envelope(geom)
    if env.geom_type != "Polygon":
        return 0.0
    xy = np.asarray(env.exterior.coords)[:3]
    edges = np.diff(xy, axis=0)
    longest = edges[np.argmax(np.hypot(edges[:, 0], edges[:, 1]))]
    return math.degrees(math.atan2(longest[1], longest[0])) % 180.0


def _rotation(deg: float) -> np.ndarray:
    rad = math.radians(deg)
    c, s = math.cos(rad), math.sin(rad)
    return np.array([[c, -s], [s, c]])


def _conflict_stencil(settings: CapacitySettings, step: float) -> np.ndarray:
    """Lattice offsets at which a second unit is too close to one placed at the centre.

    Two axis-aligned w × h units whose lower-left corners are ``(dx, dy)`` apart overlap
    when both ``|dx| < w`` and ``|dy| < h``, and are too close when the Euclidean gap
    ``hypot(max(|dx| - w, 0), max(|dy| - h, 0))`` is below the spacing. On a lattice the
    offsets are whole steps, so the conflict zone is the same boolean stencil around
    every unit: placing a unit clears a slice of the free grid instead of testing every
    candidate. Shape ``(2 * ky + 1, 2 * kx + 1)``, rows along y.
    """
    w, h, s = settings.unit_width_m, settings.unit_length_m, settings.unit_spacing_m
    kx = int(math.ceil((w + s) / step)) + 1
    ky = int(math.ceil((h + s) / step)) + 1
    dx = np.abs(np.arange(-kx, kx + 1) * step)[None, :] - w
    dy = np.abs(np.arange(-ky, ky + 1) * step)[:, None] - h
    # The same tolerances as a pairwise test: touching is allowed, overlap is not.
    overlap = (dx < -1e-9) & (dy < -1e-9)
    too_close = np.hypot(np.maximum(dx, 0.0), np.maximum(dy, 0.0)) < s - 1e-9
    return overlap | too_close


@functools.lru_cache(maxsize=64)
def _stencil(settings: CapacitySettings, step: float) -> _Stencil:
    """The stencil for these settings and lattice step, built once and shared."""
    return _Stencil(settings, step)


class _Stencil:
    """The conflict stencil, and as bits for row-major scans of grids of a given width."""

    def __init__(self, settings: CapacitySettings, step: float) -> None:
        self.mask = _conflict_stencil(settings, step)
        self.ky, self.kx = self.mask.shape[0] // 2, self.mask.shape[1] // 2
        # (rows, columns) reach of the stencil in the plain and the transposed view.
        self.reach = ((self.ky, self.kx), (self.kx, self.ky))
        self._bits: dict[tuple[int, int], tuple[int, int]] = {}

    def bits(self, view: int, width: int) -> tuple[int, int]:
        """The stencil (transposed for view 1) in rows of ``width`` bits, and its centre bit.

        Built once per view and width: plots of one size share it.
        """
        key = (view, width)
        if key not in self._bits:
            mask = self.mask.T if view else self.mask
            reach_rows, reach_cols = self.reach[view]
            block, _ = _grid_bits(mask, width - mask.shape[1])
            self._bits[key] = (block, reach_rows * width + reach_cols)
        return self._bits[key]


def _fill_orders(fits: np.ndarray, stencil: _Stencil, cap: int) -> Iterator[_Picks]:
    """Greedy picks filling from each corner in turn, as (row, column) lattice cells.

    The four orders are: bottom-left by rows, bottom-left by columns, top-right by rows,
    top-right by columns (the placement is greedy, so the corner it packs against
    matters on odd shapes). Each is a row-major scan of the grid or of its transpose,
    forwards or backwards, and greedy in scan order means: take the first free cell,
    clear the conflict stencil around it, repeat.

    The grid is one Python integer, bit ``row * width + column`` set where a unit fits,
    each row followed by at least the stencil's reach in clear bits, so that the stencil,
    shifted to a pick, never reaches into another row's cells. The first free cell is
    then the lowest set bit (the highest for the backward scans), and clearing is one
    shift and one ``&``: a few operations on a few hundred machine words per unit
    instead of array calls.
    The orders are made one at a time, as the caller asks for them: it stops asking
    once a layout cannot be beaten.
    """
    views = []
    for order in range(4):
        view, backwards = order % 2, order >= 2
        if len(views) == view:
            grid = fits.T if view else fits
            # Room after each row for the stencil's reach, and for a whole stencil row.
            reach = stencil.reach[view][1]
            free, width = _grid_bits(grid, max(reach, 2 * reach + 1 - grid.shape[1]))
            views.append((free, width, *stencil.bits(view, width)))
        free, width, block, centre = views[view]
        yield _Picks(_greedy_bits(free, block, centre, cap, backwards), view, width)


def _grid_bits(grid: np.ndarray, pad: int) -> tuple[int, int]:
    """``grid`` as an integer, rows of ``width = columns + pad`` bits; and the width."""
    rows, cols = grid.shape
    width = cols + pad
    padded = np.zeros((rows, width), dtype=bool)
    padded[:, :cols] = grid
    return int.from_bytes(np.packbits(padded, bitorder="little").tobytes(), "little"), width


def _greedy_bits(free: int, block: int, centre: int, cap: int, backwards: bool) -> list[int]:
    """Bits picked greedily from ``free``: lowest (or highest) first, ``block`` cleared."""
    picked = []
    while free and len(picked) < cap:
        bit = free.bit_length() - 1 if backwards else (free & -free).bit_length() - 1
        picked.append(bit)
        shift = bit - centre
        free &= ~(block << shift if shift >= 0 else block >> -shift)
    return picked


class _Picks:
    """One order's picks as bit numbers; turned into grid cells only when needed."""

    def __init__(self, bits: list[int], view: int, width: int) -> None:
        self.bits, self.view, self.width = bits, view, width

    def __len__(self) -> int:
        return len(self.bits)

    def cells(self) -> tuple[np.ndarray, np.ndarray]:
        """(rows, columns) of the picks in the fits grid, in placement order."""
        i, j = np.divmod(np.array(self.bits, dtype=np.int64), self.width)
        return (j, i) if self.view else (i, j)  # a transposed view's rows are columns


def _clearly_convex(geom: shapely.Geometry) -> int:
    """1 (counter-clockwise) or -1 (clockwise) for a clearly convex polygon, else 0.

    "Clearly": one polygon whose every turn has the same sign, far from collinear, so
    rounding (or rotating it, which keeps the orientation) cannot hide a reflex vertex.
    Anything else (holes, several parts, near-collinear vertices) takes the exact GEOS
    test.
    """
    if geom.geom_type != "Polygon" or len(geom.interiors):
        return 0
    return _clearly_convex_xy(shapely.get_coordinates(geom))


def _clearly_convex_xy(xy: np.ndarray) -> int:
    """:func:`_clearly_convex` of a polygon without holes, given its ring's coordinates."""
    if len(xy) < 4:
        return 0
    edges = np.diff(xy, axis=0)
    nxt = np.concatenate([edges[1:], edges[:1]])
    turn = edges[:, 0] * nxt[:, 1] - edges[:, 1] * nxt[:, 0]
    length = np.hypot(edges[:, 0], edges[:, 1])
    tolerance = 1e-9 * length * np.concatenate([length[1:], length[:1]])
    if (turn > tolerance).all():
        return 1
    return -1 if (turn < -tolerance).all() else 0


#: Units closer than this to a convex area's edge (metres) are left to GEOS to decide.
_EDGE_HAIR_M = 1e-7


def _convex_fits(
    b_rot: shapely.Geometry, ccw: bool, xs: np.ndarray, ys: np.ndarray, w: float, h: float
) -> np.ndarray:
    """Fits grid for a convex area: a unit fits when its four corners are covered."""
    return _convex_fits_xy(shapely.get_coordinates(b_rot), ccw, xs, ys, w, h, b_rot)


def _convex_depth(
    xy: np.ndarray, ccw: bool, xs: np.ndarray, ys: np.ndarray, w: float, h: float
) -> np.ndarray:
    """How far each lattice unit's worst corner is inside a convex ring, per position."""
    a = xy[:-1]
    edge = xy[1:] - a
    # Inward unit normal: the edge turned left on a counter-clockwise ring, right on a
    # clockwise one.
    turn = (1.0 if ccw else -1.0) / np.hypot(edge[:, 0], edge[:, 1])
    nx, ny = -edge[:, 1] * turn, edge[:, 0] * turn
    col = nx[:, None] * (xs - a[:, 0, None]) + np.minimum(nx * w, 0.0)[:, None]
    row = ny[:, None] * (ys - a[:, 1, None]) + np.minimum(ny * h, 0.0)[:, None]
    return (row[:, :, None] + col[:, None, :]).min(axis=0)


def _convex_fits_xy(
    xy: np.ndarray, ccw: bool, xs: np.ndarray, ys: np.ndarray, w: float, h: float,
    area: shapely.Geometry | _Rotated,
) -> np.ndarray:
    """Fits grid for a convex area with ring ``xy``; ``area`` is asked only near edges.

    Per edge, the unit's worst corner is the one furthest along the edge's outward
    normal, and its distance inside the edge is a sum of a column term and a row term;
    the smallest over the edges tells clearly in, clearly out, or within a hair of the
    edge. Only the last (the lattice often starts exactly on the edge) ask GEOS about
    their corners, so every answer is GEOS's.
    """
    depth = _convex_depth(xy, ccw, xs, ys, w, h)
    fits = depth > _EDGE_HAIR_M
    unsure = np.abs(depth) <= _EDGE_HAIR_M
    if unsure.any():
        geom = area.geom if isinstance(area, _Rotated) else area
        # The corners as the unit's polygon has them (the same floats x + w, y + h).
        x1, y1 = xs + w, ys + h
        rows, cols = np.nonzero(unsure)
        corners = shapely.intersects_xy(
            geom,
            np.concatenate([xs[cols], x1[cols], x1[cols], xs[cols]]),
            np.concatenate([ys[rows], ys[rows], y1[rows], y1[rows]]),
        )
        fits[rows, cols] = corners.reshape(4, -1).all(axis=0)
    return fits


def _fitting_positions(
    b_rot: shapely.Geometry, convex: int, xs: np.ndarray, ys: np.ndarray, w: float, h: float
) -> np.ndarray:
    """Grid (rows along ``ys``) of lattice corners whose w × h unit ``b_rot`` covers.

    A unit is covered only if its four corners are; for a convex area that is enough,
    otherwise GEOS ``covers`` decides for the units whose corners all are.
    """
    if convex:
        return _convex_fits(b_rot, convex > 0, xs, ys, w, h)
    # The corners as the unit's polygon has them (the same floats x + w, y + h).
    x1, y1 = xs + w, ys + h
    rows, cols = np.nonzero(_inside_hull(b_rot, xs, ys, w, h))
    # Each corner only where the ones before are in: the same answers, fewer asked.
    for cx, cy in ((xs, ys), (x1, ys), (x1, y1), (xs, y1)):
        inside = shapely.intersects_xy(b_rot, cx[cols], cy[rows])
        rows, cols = rows[inside], cols[inside]
    fits = np.zeros((ys.size, xs.size), dtype=bool)
    fits[rows, cols] = True
    # A unit whose corners are all in and that no edge comes near is covered; GEOS
    # decides the units an edge comes near.
    near = _near_boundary(b_rot, xs, ys, w, h)
    ask = near[rows, cols]
    rows, cols = rows[ask], cols[ask]
    if rows.size:
        shapely.prepare(b_rot)
        boxes = shapely.box(xs[cols], ys[rows], x1[cols], y1[rows])
        fits[rows, cols] = shapely.covers(b_rot, boxes)
    return fits


#: Edges closer than this to a unit (metres) leave it to GEOS whether the unit is covered.
_BOUNDARY_HAIR_M = 1e-6


def _near_boundary(
    area: shapely.Geometry, xs: np.ndarray, ys: np.ndarray, w: float, h: float
) -> np.ndarray:
    """Grid of lattice units that an edge of ``area`` comes within a hair of (or more).

    Per lattice row, each edge is cut to the row's band (the units' height and a hair
    either side); the units whose width comes within a hair of the cut edge's extent
    along the row are marked, with a lattice position to spare either side.
    """
    rings = shapely.get_rings(shapely.get_parts(area))
    xy, ring = shapely.get_coordinates(rings, return_index=True)
    same = ring[1:] == ring[:-1]
    a, b = xy[:-1][same], xy[1:][same]
    hair = _BOUNDARY_HAIR_M
    low, high = ys - hair, ys + h + hair
    lo_y, hi_y = np.minimum(a[:, 1], b[:, 1]), np.maximum(a[:, 1], b[:, 1])
    row, edge = np.nonzero((lo_y[None, :] <= high[:, None]) & (hi_y[None, :] >= low[:, None]))
    near = np.zeros((ys.size, xs.size), dtype=bool)
    if not row.size:
        return near
    ax, ay, bx, by = a[edge, 0], a[edge, 1], b[edge, 0], b[edge, 1]
    dy = by - ay
    with np.errstate(divide="ignore", invalid="ignore"):
        t0 = np.clip((low[row] - ay) / dy, 0.0, 1.0)
        t1 = np.clip((high[row] - ay) / dy, 0.0, 1.0)
    flat = dy == 0  # along the row: the whole edge is in the band
    t0, t1 = np.where(flat, 0.0, t0), np.where(flat, 1.0, t1)
    x0, x1 = ax + t0 * (bx - ax), ax + t1 * (bx - ax)
    # Units starting in (edge's low x - w, edge's high x) overlap it along the row.
    first = np.minimum(x0, x1) - w - hair
    last = np.maximum(x0, x1) + hair
    step = (xs[-1] - xs[0]) / (xs.size - 1) if xs.size > 1 else 1.0
    c0 = np.clip(np.floor((first - xs[0]) / step) - 1, 0, xs.size).astype(np.int64)
    c1 = np.clip(np.ceil((last - xs[0]) / step) + 1, -1, xs.size - 1).astype(np.int64)
    keep = c0 <= c1
    width = xs.size + 1
    marks = np.bincount(row[keep] * width + c0[keep], minlength=ys.size * width) - np.bincount(
        row[keep] * width + c1[keep] + 1, minlength=ys.size * width
    )
    near[:] = np.cumsum(marks.reshape(ys.size, width), axis=1)[:, :-1] > 0
    return near


def _inside_hull(
    area: shapely.Geometry, xs: np.ndarray, ys: np.ndarray, w: float, h: float
) -> np.ndarray:
    """Lattice units not clearly outside ``area``'s convex hull (all, if it is not clear).

    A unit with a corner more than a hair outside the hull is outside the area: GEOS
    need not be asked about it.
    """
    hull = shapely.convex_hull(area)
    xy = shapely.get_coordinates(hull)
    convex = _clearly_convex_xy(xy) if hull.geom_type == "Polygon" else 0
    if not convex:
        return np.ones((ys.size, xs.size), dtype=bool)
    return _convex_depth(xy, convex > 0, xs, ys, w, h) >= -_EDGE_HAIR_M


def _units_with_room(
    xs: np.ndarray, ys: np.ndarray, settings: CapacitySettings,
    plot_rot: shapely.Geometry | _PlotRotated, plot_area: float,
) -> int:
    """How many of the placed units (in order) leave room for every unit's extras.

    ``plot_rot`` is the plot in the units' frame; it is only needed (and, when given as a
    :class:`_PlotRotated`, only built) when a quick area bound cannot tell.
    """
    w, h, s = settings.unit_width_m, settings.unit_length_m, settings.unit_spacing_m
    extras = settings.extras_area_m2
    if extras <= 0:
        return xs.size
    # The zones cover at most their summed area: when even that leaves room, all fit.
    if plot_area - xs.size * (w + s) * (h + s) >= xs.size * extras + 1e-6:
        return xs.size
    zones = shapely.box(xs - s / 2, ys - s / 2, xs + w + s / 2, ys + h + s / 2)
    if isinstance(plot_rot, _PlotRotated):
        plot_rot = plot_rot.geom
    for n in range(xs.size, 0, -1):
        used = shapely.intersection(shapely.union_all(zones[:n]), plot_rot).area
        if plot_area - used >= n * extras - 1e-9:
            return n
    return 0


def _most_units(span_x: float, span_y: float, settings: CapacitySettings) -> int:
    """An upper bound on the units whose corners fit in a ``span_x`` × ``span_y`` box.

    Two units far enough apart differ by at least ``w + s/√2`` in x or ``h + s/√2`` in y
    (closer in both, the gap is below ``s``), so cells of that size hold one unit each.
    """
    if span_x < -1e-9 or span_y < -1e-9:
        return 0
    diagonal = max(settings.unit_spacing_m - 1e-6, 0.0) / math.sqrt(2)
    a = settings.unit_width_m + diagonal - 1e-6
    b = settings.unit_length_m + diagonal - 1e-6
    return (math.floor(max(span_x, 0.0) / a) + 1) * (math.floor(max(span_y, 0.0) / b) + 1)


class _Plots:
    """What the layout needs of every plot, computed with one array call per step.

    Per plot: the buildable area (the plot shrunk by the setback), its centroid (the
    origin of the local frame), its coordinates in that frame, the orientation of its
    minimum rotated rectangle and whether it is clearly convex. The per-plot loop then
    only does the lattice work, and builds a rotated geometry only when GEOS must decide.
    """

    def __init__(self, polys: np.ndarray, settings: CapacitySettings) -> None:
        w, h = settings.unit_width_m, settings.unit_length_m
        self.polys = polys
        build = (
            shapely.buffer(polys, -settings.setback_m, join_style="mitre")
            if settings.setback_m else polys
        )
        build_area = shapely.area(build)
        # The same test as one plot at a time: empty, or not even one unit's area.
        self.usable = ~shapely.is_empty(build) & ~(build_area < w * h)
        self.build, self.build_area = build, build_area
        self.plot_area = shapely.area(polys)
        used = build[self.usable]
        self.origin = np.full((len(polys), 2), np.nan)
        self.origin[self.usable] = shapely.get_coordinates(shapely.centroid(used))
        self.base = np.zeros(len(polys))
        self.base[self.usable] = _mrr_angles_deg(used)
        xy, owner = shapely.get_coordinates(used, return_index=True)
        where = np.flatnonzero(self.usable)
        self.start = np.zeros(len(polys) + 1, dtype=np.int64)
        self.start[where + 1] = np.bincount(owner, minlength=len(used))
        self.start = np.cumsum(self.start)
        self.xy = xy
        self.one_ring = np.zeros(len(polys), dtype=bool)
        self.one_ring[self.usable] = (shapely.get_type_id(used) == 3) & (
            shapely.get_num_interior_rings(used) == 0
        )
        self.convex = _convexities(self)

    def local_xy(self, i: int) -> np.ndarray:
        """Plot ``i``'s buildable area's coordinates around its centroid (a fresh array)."""
        return self.xy[self.start[i] : self.start[i + 1]] - self.origin[i]


def _mrr_angles_deg(geoms: np.ndarray) -> np.ndarray:
    """:func:`_mrr_angle_deg` of every geometry, the envelopes built in one call."""
    envs = shapely.oriented_envelope(geoms)
    angles = np.zeros(len(geoms))
    polygons = np.flatnonzero(shapely.get_type_id(envs) == 3)
    if not polygons.size:
        return angles
    xy, owner = shapely.get_coordinates(envs[polygons], return_index=True)
    first = np.searchsorted(owner, np.arange(polygons.size))
    corners = xy[first[:, None] + np.arange(3)]
    edges = np.diff(corners, axis=1)
    pick = np.argmax(np.hypot(edges[..., 0], edges[..., 1]), axis=1)
    longest = edges[np.arange(polygons.size), pick].tolist()
    # math.atan2 and math.degrees, as for one plot: the angle must be the same float.
    angles[polygons] = [math.degrees(math.atan2(dy, dx)) % 180.0 for dx, dy in longest]
    return angles


def _layout_plot(plots: _Plots, i: int, settings: CapacitySettings) -> tuple[int, np.ndarray]:
    """Lay units out on plot ``i``; return (units, their corners in the plot's CRS).

    The search one plot at a time: for the plots that are not clearly convex, and the
    definition :func:`_layout_convex` is held to.

    The corners have shape (units, 5, 2): each unit's closed ring, as ``shapely.box``
    draws it, rotated back and moved to the plot.
    """
    w, h = settings.unit_width_m, settings.unit_length_m
    cap = settings.max_units_per_site
    if not plots.usable[i]:
        return 0, _NO_UNITS
    # Work around the buildable area's centroid: rotating UTM coordinates of ~10^6 m
    # would lose precision and make "covers" flicker on touching edges.
    xy_local = plots.local_xy(i)
    origin = plots.origin[i]
    # Candidate corners on a lattice; a very large plot gets a coarser lattice (it fits
    # the maximum easily, and the cost stays bounded).
    step = max(settings.position_step_m, math.sqrt(plots.build_area[i] / 20_000))
    stencil = _stencil(settings, step)
    convex = _clearly_convex_xy(xy_local) if plots.one_ring[i] else 0

    base = float(plots.base[i])
    angles = [(base + k * 180.0 / settings.n_angles) % 180.0 for k in range(settings.n_angles)]
    best_n, best_angle, best_xy = 0, 0.0, np.empty((0, 2))
    for angle in angles:
        # Rotate the plot by -angle so the units are axis-aligned in this frame.
        rot = _rotation(-angle)
        xy_rot = xy_local @ rot.T
        (minx, miny), (maxx, maxy) = xy_rot.min(axis=0).tolist(), xy_rot.max(axis=0).tolist()
        most = _most_units(maxx - minx - w, maxy - miny - h, settings)
        if most <= best_n:
            continue  # this orientation cannot beat the layout found: same result, less work
        xs = np.arange(minx, maxx - w + 1e-9, step)
        ys = np.arange(miny, maxy - h + 1e-9, step)
        if xs.size == 0 or ys.size == 0:
            continue
        b_rot = _Rotated(plots.build[i], xy_rot)
        if convex:
            fits = _convex_fits_xy(xy_rot, convex > 0, xs, ys, w, h, b_rot)
        else:
            fits = _fitting_positions(b_rot.geom, 0, xs, ys, w, h)
        if not fits.any():
            continue
        p_rot = _PlotRotated(plots.polys[i], origin, rot)
        for cells in _fill_orders(fits, stencil, cap):
            if len(cells) <= best_n:
                continue
            rows, cols = cells.cells()
            n = _units_with_room(xs[cols], ys[rows], settings, p_rot, plots.plot_area[i])
            if n > best_n:
                best_n, best_angle = n, angle
                best_xy = np.column_stack([xs[cols][:n], ys[rows][:n]])
            if best_n >= min(cap, most):
                break
        if best_n >= cap:
            break

    if best_n == 0:
        return 0, _NO_UNITS
    return best_n, _unit_rings(best_xy, w, h, _rotation(best_angle), origin)


_NO_UNITS = np.empty((0, 5, 2))


def _unit_rings(
    corner: np.ndarray, w: float, h: float, back: np.ndarray, origin: np.ndarray
) -> np.ndarray:
    """The rings of w × h units at lower-left ``corner`` (rotated frame), in the CRS.

    The same floats as ``shapely.box`` (counter-clockwise from the lower right corner)
    transformed by ``xy @ back.T + origin``.
    """
    x = np.column_stack([corner[:, 0], corner[:, 0] + w])[:, _RING_X]
    y = np.column_stack([corner[:, 1], corner[:, 1] + h])[:, _RING_Y]
    ring = np.stack([x, y], axis=-1)
    return (ring.reshape(-1, 2) @ back.T + origin).reshape(-1, 5, 2)


#: shapely.box's ring, as indices into (low, high) of x and of y.
_RING_X, _RING_Y = np.array([1, 1, 0, 0, 1]), np.array([0, 1, 1, 0, 0])


class _PlotRotated:
    """The plot moved to ``origin`` and rotated, as a geometry built only when asked for."""

    def __init__(self, plot: shapely.Geometry, origin: np.ndarray, rot: np.ndarray) -> None:
        self._plot, self._origin, self._rot, self._geom = plot, origin, rot, None

    @property
    def geom(self) -> shapely.Geometry:
        """The plot in the rotated frame."""
        if self._geom is None:
            self._geom = shapely.transform(
                self._plot, lambda xy: (xy - self._origin) @ self._rot.T
            )
        return self._geom


class _Rotated:
    """The buildable area in a rotated frame as a geometry, built only when asked for."""

    def __init__(self, build: shapely.Geometry, xy_rot: np.ndarray) -> None:
        self._build, self._xy, self._geom = build, xy_rot, None

    @property
    def geom(self) -> shapely.Geometry:
        """The geometry with the rotated coordinates (the same floats)."""
        if self._geom is None:
            self._geom = shapely.transform(self._build, lambda _: self._xy)
        return self._geom


#: Clearly convex plots laid out together, per orientation: enough that array calls cost
#: little per plot, few enough that the arrays stay small.
_CONVEX_BATCH = 1_000


def _convexities(plots: _Plots) -> np.ndarray:
    """:func:`_clearly_convex_xy` of every one-ring buildable area (0 for the others).

    The same floats as one plot at a time: coordinates around each plot's centroid,
    each edge with the next one of its ring.
    """
    out = np.zeros(len(plots.polys), dtype=np.int64)
    members = np.flatnonzero(plots.one_ring)
    sizes = plots.start[members + 1] - plots.start[members]
    members, sizes = members[sizes >= 4], sizes[sizes >= 4]
    if not members.size:
        return out
    # Coordinates i of each ring, and its edges i -> i + 1 (the last edge wraps to the first).
    first = plots.start[members]
    point = _segment_ranges(first, sizes)
    owner = np.repeat(np.arange(members.size), sizes)
    xy = plots.xy[point] - plots.origin[members][owner]
    edge_at = _segment_ranges(np.cumsum(sizes) - sizes, sizes - 1)
    edges = xy[edge_at + 1] - xy[edge_at]
    edge_first = np.cumsum(sizes - 1) - (sizes - 1)
    nxt_at = np.arange(edge_at.size) + 1
    last = edge_first + sizes - 2
    nxt_at[last] = edge_first
    nxt = edges[nxt_at]
    turn = edges[:, 0] * nxt[:, 1] - edges[:, 1] * nxt[:, 0]
    length = np.hypot(edges[:, 0], edges[:, 1])
    tolerance = 1e-9 * length * length[nxt_at]
    ccw = np.logical_and.reduceat(turn > tolerance, edge_first)
    cw = np.logical_and.reduceat(turn < -tolerance, edge_first)
    out[members] = np.where(ccw, 1, np.where(cw, -1, 0))
    return out


def _segment_ranges(first: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """``first[k], first[k] + 1, …, first[k] + sizes[k] - 1`` for every k, concatenated."""
    within = np.arange(int(sizes.sum())) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    return np.repeat(first, sizes) + within


class _Axis:
    """One axis of the lattices of many plots: ``np.arange(low, high, step)`` as numbers.

    The positions are the very floats ``np.arange`` makes (``start + i * delta`` with
    ``delta = (start + step) - start``, the second one ``start + step``), so a lattice
    position is computed, never stored, and equals the one the per-plot code tests.
    """

    def __init__(
        self, start: np.ndarray, step: np.ndarray, count: np.ndarray, delta: np.ndarray
    ) -> None:
        self.start, self.step, self.count, self.delta = start, step, count, delta

    @classmethod
    def between(cls, low: np.ndarray, high: np.ndarray, step: np.ndarray) -> _Axis:
        """The lattices ``np.arange(low, high, step)``."""
        count = np.maximum(np.ceil((high - low) / step), 0).astype(np.int64)
        return cls(low, step, count, (low + step) - low)

    def take(self, k: np.ndarray) -> _Axis:
        """The lattices ``k`` only."""
        return _Axis(self.start[k], self.step[k], self.count[k], self.delta[k])

    def at(self, k: np.ndarray, i: np.ndarray) -> np.ndarray:
        """Position ``i`` of lattice ``k``."""
        out = self.start[k] + i * self.delta[k]
        second = np.flatnonzero(i == 1)
        out[second] = self.start[k[second]] + self.step[k[second]]
        return out


class _EdgeTests:
    """The edge tests of many (line, edge) pairs along lattice lines, solved as spans.

    The test is the per-plot one, ``line_term + (normal * (x - edge_start) + corner)``
    above a bound, in the same floats. Along a line it is monotonic (rounding keeps
    order), so the positions passing it are a prefix (normal < 0), a suffix (normal > 0),
    or all or none (normal 0): the threshold is solved for, and where the solution is
    within rounding of a whole position, checked with the test itself and moved where
    rounding put it one off.
    """

    def __init__(
        self, owner: np.ndarray, line_term: np.ndarray, normal: np.ndarray,
        edge_start: np.ndarray, corner: np.ndarray, axis: _Axis, slack: np.ndarray,
    ) -> None:
        self.owner, self.term, self.normal = owner, line_term, normal
        self.edge_start, self.corner, self.axis = edge_start, corner, axis
        self.count = axis.count[owner]
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            # Position of the solution = (offset - term) * scale + shift.
            self.scale = 1.0 / (normal * axis.delta[owner])
            self.shift = (edge_start - axis.start[owner]) / axis.delta[owner]
            # Far more than rounding can move the solution, in positions: ``slack`` (a
            # thousand times the rounding of the test, in metres, for the plot's size)
            # over the test's change per position. Further than this from a whole
            # position, rounding cannot change the answer.
            self.tolerance = slack[owner] * np.abs(self.scale) + 1e-9
        self.up, self.down = normal > 0, normal < 0

    def passes(self, pairs: np.ndarray, i: np.ndarray, bound: float, strict: bool) -> np.ndarray:
        """The test of ``pairs`` at positions ``i``, as the per-plot code computes it."""
        x = self.axis.at(self.owner[pairs], i)
        value = self.term[pairs] + (
            self.normal[pairs] * (x - self.edge_start[pairs]) + self.corner[pairs]
        )
        return value > bound if strict else value >= bound

    def spans(self, bound: float, strict: bool) -> tuple[np.ndarray, np.ndarray]:
        """First and last passing position of every pair (first > last when none pass)."""
        up, down, count = self.up, self.down, self.count
        with np.errstate(invalid="ignore", over="ignore"):
            solved = (bound - self.term - self.corner) * self.scale + self.shift
            certain = np.abs(solved - np.round(solved)) > self.tolerance
            # Up: the first position at or after the solution; down: the last at or
            # before it; within the line. (Edges along the line give NaN, unused.)
            guess = np.where(up, np.ceil(solved), np.floor(solved))
            shift = down.view(np.int8)
            t = np.clip(guess, -shift, count - shift).astype(np.int64)
        # Suffix: t is the first passing position; prefix: t is the last one. Check t
        # and its neighbour on the failing side.
        todo = np.flatnonzero((up | down) & ~certain)
        while todo.size:
            sub_up = up[todo]
            inner = t[todo]
            outer = np.where(sub_up, inner - 1, inner + 1)
            n_sub = count[todo]
            bad_in = (inner >= 0) & (inner < n_sub) & ~self.passes(
                todo, np.clip(inner, 0, None), bound, strict)
            bad_out = (outer >= 0) & (outer < n_sub) & self.passes(
                todo, np.clip(outer, 0, None), bound, strict)
            wrong = bad_in | bad_out
            todo, bad_in, sub_up = todo[wrong], bad_in[wrong], sub_up[wrong]
            # A failing threshold moves towards the passing side, a passing neighbour
            # moves it outwards.
            t[todo] += np.where(bad_in == sub_up, 1, -1)
        first = np.where(up, t, 0)
        last = np.where(down, t, count - 1)
        flat = np.flatnonzero(~(up | down))  # an edge along the line: all or none pass
        none = flat[~self.passes(flat, np.zeros_like(flat), bound, strict)]
        first[none] = count[none]
        return first, last


class _Frame:
    """Many plots turned to one orientation each: rotated rings, extents and lattices."""

    def __init__(
        self, plots: _Plots, members: np.ndarray, angles: np.ndarray, steps: np.ndarray,
        settings: CapacitySettings,
    ) -> None:
        w, h = settings.unit_width_m, settings.unit_length_m
        self.members, self.angles = members, angles
        sizes = plots.start[members + 1] - plots.start[members]
        self.ring_first, self.ring_sizes = np.cumsum(sizes) - sizes, sizes
        self.xy = _rotate_rings(plots, members, sizes, angles)
        low = np.minimum.reduceat(self.xy, self.ring_first, axis=0)
        high = np.maximum.reduceat(self.xy, self.ring_first, axis=0)
        self.span = high - low
        self.x = _Axis.between(low[:, 0], (high[:, 0] - w) + 1e-9, steps)
        self.y = _Axis.between(low[:, 1], (high[:, 1] - h) + 1e-9, steps)


def _rotate_rings(
    plots: _Plots, members: np.ndarray, sizes: np.ndarray, angles: np.ndarray
) -> np.ndarray:
    """The local rings of ``members`` rotated by ``-angles``, concatenated.

    ``xy_local @ rotation.T`` as for one plot: a stack of matrix products goes through
    the same BLAS kernel, which fuses multiply and add, so the floats are the same; rings
    of equal length are stacked together.
    """
    out = np.empty((int(sizes.sum()), 2))
    where = np.cumsum(sizes) - sizes
    rot_t = _rotations_t([-a for a in angles.tolist()])
    for size in np.unique(sizes).tolist():
        group = np.flatnonzero(sizes == size)
        at = plots.start[members[group]][:, None] + np.arange(size)
        local = plots.xy[at] - plots.origin[members[group]][:, None, :]
        out[where[group][:, None] + np.arange(size)] = local @ rot_t[group]
    return out


def _rotations_t(degrees: list[float]) -> np.ndarray:
    """``_rotation(d).T`` for every angle ``d``, stacked: the same floats (math's)."""
    rad = [math.radians(d) for d in degrees]
    cos = np.array([math.cos(r) for r in rad])
    sin = np.array([math.sin(r) for r in rad])
    rot_t = np.empty((len(degrees), 2, 2))
    rot_t[:, 0, 0], rot_t[:, 0, 1], rot_t[:, 1, 0], rot_t[:, 1, 1] = cos, sin, -sin, cos
    return rot_t


def _unit_rings_many(
    corners: np.ndarray, angles: list[float], origins: np.ndarray, w: float, h: float
) -> np.ndarray:
    """:func:`_unit_rings` of many plots with as many units each, shape (plots, units, 5, 2).

    The matrix products are stacked, which keeps the floats of one product per plot.
    """
    x = np.stack([corners[..., 0], corners[..., 0] + w], axis=-1)[..., _RING_X]
    y = np.stack([corners[..., 1], corners[..., 1] + h], axis=-1)[..., _RING_Y]
    ring = np.stack([x, y], axis=-1)
    plots, units = corners.shape[:2]
    moved = ring.reshape(plots, units * 5, 2) @ _rotations_t(angles) + origins[:, None, :]
    return moved.reshape(plots, units, 5, 2)


def _winners_rings(
    best: list, best_n: np.ndarray, origins: np.ndarray, settings: CapacitySettings
) -> list[np.ndarray]:
    """The unit rings of the best layouts found, plots with as many units together."""
    rings = [_NO_UNITS] * len(best)
    corners = [_lattice_corners(*best[j][1:]) if best_n[j] else None for j in range(len(best))]
    for units in np.unique(best_n[best_n > 0]).tolist():
        group = np.flatnonzero(best_n == units)
        drawn = _unit_rings_many(
            np.array([corners[j] for j in group.tolist()]),
            [best[j][0] for j in group.tolist()], origins[group],
            settings.unit_width_m, settings.unit_length_m,
        )
        for j, ring in zip(group.tolist(), drawn, strict=True):
            rings[j] = ring
    return rings


def _lattice_corners(
    lattice: tuple[float, ...], view: int, width: int, bits: list[int]
) -> list[tuple[float, float]]:
    """Lower-left corners of picked bits (see :func:`_fill_orders`), in Python floats.

    ``lattice`` is (start, step, delta) of x and of y: the floats of :class:`_Axis`.
    """
    x0, x_step, x_delta, y0, y_step, y_delta = lattice
    out = []
    for bit in bits:
        i, j = divmod(bit, width)
        row, col = (j, i) if view else (i, j)
        out.append((x0 + x_step if col == 1 else x0 + col * x_delta,
                    y0 + y_step if row == 1 else y0 + row * y_delta))
    return out


def _layout_convex(
    plots: _Plots, members: np.ndarray, settings: CapacitySettings
) -> tuple[np.ndarray, list[np.ndarray]]:
    """Units and unit rings of clearly convex plots, laid out together.

    The same search as :func:`_layout_plot`, orientation by orientation for all plots at
    once: each plot's rotated ring, lattice and fitting positions come from array calls
    over all plots (fitting positions as a span per lattice row and column, solved from
    the edges, GEOS asked about the units within a hair of an edge in one call), and only
    the greedy placement, on Python integers, runs per plot.
    """
    cap = settings.max_units_per_site
    n = members.size
    best_n = np.zeros(n, dtype=np.int64)
    best: list[tuple | None] = [None] * n
    steps = np.maximum(settings.position_step_m, np.sqrt(plots.build_area[members] / 20_000))
    base = plots.base[members]
    active = np.arange(n)
    for k in range(settings.n_angles):
        if not active.size:
            break
        angles = (base[active] + k * 180.0 / settings.n_angles) % 180.0
        frame = _Frame(plots, members[active], angles, steps[active], settings)
        most = _most_units_all(frame.span, settings)
        keep = (most > best_n[active]) & (frame.x.count > 0) & (frame.y.count > 0)
        if keep.any():
            _place_frame(plots, frame, np.flatnonzero(keep), most, active, best_n, best,
                         settings)
        active = active[best_n[active] < cap]
    return best_n, _winners_rings(best, best_n, plots.origin[members], settings)


def _most_units_all(span: np.ndarray, settings: CapacitySettings) -> np.ndarray:
    """:func:`_most_units` of every plot's rotated extent, in the same floats."""
    span_x = span[:, 0] - settings.unit_width_m
    span_y = span[:, 1] - settings.unit_length_m
    diagonal = max(settings.unit_spacing_m - 1e-6, 0.0) / math.sqrt(2)
    a = settings.unit_width_m + diagonal - 1e-6
    b = settings.unit_length_m + diagonal - 1e-6
    most = (np.floor(np.maximum(span_x, 0.0) / a) + 1) * (np.floor(np.maximum(span_y, 0.0) / b) + 1)
    most[(span_x < -1e-9) | (span_y < -1e-9)] = 0
    return most.astype(np.int64)


def _place_frame(
    plots: _Plots, frame: _Frame, keep: np.ndarray, most: np.ndarray, active: np.ndarray,
    best_n: np.ndarray, best: list, settings: CapacitySettings,
) -> None:
    """Lay units out on the ``keep`` plots of ``frame``; better layouts go to ``best``."""
    w, h, s = settings.unit_width_m, settings.unit_length_m, settings.unit_spacing_m
    extras, cap = settings.extras_area_m2, settings.max_units_per_site
    fits = _FrameFits(plots, frame, keep, settings)
    (row_ints, row_widths), (col_ints, col_widths) = fits.bits(True), fits.bits(False)
    members = frame.members[keep]
    # Plain Python numbers in the loop: numpy scalars cost more per operation.
    owners = active[keep].tolist()
    bounds = np.minimum(most[keep], cap).tolist()
    areas = plots.plot_area[members].tolist()
    angles = frame.angles[keep].tolist()
    wide, long = w + s, h + s
    for j, i in enumerate(members.tolist()):
        a = owners[j]
        found = int(best_n[a])
        stencil = fits.stencils[j]
        if row_ints[j].bit_count() <= found:
            continue  # fewer positions than units already placed: nothing to gain
        views = ((row_ints[j], row_widths[j], *stencil.bits(0, row_widths[j])),
                 (col_ints[j], col_widths[j], *stencil.bits(1, col_widths[j])))
        for order in range(4):
            view = order % 2
            free, width, block, centre = views[view]
            picked = _greedy_bits(free, block, centre, cap, order >= 2)
            placed = len(picked)
            if placed <= found:
                continue
            # The quick bound of _units_with_room first, without arrays.
            if extras <= 0 or areas[j] - placed * wide * long >= placed * extras + 1e-6:
                room = placed
            else:
                xs, ys = fits.corners(j, _Picks(picked, view, width))
                rot = _rotation(-angles[j])
                room = _units_with_room(
                    xs, ys, settings, _PlotRotated(plots.polys[i], plots.origin[i], rot),
                    areas[j],
                )
            if room > found:
                found = room
                best[a] = (angles[j], fits.lattice[j], view, width, picked[:room])
            if found >= bounds[j]:
                break
        best_n[a] = found


class _FrameFits:
    """Where a unit fits on the lattices of many plots in one orientation, as spans.

    Per lattice row (and per column, for the column orders) the span of positions
    whose four corners are clearly inside every edge (depth above the hair, as in
    :func:`_convex_fits_xy`), and the single positions within a hair of an edge that
    GEOS says fit. A convex area's fitting positions per row are one span: the edge
    tests are each monotonic along the row.
    """

    def __init__(
        self, plots: _Plots, frame: _Frame, keep: np.ndarray, settings: CapacitySettings
    ) -> None:
        w, h = settings.unit_width_m, settings.unit_length_m
        self.settings = settings
        self.keep = keep
        self.x, self.y = frame.x.take(keep), frame.y.take(keep)
        self.lattice = list(zip(*(a.tolist() for a in (
            self.x.start, self.x.step, self.x.delta, self.y.start, self.y.step, self.y.delta
        )), strict=True))
        sizes = frame.ring_sizes[keep]
        point = _segment_ranges(frame.ring_first[keep], sizes)
        self.ring = frame.xy[point]
        self.ring_sizes = sizes
        first = np.cumsum(sizes) - sizes
        size = np.maximum.reduceat(np.abs(self.ring).max(axis=1), first) + w + h
        self.slack = 1e-12 * (1.0 + size)
        edge_at = _segment_ranges(first, sizes - 1)  # edges i -> i + 1 of the closed rings
        self.edge_count = sizes - 1
        self.edge_first = np.cumsum(self.edge_count) - self.edge_count
        a = self.ring[edge_at]
        edge = self.ring[edge_at + 1] - a
        owner = np.repeat(np.arange(keep.size), self.edge_count)
        ccw = plots.convex[frame.members[keep]] > 0
        turn = np.where(ccw[owner], 1.0, -1.0) / np.hypot(edge[:, 0], edge[:, 1])
        nx, ny = -edge[:, 1] * turn, edge[:, 0] * turn
        self.edges = (a, nx, ny, np.minimum(nx * w, 0.0), np.minimum(ny * h, 0.0))
        steps = self.x.step
        self.stencils = [_stencil(settings, step) for step in steps.tolist()]
        reach = {id(st): st.reach[0] for st in self.stencils}
        self.reach = np.array([reach[id(st)] for st in self.stencils], dtype=np.int64)
        self.rows = self._spans(by_rows=True, with_hair=True)
        self.cols = self._spans(by_rows=False, with_hair=False)
        self.near = self._near_edges(plots, frame, keep)

    def _spans(self, by_rows: bool, with_hair: bool) -> tuple:
        """Per line (row or column): the span clearly fitting, and the span not clearly out."""
        a, nx, ny, mx, my = self.edges
        lines_axis, along = (self.y, self.x) if by_rows else (self.x, self.y)
        lines = lines_axis.count
        line_owner = np.repeat(np.arange(lines.size), lines)
        line_index = _segment_ranges(np.zeros_like(lines), lines)
        per_line = self.edge_count[line_owner]
        pair_line = np.repeat(np.arange(line_owner.size), per_line)
        pair_owner = line_owner[pair_line]
        line_first = np.cumsum(per_line) - per_line
        pair_edge = self.edge_first[pair_owner] + (
            np.arange(pair_line.size) - line_first[pair_line]
        )
        position = lines_axis.at(line_owner, line_index)[pair_line]
        if by_rows:
            term = ny[pair_edge] * (position - a[pair_edge, 1]) + my[pair_edge]
            normal, start, corner = nx[pair_edge], a[pair_edge, 0], mx[pair_edge]
        else:
            term = nx[pair_edge] * (position - a[pair_edge, 0]) + mx[pair_edge]
            normal, start, corner = ny[pair_edge], a[pair_edge, 1], my[pair_edge]
        tests = _EdgeTests(pair_owner, term, normal, start, corner, along, self.slack)
        first, last = tests.spans(_EDGE_HAIR_M, True)
        lo = np.maximum.reduceat(first, line_first)
        hi = np.minimum.reduceat(last, line_first)
        if not with_hair:
            return line_owner, line_index, lo, hi
        first, last = tests.spans(-_EDGE_HAIR_M, False)
        return (line_owner, line_index, lo, hi,
                np.maximum.reduceat(first, line_first), np.minimum.reduceat(last, line_first))

    def _near_edges(self, plots: _Plots, frame: _Frame, keep: np.ndarray) -> tuple:
        """The positions within a hair of an edge that fit, as GEOS says: (plot, row, col)."""
        w, h = self.settings.unit_width_m, self.settings.unit_length_m
        owner, row, lo, hi, out_lo, out_hi = self.rows
        empty = lo > hi
        # Not clearly out and not clearly in: left and right of the clear span.
        left_hi = np.where(empty, out_hi, np.minimum(out_hi, lo - 1))
        right_lo = np.where(empty, out_hi + 1, np.maximum(out_lo, hi + 1))
        starts = np.concatenate([out_lo, right_lo])
        sizes = np.maximum(np.concatenate([left_hi, out_hi]) - starts + 1, 0)
        line = np.tile(np.arange(owner.size), 2)
        cell_line = np.repeat(line, sizes)
        col = _segment_ranges(starts, sizes)
        cell_owner, cell_row = owner[cell_line], row[cell_line]
        if not col.size:
            return cell_owner, cell_row, col
        xs = self.x.at(cell_owner, col)
        ys = self.y.at(cell_owner, cell_row)
        x1, y1 = xs + w, ys + h
        used = np.unique(cell_owner)
        point = _segment_ranges(np.cumsum(self.ring_sizes) - self.ring_sizes, self.ring_sizes)
        ring_owner = np.repeat(np.arange(keep.size), self.ring_sizes)
        xy = self.ring[point[np.isin(ring_owner, used)]]
        geoms = np.empty(keep.size, dtype=object)
        geoms[used] = shapely.transform(plots.build[frame.members[keep[used]]], lambda _: xy)
        # Prepared, GEOS tests a point against an area about three times as fast.
        shapely.prepare(geoms[used])
        # The corners as the unit's polygon has them (the same floats x + w, y + h).
        corners = shapely.intersects_xy(
            np.tile(geoms[cell_owner], 4),
            np.concatenate([xs, x1, x1, xs]),
            np.concatenate([ys, ys, y1, y1]),
        )
        yes = corners.reshape(4, -1).all(axis=0)
        return cell_owner[yes], cell_row[yes], col[yes]

    def bits(self, by_rows: bool) -> tuple[list[int], list[int]]:
        """Each plot's fitting positions as an integer (see :func:`_fill_orders`), and widths.

        Rows of ``width`` bits, one per lattice row (per column when not ``by_rows``),
        each followed by room for the stencil's reach.
        """
        owner, line, lo, hi = (self.rows if by_rows else self.cols)[:4]
        near_owner, near_row, near_col = self.near
        near_line, near_pos = (near_row, near_col) if by_rows else (near_col, near_row)
        lines, along = (self.y.count, self.x.count) if by_rows else (self.x.count, self.y.count)
        reach = self.reach[:, 1] if by_rows else self.reach[:, 0]
        width = np.maximum(along + reach, 2 * reach + 1)
        n_bytes = (lines * width + 7) // 8
        first_bit = (np.cumsum(n_bytes) - n_bytes) * 8
        canvas = np.zeros(int(n_bytes.sum()) * 8, dtype=bool)
        run = np.maximum(hi - lo + 1, 0)
        canvas[_segment_ranges(first_bit[owner] + line * width[owner] + lo, run)] = True
        canvas[first_bit[near_owner] + near_line * width[near_owner] + near_pos] = True
        packed = memoryview(np.packbits(canvas, bitorder="little"))
        ints = [int.from_bytes(packed[b // 8 : b // 8 + n], "little")
                for b, n in zip(first_bit.tolist(), n_bytes.tolist(), strict=True)]
        return ints, width.tolist()

    def corners(self, j: int, picks: _Picks) -> tuple[np.ndarray, np.ndarray]:
        """Lower-left corners (xs, ys) of plot ``j``'s picks, in the rotated frame."""
        rows, cols = picks.cells()
        at = np.full(rows.size, j)
        return self.x.at(at, cols), self.y.at(at, rows)


def _layout_one(plot: shapely.Geometry, settings: CapacitySettings) -> tuple[int, shapely.Geometry]:
    """Lay units out on one polygonal plot; return (units, MultiPolygon of footprints)."""
    units, layouts = _layout_batch(np.array([plot], dtype=object), settings)
    return int(units[0]), layouts[0]


def _layout_batch(
    polys: np.ndarray, settings: CapacitySettings, show: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Units and layouts (MultiPolygons) of polygonal plots, in this process."""
    plots = _Plots(polys, settings)
    units = np.zeros(len(polys), dtype=np.int64)
    rings = [_NO_UNITS] * len(polys)
    convex = np.flatnonzero(plots.usable & (plots.convex != 0))
    others = np.flatnonzero(plots.usable & (plots.convex == 0)).tolist()
    chunks = [convex[k : k + _CONVEX_BATCH] for k in range(0, convex.size, _CONVEX_BATCH)]
    # One step per chunk of convex plots, then one per other plot.
    steps = [*chunks, *others]
    for step in progress(steps, "unit layout", total=len(steps)) if show else steps:
        if isinstance(step, int):
            units[step], rings[step] = _layout_plot(plots, step, settings)
            continue
        units[step], chunk_rings = _layout_convex(plots, step, settings)
        for i, corners in zip(step.tolist(), chunk_rings, strict=True):
            rings[i] = corners
    return units, _multipolygons(units, rings)


def _multipolygons(units: np.ndarray, rings: list[np.ndarray]) -> np.ndarray:
    """One MultiPolygon per plot from its units' rings, built in two array calls."""
    layouts = np.full(len(units), _EMPTY_LAYOUT, dtype=object)
    if not units.sum():
        return layouts
    coords = np.concatenate(rings).reshape(-1, 2)
    boxes = shapely.polygons(shapely.linearrings(coords, indices=np.repeat(
        np.arange(units.sum()), 5)))
    owners = np.flatnonzero(units)
    layouts[owners] = shapely.multipolygons(boxes, indices=np.repeat(
        np.arange(owners.size), units[owners]))
    return layouts


_EMPTY_LAYOUT = shapely.MultiPolygon()


def units_text(n: int, language: str) -> str:
    """Write a number of units with the right noun form.

    Parameters
    ----------
    n : int
        Number of units.
    language : {"nb", "en"}
        Bokmål or English.

    Returns
    -------
    str
        ``"1 enhet"``, ``"2 enheter"`` (bokmål) or ``"1 unit"``, ``"2 units"`` (English).

    Examples
    --------
    >>> units_text(1, "nb"), units_text(3, "nb"), units_text(0, "en")
    ('1 enhet', '3 enheter', '0 units')

    """
    if language == "nb":
        return f"{n} enhet" if n == 1 else f"{n} enheter"
    return f"{n} unit" if n == 1 else f"{n} units"


def too_small_texts(n: int, min_units: int) -> tuple[str, str]:
    """Say why ``n`` units are too few, in bokmål and English (no trailing details).

    Parameters
    ----------
    n : int
        Units that fit (fewer than ``min_units``).
    min_units : int
        The ``min_units_per_site`` in force.

    Returns
    -------
    tuple of str
        ``(nb, en)``, e.g. ``("har plass til 1 enhet, minst 2 enheter kreves",
        "fits 1 unit, at least 2 are required")``.

    """
    if n == 0:
        # The usual case since single houses are valid: nothing fits at all.
        return "har ikke plass til én eneste enhet", "does not fit a single unit"
    verb = "is" if min_units == 1 else "are"
    return (
        f"har plass til {units_text(n, 'nb')}, minst {units_text(min_units, 'nb')} kreves",
        f"fits {units_text(n, 'en')}, at least {min_units} {verb} required",
    )


def _reasons_too_small(n: int, settings: CapacitySettings) -> tuple[str, str]:
    def number(x: float, language: str) -> str:
        # Whole metres as "6", others with one decimal: "8,5" in bokmål, "8.5" in English.
        return fmt_number(x, 0 if float(x).is_integer() else 1, language)

    def sizes(language: str) -> tuple[str, str, str, str]:
        s = settings
        return (f"{number(s.unit_width_m, language)} × {number(s.unit_length_m, language)} m",
                number(s.unit_spacing_m, language), number(s.setback_m, language),
                number(s.extras_area_m2, language))

    why_nb, why_en = too_small_texts(n, settings.min_units_per_site)
    size, spacing, setback, extras = sizes("nb")
    nb = (
        f"Tomten {why_nb} (enheter {size}, {spacing} m mellom enhetene, {setback} m fra "
        f"tomtegrensen, {extras} m² til bod, gjesteparkering og avfall per enhet)"
    )
    size, spacing, setback, extras = sizes("en")
    en = (
        f"The plot {why_en} (units {size}, {spacing} m between units, {setback} m from the "
        f"plot boundary, {extras} m² for store, guest parking and waste per unit)"
    )
    return nb, en


def _polygons(geoms: np.ndarray) -> np.ndarray:
    """The polygonal part of every geometry (repaired if invalid), None where it has none.

    Valid polygons, by far the most common plots, pass in one array test; the rest go
    through :func:`_polygonal` one by one.
    """
    present = ~pd.isna(geoms)
    kind = np.full(len(geoms), -1)
    kind[present] = shapely.get_type_id(geoms[present])
    ready = np.isin(kind, (3, 6))
    ready[ready] = shapely.is_valid(geoms[ready]) & ~shapely.is_empty(geoms[ready])
    polys = np.where(ready, geoms, None)
    for i in np.flatnonzero(~ready).tolist():
        polys[i] = _polygonal(geoms[i])
    return polys


#: Plots from which the layout is shared out over worker processes: below it, starting
#: a process costs about as much as it saves.
POOL_MIN_PLOTS = 3_000

#: Environment variable with the number of processes that lay units out (default 2,
#: at most the CPUs available); ``1`` keeps all the work in the calling process.
WORKERS_ENV = "SITEFINDER_WORKERS"


def layout_workers(n_plots: int) -> int:
    """How many processes lay out ``n_plots`` plots.

    Parameters
    ----------
    n_plots : int
        Plots to lay out.

    Returns
    -------
    int
        1 below :data:`POOL_MIN_PLOTS` plots, off Linux and in a daemonic process (a
        Dask worker); otherwise the number in the
        environment variable :data:`WORKERS_ENV` (default 2), at most the CPUs this
        process may use.

    Raises
    ------
    InputError
        When the environment variable is set but is not a whole number of at least 1.

    """
    raw = os.environ.get(WORKERS_ENV, "").strip()
    wanted = 2
    if raw:
        try:
            wanted = int(raw)
        except ValueError:
            wanted = 0
        if wanted < 1:
            raise InputError(
                f"the environment variable {WORKERS_ENV} is {raw!r}, not a whole number of "
                "processes",
                where=WORKERS_ENV,
                hint="Set it to 1 to lay units out in one process, or unset it (default 2)",
            )
    # Workers are forked (started in milliseconds, nothing re-imported, the caller's
    # script not re-run); fork is the safe default only on Linux. A daemonic process (a
    # Dask worker of `sitefinder batch`) may not have children: it lays out alone, and
    # the cluster spreads the work instead.
    if (n_plots < POOL_MIN_PLOTS or not sys.platform.startswith("linux")
            or multiprocessing.current_process().daemon):
        return 1
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(wanted, cpus or 1))


#: Plots per chunk handed out to the processes: small enough that a process slowed by
#: other work on the machine leaves its share to the others, large enough that handing
#: out costs nothing.
_CHUNK_PLOTS = 250


def _layout_all(polys: np.ndarray, settings: CapacitySettings) -> tuple[np.ndarray, np.ndarray]:
    """Units and layouts of polygonal plots, over worker processes when there are many.

    The plots are cut into consecutive chunks that this process and the workers claim
    one at a time from a shared counter, so a process that gets less CPU does less of
    the work; each chunk's result depends on its plots only and the chunks are put back
    in order, so the result does not depend on who laid out what.
    """
    workers = layout_workers(len(polys))
    if workers == 1:
        return _layout_batch(polys, settings)
    context = multiprocessing.get_context("fork")
    job = _Job(polys, settings, context.Value("q", 0))
    # Forked workers inherit the job (plots included) instead of receiving a copy.
    with ProcessPoolExecutor(
        workers - 1, mp_context=context, initializer=_start_worker, initargs=(job,)
    ) as pool:
        futures = [pool.submit(_worker_chunks) for _ in range(workers - 1)]
        done = {
            k: _layout_batch(polys[job.chunk(k)], settings, show=False)
            for k in progress(job.claims(), "unit layout")
        }
        for future in futures:
            for k, (units, wkb) in future.result().items():
                done[k] = (units, shapely.from_wkb(wkb))
    parts = [done[k] for k in range(job.n_chunks)]
    return (
        np.concatenate([units for units, _ in parts]),
        np.concatenate([layouts for _, layouts in parts]),
    )


class _Job:
    """Plots to lay out in chunks, and the shared count of chunks claimed so far."""

    def __init__(self, polys: np.ndarray, settings: CapacitySettings, claimed: object) -> None:
        self.polys, self.settings, self.claimed = polys, settings, claimed
        self.n_chunks = -(-len(polys) // _CHUNK_PLOTS)

    def chunk(self, k: int) -> slice:
        """The plots of chunk ``k``."""
        return slice(k * _CHUNK_PLOTS, (k + 1) * _CHUNK_PLOTS)

    def claims(self) -> Iterator[int]:
        """Chunks this process claims, until none is left."""
        while True:
            with self.claimed.get_lock():
                k = self.claimed.value
                self.claimed.value = k + 1
            if k >= self.n_chunks:
                return
            yield k


#: The job of a worker process, set when it starts.
_worker_job: list[_Job] = []


def _start_worker(job: _Job) -> None:
    _worker_job[:] = [job]


def _worker_chunks() -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """A worker's chunks: units and layouts as WKB (exact floats) by chunk number."""
    job = _worker_job[0]
    done = {}
    for k in job.claims():
        units, layouts = _layout_batch(job.polys[job.chunk(k)], job.settings, show=False)
        done[k] = (units, shapely.to_wkb(layouts))
    return done


def plan_units(plots: gpd.GeoDataFrame, settings: CapacitySettings) -> pd.DataFrame:
    """Lay out småhus units on every plot and report each plot's capacity.

    Parameters
    ----------
    plots : GeoDataFrame
        Candidate plots in a projected (metric) CRS. Any geometry is accepted; plots
        without polygon area get capacity 0 and a reason.
    settings : CapacitySettings
        Unit size, spacing, setback, extras and the units-per-site limits.

    Returns
    -------
    pandas.DataFrame
        Indexed like ``plots``, with columns

        - ``capacity_units`` (int): units placed, at most ``max_units_per_site``; a
          ``too_small`` plot keeps the count that does fit;
        - ``layout`` (geometry, the plots' CRS): MultiPolygon of the unit footprints
          (empty when none fit);
        - ``capacity_status`` (str): ``ok``, ``too_small``, ``no_geometry`` or
          ``not_polygon``;
        - ``capacity_reason_nb``, ``capacity_reason_en`` (str): why a plot is not ``ok``
          (``""`` when it is).

    Raises
    ------
    InputError
        When ``plots`` has no CRS or a geographic one, or the environment variable
        ``SITEFINDER_WORKERS`` is not a whole number of at least 1.

    Notes
    -----
    From :data:`POOL_MIN_PLOTS` plots on, the work is shared with a forked worker
    process (see :func:`layout_workers`); the result is the same as in one process.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> plots = gpd.GeoDataFrame(geometry=[shapely.box(0, 0, 40, 40)], crs=25833)
    >>> plan_units(plots, CapacitySettings())["capacity_units"].tolist()
    [4]

    """
    if not isinstance(plots, gpd.GeoDataFrame):
        raise InputError(
            f"plan_units needs a GeoDataFrame of plots, got {type(plots).__name__}",
            where="plots",
        )
    require_projected(plots, "plots")

    n_rows = len(plots)
    units = np.zeros(n_rows, dtype=np.int64)
    status = np.full(n_rows, STATUS_OK, dtype=object)
    reason_nb = np.full(n_rows, "", dtype=object)
    reason_en = np.full(n_rows, "", dtype=object)

    geoms = np.asarray(plots.geometry.array, dtype=object)
    polys = _polygons(geoms)
    for i in np.flatnonzero(pd.isna(polys)).tolist():
        geom = geoms[i]
        if geom is None or geom.is_empty:
            status[i] = STATUS_NO_GEOMETRY
            reason_nb[i] = "Tomten mangler geometri, så ingen enheter kan plasseres"
            reason_en[i] = "The plot has no geometry, so no units can be placed"
            continue
        status[i] = STATUS_NOT_POLYGON
        reason_nb[i] = (
            f"Tomten er et {geom.geom_type}-objekt uten areal; tegn den som polygon "
            "for å beregne kapasitet"
        )
        reason_en[i] = (
            f"The plot is a {geom.geom_type} without area; draw it as a polygon to "
            "compute its capacity"
        )
    placed = np.flatnonzero(~pd.isna(polys))
    units[placed], layouts = _layout_all(polys[placed], settings)
    layouts_all = np.full(n_rows, _EMPTY_LAYOUT, dtype=object)
    layouts_all[placed] = layouts
    for n in np.unique(units[placed][units[placed] < settings.min_units_per_site]).tolist():
        small = placed[units[placed] == n]
        status[small] = STATUS_TOO_SMALL
        texts = _reasons_too_small(n, settings)
        reason_nb[small], reason_en[small] = texts[0], texts[1]

    return pd.DataFrame(
        {
            "capacity_units": units,
            "layout": gpd.GeoSeries(layouts_all, index=plots.index, crs=plots.crs),
            "capacity_status": pd.Series(status, index=plots.index, dtype=object),
            "capacity_reason_nb": pd.Series(reason_nb, index=plots.index, dtype=object),
            "capacity_reason_en": pd.Series(reason_en, index=plots.index, dtype=object),
        },
        index=plots.index,
    )


def layouts_by_units(layouts: pd.Series) -> np.ndarray:
    """Every plot's layout cut to 0, 1, …, 6 units, computed once per study.

    The layout is measured once at the hard ceiling (6 units) and cached; a scenario's own
    ``max_units_per_site`` then picks a column of this table instead of laying out again.
    Keeping the first ``n`` units of a valid layout keeps it valid: units stay inside the
    setback line, apart from each other, and leave more room for the per-unit extras.

    Parameters
    ----------
    layouts : Series of geometry
        Layouts at the hard ceiling (MultiPolygon, units in placement order; None allowed).

    Returns
    -------
    ndarray of object, shape (n, HARD_MAX_UNITS_PER_SITE + 1)
        Column ``k`` holds the first ``k`` units of each layout (the whole layout, the
        same geometry, where it has at most ``k``).
    """
    geoms = np.asarray(layouts.to_numpy(), dtype=object)
    geoms = np.where(pd.isna(geoms), None, geoms)
    table = np.full((len(geoms), HARD_MAX_UNITS_PER_SITE + 1), shapely.MultiPolygon(), dtype=object)
    parts, owner = shapely.get_parts(geoms, return_index=True)
    if not len(parts):
        return table
    count = np.bincount(owner, minlength=len(geoms))
    first = np.searchsorted(owner, np.arange(len(geoms)))
    ordinal = np.arange(len(owner)) - first[owner]
    for k in range(1, HARD_MAX_UNITS_PER_SITE + 1):
        # A layout of at most k units is its own first k units: shared, not rebuilt.
        whole = (count > 0) & (count <= k)
        table[whole, k] = geoms[whole]
        keep = (ordinal < k) & (count[owner] > k)
        if keep.any():
            owners, dense = np.unique(owner[keep], return_inverse=True)
            table[owners, k] = shapely.multipolygons(parts[keep], indices=dense)
    return table


def cap_units(max_units: pd.Series, settings: CapacitySettings) -> pd.DataFrame:
    """Apply a scenario's units-per-site limits to the capacity measured at the ceiling.

    Parameters
    ----------
    max_units : Series of int
        Units placed at the hard ceiling (``capacity_units`` of :func:`plan_units`);
        null for plots given as points (no outline to lay units out on).
    settings : CapacitySettings
        Supplies ``min_units_per_site`` and ``max_units_per_site``.

    Returns
    -------
    DataFrame
        ``capacity_units`` (null where unknown), ``capacity_status`` (``ok``,
        ``too_small`` or ``unknown``), ``capacity_reason_nb``, ``capacity_reason_en``;
        aligned with ``max_units``. The matching layout is column ``capacity_units`` of
        :func:`layouts_by_units`.
    """
    unknown = max_units.isna().to_numpy()
    measured = max_units.fillna(0).astype("int64").to_numpy()
    units = np.minimum(measured, settings.max_units_per_site)
    small = (units < settings.min_units_per_site) & ~unknown
    # Reasons depend only on the unit count: format each distinct text once.
    texts = {int(n): _reasons_too_small(int(n), settings) for n in np.unique(units[small])}
    reason_nb = np.full(len(units), "", dtype=object)
    reason_en = np.full(len(units), "", dtype=object)
    for n, (nb, en) in texts.items():
        hit = small & (units == n)
        reason_nb[hit], reason_en[hit] = nb, en
    reason_nb[unknown], reason_en[unknown] = _REASONS_UNKNOWN
    status = np.where(small, STATUS_TOO_SMALL, np.where(unknown, STATUS_UNKNOWN, STATUS_OK))
    return pd.DataFrame(
        {
            "capacity_units": pd.Series(units, index=max_units.index, dtype="Int64").mask(
                unknown
            ),
            "capacity_status": status,
            "capacity_reason_nb": reason_nb,
            "capacity_reason_en": reason_en,
        },
        index=max_units.index,
    )


STATUS_UNKNOWN = "unknown"
_REASONS_UNKNOWN = (
    "tomten er gitt som punkt: antall enheter er ukjent",
    "the plot is given as a point: the number of units is unknown",
)
