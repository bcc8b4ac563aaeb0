"""Counts within N minutes (sitefinder.network_counts) against brute force on the real
Oslo network.

The brute force knows nothing of contracted chains, buckets or bounded searches: one
scipy Dijkstra per feature over the whole network (81k nodes), from a node of its own
joined to the nodes its access points snap to, and per plot the least of leg + distance
over every candidate node of every sample of its outline. Counts must equal it exactly,
from either side (few plots: searched from the plots; many: from the features), for
plots and features on the same stretch of street, and for weighted counts.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from pyproj import CRS
from scipy.sparse import csr_matrix, vstack
from scipy.sparse.csgraph import dijkstra

from sitefinder.network import _EPS, build_walk_network, plot_access
from sitefinder.network_counts import count_within

CRS_LOCAL = CRS.from_epsg(25832)


@pytest.fixture(scope="module")
def net(osm_data, scenario):
    return build_walk_network(osm_data.lines, CRS_LOCAL, scenario.network)


@pytest.fixture(scope="module")
def settings(scenario):
    return scenario.network


def brute_force(net, settings, feature_xy, owner, access, limit):
    """(features, plots) table of walking distances, by full-network Dijkstra."""
    n, n_features = net.n_nodes, int(owner.max()) + 1
    nodes, legs = net.snap(feature_xy, settings.snap_candidates, settings.max_snap_m)
    rows = pd.DataFrame({"feature": np.repeat(owner, nodes.shape[1]),
                         "node": nodes.ravel(), "leg": np.maximum(legs.ravel(), _EPS)})
    # One edge per (feature, node), the shortest: a sparse matrix would add duplicates.
    rows = rows[np.isfinite(rows["leg"])].groupby(["feature", "node"])["leg"].min()
    feature, node = (rows.index.get_level_values(i).to_numpy() for i in (0, 1))
    virtual = csr_matrix((rows.to_numpy(), (feature, node)), shape=(n_features, n + n_features))
    graph = vstack([csr_matrix(net.graph, shape=(n, n + n_features)), virtual]).tocsr()
    dist = dijkstra(graph, directed=True, indices=n + np.arange(n_features),
                    limit=limit)[:, :n]
    padded = np.hstack([dist, np.full((n_features, 1), np.inf)])  # node n: no candidate
    per_sample = (padded[:, access.nodes] + access.legs[None]).min(axis=2)
    table = np.full((n_features, access.n_plots), np.inf)
    for plot in range(access.n_plots):
        samples = access.owner == plot
        if samples.any():
            table[:, plot] = per_sample[:, samples].min(axis=1)
    return table


def random_plots(net, n, rng):
    """Boxes of 20-60 m, 15-40 m off random network nodes."""
    xy = net.xy[rng.choice(net.n_nodes, n, replace=False)]
    xy = xy + rng.uniform(15, 40, size=(n, 2)) * rng.choice([-1, 1], size=(n, 2))
    w, h = rng.uniform(20, 60, n), rng.uniform(20, 60, n)
    return gpd.GeoSeries(shapely.box(xy[:, 0], xy[:, 1], xy[:, 0] + w, xy[:, 1] + h),
                         crs=net.crs)


def random_features(net, n, rng):
    """n features of 1-3 access points within 60 m of a random node; (xy, owner)."""
    points = rng.integers(1, 4, n)
    owner = np.repeat(np.arange(n), points)
    centre = net.xy[rng.choice(net.n_nodes, n, replace=False)]
    xy = centre[owner] + rng.uniform(-30, 30, size=(len(owner), 2))
    return xy, owner


@pytest.mark.parametrize("n_plots", [6, 120])
def test_counts_and_weighted_sums_equal_brute_force(net, settings, n_plots):
    """6 plots (searched from the plots) and 120 plots (searched from the 40 features)
    against 40 random features, 600 m: the counts and weighted sums of brute force."""
    rng = np.random.default_rng(n_plots)
    plots = random_plots(net, n_plots, rng)
    access = plot_access(net, plots, settings)
    xy, owner = random_features(net, 40, rng)
    limit = 600.0
    within = brute_force(net, settings, xy, owner, access, limit) <= limit
    counts = count_within(net, xy, access, limit, settings, feature_owner=owner)
    np.testing.assert_array_equal(counts, within.sum(axis=0))
    assert counts.dtype.kind == "i"
    weights = rng.uniform(0.5, 12.0, 40)
    sums = count_within(net, xy, access, limit, settings, feature_owner=owner,
                        weights=weights)
    np.testing.assert_allclose(sums, weights @ within, rtol=1e-12)
    # Not a trivial comparison: plots with different numbers of features in reach.
    assert counts.max() > 1 and len(set(counts)) > 2


def test_plots_and_features_on_one_chain_are_counted_along_it(net, settings):
    """A plot and features beside the middle of long chains of pass-through nodes, with a
    limit shorter than the way to either end of the chain: only the walk along the
    chain reaches them, and the counts still equal brute force."""
    rng = np.random.default_rng(7)
    chains = net.chains()
    through = np.flatnonzero(chains.chain >= 0)
    length = chains.off_a[through] + chains.off_b[through]
    middle = through[(length > 240) & (np.abs(chains.off_a[through] - length / 2) < 10)]
    middle = middle[np.unique(chains.chain[middle], return_index=True)[1]][:30]
    assert len(middle) >= 20
    # A 6 m square plot 4 m off the middle node; three shops along the same chain.
    centre = net.xy[middle] + [4.0, 0.0]
    plots = gpd.GeoSeries(shapely.box(*(centre - 3).T, *(centre + 3).T), crs=net.crs)
    access = plot_access(net, plots, settings)
    same_chain = chains.chain[through]
    xy, owner = [], []
    for i, node in enumerate(middle):
        members = through[same_chain == chains.chain[node]]
        away = np.abs(chains.off_a[members] - chains.off_a[node])
        picks = members[(away > 10) & (away < 50)]
        picks = rng.choice(picks, min(3, len(picks)), replace=False)
        xy.append(net.xy[picks] + [0.0, 3.0])
        owner += [i] * len(picks)
    xy, owner = np.vstack(xy), np.asarray(owner)
    limit = 70.0
    within = brute_force(net, settings, xy, owner, access, limit) <= limit
    counts = count_within(net, xy, access, limit, settings, feature_owner=owner)
    np.testing.assert_array_equal(counts, within.sum(axis=0))
    # The along-chain walk is what counts here: plots whose joins within the limit are
    # all to pass-through nodes farther than the limit from both ends of their chain
    # (a walk from them cannot leave the chain) reach features.
    joins = access.joins()
    joins = joins.subset(joins.leg <= limit)
    to_end = np.minimum(chains.off_a, chains.off_b)[joins.node]  # NaN at junctions
    only_chain = np.array([np.all(to_end[joins.owner == p] > limit)
                           for p in range(len(middle))])
    assert (counts[only_chain] > 0).sum() >= 5


def test_no_features_or_plots_out_of_reach_give_zeros(net, settings):
    """No features, or plots beyond the network's snapping distance: zeros, not errors."""
    rng = np.random.default_rng(3)
    plots = random_plots(net, 5, rng)
    far = gpd.GeoSeries([shapely.box(0, 0, 10, 10)], crs=net.crs)  # far from Oslo
    access = plot_access(net, pd.concat([plots, far], ignore_index=True), settings)
    xy, owner = random_features(net, 3, rng)
    counts = count_within(net, xy, access, 600.0, settings, feature_owner=owner)
    assert counts[-1] == 0 and counts.dtype.kind == "i"
    np.testing.assert_array_equal(
        count_within(net, np.zeros((0, 2)), access, 600.0, settings), np.zeros(6))


def test_bucket_search_gives_dijkstras_distances_exactly(net):
    """The compiled search (buckets, nodes expanded again when bettered) gives scipy's
    Dijkstra distances bit for bit on the contracted Oslo network, from sources joined
    at two or three nodes each, and a queue that runs out of room says so instead of
    returning part of them."""
    from sitefinder.network_counts import _Graph, _search, _space

    chains = net.chains()
    graph, c = _Graph.of(chains), chains.n_nodes
    rng = np.random.default_rng(11)
    limit = 900.0
    space = _space(c, limit, len(graph.indices) + 64)
    for _ in range(15):
        nodes = rng.choice(c, rng.integers(2, 4), replace=False)
        legs = rng.uniform(0.0, 30.0, len(nodes))
        # scipy: a source node of its own with an edge as long as the leg to each node.
        source = csr_matrix((legs, (np.zeros(len(nodes), dtype=int), nodes)),
                            shape=(1, c + 1))
        augmented = vstack([csr_matrix(chains.graph, shape=(c, c + 1)), source]).tocsr()
        expected = dijkstra(augmented, directed=True, indices=c, limit=limit)[:c]
        n = _search(*graph.arrays(), nodes, legs, limit, space)
        got = np.full(c, np.inf)
        np.minimum.at(got, space[5][:n], space[6][:n])
        np.testing.assert_array_equal(got, expected)
        assert np.isfinite(got).sum() > 100
    tiny = _space(c, limit, 4)
    assert _search(*graph.arrays(), nodes, legs, limit, tiny) == -1
    assert np.isinf(tiny[0]).all() and (tiny[1] == -1).all()  # clean for the next search
