"""Slope and aspect from a DEM, tested on the real Stord/Tysnes DTM10 tile."""

from __future__ import annotations

import math
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import shapely
from rasterio.transform import Affine

from sitefinder.errors import InputError
from sitefinder.terrain import NODATA, SlopeSettings, slope, slope_criterion

DTM = Path(__file__).parent / "data" / "dtm_10.tif"


def read(path: Path) -> np.ma.MaskedArray:
    with rasterio.open(path) as src:
        return src.read(1, masked=True)


def write_dem(path: Path, z: np.ndarray, transform: Affine, crs: str = "EPSG:3045") -> Path:
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=z.shape[1],
        height=z.shape[0],
        count=1,
        dtype="float32",
        crs=crs,
        transform=transform,
        nodata=-32767,
    ) as dst:
        dst.write(z.astype("float32"), 1)
    return path


@pytest.fixture(scope="module")
def dtm_slope(tmp_path_factory) -> Path:
    return slope(DTM, tmp_path_factory.mktemp("slope") / "slope.tif")


def test_real_dtm_slope_statistics_match_an_independent_gradient(dtm_slope):
    z = read(DTM).filled(np.nan).astype(float)
    gy, gx = np.gradient(z, 10.0, 10.0)
    independent = np.degrees(np.arctan(np.hypot(gx, gy)))
    ours = read(dtm_slope).compressed()
    # Horn's 3x3 method smooths a little compared with plain central differences.
    np.testing.assert_allclose(
        np.percentile(ours, [50, 90]), np.nanpercentile(independent, [50, 90]), atol=0.5
    )
    # SOURCE.txt of the tile: slope p50 8.4 deg, p90 34.6 deg.
    assert np.percentile(ours, 50) == pytest.approx(8.4, abs=0.5)
    assert np.percentile(ours, 90) == pytest.approx(34.6, abs=0.5)


def test_slope_output_keeps_grid_crs_and_marks_nodata(dtm_slope):
    with rasterio.open(DTM) as dem, rasterio.open(dtm_slope) as out:
        assert out.crs == dem.crs and out.transform == dem.transform
        assert out.nodata == NODATA
        assert out.tags()["UNITS"] == "degrees"
    s = read(dtm_slope)
    # Column 0 of the DTM is nodata, so are its neighbours' slopes (column 1).
    assert s.mask[:, 0].all() and s.mask[:, 1].all()
    assert not s.mask[:, 2:].any()
    assert s.min() >= 0 and s.max() < 90


def test_tiled_computation_equals_one_tile(tmp_path, dtm_slope):
    tiled = slope(DTM, tmp_path / "tiled.tif", tile_size=37)
    np.testing.assert_array_equal(read(tiled).filled(-1), read(dtm_slope).filled(-1))


def test_plane_gives_exact_slope_and_aspect_with_non_square_pixels(tmp_path):
    # Surface rising 1:2 towards the east on 10 m x 5 m pixels in EPSG:3045 (N-E axis CRS):
    # slope atan(0.5) everywhere, facing (downslope) west = 270 deg, edges included.
    transform = Affine(10.0, 0, -26005.0, 0, -5.0, 6676005.0)
    cols = np.arange(30)
    z = np.tile(0.5 * 10.0 * cols, (40, 1)) + 100
    dem = write_dem(tmp_path / "east.tif", z, transform)
    slope(dem, tmp_path / "s.tif", aspect_path=tmp_path / "a.tif")
    np.testing.assert_allclose(read(tmp_path / "s.tif"), math.degrees(math.atan(0.5)), atol=1e-4)
    np.testing.assert_allclose(read(tmp_path / "a.tif"), 270.0, atol=1e-4)


def test_plane_rising_north_faces_south(tmp_path):
    transform = Affine(10.0, 0, 500000.0, 0, -5.0, 6650000.0)
    rows = np.arange(40)[:, None]
    z = np.tile(-0.2 * 5.0 * rows, (1, 30)) + 50  # row index grows southwards
    dem = write_dem(tmp_path / "north.tif", z, transform, crs="EPSG:25833")
    slope(dem, tmp_path / "s.tif", aspect_path=tmp_path / "a.tif")
    np.testing.assert_allclose(read(tmp_path / "s.tif"), math.degrees(math.atan(0.2)), atol=1e-4)
    np.testing.assert_allclose(read(tmp_path / "a.tif"), 180.0, atol=1e-4)


def test_flat_ground_has_zero_slope_and_no_aspect(tmp_path):
    dem = write_dem(
        tmp_path / "flat.tif", np.full((5, 5), 3.0), Affine(10, 0, 0, 0, -10, 100), crs="EPSG:25833"
    )
    slope(dem, tmp_path / "s.tif", aspect_path=tmp_path / "a.tif")
    assert (read(tmp_path / "s.tif") == 0).all()
    assert read(tmp_path / "a.tif").mask.all()


def test_geographic_dem_is_refused(tmp_path):
    dem = write_dem(
        tmp_path / "geo.tif", np.zeros((3, 3)), Affine(0.001, 0, 10, 0, -0.001, 60), crs="EPSG:4326"
    )
    with pytest.raises(InputError, match="geographic"):
        slope(dem, tmp_path / "s.tif")


def test_slope_criterion_per_plot(dtm_slope):
    x0, y0 = -26005.0, 6676005.0
    plot = shapely.box(x0 + 600, y0 - 900, x0 + 1000, y0 - 400)  # cols 60-99, rows 40-89
    settings = SlopeSettings(dem=DTM, statistic="mean")
    out = slope_criterion(gpd.GeoSeries([plot], crs=3045), dtm_slope, settings)
    assert out.loc[0, "value"] == pytest.approx(
        float(read(dtm_slope)[40:90, 60:100].mean()), rel=1e-6
    )
    steep = SlopeSettings(dem=DTM, statistic="share_above", threshold=20)
    share = slope_criterion(gpd.GeoSeries([plot], crs=3045), dtm_slope, steep).loc[0, "value"]
    assert share == pytest.approx(float((read(dtm_slope)[40:90, 60:100] >= 20).mean()))
