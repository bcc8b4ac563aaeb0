"""Straight-line metrics of the surroundings, checked against geometry worked out by hand.

A small world is drawn in metres (tests/osm_xml.py) so every expected number below is a
distance a reader can check on paper: the plot is the 30 m square (100..130, 100..130).
"""

from __future__ import annotations

import geopandas as gpd
import pytest
import shapely

from sitefinder.api import Study
from sitefinder.config import default_scenario
from sitefinder.sources.osm import read_osm
from tests.osm_xml import OsmBuilder, lonlat, square


def _world(tmp_path):
    osm = OsmBuilder()
    # Walking network: a footway 10 m east of the plot and a street across the top.
    osm.way([(140, -50), (140, 450)], highway="footway")
    osm.way([(-100, 450), (600, 450)], highway="residential")
    # Residential land use (x 90..400, y 60..400).
    osm.way([(90, 60), (400, 60), (400, 400), (90, 400)], closed=True, landuse="residential")
    # Untyped building in residential land: a dwelling, 20 m east of the plot.
    osm.way(square(150, 100, 12), closed=True, building="yes")
    # Untyped 4 × 4 m shed 10 m north of the plot: too small to be a dwelling.
    osm.way(square(100, 140, 4), closed=True, building="yes")
    # Untyped building outside residential land without an address, 18 m west: not a dwelling.
    osm.way(square(70, 100, 12), closed=True, building="yes")
    # Untyped building with an address outside residential land, 48 m south: a dwelling.
    osm.way(square(100, 40, 12), closed=True, building="yes", **{"addr:housenumber": "5"})
    # A house 45 m north.
    osm.way(square(100, 175, 10), closed=True, building="house")
    # Passers-by: a bakery at 70 m, a pub at 120 m (counts 3), a shop at 170 m (too far).
    osm.node(115, 200, shop="bakery")
    osm.node(115, 250, amenity="pub")
    osm.node(115, 300, shop="kiosk")
    # A primary road 15 m south of the plot: a busy frontage.
    osm.way([(-100, 85), (600, 85)], highway="primary")
    # A low-threshold service for drug users 200 m north of the plot.
    osm.node(115, 330, amenity="social_facility", social_facility="outreach",
             **{"social_facility:for": "drug_addicted"})
    # A rehabilitation centre for the same group: treatment, not the milieu.
    osm.node(115, 320, amenity="social_facility", social_facility="assisted_living",
             **{"social_facility:for": "drug_addicted"})
    # A nursing home 40 m west: another user group, not a health service.
    osm.node(60, 115, amenity="nursing_home")
    # A 250 × 250 m park whose north-east corner lies outside the extract.
    park = [osm.node(x, y) for x, y in [(500, 0), (750, 0), (750, 250), (500, 250)]]
    osm.way_of([*park, park[0]], leisure="park")
    path = osm.write(tmp_path / "world.osm", drop_nodes={park[2]})

    ring = [lonlat(x, y) for x, y in square(100, 100, 30)]
    far = [lonlat(x, y) for x, y in square(300, 600, 30)]
    plots = gpd.GeoDataFrame(
        {"plot_id": ["P1", "P2"]}, geometry=[shapely.Polygon(ring), shapely.Polygon(far)],
        crs="EPSG:4326",
    )
    plots_path = tmp_path / "plots.geojson"
    plots.to_file(plots_path)
    return path, plots_path


def _footway() -> OsmBuilder:
    """A world with one footway 10 m east of the test plot, to build on."""
    osm = OsmBuilder()
    osm.way([(140, -50), (140, 450)], highway="footway")
    return osm


def _study_of_the_plot(tmp_path, osm: OsmBuilder) -> Study:
    """The 30 m test plot (100..130, 100..130) in the world ``osm``, default scenario."""
    osm_path = osm.write(tmp_path / "world.osm")
    ring = [lonlat(x, y) for x, y in square(100, 100, 30)]
    gpd.GeoDataFrame({"plot_id": ["P"]}, geometry=[shapely.Polygon(ring)],
                     crs="EPSG:4326").to_file(tmp_path / "p.geojson")
    return Study(tmp_path / "p.geojson", osm_path, default_scenario(),
                 layers_dir=tmp_path / "layers", cache_dir=None)


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("world")
    osm_path, plots_path = _world(tmp)
    study = Study(plots_path, osm_path, default_scenario(), layers_dir=tmp / "layers",
                  cache_dir=None)
    return study, study.score().set_index("plot_id")


def test_untyped_buildings_count_as_dwellings_only_in_residential_land_or_with_address(measured):
    _, ranked = measured
    p1 = ranked.loc["P1"]
    assert p1["dwelling_dist_m"] == pytest.approx(20, abs=0.5)
    assert p1["dwellings_within_25m"] == 1
    assert p1["dwellings_within_50m"] == 3


def test_exposure_counts_places_within_150_m_nightlife_triple_and_busy_frontage(measured):
    _, ranked = measured
    p1 = ranked.loc["P1"]
    assert bool(p1["busy_frontage"])
    assert p1["exposure_index"] == pytest.approx(1 + 3 + 10)


def test_plot_near_drug_service_is_excluded_and_says_why(measured):
    _, ranked = measured
    p1 = ranked.loc["P1"]
    assert p1["drug_scene_dist_m"] == pytest.approx(200, abs=0.5)
    assert p1["status"] == "excluded"
    assert "rusmiljø" in p1["status_reason_nb"]
    assert "drug scene' (200 m)" in p1["status_reason_en"]
    # The drug service is the old milieu, not "another user group"; the nursing home is.
    assert p1["sensitive_dist_m"] == pytest.approx(40, abs=0.5)


def test_dwelling_on_or_beside_the_plot_excludes_it(tmp_path):
    osm = _footway()
    osm.way(square(125, 110, 10), closed=True, building="house")  # overlaps the plot
    row = _study_of_the_plot(tmp_path, osm).score().iloc[0]
    assert row["dwelling_dist_m"] == 0
    assert row["status"] == "excluded"
    assert "10 m" in row["status_reason_nb"] and "10 m" in row["status_reason_en"]


def test_area_cut_at_the_extract_edge_is_kept_clipped(tmp_path):
    osm = OsmBuilder()
    osm.way([(0, 0), (100, 0)], highway="footway")
    park = [osm.node(x, y) for x, y in [(500, 0), (750, 0), (750, 250), (500, 250)]]
    osm.way_of([*park, park[0]], leisure="park")
    data = read_osm(osm.write(tmp_path / "cut.osm", drop_nodes={park[2]}))
    assert data.stats["areas_clipped"] == 1
    parks = data.areas[data.areas["leisure"] == "park"].to_crs(25832)
    assert len(parks) == 1
    # The three corners inside the extract, closed along the cut: half the square.
    assert parks.geometry.area.iloc[0] == pytest.approx(250 * 250 / 2, rel=0.01)


def test_empty_drug_scene_layer_leaves_the_criterion_out_and_warns(tmp_path):
    study = _study_of_the_plot(tmp_path, _footway())
    row = study.score().iloc[0]
    assert "rusmiljø: ingen i kartdataene, ikke vektlagt" in row["explanation_nb"]
    codes = [w.code for w in study.data_warnings()]
    assert "empty_layer" in codes
    (warning,) = [w for w in study.data_warnings() if w.code == "empty_layer"]
    assert "drug_scenes" in warning.en and "«rusmiljø»" in warning.nb


@pytest.mark.filterwarnings("ignore::sitefinder.config.ScenarioWarning")  # replaces on purpose
def test_scenario_judges_columns_of_the_plot_file(tmp_path):
    osm = OsmBuilder()
    osm.way([(140, -50), (140, 450)], highway="footway")
    osm_path = osm.write(tmp_path / "w.osm")
    geoms = [shapely.Polygon([lonlat(x, y) for x, y in square(100, y0, 30)]) for y0 in (0, 200)]
    gpd.GeoDataFrame({"plot_id": ["A", "B"], "zoning": ["bolig", "næring"],
                      "price_nok": [2_000_000, 1_000_000]},
                     geometry=geoms, crs="EPSG:4326").to_file(tmp_path / "p.gpkg")
    (tmp_path / "s.yaml").write_text(
        "extends: default\n"
        "exclusions:\n"
        "  - {metric: zoning, one_of: [næring], reason_nb: regulert til næring,"
        " reason_en: zoned for business}\n",
        encoding="utf-8",
    )
    ranked = Study(tmp_path / "p.gpkg", osm_path, tmp_path / "s.yaml",
                   layers_dir=tmp_path / "layers", cache_dir=None).score().set_index("plot_id")
    assert ranked.loc["A", "status"] == "ok"
    assert ranked.loc["B", "status"] == "excluded"
    assert ranked.loc["B", "status_reason_nb"] == "regulert til næring"
    assert ranked.loc["B", "zoning"] == "næring"  # the plot's own column is kept as it was


def test_run_warns_when_most_buildings_are_untyped_and_dwellings_are_few(tmp_path):
    osm = _footway()
    osm.way([(200, 0), (500, 0), (500, 300), (200, 300)], closed=True, landuse="residential")
    osm.way(square(300, 100, 12), closed=True, building="house")  # the only dwelling
    for i in range(5):  # untyped buildings outside residential land, without addresses
        osm.way(square(-200 + 30 * i, 100, 12), closed=True, building="yes")
    study = _study_of_the_plot(tmp_path, osm)
    study.score()
    warnings = {w.code: w for w in study.data_warnings()}
    assert "83 %" in warnings["untyped_buildings"].nb  # 5 of 6 buildings
    # One dwelling on 0.09 km² of residential land: 11 per km².
    assert "11 dwellings per km²" in warnings["few_dwellings"].en


@pytest.mark.parametrize(("inside_m", "excluded"), [(18, True), (12, False)])
def test_plot_counts_as_inside_industrial_land_from_half_its_area(tmp_path, inside_m, excluded):
    # The plot is the 30 × 30 m square (100..130, 100..130); industrial land ends at
    # x = 100 + inside_m, so 60 % (18 m) or 40 % (12 m) of the plot lies in it.
    osm = _footway()
    osm.way([(0, 0), (100 + inside_m, 0), (100 + inside_m, 300), (0, 300)], closed=True,
            landuse="industrial")
    row = _study_of_the_plot(tmp_path, osm).score().iloc[0]
    assert bool(row["inside_industrial"]) is excluded
    assert (row["status"] == "excluded") is excluded
    assert row["industrial_dist_m"] == 0
