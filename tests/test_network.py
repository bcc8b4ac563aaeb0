"""The walking network on the real Oslo extract, checked against networkx."""

from __future__ import annotations

import geopandas as gpd
import networkx as nx
import numpy as np
import pytest
import shapely
from pyproj import CRS

from sitefinder.layers import extract_layer
from sitefinder.network import access_points, build_walk_network, plot_access, walkable_ways
from sitefinder.network_counts import count_within
from sitefinder.network_distances import distance_field, shortest_path_tree

CRS_LOCAL = CRS.from_epsg(25832)
X0, Y0 = 597_000.0, 6_643_000.0  # central Oslo in EPSG:25832, for synthetic test streets


def _local(geom):
    return shapely.transform(geom, lambda xy: xy + [X0, Y0])


@pytest.fixture(scope="module")
def net(osm_data, scenario):
    return build_walk_network(osm_data.lines, CRS_LOCAL, scenario.network)


def test_network_leaves_out_motorways_and_trunk_roads(osm_data, scenario):
    ways = walkable_ways(osm_data.lines, scenario.network)
    fast = ways["highway"].isin(["motorway", "trunk", "motorway_link", "trunk_link"])
    # Only where OSM explicitly allows walking (foot=yes) may a trunk road be walked.
    assert (ways.loc[fast, "foot"] == "yes").all()
    assert (osm_data.lines["highway"] == "trunk").sum() > 100  # there are many to leave out
    assert ways["highway"].isin(["footway", "steps", "pedestrian", "residential"]).any()


def test_network_is_mostly_one_component(net):
    sizes = np.bincount(net.component)
    assert sizes[net.main_component] > 0.9 * net.n_nodes


def _nx_graph_from_osm(osm_data, scenario):
    """Independent graph: OSM way node sequences, projected, no segment splitting."""
    ways = walkable_ways(osm_data.lines, scenario.network).to_crs(CRS_LOCAL)
    graph = nx.Graph()
    for ids, line in zip(ways["node_ids"], ways.geometry, strict=True):
        coords = np.asarray(line.coords)
        for a, b, p, q in zip(ids[:-1], ids[1:], coords[:-1], coords[1:], strict=True):
            if a == b:
                continue
            w = float(np.hypot(*(p - q)))
            if not graph.has_edge(a, b) or graph[a][b]["weight"] > w:
                graph.add_edge(a, b, weight=w)
    return graph


def test_node_to_node_distances_match_networkx(osm_data, scenario, net):
    from scipy.sparse.csgraph import dijkstra

    graph = _nx_graph_from_osm(osm_data, scenario)
    rng = np.random.default_rng(7)
    main_osm = np.flatnonzero((net.component == net.main_component) & (net.osm_ids >= 0))
    sources = rng.choice(main_osm, 5, replace=False)
    targets = rng.choice(main_osm, 40, replace=False)
    ours = dijkstra(net.graph, directed=False, indices=sources)[:, targets]
    for i, s in enumerate(sources):
        lengths = nx.single_source_dijkstra_path_length(graph, int(net.osm_ids[s]))
        expected = [lengths[int(net.osm_ids[t])] for t in targets]
        np.testing.assert_allclose(ours[i], expected, rtol=1e-9, atol=1e-3)


def test_plot_distances_match_networkx_and_exceed_straight_line(demo_study):
    """Sample of real plots: our distance to the nearest grocery equals an independent
    networkx computation with the same joining rule, and is never below the straight line."""
    study = demo_study
    net, settings = study.network, study.scenario.network
    shops = study.layers["grocery"]
    plots = study.plots[study.plots["status"] == "ok"].sample(12, random_state=3)

    graph = nx.Graph()
    coo = net.graph.tocoo()
    graph.add_weighted_edges_from(
        zip(coo.row.tolist(), coo.col.tolist(), coo.data.tolist(), strict=True)
    )

    # Brute-force joining (no KD-tree): each access point to its k nearest nodes in reach.
    def joins(xy):
        d = np.hypot(xy[:, None, 0] - net.xy[None, :, 0], xy[:, None, 1] - net.xy[None, :, 1])
        k = settings.snap_candidates
        idx = np.argsort(d, axis=1)[:, :k]
        legs = np.take_along_axis(d, idx, axis=1)
        return [(int(n), float(leg)) for row_n, row_l in zip(idx, legs, strict=True)
                for n, leg in zip(row_n, row_l, strict=True) if leg <= settings.max_snap_m]

    shop_xy, _ = access_points(shops.geometry, 25.0)
    source = "shops"
    for node, leg in joins(shop_xy):
        if graph.has_edge(source, node):
            leg = min(leg, graph[source][node]["weight"])
        graph.add_edge(source, node, weight=max(leg, 1e-3))
    graph = graph.to_directed()
    graph.remove_edges_from([(n, source) for n in list(graph.predecessors(source))])
    lengths = nx.single_source_dijkstra_path_length(graph, source)

    field = distance_field(net, shop_xy, settings)
    access = plot_access(net, plots.geometry, settings)
    ours = access.read(field)
    shop_union = shapely.union_all(shops.geometry.to_numpy())
    for i, geom in enumerate(plots.geometry):
        xy, _ = access_points(plots.geometry.iloc[[i]], settings.boundary_step_m)
        expected = min(leg + lengths.get(node, np.inf) for node, leg in joins(xy))
        assert ours[i] == pytest.approx(expected, rel=1e-9, abs=1e-3)
        assert ours[i] >= geom.distance(shop_union) - 1e-6


def test_disconnected_piece_is_unreachable_not_short(scenario):
    """A shop on a footway island must not give a false short distance."""
    import geopandas as gpd

    main = _local(shapely.LineString([(0, 0), (1000, 0)]))
    island = _local(shapely.LineString([(0, 100), (50, 100)]))  # 100 m away, not connected
    lines = gpd.GeoDataFrame(
        {
            "highway": ["footway", "footway"],
            "foot": [None, None],
            "access": [None, None],
            "node_ids": [(1, 2), (3, 4)],
        },
        geometry=gpd.GeoSeries([main, island], crs=CRS_LOCAL).to_crs(4326),
        crs=4326,
    )
    net = build_walk_network(lines, CRS_LOCAL, scenario.network)
    shop_on_island = np.array([[X0 + 25.0, Y0 + 101.0]])
    field = distance_field(net, shop_on_island, scenario.network)
    plot_on_main = gpd.GeoSeries([_local(shapely.box(500, -30, 520, -5))], crs=CRS_LOCAL)
    access = plot_access(net, plot_on_main, scenario.network)
    assert np.isinf(access.read(field)[0])
    # ...while a plot on the island itself reaches it.
    plot_on_island = gpd.GeoSeries([_local(shapely.box(10, 105, 30, 120))], crs=CRS_LOCAL)
    access = plot_access(net, plot_on_island, scenario.network)
    # Legs of 5-9 m each plus at most one 17 m piece of the island path.
    assert 5.0 <= access.read(field)[0] <= 35.0


def test_snapping_uses_plot_boundary_not_centroid(scenario):
    import geopandas as gpd

    street = _local(shapely.LineString([(0, 0), (400, 0)]))
    lines = gpd.GeoDataFrame(
        {"highway": ["residential"], "foot": [None], "access": [None], "node_ids": [(1, 2)]},
        geometry=gpd.GeoSeries([street], crs=CRS_LOCAL).to_crs(4326),
        crs=4326,
    )
    net = build_walk_network(lines, CRS_LOCAL, scenario.network)
    # A 200 m deep plot whose near edge is 5 m from the street: the leg is ~5 m, not ~105 m.
    plot = gpd.GeoSeries([_local(shapely.box(100, 5, 160, 205))], crs=CRS_LOCAL)
    access = plot_access(net, plot, scenario.network)
    assert access.nearest_leg()[0] == pytest.approx(5.0, abs=0.5)
    # Distance along the street to a shop at x=300 from the plot's nearest corner (160, 5).
    field = distance_field(net, np.array([[X0 + 300.0, Y0]]), scenario.network)
    assert access.read(field)[0] == pytest.approx(140 + 5, abs=12)


def test_layer_extraction_on_real_data(osm_data, scenario):
    shops = extract_layer(osm_data, scenario.layers["grocery"], "grocery", CRS_LOCAL)
    assert len(shops) > 100  # SOURCE.txt: 142 supermarkets + 40 convenience
    assert set(shops["kind"]).issubset(
        {"shop=supermarket", "shop=convenience", "shop=grocery", "shop=greengrocer"}
    )
    assert shops.crs == CRS_LOCAL


def test_counts_agree_with_distances_and_with_one_search_per_feature(demo_study):
    study = demo_study
    ranked = study.score(explain=False)
    speed = study.scenario.network.walk_speed_kmh * 1000 / 60
    limit = study.scenario.measure.count_within_min * speed
    for category in ("transit", "grocery", "pharmacy", "health", "meeting", "nature"):
        dist, count = ranked[f"dist_{category}_m"], ranked[f"count_{category}_10min"]
        assert not ((dist <= limit) & (count == 0)).any(), category
        assert not ((dist > limit) & (count > 0)).any(), category
    # Independently: one distance field per pharmacy, counted plot by plot.
    net, settings = study.network, study.scenario.network
    plots = study.plots[study.plots["status"] == "ok"]
    access = plot_access(net, plots.geometry, settings)
    pharmacies = study.layers["pharmacy"]
    within = np.zeros(len(plots), dtype=int)
    for geom in pharmacies.geometry:
        xy, _ = access_points(gpd.GeoSeries([geom], crs=net.crs), 25.0)
        within += access.read(distance_field(net, xy, settings)) <= limit
    ours = ranked.set_index("plot_id").loc[plots["plot_id"], "count_pharmacy_10min"]
    np.testing.assert_array_equal(ours.to_numpy(), within)


@pytest.mark.parametrize("n_plots", [4, 60])
def test_counts_from_either_side_match_one_search_per_feature(demo_study, n_plots):
    """Counting searches from the smaller side: 4 plots (plots searched) and 60 plots
    against 48 pharmacies (pharmacies searched) give the same counts, and weighted sums,
    as one full search per pharmacy."""
    study = demo_study
    net, settings = study.network, study.scenario.network
    limit = 1200.0
    plots = study.plots[study.plots["status"] == "ok"].iloc[:n_plots]
    access = plot_access(net, plots.geometry, settings)
    pharmacies = study.layers["pharmacy"]
    weights = np.arange(1.0, len(pharmacies) + 1)
    within = np.zeros(len(plots), dtype=int)
    weighted = np.zeros(len(plots))
    for w, geom in zip(weights, pharmacies.geometry, strict=True):
        xy, _ = access_points(gpd.GeoSeries([geom], crs=net.crs), 25.0)
        reached = access.read(distance_field(net, xy, settings)) <= limit
        within += reached
        weighted += w * reached
    xy, owner = access_points(pharmacies.geometry, 25.0)
    counts = count_within(net, xy, access, limit, settings, feature_owner=owner)
    np.testing.assert_array_equal(counts, within)
    assert within.max() > 1  # not a trivial comparison
    sums = count_within(net, xy, access, limit, settings, feature_owner=owner, weights=weights)
    np.testing.assert_allclose(sums, weighted)


def test_route_tree_matches_the_distance_field(demo_study):
    """The tree kept for routes has the distances of the field, and its predecessors lead
    every reached node back to a node joined to a feature along edges of the graph."""
    net, settings = demo_study.network, demo_study.scenario.network
    xy, _ = access_points(demo_study.layers["pharmacy"].geometry, 25.0)
    tree = shortest_path_tree(net, xy, settings)
    np.testing.assert_array_equal(tree.dist, distance_field(net, xy, settings))
    reached = np.flatnonzero(np.isfinite(tree.dist))
    entered = tree.predecessor[reached] < 0
    assert (tree.entry[reached[entered]] >= 0).all()
    inner, before = reached[~entered], tree.predecessor[reached[~entered]]
    edge = np.asarray(net.graph[before, inner]).ravel()
    np.testing.assert_allclose(tree.dist[before] + edge, tree.dist[inner], rtol=1e-12)


def test_counts_on_a_ring_of_pass_through_nodes(scenario):
    """A closed footway (every node has two neighbours, so no junction to contract the
    chains to) with a plot and three shops along it: counts equal one search per shop,
    along the ring both ways."""
    import geopandas as gpd

    ring = _local(shapely.LineString([(0, 0), (200, 0), (200, 200), (0, 200), (0, 0)]))
    lines = gpd.GeoDataFrame(
        {"highway": ["footway"], "foot": [None], "access": [None],
         "node_ids": [(1, 2, 3, 4, 1)]},
        geometry=gpd.GeoSeries([ring], crs=CRS_LOCAL).to_crs(4326), crs=4326,
    )
    settings = scenario.network
    net = build_walk_network(lines, CRS_LOCAL, settings)
    assert (np.diff(net.graph.indptr) == 2).all()
    plots = gpd.GeoSeries([_local(shapely.box(20, 5, 40, 25))], crs=CRS_LOCAL)
    access = plot_access(net, plots, settings)
    # Along the ring from the plot (x 20-40 above the bottom side): ~120, ~220, ~355 m.
    shops = np.array([[X0 + 150, Y0 - 3], [X0 - 3, Y0 + 190], [X0 + 203, Y0 + 190]])
    expected = [int((access.read(distance_field(net, shops[[i]], settings)) <= limit)[0])
                for limit in (150.0, 300.0) for i in range(3)]
    got = [int(count_within(net, shops[[i]], access, limit, settings)[0])
           for limit in (150.0, 300.0) for i in range(3)]
    assert got == expected == [1, 0, 0, 1, 1, 0]
    assert count_within(net, shops, access, 300.0, settings)[0] == 2
