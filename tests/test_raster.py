"""Zonal statistics of rasters over plots: statistics, nodata, CRS, coverage."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pydantic
import pytest
import rasterio
import shapely
from rasterio.warp import Resampling, calculate_default_transform, reproject

from sitefinder.errors import InputError
from sitefinder.sources.raster import RasterCriterionSource, zonal_stats, zonal_stats_from_source

DTM = Path(__file__).parent / "data" / "dtm_10.tif"
X0, Y0, RES = -26005.0, 6676005.0, 10.0  # upper-left corner of the DTM tile (EPSG:3045)


def pixel_box(row0: int, col0: int, row1: int, col1: int) -> shapely.Polygon:
    """Polygon covering exactly pixels [row0, row1) x [col0, col1) of the DTM."""
    return shapely.box(X0 + col0 * RES, Y0 - row1 * RES, X0 + col1 * RES, Y0 - row0 * RES)


@pytest.fixture(scope="module")
def dtm() -> np.ma.MaskedArray:
    with rasterio.open(DTM) as src:
        return src.read(1, masked=True)


def test_statistics_match_the_pixels_under_a_pixel_aligned_plot(dtm):
    plots = gpd.GeoSeries([pixel_box(40, 60, 70, 100)], crs=3045)
    pixels = dtm[40:70, 60:100].compressed().astype(float)
    assert zonal_stats(plots, DTM, "mean").loc[0, "value"] == pytest.approx(pixels.mean())
    assert zonal_stats(plots, DTM, "max").loc[0, "value"] == pytest.approx(pixels.max())
    p90 = zonal_stats(plots, DTM, "percentile", q=90).loc[0, "value"]
    assert p90 == pytest.approx(np.percentile(pixels, 90, method="hazen"))
    share = zonal_stats(plots, DTM, "share_above", threshold=100).loc[0, "value"]
    assert share == pytest.approx((pixels >= 100).mean())
    out = zonal_stats(plots, DTM, "mean")
    assert list(out.columns) == ["value", "coverage", "zone", "status", "reason_nb", "reason_en"]
    assert out.loc[0, "status"] == "ok" and out.loc[0, "reason_en"] == ""
    assert out.loc[0, "coverage"] == pytest.approx(1.0)


def test_edge_pixels_count_by_covered_area(dtm):
    # Half of column 61 is covered: its pixels weigh half.
    plot = shapely.box(X0 + 60 * RES, Y0 - 50 * RES, X0 + 61.5 * RES, Y0 - 40 * RES)
    full = dtm[40:50, 60].astype(float)
    half = dtm[40:50, 61].astype(float)
    expected = (full.sum() + 0.5 * half.sum()) / (len(full) + 0.5 * len(half))
    value = zonal_stats(gpd.GeoSeries([plot], crs=3045), DTM, "mean").loc[0, "value"]
    assert value == pytest.approx(expected)


def test_plot_smaller_than_a_pixel_gets_that_pixel(dtm):
    plot = shapely.box(X0 + 80 * RES + 2, Y0 - 31 * RES + 2, X0 + 80 * RES + 6, Y0 - 31 * RES + 7)
    out = zonal_stats(gpd.GeoSeries([plot], crs=3045), DTM, "mean")
    assert out.loc[0, "value"] == pytest.approx(float(dtm[30, 80]))


def test_nodata_pixels_are_left_out_and_lower_the_coverage(dtm):
    # Column 0 of the tile is nodata; a plot over columns 0-1 has half its area valid.
    plots = gpd.GeoSeries([pixel_box(100, 0, 110, 2)], crs=3045)
    out = zonal_stats(plots, DTM, "mean", min_coverage=0.4)
    assert out.loc[0, "status"] == "ok"
    assert out.loc[0, "value"] == pytest.approx(dtm[100:110, 1].astype(float).mean())
    assert out.loc[0, "coverage"] == pytest.approx(0.5)
    strict = zonal_stats(plots, DTM, "mean", min_coverage=0.6)
    assert strict.loc[0, "status"] == "no_data"
    assert np.isnan(strict.loc[0, "value"])
    assert "50 %" in strict.loc[0, "reason_en"] and "50 %" in strict.loc[0, "reason_nb"]


def test_plot_over_nodata_only_gets_status_not_number():
    plots = gpd.GeoSeries([pixel_box(10, 0, 20, 1)], crs=3045)
    out = zonal_stats(plots, DTM, "max")
    assert out.loc[0, "status"] == "no_data"
    assert np.isnan(out.loc[0, "value"])
    assert out.loc[0, "reason_nb"].startswith("Rasteret dtm_10.tif har verdier")


def test_nodata_as_fills_nodata_inside_the_extent_only():
    inside = pixel_box(10, 0, 20, 1)
    outside = shapely.box(X0 - 500, Y0 - 500, X0 - 100, Y0 - 100)
    out = zonal_stats(gpd.GeoSeries([inside, outside], crs=3045), DTM, "mean", nodata_as=-5)
    assert out.loc[0, "value"] == pytest.approx(-5)
    assert out.loc[1, "status"] == "no_coverage"


def test_plot_outside_the_raster_gets_no_coverage_status():
    far = shapely.box(100_000, 6_600_000, 100_100, 6_600_100)
    out = zonal_stats(gpd.GeoSeries([far, pixel_box(5, 5, 8, 8)], crs=3045), DTM, "mean")
    assert out["status"].tolist() == ["no_coverage", "ok"]
    assert np.isnan(out.loc[0, "value"])
    assert out.loc[0, "reason_en"] == "The raster dtm_10.tif does not cover the plot."
    assert out.loc[0, "reason_nb"] == "Rasteret dtm_10.tif dekker ikke tomta."


def test_plot_half_off_the_raster_edge():
    plot = shapely.box(X0 - 100, Y0 - 500, X0 + 100, Y0 - 300)  # west half outside
    out = zonal_stats(gpd.GeoSeries([plot], crs=3045), DTM, "mean", min_coverage=0.3)
    # 10 of 20 columns are outside, 1 more (column 0) is nodata.
    assert out.loc[0, "coverage"] == pytest.approx(9 / 20)
    assert out.loc[0, "status"] == "ok"
    assert zonal_stats(gpd.GeoSeries([plot], crs=3045), DTM, "mean").loc[0, "status"] == "no_data"


def test_empty_and_missing_geometry_get_a_status():
    plots = gpd.GeoSeries([None, shapely.Polygon(), pixel_box(5, 5, 8, 8)], crs=3045)
    out = zonal_stats(plots, DTM, "mean")
    assert out["status"].tolist() == ["empty_geometry", "empty_geometry", "ok"]


def test_plots_in_another_crs_are_reprojected_to_the_raster():
    plots_3045 = gpd.GeoSeries([pixel_box(40, 60, 90, 120), pixel_box(150, 20, 170, 50)], crs=3045)
    plots_25832 = plots_3045.to_crs(25832)
    a = zonal_stats(plots_3045, DTM, "mean")
    b = zonal_stats(plots_25832, DTM, "mean")
    assert b["status"].tolist() == ["ok", "ok"]
    np.testing.assert_allclose(b["value"], a["value"], rtol=1e-6)
    assert b.index.equals(plots_25832.index)


def test_raster_in_geographic_crs_gives_the_same_statistics(tmp_path):
    # Warp the DTM to EPSG:4326 and measure the same (EPSG:3045) plots on both.
    warped = tmp_path / "dtm_4326.tif"
    with rasterio.open(DTM) as src:
        transform, width, height = calculate_default_transform(
            src.crs, "EPSG:4326", src.width, src.height, *src.bounds
        )
        profile = src.profile | {
            "crs": "EPSG:4326",
            "transform": transform,
            "width": width,
            "height": height,
        }
        with rasterio.open(warped, "w", **profile) as dst:
            reproject(
                rasterio.band(src, 1),
                rasterio.band(dst, 1),
                resampling=Resampling.bilinear,
                dst_nodata=src.nodata,
            )
    plots = gpd.GeoSeries([pixel_box(40, 60, 90, 120), pixel_box(120, 100, 170, 150)], crs=3045)
    original = zonal_stats(plots, DTM, "mean")["value"]
    geographic = zonal_stats(plots, warped, "mean")
    assert geographic["status"].tolist() == ["ok", "ok"]
    np.testing.assert_allclose(geographic["value"], original, atol=1.5)
    assert geographic["coverage"].tolist() == pytest.approx([1.0, 1.0], abs=0.02)


def test_units_replace_the_plot_where_a_layout_exists(dtm):
    plots = gpd.GeoSeries(
        [pixel_box(40, 60, 90, 120), pixel_box(150, 20, 170, 50)], index=["a", "b"], crs=3045
    )
    units = gpd.GeoSeries(
        [pixel_box(40, 60, 41, 61), pixel_box(50, 70, 51, 71)], index=["a", "a"], crs=3045
    )
    out = zonal_stats(plots, DTM, "mean", units=units)
    assert out.loc["a", "zone"] == "units" and out.loc["b", "zone"] == "plot"
    assert out.loc["a", "value"] == pytest.approx((float(dtm[40, 60]) + float(dtm[50, 70])) / 2)
    with pytest.raises(InputError, match="plots that do not exist"):
        zonal_stats(
            plots, DTM, "mean", units=gpd.GeoSeries([pixel_box(1, 1, 2, 2)], index=["z"], crs=3045)
        )


def test_settings_model_validates_and_runs():
    with pytest.raises(pydantic.ValidationError):
        RasterCriterionSource(path=DTM, statistic="percentile")
    with pytest.raises(pydantic.ValidationError):
        RasterCriterionSource(path=DTM, statistic="mean", colour="red")
    source = RasterCriterionSource(path=DTM, statistic="share_above", threshold=50)
    out = zonal_stats_from_source(gpd.GeoSeries([pixel_box(40, 60, 90, 120)], crs=3045), source)
    assert 0 <= out.loc[0, "value"] <= 1


def test_bad_rasters_raise_input_errors(tmp_path):
    plots = gpd.GeoSeries([pixel_box(5, 5, 8, 8)], crs=3045)
    with pytest.raises(InputError, match="cannot open"):
        zonal_stats(plots, tmp_path / "missing.tif")
    no_crs = tmp_path / "nocrs.tif"
    with rasterio.open(
        no_crs,
        "w",
        driver="GTiff",
        width=2,
        height=2,
        count=1,
        dtype="float32",
        transform=rasterio.transform.from_origin(X0, Y0, RES, RES),
    ) as dst:
        dst.write(np.zeros((1, 2, 2), dtype="float32"))
    with pytest.raises(InputError, match="no coordinate reference system"):
        zonal_stats(plots, no_crs)
    with pytest.raises(InputError, match="band 3"):
        zonal_stats(plots, DTM, band=3)
    with pytest.raises(InputError, match="plot geometries have no coordinate"):
        zonal_stats(gpd.GeoSeries([pixel_box(5, 5, 8, 8)]), DTM)


def test_point_plot_takes_the_value_of_the_pixel_it_lies_in(tmp_path):
    import geopandas as gpd
    import numpy as np
    import rasterio
    import shapely
    from rasterio.transform import from_origin

    from sitefinder.sources.raster import zonal_stats

    path = tmp_path / "grid.tif"
    values = np.arange(16, dtype="float32").reshape(4, 4)  # row-major, north row first
    with rasterio.open(path, "w", driver="GTiff", height=4, width=4, count=1,
                       dtype="float32", crs="EPSG:25833",
                       transform=from_origin(1000, 2000, 10, 10)) as dst:
        dst.write(values, 1)
    # (1025, 1985): column 2, row 1 → value 6; a polygon of four whole pixels → their mean.
    plots = gpd.GeoSeries([shapely.Point(1025, 1985), shapely.box(1000, 1980, 1020, 2000)],
                          crs="EPSG:25833")
    out = zonal_stats(plots, path, "mean")
    assert out["value"].tolist() == [6.0, (0 + 1 + 4 + 5) / 4]


# ------------------------------------------------- many plots at once (issue 12 speed)


def awkward_plots(n: int, seed: int = 7) -> gpd.GeoSeries:
    """Plots of every shape the batch weights must handle, over the DTM and its edges."""
    rng = np.random.default_rng(seed)
    geoms = []
    for k in range(n):
        x = X0 + rng.uniform(-30, 1_020)
        y = Y0 - rng.uniform(-30, 1_020)
        a, b = rng.uniform(3, 80, 2)
        box = shapely.box(x, y - b, x + a, y)
        kind = k % 6
        if kind == 0:
            geom = shapely.affinity.rotate(box, rng.uniform(0, 90))
        elif kind == 1:  # a hole
            geom = box.buffer(10).difference(shapely.Point(x + a / 2, y - b / 2).buffer(6))
        elif kind == 2:  # two parts
            geom = shapely.MultiPolygon([box, shapely.affinity.translate(box, a + 15, 0)])
        elif kind == 3:  # edges exactly on pixel lines
            c, r = rng.integers(-2, 100, 2)
            geom = pixel_box(r, c, r + rng.integers(1, 6), c + rng.integers(1, 6))
        elif kind == 4:
            geom = shapely.Point(x, y).buffer(a / 2)
        else:  # a concave notch
            geom = shapely.Polygon([(x, y), (x + a, y), (x + a, y - b), (x + a / 2, y - b / 3),
                                    (x, y - b)])
        geoms.append(geom)
    return gpd.GeoSeries(geoms, crs=3045)


def area_weighted_by_geos(plot: shapely.Geometry, data: np.ma.MaskedArray) -> tuple[float, float]:
    """(mean, sum) of the DTM under a plot, each pixel weighed by its intersection area."""
    minx, miny, maxx, maxy = plot.bounds
    c0, c1 = max(int((minx - X0) // RES), 0), min(int((maxx - X0) // RES) + 1, data.shape[1])
    r0, r1 = max(int((Y0 - maxy) // RES), 0), min(int((Y0 - miny) // RES) + 1, data.shape[0])
    total = weight = 0.0
    for r in range(r0, r1):
        for c in range(c0, c1):
            share = pixel_box(r, c, r + 1, c + 1).intersection(plot).area / RES**2
            if share > 1e-9 and not np.ma.is_masked(data[r, c]):
                total += share * float(data[r, c])
                weight += share
    return total / weight, total


def test_many_plots_get_the_area_weighted_values_of_a_pixel_by_pixel_overlay(dtm):
    plots = awkward_plots(60)
    mean = zonal_stats(plots, DTM, "mean", min_coverage=0.01)
    total = zonal_stats(plots, DTM, "sum", min_coverage=0.01)
    measured = 0
    for i, plot in enumerate(plots):
        if mean.loc[i, "status"] != "ok":
            continue
        expected_mean, expected_sum = area_weighted_by_geos(plot, dtm)
        assert mean.loc[i, "value"] == pytest.approx(expected_mean, rel=1e-9), i
        assert total.loc[i, "value"] == pytest.approx(expected_sum, rel=1e-9), i
        measured += 1
    assert measured > 50


def test_reading_in_small_blocks_changes_nothing(monkeypatch):
    from sitefinder.sources import raster

    plots = awkward_plots(80, seed=11)
    whole = {st: zonal_stats(plots, DTM, st, q=75, threshold=100)
             for st in ("mean", "max", "percentile", "share_above", "sum")}
    monkeypatch.setattr(raster, "BLOCK_PIXELS", 16)
    monkeypatch.setattr(raster, "BLOCK_ZONES", 3)
    for st, expected in whole.items():
        blocks = zonal_stats(plots, DTM, st, q=75, threshold=100)
        np.testing.assert_allclose(blocks["value"], expected["value"], rtol=1e-12)
        assert blocks["status"].tolist() == expected["status"].tolist()


def test_bands_measured_together_equal_each_band_alone(tmp_path):
    from sitefinder.sources.raster import zonal_stats_bands

    path = tmp_path / "two_bands.tif"
    rng = np.random.default_rng(3)
    with rasterio.open(DTM) as src:
        profile = src.profile | {"count": 2, "dtype": "float32", "nodata": None}
        data = src.read(1).astype("float32")
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(np.stack([data, rng.normal(60, 8, data.shape).astype("float32")]))
    plots = awkward_plots(40, seed=5)
    both = zonal_stats_bands(plots, path, "percentile", bands=(1, 2), q=90)
    for band in (1, 2):
        alone = zonal_stats(plots, path, "percentile", band=band, q=90)
        assert both[band].equals(alone)
    assert not both[1]["value"].equals(both[2]["value"])
