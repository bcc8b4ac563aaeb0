"""Bad input: a clear error naming the file/row/field, or a reasoned per-plot status."""

from __future__ import annotations

import geopandas as gpd
import pytest
import shapely

from sitefinder.api import Study
from sitefinder.config import default_scenario
from sitefinder.errors import InputError
from sitefinder.sources.plots import read_plots

from .conftest import DEMO_PLOTS, OSM_PBF

# Real coordinates in central Oslo (EPSG:25832), on open land near Tøyen.
X0, Y0 = 599_300.0, 6_643_300.0


def _plots(geoms, crs="EPSG:25832", **columns):
    data = {"plot_id": [f"T{i}" for i in range(len(geoms))], **columns}
    return gpd.GeoDataFrame(data, geometry=list(geoms), crs=crs)


def test_missing_file(tmp_path):
    with pytest.raises(InputError) as err:
        read_plots(tmp_path / "nope.gpkg")
    assert "nope.gpkg" in str(err.value) and "does not exist" in str(err.value)


def test_unreadable_file(tmp_path):
    bad = tmp_path / "plots.gpkg"
    bad.write_bytes(b"this is not a geopackage")
    with pytest.raises(InputError) as err:
        read_plots(bad)
    assert "could not be read" in str(err.value) and "plots.gpkg" in str(err.value)


def test_no_crs_is_refused_with_instructions(tmp_path):
    # A shapefile whose .prj went missing is the common real no-CRS case.
    shp = tmp_path / "nocrs.shp"
    _plots([shapely.box(X0, Y0, X0 + 40, Y0 + 40)]).to_file(shp)
    shp.with_suffix(".prj").unlink()
    with pytest.raises(InputError) as err:
        read_plots(shp)
    assert "no coordinate reference system" in str(err.value)
    assert "--plots-crs" in str(err.value)
    plots = read_plots(shp, crs="EPSG:25832")
    assert plots.crs.to_epsg() == 25832


def test_duplicate_ids_name_the_rows(tmp_path):
    path = tmp_path / "dup.gpkg"
    frame = _plots([shapely.box(X0 + i * 50, Y0, X0 + i * 50 + 40, Y0 + 40) for i in range(3)])
    frame["plot_id"] = ["A", "B", "A"]
    frame.to_file(path)
    with pytest.raises(InputError) as err:
        read_plots(path)
    message = str(err.value)
    assert "'A' in rows 1, 3" in message and "plot_id" in message


def test_per_plot_geometry_problems_keep_every_plot(tmp_path):
    path = tmp_path / "mixed.gpkg"
    bowtie = shapely.Polygon(
        [(X0, Y0), (X0 + 40, Y0 + 40), (X0 + 40, Y0), (X0, Y0 + 40), (X0, Y0)]
    )
    frame = _plots(
        [
            shapely.box(X0, Y0, X0 + 40, Y0 + 40),
            bowtie,
            shapely.Polygon(),
            shapely.LineString([(X0, Y0), (X0 + 50, Y0)]),
            shapely.Point(X0 + 20, Y0 + 20),
        ]
    )
    frame.to_file(path)
    plots = read_plots(path)
    assert len(plots) == 5
    assert plots["status"].tolist() == [
        "ok", "ok", "empty_geometry", "invalid_geometry", "ok",
    ]
    assert "repaired" in plots.loc[1, "input_note_en"]
    assert plots.loc[1, "geometry"].is_valid
    assert "line" in plots.loc[3, "status_reason_en"]
    assert "point" in plots.loc[4, "input_note_en"]


def test_missing_id_column_numbers_rows(tmp_path):
    path = tmp_path / "noid.gpkg"
    gpd.GeoDataFrame(
        {"name": ["a", "b"]},
        geometry=[shapely.box(X0, Y0, X0 + 9, Y0 + 9), shapely.box(X0 + 20, Y0, X0 + 29, Y0 + 9)],
        crs=25832,
    ).to_file(path)
    assert read_plots(path)["plot_id"].tolist() == ["row-1", "row-2"]


def test_csv_with_wkt_and_with_lat_lon(tmp_path):
    wkt = tmp_path / "wkt.csv"
    wkt.write_text(
        "plot_id;name;wkt\n"
        f"a;Tomt A;POLYGON (({X0} {Y0}, {X0 + 40} {Y0}, {X0 + 40} {Y0 + 40}, {X0} {Y0}))\n"
        "b;Tomt B;POLYGON ((broken\n"
    )
    plots = read_plots(wkt, crs="EPSG:25832")
    assert plots["status"].tolist() == ["ok", "empty_geometry"]
    with pytest.raises(InputError, match="--plots-crs"):
        read_plots(wkt)

    latlon = tmp_path / "latlon.csv"
    # Two points in St. Hanshaugen's residential streets (away from the drug scene by Oslo S).
    latlon.write_text("plot_id,lat,lon,area_m2\nx,59.9268,10.7400,800\ny,59.9283,10.7420,\n")
    plots = read_plots(latlon)
    assert plots.crs.to_epsg() == 4326 and len(plots) == 2

    bad = tmp_path / "bad.csv"
    bad.write_text("plot_id,x_coord,y_coord\n1,2,3\n")
    with pytest.raises(InputError, match="neither a WKT"):
        read_plots(bad)


def test_plot_outside_network_area_gets_status(tmp_path, scenario):
    path = tmp_path / "far.gpkg"
    far = shapely.box(X0 + 30_000, Y0, X0 + 30_040, Y0 + 40)  # 30 km east, off the extract
    near = shapely.box(X0, Y0, X0 + 40, Y0 + 40)
    _plots([near, far]).to_file(path)
    study = Study(path, OSM_PBF, scenario, layers_dir=tmp_path / "layers", cache_dir=None)
    ranked = study.score().set_index("plot_id")
    assert ranked.loc["T1", "status"] == "outside_network"
    assert "outside" in ranked.loc["T1", "status_reason_en"]
    assert ranked.loc["T0", "status"] == "ok"


def test_points_from_lat_lon_csv_are_ranked(tmp_path, scenario):
    latlon = tmp_path / "latlon.csv"
    # Two points in St. Hanshaugen's residential streets (away from the drug scene by Oslo S).
    latlon.write_text("plot_id,lat,lon,area_m2\nx,59.9268,10.7400,800\ny,59.9283,10.7420,\n")
    study = Study(latlon, OSM_PBF, scenario, layers_dir=tmp_path / "layers", cache_dir=None)
    ranked = study.score().set_index("plot_id")
    assert ranked["status"].tolist() == ["ok", "ok"]
    assert ranked.loc["x", "area_m2"] == 800
    assert ranked["dist_grocery_m"].notna().all()


def test_category_with_no_features_is_reported_not_fatal(tmp_path, scenario):
    data = scenario.model_dump()
    data["layers"]["pharmacy"]["rules"] = [{"tags": {"amenity": ["no_such_amenity"]}}]
    from sitefinder.config import Scenario

    changed = Scenario.model_validate(data)
    study = Study(DEMO_PLOTS, OSM_PBF, changed, layers_dir=tmp_path / "layers", cache_dir=None)
    ranked = study.score()
    assert len(ranked) == len(study.plots)
    assert ranked["dist_pharmacy_m"].isna().all()
    ok = ranked[ranked["status"] == "ok"]
    assert ok["explanation_en"].str.contains("pharmacy: none in the map data").all()
    assert study.empty_layers == {"pharmacy"}


def test_unknown_osm_file_type(tmp_path):
    from sitefinder.sources.osm import read_osm

    path = tmp_path / "extract.shp"
    path.write_bytes(b"")
    with pytest.raises(InputError, match="unknown OpenStreetMap file type"):
        read_osm(path)
    broken = tmp_path / "broken.osm.pbf"
    broken.write_bytes(b"\x00\x01garbage")
    with pytest.raises(InputError, match="could not be read"):
        read_osm(broken)


def test_user_columns_named_like_ours_are_kept_as_input_columns(tmp_path, scenario):
    path = tmp_path / "clash.gpkg"
    _plots(
        [shapely.box(X0, Y0, X0 + 40, Y0 + 40)],
        status=["regulert"], score=[7], rank=["A"], district=["Øst"],
    ).to_file(path)
    study = Study(path, OSM_PBF, scenario, layers_dir=tmp_path / "layers", cache_dir=None)
    ranked = study.score().iloc[0]
    assert ranked["input_status"] == "regulert" and ranked["status"] == "ok"
    assert ranked["input_score"] == 7 and ranked["input_rank"] == "A"
    assert ranked["input_district"] == "Øst" and ranked["district"] == "Gamle Oslo"


def test_blank_coordinates_in_csv_become_empty_geometry(tmp_path):
    path = tmp_path / "holes.csv"
    path.write_text("plot_id,lat,lon\na,59.9145,10.77\nb,,\nc,59.91,ukjent\n")
    assert read_plots(path)["status"].tolist() == ["ok", "empty_geometry", "empty_geometry"]


def test_unknown_plots_crs_is_an_input_error(tmp_path):
    shp = tmp_path / "p.shp"
    _plots([shapely.box(X0, Y0, X0 + 40, Y0 + 40)]).to_file(shp)
    shp.with_suffix(".prj").unlink()
    with pytest.raises(InputError, match="unknown CRS 'EPSG:99999'"):
        read_plots(shp, crs="EPSG:99999")


def test_every_plot_outside_the_network_still_reaches_the_output(tmp_path):
    # The default scenario: the demo's population raster would refuse plots it does not
    # cover (tests/test_bad_inputs.py), before the network could say "outside".
    path = tmp_path / "far.gpkg"
    _plots([shapely.box(X0 + 30_000, Y0, X0 + 30_040, Y0 + 40)]).to_file(path)
    study = Study(path, OSM_PBF, default_scenario(), layers_dir=tmp_path / "layers",
                  cache_dir=None)
    ranked = study.score()
    assert ranked["status"].tolist() == ["outside_network"]
    assert ranked["road_lden_db"].isna().all()


def test_metrics_cache_follows_the_crs_the_file_is_read_in(tmp_path):
    scenario = default_scenario()  # no raster that would refuse the far-away reading
    wkt = tmp_path / "wkt.csv"
    wkt.write_text(
        f"plot_id,wkt\na,\"{shapely.box(X0, Y0, X0 + 40, Y0 + 40).wkt}\"\n"
    )
    kwargs = dict(layers_dir=tmp_path / "layers", cache_dir=tmp_path / "cache")
    right = Study(wkt, OSM_PBF, scenario, plots_crs="EPSG:25832", **kwargs).score()
    assert right.loc[0, "status"] in ("ok", "too_small")  # measured on the network
    wrong = Study(wkt, OSM_PBF, scenario, plots_crs="EPSG:25833", **kwargs)
    # Same file, another CRS: the plot is 300+ km away, is measured again (not taken from
    # the cache) and the user is told which CRS would put it on the map.
    with pytest.raises(InputError, match="would read as EPSG:25832"):
        wrong.score()
    assert not wrong.cache_hit
