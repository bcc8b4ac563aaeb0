"""The live weights panel: the browser scores exactly as Python does.

The browser half runs in real headless Chromium (Debian chromium + chromium-driver, as in
tests/test_browser.py) on the offline map: the demo (measured on the bundled real Oslo
extract) and 1,000 plots — the 400 seeded random plots of the metrics baseline, measured
on the same extract, plus 600 plots whose metrics are those plots' metrics moved about.
Scores must equal ``Study.score`` / ``score_metrics`` to 1e-9 and ranks and statuses must
be the same, under the scenario and under random weights, switches and thresholds; the
YAML the panel exports must load and reproduce the browser's ranking.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from sitefinder.config import Scenario, default_scenario, load_scenario
from sitefinder.errors import InputError
from sitefinder.maps import write_map
from sitefinder.score import score_metrics
from sitefinder.weights_panel import (
    ELIGIBLE,
    HARD_EXCLUDED,
    NOT_MEASURED,
    TOO_SMALL,
    dropped_criteria,
    panel_spec,
)
from tests.test_browser import CHROMEDRIVER, CHROMIUM, chromium_options

BASELINE = Path(__file__).resolve().parent / "data" / "metrics_baseline"

needs_chromium = pytest.mark.skipif(
    not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
    reason="needs Debian chromium and chromium-driver (/usr/bin/chromium, /usr/bin/chromedriver);"
    " install with: apt-get install -y chromium chromium-driver",
)

# ------------------------------------------------------------------ plots and scoring


def synthetic_metrics(n: int, seed: int = 7) -> gpd.GeoDataFrame:
    """``n`` plots with metrics: the 400 measured baseline plots, then moved-about copies.

    The copies take a random baseline plot's metrics, each multiplied by its own factor
    (0.3–3), some set missing, some counts changed, and the plot shifted 50–400 m, so
    every value function is met across its whole range, missing values included.
    """
    rng = np.random.default_rng(seed)
    metrics = pd.read_csv(BASELINE / "random_metrics.csv", index_col=0,
                          keep_default_na=True)
    plots = gpd.read_file(BASELINE / "random_plots.gpkg")
    for column in ("status_reason_nb", "status_reason_en"):
        metrics[column] = metrics[column].fillna("").astype(object)
    table = pd.concat([plots.drop(columns="geometry"), metrics], axis=1)
    geometry = list(plots.geometry)
    extra = n - len(table)
    if extra > 0:
        pick = rng.integers(0, len(table), extra)
        more = table.iloc[pick].reset_index(drop=True).copy()
        numeric = [c for c in more.columns if c.startswith(("dist_", "time_")) or
                   c.endswith(("_dist_m", "_db")) or c == "exposure_index"]
        for column in numeric:
            values = more[column].to_numpy(dtype=float) * rng.uniform(0.3, 3.0, extra)
            values[rng.random(extra) < 0.05] = np.nan
            more[column] = values
        more["dwellings_within_50m"] = rng.integers(0, 25, extra)
        more["capacity_max_units"] = rng.integers(0, 9, extra).astype(float)
        more["inside_industrial"] = rng.random(extra) < 0.03
        more["plot_id"] = [f"S{i:04d}" for i in range(extra)]
        more["name"] = [f"Flyttet {i}" for i in range(extra)]
        table = pd.concat([table, more], ignore_index=True)
        shifts = rng.uniform(50, 400, (extra, 2)) * rng.choice([-1, 1], (extra, 2))
        geometry += [shapely.affinity.translate(geometry[p], *s)
                     for p, s in zip(pick, shifts, strict=True)]
    table = table.iloc[:n].reset_index(drop=True)
    return gpd.GeoDataFrame(table, geometry=geometry[:n], crs=plots.crs)


def score_table(table: gpd.GeoDataFrame, scenario: Scenario,
                empty: frozenset[str] = frozenset()) -> gpd.GeoDataFrame:
    """Score a metrics table as ``Study.score`` does (its scoring core, score_metrics)."""
    scored = score_metrics(table.drop(columns="geometry"), scenario, empty, explain=False)
    return gpd.GeoDataFrame(scored, geometry=table.geometry.values, crs=table.crs)


def scenario_with(scenario: Scenario, state: dict) -> Scenario:
    """The scenario Python must score to agree with the browser in ``state``.

    Built here from the rule (off = weight 0 and no longer excluding), not from the
    panel's export, so a mistake in the export cannot hide one in the scoring.
    """
    data = scenario.model_dump()
    for name, weight in state["weights"].items():
        criterion = data["criteria"][name]
        criterion["weight"] = weight if state["on"][name] else 0.0
        if not state["on"][name]:
            criterion["exclude_when_unacceptable"] = False
        value = {**criterion["value"], **state["values"][name]}
        value.pop("implied", None)
        criterion["value"] = value
    return Scenario.model_validate(data)


def random_state(spec: dict, rng: np.random.Generator) -> dict:
    """Random weights, switches and valid thresholds for every criterion of ``spec``."""
    weights, on, values = {}, {}, {}
    for c in spec["criteria"]:
        weights[c["name"]] = float(np.round(rng.uniform(0, 6), int(rng.integers(0, 4))))
        on[c["name"]] = bool(rng.random() > 0.15)
        values[c["name"]] = _random_value(c["value"], rng)
    if not any(weights[n] > 0 and on[n] for n in weights):
        first = spec["criteria"][0]["name"]
        weights[first], on[first] = 1.0, True
    return {"weights": weights, "on": on, "values": values}


def _random_value(fn: dict, rng: np.random.Generator) -> dict:
    if fn["kind"] == "linear":
        scale = abs(fn["ideal"] - fn["unacceptable"])
        while True:
            ideal, unacceptable = (fn[k] + rng.uniform(-0.4, 0.4) * scale
                                   for k in ("ideal", "unacceptable"))
            if (ideal < unacceptable) == (fn["ideal"] < fn["unacceptable"]):
                return {"ideal": float(ideal), "unacceptable": float(unacceptable)}
    if fn["kind"] == "window":
        keys = ["unacceptable_below", "ideal_from", "ideal_to", "unacceptable_above"]
        scale = fn["unacceptable_above"] - fn["unacceptable_below"]
        while True:
            x = sorted(fn[k] + rng.uniform(-0.15, 0.15) * scale for k in keys)
            if x[0] < x[1] <= x[2] < x[3]:
                return dict(zip(keys, map(float, x), strict=True))
    xs = np.array([p[0] for p in fn["points"]])
    while True:
        moved = np.sort(xs + rng.uniform(-2, 2, len(xs)))
        if (np.diff(moved) > 0).all():
            return {"points": [[float(x), p[1]] for x, p in zip(moved, fn["points"], strict=True)]}


def assert_same_scoring(browser: dict, python: pd.DataFrame) -> None:
    """Browser and Python agree on every plot: score to 1e-9, rank and status exactly."""
    python = python.set_index("plot_id").loc[browser["id"]]
    score = np.array([np.nan if s is None else s for s in browser["score"]], dtype=float)
    expected = python["score"].to_numpy(dtype=float)
    assert np.array_equal(np.isnan(score), np.isnan(expected))
    assert np.nanmax(np.abs(score - expected)) <= 1e-9
    measured = python["status"].isin(["ok", "excluded", "too_small"]).to_numpy()
    status = np.array(browser["status"], dtype=object)
    assert (status[measured] == python["status"].to_numpy()[measured]).all()
    rank = pd.array([r for r in browser["rank"]], dtype="Int64")
    assert (rank.fillna(0) == python["rank"].fillna(0).to_numpy()).all()


# ------------------------------------------------------------------ the spec (no browser)


@pytest.fixture(scope="module")
def thousand():
    """1,000 plots with metrics, and the default scenario's scoring of them."""
    table = synthetic_metrics(1000)
    scenario = default_scenario()
    return table, scenario, score_table(table, scenario)


def test_spec_holds_every_plot_with_its_fixed_state(thousand):
    table, scenario, ranked = thousand
    spec = panel_spec(ranked, scenario)
    plots = spec["plots"]
    assert plots["id"] == ranked["plot_id"].tolist()  # no plot lost
    base = np.array(plots["base"])
    status = ranked["status"].to_numpy()
    assert (base[status == "outside_network"] == NOT_MEASURED).all()
    inside = ranked["inside_industrial"].to_numpy(dtype=bool) & (status != "outside_network")
    assert (base[inside] == HARD_EXCLUDED).all()
    assert (base[status == "ok"] == ELIGIBLE).all()
    assert (base == TOO_SMALL).any() and (base == HARD_EXCLUDED).any()
    # Every criterion the scoring used, with its metric for every plot.
    assert [c["name"] for c in spec["criteria"]] == [
        n for n in scenario.criteria if f"value_{n}" in ranked.columns]
    assert all(len(v) == len(ranked) for v in spec["metrics"].values())


def test_criteria_left_out_for_lack_of_data_are_read_back_from_the_scores(thousand):
    table, scenario, _ = thousand
    no_pharmacy = table.assign(dist_pharmacy_m=np.nan)
    dropped = score_table(no_pharmacy, scenario, frozenset({"pharmacy"}))
    kept = score_table(no_pharmacy, scenario)
    assert dropped_criteria(dropped, scenario) == ["pharmacy"]
    assert dropped_criteria(kept, scenario) == []
    assert dropped_criteria(kept, scenario, empty_layers={"pharmacy"}) == ["pharmacy"]


def test_a_table_without_the_scored_columns_is_refused_clearly(thousand):
    _, scenario, ranked = thousand
    with pytest.raises(InputError, match="dist_transit_m"):
        panel_spec(ranked.drop(columns="dist_transit_m"), scenario)


def test_no_scenario_no_panel(thousand, tmp_path):
    _, scenario, ranked = thousand
    without = write_map(ranked.head(50), tmp_path / "plain.html")
    with_panel = write_map(ranked.head(50), tmp_path / "panel.html", scenario=scenario)
    assert "sitefinder.weights.init" not in without.read_text(encoding="utf-8")
    assert "sitefinder.weights.init" in with_panel.read_text(encoding="utf-8")


def test_public_map_holds_no_sensitive_raw_values(thousand):
    import folium

    from sitefinder.weights_panel import add_weights_panel

    _, scenario, ranked = thousand
    with_sites = Scenario.model_validate(
        {**scenario.model_dump(), "existing_sites": {"file": "eksisterende.gpkg"}})
    spec = panel_spec(ranked, with_sites, public=True)
    assert spec["scenario"]["existing_sites"] is None  # the export names no sensitive file
    # A criterion measured from the existing sites: a public map gets no panel at all,
    # since the panel would have to carry those distances.
    data = scenario.model_dump()
    data["criteria"]["spacing"] = {**data["criteria"]["transit"],
                                   "metric": "existing_sites_dist_m", "label_nb": "småhus"}
    sensitive = Scenario.model_validate(data)
    table = ranked.assign(existing_sites_dist_m=800.0, value_spacing=1.0)
    assert add_weights_panel(folium.Map(), table, sensitive, public=True) is None
    assert add_weights_panel(folium.Map(), table, sensitive, public=False) is not None


# ------------------------------------------------------------------ in the browser


@pytest.fixture(scope="module")
def driver():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="sitefinder-chromium-")
    drv = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=chromium_options(profile))
    drv.set_page_load_timeout(60)
    yield drv
    drv.quit()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def thousand_map(thousand, tmp_path_factory):
    _, scenario, ranked = thousand
    out = tmp_path_factory.mktemp("weights") / "map_offline.html"
    return write_map(ranked, out, offline=True, scenario=scenario, top_n=10)


@pytest.fixture(scope="module")
def demo_map(demo_ranked, demo_study, tmp_path_factory):
    out = tmp_path_factory.mktemp("weights-demo") / "map_offline.html"
    return write_map(demo_ranked, out, offline=True, scenario=demo_study.scenario, top_n=10)


def open_map(driver, path: Path) -> None:
    driver.get("about:blank")
    driver.get(path.as_uri())
    driver.execute_script("return document.readyState")


def rank_labels(driver, count: int) -> list[str] | bool:
    """The rank labels on the map once there are ``count`` of them, else False."""
    labels = driver.execute_script(
        "return Array.from(document.querySelectorAll('.sf-rank')).map(e => e.textContent)")
    return labels if len(labels) == count else False


def browser_scores(driver) -> dict:
    return driver.execute_script("return sitefinder.weights.scores()")


@needs_chromium
def test_demo_browser_scores_equal_study_score(driver, demo_map, demo_ranked, demo_study):
    open_map(driver, demo_map)
    assert_same_scoring(browser_scores(driver), demo_ranked)
    spec = driver.execute_script("return sitefinder.weights.spec")
    rng = np.random.default_rng(14)
    for _ in range(3):
        state = random_state(spec, rng)
        driver.execute_script("sitefinder.weights.set(arguments[0])", state)
        expected = demo_study.score(scenario_with(demo_study.scenario, state), explain=False)
        assert_same_scoring(browser_scores(driver), expected)


@needs_chromium
def test_random_weights_and_thresholds_on_1000_plots(driver, thousand_map, thousand):
    table, scenario, ranked = thousand
    open_map(driver, thousand_map)
    assert_same_scoring(browser_scores(driver), ranked)
    spec = driver.execute_script("return sitefinder.weights.spec")
    rng = np.random.default_rng(2026)
    for _ in range(12):
        state = random_state(spec, rng)
        driver.execute_script("sitefinder.weights.set(arguments[0])", state)
        expected = score_table(table, scenario_with(scenario, state))
        browser = browser_scores(driver)
        assert_same_scoring(browser, expected)
        # Hard exclusions stay excluded, whatever the weights.
        hard = np.array(spec["plots"]["base"]) == HARD_EXCLUDED
        assert set(np.array(browser["status"], dtype=object)[hard]) == {"excluded"}


@needs_chromium
def test_moving_the_transit_slider_reranks_the_map(driver, demo_map, demo_study):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import WebDriverWait

    open_map(driver, demo_map)
    slider = driver.find_element(By.CSS_SELECTOR, 'input.sf-w-slider[data-criterion="transit"]')
    before = float(slider.get_attribute("value"))
    slider.send_keys(*[Keys.ARROW_RIGHT] * 6)  # 6 steps of 0.5 on a real range input
    weight = driver.execute_script("return sitefinder.weights.state().weights.transit")
    assert weight == before + 3
    expected = demo_study.score(demo_study.scenario.with_weights(transit=weight), explain=False)
    browser = browser_scores(driver)
    assert_same_scoring(browser, expected)
    # The rank labels on the map are the new top 10.
    # (Leaflet fades a removed label out for 200 ms before it leaves the page.)
    labels = WebDriverWait(driver, 5).until(lambda d: rank_labels(d, 10))
    assert sorted(map(int, labels)) == list(range(1, 11))
    shown = driver.execute_script(
        "return sitefinder.weights.entries.filter(e => e.label).map(e => [e.f.properties.i,"
        " e.label])")
    assert {i: r for i, r in shown} == dict(
        expected.loc[expected["rank"] <= 10, ["plot_id", "rank"]].itertuples(index=False))
    # The panel names what entered and left the top 10, against the scenario as run.
    top_now = set(expected.loc[expected["rank"] <= 10, "plot_id"])
    as_run = demo_study.score(explain=False)
    top_run = set(as_run.loc[as_run["rank"] <= 10, "plot_id"])
    changes = driver.execute_script("return sitefinder.weights.topChanges()")
    assert set(changes["entered"]) == top_now - top_run
    assert set(changes["left"]) == top_run - top_now
    text = driver.find_element(By.CSS_SELECTOR, ".sf-w-changes").text
    assert "Nye i topp 10" in text and "Ute av topp 10" in text
    for plot_id in changes["entered"]:
        assert plot_id in text
    # A popup opened now shows the new score and rank.
    first = expected.loc[expected["rank"] == 1].iloc[0]
    popup = driver.execute_script(
        "var e = sitefinder.weights.byId[arguments[0]]; e.l.openPopup();"
        " return document.querySelector('.sf-popup .sf-score').textContent",
        first["plot_id"])
    assert f"{first['score']:.1f}".replace(".", ",") in popup
    assert "nr. 1" in popup


@needs_chromium
def test_threshold_field_and_switch_rescore_and_reset_restores(driver, demo_map, demo_ranked,
                                                               demo_study):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    open_map(driver, demo_map)
    driver.execute_script("document.querySelectorAll('details.sf-w-thresholds')"
                          ".forEach(d => d.open = true)")
    field = driver.find_element(
        By.CSS_SELECTOR, '.sf-w-crit input[aria-label^="Holdeplass: Ideell"]')
    field.clear()
    field.send_keys("600", Keys.TAB)
    switch = driver.find_element(By.CSS_SELECTOR, 'input.sf-w-on[data-criterion="nature"]')
    switch.click()
    state = driver.execute_script("return sitefinder.weights.state()")
    assert state["values"]["transit"]["ideal"] == 600 and state["on"]["nature"] is False
    expected = demo_study.score(scenario_with(demo_study.scenario, state), explain=False)
    assert_same_scoring(browser_scores(driver), expected)
    # A threshold the scenario loader would refuse is marked and not used.
    field.clear()
    field.send_keys("1000", Keys.TAB)  # equal to "unacceptable"
    assert "sf-w-invalid" in field.get_attribute("class")
    assert driver.execute_script("return sitefinder.weights.state().values.transit.ideal") == 600
    driver.find_element(By.CSS_SELECTOR, "button.sf-w-reset").click()
    assert_same_scoring(browser_scores(driver), demo_ranked)
    assert field.get_attribute("value") == "300"
    popup = driver.execute_script(
        "var e = sitefinder.weights.byId[arguments[0]]; e.l.openPopup();"
        " return document.querySelector('.sf-popup .sf-expl').textContent",
        demo_ranked.loc[0, "plot_id"])
    assert popup == demo_ranked.loc[0, "explanation_nb"]  # the explanation as run again


@needs_chromium
def test_exported_yaml_reproduces_the_browser_ranking(driver, demo_map, demo_study, tmp_path):
    open_map(driver, demo_map)
    spec = driver.execute_script("return sitefinder.weights.spec")
    state = random_state(spec, np.random.default_rng(5))
    driver.execute_script("sitefinder.weights.set(arguments[0])", state)
    browser = browser_scores(driver)
    path = tmp_path / "changed.yaml"
    path.write_text(driver.execute_script("return sitefinder.weights.exportYaml()"),
                    encoding="utf-8")
    exported = load_scenario(path)  # the loader `sitefinder run --scenario` uses
    assert exported.measurement_key() == demo_study.scenario.measurement_key()
    assert exported.exclusions == demo_study.scenario.exclusions
    assert exported.capacity == demo_study.scenario.capacity
    assert exported.clustering == demo_study.scenario.clustering
    assert_same_scoring(browser, demo_study.score(exported, explain=False))


@needs_chromium
def test_export_button_downloads_the_yaml(driver, demo_map, tmp_path):
    from selenium.webdriver.common.by import By

    open_map(driver, demo_map)
    driver.execute_cdp_cmd("Browser.setDownloadBehavior",
                           {"behavior": "allow", "downloadPath": str(tmp_path)})
    driver.execute_script("sitefinder.weights.set({weights: {transit: 5}})")
    expected = driver.execute_script("return sitefinder.weights.exportYaml()")
    driver.find_element(By.CSS_SELECTOR, "button.sf-w-export").click()
    name = driver.execute_script("return sitefinder.weights.fileName()")
    deadline = time.monotonic() + 20
    while not (tmp_path / name).exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    text = (tmp_path / name).read_text(encoding="utf-8")
    # The date in the header may differ if the test runs across midnight: skip line 1.
    assert text.splitlines()[1:] == expected.splitlines()[1:]
    assert load_scenario(tmp_path / name).criteria["transit"].weight == 5


@needs_chromium
def test_english_map_and_folded_on_a_phone(driver, thousand, tmp_path):
    from selenium.webdriver.common.by import By

    _, scenario, ranked = thousand
    path = write_map(ranked.head(80), tmp_path / "map_en.html", offline=True,
                     scenario=scenario, language="en")
    driver.set_window_size(390, 800)
    try:
        open_map(driver, path)
        box = driver.find_element(By.CSS_SELECTOR, ".sf-weights")
        assert "sf-w-collapsed" in box.get_attribute("class")
        toggle = driver.find_element(By.CSS_SELECTOR, ".sf-w-toggle")
        assert toggle.text == "Adjust weights"
        toggle.click()
        body = driver.find_element(By.CSS_SELECTOR, ".sf-w-body").text
        assert "come from the scenario 'default' as run" in body
        assert "Reset" in body and "Export" in body
    finally:
        driver.set_window_size(1280, 900)
