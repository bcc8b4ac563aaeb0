"""Noise proxy from OSM lines and the T-1442 noise criterion."""

from __future__ import annotations

import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import osmium
import pydantic
import pytest
import rasterio
import shapely

from sitefinder.errors import InputError
from sitefinder.noise import (
    ROAD_RED_DB,
    ROAD_YELLOW_DB,
    NoiseSettings,
    emission_levels,
    line_source_level,
    noise_criterion,
    noise_proxy,
)

DATA = Path(__file__).parent / "data"
OSLO_CENTER = Path(__file__).parents[1] / "data" / "oslo-center.osm.pbf"
TAGS = ("highway", "railway", "tunnel", "covered", "oneway", "maxspeed", "service")
X = 600_005.0  # a cell centre on the 10 m grid, so the road sits mid-cell
BOUNDS = (599_000.0, 6_644_500.0, 601_000.0, 6_645_500.0)


def osm_lines(path: Path) -> gpd.GeoDataFrame:
    """Road and rail ways of an OSM file, read directly with pyosmium."""
    rows, geoms = [], []
    fp = osmium.FileProcessor(str(path)).with_locations()
    for way in fp.with_filter(osmium.filter.KeyFilter("highway", "railway")):
        if not way.is_way():
            continue
        pts = [(n.lon, n.lat) for n in way.nodes if n.location.valid()]
        if len(pts) >= 2:
            rows.append({k: way.tags.get(k) for k in TAGS})
            geoms.append(shapely.LineString(pts))
    return gpd.GeoDataFrame(rows, geometry=geoms, crs=4326).to_crs(25833)


def straight(tags: list[dict], x: float = X) -> gpd.GeoDataFrame:
    line = shapely.LineString([(x, 6_640_000), (x, 6_650_000)])
    return gpd.GeoDataFrame(tags, geometry=[line] * len(tags), crs=25833)


def profile(path: Path, band: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Levels along the middle row and each cell's distance from the road at X."""
    with rasterio.open(path) as src:
        row = src.read(band)[src.height // 2]
        xs = src.transform.c + (np.arange(src.width) + 0.5) * src.transform.a
    return np.abs(xs - X), row


def test_level_falls_with_distance_like_a_line_source(tmp_path):
    out = noise_proxy(straight([{"highway": "trunk"}]), tmp_path / "n.tif", bounds=BOUNDS)
    d, level = profile(out)
    east = d[np.argmin(d) :]
    levels_east = level[np.argmin(d) :]
    assert np.all(np.diff(levels_east) < 0)
    l10 = emission_levels(straight([{"highway": "trunk"}]))["road_db"].iloc[0]
    near = (east >= 10) & (east <= 300)
    np.testing.assert_allclose(levels_east[near], line_source_level(east[near], l10, 0.5), atol=1.0)
    # Symmetric on both sides of the road.
    west = level[: np.argmin(d) + 1][::-1]
    np.testing.assert_allclose(west[:50], levels_east[:50], atol=1e-3)


def test_t1442_zones_next_to_a_trunk_road(tmp_path):
    plots = gpd.GeoSeries(
        [
            shapely.box(X + 8, 6_645_000, X + 25, 6_645_020),  # right by the road
            shapely.box(X + 80, 6_645_000, X + 100, 6_645_020),  # second row
            shapely.box(X + 380, 6_645_000, X + 400, 6_645_020),
        ],  # a few blocks away
        crs=25833,
    )
    out = noise_proxy(straight([{"highway": "trunk"}]), tmp_path / "n.tif", bounds=BOUNDS)
    crit = noise_criterion(plots, out)
    assert crit["road_zone"].tolist() == ["red", "yellow", "green"]
    assert crit["road_lden_db"].iloc[0] >= ROAD_RED_DB
    assert ROAD_YELLOW_DB <= crit["road_lden_db"].iloc[1] < ROAD_RED_DB
    assert crit["noise_zone"].tolist() == ["red", "yellow", "green"]
    assert crit["noise_is_proxy"].all()
    assert (crit["status"] == "ok").all()


def test_sources_add_energetically(tmp_path):
    one = noise_proxy(straight([{"highway": "primary"}]), tmp_path / "1.tif", bounds=BOUNDS)
    two = noise_proxy(straight([{"highway": "primary"}] * 2), tmp_path / "2.tif", bounds=BOUNDS)
    d, l1 = profile(one)
    _, l2 = profile(two)
    background = 10 ** (35.0 / 10)
    ratio = (10 ** (l2 / 10) - background) / (10 ** (l1 / 10) - background)
    np.testing.assert_allclose(ratio[l1 > 45], 2.0, rtol=0.01)


def test_rail_goes_to_band_two_with_rail_zones(tmp_path):
    out = noise_proxy(straight([{"railway": "rail"}]), tmp_path / "r.tif", bounds=BOUNDS)
    d, road = profile(out, 1)
    _, rail = profile(out, 2)
    assert road.max() == pytest.approx(35.0, abs=0.01)  # background only
    assert rail.max() > 68
    plots = gpd.GeoSeries([shapely.box(X + 8, 6_645_000, X + 20, 6_645_010)], crs=25833)
    crit = noise_criterion(plots, out)
    assert crit.loc[0, "rail_zone"] in {"yellow", "red"}
    assert crit.loc[0, "road_zone"] == "green"
    assert crit.loc[0, "noise_zone"] == crit.loc[0, "rail_zone"]


def test_tunnels_and_footways_make_no_noise(tmp_path):
    lines = straight(
        [{"highway": "motorway", "tunnel": "yes"}, {"highway": "footway"}, {"railway": "abandoned"}]
    )
    out = noise_proxy(lines, tmp_path / "t.tif", bounds=BOUNDS)
    with rasterio.open(out) as src:
        assert np.allclose(src.read(), 35.0)


def test_raster_is_labelled_a_proxy(tmp_path):
    out = noise_proxy(straight([{"highway": "trunk"}]), tmp_path / "n.tif", bounds=BOUNDS)
    with rasterio.open(out) as src:
        assert src.tags()["PROXY"] == "YES"
        assert "PROXY" in src.tags()["DESCRIPTION"]
        assert src.descriptions == ("road_lden_db_PROXY", "rail_lden_db_PROXY")
        assert src.crs.to_epsg() == 25833 and src.res == (10.0, 10.0)


def test_emission_table_rules():
    lines = gpd.GeoDataFrame(
        {
            "highway": ["primary", "primary_link", "primary", "primary", "residential", None],
            "maxspeed": [None, None, "80", None, None, None],
            "oneway": [None, None, None, "yes", None, None],
            "railway": [None, None, None, None, None, "rail"],
            "service": [None, None, None, None, None, "siding"],
        }
    )
    levels = emission_levels(lines)
    road = levels["road_db"]
    assert road[1] == pytest.approx(road[0] - 3)
    assert road[2] == pytest.approx(road[0] + 25 * np.log10(80 / 60))
    assert road[3] == pytest.approx(road[0] - 3)
    assert road[4] < road[0] - 10
    assert np.isnan(road[5]) and levels["rail_db"][5] == pytest.approx(67 - 10)
    custom = emission_levels(lines, {"residential": 70.0})["road_db"]
    assert custom[4] == 70.0


def test_geographic_lines_are_refused(tmp_path):
    lines = straight([{"highway": "trunk"}]).to_crs(4326)
    with pytest.raises(InputError, match="projected"):
        noise_proxy(lines, tmp_path / "n.tif")
    with pytest.raises(pydantic.ValidationError):
        NoiseSettings(ground_factor=2)


def test_real_osm_bjorvika(tmp_path):
    lines = osm_lines(DATA / "oslo-opera.osm.pbf")
    out = noise_proxy(lines, tmp_path / "opera.tif")
    with rasterio.open(out) as src:
        road = src.read(1)
    assert 60 < road.max() < 90
    # E18 under Bjørvika runs in a tunnel (Operatunnelen): it must not count.
    tunnels = lines[lines["tunnel"].eq("yes") & lines["highway"].isin(["trunk", "motorway"])]
    assert len(tunnels) > 0
    without = noise_proxy(
        lines.drop(tunnels.index), tmp_path / "no_tunnel.tif", bounds=tuple(lines.total_bounds)
    )
    with rasterio.open(without) as src:
        np.testing.assert_allclose(src.read(1), road, atol=1e-3)


@pytest.mark.skipif(not OSLO_CENTER.exists(), reason="demo OSM extract not in data/")
def test_central_oslo_runs_in_seconds(tmp_path):
    lines = osm_lines(OSLO_CENTER)
    start = time.perf_counter()
    out = noise_proxy(lines, tmp_path / "oslo.tif")
    assert time.perf_counter() - start < 5
    with rasterio.open(out) as src:
        assert src.width * src.res[0] > 3000 and src.height * src.res[1] > 4000
        road = src.read(1)
    assert 0.05 < (road >= ROAD_RED_DB).mean() < 0.5


def test_convolution_gives_scipy_signal_numbers(tmp_path):
    """On the real Bjørvika roads the proxy's convolution gives fftconvolve's numbers.

    It uses scipy.fft alone (scipy.signal cost 0.4–0.8 s to import), step for step.
    """
    from scipy.signal import fftconvolve

    from sitefinder import noise

    lines = osm_lines(DATA / "oslo-opera.osm.pbf")
    x0, y0, x1, y1 = lines.total_bounds
    pad = 100
    grid = noise._source_grid(
        lines.geometry.array, emission_levels(lines)["road_db"].to_numpy(), 1.0,
        origin=(x0 - pad * 10, y1 + pad * 10),
        shape=(int((y1 - y0) / 10) + 2 * pad, int((x1 - x0) / 10) + 2 * pad), res=10.0,
    )
    kernel = noise._kernel(10.0, pad, 0.5)
    assert grid.any()
    np.testing.assert_array_equal(
        noise._convolve_same(grid, kernel), fftconvolve(grid, kernel, mode="same")
    )
