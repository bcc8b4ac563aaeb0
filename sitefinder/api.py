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
import pickle
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import geopandas as gpd
import pandas as pd
from pyproj import CRS

from sitefinder import __version__
from sitefinder.config import NETWORK_CATEGORIES, Scenario, default_scenario, load_scenario
from sitefinder.errors import InputError
from sitefinder.layers import BOOKKEEPING_FILE, LayerSet, build_layers, check_layer_keys
from sitefinder.measure import compute_metrics
from sitefinder.network import WalkNetwork, build_walk_network
from sitefinder.outputs import write_manifest, write_ranked_csv, write_ranked_gpkg
from sitefinder.progress import step_bar
from sitefinder.raster_metrics import raster_metrics
from sitefinder.score import score_metrics
from sitefinder.sources.osm import OsmData, file_sha256, read_osm
from sitefinder.sources.plots import local_crs, read_plots, to_local

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
        self._osm: OsmData | None = None
        self._layers: LayerSet | None = None
        self._network: WalkNetwork | None = None
        self._metrics: pd.DataFrame | None = None
        self._empty: set[str] = set()

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

    def _cache_key(self) -> str | None:
        """Key of the metrics table, or None when a layer file is stale or missing."""
        book_path = self.layers_dir / BOOKKEEPING_FILE
        book = json.loads(book_path.read_text()) if book_path.exists() else {}
        osm_sha = file_sha256(self.osm_path)
        parts = {
            "version": __version__,
            "plots": file_sha256(self.plots_path),
            "osm": osm_sha,
            "measure": self.scenario.measurement_key(),
            "crs": self.crs.to_string(),
        }
        for role, path in self.scenario.input_files().items():
            parts[f"input:{role}"] = file_sha256(path)
        for name, spec in self.scenario.layers.items():
            path = spec.file if spec.file is not None else self.layers_dir / f"{name}.gpkg"
            if not Path(path).exists():
                return None
            sha = file_sha256(path)
            entry = book.get(name)
            if spec.file is None and entry and entry["file_sha256"] == sha and entry["osm_sha256"] != osm_sha:
                return None  # an untouched layer built from another OSM file: rebuild first
            parts[f"layer:{name}"] = sha
        return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:24]

    @property
    def metrics(self) -> pd.DataFrame:
        """The raw metrics table (one row per plot, index aligned with :attr:`plots`)."""
        if self._metrics is not None:
            return self._metrics
        key = self._cache_key() if self.cache_dir is not None else None
        cache_file = self.cache_dir / f"metrics-{key}.pkl" if key and self.cache_dir else None
        if cache_file is not None and cache_file.exists():
            with self._timed("load cached metrics"), open(cache_file, "rb") as f:
                self._metrics, self._empty = pickle.load(f)
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
        with self._timed("raster metrics"):
            plots = self.plots.assign(status=metrics["status"])
            rasters = raster_metrics(
                plots, self.scenario.measure, self.layers_dir, lambda: self.osm
            )
        self._metrics = pd.concat([metrics, rasters], axis=1)
        self._empty = {c for c in NETWORK_CATEGORIES if len(layers[c]) == 0}
        bar.update()
        bar.close()
        if self.cache_dir is not None:
            key = self._cache_key()
            if key:
                self.cache_dir.mkdir(parents=True, exist_ok=True)
                with open(self.cache_dir / f"metrics-{key}.pkl", "wb") as f:
                    pickle.dump((self._metrics, self._empty), f)
        return self._metrics

    def score(self, scenario: Scenario | str | Path | None = None) -> gpd.GeoDataFrame:
        """Score and rank the plots under ``scenario`` (default: the study's) — no network work.

        Parameters
        ----------
        scenario : Scenario or str or Path, optional
            Must share the study's measurement settings (layers, network, counts, CRS);
            only criteria, weights, thresholds and exclusions may differ.

        Returns
        -------
        GeoDataFrame
            One row per input plot, in rank order then input order (docs/CONTRACT.md).
        """
        scenario = self.scenario if scenario is None else _as_scenario(scenario)
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
            table = pd.concat([base[["plot_id"]], metrics], axis=1)
            scored = score_metrics(table, scenario, empty)
            ranked = base.join(scored.drop(columns=["plot_id"]))
            ranked = gpd.GeoDataFrame(ranked, geometry="geometry", crs=self.crs)
            return order_ranked(ranked)


def order_ranked(ranked: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Rank order, then unranked plots in input order; the most useful columns first."""
    ranked = ranked.sort_values(["rank", "source_row"], na_position="last", kind="stable")
    first = [
        "plot_id", "name", "owner", "rank", "score", "status", "status_reason_nb",
        "status_reason_en", "explanation_nb", "explanation_en", "area_m2",
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
        The ranked plots (docs/CONTRACT.md).
    study : Study
        The study, for further scoring without measuring again.
    outputs : dict of str to Path
        ``ranked_csv``, ``ranked_gpkg``, ``map``, ``manifest``.
    """

    def __init__(self, ranked: gpd.GeoDataFrame, study: Study, outputs: dict[str, Path]) -> None:
        self.ranked = ranked
        self.study = study
        self.outputs = outputs

    def __repr__(self) -> str:
        ok = int((self.ranked["status"] == "ok").sum())
        return f"RunResult({len(self.ranked)} plots, {ok} ranked, outputs={list(self.outputs)})"


def run(
    plots: str | Path = "data/plots.gpkg",
    osm: str | Path = "data/oslo-center.osm.pbf",
    scenario: Scenario | str | Path | None = None,
    out_dir: str | Path = "output",
    *,
    layers_dir: str | Path = "layers",
    cache_dir: str | Path | None = ".cache/sitefinder",
    plots_crs: str | None = None,
    id_column: str = "plot_id",
    write_map: bool = True,
) -> RunResult:
    """Rank the plots and write ``ranked.csv``, ``ranked.gpkg``, ``map.html``, ``manifest.json``.

    Parameters
    ----------
    plots, osm : str or Path
        Plot file and OSM extract (defaults: the bundled demo data).
    scenario : Scenario or str or Path, optional
        Scenario or its YAML file; the shipped default when omitted.
    out_dir : str or Path
        Output folder (created when missing).
    layers_dir, cache_dir, plots_crs, id_column
        See :class:`Study`.
    write_map : bool
        Also write the interactive map.

    Returns
    -------
    RunResult
    """
    started = time.perf_counter()
    scenario = _as_scenario(scenario)  # validated before any heavy work
    study = Study(
        plots, osm, scenario, layers_dir=layers_dir, cache_dir=cache_dir,
        plots_crs=plots_crs, id_column=id_column,
    )
    ranked = study.score()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    outputs: dict[str, Path] = {}
    with study._timed("write outputs"):
        outputs["ranked_csv"] = write_ranked_csv(ranked, out_dir / "ranked.csv")
        outputs["ranked_gpkg"] = write_ranked_gpkg(ranked, out_dir / "ranked.gpkg")
    if write_map:
        from sitefinder.maps import write_map as _write_map

        with study._timed("write map"):
            weights = {name: c.weight for name, c in scenario.criteria.items()}
            outputs["map"] = _write_map(
                ranked,
                out_dir / "map.html",
                layers=study.layers.frames,
                weights=weights,
                language=scenario.language,
            )
    study.timings["total"] = round(time.perf_counter() - started, 3)
    inputs: dict[str, Path | None] = {
        "plots": study.plots_path,
        "osm": study.osm_path,
        "scenario": scenario_path(scenario),
        **scenario.input_files(),
    }
    if study._layers is not None:
        inputs.update({f"layer:{k}": p for k, p in study.layers.paths.items()})
    outputs["manifest"] = write_manifest(
        out_dir / "manifest.json",
        inputs=inputs,
        scenario=scenario,
        timings=study.timings,
        outputs=list(outputs.values()),
        extra={
            "crs": study.crs.to_string(),
            "metrics_cache_hit": study.cache_hit,
            "osm_stats": study._osm.stats if study._osm is not None else None,
            "layer_origin": study._layers.origin if study._layers is not None else None,
            "plots": {
                "total": len(ranked),
                "by_status": ranked["status"].value_counts().to_dict(),
            },
        },
    )
    return RunResult(ranked, study, outputs)


def scenario_path(scenario: Scenario) -> Path | None:
    """The YAML file a scenario was loaded from, when known."""
    return getattr(scenario, "_source_path", None)
