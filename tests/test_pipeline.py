"""End to end on the real bundled data: every plot in every output, layers, cache, CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import geopandas as gpd
import pandas as pd
import pyogrio
import pytest
import shapely

from sitefinder.api import Study
from sitefinder.pipeline import run

from .conftest import DEMO_PLOTS, OSM_PBF


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("out")
    result = run(
        DEMO_PLOTS, OSM_PBF, out_dir=out, layers_dir=out / "layers",
        cache_dir=out / "cache",
    )
    return result, out


def test_every_input_plot_is_in_every_output(demo_run):
    result, out = demo_run
    input_ids = set(gpd.read_file(DEMO_PLOTS)["plot_id"])
    assert set(result.ranked["plot_id"]) == input_ids

    csv = pd.read_csv(out / "ranked.csv", encoding="utf-8-sig")
    assert set(csv["plot_id"]) == input_ids and len(csv) == len(input_ids)

    info = pyogrio.read_info(out / "ranked.gpkg", layer="ranked")
    assert info["features"] == len(input_ids)
    assert info["crs"] == "EPSG:25832"
    gpkg = gpd.read_file(out / "ranked.gpkg", layer="ranked")
    assert set(gpkg["plot_id"]) == input_ids

    for name in ("map.html", "map_offline.html"):
        html = (out / name).read_text(encoding="utf-8")
        # Each plot is one feature whose properties carry its id ("i"), drawn either in the
        # ranked layer or, with its reason, in the not-ranked layer.
        drawn = [pid for pid in input_ids if html.count(f'"i":"{pid}"') == 1]
        assert len(drawn) == len(input_ids), name

    manifest = json.loads((out / "manifest.json").read_text())
    assert sum(manifest["plots"]["by_status"].values()) == len(input_ids)


def test_ranked_table_has_metrics_scores_and_reasons(demo_run):
    result, _ = demo_run
    ranked = result.ranked
    ok = ranked[ranked["status"] == "ok"]
    assert len(ok) >= 40
    assert ok["rank"].tolist() == list(range(1, len(ok) + 1))
    assert ok["score"].is_monotonic_decreasing
    assert ok["score"].between(0, 100).all()
    for cat in ("transit", "grocery", "pharmacy", "health", "meeting", "nature"):
        assert f"dist_{cat}_m" in ranked and f"time_{cat}_min" in ranked
        assert f"count_{cat}_10min" in ranked
    # Central Oslo: every ranked plot has a stop and a shop within walking reach.
    assert ok["dist_transit_m"].notna().all() and ok["dist_grocery_m"].notna().all()
    assert (ok["time_transit_min"] * 75 - ok["dist_transit_m"]).abs().max() < 1e-6
    assert ok["explanation_nb"].str.contains("min å gå til holdeplass").all()
    not_ok = ranked[ranked["status"] != "ok"]
    assert (not_ok["status_reason_en"].str.len() > 0).all()


def test_manifest_records_inputs_versions_and_timings(demo_run):
    _, out = demo_run
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["inputs"]["osm"]["sha256"] == _sha(OSM_PBF)
    assert manifest["inputs"]["plots"]["sha256"] == _sha(DEMO_PLOTS)
    assert "layer:transit" in manifest["inputs"]
    assert manifest["versions"]["gdal"]
    assert {"read OSM", "measure", "score"} <= set(manifest["timings_s"])
    assert manifest["scenario"]["criteria"]["transit"]["weight"] > 0


def _sha(path):
    from sitefinder.sources.osm import file_sha256

    return file_sha256(path)


def test_user_edited_layer_is_used_on_next_run(tmp_path, scenario):
    layers = tmp_path / "layers"
    first = Study(DEMO_PLOTS, OSM_PBF, scenario, layers_dir=layers, cache_dir=tmp_path / "c")
    ranked = first.score()
    # The worst-served plot for transit gets a planned bus stop right at its edge.
    target = ranked.sort_values("dist_transit_m").iloc[-1]
    stop = target.geometry.exterior.interpolate(0)
    path = layers / "transit.gpkg"
    # The point table (``transit_points``, beside lines/areas and the QGIS style), as a
    # planner adds a stop in QGIS: appended to the file, everything else left as it was.
    name = next(n for n, _ in pyogrio.list_layers(path) if n.startswith("transit"))
    stops = gpd.read_file(path, layer=name)
    planned = gpd.GeoDataFrame(
        {"layer": ["transit"], "name": ["Planlagt holdeplass"], "kind": ["planned"]},
        geometry=[shapely.Point(stop.x + 1, stop.y)], crs=stops.crs,
    )
    planned.to_file(path, layer=name, mode="a")

    second = Study(DEMO_PLOTS, OSM_PBF, scenario, layers_dir=layers, cache_dir=tmp_path / "c")
    again = second.score().set_index("plot_id")
    assert second.layers.origin["transit"] == "user-edited"
    assert not second.cache_hit  # an edited layer invalidates the cached metrics
    assert again.loc[target["plot_id"], "dist_transit_m"] < target["dist_transit_m"]
    assert again.loc[target["plot_id"], "dist_transit_m"] < 60
    # ...and the edited file is kept, not overwritten.
    assert len(gpd.read_file(path, layer=name)) == len(stops) + 1


def test_metrics_cache_hit_and_invalidation(tmp_path, scenario):
    plots = tmp_path / "plots.gpkg"
    frame = gpd.read_file(DEMO_PLOTS).head(8)
    frame.to_file(plots)
    kwargs = dict(layers_dir=tmp_path / "layers", cache_dir=tmp_path / "cache")
    first = Study(plots, OSM_PBF, scenario, **kwargs)
    ranked = first.score()
    second = Study(plots, OSM_PBF, scenario, **kwargs)
    again = second.score()
    assert second.cache_hit and second._osm is None  # no OSM read, no network built
    pd.testing.assert_frame_equal(
        pd.DataFrame(ranked.drop(columns="geometry")), pd.DataFrame(again.drop(columns="geometry"))
    )
    frame.head(5).to_file(plots, mode="w")
    third = Study(plots, OSM_PBF, scenario, **kwargs)
    assert len(third.score()) == 5 and not third.cache_hit


def test_rescoring_equals_a_fresh_run(demo_study, scenario):
    changed = scenario.with_weights(transit=9, nature=0)
    rescored = demo_study.score(changed)
    fresh = Study(
        demo_study.plots_path, demo_study.osm_path, changed,
        layers_dir=demo_study.layers_dir, cache_dir=None,
    ).score()
    cols = ["plot_id", "rank", "score", "status"]
    pd.testing.assert_frame_equal(rescored[cols], fresh[cols])


def test_cli_bad_input_exits_nonzero_with_one_paragraph(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "sitefinder.cli", "run", "--plots", str(tmp_path / "x.gpkg"),
         "--out", str(tmp_path / "out"), "--layers", str(tmp_path / "layers")],
        capture_output=True, text=True, check=False,
    )
    assert proc.returncode == 2
    assert "x.gpkg" in proc.stderr and "does not exist" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_cli_bad_scenario_lists_fields(tmp_path):
    bad = tmp_path / "s.yaml"
    bad.write_text("name: x\ncriteria: {}\nbogus: 1\n")
    proc = subprocess.run(
        [sys.executable, "-m", "sitefinder.cli", "run", "--scenario", str(bad),
         "--out", str(tmp_path / "out")],
        capture_output=True, text=True, check=False,
    )
    assert proc.returncode == 2
    assert "bogus: unknown key" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_cli_help():
    proc = subprocess.run(
        [sys.executable, "-m", "sitefinder.cli", "run", "--help"],
        capture_output=True, text=True, check=True,
    )
    assert "--scenario" in proc.stdout and "--plots" in proc.stdout


def test_cli_download_refuses_a_bad_box_before_going_online(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "sitefinder.cli", "download", "--bbox", "10.8,59.9,10.7,59.94",
         "--out", str(tmp_path / "x.osm")],
        capture_output=True, text=True, check=False,
    )
    assert proc.returncode == 2
    assert "not west, south, east, north" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "x.osm").exists()
