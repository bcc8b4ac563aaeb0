"""Raster metrics per plot: noise, residents nearby, slope and any other raster.

Wires the raster modules (:mod:`sitefinder.noise`, :mod:`sitefinder.population`,
:mod:`sitefinder.terrain`, :mod:`sitefinder.sources.raster`) into the metrics table.
Every raster metric is a column like the network ones, with NaN where the raster has no
value for a plot; the per-plot reason goes to ``<metric>_note_nb/_en`` so a reader sees
"the noise map does not cover this plot" instead of a silent zero.

Derived rasters (the OSM noise proxy, the slope of a DEM) are written to the layers
folder next to the vector layers and rebuilt when their source changes.
"""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from sitefinder.config import MeasureSettings
from sitefinder.derived import Ledger
from sitefinder.noise import noise_criterion, noise_proxy
from sitefinder.outfolder import raster_problem, temp_name, warn_damaged
from sitefinder.population import residents_within
from sitefinder.sources.osm import OsmData, file_sha256
from sitefinder.sources.plots import STATUS_OK
from sitefinder.sources.raster import zonal_stats_from_source
from sitefinder.terrain import slope, slope_criterion

NOISE_PROXY_FILE = "noise_proxy.tif"


def _usable_geoms(plots: gpd.GeoDataFrame) -> gpd.GeoSeries:
    """Plot geometries, with plots that were not measured blanked out."""
    ok = plots["status"] == STATUS_OK
    return plots.geometry.where(ok, None)


def _with_notes(
    out: pd.DataFrame, metric: str, stats: pd.DataFrame, usable: pd.Series
) -> None:
    """Copy a zonal-stats reason into ``<metric>_note_*`` for measured plots only."""
    ok = stats["status"].to_numpy() == "ok"
    out[f"{metric}_note_nb"] = np.where(~ok & usable, stats["reason_nb"], "")
    out[f"{metric}_note_en"] = np.where(~ok & usable, stats["reason_en"], "")


def noise_raster(
    osm: OsmData | None, measure: MeasureSettings, crs, layers_dir: Path, bounds
) -> tuple[Path, bool]:
    """The noise raster to use: the official map if given, else the OSM proxy (built once)."""
    settings = measure.noise
    if settings.raster is not None:
        return Path(settings.raster), False
    path = layers_dir / NOISE_PROXY_FILE
    key = json.dumps(
        {
            "osm": osm.sha256 if osm is not None else None,
            "settings": settings.model_dump(mode="json"),
            "crs": crs.to_string(),
            "bounds": [round(b, 1) for b in bounds],
        },
        sort_keys=True,
    )
    ledger = Ledger(layers_dir)
    state = ledger.state(path, key)
    if state in ("current", "user"):
        problem = raster_problem(path, whole=True)
        if problem:
            # A proxy that cannot be read helps nobody, whoever wrote it: build it again.
            warn_damaged(path, f"the noise proxy cannot be read ({problem})",
                         "discarded; building it again from the OSM extract")
            path.unlink()
            state = ledger.state(path, key)
    if state in ("missing", "stale"):
        lines = osm.lines.to_crs(crs)
        # Written under a temporary name and moved into place whole: a run killed while
        # writing leaves the previous proxy (or none), never a truncated one.
        staged = temp_name(path, ".tif")
        try:
            noise_proxy(lines, staged, bounds=bounds, settings=settings)
            ledger.record(path, key, staged=staged)
        finally:
            staged.unlink(missing_ok=True)
    return path, True


def raster_columns(measure: MeasureSettings) -> list[str]:
    """Metric columns the raster settings produce (without the note columns)."""
    columns = []
    if measure.noise is not None:
        columns += ["road_lden_db", "rail_lden_db", "noise_zone", "noise_is_proxy"]
    if measure.population is not None:
        columns.append(f"residents_within_{measure.population.radius_m:g}m")
    if measure.slope is not None:
        columns.append("slope_deg")
    columns += [f"raster_{name}" for name in measure.rasters]
    return columns


def raster_metrics(
    plots: gpd.GeoDataFrame,
    measure: MeasureSettings,
    layers_dir: Path,
    osm_loader,
) -> pd.DataFrame:
    """Raster metrics for every plot (empty frame when the scenario asks for none).

    Parameters
    ----------
    plots : GeoDataFrame
        Plots in the local CRS, with ``status``.
    measure : MeasureSettings
        Which rasters to read and how.
    layers_dir : Path
        Where derived rasters (noise proxy, slope) are written.
    osm_loader : callable
        Returns the :class:`OsmData` (only called when the noise proxy must be built).

    Returns
    -------
    DataFrame
        Aligned with ``plots``. Noise: ``road_lden_db``, ``rail_lden_db``, ``noise_zone``,
        ``noise_is_proxy``. Population: ``residents_within_m``. Slope: ``slope_deg``.
        Generic rasters: ``raster_<name>``. Each with ``<metric>_note_nb/_en``.
    """
    out = pd.DataFrame(index=plots.index)
    geoms = _usable_geoms(plots)
    usable = (plots["status"] == STATUS_OK).to_numpy()
    layers_dir.mkdir(parents=True, exist_ok=True)
    valid = geoms.dropna()
    if valid.empty:
        # Nothing to measure, but the columns exist so every plot still reaches the output.
        for column in raster_columns(measure):
            out[column] = np.nan
        return out
    if measure.noise is not None:
        margin = 100.0
        minx, miny, maxx, maxy = valid.total_bounds
        bounds = (minx - margin, miny - margin, maxx + margin, maxy + margin)
        needs_osm = measure.noise.raster is None
        osm = osm_loader() if needs_osm else None
        path, proxy = noise_raster(osm, measure, plots.crs, layers_dir, bounds)
        noise = noise_criterion(geoms, path, measure.noise)
        for column in ("road_lden_db", "rail_lden_db", "noise_zone"):
            out[column] = noise[column].where(usable, np.nan if "db" in column else "")
        out["noise_is_proxy"] = bool(proxy) or bool(noise["noise_is_proxy"].any())
        _with_notes(out, "noise", noise, usable)
    if measure.population is not None:
        settings = measure.population
        column = f"residents_within_{settings.radius_m:g}m"
        stats = residents_within(
            geoms, settings.raster, settings.radius_m, min_coverage=settings.min_coverage
        )
        out[column] = stats["value"].where(usable)
        _with_notes(out, column, stats, usable)
    if measure.slope is not None:
        settings = measure.slope
        slope_path = layers_dir / f"slope_{Path(settings.dem).stem}.tif"
        key = json.dumps({"dem": file_sha256(settings.dem)})
        ledger = Ledger(layers_dir)
        if ledger.state(slope_path, key) in ("missing", "stale"):
            slope(settings.dem, slope_path)
            ledger.record(slope_path, key)
        stats = slope_criterion(geoms, slope_path, settings)
        out["slope_deg"] = stats["value"].where(usable)
        _with_notes(out, "slope_deg", stats, usable)
    for name, source in measure.rasters.items():
        stats = zonal_stats_from_source(geoms, source)
        out[f"raster_{name}"] = stats["value"].where(usable)
        _with_notes(out, f"raster_{name}", stats, usable)
    return out
