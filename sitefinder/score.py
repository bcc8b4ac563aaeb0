"""Scoring: value functions, weights, exclusions, rank and plain-language explanations.

Cheap and network-free: everything here works on the metrics table, so a scenario can be
re-scored in milliseconds. ``score = 100 * Σ w·v / Σ w`` over the scenario's criteria; a
missing metric (unreachable, or no feature within the search distance) counts as
unacceptable (value 0) and the explanation says so.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from sitefinder.capacity import cap_units
from sitefinder.config import (
    NEAREST_METRICS,
    Criterion,
    Exclusion,
    LinearValue,
    PiecewiseValue,
    Scenario,
    WindowValue,
)
from sitefinder.errors import InputError
from sitefinder.language import NBSP, fmt_distance, fmt_int, fmt_number
from sitefinder.noise import RAIL_RED_DB, RAIL_YELLOW_DB, ROAD_RED_DB, ROAD_YELLOW_DB
from sitefinder.sources.plots import STATUS_OK

STATUS_EXCLUDED = "excluded"
STATUS_TOO_SMALL = "too_small"


def linear_value(x: np.ndarray | pd.Series, ideal: float, unacceptable: float) -> np.ndarray:
    """1 at ``ideal`` (and beyond it), 0 at ``unacceptable`` (and beyond), linear between.

    NaN (no value measured) gives 0.

    Examples
    --------
    >>> linear_value(np.array([300, 650, 1000, 2000]), ideal=300, unacceptable=1000)
    array([1. , 0.5, 0. , 0. ])
    >>> linear_value(np.array([5.0, 17.5, 30.0]), ideal=25, unacceptable=10)
    array([0. , 0.5, 1. ])
    """
    x = np.asarray(x, dtype=float)
    value = np.clip((x - unacceptable) / (ideal - unacceptable), 0.0, 1.0) + 0.0  # no -0.0
    return np.where(np.isnan(x), 0.0, value)


def window_value(
    x: np.ndarray | pd.Series,
    unacceptable_below: float,
    ideal_from: float,
    ideal_to: float,
    unacceptable_above: float,
) -> np.ndarray:
    """0 below/above the outer limits, 1 inside ``[ideal_from, ideal_to]``, linear between.

    Examples
    --------
    >>> window_value(np.array([5, 17.5, 100, 325, 600]), 10, 25, 150, 500)
    array([0. , 0.5, 1. , 0.5, 0. ])
    """
    low = linear_value(x, ideal_from, unacceptable_below)
    high = linear_value(x, ideal_to, unacceptable_above)
    return np.minimum(low, high)


def piecewise_value(x: np.ndarray | pd.Series, points: list[tuple[float, float]]) -> np.ndarray:
    """Interpolate between ``points`` ([metric, value] pairs); held flat outside them.

    NaN (no value measured) gives 0.

    Examples
    --------
    >>> piecewise_value(np.array([1, 2, 3.5, 4, 9, np.nan]),
    ...                 [(1, 0.8), (2, 1), (3, 1), (4, 0.8), (5, 0.4), (6, 0.2)])
    array([0.8, 1. , 0.9, 0.8, 0.2, 0. ])
    """
    x = np.asarray(x, dtype=float)
    xs, vs = zip(*points, strict=True)
    return np.where(np.isnan(x), 0.0, np.interp(x, xs, vs))


def criterion_value(metric: pd.Series, criterion: Criterion) -> np.ndarray:
    """Apply a criterion's value function to its metric column."""
    fn = criterion.value
    metric = _as_numbers(pd.Series(metric))  # a plot-file column may hold text
    if isinstance(fn, PiecewiseValue):
        return piecewise_value(metric, fn.points)
    if isinstance(fn, LinearValue):
        return linear_value(metric, fn.ideal, fn.unacceptable)
    if isinstance(fn, WindowValue):
        return window_value(
            metric, fn.unacceptable_below, fn.ideal_from, fn.ideal_to, fn.unacceptable_above
        )
    raise TypeError(f"unknown value function {fn!r}")  # pragma: no cover - pydantic guards


def active_scenario(columns: Iterable[str], scenario: Scenario) -> Scenario:
    """``scenario`` without the ``when_measured`` criteria whose metric is not measured.

    Examples
    --------
    >>> from sitefinder.config import default_scenario
    >>> s = default_scenario()
    >>> "slope" in s.criteria, "slope" in active_scenario(["dist_transit_m"], s).criteria
    (True, False)
    """
    columns = set(columns)
    skipped = [n for n, c in scenario.criteria.items() if c.when_measured
               and c.metric not in columns]
    if not skipped:
        return scenario
    kept = {n: c for n, c in scenario.criteria.items() if n not in skipped}
    return scenario.model_copy(update={"criteria": kept})


def check_metrics(columns: Iterable[str], scenario: Scenario) -> None:
    """Refuse criteria or exclusions whose metric is not among ``columns``."""
    columns = set(columns)
    unknown = [
        f"criteria.{name}.metric '{c.metric}'"
        for name, c in scenario.criteria.items()
        if c.metric not in columns and not c.when_measured
    ] + [
        f"exclusions.{i}.metric '{e.metric}'"
        for i, e in enumerate(scenario.exclusions)
        if e.metric not in columns
    ]
    if unknown:
        known = sorted(c for c in columns if not c.startswith(("status", "value_")))
        raise InputError(
            f"the scenario refers to metrics that are not measured: {', '.join(unknown)}",
            where="scenario",
            hint=f"Use one of: {', '.join(known)}",
        )


def check_numeric(metrics: pd.DataFrame, scenario: Scenario) -> None:
    """Refuse a criterion on a column with values but no numbers (e.g. zoning text).

    A column with some numbers and some text ("ukjent") is fine: the text counts as a
    missing value. A column of text only cannot be valued; an exclusion can use it.
    """
    for name, c in scenario.criteria.items():
        if c.metric not in metrics.columns:
            continue  # checked by check_metrics
        column = metrics[c.metric]
        if column.dtype.kind in "biufm":
            continue
        given = column.dropna()
        given = given[given.astype(str).str.strip() != ""]
        if len(given) and pd.to_numeric(given, errors="coerce").isna().all():
            raise InputError(
                f"criterion '{name}' values the column '{c.metric}', which holds text "
                f"(e.g. '{given.iloc[0]}'), not numbers",
                where=f"criteria.{name}.metric",
                hint="Value a numeric column, or use the text in an exclusion, e.g. "
                f"{{metric: {c.metric}, one_of: [...], reason_nb: ..., reason_en: ...}}",
            )


def criterion_values(metrics: pd.DataFrame, scenario: Scenario) -> pd.DataFrame:
    """Value (0–1) of every criterion for every plot; columns are criterion names."""
    values = {}
    for name, c in scenario.criteria.items():
        numbers = _as_numbers(metrics[c.metric])
        value = criterion_value(numbers, c)
        values[name] = np.where(np.isnan(numbers), c.missing_value, value)
    return pd.DataFrame(values, index=metrics.index)


def _as_numbers(column: pd.Series) -> np.ndarray:
    """A metric column as floats; text (a plot-file column) that is no number is NaN."""
    if column.dtype.kind in "biuf":
        return column.to_numpy(dtype=float, na_value=np.nan)
    return pd.to_numeric(column, errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def score_metrics(
    metrics: pd.DataFrame,
    scenario: Scenario,
    empty_layers: set[str] | frozenset[str] = frozenset(),
    *,
    explain: bool = True,
) -> pd.DataFrame:
    """Score, rank and explain every plot.

    Parameters
    ----------
    metrics : DataFrame
        From :func:`sitefinder.measure.compute_metrics`, with ``plot_id`` and ``status``.
    scenario : Scenario
    empty_layers : set of str
        Categories with no features at all: their criteria are left out of the score
        (weight 0) instead of pulling every plot down, and the explanation says so.
    explain : bool
        Write the plain-language explanations. Formatting a sentence per plot costs far
        more than the scoring itself; a sensitivity loop can leave it out.

    Returns
    -------
    DataFrame
        ``metrics`` plus ``value_<criterion>``, ``score``, ``rank``, ``explanation_nb``,
        ``explanation_en``, with exclusions applied to ``status``.
    """
    out = _with_capacity(metrics, scenario)
    check_metrics(out.columns, scenario)
    scenario = active_scenario(out.columns, scenario)
    check_numeric(out, scenario)
    values = criterion_values(out, scenario)
    weights = pd.Series({n: c.weight for n, c in scenario.criteria.items()}, dtype=float)
    dropped = criteria_without_data(scenario, empty_layers)
    weights[dropped] = 0.0
    total = weights.sum()
    score = 100 * (values.to_numpy() @ weights.to_numpy()) / total if total > 0 else np.nan
    for name in values.columns:
        out[f"value_{name}"] = values[name].to_numpy()

    status, reason_nb, reason_en = _judged_status(out, values, scenario, dropped)
    out["status"], out["status_reason_nb"], out["status_reason_en"] = status, reason_nb, reason_en
    scored = np.isin(status, [STATUS_OK, STATUS_EXCLUDED, STATUS_TOO_SMALL])
    out["score"] = np.where(scored, score, np.nan)
    out["rank"] = rank_scores(out["score"], out["plot_id"], status == STATUS_OK)
    if explain:
        out["explanation_nb"] = explain_plots(out, scenario, "nb", dropped)
        out["explanation_en"] = explain_plots(out, scenario, "en", dropped)
    return out


def _with_capacity(metrics: pd.DataFrame, scenario: Scenario) -> pd.DataFrame:
    """``metrics`` with the measured unit count capped by the scenario's units per site.

    The cap is scoring, not measuring: ``capacity_units`` must exist before the criteria
    are valued, because a criterion may judge the number of units.
    """
    out = metrics.copy()
    if "capacity_max_units" in out.columns:
        capacity = cap_units(out["capacity_max_units"], scenario.capacity)
        out = out.drop(columns=["capacity_max_units"]).join(capacity)
    return out


def _judged_status(
    out: pd.DataFrame, values: pd.DataFrame, scenario: Scenario, dropped: list[str]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Status and reasons after exclusions, unacceptable criteria and units per site."""
    status = out["status"].to_numpy().copy()
    reason_nb = out["status_reason_nb"].to_numpy().copy()
    reason_en = out["status_reason_en"].to_numpy().copy()
    measured = status == STATUS_OK
    for exclusion in scenario.exclusions:
        hit = measured & exclusion_hits(out[exclusion.metric], exclusion)
        _add_reason(status, reason_nb, reason_en, hit, exclusion.reason_nb, exclusion.reason_en)
    for name, c in scenario.criteria.items():
        if c.exclude_when_unacceptable and name not in dropped:
            # A missing value (nothing of that kind nearby, or no data) is not "unacceptable".
            numbers = _as_numbers(out[c.metric])
            hit = measured & (values[name].to_numpy() <= 0) & ~np.isnan(numbers)
            # Formatted for the excluded rows only: re-scoring 10,000 plots stays fast.
            shown_nb = np.full(len(numbers), "", dtype=object)
            shown_en = np.full(len(numbers), "", dtype=object)
            shown_nb[hit] = [_number(v, c.metric, "nb") for v in numbers[hit]]
            shown_en[hit] = [_number(v, c.metric, "en") for v in numbers[hit]]
            _add_reason(
                status, reason_nb, reason_en, hit,
                "uakseptabel på kriteriet «" + c.label_nb + "» (" + shown_nb + ")",
                "unacceptable on criterion '" + c.label_en + "' (" + shown_en + ")",
            )
    if "capacity_status" in out.columns:
        small = (status == STATUS_OK) & (out["capacity_status"] == STATUS_TOO_SMALL).to_numpy()
        status[small] = STATUS_TOO_SMALL
        reason_nb[small] = out["capacity_reason_nb"].to_numpy()[small]
        reason_en[small] = out["capacity_reason_en"].to_numpy()[small]
    return status, reason_nb, reason_en


def criteria_without_data(scenario: Scenario, empty_layers: Iterable[str]) -> list[str]:
    """Criteria left out of the score because their layer has no feature at all.

    Examples
    --------
    >>> from sitefinder.config import default_scenario
    >>> criteria_without_data(default_scenario(), {"drug_scenes", "pharmacy"})
    ['pharmacy', 'drug_scene']
    """
    empty = set(empty_layers)
    return [n for n, c in scenario.criteria.items() if layer_of(c.metric) in empty]


def exclusion_hits(column: pd.Series, exclusion: Exclusion) -> np.ndarray:
    """Which rows meet an exclusion's condition; a missing value never does.

    Examples
    --------
    >>> ex = Exclusion(metric="dwelling_dist_m", below=10, reason_nb="-", reason_en="-")
    >>> exclusion_hits(pd.Series([0.0, 9.9, 10.0, np.nan]), ex)
    array([ True,  True, False, False])
    >>> ex = Exclusion(metric="zoning", one_of=["næring"], reason_nb="-", reason_en="-")
    >>> exclusion_hits(pd.Series(["bolig", "næring", None]), ex)
    array([False,  True, False])
    """
    if exclusion.below is not None or exclusion.above is not None:
        x = pd.to_numeric(column, errors="coerce").to_numpy(dtype=float)
        with np.errstate(invalid="ignore"):
            if exclusion.below is not None:
                return x < exclusion.below
            return x > exclusion.above
    if exclusion.one_of is not None:
        return column.isin(exclusion.one_of).to_numpy()
    return (column == exclusion.equals).fillna(False).to_numpy(dtype=bool)


def layer_of(metric: str) -> str | None:
    """The layer a metric column is measured from, e.g. ``dist_transit_m`` → transit.

    Used to leave a criterion out when its layer has no feature at all.

    Examples
    --------
    >>> layer_of("dist_transit_m"), layer_of("drug_scene_dist_m"), layer_of("road_lden_db")
    ('transit', 'drug_scenes', None)
    """
    parts = metric.split("_")
    if len(parts) >= 3 and parts[0] in ("dist", "time", "count"):
        return parts[1]
    if metric.startswith("dwellings_within_"):
        return "dwellings"
    if metric == "exposure_index":
        return "passersby"
    return {column: layer for layer, column in NEAREST_METRICS.items()}.get(metric)


def _distance_text(metres: float, language: str) -> str:
    """:func:`sitefinder.language.fmt_distance` with a plain space before the unit.

    The explanations and reasons are also read by programs and searched by people in
    the CSV, where "126 m" must match what they type.
    """
    return fmt_distance(metres, language).replace(NBSP, " ")


def _number(value: float, metric: str, language: str) -> str:
    """A metric value with its unit for a reason text, e.g. ``126 m`` or ``1,6 km``."""
    if np.isnan(value):
        return ""
    if metric.endswith("_m"):
        return _distance_text(value, language)
    return fmt_int(value, language) + _unit(metric, language)


def _add_reason(status, reason_nb, reason_en, hit, text_nb, text_en) -> None:
    """Mark ``hit`` rows excluded, adding the reason (a string, or one per row)."""
    text_nb = np.broadcast_to(np.asarray(text_nb, dtype=object), status.shape)
    text_en = np.broadcast_to(np.asarray(text_en, dtype=object), status.shape)
    already = hit & (status == STATUS_EXCLUDED)
    status[hit] = STATUS_EXCLUDED
    reason_nb[already] = reason_nb[already] + "; " + text_nb[already]
    reason_en[already] = reason_en[already] + "; " + text_en[already]
    fresh = hit & ~already
    reason_nb[fresh] = text_nb[fresh]
    reason_en[fresh] = text_en[fresh]


def rank_scores(score: pd.Series, plot_id: pd.Series, eligible: np.ndarray) -> pd.Series:
    """Rank 1 = best score among eligible plots; ties broken by plot id; others null."""
    order = pd.DataFrame({"score": score.to_numpy(), "id": plot_id.astype(str).to_numpy()})
    order = order[eligible].sort_values(["score", "id"], ascending=[False, True])
    rank = pd.Series(pd.NA, index=range(len(score)), dtype="Int64")
    rank.iloc[order.index.to_numpy()] = np.arange(1, len(order) + 1)
    rank.index = score.index
    return rank


_WORDS = {
    "nb": {
        "walk": "{v} min å gå til {label}",
        "none": "ingen {label} innen {km} km gange",
        "island": "{label}: ikke nåbar (tomten ligger på en gangvei uten forbindelse)",
        "dist": "{v} til {label}",
        "inside": "ligger i {label}",
        "missing": "{label}: ingen data",
        "nolayer": "{label}: ingen i kartdataene, ikke vektlagt",
        "score": "Poeng {s} av 100",
        "good": "bra",
        "fair": "middels",
        "poor": "svakt",
        "strongest": "Sterkest",
        "weakest": "Svakest",
        "yellow": "gul støysone: støyfaglig utredning og tiltak kreves",
        "red": "rød støysone: boliger bør unngås, krever skjerming",
    },
    "en": {
        "walk": "{v} min walk to {label}",
        "none": "no {label} within {km} km walk",
        "island": "{label}: unreachable (plot is on a path not linked to the network)",
        "dist": "{v} to {label}",
        "inside": "lies in {label}",
        "missing": "{label}: no data",
        "nolayer": "{label}: none in the map data, not weighted",
        "score": "Score {s} of 100",
        "good": "good",
        "fair": "fair",
        "poor": "poor",
        "strongest": "Strongest",
        "weakest": "Weakest",
        "yellow": "yellow noise zone: a noise assessment and mitigation are required",
        "red": "red noise zone: homes should be avoided, needs screening",
    },
}


def _unit(metric: str, language: str) -> str:
    """Unit suffix for a metric shown in an explanation, from its column name."""
    if metric.endswith("_db"):
        return " dB"
    if metric.endswith("_deg"):
        return "°"
    if metric.startswith("departures_per_hour"):
        return " avganger/time" if language == "nb" else " departures/hour"
    return ""


def noise_zone_of(metric: str, levels: pd.Series) -> pd.Series | None:
    """T-1442 zone (``"yellow"``, ``"red"`` or ``""``) of a road/rail Lden column, else None.

    Examples
    --------
    >>> noise_zone_of("rail_lden_db", pd.Series([50, 60, 70])).tolist()
    ['', 'yellow', 'red']
    """
    if not metric.endswith("_lden_db"):
        return None
    rail = metric.startswith("rail")
    yellow, red = (RAIL_YELLOW_DB, RAIL_RED_DB) if rail else (ROAD_YELLOW_DB, ROAD_RED_DB)
    x = pd.to_numeric(levels, errors="coerce")
    zone = np.where(x >= red, "red", np.where(x >= yellow, "yellow", ""))
    return pd.Series(zone, index=levels.index)


def _grade(value: float, words: dict[str, str]) -> str:
    return words["good"] if value >= 0.75 else words["fair"] if value >= 0.35 else words["poor"]


def explain_plots(
    scored: pd.DataFrame, scenario: Scenario, language: str, dropped: list[str]
) -> pd.Series:
    """One plain-language sentence per plot, listing every criterion's raw value.

    E.g. "Poeng 72,4 av 100. 4 min å gå til holdeplass (bra), 12 min å gå til
    dagligvarebutikk (middels) … Svakest: park eller natur." Plots that were not
    measured get their status reason instead. Numbers are written as a reader of
    ``language`` writes them (:mod:`sitefinder.language`): the score with the one
    decimal the tables show, distances in metres or kilometres, counts and residents
    whole.
    """
    words = _WORDS[language]
    speed = scenario.network.walk_speed_kmh * 1000 / 60
    reach_km = scenario.network.max_distance_m / 1000
    km = fmt_number(reach_km, 0 if reach_km == round(reach_km) else 1, language)
    parts_per_criterion = []
    for name, c in scenario.criteria.items():
        label = c.label_nb if language == "nb" else c.label_en
        # A plot-file column may hold text ("ukjent"): shown as missing, not formatted.
        metric = pd.to_numeric(scored[c.metric], errors="coerce").astype(float)
        value = scored[f"value_{name}"]
        grade = value.map(lambda v, w=words: _grade(v, w))
        zone = noise_zone_of(c.metric, scored[c.metric])
        if zone is not None:
            # A T-1442 zone is named as a zone, and a level in it never reads "good",
            # whatever value function a scenario gives.
            grade = grade.where(zone != "yellow", grade.replace(words["good"], words["fair"]))
            grade = grade.where(zone != "red", words["poor"])
            named = zone.map({"yellow": words["yellow"], "red": words["red"]})
            grade = grade.where(named.isna(), grade + "; " + named)
        if name in dropped:
            text = pd.Series(words["nolayer"].format(label=label), index=scored.index)
        elif c.metric.startswith("dist_") and layer_of(c.metric):
            minutes = metric / speed
            walk = minutes.map(
                lambda v, lb=label: words["walk"].format(v=fmt_int(max(v, 1), language), label=lb)
            )
            island = scored["network_reach"] == "island"
            none = pd.Series(words["none"].format(label=label, km=km), index=scored.index)
            unreach = pd.Series(words["island"].format(label=label), index=scored.index)
            text = walk.where(metric.notna(), unreach.where(island, none))
            text = text.where(metric.isna(), text + " (" + grade + ")")
        elif c.metric.endswith("_dist_m"):
            dist = metric.map(
                lambda v, lb=label: words["dist"].format(v=_distance_text(v, language), label=lb)
            )
            dist = dist.where(metric > 0, words["inside"].format(label=label))
            text = dist.where(metric.notna(), words["missing"].format(label=label))
            text = text + " (" + grade + ")"
        else:
            unit = _unit(c.metric, language)
            proxy = scored.get("noise_is_proxy", pd.Series([False]))
            if c.metric.endswith("_lden_db") and proxy.any():
                # Every output must say when noise is the OSM proxy, not a noise map.
                label += " [anslag fra OSM]" if language == "nb" else " [OSM estimate]"
            # Whole numbers ("innbyggere innen 500 m 8 695": whole people).
            shown = metric.map(
                lambda v, lb=label, u=unit: f"{lb} {fmt_int(v, language)}{u}"
            )
            text = shown.where(metric.notna(), words["missing"].format(label=label))
            text = text + " (" + grade + ")"
        parts_per_criterion.append(text)
    body = pd.concat(parts_per_criterion, axis=1).agg(", ".join, axis=1)
    # A sentence of its own after the score: it starts with a capital letter.
    body = body.str[:1].str.upper() + body.str[1:]

    value_cols = [f"value_{n}" for n in scenario.criteria if n not in dropped]
    labels = {
        f"value_{n}": (c.label_nb if language == "nb" else c.label_en)
        for n, c in scenario.criteria.items()
    }
    head = scored["score"].map(
        lambda s: words["score"].format(s=fmt_number(s, 1, language)) if pd.notna(s) else ""
    )
    text = head + ". " + body + "."
    if value_cols:
        values = scored[value_cols]
        # Name the strongest and weakest criterion only where they differ.
        differs = values.max(axis=1) > values.min(axis=1)
        strongest = words["strongest"] + ": " + values.idxmax(axis=1).map(labels) + ". "
        weakest = words["weakest"] + ": " + values.idxmin(axis=1).map(labels) + "."
        text = text.where(~differs, text + " " + strongest + weakest)
    reason = scored[f"status_reason_{language}"]
    measured = scored["status"].isin([STATUS_OK, STATUS_EXCLUDED, STATUS_TOO_SMALL])
    excluded = scored["status"].isin([STATUS_EXCLUDED, STATUS_TOO_SMALL])
    reason = reason.str[:1].str.upper() + reason.str[1:]
    text = text.where(~excluded, reason + ". " + text)
    return text.where(measured, reason + ".")
