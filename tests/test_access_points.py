"""Access points of outlines (sitefinder.network.access_points) against GEOS.

Polygon outlines are densified by compiled code from their coordinates rather than by
``shapely.segmentize(shapely.boundary(...))``; the points must be those GEOS makes, to
the bit, because every distance and count is measured from them. Other geometries
(points, lines, missing ones) still go through GEOS, and a mix of kinds must give what
GEOS gives for each.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely
import shapely.affinity

from sitefinder.network import access_points


def geos_access_points(arr: np.ndarray, step: float) -> tuple[np.ndarray, np.ndarray]:
    """Boundaries densified by GEOS; an outline's closing point (equal to its first) left out."""
    polygonal = np.isin(shapely.get_type_id(arr), [3, 6])
    outline = arr.copy()
    outline[polygonal] = shapely.boundary(arr[polygonal])
    xy, owner = shapely.get_coordinates(shapely.segmentize(outline, step), return_index=True)
    keep = np.ones(len(owner), dtype=bool)
    for plot in np.unique(owner):
        rows = np.flatnonzero(owner == plot)
        if len(rows) > 1 and (xy[rows[-1]] == xy[rows[0]]).all():
            keep[rows[-1]] = False
    return xy[keep], owner[keep]


def shapes(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Outlines of the kinds plots come in, at UTM-sized coordinates."""
    n = 300
    x, y = rng.uniform(590_000, 600_000, n), rng.uniform(6_640_000, 6_650_000, n)
    w, h = rng.uniform(5, 90, n), rng.uniform(5, 90, n)
    boxes = shapely.box(x, y, x + w, y + h)
    rotated = np.array([shapely.affinity.rotate(b, a) for b, a in
                        zip(boxes, rng.uniform(0, 90, n), strict=True)], dtype=object)
    circles = shapely.buffer(shapely.points(x, y), rng.uniform(0.5, 60, n))
    holes = shapely.difference(rotated, shapely.buffer(shapely.centroid(rotated), 2.0))
    multi = np.array([shapely.MultiPolygon([a, b]) for a, b in
                      zip(holes[: n // 2], rotated[n // 2 :], strict=True)], dtype=object)
    odd = np.array([
        # Repeated vertices, a sliver, an empty polygon.
        shapely.Polygon([(0, 0), (0, 0), (30, 0), (30, 0), (30, 25), (0, 25), (0, 0)]),
        shapely.Polygon([(0, 0), (100, 0), (100, 1e-9), (0, 0)]),
        shapely.Polygon(),
    ], dtype=object)
    return {
        "boxes": boxes, "rotated": rotated, "circles": circles, "holes": holes,
        "multipolygons": multi, "polygons of every kind": np.concatenate(
            [multi[:40], boxes[:40], holes[:40], odd]),
        "with points, lines and missing": np.array(
            [shapely.Point(1, 2), boxes[0], shapely.LineString([(0, 0), (100, 3)]), None,
             multi[0], holes[1]], dtype=object),
    }


@pytest.mark.parametrize("step", [10.0, 3.7, 0.9, 250.0])
def test_polygon_outlines_are_sampled_exactly_as_geos_does(step):
    rng = np.random.default_rng(int(step * 10))
    for name, arr in shapes(rng).items():
        xy, owner = access_points(gpd.GeoSeries(arr), step)
        want_xy, want_owner = geos_access_points(arr, step)
        np.testing.assert_array_equal(owner, want_owner, err_msg=name)
        np.testing.assert_array_equal(xy, want_xy, err_msg=name)
        if name == "boxes":  # not a trivial comparison: sides longer than a step were cut
            corners = 4 * len(arr)
            assert len(xy) == corners if step > 100 else len(xy) > corners


def test_densified_points_are_at_most_one_step_apart_and_on_the_outline():
    box = shapely.box(597_000, 6_643_000, 597_043, 6_643_017)
    xy, owner = access_points(gpd.GeoSeries([box]), 10.0)
    ring = np.vstack([xy, xy[:1]])
    gaps = np.hypot(*np.diff(ring, axis=0).T)
    assert gaps.max() <= 10.0 + 1e-9
    assert shapely.distance(shapely.points(xy), box.exterior).max() < 1e-6
    # 43 m sides in 5 parts, 17 m sides in 2: 14 points, the closing one left out.
    assert len(xy) == 14 and (owner == 0).all()


@pytest.mark.parametrize(("odd_x", "step"), [
    (np.inf, 10.0), (np.nan, 10.0),
    (30.0, 2.0**-60),  # more parts than GEOS cuts a segment in
    (30.0, np.nan),
])
@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # shapely's, of NaN coordinates
def test_outlines_geos_cannot_densify_fail_or_pass_as_in_geos(odd_x, step):
    """Where the compiled sampling cannot follow GEOS (coordinates or step not finite,
    a segment cut in billions of parts) GEOS itself is asked: the same points or the
    same error, never a crash of the process."""
    odd = shapely.Polygon([(0, 0), (30, 0), (odd_x, 10), (0, 25), (0, 0)])
    arr = np.array([odd, shapely.box(0, 0, 20, 10)], dtype=object)
    try:
        want = geos_access_points(arr, step)
    except shapely.errors.GEOSException:
        with pytest.raises(shapely.errors.GEOSException):
            access_points(gpd.GeoSeries(arr), step)
    else:
        xy, owner = access_points(gpd.GeoSeries(arr), step)
        np.testing.assert_array_equal(owner, want[1])
        np.testing.assert_array_equal(xy, want[0])
