"""A scenario's units-per-site limits applied to layouts measured once at the ceiling."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from sitefinder.api import Study
from sitefinder.capacity import (
    HARD_MAX_UNITS_PER_SITE,
    CapacitySettings,
    CeilingLayouts,
    cap_units,
)
from sitefinder.outfolder import DamagedFileWarning

from .conftest import DEMO_PLOTS, OSM_PBF


def _layout(n: int) -> shapely.MultiPolygon:
    return shapely.MultiPolygon([shapely.box(20 * i, 0, 20 * i + 6, 8.5) for i in range(n)])


def test_limits_cap_units_and_flag_small_plots():
    measured = pd.Series([6, 3, 1, np.nan], index=["a", "b", "c", "d"])
    out = cap_units(measured, CapacitySettings(max_units_per_site=4, min_units_per_site=2))
    assert out["capacity_units"].tolist() == [4, 3, 1, pd.NA]
    assert out["capacity_status"].tolist() == ["ok", "ok", "too_small", "unknown"]
    assert "fits 1 unit, at least 2 are required" in out.loc["c", "capacity_reason_en"]
    assert "plass til 1 enhet, minst 2 enheter kreves" in out.loc["c", "capacity_reason_nb"]
    # With the default minimum a single house is enough; only 0 units is too small.
    single = cap_units(pd.Series([1, 0]), CapacitySettings())
    assert single["capacity_status"].tolist() == ["ok", "too_small"]
    assert "does not fit a single unit" in single.loc[1, "capacity_reason_en"]
    assert "point" in out.loc["d", "capacity_reason_en"]
    sandnes_strict = cap_units(measured, CapacitySettings(max_units_per_site=2))
    assert sandnes_strict["capacity_units"].tolist()[:3] == [2, 2, 1]


def _first_by_definition(layout: shapely.Geometry | None, k: int) -> shapely.Geometry:
    """The first ``k`` units of a layout, one plot at a time (the old per-count table)."""
    if layout is None or k == 0 or layout.is_empty:
        return shapely.MultiPolygon()
    if len(layout.geoms) <= k:
        return layout
    return shapely.MultiPolygon(list(layout.geoms)[:k])


def _same_cut(got: np.ndarray, layouts: list, units: np.ndarray) -> None:
    for i, (layout, k) in enumerate(zip(layouts, units.tolist(), strict=True)):
        expected = _first_by_definition(layout, k)
        # Byte for byte: the written outputs stay what they were.
        assert shapely.to_wkb(got[i]) == shapely.to_wkb(expected), i
        if layout is not None and 0 < len(layout.geoms) <= k:
            assert got[i] is layout  # reused, not rebuilt


def test_layouts_keep_the_first_units_placed():
    layouts = CeilingLayouts(pd.Series([_layout(6), _layout(2), None]))
    for k in range(7):
        cut = layouts.first(np.array([k, k, k]))
        assert len(cut[0].geoms) == k
        # The first k units, in placement order: a cut layout is a prefix of the full one.
        assert all(a.equals(b) for a, b in zip(cut[0].geoms, _layout(6).geoms, strict=False))
        assert len(cut[1].geoms) == min(k, 2) and cut[2].is_empty
    # Only the ceiling is kept: one geometry per plot, not one per unit count.
    assert layouts.layouts.shape == (3,)


def test_cut_layouts_equal_the_per_count_table_for_10k_plots():
    rng = np.random.default_rng(12)
    counts = rng.integers(0, HARD_MAX_UNITS_PER_SITE + 1, 10_000)
    layouts = [None if rng.random() < 0.05 else _layout(int(n)) for n in counts]
    ceiling = CeilingLayouts(pd.Series(layouts, dtype=object))
    units = np.minimum(counts, rng.integers(0, HARD_MAX_UNITS_PER_SITE + 1, counts.size))
    _same_cut(ceiling.first(units), layouts, units)
    # Asked again with other counts, the remembered cut is not reused.
    _same_cut(ceiling.first(counts), layouts, counts)
    _same_cut(ceiling.first(units), layouts, units)


def test_demo_layouts_equal_the_per_count_table(demo_study, scenario):
    two = scenario.model_copy(
        update={"capacity": scenario.capacity.model_copy(update={"max_units_per_site": 2})}
    )
    ceiling = list(demo_study._layouts.layouts)
    for ranked in (demo_study.score(explain=False), demo_study.score(two, explain=False)):
        # Back in the plots' order, where the ceiling layouts are.
        ranked = ranked.set_index("plot_id").loc[demo_study.plots["plot_id"]]
        units = ranked["capacity_units"].fillna(0).to_numpy(dtype=np.int64)
        _same_cut(ranked["layout"].to_numpy(), ceiling, units)


def test_a_cache_with_the_old_layout_table_is_measured_again(tmp_path, scenario):
    plots = tmp_path / "plots.gpkg"
    gpd.read_file(DEMO_PLOTS).head(4).to_file(plots)
    kwargs = dict(layers_dir=tmp_path / "layers", cache_dir=tmp_path / "cache")
    first = Study(plots, OSM_PBF, scenario, **kwargs)
    ranked = first.score(explain=False)
    (cache_file,) = (tmp_path / "cache").glob("metrics-*.pkl")
    metrics, empty, layouts = pd.read_pickle(cache_file)
    # What an older version wrote: the layouts cut to 0…6 units, one column per count.
    table = np.array([[_first_by_definition(g, k) for k in range(HARD_MAX_UNITS_PER_SITE + 1)]
                      for g in layouts.layouts], dtype=object)
    pd.to_pickle((metrics, empty, table), cache_file)
    second = Study(plots, OSM_PBF, scenario, **kwargs)
    with pytest.warns(DamagedFileWarning, match="cached metrics cannot be read"):
        again = second.score(explain=False)
    assert not second.cache_hit
    assert shapely.to_wkb(again["layout"].to_numpy()).tolist() == shapely.to_wkb(
        ranked["layout"].to_numpy()).tolist()
    third = Study(plots, OSM_PBF, scenario, **kwargs)
    third.score(explain=False)
    assert third.cache_hit  # the file written in its place is of the new shape


def test_scenario_limit_changes_units_without_measuring_again(demo_study, scenario):
    four = demo_study.score(explain=False)
    two = demo_study.score(
        scenario.model_copy(
            update={"capacity": scenario.capacity.model_copy(update={"max_units_per_site": 2})}
        ),
        explain=False,
    )
    assert four["capacity_units"].max() == 4 and two["capacity_units"].max() == 2
    units = two.set_index("plot_id")
    for _, row in units.iterrows():
        n = 0 if pd.isna(row["capacity_units"]) else int(row["capacity_units"])
        assert len(row["layout"].geoms) == n
        if n:
            plot = demo_study.plots.set_index("plot_id").loc[row.name, "geometry"]
            assert row["layout"].within(plot.buffer(1e-6))
