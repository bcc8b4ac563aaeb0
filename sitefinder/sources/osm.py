"""Read OpenStreetMap extracts (``.osm.pbf``, ``.osm``, ``.osm.bz2``) fully offline.

The reader uses pyosmium and keeps only what the thematic layers and the walking
network need. It copes with plain bounding-box cuts, which is what users download:
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
        Counts of what was read and what had to be cut or dropped.
    newest : str
        Date (ISO) of the most recently edited way: how current the extract is.
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


def _tag_record(tags) -> dict[str, str | None]:
    return {k: tags.get(k) for k in KEPT_KEYS}


def _has_kept_tag(tags) -> bool:
    return any(k in tags for k in KEPT_KEYS if k != "name")


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


def _area_polygon(area) -> shapely.MultiPolygon | None:
    polygons = []
    for outer in area.outer_rings():
        shell = [(n.lon, n.lat) for n in outer]
        holes = [[(n.lon, n.lat) for n in inner] for inner in area.inner_rings(outer)]
        if len(shell) >= 4:
            polygons.append(shapely.Polygon(shell, holes))
    if not polygons:
        return None
    geom = shapely.MultiPolygon(polygons) if len(polygons) > 1 else polygons[0]
    if not geom.is_valid:
        geom = shapely.make_valid(geom)
    return geom


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


def _is_area_way(tags) -> bool:
    """A closed way is an area unless it is a linear feature (streets, rail, rivers)."""
    if tags.get("area") == "no":
        return False
    if any(k in tags for k in _LINEAR_KEYS):
        return tags.get("area") == "yes"
    return _has_kept_tag(tags)


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
        ways at all.
    """
    import osmium  # imported here so that `import sitefinder` stays light

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

    points: list[dict] = []
    lines: list[dict] = []
    areas: list[dict] = []
    stats = {
        "nodes": 0, "ways": 0, "relations": 0, "ways_cut": 0, "ways_dropped": 0,
        "areas_clipped": 0, "multipolygons": 0, "multipolygons_assembled": 0,
    }
    newest = ""
    try:
        processor = osmium.FileProcessor(str(path)).with_locations().with_areas()
        for obj in processor:
            if obj.is_node():
                stats["nodes"] += 1
                if len(obj.tags) and _has_kept_tag(obj.tags):
                    rec = _tag_record(obj.tags)
                    rec.update(osm_type="node", osm_id=obj.id)
                    loc = obj.location
                    rec["geometry"] = shapely.Point(loc.lon, loc.lat)
                    points.append(rec)
            elif obj.is_way():
                stats["ways"] += 1
                if obj.timestamp is not None and obj.timestamp.year > 1970:
                    newest = max(newest, obj.timestamp.date().isoformat())
                tags = obj.tags
                nodes = obj.nodes
                closed = len(nodes) >= 4 and nodes[0].ref == nodes[-1].ref
                if closed and _is_area_way(tags) and not all(n.location.valid() for n in nodes):
                    # The area assembler skips rings with missing nodes: keep the part
                    # inside the extract instead of losing the park or building.
                    geom = _clipped_area(nodes)
                    if geom is not None:
                        stats["areas_clipped"] += 1
                        rec = _tag_record(tags)
                        rec.update(osm_type="way", osm_id=obj.id, geometry=geom)
                        areas.append(rec)
                if not any(k in tags for k in _LINEAR_KEYS):
                    continue
                runs = _located_runs(nodes)
                if not runs:
                    stats["ways_dropped"] += 1
                    continue
                if len(runs) > 1 or len(runs[0][0]) != len(obj.nodes):
                    stats["ways_cut"] += 1
                base = _tag_record(tags)
                for ids, coords in runs:
                    rec = dict(base, osm_type="way", osm_id=obj.id, node_ids=tuple(ids))
                    rec["geometry"] = shapely.LineString(coords)
                    lines.append(rec)
            elif obj.is_relation():
                stats["relations"] += 1
                if obj.tags.get("type") in ("multipolygon", "boundary") and _has_kept_tag(
                    obj.tags
                ):
                    stats["multipolygons"] += 1
            elif obj.is_area():
                tags = obj.tags
                if not _has_kept_tag(tags):
                    continue
                # Closed highways are lines unless explicitly areas (pedestrian squares).
                if obj.from_way() and "highway" in tags and tags.get("area") != "yes":
                    continue
                geom = _area_polygon(obj)
                if geom is None or geom.is_empty:
                    continue
                if not obj.from_way():
                    stats["multipolygons_assembled"] += 1
                rec = _tag_record(tags)
                rec.update(
                    osm_type="way" if obj.from_way() else "relation",
                    osm_id=obj.orig_id(),
                    geometry=geom,
                )
                areas.append(rec)
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

    if stats["ways"] == 0:
        raise InputError(
            "the OpenStreetMap file holds no ways (no streets, paths or buildings)",
            path=path,
            hint="Use an extract that covers the area of the candidate plots",
        )

    columns = ["osm_type", "osm_id", *KEPT_KEYS]
    stats["multipolygons_dropped"] = max(
        0, stats.pop("multipolygons") - stats.pop("multipolygons_assembled")
    )
    stats.update(points=len(points), lines=len(lines), areas=len(areas))
    return OsmData(
        points=_frame(points, columns),
        lines=_frame(lines, [*columns, "node_ids"]),
        areas=_frame(areas, columns),
        path=path,
        sha256=file_sha256(path),
        stats=stats,
        newest=newest,
    )


def _frame(records: list[dict], columns: list[str]) -> gpd.GeoDataFrame:
    if not records:
        return gpd.GeoDataFrame(
            {c: pd.Series(dtype=object) for c in columns}, geometry=[], crs="EPSG:4326"
        )
    frame = gpd.GeoDataFrame(records, geometry="geometry", crs="EPSG:4326")
    return frame[[*columns, "geometry"]]


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
