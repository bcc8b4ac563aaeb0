"""Write the ranked plots and the run manifest.

``ranked.csv`` is for spreadsheets (no geometry; a WGS84 point per plot so it can be put
on a map again), ``ranked.gpkg`` for GIS (the plot polygons with every column; opens in
GDAL and QGIS), ``manifest.json`` records what was run on what: inputs with checksums,
the scenario, package versions, timings per step and the SHA-256 of every output file.

Every CSV sitefinder writes is safe to open in a spreadsheet: a text cell (any cell that
is not a plain number) beginning with ``=``, ``+``, ``-``, ``@``, a tab or a carriage
return gets a leading apostrophe, so Excel and LibreOffice show it as text instead of
running it as a formula (see :func:`protect_cell`, docs/CONTRACT.md). Lines end in CRLF
(RFC 4180), so a cell that holds a line break stays one cell.
"""

from __future__ import annotations

import csv
import io
import json
import platform
import re
import sys
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

from sitefinder.config import Scenario
from sitefinder.outfolder import checkpoint, sha256_of
from sitefinder.qgis_styles import style_ranked
from sitefinder.sources.osm import file_sha256

_PACKAGES = (
    "sitefinder", "numpy", "pandas", "geopandas", "shapely", "pyogrio", "pyproj", "scipy",
    "osmium", "folium", "rasterio", "pydantic",
)


#: First characters that make a spreadsheet read a cell as a formula (or, for tab and
#: carriage return, that hide one behind white space).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
#: RFC 4180 line end. With it the csv writer quotes a cell holding a carriage return, which
#: with a bare "\n" it leaves unquoted, so that spreadsheets split the row there.
CSV_LINE_END = "\r\n"
_PLAIN_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def protect_cell(value: Any) -> Any:
    """A CSV cell as a spreadsheet should show it: formula-like text gets a leading ``'``.

    Text (anything but a plain number such as ``-12.5``) that begins with ``=``, ``+``,
    ``-``, ``@``, a tab or a carriage return is prefixed with an apostrophe; everything
    else is returned unchanged.

    Parameters
    ----------
    value : object
        The cell.

    Returns
    -------
    object
    """
    if (
        isinstance(value, str)
        and value.startswith(FORMULA_STARTS)
        and not _PLAIN_NUMBER.fullmatch(value)
    ):
        return "'" + value
    return value


def protect_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with :func:`protect_cell` applied to its header and text columns."""
    out = frame.copy()
    for column in out.columns:
        series = out[column]
        if isinstance(series.dtype, pd.CategoricalDtype):
            series = series.astype(object)
        if pd.api.types.is_object_dtype(series) or pd.api.types.is_string_dtype(series):
            out[column] = series.map(protect_cell)
    out.columns = [protect_cell(str(c)) for c in out.columns]
    return out


def protect_csv_file(path: str | Path) -> Path:
    """Apply :func:`protect_cell` to every cell of a CSV file written by someone else.

    The file is rewritten as sitefinder writes its own CSVs: the same encoding (a UTF-8
    byte order mark stays), lines ending in CRLF (RFC 4180; a cell holding a line break
    or carriage return is then quoted and stays one cell).

    Parameters
    ----------
    path : str or Path
        The CSV file.

    Returns
    -------
    Path
    """
    path = Path(path)
    data = path.read_bytes()
    encoding = "utf-8-sig" if data.startswith(b"\xef\xbb\xbf") else "utf-8"
    text = data.decode(encoding)
    rows = list(csv.reader(io.StringIO(text, newline="")))
    buffer = io.StringIO(newline="")
    csv.writer(buffer, lineterminator=CSV_LINE_END).writerows(
        [protect_cell(cell) for cell in row] for row in rows
    )
    path.write_bytes(buffer.getvalue().encode(encoding))
    return path


def ranked_table(ranked: pd.DataFrame) -> pd.DataFrame:
    """The ranked plots as a table: no geometry, a WGS84 point (``lon``, ``lat``) per plot.

    The point lies inside the plot, so the table can be put on a map again; plots without
    a geometry keep empty coordinates. A frame without geometry is returned as it is.

    Parameters
    ----------
    ranked : GeoDataFrame
        The ranked plots.

    Returns
    -------
    DataFrame
    """
    if not isinstance(ranked, gpd.GeoDataFrame):
        return pd.DataFrame(ranked)
    table = pd.DataFrame(ranked.drop(columns=[ranked.geometry.name, *_extra_geometry(ranked)]))
    valid = ~(ranked.geometry.isna() | ranked.geometry.is_empty)
    points = ranked.geometry[valid].representative_point().to_crs(4326)
    table["lon"] = np.nan
    table["lat"] = np.nan
    table.loc[valid, "lon"] = points.x.round(6)
    table.loc[valid, "lat"] = points.y.round(6)
    return table


def write_ranked_csv(ranked: gpd.GeoDataFrame, path: str | Path) -> Path:
    """Write ranked plots as CSV (UTF-8 with BOM so Excel shows æøå), no geometry.

    Adds ``lon`` and ``lat``: a point inside each plot, in WGS84 (:func:`ranked_table`).
    Formula-like text is written as text (:func:`protect_cell`). The CSV is for programs
    (comma-separated, decimal point); people get ``ranked.xlsx``
    (:func:`sitefinder.spreadsheets.write_ranked_xlsx`).
    """
    path = Path(path)
    protect_frame(ranked_table(ranked)).to_csv(path, index=False, encoding="utf-8-sig",
                                               lineterminator=CSV_LINE_END)
    return path


def write_ranked_gpkg(
    ranked: gpd.GeoDataFrame, path: str | Path, layer: str = "ranked", language: str = "nb"
) -> Path:
    """Write ranked plots as a GeoPackage layer (plots without geometry are kept).

    ``rank`` is an integer field (NULL where a plot is not ranked); the unit layout is
    the layer ``unit_layout``; the table ``layer_styles`` holds the default QGIS styles
    (:func:`sitefinder.qgis_styles.style_ranked`), named in ``language``.
    """
    path = Path(path)
    if path.exists():
        path.unlink()
    extra = _extra_geometry(ranked)
    frame = ranked.drop(columns=extra)
    # An integer field with NULL where a plot is not ranked, so QGIS sorts and filters
    # ranks as whole numbers.
    frame["rank"] = frame["rank"].astype("Int64")
    pyogrio.write_dataframe(frame, path, layer=layer, driver="GPKG", promote_to_multi=False)
    checkpoint("write-gpkg")  # test hook: one layer written, the next not yet
    if "layout" in extra:
        # The unit layout is a second geometry per plot: its own layer in the same file.
        units = gpd.GeoDataFrame(
            {"plot_id": ranked["plot_id"].to_numpy(),
             "capacity_units": ranked["capacity_units"].to_numpy()},
            geometry=gpd.GeoSeries(ranked["layout"].to_numpy(), crs=ranked.crs),
        )
        units = units[~(units.geometry.isna() | units.geometry.is_empty)]
        pyogrio.write_dataframe(units, path, layer="unit_layout", driver="GPKG",
                                promote_to_multi=True)
    # QGIS opens the plots coloured by score class (the table layer_styles).
    style_ranked(path, frame, language, layer)
    return path


def _extra_geometry(frame: gpd.GeoDataFrame) -> list[str]:
    """Geometry-valued columns other than the active geometry (e.g. ``layout``)."""
    return [
        c for c in frame.columns
        if c != frame.geometry.name
        and frame[c].dtype == object
        and frame[c].map(lambda v: isinstance(v, shapely.Geometry)).any()
    ]


def package_versions() -> dict[str, str]:
    """Versions of Python, GDAL and the packages that shape the results."""
    versions = {"python": sys.version.split()[0], "platform": platform.platform()}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    versions["gdal"] = pyogrio.__gdal_version_string__
    return versions


def write_manifest(
    path: str | Path,
    *,
    inputs: dict[str, Path | None],
    scenario: Scenario,
    timings: dict[str, float],
    outputs: list[Path],
    extra: dict[str, Any] | None = None,
    public: bool = False,
    shown_dir: str | Path | None = None,
    study: dict[str, Any] | None = None,
) -> Path:
    """Write ``manifest.json``: inputs with SHA-256, scenario, versions, timings, outputs.

    Parameters
    ----------
    path : str or Path
        The manifest to write, in the folder that holds the ``outputs``.
    inputs : dict of str to Path or None
        Input files by role; each is recorded with its SHA-256 and size.
    scenario : Scenario
        The scenario, recorded in full.
    timings : dict of str to float
        Seconds per step.
    outputs : list of Path
        The run's output files; ``files`` records each one's SHA-256 and size, so a
        reader can check that the folder is complete and from one run.
    extra : dict, optional
        More top-level entries.
    public : bool
        Name the sensitive existing-sites source only as omitted.
    shown_dir : str or Path, optional
        The folder the outputs will be in (when written into a staging folder first);
        ``outputs`` lists their paths there.
    study : dict, optional
        The study's inputs (:meth:`sitefinder.outfolder.StudyInputs.record`), so that
        ``select`` and ``report`` can add to this folder's study.

    Returns
    -------
    Path
    """
    path = Path(path)
    scenario_dump = scenario.model_dump(mode="json")
    if public and scenario_dump.get("existing_sites"):
        scenario_dump["existing_sites"] = "(sensitive: omitted in public mode)"
    files = {
        Path(p).name: {"sha256": sha256_of(p), "bytes": Path(p).stat().st_size}
        for p in outputs
        if Path(p).name != path.name
    }
    manifest = {
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "inputs": {
            role: {"path": str(p), "sha256": file_sha256(p), "bytes": Path(p).stat().st_size}
            for role, p in inputs.items()
            if p is not None and Path(p).is_file()
        },
        "scenario": scenario_dump,
        "versions": package_versions(),
        "timings_s": timings,
        "outputs": [
            str(Path(shown_dir) / Path(p).name if shown_dir is not None else p) for p in outputs
        ],
        "files": files,
    }
    if study is not None:
        manifest["study"] = study
    if extra:
        manifest.update(extra)
    path.write_text(json.dumps(manifest, indent=2, ensure_ascii=False), encoding="utf-8")
    return path
