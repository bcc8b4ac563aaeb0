"""The faster measuring gives the metrics it gave before the speed work (issue 12).

``tests/data/metrics_baseline/`` holds every metric column as the code measured it before
(scripts/make_metrics_baseline.py): the bundled demo plots with the demo scenario, and
400 seeded random plots (some at the extract's edge, some outside the network) with the
default scenario. Here the current ``Study.metrics`` must reproduce them: distances to
the centimetre, counts exactly, noise to 0.01 dB, residents to the whole person, every
status and text equal. Each table is measured once per session (the demo study is the
shared fixture of tests/conftest.py).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.conftest import OSM_PBF, TEST_DATA

BASELINE = TEST_DATA / "metrics_baseline"
WALK_M_PER_MIN = 4.5 * 1000 / 60  # the default walking speed, both scenarios

# Column → how close the current value must be (absolute); None: exactly equal.
CENTIMETRE = 0.01


def _tolerance(column: str) -> float | None:
    """How far a metric may move: the precision a planner reads it at."""
    if column.endswith("_m"):
        return CENTIMETRE
    if column.startswith("time_") and column.endswith("_min"):
        return CENTIMETRE / WALK_M_PER_MIN
    if column.endswith("_db"):
        return 0.01
    if column.startswith("residents_within"):
        return 0.5  # whole residents
    return None


def _read_baseline(name: str) -> pd.DataFrame:
    return pd.read_csv(BASELINE / f"{name}_metrics.csv", index_col=0,
                       keep_default_na=False, na_values=[""])


def _text(values: pd.Series) -> np.ndarray:
    """Text as written to and read from CSV: missing and empty are the same."""
    return values.astype(object).where(values.notna(), "").astype(str).to_numpy()


def _differences(current: pd.DataFrame, baseline: pd.DataFrame) -> list[str]:
    """One line per column that does not reproduce the baseline, with an example."""
    problems = []
    missing = [c for c in baseline.columns if c not in current.columns]
    if missing:
        problems.append(f"columns gone: {missing}")
    for column in [c for c in baseline.columns if c in current.columns]:
        old, new = baseline[column], current[column]
        if pd.api.types.is_numeric_dtype(old) and not pd.api.types.is_bool_dtype(old):
            old_v = old.to_numpy(dtype=float)
            new_v = pd.to_numeric(new, errors="coerce").to_numpy(dtype=float)
            tol = _tolerance(column)
            same_nan = np.isnan(old_v) == np.isnan(new_v)
            both = ~np.isnan(old_v) & ~np.isnan(new_v)
            close = np.ones(len(old_v), dtype=bool)
            if tol is None:
                close[both] = old_v[both] == new_v[both]
            else:
                close[both] = np.abs(old_v[both] - new_v[both]) <= tol
            bad = ~(same_nan & close)
        elif pd.api.types.is_bool_dtype(old):
            bad = old.to_numpy() != new.astype(bool).to_numpy()
        else:
            bad = _text(old) != _text(new)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            problems.append(
                f"{column}: {int(bad.sum())} rows differ, e.g. row {row}: "
                f"{old.iloc[row]!r} before, {new.iloc[row]!r} now"
            )
    return problems


@pytest.fixture(scope="session")
def random_study(tmp_path_factory):
    """The 400 baseline random plots with the default scenario, measured once."""
    from sitefinder.api import Study

    layers = tmp_path_factory.mktemp("random-layers")
    study = Study(BASELINE / "random_plots.gpkg", OSM_PBF, layers_dir=layers, cache_dir=None)
    _ = study.metrics
    return study


def test_demo_metrics_equal_the_baseline(demo_study):
    baseline = _read_baseline("demo")
    current = demo_study.metrics
    assert len(current) == len(baseline) == 88
    assert _differences(current.reset_index(drop=True), baseline) == []


def test_random_plot_metrics_equal_the_baseline(random_study):
    baseline = _read_baseline("random")
    current = random_study.metrics
    assert len(current) == len(baseline) == 400
    # The random set covers what speed work could break: plots outside the network, and
    # plots in reach of many features.
    assert (baseline["status"] == "outside_network").any()
    assert baseline["count_transit_10min"].max() > 20
    assert _differences(current.reset_index(drop=True), baseline) == []


def test_the_comparison_catches_a_change(demo_study):
    """A centimetre and a single count are enough to fail."""
    baseline = _read_baseline("demo")
    current = demo_study.metrics.reset_index(drop=True).copy()
    current.loc[3, "dist_grocery_m"] = baseline.loc[3, "dist_grocery_m"] + 0.02
    current.loc[5, "count_transit_10min"] = baseline.loc[5, "count_transit_10min"] + 1
    current.loc[7, "status"] = "excluded"
    found = "\n".join(_differences(current, baseline))
    assert "dist_grocery_m: 1 rows differ" in found
    assert "count_transit_10min: 1 rows differ" in found
    assert "status: 1 rows differ" in found
