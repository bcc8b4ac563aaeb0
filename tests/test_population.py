"""Residents within 500 m from the real SSB 250 m grid for Oslo (2023)."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import shapely

from sitefinder.errors import InputError
from sitefinder.population import rasterise_population, read_ssb_grid, residents_within

GRID = Path(__file__).parent / "data" / "befolkning_250m_2023_oslo.gpkg"
SHIPPED = Path(__file__).parents[1] / "data" / "population_250m_2023.tif"
TOTAL_2023 = 707_339  # sum of pop_tot in the file


@pytest.fixture(scope="module")
def grid() -> gpd.GeoDataFrame:
    return read_ssb_grid(GRID)


@pytest.fixture(scope="module")
def raster(grid, tmp_path_factory) -> Path:
    return rasterise_population(grid, tmp_path_factory.mktemp("pop") / "pop.tif")


def test_grid_is_read_as_utm33(grid):
    assert grid.crs.to_epsg() == 25833
    assert grid["residents"].sum() == TOTAL_2023


def test_raster_holds_every_resident_on_the_ssb_grid(raster, grid):
    with rasterio.open(raster) as src:
        counts = src.read(1, masked=True)
        assert src.res == (250.0, 250.0)
        assert src.transform.c % 250 == 0 and src.transform.f % 250 == 0
        assert "CC BY 4.0" in src.tags()["SOURCE"]
        # Spot check: the cell of the most populated polygon holds its count.
        top = grid.loc[grid["residents"].idxmax()]
        row, col = src.index(top.geometry.centroid.x, top.geometry.centroid.y)
        assert counts[row, col] == top["residents"]
    assert int(counts.sum()) == TOTAL_2023


def test_shipped_raster_is_the_same(raster):
    with rasterio.open(raster) as new, rasterio.open(SHIPPED) as shipped:
        assert new.transform == shipped.transform
        np.testing.assert_array_equal(new.read(1), shipped.read(1))


def test_residents_within_500m_equals_areal_weighting_by_overlay(raster, grid):
    plots = gpd.GeoSeries(
        [
            shapely.box(262_300, 6_650_100, 262_340, 6_650_140),  # Grünerløkka / Sofienberg
            shapely.Point(261_000, 6_648_800).buffer(20),  # sentrum
            shapely.box(259_950, 6_660_000, 260_000, 6_660_050),
        ],  # Nordmarka (forest)
        crs=25833,
    )
    out = residents_within(plots, raster, 500)
    assert (out["status"] == "ok").all()
    for i, plot in enumerate(plots):
        buffer = gpd.GeoDataFrame(geometry=[plot.buffer(500)], crs=25833)
        pieces = gpd.overlay(grid, buffer, how="intersection")
        expected = (pieces["residents"] * pieces.area / 62_500).sum()
        assert out["value"].iloc[i] == pytest.approx(expected, rel=1e-6, abs=1e-6)
    assert out["value"].iloc[0] > 5_000
    assert out["value"].iloc[2] < 100


def test_plot_outside_the_grid_gets_a_status(raster):
    plots = gpd.GeoSeries([shapely.box(100_000, 6_600_000, 100_050, 6_600_050)], crs=25833)
    out = residents_within(plots, raster)
    assert out.loc[0, "status"] == "no_coverage"
    assert np.isnan(out.loc[0, "value"])


def test_plots_in_degrees_are_refused(raster):
    with pytest.raises(InputError, match="projected"):
        residents_within(gpd.GeoSeries([shapely.Point(10.75, 59.91)], crs=4326), raster)


def test_missing_column_is_an_input_error(tmp_path, grid):
    path = tmp_path / "grid.gpkg"
    grid.rename(columns={"residents": "folk"}).to_file(path)
    with pytest.raises(InputError, match="pop_tot"):
        read_ssb_grid(path)
