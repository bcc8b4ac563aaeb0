"""The web map as a file: contents, escaping, offline self-containment and privacy."""

from __future__ import annotations

import difflib
import json
import math
import re

import folium
import geopandas as gpd
import pytest
from pypdf import PdfReader

from sitefinder.errors import InputError
from sitefinder.map_style import class_colours
from sitefinder.maps import (
    KARTVERKET_TOPO_TILES,
    build_map,
    class_breaks,
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
    noise_zones_fixture,
    ranked_fixture,
    routes_fixture,
    selection_fixture,
)


@pytest.fixture(scope="module")
def ranked():
    return ranked_fixture(40)


@pytest.fixture(scope="module")
def layers():
    return layers_fixture()


def test_online_map_embeds_everything_but_tiles(ranked, layers, tmp_path):
    html = write_map(ranked, tmp_path / "map.html", layers=layers,
                     basemap={"buildings": layers["industrial"]}).read_text(encoding="utf-8")
    # Leaflet, plugins and styles are inline: a network that blocks CDNs still gets a map.
    assert re.findall(r'<(?:script|img)[^>]+src="(?!data:)', html) == []
    assert re.findall(r'<link[^>]+href=', html) == []
    assert "cdn.jsdelivr.net" not in html and "L.map(" in html
    assert re.findall(r"url\((?!data:|#)", html) == []
    assert "sourceMappingURL" not in html
    # Only tiles come from the network, with their attributions.
    assert "tile.openstreetmap.org" in html
    assert "cache.kartverket.no" in html and KARTVERKET_TOPO_TILES.split("?")[0] in html
    assert "jquery" not in html.lower() and "bootstrap" not in html.lower()
    assert "OpenStreetMap contributors" in html and "Kartverket" in html


def _without_ids(html: str) -> list[str]:
    """The page's lines with Folium's random element names made equal."""
    return re.sub(r"_[0-9a-f]{32}", "_ID", html).splitlines()


def test_online_and_offline_maps_differ_only_in_the_default_base_layer(ranked, layers,
                                                                       tmp_path):
    args = dict(layers=layers, basemap={"buildings": layers["industrial"]},
                routes=routes_fixture(ranked), noise_zones=noise_zones_fixture())
    online = _without_ids(write_map(ranked, tmp_path / "map.html", **args)
                          .read_text(encoding="utf-8"))
    offline = _without_ids(write_map(ranked, tmp_path / "map_offline.html", offline=True,
                                     **args).read_text(encoding="utf-8"))
    differ = [line[0] + line[1:].strip()
              for line in difflib.unified_diff(online, offline, n=0, lineterm="")
              if line[:1] in "+-" and line[1:].strip() and line[:3] not in ("+++", "---")]
    assert sorted(differ) == ["+sitefinder_basemap_ID.addTo(map_ID);",
                              "-sitefinder_tiles_ID.addTo(map_ID);"]


def test_build_map_is_the_written_map(ranked, tmp_path):
    m = build_map(ranked, title="Kart")
    assert isinstance(m, folium.Map)
    written = write_map(ranked, tmp_path / "map.html", title="Kart").read_text(encoding="utf-8")
    assert _without_ids(m.get_root().render()) == _without_ids(written)
    assert [p.name for p in tmp_path.iterdir()] == ["map.html"]  # no temporary file left


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
    assert format_raw("dist_transit_m", 834.4) == "834\u00a0m"
    assert format_raw("dist_transit_m", 1234.4) == "1,2\u00a0km"
    assert format_raw("time_transit_min", 4.66, "en") == "4.7\u00a0min"
    assert format_raw("dist_transit_m", float("nan")) == "ikke nåbar"
    assert format_raw("inside_industrial", True, "en") == "yes"
    assert format_raw("residents_within_500m", 3315.63) == "3\u202f316"
    assert format_raw("capacity_units", 3) == "3 enheter"
    assert format_raw("capacity_units", 1, "en") == "1 unit"
    assert format_raw("noise_zone", "yellow") == "gul"
    assert metric_label("count_transit_10min") == "Antall kollektivholdeplasser innen 10 min"
    assert metric_label("count_grocery_10min", "en") == "Grocery shops within 10 min"
    assert metric_label("inside_industrial") == "Ligger i industriområde"
    assert metric_label("dist_cafes_m") == "Kafé (avstand)"
    assert score_class(100) == 4 and score_class(0) == 0 and score_class(None) == -1


def _popup_data(html: str) -> list[dict]:
    start = re.search(r'"plots", (\{"type")', html).start(1)
    return [f["properties"] for f in json.JSONDecoder().raw_decode(html[start:])[0]["features"]]


def test_nb_popups_have_no_english_and_norwegian_numbers(ranked, tmp_path):
    ranked = ranked.copy()
    for cat in ("cafes", "centre"):
        ranked[f"dist_{cat}_m"] = 481.2
        ranked[f"count_{cat}_10min"] = 3
    ranked["residents_within_500m"] = 8694.67
    ranked["noise_zone"] = "yellow"
    ranked["status_reason_nb"] = ranked["status_reason_nb"].str.lower()
    props = _popup_data(write_map(ranked, tmp_path / "m.html").read_text(encoding="utf-8"))
    text = json.dumps(props, ensure_ascii=False)
    for english in ("inside", "cafes", "centre", "yellow", "from ", "enhet(er)",
                    "Antall kollektivholdeplass innen"):
        assert english not in text
    assert "Antall kollektivholdeplasser innen 10 min" in text
    assert "Antall kafeer innen 10 min" in text
    # Scores with one decimal and a decimal comma; reasons start as sentences.
    assert all(re.fullmatch(r"\d+,\d|–", p["s"]) for p in props)
    assert all(p["re"][:1].isupper() for p in props if p["re"])


def test_quantile_classes_separate_close_scores(tmp_path):
    ranked = ranked_fixture(60, special=False)
    ok = ranked["status"] == "ok"
    # Squeeze every score into 96–98, as in a real study where the top plots are close.
    s = ranked.loc[ok, "score"]
    ranked.loc[ok, "score"] = 96 + 2 * (s - s.min()) / (s.max() - s.min())
    breaks = class_breaks(ranked.loc[ok, "score"])
    classes = [score_class(x, breaks) for x in ranked.loc[ok, "score"]]
    assert sorted(set(classes)) == [0, 1, 2, 3, 4]
    assert max(classes.count(k) for k in range(5)) <= 13  # about a fifth each
    assert score_class(ranked.loc[ok, "score"].max(), breaks) == 4
    # The best class is the darkest colour, and not yellow.
    colours = class_colours(len(breaks) - 1)
    lum = [_luminance(c) for c in colours]
    assert lum[-1] == min(lum) and lum == sorted(lum, reverse=True)
    assert colours[-1].lower() not in ("#fde725", "#ffff00")
    html = write_map(ranked, tmp_path / "m.html").read_text(encoding="utf-8")
    assert "96,0\\u2013" in html and "\\u201398,0" in html  # legend limits, one decimal


def _luminance(colour: str) -> float:
    r, g, b = (int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def test_routes_show_minutes_and_bad_routes_are_refused(ranked, tmp_path):
    routes = routes_fixture(ranked)
    html = write_map(ranked, tmp_path / "m.html", routes=routes).read_text(encoding="utf-8")
    first = routes.iloc[0]
    minutes = f"{first['minutes']:.1f}".replace(".", ",")
    assert (f"{first['plot_id']} → Kollektivholdeplass {first['target_name']}: "
            f"{minutes}\u00a0min gange") in html
    assert "Gangruter fra tomtene" in html
    with pytest.raises(InputError, match="routes.*minutes"):
        write_map(ranked, tmp_path / "m.html", routes=routes.drop(columns="minutes"))


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
                  "Screening zone 25\\u00a0m"):
        assert label in html


def test_5000_plots_stay_small(tmp_path):
    big = ranked_fixture(5000, spread_m=6000.0)
    size = write_map(big, tmp_path / "m.html").stat().st_size
    assert size < 6_000_000
