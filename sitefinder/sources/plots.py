"""Read the municipality's candidate plots and bring them into one local metric CRS.

Accepted: GeoPackage, GeoJSON, Shapefile (anything GDAL reads) and CSV with either a
WKT column or latitude/longitude columns. Whole-file problems (missing or unreadable
file, no CRS, duplicate ids) stop the run with an :class:`~sitefinder.errors.InputError`
naming the file, rows and what to do. Per-plot problems (empty or invalid geometry, a
line instead of a polygon) never drop the plot: it gets a ``status`` and a reason in
Norwegian and English and stays in every output.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from pyproj import CRS

from sitefinder.errors import InputError

STATUS_OK = "ok"
STATUS_EMPTY = "empty_geometry"
STATUS_INVALID = "invalid_geometry"

_WKT_COLUMNS = ("wkt", "geometry", "geom", "the_geom")
#: Columns sitefinder adds to the plots; a user column of the same name is kept as
#: ``input_<name>`` so nothing the municipality wrote is lost or overwritten.
RESERVED_COLUMNS = (
    "source_row", "status", "status_reason_nb", "status_reason_en", "input_note_nb",
    "input_note_en",
)
_LAT_COLUMNS = ("lat", "latitude", "breddegrad")
_LON_COLUMNS = ("lon", "lng", "long", "longitude", "lengdegrad")


def read_plots(
    path: str | Path,
    *,
    id_column: str = "plot_id",
    crs: str | None = None,
    layer: str | None = None,
) -> gpd.GeoDataFrame:
    """Read a plot file, validating it and marking per-plot problems.

    Parameters
    ----------
    path : str or Path
        GeoPackage, GeoJSON, Shapefile or CSV.
    id_column : str
        Column with the plot id. When the file has no such column, ids ``row-1``,
        ``row-2`` ... are made from the row order.
    crs : str, optional
        CRS of the file when it declares none (e.g. ``"EPSG:25833"``); CSV with
        latitude/longitude is always EPSG:4326.
    layer : str, optional
        Layer to read from a multi-layer GeoPackage (default: the first).

    Returns
    -------
    GeoDataFrame
        Columns ``plot_id`` (str), ``source_row`` (1-based), ``status``,
        ``status_reason_nb``, ``status_reason_en``, ``input_note_en``,
        ``input_note_nb``, the file's own columns, and ``geometry`` in the file's CRS.
        Plots with a problem keep their row, with ``status`` other than ``"ok"``.

    Raises
    ------
    InputError
        Missing/unreadable file, no CRS, duplicate ids, or no plots at all.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(
            "the plot file does not exist",
            path=path,
            hint="Check the path given with --plots",
        )
    if crs is not None:
        crs = _parse_crs(crs, path)
    if path.suffix.lower() == ".csv":
        frame = _read_csv(path, crs)
    else:
        frame = _read_vector(path, layer)
        if frame.crs is None:
            if crs is None:
                raise InputError(
                    "the plot file has no coordinate reference system (CRS)",
                    path=path,
                    hint="Pass the CRS it was drawn in, e.g. --plots-crs EPSG:25833, or set "
                    "it in QGIS (Layer > Set CRS) and save again",
                )
            frame = frame.set_crs(crs)
    if len(frame) == 0:
        raise InputError(
            "the plot file contains no plots",
            path=path,
            hint="Check that you exported the right layer",
        )
    frame = frame.reset_index(drop=True)
    clashes = [c for c in RESERVED_COLUMNS if c in frame.columns]
    frame = frame.rename(columns={c: f"input_{c}" for c in clashes})
    frame.insert(0, "source_row", np.arange(1, len(frame) + 1))
    frame = _assign_ids(frame, id_column, path)
    return _check_geometries(frame)


def _parse_crs(crs: str, path: Path) -> CRS:
    try:
        return CRS.from_user_input(crs)
    except Exception as exc:  # pyproj's CRSError
        raise InputError(
            f"unknown CRS '{crs}' ({str(exc).splitlines()[0]})",
            path=path,
            where="--plots-crs",
            hint="Give an EPSG code such as EPSG:25833 (UTM 33N) or EPSG:4326 (lon/lat)",
        ) from None


def _read_vector(path: Path, layer: str | None) -> gpd.GeoDataFrame:
    try:
        # on_invalid="ignore": a broken geometry must not abort the whole file; it
        # becomes an empty geometry that _check_geometries reports per plot.
        return gpd.read_file(path, layer=layer, engine="pyogrio", on_invalid="ignore")
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError) as exc:
        raise InputError(
            f"the plot file could not be read ({str(exc).splitlines()[0]})",
            path=path,
            hint="Use a GeoPackage (.gpkg), GeoJSON, Shapefile (with its .shx/.dbf/.prj) or "
            "CSV; open it in QGIS to check it is not damaged",
        ) from None
    except (ValueError, UnicodeDecodeError, pyogrio.errors.FieldError) as exc:
        raise InputError(
            f"the plot file could not be read ({exc})",
            path=path,
            hint="Open it in QGIS and export it again as GeoPackage",
        ) from None


def _pick(columns: list[str], names: tuple[str, ...]) -> str | None:
    lower = {c.lower(): c for c in columns}
    return next((lower[n] for n in names if n in lower), None)


def _read_csv(path: Path, crs: str | None) -> gpd.GeoDataFrame:
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False, sep=None, engine="python")
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(
            f"the CSV file could not be read ({exc})",
            path=path,
            hint="Save it as UTF-8 CSV with a header row",
        ) from None
    columns = list(table.columns)
    wkt_col = _pick(columns, _WKT_COLUMNS)
    lat_col, lon_col = _pick(columns, _LAT_COLUMNS), _pick(columns, _LON_COLUMNS)
    if wkt_col is not None:
        if crs is None:
            raise InputError(
                f"the CSV has a WKT column '{wkt_col}' but no CRS is known",
                path=path,
                hint="Pass the CRS of the coordinates, e.g. --plots-crs EPSG:25833 "
                "(or EPSG:4326 for longitude/latitude)",
            )
        text = table.pop(wkt_col).str.strip()
        geoms = shapely.from_wkt(text.where(text != "", None), on_invalid="ignore")
        return gpd.GeoDataFrame(table, geometry=geoms, crs=crs)
    if lat_col is not None and lon_col is not None:
        lat = pd.to_numeric(table[lat_col].str.replace(",", "."), errors="coerce")
        lon = pd.to_numeric(table[lon_col].str.replace(",", "."), errors="coerce")
        out_of_range = (lat.abs() > 90) | (lon.abs() > 180)
        if out_of_range.any():
            rows = ", ".join(str(i + 2) for i in np.flatnonzero(out_of_range)[:5])
            raise InputError(
                f"latitude/longitude out of range in CSV line(s) {rows}",
                path=path,
                where=f"columns '{lat_col}', '{lon_col}'",
                hint="Columns must hold degrees (WGS84); projected coordinates belong in a "
                "WKT column with --plots-crs",
            )
        geoms = shapely.points(lon.to_numpy(), lat.to_numpy())
        # A row with a blank or unreadable coordinate has no location: empty_geometry.
        geoms[(lat.isna() | lon.isna()).to_numpy()] = None
        return gpd.GeoDataFrame(table, geometry=geoms, crs="EPSG:4326")
    raise InputError(
        "the CSV has neither a WKT geometry column nor latitude/longitude columns",
        path=path,
        where=f"columns {', '.join(columns)}",
        hint="Add a column 'wkt' with polygons as WKT, or columns 'lat' and 'lon'",
    )


def _assign_ids(frame: gpd.GeoDataFrame, id_column: str, path: Path) -> gpd.GeoDataFrame:
    if id_column in frame.columns:
        ids = frame[id_column].astype("string").str.strip()
        blank = ids.isna() | (ids == "")
        ids = ids.where(~blank, "row-" + frame["source_row"].astype(str))
        dup = ids.duplicated(keep=False)
        if dup.any():
            groups = frame.loc[dup].groupby(ids[dup])["source_row"].apply(list)
            listing = "; ".join(
                f"'{pid}' in rows {', '.join(map(str, rows))}"
                for pid, rows in groups.head(5).items()
            )
            raise InputError(
                f"plot ids are not unique: {listing}",
                path=path,
                where=f"column '{id_column}'",
                hint="Give every plot its own id (or remove the column to number plots by row)",
            )
        frame = frame.drop(columns=[id_column])
    else:
        ids = "row-" + frame["source_row"].astype(str)
    frame.insert(0, "plot_id", ids.astype(str).to_numpy())
    return frame


def _check_geometries(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    geoms = frame.geometry.to_numpy().copy()
    n = len(frame)
    status = np.full(n, STATUS_OK, dtype=object)
    reason_nb = np.full(n, "", dtype=object)
    reason_en = np.full(n, "", dtype=object)
    note_nb = np.full(n, "", dtype=object)
    note_en = np.full(n, "", dtype=object)

    missing = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    status[missing] = STATUS_EMPTY
    reason_nb[missing] = "tomten mangler geometri (tom eller ugyldig i fila)"
    reason_en[missing] = "the plot has no geometry (empty or unreadable in the file)"

    type_ids = shapely.get_type_id(geoms)
    lines = ~missing & np.isin(type_ids, [1, 2, 5])  # LineString, LinearRing, MultiLineString
    status[lines] = STATUS_INVALID
    reason_nb[lines] = "tomten er en linje, ikke en flate; tegn tomtegrensen som polygon"
    reason_en[lines] = "the plot is a line, not an area; draw the plot boundary as a polygon"

    points = ~missing & np.isin(type_ids, [0, 4])
    note_nb[points] = "tomten er et punkt: avstander måles fra punktet, areal er ukjent"
    note_en[points] = "the plot is a point: distances are measured from it, area is unknown"

    polygonal = ~missing & ~lines & ~points
    invalid = polygonal & ~shapely.is_valid(geoms)
    for i in np.flatnonzero(invalid):  # few rows; make_valid per geometry keeps the reason
        why = shapely.is_valid_reason(geoms[i])
        repaired = shapely.make_valid(geoms[i])
        polys = _polygonal_part(repaired)
        if polys is None:
            status[i] = STATUS_INVALID
            reason_nb[i] = f"ugyldig geometri som ikke kan repareres ({why})"
            reason_en[i] = f"invalid geometry that cannot be repaired ({why})"
        else:
            geoms[i] = polys
            note_nb[i] = f"ugyldig geometri reparert automatisk ({why}); kontroller tomten"
            note_en[i] = f"invalid geometry repaired automatically ({why}); check the plot"
    other = polygonal & ~np.isin(type_ids, [3, 6]) & (status == STATUS_OK)
    for i in np.flatnonzero(other):  # GeometryCollections: keep their polygons
        polys = _polygonal_part(geoms[i])
        if polys is None:
            status[i] = STATUS_INVALID
            reason_nb[i] = "geometrien inneholder ingen flate"
            reason_en[i] = "the geometry contains no area"
        else:
            geoms[i] = polys

    out = frame.copy()
    out["geometry"] = gpd.GeoSeries(geoms, crs=frame.crs, index=frame.index)
    out.insert(2, "status", status)
    out.insert(3, "status_reason_nb", reason_nb)
    out.insert(4, "status_reason_en", reason_en)
    out.insert(5, "input_note_nb", note_nb)
    out.insert(6, "input_note_en", note_en)
    return out


def _polygonal_part(geom: shapely.Geometry) -> shapely.Geometry | None:
    parts = [g for g in shapely.get_parts(geom) if shapely.get_type_id(g) in (3, 6)]
    parts = [p for p in parts if not p.is_empty and p.area > 0]
    if not parts:
        return None
    return shapely.union_all(parts)


def local_crs(frame: gpd.GeoDataFrame, setting: str = "auto") -> CRS:
    """Choose the local metric CRS for the plots.

    ``"auto"`` picks ETRS89 / UTM by the median longitude of the plots: zone 32
    (EPSG:25832) west of 12°E, zone 33 (EPSG:25833) to 24°E, zone 35 (EPSG:25835) east of
    that — the zones Norwegian municipalities use. Any other value is taken as a CRS and
    must be projected in metres.
    """
    if setting != "auto":
        try:
            crs = CRS.from_user_input(setting)
        except Exception as exc:  # pyproj raises CRSError, a bare Exception subclass
            raise InputError(
                f"unknown CRS '{setting}' ({exc})",
                where="scenario field 'crs'",
                hint="Use 'auto' or an EPSG code such as EPSG:25833",
            ) from None
        if not crs.is_projected:
            raise InputError(
                f"CRS '{setting}' is not projected (distances must be in metres)",
                where="scenario field 'crs'",
                hint="Use 'auto' or a projected CRS such as EPSG:25833",
            )
        return crs
    valid = frame.geometry[~(frame.geometry.is_empty | frame.geometry.isna())]
    if len(valid) == 0:
        return CRS.from_epsg(25833)
    lon = valid.to_crs(4326).representative_point().x.median()
    epsg = 25832 if lon < 12 else 25833 if lon < 24 else 25835
    return CRS.from_epsg(epsg)


def to_local(frame: gpd.GeoDataFrame, crs: CRS) -> gpd.GeoDataFrame:
    """Reproject plots to ``crs`` and add ``area_m2`` (NaN unless the plot is an area)."""
    out = frame.to_crs(crs)
    area = out.geometry.area.astype(float)
    area[~out.geometry.geom_type.isin(["Polygon", "MultiPolygon"]) | out.geometry.is_empty] = np.nan
    if "area_m2" in out.columns:
        # Keep a user-supplied area for point plots (CSV with lat/lon and an area column).
        given = pd.to_numeric(out["area_m2"], errors="coerce")
        area = area.where(area.notna(), given)
        out = out.drop(columns=["area_m2"])
    out.insert(out.columns.get_loc("input_note_en") + 1, "area_m2", area.to_numpy())
    return out
