"""GeoPackages open styled in QGIS: the layer_styles table, one geometry type per layer."""

from __future__ import annotations

import re
import shutil
import sqlite3
import subprocess
import xml.etree.ElementTree as ET

import geopandas as gpd
import pyogrio
import pytest
import shapely

from sitefinder.layers import read_layer_file
from sitefinder.outputs import write_ranked_gpkg
from sitefinder.qgis_styles import LAYER_COLOURS, SCORE_COLOURS, STYLE_TABLE

STYLE_COLUMNS = [
    "f_table_catalog", "f_table_schema", "f_table_name", "f_geometry_column", "styleName",
    "styleQML", "styleSLD", "useAsDefault", "description", "owner", "ui", "update_time",
]


PARTS = {"Point": "points", "MultiPoint": "points", "LineString": "lines",
         "MultiLineString": "lines", "Polygon": "areas", "MultiPolygon": "areas"}


@pytest.fixture(scope="module")
def ranked_gpkg(demo_ranked, tmp_path_factory):
    return write_ranked_gpkg(demo_ranked, tmp_path_factory.mktemp("gpkg") / "ranked.gpkg")


def styles(path) -> list[dict]:
    with sqlite3.connect(path) as db:
        db.row_factory = sqlite3.Row
        return [dict(row) for row in db.execute(f"SELECT * FROM {STYLE_TABLE}")]


def assert_styled(path) -> None:
    """Every spatial layer has one default style QGIS can apply; GDAL lists the table."""
    layers = dict(pyogrio.list_layers(path))
    assert STYLE_TABLE in layers and layers[STYLE_TABLE] is None
    with sqlite3.connect(path) as db:
        kind = db.execute("SELECT data_type FROM gpkg_contents WHERE table_name = ?",
                          (STYLE_TABLE,)).fetchone()
        columns = [r[1] for r in db.execute(f"PRAGMA table_info({STYLE_TABLE})")]
    assert kind == ("attributes",)
    assert set(STYLE_COLUMNS) <= set(columns)
    rows = styles(path)
    for layer, geometry in layers.items():
        if geometry is None:
            continue
        mine = [r for r in rows if r["f_table_name"] == layer]
        assert sum(r["useAsDefault"] for r in mine) == 1, (path, layer)
        info = pyogrio.read_info(path, layer=layer)
        for row in mine:
            assert row["f_geometry_column"] == info["geometry_name"]
            assert row["f_table_catalog"] == "" and row["f_table_schema"] == ""
            root = ET.fromstring(row["styleQML"].split("\n", 1)[1])  # after the DOCTYPE
            assert root.tag == "qgis" and root.find("renderer-v2") is not None


def _matches(expression: str, row) -> bool:
    """Evaluate the simple QGIS filters sitefinder writes (comparisons joined by AND)."""
    compare = {
        "=": lambda a, v: a == v.strip("'"),
        "<=": lambda a, v: a == a and a <= float(v),  # NULL (NaN) matches no comparison
        ">": lambda a, v: a == a and a > float(v),
    }
    for condition in expression.split(" AND "):
        field, op, value = re.fullmatch(r'"(\w+)" (=|<=|>) (.+)', condition).groups()
        if row[field] is None or not compare[op](row[field], value):
            return False
    return True


def test_ranked_gpkg_has_score_classes_and_status_styles(demo_ranked, ranked_gpkg):
    assert_styled(ranked_gpkg)
    rows = {r["styleName"]: r for r in styles(ranked_gpkg) if r["f_table_name"] == "ranked"}
    assert set(rows) == {"Poeng", "Status"} and rows["Poeng"]["useAsDefault"] == 1
    renderer = ET.fromstring(rows["Poeng"]["styleQML"].split("\n", 1)[1]).find("renderer-v2")
    rules = renderer.find("rules").findall("rule")
    colours = {s.get("name"): s.find("layer/Option/Option[@name='color']").get("value")
               for s in renderer.find("symbols")}
    assert rules[-1].get("filter") == "ELSE"
    # Every ranked plot falls in exactly one score class; the best plot in the darkest.
    for _, plot in demo_ranked.iterrows():
        hits = [r for r in rules[:-1] if _matches(r.get("filter"), plot)]
        assert len(hits) == (1 if plot["status"] == "ok" else 0), plot["plot_id"]
    best = demo_ranked.loc[demo_ranked["rank"] == 1].iloc[0]
    best_rule = next(r for r in rules[:-1] if _matches(r.get("filter"), best))
    r, g, b = (int(v) for v in colours[best_rule.get("symbol")].split(",")[:3])
    assert f"#{r:02x}{g:02x}{b:02x}" == SCORE_COLOURS[0]
    assert re.fullmatch(r"Poeng \d+,\d–\d+,\d", rules[0].get("label"))  # decimal comma
    status = ET.fromstring(rows["Status"]["styleQML"].split("\n", 1)[1]).find("renderer-v2")
    values = {c.get("value") for c in status.find("categories")}
    assert set(demo_ranked["status"]) <= values and "" in values  # and "all other values"


def test_rank_is_an_integer_column(demo_ranked, ranked_gpkg):
    info = pyogrio.read_info(ranked_gpkg, layer="ranked")
    assert dict(zip(info["fields"], info["dtypes"], strict=True))["rank"] == "int64"
    with sqlite3.connect(ranked_gpkg) as db:
        kinds = dict(db.execute("SELECT plot_id, typeof(rank) FROM ranked").fetchall())
    ok = set(demo_ranked.loc[demo_ranked["status"] == "ok", "plot_id"])
    assert {kinds[p] for p in ok} == {"integer"}
    assert {kinds[p] for p in set(kinds) - ok} == {"null"}


def test_editable_layers_have_one_geometry_type_each_and_their_colour(demo_study):
    for name, path in demo_study.layers.paths.items():
        assert_styled(path)
        spatial = {layer: g for layer, g in pyogrio.list_layers(path) if g is not None}
        assert spatial and all(g != "Unknown" for g in spatial.values()), (name, spatial)
        assert set(spatial) <= {f"{name}_points", f"{name}_lines", f"{name}_areas"}
        for layer in spatial:
            kinds = set(gpd.read_file(path, layer=layer).geom_type)
            assert len({PARTS[k] for k in kinds}) <= 1, (layer, kinds)
        colour = LAYER_COLOURS[name].lstrip("#")
        rgb = ",".join(str(int(colour[i:i + 2], 16)) for i in (0, 2, 4))
        assert all(rgb in row["styleQML"] for row in styles(path))


def test_split_layers_read_back_as_built(demo_study):
    """transit = stops (points) + platforms (lines, areas): the same features come back."""
    transit = demo_study.layers.paths["transit"]
    assert {"transit_points", "transit_areas"} <= {n for n, _ in pyogrio.list_layers(transit)}
    for name, path in demo_study.layers.paths.items():
        spec = demo_study.scenario.layers[name]
        if spec.add_files or spec.file:  # the frame holds more than the file
            continue
        again = read_layer_file(path, demo_study.crs, name)
        built = demo_study.layers[name]
        assert again["osm_id"].tolist() == built["osm_id"].tolist(), name
        assert shapely.equals(again.geometry.to_numpy(), built.geometry.to_numpy()).all(), name


@pytest.mark.skipif(shutil.which("ogrinfo") is None, reason="GDAL command-line tools absent")
def test_ogrinfo_lists_layer_styles(ranked_gpkg):
    listing = subprocess.run(["ogrinfo", "-ro", "-q", str(ranked_gpkg)], capture_output=True,
                             text=True, check=True).stdout
    assert "layer_styles" in listing
