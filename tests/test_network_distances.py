"""Distances on the contracted network equal a plain Dijkstra over every node (issue 12).

:func:`~sitefinder.network_distances.distance_field` searches only the junctions and spreads the
result along the chains of pass-through nodes. Here, on the real Oslo extract, every
node's distance and every plot's distance must be what one scipy Dijkstra over the whole
graph gives from the same joins: for features and plots on the same chain, at dead ends,
on a piece of network not linked to the rest, beyond the distance limit, and for plots
with no street in reach.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
import shapely
from scipy.sparse import csr_matrix, vstack
from scipy.sparse.csgraph import dijkstra
from scipy.spatial import cKDTree

from sitefinder import network
from sitefinder.network import Joins, access_points, plot_access
from sitefinder.network_distances import distance_field


@pytest.fixture(scope="module")
def net(demo_study):
    return demo_study.network


@pytest.fixture(scope="module")
def settings(demo_study):
    return demo_study.scenario.network


def _joins(net, xy, settings):
    """Each point to its ``snap_candidates`` nearest nodes within reach (own tree)."""
    legs, nodes = cKDTree(net.xy).query(xy, k=settings.snap_candidates,
                                         distance_upper_bound=settings.max_snap_m)
    ok = np.isfinite(legs)
    owner = np.broadcast_to(np.arange(len(xy))[:, None], legs.shape)
    return owner[ok], nodes[ok], legs[ok]


def _plain_field(net, feature_xy, settings, limit):
    """One Dijkstra over the whole graph from a virtual node joined to the features."""
    _, nodes, legs = _joins(net, feature_xy, settings)
    n = net.n_nodes
    row = np.full(n + 1, np.inf)
    np.minimum.at(row, nodes, np.maximum(legs, 1e-3))
    reach = np.flatnonzero(np.isfinite(row))
    source = csr_matrix((row[reach], (np.zeros(len(reach), dtype=int), reach)),
                        shape=(1, n + 1))
    graph = vstack([csr_matrix((net.graph.data, net.graph.indices, net.graph.indptr),
                               shape=(n, n + 1)), source]).tocsr()
    return dijkstra(graph, directed=True, indices=n, limit=limit)[:n]


def _plain_plot_distances(net, plots, field, settings):
    xy, owner = access_points(plots, settings.boundary_step_m)
    sample, nodes, legs = _joins(net, xy, settings)
    out = np.full(len(plots), np.inf)
    np.minimum.at(out, owner[sample], legs + field[nodes])
    return out


def _boxes(xy, rng, crs):
    """Plots of 15-40 m sides a few metres off the given points."""
    corner = xy + rng.uniform(3, 12, size=xy.shape) * rng.choice([-1, 1], size=xy.shape)
    w, h = rng.uniform(15, 40, len(xy)), rng.uniform(15, 40, len(xy))
    return gpd.GeoSeries(shapely.box(corner[:, 0], corner[:, 1], corner[:, 0] + w,
                                     corner[:, 1] + h), crs=crs)


def _long_chains(net, count, rng):
    """Pass-through nodes of ``count`` chains of at least 8 nodes, as (chain, nodes)."""
    chains = net.chains()
    through = np.flatnonzero(chains.core_of < 0)
    sizes = np.bincount(chains.chain[through])
    picked = rng.choice(np.flatnonzero(sizes >= 8), count, replace=False)
    return [(c, through[chains.chain[through] == c]) for c in picked]


def _cases(net, rng):
    """Feature points and plots (as seed points) for each situation tested."""
    degree = np.diff(net.graph.indptr)
    dead_ends = np.flatnonzero(degree == 1)
    # Nodes off the main network whose nearest nodes all lie on their own piece.
    island = np.flatnonzero(net.component != net.main_component)
    _, near = cKDTree(net.xy).query(net.xy[island], k=4)
    island = island[(net.component[near] == net.component[island][:, None]).all(axis=1)]
    scattered = rng.choice(net.n_nodes, 40, replace=False)
    chains = _long_chains(net, 12, rng)
    # Two features and two plots on each of a dozen long chains, at its nodes.
    on_chain = np.concatenate([rng.choice(nodes, 2, replace=False) for _, nodes in chains])
    plots_on_chain = np.concatenate([rng.choice(nodes, 2, replace=False)
                                     for _, nodes in chains])
    return {
        "scattered": (net.xy[scattered] + rng.normal(0, 20, (40, 2)),
                      net.xy[rng.choice(net.n_nodes, 60, replace=False)]),
        "same chains": (net.xy[on_chain], net.xy[plots_on_chain]),
        "dead ends": (net.xy[rng.choice(dead_ends, 30, replace=False)],
                      net.xy[rng.choice(dead_ends, 40, replace=False)]),
        "island": (net.xy[rng.choice(island, 5, replace=False)],
                   net.xy[np.r_[rng.choice(island, 10), rng.choice(net.n_nodes, 10)]]),
        "one feature": (net.xy[rng.choice(net.n_nodes, 1)],
                        net.xy[rng.choice(net.n_nodes, 30, replace=False)]),
    }


@pytest.mark.parametrize("limit", [None, 700.0])
def test_distances_equal_a_plain_dijkstra_over_every_node(net, settings, limit):
    rng = np.random.default_rng(12)
    settings = settings if limit is None else settings.model_copy(
        update={"max_distance_m": limit})
    cases = _cases(net, rng)
    for case, (feature_xy, plot_xy) in cases.items():
        expected = _plain_field(net, feature_xy, settings, settings.max_distance_m)
        field = distance_field(net, feature_xy, settings)
        np.testing.assert_array_equal(np.isinf(field), np.isinf(expected), err_msg=case)
        np.testing.assert_allclose(field, expected, rtol=0, atol=1e-6, err_msg=case)
        plots = _boxes(plot_xy, rng, net.crs)
        ours = plot_access(net, plots, settings).read(field)
        plain = _plain_plot_distances(net, plots, expected, settings)
        np.testing.assert_array_equal(np.isinf(ours), np.isinf(plain), err_msg=case)
        np.testing.assert_allclose(ours, plain, rtol=0, atol=1e-6, err_msg=case)
        assert np.isfinite(ours).any(), case  # not a comparison of nothing
    # Unreachable stays unreachable: features on pieces of network off the main one are
    # not reached from it.
    island_field = distance_field(net, cases["island"][0], settings)
    assert np.isinf(island_field[net.component == net.main_component]).all()
    assert np.isfinite(island_field).any()


def test_a_walk_along_one_chain_is_not_sent_round_its_ends(net, settings):
    """A feature and a plot on the same long chain: the walk between them runs along the
    chain, shorter than any walk through the chain's junctions."""
    chains = net.chains()
    rng = np.random.default_rng(3)
    for _, nodes in _long_chains(net, 5, rng):
        order = np.argsort(chains.off_a[nodes])
        feature, target = nodes[order[2]], nodes[order[-3]]
        field = distance_field(net, net.xy[[feature]], settings)
        along = abs(chains.off_a[target] - chains.off_a[feature])
        via_ends = min(chains.off_a[feature] + chains.off_a[target],
                       chains.off_b[feature] + chains.off_b[target])
        plain = _plain_field(net, net.xy[[feature]], settings, settings.max_distance_m)
        assert field[target] == pytest.approx(plain[target], abs=1e-6)
        assert field[target] <= min(along, via_ends) + 1e-3 + 1e-6


def test_plots_out_of_reach_and_empty_feature_sets(net, settings):
    far = gpd.GeoSeries([shapely.box(0, 0, 20, 20), None], crs=net.crs)  # far off Oslo
    access = plot_access(net, far, settings)
    field = distance_field(net, net.xy[:3], settings)
    assert np.isinf(access.read(field)).all()
    assert np.isinf(distance_field(net, np.zeros((0, 2)), settings)).all()
    # Features with no street within reach give no distance anywhere.
    assert np.isinf(distance_field(net, np.array([[0.0, 0.0]]), settings)).all()


@pytest.mark.parametrize(("cpus", "per_block", "grid_from"), [
    (1, 1_000, 10**9),  # one block, the tree query and numpy's joins
    (4, 500, 1),  # four blocks, each by the compiled grid search and compiled joins
    (3, 500, 10**9),  # three blocks by the tree query
])
def test_joining_many_plots_in_blocks_equals_joining_them_at_once(
    net, settings, monkeypatch, cpus, per_block, grid_from
):
    """2,500 plots are joined in blocks (as many as the CPUs allow) by the tree or the
    compiled grid search: the samples, candidates and joins are those of one plain pass
    over all plots, whatever the machine."""
    monkeypatch.setattr(network, "usable_cpus", lambda: cpus)
    monkeypatch.setattr(network, "_PLOTS_PER_BLOCK", per_block)
    monkeypatch.setattr(network, "_GRID_SNAP", grid_from)
    assert len(network._blocks(2500)) == cpus
    rng = np.random.default_rng(8)
    plots = _boxes(net.xy[rng.choice(net.n_nodes, 2500, replace=False)], rng, net.crs)
    access = plot_access(net, plots, settings)
    xy, owner = access_points(plots, settings.boundary_step_m)
    legs, nodes = cKDTree(net.xy).query(xy, k=settings.snap_candidates,
                                         distance_upper_bound=settings.max_snap_m)
    np.testing.assert_array_equal(access.xy, xy)
    np.testing.assert_array_equal(access.owner, owner)
    np.testing.assert_array_equal(access.nodes, nodes)
    np.testing.assert_array_equal(access.legs, legs)
    plain = Joins.from_candidates(owner, nodes, legs, net.n_nodes + 1)
    for name in ("owner", "node", "leg"):
        np.testing.assert_array_equal(getattr(access.joins(), name), getattr(plain, name))


@pytest.mark.parametrize(("k", "max_dist"), [(4, 250.0), (4, 30.0), (1, 250.0)])
def test_snapping_many_points_gives_exactly_the_tree_query(net, k, max_dist):
    """Many points are snapped by the compiled grid search: its nodes and legs are the
    KD-tree's, including where nodes are equally far (a point halfway along an edge, a
    point on a node that shares its spot with another), where a node is max_dist away
    (kept by the tree when its squared distance is below max_dist², even if the leg
    rounds to max_dist) and far outside the network."""
    rng = np.random.default_rng(21)
    lo, hi = net.xy.min(axis=0), net.xy.max(axis=0)
    coo = net.graph.tocoo()
    edges = rng.choice(len(coo.row), 8000, replace=False)
    angle = rng.uniform(0, 2 * np.pi, 6000)
    points = np.vstack([
        rng.uniform(lo - 1000, hi + 1000, size=(12000, 2)),
        (net.xy[coo.row[edges]] + net.xy[coo.col[edges]]) / 2,  # ties between the ends
        net.xy[rng.choice(net.n_nodes, 4000, replace=False)],
        net.xy[rng.choice(net.n_nodes, 6000)] + max_dist * np.c_[np.cos(angle), np.sin(angle)],
        [[0.0, 0.0], [lo[0] - 5000, hi[1] + 5000]],
    ])
    assert len(points) >= network._GRID_SNAP  # the grid search, not the tree, runs
    nodes, legs = net.snap(points, k, max_dist)
    tree_legs, tree_nodes = cKDTree(net.xy).query(points, k=k, distance_upper_bound=max_dist)
    np.testing.assert_array_equal(nodes, np.asarray(tree_nodes).reshape(len(points), k))
    np.testing.assert_array_equal(legs, np.asarray(tree_legs).reshape(len(points), k))


@pytest.mark.parametrize("k", [1, 4, 8])
def test_grid_search_keeps_a_node_at_max_dist_where_the_tree_does(k):
    """Points on circles of radius max_dist round nodes, in small coordinates where the
    rounding shows: the tree keeps a node whose squared distance is below max_dist² (its
    leg may then round to max_dist), and so must the grid search."""
    rng = np.random.default_rng(k)
    xy = rng.uniform(0, 2000, size=(3000, 2))
    max_dist = 37.0
    angle = rng.uniform(0, 2 * np.pi, 20000)
    points = xy[rng.integers(0, len(xy), 20000)] + max_dist * np.c_[np.cos(angle),
                                                                     np.sin(angle)]
    tree = cKDTree(xy)
    nodes, legs = network._NodeGrid.of(xy).nearest(points, k, max_dist, tree)
    tree_legs, tree_nodes = tree.query(points, k=k, distance_upper_bound=max_dist)
    np.testing.assert_array_equal(nodes, np.asarray(tree_nodes).reshape(len(points), k))
    np.testing.assert_array_equal(legs, np.asarray(tree_legs).reshape(len(points), k))
    assert (legs == max_dist).any()  # the case in question does occur


def test_a_closed_outline_is_sampled_once_round(net):
    """A 20 × 10 m plot at 10 m steps: its six boundary points, the first not repeated."""
    box = gpd.GeoSeries([shapely.box(0, 0, 20, 10)], crs=net.crs)
    xy, owner = access_points(box, 10.0)
    assert len(xy) == 6 == len(np.unique(xy, axis=0))
    assert (owner == 0).all()
