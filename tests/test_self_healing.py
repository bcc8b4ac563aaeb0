"""Damaged files sitefinder keeps for itself: a warning naming the file, then rebuilt.

Real runs on the small clip with a metrics cache, a layers ledger and a noise proxy
damaged the way a full disk, a crash or a bad copy damages them.
"""

from __future__ import annotations

import json
import pickle
import shutil
import signal
import sqlite3

import pytest
import rasterio

from sitefinder.outfolder import DamagedFileWarning, read_cache

from .test_atomic_outputs import (
    assert_complete,
    kill9,
    run_args,
    sha,
    sitefinder,
    start_stopped,
    write_plots,
)


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """One complete run: layers in L/, metrics cache in .cache/sitefinder/."""
    work = tmp_path_factory.mktemp("healing")
    write_plots(work / "plots.geojson")
    sitefinder(work, "run", *run_args(work, work / "out"))
    assert list((work / ".cache" / "sitefinder").glob("metrics-*.pkl"))
    assert (work / "L" / "noise_proxy.tif").exists()
    return work


@pytest.fixture
def here(work, tmp_path):
    """A copy of the working folder's layers, cache and output to damage."""
    for name in ("L", ".cache", "out"):
        shutil.copytree(work / name, tmp_path / name)
    shutil.copy(work / "plots.geojson", tmp_path / "plots.geojson")
    return tmp_path


def _run(here, *extra):
    proc = sitefinder(here, "run", *run_args(here, here / "out"), *extra)
    assert "Traceback" not in proc.stderr
    return proc, assert_complete(here / "out")


def _warnings(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("sitefinder: warning:")]


def _ledger(here) -> dict:
    return json.loads((here / "L" / "sitefinder-derived.json").read_text())


def _assert_ledger_whole(here) -> None:
    ledger = _ledger(here)
    derived = {p.name for p in (here / "L").iterdir() if p.suffix in (".gpkg", ".tif")}
    assert set(ledger) == derived
    for name, entry in ledger.items():
        assert "building" not in entry and entry["sha256"] == sha(here / "L" / name), name


def test_truncated_metrics_cache_is_reported_and_measured_again(here):
    caches = list((here / ".cache" / "sitefinder").glob("metrics-*.pkl"))
    for path in caches:
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 3])
    proc, manifest = _run(here)
    warned = _warnings(proc.stderr)
    assert len(warned) == 1 and "metrics-" in warned[0] and ".pkl" in warned[0]
    assert "discarded; measuring again" in warned[0]
    assert manifest["metrics_cache_hit"] is False
    # Rebuilt whole: the next run uses it, without a word.
    proc, manifest = _run(here)
    assert manifest["metrics_cache_hit"] is True and _warnings(proc.stderr) == []


@pytest.mark.parametrize("content", [b"", b"not a pickle at all", pickle.dumps({"other": 1})])
def test_read_cache_discards_what_it_cannot_use(tmp_path, content):
    path = tmp_path / "metrics-x.pkl"
    path.write_bytes(content)
    with pytest.warns(DamagedFileWarning, match="metrics-x.pkl"):
        assert read_cache(path, check=lambda v: isinstance(v, tuple)) is None
    assert not path.exists()


def test_corrupt_ledger_is_reported_and_no_layer_looks_user_edited(here):
    (here / "L" / "sitefinder-derived.json").write_text('{"transit.gpkg": {"key": ')
    before = {p.name: sha(p) for p in (here / "L").iterdir() if p.suffix in (".gpkg", ".tif")}
    proc, manifest = _run(here, "--no-cache")  # measured: every derived file is consulted
    warned = _warnings(proc.stderr)
    assert len(warned) == 1 and "sitefinder-derived.json" in warned[0]
    assert set(manifest["layer_origin"].values()) == {"reused"}  # recognised by their stamps
    # Nothing rebuilt (same bytes), every entry back.
    assert {name: sha(here / "L" / name) for name in before} == before
    _assert_ledger_whole(here)


def test_missing_ledger_makes_no_layer_look_user_edited_but_keeps_real_edits(here):
    (here / "L" / "sitefinder-derived.json").unlink()
    # A planner's edit in QGIS: one feature renamed, in place.
    con = sqlite3.connect(here / "L" / "transit.gpkg")
    # GDAL's R-tree triggers call these spatial functions (GDAL provides them to QGIS);
    # the geometry is not changed, so stand-ins do.
    for name in ("ST_IsEmpty", "ST_MinX", "ST_MaxX", "ST_MinY", "ST_MaxY"):
        con.create_function(name, 1, lambda geom: 0)
    con.execute("UPDATE transit_points SET name = 'Ny holdeplass' WHERE rowid = "
                "(SELECT min(rowid) FROM transit_points)")
    con.commit()
    con.close()
    proc, manifest = _run(here)
    assert _warnings(proc.stderr) == []
    origin = manifest["layer_origin"]
    assert origin.pop("transit") == "user-edited"
    assert set(origin.values()) == {"reused"}
    assert "transit.gpkg" not in _ledger(here)  # the user's file is not claimed
    assert len(_ledger(here)) >= len(origin)  # the lost entries are back


def test_truncated_noise_proxy_is_reported_and_built_again(here):
    proxy = here / "L" / "noise_proxy.tif"
    good = proxy.read_bytes()
    proxy.write_bytes(good[: len(good) // 2])
    proc, manifest = _run(here)
    warned = _warnings(proc.stderr)
    assert warned and all("noise_proxy.tif" in w for w in warned)
    with rasterio.open(proxy) as src:
        assert src.read().size > 0
    assert "road_lden_db" in (here / "out" / "ranked.csv").read_text(encoding="utf-8-sig")
    _assert_ledger_whole(here)


@pytest.mark.skipif(not hasattr(signal, "SIGSTOP"), reason="needs POSIX signals")
def test_run_killed_between_a_layer_and_its_ledger_entry_leaves_nothing_user_edited(here):
    layers = here / "fresh"
    proc = start_stopped(here, "run", *run_args(here, here / "out", layers), "--no-cache",
                         stop_at="derived-written")
    ledger = json.loads((layers / "sitefinder-derived.json").read_text())
    kill9(proc)
    assert any("building" in entry for entry in ledger.values())

    proc = sitefinder(here, "run", *run_args(here, here / "out", layers))
    assert "Traceback" not in proc.stderr
    manifest = assert_complete(here / "out")
    assert "user-edited" not in manifest["layer_origin"].values()
    ledger = json.loads((layers / "sitefinder-derived.json").read_text())
    assert not any("building" in entry for entry in ledger.values())
