"""``sitefinder batch``: areas as partitions on a real Dask LocalCluster (issue 13).

Real data throughout: the Grønland/Tøyen clip of the bundled extract
(tests/data/oslo-clip.osm.pbf), the real Oslo districts (data/oslo_bydeler.gpkg) and the
demo plots in the clip plus plots drawn along the Gamle Oslo / Grünerløkka border, where a
partition's edge is closest. One LocalCluster (2 worker processes) serves the module.
"""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from sitefinder.batch import batch
from sitefinder.batch_areas import read_areas
from sitefinder.batch_partition import partition_intact, read_partition
from sitefinder.errors import InputError
from sitefinder.osm_clip import buffered_area, clip_osm, search_buffer_m

ROOT = Path(__file__).resolve().parents[1]
CLIP = ROOT / "tests" / "data" / "oslo-clip.osm.pbf"
DISTRICTS = ROOT / "data" / "oslo_bydeler.gpkg"
PLOTS = ROOT / "data" / "plots.gpkg"
IN_CLIP = ["030101", "030102", "030116"]  # Gamle Oslo, Grünerløkka, Sentrum
CLIP_BOX = shapely.box(10.755, 59.908, 10.775, 59.918)


@pytest.fixture(scope="module")
def client():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=":0", memory_limit=0) as cluster, \
            distributed.Client(cluster) as dask_client:
        yield dask_client


@pytest.fixture(scope="module")
def areas_file(tmp_path_factory) -> Path:
    """Three districts that overlap the clip, and one far outside it (Bergen)."""
    districts = gpd.read_file(DISTRICTS)
    chosen = districts[districts["bydelsnr"].isin(IN_CLIP)][["bydelsnr", "bydel", "geometry"]]
    bergen = gpd.GeoDataFrame({"bydelsnr": ["460101"], "bydel": ["Bergenhus"]},
                              geometry=[shapely.box(5.30, 60.38, 5.34, 60.40)], crs=4326)
    path = tmp_path_factory.mktemp("areas") / "areas.gpkg"
    pd.concat([chosen, bergen.to_crs(chosen.crs)]).to_file(path, engine="pyogrio")
    return path


@pytest.fixture(scope="module")
def plots_file(tmp_path_factory) -> Path:
    """The demo plots in the clip, plus 30 × 30 m plots 40 m either side of a district edge."""
    demo = gpd.read_file(PLOTS)
    demo = demo[demo.to_crs(4326).representative_point().within(CLIP_BOX)]
    districts = gpd.read_file(DISTRICTS).set_index("bydelsnr").to_crs(demo.crs)
    border = districts.loc["030101"].geometry.boundary.intersection(
        districts.loc["030102"].geometry.boundary)
    border = border.intersection(gpd.GeoSeries([CLIP_BOX], crs=4326).to_crs(demo.crs)
                                 .iloc[0].buffer(-80))
    squares, ids = [], []
    for i, t in enumerate(np.linspace(0.1, 0.9, 4)):
        point = border.interpolate(t, normalized=True)
        for side, dy in (("n", 40), ("s", -40)):
            squares.append(shapely.box(point.x - 15, point.y + dy - 15, point.x + 15,
                                       point.y + dy + 15))
            ids.append(f"EDGE-{i}{side}")
    edge = gpd.GeoDataFrame({"plot_id": ids, "name": ids}, geometry=squares, crs=demo.crs)
    path = tmp_path_factory.mktemp("plots") / "plots.gpkg"
    pd.concat([demo[["plot_id", "name", "geometry"]], edge]).to_file(path, engine="pyogrio")
    return path


@pytest.fixture(scope="module")
def first(client, areas_file, plots_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("batch") / "out"
    result = batch(areas_file, plots=plots_file, osm=CLIP, out=out, client=client, maps=False)
    return out, result


@pytest.fixture(scope="module")
def single(plots_file, tmp_path_factory):
    """One ordinary run of all the plots on the whole clip, for comparison."""
    from sitefinder.pipeline import run

    work = tmp_path_factory.mktemp("single")
    return run(plots=plots_file, osm=CLIP, out_dir=work / "out", layers_dir=work / "layers",
               cache_dir=None, maps=False).ranked


def test_every_area_has_its_status(first):
    _, result = first
    status = result.summary.set_index("area_id")["status"].to_dict()
    assert status == {"030101": "done", "030102": "done", "030116": "done",
                      "460101": "empty"}
    bergen = result.summary.set_index("area_id").loc["460101"]
    assert bergen["reason_en"] == "outside the extract"
    assert bergen["reason_nb"] == "utenfor kartutsnittet"
    assert result.outputs["summary_csv"].read_bytes().count(b"\r\n") == 5
    overview = result.outputs["overview_map"].read_text(encoding="utf-8")
    assert "Bergenhus" in overview and "Gamle Oslo" in overview
    assert "areas/030101/" not in overview  # maps were off: no link to a missing map


def test_partitioned_results_equal_a_single_run(first, single, plots_file):
    _, result = first
    combined = result.dataset()
    plots = gpd.read_file(plots_file)
    # No plot lost: every plot is in the dataset or listed as in no area.
    assert set(combined["plot_id"]) | set(result.unassigned["plot_id"]) == set(plots["plot_id"])
    assert not set(combined["plot_id"]) & set(result.unassigned["plot_id"])
    assert combined["plot_id"].is_unique
    whole = single.set_index("plot_id").loc[combined["plot_id"]]
    parts = combined.set_index("plot_id")
    assert (parts["status"] == whole["status"]).all()
    assert (whole["status"] == "ok").sum() >= 4
    columns = [c for c in parts.columns if c.startswith(("dist_", "time_", "count_", "value_"))
               or c in ("score", "dwelling_dist_m", "industrial_dist_m", "road_lden_db",
                        "exposure_index", "capacity_units", "residential_dist_m")]
    assert len(columns) > 20
    for column in columns:
        np.testing.assert_allclose(parts[column].astype(float), whole[column].astype(float),
                                   rtol=0, atol=1e-6, err_msg=column)
    # Plots right at a partition edge are among those compared.
    edge = [p for p in parts.index if p.startswith("EDGE-")]
    assert len(edge) == 8
    assert set(parts.loc[edge, "area_id"]) == {"030101", "030102"}
    # source_row refers to the user's file.
    rows = dict(zip(plots["plot_id"], range(1, len(plots) + 1), strict=True))
    assert parts["source_row"].astype(int).to_dict() == {p: rows[p] for p in parts.index}


def test_rerun_skips_unchanged_and_redoes_a_damaged_partition(first, client, areas_file,
                                                              plots_file):
    out, before = first
    manifest = out / "areas" / "030116" / "partition.json"
    stamp = manifest.stat().st_mtime_ns
    again = batch(areas_file, plots=plots_file, osm=CLIP, out=out, client=client, maps=False)
    status = again.summary.set_index("area_id")["status"]
    assert list(status[IN_CLIP]) == ["skipped-unchanged"] * 3
    assert status["460101"] == "empty"
    assert manifest.stat().st_mtime_ns == stamp
    pd.testing.assert_frame_equal(again.dataset().sort_values("plot_id").reset_index(drop=True),
                                  before.dataset().sort_values("plot_id")
                                  .reset_index(drop=True))
    # A partition whose output no longer matches its checksum is not trusted.
    with open(out / "areas" / "030116" / "ranked.parquet", "ab") as f:
        f.write(b"damaged")
    third = batch(areas_file, plots=plots_file, osm=CLIP, out=out, client=client, maps=False)
    status = third.summary.set_index("area_id")["status"]
    assert status["030116"] == "done"
    assert list(status[["030101", "030102"]]) == ["skipped-unchanged"] * 2
    assert len(third.dataset()) == len(before.dataset())


def test_killed_worker_then_rerun_completes(first, client, areas_file, plots_file, tmp_path):
    """A worker process killed (SIGKILL) while it writes a partition; a rerun completes."""
    out = tmp_path / "out"
    shutil.copytree(first[0], out)
    for area_id in ("030101", "030102"):
        shutil.rmtree(out / "areas" / area_id)
    killed: list = []  # the process and the area it was writing

    def kill_a_worker_writing_a_partition() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not killed:
            for path in (out / "areas").iterdir():
                if ".tmp-" in path.name:  # .<area>.tmp-<pid>-<random>: being written
                    area_id, rest = path.name[1:].split(".tmp-")
                    pid = int(rest.split("-")[0])
                    os.kill(pid, signal.SIGKILL)
                    killed.extend([pid, area_id])
                    return
            time.sleep(0.02)

    killer = threading.Thread(target=kill_a_worker_writing_a_partition)
    killer.start()
    interrupted = batch(areas_file, plots=plots_file, osm=CLIP, out=out, client=client,
                        maps=False)
    killer.join()
    assert killed
    status = interrupted.summary.set_index("area_id")["status"]
    assert set(status[IN_CLIP]) <= {"done", "skipped-unchanged", "failed"}
    failed = interrupted.summary[interrupted.summary["status"] == "failed"]
    assert failed["reason_en"].str.len().gt(0).all()
    # The killed process left its half-written folder under a temporary name only; no
    # folder under an area's own name comes from it, and each one there is complete.
    assert [p for p in (out / "areas").iterdir() if f".tmp-{killed[0]}-" in p.name]
    for area_id in IN_CLIP:
        folder = out / "areas" / area_id
        record = read_partition(folder)
        if folder.exists():
            assert record is not None and partition_intact(folder, record)
    # The area being written was either reported failed or done again by another process.
    record = read_partition(out / "areas" / killed[1])
    assert status[killed[1]] == "failed" if record is None else record["worker_pid"] != killed[0]
    rerun = batch(areas_file, plots=plots_file, osm=CLIP, out=out, client=client, maps=False)
    status = rerun.summary.set_index("area_id")["status"]
    assert set(status[IN_CLIP]) <= {"done", "skipped-unchanged"}
    assert status["030116"] == "skipped-unchanged"
    assert not [p for p in (out / "areas").iterdir() if p.name.startswith(".")]
    pd.testing.assert_frame_equal(rerun.dataset().sort_values("plot_id").reset_index(drop=True),
                                  first[1].dataset().sort_values("plot_id")
                                  .reset_index(drop=True))


def test_area_outside_the_extract_on_the_command_line(tmp_path, capsys):
    from sitefinder.cli import main

    far = tmp_path / "far.geojson"
    gpd.GeoDataFrame({"kommunenummer": ["4601"], "kommunenavn": ["Bergen"]},
                     geometry=[shapely.box(5.2, 60.3, 5.4, 60.45)], crs=4326).to_file(far)
    code = main(["batch", "--areas", str(far), "--osm", str(CLIP), "--plots", str(PLOTS),
                 "--out", str(tmp_path / "out"), "--quiet"])
    printed = capsys.readouterr().out
    assert code == 0
    assert "4601 Bergen: empty (outside the extract)" in printed
    summary = pd.read_csv(tmp_path / "out" / "summary.csv", dtype={"area_id": str})
    assert summary[["area_id", "status"]].values.tolist() == [["4601", "empty"]]


def test_areas_file_problems_name_row_and_column(tmp_path):
    frame = gpd.read_file(DISTRICTS).head(3)
    frame.loc[2, "bydelsnr"] = frame.loc[0, "bydelsnr"]
    twice = tmp_path / "twice.gpkg"
    frame.to_file(twice)
    with pytest.raises(InputError, match="used by more than one area") as err:
        read_areas(twice)
    assert "row 3, column bydelsnr" in str(err.value)
    with pytest.raises(InputError, match="no column 'kommunenummer'") as err:
        read_areas(DISTRICTS, "kommunenummer")
    assert "bydelsnr" in str(err.value)  # the columns there are, to choose from
    with pytest.raises(InputError, match="does not exist"):
        read_areas(tmp_path / "missing.gpkg")


def test_cut_keeps_whole_ways_and_leaves_out_the_rest(tmp_path):
    from sitefinder.sources.osm import read_osm

    area = shapely.box(10.760, 59.911, 10.763, 59.913)
    cut = clip_osm(CLIP, buffered_area(area, 50), tmp_path / "cut.osm.pbf")
    assert 0 < cut.nodes_inside < cut.nodes < 23_744
    whole, part = read_osm(CLIP), read_osm(cut.path)
    # Every street in the cut is as long as in the whole extract (not cut at the buffer).
    lengths = whole.lines.groupby("osm_id")["node_ids"].apply(lambda s: sum(map(len, s)))
    cut_lengths = part.lines.groupby("osm_id")["node_ids"].apply(lambda s: sum(map(len, s)))
    assert len(cut_lengths) > 20
    assert (cut_lengths == lengths.loc[cut_lengths.index]).all()
    # No shop or amenity far away (a kept street brings only its own nodes along).
    points = whole.points[whole.points["shop"].notna() | whole.points["amenity"].notna()]
    far = points[shapely.distance(points.geometry.to_numpy(), area) > 0.01]
    assert len(far) > 20
    assert not set(far["osm_id"]) & set(part.points["osm_id"])
    assert len(part.points) < len(whole.points)


def test_buffer_is_the_largest_search_distance():
    from sitefinder.config import default_scenario

    scenario = default_scenario()
    assert search_buffer_m(scenario) == scenario.network.max_distance_m \
        + scenario.network.max_snap_m
    wider = scenario.model_copy(deep=True)
    wider.criteria["industry"].value.ideal = 9000.0
    assert search_buffer_m(wider) == 9000.0


def test_screening_partition_equals_screening_the_area(client, tmp_path):
    from sitefinder.screen import screen

    districts = gpd.read_file(DISTRICTS)
    sentrum = districts[districts["bydelsnr"] == "030116"]
    areas = tmp_path / "sentrum.gpkg"
    sentrum.to_file(areas, engine="pyogrio")
    result = batch(areas, mode="screen", osm=CLIP, out=tmp_path / "out", client=client,
                   maps=False)
    row = result.summary.iloc[0]
    assert row["status"] == "done"
    alone = screen(CLIP, area=areas, layers_dir=tmp_path / "layers").cells
    cells = result.dataset().set_index("plot_id").sort_index()
    alone = alone.set_index("plot_id").loc[cells.index]
    assert (cells["status"] == alone["status"]).all()
    np.testing.assert_allclose(cells["score"], alone["score"], rtol=0, atol=1e-6)
    np.testing.assert_allclose(cells["buildable_m2"], alone["buildable_m2"], atol=1e-6)
    assert row["candidates"] == len(alone)
    assert row["suitable_m2"] == pytest.approx(
        alone.loc[alone["status"] == "ok", "buildable_m2"].sum())
    assert row["best_score"] == pytest.approx(alone.loc[alone["status"] == "ok", "score"].max())


def test_tiles_cover_the_extract_with_named_squares():
    from sitefinder.batch_areas import tile_areas

    bounds = (10.755, 59.908, 10.775, 59.918)
    tiles = tile_areas(bounds, "EPSG:25832", 1000)
    assert tiles["area_id"].is_unique
    assert tiles.union_all().covers(shapely.box(*bounds))
    squares = tiles.to_crs(25832)
    np.testing.assert_allclose(squares.area, 1e6, rtol=1e-9)
    first = squares.iloc[0].geometry.bounds
    assert tiles["area_id"].iloc[0] == f"E{first[0] / 1000:g}N{first[1] / 1000:g}"
    with pytest.raises(InputError, match="too small"):
        tile_areas(bounds, "EPSG:25832", 100)


CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")


@pytest.mark.skipif(not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
                    reason="needs Debian chromium and chromium-driver")
def test_overview_map_draws_every_area_and_links_to_its_map(first, tmp_path):
    """In headless Chromium, without any network: each area drawn, its popup links on."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.support.ui import WebDriverWait

    from sitefinder.batch_combine import write_overview_map
    from tests.test_browser import chromium_options

    summary = first[1].summary.copy()
    done = summary["status"] == "done"
    summary.loc[done, "map"] = "run/map.html"
    page = write_overview_map(summary, tmp_path / "overview_map.html", language="nb")
    drv = webdriver.Chrome(service=Service(str(CHROMEDRIVER)),
                           options=chromium_options(str(tmp_path / "profile")))
    try:
        drv.execute_cdp_cmd("Network.enable", {})
        drv.execute_cdp_cmd("Network.setBlockedURLs", {"urls": ["http://*", "https://*"]})
        drv.get(page.as_uri())
        wait = WebDriverWait(drv, 20)
        wait.until(lambda d: len(d.find_elements("css selector", "path.leaflet-interactive"))
                   == len(summary))
        links = drv.execute_script("""
            const found = [];
            for (const path of document.querySelectorAll('path.leaflet-interactive')) {
              path.dispatchEvent(new MouseEvent('click', {bubbles: true}));
              // The previous popup may still be fading out: the newest is the last.
              const popups = document.querySelectorAll('.leaflet-popup-content');
              const popup = popups[popups.length - 1];
              const link = popup && popup.querySelector('a');
              found.push([popup ? popup.textContent : '', link ? link.getAttribute('href') : '']);
            }
            return found;""")
    finally:
        drv.quit()
    hrefs = {href for _, href in links if href}
    assert hrefs == {f"areas/{a}/run/map.html" for a in summary.loc[done, "area_id"]}
    texts = " ".join(text for text, _ in links)
    assert "utenfor kartutsnittet" in texts and "Åpne områdets kart" in texts


def test_areas_sharing_a_cut_give_the_same_results(first, client, areas_file, plots_file,
                                                   tmp_path):
    """Neighbouring areas cut once together, then each from that cut: nothing changes."""
    grouped = batch(areas_file, plots=plots_file, osm=CLIP, out=tmp_path / "out",
                    client=client, maps=False, group_size=2)
    assert grouped.summary["status"].tolist() == first[1].summary["status"].tolist()
    assert sum(bool(r.get("clip", {}).get("from_group_cut"))
               for r in grouped.records.values()) >= 2
    assert not (tmp_path / "out" / ".cuts").exists()
    pd.testing.assert_frame_equal(
        grouped.dataset().sort_values("plot_id").reset_index(drop=True),
        first[1].dataset().sort_values("plot_id").reset_index(drop=True))
