"""The plot-by-plot unit layout search behind :mod:`sitefinder.capacity`.

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
prepared for all plots with one array call each (:class:`_Plots`); plots that are not
clearly convex (concave, with holes, in parts) are then searched one at a time
(:func:`_layout_plot`). Clearly convex plots go to :mod:`sitefinder.capacity_batch`.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator

import numpy as np
import shapely

from sitefinder.settings import CapacitySettings


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
