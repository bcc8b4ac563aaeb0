"""One run from inputs to every output file: rank, choose, draw, report, vouch.

The command line's ``run``, ``select`` and ``report`` and a notebook's ``run()`` all come
here. This module sits on top: it uses :mod:`sitefinder.api` (measuring and scoring) and
:mod:`sitefinder.publish` (maps and report); neither of those imports it.

>>> from sitefinder.pipeline import run                       # doctest: +SKIP
>>> result = run(units=12, report=True)                        # doctest: +SKIP
>>> result.outputs["report_pdf"]                               # doctest: +SKIP
"""

from __future__ import annotations

import time
from pathlib import Path

import geopandas as gpd

from sitefinder.api import (
    BUNDLED_OSM,
    BUNDLED_PLOTS,
    Study,
    as_scenario,
    demo_scenario_for,
    scenario_path,
    select,
)
from sitefinder.config import Scenario
from sitefinder.language import check_language
from sitefinder.outfolder import (
    OutputFolder,
    StudyInputs,
    check_inputs_readable,
    checkpoint,
    layers_lock,
    remove_dead_temp_files,
    resolve_study,
)
from sitefinder.outputs import write_manifest, write_ranked_csv, write_ranked_gpkg
from sitefinder.publish import per_district_counts, write_maps, write_meeting_report
from sitefinder.select import SelectionResult, write_selection
from sitefinder.spreadsheets import write_ranked_xlsx, write_selected_xlsx


class RunResult:
    """What :func:`run` produced.

    Attributes
    ----------
    ranked : GeoDataFrame
        The ranked plots (docs/CONTRACT.md), with selection columns when a selection ran.
    study : Study
        The study, for further scoring without measuring again.
    outputs : dict of str to Path
        ``ranked_xlsx``, ``ranked_csv``, ``ranked_gpkg``, ``map``, ``map_offline``,
        ``manifest`` and, when asked for, ``selected_xlsx``, ``selected_csv``,
        ``selected_gpkg``, ``report_html``, ``report_pdf``.
    selection : SelectionResult or None
        The chosen set of sites, when ``units`` or ``sites`` was given.
    data_warnings : list of DataWarning
        What is missing or looks incomplete in the map data (also in the manifest).
    """

    def __init__(
        self,
        ranked: gpd.GeoDataFrame,
        study: Study,
        outputs: dict[str, Path],
        selection: SelectionResult | None = None,
        data_warnings: list | None = None,
    ) -> None:
        self.ranked = ranked
        self.study = study
        self.outputs = outputs
        self.selection = selection
        self.data_warnings = list(data_warnings or [])

    def __repr__(self) -> str:
        ok = int((self.ranked["status"] == "ok").sum())
        return f"RunResult({len(self.ranked)} plots, {ok} ranked, outputs={list(self.outputs)})"


def run(
    plots: str | Path | None = None,
    osm: str | Path | None = None,
    scenario: Scenario | str | Path | None = None,
    out_dir: str | Path = "output",
    *,
    layers_dir: str | Path | None = None,
    cache_dir: str | Path | None = ".cache/sitefinder",
    plots_crs: str | None = None,
    id_column: str | None = None,
    units: int | None = None,
    sites: int | None = None,
    maps: bool = True,
    offline: bool = False,
    report: bool = False,
    public: bool = False,
    top_n: int = 5,
    lock_wait: float | None = None,
    language: str | None = None,
) -> RunResult:
    """Rank the plots (and optionally choose sites) and write every output.

    Writes ``ranked.xlsx``, ``ranked.csv``, ``ranked.gpkg``, ``map.html``,
    ``map_offline.html`` and ``manifest.json``; with ``units``/``sites`` also
    ``selected.xlsx``/``selected.csv``/``selected.gpkg``; with ``report`` also
    ``report.html``/``report.pdf``.

    Everything is written into a temporary folder beside ``out_dir`` and put in its place
    whole once complete (:mod:`sitefinder.outfolder`): whatever happens to the run,
    ``out_dir`` holds either the previous run or this one, never a mix. The manifest lists
    every output file with its SHA-256, and the study's inputs. Output files of an earlier
    run that this run does not write (``report.pdf`` after a plain run) are not kept; files
    that sitefinder did not write are.

    The metrics, walking network, layers and the read OSM extract are cached in
    ``cache_dir``, so ``select`` and ``report`` after ``run`` do not read the extract again.

    Parameters
    ----------
    plots, osm : str or Path, optional
        Plot file and OSM extract. Default: those of the study ``out_dir`` already holds
        (from its manifest), else the bundled demo data.
    scenario : Scenario or str or Path, optional
        Scenario or its YAML file. Default: the scenario of the study in ``out_dir`` (when
        ``osm`` is that study's extract), else the shipped default (on the bundled demo
        data, the demo scenario).
    out_dir : str or Path
        Output folder (created when missing). It is replaced as a whole at the end of the
        run, so it must be a folder of sitefinder's own.
    layers_dir : str or Path, optional
        See :class:`~sitefinder.api.Study`. Default: the layers folder of the study in
        ``out_dir``, else ``layers``.
    cache_dir : str or Path or None
        See :class:`~sitefinder.api.Study`.
    plots_crs, id_column : str, optional
        See :class:`~sitefinder.api.Study`. Default: the study's in ``out_dir`` for the
        same plot file.
    units, sites : int, optional
        Choose a set of sites delivering exactly this many units / sites.
    maps : bool
        Write the interactive maps.
    offline : bool
        Make ``map.html`` start on the basemap drawn from the OSM extract (every map is
        self-contained; this one asks no tile server at all) and write no
        ``map_offline.html``.
    report : bool
        Write the printable report.
    public : bool
        Public mode: no sensitive layer in any map or report.
    top_n : int
        Candidates given a page in the report.
    lock_wait : float, optional
        Seconds to wait while another run uses ``out_dir`` or the layers folder (default:
        the environment variable ``SITEFINDER_LOCK_WAIT``, else 10).
    language : {"nb", "en"}, optional
        Language of the workbooks, maps and report (default: the scenario's, bokmål
        unless it says otherwise). ``ranked.csv`` carries both languages.

    Returns
    -------
    RunResult

    Raises
    ------
    InputError
        Found before any heavy work: a missing plot or OSM file, an unreadable raster, an
        ``out_dir`` that is a file, read-only or holds much else.
    sitefinder.outfolder.FolderBusyError
        Another run kept ``out_dir`` or the layers folder busy for longer than
        ``lock_wait``.
    """
    started = time.perf_counter()
    # Everything that can be checked cheaply is checked before the locks and heavy work.
    folder = OutputFolder(out_dir)
    study_in, _ = resolve_study(
        out_dir, plots=plots, osm=osm,
        scenario=None if isinstance(scenario, Scenario) else scenario,
        plots_crs=plots_crs, id_column=id_column, layers=layers_dir,
        defaults=StudyInputs.new(BUNDLED_PLOTS, BUNDLED_OSM),
    )
    if not isinstance(scenario, Scenario):
        scenario = as_scenario(
            study_in.scenario if study_in.scenario is not None
            else demo_scenario_for(study_in.plots, study_in.osm)
        )
    if language is not None and language != scenario.language:
        scenario = scenario.model_copy(update={"language": check_language(language)})
    check_inputs_readable(study_in.plots, study_in.osm, scenario.input_files())
    layers_dir = study_in.layers
    with folder.transaction(lock_wait) as staging, layers_lock(layers_dir, lock_wait):
        remove_dead_temp_files(layers_dir)
        checkpoint("measure")
        study = Study(
            study_in.plots, study_in.osm, scenario, layers_dir=layers_dir,
            cache_dir=cache_dir, plots_crs=study_in.plots_crs, id_column=study_in.id_column,
        )
        ranked = study.score()
        written: dict[str, Path] = {}
        selection = None
        if units is not None or sites is not None:
            with study._timed("select"):
                ranked, selection = select(study, ranked, units=units, sites=sites)
                files = write_selection(selection, staging)
                written["selected_csv"], written["selected_gpkg"] = files["csv"], files["gpkg"]
        with study._timed("write tables"):
            written.update(_write_tables(ranked, selection, staging, scenario))
        written.update(_write_maps_and_report(
            study, ranked, staging, selection,
            maps=maps, offline=offline, report=report, public=public, top_n=top_n,
        ))
        study.timings["total"] = round(time.perf_counter() - started, 3)
        # What the reader of the ranking must know about the map data (empty layers,
        # incomplete dwellings, areas cut at the edge): in the manifest and the summary.
        data_warnings = study.data_warnings()
        # The manifest is written last: it vouches for every file written before it.
        written["manifest"] = write_manifest(
            staging / "manifest.json",
            inputs=_manifest_inputs(study, scenario, layers_dir, public),
            scenario=scenario,
            timings=study.timings,
            outputs=list(written.values()),
            extra=_manifest_extra(study, ranked, selection, data_warnings, public),
            public=public,
            shown_dir=folder.path,
            study=study_in.with_scenario(scenario_path(scenario)).record(),
        )
        folder.commit()
    outputs = {role: folder.path / path.name for role, path in written.items()}
    return RunResult(ranked, study, outputs, selection, data_warnings)


def _write_tables(
    ranked: gpd.GeoDataFrame, selection: SelectionResult | None, staging: Path,
    scenario: Scenario,
) -> dict[str, Path]:
    """The ranking for programs (CSV), QGIS (GeoPackage) and people (workbooks)."""
    language = scenario.language
    written = {
        "ranked_csv": write_ranked_csv(ranked, staging / "ranked.csv"),
        "ranked_gpkg": write_ranked_gpkg(ranked, staging / "ranked.gpkg", language=language),
        "ranked_xlsx": write_ranked_xlsx(ranked, staging / "ranked.xlsx", language, scenario),
    }
    if selection is not None:
        written["selected_xlsx"] = write_selected_xlsx(
            ranked, staging / "selected.xlsx", language, scenario)
    return written


def _write_maps_and_report(
    study: Study,
    ranked: gpd.GeoDataFrame,
    staging: Path,
    selection: SelectionResult | None,
    *,
    maps: bool,
    offline: bool,
    report: bool,
    public: bool,
    top_n: int,
) -> dict[str, Path]:
    """Maps and report into ``staging``, each step timed on its own."""
    written: dict[str, Path] = {}
    if maps or report:
        # Maps and report need the layers and network even on a cache hit; load them here
        # so each step's time is its own in the manifest.
        _ = study.layers, study.network
    if maps:
        checkpoint("write-maps")
        with study._timed("write maps"):
            written.update(
                write_maps(study, ranked, staging, selection=selection, offline=offline,
                           public=public)
            )
        checkpoint("maps-written")
    if report:
        with study._timed("write report"):
            written.update(
                write_meeting_report(study, ranked, staging, selection=selection,
                                     public=public, top_n=top_n)
            )
    return written


def _manifest_inputs(
    study: Study, scenario: Scenario, layers_dir: Path, public: bool
) -> dict[str, Path | None]:
    """Every input file of the run, by role, for the manifest."""
    inputs: dict[str, Path | None] = {
        "plots": study.plots_path,
        "osm": study.osm_path,
        "scenario": scenario_path(scenario),
        **scenario.input_files(),
    }
    # Layer files as used (also when the metrics came from the cache and no layer was read).
    for name, spec in scenario.layers.items():
        inputs[f"layer:{name}"] = spec.file or Path(layers_dir) / f"{name}.gpkg"
    if public:  # the manifest of a public run must not point at the sensitive file
        inputs.pop("existing_sites", None)
    return inputs


def _manifest_extra(
    study: Study,
    ranked: gpd.GeoDataFrame,
    selection: SelectionResult | None,
    data_warnings: list,
    public: bool,
) -> dict:
    """The run's facts beside the files: CRS, cache use, counts, warnings, selection."""
    extra = {
        "crs": study.crs.to_string(),
        "metrics_cache_hit": study.cache_hit,
        "osm_stats": study._osm.stats if study._osm is not None else None,
        "layer_origin": study._layers.origin if study._layers is not None else None,
        "public": public,
        "plots": {"total": len(ranked), "by_status": ranked["status"].value_counts().to_dict()},
        "data_warnings": [w.as_dict() for w in data_warnings],
    }
    districts = per_district_counts(ranked)
    if len(districts):
        extra["per_district"] = districts.astype(int).to_dict(orient="index")
    if selection is not None:
        extra["selection"] = {
            "status": selection.status, "optimal": selection.optimal,
            "method": selection.method, "objective": selection.objective,
            "bound": selection.bound, "gap": selection.gap,
            "sites": len(selection.chosen), "units": int(selection.total_units),
            "notes_nb": selection.notes_nb, "notes_en": selection.notes_en,
        }
    return extra
