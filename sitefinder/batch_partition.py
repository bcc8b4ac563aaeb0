"""One partition of ``sitefinder batch``: one area, run on a Dask worker.

:func:`run_partition` cuts the OSM extract to the area plus the scenario's search buffer
(:mod:`sitefinder.osm_clip`), runs ``run`` (the plots whose representative point lies in
the area) or ``screen`` (the cells inside the area) on that cut, and writes the
partition's folder ``<out>/areas/<area_id>/``:

- ``ranked.parquet``: the ranked plots or cells (GeoParquet, column ``area_id`` added);
- ``run/`` or ``screen/``: the run's or screening's own outputs (its map, its manifest);
- ``partition.json``: status, the checksums of its inputs (plots, OSM, scenario, area
  geometry), every output file's checksum, counts, seconds and peak memory.

The folder is written under a temporary name beside its final place and renamed when
complete, so a killed worker leaves at most a ``.tmp-`` folder that no later run trusts.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import shapely

#: Name of a partition's own manifest.
PARTITION_MANIFEST = "partition.json"
#: The partition's ranked plots or cells.
RESULTS_FILE = "ranked.parquet"
#: Statuses a partition can end with (``skipped-unchanged`` is set by the driver).
STATUSES = ("done", "skipped-unchanged", "failed", "empty")


@dataclass
class PartitionSpec:
    """Everything a worker needs for one area (picklable, sent to the worker).

    Attributes
    ----------
    area_id, name : str
    area_wkb : bytes
        The area's polygon in lon/lat (EPSG:4326), as WKB.
    mode : {"run", "screen"}
    osm : str
        The whole extract (the worker reads only its cut of it).
    scenario : Scenario
    buffer_m : float
        Search buffer around the area (:func:`sitefinder.osm_clip.search_buffer_m`).
    out : str
        The batch's output folder.
    inputs : dict of str to str
        Checksums of the partition's inputs, compared on a rerun.
    plots : str, optional
        The partition's plots (a GeoPackage written by the driver), mode ``run`` only.
    source_rows : dict of str to int
        Plot id → row in the user's plot file, to restore ``source_row``.
    cell_size_m : float
        Screening grid (mode ``screen``).
    maps : bool
        Write the area's own map.
    """

    area_id: str
    name: str
    area_wkb: bytes
    mode: str
    osm: str
    scenario: Any
    buffer_m: float
    out: str
    inputs: dict[str, str]
    plots: str | None = None
    source_rows: dict[str, int] = field(default_factory=dict)
    cell_size_m: float = 50.0
    maps: bool = True

    @property
    def folder(self) -> Path:
        """The partition's final folder."""
        return partition_folder(self.out, self.area_id)


def partition_folder(out: str | Path, area_id: str) -> Path:
    """``<out>/areas/<area_id>``."""
    return Path(out) / "areas" / area_id


def cut_for_group(osm: str, areas_wkb: list[bytes], buffer_m: float, dest: str) -> str:
    """Cut ``osm`` once to the union of several buffered areas; their partitions cut from it.

    Without it every partition streams the whole extract (for Norway: 357 × 2.5 GB); with
    groups of *k* neighbouring areas the whole file is read 357 / *k* times and each
    partition reads only its group's cut. The group's cut keeps whole ways and complete
    multipolygons, so a partition's cut from it equals its cut from the whole extract.

    Returns
    -------
    str
        ``dest``.
    """
    from sitefinder.osm_clip import buffered_area, clip_osm

    union = shapely.union_all([buffered_area(shapely.from_wkb(w), buffer_m)
                               for w in areas_wkb])
    Path(dest).parent.mkdir(parents=True, exist_ok=True)
    clip_osm(osm, union, dest)
    return dest


def run_partition(spec: PartitionSpec, source: str | None = None) -> dict[str, Any]:
    """Run one area and write its folder whole; return its record (``partition.json``).

    An area outside the extract, without plots or without land for a house ends with
    status ``empty`` and its reason; a scenario or data problem particular to the area
    (an :class:`~sitefinder.errors.InputError`) with ``failed``. Any other exception is
    raised, so that Dask retries the partition.

    Parameters
    ----------
    spec : PartitionSpec
    source : str, optional
        A cut of the extract that holds this area with its buffer (its group's cut,
        :func:`cut_for_group`); default the whole extract.
    """
    from sitefinder.progress import set_progress

    set_progress(False)  # bars from many workers would interleave on one terminal
    started = time.perf_counter()
    staging = _staging(spec.folder)
    try:
        with _PeakMemory() as peak, tempfile.TemporaryDirectory(prefix="sitefinder-batch-") \
                as work:
            record = _compute(spec, Path(work), staging, source or spec.osm)
        record.update(
            area_id=spec.area_id, name=spec.name, mode=spec.mode, inputs=spec.inputs,
            buffer_m=spec.buffer_m, seconds=round(time.perf_counter() - started, 3),
            peak_rss_mb=round(peak.mb, 1), worker_pid=os.getpid(),
        )
        record["files"] = _checksums(staging)
        _write_json(staging / PARTITION_MANIFEST, record)
        _publish(staging, spec.folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return record


def _compute(spec: PartitionSpec, work: Path, staging: Path, source: str) -> dict[str, Any]:
    from sitefinder.errors import InputError
    from sitefinder.osm_clip import buffered_area, clip_osm

    if spec.mode == "run" and not spec.plots:
        return _empty("no plots in the area", "ingen tomter i området")
    area = shapely.from_wkb(spec.area_wkb)
    started = time.perf_counter()
    clip = clip_osm(source, buffered_area(area, spec.buffer_m), work / "cut.osm.pbf")
    record: dict[str, Any] = {
        "clip": {"nodes_inside": clip.nodes_inside, "nodes": clip.nodes, "ways": clip.ways,
                 "relations": clip.relations, "size_bytes": clip.size_bytes,
                 "from_group_cut": source != spec.osm,
                 "seconds": round(time.perf_counter() - started, 3)},
    }
    if clip.nodes_inside == 0:
        return record | _empty("outside the extract", "utenfor kartutsnittet")
    try:
        if spec.mode == "run":
            record |= _run(spec, clip.path, work, staging)
        else:
            record |= _screen(spec, area, clip.path, work, staging)
    except InputError as exc:
        if spec.mode == "screen" and exc.where == "--area/--bbox":
            return record | _empty(exc.problem, exc.problem)
        return record | {"status": "failed", "error": str(exc)}
    return record


def _empty(reason_en: str, reason_nb: str) -> dict[str, Any]:
    return {"status": "empty", "reason_en": reason_en, "reason_nb": reason_nb}


def empty_record(spec: PartitionSpec, reason_en: str, reason_nb: str) -> dict[str, Any]:
    """The record of an area with nothing to rank (outside the extract, no plots)."""
    return {"area_id": spec.area_id, "name": spec.name, "mode": spec.mode,
            **_empty(reason_en, reason_nb)}


def _run(spec: PartitionSpec, osm: Path, work: Path, staging: Path) -> dict[str, Any]:
    from sitefinder.pipeline import run

    result = run(plots=spec.plots, osm=osm, scenario=spec.scenario, out_dir=staging / "run",
                 layers_dir=work / "layers", cache_dir=None, maps=spec.maps, lock_wait=0)
    ranked = result.ranked.copy()
    # The partition's plot file numbers its rows anew; the user's file is the reference.
    ranked["source_row"] = ranked["plot_id"].map(spec.source_rows).astype("Int64")
    _write_results(ranked, spec.area_id, staging)
    study_seconds = dict(result.study.timings)
    return {"status": "done", "map": "run/map.html" if spec.maps else None,
            "timings": study_seconds} | _counts(ranked)


def _screen(spec: PartitionSpec, area, osm: Path, work: Path,
            staging: Path) -> dict[str, Any]:
    import geopandas as gpd

    from sitefinder.screen import screen

    area_file = work / "area.geojson"
    gpd.GeoDataFrame({"area_id": [spec.area_id]}, geometry=[area], crs=4326).to_file(
        area_file, driver="GeoJSON", engine="pyogrio")
    result = screen(osm, spec.scenario, area=area_file, cell_size_m=spec.cell_size_m,
                    out=staging / "screen", layers_dir=work / "layers", lock_wait=0)
    # The screening's own best-area ids would clash with the batch's area ids.
    cells = result.cells.rename(columns={"area_id": "best_area_id"})
    _write_results(cells, spec.area_id, staging)
    record = {"status": "done", "map": "screen/screen_map.html",
              "timings": dict(result.timings)} | _counts(cells)
    ok = cells["status"] == "ok"
    record["suitable_m2"] = float(cells.loc[ok, "buildable_m2"].sum())
    record["best_areas"] = int(len(result.areas))
    record["best_areas_m2"] = float(result.areas["area_m2"].sum()) if len(result.areas) else 0.0
    return record


def _counts(ranked) -> dict[str, Any]:
    ok = ranked[ranked["status"] == "ok"]
    best = ok.sort_values(["score", "plot_id"], ascending=[False, True]).head(1)
    units = ok["capacity_units"].fillna(0).astype(int).sum() if "capacity_units" in ok else 0
    return {
        "candidates": int(len(ranked)),
        "ranked": int(len(ok)),
        "best_score": float(best["score"].iloc[0]) if len(best) else None,
        "best_id": str(best["plot_id"].iloc[0]) if len(best) else None,
        "units": int(units),
        "by_status": {str(k): int(v) for k, v in ranked["status"].value_counts().items()},
    }


def _write_results(ranked, area_id: str, staging: Path) -> Path:
    """The ranked plots or cells as GeoParquet, with the unit layouts as a second geometry."""
    import geopandas as gpd

    table = ranked.copy()
    if "layout" in table.columns:
        table["layout"] = gpd.GeoSeries(table["layout"].to_numpy(), crs=ranked.crs)
    table["rank"] = table["rank"].astype("Float64")
    table.insert(0, "area_id", area_id)
    path = staging / RESULTS_FILE
    table.to_parquet(path, index=False)
    return path


def _staging(final: Path) -> Path:
    staging = final.parent / f".{final.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    staging.mkdir(parents=True)
    return staging


def _publish(staging: Path, final: Path) -> None:
    """Put ``staging`` in the place of ``final`` (replacing an older partition)."""
    old = None
    if final.exists():
        old = final.parent / f".{final.name}.old-{uuid.uuid4().hex[:8]}"
        final.rename(old)
    # Between the two renames there is no partition at all: a rerun then redoes it.
    staging.rename(final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _checksums(folder: Path) -> dict[str, str]:
    from sitefinder.outfolder import sha256_of

    return {p.relative_to(folder).as_posix(): sha256_of(p)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _write_json(path: Path, record: dict[str, Any]) -> None:
    from sitefinder.outfolder import atomic_write_text

    atomic_write_text(path, json.dumps(record, indent=2, ensure_ascii=False, default=str))


def read_partition(folder: str | Path) -> dict[str, Any] | None:
    """The record of a complete partition folder, or None (missing or damaged)."""
    path = Path(folder) / PARTITION_MANIFEST
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def partition_intact(folder: str | Path, record: dict[str, Any]) -> bool:
    """Whether every file the record lists is there with its checksum."""
    from sitefinder.outfolder import sha256_of

    folder = Path(folder)
    try:
        return all((folder / name).is_file() and sha256_of(folder / name) == digest
                   for name, digest in (record.get("files") or {}).items())
    except OSError:
        return False


class _PeakMemory:
    """Peak resident memory of this process while the block runs (sampled every 50 ms)."""

    def __init__(self, interval: float = 0.05) -> None:
        import psutil

        self._process = psutil.Process()
        self._interval = interval
        self._stop = threading.Event()
        self.peak = 0

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._process.memory_info().rss)
            self._stop.wait(self._interval)

    def __enter__(self) -> _PeakMemory:
        self.peak = self._process.memory_info().rss
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._process.memory_info().rss)

    @property
    def mb(self) -> float:
        """The peak in MB."""
        return self.peak / 2**20
