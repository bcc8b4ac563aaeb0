"""Benchmark: `sitefinder batch` over the Oslo districts with 1 and 2 workers, and a projection.

Run from the repository root (``make bench`` runs every benchmark)::

    .venv/bin/python benchmarks/bench_batch.py

Three measurements on the bundled data (demo plots, demo scenario, no maps, cold: fresh
layers and no cache), one after the other so they do not share the CPU:

1. one ordinary ``run`` of all plots on the whole extract, in a child process (its wall
   time and peak memory, the maximum resident set size);
2. ``batch`` over ``data/oslo_bydeler.gpkg`` on a LocalCluster with 1 worker;
3. the same with 2 workers: the scaling ratio is (1) / (2) of the batch wall times.

Per partition the batch records the size of its cut, the seconds of each stage and the
peak memory of its worker process (sampled while the partition runs). From these the
benchmark prints a projection of a national run (357 municipalities); the assumptions
are the constants below and are printed with it.

Fails only when a partition fails.
"""

from __future__ import annotations

import json
import math
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
AREAS = ROOT / "data" / "oslo_bydeler.gpkg"
OSM = ROOT / "data" / "oslo-center.osm.pbf"

# -- assumptions of the national projection ------------------------------------------------
NORWAY_PBF_MB = 2500.0           # Geofabrik norway-latest.osm.pbf, about 2.5 GB
MUNICIPALITIES = 357
READ_MB_PER_PBF_MB = 45.0        # issue 13: RAM of reading the extract, per MB of PBF
#: Cut of an average municipality with its 5.25 km buffer, MB of PBF: 2.5 GB / 357 = 7 MB
#: without buffer; the buffer about doubles a small municipality's area.
MEAN_CUT_MB = 15.0
#: The largest cut: Oslo with 5.25 km of Bærum, Lørenskog, Nordre Follo … around it
#: (Oslo holds about 1/20 of Norway's OSM data).
LARGEST_CUT_MB = 180.0
CORES = 32                       # one cluster node of 32 cores, one worker per core
#: A group's cut against the sum of its areas: the buffers around neighbours overlap.
GROUP_OVERLAP = 1.5

_SINGLE = """
import json, sys, time
from sitefinder.progress import set_progress
from sitefinder.pipeline import run
set_progress(False)
start = time.perf_counter()
result = run(out_dir=sys.argv[1], layers_dir=sys.argv[2], cache_dir=None, maps=False)
print(json.dumps({"wall_s": time.perf_counter() - start, "timings": result.study.timings,
                  "ranked": int((result.ranked["status"] == "ok").sum())}))
"""


def single_run(tmp: Path) -> dict:
    """One run of the whole extract in a child process: wall time, peak memory."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    proc = subprocess.run([sys.executable, "-c", _SINGLE, str(tmp / "single"),
                           str(tmp / "single_layers")], capture_output=True, text=True,
                          check=True, cwd=ROOT)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    # ru_maxrss of children is the largest of any child so far: the first child is this one.
    result["peak_mb"] = max(peak, before) / 1024
    return result


def batch_run(tmp: Path, workers: int) -> dict:
    from sitefinder.batch import batch
    from sitefinder.progress import set_progress

    set_progress(False)
    start = time.perf_counter()
    result = batch(AREAS, osm=OSM, out=tmp / f"batch{workers}", workers=workers, maps=False)
    wall = time.perf_counter() - start
    done = {k: r for k, r in result.records.items() if r.get("status") == "done"}
    return {"wall_s": wall, "by_status": result.by_status, "records": done,
            "buffer_m": result.buffer_m}


def stages(records: dict) -> dict[str, float]:
    """Seconds per stage, summed over the partitions."""
    total: dict[str, float] = {"cut the extract": 0.0}
    for record in records.values():
        total["cut the extract"] += record["clip"]["seconds"]
        for step, seconds in (record.get("timings") or {}).items():
            if step != "total":
                total[step] = total.get(step, 0.0) + seconds
    return dict(sorted(total.items(), key=lambda kv: -kv[1]))


def projection(single: dict, one: dict) -> list[str]:
    """A national run, projected from the 1-worker measurements and the assumptions."""
    from sitefinder.batch import auto_group_size

    records = list(one["records"].values())
    source_mb = OSM.stat().st_size / 2**20
    clip_s_per_source_mb = sum(r["clip"]["seconds"] for r in records) / len(records) / source_mb
    cut_mb = [r["clip"]["size_bytes"] / 2**20 for r in records]
    run_s = [r["seconds"] - r["clip"]["seconds"] for r in records]
    run_s_per_cut_mb = sum(run_s) / sum(cut_mb)
    peak = [r["peak_rss_mb"] for r in records]
    base_mb = min(p - READ_MB_PER_PBF_MB * c for p, c in zip(peak, cut_mb, strict=True))
    clip_h = MUNICIPALITIES * clip_s_per_source_mb * NORWAY_PBF_MB / 3600
    run_h = MUNICIPALITIES * run_s_per_cut_mb * MEAN_CUT_MB / 3600
    mean_mem = base_mb + READ_MB_PER_PBF_MB * MEAN_CUT_MB
    big_mem = base_mb + READ_MB_PER_PBF_MB * LARGEST_CUT_MB
    size = auto_group_size(MUNICIPALITIES)
    groups = math.ceil(MUNICIPALITIES / size)
    group_cut_mb = NORWAY_PBF_MB / MUNICIPALITIES * size * GROUP_OVERLAP
    grouped_h = clip_s_per_source_mb * (groups * NORWAY_PBF_MB
                                        + MUNICIPALITIES * group_cut_mb) / 3600
    return [
        "Projection of a national run (357 municipalities), from the 1-worker batch above:",
        f"  assumptions: Norway PBF {NORWAY_PBF_MB:,.0f} MB; mean cut (municipality + "
        f"{one['buffer_m']:,.0f} m buffer) {MEAN_CUT_MB:g} MB, largest (Oslo) "
        f"{LARGEST_CUT_MB:g} MB; {READ_MB_PER_PBF_MB:g} MB RAM per MB of PBF read; "
        f"{CORES} cores, one worker each",
        f"  measured: cutting streams the source at {clip_s_per_source_mb:.2f} s per MB "
        f"(per partition: it reads the whole file); run/screen on the cut "
        f"{run_s_per_cut_mb:.1f} s per MB of cut; worker base memory {base_mb:,.0f} MB",
        f"  cut stage, every area from the whole file (--group-size 1): {clip_h:,.0f} "
        f"core-hours (357 × {NORWAY_PBF_MB:,.0f} MB)",
        f"  cut stage, default groups of {size} neighbouring areas: {grouped_h:,.0f} "
        f"core-hours ({groups} reads of the whole file + 357 reads of a group's cut of "
        f"~{group_cut_mb:,.0f} MB) — still the largest stage",
        f"  run stage:  {run_h:,.1f} core-hours (no maps; each area's maps add about as much)",
        f"  wall time on {CORES} cores: {(grouped_h + run_h) / CORES:,.1f} h with groups, "
        f"{(clip_h + run_h) / CORES:,.1f} h without",
        f"  memory per worker: ~{mean_mem / 1024:,.1f} GB for a mean municipality, "
        f"~{big_mem / 1024:,.1f} GB for Oslo (give Oslo's partition a worker of "
        f"{max(big_mem * 1.5 / 1024, 4):.0f} GB; the rest fit 2 GB workers) — against "
        f"{READ_MB_PER_PBF_MB * NORWAY_PBF_MB / 1024:,.0f} GB to read Norway at once",
        "  the cut is Python streaming (pyosmium, one Python call per object and pass); a C++ "
        "multi-extract (`osmium extract --config`, one pass for all areas) would take it "
        "to minutes, leaving the run stage to dominate",
        f"  single run of the whole bundled extract: {single['wall_s']:.0f} s, "
        f"{single['peak_mb']:,.0f} MB",
    ]


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        single = single_run(tmp)
        one = batch_run(tmp, 1)
        two = batch_run(tmp, 2)
    print(f"single run, whole extract: {single['wall_s']:.1f} s, peak {single['peak_mb']:,.0f} "
          f"MB, {single['ranked']} ranked")
    for label, res in (("1 worker", one), ("2 workers", two)):
        peaks = [r["peak_rss_mb"] for r in res["records"].values()]
        cuts = [r["clip"]["size_bytes"] / 2**20 for r in res["records"].values()]
        print(f"batch, {label}: {res['wall_s']:.1f} s, {res['by_status']}, peak per worker "
              f"{min(peaks):,.0f}–{max(peaks):,.0f} MB, cuts {min(cuts):.1f}–"
              f"{max(cuts):.1f} MB of {OSM.stat().st_size / 2**20:.1f} MB")
    print(f"scaling 1 → 2 workers: {one['wall_s'] / two['wall_s']:.2f}×")
    print("stages, 1 worker (seconds summed over partitions):")
    for step, seconds in stages(one["records"]).items():
        print(f"  {step}: {seconds:.1f}")
    for line in projection(single, one):
        print(line)
    failed = [r for res in (one, two) for r in res["records"].values()
              if r.get("status") == "failed"]
    return 1 if failed or "failed" in one["by_status"] or "failed" in two["by_status"] else 0


if __name__ == "__main__":
    sys.exit(main())
