"""Candidate cells for screening: a regular grid cut to the land where a house could stand.

The grid is aligned to whole multiples of the cell size in the local metric CRS, so the
cells of two runs (or two areas) with the same cell size coincide, and each cell is named
by its lower-left corner: ``E262350N6649100``.

A cell keeps only its *buildable land*: the cell minus

* buildings (any ``building=*`` except ``no``, plus the scenario's ``dwellings`` layer),
  and around every dwelling the distance the scenario's exclusions demand (``dwelling_dist_m``
  below 10 m excludes a plot by default: :func:`dwelling_clearance`), so that a candidate is
  not excluded merely for touching the garden of the house next door;
* water (``natural=water``, ``water=*``, ``waterway=riverbank/dock``, ``landuse=reservoir/
  basin``) and the sea (found from ``natural=coastline`` ways, see :mod:`screen_sea`);
* roads, each buffered by a half-width for its class (:data:`ROAD_HALF_WIDTH_M`); roads in
  tunnels do not take land;
* railway and tram lines (:data:`RAIL_HALF_WIDTH_M`), not in tunnels;
* the scenario's ``industrial`` layer (industrial land is a hard exclusion in the ranking);
* parks, playgrounds, allotments, protected nature, cemeteries and sports grounds
  (:data:`OTHER_UNBUILDABLE`).

The measured candidate ("plot") of a cell is that buildable land, not the whole square:
the unit layout, the distance to the nearest dwelling and every other metric are then those
of the land a house could actually stand on. A cell whose buildable land is smaller than
one unit's footprint is not a candidate. With a terrain model, cells whose buildable land
has a mean slope above :data:`MAX_SLOPE_DEG` are not candidates either.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from sitefinder.errors import InputError
from sitefinder.progress import progress

if TYPE_CHECKING:
    from sitefinder.capacity import CapacitySettings
    from sitefinder.config import Scenario
    from sitefinder.layers import LayerSet
    from sitefinder.sources.osm import OsmData

#: Half the width of the land a road takes, by ``highway`` class, in metres (carriageway,
#: verge and pavement). Assumption: typical Norwegian cross sections (Statens vegvesen
#: N100 classes), rounded up. Classes not listed take no land (proposed, construction).
ROAD_HALF_WIDTH_M: dict[str, float] = {
    "motorway": 15.0, "trunk": 12.0, "primary": 10.0, "secondary": 8.0, "tertiary": 6.0,
    "motorway_link": 6.0, "trunk_link": 6.0, "primary_link": 5.0, "secondary_link": 5.0,
    "tertiary_link": 4.0, "unclassified": 4.0, "residential": 4.0, "living_street": 3.0,
    "service": 3.0, "pedestrian": 4.0, "busway": 4.0, "road": 4.0,
    "track": 2.0, "cycleway": 2.0, "footway": 1.5, "path": 1.0, "bridleway": 1.5,
    "steps": 1.5, "platform": 2.0,
}
#: Half the width a railway line takes (track bed and clearance), by ``railway`` value.
RAIL_HALF_WIDTH_M: dict[str, float] = {
    "rail": 6.0, "light_rail": 4.0, "subway": 4.0, "narrow_gauge": 4.0, "tram": 3.0,
    "monorail": 3.0, "funicular": 3.0, "preserved": 4.0,
}
#: Land that is not for a house though neither built nor water (key → values): public
#: parks and playgrounds, allotments, protected nature, cemeteries, sports grounds and
#: military land are regulated for their own use, and a screening that proposes a house in
#: the middle of the city park helps no planner. Forest and private gardens stay
#: candidates. Assumption; change it with ``ScreenSettings.other_unbuildable``.
OTHER_UNBUILDABLE: dict[str, tuple[str, ...]] = {
    "landuse": ("cemetery", "railway", "military", "reservoir", "basin", "recreation_ground",
                "village_green", "allotments"),
    "amenity": ("grave_yard",),
    "leisure": ("park", "playground", "dog_park", "nature_reserve", "pitch", "stadium",
                "track", "swimming_pool"),
    "boundary": ("protected_area", "national_park"),
}
#: Mean slope of a cell's buildable land above which no house is planned there (about
#: 1:2.7). Same number as the slope criterion's "unacceptable" (assumption).
MAX_SLOPE_DEG = 20.0
#: Cell sizes outside this range are refused: below, a cell holds no unit; above, a cell
#: is no longer a plot (plots over 5 ha are ``too_large``).
MIN_CELL_M, MAX_CELL_M = 10.0, 200.0
#: Most grid cells one screening considers (the whole of Oslo at 50 m is 182,000).
MAX_CELLS = 250_000


@dataclass(frozen=True)
class ScreenSettings:
    """How candidate cells are made and which of them form the best areas.

    Attributes
    ----------
    cell_size_m : float
        Edge of a grid cell in metres (default 50).
    min_buildable_m2 : float or None
        Least buildable land for a cell to be a candidate; None: one unit's footprint
        under the scenario's capacity settings (6 m × 8.5 m by default).
    building_clearance_m : float
        Land kept free around every building (0: only the footprint itself).
    max_slope_deg : float
        Mean slope above which a cell is not buildable (only with a terrain model).
    max_cells : int
        Most grid cells considered; more are refused with advice.
    best_share : float
        Share of the ranked cells, by score, that can form best areas (0.1: top decile).
    best_min_score : float or None
        Instead of ``best_share``: every ranked cell with at least this score.
    road_half_width_m, rail_half_width_m : dict
        Land taken by roads and railways, by class (see the module constants).
    other_unbuildable : dict
        OSM key → values of other land that is not for a house (parks, cemeteries …).
    """

    cell_size_m: float = 50.0
    min_buildable_m2: float | None = None
    building_clearance_m: float = 0.0
    max_slope_deg: float = MAX_SLOPE_DEG
    max_cells: int = MAX_CELLS
    best_share: float = 0.1
    best_min_score: float | None = None
    road_half_width_m: dict[str, float] = field(default_factory=lambda: dict(ROAD_HALF_WIDTH_M))
    rail_half_width_m: dict[str, float] = field(default_factory=lambda: dict(RAIL_HALF_WIDTH_M))
    other_unbuildable: dict[str, tuple[str, ...]] = field(
        default_factory=lambda: dict(OTHER_UNBUILDABLE))

    def check(self) -> None:
        """Refuse settings that cannot give a meaningful screening.

        Raises
        ------
        InputError
            Cell size outside 10–200 m, or a best-area share outside (0, 1].
        """
        size = self.cell_size_m
        if not (isinstance(size, int | float) and math.isfinite(size)) or size <= 0:
            raise InputError(
                f"the cell size must be a positive number of metres, not {size!r}",
                where="--cell-size", hint="Use e.g. --cell-size 50",
            )
        if size < MIN_CELL_M or size > MAX_CELL_M:
            raise InputError(
                f"a cell size of {size:g} m is outside {MIN_CELL_M:g}–{MAX_CELL_M:g} m: "
                "smaller cells hold no house, larger ones are no longer plots",
                where="--cell-size", hint="Use a cell size between 25 and 100 m (default 50)",
            )
        if not 0 < self.best_share <= 1:
            raise InputError(
                f"the share of cells in the best areas must be in (0, 1], not "
                f"{self.best_share!r}", where="best_share", hint="Use e.g. 0.1 (top decile)",
            )

    def as_dict(self) -> dict:
        """The settings as plain values (for the manifest)."""
        return {
            "cell_size_m": self.cell_size_m, "min_buildable_m2": self.min_buildable_m2,
            "building_clearance_m": self.building_clearance_m,
            "max_slope_deg": self.max_slope_deg, "max_cells": self.max_cells,
            "best_share": self.best_share, "best_min_score": self.best_min_score,
            "road_half_width_m": self.road_half_width_m,
            "rail_half_width_m": self.rail_half_width_m,
            "other_unbuildable": {k: list(v) for k, v in self.other_unbuildable.items()},
        }


@dataclass(frozen=True)
class Grid:
    """The regular grid of a screening, aligned to multiples of the cell size.

    Attributes
    ----------
    x0, y_top : float
        Left and top edge (local CRS, metres).
    size : float
        Cell edge in metres.
    n_cols, n_rows : int
        Columns (west → east) and rows (north → south).
    crs : CRS
        Local metric CRS.
    """

    x0: float
    y_top: float
    size: float
    n_cols: int
    n_rows: int
    crs: CRS

    @property
    def n_cells(self) -> int:
        """Cells in the grid's rectangle."""
        return self.n_cols * self.n_rows


def area_polygon(
    extent_lonlat: tuple[float, float, float, float],
    crs: CRS,
    *,
    area: str | Path | None = None,
    bbox: tuple[float, float, float, float] | None = None,
) -> shapely.Geometry:
    """The screened area in ``crs``: the extract's extent, cut to ``area`` or ``bbox``.

    Parameters
    ----------
    extent_lonlat : tuple
        The OSM extract's bounding box (west, south, east, north) in degrees.
    crs : CRS
        Local metric CRS.
    area : str or Path, optional
        A polygon file (any CRS), e.g. the municipality boundary.
    bbox : tuple, optional
        West, south, east, north in degrees.

    Raises
    ------
    InputError
        The area file is missing, unreadable, has no CRS, holds no polygon, lies outside
        its own CRS's valid range, or does not overlap the extract.
    """
    extent = gpd.GeoSeries([shapely.box(*extent_lonlat)], crs=4326).to_crs(crs).iloc[0]
    if area is not None:
        wanted, where, path = _read_area(Path(area), crs), "--area", Path(area)
    elif bbox is not None:
        wanted, where, path = _bbox_polygon(bbox, crs), "--bbox", None
    else:
        return extent
    inside = shapely.intersection(extent, wanted)
    if inside.is_empty or inside.area < 1.0:
        raise InputError(
            "the area does not overlap the OpenStreetMap extract "
            f"(extract: {_lonlat_text(extent_lonlat)})",
            path=path, where=where,
            hint="Give an area inside the extract, or an extract (--osm) that covers the area",
        )
    return inside


def _lonlat_text(b: tuple[float, float, float, float]) -> str:
    return f"{b[0]:.4f},{b[1]:.4f},{b[2]:.4f},{b[3]:.4f} (W,S,E,N)"


def _bbox_polygon(bbox: tuple[float, float, float, float], crs: CRS) -> shapely.Geometry:
    west, south, east, north = bbox
    if not (-180 <= west < east <= 180 and -90 <= south < north <= 90):
        raise InputError(
            f"the bounding box {west:g},{south:g},{east:g},{north:g} is not "
            "west,south,east,north in degrees with west < east and south < north",
            where="--bbox", hint="E.g. --bbox 10.72,59.90,10.78,59.94",
        )
    return gpd.GeoSeries([shapely.box(*bbox)], crs=4326).to_crs(crs).iloc[0]


def _read_area(path: Path, crs: CRS) -> shapely.Geometry:
    from sitefinder.layers import read_layer_file_any

    if not path.exists():
        raise InputError("the area file does not exist", path=path, where="--area",
                         hint="Check the path, e.g. --area data/oslo_kommune.geojson")
    frame = read_layer_file_any(path, "area")
    polygons = frame[frame.geometry.geom_type.isin(["Polygon", "MultiPolygon"])]
    if polygons.empty:
        raise InputError(
            "the area file holds no polygon", path=path, where="--area",
            hint="Give a file with the boundary of the area as a polygon",
        )
    _check_area_crs(polygons, path)
    return shapely.make_valid(polygons.to_crs(crs).union_all())


def _check_area_crs(frame: gpd.GeoDataFrame, path: Path) -> None:
    """Refuse coordinates that cannot be in the file's declared CRS (wrong CRS set)."""
    bounds = frame.total_bounds
    valid = frame.crs.area_of_use
    if frame.crs.is_geographic:
        outside = bounds[0] < -180 or bounds[2] > 180 or bounds[1] < -90 or bounds[3] > 90
    else:
        lonlat = frame.to_crs(4326).total_bounds
        outside = not np.all(np.isfinite(lonlat))
        if valid is not None and not outside:
            margin = 5.0  # degrees: a municipality may reach a little outside a UTM zone
            outside = (lonlat[0] < valid.west - margin or lonlat[2] > valid.east + margin
                       or lonlat[1] < valid.south - margin or lonlat[3] > valid.north + margin)
    if outside:
        raise InputError(
            f"the coordinates of the area ({bounds[0]:.6g} … {bounds[2]:.6g}, "
            f"{bounds[1]:.6g} … {bounds[3]:.6g}) cannot be in its declared CRS "
            f"{frame.crs.to_string()}",
            path=path, where="--area",
            hint="Set the file's correct CRS in QGIS (Layer properties → Source) and save again",
        )


def make_grid(area: shapely.Geometry, crs: CRS, settings: ScreenSettings) -> Grid:
    """The grid over ``area``'s bounding box, aligned to multiples of the cell size.

    Parameters
    ----------
    area : shapely geometry
        The screened area in ``crs``.
    crs : CRS
        Local metric CRS.
    settings : ScreenSettings
        Supplies the cell size and the most cells allowed.

    Returns
    -------
    Grid

    Raises
    ------
    InputError
        More cells than ``settings.max_cells``.
    """
    size = float(settings.cell_size_m)
    minx, miny, maxx, maxy = area.bounds
    x0, y0 = math.floor(minx / size) * size, math.floor(miny / size) * size
    n_cols = max(1, math.ceil((maxx - x0) / size))
    n_rows = max(1, math.ceil((maxy - y0) / size))
    grid = Grid(x0, y0 + n_rows * size, size, n_cols, n_rows, crs)
    if grid.n_cells > settings.max_cells:
        needed = math.ceil(size * math.sqrt(grid.n_cells / settings.max_cells))
        raise InputError(
            f"{grid.n_cells:,} cells of {size:g} m over this area are more than the "
            f"{settings.max_cells:,} one screening takes",
            where="--cell-size",
            hint=f"Use --cell-size {needed} or larger, or screen a smaller --area or --bbox "
            "(e.g. one district at a time)",
        )
    return grid


def grid_cells(grid: Grid, area: shapely.Geometry) -> gpd.GeoDataFrame:
    """Every cell of ``grid`` that overlaps ``area``, cut to the area.

    Parameters
    ----------
    grid : Grid
    area : shapely geometry
        The screened area in the grid's CRS.

    Returns
    -------
    GeoDataFrame
        ``plot_id`` (``E<x>N<y>`` of the lower-left corner), ``col``, ``row``, ``cell_m2``
        (the whole square) and the cell (cut to the area) as geometry.
    """
    cols, rows = np.meshgrid(np.arange(grid.n_cols), np.arange(grid.n_rows))
    cols, rows = cols.ravel(), rows.ravel()
    left = grid.x0 + cols * grid.size
    bottom = grid.y_top - (rows + 1) * grid.size
    boxes = shapely.box(left, bottom, left + grid.size, bottom + grid.size)
    shapely.prepare(area)
    keep = shapely.intersects(area, boxes)
    boxes, cols, rows = boxes[keep], cols[keep], rows[keep]
    left, bottom = left[keep], bottom[keep]
    inside = shapely.contains(area, boxes)
    cut = np.where(inside, boxes, shapely.intersection(boxes, area))
    ids = [f"E{x:.0f}N{y:.0f}" for x, y in zip(left, bottom, strict=True)]
    return gpd.GeoDataFrame(
        {"plot_id": ids, "col": cols, "row": rows, "cell_m2": grid.size**2},
        geometry=cut, crs=grid.crs,
    )


def dwelling_clearance(scenario: Scenario) -> float:
    """Land kept free around dwellings: the largest ``dwelling_dist_m`` below-exclusion.

    A small margin is added because a buffer is a polygon drawn just inside the true
    circle: without it, a corner of the cut land could measure 9.99 m and be excluded.

    >>> from sitefinder.config import default_scenario
    >>> dwelling_clearance(default_scenario())
    10.5
    """
    limits = [e.below for e in scenario.exclusions
              if e.metric == "dwelling_dist_m" and e.below is not None]
    return max(limits) + _CLEARANCE_MARGIN_M if limits else 0.0


_CLEARANCE_MARGIN_M = 0.5


def obstacles(
    osm: OsmData,
    layers: LayerSet,
    crs: CRS,
    settings: ScreenSettings,
    dwelling_clearance_m: float = 0.0,
) -> gpd.GeoDataFrame:
    """Land where no house can stand, from the OSM extract and the scenario's layers.

    Parameters
    ----------
    osm : sitefinder.sources.osm.OsmData
    layers : sitefinder.layers.LayerSet
        Supplies ``dwellings`` and ``industrial`` (the scenario's own, possibly edited).
    crs : CRS
    settings : ScreenSettings
    dwelling_clearance_m : float
        Land kept free around each dwelling (:func:`dwelling_clearance`).

    Returns
    -------
    GeoDataFrame
        ``kind`` (building, near_dwelling, water, road, railway, industrial, other) and
        the polygon.
    """
    from sitefinder.screen_sea import sea_polygons

    areas = osm.areas.to_crs(crs)
    lines = osm.lines.to_crs(crs)
    parts = [
        _buildings(areas, layers, settings.building_clearance_m),
        ("near_dwelling", _near_dwellings(layers, dwelling_clearance_m)),
        ("water", areas.geometry[_water_mask(areas)].to_numpy()),
        ("water", sea_polygons(osm.path, crs, osm.bounds)),
        ("road", _buffered(lines, "highway", settings.road_half_width_m)),
        ("railway", _buffered(lines, "railway", settings.rail_half_width_m)),
        ("industrial", _layer_polygons(layers, "industrial")),
        ("other", areas.geometry[_tag_mask(areas, settings.other_unbuildable)].to_numpy()),
    ]
    kinds, geoms = [], []
    for kind, g in parts:
        g = np.asarray(g, dtype=object)
        g = g[~(shapely.is_missing(g) | shapely.is_empty(g))]
        kinds.extend([kind] * len(g))
        geoms.extend(g)
    return gpd.GeoDataFrame({"kind": kinds}, geometry=shapely.make_valid(np.array(geoms)),
                            crs=crs)


def _buildings(areas: gpd.GeoDataFrame, layers: LayerSet, clearance: float):
    built = areas["building"].notna() & (areas["building"] != "no")
    geoms = np.concatenate([areas.geometry[built].to_numpy(),
                            _layer_polygons(layers, "dwellings")])
    return "building", _buffer_at_least(geoms, clearance) if clearance > 0 else geoms


def _near_dwellings(layers, clearance: float) -> np.ndarray:
    if clearance <= 0:
        return np.array([], dtype=object)
    return _buffer_at_least(_layer_polygons(layers, "dwellings"), clearance)


_QUAD_SEGS = 8


def _buffer_at_least(geoms: np.ndarray, distance) -> np.ndarray:
    """Buffers that reach at least ``distance`` everywhere.

    A buffer's round parts are polygons drawn inside the true circle (up to 2 % short with
    8 segments per quarter), and GEOS simplifies the input line by 1 % of the distance
    first; widening the radius by 1/cos(π/32) + 1 % makes up for both, so "half-width
    free" holds to the centimetre.
    """
    scale = 1 / math.cos(math.pi / (4 * _QUAD_SEGS)) + 0.01
    return shapely.buffer(geoms, np.asarray(distance) * scale, quad_segs=_QUAD_SEGS)


def _layer_polygons(layers, name: str) -> np.ndarray:
    if name not in layers.frames:
        return np.array([], dtype=object)
    geoms = layers[name].geometry.to_numpy()
    return geoms[np.isin(shapely.get_type_id(geoms), [3, 6])]  # polygons only


def _water_mask(areas: gpd.GeoDataFrame) -> np.ndarray:
    water = areas["natural"].isin(["water", "bay", "strait"]) | areas["water"].notna()
    water |= areas["waterway"].isin(["riverbank", "dock", "canal", "river"])
    return water.to_numpy()


def _tag_mask(frame: gpd.GeoDataFrame, tags: dict[str, tuple[str, ...]]) -> np.ndarray:
    mask = np.zeros(len(frame), dtype=bool)
    for key, values in tags.items():
        if key in frame.columns:
            mask |= frame[key].isin(values).to_numpy()
    return mask


def _buffered(lines: gpd.GeoDataFrame, key: str, half_width: dict[str, float]) -> np.ndarray:
    """Lines of ``key`` buffered by their class's half-width; tunnels take no land."""
    width = lines[key].map(half_width).astype(float)
    tunnel = lines["tunnel"].isin(["yes", "building_passage", "culvert", "covered"])
    keep = (width > 0) & ~tunnel
    if "layer" in lines.columns:
        # Below ground (layer=-1 …) without a tunnel tag: still not on the surface.
        level = pd.to_numeric(lines["layer"], errors="coerce")
        keep &= ~(level < 0)
    geoms = lines.geometry[keep].to_numpy()
    # Round ends: a dead end still needs its turning space, and a way that ends at a
    # junction is covered by the next one anyway.
    return _buffer_at_least(geoms, width[keep].to_numpy())


def buildable_land(
    cells: gpd.GeoDataFrame, blocked: gpd.GeoDataFrame, min_m2: float
) -> gpd.GeoDataFrame:
    """``cells`` cut to their buildable land; cells with less than ``min_m2`` are dropped.

    Parameters
    ----------
    cells : GeoDataFrame
        From :func:`grid_cells`.
    blocked : GeoDataFrame
        From :func:`obstacles`.
    min_m2 : float
        Least buildable land a cell must keep.

    Returns
    -------
    GeoDataFrame
        The kept cells with their buildable land as geometry, plus ``buildable_m2`` and
        ``buildable_share`` (of the whole square).
    """
    geoms = blocked.geometry.to_numpy()
    boxes = cells.geometry.to_numpy()
    cell_idx, hit_idx = shapely.STRtree(geoms).query(boxes, predicate="intersects")
    # Each obstacle cut to the cell first: the union per cell is then of small pieces,
    # not of whole streets and parks (ten times faster on a city extract).
    pieces = shapely.intersection(geoms[hit_idx], boxes[cell_idx])
    order = np.argsort(cell_idx, kind="stable")
    cell_idx, pieces = cell_idx[order], pieces[order]
    bounds = np.searchsorted(cell_idx, np.arange(len(cells) + 1))
    covers = np.empty(len(cells), dtype=object)
    for i in progress(range(len(cells)), "buildable land", total=len(cells)):
        covers[i] = shapely.union_all(pieces[bounds[i]:bounds[i + 1]])
    # On a 1 cm grid, so that edges of a cell and of an obstacle cut along it coincide
    # instead of leaving hairline slivers of "buildable" land inside the obstacle.
    land = shapely.difference(boxes, covers, grid_size=_GRID_M)
    cut = np.array([_polygonal(g) for g in land], dtype=object)
    area = shapely.area(cut)
    out = cells.set_geometry(cut)
    out["buildable_m2"] = area
    out["buildable_share"] = area / cells["cell_m2"].to_numpy()
    return out[area >= min_m2].reset_index(drop=True)


_GRID_M = 0.01
#: Pieces of buildable land smaller than this are slivers between obstacles, not land.
_SLIVER_M2 = 1.0


def _polygonal(geom: shapely.Geometry) -> shapely.Geometry:
    """Only the polygons of ``geom`` that are more than slivers."""
    parts = [g for g in shapely.get_parts(geom)
             if g.geom_type == "Polygon" and g.area >= _SLIVER_M2]
    if not parts:
        return shapely.Polygon()
    return parts[0] if len(parts) == 1 else shapely.MultiPolygon(parts)


def room_for_a_unit(cells: gpd.GeoDataFrame, capacity: CapacitySettings) -> np.ndarray:
    """False for cells whose land cannot hold one unit under the capacity settings.

    A unit stands ``setback_m`` inside the plot's edge and is ``unit_width_m`` wide, so
    the land shrunk by the setback plus half the width must keep some area. This is a
    necessary condition only (half a metre is left as slack for the layout's own corner
    handling): a cell that passes may still be laid out as ``too_small``, a cell that
    fails never takes a unit, and measuring it would be wasted.
    """
    depth = max(capacity.setback_m + capacity.unit_width_m / 2 - _ROOM_SLACK_M, 0.0)
    shrunk = shapely.buffer(cells.geometry.to_numpy(), -depth)
    return ~(shapely.is_empty(shrunk) | (shapely.area(shrunk) <= 0))


_ROOM_SLACK_M = 0.5


def steep_cells(cells: gpd.GeoDataFrame, dem: str | Path, max_slope_deg: float,
                work_dir: str | Path) -> np.ndarray:
    """True for cells whose buildable land has a mean slope above ``max_slope_deg``.

    Parameters
    ----------
    cells : GeoDataFrame
        Candidate cells (any CRS).
    dem : str or Path
        Terrain model (see :func:`sitefinder.terrain.slope`).
    max_slope_deg : float
        Steepest mean slope still buildable.
    work_dir : str or Path
        Where the slope raster is written.

    Returns
    -------
    numpy.ndarray of bool
        Cells outside the terrain model (no slope known) are not called steep.
    """
    from sitefinder.sources.raster import zonal_stats
    from sitefinder.terrain import slope

    slope_path = slope(dem, Path(work_dir) / f"slope_{Path(dem).stem}.tif")
    mean = zonal_stats(cells.geometry, slope_path, "mean")
    values = pd.to_numeric(mean.iloc[:, 0], errors="coerce").to_numpy(dtype=float)
    return np.nan_to_num(values, nan=0.0) > max_slope_deg
