"""Make the illustrative drug-scene layer ``data/oslo_drug_scenes.gpkg``.

ILLUSTRATIVE ONLY. The features are places of active drug use (open drug scenes) and
low-threshold drug services in central Oslo as described in public reporting (newspapers,
the services' own pages); they are NOT an official register and NOT complete. A
municipality using sitefinder must supply its own layer (scenario ``layers: drug_scenes:
add_files``), drawn up with its outreach services.

Every feature is hand-entered below (lon/lat, WGS 84) with a comment giving its source,
and checked against the bundled OSM extract (``data/oslo-center.osm.pbf``): the street,
square, park or address it describes must lie where the coordinates say. The script fails
if a check does not hold. It also prints the OSM tags in the extract that mark
harm-reduction or drug services (``social_facility:for``, ``harm_reduction`` …), which the
default scenario already picks up from OSM.

Geometry: a single coordinate with radius 0 is a point; otherwise each part (a point or a
line) is buffered by ``radius_m`` in EPSG:25832 and the parts are merged into one small
polygon.

Output: layer ``drug_scenes``, EPSG:25832, columns ``name``, ``kind``, ``note``.
``kind`` is one of ``open_drug_scene``, ``former_open_drug_scene``,
``drug_consumption_room``, ``low_threshold_service``.

Run from the repository root: ``.venv/bin/python scripts/make_drug_scene_layer.py``
(``--out PATH`` writes elsewhere).
"""

from __future__ import annotations

import argparse
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import pyogrio
import shapely

REPO = Path(__file__).resolve().parents[1]
OSM_PATH = REPO / "data" / "oslo-center.osm.pbf"
OUT_PATH = REPO / "data" / "oslo_drug_scenes.gpkg"
CRS = "EPSG:25832"
FILE_DATE = "2025-06-16T00:00:00Z"  # newest element in the OSM extract
LAYER = "drug_scenes"
KINDS = {
    "open_drug_scene",
    "former_open_drug_scene",
    "drug_consumption_room",
    "low_threshold_service",
}

LonLat = tuple[float, float]


@dataclass(frozen=True)
class Check:
    """An OSM feature that must lie within ``max_m`` of the drawn feature.

    ``what`` is ``street`` (a highway named ``value``), ``named`` (any node, way or area
    named ``value``), ``address`` (an address node ``value`` = "Street 12", any letter
    suffix) or ``node`` (the OSM node with id ``value``).
    """

    what: str
    value: str | int
    max_m: float


@dataclass(frozen=True)
class Feature:
    """One hand-entered place: parts in lon/lat, buffered by ``radius_m`` (0: a point)."""

    name: str
    kind: str
    note: str
    parts: tuple[tuple[LonLat, ...], ...]
    radius_m: float
    checks: tuple[Check, ...] = field(default_factory=tuple)


FEATURES: tuple[Feature, ...] = (
    # --- open drug scenes ---------------------------------------------------------------
    Feature(
        name="Brugata / Storgata (ved Gunerius og Kiwi)",
        kind="open_drug_scene",
        note=(
            "Oslo's largest open drug scene since autumn 2014 ('Brugata became the new "
            "Plata', Aftenposten c. 2019); Brugata/Storgata named as an open scene "
            "(NPK/Aftenposten, Sept 2020); Storgata between Gunerius and the Kiwi shop "
            "(Avisa Oslo, 2021); the arcade outside Kiwi in Storgata a gathering place "
            "(Oslo kommune, Plan- og bygningsetaten, 2024). Illustrative."
        ),
        parts=(
            # Storgata from no. 28 past Gunerius (Storgata 32) and Kiwi (Storgata 33) to
            # the Brugata crossing, along the street's centre line in OSM.
            ((10.7524, 59.9141), (10.7535, 59.91445), (10.7541, 59.9147)),
            # Brugata, pedestrian street from Storgata to Vaterlands bru (OSM way 4241770
            # and its continuation 520220272).
            ((10.75349, 59.91437), (10.75588, 59.91387), (10.75796, 59.91348)),
        ),
        radius_m=15.0,
        checks=(
            Check("street", "Brugata", 5.0),
            Check("street", "Storgata", 5.0),
            Check("named", "Kiwi Storgata 33", 25.0),
            Check("named", "Gunerius kjøpesenter", 60.0),
        ),
    ),
    Feature(
        name="Vaterland (Vaterlandsparken)",
        kind="open_drug_scene",
        note=(
            "Vaterland counted among Oslo's open drug scenes (NPK/Aftenposten, Sept 2020); "
            "one of the areas Uteseksjonen works in (uteseksjonen.no). Illustrative."
        ),
        # Centre of the small park Vaterlandsparken (OSM way 4334996) by Akerselva.
        parts=(((10.7572, 59.9132),),),
        radius_m=40.0,
        checks=(Check("named", "Vaterlandsparken", 0.0),),
    ),
    Feature(
        name="Urtegata",
        kind="open_drug_scene",
        note=(
            "Counted among Oslo's open drug scenes (NPK/Aftenposten, Sept 2020; "
            "Aftenposten c. 2019); police removal orders in Storgata, Urtegata, Kristparken "
            "and Mariboes gate in 2021 (Avisa Oslo, 2021). Frelsesarmeen's Fyrlyset is in "
            "the street. Illustrative."
        ),
        # Urtegata from Hausmanns gate (north-west end) to Grønlandsleiret (south-east),
        # along the OSM centre line (ways 37041475, 36972582, 36972578, 4241702).
        parts=(
            (
                (10.76281, 59.91587),
                (10.76339, 59.9155),
                (10.76457, 59.91467),
                (10.76523, 59.91424),
                (10.76626, 59.9135),
            ),
        ),
        radius_m=12.0,
        checks=(Check("street", "Urtegata", 5.0), Check("address", "Urtegata 16", 40.0)),
    ),
    Feature(
        name="Skippergata",
        kind="open_drug_scene",
        note=(
            "Named with Urtegata as an open scene (Aftenposten c. 2019); the outreach van "
            "Sykepleie på hjul stops here (rus.no). Illustrative."
        ),
        # Skippergata between Tollbugata and Jernbanetorget (OSM ways 280893925,
        # 128773291, 690067289), not the E18 tunnel section further south.
        parts=(
            (
                (10.74749, 59.91039),
                (10.74888, 59.91187),
                (10.74933, 59.91243),
                (10.74988, 59.91315),
            ),
        ),
        radius_m=12.0,
        checks=(Check("street", "Skippergata", 5.0),),
    ),
    Feature(
        name="Mariboes gate",
        kind="open_drug_scene",
        note=(
            "One of the places of the open drug scene where the police gave removal orders "
            "in 2021 (Avisa Oslo, 2021). Illustrative."
        ),
        # Mariboes gate from Storgata to Hausmanns gate (OSM ways 467290775, 1298171468,
        # 4747206).
        parts=(
            (
                (10.7498, 59.91599),
                (10.75034, 59.91641),
                (10.75081, 59.91678),
                (10.75221, 59.91751),
                (10.75347, 59.91817),
            ),
        ),
        radius_m=12.0,
        checks=(Check("street", "Mariboes gate", 5.0),),
    ),
    Feature(
        name="Jernbanetorget / Oslo S",
        kind="open_drug_scene",
        note=(
            "Oslo S and Jernbanetorget are among the areas where Uteseksjonen meets "
            "vulnerable groups with drug problems (uteseksjonen.no); Plata, the old open "
            "scene, is next to it. Illustrative."
        ),
        # Centre of the square Jernbanetorget (OSM place=square, way 10576072 /
        # area 21152144) in front of Oslo S.
        parts=(((10.7503, 59.9110),),),
        radius_m=45.0,
        checks=(Check("named", "Jernbanetorget", 0.0), Check("named", "Oslo S", 250.0)),
    ),
    Feature(
        name="Plata (Christian Frederiks plass)",
        kind="former_open_drug_scene",
        note=(
            "'Plata', the square west of Østbanehallen at Oslo S: Oslo's open drug scene "
            "stayed here (memorial stone by Lars Sandås: 1998–2004; Erlik/"
            "humanruspolitikk.no, June 2025) until a police operation in 2011 (Aftenposten "
            "c. 2019). Illustrative."
        ),
        parts=(
            # From the memorial 'Plata' (OSM node 7904754751) to the middle of Christian
            # Frederiks plass (OSM place=square, relation 13360195).
            ((10.75012, 59.91029), (10.75149, 59.91002)),
        ),
        radius_m=30.0,
        checks=(
            Check("node", 7904754751, 5.0),
            Check("named", "Christian Frederiks plass", 0.0),
        ),
    ),
    Feature(
        name="Olafiagangen (Grønland, under Nylandsbrua)",
        kind="open_drug_scene",
        note=(
            "Street drug sales for many years in Olafiagangen under the motorway bridge "
            "(Aftenposten, June 2023). Illustrative."
        ),
        # Olafiagangen, pedestrian street (OSM way 163145627).
        parts=(((10.7592, 59.91328), (10.75879, 59.9127), (10.7587, 59.91252)),),
        radius_m=15.0,
        checks=(Check("street", "Olafiagangen", 5.0),),
    ),
    # --- low-threshold drug services ----------------------------------------------------
    Feature(
        name="Prindsen mottakssenter (brukerrom / sprøyterom)",
        kind="drug_consumption_room",
        note=(
            "Velferdsetaten's reception centre for people who use drugs, Storgata 36 "
            "(Prinds Christian Augusts Minde): supervised consumption room (the former "
            "'sprøyterom', now 'brukerrom'), Feltpleien health care, emergency beds "
            "(Vårt Oslo; Dagsavisen 2020 and Nov 2024 – closed by the Labour Inspection "
            "for some weeks in Oct–Nov 2024). Point: middle of the Storgata 36 complex; "
            "the exact entrance is not known. Illustrative."
        ),
        # Mean of the address nodes Storgata 36A–36J in OSM.
        parts=(((10.7558, 59.9151),),),
        radius_m=0.0,
        checks=(
            Check("address", "Storgata 36", 60.0),
            Check("named", "Prinds Christian Augusts Minde", 80.0),
        ),
    ),
    Feature(
        name="Fyrlyset og Feltpleien (Frelsesarmeen)",
        kind="low_threshold_service",
        note=(
            "The Salvation Army's low-threshold contact centre Fyrlyset, Urtegata 16, and "
            "its health service Feltpleien in Urtegata (frelsesarmeen.no). Illustrative."
        ),
        # Mean of the address nodes Urtegata 16A–16C in OSM.
        parts=(((10.7641, 59.91514),),),
        radius_m=0.0,
        checks=(Check("address", "Urtegata 16", 15.0), Check("street", "Urtegata", 40.0)),
    ),
    Feature(
        name="Uteseksjonen (Velferdsetaten)",
        kind="low_threshold_service",
        note=(
            "The municipality's outreach service for the city centre; drop-in counselling "
            "at Maridalsveien 3 (uteseksjonen.no). Illustrative."
        ),
        # Address node Maridalsveien 3 in OSM.
        parts=(((10.751597, 59.920658),),),
        radius_m=0.0,
        checks=(Check("address", "Maridalsveien 3", 5.0),),
    ),
)

#: OSM keys that can mark harm-reduction or drug services; reported, not used.
SERVICE_KEYS = (
    "social_facility",
    "social_facility:for",
    "harm_reduction",
    "healthcare",
    "healthcare:speciality",
    "drug",
    "needle_exchange",
    "vending",
)
DRUG_WORDS = ("drug", "addict", "needle", "syringe", "substance", "opioid", "methadone")


def to_local(geom: shapely.Geometry) -> shapely.Geometry:
    """Lon/lat geometry → EPSG:25832."""
    return gpd.GeoSeries([geom], crs=4326).to_crs(CRS).iloc[0]


def feature_geometry(feature: Feature) -> shapely.Geometry:
    """The feature in EPSG:25832: a point, or the merged buffer of its parts."""
    parts = [
        to_local(shapely.Point(p[0]) if len(p) == 1 else shapely.LineString(p))
        for p in feature.parts
    ]
    if feature.radius_m == 0:
        if len(parts) != 1 or parts[0].geom_type != "Point":
            raise ValueError(f"{feature.name}: radius 0 needs exactly one point")
        return parts[0]
    return shapely.union_all([p.buffer(feature.radius_m) for p in parts])


def read_osm_refs(path: Path) -> tuple[dict[str, list[shapely.Geometry]], Counter[tuple]]:
    """The OSM geometries the checks refer to and a tally of drug-service tags.

    Geometries are keyed like the checks (``street:Brugata``, ``address:Storgata 36``,
    ``node:7904754751`` …) and in EPSG:25832; the tally counts (OSM type, tags) of every
    node, way or relation with a drug or harm-reduction service tag or
    ``amenity=social_facility``.
    """
    import osmium

    wanted_names = {str(c.value) for f in FEATURES for c in f.checks if c.what != "node"}
    wanted_nodes = {int(c.value) for f in FEATURES for c in f.checks if c.what == "node"}
    wanted_streets = {
        str(c.value).rsplit(" ", 1)[0] for f in FEATURES for c in f.checks if c.what == "address"
    }
    wkb = osmium.geom.WKBFactory()
    found: dict[str, list[shapely.Geometry]] = {}
    tags_seen: Counter[tuple] = Counter()

    def add(key: str, geom: shapely.Geometry) -> None:
        found.setdefault(key, []).append(geom)

    for obj in osmium.FileProcessor(str(path)).with_locations().with_areas():
        tags = obj.tags
        service = {k: tags[k] for k in SERVICE_KEYS if k in tags}
        amenity = tags.get("amenity")
        drug_related = (
            amenity == "social_facility"
            or any(w in v.lower() for v in service.values() for w in DRUG_WORDS)
            or "harm_reduction" in service
            or "social_facility:for" in service
        )
        if drug_related and not obj.is_area():  # areas repeat their way/relation
            combo = tuple(sorted({**service, "amenity": amenity or ""}.items()))
            tags_seen[(obj.type_str(), combo)] += 1
        name = tags.get("name")
        try:
            if obj.is_node():
                geom = shapely.from_wkb(wkb.create_point(obj)) if obj.location.valid() else None
                street = tags.get("addr:street")
                number = tags.get("addr:housenumber", "")
                if geom is not None and street in wanted_streets:
                    digits = "".join(ch for ch in number if ch.isdigit())
                    add(f"address:{street} {digits}", geom)
                if geom is not None and obj.id in wanted_nodes:
                    add(f"node:{obj.id}", geom)
            elif obj.is_way():
                geom = shapely.from_wkb(wkb.create_linestring(obj)) if name else None
            elif obj.is_area():
                geom = shapely.from_wkb(wkb.create_multipolygon(obj)) if name else None
            else:
                geom = None
        except (RuntimeError, osmium.InvalidLocationError):  # nodes outside the extract
            geom = None
        if geom is None or name not in wanted_names:
            continue
        if obj.is_way() and "highway" in tags:
            add(f"street:{name}", geom)
        add(f"named:{name}", geom)
    return {k: [to_local(g) for g in v] for k, v in found.items()}, tags_seen


def check_features(
    geoms: list[shapely.Geometry], refs: dict[str, list[shapely.Geometry]]
) -> list[str]:
    """Every failed check, as a message (empty when all hold)."""
    failed = []
    for feature, geom in zip(FEATURES, geoms, strict=True):
        if feature.kind not in KINDS:
            failed.append(f"{feature.name}: unknown kind {feature.kind!r}")
        for check in feature.checks:
            key = f"{check.what}:{check.value}"
            candidates = refs.get(key, [])
            if not candidates:
                failed.append(f"{feature.name}: no OSM {check.what} {check.value!r} in the extract")
                continue
            dist = min(geom.distance(c) for c in candidates)
            status = "ok" if dist <= check.max_m + 1e-6 else "FAILED"
            print(f"  {feature.name}: {check.what} {check.value!r} at {dist:.1f} m ({status})")
            if status != "ok":
                failed.append(
                    f"{feature.name}: {check.what} {check.value!r} is {dist:.0f} m away "
                    f"(at most {check.max_m:g} m)"
                )
    return failed


def main(argv: list[str] | None = None) -> None:
    """Check the hand-entered features against the OSM extract and write the layer."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT_PATH, help="GeoPackage to write")
    out_path = parser.parse_args(argv).out

    geoms = [feature_geometry(f) for f in FEATURES]
    refs, tags_seen = read_osm_refs(OSM_PATH)
    print("checks against the OSM extract:")
    failed = check_features(geoms, refs)
    if failed:
        raise SystemExit("drug-scene features do not match the OSM extract:\n" + "\n".join(failed))
    print("OSM tags for drug or harm-reduction services in the extract (type, tags: count):")
    for (kind, combo), n in sorted(tags_seen.items(), key=lambda kv: (-kv[1], kv[0])):
        print(f"  {kind} {dict(combo)}: {n}")

    frame = gpd.GeoDataFrame(
        {
            "name": [f.name for f in FEATURES],
            "kind": [f.kind for f in FEATURES],
            "note": [f.note for f in FEATURES],
        },
        geometry=geoms,
        crs=CRS,
    )
    out_path.parent.mkdir(parents=True, exist_ok=True)
    if out_path.exists():
        out_path.unlink()
    # A fixed "last change" date (the extract's newest edit) makes the file byte-for-byte
    # reproducible, so its checksum in data/README.md stays valid after regenerating.
    pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": FILE_DATE})
    pyogrio.write_dataframe(
        frame,
        out_path,
        layer=LAYER,
        driver="GPKG",
        layer_options={
            "IDENTIFIER": "Illustrative drug scenes and low-threshold services (Oslo sentrum)",
            "DESCRIPTION": (
                "ILLUSTRATIVE layer of open drug scenes and low-threshold drug services in "
                "central Oslo, hand-entered from public reporting by "
                "scripts/make_drug_scene_layer.py (sources in each note). NOT an official "
                "register and not complete: a municipality must supply its own layer."
            ),
        },
    )
    print(f"wrote {len(frame)} features to {out_path}")
    print(frame[["name", "kind"]].assign(type=frame.geom_type).to_string())


if __name__ == "__main__":
    main()
