"""The web map in a real browser: Debian chromium + chromium-driver through selenium.

Uses the offline map (everything embedded) so the tests never need the network, and
proves that file makes no network request at all.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import pytest

from sitefinder.maps import write_map
from tests.map_fixtures import (
    districts_fixture,
    isochrones_fixture,
    layers_fixture,
    ranked_fixture,
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
def offline_map(ranked, tmp_path_factory):
    out = tmp_path_factory.mktemp("map") / "map_offline.html"
    layers = layers_fixture()
    return write_map(
        ranked,
        out,
        layers=layers,
        districts=districts_fixture(),
        isochrones=isochrones_fixture(ranked),
        selection=selection_fixture(ranked),
        basemap={"buildings": layers["industrial"], "roads": layers["bus_stops"]},
        offline=True,
    )


def load(driver, path: Path) -> None:
    driver.get_log("browser")  # drop earlier entries
    driver.get_log("performance")
    driver.get(path.as_uri())
    driver.execute_script("return document.readyState")


def requests_made(driver) -> list[str]:
    urls = []
    for entry in driver.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        if msg.get("method") == "Network.requestWillBeSent":
            urls.append(msg["params"]["request"]["url"])
    return urls


def test_offline_map_loads_without_errors_or_network(driver, offline_map):
    load(driver, offline_map)
    errors = [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "WARNING")]
    assert errors == []
    external = [u for u in requests_made(driver) if not u.startswith(("file:", "data:", "about:"))]
    assert external == []
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
        "Utelatte tomter med årsak",
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

    load(driver, offline_map)
    # Rank 3: the fixture's selection draws unit footprints over ranks 1 and 2.
    x, y = driver.execute_script(
        "var it = sitefinder.index.find(e => e.f.properties.rk === 3);"
        "sitefinder.map.fitBounds(it.l.getBounds(), {animate: false, maxZoom: 18});"
        "var p = sitefinder.map.latLngToContainerPoint(it.l.getBounds().getCenter());"
        "return [p.x, p.y];"
    )
    container = driver.find_element(By.CSS_SELECTOR, ".folium-map")
    size = container.size
    ActionChains(driver).move_to_element_with_offset(
        container, int(x - size["width"] / 2), int(y - size["height"] / 2)
    ).click().perform()
    popup = driver.find_element(By.CSS_SELECTOR, ".leaflet-popup-content")
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
