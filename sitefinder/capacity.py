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
from typing import Annotated

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from sitefinder.errors import InputError

#: The hard ceiling on units per site. docs/CRITERIA.md §17: national guidance says not
#: more than 6–8 units together and the residents call an 8-unit cluster a ghetto; above
#: 4–5 units a staffed base is usually needed, which is a different kind of project.
HARD_MAX_UNITS_PER_SITE = 6

STATUS_OK = "ok"
STATUS_TOO_SMALL = "too_small"
STATUS_NO_GEOMETRY = "no_geometry"
STATUS_NOT_POLYGON = "not_polygon"


class CapacitySettings(BaseModel):
    """How småhus units are laid out on a plot (scenario key ``capacity:``).

    Every default is traceable to docs/CRITERIA.md; the section is named on each field.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    unit_width_m: Annotated[float, Field(gt=0, le=30)] = 6.0
    """Short side of one unit's exterior footprint, metres (SINTEF 2021 §6.1: Verdal's
    road-transportable unit is about 6 m × 8.5 m)."""

    unit_length_m: Annotated[float, Field(gt=0, le=30)] = 8.5
    """Long side of one unit's exterior footprint, metres (SINTEF 2021 §6.1)."""

    unit_spacing_m: Annotated[float, Field(ge=0, le=100)] = 8.0
    """Minimum clear distance between two units' walls, metres. Fire separation between
    detached buildings; the report stresses detached units with no shared walls
    (SINTEF 2021 §6.1) and distance between units (criterion 7)."""

    setback_m: Annotated[float, Field(ge=0, le=100)] = 4.0
    """Minimum distance from the plot boundary to any unit wall, metres (the Planning and
    Building Act's main rule, plan- og bygningsloven §29-4: 4 m to the neighbour's
    boundary; the report gives no number)."""

    store_area_m2: Annotated[float, Field(ge=0, le=200)] = 6.0
    """Outdoor store/technical room per unit, m² of plot (SINTEF 2021 §6.1, §6.5.2: each unit
    usually has one, reachable from outside)."""

    guest_parking_per_unit: Annotated[float, Field(ge=0, le=5)] = 0.5
    """Guest parking spaces per unit (docs/CRITERIA.md §18, Sandnes rule f, §6.6)."""

    parking_space_area_m2: Annotated[float, Field(ge=0, le=100)] = 25.0
    """Plot area per parking space including its share of the access lane, m²
    (2.5 m × 5 m stall plus manoeuvring; an assumption, not from the report)."""

    waste_area_m2: Annotated[float, Field(ge=0, le=50)] = 2.0
    """Area for the fireproof waste container each unit gets, m² (docs/CRITERIA.md §18,
    Sandnes rule g, §6.6)."""

    min_units_per_site: Annotated[int, Field(ge=1)] = 1
    """Fewest units that make a plot worth using. A single house is a valid site
    (docs/CRITERIA.md §16, SINTEF 2021 §6.1: "Noen ganger ligger det bare et enkelt
    småhus"; Bodø's single house is the report's best-rated home), so a plot is too
    small only when not even one unit fits.
    Raise it to spread the plot cost over more units (docs/CRITERIA.md §18)."""

    max_units_per_site: Annotated[int, Field(ge=1)] = 4
    """Most units placed on one plot (docs/CRITERIA.md §17: Sandnes main rule 4;
    never more than 6 — see :data:`HARD_MAX_UNITS_PER_SITE`)."""

    preferred_units_per_site: Annotated[int, Field(ge=1, le=HARD_MAX_UNITS_PER_SITE)] = 3
    """Units per site the selection aims for; units above it are worth less (see
    ``extra_unit_value``). 2–3 is what the report describes most often (docs/CRITERIA.md §16,
    §6.1: "oftest bygd i grupper på 2–3 hus"; table "units per site 2–3")."""

    extra_unit_value: Annotated[float, Field(ge=0, le=1)] = 0.25
    """What each unit above ``preferred_units_per_site`` on one site is worth in the
    selection, as a share of that plot's score: 1 ignores the preference, 0 builds above it
    only when the request cannot be met otherwise. Small sites are preferred
    (docs/CRITERIA.md §17: "it takes little before it feels like a ghetto", residents ask for "more
    spread"); 0.25 still lets a much better plot take a fourth unit (an assumption)."""

    n_angles: Annotated[int, Field(ge=1, le=36)] = 6
    """Grid orientations tried per plot, evenly spread over 180° from the plot's
    minimum-rotated-rectangle orientation (6 → every 30°, includes the 90° turn)."""

    position_step_m: Annotated[float, Field(ge=0.1, le=10)] = 1.0
    """Step of the lattice of candidate unit positions, metres; finer finds more layouts
    on tight plots but costs time (the cost grows with 1/step²)."""

    @field_validator("max_units_per_site")
    @classmethod
    def _hard_ceiling(cls, value: int) -> int:
        if value > HARD_MAX_UNITS_PER_SITE:
            raise ValueError(
                f"max_units_per_site is {value}, but at most {HARD_MAX_UNITS_PER_SITE} units "
                "may share a site (docs/CRITERIA.md §17: guidance 6–8 at most, residents "
                "call 8 a ghetto); use 4 (Sandnes' main rule) or up to 6"
            )
        return value

    @model_validator(mode="after")
    def _min_not_above_max(self) -> CapacitySettings:
        if self.min_units_per_site > self.max_units_per_site:
            raise ValueError(
                f"min_units_per_site ({self.min_units_per_site}) is above max_units_per_site "
                f"({self.max_units_per_site}); lower the minimum or raise the maximum"
            )
        return self

    @property
    def extras_area_m2(self) -> float:
        """Plot area each unit needs outside the units and their fire-separation zones, m²."""
        return (
            self.store_area_m2
            + self.guest_parking_per_unit * self.parking_space_area_m2
            + self.waste_area_m2
        )


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
        self.cells = np.nonzero(self.mask)
        self.cells_t = np.nonzero(self.mask.T)


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
    keep = (~stencil.mask, ~stencil.mask.T)
    reach = ((ky, kx), (kx, ky))
    picks: list[list[int]] = [[], [], [], []]
    for _ in range(cap):
        placed = False
        # Plain Python scalars here: a handful of tiny numpy calls per unit cost more.
        for r, first in enumerate(free.argmax(axis=1).tolist()):
            if not free[r, first]:
                continue
            placed = True
            picks[r].append(first)
            i, j = divmod(first, shapes[r][1])
            ri, rj = reach[r % 2]
            views[r][i - ri : i + ri + 1, j - rj : j + rj + 1] &= keep[r % 2]
        if not placed:
            break
    return [_Picks(np.array(picks[r], dtype=np.int64), r, shapes[r], ky, kx, fits.shape)
            for r in range(4)]


class _Picks:
    """One order's picks as flat indices; turned into grid cells only when needed."""

    def __init__(
        self, flat: np.ndarray, view: int, shape: tuple[int, int], ky: int, kx: int,
        grid: tuple[int, int],
    ) -> None:
        self.flat, self.view, self.shape = flat, view, shape
        self.ky, self.kx, self.grid = ky, kx, grid

    def __len__(self) -> int:
        return self.flat.size

    def cells(self) -> tuple[np.ndarray, np.ndarray]:
        """(rows, columns) of the picks in the fits grid, in placement order."""
        flat = self.flat
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
    xy = shapely.get_coordinates(geom)
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
    """Fits grid for a convex area: a unit fits when its four corners are covered.

    Per edge, the unit's worst corner is the one furthest along the edge's outward
    normal, and its distance inside the edge is a sum of a column term and a row term;
    the smallest over the edges tells clearly in, clearly out, or within a hair of the
    edge. Only the last (the lattice often starts exactly on the edge) ask GEOS about
    their corners, so every answer is GEOS's.
    """
    xy = shapely.get_coordinates(b_rot)
    if not ccw:
        xy = xy[::-1]
    a = xy[:-1]
    edge = xy[1:] - a
    length = np.hypot(edge[:, 0], edge[:, 1])
    # Inward unit normal of a counter-clockwise ring: the edge turned left.
    nx, ny = -edge[:, 1] / length, edge[:, 0] / length
    col = nx[:, None] * (xs - a[:, 0, None]) + np.minimum(nx * w, 0.0)[:, None]
    row = ny[:, None] * (ys - a[:, 1, None]) + np.minimum(ny * h, 0.0)[:, None]
    depth = (row[:, :, None] + col[:, None, :]).min(axis=0)
    fits = depth > _EDGE_HAIR_M
    unsure = ~fits & (depth >= -_EDGE_HAIR_M)
    if unsure.any():
        # The corners as the unit's polygon has them (the same floats x + w, y + h).
        x1, y1 = xs + w, ys + h
        rows, cols = np.nonzero(unsure)
        corners = shapely.intersects_xy(
            b_rot,
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


def _layout_one(plot: shapely.Geometry, settings: CapacitySettings) -> tuple[int, shapely.Geometry]:
    """Lay units out on one polygonal plot; return (units, MultiPolygon of footprints)."""
    w, h = settings.unit_width_m, settings.unit_length_m
    cap = settings.max_units_per_site
    empty = shapely.MultiPolygon()

    buildable = plot.buffer(-settings.setback_m, join_style="mitre") if settings.setback_m else plot
    if buildable.is_empty or buildable.area < w * h:
        return 0, empty

    # Work around the buildable area's centroid: rotating UTM coordinates of ~10^6 m
    # would lose precision and make "covers" flicker on touching edges.
    origin = np.array(buildable.centroid.coords[0])
    plot_local = shapely.transform(plot, lambda xy: xy - origin)
    build_local = shapely.transform(buildable, lambda xy: xy - origin)
    plot_area = plot.area
    # Candidate corners on a lattice; a very large plot gets a coarser lattice (it fits
    # the maximum easily, and the cost stays bounded).
    step = max(settings.position_step_m, math.sqrt(buildable.area / 20_000))
    stencil = _stencil(settings, step)
    convex = _clearly_convex(build_local)

    base = _mrr_angle_deg(buildable)
    angles = [(base + k * 180.0 / settings.n_angles) % 180.0 for k in range(settings.n_angles)]
    best_n, best_angle, best_xy = 0, 0.0, np.empty((0, 2))
    for angle in angles:
        # Rotate the plot by -angle so the units are axis-aligned in this frame.
        rot = _rotation(-angle)
        b_rot = shapely.transform(build_local, lambda xy, r=rot: xy @ r.T)
        minx, miny, maxx, maxy = b_rot.bounds
        most = _most_units(maxx - minx - w, maxy - miny - h, settings)
        if most <= best_n:
            continue  # this orientation cannot beat the layout found: same result, less work
        xs = np.arange(minx, maxx - w + 1e-9, step)
        ys = np.arange(miny, maxy - h + 1e-9, step)
        if xs.size == 0 or ys.size == 0:
            continue
        fits = _fitting_positions(b_rot, convex, xs, ys, w, h)
        if not fits.any():
            continue
        p_rot = None
        for cells in _fill_orders(fits, stencil, cap):
            if len(cells) <= best_n:
                continue
            rows, cols = cells.cells()
            if p_rot is None:
                p_rot = shapely.transform(plot_local, lambda xy, r=rot: xy @ r.T)
            n = _units_with_room(xs[cols], ys[rows], settings, p_rot, plot_area)
            if n > best_n:
                best_n, best_angle = n, angle
                best_xy = np.column_stack([xs[cols][:n], ys[rows][:n]])
            if best_n >= min(cap, most):
                break
        if best_n >= cap:
            break

    if best_n == 0:
        return 0, empty
    boxes = shapely.box(best_xy[:, 0], best_xy[:, 1], best_xy[:, 0] + w, best_xy[:, 1] + h)
    back = _rotation(best_angle)
    units = shapely.transform(boxes, lambda xy: xy @ back.T + origin)
    return best_n, shapely.MultiPolygon(list(units))


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
    size = f"{settings.unit_width_m:g} × {settings.unit_length_m:g} m"
    why_nb, why_en = too_small_texts(n, settings.min_units_per_site)
    nb = (
        f"Tomten {why_nb} "
        f"(enheter {size}, {settings.unit_spacing_m:g} m mellom enhetene, "
        f"{settings.setback_m:g} m fra tomtegrensen, {settings.extras_area_m2:g} m² "
        "til bod, gjesteparkering og avfall per enhet)"
    )
    en = (
        f"The plot {why_en} "
        f"(units {size}, {settings.unit_spacing_m:g} m between units, "
        f"{settings.setback_m:g} m from the plot boundary, {settings.extras_area_m2:g} m² "
        "for store, guest parking and waste per unit)"
    )
    return nb, en


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
        When ``plots`` has no CRS or a geographic one.

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
    layouts: list[shapely.Geometry] = [shapely.MultiPolygon()] * n_rows
    status = np.full(n_rows, STATUS_OK, dtype=object)
    reason_nb = np.full(n_rows, "", dtype=object)
    reason_en = np.full(n_rows, "", dtype=object)

    for i, geom in enumerate(plots.geometry.array):
        if geom is None or geom.is_empty:
            status[i] = STATUS_NO_GEOMETRY
            reason_nb[i] = "Tomten mangler geometri, så ingen enheter kan plasseres"
            reason_en[i] = "The plot has no geometry, so no units can be placed"
            continue
        poly = _polygonal(geom)
        if poly is None:
            status[i] = STATUS_NOT_POLYGON
            reason_nb[i] = (
                f"Tomten er et {geom.geom_type}-objekt uten areal; tegn den som polygon "
                "for å beregne kapasitet"
            )
            reason_en[i] = (
                f"The plot is a {geom.geom_type} without area; draw it as a polygon to "
                "compute its capacity"
            )
            continue
        n, layout = _layout_one(poly, settings)
        units[i] = n
        layouts[i] = layout
        if n < settings.min_units_per_site:
            status[i] = STATUS_TOO_SMALL
            reason_nb[i], reason_en[i] = _reasons_too_small(n, settings)

    return pd.DataFrame(
        {
            "capacity_units": units,
            "layout": gpd.GeoSeries(layouts, index=plots.index, crs=plots.crs),
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
