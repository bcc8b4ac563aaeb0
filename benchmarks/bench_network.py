"""Benchmark: walking distances and counts on the real Oslo network, side by side.

Run from the repository root (``make bench`` runs every benchmark)::

    .venv/bin/python benchmarks/bench_network.py

On the bundled Oslo extract (81k network nodes) with 10,000 random plots and every
walking category of the default scenario, in one run:

1. sitefinder's distances (plot outlines snapped, one shortest-path search per category
   on the contracted network spread to every node, read per plot) against a bare scipy
   multi-source Dijkstra per category on the same graph from the features' nearest nodes
   (nothing else timed) — target ratio ≤ 1.5 (issue 12);
2. pandana (contraction hierarchy build + nearest-POI query per category), when it is
   installed (``pip install pandana``) — issue 12 asks for ≥ 20× faster than it;
3. counts within 10 minutes for every category against the distances — target ≤ 2×.

Medians of a few repetitions (sitefinder and bare scipy by turns, counts and distances by
turns, each ratio the median of the paired ratios); exits with status 1 when a target
ratio is missed.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy.sparse.csgraph import dijkstra

from sitefinder import Study
from sitefinder.config import network_categories
from sitefinder.measure import FEATURE_STEP_M
from sitefinder.network import access_points, plot_access
from sitefinder.network_counts import count_within
from sitefinder.network_distances import distance_field
from sitefinder.progress import set_progress

ROOT = Path(__file__).resolve().parents[1]
PLOTS = ROOT / "data" / "plots.gpkg"
OSM = ROOT / "data" / "oslo-center.osm.pbf"
N_PLOTS = 10_000
TARGET_VS_SCIPY = 1.5
TARGET_VS_PANDANA = 20.0
TARGET_COUNTS = 2.0


def median_time(fn, repeat: int) -> float:
    """Median wall time of ``repeat`` calls, in seconds."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def paired_times(first, second, repeat: int) -> tuple[float, float, float]:
    """Median wall times of two calls run by turns, and the median of their ratios.

    Taking them by turns (rather than all of one, then all of the other) lets both see
    the same load on a machine shared with other work.
    """
    a, b = [], []
    for _ in range(repeat):
        for fn, times in ((first, a), (second, b)):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
    ratio = statistics.median(x / y for x, y in zip(a, b, strict=True))
    return statistics.median(a), statistics.median(b), ratio


def random_plots(study: Study, n: int, seed: int = 0) -> gpd.GeoSeries:
    """n plots of 20–60 m sides, 15–40 m off random points of the real walking network."""
    rng = np.random.default_rng(seed)
    net = study.network
    xy = net.xy[rng.choice(net.n_nodes, n, replace=False)]
    xy = xy + rng.uniform(15, 40, size=(n, 2)) * rng.choice([-1, 1], size=(n, 2))
    w, h = rng.uniform(20, 60, n), rng.uniform(20, 60, n)
    return gpd.GeoSeries(shapely.box(xy[:, 0], xy[:, 1], xy[:, 0] + w, xy[:, 1] + h),
                         crs=study.crs)


def sitefinder_distances(study: Study, plots: gpd.GeoSeries, categories) -> dict:
    """What measuring does for the distances: snap outlines, one tree per category, read."""
    net, settings = study.network, study.scenario.network
    access = plot_access(net, plots, settings)
    out = {}
    for category in categories:
        xy, _ = access_points(study.layers[category].geometry, FEATURE_STEP_M)
        out[category] = access.read(distance_field(net, xy, settings))
    return out


def bare_sources(study: Study, categories) -> dict[str, np.ndarray]:
    """Per category, the nearest node of every feature access point (prepared untimed)."""
    net, settings = study.network, study.scenario.network
    sources = {}
    for category in categories:
        xy, _ = access_points(study.layers[category].geometry, FEATURE_STEP_M)
        nodes, legs = net.snap(xy, 1, settings.max_snap_m)
        sources[category] = np.unique(nodes[np.isfinite(legs[:, 0]), 0])
    return sources


def bare_scipy(study: Study, sources: dict[str, np.ndarray]) -> None:
    limit = study.scenario.network.max_distance_m
    for nodes in sources.values():
        dijkstra(study.network.graph, directed=False, indices=nodes, min_only=True,
                 limit=limit)


def pandana_run(study: Study, plots: gpd.GeoSeries, categories) -> None:
    """Build pandana's network and query the nearest feature of each category per plot."""
    import pandana

    net = study.network
    coo = net.graph.tocoo()
    upper = coo.row < coo.col
    network = pandana.Network(
        pd.Series(net.xy[:, 0]), pd.Series(net.xy[:, 1]), pd.Series(coo.row[upper]),
        pd.Series(coo.col[upper]), pd.DataFrame({"length": coo.data[upper]}), twoway=True,
    )
    # No network.precompute(): it caches every node's 5 km range (gigabytes here) for
    # aggregations, which nearest-POI queries do not use.
    limit = study.scenario.network.max_distance_m
    centres = plots.centroid
    plot_nodes = network.get_node_ids(centres.x, centres.y)
    for category in categories:
        xy, _ = access_points(study.layers[category].geometry, FEATURE_STEP_M)
        network.set_pois(category, limit, 1, xy[:, 0], xy[:, 1])
        nearest = network.nearest_pois(limit, category, num_pois=1)
        _ = nearest.loc[plot_nodes.to_numpy()].to_numpy()


def counts(study: Study, plots: gpd.GeoSeries, categories) -> None:
    net, settings = study.network, study.scenario.network
    access = plot_access(net, plots, settings)
    speed = settings.walk_speed_kmh * 1000 / 60
    limit = study.scenario.measure.count_within_min * speed
    for category in categories:
        xy, owner = access_points(study.layers[category].geometry, FEATURE_STEP_M)
        count_within(net, xy, access, limit, settings, feature_owner=owner)


def main() -> int:
    set_progress(False)
    with tempfile.TemporaryDirectory() as tmp:
        study = Study(PLOTS, OSM, layers_dir=Path(tmp) / "layers", cache_dir=None)
        categories = network_categories(study.layers.frames)
        net = study.network
        plots = random_plots(study, N_PLOTS)
        print(f"Oslo extract: {net.n_nodes:,} nodes, {net.n_edges:,} edges; "
              f"{N_PLOTS:,} plots; {len(categories)} categories ({', '.join(categories)})")
        sources = bare_sources(study, categories)
        # Once untimed: the network's chains are contracted on first use (shared with
        # the counts, built once per network).
        sitefinder_distances(study, plots, categories)
        ours, bare, ratio = paired_times(
            lambda: sitefinder_distances(study, plots, categories),
            lambda: bare_scipy(study, sources), 9,
        )
        # (label, time, × scipy, × sitefinder distances); the ratios the paired ones.
        rows = [("bare scipy multi-source Dijkstra", bare, None, bare / ours),
                ("sitefinder distances", ours, ratio, 1.0)]
        failures = []
        if ratio > TARGET_VS_SCIPY:
            failures.append(f"distances {ratio:.2f}× scipy (target ≤ {TARGET_VS_SCIPY})")
        try:
            import pandana  # noqa: F401
        except ImportError:
            print("   pandana is not installed (pip install pandana): comparison left out")
        else:
            panda = median_time(lambda: pandana_run(study, plots, categories), 1)
            rows.append(("pandana build + query", panda, panda / bare, panda / ours))
            if panda / ours < TARGET_VS_PANDANA:
                failures.append(f"pandana only {panda / ours:.1f}× slower than sitefinder "
                                f"(target ≥ {TARGET_VS_PANDANA})")
        # Counts and distances by turns too: the target is their ratio.
        count_time, _, count_ratio = paired_times(
            lambda: counts(study, plots, categories),
            lambda: sitefinder_distances(study, plots, categories), 9,
        )
        rows.append((f"counts within {study.scenario.measure.count_within_min:g} min",
                     count_time, count_time / bare, count_ratio))
        if count_ratio > TARGET_COUNTS:
            failures.append(f"counts {count_ratio:.2f}× distances "
                            f"(target ≤ {TARGET_COUNTS})")
        print(f"   {'':36} {'time':>10} {'× scipy':>9} {'× sitefinder':>13}")
        for label, seconds, vs_scipy, vs_ours in rows:
            shown = f"{seconds * 1000:8.0f} ms"
            scipy_column = "" if vs_scipy is None else f"{vs_scipy:8.2f}×"
            print(f"   {label:<36} {shown} {scipy_column:>9} {vs_ours:11.2f}×")
    if failures:
        print("Over target: " + "; ".join(failures))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
