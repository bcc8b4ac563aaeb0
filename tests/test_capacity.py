"""Unit layout and plot capacity (sitefinder.capacity)."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from sitefinder.capacity import CapacitySettings, plan_units, too_small_texts, units_text
from sitefinder.errors import InputError

PLOTS = Path(__file__).resolve().parents[1] / "data" / "plots.gpkg"
# UTM-sized coordinates, so precision problems of real data show up here too.
X0, Y0 = 597_000.0, 6_643_000.0
TOL = 1e-6


def plots_of(*geoms, crs=25832, index=None) -> gpd.GeoDataFrame:
    moved = [
        None if g is None else shapely.affinity.translate(g, X0, Y0) for g in geoms
    ]
    return gpd.GeoDataFrame(geometry=moved, crs=crs, index=index)


def check_layout(plot: shapely.Geometry, row: pd.Series, s: CapacitySettings) -> None:
    """Every promise plan_units makes about one plot's layout."""
    units = list(shapely.get_parts(row["layout"]))
    n = int(row["capacity_units"])
    assert len(units) == n
    assert 0 <= n <= s.max_units_per_site
    inner = plot.buffer(-s.setback_m + TOL, join_style="mitre") if s.setback_m else plot
    for u in units:
        # A rectangle of the unit's size...
        assert u.area == pytest.approx(s.unit_width_m * s.unit_length_m, rel=1e-6)
        sides = sorted(np.hypot(*np.diff(np.asarray(u.exterior.coords)[:3], axis=0).T))
        assert sides == pytest.approx(sorted([s.unit_width_m, s.unit_length_m]), rel=1e-6)
        # ...inside the plot, at least the setback from its boundary.
        assert inner.buffer(TOL).covers(u)
        assert plot.buffer(TOL).covers(u)
    for a, b in itertools.combinations(units, 2):
        assert a.distance(b) >= s.unit_spacing_m - TOL
        assert a.intersection(b).area < TOL
    if n:
        zones = shapely.union_all(
            [u.buffer(s.unit_spacing_m / 2, join_style="mitre") for u in units]
        )
        free = plot.area - zones.intersection(plot).area
        assert free >= n * s.extras_area_m2 - 1e-6
    if n >= s.min_units_per_site:
        assert row["capacity_status"] == "ok"
        assert row["capacity_reason_en"] == "" and row["capacity_reason_nb"] == ""
    elif n == 0:
        assert row["capacity_status"] == "too_small"
        assert "does not fit a single unit" in row["capacity_reason_en"]
        assert "ikke plass til én eneste enhet" in row["capacity_reason_nb"]
    else:
        assert row["capacity_status"] == "too_small"
        assert f"fits {n} unit" in row["capacity_reason_en"]
        assert f"plass til {n} enhet" in row["capacity_reason_nb"]
    assert "(er)" not in row["capacity_reason_nb"] and "(s)" not in row["capacity_reason_en"]


# ----------------------------------------------------------------------- settings


def test_settings_defaults_follow_domain():
    s = CapacitySettings()
    assert (s.unit_width_m, s.unit_length_m) == (6.0, 8.5)
    assert (s.unit_spacing_m, s.setback_m) == (8.0, 4.0)
    assert (s.min_units_per_site, s.max_units_per_site) == (1, 4)
    assert (s.preferred_units_per_site, s.extra_unit_value) == (3, 0.25)
    assert s.guest_parking_per_unit == 0.5
    assert s.extras_area_m2 == pytest.approx(6 + 0.5 * 25 + 2)


def test_settings_refuse_more_than_six_units_per_site():
    assert CapacitySettings(max_units_per_site=6).max_units_per_site == 6
    with pytest.raises(ValidationError, match="max_units_per_site") as err:
        CapacitySettings(max_units_per_site=7)
    assert "at most 6" in str(err.value)


def test_settings_refuse_min_above_max_and_unknown_keys():
    with pytest.raises(ValidationError, match="min_units_per_site"):
        CapacitySettings(min_units_per_site=5, max_units_per_site=4)
    with pytest.raises(ValidationError, match="unit_widht_m"):
        CapacitySettings(unit_widht_m=5)
    with pytest.raises(ValidationError, match="setback_m"):
        CapacitySettings(setback_m=-1)
    with pytest.raises(ValidationError, match="extra_unit_value"):
        CapacitySettings(extra_unit_value=1.5)
    with pytest.raises(ValidationError, match="preferred_units_per_site"):
        CapacitySettings(preferred_units_per_site=0)


def test_settings_field_docs_cite_their_source():
    for name, field in CapacitySettings.model_fields.items():
        if name in ("n_angles", "position_step_m", "parking_space_area_m2"):
            continue  # numerical knobs and one stated assumption
        if name == "setback_m":
            assert "§29-4" in field.description  # from the Planning and Building Act
            continue
        cited = ("CRITERIA.md", "SINTEF 2021")
        assert field.description and any(c in field.description for c in cited), name


# ----------------------------------------------------------------------- examples


def test_square_plot_takes_the_maximum_and_keeps_index():
    plots = plots_of(shapely.box(0, 0, 40, 40), index=pd.Index([10, 20][:1], name="pid"))
    out = plan_units(plots, CapacitySettings())
    assert out.index.equals(plots.index)
    assert list(out.columns) == [
        "capacity_units", "layout", "capacity_status", "capacity_reason_nb", "capacity_reason_en"
    ]
    assert out["capacity_units"].dtype == np.int64
    assert str(out["layout"].dtype) == "geometry"
    assert out.loc[10, "capacity_units"] == 4
    check_layout(plots.geometry[10], out.loc[10], CapacitySettings())


def test_single_house_plot_is_valid_unless_a_larger_minimum_is_asked():
    plots = plots_of(shapely.box(0, 0, 20, 20))  # buildable 12 × 12 m: one unit
    out = plan_units(plots, CapacitySettings())
    # A single house is a valid site (DOMAIN.md 13d, §6.1).
    assert out.loc[0, "capacity_units"] == 1
    assert out.loc[0, "capacity_status"] == "ok"
    two = plan_units(plots, CapacitySettings(min_units_per_site=2))
    assert two.loc[0, "capacity_status"] == "too_small"
    assert two.loc[0, "capacity_reason_en"].startswith(
        "The plot fits 1 unit, at least 2 are required (")
    assert two.loc[0, "capacity_reason_nb"].startswith(
        "Tomten har plass til 1 enhet, minst 2 enheter kreves (")


def test_too_small_means_not_even_one_unit_fits():
    plots = plots_of(shapely.box(0, 0, 12, 12))  # buildable 4 × 4 m: no unit
    out = plan_units(plots, CapacitySettings())
    assert out.loc[0, "capacity_units"] == 0
    assert out.loc[0, "capacity_status"] == "too_small"
    assert out.loc[0, "capacity_reason_en"].startswith("The plot does not fit a single unit (")
    assert out.loc[0, "capacity_reason_nb"].startswith(
        "Tomten har ikke plass til én eneste enhet (")


def test_unit_counts_are_written_with_the_right_noun():
    assert [units_text(n, "nb") for n in (0, 1, 2)] == ["0 enheter", "1 enhet", "2 enheter"]
    assert [units_text(n, "en") for n in (0, 1, 2)] == ["0 units", "1 unit", "2 units"]
    assert too_small_texts(2, 3) == ("har plass til 2 enheter, minst 3 enheter kreves",
                                     "fits 2 units, at least 3 are required")


def test_narrow_plot_uses_its_own_orientation():
    # 16 m × 120 m strip at 37°: buildable 8 m wide, so units must follow the strip.
    strip = shapely.affinity.rotate(shapely.box(0, 0, 120, 16), 37, origin=(0, 0))
    plots = plots_of(strip)
    s = CapacitySettings(max_units_per_site=6)
    out = plan_units(plots, s)
    assert out.loc[0, "capacity_units"] == 6
    check_layout(plots.geometry[0], out.loc[0], s)


def test_extras_budget_can_lower_capacity():
    plot = shapely.box(0, 0, 40, 40)
    none = CapacitySettings(store_area_m2=0, guest_parking_per_unit=0, waste_area_m2=0)
    assert plan_units(plots_of(plot), none).loc[0, "capacity_units"] == 4
    # 1000 m² of extras per unit on a 1600 m² plot leaves room for one unit only.
    huge = CapacitySettings(store_area_m2=200, guest_parking_per_unit=5, parking_space_area_m2=100,
                            waste_area_m2=50, min_units_per_site=1)
    assert huge.extras_area_m2 == 750
    out = plan_units(plots_of(plot), huge)
    assert out.loc[0, "capacity_units"] == 1
    check_layout(plots_of(plot).geometry[0], out.loc[0], huge)


@pytest.mark.parametrize(
    ("geom", "status"),
    [
        (None, "no_geometry"),
        (shapely.Polygon(), "no_geometry"),
        (shapely.Point(3, 4), "not_polygon"),
        (shapely.LineString([(0, 0), (50, 50)]), "not_polygon"),
    ],
)
def test_plots_without_area_get_zero_and_a_reason(geom, status):
    out = plan_units(plots_of(geom), CapacitySettings())
    assert out.loc[0, "capacity_units"] == 0
    assert out.loc[0, "capacity_status"] == status
    assert out.loc[0, "capacity_reason_en"] and out.loc[0, "capacity_reason_nb"]
    assert out.loc[0, "layout"].is_empty


def test_invalid_polygon_is_repaired_not_raised():
    bowtie = shapely.Polygon([(0, 0), (60, 60), (60, 0), (0, 60)])  # self-intersecting
    out = plan_units(plots_of(bowtie), CapacitySettings(min_units_per_site=1))
    assert out.loc[0, "capacity_units"] >= 1
    check_layout(shapely.make_valid(plots_of(bowtie).geometry[0]), out.loc[0],
                 CapacitySettings(min_units_per_site=1))


def test_geographic_or_missing_crs_is_refused():
    with pytest.raises(InputError, match="geographic"):
        plan_units(gpd.GeoDataFrame(geometry=[shapely.box(10, 59, 10.01, 59.01)], crs=4326),
                   CapacitySettings())
    with pytest.raises(InputError, match="no coordinate reference system"):
        plan_units(gpd.GeoDataFrame(geometry=[shapely.box(0, 0, 50, 50)]), CapacitySettings())


def test_empty_input_gives_empty_frame():
    out = plan_units(gpd.GeoDataFrame(geometry=[], crs=25832), CapacitySettings())
    assert len(out) == 0 and "capacity_units" in out.columns


# ----------------------------------------------------------------------- properties


@st.composite
def plot_shapes(draw):
    kind = draw(st.sampled_from(["rect", "L", "hull"]))
    if kind == "rect":
        g = shapely.box(0, 0, draw(st.floats(5, 90)), draw(st.floats(5, 90)))
    elif kind == "L":
        a, b = draw(st.floats(20, 80)), draw(st.floats(20, 80))
        t = draw(st.floats(8, 30))
        g = shapely.union_all([shapely.box(0, 0, a, t), shapely.box(0, 0, t, b)])
    else:
        pts = draw(st.lists(st.tuples(st.floats(0, 80), st.floats(0, 80)), min_size=3,
                            max_size=9))
        g = shapely.MultiPoint(pts).convex_hull
    return shapely.affinity.rotate(g, draw(st.floats(0, 180)), origin=(0, 0))


@st.composite
def capacity_settings(draw):
    lo = draw(st.integers(1, 3))
    return CapacitySettings(
        unit_width_m=draw(st.floats(4, 8)),
        unit_length_m=draw(st.floats(6, 10)),
        unit_spacing_m=draw(st.floats(0, 12)),
        setback_m=draw(st.floats(0, 6)),
        store_area_m2=draw(st.floats(0, 20)),
        guest_parking_per_unit=draw(st.sampled_from([0.0, 0.5, 1.0])),
        min_units_per_site=lo,
        max_units_per_site=draw(st.integers(lo, 6)),
        n_angles=draw(st.integers(1, 6)),
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(shape=plot_shapes(), s=capacity_settings())
def test_layout_respects_every_rule(shape, s):
    plots = plots_of(shape)
    out = plan_units(plots, s)
    plot = plots.geometry[0]
    if plot.is_empty or plot.area == 0:
        assert out.loc[0, "capacity_units"] == 0
        return
    check_layout(plot, out.loc[0], s)


@settings(max_examples=25, deadline=None)
@given(w=st.floats(30, 80), h=st.floats(30, 80))
def test_room_for_a_unit_means_at_least_one_unit(w, h):
    # A rectangle whose buildable part holds the unit in some orientation must get ≥ 1.
    s = CapacitySettings(min_units_per_site=1)
    out = plan_units(plots_of(shapely.box(0, 0, w, h)), s)
    assert out.loc[0, "capacity_units"] >= 1


# ----------------------------------------------------------------------- real plots


def test_real_plots_fast_and_valid():
    if not PLOTS.exists():
        pytest.skip(f"{PLOTS} not built yet")
    plots = gpd.read_file(PLOTS)
    s = CapacitySettings()
    start = time.perf_counter()
    out = plan_units(plots, s)
    elapsed = time.perf_counter() - start
    assert elapsed < 2.0, f"plan_units took {elapsed:.2f} s for {len(plots)} plots"
    assert out.index.equals(plots.index)
    assert (out["capacity_status"] == "ok").sum() >= 10
    for i in plots.index:
        check_layout(plots.geometry[i], out.loc[i], s)
