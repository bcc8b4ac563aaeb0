"""The notebook API feels like geopandas and osmnx, and works from any folder.

Scenario paths are read from the scenario file's folder, the bundled data from the
installed package; ``Study.explore`` gives the CLI's map, ``Study.graph`` a graph osmnx
understands, ``Study.route`` the route whose length is the ranked table's distance.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import folium
import nbformat
import networkx as nx
import pytest
import shapely
from nbclient import NotebookClient

from sitefinder.api import BUNDLED_DATA, Study
from sitefinder.config import load_scenario
from sitefinder.errors import InputError

from .conftest import DATA, ROOT, TEST_DATA

NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


# --- paths ------------------------------------------------------------------------------

def _scenario_with_every_path(folder: Path) -> Path:
    """A scenario in ``folder`` naming every kind of input file by a relative path."""
    files = folder / "inputs"
    files.mkdir(parents=True)
    for name in ("population_250m_2023.tif", "oslo_bydeler.gpkg", "oslo_drug_scenes.gpkg"):
        shutil.copy(DATA / name, files / name)
    shutil.copy(TEST_DATA / "dtm_10.tif", files / "dtm.tif")
    shutil.copy(TEST_DATA / "flytoget_gtfs_2017.zip", files / "gtfs.zip")
    shutil.copy(DATA / "oslo_drug_scenes.gpkg", files / "existing.gpkg")
    path = folder / "scenario.yaml"
    path.write_text(
        """extends: default
name: every-path
layers:
  drug_scenes:
    add_files: [inputs/oslo_drug_scenes.gpkg]
  cafes:
    file: inputs/oslo_drug_scenes.gpkg
measure:
  noise:
    raster: inputs/population_250m_2023.tif
  population:
    raster: inputs/population_250m_2023.tif
  slope:
    dem: inputs/dtm.tif
  transit_frequency:
    feeds: [{path: inputs/gtfs.zip}]
  rasters:
    extra: {path: inputs/dtm.tif, statistic: mean}
districts: {file: inputs/oslo_bydeler.gpkg, name_column: bydel}
existing_sites: {file: inputs/existing.gpkg}
""",
        encoding="utf-8",
    )
    return path


def test_every_path_in_a_scenario_is_read_from_the_scenario_files_folder(tmp_path, monkeypatch):
    path = _scenario_with_every_path(tmp_path / "project")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    scenario = load_scenario(os.path.relpath(path, elsewhere))  # ../project/scenario.yaml
    files = scenario.input_files()
    roles = {role.split(":")[0] for role in files}
    assert roles >= {"noise", "population", "dem", "gtfs", "raster", "layer-file", "layer-add",
                     "districts", "existing_sites"}
    inputs = (tmp_path / "project" / "inputs").resolve()
    for role, file in files.items():
        assert file.is_absolute() and file.parent == inputs, f"{role}: {file}"
    scenario.check_input_files()  # every one found, though the working folder has none


def test_a_scenario_extending_another_reads_each_files_paths_from_its_own_folder(tmp_path):
    parent = _scenario_with_every_path(tmp_path / "shared")
    child = tmp_path / "mine" / "child.yaml"
    child.parent.mkdir()
    child.write_text(f"extends: {Path('..') / 'shared' / parent.name}\nname: child\n",
                     encoding="utf-8")
    files = load_scenario(child).input_files()
    assert files["districts"] == (tmp_path / "shared" / "inputs" / "oslo_bydeler.gpkg").resolve()


def test_bundled_data_is_shipped_with_a_regular_install():
    # pyproject's data-files must name every file of data/ (bundled_data_dir finds them in
    # <prefix>/share/sitefinder/data after `pip install .`).
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = config["tool"]["setuptools"]["data-files"]["share/sitefinder/data"]
    shipped = {p.name for pattern in patterns for p in ROOT.glob(pattern)}
    assert shipped == {p.name for p in DATA.iterdir() if p.is_file()}
    assert (BUNDLED_DATA / "plots.gpkg").is_file()


def test_the_api_imports_neither_the_pipeline_nor_publish():
    code = ("import sys, sitefinder.api; "
            "print(sorted(m for m in sys.modules if m in "
            "('sitefinder.publish', 'sitefinder.pipeline')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"


# --- notebooks --------------------------------------------------------------------------

@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebooks_start_with_three_lines_and_never_change_folder(path):
    cells = [c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]
    setup = [line for line in cells[0].source.splitlines() if line.strip()]
    assert len(setup) <= 3, f"{path.name} starts with {len(setup)} lines of set-up"
    text = "\n".join(c.source for c in cells)
    assert "chdir" not in text
    assert '"data/' not in text, "a path relative to the project folder"


def test_quick_start_notebook_runs_from_another_working_folder(tmp_path):
    nb = nbformat.read(ROOT / "notebooks" / "01_quick_start.ipynb", as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    last = nb.cells[-1]
    assert last.source.strip() == "study.explore()"
    html = last.outputs[0]["data"]["text/html"]
    assert "OSL-076" in html  # the map, shown inline
    assert list(tmp_path.iterdir()) == []  # and nothing left in the working folder


# --- explore, graph, route --------------------------------------------------------------

def test_explore_returns_the_rich_map_with_every_plot(demo_study, demo_ranked):
    m = demo_study.explore(top_n=3)
    assert isinstance(m, folium.Map)
    html = m.get_root().render()
    for plot_id in demo_ranked["plot_id"]:
        assert plot_id in html
    assert "Holdeplass" in html  # the layers of the CLI map, labelled in bokmål


def test_explore_by_another_column_and_a_clear_error_for_an_unknown_one(demo_study):
    html = demo_study.explore(column="time_transit_min").get_root().render()
    assert "time_transit_min" in html and "OSL-076" in html
    with pytest.raises(InputError, match="no column 'nope'"):
        demo_study.explore(column="nope")


def test_route_refuses_an_unknown_plot_or_category(demo_study):
    with pytest.raises(InputError, match="no plot 'OSL-999'"):
        demo_study.route("OSL-999", "transit")
    with pytest.raises(InputError, match="'bakery' is not a walking-distance category"):
        demo_study.route("OSL-076", "bakery")


@pytest.fixture(scope="module")
def sample(demo_ranked):
    ok = demo_ranked[demo_ranked["status"] == "ok"]
    return ok.iloc[[0, 7, 19, 33]]


@pytest.mark.parametrize("category", ["transit", "grocery", "health"])
def test_route_is_a_line_as_long_as_the_measured_distance(demo_study, sample, category):
    for _, plot in sample.iterrows():
        route = demo_study.route(plot["plot_id"], category)
        assert len(route) == 1
        row = route.iloc[0]
        expected = plot[f"dist_{category}_m"]
        assert row["length_m"] == pytest.approx(expected, abs=0.5)
        assert row.geometry.geom_type == "LineString"
        assert row.geometry.length == pytest.approx(expected, abs=1.0)
        assert row["minutes"] == pytest.approx(plot[f"time_{category}_min"], abs=0.05)


def test_graph_works_with_osmnx_and_gives_sitefinders_distances(demo_study, sample):
    ox = pytest.importorskip("osmnx")
    graph = demo_study.graph()
    assert isinstance(graph, nx.MultiDiGraph)
    nodes, edges = ox.graph_to_gdfs(graph)
    assert len(nodes) == graph.number_of_nodes() and len(edges) == graph.number_of_edges()
    back = ox.graph_from_gdfs(nodes, edges)
    assert back.number_of_edges() == graph.number_of_edges()
    for _, plot in sample.iterrows():
        line = demo_study.route(plot["plot_id"], "grocery").geometry.iloc[0]
        # The route's first and last vertices are the plot and the shop; between them it
        # follows network nodes, so osmnx's shortest path between those nodes is as long.
        if len(line.coords) < 4:
            continue
        a = ox.distance.nearest_nodes(graph, *line.coords[1])
        b = ox.distance.nearest_nodes(graph, *line.coords[-2])
        path = ox.routing.shortest_path(graph, a, b, weight="length")
        length = nx.path_weight(graph, path, weight="length")
        assert length == pytest.approx(shapely.LineString(line.coords[1:-1]).length, abs=0.5)


def test_study_demo_runs_from_any_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    study = Study.demo(layers_dir=tmp_path / "layers", cache_dir=None)
    assert study.plots_path == BUNDLED_DATA / "plots.gpkg"
    assert study.scenario.name == "oslo-demo"
    assert study.scenario.districts.file.is_absolute()
