"""Clearly convex plots laid out together equal the plot-by-plot search (issue 12).

The layout of clearly convex plots runs orientation by orientation for many plots at
once: rotated rings from stacked matrix products, lattices as numbers, fitting positions
as spans solved from the edges, the greedy on Python integers. The plot-by-plot search
(:func:`sitefinder.capacity_search._layout_plot`, still used for the other plots) is the
definition these tests hold it to: the same unit counts and the same floats in every
corner, over shapes and settings chosen to reach every branch.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import shapely
from shapely import affinity

from sitefinder import capacity_batch, capacity_search
from sitefinder.capacity import HARD_MAX_UNITS_PER_SITE, CapacitySettings
from tests.test_capacity_fast import X0, Y0, awkward_shapes, greedy_by_definition


def convex_plots(n: int, seed: int) -> list[shapely.Geometry]:
    """Clearly convex plots of many kinds: boxes at all angles, triangles, round, thin,
    a hair off the lattice, and large enough for a coarser lattice."""
    rng = np.random.default_rng(seed)
    shapes = [
        shapely.box(0, 0, 40, 30),
        affinity.rotate(shapely.box(0, 0, 40, 30), 90, origin=(0, 0)),
        shapely.box(0, 0, 80, 10.5),  # one row exactly fits at some angles
        shapely.box(0, 0, 14, 16.5),  # exactly one unit
        shapely.box(0, 0, 14 + 1e-8, 16.5 - 1e-8),
        shapely.Polygon([(0, 0), (60, 0), (25, 45)]),
        shapely.Point(0, 0).buffer(25, 8),
        shapely.box(0, 0, 240, 180),  # buildable area over 20,000 m²: a coarser lattice
        shapely.box(0, 0, 8, 300),  # too narrow for a unit
    ]
    for _ in range(n):
        w, h = rng.uniform(12, 70, 2)
        box = shapely.box(0, 0, w, h)
        kind = rng.integers(3)
        if kind == 0:
            shape = affinity.rotate(box, rng.uniform(0, 180), origin=(0, 0))
        elif kind == 1:
            shape = shapely.Polygon(rng.uniform(0, 1, (9, 2)) * [w, h]).convex_hull
        else:
            shape = affinity.skew(box, rng.uniform(-30, 30), origin=(0, 0))
        shapes.append(shape)
    offsets = rng.uniform(0, 5000, (len(shapes), 2))
    return [affinity.translate(s, X0 + dx, Y0 + dy)
            for s, (dx, dy) in zip(shapes, offsets, strict=True)]


def both_ways(polys: list[shapely.Geometry], settings: CapacitySettings):
    """(units, rings) of the batched layout and of the plot-by-plot one, convex plots only."""
    plots = capacity_search._Plots(np.array(polys, dtype=object), settings)
    convex = np.flatnonzero(plots.usable & (plots.convex != 0))
    units, rings = capacity_batch._layout_convex(plots, convex, settings)
    alone = [capacity_search._layout_plot(plots, i, settings) for i in convex.tolist()]
    return convex, (units, rings), alone


SETTINGS = [
    CapacitySettings(max_units_per_site=HARD_MAX_UNITS_PER_SITE),
    CapacitySettings(max_units_per_site=2, n_angles=1),
    CapacitySettings(max_units_per_site=HARD_MAX_UNITS_PER_SITE, unit_spacing_m=0.0,
                     setback_m=0.0, n_angles=7),
    CapacitySettings(max_units_per_site=5, position_step_m=0.5, unit_width_m=7.3,
                     store_area_m2=40.0),  # a large extras budget: the exact room test
    CapacitySettings(max_units_per_site=HARD_MAX_UNITS_PER_SITE, store_area_m2=0.0,
                     guest_parking_per_unit=0.0, waste_area_m2=0.0, position_step_m=1.7),
]


@pytest.mark.parametrize("settings", SETTINGS, ids=range(len(SETTINGS)))
def test_convex_plots_laid_out_together_equal_the_plot_by_plot_search(settings):
    polys = convex_plots(150, seed=int(settings.position_step_m * 10) + settings.n_angles)
    convex, (units, rings), alone = both_ways(polys, settings)
    assert convex.size > 140  # nearly all are clearly convex: the batch is what is tested
    assert units.tolist() == [n for n, _ in alone]
    for batch, (_, single) in zip(rings, alone, strict=True):
        assert batch.shape == single.shape
        assert np.array_equal(batch, single)  # the same floats, not just close
    # Not vacuous: full, partial and empty plots.
    assert units.max() == settings.max_units_per_site and (units == 0).any()
    assert ((units > 0) & (units < settings.max_units_per_site)).any()


def test_fitting_spans_are_the_positions_of_the_fits_grid():
    """Spans per row and column, plus GEOS's answers near edges, make the grid exactly."""
    s = CapacitySettings()
    w, h = s.unit_width_m, s.unit_length_m
    shapes = [p for p in convex_plots(40, seed=5)]
    plots = capacity_search._Plots(np.array(shapes, dtype=object), s)
    members = np.flatnonzero(plots.usable & (plots.convex != 0))
    steps = np.maximum(s.position_step_m, np.sqrt(plots.build_area[members] / 20_000))
    compared = near = 0
    for k in range(s.n_angles):
        angles = (plots.base[members] + k * 180.0 / s.n_angles) % 180.0
        frame = capacity_batch._Frame(plots, members, angles, steps, s)
        keep = np.flatnonzero((frame.x.count > 0) & (frame.y.count > 0))
        fits = capacity_batch._FrameFits(plots, frame, keep, s)
        near += fits.near[0].size
        for j, m in enumerate(keep.tolist()):
            i = int(members[m])
            xy_rot = plots.local_xy(i) @ capacity_search._rotation(-float(angles[m])).T
            xs = np.arange(xy_rot[:, 0].min(), xy_rot[:, 0].max() - w + 1e-9, steps[m])
            ys = np.arange(xy_rot[:, 1].min(), xy_rot[:, 1].max() - h + 1e-9, steps[m])
            assert np.array_equal(fits.x.at(np.full(xs.size, j), np.arange(xs.size)), xs)
            b_rot = capacity_search._Rotated(plots.build[i], xy_rot)
            expected = capacity_search._convex_fits_xy(
                xy_rot, plots.convex[i] > 0, xs, ys, w, h, b_rot)
            for by_rows, grid in ((True, expected), (False, expected.T)):
                ints, widths = fits.bits(by_rows)
                got = np.array([[ints[j] >> (r * widths[j] + c) & 1
                                 for c in range(grid.shape[1])]
                                for r in range(grid.shape[0])], dtype=bool)
                assert np.array_equal(got, grid)
            compared += expected.size
    assert compared > 50_000 and near > 100  # the hair band near edges is exercised


def test_lattice_positions_are_the_floats_of_numpy_arange():
    rng = np.random.default_rng(3)
    low = rng.uniform(-40, 10, 5000) * rng.choice([1.0, 1e-3, 1e-9], 5000)
    high = low + rng.uniform(-2, 50, 5000)
    step = np.where(rng.random(5000) < 0.5, 1.0, rng.uniform(0.1, 3, 5000))
    axis = capacity_batch._Axis.between(low, high, step)
    for k in range(low.size):
        expected = np.arange(low[k], high[k], step[k])
        assert axis.count[k] == expected.size
        got = axis.at(np.full(expected.size, k), np.arange(expected.size))
        assert np.array_equal(got, expected)


def test_rings_rotated_together_are_those_rotated_one_by_one():
    s = CapacitySettings()
    shapes = awkward_shapes() + convex_plots(30, seed=9)
    plots = capacity_search._Plots(np.array(shapes, dtype=object), s)
    members = np.flatnonzero(plots.usable)
    sizes = plots.start[members + 1] - plots.start[members]
    angles = np.random.default_rng(1).uniform(0, 180, members.size)
    together = capacity_batch._rotate_rings(plots, members, sizes, angles)
    alone = np.concatenate([plots.local_xy(i) @ capacity_search._rotation(-a).T
                            for i, a in zip(members.tolist(), angles.tolist(), strict=True)])
    assert np.array_equal(together, alone)


@pytest.mark.parametrize("setback", [4.0, 0.0])  # without a setback, rings as drawn
def test_convexity_of_all_plots_is_that_of_one_plot_at_a_time(setback):
    s = CapacitySettings(setback_m=setback)
    nearly_straight = shapely.Polygon([(0, 0), (20, 1e-12), (40, 0), (40, 30), (0, 30)])
    shapes = awkward_shapes() + convex_plots(30, seed=4) + [
        affinity.translate(nearly_straight, X0, Y0),
        affinity.translate(shapely.box(0, 0, 40, 30).reverse(), X0, Y0),  # clockwise
    ]
    plots = capacity_search._Plots(np.array(shapes, dtype=object), s)
    alone = [capacity_search._clearly_convex_xy(plots.local_xy(i)) if plots.one_ring[i] else 0
             for i in range(len(shapes))]
    assert plots.convex.tolist() == alone
    assert {-1, 0} <= set(alone) if setback else {-1, 0, 1} <= set(alone)


@pytest.mark.parametrize("spacing", [8.0, 0.0])
def test_greedy_on_tiny_grids_equals_the_pairwise_definition(spacing):
    """Grids narrower than the stencil: rows of bits must not run into each other."""
    s = CapacitySettings(unit_spacing_m=spacing)
    stencil = capacity_search._Stencil(s, 1.0)
    rng = np.random.default_rng(0)
    for _ in range(300):
        ny, nx = rng.integers(1, 30), rng.integers(1, 5)
        if rng.random() < 0.5:
            ny, nx = nx, ny
        fits = rng.random((ny, nx)) < 0.7
        xs, ys = np.arange(nx, dtype=float), np.arange(ny, dtype=float)
        fast = [list(zip(*(a.tolist() for a in p.cells()), strict=True))
                for p in capacity_search._fill_orders(fits, stencil, HARD_MAX_UNITS_PER_SITE)]
        assert fast == greedy_by_definition(fits, xs, ys, s, HARD_MAX_UNITS_PER_SITE)


def test_a_unit_count_reached_early_stops_the_search():
    """A plot that takes the most units in its first orientation is not searched further."""
    s = CapacitySettings(max_units_per_site=1)
    box = shapely.box(X0, Y0, X0 + 40, Y0 + 30)
    plots = capacity_search._Plots(np.array([box], dtype=object), s)
    frames = []
    original = capacity_batch._Frame

    class Counted(original):
        def __init__(self, *args, **kwargs):
            frames.append(1)
            super().__init__(*args, **kwargs)

    capacity_batch._Frame = Counted
    try:
        units, _ = capacity_batch._layout_convex(plots, np.array([0]), s)
    finally:
        capacity_batch._Frame = original
    assert units.tolist() == [1] and len(frames) == 1
    assert math.isclose(plots.base[0] % 90, 0.0, abs_tol=1e-9)


@pytest.mark.parametrize(("bound", "strict"), [(1e-7, True), (-1e-7, False)])
def test_edge_spans_equal_testing_every_position(bound, strict):
    """Solved thresholds equal the test at every position, also where it is a tie.

    Half of the lines are made to meet the bound at a lattice position, where rounding
    decides: the check after solving must move those thresholds, not trust the solution.
    """
    rng = np.random.default_rng(11)
    n = 4000
    owner = np.arange(n)
    axis = capacity_batch._Axis.between(rng.uniform(-30, 0, n), rng.uniform(1, 40, n),
                                  np.where(rng.random(n) < 0.5, 1.0, rng.uniform(0.3, 2, n)))
    normal = rng.uniform(-1, 1, n)
    normal[:200] = 0.0  # edges along the line: all or none
    normal[200:400] = rng.choice([-1, 1], 200) * 10.0 ** -rng.uniform(4, 12, 200)
    edge_start = rng.uniform(-30, 30, n)
    corner = np.minimum(normal * rng.uniform(5, 9, n), 0.0)
    term = rng.uniform(-40, 40, n)
    tie = rng.random(n) < 0.5
    at = np.minimum((rng.random(n) * axis.count).astype(np.int64), axis.count - 1)
    x = axis.at(owner, at)
    term[tie] = (bound - (normal * (x - edge_start) + corner))[tie]
    tests = capacity_batch._EdgeTests(owner, term, normal, edge_start, corner, axis,
                                np.full(n, 1e-10))
    first, last = tests.spans(bound, strict)
    moved = 0
    for k in range(n):
        i = np.arange(axis.count[k])
        value = term[k] + (normal[k] * (axis.at(np.full(i.size, k), i) - edge_start[k])
                           + corner[k])
        passing = np.flatnonzero(value > bound if strict else value >= bound)
        if passing.size:
            assert (first[k], last[k]) == (passing[0], passing[-1])
            assert passing.size == passing[-1] - passing[0] + 1
        else:
            assert first[k] > last[k]
        if normal[k] and tie[k]:
            solved = (bound - term[k] - corner[k]) / (normal[k] * axis.delta[k]) + (
                edge_start[k] - axis.start[k]) / axis.delta[k]
            guess = math.ceil(solved) if normal[k] > 0 else math.floor(solved)
            moved += guess != (first[k] if normal[k] > 0 else last[k])
    assert moved > 10  # rounding did put solutions one off, and the check moved them
