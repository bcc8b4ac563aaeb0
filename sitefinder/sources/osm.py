"""Read OpenStreetMap extracts (``.osm.pbf``, ``.osm``, ``.osm.bz2``) fully offline.

The reader uses pyosmium and keeps only what the thematic layers and the walking
network need; objects without a kept key are dropped inside pyosmium, before Python sees
them (reading the bundled Oslo extract: 3.9 s before, 2.0 s with that).

It copes with plain bounding-box cuts, which is what users download:
such files have ways whose node references point outside the file. Those ways are
cut into runs of located nodes (a run of fewer than two nodes is dropped). A closed way
that is an area (a park, a building, residential land use) and lost some nodes at the
edge is kept: its located nodes, in ring order, are closed with straight lines along the
cut, which keeps the part of the area inside the extract. Multipolygon relations whose
rings cannot be closed are not assembled. All of these are counted in
:attr:`OsmData.stats` (``areas_clipped``, ``multipolygons_dropped``) so a user can see
how much of the edge of the extract was affected.

Optional download from Overpass (osmnx's endpoint setting when osmnx is installed) lives in
:func:`download_osm`; nothing else in the package needs the network.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from sitefinder.errors import InputError

#: OSM keys kept as columns. Everything the tag → layer mapping and the network use
#: must be listed here (``sitefinder.layers`` checks its configuration against it).
KEPT_KEYS: tuple[str, ...] = (
    "name",
    "highway",
    "railway",
    "amenity",
    "shop",
    "healthcare",
    "leisure",
    "landuse",
    "natural",
    "building",
    "public_transport",
    "office",
    "social_facility",
    "tourism",
    "boundary",
    "admin_level",
    "foot",
    "access",
    "area",
    "service",
    "maxspeed",
    "water",
    "waterway",
    "bus",
    "tram",
    "subway",
    "train",
    "lanes",
    "tunnel",
    "man_made",
    "oneway",
    "covered",
    "layer",
    "place",
    "addr:housenumber",
    "social_facility:for",
    "harm_reduction",
)

# Ways with these keys are linear features (network, rail, rivers) even when closed.
_LINEAR_KEYS = ("highway", "railway", "waterway")

SUPPORTED_SUFFIXES = (".osm.pbf", ".pbf", ".osm", ".osm.bz2", ".osm.gz", ".o5m")


@dataclass
class OsmData:
    """Features read from one OSM file, in EPSG:4326.

    Attributes
    ----------
    points : GeoDataFrame
        Tagged nodes (only nodes with at least one kept key other than ``name``).
    lines : GeoDataFrame
        Ways with a ``highway``, ``railway`` or ``waterway`` tag, as LineStrings of
        located nodes; column ``node_ids`` holds the OSM node ids of the vertices.
    areas : GeoDataFrame
        Polygons from closed ways and multipolygon relations with a kept key.
    path : Path
        The file read.
    sha256 : str
        Checksum of the file, used to key caches and in the run manifest.
    stats : dict
        Counts of what was kept and what had to be cut or dropped: ``ways`` (ways with a
        kept key), ``ways_cut``, ``ways_dropped``, ``areas_clipped``,
        ``multipolygons_dropped``, ``points``, ``lines``, ``areas``. Untagged nodes and
        ways never reach Python, so they are not counted.
    newest : str
        Date (ISO) of the most recently edited way with a kept key: how current the
        extract is.
    """

    points: gpd.GeoDataFrame
    lines: gpd.GeoDataFrame
    areas: gpd.GeoDataFrame
    path: Path
    sha256: str
    stats: dict[str, int] = field(default_factory=dict)
    newest: str = ""

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """Bounding box (minx, miny, maxx, maxy) in degrees of everything read."""
        frames = [f for f in (self.lines, self.points, self.areas) if len(f)]
        if not frames:
            return (0.0, 0.0, 0.0, 0.0)
        b = pd.DataFrame([f.total_bounds for f in frames])
        return (b[0].min(), b[1].min(), b[2].max(), b[3].max())


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file, read in chunks.

    Remembered per path, size and modification time: a run asks for the checksum of the
    same OSM extract and layer files several times (cache key, layer bookkeeping, manifest).
    """
    stat = Path(path).stat()
    return _sha256_of(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)


@lru_cache(maxsize=256)
def _sha256_of(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


_KEPT = frozenset(KEPT_KEYS)
# Objects with none of these keys are dropped in C++ before Python sees them (a name
# alone does not make a feature).
_FILTER_KEYS = tuple(k for k in KEPT_KEYS if k != "name")
# OSM's fixed-point coordinates: degrees times this (libosmium's coordinate precision).
_PRECISION = 1e7


def _tag_record(tags) -> dict[str, str]:
    """The kept tags of an object (a sparse record: absent keys are left out)."""
    return {tag.k: tag.v for tag in tags if tag.k in _KEPT}


def _located_runs(nodes) -> list[tuple[list[int], list[tuple[float, float]]]]:
    """Split a way's node list into runs of nodes that have a location in the file."""
    runs: list[tuple[list[int], list[tuple[float, float]]]] = []
    ids: list[int] = []
    coords: list[tuple[float, float]] = []
    for nref in nodes:
        loc = nref.location
        if loc.valid():
            ids.append(nref.ref)
            coords.append((loc.lon, loc.lat))
        else:
            if len(ids) >= 2:
                runs.append((ids, coords))
            ids, coords = [], []
    if len(ids) >= 2:
        runs.append((ids, coords))
    return runs


def _clipped_area(nodes) -> shapely.Geometry | None:
    """Polygon of a closed way from its located nodes only (cut at the extract's edge).

    The missing stretches are replaced by straight lines between the last and the next
    located node; for a bounding-box cut those lie along the cut, so the result is the
    part of the area inside the extract.
    """
    coords = [(n.location.lon, n.location.lat) for n in nodes if n.location.valid()]
    if len(coords) < 3:
        return None
    geom = shapely.make_valid(shapely.Polygon(coords))
    polygons = [g for g in shapely.get_parts(geom) if g.geom_type == "Polygon" and g.area > 0]
    if not polygons:
        return None
    return polygons[0] if len(polygons) == 1 else shapely.MultiPolygon(polygons)


def _is_area_way(tags: dict[str, str]) -> bool:
    """A closed way is an area unless it is a linear feature (streets, rail, rivers)."""
    if tags.get("area") == "no":
        return False
    if any(k in tags for k in _LINEAR_KEYS):
        return tags.get("area") == "yes"
    return any(k in tags for k in _FILTER_KEYS)


@dataclass
class _Collected:
    """What the pass over the file keeps, as plain lists (frames are built at the end)."""

    point_ids: list[int] = field(default_factory=list)
    point_xy: list[tuple[float, float]] = field(default_factory=list)
    point_tags: list[dict] = field(default_factory=list)
    line_ids: list[int] = field(default_factory=list)
    line_nodes: list[tuple[int, ...]] = field(default_factory=list)
    line_coords: list[list[tuple[float, float]]] = field(default_factory=list)
    line_tags: list[dict] = field(default_factory=list)
    area_types: list[str] = field(default_factory=list)
    area_ids: list[int] = field(default_factory=list)
    area_geoms: list = field(default_factory=list)  # hex WKB or shapely geometries
    area_tags: list[dict] = field(default_factory=list)
    stats: dict[str, int] = field(default_factory=lambda: {
        "ways": 0, "ways_cut": 0, "ways_dropped": 0, "areas_clipped": 0,
        "multipolygons": 0, "multipolygons_assembled": 0,
    })
    newest: str = ""


def _collect(path: Path) -> _Collected:
    """One pass over the file: tagged nodes, linear ways, areas, and the edge statistics.

    Work per object is kept in C++ where pyosmium allows it: objects without a kept key
    never reach Python, node tags and coordinates come from pyosmium's GeoJSON filter, and
    area geometries are WKB made by osmium (turned into shapely in one call at the end).
    """
    import osmium
    import osmium.geom

    nodes_as_features = osmium.filter.GeoInterfaceFilter(tags=list(KEPT_KEYS))
    nodes_as_features.enable_for(osmium.osm.NODE)
    processor = (
        osmium.FileProcessor(str(path)).with_locations().with_areas()
        .with_filter(osmium.filter.KeyFilter(*_FILTER_KEYS))
        .with_filter(nodes_as_features)
    )
    wkb = osmium.geom.WKBFactory()
    out = _Collected()
    stats = out.stats
    for obj in processor:
        if obj.is_node():
            feature = obj.__geo_interface__
            out.point_ids.append(obj.id)
            out.point_xy.append(feature["geometry"]["coordinates"])
            out.point_tags.append(feature["properties"])
        elif obj.is_way():
            _collect_way(obj, out)
        elif obj.is_relation():
            if obj.tags.get("type") in ("multipolygon", "boundary"):
                stats["multipolygons"] += 1
        elif obj.is_area():
            tags = _tag_record(obj.tags)
            # Closed highways are lines unless explicitly areas (pedestrian squares).
            if obj.from_way() and "highway" in tags and tags.get("area") != "yes":
                continue
            try:
                geom = wkb.create_multipolygon(obj)
            except (RuntimeError, osmium.InvalidLocationError):
                continue  # a ring osmium cannot build: nothing usable to keep
            if not obj.from_way():
                stats["multipolygons_assembled"] += 1
            out.area_types.append("way" if obj.from_way() else "relation")
            out.area_ids.append(obj.orig_id())
            out.area_geoms.append(geom)
            out.area_tags.append(tags)
    return out


def _collect_way(way, out: _Collected) -> None:
    """Keep a way's clipped area (when cut at the edge) and its located runs (when linear)."""
    stats = out.stats
    stats["ways"] += 1
    if way.timestamp is not None and way.timestamp.year > 1970:
        out.newest = max(out.newest, way.timestamp.date().isoformat())
    tags = _tag_record(way.tags)
    nodes = way.nodes
    linear = any(k in tags for k in _LINEAR_KEYS)
    area = len(nodes) >= 4 and nodes[0].ref == nodes[-1].ref and _is_area_way(tags)
    if not (linear or area):
        return
    refs = [(n.ref, n.x, n.y) for n in nodes]
    # Osmium's test of a location: in the file (not undefined) and within the globe's range.
    located = all(-_MAX_X <= x <= _MAX_X and -_MAX_Y <= y <= _MAX_Y for _, x, y in refs)
    if area and not located:
        # The area assembler skips rings with missing nodes: keep the part
        # inside the extract instead of losing the park or building.
        geom = _clipped_area(nodes)
        if geom is not None:
            stats["areas_clipped"] += 1
            out.area_types.append("way")
            out.area_ids.append(way.id)
            out.area_geoms.append(geom)
            out.area_tags.append(tags)
    if not linear:
        return
    if located:
        runs = [(tuple(r[0] for r in refs),
                 [(x / _PRECISION, y / _PRECISION) for _, x, y in refs])] if len(refs) >= 2 else []
    else:
        runs = [(tuple(ids), coords) for ids, coords in _located_runs(nodes)]
    if not runs:
        stats["ways_dropped"] += 1
        return
    if len(runs) > 1 or len(runs[0][0]) != len(nodes):
        stats["ways_cut"] += 1
    for ids, coords in runs:
        out.line_ids.append(way.id)
        out.line_nodes.append(ids)
        out.line_coords.append(coords)
        out.line_tags.append(tags)


def read_osm(path: str | Path) -> OsmData:
    """Read an OSM extract into points, lines and areas.

    Parameters
    ----------
    path : str or Path
        ``.osm.pbf``, ``.osm`` (XML, optionally ``.bz2``/``.gz`` compressed) or ``.o5m``.

    Returns
    -------
    OsmData
        Points, lines and areas in EPSG:4326 with one column per kept key.

    Raises
    ------
    InputError
        When the file is missing, has an unknown suffix, cannot be parsed or holds no
        ways with a kept tag at all.
    """
    path = Path(path)
    if not path.exists():
        raise InputError(
            "the OpenStreetMap file does not exist",
            path=path,
            hint="Check the path given with --osm (or `osm:` in the scenario), or download an "
            "extract for your municipality (.osm.pbf) from an OSM extract service",
        )
    name = path.name.lower()
    if not name.endswith(SUPPORTED_SUFFIXES):
        raise InputError(
            f"unknown OpenStreetMap file type '{path.suffix}'",
            path=path,
            hint="Use an .osm.pbf file, or OSM XML (.osm, .osm.bz2, .osm.gz)",
        )
    try:
        found = _collect(path)
    except RuntimeError as exc:  # osmium reports parse errors as RuntimeError
        if "out of order" in str(exc):
            raise InputError(
                f"the OpenStreetMap file is not sorted by type and id ({exc})",
                path=path,
                hint="Sort it first, e.g. `osmium sort in.osm -o sorted.osm.pbf` (osmium-tool), "
                "then pass the sorted file",
            ) from exc
        raise InputError(
            f"the OpenStreetMap file could not be read ({exc})",
            path=path,
            hint="Check that it is a complete .osm.pbf or OSM XML file (re-download it if "
            "it was truncated)",
        ) from exc

    stats = found.stats
    if stats["ways"] == 0:
        raise InputError(
            "the OpenStreetMap file holds no ways (no streets, paths or buildings)",
            path=path,
            hint="Use an extract that covers the area of the candidate plots",
        )
    stats["multipolygons_dropped"] = max(
        0, stats.pop("multipolygons") - stats.pop("multipolygons_assembled")
    )
    points = _frame(
        found.point_tags, ["node"] * len(found.point_ids), found.point_ids,
        shapely.points(np.asarray(found.point_xy, dtype=float).reshape(-1, 2)),
    )
    lines = _frame(found.line_tags, ["way"] * len(found.line_ids), found.line_ids,
                   _linestrings(found.line_coords))
    lines.insert(len(lines.columns) - 1, "node_ids", found.line_nodes)
    areas = _frame(found.area_tags, found.area_types, found.area_ids,
                   _area_geometries(found.area_geoms))
    keep = ~areas.geometry.is_empty
    areas = areas.loc[keep].reset_index(drop=True) if not keep.all() else areas
    stats.update(points=len(points), lines=len(lines), areas=len(areas))
    return OsmData(
        points=points, lines=lines, areas=areas, path=path, sha256=file_sha256(path),
        stats=stats, newest=found.newest,
    )


# The largest valid fixed-point x and y (180° and 90° times the precision): libosmium's
# Location.valid() range; a node missing from the file has x = y = 2^31 - 1, outside it.
_MAX_X, _MAX_Y = 1_800_000_000, 900_000_000


def _linestrings(coords: list[list[tuple[float, float]]]) -> np.ndarray:
    """LineStrings from lists of vertices, in one vectorised call."""
    if not coords:
        return np.empty(0, dtype=object)
    sizes = np.fromiter((len(c) for c in coords), dtype=np.int64, count=len(coords))
    xy = np.fromiter((v for c in coords for xy in c for v in xy), dtype=float,
                     count=2 * int(sizes.sum())).reshape(-1, 2)
    return shapely.linestrings(xy, indices=np.repeat(np.arange(len(coords)), sizes))


def _area_geometries(geoms: list) -> np.ndarray:
    """Shapely areas from osmium's WKB (and clipped polygons already in shapely).

    One polygon stays a Polygon; an invalid ring (a bow-tie drawn by a mapper) is
    repaired with ``make_valid``.
    """
    out = np.empty(len(geoms), dtype=object)
    is_wkb = np.fromiter((isinstance(g, str) for g in geoms), dtype=bool, count=len(geoms))
    if is_wkb.any():
        parsed = shapely.from_wkb(np.array([g for g in geoms if isinstance(g, str)],
                                           dtype=object))
        single = shapely.get_num_geometries(parsed) == 1
        parsed[single] = shapely.get_geometry(parsed[single], 0)
        invalid = ~shapely.is_valid(parsed)
        if invalid.any():
            parsed[invalid] = shapely.make_valid(parsed[invalid])
        out[is_wkb] = parsed
    for i in np.flatnonzero(~is_wkb):
        out[i] = geoms[i]
    return out


def _frame(
    tags: list[dict], osm_types: list[str], ids: list[int], geometry: np.ndarray
) -> gpd.GeoDataFrame:
    """A frame with ``osm_type``, ``osm_id``, one column per kept key (None where absent)."""
    values: dict[str, list] = {key: [None] * len(tags) for key in KEPT_KEYS}
    for row, record in enumerate(tags):  # sparse: touches only the tags present
        for key, value in record.items():
            values[key][row] = value
    # Inferred like a frame made from records: text columns, or object when all absent.
    columns = {key: pd.Series(values[key]) for key in KEPT_KEYS}
    frame = pd.DataFrame({
        "osm_type": pd.Series(osm_types, dtype=object),
        "osm_id": pd.Series(ids, dtype=np.int64),
        **columns,
    })
    return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(geometry, crs="EPSG:4326"))


#: Public Overpass endpoint used when osmnx is not installed to say otherwise.
OVERPASS_URL = "https://overpass-api.de/api"


def download_osm(
    bbox: tuple[float, float, float, float],
    out_path: str | Path,
    *,
    overpass_url: str | None = None,
    timeout_s: int = 300,
) -> Path:  # pragma: no cover - needs the internet, which tests never use
    """Download all OSM data in ``bbox`` from Overpass and save it as an ``.osm`` file.

    An optional convenience for users who are online; everything else reads the saved
    file offline. The file holds every node, way and relation in the box with the nodes
    of its ways (so it is referentially complete), sorted as pyosmium needs.

    Parameters
    ----------
    bbox : tuple of float
        West, south, east, north in degrees (keep it to a municipality: Overpass refuses
        very large areas).
    out_path : str or Path
        Where to write the OSM XML file.
    overpass_url : str, optional
        Overpass API base URL; default osmnx's setting when osmnx is installed, else
        the public overpass-api.de.
    timeout_s : int
        Server-side time limit of the query.

    Returns
    -------
    Path
        ``out_path``.
    """
    import urllib.error
    import urllib.parse
    import urllib.request

    west, south, east, north = bbox
    if not (-180 <= west < east <= 180 and -90 <= south < north <= 90):
        raise InputError(
            f"the bounding box {bbox} is not west, south, east, north in degrees",
            where="bbox",
            hint="Give it as e.g. 10.72,59.90,10.78,59.94",
        )
    if overpass_url is None:
        try:
            import osmnx as ox

            overpass_url = ox.settings.overpass_url
        except ImportError:
            overpass_url = OVERPASS_URL
    query = (
        f"[out:xml][timeout:{timeout_s}];"
        f"(nwr({south},{west},{north},{east}););(._;>;);out body;"
    )
    data = urllib.parse.urlencode({"data": query}).encode()
    out_path = Path(out_path)
    try:
        with urllib.request.urlopen(
            f"{overpass_url.rstrip('/')}/interpreter", data=data, timeout=timeout_s + 60
        ) as response, open(out_path, "wb") as f:
            while block := response.read(1 << 20):
                f.write(block)
    except (urllib.error.URLError, TimeoutError) as exc:
        raise InputError(
            f"could not download from {overpass_url} ({exc})",
            hint="Check the internet connection, or download an .osm.pbf extract for your "
            "municipality from an extract service and pass it with --osm",
        ) from None
    return out_path
