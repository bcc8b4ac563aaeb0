"""The walking network handed to networkx and osmnx (issue 14.3 and 14.5)."""

from __future__ import annotations

import matplotlib
import networkx as nx
import numpy as np
import pytest

from sitefinder.measure import FEATURE_STEP_M
from sitefinder.network import access_points, plot_access
from sitefinder.routes import walk_graph, walking_routes

ox = pytest.importorskip("osmnx")


@pytest.fixture(scope="module")
def graph(demo_study):
    return walk_graph(demo_study)


def test_graph_round_trips_through_osmnx_gdfs(demo_study, graph):
    net = demo_study.network
    nodes, edges = ox.graph_to_gdfs(graph)
    assert len(nodes) == net.n_nodes
    assert len(edges) == 2 * net.n_edges  # every way segment walkable both ways
    assert nodes.crs == demo_study.crs and edges.crs == demo_study.crs
    np.testing.assert_allclose(nodes.loc[np.arange(net.n_nodes), ["x", "y"]], net.xy)
    # Each edge's drawn line is as long as its length (segments are straight).
    np.testing.assert_allclose(edges.geometry.length, edges["length"], atol=1.5e-3)
    back = ox.graph_from_gdfs(nodes, edges, graph_attrs=graph.graph)
    assert back.number_of_nodes() == graph.number_of_nodes()
    assert back.number_of_edges() == graph.number_of_edges()
    osm = nodes["osm_id"].dropna()
    assert len(osm) > 0.3 * len(nodes) and set(osm.astype("int64")) <= set(net.osm_ids.tolist())


def test_osmnx_shortest_path_follows_the_route(demo_study, graph):
    """osmnx routes from a route's first network node to its last along the same
    length: the route minus its two straight legs."""
    ids = demo_study.plots.loc[demo_study.plots["status"] == "ok", "plot_id"]
    routes = walking_routes(demo_study, ids.sample(6, random_state=2).tolist(), ["transit"])
    net = demo_study.network
    lookup = {tuple(xy): i for i, xy in enumerate(net.xy.tolist())}
    for route in routes.geometry:
        coords = np.asarray(route.coords)
        first, last = lookup[tuple(coords[1])], lookup[tuple(coords[-2])]
        path = ox.routing.shortest_path(graph, first, last, weight="length")
        walked = sum(graph[u][v][0]["length"] for u, v in zip(path[:-1], path[1:], strict=True))
        inner = coords[1:-1]
        network_part = np.hypot(*np.diff(inner, axis=0).T).sum()
        assert walked == pytest.approx(network_part, abs=0.01)


def test_networkx_distances_equal_the_metrics(demo_study, graph):
    """networkx, on the exported graph, from each sampled plot to the nearest grocery
    (plot and shops joined by their legs as sitefinder joins them) gives the metric."""
    study, settings = demo_study, demo_study.scenario.network
    net = study.network
    shop_xy, _ = access_points(study.layers["grocery"].geometry, FEATURE_STEP_M)
    nodes, legs = net.snap(shop_xy, settings.snap_candidates, settings.max_snap_m)
    g = graph.copy()
    for node, leg in zip(nodes.ravel(), legs.ravel(), strict=True):
        if np.isfinite(leg):
            old = g.get_edge_data(int(node), "shops", 0, {"length": np.inf})["length"]
            g.add_edge(int(node), "shops", 0, length=max(min(old, leg), 1e-3))
    plots = study.plots[study.plots["status"] == "ok"].sample(8, random_state=4)
    metrics = study.metrics.loc[plots.index, "dist_grocery_m"]
    access = plot_access(net, plots.geometry, settings)
    for i, expected in enumerate(metrics):
        here = access.owner == i
        for node, leg in zip(access.nodes[here].ravel(), access.legs[here].ravel(),
                             strict=True):
            if np.isfinite(leg):
                old = g.get_edge_data("plot", int(node), 0, {"length": np.inf})["length"]
                g.add_edge("plot", int(node), 0, length=min(old, leg))
        assert nx.shortest_path_length(g, "plot", "shops", weight="length") == \
            pytest.approx(expected, abs=0.01)
        g.remove_node("plot")


def test_osmnx_draws_the_graph(demo_study, graph):
    matplotlib.use("Agg")
    centre = demo_study.network.xy.mean(axis=0)
    near = np.flatnonzero(np.hypot(*(demo_study.network.xy - centre).T) < 300)
    fig, ax = ox.plot_graph(graph.subgraph(near.tolist()).copy(), show=False, close=True)
    assert len(ax.collections) >= 2  # the edges and the nodes were drawn
