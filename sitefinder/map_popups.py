"""What a plot's popup says: criteria, measured values in words and numbers, status.

The popup itself is drawn in the browser by ``assets/sitefinder.js`` from the compact
per-plot properties built here (keys ``i`` id, ``n`` name, ``o`` owner, ``st``/``sl``
status and its label, ``re`` reason, ``s`` score text, ``k`` class, ``rk`` rank, ``e``
explanation, ``r``/``v`` measured and value per criterion, ``a`` area, ``x`` other
metrics), so every number here is already formatted for the reader's language by
:mod:`sitefinder.language`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from sitefinder.language import (
    fmt_distance,
    fmt_int,
    fmt_minutes,
    fmt_number,
    sentence,
    units_phrase,
)
from sitefinder.map_style import score_class
from sitefinder.map_text import (
    COUNT_LABELS,
    CRITERION_LABELS,
    METRIC_LABELS,
    STATUS_LABELS,
    TEXT,
    VALUE_LABELS,
)

__all__ = [
    "Criterion",
    "criteria_from_ranked",
    "format_raw",
    "hidden_criteria",
    "metric_label",
    "plot_properties",
    "resolve_criteria",
    "scenario_criteria",
]

# Criteria whose raw metric is not named after the criterion itself.
_RAW_ALIASES: dict[str, tuple[str, ...]] = {
    "screening": ("dwelling_dist_m",),
    "not_hidden": ("residential_dist_m",),
    "hidden": ("residential_dist_m",),
    "industrial": ("industrial_dist_m", "inside_industrial"),
    "industry": ("industrial_dist_m", "inside_industrial"),
}

#: Metric columns shown under the breakdown when no criterion uses them.
_RAW_PATTERN = re.compile(r"^(dist_.+_m|time_.+_min|count_.+|.+_dist_m|inside_.+)$")
_COUNT_RE = re.compile(r"^count_(?P<cat>.+)_(?P<n>\d+)min$")
_DIST_RE = re.compile(r"^(?:dist_(?P<a>.+)_m|(?P<b>.+)_dist_m)$")
_TIME_RE = re.compile(r"^time_(?P<cat>.+)_min$")
#: Counted things: people, homes, units and features are whole, never "8 694,67".
_WHOLE_RE = re.compile(r"^(count_.+|residents_.+|dwellings_.+|.+_units|units|exposure_index)$")


@dataclass(frozen=True)
class Criterion:
    """One scoring criterion as shown in popups and reports.

    Parameters
    ----------
    name : str
        Criterion key; its value column is ``value_<name>``.
    weight : float or None
        Weight in the scenario, None when unknown.
    raw_columns : tuple of str
        Raw metric columns shown for it (metres first, then minutes).
    label_nb, label_en : str, optional
        The scenario's own labels.

    """

    name: str
    weight: float | None
    raw_columns: tuple[str, ...]
    label_nb: str | None = None
    label_en: str | None = None

    def label(self, language: str = "nb") -> str:
        """Human-readable label in ``language`` ("nb" or "en")."""
        own = self.label_nb if language == "nb" else self.label_en
        if own:
            return own[:1].upper() + own[1:]  # scenario labels are written for sentences
        labels = CRITERION_LABELS.get(language, CRITERION_LABELS["en"])
        return labels.get(self.name, self.name.replace("_", " ").capitalize())


def scenario_criteria(scenario: Any) -> dict[str, Any]:
    """Weights, raw columns, labels and thresholds of a ``sitefinder.config.Scenario``.

    Returns a dict with keys ``weights``, ``raw_columns``, ``labels`` and ``thresholds``
    (criterion name → ``{"ideal": ..., "unacceptable": ...}`` as text with units), ready
    for :func:`sitefinder.maps.write_map` / :func:`sitefinder.report.write_report`.
    """
    weights, raws, labels, thresholds = {}, {}, {}, {}
    for name, c in scenario.criteria.items():
        weights[name] = float(c.weight)
        metric = str(c.metric)
        cols = [metric]
        if metric.startswith("dist_") and metric.endswith("_m"):
            cols.append("time_" + metric[len("dist_") : -len("_m")] + "_min")
        raws[name] = tuple(cols)
        labels[name] = (c.label_nb, c.label_en)
        unit = " m" if metric.endswith("_m") else " min" if metric.endswith("_min") else ""
        thresholds[name] = c.value.thresholds(unit)
    return {"weights": weights, "raw_columns": raws, "labels": labels, "thresholds": thresholds}


def criteria_from_ranked(
    ranked: pd.DataFrame,
    weights: Mapping[str, float] | None = None,
    raw_columns: Mapping[str, Sequence[str]] | None = None,
    labels: Mapping[str, tuple[str, str]] | None = None,
) -> list[Criterion]:
    """List the criteria of a ranked table with their weights and raw columns.

    Criteria are the ``value_<name>`` columns, in table order. Weights come from
    ``weights``, else ``ranked.attrs["weights"]``, else ``weight_<name>`` columns.

    Parameters
    ----------
    ranked : DataFrame
        Ranked plots following docs/CONTRACT.md.
    weights : mapping, optional
        Criterion name to weight.
    raw_columns : mapping, optional
        Criterion name to raw metric columns, overriding the name-based guess.
    labels : mapping, optional
        Criterion name to ``(label_nb, label_en)``.

    Returns
    -------
    list of Criterion

    """
    if weights is None:
        weights = ranked.attrs.get("weights") or {}
    out = []
    for col in ranked.columns:
        if str(col).startswith("value_"):
            name = str(col)[len("value_") :]
            nb, en = (labels or {}).get(name, (None, None))
            weight = _weight(ranked, name, weights)
            out.append(Criterion(name, weight, _raws(ranked, name, raw_columns), nb, en))
    return out


def _weight(ranked: pd.DataFrame, name: str, weights: Mapping[str, float]) -> float | None:
    weight = weights.get(name)
    if weight is None and f"weight_{name}" in ranked.columns:
        weight = float(pd.to_numeric(ranked[f"weight_{name}"]).dropna().iloc[0])
    return None if weight is None else float(weight)


def _raws(
    ranked: pd.DataFrame, name: str, raw_columns: Mapping[str, Sequence[str]] | None
) -> tuple[str, ...]:
    if raw_columns and name in raw_columns:
        return tuple(raw_columns[name])
    candidates = (f"dist_{name}_m", f"time_{name}_min", f"{name}_dist_m",
                  *_RAW_ALIASES.get(name, ()))
    return tuple(dict.fromkeys(c for c in candidates if c in ranked.columns))


def resolve_criteria(
    ranked: pd.DataFrame,
    scenario: Any,
    weights: Mapping[str, float] | None,
    raw_columns: Mapping[str, Sequence[str]] | None,
) -> tuple[dict, list[Criterion]]:
    """Criteria to show, from the scenario unless weights/raw columns are given explicitly.

    Returns the scenario's extracted settings (empty without a scenario) and the criteria.
    """
    from_scn = scenario_criteria(scenario) if scenario is not None else {}
    criteria = criteria_from_ranked(
        ranked,
        weights if weights is not None else from_scn.get("weights"),
        raw_columns if raw_columns is not None else from_scn.get("raw_columns"),
        from_scn.get("labels"),
    )
    return from_scn, criteria


def format_raw(column: str, value: Any, language: str = "nb") -> str:
    """Format one raw metric for people: ``"350 m"``, ``"1,2 km"``, ``"4,7 min"``, ``"nei"``.

    Parameters
    ----------
    column : str
        Column name; its name decides the unit (``_m``, ``_min``, ``_m2``, ``_db``) and
        whether it is a count (whole numbers: residents, dwellings, units, features).
    value : Any
        The value.
    language : {"nb", "en"}
        Output language.

    Returns
    -------
    str

    Examples
    --------
    >>> format_raw("residents_within_500m", 3315.63)
    '3\u202f316'
    >>> format_raw("noise_zone", "yellow")
    'gul'
    """
    t = TEXT[language]
    if isinstance(value, bool | np.bool_):
        return t["yes"] if value else t["no"]
    if isinstance(value, str):
        return VALUE_LABELS[language].get(value, value)
    x = _float(value)
    if x is None:
        return t["unreachable"] if column.endswith(("_m", "_min")) else "–"
    return _format_number(column, x, language)


def _float(value: Any) -> float | None:
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(x) else x


def _format_number(column: str, x: float, language: str) -> str:
    if column in ("capacity_units", "units"):
        return units_phrase(x, language)
    if _WHOLE_RE.match(column):
        return fmt_int(x, language)
    if column.endswith("_min"):
        return fmt_minutes(x, language)
    if column.endswith("_m2"):
        return f"{fmt_int(x, language)}\u00a0m²"
    if column.endswith("_m"):
        return fmt_distance(x, language)
    if column.endswith("_db"):
        return f"{fmt_int(x, language)}\u00a0dB"
    return fmt_number(x, 0 if x.is_integer() else 2, language)


def metric_label(column: str, language: str = "nb") -> str:
    """Readable label of a raw metric column, e.g. ``count_transit_10min``.

    Parameters
    ----------
    column : str
        Column name following docs/CONTRACT.md.
    language : {"nb", "en"}
        Output language.

    Returns
    -------
    str
        E.g. "Antall kollektivholdeplasser innen 10 min" / "Public transport stops
        within 10 min".

    """
    if column in METRIC_LABELS[language]:
        return METRIC_LABELS[language][column]
    labels = CRITERION_LABELS[language]
    if m := _COUNT_RE.match(column):
        cat, n = m.group("cat"), m.group("n")
        plural = COUNT_LABELS[language].get(cat, cat.replace("_", " "))
        if language == "nb":
            return f"Antall {plural} innen {n} min"
        return f"{plural[:1].upper()}{plural[1:]} within {n} min"
    if m := _DIST_RE.match(column):
        cat = m.group("a") or m.group("b")
        word = "avstand" if language == "nb" else "distance"
        return f"{labels.get(cat, cat.replace('_', ' '))} ({word})"
    if m := _TIME_RE.match(column):
        cat = m.group("cat")
        word = "gangtid" if language == "nb" else "walking time"
        return f"{labels.get(cat, cat.replace('_', ' '))} ({word})"
    return sentence(column.replace("_", " "))[:-1]


def hidden_criteria(
    ranked: pd.DataFrame, criteria: Sequence[Criterion], sensitive: Iterable[str], public: bool
) -> set[str]:
    """Criteria and columns derived from sensitive layers, hidden in public maps."""
    if not public:
        return set()
    sens = set(sensitive)
    hidden = {c.name for c in criteria
              if _is_sensitive(c.name, sens) or any(_is_sensitive(r, sens) for r in c.raw_columns)}
    return hidden | {str(c) for c in ranked.columns if _is_sensitive(str(c), sens)}


def _is_sensitive(column: str, sensitive: Iterable[str]) -> bool:
    col = column.lower()
    return any(s and s.lower() in col for s in sensitive) or "existing" in col


def plot_properties(
    ranked: pd.DataFrame,
    criteria: Sequence[Criterion],
    language: str,
    hidden: set[str],
    breaks: Sequence[float],
) -> list[dict[str, Any]]:
    """The compact popup properties of every plot, in ``ranked`` order.

    Parameters
    ----------
    ranked : DataFrame
        Ranked plots following docs/CONTRACT.md.
    criteria : sequence of Criterion
        Criteria shown in the breakdown table.
    language : {"nb", "en"}
        Output language.
    hidden : set of str
        Criteria and columns not to show (public maps).
    breaks : sequence of float
        Score class limits (:func:`sitefinder.map_style.class_breaks`).

    Returns
    -------
    list of dict

    """
    table = _Columns(ranked, criteria, language)
    return [_one_plot(table, i, criteria, language, hidden, breaks) for i in range(len(ranked))]


class _Columns:
    """Columns as lists, read once: per-cell access dominates the time for 5,000 plots."""

    def __init__(self, ranked: pd.DataFrame, criteria: Sequence[Criterion], language: str):
        n = len(ranked)
        used = {c for crit in criteria for c in crit.raw_columns}
        self.extra = [c for c in map(str, ranked.columns)
                      if _RAW_PATTERN.match(c) and c not in used]
        self.extra_labels = {c: metric_label(c, language) for c in self.extra}
        wanted = used | set(self.extra) | {f"value_{c.name}" for c in criteria} | {
            "plot_id", "name", "owner", "status", f"status_reason_{language}",
            f"explanation_{language}", "score", "rank", "area_m2"}
        self.cols = {c: ranked[c].tolist() for c in wanted if c in ranked.columns}
        if "plot_id" not in self.cols:
            self.cols["plot_id"] = [f"row-{i + 1}" for i in range(n)]
        self.language = language

    def get(self, column: str, i: int, default: Any = "") -> Any:
        values = self.cols.get(column)
        return default if values is None else values[i]


def _one_plot(
    table: _Columns,
    i: int,
    criteria: Sequence[Criterion],
    language: str,
    hidden: set[str],
    breaks: Sequence[float],
) -> dict[str, Any]:
    status = _text(table.get("status", i, "ok")) or "ok"
    score = table.get("score", i, None)
    raw, values = _breakdown(table, i, criteria, language, hidden)
    p: dict[str, Any] = {
        "i": _text(table.get("plot_id", i)),
        "n": _text(table.get("name", i)),
        "o": _text(table.get("owner", i)),
        "st": status,
        "sl": STATUS_LABELS[language].get(status, status),
        "re": sentence(_text(table.get(f"status_reason_{language}", i))),
        "s": fmt_number(score, 1, language),
        "k": score_class(score, breaks) if status == "ok" else -1,
        "e": _text(table.get(f"explanation_{language}", i)),
        "r": raw,
        "v": values,
    }
    area = table.get("area_m2", i, None)
    if _float(area) is not None:
        p["a"] = format_raw("area_m2", area, language)
    rank = table.get("rank", i, None)
    if _float(rank) is not None:
        p["rk"] = int(rank)
    extras = [[table.extra_labels[c], format_raw(c, table.get(c, i), language)]
              for c in table.extra if c not in hidden]
    if extras:
        p["x"] = extras
    return p


def _breakdown(
    table: _Columns, i: int, criteria: Sequence[Criterion], language: str, hidden: set[str]
) -> tuple[list[str], list[str]]:
    raw, values = [], []
    for crit in criteria:
        if crit.name in hidden:
            raw.append(TEXT[language]["hidden"])
            values.append("–")
            continue
        texts = [format_raw(c, table.get(c, i, None), language) for c in crit.raw_columns]
        raw.append(" · ".join(dict.fromkeys(texts)) or "–")
        values.append(fmt_number(table.get(f"value_{crit.name}", i, None), 2, language))
    return raw, values


def _text(x: Any) -> str:
    return "" if x is None or x is pd.NA or (isinstance(x, float) and math.isnan(x)) else str(x)
