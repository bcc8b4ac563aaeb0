"""The web map as a file: contents, escaping, offline self-containment and privacy."""

from __future__ import annotations

import json
import math
import re

import geopandas as gpd
import pytest
from pypdf import PdfReader

from sitefinder.errors import InputError
from sitefinder.maps import (
    KARTVERKET_TOPO_TILES,
    criteria_from_ranked,
    format_raw,
    metric_label,
    score_class,
    write_map,
)
from sitefinder.report import write_report
from tests.map_fixtures import (
    districts_fixture,
    isochrones_fixture,
    layers_fixture,
    ranked_fixture,
    selection_fixture,
)


@pytest.fixture(scope="module")
def ranked():
    return ranked_fixture(40)


@pytest.fixture(scope="module")
def layers():
    return layers_fixture()


def test_online_map_uses_cdn_and_both_basemaps(ranked, tmp_path):
    html = write_map(ranked, tmp_path / "map.html").read_text(encoding="utf-8")
    assert "cdn.jsdelivr.net/npm/leaflet@1.9.4/dist/leaflet.js" in html
    assert "tile.openstreetmap.org" in html
    assert "cache.kartverket.no" in html and KARTVERKET_TOPO_TILES.split("?")[0] in html
    # Folium's unused defaults are not loaded.
    assert "jquery" not in html.lower() and "bootstrap" not in html.lower()
    assert "OpenStreetMap contributors" in html and "Kartverket" in html


def test_offline_map_embeds_everything(ranked, layers, tmp_path):
    html = write_map(ranked, tmp_path / "map.html", layers=layers, offline=True,
                     basemap={"buildings": layers["industrial"]}).read_text(encoding="utf-8")
    assert re.findall(r'<(?:script|img)[^>]+src="(?!data:)', html) == []
    assert re.findall(r'<link[^>]+href=', html) == []
    assert "tile.openstreetmap.org" not in html and "cache.kartverket.no" not in html
    assert "sourceMappingURL" not in html
    # Icons referenced by the vendored CSS are embedded.
    assert re.findall(r"url\((?!data:|#)", html) == []


def test_every_criterion_in_popup_data(ranked, tmp_path):
    html = write_map(ranked, tmp_path / "map.html").read_text(encoding="utf-8")
    crits = criteria_from_ranked(ranked)
    assert [c.name for c in crits] == [c[6:] for c in ranked.columns if c.startswith("value_")]
    assert all(c.weight is not None for c in crits)
    assert {c.name: c.raw_columns for c in crits}["transit"] == ("dist_transit_m",
                                                                 "time_transit_min")
    assert {c.name: c.raw_columns for c in crits}["screening"] == ("dwelling_dist_m",)
    for c in crits:
        assert f'"name":"{c.name}"' in html


def test_names_are_never_markup(ranked, layers, tmp_path):
    layers = dict(layers)
    layers["<b>odd</b>"] = layers.pop("grocery")
    html = write_map(ranked, tmp_path / "map.html", layers=layers,
                     title="<script>x</script>").read_text(encoding="utf-8")
    assert "<script>alert(1)</script>" not in html
    assert "<img src=x" not in html
    assert "\\u003cscript\\u003ealert(1)\\u003c/script\\u003e" in html
    assert "<b>odd</b>" not in html and "Industri <b>" not in html
    assert "&lt;script&gt;x&lt;/script&gt;" in html
    # Leaflet's layer control inserts names as HTML. JSON encoding alone (\u003c) would
    # still hand Leaflet a "<b>": the names it receives must be HTML-escaped text.
    names = layer_control_names(html)
    assert "&lt;b&gt;odd&lt;/b&gt;" in names
    assert [n for n in names if "<" in n or ">" in n] == []


def layer_control_names(html: str) -> list[str]:
    """The names the layer control gets, as the browser's JavaScript sees them."""
    block = re.search(r"base_layers\s*:\s*\{(.*?)\},\s*overlays\s*:\s*\{(.*?)\}", html, re.S)
    assert block, "no layer control in the map"
    keys = re.findall(r'^\s*("(?:[^"\\]|\\.)*")\s*:', block.group(1) + block.group(2), re.M)
    return [json.loads(k) for k in keys]


def test_formatting():
    assert format_raw("dist_transit_m", 1234.4) == "1\u202f234 m"
    assert format_raw("time_transit_min", 4.66, "en") == "4.7 min"
    assert format_raw("dist_transit_m", float("nan")) == "ikke nåbar"
    assert format_raw("inside_industrial", True, "en") == "yes"
    assert metric_label("count_grocery_10min") == "Antall dagligvarebutikk innen 10 min"
    assert score_class(100) == 4 and score_class(0) == 0 and score_class(None) == -1


def test_bad_input_is_reported(ranked, tmp_path):
    with pytest.raises(InputError, match="coordinate reference system"):
        write_map(gpd.GeoDataFrame(ranked.drop(columns="geometry"),
                                   geometry=list(ranked.geometry)), tmp_path / "m.html")
    with pytest.raises(InputError, match="language"):
        write_map(ranked, tmp_path / "m.html", language="de")


def _coordinate_texts(gdf: gpd.GeoDataFrame) -> list[tuple[str, str]]:
    """Each sensitive point as (x, y) strings in every precision and CRS it could be written."""
    out = []
    for frame, decimals in ((gdf, range(0, 3)), (gdf.to_crs(4326), range(4, 8))):
        for pt in frame.geometry:
            for d in decimals:
                out.append((f"{pt.x:.{d}f}", f"{pt.y:.{d}f}"))
    return out


def _vertices_near(text: str, points: gpd.GeoDataFrame, metres: float = 3.0) -> list[str]:
    """GeoJSON-style ``[lon,lat]`` pairs in ``text`` within ``metres`` of any point."""
    pts = points.to_crs(4326)
    hits = []
    for lon, lat in re.findall(r"\[(-?\d+\.\d+),(-?\d+\.\d+)\]", text):
        for p in pts.geometry:
            dx = (float(lon) - p.x) * 111_320 * math.cos(math.radians(p.y))
            dy = (float(lat) - p.y) * 110_540
            if math.hypot(dx, dy) < metres:
                hits.append(f"[{lon},{lat}]")
    return hits


def test_public_outputs_never_contain_sensitive_features(ranked, layers, tmp_path):
    existing = layers["existing_sites"]
    ranked = ranked.copy()
    ranked["existing_sites_dist_m"] = 432.1
    out = tmp_path / "public"
    files = [
        write_map(ranked, out / "map.html", layers=layers, districts=districts_fixture(),
                  public=True),
        write_map(ranked, out / "map_offline.html", layers=layers,
                  districts=districts_fixture(), public=True, offline=True),
        *write_report(ranked, out, layers=layers, public=True,
                      isochrones=isochrones_fixture(ranked), selection=selection_fixture(ranked)),
    ]
    pairs = _coordinate_texts(existing)
    for f in out.iterdir():
        assert f in files
        text = f.read_bytes().decode("utf-8", errors="replace")
        if f.suffix == ".pdf":
            text += "\n".join(p.extract_text() for p in PdfReader(f).pages)
        leaks = [n for n in existing["name"] if n in text]
        leaks += [f"{x} {y}" for x, y in pairs if x in text and y in text]
        leaks += _vertices_near(text, existing)
        assert leaks == [], f"{f.name} leaks {leaks}"
        # The distance to an existing site would let anyone triangulate it.
        assert "432 m" not in text
    html = (out / "map.html").read_text(encoding="utf-8")
    # An aggregate per district, with small counts suppressed.
    assert "færre enn 3" in html


def test_internal_outputs_do_show_sensitive_layers(ranked, layers, tmp_path):
    html = write_map(ranked, tmp_path / "m.html", layers=layers).read_text(encoding="utf-8")
    assert "Eksisterende småhus A" in html


def test_map_with_all_layers_and_english(ranked, layers, tmp_path):
    html = write_map(ranked, tmp_path / "m.html", layers=layers, language="en",
                     isochrones=isochrones_fixture(ranked), selection=selection_fixture(ranked),
                     districts=districts_fixture()).read_text(encoding="utf-8")
    for label in ("Candidate plots (ranked)", "Excluded plots with reason",
                  "Walking distance from top plots", "Selected sites and units", "Districts",
                  "Screening zone 25 m"):
        assert label in html


def test_5000_plots_stay_small(tmp_path):
    big = ranked_fixture(5000, spread_m=6000.0)
    size = write_map(big, tmp_path / "m.html").stat().st_size
    assert size < 6_000_000
