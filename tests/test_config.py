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
