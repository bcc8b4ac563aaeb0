import numpy as np
import pandas as pd
import pytest

from sitefinder.config import default_scenario
from sitefinder.score import linear_value, rank_scores, score_metrics, window_value


def test_linear_value_less_is_better():
    v = linear_value(np.array([0, 300, 650, 1000, 5000]), ideal=300, unacceptable=1000)
    np.testing.assert_allclose(v, [1, 1, 0.5, 0, 0])


def test_linear_value_more_is_better():
    v = linear_value(np.array([0, 100, 150, 200, 900]), ideal=200, unacceptable=100)
    np.testing.assert_allclose(v, [0, 0, 0.5, 1, 1])


def test_missing_metric_counts_as_unacceptable():
    assert linear_value(np.array([np.nan]), ideal=300, unacceptable=1000)[0] == 0


def test_window_value_penalises_both_too_close_and_too_far():
    x = np.array([0, 10, 17.5, 25, 100, 150, 325, 500, 800])
    v = window_value(x, 10, 25, 150, 500)
    np.testing.assert_allclose(v, [0, 0, 0.5, 1, 1, 1, 0.5, 0, 0])


def test_rank_breaks_ties_by_plot_id_and_skips_ineligible():
    score = pd.Series([50.0, 80.0, 80.0, 99.0])
    ids = pd.Series(["d", "c", "b", "a"])
    eligible = np.array([True, True, True, False])
    rank = rank_scores(score, ids, eligible)
    assert rank.tolist() == [3, 2, 1, pd.NA]


def _metrics(**columns):
    n = len(next(iter(columns.values())))
    base = {
        "plot_id": [f"p{i}" for i in range(n)],
        "status": ["ok"] * n,
        "status_reason_nb": [""] * n,
        "status_reason_en": [""] * n,
        "network_reach": ["main"] * n,
    }
    scenario = default_scenario()
    for c in scenario.criteria.values():
        # Every metric at its ideal, so a test changes only what it is about.
        base[c.metric] = [float(c.value.ideal_point())] * n
    base["inside_industrial"] = [False] * n
    base.update(columns)
    return pd.DataFrame(base)


def test_score_is_weighted_mean_of_values():
    scenario = default_scenario()
    metrics = _metrics(
        dist_transit_m=[300.0, 1000.0],
        dwelling_dist_m=[50.0, 50.0],
        residential_dist_m=[0.0, 0.0],
        industrial_dist_m=[500.0, 500.0],
    )
    out = score_metrics(metrics, scenario)
    weights = {n: c.weight for n, c in scenario.criteria.items()}
    total = sum(weights.values())
    # Plot 1 loses exactly the transit weight.
    assert out.loc[0, "score"] == pytest.approx(100.0)
    assert out.loc[1, "score"] == pytest.approx(100 * (total - weights["transit"]) / total)
    assert out["rank"].tolist() == [1, 2]
    assert "4 min å gå til holdeplass" in out.loc[0, "explanation_nb"]
    assert "13 min walk to public-transport stop" in out.loc[1, "explanation_en"]


def test_inside_industrial_is_excluded_with_reason():
    metrics = _metrics(inside_industrial=[True, False], industrial_dist_m=[0.0, 400.0])
    out = score_metrics(metrics, default_scenario())
    assert out.loc[0, "status"] == "excluded"
    assert pd.isna(out.loc[0, "rank"])
    assert "industriområde" in out.loc[0, "status_reason_nb"]
    assert out.loc[0, "explanation_en"].startswith("Lies inside an industrial area")
    assert out.loc[1, "rank"] == 1


def test_empty_category_is_left_out_of_the_score():
    metrics = _metrics(
        dist_pharmacy_m=[np.nan, np.nan],
        dwelling_dist_m=[50.0, 50.0],
        industrial_dist_m=[500.0, 500.0],
    )
    out = score_metrics(metrics, default_scenario(), empty_layers={"pharmacy"})
    assert out["score"].tolist() == [100.0, 100.0]
    assert "apotek: ingen i kartdataene, ikke vektlagt" in out.loc[0, "explanation_nb"]


def test_unreachable_plot_is_explained():
    metrics = _metrics(dist_grocery_m=[np.nan], network_reach=["island"])
    out = score_metrics(metrics, default_scenario())
    assert "dagligvarebutikk: ikke nåbar" in out.loc[0, "explanation_nb"]
    assert out.loc[0, "value_grocery"] == 0


def test_noise_zone_is_named_and_rail_60_db_never_reads_good():
    metrics = _metrics(rail_lden_db=[45.0, 60.0, 70.0], road_lden_db=[45.0, 45.0, 66.0])
    out = score_metrics(metrics, default_scenario())
    quiet, yellow, red = out["explanation_nb"]
    assert "støysone" not in quiet
    assert "jernbanestøy (Lden) 60 dB (middels; gul støysone: støyfaglig utredning og tiltak " \
        "kreves)" in yellow
    assert "rød støysone: boliger bør unngås, krever skjerming" in red
    assert "red noise zone: homes should be avoided" in out["explanation_en"].iloc[2]
    assert out["value_rail_noise"].iloc[1] <= 0.6
    assert out["value_road_noise"].iloc[2] <= 0.1


def test_two_or_three_units_are_best_single_houses_and_four_good():
    metrics = _metrics(capacity_units=[1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    value = score_metrics(metrics, default_scenario())["value_units"].tolist()
    assert value[1] == value[2] == 1.0
    assert value[0] >= 0.75 and value[3] >= 0.75
    assert value[4] < 0.5 and value[5] < value[4]


@pytest.mark.filterwarnings("ignore::sitefinder.config.ScenarioWarning")  # replaces on purpose
def test_plot_facts_exclude_and_penalise(tmp_path):
    scenario_file = tmp_path / "s.yaml"
    scenario_file.write_text(
        "extends: default\n"
        "exclusions:\n"
        "  - {metric: zoning, one_of: [næring, LNF], reason_nb: feil formål,"
        " reason_en: wrong zoning}\n"
        "criteria:\n"
        "  price:\n"
        "    metric: price_nok\n"
        "    value: {kind: linear, ideal: 1000000, unacceptable: 5000000}\n"
        "    weight: 1\n"
        "    label_nb: tomtepris\n"
        "    label_en: plot price\n",
        encoding="utf-8",
    )
    from sitefinder.config import load_scenario

    scenario = load_scenario(scenario_file)
    metrics = _metrics(dist_transit_m=[300.0, 300.0, 300.0])
    metrics["zoning"] = ["bolig", "næring", None]
    metrics["price_nok"] = [1_000_000, 1_000_000, 3_000_000]
    out = score_metrics(metrics, scenario)
    assert out["status"].tolist() == ["ok", "excluded", "ok"]
    assert out["status_reason_en"].iloc[1] == "wrong zoning"
    assert out["value_price"].tolist() == [1.0, 1.0, 0.5]
    assert out["score"].iloc[0] > out["score"].iloc[2]


def test_below_exclusion_ignores_missing_values():
    metrics = _metrics(dwelling_dist_m=[0.0, 9.0, 10.0, float("nan")])
    out = score_metrics(metrics, default_scenario())
    assert out["status"].tolist() == ["excluded", "excluded", "ok", "ok"]


def test_more_than_six_units_together_is_excluded_with_the_count():
    metrics = _metrics(capacity_units=pd.array([3, 8, None], dtype="Int64"))
    out = score_metrics(metrics, default_scenario())
    assert out["status"].tolist() == ["ok", "excluded", "ok"]
    assert out["status_reason_en"].iloc[1] == "unacceptable on criterion 'units on the site' (8)"


def test_nothing_known_nearby_is_ideal_for_what_a_plot_should_be_away_from():
    nan = float("nan")
    metrics = _metrics(drug_scene_dist_m=[nan, 2000.0], sensitive_dist_m=[nan, 2000.0],
                       dist_grocery_m=[nan, 500.0])
    out = score_metrics(metrics, default_scenario())
    # No drug scene or other user group known: as good as far away.
    assert out["value_drug_scene"].tolist() == [1.0, 1.0]
    assert out["value_other_user_groups"].tolist() == [1.0, 1.0]
    # No shop within reach: unacceptable, not ideal.
    assert out["value_grocery"].tolist() == [0.0, 1.0]
    assert out["status"].tolist() == ["ok", "ok"]


def test_plot_fact_columns_read_from_csv_as_text_are_valued_or_refused():
    from sitefinder.config import Criterion
    from sitefinder.errors import InputError

    scenario = default_scenario()
    price = Criterion(metric="price_nok", weight=1, label_nb="tomtepris", label_en="price",
                      value={"kind": "linear", "ideal": 1e6, "unacceptable": 5e6})
    priced = scenario.model_copy(update={"criteria": {**scenario.criteria, "price": price}})
    metrics = _metrics(dist_transit_m=[300.0, 300.0, 300.0])
    metrics["price_nok"] = pd.Series(["1000000", "3000000", "ukjent"], dtype=object)
    out = score_metrics(metrics, priced)
    assert out["value_price"].tolist() == [1.0, 0.5, 0.0]
    assert "tomtepris: ingen data" in out["explanation_nb"].iloc[2]
    zoning = price.model_copy(update={"metric": "zoning"})
    by_zoning = scenario.model_copy(update={"criteria": {**scenario.criteria, "z": zoning}})
    metrics["zoning"] = ["bolig", "næring", None]
    with pytest.raises(InputError, match="'zoning', which holds text"):
        score_metrics(metrics, by_zoning)
