"""Benchmark: the real pipeline on real data.

Run from the repository root (``make bench`` runs every benchmark)::

    .venv/bin/python benchmarks/bench_pipeline.py

1. The demo run, cold (no layers, no cache): where the time goes, step by step.
2. A 10,000-plot study on the same real Oslo extract (synthetic plots on the real
   street network): measuring once, then ``Study.score`` under a new scenario
   (target ≤ 50 ms without explanations, issue 5) and with explanations, and a
   1,000-draw sensitivity run through ``sitefinder.analysis.sensitivity`` (target ≤ 5 s).

Exits with status 1 when a median is over its target.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely

from sitefinder import Study, default_scenario, run
from sitefinder.analysis import sensitivity
from sitefinder.progress import set_progress

ROOT = Path(__file__).resolve().parents[1]
PLOTS = ROOT / "data" / "plots.gpkg"
OSM = ROOT / "data" / "oslo-center.osm.pbf"
N_BIG = 10_000


def timed(fn, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def synthetic_plots(study: Study, n: int, seed: int = 0) -> gpd.GeoDataFrame:
    """n plots of 20-60 m sides, 15-40 m off random points of the real walking network."""
    rng = np.random.default_rng(seed)
    xy = study.network.xy[rng.choice(study.network.n_nodes, n, replace=False)]
    xy = xy + rng.uniform(15, 40, size=(n, 2)) * rng.choice([-1, 1], size=(n, 2))
    w, h = rng.uniform(20, 60, n), rng.uniform(20, 60, n)
    boxes = shapely.box(xy[:, 0], xy[:, 1], xy[:, 0] + w, xy[:, 1] + h)
    return gpd.GeoDataFrame(
        {"plot_id": [f"B{i:05d}" for i in range(n)]}, geometry=boxes, crs=study.crs
    )


def main() -> int:
    set_progress(False)
    failures = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        print("1. Demo run, cold (fresh layers folder, no cache), incl. maps, selection, report")
        start = time.perf_counter()
        result = run(PLOTS, OSM, out_dir=tmp / "out", layers_dir=tmp / "layers",
                     cache_dir=None, units=12, report=True)
        total = time.perf_counter() - start
        for step, seconds in result.study.timings.items():
            print(f"   {step:<22} {seconds:7.2f} s")
        print(f"   {'wall clock':<22} {total:7.2f} s  ({len(result.ranked)} plots)")

        print(f"\n2. {N_BIG:,} plots on the real Oslo network")
        small = Study(PLOTS, OSM, layers_dir=tmp / "layers", cache_dir=None)
        big_file = tmp / "big.gpkg"
        synthetic_plots(small, N_BIG).to_file(big_file)
        big = Study(big_file, OSM, layers_dir=tmp / "layers", cache_dir=None)
        start = time.perf_counter()
        _ = big.metrics
        print(f"   measure once           {time.perf_counter() - start:7.2f} s")
        new = default_scenario().with_weights(transit=6, nature=0.5)
        fast = timed(lambda: big.score(new, explain=False), 7)
        full = timed(lambda: big.score(new), 3)
        mc = timed(lambda: sensitivity(big, new, n_draws=1000, seed=1), 3)
        rows = [
            ("re-score, no explanations", fast, 0.050),
            ("re-score with explanations", full, None),
            ("sensitivity, 1,000 draws", mc, 5.0),
        ]
        for label, times, target in rows:
            median = statistics.median(times)
            verdict = "" if target is None else (
                f"  target {target * 1000:.0f} ms" if target < 1 else f"  target {target:.0f} s"
            )
            if target is not None and median > target:
                failures.append(label)
                verdict += "  OVER"
            shown = f"{median * 1000:8.1f} ms" if median < 1 else f"{median:8.2f} s "
            print(f"   {label:<27}{shown} (best {min(times) * 1000:.1f} ms){verdict}")
    if failures:
        print("Over target: " + ", ".join(failures))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
