"""The sea inside an OSM extract, from its ``natural=coastline`` ways.

OpenStreetMap draws no polygon for the sea: the coastline ways are the edge, with the land
on their left and the water on their right. The OSM reader of sitefinder keeps no
coastline lines (they are no street, rail or river), so this module reads them itself in
one quick pass. The extract's rectangle is split along the coastline; each piece is sea
when the points just right of the coastline segments that border it clearly outnumber the
points just left of them. A coastline broken inside the extract (a piece that is both) is
called land: cells there are then judged on their other data, never silently lost.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import shapely
from pyproj import CRS

#: A coastline end this close to the extract's edge is carried on to the edge (the way
#: was cut there by the extract).
_EDGE_REACH_M = 500.0
#: Share of votes a piece needs to be called sea.
_SEA_MAJORITY = 0.8


def coastline_lines(osm_path: str | Path) -> list[list[tuple[float, float]]]:
    """Runs of located coastline nodes (lon, lat) in the extract, in way order."""
    import osmium

    runs: list[list[tuple[float, float]]] = []
    reader = osmium.FileProcessor(str(osm_path), osmium.osm.NODE | osmium.osm.WAY)
    reader = reader.with_locations().with_filter(osmium.filter.TagFilter(("natural", "coastline")))
    for obj in reader:
        if not obj.is_way():
            continue
        run: list[tuple[float, float]] = []
        for node in obj.nodes:
            if node.location.valid():
                run.append((node.location.lon, node.location.lat))
            else:
                if len(run) >= 2:
                    runs.append(run)
                run = []
        if len(run) >= 2:
            runs.append(run)
    return runs


def sea_polygons(
    osm_path: str | Path, crs: CRS, extent_lonlat: tuple[float, float, float, float]
) -> np.ndarray:
    """Polygons of sea inside the extract's extent, in ``crs`` (empty when none).

    Parameters
    ----------
    osm_path : str or Path
        The OSM extract.
    crs : CRS
        Local metric CRS.
    extent_lonlat : tuple
        The extract's bounding box (west, south, east, north) in degrees.
    """
    runs = coastline_lines(osm_path)
    if not runs:
        return np.array([], dtype=object)
    lines = gpd.GeoSeries([shapely.LineString(r) for r in runs], crs=4326).to_crs(crs)
    frame = gpd.GeoSeries([shapely.box(*extent_lonlat)], crs=4326).to_crs(crs).iloc[0]
    lines = [_reach_edge(line, frame) for line in lines]
    noded = shapely.union_all([*lines, frame.boundary])
    faces = np.array(shapely.get_parts(shapely.polygonize(shapely.get_parts(noded))))
    faces = faces[shapely.within(shapely.point_on_surface(faces), frame)] if len(faces) else faces
    if not len(faces):
        return np.array([], dtype=object)
    water, land = _side_votes(lines, faces)
    total = water + land
    sea = (total > 0) & (water >= _SEA_MAJORITY * np.maximum(total, 1))
    return faces[sea]


def _reach_edge(line: shapely.LineString, frame: shapely.Polygon) -> shapely.LineString:
    """Carry a coastline end that stops short of the extract's edge on to the edge."""
    coords = np.asarray(line.coords)
    boundary = frame.boundary
    for end, before in ((0, 1), (-1, -2)):
        tip = coords[end]
        gap = boundary.distance(shapely.Point(tip))
        if gap < 0.01 or gap > _EDGE_REACH_M or len(coords) < 2:
            continue
        direction = tip - coords[before]
        norm = np.hypot(*direction)
        if norm == 0:
            continue
        ray = shapely.LineString([tip, tip + direction / norm * (_EDGE_REACH_M * 2)])
        hit = ray.intersection(boundary)
        if hit.is_empty:
            continue
        nearest = min(shapely.get_parts(hit), key=lambda p: p.distance(shapely.Point(tip)))
        point = np.asarray(nearest.coords[0])
        coords = np.vstack([point, coords]) if end == 0 else np.vstack([coords, point])
    return shapely.LineString(coords)


def _side_votes(lines: list, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per face, how many coastline segments have it on their right (water) and left."""
    starts, ends = [], []
    for line in lines:
        xy = np.asarray(line.coords)
        starts.append(xy[:-1])
        ends.append(xy[1:])
    a, b = np.concatenate(starts), np.concatenate(ends)
    d = b - a
    length = np.hypot(d[:, 0], d[:, 1])
    ok = length > 0.2
    a, d, length = a[ok], d[ok], length[ok]
    mid = a + d / 2
    right = np.column_stack([d[:, 1], -d[:, 0]]) / length[:, None] * 0.1
    tree = shapely.STRtree(faces)
    water = np.zeros(len(faces), dtype=np.int64)
    land = np.zeros(len(faces), dtype=np.int64)
    for counts, offset in ((water, right), (land, -right)):
        _, hit = tree.query(shapely.points(mid + offset), predicate="within")
        np.add.at(counts, hit, 1)
    return water, land
