"""Residents near a plot, from Statistics Norway's 250 m population grid.

The report wants småhus in "ordinary, good residential environments", not hidden away
(docs/CRITERIA.md §10, SINTEF 2021 §2.1, §6.6). Residents within 500 m is a direct
measure of that: a plot at the edge of an industrial estate or deep in the forest has few.

The SSB grid ("befolkning på rutenett 250 m") lists only populated cells, as polygons.
:func:`rasterise_population` burns them into a 250 m GeoTIFF aligned with the SSB grid, so
cells that are not listed become 0 residents (which is what SSB's omission means) inside
the extent of the file; outside it the raster has no data.

:func:`residents_within` is a **polygon-buffer zonal sum**: the plot is buffered by the
radius (distance from the plot's edge, not its centroid) and each grid cell contributes
its residents times the share of its area inside the buffer (areal weighting, i.e.
residents are assumed spread evenly within their 250 m cell). A focal sum on the 250 m
grid would move the 500 m circle in 250 m steps; the buffer sum does not.

Data: Statistics Norway (SSB), population on 250 m grid, CC BY 4.0 - attribute
"Befolkning på rutenett 250 m, Statistisk sentralbyrå (SSB), CC BY 4.0".
"""

from __future__ import annotations

import math
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
import shapely
from pyproj import CRS
from rasterio.features import rasterize
from rasterio.transform import from_origin

from sitefinder.errors import InputError

# The settings live in the light module, so the scenario validates without geodata
# libraries; re-exported here, where they have always been imported from.
from sitefinder.settings import PopulationSettings  # noqa: F401
from sitefinder.sources.raster import zonal_stats

#: SSB grid cell size, metres.
SSB_CELL_M = 250.0
#: The SSB grid is defined in ETRS89 / UTM 33N; files often carry a custom WKT for it.
SSB_CRS = CRS.from_epsg(25833)
ATTRIBUTION = "Befolkning på rutenett 250 m, Statistisk sentralbyrå (SSB), CC BY 4.0"
ATTRIBUTION_EN = "Population on 250 m grid, Statistics Norway (SSB), CC BY 4.0"

#: Residents within 500 m regarded as an ordinary residential neighbourhood / as hidden
#: away. Assumptions (the report gives no number): 1 000 residents within 500 m is
#: roughly a suburban neighbourhood of detached houses; under 100 is a few farms.
RESIDENTS_IDEAL = 1000.0
RESIDENTS_UNACCEPTABLE = 100.0


def read_ssb_grid(path: str | Path, column: str = "pop_tot") -> gpd.GeoDataFrame:
    """Read an SSB 250 m population grid file and set its CRS to EPSG:25833.

    Parameters
    ----------
    path : str or Path
        GeoPackage/GeoJSON/shapefile with one polygon per populated cell.
    column : str, default "pop_tot"
        Column with the number of residents.

    Returns
    -------
    geopandas.GeoDataFrame
        Columns ``residents`` (int) and ``geometry``, EPSG:25833.

    Raises
    ------
    sitefinder.errors.InputError
        The file cannot be read, lacks ``column``, has negative counts, or its cells are
        not 250 m squares in UTM 33 metres.

    """
    path = Path(path)
    try:
        grid = gpd.read_file(path)
    except Exception as exc:  # pyogrio/GDAL raise several types for a file they cannot read
        raise InputError(
            f"the population grid could not be read ({str(exc).splitlines()[0] or exc!r})",
            path=path,
            hint="Give the GeoPackage (or shapefile) of SSB's 250 m grid as downloaded",
        ) from None
    if column not in grid.columns:
        raise InputError(
            f"the population grid has no column {column!r}",
            path=path,
            hint=f"Columns present: {', '.join(map(str, grid.columns))}",
        )
    residents = pd.to_numeric(grid[column], errors="coerce")
    if residents.isna().any() or (residents < 0).any():
        raise InputError(f"column {column!r} must hold non-negative counts", path=path)
    # The files carry a custom "UTM_Zone_33" WKT on GRS80 that pyproj does not match to
    # EPSG:25833; the coordinates are ETRS89/UTM 33 all the same, so relabel, don't warp.
    if grid.crs is not None and grid.crs.is_geographic:
        grid = grid.to_crs(SSB_CRS)
    else:
        grid = grid.set_crs(SSB_CRS, allow_override=True)
    side = np.sqrt(grid.geometry.area)
    if not np.allclose(side, SSB_CELL_M, atol=0.5):
        raise InputError("the population grid cells are not 250 m squares in EPSG:25833", path=path)
    return gpd.GeoDataFrame({"residents": residents.astype(int)}, geometry=grid.geometry)


def rasterise_population(
    grid: gpd.GeoDataFrame, out_path: str | Path, *, source: str = ATTRIBUTION
) -> Path:
    """Burn an SSB population grid into a 250 m Int32 GeoTIFF aligned with the SSB grid.

    Parameters
    ----------
    grid : geopandas.GeoDataFrame
        From :func:`read_ssb_grid` (``residents`` column, EPSG:25833).
    out_path : str or Path
        GeoTIFF to write. Unlisted cells inside the extent are 0; nodata is -1 (used by
        no pixel inside the extent).
    source : str
        Attribution written into the file's tags.

    Returns
    -------
    Path
        ``out_path``.

    """
    res = SSB_CELL_M
    minx, miny, maxx, maxy = grid.total_bounds
    minx, miny = math.floor(minx / res + 1e-6) * res, math.floor(miny / res + 1e-6) * res
    maxx, maxy = math.ceil(maxx / res - 1e-6) * res, math.ceil(maxy / res - 1e-6) * res
    width, height = int(round((maxx - minx) / res)), int(round((maxy - miny) / res))
    transform = from_origin(minx, maxy, res, res)
    # Burn each cell by its centre point, summing, so every resident lands in exactly
    # one pixel whatever tiny offsets the polygons carry.
    centres = shapely.centroid(grid.geometry.array)
    counts = rasterize(
        zip(centres, grid["residents"].to_numpy(), strict=True),
        out_shape=(height, width),
        transform=transform,
        fill=0,
        dtype="int32",
        merge_alg=rasterio.enums.MergeAlg.add,
    )
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(
        out_path,
        "w",
        driver="GTiff",
        width=width,
        height=height,
        count=1,
        dtype="int32",
        crs=SSB_CRS.to_wkt(),
        transform=transform,
        nodata=-1,
        compress="deflate",
    ) as dst:
        dst.write(counts, 1)
        dst.set_band_description(1, "residents")
        dst.update_tags(SOURCE=source, UNITS="residents per 250 m cell", LICENSE="CC BY 4.0")
    return out_path


def residents_within(
    plots: gpd.GeoSeries,
    population_raster: str | Path,
    radius_m: float = 500.0,
    *,
    min_coverage: float = 0.9,
) -> pd.DataFrame:
    """Residents within ``radius_m`` of each plot's edge (areal-weighted buffer sum).

    Parameters
    ----------
    plots : geopandas.GeoSeries
        Plot geometries in a projected CRS.
    population_raster : str or Path
        Count raster, e.g. from :func:`rasterise_population`.
    radius_m : float, default 500
        Buffer distance, metres.
    min_coverage : float, default 0.9
        Share of the buffer the raster must cover; below that the count would be too
        low to trust, so the plot gets status ``no_data``.

    Returns
    -------
    pandas.DataFrame
        As :func:`sitefinder.sources.raster.zonal_stats`; ``value`` = residents (float).

    Raises
    ------
    sitefinder.errors.InputError
        ``plots`` are not in a projected CRS (a buffer in degrees would be meaningless).

    """
    if plots.crs is None or not plots.crs.is_projected:
        raise InputError(
            "residents_within needs plots in a projected, metric CRS",
            hint="Reproject the plots first, e.g. plots.to_crs(25833)",
        )
    buffers = plots.buffer(radius_m)
    return zonal_stats(buffers, population_raster, "sum", min_coverage=min_coverage)
