"""The shipped demo data are what a user gets from `make demo`: check they make sense.

Plots are checked against the shipped OSM extract itself (the ``osm_data`` fixture), so a
regenerated extract or plot file that puts a plot on a building or in a pond fails here.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pyogrio
import pytest
import shapely

from sitefinder.capacity import CapacitySettings, plan_units
from sitefinder.config import default_scenario
from sitefinder.layers import plain_tag_values
from tests.conftest import DATA, DEMO_PLOTS, TEST_DATA

REQUIRED_COLUMNS = {
    "plot_id",
    "name",
    "area_m2",
    "owner",
    "zoning",
    "price_nok",
    "landuse_source",
}
LOCAL_CRS = "EPSG:25832"
# Reguleringsformål the demo plots use (bokmål, as in a municipal plan).
ZONING = {
    "bolig",
    "offentlig eller privat tjenesteyting",
    "friområde",
    "næring",
    "kombinert bebyggelse",
    "sentrumsformål",
    "samferdsel",
}
RESIDENTIAL = "landuse=residential"
SINGLE_HOUSE_MAX_M2 = 600.0  # residential plots up to this size are single-house plots
# Dwelling types, as the default scenario's `dwellings` layer has them.
DWELLINGS = plain_tag_values(default_scenario().layers["dwellings"], "building")
DRUG_SCENES = DATA / "oslo_drug_scenes.gpkg"
DRUG_SCENE_KINDS = {
    "open_drug_scene",
    "former_open_drug_scene",
    "drug_consumption_room",
    "low_threshold_service",
}
CENTRE_LONLAT = (10.7403, 59.9131)  # Stortinget, as in scripts/make_demo_plots.py


@pytest.fixture(scope="module")
def plots() -> gpd.GeoDataFrame:
    return pyogrio.read_dataframe(DEMO_PLOTS, layer="plots")


@pytest.fixture(scope="module")
def residential(plots) -> gpd.GeoDataFrame:
    """The plots drawn in ordinary residential streets."""
    return plots[plots["landuse_source"] == RESIDENTIAL]


@pytest.fixture(scope="module")
def buildings(osm_data) -> gpd.GeoDataFrame:
    areas = osm_data.areas
    is_building = areas["building"].notna() & (areas["building"] != "no")
    return areas.loc[is_building, ["building", "geometry"]].to_crs(LOCAL_CRS)


@pytest.fixture(scope="module")
def drug_scenes() -> gpd.GeoDataFrame:
    return pyogrio.read_dataframe(DRUG_SCENES, layer="drug_scenes")


@pytest.fixture(scope="module")
def blocked(osm_data) -> gpd.GeoDataFrame:
    """Buildings and water of the shipped extract, in the plots' CRS."""
    areas = osm_data.areas
    is_building = areas["building"].notna() & (areas["building"] != "no")
    is_water = areas["natural"].eq("water") | areas["water"].notna() | areas["waterway"].notna()
    return areas.loc[is_building | is_water, ["building", "geometry"]].to_crs(LOCAL_CRS)


def test_plots_file_has_one_plots_layer_in_local_crs(plots):
    layers = pyogrio.list_layers(DEMO_PLOTS)
    assert "plots" in layers[:, 0]
    assert plots.crs is not None and plots.crs.to_epsg() == 25832


def test_plots_count_ids_and_columns(plots):
    assert 40 <= len(plots) <= 150
    assert set(plots.columns) >= REQUIRED_COLUMNS
    assert plots["plot_id"].notna().all() and plots["plot_id"].is_unique
    assert plots["plot_id"].str.fullmatch(r"OSL-\d{3}").all()
    assert plots["name"].str.startswith("Tomt ved ").all()
    assert plots["name"].is_unique
    assert plots["owner"].notna().all()
    # Mostly municipal land, as in the report (the municipality or one of its agencies).
    assert plots["owner"].str.startswith("Oslo kommune").mean() > 0.6


def test_plot_geometries_valid_polygons_with_matching_area(plots):
    assert plots.geometry.notna().all()
    assert not plots.geometry.is_empty.any()
    assert plots.geom_type.isin(["Polygon", "MultiPolygon"]).all()
    assert plots.geometry.is_valid.all()
    assert (plots["area_m2"] - plots.area).abs().max() < 1.0
    # The awkward plots are part of the list: one below 400 m², none absurdly large.
    assert plots.area.min() < 400
    assert plots.area.max() <= 6000


def test_plots_do_not_overlap_each_other(plots):
    pairs = gpd.sjoin(
        plots[["plot_id", "geometry"]], plots[["plot_id", "geometry"]], predicate="intersects"
    )
    pairs = pairs[pairs["plot_id_left"] != pairs["plot_id_right"]]
    for left, right in zip(pairs["plot_id_left"], pairs["plot_id_right"], strict=True):
        a = plots.loc[plots.plot_id == left].geometry.iloc[0]
        b = plots.loc[plots.plot_id == right].geometry.iloc[0]
        assert a.intersection(b).area < 1.0, (left, right)


def test_no_plot_on_buildings_or_water(plots, blocked):
    hits = gpd.sjoin(plots[["plot_id", "geometry"]], blocked, predicate="intersects")
    for plot_id, group in hits.groupby("plot_id"):
        plot = plots.loc[plots.plot_id == plot_id].geometry.iloc[0]
        covered = shapely.union_all(blocked.geometry.loc[group["index_right"]].to_numpy())
        share = plot.intersection(covered).area / plot.area
        assert share <= 0.01, f"{plot_id} is {share:.1%} covered by buildings or water"


def test_plots_lie_inside_the_extract(plots, osm_data):
    west, south, east, north = osm_data.bounds
    box = shapely.box(west, south, east, north)
    outside = ~plots.to_crs(4326).geometry.within(box)
    assert not outside.any(), plots.loc[outside, "plot_id"].tolist()


def test_plots_file_says_it_is_illustrative():
    info = pyogrio.read_info(DEMO_PLOTS, layer="plots")
    description = (info.get("layer_metadata") or {}).get("DESCRIPTION", "")
    assert "ILLUSTRATIVE" in description and "NOT Oslo kommune" in description


def test_every_plot_has_owner_zoning_and_price(plots):
    for column in ("owner", "zoning", "price_nok"):
        assert plots[column].notna().all(), column
    assert plots["owner"].str.strip().ne("").all()
    assert set(plots["zoning"]) <= ZONING
    assert np.issubdtype(plots["price_nok"].dtype, np.integer)
    assert (plots["price_nok"] > 0).all()
    # Plausible market values: NOK per m² of plot between a park and a city-centre site.
    per_m2 = plots["price_nok"] / plots.area
    assert per_m2.between(500, 100_000).all(), per_m2.describe()
    # Dearer in the centre.
    centre = gpd.GeoSeries([shapely.Point(CENTRE_LONLAT)], crs=4326).to_crs(LOCAL_CRS).iloc[0]
    central = plots.centroid.distance(centre) < 1000
    assert central.sum() >= 5
    assert per_m2[central].median() > per_m2[~central].median()


def test_plot_ids_keep_the_open_land_plots_first(plots):
    # New plots are only ever appended, so a plot id keeps meaning the same plot.
    assert plots["plot_id"].tolist() == [f"OSL-{i:03d}" for i in range(1, len(plots) + 1)]
    is_residential = (plots["landuse_source"] == RESIDENTIAL).to_numpy()
    first = int(np.argmax(is_residential))
    assert first >= 70 and is_residential[first:].all()


def test_residential_plots_sizes_and_capacity(residential):
    assert 15 <= len(residential) <= 25
    single = residential[residential.area <= SINGLE_HOUSE_MAX_M2]
    multi = residential[residential.area > SINGLE_HOUSE_MAX_M2]
    assert len(single) >= 6
    assert single.area.min() >= 250
    # Exactly one unit fits on a single-house plot under the default unit, spacing and
    # setback, once single units are allowed at all.
    one = plan_units(single, CapacitySettings(min_units_per_site=1))
    assert (one["capacity_units"] == 1).all(), one["capacity_units"].to_dict()
    assert (one["capacity_status"] == "ok").all()
    # The others take two or three under the default settings.
    more = plan_units(multi, CapacitySettings())
    assert more["capacity_units"].isin([2, 3]).all(), more["capacity_units"].to_dict()
    assert (more["capacity_status"] == "ok").all()


def test_residential_plots_overlap_no_building(residential, buildings):
    hits = gpd.sjoin(residential[["plot_id", "geometry"]], buildings, predicate="intersects")
    assert hits.empty, sorted(set(hits["plot_id"]))


def test_residential_plots_overlap_no_other_plot(plots, residential):
    for plot_id, geom in zip(residential["plot_id"], residential.geometry, strict=True):
        others = plots[plots["plot_id"] != plot_id]
        assert not others.intersects(geom).any(), plot_id


def test_residential_plots_lie_in_residential_streets(residential, osm_data, buildings):
    areas = osm_data.areas
    land = shapely.union_all(
        areas.loc[areas["landuse"] == "residential", "geometry"].to_crs(LOCAL_CRS).to_numpy()
    )
    homes = buildings[buildings["building"].isin(DWELLINGS)]
    for plot_id, geom in zip(residential["plot_id"], residential.geometry, strict=True):
        assert geom.intersection(land).area >= 0.99 * geom.area, plot_id
        # Homes nearby, but none on the plot (checked above) and none so close that the
        # default scenario's 10 m neighbour rule would exclude the plot.
        nearest = homes.distance(geom).min()
        assert 10.0 <= nearest <= 60.0, (plot_id, nearest)


def test_drug_scene_layer_opens_in_local_crs(drug_scenes):
    assert "drug_scenes" in pyogrio.list_layers(DRUG_SCENES)[:, 0]
    assert drug_scenes.crs is not None and drug_scenes.crs.to_epsg() == 25832
    assert len(drug_scenes) >= 5
    for column in ("name", "kind", "note"):
        assert drug_scenes[column].notna().all() and drug_scenes[column].str.len().gt(0).all()
    assert set(drug_scenes["kind"]) <= DRUG_SCENE_KINDS
    assert drug_scenes.geometry.is_valid.all() and not drug_scenes.geometry.is_empty.any()
    assert drug_scenes.geom_type.isin(["Point", "Polygon", "MultiPolygon"]).all()
    # Points or small polygons (a street stretch, a square), not whole districts.
    assert drug_scenes.area.max() < 30_000


def test_drug_scene_layer_lies_inside_the_extract(drug_scenes, osm_data):
    west, south, east, north = osm_data.bounds
    box = shapely.box(west, south, east, north)
    outside = ~drug_scenes.to_crs(4326).geometry.within(box)
    assert not outside.any(), drug_scenes.loc[outside, "name"].tolist()


def test_drug_scene_layer_says_it_is_illustrative(drug_scenes):
    info = pyogrio.read_info(DRUG_SCENES, layer="drug_scenes")
    description = (info.get("layer_metadata") or {}).get("DESCRIPTION", "")
    assert "ILLUSTRATIVE" in description and "NOT an official register" in description
    assert drug_scenes["note"].str.contains("Illustrative").all()


def test_boundary_files_open_with_names():
    kommune = pyogrio.read_dataframe(DATA / "oslo_kommune.geojson")
    assert len(kommune) == 1 and kommune["kommunenummer"].iloc[0] == "0301"
    bydeler = pyogrio.read_dataframe(DATA / "oslo_bydeler.gpkg")
    assert {"bydel", "bynavn"} <= set(bydeler.columns)
    assert bydeler["bydel"].notna().all() and "Gamle Oslo" in set(bydeler["bydel"])
    assert bydeler.geometry.is_valid.all()


def test_small_clip_is_a_real_bbox_cut():
    from sitefinder.sources.osm import read_osm

    path = TEST_DATA / "oslo-clip.osm.pbf"
    assert path.stat().st_size < 600_000
    clip = read_osm(path)
    west, south, east, north = clip.bounds
    assert west > 10.754 and east < 10.776 and south > 59.907 and north < 59.919
    # Ways crossing the box edge keep refs to nodes outside it, as in real downloads.
    assert clip.stats["ways_cut"] > 0
    assert (clip.lines["highway"] == "footway").sum() > 100
