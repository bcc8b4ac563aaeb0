"""The areas of a batch: polygons from a boundary file, or a regular tiling of the extract.

Every area gets a stable, file-name-safe ``area_id`` (from the id column, e.g. Kartverket's
``kommunenummer`` or Oslo's ``bydelsnr``; for tiles the lower-left corner in km), a
``name`` and its polygon in lon/lat (EPSG:4326), and a checksum of its geometry so a rerun
knows whether the area changed.
"""

from __future__ import annotations

import hashlib
import math
import re
from pathlib import Path

import geopandas as gpd
import shapely

from sitefinder.errors import InputError

#: Id columns tried in order when none is given.
ID_COLUMNS = ("kommunenummer", "bydelsnr", "area_id", "id", "fylkesnummer")
#: Name columns tried in order.
NAME_COLUMNS = ("kommunenavn", "navn", "bydel", "name", "bynavn")

_SAFE = re.compile(r"[^0-9A-Za-z_.-]+")


def read_areas(path: str | Path, id_column: str | None = None) -> gpd.GeoDataFrame:
    """Read the areas of a batch from a polygon file (any CRS).

    Parameters
    ----------
    path : str or Path
        GeoPackage, GeoJSON or Shapefile of polygons.
    id_column : str, optional
        Column holding each area's id; default the first of :data:`ID_COLUMNS` present.

    Returns
    -------
    GeoDataFrame
        ``area_id`` (str), ``name`` (str), ``geometry`` (EPSG:4326), in file order.

    Raises
    ------
    InputError
        A missing or unreadable file, no CRS, no id column, ids that repeat or are empty,
        or rows without a polygon.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError("the areas file does not exist", path=path, where="--areas",
                         hint="Check the path, e.g. --areas data/oslo_bydeler.gpkg")
    try:
        frame = gpd.read_file(path, engine="pyogrio")
    except Exception as exc:  # pyogrio raises many kinds for a file it cannot read
        raise InputError(f"the areas file cannot be read ({exc})", path=path, where="--areas",
                         hint="Save the areas as a GeoPackage or GeoJSON of polygons") from None
    if frame.crs is None:
        raise InputError("the areas file declares no CRS", path=path, where="--areas",
                         hint="Save it with its CRS (e.g. EPSG:25833) in QGIS")
    column = _id_column(frame, id_column, path)
    ids = frame[column].astype(str).str.strip()
    _check_ids(ids, column, path)
    _check_polygons(frame, ids, path)
    names = _names(frame, ids)
    areas = gpd.GeoDataFrame(
        {"area_id": [_safe(i) for i in ids], "name": names},
        geometry=frame.geometry.to_crs(4326).make_valid().to_numpy(), crs=4326,
    )
    return areas


def tile_areas(bounds_4326: tuple[float, float, float, float], crs, size_m: float
               ) -> gpd.GeoDataFrame:
    """Square tiles of ``size_m`` metres covering ``bounds_4326``, aligned to the CRS grid.

    Parameters
    ----------
    bounds_4326 : tuple of float
        West, south, east, north in degrees (the extract's extent).
    crs : pyproj.CRS or str
        Metric CRS the tiles are square in (the study's local UTM zone).
    size_m : float
        Tile edge in metres (at least 500).

    Returns
    -------
    GeoDataFrame
        ``area_id`` (``E<km>N<km>`` of the lower-left corner), ``name``, ``geometry``
        (EPSG:4326).
    """
    if not size_m >= 500:
        raise InputError(f"a tile of {size_m:g} m is too small", where="--tiles",
                         hint="Use tiles of at least 500 m, e.g. --tiles 5000")
    box = gpd.GeoSeries([shapely.box(*bounds_4326)], crs=4326).to_crs(crs)
    minx, miny, maxx, maxy = box.total_bounds
    x0, y0 = math.floor(minx / size_m) * size_m, math.floor(miny / size_m) * size_m
    tiles, ids = [], []
    for x in _steps(x0, maxx, size_m):
        for y in _steps(y0, maxy, size_m):
            tile = shapely.box(x, y, x + size_m, y + size_m)
            if tile.intersects(box.iloc[0]):
                tiles.append(tile)
                ids.append(f"E{x / 1000:g}N{y / 1000:g}")
    frame = gpd.GeoDataFrame({"area_id": ids, "name": ids}, geometry=tiles, crs=crs)
    return frame.to_crs(4326)


def geometry_sha256(geometry: shapely.Geometry) -> str:
    """Checksum of an area's polygon (its WKB, coordinates rounded to about 1 cm)."""
    rounded = shapely.set_precision(geometry, 1e-7)
    return hashlib.sha256(shapely.to_wkb(rounded, hex=False)).hexdigest()


def _steps(start: float, stop: float, step: float):
    value = start
    while value < stop:
        yield value
        value += step


def _id_column(frame: gpd.GeoDataFrame, id_column: str | None, path: Path) -> str:
    if id_column is not None:
        if id_column not in frame.columns:
            raise InputError(
                f"the areas file has no column '{id_column}'", path=path, where="--id-column",
                hint="Columns: " + ", ".join(c for c in frame.columns if c != "geometry"),
            )
        return id_column
    for column in ID_COLUMNS:
        if column in frame.columns:
            return column
    raise InputError(
        "the areas file has none of the id columns " + ", ".join(ID_COLUMNS), path=path,
        where="--id-column",
        hint="Name the column with --id-column; columns: "
        + ", ".join(c for c in frame.columns if c != "geometry"),
    )


def _check_ids(ids, column: str, path: Path) -> None:
    empty = ids[(ids == "") | (ids.str.lower() == "nan") | (ids.str.lower() == "none")]
    if len(empty):
        raise InputError(f"area without an id in column '{column}'", path=path,
                         where=f"row {int(empty.index[0]) + 1}, column {column}",
                         hint="Give every area an id, or choose another --id-column")
    repeated = ids[ids.duplicated()]
    if len(repeated):
        raise InputError(f"the id '{repeated.iloc[0]}' is used by more than one area",
                         path=path,
                         where=f"row {int(repeated.index[0]) + 1}, column {column}",
                         hint="Ids must be unique: merge the parts or choose another "
                         "--id-column")


def _check_polygons(frame: gpd.GeoDataFrame, ids, path: Path) -> None:
    geoms = frame.geometry
    bad = geoms.isna() | geoms.is_empty | ~geoms.geom_type.isin(["Polygon", "MultiPolygon"])
    if bad.any():
        row = int(bad.to_numpy().nonzero()[0][0])
        raise InputError(f"area '{ids.iloc[row]}' has no polygon", path=path,
                         where=f"row {row + 1}, geometry",
                         hint="Every row must be a polygon (the area's boundary); remove "
                         "rows without one")


def _names(frame: gpd.GeoDataFrame, ids) -> list[str]:
    for column in NAME_COLUMNS:
        if column in frame.columns:
            return [str(v) if v is not None else i for v, i in zip(frame[column], ids, strict=True)]
    return list(ids)


def _safe(area_id: str) -> str:
    """The id as a folder name: letters, digits, ``_.-``; anything else becomes ``_``."""
    return _SAFE.sub("_", area_id)
