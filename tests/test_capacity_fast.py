"""The fast unit layout equals the layout by definition (issue 12).

The layout tests lattice positions with arrays instead of one box and one ``covers`` per
position, and places units by clearing a conflict stencil instead of testing every pair.
These tests hold it to the definitions it replaces: a position fits when GEOS says the
buildable area covers the unit's box, and the greedy takes, in each corner order, every
position not in conflict with a unit already taken. And on real and random plots the
counts are those measured before the speed work (tests/data/metrics_baseline/).
"""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from shapely import affinity

from sitefinder import capacity
from sitefinder.capacity import HARD_MAX_UNITS_PER_SITE, CapacitySettings, plan_units
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
        base = capacity._mrr_angle_deg(build)
        for k in range(s.n_angles):
            angle = (base + k * 180.0 / s.n_angles) % 180.0
            rot = capacity._rotation(-angle)
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
        convex = capacity._clearly_convex(b_rot)
        fits = capacity._fitting_positions(b_rot, convex, xs, ys, w, h)
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
    stencil = capacity._Stencil(s, 1.0)
    compared = 0
    for _, b_rot, xs, ys in lattice_cases():
        if xs.size == 0 or ys.size == 0:
            continue
        fits = capacity._fitting_positions(b_rot, False, xs, ys, s.unit_width_m,
                                           s.unit_length_m)
        fast = [list(zip(*(a.tolist() for a in p.cells()), strict=True))
                for p in capacity._fill_orders(fits, stencil, HARD_MAX_UNITS_PER_SITE)]
        assert fast == greedy_by_definition(fits, xs, ys, s, HARD_MAX_UNITS_PER_SITE)
        compared += sum(len(order) for order in fast)
    assert compared > 100


def measured_capacity(plots: gpd.GeoDataFrame, settings: CapacitySettings) -> pd.Series:
    ceiling = settings.model_copy(update={"max_units_per_site": HARD_MAX_UNITS_PER_SITE,
                                          "min_units_per_site": 1})
    return plan_units(plots, ceiling)["capacity_units"]


@pytest.mark.parametrize("name", ["demo", "random"])
def test_capacity_equals_the_count_before_the_speed_work(name):
    from sitefinder.config import default_scenario, load_scenario

    baseline = pd.read_csv(BASELINE / f"{name}_metrics.csv", index_col=0)
    if name == "demo":
        plots = gpd.read_file(DEMO_PLOTS).to_crs(25832)
        settings = load_scenario(DEMO_SCENARIO).capacity
    else:
        plots = gpd.read_file(BASELINE / "random_plots.gpkg")
        settings = default_scenario().capacity
    measured = baseline["capacity_max_units"].notna().to_numpy()
    units = measured_capacity(plots.loc[measured], settings).to_numpy()
    expected = baseline.loc[measured, "capacity_max_units"].to_numpy()
    assert np.array_equal(units, expected)
    assert units.max() == HARD_MAX_UNITS_PER_SITE and (units == 0).any()


def test_stencil_reaches_every_conflict_and_no_further():
    s = CapacitySettings()
    stencil = capacity._conflict_stencil(s, 1.0)
    ky, kx = stencil.shape[0] // 2, stencil.shape[1] // 2
    assert stencil[ky, kx]  # a unit conflicts with one in the same place
    # Side by side: touching walls are too close; the spacing apart is allowed.
    assert stencil[ky, kx + math.ceil(s.unit_width_m + s.unit_spacing_m) - 1]
    assert not stencil[ky, kx + int(s.unit_width_m + s.unit_spacing_m)]
    # The border of the stencil is free: nothing beyond it could conflict.
    assert not stencil[0].any() and not stencil[-1].any()
    assert not stencil[:, 0].any() and not stencil[:, -1].any()
