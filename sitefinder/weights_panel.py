"""The live weights panel of the web map: one scoring, in Python and in the browser.

In a council meeting the question is always "what if transit matters more?". The panel
answers it in the map itself, with no server: it carries, per plot, the raw metric values
the criteria use and, per criterion, its weight and value function, and
``assets/weights_panel.js`` re-scores, re-ranks and recolours every plot when a weight,
a switch or a threshold changes. The browser computes exactly what
:func:`sitefinder.score.score_metrics` computes (tests/test_weights_panel.py holds the
two to 1e-9 on the demo and on 1,000 random plots), and its "export" writes the changed
scenario as YAML that ``sitefinder run --scenario`` accepts and that reproduces the
browser's ranking.

What the browser may change is scoring only: weights, switching a criterion off (weight
0, and it no longer excludes), and the thresholds of the value functions. Hard
exclusions (``exclusions:``), the units per site, and everything measured are fixed:
they are decided here, once, per plot (:data:`ELIGIBLE`, :data:`HARD_EXCLUDED`,
:data:`TOO_SMALL`, :data:`NOT_MEASURED`). The selection of sites (MILP) stays in
Python; the panel says that the chosen sites came from the scenario as run.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import folium
import numpy as np
import pandas as pd
from branca.element import Element, MacroElement
from folium.template import Template

from sitefinder.config import LinearValue, PiecewiseValue, Scenario, WindowValue
from sitefinder.errors import InputError
from sitefinder.map_style import class_breaks
from sitefinder.score import (
    STATUS_EXCLUDED,
    STATUS_TOO_SMALL,
    _as_numbers,
    exclusion_hits,
    layer_of,
)
from sitefinder.sources.plots import STATUS_OK

__all__ = [
    "ELIGIBLE",
    "HARD_EXCLUDED",
    "NOT_MEASURED",
    "TOO_SMALL",
    "WeightsPanel",
    "add_weights_panel",
    "dropped_criteria",
    "panel_spec",
]

#: Base state of a plot, fixed whatever the panel changes. ELIGIBLE: measured, not hard
#: excluded, large enough (ranked unless a criterion finds it unacceptable).
ELIGIBLE = 0
#: Met a hard exclusion of the scenario: scored for information, never ranked.
HARD_EXCLUDED = 1
#: Measured, but takes fewer units than the scenario's minimum: scored, not ranked.
TOO_SMALL = 2
#: Could not be measured (no geometry, outside the network, duplicate …): no score.
NOT_MEASURED = 3

_ASSETS = Path(__file__).parent / "assets"

TEXT: dict[str, dict[str, str]] = {
    "nb": {
        "title": "Vekter og terskler",
        "toggle": "Juster vekter",
        "close": "Skjul",
        "intro": "Flytt en vekt, slå et kriterium av eller på, eller endre en terskel: "
                 "kartet rangerer alle tomtene på nytt med en gang.",
        "selectionNote": "Valgte tomter (utvalget) kommer fra scenarioet «{name}» slik det "
                         "ble kjørt, og endres ikke her. Kjør «sitefinder select» med det "
                         "eksporterte scenarioet for å velge på nytt.",
        "fixedNote": "Harde utelatelser og antall enheter per tomt er som i scenarioet.",
        "weight": "Vekt",
        "on": "Med i poengsummen",
        "thresholds": "Terskler",
        "ideal": "Ideell",
        "unacceptable": "Uakseptabel",
        "unacceptable_below": "Uakseptabel under",
        "ideal_from": "Ideell fra",
        "ideal_to": "Ideell til",
        "unacceptable_above": "Uakseptabel over",
        "point": "Punkt {i} (verdi {v})",
        "excludes": "utelater tomter med verdi 0",
        "noData": "ingen i kartdataene, ikke vektlagt",
        "invalidLinear": "Ideell og uakseptabel må være ulike, og ideell må ligge på samme "
                         "side som før ({dir}).",
        "lower": "lavere er bedre",
        "higher": "høyere er bedre",
        "invalidWindow": "Må stige: uakseptabel under < ideell fra ≤ ideell til < uakseptabel "
                         "over.",
        "invalidPiecewise": "Punktene må stige.",
        "invalidNumber": "Skriv et tall.",
        "noWeight": "Minst ett kriterium må ha vekt over 0.",
        "reset": "Tilbakestill",
        "export": "Eksporter",
        "exportTitle": "Last ned det endrede scenarioet som YAML "
                       "(sitefinder run --scenario FIL)",
        "unchanged": "Som scenarioet «{name}».",
        "changed": "Endret fra scenarioet «{name}».",
        "ranked": "{n} rangert, {x} utelukket",
        "plot": "tomt",
        "plots": "tomter",
        "entered": "Nye i topp {k}",
        "left": "Ute av topp {k}",
        "none": "ingen",
        "rankOf": "nr. {r}",
        "before": "før nr. {r}",
        "excludedNow": "nå utelukket",
        "explanationNote": "Forklaringen gjelder scenarioet slik det ble kjørt.",
        "unacceptableReason": "uakseptabel på kriteriet «{label}» ({value})",
        "statusOk": "Rangert",
        "statusExcluded": "Utelukket",
        "statusTooSmall": "For liten",
        "exportHeader": "Scenario eksportert fra vektpanelet i sitefinder-kartet {date}.",
        "exportBase": "Bygger på scenarioet «{name}» slik det ble kjørt; bare kriteriene er "
                      "endret.",
        "exportUse": "Bruk: sitefinder run --scenario {file}",
        "exportPublic": "Offentlig kart: stien til eksisterende tiltak er tatt ut.",
    },
    "en": {
        "title": "Weights and thresholds",
        "toggle": "Adjust weights",
        "close": "Hide",
        "intro": "Move a weight, switch a criterion off or on, or change a threshold: the "
                 "map ranks every plot again at once.",
        "selectionNote": "The chosen sites (selection) come from the scenario '{name}' as "
                         "run and do not change here. Run 'sitefinder select' with the "
                         "exported scenario to choose again.",
        "fixedNote": "Hard exclusions and units per site are as in the scenario.",
        "weight": "Weight",
        "on": "Counts in the score",
        "thresholds": "Thresholds",
        "ideal": "Ideal",
        "unacceptable": "Unacceptable",
        "unacceptable_below": "Unacceptable below",
        "ideal_from": "Ideal from",
        "ideal_to": "Ideal to",
        "unacceptable_above": "Unacceptable above",
        "point": "Point {i} (value {v})",
        "excludes": "excludes plots valued 0",
        "noData": "none in the map data, not weighted",
        "invalidLinear": "Ideal and unacceptable must differ, and keep their order ({dir}).",
        "lower": "lower is better",
        "higher": "higher is better",
        "invalidWindow": "Must rise: unacceptable below < ideal from ≤ ideal to < "
                         "unacceptable above.",
        "invalidPiecewise": "The points must rise.",
        "invalidNumber": "Type a number.",
        "noWeight": "At least one criterion needs a weight above 0.",
        "reset": "Reset",
        "export": "Export",
        "exportTitle": "Download the changed scenario as YAML (sitefinder run --scenario FILE)",
        "unchanged": "As the scenario '{name}'.",
        "changed": "Changed from the scenario '{name}'.",
        "ranked": "{n} ranked, {x} excluded",
        "plot": "plot",
        "plots": "plots",
        "entered": "New in the top {k}",
        "left": "Out of the top {k}",
        "none": "none",
        "rankOf": "#{r}",
        "before": "was #{r}",
        "excludedNow": "now excluded",
        "explanationNote": "The explanation is for the scenario as run.",
        "unacceptableReason": "unacceptable on criterion '{label}' ({value})",
        "statusOk": "Ranked",
        "statusExcluded": "Excluded",
        "statusTooSmall": "Too small",
        "exportHeader": "Scenario exported from the weights panel of the sitefinder map {date}.",
        "exportBase": "Based on the scenario '{name}' as run; only the criteria are changed.",
        "exportUse": "Use: sitefinder run --scenario {file}",
        "exportPublic": "Public map: the path of the existing sites is left out.",
    },
}


def dropped_criteria(
    ranked: pd.DataFrame, scenario: Scenario, empty_layers: Iterable[str] | None = None
) -> list[str]:
    """Criteria the score left out because their layer has no feature at all.

    With ``empty_layers`` (or ``ranked.attrs["empty_layers"]``) the rule of
    :func:`sitefinder.score.criteria_without_data` applies. Without, they are read back
    from the table: among the criteria whose layer-based metric is missing for every
    plot, the set whose leaving out reproduces the ``score`` column.

    Parameters
    ----------
    ranked : DataFrame
        Scored plots with ``value_<criterion>`` and ``score`` columns.
    scenario : Scenario
        The scenario that scored them.
    empty_layers : iterable of str, optional
        Layers with no feature (``Study.empty_layers``).

    Returns
    -------
    list of str
        Criterion names, in scenario order.
    """
    active = _active_criteria(ranked, scenario)
    if empty_layers is None:
        empty_layers = ranked.attrs.get("empty_layers")
    if empty_layers is not None:
        empty = set(empty_layers)
        return [n for n in active if layer_of(scenario.criteria[n].metric) in empty]
    candidates = [
        n for n in active
        if layer_of(scenario.criteria[n].metric)
        and np.isnan(_as_numbers(ranked[scenario.criteria[n].metric])).all()
    ]
    if not candidates:
        return []
    # Most likely first: every all-missing layer is empty, then none is, then the rest.
    subsets = [tuple(candidates), ()] + [
        s for r in range(1, len(candidates)) for s in itertools.combinations(candidates, r)
    ][:64]
    for subset in subsets:
        if _scores_match(ranked, scenario, active, set(subset)):
            return list(subset)
    return []


def _active_criteria(ranked: pd.DataFrame, scenario: Scenario) -> list[str]:
    """The scenario's criteria that scored this table (``when_measured`` ones may not)."""
    return [n for n in scenario.criteria if f"value_{n}" in ranked.columns]


def _scores_match(
    ranked: pd.DataFrame, scenario: Scenario, active: list[str], dropped: set[str]
) -> bool:
    """Whether leaving ``dropped`` out of the weighted sum gives the table's scores."""
    weights = np.array([0.0 if n in dropped else scenario.criteria[n].weight for n in active])
    score = pd.to_numeric(ranked["score"], errors="coerce").to_numpy(dtype=float)
    shown = ~np.isnan(score)
    if weights.sum() <= 0 or not shown.any():
        return not shown.any()
    values = ranked[[f"value_{n}" for n in active]].to_numpy(dtype=float)[shown]
    expected = 100 * (values @ weights) / weights.sum()
    return bool(np.allclose(expected, score[shown], rtol=0, atol=1e-6))


def panel_spec(
    ranked: pd.DataFrame,
    scenario: Scenario,
    *,
    language: str = "nb",
    top_n: int = 10,
    empty_layers: Iterable[str] | None = None,
    public: bool = False,
) -> dict[str, Any]:
    """Everything the browser needs to score the plots as Python does, as plain data.

    Parameters
    ----------
    ranked : DataFrame
        Scored plots (docs/CONTRACT.md), from ``Study.score`` or ``score_metrics``.
    scenario : Scenario
        The scenario that scored them; the panel starts from it and exports changes of it.
    language : {"nb", "en"}
        Language of the panel.
    top_n : int
        K of "entered or left the top K" and of the rank labels on the map.
    empty_layers : iterable of str, optional
        Layers with no feature at all (their criteria are not weighted); read back from
        the table when not given (:func:`dropped_criteria`).
    public : bool
        A public map: the export leaves out the path of the existing sites.

    Returns
    -------
    dict
        JSON-ready: ``criteria`` (name, label, metric, weight, value function, missing
        value, whether it excludes, whether it was left out for lack of data), ``breaks``
        (the map's score classes), ``metrics``
        (metric column → one number or None per plot), ``plots`` (id, base state, fixed
        reason, score and rank as run), ``scenario`` (the whole scenario as run, for the
        export), ``topK``, ``language`` and ``text``.

    Raises
    ------
    InputError
        When ``ranked`` lacks the columns the scoring needs, or ``language`` is unknown.
    """
    if language not in TEXT:
        raise InputError(f"unknown language {language!r}", where="language",
                         hint="Use 'nb' or 'en'")
    _check_columns(ranked, scenario)
    active = _active_criteria(ranked, scenario)
    dropped = set(dropped_criteria(ranked, scenario, empty_layers))
    criteria = [_criterion_spec(n, scenario, language, n in dropped) for n in active]
    metric_names = list(dict.fromkeys(c["metric"] for c in criteria))
    scenario_data = scenario.model_dump(mode="json")
    if public:
        scenario_data["existing_sites"] = None
    return {
        "version": 1,
        "language": language,
        "topK": int(top_n),
        # The map's colour classes stay as drawn, so the legend stays true while moving.
        "breaks": list(class_breaks(ranked.loc[ranked["status"] == STATUS_OK, "score"])),
        "scenarioName": scenario.name,
        "criteria": criteria,
        "metrics": {m: _numbers(ranked[m]) for m in metric_names},
        "plots": _plot_spec(ranked, scenario, language),
        "scenario": scenario_data,
        "public": bool(public),
        "text": TEXT[language],
    }


def _missing_columns(ranked: pd.DataFrame, scenario: Scenario) -> list[str]:
    """Columns the browser's scoring needs that ``ranked`` lacks."""
    needed = ["plot_id", "status", "score", "rank"]
    needed += [c.metric for n, c in scenario.criteria.items() if f"value_{n}" in ranked.columns]
    return [c for c in dict.fromkeys(needed) if c not in ranked.columns]


def _check_columns(ranked: pd.DataFrame, scenario: Scenario) -> None:
    missing = _missing_columns(ranked, scenario)
    if missing:
        raise InputError(
            f"the ranked plots lack the column(s) {', '.join(missing)} the weights panel needs",
            where="ranked plots",
            hint="Pass the table returned by Study.score (or sitefinder.run) with the scenario "
            "that scored it",
        )


def _numbers(column: pd.Series) -> list[float | None]:
    """A metric as the scoring reads it (text that is no number is missing); NaN → None."""
    values = _as_numbers(column)
    return [None if np.isnan(v) else float(v) for v in values]


def _criterion_spec(name: str, scenario: Scenario, language: str, dropped: bool) -> dict:
    c = scenario.criteria[name]
    label = c.label_nb if language == "nb" else c.label_en
    return {
        "name": name,
        "label": label[:1].upper() + label[1:],
        "metric": c.metric,
        "unit": _unit(c.metric),
        "weight": float(c.weight),
        "value": _value_spec(c.value),
        "missing": float(c.missing_value),
        "excludeUnacceptable": bool(c.exclude_when_unacceptable),
        "dropped": dropped,
    }


def _value_spec(fn: LinearValue | WindowValue | PiecewiseValue) -> dict[str, Any]:
    if isinstance(fn, LinearValue):
        return {"kind": "linear", "ideal": fn.ideal, "unacceptable": fn.unacceptable,
                "direction": fn.direction, "implied": fn.implied_direction}
    if isinstance(fn, WindowValue):
        return {"kind": "window", "unacceptable_below": fn.unacceptable_below,
                "ideal_from": fn.ideal_from, "ideal_to": fn.ideal_to,
                "unacceptable_above": fn.unacceptable_above}
    return {"kind": "piecewise", "points": [[float(x), float(v)] for x, v in fn.points]}


def _unit(metric: str) -> str:
    """Unit of a metric column from its name, for the threshold fields."""
    for suffix, unit in (("_m", "m"), ("_min", "min"), ("_db", "dB"), ("_deg", "°"),
                         ("_m2", "m²")):
        if metric.endswith(suffix):
            return unit
    return ""


def _plot_spec(ranked: pd.DataFrame, scenario: Scenario, language: str) -> dict[str, list]:
    """Per plot: id, base state, the reason that stays whatever the panel does, as run."""
    status = ranked["status"].astype(str).to_numpy()
    measured = np.isin(status, [STATUS_OK, STATUS_EXCLUDED, STATUS_TOO_SMALL])
    base = np.where(measured, ELIGIBLE, NOT_MEASURED)
    given = ranked.get(f"status_reason_{language}", pd.Series("", index=ranked.index))
    reason = np.where(measured, "", given.fillna("").astype(str))
    reason = reason.astype(object)
    for exclusion, hit in zip(scenario.exclusions, _exclusion_hits(ranked, scenario),
                              strict=True):
        hit = hit & measured
        text = exclusion.reason_nb if language == "nb" else exclusion.reason_en
        # Same order and separator as the scoring: exclusions first, "; " between.
        reason[hit] = [r + "; " + text if r else text for r in reason[hit]]
        base[hit] = HARD_EXCLUDED
    if "capacity_status" in ranked.columns:
        small = (base == ELIGIBLE) & (ranked["capacity_status"] == STATUS_TOO_SMALL).to_numpy()
        base[small] = TOO_SMALL
        column = f"capacity_reason_{language}"
        if column in ranked.columns:
            reason[small] = ranked[column].fillna("").astype(str).to_numpy()[small]
    score = pd.to_numeric(ranked["score"], errors="coerce").to_numpy(dtype=float)
    rank = pd.to_numeric(ranked["rank"], errors="coerce").to_numpy(dtype=float)
    return {
        "id": ranked["plot_id"].astype(str).tolist(),
        "base": base.astype(int).tolist(),
        "reason": reason.tolist(),
        "score": [None if np.isnan(s) else float(s) for s in score],
        "rank": [None if np.isnan(r) else int(r) for r in rank],
    }


def _exclusion_hits(ranked: pd.DataFrame, scenario: Scenario) -> list[np.ndarray]:
    """Which plots meet each hard exclusion, as the scoring decides it."""
    hits = []
    for exclusion in scenario.exclusions:
        if exclusion.metric in ranked.columns:
            hits.append(np.asarray(exclusion_hits(ranked[exclusion.metric], exclusion)))
        else:
            # A plot-file column the table no longer holds: the scoring's reason tells.
            text = exclusion.reason_nb
            hits.append(ranked["status_reason_nb"].fillna("").str.contains(text, regex=False)
                        .to_numpy())
    return [np.array(h, dtype=bool) for h in hits]


def _json_for_script(data: Any) -> str:
    """JSON that is safe inside an HTML ``<script>`` (no ``</script>``, no ``<!--``)."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    for char, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                          ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(char, escaped)
    return text


def _asset(name: str) -> str:
    return (_ASSETS / name).read_text(encoding="utf-8")


class WeightsPanel(MacroElement):
    """Folium element: ``sitefinder.weights.init(map, spec)`` once the plot layers exist.

    Add it to the map after the plot layers (its script runs in the order added).
    """

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        sitefinder.weights.init({{ this._parent.get_name() }}, {{ this.spec }});
        {% endmacro %}
        """
    )

    def __init__(self, spec: Mapping[str, Any]) -> None:
        super().__init__()
        self._name = "SitefinderWeights"
        self.spec = _json_for_script(dict(spec))


def add_weights_panel(
    m: folium.Map,
    ranked: pd.DataFrame,
    scenario: Scenario | None,
    *,
    language: str = "nb",
    top_n: int = 10,
    public: bool = False,
    sensitive: Iterable[str] = ("existing_sites",),
    empty_layers: Iterable[str] | None = None,
) -> WeightsPanel | None:
    """Put the live weights panel into a folium map of ranked plots.

    Call it after the plot layers are added (``sitefinder.maps.write_map`` does). The
    panel's script and style are embedded, so online and offline maps both work with no
    network.

    Parameters
    ----------
    m : folium.Map
        The map, with sitefinder's plot layers already added.
    ranked : DataFrame
        The scored plots drawn on the map.
    scenario : Scenario or None
        The scenario that scored them. Without one, or when ``ranked`` lacks the columns
        it scored (see :func:`panel_spec`), there is nothing to re-score: no panel.
    language : {"nb", "en"}
        Language of the panel (the map's).
    top_n : int
        Plots labelled with their rank, and K of "entered or left the top K".
    public : bool
        A public map. A criterion measured from a sensitive layer would need its raw
        values in the page, which a public map must not hold: then there is no panel.
    sensitive : iterable of str
        Names of sensitive layers (as for ``write_map``).
    empty_layers : iterable of str, optional
        Layers with no feature (see :func:`panel_spec`).

    Returns
    -------
    WeightsPanel or None
        The element added, or None when no panel was added.
    """
    if scenario is None or _missing_columns(ranked, scenario):
        return None  # a table that was not scored by this scenario: the map without panel
    if public and _uses_sensitive(ranked, scenario, sensitive):
        return None
    spec = panel_spec(ranked, scenario, language=language, top_n=top_n,
                      empty_layers=empty_layers, public=public)
    header = m.get_root().header
    header.add_child(Element(f"<style>{_asset('weights_panel.css')}</style>"),
                     name="sf_weights_css")
    script = _asset("weights_panel.js").replace("</", "<\\/")
    header.add_child(Element(f"<script>{script}</script>"), name="sf_weights_js")
    panel = WeightsPanel(spec)
    m.add_child(panel)
    return panel


def _uses_sensitive(ranked: pd.DataFrame, scenario: Scenario, sensitive: Iterable[str]) -> bool:
    names = [s.lower() for s in sensitive if s] + ["existing"]
    used = [(n, scenario.criteria[n].metric) for n in _active_criteria(ranked, scenario)]
    return any(s in text.lower() for pair in used for text in pair for s in names)
