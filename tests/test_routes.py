"""Walking routes: the walk the metrics measured, drawn as a line (issue 11.2)."""

from __future__ import annotations

import numpy as np
import pytest
import shapely
from scipy.spatial import cKDTree

from sitefinder.errors import InputError
from sitefinder.measure import FEATURE_STEP_M
from sitefinder.network import access_points, plot_access
from sitefinder.network_distances import distance_field
from sitefinder.routes import ROUTE_CATEGORIES, walking_routes


@pytest.fixture(scope="module")
def sample_ids(demo_study):
    plots = demo_study.plots
    return plots.loc[plots["status"] == "ok", "plot_id"].sample(10, random_state=11).tolist()


@pytest.fixture(scope="module")
def routes(demo_study, sample_ids):
    return walking_routes(demo_study, sample_ids)


def test_route_lengths_are_the_measured_distances(demo_study, routes, sample_ids):
    metrics = demo_study.metrics.join(demo_study.plots["plot_id"]).set_index("plot_id")
    assert set(routes["category"]) == set(ROUTE_CATEGORIES)
    for category in ROUTE_CATEGORIES:
        mine = routes[routes["category"] == category].set_index("plot_id")
        measured = metrics.loc[sample_ids, f"dist_{category}_m"].dropna()
        assert sorted(mine.index) == sorted(measured.index)  # a route wherever a distance
        np.testing.assert_allclose(mine.loc[measured.index, "length_m"], measured, atol=0.01)
        np.testing.assert_allclose(
            mine.loc[measured.index, "minutes"],
            metrics.loc[measured.index, f"time_{category}_min"], atol=1e-4,
        )
        # The line is the walk: its own length is the measured one, to the centimetre.
        np.testing.assert_allclose(mine.geometry.length, mine["length_m"], atol=0.01)


def test_route_starts_at_its_plot_and_ends_at_a_feature_of_its_category(demo_study, routes):
    plots = demo_study.plots.set_index("plot_id")
    net = demo_study.network
    for row in routes.itertuples():
        coords = np.asarray(row.geometry.coords)
        start, end = shapely.Point(coords[0]), shapely.Point(coords[-1])
        assert plots.loc[row.plot_id, "geometry"].boundary.distance(start) < 1e-6
        features = demo_study.layers[row.category]
        near = features.distance(end)
        assert near.min() < 1e-6, (row.plot_id, row.category)
        names = set(features.loc[near < 1e-6, "name"].fillna(""))
        assert row.target_name in names
        # Between the two legs the route runs from network node to network node.
        gap, _ = cKDTree(net.xy).query(coords[1:-1])
        assert gap.max() < 1e-6


def test_routes_follow_the_order_asked_for(demo_study, sample_ids):
    wanted = sample_ids[:3][::-1]
    routes = walking_routes(demo_study, wanted, ["grocery", "transit"])
    assert routes["plot_id"].drop_duplicates().tolist() == wanted
    first = routes[routes["plot_id"] == wanted[0]]
    assert first["category"].tolist() == ["grocery", "transit"]
    assert routes.crs == demo_study.crs


def test_route_goes_to_the_nearest_shop(demo_study, sample_ids):
    """Walking to the shop the route ends at is the route's length; to any other shop it
    is at least as long (each shop measured on its own)."""
    routes = walking_routes(demo_study, sample_ids[:4], ["grocery"])
    net, settings = demo_study.network, demo_study.scenario.network
    shops = demo_study.layers["grocery"].reset_index(drop=True)
    plots = demo_study.plots.set_index("plot_id")
    others = np.random.default_rng(5).choice(len(shops), 6, replace=False)
    for row in routes.itertuples():
        access = plot_access(net, plots.loc[[row.plot_id]].geometry, settings)
        end = shapely.Point(np.asarray(row.geometry.coords)[-1])
        target = int(np.flatnonzero(shops.distance(end) < 1e-6)[0])

        def walk_to(i, access=access):
            xy, _ = access_points(shops.geometry.iloc[[i]], FEATURE_STEP_M)
            return access.read(distance_field(net, xy, settings))[0]

        assert walk_to(target) == pytest.approx(row.length_m, abs=0.01)
        for other in others:
            assert walk_to(other) >= row.length_m - 1e-6


def test_unknown_plot_or_category_is_a_clear_error(demo_study):
    with pytest.raises(InputError, match="no plot 'NOPE'"):
        walking_routes(demo_study, ["NOPE"])
    with pytest.raises(InputError, match="'airport' is not a walking-distance category"):
        walking_routes(demo_study, None, ["airport"])
