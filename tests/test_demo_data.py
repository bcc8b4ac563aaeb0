"""The shipped demo data are what a user gets from `make demo`: check they make sense.

Plots are checked against the shipped OSM extract itself (the ``osm_data`` fixture), so a
regenerated extract or plot file that puts a plot on a building or in a pond fails here.
"""

from __future__ import annotations

import geopandas as gpd
import pyogrio
import pytest
import shapely

from tests.conftest import DATA, DEMO_PLOTS, TEST_DATA

REQUIRED_COLUMNS = {"plot_id", "name", "area_m2", "owner", "landuse_source"}
LOCAL_CRS = "EPSG:25832"


@pytest.fixture(scope="module")
def plots() -> gpd.GeoDataFrame:
    return pyogrio.read_dataframe(DEMO_PLOTS, layer="plots")


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
    assert plots["owner"].notna().all() and (plots["owner"] == "Oslo kommune").mean() > 0.5


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
