"""Zonal statistics of any GDAL raster over plot geometries.

A raster criterion (official noise map, slope, population, ...) turns the pixels under a
plot into one number per plot. This module does that with three guarantees:

* **Windowed reads.** Plots are grouped by where they lie; each group is read as one
  window (the union of its plots' bounding boxes, about :data:`BLOCK_PIXELS` a side), so
  a national-size raster (or a VRT over thousands of tiles) is never loaded whole, and
  10,000 plots cost a handful of reads, not 10,000. The values under each plot are then
  picked from the block by numpy indexing, and the statistics of all plots are computed
  together.
* **Correct CRS handling.** The plot geometries are reprojected to the raster's CRS (cheaper
  and exact, unlike resampling the raster). Pixel columns/rows come from the raster's affine
  transform, which rasterio always expresses in x = easting/longitude order, so CRSs whose
  official axis order is north-east (e.g. EPSG:3045) are handled correctly.
* **Area-correct statistics.** Each pixel is weighted by the share of its area the plot
  covers (exact polygon-box intersection), so a 30 m plot on a 250 m raster gets a value and
  a plot's edge pixels count by their covered area. For a raster in geographic coordinates
  the weight of a mean, maximum, percentile or share is also scaled by cos(latitude), since
  such pixels shrink towards the pole; a ``sum`` is not (a count raster holds residents per
  pixel, whatever the pixel's size, so a pixel counts by the share of it that is covered).
  The covered areas of all plots' pixels are computed at once with numpy from the
  plots' outlines (see :func:`_coverage_fractions`), equal to the areas of
  pixel-box ∩ plot intersections to about 1e-9 of a pixel.
  Above :data:`EXACT_PIXEL_LIMIT` pixels per window the weights fall back to "pixel centre
  inside the plot" (rasterio's rasterisation rule): with that many pixels the edge error is
  negligible and exact intersection would only cost time.

A plot the raster does not cover, or covers only with nodata, gets a status and a reason in
bokmål and English instead of a number; nothing is dropped. A raster that cannot be read
(not a raster, truncated, damaged) is an :class:`~sitefinder.errors.InputError` naming the
file; :func:`check_rasters` finds that, and a raster that misses every plot, before any
measuring.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
import shapely
from rasterio.errors import RasterioError
from rasterio.features import geometry_mask
from rasterio.windows import Window, from_bounds
from rasterio.windows import transform as window_transform

from sitefinder.errors import InputError

# The settings live in the light module, so the scenario validates without geodata
# libraries; re-exported here, where they have always been imported from.
from sitefinder.settings import RasterCriterionSource, Statistic  # noqa: F401

#: Above this many pixels in a plot's window, weights use pixel centres instead of exact
#: polygon-pixel intersection areas (see module docstring).
EXACT_PIXEL_LIMIT = 40_000
#: Plots whose windows start in the same square of this many pixels a side are read as one
#: window (see :func:`zonal_stats_bands`); memory per band stays about this size squared.
BLOCK_PIXELS = 1024
#: At most this many plots per block, which bounds the table of their pixels.
BLOCK_ZONES = 20_000
#: Covered shares (of a pixel) below this are rounding noise of an edge on a pixel line.
SLIVER = 1e-9
#: Pixel-plot intersections computed per GEOS call (bounds the boxes held at once).
WEIGHT_CHUNK = 200_000
#: :func:`check_rasters` reads a raster up to this many pixels whole; a larger one only
#: in the windows the plots will be measured in.
CHECK_WHOLE_PIXEL_LIMIT = 16_000_000

STATUS_OK = "ok"
STATUS_NO_COVERAGE = "no_coverage"
STATUS_NO_DATA = "no_data"
STATUS_EMPTY_GEOMETRY = "empty_geometry"

_REASONS: dict[str, tuple[str, str]] = {
    STATUS_NO_COVERAGE: (
        "Rasteret {name} dekker ikke tomta.",
        "The raster {name} does not cover the plot.",
    ),
    STATUS_NO_DATA: (
        "Rasteret {name} har verdier for bare {pct:.0f} % av tomta (krav: {need:.0f} %).",
        "The raster {name} has values for only {pct:.0f} % of the plot (required: {need:.0f} %).",
    ),
    STATUS_EMPTY_GEOMETRY: (
        "Tomta mangler geometri.",
        "The plot has no geometry.",
    ),
}


def zonal_stats(
    geometries: gpd.GeoSeries,
    raster: str | Path,
    statistic: Statistic = "mean",
    *,
    q: float | None = None,
    threshold: float | None = None,
    band: int = 1,
    units: gpd.GeoSeries | None = None,
    min_coverage: float = 0.5,
    nodata_as: float | None = None,
) -> pd.DataFrame:
    """Compute one statistic of a raster over each geometry.

    Parameters
    ----------
    geometries : geopandas.GeoSeries
        Plot geometries with a CRS (any; they are reprojected to the raster's CRS).
    raster : str or Path
        Path to any raster GDAL can open.
    statistic : {"mean", "max", "percentile", "share_above", "sum"}
        Area-weighted mean; maximum over pixels the geometry touches; area-weighted
        percentile ``q``; share (0-1) of the valid area with value >= ``threshold``; or
        area-weighted sum (for count rasters).
    q : float, optional
        Percentile 0-100, required for ``"percentile"``.
    threshold : float, optional
        Required for ``"share_above"``.
    band : int, default 1
        1-based band number.
    units : geopandas.GeoSeries, optional
        A second geometry set, e.g. planned unit footprints, whose index holds the label of
        the plot each unit belongs to (repeated labels allowed). Plots with units are
        measured over the union of their units; others over the whole plot.
    min_coverage : float, default 0.5
        Share of the geometry's area that must have valid pixels to get a number.
    nodata_as : float, optional
        Replace nodata inside the raster extent by this value (see
        :class:`RasterCriterionSource`).

    Returns
    -------
    pandas.DataFrame
        Aligned with ``geometries.index``; columns ``value`` (float, NaN unless status is
        ``"ok"``), ``coverage`` (share of the area with valid data), ``zone``
        (``"plot"`` or ``"units"``), ``status`` (``ok``, ``no_coverage``, ``no_data``,
        ``empty_geometry``), ``reason_nb`` and ``reason_en`` ("" when ok).

    Raises
    ------
    sitefinder.errors.InputError
        The raster cannot be opened, has no CRS, is rotated, or lacks the band; or the
        geometries have no CRS.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> plots = gpd.GeoSeries([shapely.box(-25000, 6674500, -24900, 6674600)], crs=3045)
    >>> out = zonal_stats(plots, "tests/data/dtm_10.tif", "max")
    >>> out.loc[0, "status"]
    'ok'

    """
    return zonal_stats_bands(
        geometries, raster, statistic, bands=(band,), q=q, threshold=threshold,
        units=units, min_coverage=min_coverage, nodata_as=nodata_as,
    )[band]


def zonal_stats_bands(
    geometries: gpd.GeoSeries,
    raster: str | Path,
    statistic: Statistic = "mean",
    *,
    bands: Sequence[int] = (1,),
    q: float | None = None,
    threshold: float | None = None,
    units: gpd.GeoSeries | None = None,
    min_coverage: float = 0.5,
    nodata_as: float | None = None,
) -> dict[int, pd.DataFrame]:
    """:func:`zonal_stats` of several bands of one raster, sharing the pixel weights.

    The raster is read once per block of nearby plots (not once per plot), and each
    pixel's covered share is computed once for all bands (e.g. road and rail noise).

    Parameters
    ----------
    geometries, raster, statistic, q, threshold, units, min_coverage, nodata_as
        As :func:`zonal_stats`.
    bands : sequence of int, default (1,)
        1-based band numbers.

    Returns
    -------
    dict of int to pandas.DataFrame
        Band number → the table :func:`zonal_stats` returns for that band.

    Raises
    ------
    sitefinder.errors.InputError
        As :func:`zonal_stats`.
    """
    if statistic == "percentile" and q is None:
        raise ValueError("statistic 'percentile' needs q")
    if statistic == "share_above" and threshold is None:
        raise ValueError("statistic 'share_above' needs threshold")
    if geometries.crs is None:
        raise InputError(
            "the plot geometries have no coordinate reference system",
            hint="Set the CRS of the plot layer before computing raster criteria",
        )
    zones, zone_kind = _zones(geometries, units)
    path = Path(raster)
    src = _open(path)
    with src:
        for band in bands:
            _check_raster(src, band, path)
        # Equal CRSs transform as a no-op: skip the copy of every coordinate.
        local = zones if zones.crs == src.crs else zones.to_crs(src.crs)
        # Pixel areas shrink towards the pole, which matters for averages; a count raster's
        # pixel holds its count whatever its area (see module docstring).
        geographic = src.crs.is_geographic and statistic != "sum"
        request = _Request(statistic, q, threshold, tuple(bands), nodata_as, geographic)
        try:
            measured = _measure(src, np.asarray(local.array, dtype=object), request)
        except RasterioError as exc:
            raise _unreadable(path, exc) from None
    return {
        band: _result_frame(*measured[band], min_coverage, path.name, zone_kind, geometries.index)
        for band in bands
    }



def zonal_stats_from_source(
    geometries: gpd.GeoSeries,
    source: RasterCriterionSource,
    units: gpd.GeoSeries | None = None,
) -> pd.DataFrame:
    """Run :func:`zonal_stats` with the settings of a :class:`RasterCriterionSource`.

    Parameters
    ----------
    geometries : geopandas.GeoSeries
        Plot geometries.
    source : RasterCriterionSource
        Validated settings.
    units : geopandas.GeoSeries, optional
        Unit layouts (used only when ``source.over == "units"``).

    Returns
    -------
    pandas.DataFrame
        As :func:`zonal_stats`.

    """
    return zonal_stats(
        geometries,
        source.path,
        source.statistic,
        q=source.q,
        threshold=source.threshold,
        band=source.band,
        units=units if source.over == "units" else None,
        min_coverage=source.min_coverage,
        nodata_as=source.nodata_as,
    )


def _zones(
    geometries: gpd.GeoSeries, units: gpd.GeoSeries | None
) -> tuple[gpd.GeoSeries, np.ndarray]:
    """Return the geometry each plot is measured over, and which kind it is."""
    kind = np.full(len(geometries), "plot", dtype=object)
    if units is None or len(units) == 0:
        return geometries, kind.astype(str)
    if units.crs is None:
        raise InputError("the unit layout geometries have no coordinate reference system")
    units = units.to_crs(geometries.crs)
    unknown = ~units.index.isin(geometries.index)
    if unknown.any():
        labels = ", ".join(map(str, units.index[unknown].unique()[:5]))
        raise InputError(
            f"unit layouts refer to plots that do not exist: {labels}",
            hint="The index of the unit layout must hold the plot it belongs to",
        )
    merged = gpd.GeoDataFrame(geometry=units).dissolve(level=0).geometry
    zones = geometries.copy()
    has_units = geometries.index.isin(merged.index)
    zones[has_units] = merged.reindex(geometries.index[has_units]).to_numpy()
    kind[has_units] = "units"
    return zones, kind.astype(str)


def _open(path: Path, where: str | None = None) -> rasterio.DatasetReader:
    """Open a raster, or raise an InputError naming it."""
    if not path.is_file():
        raise InputError(
            "cannot open the raster: it does not exist", path=path, where=where,
            hint="Fix the path in the scenario (relative paths are read from the scenario's "
            "folder or the folder you run sitefinder in)",
        )
    try:
        return rasterio.open(path)
    except RasterioError as exc:
        raise InputError(
            f"cannot open the raster: the file is not a raster GDAL can read "
            f"({_first_line(exc)})",
            path=path,
            where=where,
            hint="Give a GeoTIFF (or another raster GDAL reads); open it in QGIS to check it",
        ) from None


def _unreadable(path: Path, exc: Exception, where: str | None = None) -> InputError:
    return InputError(
        f"the raster could not be read; it may be truncated or damaged ({_first_line(exc)})",
        path=path,
        where=where,
        hint="Copy or download the file again (check its size), or export it again from QGIS",
    )


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


#: Scenario files that are rasters, by the role :meth:`Scenario.input_files` gives them.
_RASTER_FIELDS = {
    "noise": "measure.noise.raster",
    "population": "measure.population.raster",
    "dem": "measure.slope.dem",
}


def check_rasters(
    files: Mapping[str, str | Path],
    plots: gpd.GeoDataFrame,
    *,
    margin_m: float = 500.0,
) -> None:
    """Check, before any measuring, that every raster can be read and overlaps the plots.

    Each raster is opened and its CRS and grid are checked; the pixels the plots will be
    measured from are read (the whole raster when it is small), so a text file, a
    truncated download or a damaged tile fails here, naming the file, and not after the
    network work. A raster whose extent misses every plot (by more than ``margin_m``)
    is refused as well: it is the wrong file or has the wrong CRS. A raster that covers
    only some plots is fine; the others get a per-plot reason when measured.

    Parameters
    ----------
    files : mapping of str to path
        Role → file, as :meth:`sitefinder.config.Scenario.input_files` returns them;
        roles ``noise``, ``population``, ``dem`` and ``raster:<name>`` are checked,
        others (GTFS, vector layers) are skipped.
    plots : geopandas.GeoDataFrame
        Plots with a CRS (and ``status``: only ``ok`` plots count for the overlap).
    margin_m : float, default 500
        Distance (metres in the plots' CRS) around the plots within which a raster
        counts as overlapping (a population buffer reaches beyond the plot).

    Raises
    ------
    sitefinder.errors.InputError
        A raster is missing, unreadable, has no CRS, is rotated, or misses every plot.
    """
    boxes = _plot_boxes(plots, margin_m)
    for role, raw_path in files.items():
        if role in _RASTER_FIELDS:
            where = _RASTER_FIELDS[role]
        elif role.startswith("raster:"):
            where = f"measure.rasters.{role.split(':', 1)[1]}.path"
        else:
            continue
        path = Path(raw_path)
        with _open(path, where) as src:
            _check_raster(src, 1, path)
            windows = _overlap_windows(src, boxes, path, where)
            try:
                if src.width * src.height <= CHECK_WHOLE_PIXEL_LIMIT:
                    windows = [w for _, w in src.block_windows(1)]
                for window in windows:
                    src.read(1, window=window)
            except RasterioError as exc:
                raise _unreadable(path, exc, where) from None


def _plot_boxes(plots: gpd.GeoDataFrame, margin_m: float) -> gpd.GeoSeries:
    """Bounding boxes of the usable plots, widened by ``margin_m``."""
    geoms = plots.geometry
    usable = ~(geoms.isna() | geoms.is_empty)
    if "status" in plots.columns:
        usable &= plots["status"] == STATUS_OK  # same word as a plot's ok
    geoms = geoms[usable]
    boxes = shapely.box(*shapely.bounds(geoms.to_numpy()).T)
    return gpd.GeoSeries(shapely.buffer(boxes, margin_m, join_style="mitre"), crs=plots.crs)


def _overlap_windows(
    src: rasterio.DatasetReader, boxes: gpd.GeoSeries, path: Path, where: str
) -> list[Window]:
    """Pixel windows of the plot boxes inside the raster; refuse when there is none."""
    if len(boxes) == 0:
        return []
    local = boxes.to_crs(src.crs)
    rb = src.bounds
    windows = []
    for left, bottom, right, top in shapely.bounds(local.to_numpy()):
        if not np.isfinite([left, bottom, right, top]).all():
            continue
        if right <= rb.left or left >= rb.right or top <= rb.bottom or bottom >= rb.top:
            continue
        window = _clipped_window(src, (left, bottom, right, top))
        if window is not None:
            windows.append(window)
    if not windows:
        plots_box = ", ".join(f"{v:.0f}" for v in boxes.total_bounds)
        raster_box = ", ".join(f"{v:.6g}" for v in rb)
        raise InputError(
            f"the raster does not overlap any of the plots (raster extent {raster_box} in "
            f"{src.crs.to_string()}; plots within {plots_box} in {boxes.crs.to_string()})",
            path=path,
            where=where,
            hint="Check that it is the raster for this area and that its CRS is right "
            "(gdalinfo or QGIS shows both)",
        )
    return windows


def _check_raster(src: rasterio.DatasetReader, band: int, path: Path) -> None:
    if src.crs is None:
        raise InputError(
            "the raster has no coordinate reference system",
            path=path,
            hint="Assign one, e.g. gdal_edit.py -a_srs EPSG:25833 <file>",
        )
    if not src.transform.is_rectilinear:
        raise InputError(
            "the raster is rotated or sheared",
            path=path,
            hint="Warp it to a north-up grid with gdalwarp first",
        )
    if band > src.count:
        raise InputError(
            f"band {band} asked for, but the raster has {src.count} band(s)", path=path
        )


def _clipped_window(
    src: rasterio.DatasetReader, bounds: tuple[float, float, float, float]
) -> Window | None:
    """Pixel window of ``bounds`` (rounded outwards), clipped to the raster."""
    win = from_bounds(*bounds, transform=src.transform)
    col0 = int(np.floor(win.col_off + 1e-9))
    row0 = int(np.floor(win.row_off + 1e-9))
    col1 = int(np.ceil(win.col_off + win.width - 1e-9))
    row1 = int(np.ceil(win.row_off + win.height - 1e-9))
    col0, row0 = max(col0, 0), max(row0, 0)
    col1, row1 = min(max(col1, col0 + 1), src.width), min(max(row1, row0 + 1), src.height)
    if col1 <= col0 or row1 <= row0:
        return None
    return Window(col0, row0, col1 - col0, row1 - row0)


class _Request(NamedTuple):
    """What to compute, for :func:`_measure`."""

    statistic: Statistic
    q: float | None
    threshold: float | None
    bands: tuple[int, ...]
    nodata_as: float | None
    geographic: bool


def _result_frame(
    value: np.ndarray, coverage: np.ndarray, status: np.ndarray, min_coverage: float,
    name: str, zone_kind: np.ndarray, index: pd.Index,
) -> pd.DataFrame:
    """The per-plot table: too little valid data becomes ``no_data``, reasons in words."""
    status = status.copy()
    # Too little valid data: the number would describe a sliver, not the plot.
    status[(status == STATUS_OK) & (coverage < min_coverage)] = STATUS_NO_DATA
    value = np.where(status == STATUS_OK, value, np.nan)
    reason_nb = np.full(len(status), "", dtype=object)
    reason_en = np.full(len(status), "", dtype=object)
    for i in np.flatnonzero(status != STATUS_OK):
        nb, en = _REASONS[status[i]]
        fmt = {"name": name, "pct": 100 * np.nan_to_num(coverage[i]), "need": 100 * min_coverage}
        reason_nb[i] = nb.format(**fmt)
        reason_en[i] = en.format(**fmt)
    return pd.DataFrame(
        {
            "value": value,
            "coverage": coverage,
            "zone": zone_kind,
            "status": status.astype(str),
            "reason_nb": reason_nb,
            "reason_en": reason_en,
        },
        index=index,
    )


def _measure(
    src: rasterio.DatasetReader, geoms: np.ndarray, request: _Request
) -> dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(value, coverage, status) per band for geometries already in the raster's CRS."""
    n = len(geoms)
    geoms = _with_area(src, geoms)
    empty = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    empty[~empty] = shapely.area(geoms[~empty]) <= 0
    windows, covered = _zone_windows(src, geoms, ~empty)
    status = np.where(empty, STATUS_EMPTY_GEOMETRY, STATUS_NO_COVERAGE).astype(object)
    out = {
        band: (np.full(n, np.nan), np.zeros(n), status.copy()) for band in request.bands
    }
    todo = np.flatnonzero(covered)
    if todo.size == 0:
        return out
    area_px = _areas_in_pixels(geoms[todo], src.transform, request.geographic)
    for block in _blocks(windows[todo]):
        ids = todo[block]
        _measure_block(src, geoms[ids], windows[ids], area_px[block], request, ids, out)
    return out


def _with_area(src: rasterio.DatasetReader, geoms: np.ndarray) -> np.ndarray:
    """Geometries with area: a point plot becomes a square far smaller than a pixel.

    A point plot (CSV lat/lon) has no area; so it takes the value of the pixel it lies
    in. Other geometries are returned unchanged.
    """
    kind = shapely.get_type_id(geoms)
    points = (kind == 0) | (kind == 4)
    points[points] = ~shapely.is_empty(geoms[points])
    if not points.any():
        return geoms
    geoms = geoms.copy()
    centre = shapely.centroid(geoms[points])
    cx, cy = shapely.get_x(centre), shapely.get_y(centre)
    half = 0.005 * min(abs(src.transform.a), abs(src.transform.e))
    geoms[points] = shapely.box(cx - half, cy - half, cx + half, cy + half)
    return geoms


def _zone_windows(
    src: rasterio.DatasetReader, geoms: np.ndarray, usable: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Pixel windows (row0, col0, row1, col1) of the geometries' bounds, in the raster.

    Rounded outwards and clipped like :func:`_clipped_window`. Also returns which usable
    geometries the raster covers at all (the others keep ``no_coverage``).
    """
    bounds = np.zeros((len(geoms), 4))
    bounds[usable] = shapely.bounds(geoms[usable])
    left, bottom, right, top = bounds.T
    rb = src.bounds
    covered = usable & ~(
        (right <= rb.left) | (left >= rb.right) | (top <= rb.bottom) | (bottom >= rb.top)
    )
    inv = ~src.transform
    xs = np.stack([left, right, right, left])
    ys = np.stack([top, top, bottom, bottom])
    cols = inv.a * xs + inv.b * ys + inv.c
    rows = inv.d * xs + inv.e * ys + inv.f
    col0 = np.clip(np.floor(cols.min(axis=0) + 1e-9), 0, src.width)
    row0 = np.clip(np.floor(rows.min(axis=0) + 1e-9), 0, src.height)
    col1 = np.minimum(np.maximum(np.ceil(cols.max(axis=0) - 1e-9), col0 + 1), src.width)
    row1 = np.minimum(np.maximum(np.ceil(rows.max(axis=0) - 1e-9), row0 + 1), src.height)
    windows = np.stack([row0, col0, row1, col1], axis=1).astype(np.int64)
    covered &= (windows[:, 3] > windows[:, 1]) & (windows[:, 2] > windows[:, 0])
    return windows, covered


def _blocks(windows: np.ndarray) -> list[np.ndarray]:
    """Positions of the zones read together: those whose windows start in the same tile.

    A block's window is the union of its zones' windows, so memory stays about
    ``(BLOCK_PIXELS + largest plot)²`` pixels per band however many plots there are;
    a block holds at most ``BLOCK_ZONES`` plots, which bounds the pixel table.
    """
    tile = BLOCK_PIXELS
    key = (windows[:, 0] // tile) * (1 << 32) + windows[:, 1] // tile
    order = np.argsort(key, kind="stable")
    groups = np.split(order, np.flatnonzero(np.diff(key[order])) + 1)
    return [part for group in groups for part in np.array_split(
        group, max(1, -(-len(group) // BLOCK_ZONES))
    )]


def _measure_block(
    src: rasterio.DatasetReader, geoms: np.ndarray, windows: np.ndarray,
    area_px: np.ndarray, request: _Request, ids: np.ndarray,
    out: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]],
) -> None:
    """Read one window covering a block of zones, then measure every zone in it."""
    top, left = windows[:, 0].min(), windows[:, 1].min()
    window = Window(left, top, windows[:, 3].max() - left, windows[:, 2].max() - top)
    zone, row, col = _pixel_table(windows, (top, left))
    weights = _weights(geoms, windows, zone, row, (top, left), src.transform,
                       request.geographic)
    for band in request.bands:
        data = src.read(band, window=window, masked=True)
        values = np.ma.getdata(data)[row, col].astype(float)
        valid = ~np.ma.getmaskarray(data)[row, col]
        if request.nodata_as is not None:
            values[~valid] = request.nodata_as
            valid[:] = True
        valid &= np.isfinite(values)
        value, coverage, status = _zone_statistics(
            values, weights, valid, zone, len(ids), area_px, request
        )
        out[band][0][ids] = value
        out[band][1][ids] = coverage
        out[band][2][ids] = status


def _pixel_table(
    windows: np.ndarray, origin: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every pixel of every window, zone by zone in row-major order.

    Returns the zone's position, and the pixel's row and column in the block read from
    ``origin`` (row, column of the block's top-left pixel).
    """
    nrows = windows[:, 2] - windows[:, 0]
    ncols = windows[:, 3] - windows[:, 1]
    counts = nrows * ncols
    zone = np.repeat(np.arange(len(windows)), counts)
    local = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    width = ncols[zone]
    row = windows[zone, 0] - origin[0] + local // width
    col = windows[zone, 1] - origin[1] + local % width
    return zone, row, col


def _weights(
    geoms: np.ndarray, windows: np.ndarray, zone: np.ndarray, row: np.ndarray,
    origin: tuple[int, int], transform: rasterio.Affine, geographic: bool,
) -> np.ndarray:
    """Covered area of each pixel of the table, in units of one pixel's area.

    Exact (the area of pixel box ∩ geometry) up to :data:`EXACT_PIXEL_LIMIT` pixels per
    window, pixel centres inside above it. Pixel positions come from each zone's own
    window origin, the arithmetic of reading every plot's window on its own, so the
    weights do not depend on which block a plot was read in.
    """
    t = transform
    # rasterio's window transform: Affine.translation(x - c, y - f) * transform.
    col_off, row_off = windows[:, 1].astype(float), windows[:, 0].astype(float)
    cw = t.c + ((col_off * t.a + row_off * t.b + t.c) - t.c)
    rw = t.f + ((col_off * t.d + row_off * t.e + t.f) - t.f)
    nrows = windows[:, 2] - windows[:, 0]
    ncols = windows[:, 3] - windows[:, 1]
    big_zone = nrows * ncols > EXACT_PIXEL_LIMIT
    big = big_zone[zone]
    weights = np.empty(len(zone))
    small = np.flatnonzero(~big_zone)
    if small.size:
        exact = (
            _coverage_fractions if t.b == 0 and t.d == 0 else _intersection_fractions
        )(geoms[small], windows[small], (cw[small], rw[small]), t)
        weights[~big] = exact
    if big.any():
        weights[big] = _centre_weights(geoms, windows, np.flatnonzero(big_zone), t)
    if geographic:
        lr = (row + origin[0] - windows[zone, 0]).astype(float)
        lat = 0.5 * t.d + (lr + 0.5) * t.e + rw[zone]
        weights *= np.cos(np.radians(lat))
    return weights


def _intersection_fractions(
    geoms: np.ndarray, windows: np.ndarray, origins: tuple[np.ndarray, np.ndarray],
    transform: rasterio.Affine,
) -> np.ndarray:
    """Covered share of every window pixel by GEOS intersection (any rectilinear grid)."""
    t = transform
    zone, row, col = _pixel_table(windows, (0, 0))
    lc = (col - windows[zone, 1]).astype(float)
    lr = (row - windows[zone, 0]).astype(float)
    cw, rw = origins[0][zone], origins[1][zone]
    weights = np.empty(len(zone))
    for start in range(0, len(zone), WEIGHT_CHUNK):
        part = slice(start, start + WEIGHT_CHUNK)
        x0 = lc[part] * t.a + lr[part] * t.b + cw[part]
        y0 = lc[part] * t.d + lr[part] * t.e + rw[part]
        x1 = (lc[part] + 1) * t.a + (lr[part] + 1) * t.b + cw[part]
        y1 = (lc[part] + 1) * t.d + (lr[part] + 1) * t.e + rw[part]
        boxes = shapely.box(
            np.minimum(x0, x1), np.minimum(y0, y1), np.maximum(x0, x1), np.maximum(y0, y1)
        )
        areas = shapely.area(shapely.intersection(boxes, geoms[zone[part]]))
        weights[part] = areas / abs(t.a * t.e)
    return weights


def _coverage_fractions(
    geoms: np.ndarray, windows: np.ndarray, origins: tuple[np.ndarray, np.ndarray],
    transform: rasterio.Affine,
) -> np.ndarray:
    """Exact covered share of every pixel of every zone's window, without GEOS.

    In pixel units (column u, row v from the window's corner), the share of a pixel
    row band ``[r, r + 1]`` covered between ``x = c`` and ``c + 1`` is, by Green's
    theorem, a sum over the boundary of ``-dv · (c + 1 - clamp(u, c, c + 1))`` with
    exteriors and holes oriented opposite ways. Each ring edge is cut where it crosses a
    pixel row or column; a piece inside pixel (r, c) adds ``-dv · (c + 1 - u_mid)`` to
    that pixel and ``-dv`` to every pixel right of it in the row (a running sum along
    the row). This is the covered area of each pixel box, as ``area(box ∩ plot)`` gives
    it, for all plots of a block in a few array operations.

    Returns the weights in the order of :func:`_pixel_table`.
    """
    nrows = windows[:, 2] - windows[:, 0]
    ncols = windows[:, 3] - windows[:, 1]
    offset = np.cumsum(nrows * ncols) - nrows * ncols
    parts, part_zone = shapely.get_parts(geoms, return_index=True)
    polygons = shapely.get_type_id(parts) == 3
    parts, part_zone = parts[polygons], part_zone[polygons]
    rings, ring_part = shapely.get_rings(parts, return_index=True)
    exterior = np.r_[True, ring_part[1:] != ring_part[:-1]]
    xy, ring = shapely.get_coordinates(rings, return_index=True)
    zone = part_zone[ring_part[ring]]
    u = (xy[:, 0] - origins[0][zone]) / transform.a
    v = (xy[:, 1] - origins[1][zone]) / transform.e
    # Orient in pixel space: exteriors positive, holes negative (shoelace per ring).
    same = ring[1:] == ring[:-1]
    cross = np.where(same, u[:-1] * v[1:] - u[1:] * v[:-1], 0.0)
    signed = np.bincount(ring[:-1], weights=cross, minlength=len(rings))
    flip = np.where((signed > 0) == exterior, 1.0, -1.0)
    u0, v0, u1, v1 = u[:-1][same], v[:-1][same], u[1:][same], v[1:][same]
    edge_zone = zone[:-1][same]
    sign = flip[ring[:-1][same]]
    pieces = _cut_at_pixel_lines(u0, v0, u1, v1, ncols[edge_zone], nrows[edge_zone])
    edge, ta, tb = pieces
    du, dv = u1[edge] - u0[edge], v1[edge] - v0[edge]
    um = u0[edge] + du * (ta + tb) / 2
    vm = v0[edge] + dv * (ta + tb) / 2
    rise = -dv * (tb - ta) * sign[edge]
    z = edge_zone[edge]
    c = np.floor(um).astype(np.int64)
    r = np.floor(vm).astype(np.int64)
    in_row = (r >= 0) & (r < nrows[z])
    total = int((nrows * ncols).sum())
    own = in_row & (c >= 0) & (c < ncols[z])
    weights = np.bincount(
        offset[z[own]] + r[own] * ncols[z[own]] + c[own],
        weights=rise[own] * (c[own] + 1 - um[own]), minlength=total,
    )
    right = np.maximum(c + 1, 0)
    carry_at = in_row & (right < ncols[z])
    row_start = offset[z] + r * ncols[z]
    carry = np.bincount(row_start[carry_at] + right[carry_at], weights=rise[carry_at],
                        minlength=total)
    # Running sum along each row: a global cumulative sum minus its value before the row.
    running = np.cumsum(carry)
    pixel = np.arange(total)
    pixel_zone = np.repeat(np.arange(len(windows)), nrows * ncols)
    first_in_row = pixel - (pixel - offset[pixel_zone]) % ncols[pixel_zone]
    before = np.where(first_in_row > 0, running[first_in_row - 1], 0.0)
    weights += running - before
    # A pixel the plot only touches (its edge on the pixel line) sums to ±1e-16, where an
    # intersection gives exactly 0; it must stay out of a maximum or a percentile.
    weights[weights < SLIVER] = 0.0
    return weights


def _cut_at_pixel_lines(
    u0: np.ndarray, v0: np.ndarray, u1: np.ndarray, v1: np.ndarray,
    ncols: np.ndarray, nrows: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cut each edge where it crosses a pixel column or row line inside its window.

    Returns, per piece, the edge it belongs to and its start and end parameter t (0-1
    along the edge). Lines outside the window are not cut at: left of the window a
    piece only needs its rise, right of or above/below it a piece adds nothing.

    The column cuts of an edge come out in order along it, and so do its row cuts; the
    two short lists are merged per edge (each cut's place is its rank in its own list
    plus the cuts of the other list before it), which gives the order a sort of all
    cuts by edge and t gives, without that sort.
    """
    n = len(u0)
    col_edge, col_t, col_count = _crossings(u0, u1, ncols)
    row_edge, row_t, row_count = _crossings(v0, v1, nrows)
    size = 2 + col_count + row_count
    start = np.cumsum(size) - size
    t = np.empty(int(size.sum()))
    t[start], t[start + size - 1] = 0.0, 1.0
    # Equal t from both lists (a cut through a pixel corner): column first, either is fine.
    for edge, own_t, own_count, other_t, other_count, strict in (
        (col_edge, col_t, col_count, row_t, row_count, True),
        (row_edge, row_t, row_count, col_t, col_count, False),
    ):
        rank = np.arange(len(own_t)) - (np.cumsum(own_count) - own_count)[edge]
        before = _cuts_before(edge, own_t, other_t, other_count, strict)
        t[start[edge] + 1 + rank + before] = own_t
    edge = np.repeat(np.arange(n), size)
    piece = (edge[1:] == edge[:-1]) & (t[1:] > t[:-1])
    return edge[:-1][piece], t[:-1][piece], t[1:][piece]


def _crossings(
    a: np.ndarray, b: np.ndarray, size: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Where each edge from ``a`` to ``b`` crosses the grid lines 0..size, in order along it.

    Returns the edge of each cut, its parameter t, and the number of cuts per edge.
    """
    lo = np.maximum(np.floor(np.minimum(a, b)) + 1, 0)
    hi = np.minimum(np.ceil(np.maximum(a, b)) - 1, size)
    count = np.maximum(hi - lo + 1, 0).astype(np.int64)
    edge = np.repeat(np.arange(len(a)), count)
    j = np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
    # Lines in the direction of travel, so t grows along each edge's list.
    k = np.where(b[edge] >= a[edge], lo[edge] + j, hi[edge] - j)
    return edge, (k - a[edge]) / (b[edge] - a[edge]), count


def _cuts_before(
    edge: np.ndarray, t: np.ndarray, other_t: np.ndarray, other_count: np.ndarray,
    strict: bool,
) -> np.ndarray:
    """How many of the edge's other cuts (sorted along it) lie before each cut ``t``."""
    other_start = np.cumsum(other_count) - other_count
    before = np.zeros(len(t), dtype=np.int64)
    active = np.flatnonzero(other_count[edge] > 0)
    j = 0
    while active.size:
        ref = other_t[other_start[edge[active]] + j]
        earlier = ref < t[active] if strict else ref <= t[active]
        before[active] += earlier
        # The other list is in order: past the first cut not before, none is.
        active = active[earlier & (other_count[edge[active]] > j + 1)]
        j += 1
    return before


def _centre_weights(
    geoms: np.ndarray, windows: np.ndarray, zones: np.ndarray, transform: rasterio.Affine
) -> np.ndarray:
    """Weights 1 for pixels whose centre is inside, for zones with very large windows."""
    parts = []
    for k in zones:
        r0, c0, r1, c1 = (int(v) for v in windows[k])
        window = Window(c0, r0, c1 - c0, r1 - r0)
        inside = ~geometry_mask(
            [geoms[k]], out_shape=(r1 - r0, c1 - c0),
            transform=window_transform(window, transform),
        )
        parts.append(inside.astype(float).ravel())
    return np.concatenate(parts)


def _areas_in_pixels(
    geoms: np.ndarray, transform: rasterio.Affine, geographic: bool
) -> np.ndarray:
    """Area of each whole geometry in the units of :func:`_weights`."""
    area = shapely.area(geoms) / abs(transform.a * transform.e)
    if geographic:
        area = area * np.cos(np.radians(shapely.get_y(shapely.centroid(geoms))))
    return area


def _zone_statistics(
    values: np.ndarray, weights: np.ndarray, valid: np.ndarray, zone: np.ndarray,
    n_zones: int, area_px: np.ndarray, request: _Request,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(value, coverage, status) per zone of a block from its pixel table."""
    in_extent = np.bincount(zone, weights=weights, minlength=n_zones)
    valid_w = weights * valid
    valid_sum = np.bincount(zone, weights=valid_w, minlength=n_zones)
    # Coverage is measured against the whole geometry, so area outside the raster extent
    # counts as missing just like nodata does.
    with np.errstate(divide="ignore", invalid="ignore"):
        coverage = np.minimum(valid_sum / area_px, 1.0)
    coverage[in_extent <= 0] = 0.0
    status = np.where(
        in_extent <= 0, STATUS_NO_COVERAGE, np.where(valid_sum <= 0, STATUS_NO_DATA, STATUS_OK)
    ).astype(object)
    keep = valid_w > 0
    value = _segment_statistic(values[keep], valid_w[keep], zone[keep], n_zones, request)
    value[status != STATUS_OK] = np.nan
    return value, coverage, status


def _segment_statistic(
    v: np.ndarray, w: np.ndarray, zone: np.ndarray, n_zones: int, request: _Request
) -> np.ndarray:
    """The statistic of each zone's pixels (``zone`` sorted; zones without pixels: NaN)."""
    statistic = request.statistic
    total = np.bincount(zone, weights=w, minlength=n_zones)
    with np.errstate(divide="ignore", invalid="ignore"):
        if statistic == "mean":
            return np.bincount(zone, weights=v * w, minlength=n_zones) / total
        if statistic == "sum":
            return np.bincount(zone, weights=v * w, minlength=n_zones)
        if statistic == "share_above":
            above = np.bincount(zone, weights=w * (v >= request.threshold), minlength=n_zones)
            return above / total
    out = np.full(n_zones, np.nan)
    if v.size == 0:
        return out
    if statistic == "max":
        starts = np.flatnonzero(np.r_[True, zone[1:] != zone[:-1]])
        out[zone[starts]] = np.maximum.reduceat(v, starts)
        return out
    return _weighted_percentiles(v, w, zone, n_zones, request.q / 100, out)


def _weighted_percentiles(
    v: np.ndarray, w: np.ndarray, zone: np.ndarray, n_zones: int, q: float, out: np.ndarray
) -> np.ndarray:
    """Weighted percentile per zone with the "hazen" plotting position.

    Equal weights give exactly ``numpy.percentile(..., method="hazen")``; the
    interpolation is that of ``numpy.interp``.
    """
    order = _by_zone_then_value(v, zone)
    v, w, zone = v[order], w[order], zone[order]
    starts = np.flatnonzero(np.r_[True, zone[1:] != zone[:-1]])
    ends = np.r_[starts[1:], len(zone)] - 1
    size = ends - starts + 1
    csum = np.cumsum(w)
    cum = csum - np.repeat(csum[starts] - w[starts], size)
    pos = (cum - w / 2) / np.repeat(cum[ends], size)
    below = np.add.reduceat((pos <= q).astype(np.int64), starts)
    present = zone[starts]
    first, last = starts, ends
    j = first + below - 1
    result = np.where(below == 0, v[first], v[last])
    inner = (below > 0) & (j < last)
    ji = j[inner]
    slope = (v[ji + 1] - v[ji]) / (pos[ji + 1] - pos[ji])
    result[inner] = slope * (q - pos[ji]) + v[ji]
    out[present] = result
    return out


def _by_zone_then_value(v: np.ndarray, zone: np.ndarray) -> np.ndarray:
    """The order of ``np.lexsort((v, zone))``: by zone, then value, ties in input order.

    Raster values are mostly float32 (or narrower) held as float64: then zone and an
    order-preserving 32-bit image of the value make one 64-bit key, and one stable sort
    of it replaces lexsort's two (about ten times faster on 500,000 pixels).
    """
    small = v.astype(np.float32)
    if len(v) == 0 or zone.max() >= 2**31 or not np.array_equal(small, v):
        return np.lexsort((v, zone))
    # -0.0 and 0.0 are equal values: one bit pattern for both, as lexsort sees them.
    bits = (small + np.float32(0.0)).view(np.uint32).astype(np.uint64)
    negative = bits >= 2**31
    # Floats order as integers once negatives have all bits flipped, others the sign bit.
    bits = np.where(negative, bits ^ 0xFFFFFFFF, bits | 0x80000000)
    key = (zone.astype(np.uint64) << np.uint64(32)) | bits
    return np.argsort(key, kind="stable")
