"""Benchmark: choosing 12 units among every screening cell of the bundled Oslo extract.

Run from the repository root::

    .venv/bin/python benchmarks/bench_select.py

Issue 12 asks that the exact selection model stays usable at screening scale (tens of
thousands of candidates) and reports its time and proven optimality gap. The script

1. screens the bundled extract at 50 m cells with the demo scenario (``sitefinder
   screen``; not timed here, see bench_screen.py),
2. runs ``select --units 12`` over all ranked cells with the scenario's clustering limits
   (clique rows and lazily added spacing pairs above ``exact_max_candidates``), and
3. prints candidates, eligible cells, method, status, time and the gap between the set
   found and the solver's proven bound;
4. solves the same cells again with every spacing pair lazy (``exact_max_candidates=0``)
   — the result must be the same optimum — and a synthetic 20,000-cell grid (140 × 140
   cells of 50 m, smooth scores with noise, 16 districts) above the threshold, the size
   a suburban municipality's screening gives.

It fails (exit 1) when the set breaks a rule (spacing, units) or when the solver did not
prove a gap ≤ 1 % within the scenario's time limit. Wall time is reported, not judged:
it depends on the machine's load.
"""

from __future__ import annotations

import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

UNITS = 12


def main() -> int:
    from sitefinder.screen import screen
    from sitefinder.select import assign_districts

    repo = Path(__file__).resolve().parents[1]
    with tempfile.TemporaryDirectory() as tmp:
        result = screen(layers_dir=Path(tmp) / "layers")
    cells = result.cells
    scenario = result.scenario
    districts = repo / "data" / "oslo_bydeler.gpkg"
    if "district" not in cells.columns:
        import geopandas as gpd

        cells = cells.copy()
        cells["district"] = assign_districts(cells, gpd.read_file(districts), "bydel")
    ranked = int((cells["status"] == "ok").sum())
    print(f"cells screened (candidates)   {len(cells):>10,}")
    print(f"cells ranked                  {ranked:>10,}")
    clustering, capacity = scenario.clustering, scenario.capacity
    full = _run("screening cells", cells, clustering, capacity)
    lazy = _run("same, all pairs lazy", cells,
                clustering.model_copy(update={"exact_max_candidates": 0}), capacity)
    same = math.isclose(full.objective, lazy.objective, rel_tol=1e-7)
    print(f"same optimum both ways        {'yes' if same else 'NO':>10}")
    big = _run("synthetic 20,000 cells", synthetic_cells(), clustering, capacity)
    ok = all(_keeps_rules(r, clustering.min_spacing_m) for r in (full, lazy, big)) and same
    if not ok:
        print("FAILED: a set breaks a rule, the gap is not proven within 1 %, or the two "
              "formulations disagree")
        return 1
    return 0


def synthetic_cells(side: int = 140, seed: int = 1):
    """A square grid of 50 m cells with smooth scores plus noise and 16 districts."""
    import geopandas as gpd
    import shapely

    rng = np.random.default_rng(seed)
    xs, ys = np.meshgrid(np.arange(side) * 50.0, np.arange(side) * 50.0)
    xy = np.c_[xs.ravel(), ys.ravel()]
    n = len(xy)
    score = 60 + 20 * np.sin(xy[:, 0] / 900) * np.cos(xy[:, 1] / 700) + rng.normal(0, 5, n)
    quarter = side * 50 / 4
    district = (xy[:, 0] // quarter).astype(int) * 4 + (xy[:, 1] // quarter).astype(int)
    return gpd.GeoDataFrame(
        {"plot_id": [f"C{i}" for i in range(n)], "score": np.clip(score, 0, 100).round(1),
         "capacity_units": rng.integers(1, 5, n), "district": [f"D{d}" for d in district],
         "status": ["ok"] * n},
        geometry=shapely.points(xy + [597_000, 6_640_000]), crs=25832,
    )


def _run(label, cells, clustering, capacity):
    from sitefinder.select import select_sites

    start = time.perf_counter()
    res = select_sites(cells, clustering, units=UNITS, capacity=capacity)
    seconds = time.perf_counter() - start
    print(f"\n{label}")
    print(f"  method / status             {res.method:>10} / {res.status}")
    print(f"  sites / units               {len(res.chosen):>5} / {res.total_units}")
    print(f"  objective / bound           {res.objective:>10.1f} / {res.bound:.1f}")
    print(f"  proven gap                  {100 * res.gap:>9.3f} %")
    print(f"  time                        {seconds:>9.1f} s "
          f"(time_limit_s = {clustering.time_limit_s:g})")
    return res


def _keeps_rules(res, spacing: float) -> bool:
    xy = res.chosen[["x", "y"]].to_numpy()
    d = np.hypot(*(xy[:, None] - xy[None]).transpose(2, 0, 1))[np.triu_indices(len(xy), 1)]
    spaced = len(d) == 0 or d.min() >= spacing
    return spaced and res.total_units == UNITS and math.isfinite(res.gap) and res.gap <= 0.01

if __name__ == "__main__":
    sys.exit(main())
