"""Cut an OSM extract to one area plus a buffer, streaming, for one batch partition.

A partition of ``sitefinder batch`` must not hold the whole extract in memory: the file is
streamed three or four times with pyosmium and only the ids of what is kept are held,
never objects or locations:

1. nodes: the ids of nodes inside the buffered area (a bounding-box test per node, then one
   vectorised point-in-polygon test per block of candidates);
2. ways and relations: every way with a node inside is kept *whole* (all its nodes, also
   those outside, so a street leaving the area keeps its true length), and every
   multipolygon relation with a kept member, with all its member ways completed from the
   file, so a forest or park reaching into the area is assembled whole;
3. the kept nodes, ways and relations are written to a new ``.osm.pbf``.

The buffer is the scenario's largest search distance (:func:`search_buffer_m`), so every
walking route, count and exposure radius of a plot inside the area finds the same features
in the cut as in the whole extract.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import shapely

from sitefinder.config import Scenario

#: Nodes tested against the polygon at once (bounded memory, vectorised test).
_BLOCK = 200_000

#: Relation types the OSM reader assembles into areas; other relations (routes, the
#: national border) would drag in far more than the area needs.
_AREA_RELATIONS = ("multipolygon", "boundary")


@dataclass(frozen=True)
class ClipResult:
    """What :func:`clip_osm` wrote.

    Attributes
    ----------
    path : Path
        The cut ``.osm.pbf``.
    nodes_inside : int
        Nodes of the extract inside the buffered area (0: the area is outside the extract).
    nodes, ways, relations : int
        Objects written (ways whole, with their nodes outside the buffer).
    size_bytes : int
        Size of the cut file.
    """

    path: Path
    nodes_inside: int
    nodes: int
    ways: int
    relations: int
    size_bytes: int


def search_buffer_m(scenario: Scenario) -> float:
    """The largest distance from a plot at which OSM data can change its metrics, in metres.

    The maximum of: the walking search limit plus the snapping distance (features and plots
    join the network up to ``max_snap_m`` from it); the counting and transit-frequency
    walks (minutes × walking speed, plus snapping); the passers-by radius and frontage;
    the noise proxy's source distance; the largest threshold on a straight-line distance
    (:func:`_straight_line_reach`).

    Parameters
    ----------
    scenario : Scenario

    Returns
    -------
    float
        Buffer in metres.
    """
    net = scenario.network
    metres_per_min = net.walk_speed_kmh * 1000 / 60
    measure = scenario.measure
    minutes = [measure.count_within_min]
    if measure.transit_frequency is not None:
        minutes.append(float(getattr(measure.transit_frequency, "within_min", 0) or 0))
    reach = [net.max_distance_m + net.max_snap_m,
             max(minutes) * metres_per_min + net.max_snap_m]
    if measure.exposure is not None:
        reach.append(measure.exposure.radius_m + measure.exposure.frontage_m)
    if measure.noise is not None:
        reach.append(float(getattr(measure.noise, "max_distance_m", 0) or 0))
    reach.append(_straight_line_reach(scenario))
    return float(max(reach))


def _straight_line_reach(scenario: Scenario) -> float:
    """The largest threshold of a criterion or exclusion on a straight-line distance.

    Nearest-feature distances (``dwelling_dist_m``, ``industrial_dist_m`` …) have no search
    limit: beyond the buffer the cut may find no feature, or a farther one. Their value
    functions are flat beyond their largest threshold, so with the buffer at least that
    wide, values, exclusions and scores are those of the whole extract.
    """
    numbers: list[float] = [0.0]
    for criterion in scenario.criteria.values():
        if _straight_line(criterion.metric):
            numbers.extend(_numbers(criterion.value.model_dump()))
    for exclusion in scenario.exclusions:
        if _straight_line(exclusion.metric):
            numbers.extend(v for v in (exclusion.below, exclusion.above) if v is not None)
    return max(numbers)


def _straight_line(metric: str) -> bool:
    return metric.endswith("_dist_m") and not metric.startswith("dist_")


def _numbers(value) -> list[float]:
    if isinstance(value, bool):
        return []
    if isinstance(value, int | float):
        return [float(value)]
    if isinstance(value, dict):
        return [n for v in value.values() for n in _numbers(v)]
    if isinstance(value, list | tuple):
        return [n for v in value for n in _numbers(v)]
    return []


def buffered_area(area_4326: shapely.Geometry, buffer_m: float) -> shapely.Geometry:
    """``area_4326`` (lon/lat) grown by ``buffer_m`` metres, back in lon/lat."""
    import geopandas as gpd

    series = gpd.GeoSeries([area_4326], crs=4326)
    utm = series.estimate_utm_crs()
    return series.to_crs(utm).buffer(buffer_m, resolution=8).to_crs(4326).iloc[0]


def clip_osm(src: str | Path, area_4326: shapely.Geometry, dest: str | Path) -> ClipResult:
    """Write the part of ``src`` inside ``area_4326`` (lon/lat) to ``dest``, streaming.

    Parameters
    ----------
    src : str or Path
        The whole extract (.osm.pbf or OSM XML).
    area_4326 : shapely geometry
        The area, already buffered (:func:`buffered_area`), in lon/lat.
    dest : str or Path
        The ``.osm.pbf`` to write (replaced when it exists).

    Returns
    -------
    ClipResult
    """
    dest = Path(dest)
    dest.unlink(missing_ok=True)
    # Plain sets of the kept ids: their memory grows with the area, not with the id range
    # of the whole extract (osmium's dense id sets take ~1.5 GB for Norway's node ids).
    inside = set(_nodes_inside(str(src), area_4326).tolist())
    keep = _Kept(nodes=set(inside))
    if inside:
        member_ways = _ways_and_relations(str(src), inside, keep)
        if member_ways:
            _member_ways(str(src), member_ways, keep)
    counts = _write(str(src), keep, dest)
    return ClipResult(dest, len(inside), *counts, size_bytes=dest.stat().st_size)


@dataclass
class _Kept:
    """Ids of the objects to write."""

    nodes: set[int]
    ways: set[int] = field(default_factory=set)
    relations: set[int] = field(default_factory=set)


def _nodes_inside(src: str, area: shapely.Geometry) -> np.ndarray:
    """Ids of the nodes of ``src`` inside ``area``, tested block by block."""
    import osmium

    shapely.prepare(area)
    minx, miny, maxx, maxy = area.bounds
    found: list[np.ndarray] = []
    ids: list[int] = []
    xs: list[float] = []
    ys: list[float] = []
    for node in osmium.FileProcessor(src, osmium.osm.NODE):
        loc = node.location
        if not loc.valid():
            continue
        x, y = loc.lon, loc.lat
        if minx <= x <= maxx and miny <= y <= maxy:
            ids.append(node.id)
            xs.append(x)
            ys.append(y)
            if len(ids) >= _BLOCK:
                found.append(_in_polygon(area, ids, xs, ys))
                ids, xs, ys = [], [], []
    found.append(_in_polygon(area, ids, xs, ys))
    return np.concatenate(found)


def _in_polygon(area: shapely.Geometry, ids: list[int], xs: list[float],
                ys: list[float]) -> np.ndarray:
    if not ids:
        return np.empty(0, dtype=np.int64)
    mask = shapely.contains_xy(area, np.asarray(xs), np.asarray(ys))
    # On the boundary counts as inside: contains_xy is strict.
    mask |= shapely.intersects_xy(area.boundary, np.asarray(xs), np.asarray(ys))
    return np.asarray(ids, dtype=np.int64)[mask]


def _ways_and_relations(src: str, inside: set[int], keep: _Kept) -> set[int]:
    """Keep the ways touching ``inside`` (whole) and the area relations touching those.

    Returns the member ways of kept relations that are not kept yet (to add whole).
    """
    import osmium

    members: set[int] = set()
    for obj in osmium.FileProcessor(src, osmium.osm.WAY | osmium.osm.RELATION):
        if obj.is_way():
            refs = [n.ref for n in obj.nodes]
            # Only nodes inside decide: the outside nodes of a kept way must not pull in
            # the next way that merely touches them (the cut would grow along streets).
            if not inside.isdisjoint(refs):
                keep.ways.add(obj.id)
                keep.nodes.update(refs)
        elif obj.tags.get("type") in _AREA_RELATIONS and _touches(obj, inside, keep.ways):
            keep.relations.add(obj.id)
            members.update(m.ref for m in obj.members if m.type == "w")
    return members - keep.ways


def _touches(relation, inside: set[int], ways: set[int]) -> bool:
    return any((m.type == "w" and m.ref in ways) or (m.type == "n" and m.ref in inside)
               for m in relation.members)


def _member_ways(src: str, member_ways: set[int], keep: _Kept) -> None:
    """Add the member ways of kept multipolygons whole, so their rings close."""
    import osmium

    for way in osmium.FileProcessor(src, osmium.osm.WAY):
        if way.id in member_ways:
            keep.ways.add(way.id)
            keep.nodes.update(n.ref for n in way.nodes)


def _write(src: str, keep: _Kept, dest: Path) -> tuple[int, int, int]:
    import osmium

    counts = {"n": 0, "w": 0, "r": 0}
    wanted = {"n": keep.nodes, "w": keep.ways, "r": keep.relations}
    writer = osmium.SimpleWriter(str(dest))
    try:
        for obj in osmium.FileProcessor(src):
            kind = obj.type_str()
            if obj.id in wanted[kind]:
                writer.add(obj)
                counts[kind] += 1
    finally:
        writer.close()
    return counts["n"], counts["w"], counts["r"]
