"""The notebook-facing API: measure once with a :class:`Study`, score many scenarios.

>>> from sitefinder import Study, default_scenario          # doctest: +SKIP
>>> study = Study("data/plots.gpkg", "data/oslo-center.osm.pbf")  # doctest: +SKIP
>>> ranked = study.score()                                   # doctest: +SKIP
>>> ranked2 = study.score(default_scenario().with_weights(transit=6))  # doctest: +SKIP

The metrics table is cached on disk, keyed by checksums of the plot file, the OSM file,
every layer file and the measurement settings; any change to one of them measures again.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
from pyproj import CRS

from sitefinder import __version__
from sitefinder.capacity import HARD_MAX_UNITS_PER_SITE, layouts_by_units, plan_units
from sitefinder.config import Scenario, default_scenario, load_scenario
from sitefinder.derived import Ledger
from sitefinder.errors import InputError
from sitefinder.layers import (
    LayerSet,
    build_layers,
    check_layer_keys,
    layer_key,
    read_layer_file_any,
)
from sitefinder.measure import compute_metrics, metric_columns
from sitefinder.network import WalkNetwork, build_walk_network
from sitefinder.outfolder import read_cache, write_cache
from sitefinder.outputs import write_manifest, write_ranked_csv, write_ranked_gpkg
from sitefinder.progress import step_bar
from sitefinder.raster_metrics import NOISE_PROXY_FILE, raster_metrics
from sitefinder.score import active_scenario, check_metrics, check_numeric, score_metrics
from sitefinder.select import assign_districts
from sitefinder.sources.osm import OsmData, file_sha256, read_osm
from sitefinder.sources.plots import (
    check_plots_crs,
    check_utm_zone,
    local_crs,
    read_plots,
    to_local,
)
from sitefinder.sources.raster import check_rasters

_STATUS_COLUMNS = ["status", "status_reason_nb", "status_reason_en"]


class Study:
    """Candidate plots and their surroundings, measured once.

    Parameters
    ----------
    plots : str or Path
        Plot file (GeoPackage, GeoJSON, Shapefile, CSV).
    osm : str or Path
        OpenStreetMap extract (.osm.pbf or .osm).
    scenario : Scenario or str or Path, optional
        Supplies the measurement settings (layers, network, counts) and is the default for
        :meth:`score`. The shipped default when omitted.
    layers_dir : str or Path
        Folder of the thematic layer GeoPackages (editable in QGIS).
    cache_dir : str or Path or None
        Where the metrics table is cached; ``None`` disables the cache.
    plots_crs : str, optional
        CRS of a plot file that declares none.
    id_column : str
        Plot id column in the plot file.
    """

    def __init__(
        self,
        plots: str | Path,
        osm: str | Path,
        scenario: Scenario | str | Path | None = None,
        *,
        layers_dir: str | Path = "layers",
        cache_dir: str | Path | None = ".cache/sitefinder",
        plots_crs: str | None = None,
        id_column: str = "plot_id",
    ) -> None:
        self.scenario = _as_scenario(scenario)
        check_layer_keys(self.scenario)
        self.scenario.check_input_files()
        self.plots_path = Path(plots)
        self.osm_path = Path(osm)
        self.layers_dir = Path(layers_dir)
        self.cache_dir = Path(cache_dir) if cache_dir is not None else None
        self.timings: dict[str, float] = {}
        self.cache_hit = False
        if not self.osm_path.exists():
            # Checked before the plots are read so a typo fails fast.
            read_osm(self.osm_path)
        with self._timed("read plots"):
            raw = read_plots(self.plots_path, id_column=id_column, crs=plots_crs)
            self.crs: CRS = local_crs(raw, self.scenario.crs)
            self.plots: gpd.GeoDataFrame = to_local(raw, self.crs)
            self._file_crs = raw.crs  # what the coordinates were read as, for diagnosis
        # Criteria and exclusions may name a measured metric or a column of the plot file
        # (owner, zoning, price): refuse anything else before the heavy work.
        measured = metric_columns(self.scenario) | self.plot_facts()
        check_metrics(measured, self.scenario)
        # Criteria that join only when measured (slope needs a terrain model) are dropped
        # here once, so maps, report and analysis see the criteria actually scored.
        self.scenario = active_scenario(measured, self.scenario)
        check_numeric(self.plots, self.scenario)  # a criterion on a text column of the file
        self._osm: OsmData | None = None
        self._layers: LayerSet | None = None
        self._network: WalkNetwork | None = None
        self._metrics: pd.DataFrame | None = None
        self._empty: set[str] = set()
        self._districts: gpd.GeoDataFrame | None = None
        self._existing: gpd.GeoDataFrame | None = None
        self._layouts: np.ndarray | None = None
        # Plots that all miss the extract but would fall inside read as lon/lat (or with
        # lat/lon swapped) have the wrong CRS: say so now, not "outside the network" later.
        # The extract is read here only when such a reading is possible at all.
        check_plots_crs(raw, lambda: self.osm.bounds, path=self.plots_path)
        # Rasters are opened before any measuring: a text file named .tif or a raster far
        # from every plot fails now, naming the file, not after minutes of work.
        check_rasters(self.scenario.input_files(), self.plots)

    def plot_facts(self) -> set[str]:
        """Columns of the plot file a scenario may judge by (owner, zoning, price …)."""
        own = {"plot_id", "status", "status_reason_nb", "status_reason_en", "source_row"}
        return {c for c in self.plots.columns if c not in own and c != self.plots.geometry.name}

    @contextmanager
    def _timed(self, step: str) -> Iterator[None]:
        start = time.perf_counter()
        yield
        self.timings[step] = round(self.timings.get(step, 0.0) + time.perf_counter() - start, 3)

    @property
    def osm(self) -> OsmData:
        """The OSM extract (read on first use)."""
        if self._osm is None:
            with self._timed("read OSM"):
                self._osm = read_osm(self.osm_path)
        return self._osm

    @property
    def layers(self) -> LayerSet:
        """Thematic layers, built from OSM or reused from ``layers_dir``."""
        if self._layers is None:
            osm = self.osm
            with self._timed("build layers"):
                self._layers = build_layers(osm, self.scenario, self.crs, self.layers_dir)
        return self._layers

    @property
    def network(self) -> WalkNetwork:
        """The walking network (built on first use)."""
        if self._network is None:
            osm = self.osm
            with self._timed("build network"):
                self._network = build_walk_network(osm.lines, self.crs, self.scenario.network)
        return self._network

    @property
    def empty_layers(self) -> set[str]:
        """Network categories with no features at all (known once metrics exist)."""
        _ = self.metrics
        return set(self._empty)

    def data_warnings(self) -> list:
        """Warnings about the map data (empty layers, incomplete dwellings, cut areas).

        Returns
        -------
        list of sitefinder.data_checks.DataWarning
        """
        from sitefinder.data_checks import data_warnings

        return data_warnings(self._osm, self.layers, self.scenario)

    def osm_timestamp(self) -> str:
        """Date of the newest edit in the OSM extract (reads the extract if needed)."""
        return self.osm.newest

    def districts(self) -> gpd.GeoDataFrame | None:
        """The scenario's district polygons in the local CRS (None when not set)."""
        source = self.scenario.districts
        if source is None:
            return None
        if self._districts is None:
            frame = read_layer_file_any(
                source.file, "districts", column=source.name_column,
                field="districts.name_column",
            )
            self._districts = frame.to_crs(self.crs)
        return self._districts

    def existing_sites(self) -> gpd.GeoDataFrame | None:
        """Existing sites for the same group (SENSITIVE), in the local CRS, or None."""
        source = self.scenario.existing_sites
        if source is None:
            return None
        if self._existing is None:
            frame = read_layer_file_any(
                source.file, "existing-sites", column=source.units_column,
                field="existing_sites.units_column",
            )
            frame = frame.rename(columns={source.units_column: "units"})
            self._existing = frame.to_crs(self.crs)
        return self._existing

    def _cache_key(self) -> str | None:
        """Key of the metrics table, or None when a layer file is stale or missing."""
        ledger = Ledger(self.layers_dir)
        osm_sha = file_sha256(self.osm_path)
        parts = {
            "version": __version__,
            "plots": file_sha256(self.plots_path),
            # The plots as read (ids, geometry in the local CRS, status): the same file read
            # with another --plots-crs, id column or layer is another set of plots.
            "plots_read": _frame_digest(self.plots),
            "osm": osm_sha,
            "measure": self.scenario.measurement_key(),
            "crs": self.crs.to_string(),
        }
        for role, path in self.scenario.input_files().items():
            parts[f"input:{role}"] = file_sha256(path)
        if self.scenario.measure.noise is not None and self.scenario.measure.noise.raster is None:
            proxy = self.layers_dir / NOISE_PROXY_FILE
            if not proxy.exists():
                return None
            parts["noise_proxy"] = file_sha256(proxy)
        for name, spec in self.scenario.layers.items():
            if spec.file is not None:
                continue  # a user's own file: already in input_files()
            path = self.layers_dir / f"{name}.gpkg"
            if ledger.state(path, layer_key(osm_sha, spec, self.crs)) in ("missing", "stale"):
                return None  # the layer is (re)built first; the key is taken after that
            parts[f"layer:{name}"] = file_sha256(path)
        return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:24]

    @property
    def metrics(self) -> pd.DataFrame:
        """The raw metrics table (one row per plot, index aligned with :attr:`plots`)."""
        if self._metrics is not None:
            return self._metrics
        key = self._cache_key() if self.cache_dir is not None else None
        cache_file = self.cache_dir / f"metrics-{key}.pkl" if key and self.cache_dir else None
        if cache_file is not None and cache_file.exists():
            with self._timed("load cached metrics"):
                # A damaged cache file is reported, deleted and measured again.
                cached = read_cache(cache_file, check=lambda v: (
                    isinstance(v, tuple) and len(v) == 3 and isinstance(v[0], pd.DataFrame)
                    and v[0].index.equals(self.plots.index)))
            if cached is not None:
                self._metrics, self._empty, self._layouts = cached
                self.cache_hit = True
                return self._metrics
        bar = step_bar(4, "measuring")
        _ = self.osm
        bar.update()
        layers = self.layers
        bar.update()
        net = self.network
        bar.update()
        with self._timed("measure"):
            metrics = compute_metrics(self.plots, net, layers, self.scenario)
        if (metrics["status"] == "outside_network").any() and not (metrics["status"] == "ok").any():
            # Not one plot reached the network: a wrong UTM zone is the usual cause.
            check_utm_zone(self.plots, self._file_crs, self.osm.bounds, path=self.plots_path)
        with self._timed("raster metrics"):
            plots = self.plots.assign(status=metrics["status"])
            rasters = raster_metrics(
                plots, self.scenario.measure, self.layers_dir, lambda: self.osm
            )
        with self._timed("unit layout"):
            ceiling = self.scenario.capacity.model_copy(
                update={"max_units_per_site": HARD_MAX_UNITS_PER_SITE, "min_units_per_site": 1}
            )
            # Points (e.g. CSV with lat/lon) have no outline to lay units out on: unknown.
            usable = (plots["status"] == "ok") & plots.geometry.geom_type.isin(
                ["Polygon", "MultiPolygon"]
            )
            layout = plan_units(plots.loc[usable], ceiling)
            capacity = pd.DataFrame(
                {"capacity_max_units": layout["capacity_units"].reindex(plots.index)}
            )
            self._layouts = layouts_by_units(layout["layout"].reindex(plots.index))
        with self._timed("districts"):
            districts = self.districts()
            if districts is not None:
                # By the plot's own point, not its layout: a district is a fact of the plot.
                capacity["district"] = assign_districts(
                    self.plots.set_geometry(self.plots.representative_point()),
                    districts,
                    self.scenario.districts.name_column,
                )
        self._metrics = pd.concat([metrics, rasters, capacity], axis=1)
        self._empty = layers.empty()
        bar.update()
        bar.close()
        if self.cache_dir is not None:
            key = self._cache_key()
            if key:
                # Written whole or not at all (temporary file, then os.replace).
                write_cache(self.cache_dir / f"metrics-{key}.pkl",
                            (self._metrics, self._empty, self._layouts))
        return self._metrics

    def score(
        self, scenario: Scenario | str | Path | None = None, *, explain: bool = True
    ) -> gpd.GeoDataFrame:
        """Score and rank the plots under ``scenario`` (default: the study's) — no network work.

        Parameters
        ----------
        scenario : Scenario or str or Path, optional
            Must share the study's measurement settings (layers, network, counts, CRS);
            only criteria, weights, thresholds, exclusions and units per site may differ.
        explain : bool
            Add the plain-language explanations (``explanation_nb/en``); leave them out
            for fast what-if loops.

        Returns
        -------
        GeoDataFrame
            One row per input plot, in rank order then input order (docs/CONTRACT.md).
        """
        scenario = self.scenario if scenario is None else _as_scenario(scenario)
        scenario = active_scenario(metric_columns(scenario) | self.plot_facts(), scenario)
        if scenario.measurement_key() != self.scenario.measurement_key():
            raise InputError(
                "this scenario changes what is measured (layers, network, counts or CRS), "
                "not only how it is scored",
                where=f"scenario '{scenario.name}'",
                hint="Create a new Study with this scenario, or change only criteria, weights "
                "and exclusions",
            )
        metrics = self.metrics
        with self._timed("score"):
            empty = self.empty_layers
            base = self.plots.drop(columns=_STATUS_COLUMNS)
            # Plot facts a criterion or exclusion names (e.g. zoning) join the metrics.
            named = {c.metric for c in scenario.criteria.values()}
            named |= {e.metric for e in scenario.exclusions}
            facts = sorted((named - set(metrics.columns)) & self.plot_facts())
            table = pd.concat([base[["plot_id", *facts]], metrics], axis=1)
            scored = score_metrics(table, scenario, empty, explain=explain)
            scored = scored.drop(columns=facts)
            # A user column named like one of ours ("score", "rank" ...) is kept as input_*.
            clash = [c for c in [*scored.columns, "layout"] if c in base.columns and c != "plot_id"]
            base = base.rename(columns={c: f"input_{c}" for c in clash})
            ranked = base.join(scored.drop(columns=["plot_id"]))
            ranked = gpd.GeoDataFrame(ranked, geometry="geometry", crs=self.crs)
            units = ranked["capacity_units"].fillna(0).to_numpy(dtype=np.int64)
            ranked["layout"] = self._layouts[np.arange(len(ranked)), units]
            return order_ranked(ranked)


def _frame_digest(plots: gpd.GeoDataFrame) -> str:
    """Checksum of plot ids, statuses and geometries (WKB) as read and reprojected."""
    h = hashlib.sha256()
    h.update("\x1f".join(plots["plot_id"].astype(str)).encode())
    h.update("\x1f".join(plots["status"].astype(str)).encode())
    for wkb in plots.geometry.to_wkb():
        h.update(wkb or b"-")
    return h.hexdigest()


def order_ranked(ranked: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Rank order, then unranked plots in input order; the most useful columns first."""
    ranked = ranked.sort_values(["rank", "source_row"], na_position="last", kind="stable")
    first = [
        "plot_id", "name", "owner", "rank", "score", "status", "status_reason_nb",
        "status_reason_en", "explanation_nb", "explanation_en", "area_m2", "district",
        "capacity_units",
    ]
    first = [c for c in first if c in ranked.columns]
    rest = [c for c in ranked.columns if c not in first and c != "geometry"]
    return ranked[[*first, *rest, "geometry"]].reset_index(drop=True)


def _as_scenario(scenario: Scenario | str | Path | None) -> Scenario:
    if scenario is None:
        return default_scenario()
    if isinstance(scenario, Scenario):
        return scenario
    return load_scenario(scenario)


class RunResult:
    """What :func:`run` produced.

    Attributes
    ----------
    ranked : GeoDataFrame
        The ranked plots (docs/CONTRACT.md), with selection columns when a selection ran.
    study : Study
        The study, for further scoring without measuring again.
    outputs : dict of str to Path
        ``ranked_csv``, ``ranked_gpkg``, ``map``, ``map_offline``, ``manifest`` and, when
        asked for, ``selected_csv``, ``selected_gpkg``, ``report_html``, ``report_pdf``.
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
        selection=None,
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


def select(
    study: Study,
    ranked: gpd.GeoDataFrame,
    *,
    units: int | None = None,
    sites: int | None = None,
    scenario: Scenario | None = None,
):
    """Choose a set of sites from ranked plots under the scenario's clustering limits.

    Parameters
    ----------
    study : Study
        Supplies the existing sites (sensitive) and the scenario's limits.
    ranked : GeoDataFrame
        From :meth:`Study.score` (with ``capacity_units``, ``layout``, ``district``).
    units, sites : int, optional
        Deliver exactly this many units and/or sites.
    scenario : Scenario, optional
        Limits to use (default: the study's).

    Returns
    -------
    ranked : GeoDataFrame
        ``ranked`` with ``selected``, ``selected_units``, ``selection_reason_nb/en``.
    result : SelectionResult
        The chosen set, solver status and bound (see :mod:`sitefinder.select`).
    """
    from sitefinder.select import select_sites

    scenario = scenario or study.scenario
    result = select_sites(
        ranked,
        scenario.clustering,
        units=units,
        sites=sites,
        capacity=scenario.capacity,
        existing=study.existing_sites(),
    )
    return ranked.join(result.table(ranked.index)), result


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
) -> RunResult:
    """Rank the plots (and optionally choose sites) and write every output.

    Writes ``ranked.csv``, ``ranked.gpkg``, ``map.html``, ``map_offline.html`` and
    ``manifest.json``; with ``units``/``sites`` also ``selected.csv``/``selected.gpkg``;
    with ``report`` also ``report.html``/``report.pdf``.

    Everything is written into a temporary folder beside ``out_dir`` and put in its place
    whole once complete (:mod:`sitefinder.outfolder`): whatever happens to the run,
    ``out_dir`` holds either the previous run or this one, never a mix. The manifest lists
    every output file with its SHA-256, and the study's inputs. Output files of an earlier
    run that this run does not write (``report.pdf`` after a plain run) are not kept; files
    that sitefinder did not write are.

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
        See :class:`Study`. Default: the layers folder of the study in ``out_dir``, else
        ``layers``.
    cache_dir : str or Path or None
        See :class:`Study`.
    plots_crs, id_column : str, optional
        See :class:`Study`. Default: the study's in ``out_dir`` for the same plot file.
    units, sites : int, optional
        Choose a set of sites delivering exactly this many units / sites.
    maps : bool
        Write the interactive maps.
    offline : bool
        Make ``map.html`` itself self-contained (no CDN, no tiles).
    report : bool
        Write the printable report.
    public : bool
        Public mode: no sensitive layer in any map or report.
    top_n : int
        Candidates given a page in the report.
    lock_wait : float, optional
        Seconds to wait while another run uses ``out_dir`` or the layers folder (default:
        the environment variable ``SITEFINDER_LOCK_WAIT``, else 10).

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
    from sitefinder.outfolder import (
        OutputFolder,
        StudyInputs,
        check_inputs_readable,
        checkpoint,
        layers_lock,
        remove_dead_temp_files,
        resolve_study,
    )
    from sitefinder.publish import per_district_counts, write_maps, write_meeting_report
    from sitefinder.select import write_selection

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
        scenario = _as_scenario(
            study_in.scenario if study_in.scenario is not None
            else demo_scenario_for(study_in.plots, study_in.osm)
        )
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
            written["ranked_csv"] = write_ranked_csv(ranked, staging / "ranked.csv")
            written["ranked_gpkg"] = write_ranked_gpkg(ranked, staging / "ranked.gpkg")
        if maps or report:
            # Maps and report need the extract, layers and network even on a cache hit;
            # load them here so each step's time is its own in the manifest.
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
        study.timings["total"] = round(time.perf_counter() - started, 3)
        inputs: dict[str, Path | None] = {
            "plots": study.plots_path,
            "osm": study.osm_path,
            "scenario": scenario_path(scenario),
            **scenario.input_files(),
        }
        # Layer files as used (also when the metrics came from the cache and no layer was
        # read).
        for name, spec in scenario.layers.items():
            inputs[f"layer:{name}"] = spec.file or Path(layers_dir) / f"{name}.gpkg"
        if public:  # the manifest of a public run must not point at the sensitive file
            inputs.pop("existing_sites", None)
        extra = {
            "crs": study.crs.to_string(),
            "metrics_cache_hit": study.cache_hit,
            "osm_stats": study._osm.stats if study._osm is not None else None,
            "layer_origin": study._layers.origin if study._layers is not None else None,
            "public": public,
            "plots": {"total": len(ranked),
                      "by_status": ranked["status"].value_counts().to_dict()},
        }
        # What the reader of the ranking must know about the map data (empty layers,
        # incomplete dwellings, areas cut at the edge): in the manifest and the summary.
        data_warnings = study.data_warnings()
        extra["data_warnings"] = [w.as_dict() for w in data_warnings]
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
        # The manifest is written last: it vouches for every file written before it.
        written["manifest"] = write_manifest(
            staging / "manifest.json",
            inputs=inputs,
            scenario=scenario,
            timings=study.timings,
            outputs=list(written.values()),
            extra=extra,
            public=public,
            shown_dir=folder.path,
            study=study_in.with_scenario(scenario_path(scenario)).record(),
        )
        folder.commit()
    outputs = {role: folder.path / path.name for role, path in written.items()}
    return RunResult(ranked, study, outputs, selection, data_warnings)


#: The bundled demo data, found beside the package (not in the working folder), so the
#: demo runs the same from any folder.
BUNDLED_DATA = Path(__file__).resolve().parents[1] / "data"
BUNDLED_PLOTS = BUNDLED_DATA / "plots.gpkg"
BUNDLED_OSM = BUNDLED_DATA / "oslo-center.osm.pbf"
DEMO_SCENARIO = BUNDLED_DATA / "oslo-demo.yaml"


def demo_scenario_for(plots: str | Path, osm: str | Path) -> Path | None:
    """The bundled demo scenario when running on the bundled demo data, else None.

    The demo scenario adds the Oslo-only inputs (population grid, districts) to the default;
    another municipality's data gets the generic default instead of Oslo's files.
    """
    bundled = (
        Path(plots).resolve() == BUNDLED_PLOTS.resolve()
        and Path(osm).resolve() == BUNDLED_OSM.resolve()
    )
    return DEMO_SCENARIO if bundled and DEMO_SCENARIO.exists() else None


def scenario_path(scenario: Scenario) -> Path | None:
    """The YAML file a scenario was loaded from, when known."""
    return getattr(scenario, "_source_path", None)
