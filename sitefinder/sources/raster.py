"""Zonal statistics of any GDAL raster over plot geometries.

A raster criterion (official noise map, slope, population, ...) turns the pixels under a
plot into one number per plot. This module does that with three guarantees:

* **Windowed reads.** Each plot reads only the window of its bounding box, so a
  national-size raster (or a VRT over thousands of tiles) is never loaded whole.
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

from collections.abc import Mapping
from pathlib import Path
from typing import Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
import shapely
from pydantic import BaseModel, ConfigDict, Field, model_validator
from rasterio.errors import RasterioError
from rasterio.features import geometry_mask
from rasterio.windows import Window, from_bounds

from sitefinder.errors import InputError

Statistic = Literal["mean", "max", "percentile", "share_above", "sum"]

#: Above this many pixels in a plot's window, weights use pixel centres instead of exact
#: polygon-pixel intersection areas (see module docstring).
EXACT_PIXEL_LIMIT = 40_000
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


class RasterCriterionSource(BaseModel):
    """Where a raster criterion reads its numbers, and which statistic it takes.

    Attributes
    ----------
    path : Path
        Any raster GDAL opens (GeoTIFF, VRT, ...). Must have a CRS.
    statistic : {"mean", "max", "percentile", "share_above", "sum"}
        What to compute over the pixels under the plot (or its unit layout).
        ``sum`` is for count rasters (e.g. residents per cell): each cell contributes in
        proportion to the share of its area inside the geometry.
    q : float, optional
        Percentile (0-100) for ``statistic="percentile"``.
    threshold : float, optional
        For ``statistic="share_above"``: the share of the area with value >= threshold.
    band : int
        1-based band number.
    min_coverage : float
        Share (0-1) of the geometry's area that must have valid data; below that the plot
        gets status ``no_data`` instead of a number.
    nodata_as : float, optional
        Value to use for nodata pixels *inside* the raster's extent. Official noise maps
        often leave quiet areas as nodata; ``nodata_as: 0`` makes them count as quiet
        instead of unknown. Pixels outside the raster extent stay unknown.
    over : {"plot", "units"}
        Compute over the whole plot, or over the unit layout where one exists.

    """

    model_config = ConfigDict(extra="forbid")

    path: Path
    statistic: Statistic = "mean"
    q: float | None = Field(default=None, ge=0, le=100)
    threshold: float | None = None
    band: int = Field(default=1, ge=1)
    min_coverage: float = Field(default=0.5, gt=0, le=1)
    nodata_as: float | None = None
    over: Literal["plot", "units"] = "plot"

    @model_validator(mode="after")
    def _statistic_parameters(self) -> RasterCriterionSource:
        if self.statistic == "percentile" and self.q is None:
            raise ValueError("statistic 'percentile' needs q (0-100)")
        if self.statistic == "share_above" and self.threshold is None:
            raise ValueError("statistic 'share_above' needs threshold")
        return self


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
    name = path.name
    src = _open(path)
    with src:
        _check_raster(src, band, path)
        local = zones.to_crs(src.crs)
        # Pixel areas shrink towards the pole, which matters for averages; a count raster's
        # pixel holds its count whatever its area (see module docstring).
        geographic = src.crs.is_geographic and statistic != "sum"
        try:
            rows = [
                _one_zone(src, geom, statistic, q, threshold, band, nodata_as, geographic)
                for geom in local.array
            ]
        except RasterioError as exc:
            raise _unreadable(path, exc) from None
    value = np.array([r[0] for r in rows], dtype=float)
    coverage = np.array([r[1] for r in rows], dtype=float)
    status = np.array([r[2] for r in rows], dtype=object)
    # Too little valid data: the number would describe a sliver, not the plot.
    too_little = (status == STATUS_OK) & (coverage < min_coverage)
    status[too_little] = STATUS_NO_DATA
    value[status != STATUS_OK] = np.nan
    reason_nb = []
    reason_en = []
    for st, cov in zip(status, coverage, strict=True):
        if st == STATUS_OK:
            reason_nb.append("")
            reason_en.append("")
            continue
        nb, en = _REASONS[st]
        fmt = {"name": name, "pct": 100 * np.nan_to_num(cov), "need": 100 * min_coverage}
        reason_nb.append(nb.format(**fmt))
        reason_en.append(en.format(**fmt))
    return pd.DataFrame(
        {
            "value": value,
            "coverage": coverage,
            "zone": zone_kind,
            "status": status.astype(str),
            "reason_nb": reason_nb,
            "reason_en": reason_en,
        },
        index=geometries.index,
    )


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


def _one_zone(
    src: rasterio.DatasetReader,
    geom: shapely.Geometry | None,
    statistic: Statistic,
    q: float | None,
    threshold: float | None,
    band: int,
    nodata_as: float | None,
    geographic: bool,
) -> tuple[float, float, str]:
    """Return (value, coverage, status) for one geometry in the raster's CRS."""
    if geom is not None and not geom.is_empty and shapely.get_type_id(geom) in (0, 4):
        # A point plot (CSV lat/lon) has no area: it takes the value of the pixel it lies
        # in, read through a square far smaller than a pixel.
        centre = shapely.centroid(geom)
        half = 0.005 * min(abs(src.transform.a), abs(src.transform.e))
        geom = shapely.box(centre.x - half, centre.y - half, centre.x + half, centre.y + half)
    if geom is None or geom.is_empty or geom.area <= 0:
        return np.nan, 0.0, STATUS_EMPTY_GEOMETRY
    left, bottom, right, top = geom.bounds
    rb = src.bounds
    if right <= rb.left or left >= rb.right or top <= rb.bottom or bottom >= rb.top:
        return np.nan, 0.0, STATUS_NO_COVERAGE
    window = _clipped_window(src, (left, bottom, right, top))
    if window is None:
        return np.nan, 0.0, STATUS_NO_COVERAGE
    data = src.read(band, window=window, masked=True)
    transform = src.window_transform(window)
    weights = _pixel_weights(geom, transform, data.shape, geographic)
    valid = ~np.ma.getmaskarray(data)
    values = np.ma.getdata(data).astype(float)
    if nodata_as is not None:
        values[~valid] = nodata_as
        valid[:] = True
    valid &= np.isfinite(values)
    in_extent = weights.sum()
    if in_extent <= 0:
        return np.nan, 0.0, STATUS_NO_COVERAGE
    valid_w = weights * valid
    # Coverage is measured against the whole geometry, so area outside the raster extent
    # counts as missing just like nodata does.
    coverage = min(float(valid_w.sum() / _area_in_pixels(geom, transform, geographic)), 1.0)
    if valid_w.sum() <= 0:
        return np.nan, coverage, STATUS_NO_DATA
    w = valid_w[valid_w > 0]
    v = values[valid_w > 0]
    return _statistic(v, w, statistic, q, threshold), coverage, STATUS_OK


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


def _pixel_weights(
    geom: shapely.Geometry,
    transform: rasterio.Affine,
    shape: tuple[int, int],
    geographic: bool,
) -> np.ndarray:
    """Covered area of each pixel, in units of one pixel's area."""
    nrows, ncols = shape
    if nrows * ncols > EXACT_PIXEL_LIMIT:
        inside = ~geometry_mask([geom], out_shape=shape, transform=transform)
        weights = inside.astype(float)
    else:
        cols, rows = np.meshgrid(np.arange(ncols), np.arange(nrows))
        x0, y0 = transform * (cols.ravel(), rows.ravel())
        x1, y1 = transform * (cols.ravel() + 1, rows.ravel() + 1)
        boxes = shapely.box(
            np.minimum(x0, x1), np.minimum(y0, y1), np.maximum(x0, x1), np.maximum(y0, y1)
        )
        shapely.prepare(geom)
        pixel_area = abs(transform.a * transform.e)
        areas = shapely.area(shapely.intersection(boxes, geom))
        weights = (areas / pixel_area).reshape(shape)
    if geographic:
        _, lat = transform * (np.full(nrows, 0.5), np.arange(nrows) + 0.5)
        weights = weights * np.cos(np.radians(lat))[:, None]
    return weights


def _area_in_pixels(
    geom: shapely.Geometry,
    transform: rasterio.Affine,
    geographic: bool,
) -> float:
    """Area of the whole geometry in the same units as :func:`_pixel_weights`."""
    pixel_area = abs(transform.a * transform.e)
    area = geom.area / pixel_area
    if geographic:
        lat = shapely.centroid(geom).y
        area *= np.cos(np.radians(lat))
    return float(area)


def _statistic(
    values: np.ndarray,
    weights: np.ndarray,
    statistic: Statistic,
    q: float | None,
    threshold: float | None,
) -> float:
    if statistic == "mean":
        return float(np.average(values, weights=weights))
    if statistic == "max":
        return float(values.max())
    if statistic == "sum":
        return float(np.sum(values * weights))
    if statistic == "share_above":
        return float(weights[values >= threshold].sum() / weights.sum())
    # Weighted percentile with the "hazen" plotting position, so equal weights give
    # exactly numpy.percentile(..., method="hazen").
    order = np.argsort(values, kind="stable")
    v, w = values[order], weights[order]
    cum = np.cumsum(w)
    pos = (cum - w / 2) / cum[-1]
    return float(np.interp(q / 100, pos, v))
