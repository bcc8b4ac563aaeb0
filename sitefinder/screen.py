"""Screening: where in the municipality could a house stand at all.

Without a plot list, :func:`screen` lays a regular grid (default 50 m) over the OSM
extract, or over an area inside it (a municipality boundary file, a bounding box), keeps
the land of each cell where a house could stand (:mod:`sitefinder.screen_cells`), and
measures and scores those pieces of land exactly as plots: they are written to a temporary
plot file and given to :class:`sitefinder.api.Study` with the same scenario. A plot drawn
exactly like a cell's buildable land therefore gets the cell's score. Neighbouring good
cells are merged into best areas (:mod:`sitefinder.screen_areas`); the outputs are written
whole into ``out`` (:mod:`sitefinder.screen_outputs`, :mod:`sitefinder.outfolder`).

>>> from sitefinder.screen import screen                       # doctest: +SKIP
>>> result = screen("data/oslo-center.osm.pbf", out="screening")  # doctest: +SKIP
>>> result.areas.head()                                        # doctest: +SKIP
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import shapely
from pyproj import CRS

from sitefinder.config import Scenario
from sitefinder.errors import InputError
from sitefinder.language import count_phrase, fmt_int, fmt_number
from sitefinder.progress import step_bar
from sitefinder.screen_cells import (
    Grid,
    ScreenSettings,
    area_polygon,
    buildable_land,
    dwelling_clearance,
    grid_cells,
    make_grid,
    obstacles,
    room_for_a_unit,
    steep_cells,
)

__all__ = ["ScreenResult", "ScreenSettings", "screen"]

#: Columns a screening adds to the ranked-plot columns of each cell (docs/CONTRACT.md).
CELL_COLUMNS = ["col", "row", "cell_m2", "buildable_m2", "buildable_share"]


@dataclass
class ScreenResult:
    """What :func:`screen` found and wrote.

    Attributes
    ----------
    cells : GeoDataFrame
        One row per candidate cell, ranked like plots (docs/CONTRACT.md; ``plot_id`` is the
        cell id ``E<x>N<y>`` of its lower-left corner), plus ``col``, ``row``, ``cell_m2``,
        ``buildable_m2``, ``buildable_share`` and ``area_id`` ("" outside the best areas).
        The geometry is the cell's buildable land.
    areas : GeoDataFrame
        The best areas, best first: ``area_id``, ``rank``, ``n_cells``, ``area_m2``,
        ``buildable_m2``, ``best_score``, ``mean_score``, ``best_cell``, ``district``,
        ``reasons_nb``, ``reasons_en`` and the outline.
    grid : Grid
        The grid (origin, cell size, rows and columns, CRS) the cells and raster share.
    area : shapely.Geometry
        The screened area in the local CRS (the extract, cut to ``area``/``bbox``).
    settings : ScreenSettings
    scenario : Scenario
        The scenario the cells were scored with (criteria without data left out).
    counts : dict of str to int
        ``considered`` (grid cells in the area), ``with_land`` (at least one unit's
        footprint of land free of buildings, water, roads …), ``room_for_a_unit`` (room
        for a unit inside its setback), ``steep`` (of those, too steep; 0 without a
        terrain model), ``buildable`` (the candidates measured),
        ``ranked`` (status ok), ``best_areas``, ``best_cells`` and ``by_status``.
    best_threshold : float
        The least score of a cell in a best area.
    timings : dict of str to float
        Seconds per step, ``total`` included.
    outputs : dict of str to Path
        Files written (empty when ``out`` was None): ``cells_gpkg``, ``cells_parquet``,
        ``suitability_tif``, ``areas_gpkg``, ``map``, ``manifest``.
    study : sitefinder.api.Study
        The study that measured the cells (for re-scoring under another scenario).
    """

    cells: gpd.GeoDataFrame
    areas: gpd.GeoDataFrame
    grid: Grid
    area: Any
    settings: ScreenSettings
    scenario: Scenario
    counts: dict[str, Any]
    best_threshold: float
    timings: dict[str, float]
    outputs: dict[str, Path] = field(default_factory=dict)
    study: Any = None

    @property
    def raster_path(self) -> Path | None:
        """The suitability GeoTIFF, when written."""
        return self.outputs.get("suitability_tif")

    @property
    def crs(self) -> CRS:
        """The local metric CRS of cells, areas and raster."""
        return self.grid.crs

    def summary_lines(self, language: str = "en") -> list[str]:
        """The screening in a few lines for the command line or a notebook."""
        c, nb = self.counts, language == "nb"
        size = fmt_number(self.settings.cell_size_m, 0, language)
        lines = [
            (f"Undersøkte {count_phrase(c['considered'], 'cell', language)} à {size} m; "
             f"{fmt_int(c['with_land'], language)} har ubebygd land, "
             f"{fmt_int(c['buildable'], language)} har plass til et hus, "
             f"{fmt_int(c['ranked'], language)} er rangert.") if nb else
            (f"Considered {count_phrase(c['considered'], 'cell', language)} of {size} m; "
             f"{fmt_int(c['with_land'], language)} have free land, "
             f"{fmt_int(c['buildable'], language)} room for a house, "
             f"{fmt_int(c['ranked'], language)} ranked."),
        ]
        for status, n in c["by_status"].items():
            if status != "ok":
                lines.append(f"  {fmt_int(n, language)} {status}")
        head = "Beste områder" if nb else "Best areas"
        lines.append(f"{head}: {fmt_int(c['best_areas'], language)} "
                     f"(≥ {fmt_number(self.best_threshold, 1, language)})")
        for row in self.areas.head(5).itertuples():
            lines.append(
                f"  {row.area_id}: {count_phrase(row.n_cells, 'cell', language)}, "
                f"{fmt_int(row.area_m2, language)} m², "
                f"{'beste' if nb else 'best'} {fmt_number(row.best_score, 1, language)} "
                f"({row.best_cell})"
            )
        return lines

    def __repr__(self) -> str:
        c = self.counts
        return (f"ScreenResult({c['considered']} cells considered, {c['buildable']} buildable, "
                f"{c['ranked']} ranked, {c['best_areas']} best areas)")


def screen(
    osm: str | Path | None = None,
    scenario: Scenario | str | Path | None = None,
    *,
    area: str | Path | None = None,
    bbox: tuple[float, float, float, float] | None = None,
    cell_size_m: float = 50.0,
    out: str | Path | None = None,
    layers_dir: str | Path = "layers",
    cache_dir: str | Path | None = None,
    settings: ScreenSettings | None = None,
    language: str = "nb",
    lock_wait: float | None = None,
) -> ScreenResult:
    """Screen an extract (or an area of it) for land where a house could stand, and rank it.

    Parameters
    ----------
    osm : str or Path, optional
        OpenStreetMap extract (default: the bundled central-Oslo extract).
    scenario : Scenario or str or Path, optional
        Scenario or its YAML file (default: the shipped default; on the bundled extract
        the demo scenario).
    area : str or Path, optional
        Polygon file (any CRS) to screen, e.g. ``data/oslo_kommune.geojson``; cut to the
        extract.
    bbox : tuple, optional
        West, south, east, north in degrees, instead of ``area``.
    cell_size_m : float
        Grid cell edge in metres (10–200; default 50). Ignored when ``settings`` is given.
    out : str or Path, optional
        Output folder, replaced whole when the screening is complete. None: write nothing.
    layers_dir : str or Path
        Folder of the thematic layers (shared with ``sitefinder run``).
    cache_dir : str or Path, optional
        Metrics cache of the study (none by default: the cells are new each time).
    settings : ScreenSettings, optional
        Every other screening setting (road widths, best-area share …).
    language : {"nb", "en"}
        Language of the map.
    lock_wait : float, optional
        Seconds to wait for a busy ``out`` or layers folder.

    Returns
    -------
    ScreenResult

    Raises
    ------
    InputError
        A missing OSM or area file, an area outside the extract or in a wrong CRS, a cell
        size outside 10–200 m, too many cells, or no land for a house in the area.
    """
    started = time.perf_counter()
    settings = settings or ScreenSettings(cell_size_m=cell_size_m)
    if area is not None and bbox is not None:
        raise InputError("give either an area file or a bounding box, not both",
                         where="--area/--bbox", hint="Leave out one of them")
    settings.check()
    if area is not None and not Path(area).is_file():
        # Before the extract is read: a typo in the path fails at once.
        raise InputError("the area file does not exist", path=area, where="--area",
                         hint="Check the path, e.g. --area data/oslo_kommune.geojson")
    osm_path, scenario = _inputs(osm, scenario)
    folder = None
    if out is not None:
        from sitefinder.outfolder import OutputFolder

        folder = OutputFolder(out)
    with _locked(folder, layers_dir, lock_wait) as staging:
        result = _screen(osm_path, scenario, area, bbox, settings, layers_dir, cache_dir)
        if staging is not None:
            with _timed(result.timings, "write outputs"):
                result.outputs = _write(result, staging, osm_path, area, language, folder)
            folder.commit()
            result.outputs = {k: folder.path / p.name for k, p in result.outputs.items()}
    result.timings["total"] = round(time.perf_counter() - started, 3)
    return result


def _inputs(osm: str | Path | None, scenario) -> tuple[Path, Scenario]:
    from sitefinder.api import BUNDLED_OSM, DEMO_SCENARIO
    from sitefinder.config import default_scenario, load_scenario

    osm_path = Path(osm) if osm is not None else BUNDLED_OSM
    if not osm_path.exists():
        raise InputError(
            "the OpenStreetMap file does not exist", path=osm_path, where="--osm",
            hint="Check the path, or download an extract (sitefinder download --bbox …)",
        )
    if scenario is None and osm_path.resolve() == BUNDLED_OSM.resolve():
        scenario = DEMO_SCENARIO if DEMO_SCENARIO.exists() else None
    if scenario is None:
        scenario = default_scenario()
    elif not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    scenario.check_input_files()
    return osm_path, scenario


@contextmanager
def _locked(folder, layers_dir: str | Path, wait: float | None) -> Iterator[Path | None]:
    """The staging folder of ``folder`` (None without one), with the layers folder locked."""
    from sitefinder.outfolder import layers_lock, remove_dead_temp_files

    outer = folder.transaction(wait) if folder is not None else nullcontext(None)
    with outer as staging, layers_lock(layers_dir, wait):
        remove_dead_temp_files(layers_dir)
        yield staging


@contextmanager
def _timed(timings: dict[str, float], step: str) -> Iterator[None]:
    start = time.perf_counter()
    yield
    timings[step] = round(timings.get(step, 0.0) + time.perf_counter() - start, 3)


def _screen(osm_path: Path, scenario: Scenario, area, bbox, settings: ScreenSettings,
            layers_dir, cache_dir) -> ScreenResult:
    from sitefinder.layers import check_layer_keys
    from sitefinder.screen_areas import best_threshold
    from sitefinder.sources.osm import read_osm

    check_layer_keys(scenario)
    timings: dict[str, float] = {}
    bar = step_bar(4, "screening")
    with _timed(timings, "read OSM"):
        osm = read_osm(osm_path)
    bar.update()
    with _timed(timings, "candidate cells"):
        found = _candidates(osm, scenario, area, bbox, settings, layers_dir)
    bar.update()
    with _timed(timings, "measure"):
        ranked, study = _measure(found.cells, osm, found.layers, osm_path, scenario,
                                 layers_dir, cache_dir)
    timings.update({f"measure: {k}": v for k, v in study.timings.items()})
    bar.update()
    with _timed(timings, "best areas"):
        scored, areas = _best_areas(ranked, found, settings, study.scenario)
    bar.update()
    bar.close()
    by_status = scored["status"].value_counts().to_dict()
    counts = {
        **found.counts, "ranked": int(by_status.get("ok", 0)), "best_areas": len(areas),
        "best_cells": int((scored["area_id"] != "").sum()), "by_status": by_status,
    }
    return ScreenResult(
        cells=scored, areas=areas, grid=found.grid, area=found.region, settings=settings,
        scenario=study.scenario, counts=counts,
        best_threshold=best_threshold(scored, settings), timings=timings, study=study,
    )


@dataclass
class _Found:
    """The candidate cells of a screening and what they were cut from."""

    grid: Grid
    region: Any
    cells: gpd.GeoDataFrame
    layers: Any
    counts: dict[str, int]


def _candidates(osm, scenario: Scenario, area, bbox, settings: ScreenSettings,
                layers_dir) -> _Found:
    """Grid cells over the area, cut to buildable land, with room for a unit, not steep."""
    from sitefinder.layers import build_layers

    crs = _local_crs(osm.bounds, scenario)
    region = area_polygon(osm.bounds, crs, area=area, bbox=bbox)
    grid = make_grid(region, crs, settings)
    cells = grid_cells(grid, region)
    layers = build_layers(osm, scenario, crs, layers_dir)
    blocked = obstacles(osm, layers, crs, settings, dwelling_clearance(scenario))
    with_land = buildable_land(cells, blocked, _min_buildable(settings, scenario))
    roomy = with_land[room_for_a_unit(with_land, scenario.capacity)].reset_index(drop=True)
    candidates = roomy
    if scenario.measure.slope is not None and len(roomy):
        with tempfile.TemporaryDirectory(prefix="sitefinder-screen-") as work:
            steep = steep_cells(roomy, scenario.measure.slope.dem, settings.max_slope_deg,
                                work)
        candidates = roomy[~steep].reset_index(drop=True)
    if candidates.empty:
        raise InputError(
            f"none of the {len(cells):,} cells has land where a house could stand "
            "(all built on, water, roads, railway, industrial land or steep)",
            where="--area/--bbox", hint="Screen a larger area, or use a smaller --cell-size",
        )
    counts = {"considered": len(cells), "with_land": len(with_land),
              "room_for_a_unit": len(roomy), "steep": len(roomy) - len(candidates),
              "buildable": len(candidates)}
    return _Found(grid, region, candidates, layers, counts)


def _best_areas(ranked: gpd.GeoDataFrame, found: _Found, settings: ScreenSettings,
                scenario: Scenario) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """The ranked cells with their grid columns and ``area_id``, and the best areas."""
    from sitefinder.screen_areas import best_areas

    scored = ranked.merge(found.cells[["plot_id", *CELL_COLUMNS]], on="plot_id", how="left",
                          validate="one_to_one")
    scored = gpd.GeoDataFrame(scored, geometry="geometry", crs=ranked.crs).to_crs(found.grid.crs)
    labels = {n: (c.label_nb, c.label_en) for n, c in scenario.criteria.items()}
    areas, area_id = best_areas(scored, found.grid, settings, labels, within=found.region)
    scored["area_id"] = area_id
    return scored, areas


def _local_crs(extent: tuple[float, float, float, float], scenario: Scenario) -> CRS:
    """The same local CRS a study of plots in this extract would choose."""
    from sitefinder.sources.plots import local_crs

    frame = gpd.GeoDataFrame(geometry=[shapely.box(*extent).centroid], crs=4326)
    return local_crs(frame, scenario.crs)


def _min_buildable(settings: ScreenSettings, scenario: Scenario) -> float:
    if settings.min_buildable_m2 is not None:
        return float(settings.min_buildable_m2)
    capacity = scenario.capacity
    return float(capacity.unit_width_m * capacity.unit_length_m)


def _measure(candidates, osm, layers, osm_path, scenario, layers_dir, cache_dir):
    """Measure and score the candidate cells as plots, with a :class:`Study`."""
    from sitefinder.api import Study

    with tempfile.TemporaryDirectory(prefix="sitefinder-screen-") as work:
        plots = Path(work) / "screen_cells.gpkg"
        candidates[["plot_id", "geometry"]].to_file(plots, layer="cells", engine="pyogrio")
        study = Study(plots, osm_path, scenario, layers_dir=layers_dir, cache_dir=cache_dir)
        # The extract and layers were read and built for the candidates already: handing
        # them over saves a second read (Study has no public way to take them yet).
        study._osm, study._layers = osm, layers
        ranked = study.score()
    return ranked, study


def _write(result: ScreenResult, staging: Path, osm_path: Path, area, language: str,
           folder) -> dict[str, Path]:
    from sitefinder.api import scenario_path
    from sitefinder.outputs import write_manifest
    from sitefinder.screen_outputs import (
        FILES,
        write_areas,
        write_cells,
        write_screen_map,
        write_suitability,
    )

    written = write_cells(result.cells, staging)
    written["suitability_tif"] = write_suitability(
        result.cells, result.grid, staging / FILES["suitability_tif"])
    written["areas_gpkg"] = write_areas(result.areas, staging, language)
    written["map"] = write_screen_map(result.cells, result.areas, staging / FILES["map"],
                                      outline=result.area, language=language)
    inputs = {"osm": osm_path, "scenario": scenario_path(result.scenario),
              "area": Path(area) if area is not None else None,
              **result.scenario.input_files()}
    grid = result.grid
    extra = {
        "command": "screen",
        "crs": grid.crs.to_string(),
        "screen": {
            "settings": result.settings.as_dict(),
            "counts": result.counts,
            "best_threshold": result.best_threshold,
            "grid": {"x0": grid.x0, "y_top": grid.y_top, "cell_size_m": grid.size,
                     "n_cols": grid.n_cols, "n_rows": grid.n_rows},
            "area_m2": float(result.area.area),
        },
    }
    # The total is known only once the outputs are in place; it is on ScreenResult.timings.
    timings = dict(result.timings)
    written["manifest"] = write_manifest(
        staging / "manifest.json", inputs=inputs, scenario=result.scenario,
        timings=timings, outputs=list(written.values()), extra=extra, shown_dir=folder.path,
    )
    return written

