"""The notebook-facing API: measure once with a :class:`Study`, score many scenarios.

>>> from sitefinder import Study                                # doctest: +SKIP
>>> study = Study.demo()          # or Study("plots.gpkg", "kommune.osm.pbf", "mine.yaml")
>>> ranked = study.score()                                      # doctest: +SKIP
>>> ranked2 = study.score(study.scenario.with_weights(transit=6))  # doctest: +SKIP
>>> study.explore()               # the CLI's map, inline in Jupyter  # doctest: +SKIP
>>> graph = study.graph()         # networkx/osmnx walking network    # doctest: +SKIP
>>> study.route("OSL-076", "grocery")                           # doctest: +SKIP

Work once: the metrics table, the read OSM extract, the walking network, the layers and the
isochrones are cached on disk (``cache_dir``), keyed by checksums of the plot file, the OSM
file, every layer file and the measurement settings (and of the code that builds them); any
change to one of them measures again. ``sitefinder select`` and ``report`` after ``run``
therefore neither parse the extract nor build the network again.

Writing output files is :mod:`sitefinder.pipeline`'s work; this module imports neither it
nor :mod:`sitefinder.publish`.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import sys
import sysconfig
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd
from pyproj import CRS

from sitefinder import __version__
from sitefinder.capacity import HARD_MAX_UNITS_PER_SITE, CeilingLayouts, LayoutRun
from sitefinder.config import Scenario, default_scenario, load_scenario, network_categories
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
from sitefinder.network import WalkNetwork, build_walk_network, plot_access
from sitefinder.network_distances import isochrones
from sitefinder.outfolder import read_cache, write_cache
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

if TYPE_CHECKING:
    import folium
    import networkx as nx

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
        self.scenario = as_scenario(scenario)
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
        self._context_tried = False
        self._metrics: pd.DataFrame | None = None
        self._empty: set[str] = set()
        self._districts: gpd.GeoDataFrame | None = None
        self._existing: gpd.GeoDataFrame | None = None
        self._layouts: CeilingLayouts | None = None
        # Whether the unit layout was served by the workers started before reading OSM.
        self._layout_started_ahead: bool | None = None
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
        """The OSM extract (read on first use; from the cache when read before)."""
        if self._osm is None:
            path = self._osm_cache_file()
            if path is not None and path.exists():
                with self._timed("load cached OSM"):
                    self._osm = read_cache(path, check=lambda v: isinstance(v, OsmData),
                                           what="the cached OSM extract",
                                           action="discarded; reading the extract again")
            if self._osm is None:
                with self._timed("read OSM"):
                    self._osm = read_osm(self.osm_path)
                if path is not None:
                    write_cache(path, self._osm)
        return self._osm

    @property
    def layers(self) -> LayerSet:
        """Thematic layers, built from OSM or reused from ``layers_dir``."""
        if self._layers is None and not self._load_context():
            osm = self.osm
            with self._timed("build layers"):
                self._layers = build_layers(osm, self.scenario, self.crs, self.layers_dir)
            self._save_context()
        return self._layers

    @property
    def network(self) -> WalkNetwork:
        """The walking network (built on first use)."""
        if self._network is None and not self._load_context():
            osm = self.osm
            with self._timed("build network"):
                self._network = build_walk_network(osm.lines, self.crs, self.scenario.network)
            self._save_context()
        return self._network

    # "Work once": the read extract, the network and the layers are cached beside the
    # metrics, so select and report after run neither parse the extract nor rebuild.
    def _osm_cache_file(self) -> Path | None:
        if self.cache_dir is None:
            return None
        key = f"{file_sha256(self.osm_path)}:{_code_digest('sitefinder.sources.osm')}"
        return self.cache_dir / f"osm-{hashlib.sha256(key.encode()).hexdigest()[:24]}.pkl"

    def _context_file(self, what: str = "context") -> Path | None:
        """Cache file of what is built from network and layers, keyed like the metrics.

        None when there is no cache (or no key yet, before the layers are built).
        """
        key = self._cache_key() if self.cache_dir is not None else None
        if key is None:
            return None
        code = _code_digest("sitefinder.network", "sitefinder.network_chains",
                            "sitefinder.network_distances", "sitefinder.network_counts",
                            "sitefinder.layers")
        return self.cache_dir / f"{what}-{key}-{code[:12]}.pkl"

    def _load_context(self) -> bool:
        """Network and layers from the cache; False when they must be built."""
        if self._context_tried:
            return self._layers is not None and self._network is not None
        self._context_tried = True
        path = self._context_file()
        if path is None or not path.exists():
            return False
        with self._timed("load cached network and layers"):
            cached = read_cache(path, what="the cached network and layers",
                                action="discarded; building them again", check=lambda v: (
                isinstance(v, tuple) and len(v) == 2 and isinstance(v[0], WalkNetwork)
                and isinstance(v[1], LayerSet)))
        if cached is None:
            return False
        self._network, layers = cached
        # Files built by the run that cached them are reused files now.
        origin = {k: "reused" if v == "built" else v for k, v in layers.origin.items()}
        self._layers = LayerSet(layers.frames, origin, layers.paths)
        return True

    def _save_context(self) -> None:
        if self._layers is None or self._network is None:
            return
        path = self._context_file()
        if path is not None and not path.exists():
            write_cache(path, (self._network, self._layers))

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

        # Always with the extract (cached after the first read), so that run, select and
        # report warn alike whether or not the metrics came from the cache.
        return data_warnings(self.osm, self.layers, self.scenario)

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
            # What the cache file holds; a file of another layout is a miss, not damage.
            "format": _METRICS_CACHE_FORMAT,
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
        if self._load_cached_metrics():
            return self._metrics
        self._measure()
        if self.cache_dir is not None:
            key = self._cache_key()
            if key:
                # Written whole or not at all (temporary file, then os.replace).
                write_cache(self.cache_dir / f"metrics-{key}.pkl",
                            (self._metrics, self._empty, self._layouts))
                self._save_context()
        return self._metrics

    def _load_cached_metrics(self) -> bool:
        """Metrics, empty layers and layouts from the cache; False when they must be measured."""
        key = self._cache_key() if self.cache_dir is not None else None
        cache_file = self.cache_dir / f"metrics-{key}.pkl" if key and self.cache_dir else None
        if cache_file is None or not cache_file.exists():
            return False
        with self._timed("load cached metrics"):
            # A damaged cache file is reported, deleted and measured again.
            cached = read_cache(cache_file, check=lambda v: (
                isinstance(v, tuple) and len(v) == 3 and isinstance(v[0], pd.DataFrame)
                and v[0].index.equals(self.plots.index)
                # One layout per plot (an older version kept a table per unit count).
                and isinstance(v[2], CeilingLayouts) and len(v[2]) == len(self.plots)))
        if cached is None:
            return False
        self._metrics, self._empty, self._layouts = cached
        self.cache_hit = True
        return True

    def _measure(self) -> None:
        """Measure every plot: network, surroundings, rasters, unit layout, districts."""
        ceiling = self.scenario.capacity.model_copy(
            update={"max_units_per_site": HARD_MAX_UNITS_PER_SITE, "min_units_per_site": 1}
        )
        # The layout needs only the plots: from POOL_MIN_PLOTS plots on, forked workers
        # start on it now, while this process is still small, and work beside the reading
        # and measuring below; this process joins in when it gets to the layout.
        layout_run = LayoutRun(self.plots.loc[_layable(self.plots)], ceiling)
        try:
            bar = step_bar(4, "measuring")
            _ = self.osm
            bar.update()
            layers = self.layers
            bar.update()
            net = self.network
            bar.update()
            with self._timed("measure"):
                metrics = compute_metrics(self.plots, net, layers, self.scenario)
            if (metrics["status"] == "outside_network").any() and not (
                    metrics["status"] == "ok").any():
                # Not one plot reached the network: a wrong UTM zone is the usual cause.
                check_utm_zone(self.plots, self._file_crs, self.osm.bounds, path=self.plots_path)
            plots = self.plots.assign(status=metrics["status"])
            with self._timed("raster metrics"):
                rasters = raster_metrics(
                    plots, self.scenario.measure, self.layers_dir, lambda: self.osm
                )
            with self._timed("unit layout"):
                # Plots that measuring found unusable (outside the network) are left out.
                layout = layout_run.plan(plots.loc[_layable(plots)])
                self._layout_started_ahead = layout_run.used_ahead
        finally:
            layout_run.close()
        capacity = pd.DataFrame(
            {"capacity_max_units": layout["capacity_units"].reindex(plots.index)}
        )
        self._layouts = CeilingLayouts(layout["layout"].reindex(plots.index))
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
        scenario = self.scenario if scenario is None else as_scenario(scenario)
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
            ranked["layout"] = self._layouts.first(units)
            return order_ranked(ranked)

    @classmethod
    def demo(cls, scenario: Scenario | str | Path | None = None, **kwargs) -> Study:
        """The bundled central-Oslo demo: 88 illustrative plots on a 2025 OSM extract.

        Parameters
        ----------
        scenario : Scenario or str or Path, optional
            Default: the demo scenario (the default plus Oslo's population grid, districts
            and drug-scene layer).
        **kwargs
            Passed to :class:`Study`. ``layers_dir`` and ``cache_dir`` default to folders
            in the user's cache (``$XDG_CACHE_HOME/sitefinder`` or ``~/.cache/sitefinder``),
            not the working folder: a notebook started anywhere measures once and leaves
            no files behind.

        Returns
        -------
        Study
        """
        scenario = DEMO_SCENARIO if scenario is None else scenario
        kwargs.setdefault("cache_dir", user_cache_dir())
        kwargs.setdefault("layers_dir", user_cache_dir() / "demo-layers")
        return cls(BUNDLED_PLOTS, BUNDLED_OSM, scenario, **kwargs)

    def screen(self, **kwargs: Any):
        """Screen this study's extract for land where a house could stand, with its scenario.

        The plots play no part: the candidates are grid cells (:func:`sitefinder.screen.screen`,
        whose keyword arguments — ``area``, ``bbox``, ``cell_size_m``, ``out`` … — pass
        through). The study's layers folder is shared, so layers edited in QGIS count.

        Returns
        -------
        sitefinder.screen.ScreenResult
        """
        from sitefinder.screen import screen

        kwargs.setdefault("layers_dir", self.layers_dir)
        return screen(self.osm_path, self.scenario, **kwargs)

    def graph(self) -> nx.MultiDiGraph:
        """The walking network as a networkx ``MultiDiGraph`` in osmnx's conventions.

        Nodes carry ``x``/``y`` (local CRS), edges ``length`` in metres, the graph ``crs``;
        so ``osmnx.plot_graph``, ``osmnx.routing.shortest_path`` and
        ``osmnx.graph_to_gdfs`` work on it. See :func:`sitefinder.routes.walk_graph`.

        Returns
        -------
        networkx.MultiDiGraph
        """
        from sitefinder.routes import walk_graph

        return walk_graph(self)

    def route(self, plot_id: str, category: str) -> gpd.GeoDataFrame:
        """The walking route from a plot to the nearest feature of a category.

        Parameters
        ----------
        plot_id : str
            A plot of the study (``plot_id`` column).
        category : str
            A walking-distance category of the scenario: ``transit``, ``grocery``,
            ``pharmacy``, ``health``, ``meeting``, ``nature``, ``centre`` ….

        Returns
        -------
        GeoDataFrame
            One line per route found (none when the plot cannot reach the network):
            ``plot_id``, ``category``, ``target_name``, ``length_m``, ``minutes``, geometry
            in the study's CRS. ``length_m`` is the distance the metrics measured.

        Raises
        ------
        InputError
            An unknown plot id or category.
        """
        self._check_route_request(plot_id, category)
        from sitefinder.routes import walking_routes

        return walking_routes(self, [plot_id], [category])

    def _check_route_request(self, plot_id: str, category: str) -> None:
        ids = self.plots["plot_id"].astype(str)
        if str(plot_id) not in set(ids):
            raise InputError(
                f"there is no plot '{plot_id}'",
                where=f"Study.route (plots: {self.plots_path})",
                hint=f"Use a plot_id of the study, e.g. {', '.join(ids.head(3))}",
            )
        categories = network_categories(self.scenario.layers)
        if category not in categories:
            raise InputError(
                f"'{category}' is not a walking-distance category",
                where=f"Study.route, scenario '{self.scenario.name}'",
                hint=f"Use one of: {', '.join(categories)}",
            )

    def explore(self, scenario: Scenario | str | Path | None = None, column: str = "score",
                **kwargs) -> folium.Map:
        """The interactive map of the ranked plots, as the CLI draws it; shown inline.

        Like ``GeoDataFrame.explore``: the returned ``folium.Map`` displays itself in a
        notebook and can be saved with ``.save("map.html")``.

        Parameters
        ----------
        scenario : Scenario or str or Path, optional
            Score under this scenario (default: the study's); measured nothing again.
        column : str
            ``score`` (default): the CLI's map, with layers, isochrones of the top plots,
            districts and the weights panel. Any other numeric column of the ranked table
            (e.g. ``time_transit_min``): a plain map of the plots coloured by it.
        **kwargs
            Passed to :func:`sitefinder.maps.build_map` (e.g. ``public=True``,
            ``offline=True``, ``top_n=5``, ``selection=...``); for another column, to
            ``folium.Map`` (e.g. ``tiles=None``).

        Returns
        -------
        folium.Map

        Raises
        ------
        InputError
            A column the ranked table does not have.
        """
        from sitefinder.maps import build_map, column_map

        scenario = self.scenario if scenario is None else as_scenario(scenario)
        ranked = self.score(scenario)
        if column not in ranked.columns:
            raise InputError(
                f"the ranked plots have no column '{column}'",
                where="Study.explore",
                hint="Colour by 'score' or another column of Study.score(), e.g. "
                "'time_transit_min'",
            )
        if column != "score":
            return column_map(ranked, column, ["plot_id", "rank", "status", column], **kwargs)
        from sitefinder.map_inputs import map_inputs

        top = ranked.loc[ranked["status"] == "ok", "plot_id"].head(kwargs.get("top_n", 10))
        options = map_inputs(self, ranked, scenario, top.tolist(),
                             public=kwargs.get("public", False))
        return build_map(ranked, **{**options, **kwargs})

    def isochrones(
        self, plot_ids: list[str], minutes: tuple[float, ...] = (5.0, 10.0, 15.0)
    ) -> gpd.GeoDataFrame:
        """Walking isochrones that follow the streets, for the given plots.

        Cached per plot beside the metrics, so the maps of ``select`` and ``report`` after
        ``run`` draw the same plots' isochrones without walking the network again.

        Parameters
        ----------
        plot_ids : list of str
            Plots to draw them for (unknown ids and plots off the network are skipped).
        minutes : tuple of float
            Walking times.

        Returns
        -------
        GeoDataFrame
            ``plot_id``, ``minutes``, geometry (study CRS), largest time first per plot.
        """
        minutes = tuple(float(m) for m in minutes)
        path = self._context_file("isochrones")
        cached = self._isochrone_cache(path)
        wanted = [p for p in dict.fromkeys(plot_ids) if p in set(self.plots["plot_id"])]
        missing = [p for p in wanted if (p, minutes) not in cached]
        if missing:
            fresh = self._walk_isochrones(missing, minutes)
            for plot_id in missing:
                cached[(plot_id, minutes)] = fresh[fresh["plot_id"] == plot_id]
            if path is not None:
                write_cache(path, cached)
        parts = [cached[(p, minutes)] for p in wanted]
        if not parts:
            return gpd.GeoDataFrame({"plot_id": [], "minutes": []}, geometry=[], crs=self.crs)
        return gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), crs=self.crs)

    def _isochrone_cache(self, path: Path | None) -> dict:
        if path is None or not path.exists():
            return {}
        value = read_cache(path, check=lambda v: isinstance(v, dict),
                           what="the cached isochrones", action="discarded; drawing them again")
        return value or {}

    def _walk_isochrones(self, plot_ids: list[str], minutes: tuple[float, ...]
                         ) -> gpd.GeoDataFrame:
        rows = self.plots[self.plots["plot_id"].isin(plot_ids)]
        settings = self.scenario.network
        access = plot_access(self.network, rows.geometry, settings)
        nodes, legs = access.primary(self.network)
        speed = settings.walk_speed_kmh * 1000 / 60
        return isochrones(self.network, nodes, legs, rows["plot_id"].tolist(), minutes, speed)


def _layable(plots: gpd.GeoDataFrame) -> pd.Series:
    """Plots a layout is drawn on: status ok and an outline (a CSV's lat/lon point has none)."""
    return (plots["status"] == "ok") & plots.geometry.geom_type.isin(["Polygon", "MultiPolygon"])


#: Version of the metrics cache file's contents: 2 keeps only the ceiling layouts
#: (:class:`~sitefinder.capacity.CeilingLayouts`) instead of a table per unit count.
_METRICS_CACHE_FORMAT = 2


@lru_cache(maxsize=8)
def _code_digest(*modules: str) -> str:
    """Checksum of the modules' source: a cached object from other code is built anew."""
    h = hashlib.sha256(__version__.encode())
    for name in modules:
        origin = importlib.util.find_spec(name).origin
        h.update(Path(origin).read_bytes() if origin else name.encode())
    return h.hexdigest()


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


def as_scenario(scenario: Scenario | str | Path | None) -> Scenario:
    """A scenario from itself, its YAML file, or the shipped default for None."""
    if scenario is None:
        return default_scenario()
    if isinstance(scenario, Scenario):
        return scenario
    return load_scenario(scenario)


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


def user_cache_dir() -> Path:
    """The user's cache folder for sitefinder (``$XDG_CACHE_HOME/sitefinder``)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "sitefinder"


def bundled_data_dir() -> Path:
    """Folder of the bundled demo data, wherever sitefinder is installed.

    A source checkout or editable install has ``data/`` beside the package; a regular
    ``pip install`` puts the same files in ``<prefix>/share/sitefinder/data`` (pyproject's
    ``data-files``). Never the working folder, so the demo runs the same from any folder.
    """
    beside = Path(__file__).resolve().parents[1] / "data"
    candidates = [beside]
    for scheme in {sysconfig.get_default_scheme(), sysconfig.get_preferred_scheme("user")}:
        root = Path(sysconfig.get_path("data", scheme))
        candidates.append(root / "share" / "sitefinder" / "data")
    candidates.append(Path(sys.prefix) / "share" / "sitefinder" / "data")
    for folder in candidates:
        if (folder / "plots.gpkg").is_file():
            return folder
    return beside  # a missing demo is then reported naming the expected place


#: The bundled demo data (see :func:`bundled_data_dir`).
BUNDLED_DATA = bundled_data_dir()
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
