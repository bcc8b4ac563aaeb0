"""Which OSM ways are walked on, checked on hand-built OSM files with distances worked out
by hand (not by the code's own filter).

Every file is the same square, 100 m a side, in EPSG:25832 near Tøyen in Oslo::

    A (0, 0) ───── way under test ───── B (100, 0)
    │                                    │
    C (0, -100) ── residential ──────── D (100, -100)

A–C, C–D and D–B are ordinary residential streets, so walking from A to B is 100 m when
the way under test may be walked on and 100 + 100 + 100 = 300 m when it may not.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely
from pyproj import CRS, Transformer
from scipy.sparse.csgraph import dijkstra

from sitefinder.api import Study
from sitefinder.config import default_scenario
from sitefinder.network import build_walk_network
from sitefinder.sources.osm import read_osm

LOCAL = CRS.from_epsg(25832)
X0, Y0 = 599_000.0, 6_643_000.0
SQUARE = {1: (0.0, 0.0), 2: (100.0, 0.0), 3: (0.0, -100.0), 4: (100.0, -100.0)}
A, B = 1, 2
DIRECT, DETOUR = 100.0, 300.0
_TO_LONLAT = Transformer.from_crs(LOCAL, 4326, always_xy=True)


def write_osm(
    path: Path,
    nodes: dict[int, tuple[float, float]],
    ways: list[tuple[int, list[int], dict[str, str]]],
    *,
    node_tags: dict[int, dict[str, str]] | None = None,
    origin: tuple[float, float] = (X0, Y0),
    crs: CRS = LOCAL,
) -> Path:
    """Write a tiny OSM XML file: ``nodes`` in metres from ``origin`` in ``crs``."""
    to_lonlat = Transformer.from_crs(crs, 4326, always_xy=True)
    node_tags = node_tags or {}
    lines = ['<?xml version="1.0" encoding="UTF-8"?>', '<osm version="0.6" generator="test">']
    stamp = 'version="1" timestamp="2024-01-01T00:00:00Z"'
    for nid in sorted(nodes):
        x, y = nodes[nid]
        lon, lat = to_lonlat.transform(origin[0] + x, origin[1] + y)
        tags = "".join(f'<tag k="{k}" v="{v}"/>' for k, v in node_tags.get(nid, {}).items())
        lines.append(f'<node id="{nid}" {stamp} lat="{lat:.9f}" lon="{lon:.9f}">{tags}</node>')
    for wid, refs, tags in sorted(ways, key=lambda w: w[0]):
        body = "".join(f'<nd ref="{r}"/>' for r in refs)
        body += "".join(f'<tag k="{k}" v="{v}"/>' for k, v in tags.items())
        lines.append(f'<way id="{wid}" {stamp}>{body}</way>')
    lines.append("</osm>")
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def square_osm(path: Path, tested: dict[str, str], node_tags=None, extra_nodes=None) -> Path:
    """The square above with ``tested`` as the tags of the direct way A–B."""
    residential = {"highway": "residential"}
    nodes = {**SQUARE, **(extra_nodes or {})}
    ways = [(10, [A, B], tested), (11, [A, 3], residential), (12, [3, 4], residential),
            (13, [4, B], residential)]
    return write_osm(path, nodes, ways, node_tags=node_tags)


# (tags of the direct way, walking distance A -> B in metres, worked out by hand)
CASES = {
    "footway": ({"highway": "footway"}, DIRECT),
    "residential": ({"highway": "residential"}, DIRECT),
    "construction": ({"highway": "construction"}, DETOUR),
    "construction_foot_designated": (
        {"highway": "construction", "construction": "footway", "foot": "designated"}, DETOUR
    ),
    "construction_foot_yes": ({"highway": "construction", "foot": "yes"}, DETOUR),
    "proposed_foot_yes": ({"highway": "proposed", "foot": "yes"}, DETOUR),
    "access_no": ({"highway": "residential", "access": "no"}, DETOUR),
    "access_private": ({"highway": "service", "access": "private"}, DETOUR),
    "access_private_foot_yes": ({"highway": "service", "access": "private", "foot": "yes"},
                                DIRECT),
    "access_no_foot_designated": (
        {"highway": "footway", "access": "no", "foot": "designated"}, DIRECT
    ),
    "access_no_foot_permissive": (
        {"highway": "track", "access": "no", "foot": "permissive"}, DIRECT
    ),
    "access_destination": ({"highway": "residential", "access": "destination"}, DIRECT),
    "foot_no": ({"highway": "footway", "foot": "no"}, DETOUR),
    "foot_private": ({"highway": "path", "foot": "private"}, DETOUR),
    "access_yes_foot_no": ({"highway": "residential", "access": "yes", "foot": "no"}, DETOUR),
    "motorway": ({"highway": "motorway"}, DETOUR),
    "trunk_foot_yes": ({"highway": "trunk", "foot": "yes"}, DIRECT),
}


@pytest.fixture(scope="module")
def settings():
    return default_scenario().network


def _node_distance(net, a: int, b: int) -> float:
    ia = int(np.flatnonzero(net.osm_ids == a)[0])
    ib = int(np.flatnonzero(net.osm_ids == b)[0])
    return float(dijkstra(net.graph, directed=False, indices=ia)[ib])


@pytest.mark.parametrize("case", list(CASES))
def test_walking_distance_follows_foot_and_access_tags(tmp_path, settings, case):
    tags, expected = CASES[case]
    osm = read_osm(square_osm(tmp_path / f"{case}.osm", tags))
    net = build_walk_network(osm.lines, LOCAL, settings)
    assert _node_distance(net, A, B) == pytest.approx(expected, abs=0.05)


def test_square_really_is_100_m_a_side(tmp_path, settings):
    """The hand-worked numbers rest on the geometry: check it independently of the graph."""
    osm = read_osm(square_osm(tmp_path / "plain.osm", {"highway": "footway"}))
    lengths = osm.lines.to_crs(LOCAL).length.round(2).tolist()
    assert lengths == [100.0, 100.0, 100.0, 100.0]


@pytest.mark.parametrize(
    ("case", "expected"),
    [("footway", DIRECT), ("construction_foot_designated", DETOUR), ("access_no", DETOUR),
     ("access_private_foot_yes", DIRECT), ("foot_no", DETOUR)],
)
def test_plot_to_shop_distance_in_a_whole_study(tmp_path, case, expected):
    """End to end: a plot whose corner is A, a supermarket node on B."""
    tags, _ = CASES[case]
    osm = square_osm(
        tmp_path / f"{case}.osm", tags,
        extra_nodes={5: (100.0, 0.0)}, node_tags={5: {"shop": "supermarket", "name": "Butikk"}},
    )
    plots = tmp_path / "plots.gpkg"
    gpd.GeoDataFrame(
        {"plot_id": ["P"]}, geometry=[shapely.box(X0 - 30, Y0, X0, Y0 + 30)], crs=LOCAL
    ).to_file(plots)
    study = Study(plots, osm, layers_dir=tmp_path / "layers", cache_dir=None)
    # The plot's nearest boundary point is A itself, the shop stands on B: the walk is
    # exactly the street distance from A to B.
    assert study.metrics.loc[0, "dist_grocery_m"] == pytest.approx(expected, abs=0.5)
