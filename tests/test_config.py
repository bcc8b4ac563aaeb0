"""Scenario validation: every error at once, with the field named."""

from __future__ import annotations

import pytest
import yaml

from sitefinder.config import default_scenario, default_scenario_path, load_scenario
from sitefinder.errors import InputError, ScenarioError


def _write(tmp_path, data):
    path = tmp_path / "scenario.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    return path


def test_default_scenario_cites_the_report_for_every_criterion():
    scenario = default_scenario()
    assert set(scenario.criteria) >= {"transit", "grocery", "screening", "industry"}
    for name, criterion in scenario.criteria.items():
        assert "SINTEF 2021" in criterion.source and "§" in criterion.source, name
    assert scenario.network.walk_speed_kmh == 4.5


def test_all_errors_reported_at_once_with_field_names(tmp_path):
    data = yaml.safe_load(default_scenario_path().read_text())
    data["criteria"]["transit"]["weight"] = -1
    data["criteria"]["grocery"]["wieght"] = 2
    data["network"]["walk_speed"] = 5
    data["criteria"]["nature"]["value"]["ideal"] = "near"
    with pytest.raises(ScenarioError) as err:
        load_scenario(_write(tmp_path, data))
    message = str(err.value)
    assert "4 error(s)" in message
    assert "criteria.transit.weight: Input should be greater than or equal to 0" in message
    assert "criteria.grocery.wieght: unknown key" in message
    assert "network.walk_speed: unknown key" in message
    assert "criteria.nature.value.ideal" in message
    assert "scenario.yaml" in message


def test_window_must_be_ordered(tmp_path):
    data = yaml.safe_load(default_scenario_path().read_text())
    data["criteria"]["screening"]["value"]["ideal_from"] = 5
    with pytest.raises(ScenarioError, match="criteria.screening.value"):
        load_scenario(_write(tmp_path, data))


def test_broken_yaml_names_the_line(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("name: x\ncriteria:\n  transit: [unclosed\n")
    with pytest.raises(InputError, match="line"):
        load_scenario(path)


def test_round_trip_through_yaml(tmp_path):
    scenario = default_scenario().with_weights(transit=6)
    path = tmp_path / "out.yaml"
    scenario.to_yaml(path)
    again = load_scenario(path)
    assert again.criteria["transit"].weight == 6
    assert again.measurement_key() == default_scenario().measurement_key()


def test_unknown_criterion_in_with_weights():
    with pytest.raises(InputError, match="unknown criterion 'tranzit'"):
        default_scenario().with_weights(tranzit=2)


def test_bad_regex_and_infinite_weight_are_refused(tmp_path):
    data = yaml.safe_load(default_scenario_path().read_text())
    data["layers"]["health"]["rules"][2]["name_regex"] = "NAV ("
    data["criteria"]["transit"]["weight"] = float("inf")
    with pytest.raises(ScenarioError) as err:
        load_scenario(_write(tmp_path, data))
    assert "layers.health.rules.2.name_regex" in str(err.value)
    assert "criteria.transit.weight" in str(err.value)


def test_extends_default_and_paths_relative_to_the_scenario(tmp_path):
    (tmp_path / "pop.tif").write_bytes(b"")
    path = tmp_path / "mine.yaml"
    path.write_text(
        "extends: default\nname: mine\ncriteria:\n  transit:\n    weight: 7\n"
        "measure:\n  population:\n    raster: pop.tif\n"
    )
    mine = load_scenario(path)
    base = default_scenario()
    assert mine.name == "mine" and mine.criteria["transit"].weight == 7
    assert mine.criteria["grocery"] == base.criteria["grocery"]  # merged, not replaced
    assert mine.measure.population.raster == tmp_path / "pop.tif"


def test_demo_scenario_adds_oslo_inputs_to_the_default():
    from sitefinder.api import demo_scenario_for

    from .conftest import DEMO_PLOTS, DEMO_SCENARIO, OSM_PBF

    demo = load_scenario(DEMO_SCENARIO)
    assert demo.districts is not None and demo.measure.population is not None
    assert "neighbourhood" in demo.criteria
    assert default_scenario().districts is None  # other municipalities get no Oslo data
    assert demo_scenario_for(DEMO_PLOTS, OSM_PBF) is not None
    assert demo_scenario_for("my_plots.gpkg", OSM_PBF) is None


def test_criterion_on_a_metric_that_is_not_measured_fails_before_measuring(tmp_path):
    from sitefinder.api import Study

    from .conftest import DEMO_PLOTS, OSM_PBF

    data = yaml.safe_load(default_scenario_path().read_text())
    data["criteria"]["transit"]["metric"] = "dist_tranzit_m"
    path = _write(tmp_path, data)
    with pytest.raises(InputError, match="dist_tranzit_m"):
        Study(DEMO_PLOTS, OSM_PBF, path, layers_dir=tmp_path / "layers", cache_dir=None)
    assert not (tmp_path / "layers").exists()  # refused before any layer was built


def test_an_own_exclusion_list_says_which_default_exclusions_it_drops(tmp_path):
    # Lists replace when a scenario extends another: adding one exclusion by a plot fact
    # would silently end the default's hard exclusions (a house on the plot, industry).
    import warnings

    from sitefinder.config import ScenarioWarning, load_scenario

    own = tmp_path / "facts.yaml"
    own.write_text(
        "extends: default\nexclusions:\n"
        "  - {metric: owner, equals: Statsbygg, reason_nb: eid av staten, "
        "reason_en: owned by the state}\n", encoding="utf-8")
    with pytest.warns(ScenarioWarning, match=r"2 no longer apply.*dwelling_dist_m below 10"):
        assert len(load_scenario(own).exclusions) == 1
    # Listing them again, or none at all on purpose, is said plainly: no warning.
    kept = tmp_path / "kept.yaml"
    kept.write_text("extends: default\nexclusions: []\n", encoding="utf-8")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_scenario(kept).exclusions == []
