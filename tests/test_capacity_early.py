"""The unit layout started ahead of measuring: same layouts, clear failures, no stray processes.

From ``POOL_MIN_PLOTS`` plots on, a study forks its layout worker before it reads the OSM
extract and lets it work beside the measuring. These tests make small inputs count as
many (the real forked workers run, on few plots) and hold the result to laying out in
one process.
"""

from __future__ import annotations

import gc
import os
from pathlib import Path

import numpy as np
import pytest
import shapely

from sitefinder import capacity
from sitefinder.api import Study
from sitefinder.errors import InputError, SitefinderError
from tests.test_capacity_fast import baseline_case

from .conftest import DEMO_PLOTS, OSM_PBF


@pytest.fixture
def pooled(monkeypatch):
    """Few plots count as many, in chunks small enough that every process takes several."""
    monkeypatch.setattr(capacity, "POOL_MIN_PLOTS", 20)
    monkeypatch.setattr(capacity, "_CHUNK_PLOTS", 7)
    monkeypatch.setenv(capacity.WORKERS_ENV, "2")
    if capacity.layout_workers(1_000) < 2:
        pytest.skip("this machine lets the process use only one CPU")


def _children() -> set[int]:
    """This process's child processes, zombies included (read from /proc)."""
    me = str(os.getpid())
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the process ended while we looked
        if fields[1] == me:
            found.add(int(stat.parent.name))
    return found


def _same(got, expected) -> None:
    assert got.index.equals(expected.index)
    assert got["capacity_units"].tolist() == expected["capacity_units"].tolist()
    assert shapely.to_wkb(got["layout"].to_numpy()).tolist() == shapely.to_wkb(
        expected["layout"].to_numpy()).tolist()


def test_plots_kept_after_measuring_get_the_layouts_of_one_process(pooled, monkeypatch):
    plots, settings, _ = baseline_case("random")
    before = _children()
    run = capacity.LayoutRun(plots, settings)
    # Measuring drops some plots (outside the network): the rest keep their layouts.
    kept = plots.iloc[np.arange(len(plots)) % 3 != 1]
    got = run.plan(kept)
    assert _children() <= before  # the worker is done and reaped
    monkeypatch.setenv(capacity.WORKERS_ENV, "1")
    _same(got, capacity.plan_units(kept, settings))


def test_a_worker_that_dies_is_an_error_not_a_hang(pooled, monkeypatch):
    plots, settings, _ = baseline_case("random")
    # The forked worker runs this instead of its chunks: it dies at once, as if killed.
    monkeypatch.setattr(capacity, "_work", lambda job, send: os._exit(3))
    before = _children()
    with capacity.LayoutRun(plots, settings) as run, pytest.raises(
        SitefinderError, match=f"stopped unexpectedly.*{capacity.WORKERS_ENV}=1"
    ):
        run.plan()
    assert _children() <= before


def test_a_study_whose_measuring_fails_leaves_no_worker_behind(pooled, tmp_path, scenario):
    broken = tmp_path / "broken.osm.pbf"
    broken.write_bytes(b"\x00\x00\x00\x0dnot an OSM file at all" * 50)
    study = Study(DEMO_PLOTS, broken, scenario, layers_dir=tmp_path / "layers", cache_dir=None)
    before = _children()
    with pytest.raises(InputError, match="could not be read"):
        _ = study.metrics
    assert _children() <= before


def test_a_study_with_the_layout_started_ahead_measures_the_same(pooled, demo_study, scenario):
    study = Study(DEMO_PLOTS, OSM_PBF, scenario, layers_dir=demo_study.layers_dir,
                  cache_dir=None)
    before = _children()
    metrics = study.metrics
    assert _children() <= before
    assert study._layout_started_ahead  # served by the workers, not laid out again
    expected = demo_study.metrics
    assert metrics["capacity_max_units"].equals(expected["capacity_max_units"])
    assert shapely.to_wkb(study._layouts.layouts).tolist() == shapely.to_wkb(
        demo_study._layouts.layouts).tolist()
    # Plots the measuring left out (outside the network) have no capacity, as before.
    dropped = metrics["status"] != "ok"
    assert metrics.loc[dropped, "capacity_max_units"].isna().all()


def test_layout_run_matches_one_process_for_its_own_plots(pooled, monkeypatch):
    plots, settings, _ = baseline_case("demo")
    with capacity.LayoutRun(plots, settings) as run:
        got = run.plan()
    monkeypatch.setenv(capacity.WORKERS_ENV, "1")
    _same(got, capacity.plan_units(plots, settings))


def test_a_run_dropped_without_closing_stops_its_worker(pooled):
    plots, settings, _ = baseline_case("random")
    before = _children()
    run = capacity.LayoutRun(plots, settings)
    assert _children() > before  # the worker started ahead
    del run
    gc.collect()
    assert _children() <= before
