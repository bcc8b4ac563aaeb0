"""Write the ranked plots and the run manifest.

``ranked.csv`` is for spreadsheets (no geometry; a WGS84 point per plot so it can be put
on a map again), ``ranked.gpkg`` for GIS (the plot polygons with every column; opens in
GDAL and QGIS), ``manifest.json`` records what was run on what: inputs with checksums,
the scenario, package versions and timings per step.
"""

from __future__ import annotations

import json
import platform
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
from sitefinder.sources.osm import file_sha256

_PACKAGES = (
    "sitefinder", "numpy", "pandas", "geopandas", "shapely", "pyogrio", "pyproj", "scipy",
    "osmium", "folium", "rasterio", "pydantic",
)


def write_ranked_csv(ranked: gpd.GeoDataFrame, path: str | Path) -> Path:
    """Write ranked plots as CSV (UTF-8 with BOM so Excel shows æøå), no geometry.

    Adds ``lon`` and ``lat``: a point inside each plot, in WGS84.
    """
    path = Path(path)
    table = pd.DataFrame(ranked.drop(columns=["geometry", *_extra_geometry(ranked)]))
    valid = ~(ranked.geometry.isna() | ranked.geometry.is_empty)
    points = ranked.geometry[valid].representative_point().to_crs(4326)
    table["lon"] = np.nan
    table["lat"] = np.nan
    table.loc[valid, "lon"] = points.x.round(6)
    table.loc[valid, "lat"] = points.y.round(6)
    table.to_csv(path, index=False, encoding="utf-8-sig")
    return path


def write_ranked_gpkg(ranked: gpd.GeoDataFrame, path: str | Path, layer: str = "ranked") -> Path:
    """Write ranked plots as a GeoPackage layer (plots without geometry are kept)."""
    path = Path(path)
    if path.exists():
        path.unlink()
    extra = _extra_geometry(ranked)
    frame = ranked.drop(columns=extra)
    # GeoPackage has no nullable integer type with NA; store rank as float (NaN = unranked).
    frame["rank"] = frame["rank"].astype("Float64").astype(float)
    pyogrio.write_dataframe(frame, path, layer=layer, driver="GPKG", promote_to_multi=False)
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
) -> Path:
    """Write ``manifest.json``: inputs with SHA-256, scenario, versions, timings, outputs.

    With ``public``, the sensitive existing-sites source is named only as omitted.
    """
    path = Path(path)
    scenario_dump = scenario.model_dump(mode="json")
    if public and scenario_dump.get("existing_sites"):
        scenario_dump["existing_sites"] = "(sensitive: omitted in public mode)"
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
        "outputs": [str(p) for p in outputs],
    }
    if extra:
        manifest.update(extra)
    path.write_text(json.dumps(manifest, indent=2, ensure_ascii=False), encoding="utf-8")
    return path
