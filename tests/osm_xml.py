"""Write small OSM XML files by hand for tests whose expected answers are worked out on paper.

Coordinates are given in metres on a local grid and turned into degrees around a fixed
origin in Oslo (59.91° N, 10.75° E), so a test can state "a house 20 m east of the plot"
and check the measured metric against that number.
"""

from __future__ import annotations

import math
from pathlib import Path

ORIGIN_LAT, ORIGIN_LON = 59.91, 10.75
_M_PER_DEG_LAT = 111_320.0


def lonlat(x: float, y: float) -> tuple[float, float]:
    """Degrees of a point ``x`` metres east and ``y`` metres north of the origin."""
    lat = ORIGIN_LAT + y / _M_PER_DEG_LAT
    lon = ORIGIN_LON + x / (_M_PER_DEG_LAT * math.cos(math.radians(ORIGIN_LAT)))
    return lon, lat


class OsmBuilder:
    """Collects nodes and ways and writes them as a sorted OSM XML file."""

    def __init__(self) -> None:
        self.nodes: list[tuple[int, float, float, dict]] = []
        self.ways: list[tuple[int, list[int], dict]] = []
        self._next_node = 1
        self._next_way = 1

    def node(self, x: float, y: float, **tags: str) -> int:
        """Add a node at (x, y) metres; returns its id."""
        nid = self._next_node
        self._next_node += 1
        lon, lat = lonlat(x, y)
        self.nodes.append((nid, lon, lat, tags))
        return nid

    def way(self, points: list[tuple[float, float]], closed: bool = False, **tags: str) -> int:
        """Add a way through new nodes at ``points``; ``closed`` repeats the first node."""
        refs = [self.node(x, y) for x, y in points]
        if closed:
            refs.append(refs[0])
        return self.way_of(refs, **tags)

    def way_of(self, refs: list[int], **tags: str) -> int:
        """Add a way over existing node ids (which may be missing from the file)."""
        wid = self._next_way
        self._next_way += 1
        self.ways.append((wid, refs, tags))
        return wid

    def write(self, path: Path, drop_nodes: set[int] = frozenset()) -> Path:
        """Write the file; ``drop_nodes`` are left out, as a bounding-box cut does."""
        lines = ['<?xml version="1.0" encoding="UTF-8"?>', '<osm version="0.6">']
        for nid, lon, lat, tags in self.nodes:
            if nid in drop_nodes:
                continue
            if tags:
                lines.append(f'<node id="{nid}" version="1" lat="{lat:.8f}" lon="{lon:.8f}">')
                lines += [f'<tag k="{k}" v="{v}"/>' for k, v in tags.items()]
                lines.append("</node>")
            else:
                lines.append(f'<node id="{nid}" version="1" lat="{lat:.8f}" lon="{lon:.8f}"/>')
        for wid, refs, tags in self.ways:
            lines.append(f'<way id="{wid}" version="1">')
            lines += [f'<nd ref="{r}"/>' for r in refs]
            lines += [f'<tag k="{k}" v="{v}"/>' for k, v in tags.items()]
            lines.append("</way>")
        lines.append("</osm>")
        path.write_text("\n".join(lines), encoding="utf-8")
        return path


def square(x: float, y: float, size: float) -> list[tuple[float, float]]:
    """Corners of a square with lower-left corner (x, y), counter-clockwise."""
    return [(x, y), (x + size, y), (x + size, y + size), (x, y + size)]
