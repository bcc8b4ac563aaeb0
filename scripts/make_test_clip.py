"""Cut the small test extract ``tests/data/oslo-clip.osm.pbf`` from the bundled OSM file.

A plain bounding-box cut around Grønland/Tøyen (10.755,59.908 – 10.775,59.918), done the
way ``osmium extract --strategy simple`` does it: every node inside the box, every way
that references at least one of those nodes, and every relation with a member already
kept. Ways keep their full node lists, so refs to nodes outside the box dangle — exactly
like the bundled extract and what users download, which is why tests should see it.

Run from the repository root: ``.venv/bin/python scripts/make_test_clip.py``.
"""

from __future__ import annotations

from pathlib import Path

import osmium

REPO = Path(__file__).resolve().parents[1]
SOURCE = REPO / "data" / "oslo-center.osm.pbf"
TARGET = REPO / "tests" / "data" / "oslo-clip.osm.pbf"
WEST, SOUTH, EAST, NORTH = 10.755, 59.908, 10.775, 59.918
MAX_BYTES = 600_000  # keep the test fixture small


def inside(location: osmium.osm.Location) -> bool:
    """True when a valid location lies in the clip box (edges included)."""
    return location.valid() and WEST <= location.lon <= EAST and SOUTH <= location.lat <= NORTH


def main() -> None:
    """Write the clip; one pass suffices because pbf files are sorted nodes, ways, relations."""
    header = osmium.io.Header()
    header.add_box(
        osmium.osm.Box(osmium.osm.Location(WEST, SOUTH), osmium.osm.Location(EAST, NORTH))
    )
    header.set("generator", "sitefinder scripts/make_test_clip.py")
    TARGET.parent.mkdir(parents=True, exist_ok=True)
    TARGET.unlink(missing_ok=True)

    nodes: set[int] = set()
    ways: set[int] = set()
    relations: set[int] = set()
    counts = {"n": 0, "w": 0, "r": 0}
    with osmium.SimpleWriter(str(TARGET), header=header) as writer:
        for obj in osmium.FileProcessor(str(SOURCE)):
            if obj.is_node():
                if inside(obj.location):
                    nodes.add(obj.id)
                    writer.add_node(obj)
                    counts["n"] += 1
            elif obj.is_way():
                if any(ref.ref in nodes for ref in obj.nodes):
                    ways.add(obj.id)
                    writer.add_way(obj)
                    counts["w"] += 1
            elif obj.is_relation():
                kept = {"n": nodes, "w": ways, "r": relations}
                if any(m.ref in kept[m.type] for m in obj.members):
                    relations.add(obj.id)
                    writer.add_relation(obj)
                    counts["r"] += 1

    size = TARGET.stat().st_size
    print(
        f"wrote {TARGET.relative_to(REPO)}: {counts['n']} nodes, {counts['w']} ways, "
        f"{counts['r']} relations, {size:,} bytes"
    )
    if size > MAX_BYTES:
        raise SystemExit(f"clip is {size:,} bytes, over the {MAX_BYTES:,} byte budget")


if __name__ == "__main__":
    main()
