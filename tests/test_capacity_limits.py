"""A scenario's units-per-site limits applied to layouts measured once at the ceiling."""

from __future__ import annotations

import numpy as np
import pandas as pd
import shapely

from sitefinder.capacity import CapacitySettings, cap_units, layouts_by_units


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


def test_layout_columns_keep_the_first_units_placed():
    layouts = pd.Series([_layout(6), _layout(2), None])
    table = layouts_by_units(layouts)
    assert table.shape == (3, 7)
    for k in range(7):
        assert len(table[0, k].geoms) == k
        # The first k units, in placement order: a cut layout is a prefix of the full one.
        assert all(a.equals(b) for a, b in zip(table[0, k].geoms, _layout(6).geoms, strict=False))
    assert len(table[1, 2].geoms) == 2 and table[2, 3].is_empty


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
