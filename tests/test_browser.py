"""The web maps in a real browser: Debian chromium + chromium-driver through selenium.

The offline map must make no network request at all; the online map must work with the
network blocked (Chrome DevTools ``Network.setBlockedURLs``): every plot drawn, the local
basemap from the real OSM clip in ``tests/data`` shown instead of the tiles, and a note
saying so. On a phone-sized screen (400×800) a plot's popup opens where it can be read.
The tests find page elements (layer control labels, rank labels, popups, legend sections)
rather than pixel positions, wait for explicit conditions rather than for time, and ignore
what the browser loads for its own pages (``chrome://``, ``devtools://`` …, which some
Chromium builds list), so they hold across browser builds and window sizes.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from sitefinder.maps import basemap_from_osm, write_map
from tests.conftest import TEST_DATA
from tests.map_fixtures import (
    districts_fixture,
    isochrones_fixture,
    layers_fixture,
    noise_zones_fixture,
    ranked_fixture,
    routes_fixture,
    selection_fixture,
)

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")

pytestmark = pytest.mark.skipif(
    not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
    reason="needs Debian chromium and chromium-driver (/usr/bin/chromium, /usr/bin/chromedriver);"
    " install with: apt-get install -y chromium chromium-driver",
)


def chromium_options(profile: str):
    """Options for a quiet, sandbox-free headless chromium with its own fresh profile."""
    from selenium.webdriver.chrome.options import Options

    opts = Options()
    opts.binary_location = str(CHROMIUM)
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1280,900",
        f"--user-data-dir={profile}",
    ):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    return opts


@pytest.fixture(scope="module")
def driver():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="sitefinder-chromium-")
    drv = webdriver.Chrome(
        service=Service(str(CHROMEDRIVER)), options=chromium_options(profile)
    )
    drv.set_page_load_timeout(30)
    yield drv
    drv.quit()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def ranked():
    return ranked_fixture(60)


@pytest.fixture(scope="module")
def basemap():
    """The local basemap from a real OSM clip (Grønland/Tøyen), as publish builds it."""
    from sitefinder.sources.osm import read_osm

    return basemap_from_osm(read_osm(TEST_DATA / "oslo-clip.osm.pbf"))


@pytest.fixture(scope="module")
def map_arguments(ranked, basemap):
    """Every layer the maps can show, so every legend entry can be checked."""
    return dict(
        layers=layers_fixture(),
        districts=districts_fixture(),
        isochrones=isochrones_fixture(ranked),
        selection=selection_fixture(ranked),
        routes=routes_fixture(ranked),
        noise_zones=noise_zones_fixture(),
        basemap=basemap,
    )


@pytest.fixture(scope="module")
def offline_map(ranked, map_arguments, tmp_path_factory):
    out = tmp_path_factory.mktemp("map") / "map_offline.html"
    return write_map(ranked, out, offline=True, **map_arguments)


@pytest.fixture(scope="module")
def online_map(ranked, map_arguments, tmp_path_factory):
    out = tmp_path_factory.mktemp("map") / "map.html"
    return write_map(ranked, out, **map_arguments)


def load(driver, path: Path) -> None:
    driver.get_log("browser")  # drop earlier entries
    driver.get_log("performance")
    driver.get(path.as_uri())
    driver.execute_script("return document.readyState")


#: URL schemes of the browser's own pages and their resources (new-tab page, WebUI,
#: extensions, devtools): served from inside the browser, never from the network, and which
#: of them appear in the log differs from one Chromium build to the next.
BROWSER_INTERNAL = ("chrome", "chrome-untrusted", "chrome-extension", "chrome-search",
                    "devtools", "edge")
#: Schemes a self-contained page may use: the file itself, inline data, blobs, about:blank.
LOCAL = ("file", "data", "blob", "about")


def browser_internal(url: str) -> bool:
    return urlsplit(url).scheme.lower() in BROWSER_INTERNAL


def requests_made(driver) -> list[tuple[str, str]]:
    """``(url, url of the document that asked for it)`` of every request since the last call.

    Reading the log empties it: read it once per page load.
    """
    made = []
    for entry in driver.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        if msg.get("method") == "Network.requestWillBeSent":
            params = msg["params"]
            made.append((params["request"]["url"], params.get("documentURL", "")))
    return made


def external_requests(made: list[tuple[str, str]]) -> list[str]:
    """Requests that would leave the machine, leaving out the browser's own pages.

    A ``file:`` URL with a host (a protocol-relative ``//tiles…`` link resolved against the
    file) counts as external: it is a remote resource the map tried to load.
    """
    out = []
    for url, document in made:
        if browser_internal(url) or browser_internal(document):
            continue
        parts = urlsplit(url)
        if parts.scheme.lower() not in LOCAL or (parts.scheme == "file" and parts.netloc):
            out.append(url)
    return out


def test_request_filter_ignores_only_the_browsers_own_pages():
    assert browser_internal("chrome://resources/css/roboto.css")
    assert browser_internal("chrome-untrusted://new-tab-page/one-google-bar")
    for url in ("https://tile.openstreetmap.org/1/1/1.png", "file:///tmp/map.html",
                "data:image/png;base64,AAAA", "//cdn.jsdelivr.net/npm/leaflet.js"):
        assert not browser_internal(url)


def page_errors(driver) -> list[dict]:
    """Errors and warnings in the console, except those of the browser's own pages."""
    return [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "WARNING")
            and not browser_internal(e["message"].split(" ", 1)[0])]


def test_offline_map_loads_without_errors_or_network(driver, offline_map):
    load(driver, offline_map)
    assert page_errors(driver) == []
    made = requests_made(driver)
    assert external_requests(made) == []
    # The page itself asked for nothing but itself and inline data.
    ours = [u for u, doc in made if doc == offline_map.as_uri()]
    assert offline_map.as_uri() in ours
    assert [u for u in ours if urlsplit(u).scheme not in LOCAL] == []
    # The resource timing API agrees: nothing was fetched besides the page itself.
    names = driver.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
    )
    assert [n for n in names if not n.startswith("data:")] == []


def test_expected_plot_features_render(driver, offline_map, ranked):
    load(driver, offline_map)
    counts = driver.execute_script(
        "return {plots: sitefinder.layers.plots.getLayers().length,"
        " excluded: sitefinder.layers.excluded.getLayers().length,"
        " onMap: sitefinder.map.hasLayer(sitefinder.layers.plots)}"
    )
    n_ok = int((ranked["status"] == "ok").sum())
    n_drawable = int((~(ranked.geometry.isna() | ranked.geometry.is_empty)).sum())
    assert counts["plots"] == n_ok
    assert counts["plots"] + counts["excluded"] == n_drawable
    assert counts["onMap"] is True
    # Excluded plots are drawn as SVG paths (hatched), one per excluded plot.
    paths = driver.execute_script(
        "return document.querySelectorAll('path[fill=\"url(#sf-hatch)\"]').length"
    )
    assert paths == counts["excluded"]


def test_layer_control_lists_layers(driver, offline_map):
    load(driver, offline_map)
    labels = driver.execute_script(
        "return Array.from(document.querySelectorAll('.leaflet-control-layers label'))"
        ".map(l => l.textContent.trim())"
    )
    for expected in (
        "Bakgrunnskart (lokal OSM)",
        "Kandidattomter (rangert)",
        "Utelukkede tomter med årsak",
        "Gangavstand fra topptomter",
        "Valgte tomter og enheter",
        "Bydeler",
        "bus stops",
        "industrial",
        "existing sites",
    ):
        assert expected in labels


def test_clicking_a_plot_opens_its_breakdown(driver, offline_map, ranked):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    load(driver, offline_map)
    # Rank 3: the fixture's selection draws unit footprints over ranks 1 and 2. Zoom to it,
    # then click its rank label, which Leaflet places on the plot's centre: the click goes
    # through the label (pointer-events: none) to the plot, wherever the plot is drawn.
    driver.execute_script(
        "var it = sitefinder.index.find(e => e.f.properties.rk === 3);"
        "sitefinder.map.fitBounds(it.l.getBounds(), {animate: false, maxZoom: 18});"
    )
    labels = driver.find_elements(By.CSS_SELECTOR, ".leaflet-tooltip.sf-rank")
    label = next(e for e in labels if e.text.strip() == "3")
    assert driver.find_elements(By.CSS_SELECTOR, ".leaflet-popup-content") == []
    ActionChains(driver).move_to_element(label).click().perform()
    popup = WebDriverWait(driver, 5).until(
        ec.visibility_of_element_located((By.CSS_SELECTOR, ".leaflet-popup-content"))
    )
    text = popup.get_attribute("textContent")
    assert ranked.iloc[2]["plot_id"] in text
    assert "Kollektivholdeplass" in text and "Vekt" in text
    rows = popup.find_elements(By.CSS_SELECTOR, "table.sf-breakdown tr")
    assert len(rows) == 1 + sum(c.startswith("value_") for c in ranked.columns)


def test_search_finds_plot_by_name(driver, offline_map, ranked):
    load(driver, offline_map)
    target = ranked.iloc[5]
    found = driver.execute_script("return sitefinder.find(arguments[0])", target["name"])
    assert found == target["plot_id"]
    assert driver.execute_script("return sitefinder.find('no such plot')") is None


def test_script_in_a_name_is_shown_as_text(driver, offline_map, ranked):
    from selenium.webdriver.common.by import By

    load(driver, offline_map)
    bad = ranked[ranked["name"] == "<script>alert(1)</script>"].iloc[0]
    driver.execute_script("sitefinder.find(arguments[0])", bad["plot_id"])
    popup = driver.find_element(By.CSS_SELECTOR, ".leaflet-popup-content")
    text = popup.get_attribute("textContent")
    assert "<script>alert(1)</script>" in text
    assert "<img src=x onerror=alert(2)>" in text
    assert popup.find_elements(By.TAG_NAME, "script") == []
    assert popup.find_elements(By.TAG_NAME, "img") == []
    # No alert fired (an open alert would make this call raise).
    assert driver.execute_script("return 1") == 1


MARKUP_LAYER = "<img src=x onerror=window.sfInjected=1>"
MARKUP_BOLD = "Skole & <b>barnehage</b>"
MARKUP_CRITERION = "<img src=y onerror=window.sfInjected=2> holdeplass"


def test_markup_in_layer_and_criterion_names_is_shown_as_text(driver, ranked, tmp_path):
    """Layer names go into Leaflet's layer control as HTML: they must arrive escaped.

    The names are what a scenario's layer labels and criterion labels become on the map
    (sitefinder.publish keys the layers by label), so a label with markup must be shown as
    text: no element is created and no handler runs.
    """
    from selenium.webdriver.common.by import By

    from sitefinder.config import default_scenario

    layers = layers_fixture()
    layers[MARKUP_LAYER] = layers.pop("grocery")
    layers[MARKUP_BOLD] = layers.pop("bus_stops")
    # A scenario whose transit criterion is labelled with markup.
    scenario = default_scenario()
    transit = scenario.criteria["transit"].model_copy(
        update={"label_nb": MARKUP_CRITERION, "label_en": MARKUP_CRITERION})
    scenario = scenario.model_copy(
        update={"criteria": {**scenario.criteria, "transit": transit}})
    path = write_map(ranked, tmp_path / "map_offline.html", layers=layers, offline=True,
                     scenario=scenario, weights=ranked.attrs["weights"])
    load(driver, path)
    control = driver.find_element(By.CSS_SELECTOR, ".leaflet-control-layers")
    names = [e.get_attribute("textContent").strip()
             for e in control.find_elements(By.CSS_SELECTOR, "label")]
    assert MARKUP_LAYER in names
    assert MARKUP_BOLD in names  # "&" shown once, not as "&amp;"
    assert control.find_elements(By.TAG_NAME, "img") == []
    assert control.find_elements(By.TAG_NAME, "b") == []
    # The criterion label, in the popup's breakdown table.
    driver.execute_script("sitefinder.find(arguments[0])", ranked.iloc[0]["plot_id"])
    popup = driver.find_element(By.CSS_SELECTOR, ".leaflet-popup-content")
    cells = [e.get_attribute("textContent")
             for e in popup.find_elements(By.CSS_SELECTOR, "table.sf-breakdown td")]
    assert any(MARKUP_CRITERION in c for c in cells)
    assert popup.find_elements(By.TAG_NAME, "img") == []
    assert driver.find_elements(By.CSS_SELECTOR, "img[src='x'], img[src='y']") == []
    assert driver.execute_script("return window.sfInjected === undefined") is True



# ------------------------------------------------------------ online map, phone, legend

#: Tile servers the online map may ask; with the network blocked these requests fail.
TILE_HOSTS = ("tile.openstreetmap.org", "cache.kartverket.no")


@contextmanager
def network_blocked(driver):
    """Every http(s) request fails, as on a network that blocks everything."""
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": ["http://*", "https://*"]})
    try:
        yield
    finally:
        driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": []})


@contextmanager
def phone_screen(driver, width: int = 400, height: int = 800):
    """The page laid out as on a phone of ``width`` × ``height`` CSS pixels."""
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
    try:
        yield
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def wait_for(driver, script: str, *args, timeout: float = 10):
    """Wait until ``script`` (a JavaScript expression) is truthy; return its value."""
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(
        lambda d: d.execute_script(f"return {script}", *args))


def test_online_map_without_network_falls_back_to_the_local_basemap(driver, online_map,
                                                                     ranked):
    from selenium.webdriver.common.by import By

    with network_blocked(driver):
        load(driver, online_map)
        wait_for(driver, "window.sitefinder && sitefinder.tilesFailed === true"
                 " && sitefinder.map.hasLayer(sitefinder.layers.basemap)")
        counts = driver.execute_script(
            "return {plots: sitefinder.layers.plots.getLayers().length,"
            " excluded: sitefinder.layers.excluded.getLayers().length,"
            " tiles: sitefinder.map.hasLayer(sitefinder.layers.osm_tiles),"
            " basemapParts: sitefinder.layers.basemap.getLayers().length}")
        note = driver.find_element(By.CSS_SELECTOR, ".sf-note")
        assert note.is_displayed()
        assert "lokale bakgrunnskartet" in note.text
        errors = page_errors(driver)
        made = requests_made(driver)
    n_drawable = int((~(ranked.geometry.isna() | ranked.geometry.is_empty)).sum())
    assert counts["plots"] == int((ranked["status"] == "ok").sum())
    assert counts["plots"] + counts["excluded"] == n_drawable
    assert counts["tiles"] is False and counts["basemapParts"] == 4
    # The layer control agrees: the local basemap is the chosen base layer.
    checked = driver.execute_script(
        "return Array.from(document.querySelectorAll("
        "'.leaflet-control-layers-base input:checked'))"
        ".map(i => i.parentElement.textContent.trim())")
    assert checked == ["Bakgrunnskart (lokal OSM)"]
    # Only tiles were asked for from the network (Leaflet, plugins and styles are inline),
    # and the only errors are those failed tiles.
    external = external_requests(made)
    assert external and all(urlsplit(u).hostname in TILE_HOSTS for u in external)
    assert [e for e in errors if not any(h in e["message"] for h in TILE_HOSTS)] == []


def test_offline_map_starts_on_the_local_basemap_without_a_note(driver, offline_map):
    from selenium.webdriver.common.by import By

    load(driver, offline_map)
    state = driver.execute_script(
        "return {basemap: sitefinder.map.hasLayer(sitefinder.layers.basemap),"
        " tiles: sitefinder.map.hasLayer(sitefinder.layers.osm_tiles)}")
    assert state == {"basemap": True, "tiles": False}
    assert not driver.find_element(By.CSS_SELECTOR, ".sf-note").is_displayed()


def test_layer_control_starts_collapsed(driver, offline_map):
    from selenium.webdriver.common.by import By

    load(driver, offline_map)
    control = driver.find_element(By.CSS_SELECTOR, ".leaflet-control-layers")
    assert "leaflet-control-layers-expanded" not in control.get_attribute("class")
    assert not control.find_element(By.CSS_SELECTOR, ".leaflet-control-layers-list")\
        .is_displayed()
    # Collapsed, it is one small button, not a third of the map.
    assert control.size["width"] < 60 and control.size["height"] < 60


def test_attribution_is_one_line(driver, offline_map):
    from selenium.webdriver.common.by import By

    load(driver, offline_map)
    attribution = driver.find_element(By.CSS_SELECTOR, ".leaflet-control-attribution")
    assert "OpenStreetMap" in attribution.get_attribute("textContent")
    assert attribution.size["height"] < 25


#: True when the popup lies inside the window and nothing covers it (points across it).
POPUP_READABLE = """function () {
    var p = document.querySelector('.leaflet-popup');
    if (!p) return false;
    var r = p.querySelector('.leaflet-popup-content-wrapper').getBoundingClientRect();
    if (r.width < 150 || r.left < 0 || r.top < 0 || r.right > innerWidth
        || r.bottom > innerHeight) return false;
    var xs = [r.left + 8, (r.left + r.right) / 2, r.right - 8];
    var ys = [r.top + 8, (r.top + r.bottom) / 2, r.bottom - 8];
    return xs.every(x => ys.every(y => p.contains(document.elementFromPoint(x, y))));
}"""


def test_phone_popup_opens_and_is_readable(driver, online_map, ranked):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    with phone_screen(driver), network_blocked(driver):
        load(driver, online_map)
        wait_for(driver, "window.sitefinder && sitefinder.map.getSize().x === 400"
                 " && sitefinder.map.hasLayer(sitefinder.layers.basemap)")
        # A phone starts with the legend and the layer list folded away.
        legend = driver.find_element(By.CSS_SELECTOR, ".sf-legend")
        assert legend.get_attribute("open") is None
        # The emulated screen may reach Leaflet after the page has loaded: measure the map
        # again before zooming, so the plot is drawn where it is clicked.
        driver.execute_script("sitefinder.map.invalidateSize({pan: false})")
        x, y = driver.execute_script(
            "var it = sitefinder.index.find(e => e.f.properties.rk === 3);"
            "sitefinder.map.fitBounds(it.l.getBounds(), {animate: false, maxZoom: 18});"
            "var p = sitefinder.map.latLngToContainerPoint(it.l.getCenter());"
            "return [p.x, p.y];")
        # Tap the plot's centre, where its rank label is.
        box = driver.find_element(By.CSS_SELECTOR, ".leaflet-container")
        ActionChains(driver).move_to_element_with_offset(
            box, int(x - box.size["width"] / 2), int(y - box.size["height"] / 2)).click().perform()
        wait_for(driver, "document.querySelector('.leaflet-popup-content') !== null")
        # Leaflet pans the map to fit the popup in view: wait until it is readable.
        assert wait_for(driver, "(" + POPUP_READABLE + ")()")
        text = driver.find_element(By.CSS_SELECTOR, ".leaflet-popup-content").text
        assert ranked.iloc[2]["plot_id"] in text


def test_legend_lists_each_visible_layer(driver, offline_map):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    load(driver, offline_map)
    visible, listed = legend_state(driver)
    assert visible == listed
    assert {"plots", "excluded", "selection", "routes", "districts"} <= set(listed)
    # Switch on every overlay through the layer control, as a reader would.
    control = driver.find_element(By.CSS_SELECTOR, ".leaflet-control-layers")
    ActionChains(driver).move_to_element(control).perform()
    for box in control.find_elements(By.CSS_SELECTOR,
                                      ".leaflet-control-layers-overlays input"):
        if not box.is_selected():
            box.click()
    visible, listed = legend_state(driver)
    assert visible == listed
    assert {"isochrones", "noise", "screening"} <= set(listed)
    text = driver.find_element(By.CSS_SELECTOR, ".sf-legend").get_attribute("textContent")
    for words in ("Kandidattomter (rangert)", "Utelukkede tomter med årsak", "Valgte tomter",
                  "Gul støysone", "Rød støysone", "Gangavstand fra topptomter",
                  "Gangruter fra tomtene", "Kollektivholdeplass", "Bydeler", "bus stops"):
        assert words in text
    # Switching a layer off takes its entry away.
    driver.execute_script("sitefinder.map.removeLayer(sitefinder.layers.noise)")
    visible, listed = legend_state(driver)
    assert "noise" not in listed and visible == listed


def legend_state(driver) -> tuple[list[str], list[str]]:
    """Keys of the sitefinder layers on the map, and of the legend's sections, sorted."""
    return driver.execute_script(
        "var on = Object.keys(sitefinder.layerOptions).filter("
        " k => sitefinder.map.hasLayer(sitefinder.layers[k])).sort();"
        "var listed = Array.from(document.querySelectorAll('.sf-legend-section'))"
        ".map(s => s.getAttribute('data-layer')).sort();"
        "return [on, listed];")
