"""Many areas at once on Dask: ``sitefinder batch``.

Each area (a municipality from Kartverket's boundaries, an Oslo district, a tile) is one
partition: a Dask task that cuts the OSM extract to the area plus the scenario's search
buffer and runs ``run`` or ``screen`` on that cut alone (:mod:`sitefinder.batch_partition`,
:mod:`sitefinder.osm_clip`), so no worker holds the whole extract. The partitions run on a
``dask.distributed.LocalCluster`` (processes, ``workers`` of them) or on the cluster at
``scheduler``; a partition that fails is retried once and then reported with its error.

A rerun skips the partitions whose inputs (plots in the area, OSM extract, scenario and
its files, area geometry) and outputs are unchanged, by the checksums in each partition's
``partition.json``, and redoes the rest. The combined outputs are in
:mod:`sitefinder.batch_combine`.

>>> from sitefinder.batch import batch                           # doctest: +SKIP
>>> result = batch("data/oslo_bydeler.gpkg", out="batch")        # doctest: +SKIP
>>> result.summary[["area_id", "name", "status", "best_score"]]  # doctest: +SKIP

The output folder must be on a file system every worker sees (a real cluster: a shared
disk); the extract, plots and scenario files too.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import shapely

from sitefinder.batch_areas import geometry_sha256, read_areas, tile_areas
from sitefinder.batch_partition import (
    PartitionSpec,
    cut_for_group,
    partition_intact,
    read_partition,
    run_partition,
)
from sitefinder.config import Scenario
from sitefinder.errors import InputError

__all__ = ["BatchResult", "batch"]

MODES = ("run", "screen")
#: Folder of the shared cuts of groups of areas (removed when the partitions are done).
CUTS_DIR = ".cuts"


@dataclass
class BatchResult:
    """What :func:`batch` did.

    Attributes
    ----------
    summary : GeoDataFrame
        One row per area (:data:`sitefinder.batch_combine.SUMMARY_COLUMNS`), outline in
        lon/lat; ``status`` is ``done``, ``skipped-unchanged``, ``failed`` or ``empty``.
    records : dict of str to dict
        Each area's partition record (``partition.json``; for a failed one its error).
    outputs : dict of str to Path
        ``dataset``, ``summary_csv``, ``summary_parquet``, ``overview_map``, ``manifest``
        and, when some plots lie in no area, ``plots_outside_areas``.
    buffer_m : float
        The search buffer around each area.
    dashboard : str or None
        The Dask dashboard's address.
    seconds : float
    unassigned : DataFrame
        Plots in no area (or without a usable geometry), with the reason.
    """

    summary: gpd.GeoDataFrame
    records: dict[str, dict[str, Any]]
    outputs: dict[str, Path]
    buffer_m: float
    dashboard: str | None
    seconds: float
    unassigned: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def by_status(self) -> dict[str, int]:
        """Number of areas per status."""
        return self.summary["status"].value_counts().to_dict()

    def dataset(self) -> gpd.GeoDataFrame:
        """The combined ranked plots or cells of every area (column ``area_id``)."""
        from sitefinder.batch_combine import read_dataset

        return read_dataset(self.outputs["dataset"])

    def summary_lines(self) -> list[str]:
        """The batch in a few English lines for the command line."""
        lines = [f"{len(self.summary)} areas: " + ", ".join(
            f"{n} {s}" for s, n in self.by_status.items()) + f" ({self.seconds:.1f} s)"]
        for row in self.summary.itertuples():
            lines.append("  " + _area_line(row))
        if len(self.unassigned):
            lines.append(f"{len(self.unassigned)} plots lie in no area: "
                         f"{self.outputs.get('plots_outside_areas')}")
        return lines


def batch(
    areas: str | Path | None = None,
    *,
    tiles_m: float | None = None,
    id_column: str | None = None,
    mode: str = "run",
    plots: str | Path | None = None,
    osm: str | Path | None = None,
    scenario: Scenario | str | Path | None = None,
    out: str | Path = "batch",
    workers: int = 2,
    scheduler: str | None = None,
    client: Any = None,
    cell_size_m: float = 50.0,
    buffer_m: float | None = None,
    plots_crs: str | None = None,
    plot_id_column: str = "plot_id",
    maps: bool = True,
    retries: int = 1,
    group_size: int | None = None,
    language: str = "nb",
    log: Callable[[str], None] | None = None,
) -> BatchResult:
    """Run ``run`` or ``screen`` for many areas as partitions on Dask, and combine them.

    Parameters
    ----------
    areas : str or Path, optional
        Polygon file of the areas (any CRS), e.g. ``data/oslo_bydeler.gpkg`` or
        Kartverket's municipalities. Either this or ``tiles_m``.
    tiles_m : float, optional
        Instead of ``areas``: square tiles of this many metres over the extract.
    id_column : str, optional
        Area id column (default: ``kommunenummer``, ``bydelsnr``, ``area_id`` or ``id``,
        the first present).
    mode : {"run", "screen"}
        Rank the plots in each area, or screen each area for land.
    plots : str or Path, optional
        Plot file (mode ``run``; default the bundled demo plots with the bundled extract).
    osm : str or Path, optional
        The whole OSM extract (default: the bundled one).
    scenario : Scenario or str or Path, optional
        Default: the shipped default; on the bundled extract the demo scenario.
    out : str or Path
        Output folder: ``areas/<id>/`` per partition, ``dataset/``, ``summary.csv``,
        ``summary.parquet``, ``overview_map.html``, ``batch.json``.
    workers : int
        Worker processes of the LocalCluster (ignored with ``scheduler``/``client``).
    scheduler : str, optional
        Address of a running Dask scheduler, e.g. ``tcp://10.0.0.5:8786``.
    client : distributed.Client, optional
        A client to use as it is (not closed here).
    cell_size_m : float
        Screening grid (mode ``screen``).
    buffer_m : float, optional
        Buffer around each area; default the scenario's largest search distance. A smaller
        buffer gives wrong distances near the edges: for tests and experiments.
    plots_crs, plot_id_column : str
        As for ``sitefinder run``.
    maps : bool
        Write each area's own map (the overview links to it).
    retries : int
        Times Dask runs a failed partition again (default once).
    group_size : int, optional
        Neighbouring areas that share one cut of the extract, so the whole file is read
        once per group instead of once per area (:func:`~sitefinder.batch_partition.
        cut_for_group`); 1 turns it off. Default :func:`auto_group_size` (about √n from
        9 partitions on).
    language : {"nb", "en"}
        Language of the overview map.
    log : callable, optional
        Receives one line per event (the dashboard address, each finished partition).

    Returns
    -------
    BatchResult

    Raises
    ------
    InputError
        Bad areas, plots, OSM or scenario, found before any partition runs.
    """
    started = time.perf_counter()
    say = log or (lambda _line: None)
    if mode not in MODES:
        raise InputError(f"unknown mode '{mode}'", where="--mode",
                         hint="Use --mode run (rank plots) or --mode screen (find land)")
    if mode == "screen" and plots is not None:
        raise InputError("screening finds its own candidates and takes no plot file",
                         where="--plots", hint="Leave out --plots, or use --mode run")
    osm_path, scenario = _inputs(osm, scenario)
    area_frame = _areas(areas, tiles_m, id_column, osm_path, scenario)
    buffer = float(buffer_m) if buffer_m is not None else _search_buffer(scenario)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    with _batch_lock(out):
        _remove_leftovers(out)
        plot_sets, unassigned = _plot_sets(mode, plots, osm_path, plots_crs, plot_id_column,
                                           area_frame, out)
        specs = _specs(area_frame, mode, osm_path, scenario, buffer, out, plot_sets,
                       cell_size_m, maps)
        records, specs = _without_work(specs, shapely.box(*_extract_bounds(osm_path)))
        skipped, todo = _skip_unchanged(specs)
        records.update(skipped)
        for spec in specs:
            if spec.area_id in records:
                say(f"{spec.area_id} {spec.name}: unchanged, skipped")
        dashboard = None
        if todo:
            with _client(client, scheduler, workers) as dask_client:
                dashboard = _dashboard(dask_client)
                if dashboard:
                    say(f"Dask dashboard: {dashboard}")
                size = group_size if group_size is not None else auto_group_size(len(todo))
                records.update(_run_partitions(dask_client, todo, retries, size, out, say))
        result = _combine(out, area_frame, records, unassigned, buffer, dashboard, language,
                          started, _batch_inputs(osm_path, scenario, plots, mode))
    return result


# -- inputs ------------------------------------------------------------------------------

def _inputs(osm, scenario) -> tuple[Path, Scenario]:
    from sitefinder.api import BUNDLED_OSM, DEMO_SCENARIO, as_scenario

    osm_path = Path(osm) if osm is not None else BUNDLED_OSM
    if not osm_path.is_file():
        raise InputError("the OpenStreetMap file does not exist", path=osm_path,
                         where="--osm", hint="Check the path, e.g. --osm my_kommune.osm.pbf")
    if scenario is None and osm_path.resolve() == BUNDLED_OSM.resolve() \
            and DEMO_SCENARIO.exists():
        scenario = DEMO_SCENARIO
    scenario = as_scenario(scenario)
    scenario.check_input_files()
    return osm_path, scenario


def _areas(areas, tiles_m, id_column, osm_path: Path, scenario: Scenario) -> gpd.GeoDataFrame:
    if (areas is None) == (tiles_m is None):
        raise InputError("give either an areas file or a tile size", where="--areas/--tiles",
                         hint="e.g. --areas data/oslo_bydeler.gpkg, or --tiles 5000")
    if areas is not None:
        return read_areas(areas, id_column)
    from sitefinder.sources.plots import local_crs

    bounds = _extract_bounds(osm_path)
    centre = gpd.GeoDataFrame(geometry=[shapely.box(*bounds).centroid], crs=4326)
    return tile_areas(bounds, local_crs(centre, scenario.crs), float(tiles_m))


def _extract_bounds(osm_path: Path) -> tuple[float, float, float, float]:
    """The extract's bounding box from its header, or from its nodes (streamed)."""
    import osmium

    reader = osmium.io.Reader(str(osm_path), osmium.osm.osm_entity_bits.NOTHING)
    try:
        box = reader.header().box()
    finally:
        reader.close()
    if box.valid():
        return (box.bottom_left.lon, box.bottom_left.lat, box.top_right.lon,
                box.top_right.lat)
    lon, lat = [], []
    for node in osmium.FileProcessor(str(osm_path), osmium.osm.NODE):
        if node.location.valid():
            lon.append(node.location.lon)
            lat.append(node.location.lat)
    if not lon:
        raise InputError("the OpenStreetMap file holds no nodes", path=osm_path, where="--osm",
                         hint="Download the extract again")
    return min(lon), min(lat), max(lon), max(lat)


def _search_buffer(scenario: Scenario) -> float:
    from sitefinder.osm_clip import search_buffer_m

    return search_buffer_m(scenario)


def _plot_sets(mode, plots, osm_path, plots_crs, id_column, areas, out: Path
               ) -> tuple[dict[str, tuple[Path, dict[str, int], str]], pd.DataFrame]:
    """Per area: its plot file, plot id → source row, and a checksum of its plots."""
    if mode != "run":
        return {}, pd.DataFrame()
    from sitefinder.api import BUNDLED_OSM, BUNDLED_PLOTS
    from sitefinder.sources.plots import read_plots

    if plots is None:
        if osm_path.resolve() != BUNDLED_OSM.resolve():
            raise InputError("mode run needs a plot file", where="--plots",
                             hint="Give --plots, or use --mode screen to find land")
        plots = BUNDLED_PLOTS
    frame = read_plots(plots, id_column=id_column, crs=plots_crs)
    area_of = _assign(frame, areas)
    folder = out / "_plots"
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir()
    sets = {}
    own = [c for c in frame.columns if c not in _READ_COLUMNS]
    for area_id in areas["area_id"]:
        subset = frame.loc[area_of == area_id, own]
        if subset.empty:
            continue
        path = folder / f"{area_id}.gpkg"
        subset.to_file(path, layer="plots", engine="pyogrio")
        rows = dict(zip(subset["plot_id"], frame.loc[subset.index, "source_row"].astype(int),
                        strict=True))
        digest = hashlib.sha256(subset.to_json(sort_keys=True).encode()).hexdigest()
        sets[area_id] = (path, rows, digest)
    lost = frame.loc[area_of.isna(), ["plot_id", "source_row", "status"]].copy()
    lost["reason_en"] = ["no usable geometry" if s in ("empty_geometry", "invalid_geometry")
                         else "in none of the areas" for s in lost["status"]]
    lost["reason_nb"] = ["ingen brukbar geometri" if s in ("empty_geometry", "invalid_geometry")
                         else "i ingen av områdene" for s in lost["status"]]
    return sets, lost.drop(columns="status").reset_index(drop=True)


#: Columns :func:`read_plots` adds; the partition's plot file holds the user's own.
_READ_COLUMNS = {"source_row", "status", "status_reason_nb", "status_reason_en",
                 "input_note_en", "input_note_nb"}


def _assign(frame: gpd.GeoDataFrame, areas: gpd.GeoDataFrame) -> pd.Series:
    """The area of each plot: the first area holding its representative point."""
    usable = ~frame["status"].isin(["empty_geometry", "invalid_geometry"])
    points = frame.geometry[usable].representative_point().to_crs(4326)
    hits = gpd.sjoin(gpd.GeoDataFrame(geometry=points), areas[["area_id", "geometry"]],
                     how="inner", predicate="intersects")
    order = {a: i for i, a in enumerate(areas["area_id"])}
    hits = hits.assign(_order=hits["area_id"].map(order)).sort_values("_order", kind="stable")
    first = hits[~hits.index.duplicated(keep="first")]["area_id"]
    return first.reindex(frame.index)


def _scenario_digest(scenario: Scenario) -> str:
    from sitefinder.sources.osm import file_sha256

    h = hashlib.sha256(scenario.model_dump_json().encode())
    for role, path in sorted(scenario.input_files().items()):
        if path is not None and Path(path).is_file():
            h.update(f"{role}:{file_sha256(path)}".encode())
    return h.hexdigest()


def _specs(areas, mode, osm_path, scenario, buffer, out, plot_sets, cell_size_m, maps
           ) -> list[PartitionSpec]:
    from sitefinder import __version__
    from sitefinder.sources.osm import file_sha256

    common = {"osm": file_sha256(osm_path), "scenario": _scenario_digest(scenario),
              "mode": mode, "buffer_m": f"{buffer:g}", "maps": str(maps),
              "sitefinder": __version__}
    if mode == "screen":
        common["cell_size_m"] = f"{cell_size_m:g}"
    specs = []
    for row in areas.itertuples():
        plot_file, rows, digest = plot_sets.get(row.area_id, (None, {}, "none"))
        inputs = dict(common, area=geometry_sha256(row.geometry))
        if mode == "run":
            inputs["plots"] = digest
        specs.append(PartitionSpec(
            area_id=row.area_id, name=row.name, area_wkb=shapely.to_wkb(row.geometry),
            mode=mode, osm=str(osm_path.resolve()), scenario=scenario, buffer_m=buffer,
            out=str(out.resolve()), inputs=inputs,
            plots=str(plot_file.resolve()) if plot_file is not None else None,
            source_rows=rows, cell_size_m=cell_size_m, maps=maps,
        ))
    return specs


# -- running -----------------------------------------------------------------------------

def _without_work(specs: list[PartitionSpec], extent: shapely.Geometry
                  ) -> tuple[dict[str, dict[str, Any]], list[PartitionSpec]]:
    """Records of the areas with nothing to do (outside the extract, no plots), and the rest.

    Found here, without a worker reading the extract; such areas write no partition.
    """
    from sitefinder.batch_partition import empty_record

    records: dict[str, dict[str, Any]] = {}
    rest = []
    for spec in specs:
        if not shapely.from_wkb(spec.area_wkb).intersects(extent):
            records[spec.area_id] = empty_record(spec, "outside the extract",
                                                 "utenfor kartutsnittet")
        elif spec.mode == "run" and not spec.plots:
            records[spec.area_id] = empty_record(spec, "no plots in the area",
                                                 "ingen tomter i området")
        else:
            rest.append(spec)
    return records, rest


def _skip_unchanged(specs: list[PartitionSpec]
                    ) -> tuple[dict[str, dict[str, Any]], list[PartitionSpec]]:
    """Records of the partitions already complete for the same inputs, and the rest."""
    done: dict[str, dict[str, Any]] = {}
    todo = []
    for spec in specs:
        record = read_partition(spec.folder)
        if (record is not None and record.get("inputs") == spec.inputs
                and record.get("status") in ("done", "empty")
                and partition_intact(spec.folder, record)):
            done[spec.area_id] = dict(record, status="skipped-unchanged"
                                      if record["status"] == "done" else "empty")
        else:
            todo.append(spec)
    return done, todo


@contextmanager
def _client(client, scheduler: str | None, workers: int) -> Iterator[Any]:
    if client is not None:
        yield client
        return
    from distributed import Client, LocalCluster

    if scheduler is not None:
        try:
            remote = Client(scheduler, timeout="20s")
        except OSError as exc:
            raise InputError(f"no Dask scheduler answers at {scheduler} ({exc})",
                             where="--scheduler",
                             hint="Check the address (tcp://host:8786), or leave out "
                             "--scheduler to run on this machine") from None
        with remote:
            yield remote
        return
    if workers < 1:
        raise InputError(f"{workers} workers cannot run anything", where="--workers",
                         hint="Use --workers 1 or more")
    # One thread per worker: the partitions are CPU-bound Python, the GIL would serialise
    # threads; processes give each partition its own memory, measured per worker.
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                      dashboard_address=":0", memory_limit=0) as cluster, \
            Client(cluster) as local:
        yield local


def _dashboard(client) -> str | None:
    """The dashboard's address, when the scheduler serves one (it needs bokeh)."""
    try:
        served = "dashboard" in client.scheduler_info().get("services", {})
    except (OSError, AttributeError):
        served = False
    return client.dashboard_link if served else None


def _run_partitions(client, specs: list[PartitionSpec], retries: int, group_size: int,
                    out: Path, say: Callable[[str], None]) -> dict[str, dict[str, Any]]:
    from distributed import as_completed

    from sitefinder.progress import step_bar

    token = uuid.uuid4().hex[:8]
    futures = {}
    for number, members in enumerate(_groups(specs, group_size)):
        source = None
        if len(members) > 1:
            # The group's cut is a task the partitions depend on: Dask runs it first.
            dest = out / CUTS_DIR / f"group-{number}-{token}.osm.pbf"
            source = client.submit(
                cut_for_group, members[0].osm, [s.area_wkb for s in members],
                members[0].buffer_m, str(dest), key=f"sitefinder-cut-{number}-{token}",
                retries=retries, pure=False)
        for spec in members:
            future = client.submit(run_partition, spec, source, retries=retries, pure=False,
                                   key=f"sitefinder-{spec.area_id}-{token}")
            futures[future] = spec
    records: dict[str, dict[str, Any]] = {}
    bar = step_bar(len(futures), "partitions")
    for future in as_completed(futures):
        spec = futures[future]
        records[spec.area_id] = record = _outcome(future, spec)
        bar.update()
        say(_area_line_from(spec, record))
    bar.close()
    shutil.rmtree(out / CUTS_DIR, ignore_errors=True)
    return records


def _groups(specs: list[PartitionSpec], size: int) -> list[list[PartitionSpec]]:
    """Neighbouring areas in groups of about ``size`` (1: every area alone).

    The areas are sorted into vertical strips by the x of their centre, then by y within a
    strip, and the strips cut into runs of ``size``: neighbours share a group, so the
    union of their buffered areas stays compact.
    """
    if size <= 1 or len(specs) <= size:
        return [[spec] for spec in specs] if size <= 1 else [list(specs)]
    centres = [shapely.from_wkb(s.area_wkb).centroid for s in specs]
    n_groups = math.ceil(len(specs) / size)
    n_strips = max(1, round(math.sqrt(n_groups)))
    by_x = sorted(range(len(specs)), key=lambda i: centres[i].x)
    per_strip = math.ceil(len(specs) / n_strips)
    groups = []
    for start in range(0, len(by_x), per_strip):
        strip = sorted(by_x[start:start + per_strip], key=lambda i: centres[i].y)
        groups.extend([specs[i] for i in strip[k:k + size]]
                      for k in range(0, len(strip), size))
    return groups


def auto_group_size(n_partitions: int) -> int:
    """Areas per shared cut: about √n from 9 partitions on (fewest whole-file reads)."""
    return math.ceil(math.sqrt(n_partitions)) if n_partitions >= 9 else 1


def _outcome(future, spec: PartitionSpec) -> dict[str, Any]:
    try:
        return future.result()
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as exc:  # a failed, cancelled or killed partition: reported
        error = f"{type(exc).__name__}: {exc}".strip().rstrip(":")
        return {"area_id": spec.area_id, "name": spec.name, "status": "failed",
                "error": error, "reason_en": error, "reason_nb": f"feilet: {error}"}


# -- combining ---------------------------------------------------------------------------

def _combine(out: Path, areas, records, unassigned, buffer, dashboard, language, started,
             inputs) -> BatchResult:
    from sitefinder.batch_combine import (
        summary_table,
        write_dataset,
        write_overview_map,
        write_summary,
    )
    from sitefinder.outfolder import atomic_write_text

    summary = summary_table(areas, records)
    ok = summary.loc[summary["status"].isin(["done", "skipped-unchanged"]), "area_id"]
    outputs = {"dataset": write_dataset(out, list(ok), out)}
    outputs.update(write_summary(summary, out))
    outputs["overview_map"] = write_overview_map(summary, out / "overview_map.html", language)
    if len(unassigned):
        from sitefinder.outputs import protect_frame

        text = protect_frame(unassigned).to_csv(index=False, lineterminator="\r\n")
        outputs["plots_outside_areas"] = atomic_write_text(out / "plots_outside_areas.csv",
                                                           text)
    seconds = round(time.perf_counter() - started, 3)
    manifest = {
        "command": "batch", "inputs": inputs, "buffer_m": buffer, "seconds": seconds,
        "areas": {s: int(n) for s, n in summary["status"].value_counts().items()},
        "plots_outside_areas": int(len(unassigned)),
        "outputs": {k: str(Path(v).relative_to(out)) for k, v in outputs.items()},
    }
    outputs["manifest"] = atomic_write_text(out / "batch.json",
                                            json.dumps(manifest, indent=2, ensure_ascii=False))
    return BatchResult(summary, records, outputs, buffer, dashboard, seconds, unassigned)


def _batch_inputs(osm_path, scenario, plots, mode) -> dict[str, Any]:
    from sitefinder.api import scenario_path

    source = scenario_path(scenario)
    return {"osm": str(osm_path), "scenario": str(source) if source else None,
            "plots": str(plots) if plots is not None else None, "mode": mode}


@contextmanager
def _batch_lock(out: Path) -> Iterator[None]:
    """One batch at a time per output folder (a second one waits, then names the first)."""
    from sitefinder.outfolder import folder_lock

    with folder_lock(out / ".batch.lock", out, "batch output folder", "--out"):
        yield


def _remove_leftovers(out: Path) -> None:
    """Half-written partitions and datasets of a killed run: never trusted, removed."""
    for parent in (out / "areas", out):
        if not parent.is_dir():
            continue
        for path in parent.iterdir():
            if path.name == CUTS_DIR or (path.name.startswith(".") and (
                    ".tmp-" in path.name or ".old-" in path.name)):
                shutil.rmtree(path, ignore_errors=True)


def _area_line_from(spec: PartitionSpec, record: dict[str, Any]) -> str:
    row = pd.Series({"area_id": spec.area_id, "name": spec.name, **record})
    return _area_line(row)


def _area_line(row) -> str:
    get = row.get if isinstance(row, pd.Series) else lambda k, d=None: getattr(row, k, d)
    head = f"{get('area_id')} {get('name')}: {get('status')}"
    status = get("status")
    if status in ("failed", "empty"):
        return f"{head} ({get('reason_en') or get('error')})"
    parts = [f"{_int(get('ranked'))} of {_int(get('candidates'))} ranked"]
    best = get("best_score")
    if best is not None and not pd.isna(best):
        parts.append(f"best {best:.1f} ({get('best_id')})")
    if get("seconds") is not None and not pd.isna(get("seconds")):
        parts.append(f"{get('seconds'):.1f} s, {get('peak_rss_mb'):.0f} MB")
    return f"{head}, " + ", ".join(parts)


def _int(value) -> str:
    return "?" if value is None or pd.isna(value) else str(int(value))
