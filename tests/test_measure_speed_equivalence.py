"""The fast straight-line and raster code gives what the one-plot-at-a-time code gave.

Issue 12 replaced GEOS's per-plot tree queries (``query_nearest``, ``dwithin``) by one
pass of candidate pairs decided by box bounds (``sitefinder.proximity``), and lexsort in
the raster percentiles by one sort of a packed key. Here the per-plot queries are run
as the reference on the real layers of the bundled Oslo extract, for plots of every
shape the fast paths treat differently: axis-aligned boxes (bounds from a point of the
feature), other polygons, holes, multipolygons, points, plots far outside the extract
(the staged search and its last resort) and plots that are not measured.
"""

from __future__ import annotations

import numpy as np
import pytest
import shapely
import shapely.affinity

from sitefinder.measure import count_near, nearest_distance
from sitefinder.proximity import proximity
from sitefinder.sources.raster import _weighted_percentiles

LAYERS = ("dwellings", "residential_areas", "industrial", "sensitive_neighbours",
          "passersby", "busy_streets")


def _plots(layers, n: int = 600, seed: int = 12) -> tuple[np.ndarray, np.ndarray]:
    """Plots of many shapes around the extract's dwellings, and which are measured."""
    rng = np.random.default_rng(seed)
    x0, y0, x1, y1 = shapely.total_bounds(layers["dwellings"].geometry.to_numpy())
    x = rng.uniform(x0, x1, n)
    y = rng.uniform(y0, y1, n)
    w, h = rng.uniform(5, 80, n), rng.uniform(5, 80, n)
    boxes = shapely.box(x, y, x + w, y + h)
    kind = np.arange(n) % 8
    geoms = boxes.copy()
    geoms[kind == 1] = [shapely.affinity.rotate(b, a) for b, a in
                        zip(boxes[kind == 1], rng.uniform(1, 89, (kind == 1).sum()), strict=True)]
    geoms[kind == 2] = [shapely.Polygon([(a, b), (a + c, b), (a, b + d)]) for a, b, c, d in
                        zip(x[kind == 2], y[kind == 2], w[kind == 2], h[kind == 2], strict=True)]
    geoms[kind == 3] = shapely.points(x[kind == 3], y[kind == 3])
    geoms[kind == 4] = [  # a hole the size of a house
        shapely.box(a, b, a + 60, b + 60).difference(shapely.box(a + 20, b + 20, a + 40, b + 40))
        for a, b in zip(x[kind == 4], y[kind == 4], strict=True)]
    geoms[kind == 5] = [shapely.MultiPolygon([shapely.box(a, b, a + 10, b + 10),
                                              shapely.box(a + 90, b, a + 100, b + 10)])
                        for a, b in zip(x[kind == 5], y[kind == 5], strict=True)]
    # Far outside the extract: nothing within kilometres, the staged search runs out.
    far = kind == 6
    geoms[far] = [shapely.affinity.translate(b, 15_000, -9_000) for b in boxes[far]]
    geoms[:3] = [None, shapely.Polygon(), shapely.box(x0, y0, x0 + 1, y0 + 1)]
    usable = (kind != 7) & ~shapely.is_missing(geoms)
    return geoms, usable


def _reference_nearest(geoms, others, usable):
    result = np.full(len(geoms), np.nan)
    idx = np.flatnonzero(usable)
    pairs, dist = shapely.STRtree(others).query_nearest(
        geoms[idx], return_distance=True, all_matches=False)
    result[idx[pairs[0]]] = dist
    return result


def _reference_count(geoms, others, radius, usable, weights=None):
    result = np.where(usable, 0.0, np.nan)
    idx = np.flatnonzero(usable)
    left, right = shapely.STRtree(others).query(geoms[idx], predicate="dwithin",
                                                distance=radius)
    np.add.at(result, idx[left], 1.0 if weights is None else weights[right])
    return result


@pytest.fixture(scope="module")
def plots_and_layers(demo_study):
    layers = demo_study.layers
    geoms, usable = _plots(layers)
    return geoms, usable, layers


@pytest.mark.parametrize("layer", LAYERS)
def test_nearest_distance_equals_the_per_plot_query(plots_and_layers, layer):
    geoms, usable, layers = plots_and_layers
    others = layers[layer].geometry.to_numpy()
    expected = _reference_nearest(geoms, others, usable)
    found = nearest_distance(geoms, others, usable)
    np.testing.assert_array_equal(found, expected)
    # The search left the layer's features as it found them (not prepared).
    assert not shapely.is_prepared(others).any()
    # Every measured plot with a shape found its nearest feature (an empty one cannot).
    assert np.isfinite(found[usable & ~shapely.is_empty(geoms)]).all()


@pytest.mark.parametrize(("layer", "radius"), [
    ("dwellings", 25), ("dwellings", 50), ("passersby", 150), ("busy_streets", 20),
    ("sensitive_neighbours", 300),
])
def test_counts_equal_the_per_plot_dwithin_query(plots_and_layers, layer, radius):
    geoms, usable, layers = plots_and_layers
    others = layers[layer].geometry.to_numpy()
    weights = np.where(np.arange(len(others)) % 3 == 0, 3.0, 1.0)
    np.testing.assert_array_equal(
        count_near(geoms, others, radius, usable),
        _reference_count(geoms, others, radius, usable))
    np.testing.assert_array_equal(
        count_near(geoms, others, radius, usable, weights),
        _reference_count(geoms, others, radius, usable, weights))


def test_one_pass_gives_nearest_and_every_radius(plots_and_layers):
    """The dwellings pass of buffer_metrics: nearest, 25 m and 50 m from one scan."""
    geoms, usable, layers = plots_and_layers
    dwellings = layers["dwellings"].geometry.to_numpy()
    found = proximity(geoms, dwellings, usable, (25, 50))
    np.testing.assert_array_equal(found.nearest, _reference_nearest(geoms, dwellings, usable))
    for radius in (25, 50):
        np.testing.assert_array_equal(
            found.counts[radius], _reference_count(geoms, dwellings, radius, usable))
    # A box lying on houses is at 0 m and counts them; a plot in the sea counts none.
    assert (found.nearest[usable] == 0).any() and (found.counts[50][usable] == 0).any()


def _lexsort_percentiles(v, w, zone, n_zones, q):
    """The percentile code before issue 12 (lexsort), as the reference."""
    order = np.lexsort((v, zone))
    v, w, zone = v[order], w[order], zone[order]
    out = np.full(n_zones, np.nan)
    for z in np.unique(zone):
        vz, wz = v[zone == z], w[zone == z]
        cum = np.cumsum(wz)
        pos = (cum - wz / 2) / cum[-1]
        out[z] = np.interp(q, pos, vz)
    return out


@pytest.mark.parametrize("values", ["float32 ties and signed zeros", "float64"])
def test_weighted_percentiles_equal_the_lexsort_order(values):
    rng = np.random.default_rng(3)
    n = 5000
    zone = np.sort(rng.integers(0, 300, n))
    if values == "float64":
        v = rng.normal(50, 10, n)  # not float32 values: the general sort
    else:
        v = np.where(rng.random(n) < 0.5, rng.choice([-0.0, 0.0, 55.5, 55.25, -3.0], n),
                     rng.normal(60, 5, n).astype(np.float32).astype(float))
        assert np.array_equal(v.astype(np.float32), v)  # the packed-key sort is used
    w = rng.choice([0.125, 0.5, 1.0], n)
    for q in (0.0, 0.5, 0.9, 1.0):
        found = _weighted_percentiles(v, w, zone, 300, q, np.full(300, np.nan))
        np.testing.assert_allclose(found, _lexsort_percentiles(v, w, zone, 300, q),
                                   rtol=0, atol=1e-9)


def _sorted_cuts(u0, v0, u1, v1, ncols, nrows):
    """The edge cutting before issue 12 (all cuts sorted by edge and t), as the reference."""
    n = len(u0)
    cuts_t, cuts_edge = [np.zeros(n), np.ones(n)], [np.arange(n), np.arange(n)]
    for a, b, size in ((u0, u1, ncols), (v0, v1, nrows)):
        lo = np.maximum(np.floor(np.minimum(a, b)) + 1, 0)
        hi = np.minimum(np.ceil(np.maximum(a, b)) - 1, size)
        count = np.maximum(hi - lo + 1, 0).astype(np.int64)
        edge = np.repeat(np.arange(n), count)
        k = lo[edge] + np.arange(count.sum()) - np.repeat(np.cumsum(count) - count, count)
        cuts_t.append((k - a[edge]) / (b[edge] - a[edge]))
        cuts_edge.append(edge)
    t, edge = np.concatenate(cuts_t), np.concatenate(cuts_edge)
    order = np.lexsort((t, edge))
    t, edge = t[order], edge[order]
    piece = (edge[1:] == edge[:-1]) & (t[1:] > t[:-1])
    return edge[:-1][piece], t[:-1][piece], t[1:][piece]


def test_edges_are_cut_at_pixel_lines_as_a_full_sort_cuts_them():
    """Merging each edge's column and row cuts gives the pieces sorting all cuts gave,
    also for edges through pixel corners and along pixel lines (half-pixel vertices)."""
    from sitefinder.sources.raster import _cut_at_pixel_lines

    rng = np.random.default_rng(7)
    for trial in range(300):
        n = int(rng.integers(1, 40))
        scale = float(rng.choice([0.5, 3.0, 40.0]))
        u0, v0, u1, v1 = rng.uniform(-2, scale + 2, (4, n))
        if trial % 2:
            u0, v0, u1, v1 = (np.round(c * 2) / 2 for c in (u0, v0, u1, v1))
        ncols = rng.integers(1, int(scale) + 3, n)
        nrows = rng.integers(1, int(scale) + 3, n)
        found = _cut_at_pixel_lines(u0, v0, u1, v1, ncols, nrows)
        expected = _sorted_cuts(u0, v0, u1, v1, ncols, nrows)
        for got, want in zip(found, expected, strict=True):
            np.testing.assert_array_equal(got, want)
