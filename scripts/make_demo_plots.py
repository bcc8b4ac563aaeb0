"""Make the illustrative demo plot file ``data/plots.gpkg`` from the bundled OSM extract.

The plots are NOT Oslo kommune's real property list. They are drawn on land that
OpenStreetMap maps in ``data/oslo-center.osm.pbf`` so that the demo ranks something that
looks and behaves like a municipality's list of candidate plots. Owners, zoning and prices
are invented.

Method (all in EPSG:25832, deterministic for a given extract and ``SEED``):

Open land (``OSL-001`` … ``OSL-070``):

1. Candidate land = OSM areas with a tag in :data:`SOURCE_TAGS` (surface car parks only).
2. Subtract obstacles: buildings, water, uses a plot cannot take (pitches, playgrounds,
   cemeteries, school and kindergarten grounds, military land, squares ...), and road and
   rail lines buffered by a half-width per class (:data:`HALF_WIDTH_M`). Tunnels and
   building passages are not obstacles on the surface.
3. Split large pieces along a fixed 50 m grid, then "open" every piece (shrink by 6 m, grow
   back): this removes strips narrower than ~12 m, which could not take a 6 × 8.5 m house.
4. Keep pieces of 400–6,000 m² at least 40 m inside the extract (the extract is a bbox cut,
   so buildings at its very edge may be missing), and draw a spatially spread, weighted,
   seeded sample, never letting two plots overlap.
5. Add the awkward plots a real list has: one very small plot, one next to a trunk road or
   the railway, and one on or against railway/industrial land.

Plots in ordinary residential streets (``OSL-071`` on, :func:`residential_candidates`,
:func:`residential_sample`):

6. Free land inside ``landuse=residential`` (here areas cut at the extract's edge count,
   rebuilt by :func:`osm_extras`): minus the obstacles above, 3 m around every building,
   20 m around schools and kindergartens, and land a plot cannot take there (car parks,
   public gardens, commercial land ...); strips narrower than 14 m removed.
7. Lay plot-shaped rectangles (single-house and 2–3-unit sizes, :data:`RESIDENTIAL_SHAPES`)
   on a 4 m lattice over that land, turned to the nearest street, and keep those that lie
   (92 %) on free land, front a public street within 25 m with no building in the way, have
   a home (dwelling-type or address-carrying building) within 60 m and no dwelling within
   12 m (the default scenario excludes plots with a dwelling within 10 m).
8. Draw a spread, seeded sample (villa and small-house streets first more often), never
   in a courtyard or boxed in by buildings; every plot's class is checked with
   :func:`sitefinder.capacity.plan_units` (single-house plots of 250–600 m² take exactly
   one unit with ``min_units_per_site=1``, the others two or three under the defaults).

Plot facts (:func:`plot_facts`): ``owner``, ``zoning`` (reguleringsformål) and
``price_nok``, drawn from the land a plot lies on, its distance to the centre and a
separate seeded stream. They are invented and only look plausible.

Plots are only ever added with new ids: the open-land sample is drawn exactly as before
(areas the OSM reader clipped at the extract's edge are left out, as the reader used to do),
so ``OSL-001`` … ``OSL-070`` keep their ids and outlines.

Run from the repository root: ``.venv/bin/python scripts/make_demo_plots.py``
(``--out PATH`` writes elsewhere).
"""

from __future__ import annotations

import argparse
import math
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

from sitefinder.capacity import CapacitySettings, plan_units
from sitefinder.config import default_scenario
from sitefinder.layers import plain_tag_values
from sitefinder.sources.osm import read_osm

REPO = Path(__file__).resolve().parents[1]
OSM_PATH = REPO / "data" / "oslo-center.osm.pbf"
OUT_PATH = REPO / "data" / "plots.gpkg"
CRS = "EPSG:25832"
FILE_DATE = "2025-06-16T00:00:00Z"  # newest element in the OSM extract
SEED = 301  # Oslo's kommunenummer; any fixed value gives a reproducible file

# (key, value) -> sampling weight. Vacant land and car parks are what municipalities
# actually offer (DOMAIN.md §2.1, §6.6); grass is common in OSM but mostly verges and
# courtyards, so it is drawn less often.
SOURCE_TAGS: dict[tuple[str, str], float] = {
    ("landuse", "brownfield"): 4.0,
    ("landuse", "greenfield"): 4.0,
    ("landuse", "construction"): 2.0,
    ("landuse", "village_green"): 1.5,
    ("amenity", "parking"): 2.5,
    ("landuse", "grass"): 1.0,
    ("natural", "grassland"): 1.0,
}
# Land a plot may touch only as the one deliberate "awkward" case, never in the sample.
AWKWARD_TAGS: tuple[tuple[str, str], ...] = (("landuse", "railway"), ("landuse", "industrial"))

# Construction sites that are not plausible plots (the high-security government quarter).
EXCLUDED_OSM_IDS = {125480528}

# parking=* values that are surface lots; multi-storey/underground/rooftop are buildings.
SURFACE_PARKING = {None, "surface"}

# Half-widths (m) of the corridor a line occupies on the ground; roughly carriageway plus
# verge. Keys are highway/railway values.
HALF_WIDTH_M: dict[str, float] = {
    "motorway": 14.0,
    "trunk": 12.0,
    "trunk_link": 7.0,
    "primary": 10.0,
    "primary_link": 6.0,
    "secondary": 8.0,
    "secondary_link": 5.0,
    "tertiary": 7.0,
    "tertiary_link": 5.0,
    "unclassified": 5.0,
    "residential": 5.0,
    "living_street": 4.0,
    "construction": 5.0,
    "service": 3.0,
    "pedestrian": 3.0,
    "track": 2.5,
    "cycleway": 2.0,
    "footway": 1.5,
    "path": 1.5,
    "steps": 1.5,
    "bridleway": 1.5,
    "platform": 3.0,
    # railway=*
    "rail": 6.0,
    "subway": 5.0,
    "light_rail": 4.0,
    "tram": 3.5,
    "narrow_gauge": 4.0,
}
# Values of `tunnel` that put a line below (or through) something else.
TUNNEL_VALUES = {"yes", "building_passage", "culvert", "covered"}

# Areas that are not available: (key, values). Buildings and water are handled separately.
BLOCKING_AREAS: dict[str, set[str]] = {
    "leisure": {
        "pitch",
        "playground",
        "track",
        "stadium",
        "swimming_pool",
        "dog_park",
        "schoolyard",
        "sports_centre",
        "ice_rink",
        "miniature_golf",
        "bandstand",
        # Parks and gardens are kept as they are: a plot in Slottsparken is not plausible,
        # and residents want parks nearby (DOMAIN.md criterion 4), not built over.
        "park",
        "garden",
        "nature_reserve",
    },
    "landuse": {"cemetery", "military", "allotments", "religious"},
    "amenity": {"grave_yard", "school", "kindergarten", "prison", "fountain", "university"},
    "highway": {"pedestrian", "footway", "platform", "service", "steps"},
    "railway": {"platform"},
}

WATER_SETBACK_M = 5.0
# A road-transportable unit (about 6 x 8.5 m, DOMAIN.md §6.1) arrives on a truck, so a
# plot must lie this close to a drivable street; this also drops courtyard lawns inside
# closed urban blocks, which are private and have no access.
MAX_ACCESS_M = 20.0
DRIVABLE = {
    "trunk",
    "trunk_link",
    "primary",
    "primary_link",
    "secondary",
    "secondary_link",
    "tertiary",
    "tertiary_link",
    "unclassified",
    "residential",
    "living_street",
    "service",
}
# Lawns boxed in by buildings (courtyards, strips between slab blocks) are private open
# space of the flats around them; a plot whose 15 m surroundings are more than this share
# buildings is not offered.
ENCLOSURE_RING_M = 15.0
MAX_ENCLOSURE = 0.3
MIN_WIDTH_M = 12.0
MIN_AREA_M2 = 400.0
MAX_AREA_M2 = 6000.0
SMALL_AREA_M2 = (150.0, 400.0)  # the one deliberately "very small" plot
SPLIT_GRID_M = 50.0
EDGE_MARGIN_M = 40.0
MAX_PER_AREA = 2  # a big lawn split into grid cells must not become eight adjacent plots
MIN_GAP_M = 20.0  # between two plots of the list
STRATUM_M = 400.0  # sampling cell: at most a few plots per 400 m square
TARGET_SAMPLE = 90


def source_label(row: pd.Series) -> str | None:
    """The ``key=value`` that makes an OSM area candidate (or awkward) land, else None."""
    for key, value in (*SOURCE_TAGS, *AWKWARD_TAGS):
        if row.get(key) == value:
            return f"{key}={value}"
    return None


def obstacle_union(areas: gpd.GeoDataFrame, lines: gpd.GeoDataFrame) -> shapely.Geometry:
    """Union of everything a plot must not cover, in the projected CRS."""
    is_building = areas["building"].notna() & (areas["building"] != "no")
    is_water = (
        areas["natural"].isin(["water", "wetland", "coastline"])
        | areas["water"].notna()
        | areas["waterway"].notna()
        | (areas["leisure"] == "swimming_pool")
    )
    blocking = is_building | is_water
    for key, values in BLOCKING_AREAS.items():
        blocking |= areas[key].isin(values)
    parts = list(areas.geometry[blocking & ~is_water])
    # Keep a few metres from ponds and rivers: a plot should not run down to the bank.
    parts += list(areas.geometry[is_water].buffer(WATER_SETBACK_M))

    on_surface = ~lines["tunnel"].isin(TUNNEL_VALUES)
    kind = lines["highway"].fillna(lines["railway"])
    width = kind.map(HALF_WIDTH_M)
    # Parking aisles belong to the car park they serve; cutting them out would slice
    # every car park into strips too narrow to build on.
    aisle = lines["service"] == "parking_aisle"
    roads = lines[on_surface & width.notna() & ~aisle]
    parts += list(roads.geometry.buffer(width[roads.index], cap_style="flat"))
    # Streams and rivers drawn only as lines still need a bank on each side.
    streams = lines[on_surface & lines["waterway"].isin(["river", "stream", "canal"])]
    parts += list(streams.geometry.buffer(4.0))
    return shapely.union_all(np.array(parts, dtype=object))


def enclosure(geoms: gpd.GeoSeries, buildings: shapely.Geometry) -> pd.Series:
    """Share of the ENCLOSURE_RING_M ring around each geometry that is covered by buildings."""
    ring = geoms.buffer(ENCLOSURE_RING_M).difference(geoms)
    return ring.intersection(buildings).area / ring.area


def grid_split(geom: shapely.Geometry, size: float) -> list[shapely.Geometry]:
    """Cut a large polygon into the cells of a fixed grid (origin 0,0 keeps it stable)."""
    minx, miny, maxx, maxy = geom.bounds
    x0, y0 = math.floor(minx / size) * size, math.floor(miny / size) * size
    cells = [
        shapely.box(x, y, x + size, y + size)
        for x in np.arange(x0, maxx, size)
        for y in np.arange(y0, maxy, size)
    ]
    pieces = shapely.intersection(np.array(cells, dtype=object), geom)
    return [p for p in pieces if not p.is_empty]


def open_piece(geom: shapely.Geometry) -> list[shapely.Polygon]:
    """Drop strips narrower than MIN_WIDTH_M (morphological opening), return the parts."""
    half = MIN_WIDTH_M / 2
    core = geom.buffer(-half, join_style="mitre")
    if core.is_empty:
        return []
    opened = core.buffer(half, join_style="mitre").intersection(geom)
    opened = shapely.make_valid(opened.simplify(0.2))
    return [
        p
        for p in getattr(opened, "geoms", [opened])
        if isinstance(p, shapely.Polygon) and not p.buffer(-half * 0.99).is_empty
    ]


def candidate_pieces(
    cand: gpd.GeoDataFrame, obstacles: shapely.Geometry, inner: shapely.Polygon
) -> gpd.GeoDataFrame:
    """Free land per candidate area, split and cleaned into plot-sized pieces."""
    rows = []
    for row in cand.itertuples(index=False):
        free = row.geometry.difference(obstacles).intersection(inner)
        for part in getattr(free, "geoms", [free]):
            if not isinstance(part, shapely.Polygon) or part.area < SMALL_AREA_M2[0]:
                continue
            chunks = grid_split(part, SPLIT_GRID_M) if part.area > MAX_AREA_M2 else [part]
            for chunk in chunks:
                for piece in open_piece(chunk):
                    rows.append(
                        {
                            "source": row.source,
                            "osm_id": row.osm_id,
                            "weight": row.weight,
                            "geometry": piece,
                        }
                    )
    pieces = gpd.GeoDataFrame(rows, geometry="geometry", crs=CRS)
    pieces["area_m2"] = pieces.area
    pieces = pieces[pieces.area_m2 >= SMALL_AREA_M2[0]]
    # A stable order independent of how osmium happened to deliver the areas.
    c = pieces.geometry.centroid
    pieces = pieces.assign(px=c.x.round(1), py=c.y.round(1))
    return pieces.sort_values(["px", "py", "area_m2"]).reset_index(drop=True)


def spread_sample(pieces: gpd.GeoDataFrame, n: int, rng: np.random.Generator) -> list[int]:
    """Pick ``n`` non-overlapping pieces, round-robin over STRATUM_M cells, weighted.

    Within a cell the order is a weighted random permutation (key ``-log(u) / w``), so
    brownfield and car parks come before grass more often than not, but not always.
    """
    key = -np.log(rng.random(len(pieces))) / pieces["weight"].to_numpy()
    cell = (
        (pieces.px // STRATUM_M).astype(int).astype(str)
        + "_"
        + (pieces.py // STRATUM_M).astype(int).astype(str)
    )
    queues = {
        c: list(grp.index[np.argsort(key[grp.index], kind="stable")])
        for c, grp in pieces.groupby(cell, sort=True)
    }
    cell_order = sorted(queues)
    rng.shuffle(cell_order)
    chosen: list[int] = []
    per_area: dict[int, int] = {}
    taken = shapely.GeometryCollection()
    while len(chosen) < n and any(queues.values()):
        for c in cell_order:
            while queues[c]:
                i = queues[c].pop(0)
                geom = pieces.geometry.iloc[i]
                area_id = int(pieces.osm_id.iloc[i])
                # Distance to an empty geometry is NaN, so test emptiness first.
                far = taken.is_empty or geom.distance(taken) >= MIN_GAP_M
                if per_area.get(area_id, 0) < MAX_PER_AREA and far:
                    chosen.append(i)
                    per_area[area_id] = per_area.get(area_id, 0) + 1
                    taken = taken.union(geom)
                    break
            if len(chosen) >= n:
                break
    return chosen


def add_awkward(
    pieces: gpd.GeoDataFrame,
    chosen: list[int],
    lines: gpd.GeoDataFrame,
    awkward_land: gpd.GeoSeries,
    rng: np.random.Generator,
) -> list[int]:
    """Add one tiny plot, one by a trunk road/railway, one on railway/industrial land."""
    taken = shapely.union_all(np.array(pieces.geometry.iloc[chosen], dtype=object))
    free = pieces.geometry.distance(taken) >= MIN_GAP_M

    loud = lines[
        (lines["highway"].isin(["trunk", "motorway"]) | (lines["railway"] == "rail"))
        & ~lines["tunnel"].isin(TUNNEL_VALUES)
    ]
    loud_union = shapely.union_all(np.array(loud.geometry, dtype=object))
    near_loud = pieces.geometry.distance(loud_union) < 25.0
    on_awkward = (
        pieces.geometry.distance(shapely.union_all(np.array(awkward_land, dtype=object))) < 1.0
    )
    size_ok = pieces.area_m2.between(MIN_AREA_M2, MAX_AREA_M2)
    tiny = pieces.area_m2.between(*SMALL_AREA_M2)
    ordinary = ~pieces.source.isin([f"{k}={v}" for k, v in AWKWARD_TAGS])

    wanted = {
        "tiny": tiny & ordinary,
        "loud": near_loud & size_ok,
        "railway/industrial": on_awkward & size_ok,
    }
    out = list(chosen)
    for label, mask in wanted.items():
        already = [i for i in out if mask.iloc[i]]
        if label != "tiny" and already:
            print(f"  awkward '{label}': {len(already)} in the sample already")
            continue
        pool = pieces.index[mask & free]
        if len(pool) == 0:
            print(f"  no candidate for the awkward '{label}' plot")
            continue
        pick = int(pool[rng.integers(len(pool))])
        out.append(pick)
        free &= pieces.geometry.distance(pieces.geometry.iloc[pick]) >= MIN_GAP_M
        print(
            f"  awkward '{label}': {pieces.source.iloc[pick]}, {pieces.area_m2.iloc[pick]:.0f} m²"
        )
    return out


def street_names(plots: gpd.GeoDataFrame, lines: gpd.GeoDataFrame) -> pd.Series:
    """Name of the nearest named street.

    Footpaths (names few people know), trunk roads (nobody gives an address on a
    motorway) and tunnels are skipped, so a plot above Operatunnelen is named after the
    street beside it.
    """
    surface = ~lines["tunnel"].isin(TUNNEL_VALUES)
    streets = lines[
        surface
        & lines["name"].notna()
        & lines["highway"].isin(
            [
                "primary",
                "secondary",
                "tertiary",
                "unclassified",
                "residential",
                "living_street",
                "pedestrian",
                "service",
                "primary_link",
                "secondary_link",
                "tertiary_link",
            ]
        )
    ][["name", "geometry"]]
    near = gpd.sjoin_nearest(plots[["geometry"]], streets, how="left")
    # Equidistant ties give several rows per plot; keep the first, deterministically.
    near = near[~near.index.duplicated(keep="first")]
    return near["name"].reindex(plots.index)


# ----------------------------------------------------------- plots in residential streets

#: Separate random streams, so that adding plots or facts never changes the open-land
#: sample (which uses ``default_rng(SEED)``).
RESIDENTIAL_STREAM = (SEED, 2)
FACTS_STREAM = (SEED, 3)

#: Buildings people live in: the typed buildings of the default scenario's ``dwellings``
#: layer, any building with an address node inside, and untyped buildings of at least
#: UNTYPED_HOME_M2 in residential land (as the ``dwellings`` layer counts them).
DWELLING_BUILDINGS = plain_tag_values(default_scenario().layers["dwellings"], "building")
UNTYPED_HOME_M2 = 30.0
#: Low-rise homes: plots near them are drawn more often (villa and small-house streets).
LOW_RISE_BUILDINGS = {"house", "detached", "semidetached_house", "terrace", "bungalow", "villa"}
LOW_RISE_RADIUS_M = 100.0
#: A plot keeps this far from every building: it is a garden or a leftover lawn, not a
#: strip along somebody's wall.
BUILDING_CLEARANCE_M = 3.0
#: A home (dwelling type or address-carrying building) lies within HOME_MAX_M of the plot's
#: edge: the plot is in a residential street. No dwelling as the default scenario counts
#: them (dwelling types, untyped buildings in residential land) is closer than
#: NEIGHBOUR_MIN_M: the scenario excludes plots with a dwelling within 10 m.
HOME_MAX_M = 60.0
NEIGHBOUR_MIN_M = 12.0
#: Public streets a residential plot must front: within RESIDENTIAL_ACCESS_M, and the
#: straight way there crosses no building (so no closed courtyards behind street fronts).
PUBLIC_STREETS = {
    "primary",
    "primary_link",
    "secondary",
    "secondary_link",
    "tertiary",
    "tertiary_link",
    "unclassified",
    "residential",
    "living_street",
}
RESIDENTIAL_ACCESS_M = 25.0
#: Unmapped school yards and kindergarten playgrounds: keep clear of the buildings too.
CHILDREN_CLEARANCE_M = 20.0
CHILDREN_BUILDINGS = {"school", "kindergarten"}
CHILDREN_AMENITIES = {"school", "kindergarten", "childcare"}
#: Land inside residential areas that a plot cannot take (on top of BLOCKING_AREAS).
RESIDENTIAL_BLOCKING: dict[str, set[str]] = {
    "landuse": {
        "commercial",
        "retail",
        "industrial",
        "railway",
        "construction",
        "brownfield",
        "recreation_ground",
        "garages",
        "flowerbed",
    },
    "leisure": {"fitness_station", "outdoor_seating", "common", "sports_centre"},
    "amenity": {
        "parking",
        "parking_space",
        "hospital",
        "clinic",
        "nursing_home",
        "social_facility",
        "place_of_worship",
        "community_centre",
        "bicycle_parking",
        "recycling",
        "waste_disposal",
    },
    "natural": {"wood", "scrub", "bare_rock"},
}
#: A garden this large (or with a name) is a public garden such as Botanisk hage.
PUBLIC_GARDEN_M2 = 2000.0
#: Plot outlines (width along the street × depth, metres) for each class. A single-house
#: plot is 250–600 m² and too small for a second unit (8 m fire separation, 4 m setback);
#: the others take 2–3 units, never the 2 × 2 block that would give 4.
RESIDENTIAL_SHAPES: dict[str, tuple[tuple[float, float], ...]] = {
    "single": ((16.0, 20.0), (17.0, 23.0), (18.0, 25.0), (20.0, 24.0), (21.0, 26.0)),
    "multi": (
        (16.0, 40.0),
        (17.0, 46.0),
        (18.0, 36.0),
        (20.0, 36.0),
        (22.0, 40.0),
        (22.0, 50.0),
        (24.0, 44.0),
        (26.0, 40.0),
    ),
}
RESIDENTIAL_AREA_M2 = {"single": (250.0, 600.0), "multi": (600.0, 1300.0)}
#: Units each class must take: (settings, allowed counts). Single-house plots are checked
#: with min_units_per_site=1 (the default minimum of 2 would mark them too small).
RESIDENTIAL_UNITS = {"single": (1, {1}), "multi": (2, {2, 3})}
RESIDENTIAL_TARGET = {"single": 10, "multi": 8}
RESIDENTIAL_TOTAL = 18
LATTICE_STEP_M = 4.0
MIN_COVER = 0.92  # share of the outline that must be free land
MIN_FREE_WIDTH_M = 14.0  # a unit (6 m) plus the 4 m setback on both sides
RESIDENTIAL_STRATUM_M = 300.0
MAX_PER_STRATUM = 3
#: Gaps between buildings narrower than this (gates, passages) still close a courtyard.
YARD_GAP_M = 8.0


#: Tags kept for areas that lost nodes at the extract's edge (what the plot rules read).
EDGE_AREA_KEYS = (
    "name",
    "building",
    "landuse",
    "leisure",
    "amenity",
    "natural",
    "water",
    "waterway",
    "highway",
    "railway",
    "area",
)


@dataclass
class OsmExtras:
    """What ``read_osm`` does not give the script, read in one pass over the file."""

    parking: dict[tuple[str, int], str | None]
    """``parking=*`` of every amenity=parking way/relation."""
    cut_ways: set[int]
    """Ids of ways that lost nodes at the extract's edge."""
    addresses: np.ndarray
    """Lon/lat of every node with ``addr:housenumber`` (shape (n, 2))."""
    edge_areas: gpd.GeoDataFrame
    """Closed ways cut at the edge, as the part of the area inside the extract (EPSG:4326)."""


def _edge_polygon(coords: list[tuple[float, float]]) -> shapely.Geometry | None:
    """Polygon of a closed way's located nodes: the missing stretch becomes a straight
    line, which for a bounding-box cut runs along the cut."""
    if len(coords) < 3:
        return None
    parts = [
        g
        for g in shapely.get_parts(shapely.make_valid(shapely.Polygon(coords)))
        if g.geom_type == "Polygon" and g.area > 0
    ]
    return shapely.union_all(parts) if parts else None


def osm_extras(path: Path) -> OsmExtras:
    """Car-park types, edge-cut ways, address nodes and edge-cut areas of ``path``.

    The areas are rebuilt here (not taken from ``read_osm``) so that the residential plots
    do not depend on whether the reader keeps edge-cut areas or drops them.
    """
    import osmium

    parking: dict[tuple[str, int], str | None] = {}
    cut_ways: set[int] = set()
    addresses: list[tuple[float, float]] = []
    edge: list[dict] = []
    for obj in osmium.FileProcessor(str(path)).with_locations():
        tags = obj.tags
        if obj.is_node():
            if "addr:housenumber" in tags and obj.location.valid():
                addresses.append((obj.location.lon, obj.location.lat))
            continue
        if tags.get("amenity") == "parking":
            kind = "way" if obj.is_way() else "relation"
            parking[(kind, obj.id)] = tags.get("parking")
        if not obj.is_way() or all(n.location.valid() for n in obj.nodes):
            continue
        cut_ways.add(obj.id)
        nodes = obj.nodes
        closed = len(nodes) >= 4 and nodes[0].ref == nodes[-1].ref
        linear = any(k in tags for k in ("highway", "railway", "waterway"))
        wanted = any(k in tags for k in EDGE_AREA_KEYS[1:] if k != "area")
        if closed and wanted and (not linear or tags.get("area") == "yes"):
            coords = [(n.location.lon, n.location.lat) for n in nodes if n.location.valid()]
            geom = _edge_polygon(coords)
            if geom is not None:
                rec: dict = {k: tags.get(k) for k in EDGE_AREA_KEYS}
                rec.update(osm_type="way", osm_id=obj.id, geometry=geom)
                edge.append(rec)
    edge_areas = gpd.GeoDataFrame(
        edge, columns=["osm_type", "osm_id", *EDGE_AREA_KEYS, "geometry"], crs=4326
    )
    return OsmExtras(
        parking=parking,
        cut_ways=cut_ways,
        addresses=np.array(addresses, dtype=float).reshape(-1, 2),
        edge_areas=edge_areas,
    )


def homes_of(
    buildings: gpd.GeoDataFrame, addresses: gpd.GeoSeries, land: shapely.Geometry
) -> tuple[gpd.GeoSeries, gpd.GeoSeries]:
    """Dwellings as the default scenario counts them (a dwelling type, or an untyped
    building of some size in residential land ``land``), and homes: those plus every
    building with an address node inside."""
    hit = gpd.sjoin(
        gpd.GeoDataFrame(geometry=addresses), buildings[["geometry"]], predicate="within"
    )
    has_address = buildings.index.isin(hit["index_right"].unique())
    dwelling = buildings["building"].isin(DWELLING_BUILDINGS)
    untyped = (buildings["building"] == "yes") & (buildings.area >= UNTYPED_HOME_M2)
    shapely.prepare(land)
    dwelling |= untyped & shapely.intersects(land, buildings.geometry.to_numpy())
    return (
        buildings.geometry[dwelling].reset_index(drop=True),
        buildings.geometry[dwelling | has_address].reset_index(drop=True),
    )


def residential_blocking(
    areas: gpd.GeoDataFrame, points: gpd.GeoDataFrame, buildings: gpd.GeoDataFrame
) -> shapely.Geometry:
    """What a plot in a residential area must keep off, besides ``obstacle_union``."""
    parts = list(buildings.geometry.buffer(BUILDING_CLEARANCE_M))
    children = buildings["building"].isin(CHILDREN_BUILDINGS)
    parts += list(buildings.geometry[children].buffer(CHILDREN_CLEARANCE_M))
    kids = areas["amenity"].isin(CHILDREN_AMENITIES)
    parts += list(areas.geometry[kids].buffer(CHILDREN_CLEARANCE_M))
    kids_pt = points["amenity"].isin(CHILDREN_AMENITIES)
    parts += list(points.geometry[kids_pt].buffer(CHILDREN_CLEARANCE_M + 10.0))
    blocking = pd.Series(False, index=areas.index)
    for key, values in RESIDENTIAL_BLOCKING.items():
        blocking |= areas[key].isin(values)
    garden = areas["leisure"] == "garden"
    blocking |= garden & (areas["name"].notna() | (areas.area >= PUBLIC_GARDEN_M2))
    parts += list(areas.geometry[blocking])
    return shapely.union_all(np.array(parts, dtype=object))


def street_angle(point: shapely.Point, tree: shapely.STRtree, streets: np.ndarray) -> float:
    """Direction (degrees) of the nearest street segment at ``point``."""
    line = streets[int(tree.nearest(point))]
    d = line.project(point)
    a = line.interpolate(max(d - 2.0, 0.0))
    b = line.interpolate(min(d + 2.0, line.length))
    return math.degrees(math.atan2(b.y - a.y, b.x - a.x)) % 180.0


def lay_outlines(
    piece: shapely.Polygon, angles: list[float], min_area: float
) -> list[tuple[str, shapely.Polygon]]:
    """Plot-shaped rectangles on a lattice over ``piece`` that lie (almost) on free land."""
    out: list[tuple[str, shapely.Polygon]] = []
    c = piece.centroid
    shapely.prepare(piece)
    for angle in angles:
        local = shapely.affinity.rotate(piece, -angle, origin=c)
        minx, miny, maxx, maxy = local.bounds
        for cls, shapes in RESIDENTIAL_SHAPES.items():
            for w, d in shapes:
                if w * d * MIN_COVER < min_area:
                    continue
                xs, ys = np.meshgrid(
                    np.arange(minx, maxx - w + 1e-9, LATTICE_STEP_M),
                    np.arange(miny, maxy - d + 1e-9, LATTICE_STEP_M),
                )
                if xs.size == 0:
                    continue
                boxes = shapely.box(xs.ravel(), ys.ravel(), xs.ravel() + w, ys.ravel() + d)
                cover = shapely.area(shapely.intersection(boxes, local)) / (w * d)
                for box in boxes[cover >= MIN_COVER]:
                    back = shapely.affinity.rotate(box, angle, origin=c)
                    plot = back.intersection(piece)
                    parts = [p for p in getattr(plot, "geoms", [plot]) if p.geom_type == "Polygon"]
                    if not parts:
                        continue
                    best = max(parts, key=lambda p: p.area)
                    best = shapely.make_valid(best.simplify(0.1))
                    if best.geom_type == "Polygon" and best.area >= MIN_COVER * w * d:
                        out.append((cls, best))
    return out


def residential_candidates(
    areas: gpd.GeoDataFrame,
    lines: gpd.GeoDataFrame,
    points: gpd.GeoDataFrame,
    inner: shapely.Polygon,
    taken: shapely.Geometry,
    addresses: gpd.GeoSeries,
) -> gpd.GeoDataFrame:
    """Every plot outline that could be offered in a residential street, with its context."""
    buildings = areas[areas["building"].notna() & (areas["building"] != "no")]
    all_land = shapely.union_all(
        np.array(areas.geometry[areas["landuse"] == "residential"], dtype=object)
    )
    land = all_land.intersection(inner)
    blocked = shapely.union_all(
        np.array(
            [
                obstacle_union(areas, lines),
                residential_blocking(areas, points, buildings),
                taken.buffer(MIN_GAP_M),
            ],
            dtype=object,
        )
    )
    free = land.difference(blocked)
    half = MIN_FREE_WIDTH_M / 2
    opened = free.buffer(-half, join_style="mitre").buffer(half, join_style="mitre")
    opened = opened.intersection(free)
    pieces = [
        p
        for p in shapely.get_parts(opened)
        if p.geom_type == "Polygon" and p.area >= RESIDENTIAL_AREA_M2["single"][0]
    ]
    # A stable order independent of how GEOS returns the parts.
    pieces.sort(key=lambda p: (round(p.centroid.x, 1), round(p.centroid.y, 1)))
    print(f"residential: {len(pieces)} free pieces, {sum(p.area for p in pieces):,.0f} m²")

    drivable = lines[lines["highway"].isin(DRIVABLE) & ~lines["tunnel"].isin(TUNNEL_VALUES)]
    streets = np.array(drivable.geometry, dtype=object)
    street_tree = shapely.STRtree(streets)
    rows = []
    for k, piece in enumerate(pieces):
        mrr = shapely.oriented_envelope(piece)
        xy = np.asarray(mrr.exterior.coords)[:3] if mrr.geom_type == "Polygon" else None
        angles = [street_angle(piece.centroid, street_tree, streets)]
        if xy is not None:
            edge = xy[1] - xy[0]
            own = math.degrees(math.atan2(edge[1], edge[0])) % 180.0
            if min(abs(own - angles[0]) % 90.0, 90.0 - abs(own - angles[0]) % 90.0) > 5.0:
                angles.append(own)
        for cls, geom in lay_outlines(piece, angles, RESIDENTIAL_AREA_M2["single"][0]):
            rows.append({"cls": cls, "piece": k, "geometry": geom})
    cand = gpd.GeoDataFrame(rows, geometry="geometry", crs=CRS)
    cand["area_m2"] = cand.area
    lo = cand["cls"].map({c: r[0] for c, r in RESIDENTIAL_AREA_M2.items()})
    hi = cand["cls"].map({c: r[1] for c, r in RESIDENTIAL_AREA_M2.items()})
    cand = cand[(cand.area_m2 >= lo) & (cand.area_m2 <= hi)].reset_index(drop=True)

    centre = cand.geometry.centroid
    public = lines[lines["highway"].isin(PUBLIC_STREETS) & ~lines["tunnel"].isin(TUNNEL_VALUES)]
    public_geoms = np.array(public.geometry, dtype=object)
    (_, nearest), access = shapely.STRtree(public_geoms).query_nearest(
        cand.geometry, return_distance=True, all_matches=False
    )
    way_in = shapely.shortest_line(cand.geometry.to_numpy(), public_geoms[nearest])
    walls = shapely.union_all(np.array(buildings.geometry, dtype=object))
    shapely.prepare(walls)
    blocked_way = shapely.intersects(way_in, walls)
    dwellings, homes = homes_of(buildings, addresses, all_land)
    _, home_dist = shapely.STRtree(np.array(homes, dtype=object)).query_nearest(
        cand.geometry, return_distance=True, all_matches=False
    )
    _, neighbour_dist = shapely.STRtree(np.array(dwellings, dtype=object)).query_nearest(
        cand.geometry, return_distance=True, all_matches=False
    )
    low = buildings.geometry[buildings["building"].isin(LOW_RISE_BUILDINGS)]
    low_tree = shapely.STRtree(np.array(low, dtype=object))
    near_idx = low_tree.query(centre, predicate="dwithin", distance=LOW_RISE_RADIUS_M)[0]
    cand["street_m"] = access
    cand["home_m"] = home_dist
    cand["neighbour_m"] = neighbour_dist
    cand["low_rise"] = np.bincount(near_idx, minlength=len(cand))
    ok = (cand.street_m <= RESIDENTIAL_ACCESS_M) & ~blocked_way
    ok &= (cand.home_m <= HOME_MAX_M) & (cand.neighbour_m >= NEIGHBOUR_MIN_M)
    print(
        f"  {len(cand)} outlines, {int(ok.sum())} fronting a street, a home within "
        f"{HOME_MAX_M:g} m, no dwelling within {NEIGHBOUR_MIN_M:g} m"
    )
    cand = cand[ok].reset_index(drop=True)
    c = cand.geometry.centroid
    return cand.assign(px=c.x.round(1), py=c.y.round(1))


def courtyards(buildings: shapely.Geometry) -> shapely.Geometry:
    """Yards closed in by buildings (gaps under YARD_GAP_M closed): private, no access."""
    closed = buildings.buffer(YARD_GAP_M / 2, join_style="mitre")
    holes = [
        shapely.Polygon(ring)
        for poly in shapely.get_parts(closed)
        if poly.geom_type == "Polygon"
        for ring in poly.interiors
    ]
    return shapely.union_all(np.array(holes, dtype=object)) if holes else shapely.Polygon()


def units_fit(geom: shapely.Geometry, cls: str) -> bool:
    """Whether the plot takes the number of units its class promises."""
    min_units, allowed = RESIDENTIAL_UNITS[cls]
    settings = CapacitySettings(min_units_per_site=min_units)
    out = plan_units(gpd.GeoDataFrame(geometry=[geom], crs=CRS), settings)
    return int(out["capacity_units"].iloc[0]) in allowed


def residential_sample(
    cand: gpd.GeoDataFrame,
    taken: shapely.Geometry,
    areas: gpd.GeoDataFrame,
    rng: np.random.Generator,
) -> gpd.GeoDataFrame:
    """A spread, seeded sample of residential plots, each class checked with plan_units.

    Villa and small-house streets come first more often (weight grows with the low-rise
    homes within LOW_RISE_RADIUS_M). Strata of RESIDENTIAL_STRATUM_M are visited in a
    seeded order, one plot per stratum per round, at most MAX_PER_STRATUM in all; the class
    furthest from its target is filled first. If a class runs out of land, the other one
    fills the list up to RESIDENTIAL_TOTAL.
    """
    is_building = areas["building"].notna() & (areas["building"] != "no")
    buildings = shapely.union_all(np.array(areas.geometry[is_building], dtype=object))
    yards = courtyards(buildings)
    weight = 1.0 + np.minimum(cand["low_rise"].to_numpy(), 20) / 2.0
    key = -np.log(rng.random(len(cand))) / weight
    cell = (
        (cand.px // RESIDENTIAL_STRATUM_M).astype(int).astype(str)
        + "_"
        + (cand.py // RESIDENTIAL_STRATUM_M).astype(int).astype(str)
    )
    queues: dict[tuple[str, str], list[int]] = {}
    for (c, cls), grp in cand.groupby([cell, cand["cls"]], sort=True):
        queues[(c, cls)] = list(grp.index[np.argsort(key[grp.index], kind="stable")])
    # Cells in a seeded order, those with many low-rise homes first more often.
    cells = sorted({c for c, _ in queues})
    cell_weight = np.array([weight[(cell == c).to_numpy()].mean() for c in cells])
    cells = [cells[i] for i in np.argsort(-np.log(rng.random(len(cells))) / cell_weight)]
    chosen: dict[str, list[int]] = {cls: [] for cls in RESIDENTIAL_TARGET}
    per_cell: Counter[str] = Counter()
    checked = 0

    def valid(i: int) -> bool:
        nonlocal checked
        geom = cand.geometry.iloc[i]
        if not taken.is_empty and geom.distance(taken) < MIN_GAP_M:
            return False
        if enclosure(gpd.GeoSeries([geom], crs=CRS), buildings).iloc[0] > MAX_ENCLOSURE:
            return False
        if geom.intersection(yards).area > 0.5 * geom.area:
            return False
        checked += 1
        return units_fit(geom, cand["cls"].iloc[i])

    def fill(targets: dict[str, int]) -> None:
        nonlocal taken
        for round_ in range(1, MAX_PER_STRATUM + 1):
            for c in cells:
                missing = {
                    cls: 1 - len(chosen[cls]) / n
                    for cls, n in targets.items()
                    if len(chosen[cls]) < n
                }
                if not missing:
                    return
                if per_cell[c] >= round_:
                    continue
                for cls in sorted(missing, key=lambda k: (-missing[k], k)):
                    queue = queues.get((c, cls), [])
                    while queue:
                        i = queue.pop(0)
                        if valid(i):
                            chosen[cls].append(i)
                            per_cell[c] += 1
                            taken = taken.union(cand.geometry.iloc[i])
                            break
                    if per_cell[c] >= round_:
                        break

    fill(dict(RESIDENTIAL_TARGET))
    # A class that ran out of land leaves its share to the other (multi first).
    for cls in ("multi", "single"):
        short = RESIDENTIAL_TOTAL - sum(len(v) for v in chosen.values())
        if short > 0:
            fill({**{k: len(v) for k, v in chosen.items()}, cls: len(chosen[cls]) + short})
    for cls, idx in chosen.items():
        print(f"  {cls}: {len(idx)} (target {RESIDENTIAL_TARGET[cls]}, {checked} layouts checked)")
    picked = [i for cls in RESIDENTIAL_TARGET for i in chosen[cls]]
    return cand.loc[picked]


# ------------------------------------------------------------------------- plot facts

#: Reguleringsformål (zoning, bokmål) drawn per kind of land: (value, probability).
ZONING_BY_SOURCE: dict[str, tuple[tuple[str, float], ...]] = {
    "landuse=residential": (
        ("bolig", 0.75),
        ("friområde", 0.15),
        ("offentlig eller privat tjenesteyting", 0.10),
    ),
    "green": (
        ("friområde", 0.5),
        ("bolig", 0.2),
        ("offentlig eller privat tjenesteyting", 0.2),
        ("kombinert bebyggelse", 0.1),
    ),
    "amenity=parking": (
        ("samferdsel", 0.35),
        ("kombinert bebyggelse", 0.25),
        ("offentlig eller privat tjenesteyting", 0.2),
        ("bolig", 0.2),
    ),
    "development": (
        ("kombinert bebyggelse", 0.4),
        ("bolig", 0.3),
        ("næring", 0.15),
        ("offentlig eller privat tjenesteyting", 0.15),
    ),
}
GREEN_SOURCES = {"landuse=grass", "landuse=village_green", "natural=grassland"}
#: Within this distance of the centre, "kombinert bebyggelse" is zoned "sentrumsformål".
CENTRE_LONLAT = (10.7403, 59.9131)  # Stortinget / Karl Johans gate
CENTRAL_ZONE_M = 1200.0
#: Owners per zoning, (value, probability); mostly the municipality, as in the report.
OWNERS_BY_ZONING: dict[str, tuple[tuple[str, float], ...]] = {
    "bolig": (
        ("Oslo kommune (Boligbygg)", 0.4),
        ("Oslo kommune", 0.35),
        ("privat", 0.15),
        ("Statsbygg", 0.1),
    ),
    "friområde": (
        ("Oslo kommune", 0.6),
        ("Oslo kommune (Bymiljøetaten)", 0.3),
        ("Statsbygg", 0.05),
        ("privat", 0.05),
    ),
    "samferdsel": (
        ("Oslo kommune", 0.5),
        ("Oslo kommune (Bymiljøetaten)", 0.2),
        ("Statens vegvesen", 0.1),
        ("privat", 0.2),
    ),
    "offentlig eller privat tjenesteyting": (
        ("Oslo kommune", 0.4),
        ("Oslo kommune (Oslobygg)", 0.3),
        ("Statsbygg", 0.2),
        ("privat", 0.1),
    ),
    "other": (
        ("Oslo kommune", 0.45),
        ("privat", 0.3),
        ("Statsbygg", 0.1),
        ("Oslo kommune (Boligbygg)", 0.15),
    ),
}
#: Illustrative land value (NOK per m² of plot) by zoning in inner Oslo; multiplied by a
#: location factor (dearer near the centre and to the west) and ±15 % noise.
PRICE_PER_M2: dict[str, float] = {
    "sentrumsformål": 38_000.0,
    "kombinert bebyggelse": 28_000.0,
    "bolig": 24_000.0,
    "næring": 16_000.0,
    "offentlig eller privat tjenesteyting": 9_000.0,
    "samferdsel": 4_000.0,
    "friområde": 2_500.0,
}


def _draw(options: tuple[tuple[str, float], ...], rng: np.random.Generator) -> str:
    labels, probs = zip(*options, strict=True)
    return str(rng.choice(labels, p=np.asarray(probs) / sum(probs)))


def plot_facts(
    plots: gpd.GeoDataFrame, areas: gpd.GeoDataFrame, rng: np.random.Generator
) -> pd.DataFrame:
    """Invented ``owner``, ``zoning`` and ``price_nok`` for every plot (in row order).

    Plots on or against railway land are zoned ``samferdsel`` and owned by Bane NOR, those
    against the industrial area ``næring``; the rest draw their zoning from the land they
    were taken from and their owner from the zoning. The price is area × a price per m²
    for the zoning × a location factor (1.5 at the centre, falling 0.2 per km to at least
    0.8; ±10 % from west to east) × noise, rounded to 10,000 NOK.
    """
    railway = shapely.union_all(np.array(areas.geometry[areas["landuse"] == "railway"]))
    industrial = shapely.union_all(np.array(areas.geometry[areas["landuse"] == "industrial"]))
    centre = gpd.GeoSeries([shapely.Point(CENTRE_LONLAT)], crs=4326).to_crs(CRS).iloc[0]
    owners, zonings, prices = [], [], []
    for geom, source in zip(plots.geometry, plots["landuse_source"], strict=True):
        dist = geom.centroid.distance(centre)
        if geom.distance(railway) < 1.0:
            zoning, owner = "samferdsel", "Bane NOR"
        elif geom.distance(industrial) < 1.0:
            zoning, owner = "næring", _draw(OWNERS_BY_ZONING["other"], rng)
        else:
            group = (
                source
                if source in ZONING_BY_SOURCE
                else "green"
                if source in GREEN_SOURCES
                else "development"
            )
            zoning = _draw(ZONING_BY_SOURCE[group], rng)
            if zoning == "kombinert bebyggelse" and dist < CENTRAL_ZONE_M:
                zoning = "sentrumsformål"
            owner = _draw(OWNERS_BY_ZONING.get(zoning, OWNERS_BY_ZONING["other"]), rng)
        location = max(0.8, 1.5 - 0.2 * dist / 1000.0)
        location *= 1.0 + 0.1 * float(np.clip((centre.x - geom.centroid.x) / 1500.0, -1, 1))
        noise = float(np.exp(rng.normal(0.0, 0.15)))
        value = geom.area * PRICE_PER_M2[zoning] * location * noise
        owners.append(owner)
        zonings.append(zoning)
        prices.append(int(round(value, -4)))
    return pd.DataFrame(
        {"owner": owners, "zoning": zonings, "price_nok": np.asarray(prices, dtype="int64")},
        index=plots.index,
    )


def unique_names(streets: pd.Series, existing: pd.Series | None = None) -> list[str]:
    """``Tomt ved <street>``, numbered "(2)", "(3)" … after names already in the list."""
    seen = (
        Counter(existing.str.replace(r" \(\d+\)$", "", regex=True))
        if existing is not None
        else Counter()
    )
    out = []
    for street in streets.fillna("ukjent gate"):
        name = f"Tomt ved {street}"
        seen[name] += 1
        out.append(name if seen[name] == 1 else f"{name} ({seen[name]})")
    return out


def main(argv: list[str] | None = None) -> None:
    """Build and write ``data/plots.gpkg`` (or ``--out``)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT_PATH, help="GeoPackage to write")
    out_path = parser.parse_args(argv).out

    rng = np.random.default_rng(SEED)
    osm = read_osm(OSM_PATH)
    extras = osm_extras(OSM_PATH)
    areas = osm.areas.to_crs(CRS)
    # Newer readers keep areas that lost nodes at the extract's edge (clipped along the
    # cut). The open-land sample was drawn without them, as the reader once did, so leave
    # them out there: its plot ids then do not depend on the reader's version.
    cut = (areas["osm_type"] == "way") & areas["osm_id"].isin(extras.cut_ways)
    areas = areas[~cut]
    lines = osm.lines.to_crs(CRS)
    points = osm.points.to_crs(CRS)
    # Stable row order for everything that follows.
    areas = areas.sort_values(["osm_type", "osm_id"]).reset_index(drop=True)
    lines = lines.sort_values(["osm_type", "osm_id"], kind="stable").reset_index(drop=True)
    addresses = gpd.GeoSeries(shapely.points(extras.addresses), crs=4326).to_crs(CRS)

    west, south, east, north = 10.72, 59.90, 10.78, 59.94  # the extract's cut (SOURCE.txt)
    bbox = gpd.GeoSeries([shapely.box(west, south, east, north)], crs=4326).to_crs(CRS)
    inner = bbox.iloc[0].buffer(-EDGE_MARGIN_M, join_style="mitre")

    is_parking = areas["amenity"] == "parking"
    parking_kind = [
        extras.parking.get((t, i)) for t, i in zip(areas.osm_type, areas.osm_id, strict=True)
    ]
    surface = pd.Series([k in SURFACE_PARKING for k in parking_kind], index=areas.index)
    areas["source"] = areas.apply(source_label, axis=1)
    keep = areas["source"].notna() & (~is_parking | surface) & areas["building"].isna()
    keep &= ~areas["osm_id"].isin(EXCLUDED_OSM_IDS)
    cand = areas[keep].copy()
    weights = {f"{k}={v}": w for (k, v), w in SOURCE_TAGS.items()}
    cand["weight"] = cand["source"].map(weights).fillna(1.0)
    print(f"candidate areas: {cand.source.value_counts().to_dict()}")

    obstacles = obstacle_union(areas, lines)
    pieces = candidate_pieces(cand, obstacles, inner)
    drivable = lines[lines["highway"].isin(DRIVABLE) & ~lines["tunnel"].isin(TUNNEL_VALUES)]
    access = (
        pieces.geometry.distance(shapely.union_all(np.array(drivable.geometry, dtype=object)))
        <= MAX_ACCESS_M
    )
    print(f"pieces: {len(pieces)}, {int((~access).sum())} without street access dropped")
    pieces = pieces[access].reset_index(drop=True)
    buildings = areas[areas["building"].notna() & (areas["building"] != "no")]
    building_union = shapely.union_all(np.array(buildings.geometry, dtype=object))
    enclosed = enclosure(pieces.geometry, building_union) > MAX_ENCLOSURE
    print(f"  {int(enclosed.sum())} enclosed by buildings dropped")
    pieces = pieces[~enclosed].reset_index(drop=True)
    print(f"  kept: {pieces.source.value_counts().to_dict()}")

    regular = pieces.area_m2.between(MIN_AREA_M2, MAX_AREA_M2) & ~pieces.source.isin(
        [f"{k}={v}" for k, v in AWKWARD_TAGS]
    )
    sample = spread_sample(pieces[regular].reset_index(), TARGET_SAMPLE, rng)
    chosen = [int(pieces[regular].index[i]) for i in sample]
    awkward_land = areas.geometry[areas["landuse"].isin([v for _, v in AWKWARD_TAGS])]
    chosen = add_awkward(pieces, chosen, lines, awkward_land, rng)

    plots = pieces.loc[chosen].copy()
    # Ids run north to south, west to east, like reading a map.
    plots = plots.sort_values(["py", "px"], ascending=[False, True]).reset_index(drop=True)
    plots["plot_id"] = [f"OSL-{i + 1:03d}" for i in range(len(plots))]
    plots["name"] = unique_names(street_names(plots, lines))
    plots["landuse_source"] = plots["source"]

    # Plots in residential streets, numbered after the open-land plots (north to south).
    # Residential streets run to the edge of the extract: here the areas cut at the edge
    # (parks, schools, buildings, residential land) count, rebuilt by osm_extras.
    taken = shapely.union_all(np.array(plots.geometry, dtype=object))
    edge = extras.edge_areas.to_crs(CRS)
    full = pd.concat([areas, edge.reindex(columns=areas.columns)], ignore_index=True)
    full = gpd.GeoDataFrame(full, geometry="geometry", crs=CRS)
    homes_cand = residential_candidates(full, lines, points, inner, taken, addresses)
    extra = residential_sample(homes_cand, taken, full, np.random.default_rng(RESIDENTIAL_STREAM))
    extra = extra.sort_values(["py", "px"], ascending=[False, True]).reset_index(drop=True)
    extra["plot_id"] = [f"OSL-{len(plots) + i + 1:03d}" for i in range(len(extra))]
    extra["name"] = unique_names(street_names(extra, lines), existing=plots["name"])
    extra["landuse_source"] = "landuse=residential"

    columns = ["plot_id", "name", "landuse_source", "geometry"]
    plots = gpd.GeoDataFrame(
        pd.concat([plots[columns], extra[columns]], ignore_index=True), geometry="geometry", crs=CRS
    )
    plots["area_m2"] = plots.area.round(1)
    plots = plots.join(plot_facts(plots, areas, np.random.default_rng(FACTS_STREAM)))
    plots = plots[
        ["plot_id", "name", "area_m2", "owner", "zoning", "price_nok", "landuse_source", "geometry"]
    ]

    out_path.parent.mkdir(parents=True, exist_ok=True)
    if out_path.exists():
        out_path.unlink()
    # A fixed "last change" date (the extract's newest edit) makes the file byte-for-byte
    # reproducible, so its checksum in data/README.md stays valid after regenerating.
    pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": FILE_DATE})
    pyogrio.write_dataframe(
        plots,
        out_path,
        layer="plots",
        driver="GPKG",
        layer_options={
            "IDENTIFIER": "Illustrative demo plots (Oslo sentrum)",
            "DESCRIPTION": (
                "ILLUSTRATIVE demo candidate plots, NOT Oslo kommune's property list. "
                "Drawn by scripts/make_demo_plots.py on open land and in residential areas "
                "mapped in OpenStreetMap (data/oslo-center.osm.pbf, © OpenStreetMap "
                "contributors, ODbL 1.0); owners, zoning and prices are invented."
            ),
        },
    )
    print(f"wrote {len(plots)} plots to {out_path}")
    print(plots.landuse_source.value_counts().to_string())
    print(plots.zoning.value_counts().to_string())
    print(plots.owner.value_counts().to_string())
    print(plots.area_m2.describe().round(0).to_string())


if __name__ == "__main__":
    main()
