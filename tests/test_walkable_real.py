"""Which real OSM ways are walkable, decided independently of sitefinder's own filter.

The expected set is built here from the raw tags pyosmium reads from the real Oslo clip,
following the rule a pedestrian would state (OSM wiki: access and foot tags), without
calling sitefinder's reader or network code for the decision.
"""

from __future__ import annotations

import osmium
import pytest

from sitefinder.config import NetworkSettings
from sitefinder.network import walkable_ways
from sitefinder.sources.osm import read_osm
from tests.conftest import TEST_DATA

CLIP = TEST_DATA / "oslo-clip.osm.pbf"
NOT_BUILT = {"construction", "proposed", "abandoned", "disused", "razed", "planned"}
FOOT_ALLOWED = {"yes", "designated", "permissive", "official"}


def _pedestrian_may_walk(tags: dict[str, str], classes: set[str]) -> bool:
    highway, foot, access = tags.get("highway"), tags.get("foot"), tags.get("access")
    if highway is None or highway in NOT_BUILT:
        return False
    if foot in ("no", "private"):
        return False
    if foot in FOOT_ALLOWED:
        return True  # an explicit permission wins over access=no and the road class
    if access in ("no", "private"):
        return False
    return highway in classes


@pytest.fixture(scope="module")
def raw_ways() -> dict[int, dict[str, str]]:
    return {
        way.id: dict(way.tags)
        for way in osmium.FileProcessor(str(CLIP), osmium.osm.WAY)
        if "highway" in way.tags
    }


def test_walkable_ways_of_the_real_clip_match_the_pedestrian_rule(raw_ways):
    settings = NetworkSettings()
    lines = read_osm(CLIP).lines
    lines = lines[lines["highway"].notna()]
    got = set(walkable_ways(lines, settings)["osm_id"].astype(int))
    present = set(lines["osm_id"].astype(int))
    expected = {
        way_id for way_id in present
        if _pedestrian_may_walk(raw_ways[way_id], set(settings.highway_types))
    }
    assert got == expected, (sorted(got - expected)[:10], sorted(expected - got)[:10])


def test_the_clip_exercises_every_access_rule(raw_ways):
    # The comparison above means little unless the real data holds each kind of way.
    tags = list(raw_ways.values())
    assert sum(t.get("access") in ("no", "private") and t.get("foot") not in FOOT_ALLOWED
               for t in tags) > 20
    assert sum(t.get("foot") in FOOT_ALLOWED for t in tags) > 10
    # (access=no with a foot exception does not occur in this clip; the hand-drawn cases in
    # tests/test_network_access.py cover it.)
    assert sum(t.get("foot") == "no" for t in tags) > 10
    assert sum(t.get("highway") == "trunk" for t in tags) > 10
