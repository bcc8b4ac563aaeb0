"""Make the illustrative demo plot file ``data/plots.gpkg`` from the bundled OSM extract.

The plots are NOT Oslo kommune's real property list. They are drawn on open land that
OpenStreetMap maps in ``data/oslo-center.osm.pbf`` (vacant/brownfield land, construction
sites, grass, village greens, surface car parks) so that the demo ranks something that
looks and behaves like a municipality's list of candidate plots. Owners are invented.

Method (all in EPSG:25832, deterministic for a given extract and ``SEED``):

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

Run from the repository root: ``.venv/bin/python scripts/make_demo_plots.py``.
"""

from __future__ import annotations

import math
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import shapely

from sitefinder.sources.osm import read_osm

REPO = Path(__file__).resolve().parents[1]
OSM_PATH = REPO / "data" / "oslo-center.osm.pbf"
OUT_PATH = REPO / "data" / "plots.gpkg"
CRS = "EPSG:25832"
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
OWNERS = (("Oslo kommune", 0.7), ("Statsbygg", 0.15), ("Privat", 0.15))


def parking_tags(path: Path) -> dict[tuple[str, int], str | None]:
    """``parking=*`` of every amenity=parking way/relation (read_osm does not keep it)."""
    import osmium

    found: dict[tuple[str, int], str | None] = {}
    fp = osmium.FileProcessor(str(path), osmium.osm.WAY | osmium.osm.RELATION)
    for obj in fp.with_filter(osmium.filter.KeyFilter("amenity")):
        if obj.tags.get("amenity") == "parking":
            kind = "way" if obj.is_way() else "relation"
            found[(kind, obj.id)] = obj.tags.get("parking")
    return found


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


def main() -> None:
    """Build and write ``data/plots.gpkg``."""
    rng = np.random.default_rng(SEED)
    osm = read_osm(OSM_PATH)
    areas = osm.areas.to_crs(CRS)
    lines = osm.lines.to_crs(CRS)
    # Stable row order for everything that follows.
    areas = areas.sort_values(["osm_type", "osm_id"]).reset_index(drop=True)
    lines = lines.sort_values(["osm_type", "osm_id"], kind="stable").reset_index(drop=True)

    west, south, east, north = 10.72, 59.90, 10.78, 59.94  # the extract's cut (SOURCE.txt)
    bbox = gpd.GeoSeries([shapely.box(west, south, east, north)], crs=4326).to_crs(CRS)
    inner = bbox.iloc[0].buffer(-EDGE_MARGIN_M, join_style="mitre")

    parking = parking_tags(OSM_PATH)
    is_parking = areas["amenity"] == "parking"
    parking_kind = [parking.get((t, i)) for t, i in zip(areas.osm_type, areas.osm_id, strict=True)]
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
    enclosed = (
        enclosure(pieces.geometry, shapely.union_all(np.array(buildings.geometry, dtype=object)))
        > MAX_ENCLOSURE
    )
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
    street = street_names(plots, lines)
    names = "Tomt ved " + street.fillna("ukjent gate")
    # A real list never has two plots with the same name; number repeats.
    seen = names.groupby(names).cumcount()
    plots["name"] = [n if k == 0 else f"{n} ({k + 1})" for n, k in zip(names, seen, strict=True)]
    labels, probs = zip(*OWNERS, strict=True)
    plots["owner"] = rng.choice(labels, size=len(plots), p=probs)
    plots["area_m2"] = plots.area.round(1)
    plots["landuse_source"] = plots["source"]
    plots = plots[["plot_id", "name", "area_m2", "owner", "landuse_source", "geometry"]]

    if OUT_PATH.exists():
        OUT_PATH.unlink()
    pyogrio.write_dataframe(
        plots,
        OUT_PATH,
        layer="plots",
        driver="GPKG",
        layer_options={
            "IDENTIFIER": "Illustrative demo plots (Oslo sentrum)",
            "DESCRIPTION": (
                "ILLUSTRATIVE demo candidate plots, NOT Oslo kommune's property list. "
                "Drawn by scripts/make_demo_plots.py on open land mapped in OpenStreetMap "
                "(data/oslo-center.osm.pbf, © OpenStreetMap contributors, ODbL 1.0); "
                "owners are invented."
            ),
        },
    )
    print(f"wrote {len(plots)} plots to {OUT_PATH.relative_to(REPO)}")
    print(plots.landuse_source.value_counts().to_string())
    print(plots.area_m2.describe().round(0).to_string())


if __name__ == "__main__":
    main()
