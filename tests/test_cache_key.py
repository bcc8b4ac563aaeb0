"""The metrics cache is reused only for the same data and the same measurement settings.

A stale cache is the worst kind of wrong answer: a changed scenario or map silently
reusing old distances. Small hand-drawn worlds (tests/osm_xml.py) keep this fast.
"""

from __future__ import annotations

import geopandas as gpd
import pytest
import shapely

from sitefinder.api import Study
from sitefinder.config import default_scenario
from tests.osm_xml import OsmBuilder, lonlat, square


def _world(path, shortcut: bool):
    """A plot and a shop 200 m apart as the crow flies; 600 m round, 200 m by the shortcut."""
    osm = OsmBuilder()
    osm.way([(0, 0), (0, 200), (200, 200), (200, 0)], highway="footway")
    if shortcut:
        osm.way([(0, 0), (200, 0)], highway="footway")
    osm.node(200, -5, shop="supermarket")
    return osm.write(path)


@pytest.fixture
def plots(tmp_path):
    ring = [lonlat(x, y) for x, y in square(-15, -30, 10)]
    path = tmp_path / "plots.geojson"
    gpd.GeoDataFrame({"plot_id": ["P"]}, geometry=[shapely.Polygon(ring)],
                     crs="EPSG:4326").to_file(path)
    return path


def test_changed_measurement_settings_measure_again(tmp_path, plots):
    osm = _world(tmp_path / "w.osm", shortcut=False)
    kwargs = dict(layers_dir=tmp_path / "layers", cache_dir=tmp_path / "cache")
    scenario = default_scenario()
    first = Study(plots, osm, scenario, **kwargs)
    first.score()
    slow = scenario.model_copy(update={"network": scenario.network.model_copy(
        update={"walk_speed_kmh": 3.0})})
    second = Study(plots, osm, slow, **kwargs)
    minutes = second.score()["time_grocery_min"].iloc[0]
    assert not second.cache_hit
    assert minutes == pytest.approx(first.metrics["time_grocery_min"].iloc[0] * 4.5 / 3.0)
    third = Study(plots, osm, scenario, **kwargs)
    third.score()
    assert third.cache_hit  # and the original settings still find their own table


def test_changed_osm_file_measures_again_even_when_every_layer_is_the_users(tmp_path, plots):
    # Every layer from the user's own files: only the OSM file (the network) changes.
    empty = tmp_path / "empty.gpkg"
    gpd.GeoDataFrame({"name": ["x"]}, geometry=[shapely.Point(lonlat(5000, 5000))],
                     crs="EPSG:4326").to_file(empty)
    shop = tmp_path / "shop.gpkg"
    gpd.GeoDataFrame({"name": ["shop"]}, geometry=[shapely.Point(lonlat(200, -5))],
                     crs="EPSG:4326").to_file(shop)
    scenario = default_scenario()
    layers = {name: spec.model_copy(update={"file": shop if name == "grocery" else empty,
                                            "add_files": []})
              for name, spec in scenario.layers.items()}
    scenario = scenario.model_copy(update={"layers": layers})
    kwargs = dict(layers_dir=tmp_path / "layers", cache_dir=tmp_path / "cache")
    osm = tmp_path / "w.osm"
    _world(osm, shortcut=False)
    around = Study(plots, osm, scenario, **kwargs).score()["dist_grocery_m"].iloc[0]
    _world(osm, shortcut=True)  # the same path, a new footway
    study = Study(plots, osm, scenario, **kwargs)
    direct = study.score()["dist_grocery_m"].iloc[0]
    assert not study.cache_hit
    assert around == pytest.approx(620, abs=15)
    assert direct == pytest.approx(220, abs=15)


def test_every_setting_not_declared_scoring_is_part_of_the_cache_key():
    from sitefinder.config import SCORING_FIELDS, Scenario

    scenario = default_scenario()
    measured = set(scenario.measurement_settings())
    assert measured == set(Scenario.model_fields) - SCORING_FIELDS
    # A measurement setting deep inside changes the key; a scoring one does not.
    deeper = scenario.model_copy(update={"measure": scenario.measure.model_copy(
        update={"count_within_min": 15.0})})
    assert deeper.measurement_key() != scenario.measurement_key()
    assert scenario.with_weights(transit=9).measurement_key() == scenario.measurement_key()


# --- work once: select and report after run read the extract from the cache -------------

def test_a_second_study_reuses_the_read_extract_network_and_layers(tmp_path, plots):
    osm = _world(tmp_path / "w.osm", shortcut=True)
    kwargs = dict(layers_dir=tmp_path / "layers", cache_dir=tmp_path / "cache")
    first = Study(plots, osm, default_scenario(), **kwargs)
    first.score()
    second = Study(plots, osm, default_scenario(), **kwargs)
    second.score()
    net, layers, extract = second.network, second.layers, second.osm
    assert second.cache_hit
    # What `sitefinder select` and `report` need after `run`, without parsing the extract
    # or building anything again.
    assert not {"read OSM", "build network", "build layers"} & set(second.timings)
    assert (net.xy == first.network.xy).all() and (net.graph != first.network.graph).nnz == 0
    assert set(layers.frames) == set(first.layers.frames)
    assert extract.lines.equals(first.osm.lines)
    assert "built" not in layers.origin.values()  # the files are reused now


def test_a_changed_extract_is_read_again_and_a_damaged_cached_extract_repaired(tmp_path, plots):
    from sitefinder.outfolder import DamagedFileWarning

    osm = _world(tmp_path / "w.osm", shortcut=False)
    kwargs = dict(layers_dir=tmp_path / "layers", cache_dir=tmp_path / "cache")
    Study(plots, osm, default_scenario(), **kwargs).score()
    _world(osm, shortcut=True)  # the same file name, new content
    changed = Study(plots, osm, default_scenario(), **kwargs)
    assert changed.score()["dist_grocery_m"].iloc[0] < 300
    assert "read OSM" in changed.timings
    for cached in (tmp_path / "cache").glob("osm-*.pkl"):
        cached.write_bytes(b"not a pickle")
    with pytest.warns(DamagedFileWarning, match="cached OSM extract"):
        damaged = Study(plots, osm, default_scenario(), **kwargs)
        extract = damaged.osm
    assert len(extract.lines) == 2 and "read OSM" in damaged.timings
