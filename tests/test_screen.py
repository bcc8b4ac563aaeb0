"""`sitefinder screen`: candidate cells where a house could stand, ranked like plots.

One screening of the small real clip (Grønland/Tøyen, 50 m cells) is shared by most tests;
the CLI test screens the same clip at 100 m cells to stay quick.
"""

from __future__ import annotations

import json
import shutil
import tempfile

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import shapely

from sitefinder.cli import main
from sitefinder.errors import InputError
from sitefinder.screen import screen
from sitefinder.screen_cells import (
    RAIL_HALF_WIDTH_M,
    ROAD_HALF_WIDTH_M,
    ScreenSettings,
    area_polygon,
    steep_cells,
)
from sitefinder.screen_outputs import NODATA
from sitefinder.screen_sea import sea_polygons
from sitefinder.sources.osm import read_osm
from sitefinder.terrain import slope
from tests.conftest import OSM_PBF, TEST_DATA
from tests.test_browser import CHROMEDRIVER, CHROMIUM, chromium_options

CLIP = TEST_DATA / "oslo-clip.osm.pbf"
#: The cut is rounded to a 1 cm grid: an obstacle shrunk by this much must not be touched.
ROUNDING_M = 0.02
TOLERANCE_M2 = 1e-6


@pytest.fixture(scope="module")
def screened(tmp_path_factory):
    """The clip screened at 50 m with the default scenario, outputs written."""
    tmp = tmp_path_factory.mktemp("screen")
    result = screen(CLIP, out=tmp / "out", layers_dir=tmp / "layers")
    return result, tmp


@pytest.fixture(scope="module")
def clip_osm():
    return read_osm(CLIP)


def _local(frame: gpd.GeoDataFrame, crs) -> np.ndarray:
    return frame.to_crs(crs).geometry.to_numpy()


def _overlap_m2(cells: np.ndarray, things: np.ndarray) -> np.ndarray:
    """Per cell, the largest area it shares with any of ``things`` (less the rounding)."""
    things = shapely.buffer(shapely.make_valid(things), -ROUNDING_M)
    things = things[~shapely.is_empty(things)]
    out = np.zeros(len(cells))
    cell_i, thing_i = shapely.STRtree(things).query(cells, predicate="intersects")
    shared = shapely.area(shapely.intersection(cells[cell_i], things[thing_i]))
    np.maximum.at(out, cell_i, shared)
    return out


def test_screening_finds_ranked_cells_and_counts_them(screened):
    result, _ = screened
    c = result.counts
    assert c["considered"] > c["buildable"] > c["ranked"] > 0
    assert len(result.cells) == c["buildable"]  # every candidate is in the output
    assert result.cells["plot_id"].is_unique
    assert c["best_areas"] == len(result.areas) > 0


def test_no_cell_on_a_building(screened, clip_osm):
    result, _ = screened
    areas = clip_osm.areas
    buildings = areas[areas["building"].notna() & (areas["building"] != "no")]
    shared = _overlap_m2(result.cells.geometry.to_numpy(), _local(buildings, result.crs))
    assert shared.max() <= TOLERANCE_M2


@pytest.mark.parametrize(("key", "values"), [
    ("natural", ["water"]), ("leisure", ["park"]), ("leisure", ["playground", "pitch"]),
])
def test_no_cell_on_water_parks_or_sports_grounds(screened, clip_osm, key, values):
    result, _ = screened
    areas = clip_osm.areas
    land = areas[areas[key].isin(values)]
    assert len(land), f"the clip has {key}={values}: the test must check something"
    shared = _overlap_m2(result.cells.geometry.to_numpy(), _local(land, result.crs))
    assert shared.max() <= TOLERANCE_M2


def test_no_cell_on_industrial_land(screened):
    result, _ = screened
    industrial = result.study.layers["industrial"]
    if len(industrial) == 0:
        pytest.skip("no industrial land in the clip")
    shared = _overlap_m2(result.cells.geometry.to_numpy(), _local(industrial, result.crs))
    assert shared.max() <= TOLERANCE_M2
    assert not result.cells["inside_industrial"].astype(bool).any()


@pytest.mark.parametrize(("key", "value"), [
    ("highway", "primary"), ("highway", "secondary"), ("highway", "residential"),
    ("highway", "service"), ("highway", "footway"), ("railway", "tram"),
])
def test_no_cell_on_a_road_or_railway(screened, clip_osm, key, value):
    result, _ = screened
    lines = clip_osm.lines
    on_surface = ~lines["tunnel"].isin(["yes", "building_passage", "culvert", "covered"])
    on_surface &= ~(pd.to_numeric(lines["layer"], errors="coerce") < 0)
    ways = _local(lines[on_surface & (lines[key] == value)], result.crs)
    assert len(ways), f"the clip has {key}={value}: the test must check something"
    _, dist = shapely.STRtree(ways).query_nearest(
        result.cells.geometry.to_numpy(), return_distance=True, all_matches=False)
    # Not on the way, and its half-width kept free on both sides.
    half = (ROAD_HALF_WIDTH_M | RAIL_HALF_WIDTH_M)[value]
    assert dist.min() >= half - ROUNDING_M


def test_no_cell_closer_to_a_dwelling_than_the_scenario_allows(screened):
    result, _ = screened
    # The land is cut back from dwellings, so no candidate is excluded for a neighbour.
    assert result.cells["dwelling_dist_m"].min() >= 10
    reasons = result.cells["status_reason_en"].fillna("")
    assert not reasons.str.contains("another dwelling").any()


def test_best_areas_contain_their_best_cells(screened):
    result, _ = screened
    cells, areas = result.cells, result.areas
    for area in areas.itertuples():
        members = cells[cells["area_id"] == area.area_id]
        assert len(members) == area.n_cells
        outline = shapely.buffer(area.geometry, 0.01)
        assert shapely.covers(outline, members.geometry.to_numpy()).all()
        best = members.loc[members["score"].idxmax()]
        assert best["plot_id"] == area.best_cell
        assert best["score"] == pytest.approx(area.best_score)
        assert members["score"].mean() == pytest.approx(area.mean_score)
        # Whole squares, cut only at the edge of the screened area.
        assert area.area_m2 <= area.n_cells * 50 * 50 + 1e-6
        assert area.area_m2 == pytest.approx(shapely.intersection(
            shapely.union_all(_squares(members, result.grid)), result.area).area)
        assert shapely.covers(shapely.buffer(result.area, 0.01), area.geometry)
        assert area.reasons_nb.startswith("Område på") and "Beste rute" in area.reasons_nb
        assert area.reasons_en.startswith("Area of")
    # Best areas are ranked by their best score, and the best cell of all is in area 1.
    assert areas["best_score"].is_monotonic_decreasing
    top = cells[cells["status"] == "ok"].sort_values("score", ascending=False).iloc[0]
    assert top["area_id"] == "A001"


def _squares(cells: pd.DataFrame, grid) -> np.ndarray:
    left = grid.x0 + cells["col"].to_numpy(float) * grid.size
    top = grid.y_top - cells["row"].to_numpy(float) * grid.size
    return shapely.box(left, top - grid.size, left + grid.size, top)


def test_good_cells_are_exactly_those_in_best_areas(screened):
    result, _ = screened
    cells = result.cells
    good = (cells["status"] == "ok") & (cells["score"] >= result.best_threshold)
    assert ((cells["area_id"] != "") == good).all()
    # Top decile by default.
    share = good.sum() / result.counts["ranked"]
    assert 0.05 <= share <= 0.2


def test_screening_and_ranking_agree_where_a_plot_equals_a_cell(screened, tmp_path):
    from sitefinder.api import Study

    result, tmp = screened
    cells = result.cells
    picked = pd.concat([
        cells[cells["status"] == "ok"].head(2),
        cells[cells["status"] == "ok"].tail(1),
        cells[cells["status"] != "ok"].head(1),
    ])
    plots = tmp_path / "plots.gpkg"
    picked[["plot_id", "geometry"]].to_file(plots)
    study = Study(plots, CLIP, layers_dir=tmp / "layers", cache_dir=None)
    ranked = study.score().set_index("plot_id")
    for cell in picked.itertuples():
        plot = ranked.loc[cell.plot_id]
        assert plot["status"] == cell.status
        assert plot["capacity_units"] == cell.capacity_units
        if cell.status == "ok":
            assert plot["score"] == pytest.approx(cell.score, abs=1e-9)


def test_suitability_raster_matches_the_cells(screened):
    result, _ = screened
    cells = result.cells
    with rasterio.open(result.raster_path) as src:
        band = src.read(1)
        assert src.crs.to_epsg() == result.crs.to_epsg()
        assert src.nodata == NODATA
        assert src.res == (50.0, 50.0)
        ok = cells[cells["status"] == "ok"]
        # The centre of each ranked cell's square reads its score.
        left = result.grid.x0 + (ok["col"] + 0.5) * 50
        top = result.grid.y_top - (ok["row"] + 0.5) * 50
        sampled = np.array([v[0] for v in src.sample(zip(left, top, strict=True))])
    np.testing.assert_allclose(sampled, ok["score"].to_numpy(), atol=1e-4)
    assert (band != NODATA).sum() == len(ok)


def test_outputs_are_complete_and_readable(screened):
    from sitefinder.outfolder import check_output_folder

    result, tmp = screened
    out = tmp / "out"
    assert check_output_folder(out) == []
    gpkg = gpd.read_file(out / "screen_cells.gpkg", layer="cells")
    parquet = gpd.read_parquet(out / "screen_cells.parquet")
    assert len(gpkg) == len(parquet) == len(result.cells)
    assert parquet.crs.to_epsg() == result.crs.to_epsg()
    assert set(parquet["plot_id"]) == set(result.cells["plot_id"])
    areas = gpd.read_file(out / "screen_areas.gpkg", layer="best_areas")
    assert len(areas) == len(result.areas)
    assert areas["rank"].dtype.kind == "i"
    # Both GeoPackages open styled in QGIS.
    for name in ("screen_cells.gpkg", "screen_areas.gpkg"):
        import pyogrio

        assert "layer_styles" in {layer for layer, _ in pyogrio.list_layers(out / name)}, name
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["screen"]["counts"]["buildable"] == len(result.cells)


@pytest.mark.skipif(not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
                    reason="needs Debian chromium and chromium-driver")
def test_map_outlines_the_best_areas_without_network(screened):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    result, tmp = screened
    profile = tempfile.mkdtemp(prefix="sitefinder-chromium-")
    drv = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=chromium_options(profile))
    try:
        drv.execute_cdp_cmd("Network.enable", {})
        drv.execute_cdp_cmd("Network.setBlockedURLs", {"urls": ["http://*", "https://*"]})
        drv.get((tmp / "out" / "screen_map.html").as_uri())
        outline = 'path.leaflet-interactive[stroke="#08306b"]'
        WebDriverWait(drv, 20).until(lambda d: d.find_elements(By.CSS_SELECTOR, outline))
        assert len(drv.find_elements(By.CSS_SELECTOR, outline)) == len(result.areas)
        control = drv.find_element(By.CLASS_NAME, "leaflet-control-layers").text
        assert "Beste områder" in control and "Ruter med poeng" in control
    finally:
        drv.quit()
        shutil.rmtree(profile, ignore_errors=True)


def test_a_failed_screening_leaves_the_previous_outputs(screened):
    from sitefinder.outfolder import check_output_folder, sha256_of

    _, tmp = screened
    out = tmp / "out"
    before = {p.name: sha256_of(p) for p in out.iterdir()}
    with pytest.raises(InputError, match="does not overlap"):
        screen(CLIP, bbox=(5.30, 60.38, 5.35, 60.40), out=out, layers_dir=tmp / "layers")
    assert {p.name: sha256_of(p) for p in out.iterdir()} == before
    assert check_output_folder(out) == []
    assert not [p for p in tmp.iterdir() if "sitefinder-" in p.name]  # no staging left


def test_cli_end_to_end(tmp_path, capsys):
    out = tmp_path / "screening"
    code = main(["screen", "--osm", str(CLIP), "--cell-size", "100", "--out", str(out),
                 "--layers", str(tmp_path / "layers"), "--quiet"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "Considered" in printed and "Best areas" in printed
    for name in ("screen_cells.gpkg", "screen_cells.parquet", "screen_suitability.tif",
                 "screen_areas.gpkg", "screen_map.html", "manifest.json"):
        assert (out / name).stat().st_size > 0
    with rasterio.open(out / "screen_suitability.tif") as src:
        assert src.res == (100.0, 100.0)


@pytest.mark.parametrize("size", ["0", "-50", "5", "1000", "nan"])
def test_cli_refuses_bad_cell_sizes(size, tmp_path, capsys):
    code = main(["screen", "--osm", str(CLIP), f"--cell-size={size}", "--out",
                 str(tmp_path / "o")])
    assert code == 2
    err = capsys.readouterr().err
    assert "--cell-size" in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_missing_area_file_is_named(tmp_path):
    with pytest.raises(InputError, match="area file does not exist") as info:
        screen(CLIP, area=tmp_path / "kommune.geojson", layers_dir=tmp_path / "layers")
    assert "kommune.geojson" in str(info.value)


def test_area_without_overlap_is_refused(clip_osm, tmp_path):
    from pyproj import CRS

    bergen = tmp_path / "bergen.gpkg"
    gpd.GeoDataFrame(geometry=[shapely.box(5.30, 60.38, 5.35, 60.40)], crs=4326).to_file(bergen)
    with pytest.raises(InputError, match="does not overlap") as info:
        area_polygon(clip_osm.bounds, CRS(25832), area=bergen)
    assert "bergen.gpkg" in str(info.value) and "--area" in str(info.value)


def test_area_in_a_wrong_crs_is_refused(clip_osm, tmp_path):
    from pyproj import CRS

    # UTM coordinates in a file that claims to be longitude/latitude.
    wrong = tmp_path / "wrong.gpkg"
    gpd.GeoDataFrame(geometry=[shapely.box(598400, 6642500, 599400, 6643500)],
                     crs=4326).to_file(wrong)
    with pytest.raises(InputError, match="declared CRS") as info:
        area_polygon(clip_osm.bounds, CRS(25832), area=wrong)
    assert "QGIS" in str(info.value)


def test_municipality_boundary_cuts_the_extract(clip_osm):
    from pyproj import CRS

    from tests.conftest import DATA

    crs = CRS(25832)
    whole = area_polygon(clip_osm.bounds, crs)
    inside = area_polygon(clip_osm.bounds, crs, area=DATA / "oslo_kommune.geojson")
    assert inside.area == pytest.approx(whole.area, rel=0.01)  # the clip lies in Oslo
    bbox = area_polygon(clip_osm.bounds, crs, bbox=(10.76, 59.91, 10.77, 59.915))
    assert bbox.area < 0.4 * whole.area


def test_too_many_cells_are_refused_with_advice():
    settings = ScreenSettings(cell_size_m=10, max_cells=1000)
    with pytest.raises(InputError, match="more than the 1,000") as info:
        screen(CLIP, settings=settings)
    assert "--cell-size" in str(info.value)


def test_sea_of_the_oslo_extract_is_water_and_the_city_is_not():
    from pyproj import CRS

    crs = CRS(25832)
    sea = shapely.union_all(sea_polygons(OSM_PBF, crs, read_extent()))
    fjord = gpd.GeoSeries(gpd.points_from_xy([10.725, 10.735], [59.902, 59.904]), crs=4326)
    land = gpd.GeoSeries(gpd.points_from_xy([10.752, 10.734, 10.76], [59.911, 59.913, 59.93]),
                         crs=4326)
    assert shapely.within(fjord.to_crs(crs).to_numpy(), sea).all()
    assert not shapely.intersects(land.to_crs(crs).to_numpy(), sea).any()


def read_extent() -> tuple[float, float, float, float]:
    import osmium

    box = osmium.io.Reader(str(OSM_PBF)).header().box()
    return (box.bottom_left.lon, box.bottom_left.lat, box.top_right.lon, box.top_right.lat)


def test_steep_cells_are_those_with_steep_land(tmp_path):
    dem = TEST_DATA / "dtm_10.tif"
    with rasterio.open(dem) as src:
        left, bottom, right, top = src.bounds
        crs = src.crs
    size = 200.0
    xs = np.arange(left + 20, right - size, size)
    ys = np.arange(bottom + 20, top - size, size)
    boxes = [shapely.box(x, y, x + size, y + size) for x in xs for y in ys]
    cells = gpd.GeoDataFrame(geometry=boxes, crs=crs)
    steep = steep_cells(cells, dem, 20.0, tmp_path)
    assert steep.any() and not steep.all()
    # Independently: the mean of the slope pixels whose centres fall in each cell.
    slope_tif = slope(dem, tmp_path / "check.tif")
    with rasterio.open(slope_tif) as src:
        values = src.read(1, masked=True)
        rows, cols = np.indices(values.shape)
        x, y = rasterio.transform.xy(src.transform, rows.ravel(), cols.ravel())
    x, y, v = np.asarray(x), np.asarray(y), values.ravel()
    for cell, is_steep in zip(boxes, steep, strict=True):
        minx, miny, maxx, maxy = cell.bounds
        inside = (x > minx) & (x < maxx) & (y > miny) & (y < maxy)
        mean = v[inside].mean()
        if abs(mean - 20) > 1:  # the two means differ a little at the cell edge
            assert is_steep == (mean > 20)
