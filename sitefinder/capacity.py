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
buildable area a unit fits when its four corners do, which numpy decides for the whole
lattice (GEOS only for corners within a hair of the edge, so every answer is GEOS's);
other areas ask GEOS ``covers`` only for units whose corners all fit. The greedy
placement clears a precomputed conflict stencil around each unit, the four corner
orders side by side; an orientation whose lattice cannot hold more units than the best
layout so far is skipped. The layouts are exactly those of testing every position and
pair one by one (tests/test_capacity_fast.py).

The buildable areas, their centroids, coordinates and orientations are prepared for all
plots with one shapely call each; a rotated geometry is built only when GEOS must decide.
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
    """The conflict stencil and its flat offsets, for row-major scans of padded grids."""

    def __init__(self, settings: CapacitySettings, step: float) -> None:
        self.mask = _conflict_stencil(settings, step)
        self.ky, self.kx = self.mask.shape[0] // 2, self.mask.shape[1] // 2
        # What clearing a unit's surroundings keeps, in the plain and transposed views.
        self.keep = (~self.mask, ~self.mask.T)


def _fill_orders(fits: np.ndarray, stencil: _Stencil, cap: int) -> list[_Picks]:
    """Greedy picks filling from each corner in turn, as (row, column) lattice cells.

    The four orders are: bottom-left by rows, bottom-left by columns, top-right by rows,
    top-right by columns (the placement is greedy, so the corner it packs against
    matters on odd shapes). Each is the row-major scan of a flipped or transposed view
    of the grid, and greedy in row-major order means: take the first free cell, clear
    the conflict stencil around it, repeat. The four scans run side by side as rows of
    one array (one ``argmax`` finds the next pick of all four), each view padded by the
    stencil's reach so that clearing is a slice that never leaves its view; the stencil
    is symmetric, so it only needs transposing with the grid.
    """
    ny, nx = fits.shape
    ky, kx = stencil.ky, stencil.kx
    wide, tall = (ny + 2 * ky, nx + 2 * kx), (nx + 2 * kx, ny + 2 * ky)
    free = np.zeros((4, wide[0] * wide[1]), dtype=bool)
    free[0].reshape(wide)[ky : ky + ny, kx : kx + nx] = fits
    free[1].reshape(tall)[kx : kx + nx, ky : ky + ny] = fits.T
    free[2] = free[0, ::-1]  # both flips of a centred padding are the reversed scan
    free[3] = free[1, ::-1]
    shapes = (wide, tall, wide, tall)
    views = [free[r].reshape(shapes[r]) for r in range(4)]
    keep = stencil.keep
    reach = ((ky, kx), (kx, ky))
    picks: list[list[int]] = [[], [], [], []]
    for _ in range(cap):
        placed = False
        # Plain Python scalars here: a handful of tiny numpy calls per unit cost more.
        for r, first in enumerate(free.argmax(axis=1).tolist()):
            # Cell 0 is padding in every view, never free: argmax 0 means none is left.
            if not first:
                continue
            placed = True
            picks[r].append(first)
            i, j = divmod(first, shapes[r][1])
            ri, rj = reach[r % 2]
            views[r][i - ri : i + ri + 1, j - rj : j + rj + 1] &= keep[r % 2]
        if not placed:
            break
    return [_Picks(picks[r], r, shapes[r], ky, kx) for r in range(4)]


class _Picks:
    """One order's picks as flat indices; turned into grid cells only when needed."""

    def __init__(
        self, flat: list[int], view: int, shape: tuple[int, int], ky: int, kx: int
    ) -> None:
        self.flat, self.view, self.shape = flat, view, shape
        self.ky, self.kx = ky, kx

    def __len__(self) -> int:
        return len(self.flat)

    def cells(self) -> tuple[np.ndarray, np.ndarray]:
        """(rows, columns) of the picks in the fits grid, in placement order."""
        flat = np.array(self.flat, dtype=np.int64)
        if self.view >= 2:
            flat = self.shape[0] * self.shape[1] - 1 - flat  # undo the reversed scan
        i, j = np.divmod(flat, self.shape[1])
        if self.view % 2:
            i, j = j, i  # transposed view: its rows are the grid's columns
        return i - self.ky, j - self.kx


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
    a = xy[:-1]
    edge = xy[1:] - a
    # Inward unit normal: the edge turned left on a counter-clockwise ring, right on a
    # clockwise one.
    turn = (1.0 if ccw else -1.0) / np.hypot(edge[:, 0], edge[:, 1])
    nx, ny = -edge[:, 1] * turn, edge[:, 0] * turn
    col = nx[:, None] * (xs - a[:, 0, None]) + np.minimum(nx * w, 0.0)[:, None]
    row = ny[:, None] * (ys - a[:, 1, None]) + np.minimum(ny * h, 0.0)[:, None]
    depth = (row[:, :, None] + col[:, None, :]).min(axis=0)
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
    fits = np.ones((ys.size, xs.size), dtype=bool)
    for cx, cy in ((xs, ys), (x1, ys), (x1, y1), (xs, y1)):
        fits &= shapely.intersects_xy(b_rot, cx[None, :], cy[:, None])
    if fits.any():
        shapely.prepare(b_rot)
        rows, cols = np.nonzero(fits)
        boxes = shapely.box(xs[cols], ys[rows], x1[cols], y1[rows])
        fits[rows, cols] = shapely.covers(b_rot, boxes)
    return fits


def _units_with_room(
    xs: np.ndarray, ys: np.ndarray, settings: CapacitySettings, plot_rot: shapely.Geometry,
    plot_area: float,
) -> int:
    """How many of the placed units (in order) leave room for every unit's extras."""
    w, h, s = settings.unit_width_m, settings.unit_length_m, settings.unit_spacing_m
    extras = settings.extras_area_m2
    if extras <= 0:
        return xs.size
    # The zones cover at most their summed area: when even that leaves room, all fit.
    if plot_area - xs.size * (w + s) * (h + s) >= xs.size * extras + 1e-6:
        return xs.size
    zones = shapely.box(xs - s / 2, ys - s / 2, xs + w + s / 2, ys + h + s / 2)
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
        p_rot = None
        for cells in _fill_orders(fits, stencil, cap):
            if len(cells) <= best_n:
                continue
            rows, cols = cells.cells()
            if p_rot is None:
                p_rot = shapely.transform(
                    plots.polys[i], lambda xy, r=rot: (xy - origin) @ r.T
                )
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
    rings = []
    indices = range(len(polys))
    for i in progress(indices, "unit layout", total=len(polys)) if show else indices:
        units[i], corners = _layout_plot(plots, i, settings)
        rings.append(corners)
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
        Column ``k`` holds the first ``k`` units of each layout (empty where fewer exist,
        so column ``k`` is only used for plots with at least ``k`` units).
    """
    geoms = np.asarray(layouts.to_numpy(), dtype=object)
    geoms = np.where(pd.isna(geoms), None, geoms)
    table = np.full((len(geoms), HARD_MAX_UNITS_PER_SITE + 1), shapely.MultiPolygon(), dtype=object)
    parts, owner = shapely.get_parts(geoms, return_index=True)
    if not len(parts):
        return table
    first = np.searchsorted(owner, np.arange(len(geoms)))
    ordinal = np.arange(len(owner)) - first[owner]
    for k in range(1, HARD_MAX_UNITS_PER_SITE + 1):
        keep = ordinal < k
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
