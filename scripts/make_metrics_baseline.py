"""Record today's metrics as the reference the faster measuring code must reproduce.

Writes ``tests/data/metrics_baseline/`` with

- ``random_plots.gpkg``: 400 seeded random rectangular plots (8–60 m a side, some
  rotated) over the bundled Oslo extract, including plots near its edge;
- ``demo_metrics.csv`` and ``random_metrics.csv``: every metric column of
  ``Study.metrics()`` for the bundled demo plots (with the demo scenario: population
  raster, districts, drug scenes) and for the random plots (default scenario), written
  with full float precision.

The tables were produced by the implementation before the speed work (issue 12);
``tests/test_measure_equivalence.py`` compares the current code with them. Rerun only
when a metric is meant to change, and say why in the commit.

Run from the repository root: ``.venv/bin/python scripts/make_metrics_baseline.py``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely

from sitefinder.api import BUNDLED_OSM, BUNDLED_PLOTS, DEMO_SCENARIO, Study

REPO = Path(__file__).resolve().parents[1]
TARGET = REPO / "tests" / "data" / "metrics_baseline"
N_RANDOM = 400
SEED = 20261129


def random_plots(n: int = N_RANDOM, seed: int = SEED) -> gpd.GeoDataFrame:
    """Seeded random rectangles (ETRS89 / UTM 32N) over the bundled extract."""
    rng = np.random.default_rng(seed)
    study_area = gpd.read_file(BUNDLED_PLOTS).to_crs(25832)
    # The bundled extract's bounds in UTM 32N, shrunk a little so most plots are inside.
    from sitefinder.sources.osm import read_osm

    west, south, east, north = read_osm(BUNDLED_OSM).bounds
    corners = gpd.GeoSeries(
        [shapely.Point(west, south), shapely.Point(east, north)], crs=4326
    ).to_crs(study_area.crs)
    x0, y0 = corners.iloc[0].x + 50, corners.iloc[0].y + 50
    x1, y1 = corners.iloc[1].x - 50, corners.iloc[1].y - 50
    cx = rng.uniform(x0, x1, n)
    cy = rng.uniform(y0, y1, n)
    w = rng.uniform(8, 60, n)
    h = rng.uniform(8, 60, n)
    angle = rng.choice([0.0, 0.0, 17.0, 45.0], n)
    geoms = [
        shapely.affinity.rotate(shapely.box(x - a / 2, y - b / 2, x + a / 2, y + b / 2), r)
        for x, y, a, b, r in zip(cx, cy, w, h, angle, strict=True)
    ]
    return gpd.GeoDataFrame(
        {"plot_id": [f"R{i:04d}" for i in range(n)], "name": [f"Tilfeldig {i}" for i in range(n)]},
        geometry=geoms,
        crs=study_area.crs,
    )


def metrics_table(study: Study):
    metrics = study.metrics
    return metrics.drop(columns=[c for c in metrics.columns if c == "geometry"])


def main() -> None:
    TARGET.mkdir(parents=True, exist_ok=True)
    plots = random_plots()
    plots_path = TARGET / "random_plots.gpkg"
    plots.to_file(plots_path, layer="plots", driver="GPKG")
    with tempfile.TemporaryDirectory() as tmp:
        demo = Study(BUNDLED_PLOTS, BUNDLED_OSM, DEMO_SCENARIO, layers_dir=Path(tmp) / "l1",
                     cache_dir=None)
        metrics_table(demo).to_csv(TARGET / "demo_metrics.csv", float_format="%.17g")
        rand = Study(plots_path, BUNDLED_OSM, layers_dir=Path(tmp) / "l2", cache_dir=None)
        metrics_table(rand).to_csv(TARGET / "random_metrics.csv", float_format="%.17g")
    print(f"wrote {TARGET}")


if __name__ == "__main__":
    main()
