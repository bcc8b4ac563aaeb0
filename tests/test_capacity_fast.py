"""The fast unit layout equals the layout by definition (issue 12).

The layout tests lattice positions with arrays instead of one box and one ``covers`` per
position, and places units by clearing a conflict stencil instead of testing every pair.
These tests hold it to the definitions it replaces: a position fits when GEOS says the
buildable area covers the unit's box, and the greedy takes, in each corner order, every
position not in conflict with a unit already taken. And on real and random plots the
counts are those measured before the speed work (tests/data/metrics_baseline/).
"""

from __future__ import annotations

import hashlib
import math

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from shapely import affinity

from sitefinder import capacity, capacity_search
from sitefinder.capacity import HARD_MAX_UNITS_PER_SITE, CapacitySettings, plan_units
from sitefinder.errors import InputError
from tests.conftest import DEMO_PLOTS, DEMO_SCENARIO, TEST_DATA

BASELINE = TEST_DATA / "metrics_baseline"
X0, Y0 = 597_000.0, 6_643_000.0


def awkward_shapes() -> list[shapely.Geometry]:
    """Shapes that exercise every branch: convex, concave, holes, parts, round, thin."""
    box = shapely.box(0, 0, 40, 30)
    shapes = [
        box,
        affinity.rotate(box, 17, origin=(0, 0)),
        affinity.rotate(box, 90, origin=(0, 0)),  # rounding puts edges a hair off the lattice
        box.difference(shapely.box(20, 15, 41, 31)),  # L-shape
        box.difference(shapely.Point(20, 15).buffer(5)),  # a hole
        shapely.MultiPolygon([shapely.box(0, 0, 20, 20), shapely.box(30, 0, 50, 20)]),
        shapely.Polygon([(0, 0), (60, 0), (25, 45)]),  # triangle
        shapely.Point(0, 0).buffer(25),
        shapely.box(0, 0, 80, 10.5),  # one row exactly fits at some angles
        shapely.Polygon([(0, 0), (30, 0), (30, 30), (15, 14), (0, 30)]),  # a notch
    ]
    return [affinity.translate(s, X0, Y0) for s in shapes]


def lattice_cases():
    """(shape, angle, buildable area in the rotated frame, xs, ys) as the layout sees them."""
    s = CapacitySettings()
    w, h = s.unit_width_m, s.unit_length_m
    for shape in awkward_shapes():
        build = shape.buffer(-s.setback_m, join_style="mitre")
        origin = np.array(build.centroid.coords[0])
        local = shapely.transform(build, lambda xy, o=origin: xy - o)
        base = capacity_search._mrr_angle_deg(build)
        for k in range(s.n_angles):
            angle = (base + k * 180.0 / s.n_angles) % 180.0
            rot = capacity_search._rotation(-angle)
            b_rot = shapely.transform(local, lambda xy, r=rot: xy @ r.T)
            minx, miny, maxx, maxy = b_rot.bounds
            xs = np.arange(minx, maxx - w + 1e-9, 1.0)
            ys = np.arange(miny, maxy - h + 1e-9, 1.0)
            yield shape, b_rot, xs, ys


def test_fitting_positions_are_exactly_those_geos_covers():
    s = CapacitySettings()
    w, h = s.unit_width_m, s.unit_length_m
    checked = fitting = 0
    for shape, b_rot, xs, ys in lattice_cases():
        convex = capacity_search._clearly_convex(b_rot)
        fits = capacity_search._fitting_positions(b_rot, convex, xs, ys, w, h)
        gx, gy = np.meshgrid(xs, ys)
        boxes = shapely.box(gx, gy, gx + w, gy + h)
        assert np.array_equal(fits, shapely.covers(b_rot, boxes)), shape.wkt[:60]
        checked += fits.size
        fitting += int(fits.sum())
    # The check is not vacuous: many positions, both outcomes, and touching edges.
    assert checked > 5_000 and 0 < fitting < checked


def greedy_by_definition(fits: np.ndarray, xs: np.ndarray, ys: np.ndarray,
                         s: CapacitySettings, cap: int) -> list[list[tuple[int, int]]]:
    """For each corner order: take every fitting position not too close to one taken."""
    w, h, gap = s.unit_width_m, s.unit_length_m, s.unit_spacing_m
    rows, cols = np.nonzero(fits)
    x, y = xs[cols], ys[rows]
    orders = []
    for keys in ((x, y), (y, x), (-x, -y), (-y, -x)):
        taken: list[int] = []
        for k in np.lexsort(keys):
            if len(taken) == cap:
                break
            dx = np.abs(x[taken] - x[k]) - w
            dy = np.abs(y[taken] - y[k]) - h
            overlap = (dx < -1e-9) & (dy < -1e-9)
            near = np.hypot(np.maximum(dx, 0), np.maximum(dy, 0)) < gap - 1e-9
            if not (overlap | near).any():
                taken.append(k)
        orders.append([(int(rows[k]), int(cols[k])) for k in taken])
    return orders


@pytest.mark.parametrize("spacing", [8.0, 0.0, 3.3])
def test_greedy_placement_equals_the_pairwise_definition(spacing):
    s = CapacitySettings(unit_spacing_m=spacing)
    stencil = capacity_search._Stencil(s, 1.0)
    compared = 0
    for _, b_rot, xs, ys in lattice_cases():
        if xs.size == 0 or ys.size == 0:
            continue
        fits = capacity_search._fitting_positions(b_rot, False, xs, ys, s.unit_width_m,
                                           s.unit_length_m)
        fast = [list(zip(*(a.tolist() for a in p.cells()), strict=True))
                for p in capacity_search._fill_orders(fits, stencil, HARD_MAX_UNITS_PER_SITE)]
        assert fast == greedy_by_definition(fits, xs, ys, s, HARD_MAX_UNITS_PER_SITE)
        compared += sum(len(order) for order in fast)
    assert compared > 100


def measured_capacity(plots: gpd.GeoDataFrame, settings: CapacitySettings) -> pd.Series:
    ceiling = settings.model_copy(update={"max_units_per_site": HARD_MAX_UNITS_PER_SITE,
                                          "min_units_per_site": 1})
    return plan_units(plots, ceiling)["capacity_units"]


def baseline_case(name: str) -> tuple[gpd.GeoDataFrame, CapacitySettings, pd.DataFrame]:
    """The plots, capacity settings and metrics measured before the speed work."""
    from sitefinder.config import default_scenario, load_scenario

    baseline = pd.read_csv(BASELINE / f"{name}_metrics.csv", index_col=0)
    if name == "demo":
        plots = gpd.read_file(DEMO_PLOTS).to_crs(25832)
        settings = load_scenario(DEMO_SCENARIO).capacity
    else:
        plots = gpd.read_file(BASELINE / "random_plots.gpkg")
        settings = default_scenario().capacity
    measured = baseline["capacity_max_units"].notna().to_numpy()
    return plots.loc[measured], settings, baseline.loc[measured]


@pytest.mark.parametrize("name", ["demo", "random"])
def test_capacity_equals_the_count_before_the_speed_work(name):
    plots, settings, baseline = baseline_case(name)
    units = measured_capacity(plots, settings).to_numpy()
    expected = baseline["capacity_max_units"].to_numpy()
    assert np.array_equal(units, expected)
    assert units.max() == HARD_MAX_UNITS_PER_SITE and (units == 0).any()


def layout_fingerprint(layouts: gpd.GeoSeries) -> str:
    """Every unit corner of every layout to the millimetre, with its plot, as a hash."""
    coords, owner = shapely.get_coordinates(layouts.array, return_index=True)
    data = np.column_stack([owner, np.round(coords * 1000)]).astype(np.int64)
    return hashlib.sha256(data.tobytes()).hexdigest()[:16]


#: The layouts at the hard ceiling measured by the code before the batched layout and the
#: worker processes (issue 12): fingerprint of all corners to the mm, and total units.
LAYOUTS_BEFORE = {"demo": ("267818e8ea3ce976", 212), "random": ("d2307dad25965b8f", 1147)}


def ceiling_layouts(plots: gpd.GeoDataFrame, settings: CapacitySettings) -> pd.DataFrame:
    ceiling = settings.model_copy(update={"max_units_per_site": HARD_MAX_UNITS_PER_SITE,
                                          "min_units_per_site": 1})
    return plan_units(plots, ceiling)


@pytest.mark.parametrize("name", ["demo", "random"])
def test_layouts_are_those_drawn_before_the_speed_work(name):
    plots, settings, _ = baseline_case(name)
    layout = ceiling_layouts(plots, settings)
    assert (layout_fingerprint(layout["layout"]), int(layout["capacity_units"].sum())) == (
        LAYOUTS_BEFORE[name]
    )


def test_plots_laid_out_together_equal_plots_laid_out_alone():
    """Preparing all plots with array calls must not mix one plot's data into another's."""
    s = CapacitySettings(max_units_per_site=HARD_MAX_UNITS_PER_SITE)
    shapes = awkward_shapes() + [None, shapely.Point(X0, Y0), shapely.box(X0, Y0, X0 + 5, Y0 + 5)]
    together = plan_units(gpd.GeoDataFrame(geometry=shapes, crs=25833), s)
    for i, shape in enumerate(shapes):
        alone = plan_units(gpd.GeoDataFrame(geometry=[shape], crs=25833), s).iloc[0]
        assert together["capacity_units"].iloc[i] == alone["capacity_units"]
        assert together["capacity_status"].iloc[i] == alone["capacity_status"]
        assert together["layout"].iloc[i].equals_exact(alone["layout"], 0.0)
    assert together["capacity_units"].sum() > 20


def test_orientations_found_for_all_plots_at_once_are_those_found_one_by_one():
    flat = shapely.Polygon([(X0, Y0), (X0 + 10, Y0), (X0 + 20, Y0)])  # no area: angle 0
    shapes = awkward_shapes() + [flat, shapely.box(X0, Y0, X0 + 30, Y0 + 30)]
    together = capacity_search._mrr_angles_deg(np.array(shapes, dtype=object))
    alone = [capacity_search._mrr_angle_deg(shape) for shape in shapes]
    assert together.tolist() == alone
    assert len(set(alone)) > 3


def test_worker_processes_draw_the_same_layouts_in_the_same_order(monkeypatch):
    plots, settings, _ = baseline_case("random")
    monkeypatch.setenv(capacity.WORKERS_ENV, "1")
    alone = ceiling_layouts(plots, settings)
    # Make 400 plots count as many, so that the real worker pool runs on a small input,
    # in chunks small enough that both processes take several.
    monkeypatch.setattr(capacity, "POOL_MIN_PLOTS", 100)
    monkeypatch.setattr(capacity, "_CHUNK_PLOTS", 30)
    monkeypatch.setenv(capacity.WORKERS_ENV, "2")
    if capacity.layout_workers(len(plots)) < 2:
        pytest.skip("this machine lets the process use only one CPU")
    pooled = ceiling_layouts(plots, settings)
    assert pooled.index.equals(plots.index)
    assert np.array_equal(pooled["capacity_units"], alone["capacity_units"])
    assert list(shapely.to_wkb(pooled["layout"].array)) == list(
        shapely.to_wkb(alone["layout"].array)
    )
    assert pooled["capacity_status"].tolist() == alone["capacity_status"].tolist()


def test_small_inputs_stay_in_one_process_and_the_variable_can_keep_all_in_one(monkeypatch):
    monkeypatch.delenv(capacity.WORKERS_ENV, raising=False)
    assert capacity.layout_workers(capacity.POOL_MIN_PLOTS - 1) == 1
    assert capacity.layout_workers(10 * capacity.POOL_MIN_PLOTS) <= 2
    monkeypatch.setenv(capacity.WORKERS_ENV, "1")
    assert capacity.layout_workers(10 * capacity.POOL_MIN_PLOTS) == 1


def _workers_in_a_daemon(queue) -> None:
    queue.put(capacity.layout_workers(10 * capacity.POOL_MIN_PLOTS))


def test_a_daemonic_process_lays_out_alone(monkeypatch):
    # Dask's worker processes (sitefinder batch) are daemonic and may not have children:
    # a screening partition with thousands of cells must not try to fork a pool there.
    import multiprocessing

    monkeypatch.delenv(capacity.WORKERS_ENV, raising=False)
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    process = context.Process(target=_workers_in_a_daemon, args=(queue,), daemon=True)
    process.start()
    try:
        assert queue.get(timeout=60) == 1
    finally:
        process.join(timeout=60)


@pytest.mark.parametrize("value", ["two", "0", "-1"])
def test_a_bad_worker_count_is_a_clear_input_error(monkeypatch, value):
    monkeypatch.setenv(capacity.WORKERS_ENV, value)
    with pytest.raises(InputError, match=capacity.WORKERS_ENV) as error:
        capacity.layout_workers(10)
    assert "unset" in str(error.value)


def test_stencil_reaches_every_conflict_and_no_further():
    s = CapacitySettings()
    stencil = capacity_search._conflict_stencil(s, 1.0)
    ky, kx = stencil.shape[0] // 2, stencil.shape[1] // 2
    assert stencil[ky, kx]  # a unit conflicts with one in the same place
    # Side by side: touching walls are too close; the spacing apart is allowed.
    assert stencil[ky, kx + math.ceil(s.unit_width_m + s.unit_spacing_m) - 1]
    assert not stencil[ky, kx + int(s.unit_width_m + s.unit_spacing_m)]
    # The border of the stencil is free: nothing beyond it could conflict.
    assert not stencil[0].any() and not stencil[-1].any()
    assert not stencil[:, 0].any() and not stencil[:, -1].any()
