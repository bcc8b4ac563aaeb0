"""Read the municipality's candidate plots and bring them into one local metric CRS.

Accepted: GeoPackage, GeoJSON, Shapefile (anything GDAL reads) and CSV with either a
WKT column or latitude/longitude columns. Whole-file problems (missing or unreadable
file, no CRS, duplicate ids) stop the run with an :class:`~sitefinder.errors.InputError`
naming the file, rows and what to do. Per-plot problems (empty or invalid geometry, a
line instead of a polygon) never drop the plot: it gets a ``status`` and a reason in
Norwegian and English and stays in every output.
"""

from __future__ import annotations

import csv
import difflib
from collections.abc import Callable
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely
from pyproj import CRS, Geod, Transformer

from sitefinder.errors import InputError

STATUS_OK = "ok"
STATUS_EMPTY = "empty_geometry"
STATUS_INVALID = "invalid_geometry"
STATUS_TOO_LARGE = "too_large"
STATUS_DUPLICATE = "duplicate"

#: The plot id column read when ``--id-column`` is not given. Only this name may be
#: absent (plots are then numbered ``row-1``, ``row-2`` ...); any other name must exist.
DEFAULT_ID_COLUMN = "plot_id"
#: Largest area (m²) accepted as one building plot: 5 ha. Plots for småhus are a few
#: thousand m²; a polygon larger than this is a field, a district or a whole municipality
#: included by mistake, and would otherwise be ranked like a plot (with every service
#: "on the plot"). Such plots get status ``too_large``; change it with ``max_area_m2``.
MAX_PLOT_AREA_M2 = 50_000.0

_WKT_COLUMNS = ("wkt", "geometry", "geom", "the_geom")
#: Columns sitefinder adds to the plots; a user column of the same name is kept as
#: ``input_<name>`` so nothing the municipality wrote is lost or overwritten.
RESERVED_COLUMNS = (
    "source_row", "status", "status_reason_nb", "status_reason_en", "input_note_nb",
    "input_note_en",
)
_LAT_COLUMNS = ("lat", "latitude", "breddegrad")
_LON_COLUMNS = ("lon", "lng", "long", "longitude", "lengdegrad")
# WKT cells that mean "no geometry" (spreadsheets write these for empty cells).
_NO_WKT = {"", "nan", "none", "null", "na", "n/a", "#n/a"}
# Margin (degrees, about 1 km) around the OSM extract when judging where plots lie.
_EXTENT_MARGIN_DEG = 0.01


def read_plots(
    path: str | Path,
    *,
    id_column: str = DEFAULT_ID_COLUMN,
    crs: str | None = None,
    layer: str | None = None,
    max_area_m2: float | None = MAX_PLOT_AREA_M2,
) -> gpd.GeoDataFrame:
    """Read a plot file, validating it and marking per-plot problems.

    Parameters
    ----------
    path : str or Path
        GeoPackage, GeoJSON, Shapefile or CSV.
    id_column : str
        Column with the plot id. Only when it is the default (``plot_id``) may the file
        lack it: ids ``row-1``, ``row-2`` ... are then made from the row order. A file
        that has both ``id_column`` and a ``plot_id`` column keeps the latter as
        ``input_plot_id``.
    crs : str, optional
        CRS of the file when it declares none (e.g. ``"EPSG:25833"``); CSV with
        latitude/longitude is always EPSG:4326. Also used when the file claims
        longitude/latitude but holds coordinates that cannot be degrees (a GeoJSON
        without a ``crs`` member holding UTM metres).
    layer : str, optional
        Layer to read from a multi-layer GeoPackage (default: the first).
    max_area_m2 : float or None
        Plots larger than this (m²) get status ``too_large`` (default
        :data:`MAX_PLOT_AREA_M2`, 5 ha); ``None`` accepts any size.

    Returns
    -------
    GeoDataFrame
        Columns ``plot_id`` (str), ``source_row`` (1-based), ``status``,
        ``status_reason_nb``, ``status_reason_en``, ``input_note_en``,
        ``input_note_nb``, the file's own columns, and ``geometry`` in the file's CRS.
        Plots with a problem keep their row, with ``status`` other than ``"ok"``:
        ``empty_geometry``, ``invalid_geometry``, ``too_large`` or ``duplicate`` (the
        same geometry as an earlier plot, whose id the reason names).

    Raises
    ------
    InputError
        Missing/unreadable/empty file, no CRS, coordinates that contradict the CRS,
        an id column that does not exist, duplicate ids, or no plots at all.
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
        elif crs is not None and frame.crs.is_geographic and _all_beyond_degrees(frame):
            # Declared lon/lat (GeoJSON always is) but holding metres: --plots-crs says what.
            frame = frame.set_crs(crs, allow_override=True)
    _check_degrees(frame, path, crs_given=crs is not None)
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
    frame = _check_geometries(frame)
    if max_area_m2 is not None:
        _mark_too_large(frame, max_area_m2)
    _mark_duplicates(frame)
    return frame


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


def _refuse_several_layers(path: Path) -> None:
    """Refuse a plot file with several layers unless one is named.

    A GeoPackage with drafts and a final list is ambiguous: reading the first layer would
    silently leave the other plots out.
    """
    try:
        layers = pyogrio.list_layers(path)
    except Exception:  # unreadable: the read below reports it with its own message
        return
    spatial = [str(name) for name, geometry in layers if geometry is not None]
    if len(spatial) > 1:
        raise InputError(
            f"the plot file holds {len(spatial)} layers ({', '.join(spatial)}); sitefinder "
            "does not guess which are the candidate plots",
            path=path,
            hint="Save the layer with the plots as a file of its own (QGIS: Export > Save "
            "Features As), or pass layer= to read_plots/Study from Python",
        )


def _read_vector(path: Path, layer: str | None) -> gpd.GeoDataFrame:
    if layer is None:
        _refuse_several_layers(path)
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
    if path.stat().st_size == 0:
        raise InputError(
            "the CSV file is empty (0 bytes)",
            path=path,
            hint="Export the plots again; the file needs a header row and one row per plot",
        )
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False, sep=None, engine="python")
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError, csv.Error) as exc:
        raise InputError(
            f"the CSV file could not be read ({str(exc).splitlines()[0] if str(exc) else exc!r})",
            path=path,
            hint="Save it as UTF-8 CSV with a header row and one row per plot (a file that "
            "was cut off while copying must be exported again)",
        ) from None
    if not isinstance(table.index, pd.RangeIndex):
        # pandas files the extra fields of a too-long row under the index: the usual cause
        # is unquoted WKT, whose commas split one geometry into many fields.
        raise InputError(
            "a row of the CSV has more fields than its header",
            path=path,
            hint="Put the WKT in double quotes (\"POLYGON ((…))\"), or use a separator the "
            "geometry does not contain (;)",
        )
    # A short row leaves its last fields missing: read them as blank cells.
    table = table.fillna("")
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
        text = table.pop(wkt_col).str.strip().to_numpy(dtype=object)
        # A blank cell, or what a spreadsheet writes for one ("NaN", "NULL"), is no
        # geometry: the plot becomes empty_geometry, like unreadable WKT.
        blank = np.array([t.lower() in _NO_WKT for t in text], dtype=bool)
        text[blank] = None
        geoms = shapely.from_wkt(text, on_invalid="ignore")
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
    if id_column not in frame.columns and id_column != DEFAULT_ID_COLUMN:
        # An id column asked for by name must exist: numbering rows instead would give
        # ids that match nothing in the municipality's own lists.
        present = [
            str(c) for c in frame.columns if c not in (frame.geometry.name, "source_row")
        ]
        close = difflib.get_close_matches(id_column, present, n=3, cutoff=0.6)
        close += [c for c in present if c.lower() == id_column.lower() and c not in close]
        maybe = f"Did you mean {' or '.join(repr(c) for c in close)}? " if close else ""
        raise InputError(
            f"there is no column '{id_column}' to take plot ids from",
            path=path,
            where="--id-column",
            hint=f"{maybe}Columns in the file: {', '.join(present) or '(none)'}. Give one of "
            "them with --id-column, or leave --id-column out to number the plots by row",
        )
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
    if "plot_id" in frame.columns:  # ids come from another column: keep this one as input
        frame = frame.rename(columns={"plot_id": "input_plot_id"})
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

    # Coordinates that are not numbers (NaN, inf in WKT or GeoJSON) cannot be placed.
    coords, owner = shapely.get_coordinates(geoms, return_index=True)
    not_finite = np.zeros(n, dtype=bool)
    not_finite[owner[~np.isfinite(coords).all(axis=1)]] = True
    not_finite &= ~missing
    status[not_finite] = STATUS_INVALID
    reason_nb[not_finite] = "koordinatene er ikke tall (NaN eller uendelig)"
    reason_en[not_finite] = "the coordinates are not numbers (NaN or infinite)"
    if frame.crs is not None and frame.crs.is_geographic:
        beyond = ~missing & ~not_finite & _beyond_degrees(geoms)
        status[beyond] = STATUS_INVALID
        reason_nb[beyond] = (
            "koordinatene er utenfor gyldig lengde-/breddegrad (±180°/±90°); rett opp tomten"
        )
        reason_en[beyond] = (
            "the coordinates are outside valid longitude/latitude (±180°/±90°); fix the plot"
        )
        not_finite |= beyond
    missing = missing | not_finite  # neither may be checked further

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


def _beyond_degrees(geoms: np.ndarray) -> np.ndarray:
    """Per geometry: True where a coordinate lies beyond ±180° longitude or ±90° latitude."""
    bounds = shapely.bounds(geoms)  # NaN for missing/empty geometries -> False below
    with np.errstate(invalid="ignore"):
        return (np.abs(bounds[:, [0, 2]]) > 180).any(axis=1) | (
            np.abs(bounds[:, [1, 3]]) > 90
        ).any(axis=1)


def _all_beyond_degrees(frame: gpd.GeoDataFrame) -> bool:
    """True when the file has geometries and none of them can be longitude/latitude."""
    geoms = frame.geometry.to_numpy()
    present = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    return bool(present.any() and _beyond_degrees(geoms[present]).all())


def _check_degrees(frame: gpd.GeoDataFrame, path: Path, *, crs_given: bool) -> None:
    """Refuse a file read as longitude/latitude whose coordinates are all metres."""
    if frame.crs is None or not frame.crs.is_geographic or not _all_beyond_degrees(frame):
        return
    geoms = frame.geometry.to_numpy()
    x0, y0 = shapely.bounds(geoms[~(shapely.is_missing(geoms) | shapely.is_empty(geoms))][0])[:2]
    said = (
        f"--plots-crs says {frame.crs.to_string()}" if crs_given else
        "the file is read as longitude/latitude (a GeoJSON without a \"crs\" member always is)"
    )
    raise InputError(
        f"the coordinates are not longitude/latitude (e.g. x={x0:.0f}, y={y0:.0f}), but {said}",
        path=path,
        hint="They look like metres in a projected CRS: if they are UTM 33N (most of Norway), "
        "pass --plots-crs EPSG:25833 (EPSG:25832 for UTM 32N, EPSG:25835 for UTM 35N); better, "
        "save the file from QGIS as GeoPackage, which records its CRS",
    )


def plot_areas_m2(frame: gpd.GeoDataFrame) -> np.ndarray:
    """Area of each plot in m², whatever the CRS of the file (NaN unless polygonal).

    Parameters
    ----------
    frame : GeoDataFrame
        Plots with a CRS, as read (projected or longitude/latitude).

    Returns
    -------
    ndarray of float
        Planar area for a projected CRS (in its unit, converted to metres); the area on
        the ellipsoid for a geographic CRS. NaN for points, lines, missing geometries.
    """
    geoms = frame.geometry.to_numpy()
    polygonal = np.isin(shapely.get_type_id(geoms), [3, 6]) & ~shapely.is_empty(geoms)
    area = np.full(len(geoms), np.nan)
    if not polygonal.any() or frame.crs is None:
        return area
    if frame.crs.is_geographic:
        geod = Geod(ellps="WGS84")
        for i in np.flatnonzero(polygonal):  # plots: hundreds, not millions
            area[i] = abs(geod.geometry_area_perimeter(geoms[i])[0])
    else:
        unit = frame.crs.axis_info[0].unit_conversion_factor if frame.crs.axis_info else 1.0
        area[polygonal] = shapely.area(geoms[polygonal]) * unit**2
    return area


def _format_area(m2: float) -> str:
    if m2 >= 1_000_000:
        return f"{m2 / 1_000_000:,.1f} km²".replace(".0 km²", " km²")
    if m2 >= 10_000:
        return f"{m2 / 10_000:,.1f} ha".replace(".0 ha", " ha")
    return f"{m2:,.0f} m²"


def _mark_too_large(frame: gpd.GeoDataFrame, max_area_m2: float) -> None:
    """Give plots larger than ``max_area_m2`` status ``too_large`` (in place)."""
    area = plot_areas_m2(frame)
    with np.errstate(invalid="ignore"):
        large = (frame["status"].to_numpy() == STATUS_OK) & (area > max_area_m2)
    limit = _format_area(max_area_m2)
    for i in np.flatnonzero(large):
        size = _format_area(area[i])
        frame.loc[frame.index[i], ["status", "status_reason_nb", "status_reason_en"]] = [
            STATUS_TOO_LARGE,
            f"tomten er {size}, større enn grensen for én byggetomt ({limit}): trolig er et "
            "helt område (jorde, bydel, kommune) lagt inn ved en feil; del det opp i tomter",
            f"the plot is {size}, larger than the limit for one building plot ({limit}): "
            "probably a whole area (a field, a district, the municipality) was included by "
            "mistake; split it into plots",
        ]


def _mark_duplicates(frame: gpd.GeoDataFrame) -> None:
    """Give a plot with the same geometry as an earlier one status ``duplicate`` (in place).

    The same site under two ids would be ranked, and could be selected, twice.
    """
    ok = np.flatnonzero(frame["status"].to_numpy() == STATUS_OK)
    if len(ok) < 2:
        return
    keys = shapely.to_wkb(shapely.normalize(frame.geometry.to_numpy()[ok]))
    # Position (in ``ok``) of the first plot with each geometry, in one hash pass.
    position = np.arange(len(ok))
    first = pd.Series(position).groupby(keys, sort=False).transform("first").to_numpy()
    later = first != position
    for i, j in zip(ok[later], ok[first[later]], strict=True):
        other, row = frame["plot_id"].iat[j], frame["source_row"].iat[j]
        frame.loc[frame.index[i], ["status", "status_reason_nb", "status_reason_en"]] = [
            STATUS_DUPLICATE,
            f"samme geometri som tomt {other} (rad {row}); bare den er med i rangeringen",
            f"the same geometry as plot {other} (row {row}); only that one is ranked, so "
            "the site cannot be chosen twice",
        ]


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
    if "status" in frame.columns:  # plots that cannot be placed must not choose the zone
        valid = valid[frame.loc[valid.index, "status"] == STATUS_OK]
    with np.errstate(invalid="ignore"):  # coordinates that cannot be projected: NaN/inf
        lon = valid.to_crs(4326).representative_point().x
    lon = lon[np.isfinite(lon)]
    if len(lon) == 0:
        return CRS.from_epsg(25833)
    lon = lon.median()
    epsg = 25832 if lon < 12 else 25833 if lon < 24 else 25835
    return CRS.from_epsg(epsg)


def to_local(frame: gpd.GeoDataFrame, crs: CRS) -> gpd.GeoDataFrame:
    """Reproject plots to ``crs`` and add ``area_m2`` (NaN unless the plot is an area).

    A plot whose coordinates cannot be converted to ``crs`` or to longitude/latitude (for
    the maps) keeps its row with status ``invalid_geometry``, a reason and no geometry.

    Parameters
    ----------
    frame : GeoDataFrame
        Plots from :func:`read_plots`.
    crs : CRS
        The local metric CRS (:func:`local_crs`).

    Returns
    -------
    GeoDataFrame
        The plots in ``crs`` with ``area_m2`` after ``input_note_en``.
    """
    out = frame.to_crs(crs)
    broken = np.zeros(len(out), dtype=bool)
    for converted in (out, frame.to_crs(4326)):
        coords, owner = shapely.get_coordinates(converted.geometry.to_numpy(), return_index=True)
        broken[owner[~np.isfinite(coords).all(axis=1)]] = True
    if broken.any():
        out = out.copy()
        out.loc[broken, "geometry"] = None
        out.loc[broken & (out["status"] == STATUS_OK).to_numpy(), [
            "status", "status_reason_nb", "status_reason_en"
        ]] = [
            STATUS_INVALID,
            f"koordinatene kan ikke regnes om til {crs.name} eller til lengde-/breddegrad; "
            "kontroller tomtens CRS",
            f"the coordinates cannot be converted to {crs.name} or to longitude/latitude; "
            "check the plot's CRS",
        ]
    area = out.geometry.area.astype(float)
    area[~out.geometry.geom_type.isin(["Polygon", "MultiPolygon"]) | out.geometry.is_empty] = np.nan
    if "area_m2" in out.columns:
        # Keep a user-supplied area for point plots (CSV with lat/lon and an area column).
        given = pd.to_numeric(out["area_m2"], errors="coerce")
        area = area.where(area.notna(), given)
        out = out.drop(columns=["area_m2"])
    out.insert(out.columns.get_loc("input_note_en") + 1, "area_m2", area.to_numpy())
    return out


def _in_extent(
    lon: np.ndarray, lat: np.ndarray, extent: tuple[float, float, float, float]
) -> np.ndarray:
    """Which points lie in the extract's extent (degrees), with a small margin."""
    west, south, east, north = extent
    m = _EXTENT_MARGIN_DEG
    return (lon >= west - m) & (lon <= east + m) & (lat >= south - m) & (lat <= north + m)


def diagnose_plots_crs(
    plots: gpd.GeoDataFrame, extent: tuple[float, float, float, float]
) -> tuple[str, str] | None:
    """Tell why plots miss the map extract when their coordinates are read the wrong way.

    Plots (with ``status`` ok) that all lie outside ``extent`` as read, but mostly inside
    it when their x/y are read as longitude/latitude, or with latitude and longitude
    swapped, were almost certainly given the wrong CRS or axis order.

    Parameters
    ----------
    plots : GeoDataFrame
        Plots as read by :func:`read_plots`, in the CRS of the file.
    extent : tuple of float
        West, south, east, north of the map extract in degrees (``OsmData.bounds``).

    Returns
    -------
    tuple of (str, str) or None
        ``(problem, hint)`` for an :class:`~sitefinder.errors.InputError`, or ``None``
        when the plots are in the extract or no other reading places them there.
    """
    xy = _plot_points(plots)
    if xy is None or plots.crs is None:
        return None
    west, south, east, north = extent
    if not (np.isfinite(extent).all() and east > west and north > south):
        return None

    def inside(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        return _in_extent(lon, lat, extent)

    lon, lat = Transformer.from_crs(plots.crs, 4326, always_xy=True).transform(*xy.T)
    with np.errstate(invalid="ignore"):
        if inside(np.asarray(lon), np.asarray(lat)).any():
            return None
        x, y = xy.T
        example = f"e.g. x={x[0]:.6g}, y={y[0]:.6g}"
        name = plots.crs.to_string()
        if plots.crs.is_geographic:
            if inside(y, x).mean() >= 0.5:
                return (
                    f"the plots lie outside the map extract, and their latitude and longitude "
                    f"look swapped ({example}: x should be the longitude)",
                    "Write longitude first: x = longitude, y = latitude (WKT and GeoJSON are "
                    "'lon lat'); in a CSV, check that the columns 'lat' and 'lon' are not "
                    "swapped",
                )
            return None
        if inside(x, y).mean() >= 0.5:
            return (
                f"the plots lie outside the map extract: their coordinates look like "
                f"longitude/latitude ({example}), but they are read as {name}",
                "Set --plots-crs EPSG:4326 (for a file that declares the wrong CRS, set it "
                "to EPSG:4326 in QGIS with Layer > Set CRS and save again)",
            )
        if inside(y, x).mean() >= 0.5:
            return (
                f"the plots lie outside the map extract: their coordinates look like "
                f"latitude/longitude with lat/lon swapped ({example}), but they are read as "
                f"{name}",
                "Set --plots-crs EPSG:4326 and write longitude first (x = longitude, "
                "y = latitude)",
            )
    return None


#: UTM zones Norwegian data come in (ETRS89 and WGS 84): a file declaring the wrong one
#: lands hundreds of kilometres away.
_NORDIC_UTM_EPSG: tuple[int, ...] = (25832, 25833, 25835, 32632, 32633, 32635)


def _utm_zone(crs: CRS) -> int | None:
    """The UTM zone number of an EPSG 258xx/326xx CRS, else None."""
    code = crs.to_epsg() or 0
    return code % 100 if code // 100 in (258, 326) else None


def check_utm_zone(
    plots: gpd.GeoDataFrame,
    file_crs: CRS | None,
    extent: tuple[float, float, float, float],
    *,
    path: str | Path | None = None,
) -> None:
    """Refuse plots that miss the extract but would lie in it read in another UTM zone.

    Called when no plot reached the walking network: e.g. EPSG:25833 coordinates in a file
    that declares EPSG:25832 (or ``--plots-crs`` given wrong) come out 100–300 km away.

    Parameters
    ----------
    plots : GeoDataFrame
        Plots (any CRS) with ``status``.
    file_crs : CRS or None
        The CRS the plot coordinates were read in (the file's, or ``--plots-crs``).
    extent : tuple of float
        West, south, east, north of the map extract in degrees.
    path : str or Path, optional
        The plot file, for the message.

    Raises
    ------
    InputError
        Another Nordic UTM zone places at least half the plots inside the extract.
    """
    if file_crs is None or file_crs.is_geographic:
        return
    xy = _plot_points(plots.to_crs(file_crs))
    west, south, east, north = extent
    if xy is None or not (east > west and north > south):
        return

    def share_inside(crs: CRS | int) -> float:
        lon, lat = Transformer.from_crs(crs, 4326, always_xy=True).transform(*xy.T)
        return float(_in_extent(np.asarray(lon), np.asarray(lat), extent).mean())

    if share_inside(file_crs) > 0:
        return  # the plots are in the extract: something else keeps them off the network
    zone = _utm_zone(file_crs)
    for code in _NORDIC_UTM_EPSG:
        if code % 100 == zone:
            continue  # ETRS89 and WGS 84 of the same zone lie within a metre of each other
        if share_inside(code) >= 0.5:
            raise InputError(
                f"no plot lies in the map extract as read in {file_crs.to_string()}, but "
                f"they would read as EPSG:{code}: the plots' CRS looks wrong",
                path=path,
                hint=f"Set --plots-crs EPSG:{code} (for a file that declares the wrong CRS, "
                "set it in QGIS with Layer > Set CRS and save again)",
            )


def check_plots_crs(
    plots: gpd.GeoDataFrame,
    extent: tuple[float, float, float, float] | Callable[[], tuple[float, float, float, float]],
    *,
    path: str | Path | None = None,
) -> None:
    """Refuse plots whose CRS or axis order is evidently wrong (see :func:`diagnose_plots_crs`).

    Parameters
    ----------
    plots : GeoDataFrame
        Plots as read by :func:`read_plots`, in the CRS of the file.
    extent : tuple of float or callable
        Extent of the map extract in degrees, or a function returning it. The function
        is called only when another reading of the coordinates is possible at all
        (projected coordinates within ±180/±90, or longitude/latitude that could be
        swapped), so a normal projected plot file never makes the extract be read early.
    path : str or Path, optional
        The plot file, for the message.

    Raises
    ------
    InputError
        The plots miss the extract, and would fall inside read as longitude/latitude or
        with latitude and longitude swapped.
    """
    xy = _plot_points(plots)
    if xy is None or plots.crs is None:
        return
    x, y = np.abs(xy.T)
    if plots.crs.is_geographic:
        possible = bool((x <= 90).any())  # a longitude that could be a latitude
    else:
        possible = bool(((x <= 180) & (y <= 90)).any() or ((y <= 180) & (x <= 90)).any())
    if not possible:
        return
    found = diagnose_plots_crs(plots, extent() if callable(extent) else extent)
    if found is not None:
        problem, hint = found
        raise InputError(problem, path=path, hint=hint)


def _plot_points(plots: gpd.GeoDataFrame) -> np.ndarray | None:
    """One point (bounding-box centre) per plot with status ok, or None if there is none."""
    geoms = plots.geometry.to_numpy()
    usable = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    if "status" in plots.columns:
        usable &= plots["status"].to_numpy() == STATUS_OK
    if not usable.any():
        return None
    b = shapely.bounds(geoms[usable])
    xy = np.column_stack([(b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2])
    xy = xy[np.isfinite(xy).all(axis=1)]
    return xy if len(xy) else None
