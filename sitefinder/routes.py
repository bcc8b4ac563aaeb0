"""Walking routes to the nearest services, and the walking network for networkx/osmnx.

The distances in the metrics come from one shortest-path tree per category (see
:mod:`sitefinder.network`). This module keeps that tree's predecessors and follows them
back from a plot, so the map and the report can draw the walk that was measured, and
hands the network itself to networkx and osmnx.

>>> from sitefinder.routes import walk_graph, walking_routes   # doctest: +SKIP
>>> routes = walking_routes(study, ["OSL-076"])                 # doctest: +SKIP
>>> G = walk_graph(study); osmnx.plot_graph(G)                  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from sitefinder.config import network_categories
from sitefinder.errors import InputError
from sitefinder.measure import FEATURE_STEP_M
from sitefinder.network import PlotAccess, access_points, plot_access
from sitefinder.network_distances import PathTree, shortest_path_tree
from sitefinder.sources.plots import STATUS_OK

if TYPE_CHECKING:
    import networkx as nx

    from sitefinder.api import Study

#: The services a resident walks to most: what the maps and the report draw routes to.
ROUTE_CATEGORIES: tuple[str, ...] = ("transit", "grocery", "pharmacy", "health")

_COLUMNS = ["plot_id", "category", "target_name", "length_m", "minutes"]


def walking_routes(
    study: Study,
    plot_ids: Iterable[str] | None = None,
    categories: Sequence[str] = ROUTE_CATEGORIES,
) -> gpd.GeoDataFrame:
    """The walk from each plot to the nearest feature of each category, as lines.

    The route is the shortest path the metrics measured: from the point of the plot's
    outline where the walk starts, straight to the network, along the network, and
    straight from the network to the feature's outline (or point).

    Parameters
    ----------
    study : Study
        A measured (or measurable) study.
    plot_ids : iterable of str, optional
        Plots to route from (default: every plot with status ``ok`` before measuring).
    categories : sequence of str
        Walking-distance categories of the scenario (default: transit, grocery, pharmacy,
        health).

    Returns
    -------
    GeoDataFrame
        One row per (plot, category) with a feature within reach (``max_distance_m``),
        in the order of ``plot_ids`` then ``categories``: ``plot_id``, ``category``,
        ``target_name`` (the feature's ``name``, ``""`` when it has none), ``length_m``,
        ``minutes`` (at the scenario's walking speed, as ``time_<cat>_min``) and a
        LineString in the study's CRS. Plots that reach nothing get no row.

        ``length_m`` is exactly the ``dist_<cat>_m`` of the metrics: the plot's leg,
        the network edges and the feature's leg, added up as the shortest-path search
        added them. The line's own ``length`` is the same walk measured on its
        coordinates and agrees to well under a centimetre; it can only be shorter, by a
        millimetre for each piece of zero length the search counts as 1 mm (two OSM
        nodes on the same spot, a plot corner exactly on a node).

    Raises
    ------
    InputError
        A plot id the study does not have, or a category the scenario does not measure.
    """
    plots = _chosen_plots(study, plot_ids)
    _check_categories(study, categories)
    net, settings = study.network, study.scenario.network
    speed = settings.walk_speed_kmh * 1000 / 60  # metres per minute, as the metrics
    access = plot_access(net, plots.geometry, settings)
    frames = []
    for category in categories:
        features = study.layers[category]
        feature_xy, owner = access_points(features.geometry, FEATURE_STEP_M)
        tree = shortest_path_tree(net, feature_xy, settings)
        routes = _routes_in_tree(net.xy, access, tree, feature_xy)
        names = features["name"].fillna("").astype(str).to_numpy() if "name" in features \
            else np.full(len(features), "", dtype=object)
        frames.append(pd.DataFrame({
            "order": routes["plot"],
            "plot_id": plots["plot_id"].to_numpy()[routes["plot"]],
            "category": category,
            "target_name": names[owner[routes["point"]]] if len(routes) else [],
            "length_m": routes["length"],
            "minutes": routes["length"] / speed,
            "geometry": routes["line"],
        }))
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=["order", *_COLUMNS, "geometry"]
    )
    # Rows grouped by plot (in the order asked for), categories in the order asked for.
    table = table.sort_values("order", kind="stable").drop(columns="order")
    return gpd.GeoDataFrame(table.reset_index(drop=True), geometry="geometry", crs=study.crs)


def _chosen_plots(study: Study, plot_ids: Iterable[str] | None) -> gpd.GeoDataFrame:
    """The study's measurable plots, those asked for in the order asked for."""
    plots = study.plots
    ok = plots[plots["status"] == STATUS_OK]
    if plot_ids is None:
        return ok
    wanted = [str(p) for p in plot_ids]
    ids = plots["plot_id"].astype(str)
    unknown = [p for p in wanted if p not in set(ids)]
    if unknown:
        raise InputError(
            f"there is no plot '{unknown[0]}'",
            where=f"walking routes (plots: {study.plots_path})",
            hint=f"Use a plot_id of the study, e.g. {', '.join(ids.head(3))}",
        )
    position = pd.Series(np.arange(len(ok)), index=ok["plot_id"].astype(str))
    # A plot that could not be measured (empty or invalid geometry) has no route.
    return ok.iloc[[position[p] for p in wanted if p in position.index]]


def _check_categories(study: Study, categories: Sequence[str]) -> None:
    known = network_categories(study.scenario.layers)
    for category in categories:
        if category not in known:
            raise InputError(
                f"'{category}' is not a walking-distance category",
                where=f"walking routes, scenario '{study.scenario.name}'",
                hint=f"Use one of: {', '.join(known)}",
            )


def _routes_in_tree(
    node_xy: np.ndarray, access: PlotAccess, tree: PathTree, feature_xy: np.ndarray
) -> pd.DataFrame:
    """Per plot that reaches a feature: its route line, length and the feature point.

    Returns
    -------
    DataFrame
        ``plot`` (position in the plots given to ``access``), ``length``, ``point``
        (index into ``feature_xy``), ``line`` (shapely LineString).
    """
    sample, start, total = access.best(tree.dist)
    plot = np.flatnonzero(start >= 0)
    if not len(plot):
        return pd.DataFrame({"plot": [], "length": [], "point": [], "line": []})
    steps = _follow(tree.predecessor, start[plot])  # (longest path, routes), -1 past the end
    valid = steps >= 0
    n_nodes = valid.sum(axis=0)
    last = steps[n_nodes - 1, np.arange(len(plot))]
    point = tree.entry[last]
    # Coordinates route by route: the plot's access sample, the nodes, the feature point.
    route_of_node = np.broadcast_to(np.arange(len(plot)), steps.shape).T[valid.T]
    node_xy_seq = node_xy[steps.T[valid.T]]
    coords = np.concatenate([
        access.xy[sample[plot]], node_xy_seq, feature_xy[point]
    ])
    route = np.concatenate([np.arange(len(plot)), route_of_node, np.arange(len(plot))])
    rank = np.concatenate([np.zeros(len(plot)), np.ones(len(route_of_node)),
                           np.full(len(plot), 2.0)])
    order = np.lexsort((rank, route))  # stable: nodes keep their path order
    lines = shapely.linestrings(coords[order], indices=route[order])
    return pd.DataFrame({"plot": plot, "length": total[plot], "point": point, "line": lines})


def _follow(predecessor: np.ndarray, start: np.ndarray) -> np.ndarray:
    """Nodes from ``start`` back to where each path entered the network, all at once.

    Returns an array (steps, len(start)); a column ends with ``-1`` after its last node.
    """
    path = [start]
    current = start
    while (current >= 0).any():
        current = np.where(current >= 0, predecessor[np.maximum(current, 0)], -1)
        path.append(current)
    return np.vstack(path[:-1])


def walk_graph(study: Study) -> nx.MultiDiGraph:
    """The walking network as a networkx graph in osmnx's conventions.

    Nodes are numbered as in :class:`~sitefinder.network.WalkNetwork` (``0 … n-1``) with
    attributes ``x``, ``y`` (study CRS) and ``osm_id`` (the OSM node id; ``None`` for the
    points sitefinder adds when it splits long segments). Every walkable way segment is
    an edge in both directions (key 0) with ``length`` in metres, the length the metrics
    use. ``G.graph["crs"]`` is the study's CRS, so ``osmnx.plot_graph``,
    ``osmnx.routing.shortest_path`` and ``osmnx.graph_to_gdfs`` work on it, and shortest
    path lengths by ``length`` are sitefinder's network distances.

    Parameters
    ----------
    study : Study

    Returns
    -------
    networkx.MultiDiGraph
    """
    import networkx as nx

    net = study.network
    graph = nx.MultiDiGraph(crs=study.crs, created_with="sitefinder", simplified=False)
    osm = [int(i) if i >= 0 else None for i in net.osm_ids.tolist()]
    graph.add_nodes_from(
        (i, {"x": x, "y": y, "osm_id": o})
        for i, (x, y, o) in enumerate(zip(net.xy[:, 0].tolist(), net.xy[:, 1].tolist(), osm,
                                          strict=True))
    )
    coo = net.graph.tocoo()  # symmetric: each way segment is stored in both directions
    graph.add_edges_from(
        (u, v, 0, {"length": w, "oneway": False})
        for u, v, w in zip(coo.row.tolist(), coo.col.tolist(), coo.data.tolist(), strict=True)
    )
    return graph
