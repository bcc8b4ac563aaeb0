"""Slope and aspect from a digital terrain model, and the slope criterion.

Steep plots cost more to build on (excavation, retaining walls, access road) and make a
step-free entrance harder; a slope criterion ranks them down. The report gives no number,
so the default thresholds below are engineering assumptions, stated as such.

Slope is computed with Horn's (1981) 3x3 finite-difference method, the same one
``gdaldem slope`` uses, in tiles with a one-pixel halo so a national DEM never has to fit
in memory. Pixel sizes come from the raster's affine transform. rasterio always expresses
that transform with x = easting, so a DEM whose CRS declares north-east axis order (e.g.
Kartverket's EPSG:3045 tiles) is handled without any axis swapping, and non-square or
south-up grids get the right signs and spacings too.

At the raster's outer edge the missing neighbours are linearly extrapolated, which turns
the central difference into a one-sided difference there (as ``numpy.gradient`` does);
next to nodata pixels the output is nodata.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import rasterio
from rasterio.errors import RasterioIOError
from rasterio.windows import Window

from sitefinder.errors import InputError

# The settings live in the light module, so the scenario validates without geodata
# libraries; re-exported here, where they have always been imported from.
from sitefinder.settings import SlopeSettings  # noqa: F401
from sitefinder.sources.raster import zonal_stats

#: Nodata value of the slope and aspect rasters written here.
NODATA = -9999.0

#: Mean plot slope regarded as fully buildable (about 1:11). Assumption, not from the report.
SLOPE_IDEAL_DEG = 5.0
#: Mean plot slope regarded as unbuildable without major works (about 1:2.7). Assumption.
SLOPE_UNACCEPTABLE_DEG = 20.0


def slope(
    dem: str | Path,
    out_path: str | Path,
    *,
    aspect_path: str | Path | None = None,
    band: int = 1,
    tile_size: int = 1024,
    z_factor: float = 1.0,
) -> Path:
    """Write the slope (degrees) of a DEM as a GeoTIFF, and optionally its aspect.

    Parameters
    ----------
    dem : str or Path
        Terrain model in a projected CRS with metre units (heights in metres, or scaled
        to metres by ``z_factor``).
    out_path : str or Path
        GeoTIFF to write: float32 slope in degrees 0-90, nodata :data:`NODATA`.
    aspect_path : str or Path, optional
        If given, also write aspect: compass bearing (0 = north, 90 = east) of the
        downslope direction, nodata on flat ground.
    band : int, default 1
        DEM band.
    tile_size : int, default 1024
        Tile edge in pixels for the windowed computation.
    z_factor : float, default 1.0
        Multiplier turning height units into the horizontal units.

    Returns
    -------
    Path
        ``out_path``.

    Raises
    ------
    sitefinder.errors.InputError
        The DEM cannot be opened, has no CRS, is in geographic coordinates or is rotated.

    """
    dem = Path(dem)
    out_path = Path(out_path)
    try:
        src = rasterio.open(dem)
    except RasterioIOError as exc:
        raise InputError(f"cannot open the terrain model ({exc})", path=dem) from exc
    with src:
        _check_dem(src, dem)
        profile = {
            "driver": "GTiff",
            "dtype": "float32",
            "count": 1,
            "width": src.width,
            "height": src.height,
            "crs": src.crs,
            "transform": src.transform,
            "nodata": NODATA,
            "compress": "deflate",
            "tiled": True,
            "blockxsize": 256,
            "blockysize": 256,
        }
        out_path.parent.mkdir(parents=True, exist_ok=True)
        dst_aspect = None
        with rasterio.open(out_path, "w", **profile) as dst:
            dst.update_tags(UNITS="degrees", METHOD="Horn (1981) 3x3, via sitefinder.terrain")
            dst.set_band_description(1, "slope_deg")
            if aspect_path is not None:
                dst_aspect = rasterio.open(aspect_path, "w", **profile)
                dst_aspect.update_tags(UNITS="degrees clockwise from north, downslope")
                dst_aspect.set_band_description(1, "aspect_deg")
            try:
                for window in _tiles(src.width, src.height, tile_size):
                    z = _read_with_halo(src, band, window)
                    slope_deg, aspect_deg = _horn(z, src.transform.a, src.transform.e, z_factor)
                    dst.write(_filled(slope_deg), 1, window=window)
                    if dst_aspect is not None:
                        dst_aspect.write(_filled(aspect_deg), 1, window=window)
            finally:
                if dst_aspect is not None:
                    dst_aspect.close()
    return out_path


def slope_criterion(
    plots: gpd.GeoSeries,
    slope_raster: str | Path,
    settings: SlopeSettings,
    units: gpd.GeoSeries | None = None,
) -> pd.DataFrame:
    """Slope statistic per plot from a slope raster written by :func:`slope`.

    Parameters
    ----------
    plots : geopandas.GeoSeries
        Plot geometries with a CRS.
    slope_raster : str or Path
        Slope GeoTIFF (degrees).
    settings : SlopeSettings
        Statistic and thresholds.
    units : geopandas.GeoSeries, optional
        Unit layouts indexed by plot label (used when ``settings.over == "units"``).

    Returns
    -------
    pandas.DataFrame
        As :func:`sitefinder.sources.raster.zonal_stats`; ``value`` is in degrees (or a
        0-1 share for ``share_above``).

    """
    return zonal_stats(
        plots,
        slope_raster,
        settings.statistic,
        q=settings.q,
        threshold=settings.threshold,
        units=units if settings.over == "units" else None,
    )


def _check_dem(src: rasterio.DatasetReader, path: Path) -> None:
    if src.crs is None:
        raise InputError("the terrain model has no coordinate reference system", path=path)
    if src.crs.is_geographic:
        raise InputError(
            "the terrain model is in geographic coordinates (degrees), so slope would be wrong",
            path=path,
            hint="Warp it to a metric CRS first, e.g. gdalwarp -t_srs EPSG:25833",
        )
    if not src.transform.is_rectilinear:
        raise InputError(
            "the terrain model is rotated or sheared",
            path=path,
            hint="Warp it to a north-up grid with gdalwarp first",
        )


def _tiles(width: int, height: int, size: int) -> list[Window]:
    return [
        Window(col, row, min(size, width - col), min(size, height - row))
        for row in range(0, height, size)
        for col in range(0, width, size)
    ]


def _read_with_halo(src: rasterio.DatasetReader, band: int, window: Window) -> np.ndarray:
    """Read ``window`` plus a one-pixel halo; NaN for nodata, extrapolated beyond the edge."""
    col0 = max(int(window.col_off) - 1, 0)
    row0 = max(int(window.row_off) - 1, 0)
    col1 = min(int(window.col_off + window.width) + 1, src.width)
    row1 = min(int(window.row_off + window.height) + 1, src.height)
    data = src.read(band, window=Window(col0, row0, col1 - col0, row1 - row0), masked=True)
    z = np.ma.filled(data.astype(float), np.nan)
    # Where the halo falls outside the raster, extend the surface linearly: the central
    # difference then equals the one-sided difference at the edge.
    if int(window.row_off) == 0:
        z = np.vstack([2 * z[:1] - z[1:2] if z.shape[0] > 1 else z[:1], z])
    if int(window.row_off + window.height) == src.height:
        z = np.vstack([z, 2 * z[-1:] - z[-2:-1] if z.shape[0] > 1 else z[-1:]])
    if int(window.col_off) == 0:
        z = np.hstack([2 * z[:, :1] - z[:, 1:2] if z.shape[1] > 1 else z[:, :1], z])
    if int(window.col_off + window.width) == src.width:
        z = np.hstack([z, 2 * z[:, -1:] - z[:, -2:-1] if z.shape[1] > 1 else z[:, -1:]])
    return z


def _horn(z: np.ndarray, dx: float, dy: float, z_factor: float) -> tuple[np.ndarray, np.ndarray]:
    """Slope and aspect (degrees) of the interior of ``z`` (which carries a 1-px halo).

    ``dx`` and ``dy`` are the signed transform terms ``a`` (easting per column) and ``e``
    (northing per row, negative for north-up).
    """
    a, b, c = z[:-2, :-2], z[:-2, 1:-1], z[:-2, 2:]
    d, f = z[1:-1, :-2], z[1:-1, 2:]
    g, h, i = z[2:, :-2], z[2:, 1:-1], z[2:, 2:]
    dz_dcol = ((c + 2 * f + i) - (a + 2 * d + g)) / 8.0
    dz_drow = ((g + 2 * h + i) - (a + 2 * b + c)) / 8.0
    dz_deast = z_factor * dz_dcol / dx
    dz_dnorth = z_factor * dz_drow / dy
    # Any NaN in the 3x3 neighbourhood propagates, which is what we want.
    slope_deg = np.degrees(np.arctan(np.hypot(dz_deast, dz_dnorth)))
    aspect_deg = np.degrees(np.arctan2(-dz_deast, -dz_dnorth)) % 360.0
    aspect_deg[slope_deg == 0] = np.nan
    return slope_deg, aspect_deg


def _filled(values: np.ndarray) -> np.ndarray:
    return np.where(np.isfinite(values), values, NODATA).astype("float32")
