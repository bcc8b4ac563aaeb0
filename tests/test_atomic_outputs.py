"""Nothing lost, nothing mixed up: whatever moment a run dies, --out is one complete run.

Real ``sitefinder`` processes on the small Grønland/Tøyen clip. The test hook
``SITEFINDER_TEST_STOP_AT`` (sitefinder.outfolder.checkpoint) makes a process stop itself
(SIGSTOP) at a named step; the test then sends it ``kill -9`` and checks the output folder
against its own manifest, with checksums computed here, not by sitefinder.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio
import pytest
from shapely.geometry import box

from .conftest import DATA, TEST_DATA

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGSTOP"), reason="needs POSIX signals")

CLIP = TEST_DATA / "oslo-clip.osm.pbf"
# Six plots on open ground that rank, one in an industrial area that does not; ids, names
# and a column name that a spreadsheet would run as formulas.
PLOTS = [
    ("=1+2", "Grønland", 10.771, 59.9105),
    ("@A1", '=HYPERLINK("http://example.org")', 10.771, 59.9095),
    ("-2+3", "\tTab first", 10.771, 59.9165),
    ("+47 22", "\rCR first", 10.763, 59.9165),
    ("T-5", "-", 10.761, 59.9155),
    ("T-6", "Tøyen", 10.757, 59.9155),
    ("T-7", "@sum(1)", 10.760, 59.910),
]


def write_plots(path: Path) -> Path:
    """The test plots: 40 m × 30 m boxes in EPSG:25832, as GeoJSON."""
    centres = gpd.GeoSeries(
        gpd.points_from_xy([p[2] for p in PLOTS], [p[3] for p in PLOTS]), crs=4326
    ).to_crs(25832)
    frame = gpd.GeoDataFrame(
        {
            "plot_id": [p[0] for p in PLOTS],
            "name": [p[1] for p in PLOTS],
            "=note": ["-1+1"] * len(PLOTS),
        },
        geometry=[box(c.x - 20, c.y - 15, c.x + 20, c.y + 15) for c in centres],
        crs=25832,
    )
    frame.to_file(path, driver="GeoJSON")
    return path


def env(**extra: str) -> dict[str, str]:
    return {**os.environ, "SITEFINDER_QUIET": "1", **extra}


def sitefinder(cwd: Path, *args, check: bool = True, **extra: str):
    """Run the CLI in ``cwd`` (so its .cache stays in the test's folder)."""
    proc = subprocess.run(
        [sys.executable, "-m", "sitefinder.cli", *map(str, args)],
        cwd=cwd, env=env(**extra), capture_output=True, text=True, check=False, timeout=600,
    )
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def start_stopped(cwd: Path, *args, stop_at: str, **extra: str) -> subprocess.Popen:
    """Start the CLI and wait until the test hook has stopped it at ``stop_at``."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "sitefinder.cli", *map(str, args)],
        cwd=cwd, env=env(SITEFINDER_TEST_STOP_AT=stop_at, **extra),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    _, status = os.waitpid(proc.pid, os.WUNTRACED)
    if not os.WIFSTOPPED(status):
        proc.returncode = os.waitstatus_to_exitcode(status)
        pytest.fail(f"exited with {proc.returncode} before '{stop_at}': "
                    f"{proc.stderr.read().decode()}")
    return proc


def kill9(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def snapshot(folder: Path) -> dict[str, str]:
    """Checksum of every file under ``folder``, by relative path."""
    return {str(p.relative_to(folder)): sha(p) for p in sorted(folder.rglob("*")) if p.is_file()}


def assert_complete(folder: Path) -> dict:
    """The folder is one whole run: every file of its manifest, non-empty, with its checksum."""
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    files = manifest["files"]
    assert {"ranked.csv", "ranked.gpkg", "ranked.xlsx", "map.html", "map_offline.html"} <= \
        set(files)
    for name, entry in files.items():
        path = folder / name
        assert path.is_file() and path.stat().st_size > 0, name
        assert path.stat().st_size == entry["bytes"], name
        assert sha(path) == entry["sha256"], name
    # Nothing of sitefinder's in the folder that the manifest does not vouch for.
    ours = {"ranked.csv", "ranked.gpkg", "ranked.xlsx", "map.html", "map_offline.html",
            "selected.csv", "selected.gpkg", "selected.xlsx", "report.html", "report.pdf"}
    present = {p.name for p in folder.iterdir()} & ours
    assert present == set(files) & ours
    return manifest


def leftovers(out: Path) -> list[str]:
    return sorted(p.name for p in out.parent.iterdir()
                  if p.name.startswith(f".{out.name}.sitefinder"))


def run_args(work: Path, out: Path, layers: Path | None = None) -> list:
    return ["--plots", work / "plots.geojson", "--osm", CLIP, "--out", out,
            "--layers", layers or work / "L"]


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    """A working folder with the test plots and one complete run in ``previous/``."""
    work = tmp_path_factory.mktemp("atomic")
    write_plots(work / "plots.geojson")
    sitefinder(work, "run", *run_args(work, work / "previous"))
    assert_complete(work / "previous")
    return work


@pytest.fixture
def out(work, tmp_path) -> Path:
    """A copy of the previous complete run, with a file of the user's own in it."""
    out = tmp_path / "out"
    shutil.copytree(work / "previous", out)
    (out / "notes.txt").write_text("the planner's notes")
    return out


def _staging(out: Path, kind: str = "new") -> Path:
    found = [p for p in out.parent.iterdir()
             if p.name.startswith(f".{out.name}.sitefinder-{kind}-")]
    assert len(found) == 1, leftovers(out)
    return found[0]


# What the killed run had done when it was stopped, checked in its staging folder.
def _measure(out):
    assert list(_staging(out).iterdir()) == []


def _write_gpkg(out):
    staged = _staging(out)
    layers = [name for name, _ in pyogrio.list_layers(staged / "ranked.gpkg")]
    assert [name for name in layers if name != "layer_styles"] == ["ranked"]


def _write_maps(out):
    assert sorted(p.name for p in _staging(out).iterdir()) == \
        ["ranked.csv", "ranked.gpkg", "ranked.xlsx"]


def _maps_written(out):
    names = {p.name for p in _staging(out).iterdir()}
    assert {"map.html", "map_offline.html"} <= names and "manifest.json" not in names


def _commit(out):
    assert_complete(_staging(out, "ready"))


@pytest.mark.parametrize(
    ("step", "hit"),
    [("measure", _measure), ("write-gpkg", _write_gpkg), ("write-maps", _write_maps),
     ("maps-written", _maps_written), ("commit", _commit)],
)
def test_kill_9_before_the_swap_leaves_the_previous_run(work, out, step, hit):
    before = snapshot(out)
    proc = start_stopped(work, "run", *run_args(work, out), "--no-cache", stop_at=step)
    hit(out)  # the process really is at that moment
    kill9(proc)
    assert snapshot(out) == before  # the previous run, byte for byte, notes included
    assert_complete(out)


def test_kill_9_after_the_swap_leaves_the_new_run_and_the_next_run_tidies_up(work, out):
    before = json.loads((out / "manifest.json").read_text())
    proc = start_stopped(work, "run", *run_args(work, out), "--no-cache", stop_at="swapped")
    kill9(proc)
    manifest = assert_complete(out)
    assert manifest["created"] != before["created"] or manifest["timings_s"] != before["timings_s"]
    assert manifest["metrics_cache_hit"] is False  # the new run's manifest, not the old one
    assert (out / "notes.txt").read_text() == "the planner's notes"
    assert leftovers(out)  # the previous folder, not yet deleted when the run died

    sitefinder(work, "run", *run_args(work, out))
    assert_complete(out)
    assert leftovers(out) == []
    assert (out / "notes.txt").read_text() == "the planner's notes"


def test_without_atomic_exchange_a_kill_between_renames_is_repaired_by_the_next_run(work, out):
    """The two-rename swap of systems without RENAME_EXCHANGE (forced by a test switch)."""
    fallback = {"SITEFINDER_TEST_NO_EXCHANGE": "1"}
    proc = start_stopped(work, "run", *run_args(work, out), stop_at="renamed-away", **fallback)
    kill9(proc)
    assert not out.exists()  # between the renames: missing for a moment, never mixed
    ready = _staging(out, "ready")
    new = assert_complete(ready)

    # The next run first puts the complete new folder in place, under its lock.
    proc = start_stopped(work, "run", *run_args(work, out), stop_at="measure", **fallback)
    try:
        assert assert_complete(out)["created"] == new["created"]
        assert (out / "notes.txt").exists()
    finally:
        proc.send_signal(signal.SIGCONT)
        proc.wait(timeout=300)
        proc.stderr.close()
    assert proc.returncode == 0
    assert_complete(out)
    assert leftovers(out) == []


def test_a_run_that_fails_leaves_the_previous_run_and_no_temporary_folder(work, out):
    before = snapshot(out)
    bad = out.parent / "bad.geojson"
    bad.write_text('{"type": "FeatureCollection", "features": []}')
    proc = sitefinder(work, "run", *run_args(work, out)[2:], "--plots", bad, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert snapshot(out) == before
    assert leftovers(out) == []


def test_out_that_is_a_file_is_refused_before_any_work(work, tmp_path):
    target = tmp_path / "results"
    target.write_text("not a folder")
    proc = sitefinder(work, "run", *run_args(work, target), check=False)
    assert proc.returncode == 2
    assert "results" in proc.stderr and "is a file, not a folder" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert target.read_text() == "not a folder"


def test_read_only_out_is_refused_and_left_untouched(work, out):
    before = snapshot(out)
    out.chmod(0o555)
    try:
        proc = sitefinder(work, "run", *run_args(work, out), check=False)
        assert proc.returncode == 2
        assert "read-only" in proc.stderr and str(out) in proc.stderr
        assert "Traceback" not in proc.stderr
        assert snapshot(out) == before
        assert leftovers(out) == []
    finally:
        out.chmod(stat.S_IRWXU | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)


def test_missing_and_unreadable_inputs_are_refused_before_the_output_is_touched(work, out):
    before = snapshot(out)
    proc = sitefinder(work, "run", "--plots", work / "nope.gpkg", "--osm", CLIP, "--out", out,
                      check=False)
    assert proc.returncode == 2 and "nope.gpkg" in proc.stderr
    assert "does not exist" in proc.stderr

    raster = out.parent / "population.tif"
    data = (DATA / "population_250m_2023.tif").read_bytes()
    raster.write_bytes(data[: len(data) // 2])  # truncated, as by a broken copy
    scenario = out.parent / "s.yaml"
    scenario.write_text("extends: default\nname: t\nmeasure:\n  population:\n"
                        "    raster: population.tif\n    radius_m: 500\n")
    proc = sitefinder(work, "run", *run_args(work, out), "--scenario", scenario, check=False)
    assert proc.returncode == 2
    assert "population.tif" in proc.stderr and "cannot be read" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert snapshot(out) == before and leftovers(out) == []


def test_two_runs_on_the_same_inputs_give_byte_identical_ranked_csv(work, tmp_path):
    sitefinder(work, "run", *run_args(work, tmp_path / "a", tmp_path / "LA"), "--no-cache")
    assert (tmp_path / "a" / "ranked.csv").read_bytes() == \
        (work / "previous" / "ranked.csv").read_bytes()


def test_text_cells_that_look_like_formulas_are_written_as_text(work, tmp_path):
    out = tmp_path / "sel"
    shutil.copytree(work / "previous", out)
    sitefinder(work, "select", "--units", "8", "--out", out)
    for name, encoding in (("ranked.csv", "utf-8-sig"), ("selected.csv", "utf-8")):
        table = pd.read_csv(out / name, dtype=str, keep_default_na=False, encoding=encoding)
        for column in table.columns:
            assert not column.startswith(("=", "+", "-", "@", "\t", "\r")), (name, column)
            for cell in table[column]:
                starts = cell.startswith(("=", "+", "-", "@", "\t", "\r"))
                number = cell.lstrip("+-").replace(".", "", 1).replace("e-", "", 1).isdigit()
                assert not starts or number, (name, column, cell)
        assert {"'=1+2", "'@A1", "'-2+3", "'+47 22"} & set(table["plot_id"])
    ranked = pd.read_csv(out / "ranked.csv", dtype=str, keep_default_na=False,
                         encoding="utf-8-sig")
    assert "'=note" in ranked.columns and set(ranked["'=note"]) == {"'-1+1"}
    names = dict(zip(ranked["plot_id"], ranked["name"], strict=True))
    assert names["'@A1"] == "'=HYPERLINK(\"http://example.org\")"
    assert names["'-2+3"] == "'\tTab first" and names["'+47 22"] == "'\rCR first"
    assert names["T-5"] == "'-" and names["T-6"] == "Tøyen"
    assert pd.to_numeric(ranked["score"]).notna().all()  # numbers stay numbers
    selected = pd.read_csv(out / "selected.csv", dtype=str, keep_default_na=False)
    assert len(selected) >= 2 and set(selected["plot_id"]) <= set(ranked["plot_id"])


def test_protect_cell_rule():
    from sitefinder.outputs import protect_cell

    for text in ("=1+1", "+a", "-a", "@x", "\tx", "\rx", "-", "-2+3", "+47 22 00 00 00"):
        assert protect_cell(text) == "'" + text
    for value in ("-12.5", "+3", "1e-3", "-.5", "plain", "", "a=b", -3, 2.5, None):
        assert protect_cell(value) == value


# ---------------------------------------------------------------------------------------
# One study per output folder


def test_select_on_another_studys_folder_uses_that_study(work, tmp_path):
    out = tmp_path / "study"
    shutil.copytree(work / "previous", out)
    # No --plots/--osm/--layers: the study in --out, never the bundled Oslo demo.
    proc = sitefinder(work, "select", "--units", "8", "--out", out)
    assert "Using the study in" in proc.stdout and "plots.geojson" in proc.stdout
    manifest = assert_complete(out)
    assert manifest["study"]["plots"] == str((work / "plots.geojson").resolve())
    assert manifest["study"]["osm"] == str(CLIP.resolve())
    assert manifest["study"]["layers"] == str((work / "L").resolve())
    assert not (work / "layers").exists()  # not the default layers folder either
    ranked = pd.read_csv(out / "ranked.csv", dtype=str, encoding="utf-8-sig")
    assert len(ranked) == len(PLOTS) and "T-6" in set(ranked["plot_id"])
    assert "selected.csv" in manifest["files"]


def test_select_and_report_refuse_inputs_of_another_study(work, out):
    before = snapshot(out)
    other = DATA / "oslo-center.osm.pbf"
    for command in (["select", "--units", "4"], ["report"]):
        proc = sitefinder(work, *command, "--out", out, "--osm", other, check=False)
        assert proc.returncode == 2, proc.stderr
        assert "--osm differ from the study this folder holds" in proc.stderr
        assert str(out) in proc.stderr and "Traceback" not in proc.stderr
    proc = sitefinder(work, "select", "--units", "4", "--out", out, "--id-column", "name",
                      check=False)
    assert proc.returncode == 2 and "--id-column" in proc.stderr
    assert snapshot(out) == before


def test_run_without_inputs_names_the_files_it_uses(work, tmp_path):
    out = tmp_path / "again"
    shutil.copytree(work / "previous", out)
    proc = sitefinder(work, "run", "--out", out)
    assert f"Using the study in {out}" in proc.stdout and str(CLIP.resolve()) in proc.stdout
    assert_complete(out)
    # A folder without a study: the bundled demo data, said so before anything is read,
    # found beside the package even though this working folder has no data/.
    proc = sitefinder(work, "run", "--out", tmp_path / "new", check=False)
    bundled = Path(__file__).resolve().parents[1] / "data" / "plots.gpkg"
    assert f"Using the bundled demo data: plots {bundled}" in proc.stdout
    assert proc.returncode == 0, proc.stderr
    assert_complete(tmp_path / "new")


def test_the_used_inputs_line_tells_given_files_from_defaults(capsys):
    # "Using the bundled demo data: plots my.gpkg" would claim the user's file is the demo's.
    from sitefinder.outfolder import StudyInputs, print_used_inputs

    inputs = StudyInputs.new(Path("/data/my_plots.gpkg"), DATA / "oslo-center.osm.pbf")
    print_used_inputs(inputs, "the bundled demo data", given=("plots",))
    line = capsys.readouterr().out
    assert line.startswith("Using the bundled demo data: OSM ")
    assert "(given: plots /data/my_plots.gpkg)" in line
