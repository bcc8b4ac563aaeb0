"""The meeting report: the decision document, as ``report.html`` and ``report.pdf``.

One Jinja2 template (``templates/report.html.j2``) makes both files: the HTML is written
as rendered and the PDF is WeasyPrint's print of the very same HTML, so the two can never
say different things. Every word comes from ``templates/report_text.yaml`` (bokmål by
default, English with ``language="en"``) and every number and date from
:mod:`sitefinder.language`.

Order of the report: front page with the question and the answer (the chosen sites and
their units, or the best-ranked plots when nothing was chosen); summary; overview map;
one page per chosen site (close-up map with walking routes and noise zones, criteria in
words, why it was chosen); every plot in rank order and the plots not ranked with their
reasons; method; sensitivity to the weights; caveats; sources. Maps are drawn by
:mod:`sitefinder.static_maps` on a basemap from the study's own OSM extract.

Tables never leave a stray row alone on a page (their first and last rows are kept
together, the header repeats on every page) and no text is ever shortened: long names
and reasons wrap.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import geopandas as gpd
import jinja2
import numpy as np
import pandas as pd
import yaml
from matplotlib.figure import Figure

from sitefinder import static_maps
from sitefinder.errors import InputError
from sitefinder.language import (
    count_phrase,
    fmt_date,
    fmt_distance,
    fmt_int,
    fmt_minutes,
    fmt_number,
    fmt_percent,
    plots_phrase,
    sentence,
    units_phrase,
)
from sitefinder.maps import (
    CRITERION_LABELS,
    OSM_ATTRIBUTION,
    STATUS_LABELS,
    Criterion,
    resolve_criteria,
)
from sitefinder.outfolder import atomic_write, atomic_write_text
from sitefinder.routes import ROUTE_CATEGORIES  # the destinations a site page shows

__all__ = ["write_report", "report_text", "ROUTE_CATEGORIES"]

_TEMPLATES = Path(__file__).parent / "templates"
#: Draws of the weights for the sensitivity chart; seeded so a report is reproducible.
SENSITIVITY_DRAWS = 1000
_SENSITIVITY_SEED = 1
#: Rows at each end of a long table that are kept on one page (no row stands alone).
_KEEP_ROWS = 3


@cache
def report_text(language: str = "nb") -> dict[str, str]:
    """Every word of the report in ``language`` ("nb" or "en").

    Raises
    ------
    InputError
        For a language the report is not written in.
    """
    texts = yaml.safe_load((_TEMPLATES / "report_text.yaml").read_text(encoding="utf-8"))
    if language not in texts:
        raise InputError(f"unknown report language {language!r}", where="language",
                         hint="Use 'nb' (bokmål) or 'en' (English)")
    return texts[language]


# ------------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class _Focus:
    """The sites the report is about: chosen sites, else the best-ranked plots."""

    ids: list[str]
    units: dict[str, int]
    layouts: dict[str, Any]
    selected: bool


def _bool_column(frame: pd.DataFrame, name: str) -> pd.Series:
    if name not in frame.columns:
        return pd.Series(False, index=frame.index)
    return frame[name].fillna(False).astype(bool)


def _focus(ranked: gpd.GeoDataFrame, selection: gpd.GeoDataFrame | None,
           top_n: int) -> _Focus:
    layouts, units = _selection_parts(selection, ranked.crs)
    chosen = ranked[_bool_column(ranked, "selected")]
    if len(chosen):
        chosen = chosen.sort_values("score", ascending=False)
        units = {**units, **{p: int(u) for p, u in
                             zip(chosen["plot_id"], chosen.get("selected_units", 0),
                                 strict=True) if pd.notna(u)}}
        return _Focus(chosen["plot_id"].tolist(), units, layouts, True)
    if units:
        order = ranked[ranked["plot_id"].isin(units)].sort_values("score", ascending=False)
        return _Focus(order["plot_id"].tolist(), units, layouts, True)
    ok = ranked[ranked["status"] == "ok"]
    top = ok.assign(_r=pd.to_numeric(ok["rank"], errors="coerce")).sort_values("_r")
    return _Focus(top["plot_id"].head(top_n).tolist(), {}, layouts, False)


def _selection_parts(selection: gpd.GeoDataFrame | None,
                     crs: Any) -> tuple[dict[str, Any], dict[str, int]]:
    """Unit layouts and units per plot from a selection frame (one row per site or unit)."""
    if selection is None or not len(selection) or "plot_id" not in selection.columns:
        return {}, {}
    frame = selection.to_crs(crs) if selection.crs is not None else selection
    layouts = {pid: g.geometry.union_all() for pid, g in frame.groupby("plot_id", sort=False)}
    units = {}
    if "units" in frame.columns:
        units = {pid: int(u) for pid, u in frame.groupby("plot_id", sort=False)["units"].first()
                 .items() if pd.notna(u)}
    return layouts, units


def _text(x: Any) -> str:
    if x is None or x is pd.NA or (isinstance(x, float) and math.isnan(x)):
        return ""
    return str(x)


def _plot_name(row: Mapping[str, Any]) -> str:
    """``OSL-076 Eugéne Hanssens gate (2)``: id and name, never shortened."""
    pid, name = _text(row.get("plot_id")), _text(row.get("name"))
    return f"{pid} {name}" if name and name != pid else pid


def _score(x: Any, language: str) -> str:
    return fmt_number(x, 1, language)


def _hidden(criteria: Sequence[Criterion], sensitive: Iterable[str], public: bool) -> set[str]:
    """Criteria left out of a public report: those measured against a sensitive layer."""
    if not public:
        return set()
    sens = [s for s in sensitive if s]
    return {c.name for c in criteria
            if "existing" in c.name
            or any(s in c.name or any(s in r for r in c.raw_columns) for s in sens)}


# ------------------------------------------------------------------------------ numbers


def _measured(column: str, value: Any, t: Mapping[str, str], language: str) -> str:
    """One measured value in words and Norwegian (or English) number format."""
    if value is None or value is pd.NA:
        return "–"
    if isinstance(value, bool | np.bool_):
        return t["word_yes"] if value else t["word_no"]
    try:
        x = float(value)
    except (TypeError, ValueError):
        return str(value)
    if math.isnan(x):
        return "–"
    if column.endswith("_min"):
        return fmt_minutes(x, language)
    if column.endswith("_m"):
        return fmt_distance(x, language)
    if column.endswith("_db"):
        return f"{fmt_int(x, language)}\u00a0dB"
    if column == "capacity_units":
        return units_phrase(x, language)
    if column.startswith(("count_", "dwellings_within", "residents")):
        return fmt_int(x, language)
    return fmt_number(x, 0 if x.is_integer() else 1, language)


def _measured_cell(row: Mapping[str, Any], columns: Sequence[str], t: Mapping[str, str],
                   language: str) -> str:
    """``"250 m (3,3 min)"`` for a walk; the other metrics joined with a middle dot."""
    parts = [_measured(c, row.get(c), t, language) for c in columns if c in row]
    if len(parts) == 2 and columns[0].startswith("dist_") and columns[1].startswith("time_"):
        return parts[0] if parts[1] == "–" else f"{parts[0]} ({parts[1]})"
    return " · ".join(dict.fromkeys(parts)) or "–"


def _grade(value: Any, t: Mapping[str, str]) -> str:
    """A criterion value 0–1 in words: svært godt, godt, middels, svakt, uakseptabelt."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return t["grade_none"]
    if math.isnan(v):
        return t["grade_none"]
    for limit, key in ((0.95, "grade_best"), (0.7, "grade_good"), (0.4, "grade_fair")):
        if v >= limit:
            return t[key]
    return t["grade_weak"] if v > 0 else t["grade_bad"]


def _weight(w: float | None, language: str) -> str:
    if w is None:
        return "–"
    return fmt_number(w, 0 if float(w).is_integer() else 1, language)


def _list_words(words: Sequence[str], language: str) -> str:
    """``"a, b og c"`` / ``"a, b and c"``."""
    words = [w for w in words if w]
    if len(words) < 2:
        return "".join(words)
    return f"{', '.join(words[:-1])} {'og' if language == 'nb' else 'and'} {words[-1]}"


def _lower(label: str) -> str:
    # Criterion labels are capitalised for table cells; inside a sentence they are not,
    # unless the label starts with an abbreviation ("NAV", "T-1442").
    return label if label[:2].isupper() else label[:1].lower() + label[1:]


# ------------------------------------------------------------------------ front, summary


def _front(ranked: pd.DataFrame, focus: _Focus, t: Mapping[str, str], language: str,
           request: Mapping[str, int | None]) -> dict[str, Any]:
    by_id = ranked.set_index("plot_id", drop=False)
    items = []
    for pid in focus.ids:
        row = by_id.loc[pid]
        name = _place(row)
        score = _score(row.get("score"), language)
        if focus.selected:
            items.append(t["answer_item"].format(
                name=name, units=units_phrase(focus.units.get(pid, 0), language), score=score))
        else:
            items.append(t["answer_item_top"].format(name=name, score=score))
    question = [t["question"].format(plots=_cap(plots_phrase(len(ranked), language)))]
    if request.get("units"):
        question.append(t["request_units"].format(units=units_phrase(request["units"], language)))
    elif request.get("sites"):
        question.append(t["request_sites"].format(
            sites=count_phrase(request["sites"], "site", language)))
    if focus.selected:
        answer = t["answer_selected"].format(
            sites=count_phrase(len(focus.ids), "site", language),
            units=units_phrase(sum(focus.units.get(p, 0) for p in focus.ids), language))
    else:
        answer = t["answer_top"].format(n=len(focus.ids)) if focus.ids else t["answer_none"]
    return {"question": " ".join(question), "answer": answer, "items": items}


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _place(row: Mapping[str, Any]) -> str:
    district = _text(row.get("district"))
    return f"{_plot_name(row)}, {district}" if district else _plot_name(row)


def _summary(ranked: pd.DataFrame, focus: _Focus, sens: dict[str, Any] | None,
             t: Mapping[str, str], language: str) -> list[str]:
    ok = ranked["status"] == "ok"
    lines = [t["summary_counts"].format(total=plots_phrase(len(ranked), language),
                                        ranked=fmt_int(ok.sum(), language),
                                        not_ranked=fmt_int((~ok).sum(), language))]
    reasons = _common_reasons(ranked[~ok], language)
    if reasons:
        lines.append(t["summary_reasons"].format(reasons=reasons))
    focus_rows = ranked[ranked["plot_id"].isin(focus.ids)]
    if focus.selected:
        districts = sorted({_text(d) for d in focus_rows.get("district", []) if _text(d)})
        where = _list_words(districts, language) or "–"
        lines.append(t["summary_selected"].format(
            districts=where, units=units_phrase(sum(focus.units.values()), language)))
    walk = _walk_summary(focus_rows, focus.selected, t, language)
    if walk:
        lines.append(walk)
    best = ranked[ok].sort_values("rank").head(1)
    if len(best):
        row = best.iloc[0]
        lines.append(t["summary_best"].format(name=_plot_name(row),
                                              score=_score(row["score"], language)))
    if sens:
        lines.append(t["summary_robust"].format(
            stable=fmt_int(sens["stable"], language), n=fmt_int(len(focus.ids), language),
            k=fmt_int(sens["k"], language), share=fmt_percent(0.8, 0, language)))
    lines.append(t["summary_caveat"])
    return [sentence(x) for x in lines]


def _common_reasons(not_ranked: pd.DataFrame, language: str) -> str:
    statuses = STATUS_LABELS.get(language, STATUS_LABELS["en"])
    counts = not_ranked["status"].value_counts()
    parts = [f"{_lower(statuses.get(s, s))} ({fmt_int(n, language)})"
             for s, n in counts.head(3).items()]
    return _list_words(parts, language)


def _walk_summary(rows: pd.DataFrame, selected: bool, t: Mapping[str, str],
                  language: str) -> str:
    need = ("time_transit_min", "time_grocery_min")
    if not len(rows) or not all(c in rows.columns for c in need):
        return ""
    worst = [pd.to_numeric(rows[c], errors="coerce").max() for c in need]
    if any(pd.isna(w) for w in worst):
        return ""
    key = "summary_walk" if selected else "summary_walk_top"
    return t[key].format(transit=fmt_minutes(worst[0], language),
                         grocery=fmt_minutes(worst[1], language))


# ---------------------------------------------------------------------------- site pages


@dataclass
class _Ctx:
    """What every part of the report needs; built once in :func:`write_report`."""

    t: Mapping[str, str]
    language: str
    focus: _Focus
    criteria: list[Criterion]
    hidden: set[str]
    basemap: Any
    routes: gpd.GeoDataFrame | None
    noise: Mapping[str, gpd.GeoDataFrame]
    route_labels: dict[str, str]
    sens: dict[str, Any] | None




def _route_rows(row: Mapping[str, Any], routes: gpd.GeoDataFrame | None,
                labels: Mapping[str, str], t: Mapping[str, str],
                language: str) -> list[list[str]]:
    """Destination, nearest by name, distance and walking time per route category."""
    mine = routes[routes["plot_id"] == row["plot_id"]] if routes is not None and len(routes) \
        else None
    rows = []
    for cat in ROUTE_CATEGORIES:
        route = mine[mine["category"] == cat] if mine is not None else None
        if route is not None and len(route):
            r = route.iloc[0]
            rows.append([labels[cat], _text(r.get("target_name")) or "–",
                         fmt_distance(r["length_m"], language),
                         fmt_minutes(r["minutes"], language)])
        elif f"dist_{cat}_m" in row:
            rows.append([labels[cat], "–", _measured(f"dist_{cat}_m", row.get(f"dist_{cat}_m"),
                                                    t, language),
                         _measured(f"time_{cat}_min", row.get(f"time_{cat}_min"), t, language)])
    return rows


def _criteria_rows(row: Mapping[str, Any], criteria: Sequence[Criterion], hidden: set[str],
                   t: Mapping[str, str], language: str) -> list[list[str]]:
    rows = []
    for c in criteria:
        if c.name in hidden:
            continue
        rows.append([c.label(language), _measured_cell(row, c.raw_columns, t, language),
                     _grade(row.get(f"value_{c.name}"), t), _weight(c.weight, language)])
    return rows


def _why(row: Mapping[str, Any], n: int, focus: _Focus, criteria: Sequence[Criterion],
         hidden: set[str], sens: dict[str, Any] | None, n_ranked: int,
         t: Mapping[str, str], language: str) -> list[str]:
    pid = row["plot_id"]
    if focus.selected:
        lines = [t["why_selected"].format(units=units_phrase(focus.units.get(pid, 0), language))]
    else:
        lines = [t["why_top"].format(rank=fmt_int(row.get("rank"), language),
                                     n=fmt_int(n_ranked, language))]
    shown = [c for c in criteria if c.name not in hidden]
    values = {c.name: pd.to_numeric(row.get(f"value_{c.name}"), errors="coerce") for c in shown}
    strong = sorted((c for c in shown if values[c.name] >= 0.95),
                    key=lambda c: -(c.weight or 0))[:4]
    if strong:
        lines.append(t["why_strong"].format(
            labels=_list_words([_lower(c.label(language)) for c in strong], language)))
    weak = [c for c in shown if pd.notna(values[c.name]) and values[c.name] < 0.7]
    if weak:
        c = min(weak, key=lambda c: values[c.name])
        lines.append(t["why_weak"].format(label=_lower(c.label(language)),
                                          word=_grade(values[c.name], t)))
    if sens and pid in sens["p"]:
        lines.append(t["why_robust"].format(k=fmt_int(sens["k"], language),
                                            share=fmt_percent(sens["p"][pid], 0, language)))
    return [sentence(x) for x in lines]


def _route_labels(criteria: Sequence[Criterion], language: str) -> dict[str, str]:
    own = {c.name: c.label(language) for c in criteria}
    fallback = CRITERION_LABELS.get(language, CRITERION_LABELS["en"])
    return {cat: own.get(cat) or fallback.get(cat, cat) for cat in ROUTE_CATEGORIES}


def _site_map(row: Mapping[str, Any], ranked: gpd.GeoDataFrame, ctx: _Ctx) -> str:
    pid = row["plot_id"]
    mine = None
    if ctx.routes is not None and len(ctx.routes):
        mine = ctx.routes[ctx.routes["plot_id"] == pid]
    labels = {"plot": ctx.t["plot_legend"], "units": ctx.t["units_legend"]}
    if mine is not None:
        for _, r in mine.iterrows():
            cat = str(r["category"])
            labels[cat] = ctx.t["route_legend"].format(
                label=ctx.route_labels.get(cat, cat), minutes=fmt_minutes(r["minutes"],
                                                                          ctx.language))
    geom = row["geometry"]
    near = ranked[(ranked["plot_id"] != pid) & ranked.geometry.notna()]
    near = near[near.geometry.distance(geom) < 600] if geom is not None else near.iloc[:0]
    fig = static_maps.site_figure(ctx.basemap, geom, others=near, routes=mine,
                                  noise=ctx.noise, layout=ctx.focus.layouts.get(pid),
                                  labels=labels, language=ctx.language)
    return static_maps.figure_jpeg(fig)


def _site_pages(ranked: gpd.GeoDataFrame, ctx: _Ctx) -> list[dict[str, Any]]:
    t, language = ctx.t, ctx.language
    by_id = ranked.set_index("plot_id", drop=False)
    n_ranked = int((ranked["status"] == "ok").sum())
    key = "site_selected_h" if ctx.focus.selected else "site_top_h"
    pages = []
    for n, pid in enumerate(ctx.focus.ids, start=1):
        row = by_id.loc[pid]
        facts = [(t["plot_id"], _text(pid)), (t["score"], _score(row.get("score"), language)),
                 (t["rank"], fmt_int(row.get("rank"), language))]
        if _text(row.get("district")):
            facts.insert(1, (t["district"], _text(row.get("district"))))
        if ctx.focus.selected:
            facts.append((t["units"], units_phrase(ctx.focus.units.get(pid, 0), language)))
        pages.append({
            "heading": t[key].format(n=n, name=_plot_name(row)), "facts": facts,
            "map": _site_map(row, ranked, ctx),
            "routes": _route_rows(row, ctx.routes, ctx.route_labels, t, language),
            "criteria": _groups(_criteria_rows(row, ctx.criteria, ctx.hidden, t, language)),
            "why": _why(row, n, ctx.focus, ctx.criteria, ctx.hidden, ctx.sens, n_ranked, t,
                        language),
        })
    return pages


# ------------------------------------------------------------------------------- tables


def _groups(rows: list[list[str]]) -> list[dict[str, Any]]:
    """Row groups of a table: the first and last few kept on one page, the rest free.

    With the repeated header this means no page holds a lone row of a table.
    """
    if len(rows) <= 3 * _KEEP_ROWS:
        return [{"keep": True, "rows": rows}]
    k = _KEEP_ROWS
    return [{"keep": True, "rows": rows[:k]}, {"keep": False, "rows": rows[k:-k]},
            {"keep": True, "rows": rows[-k:]}]


def _ranked_table(ranked: pd.DataFrame, focus: _Focus, t: Mapping[str, str],
                  language: str) -> dict[str, Any]:
    ok = ranked[ranked["status"] == "ok"]
    ok = ok.assign(_r=pd.to_numeric(ok["rank"], errors="coerce")).sort_values("_r")
    has_district = "district" in ranked.columns
    header = [t["rank"], t["plot_id"], t["name"]] + ([t["district"]] if has_district else [])
    header += [t["score"], t["units"]] + ([t["selected"]] if focus.selected else [])
    rows = []
    for _, r in ok.iterrows():
        pid = r["plot_id"]
        units = focus.units.get(pid) if pid in focus.ids else r.get("capacity_units")
        cells = [fmt_int(r["rank"], language), _text(pid), _text(r.get("name"))]
        cells += [_text(r.get("district"))] if has_district else []
        cells += [_score(r.get("score"), language), fmt_int(units, language)]
        if focus.selected:
            cells.append(t["word_yes"] if pid in focus.ids else "")
        rows.append(cells)
    return {"header": header, "groups": _groups(rows), "n": len(rows)}


def _not_ranked_table(ranked: pd.DataFrame, t: Mapping[str, str],
                      language: str) -> dict[str, Any]:
    statuses = STATUS_LABELS.get(language, STATUS_LABELS["en"])
    rows = []
    for _, r in ranked[ranked["status"] != "ok"].iterrows():
        status = str(r.get("status"))
        rows.append([_text(r.get("plot_id")), _text(r.get("name")), statuses.get(status, status),
                     sentence(_text(r.get(f"status_reason_{language}")))])
    header = [t["plot_id"], t["name"], t["status"], t["reason"]]
    return {"header": header, "groups": _groups(rows), "n": len(rows)}


# ------------------------------------------------------------------------------- method


def _unit_text(metric: str, x: float, language: str) -> str:
    if metric.endswith("_m"):
        return fmt_distance(x, language)
    if metric.endswith("_min"):
        return fmt_minutes(x, language)
    if metric.endswith("_db"):
        return f"{fmt_int(x, language)}\u00a0dB"
    return fmt_number(x, 0 if float(x).is_integer() else 1, language)


def _value_function(spec: Any, t: Mapping[str, str], language: str) -> str:
    """A criterion's value function in words, with Norwegian numbers."""
    v, metric = spec.value, str(spec.metric)

    def u(x: float) -> str:
        return _unit_text(metric, x, language)

    if v.kind == "linear":
        key = "vf_linear_low" if v.ideal < v.unacceptable else "vf_linear_high"
        return t[key].format(ideal=u(v.ideal), bad=u(v.unacceptable))
    if v.kind == "window":
        return t["vf_window"].format(low=u(v.ideal_from), high=u(v.ideal_to),
                                     bad_low=u(v.unacceptable_below),
                                     bad_high=u(v.unacceptable_above))
    points = "; ".join(f"{u(x)} → {fmt_number(y, 0 if float(y).is_integer() else 1, language)}"
                       for x, y in v.points)
    return t["vf_piecewise"].format(points=points)


_SECTION = re.compile(r"§\s*\d+(?:\.\d+)*")


def _source_text(source: str, t: Mapping[str, str]) -> str:
    """``"SINTEF 2021 §6.6, §8; antakelse"``: the report's sections behind a criterion."""
    lower = source.lower()
    parts = [s.replace(" ", "") for s in dict.fromkeys(_SECTION.findall(source))]
    if "introduction" in lower or "innledning" in lower:
        parts.append(t["introduction"])
    if "appendix" in lower or "vedlegg" in lower:
        parts.append(t["appendix"])
    if "t-1442" in lower:
        parts.append("T-1442")
    text = f"SINTEF 2021 {', '.join(parts)}" if parts else ""
    if "assum" in lower or not parts:
        text = f"{text}; {t['assumption']}" if text else t["assumption"]
    return text


def _method_rows(criteria: Sequence[Criterion], hidden: set[str], scenario: Any,
                 thresholds: Mapping[str, Any], t: Mapping[str, str],
                 language: str) -> list[list[str]]:
    specs = scenario.criteria if scenario is not None else {}
    rows = []
    for c in criteria:
        if c.name in hidden:
            continue
        spec = specs.get(c.name)
        if spec is not None:
            vf, source = _value_function(spec, t, language), _source_text(spec.source, t)
        else:
            th = thresholds.get(c.name) or {}
            vf = " / ".join(str(th[k]) for k in ("ideal", "unacceptable") if k in th) or "–"
            source = t["assumption"]
        rows.append([c.label(language), _weight(c.weight, language), vf, source])
    return rows


def _assumed_labels(criteria: Sequence[Criterion], hidden: set[str], scenario: Any,
                    language: str) -> list[str]:
    if scenario is None:
        return []
    return [_lower(c.label(language)) for c in criteria
            if c.name not in hidden and c.name in scenario.criteria
            and "assum" in scenario.criteria[c.name].source.lower()]


# -------------------------------------------------------------------------- sensitivity


def _sensitivity(ranked: pd.DataFrame, criteria: Sequence[Criterion], focus: _Focus,
                 result: Any) -> dict[str, Any] | None:
    """Probability that each focus site stays in the top K when the weights vary."""
    if result is None:
        result = _run_sensitivity(ranked, criteria, focus)
    if result is None:
        return None
    table = result.table
    p = {pid: float(table.loc[pid, "p_top_k"]) for pid in focus.ids if pid in table.index}
    return {"p": p, "k": int(result.top_k), "n_draws": int(result.n_draws),
            "spread": float(result.spread), "stable": sum(v >= 0.8 for v in p.values())}


def _run_sensitivity(ranked: pd.DataFrame, criteria: Sequence[Criterion],
                     focus: _Focus) -> Any:
    from sitefinder.sensitivity import monte_carlo

    weighted = [c for c in criteria if c.weight is not None]
    eligible = ranked["status"] == "ok"
    if len(weighted) < 2 or len(weighted) < len(criteria) or eligible.sum() < 2 or not focus.ids:
        return None
    values = ranked.set_index("plot_id")[[f"value_{c.name}" for c in weighted]]
    values.columns = [c.name for c in weighted]
    # Ranked plots have every value; a gap (a criterion joined after measuring) counts as 0.
    values = values.astype(float).fillna(0.0)
    weights = pd.Series({c.name: c.weight for c in weighted}, dtype=float)
    k = min(max(10, 2 * len(focus.ids)), int(eligible.sum()))
    return monte_carlo(values, weights, eligible.set_axis(values.index),
                       n_draws=SENSITIVITY_DRAWS, top_k=k, seed=_SENSITIVITY_SEED)


def _sensitivity_chart(sens: dict[str, Any], ranked: pd.DataFrame, focus: _Focus,
                       t: Mapping[str, str], language: str) -> str:
    by_id = ranked.set_index("plot_id", drop=False)
    ids = [p for p in focus.ids if p in sens["p"]]
    labels = [f"{i}. {_plot_name(by_id.loc[p])}" for i, p in enumerate(ids, start=1)]
    values = [sens["p"][p] for p in ids]
    fig = Figure(figsize=(7.0, 0.42 * len(ids) + 0.9))
    ax = fig.add_axes((0.42, 0.9 / (0.42 * len(ids) + 0.9), 0.5, 1 - 1.2 / (0.42 * len(ids) + 0.9)))
    y = np.arange(len(ids))[::-1]
    ax.barh(y, values, color="#0072B2", height=0.6)
    for yi, v in zip(y, values, strict=True):
        ax.text(min(v + 0.02, 0.86), yi, fmt_percent(v, 0, language), va="center", fontsize=8,
                color="black" if v < 0.86 else "white", ha="left")
    ax.set_yticks(y, labels, fontsize=8)
    ax.set_xlim(0, 1)
    ax.set_xticks([0, 0.25, 0.5, 0.75, 1], [fmt_percent(x, 0, language)
                                            for x in (0, 0.25, 0.5, 0.75, 1)], fontsize=7)
    ax.axvline(0.8, color="#555555", lw=0.8, ls="--")
    ax.set_xlabel(t["sensitivity_axis"].format(k=fmt_int(sens["k"], language)), fontsize=8)
    ax.spines[["top", "right"]].set_visible(False)
    return static_maps.figure_png(fig, dpi=150, tight=True)


# ---------------------------------------------------------------------- caveats, sources


def _caveats(ranked: pd.DataFrame, criteria: Sequence[Criterion], hidden: set[str],
             scenario: Any, notes: Sequence[str], demo: bool, public: bool,
             t: Mapping[str, str], language: str) -> list[str]:
    out = []
    if "noise_is_proxy" in ranked.columns and _bool_column(ranked, "noise_is_proxy").any():
        out.append(t["caveat_noise"])
    if demo:
        out.append(t["caveat_demo"])
    assumed = _assumed_labels(criteria, hidden, scenario, language)
    if assumed:
        out.append(t["caveat_assumptions"].format(labels=_list_words(assumed, language)))
    out += list(notes)
    out.append(t["caveat_map"])
    if public:
        out.append(t["caveat_public"])
    return [sentence(x) for x in out]


def _sources(sources: Sequence[Mapping[str, str]], t: Mapping[str, str],
             language: str) -> list[list[str]]:
    rows = [[t["report_source"], "2021", ""]]
    for s in sources:
        rows.append([_text(s.get("name")), _date(s.get("date"), language),
                     _text(s.get("licence"))])
    return rows


def _date(value: Any, language: str) -> str:
    text = _text(value)
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}.*", text):
        try:
            return fmt_date(text[:10], language)
        except ValueError:
            return text
    return text


# ---------------------------------------------------------------------------- screening


def _screening(screening: Any, basemap: Any, t: Mapping[str, str],
               language: str) -> dict[str, Any] | None:
    """Section for a screening of the whole area: map and table of its best areas.

    ``screening`` is a :class:`sitefinder.screen.ScreenResult`, or any object with an
    ``areas`` GeoDataFrame (best first) holding ``area_id``, ``best_score``, ``area_m2``
    and optionally ``district`` and ``reasons_nb`` / ``reasons_en``.
    """
    areas = getattr(screening, "areas", None) if screening is not None else None
    if areas is None or not len(areas):
        return None
    if basemap is not None and areas.crs is not None:
        areas = areas.to_crs(basemap.crs)
    rows = []
    for i, (_, a) in enumerate(areas.iterrows(), start=1):
        area = a.get("area_m2", a.geometry.area)
        rows.append([fmt_int(i, language), _text(a.get("area_id")) or fmt_int(i, language),
                     _text(a.get("district")), _score(a.get("best_score"), language),
                     f"{fmt_number(float(area) / 10_000, 1, language)}\u00a0ha",
                     sentence(_text(a.get(f"reasons_{language}")))])
    fig = static_maps.areas_figure(basemap, areas, t["screening_legend"], language)
    return {"text": t["screening_text"].format(n=len(rows)), "map": static_maps.figure_jpeg(fig),
            "header": [t["rank"], t["screening_area"], t["district"], t["score"],
                       t["area_size"], t["reason"]], "groups": _groups(rows)}


# ------------------------------------------------------------------------------ writing


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(_TEMPLATES),
        autoescape=True,  # every name and reason is text, never markup
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def _write_pdf(html: str, path: Path) -> Path:
    import weasyprint

    pdf = weasyprint.HTML(string=html, base_url=str(_TEMPLATES)).write_pdf()
    return atomic_write(path, lambda f: f.write(pdf))


def _check(ranked: Any, language: str) -> gpd.GeoDataFrame:
    report_text(language)  # an unknown language fails here, before any drawing
    if not isinstance(ranked, gpd.GeoDataFrame) or ranked.crs is None:
        raise InputError("the ranked plots must be a GeoDataFrame with a CRS",
                         hint="Pass the GeoDataFrame returned by Study.score or sitefinder.run")
    if ranked.crs.is_geographic:
        ranked = ranked.to_crs(ranked.estimate_utm_crs())
    if "status" not in ranked.columns:
        ranked = ranked.assign(status="ok")
    return ranked


def write_report(
    ranked: gpd.GeoDataFrame,
    out_dir: str | Path,
    *,
    top_n: int = 5,
    selection: gpd.GeoDataFrame | None = None,
    basemap: static_maps.Basemap | None = None,
    routes: gpd.GeoDataFrame | None = None,
    noise_zones: Mapping[str, gpd.GeoDataFrame] | None = None,
    sensitivity: Any = None,
    screening: Any = None,
    request: Mapping[str, int | None] | None = None,
    weights: Mapping[str, float] | None = None,
    raw_columns: Mapping[str, Sequence[str]] | None = None,
    thresholds: Mapping[str, Any] | None = None,
    sources: Sequence[Mapping[str, str]] | None = None,
    language: str = "nb",
    public: bool = False,
    demo: bool = False,
    sensitive: Iterable[str] = ("existing_sites",),
    title: str | None = None,
    stem: str = "report",
    scenario: Any = None,
    layers: Any = None,
    isochrones: Any = None,
    attribution: Any = None,
) -> tuple[Path, Path]:
    """Write the meeting report as HTML and as a PDF printed from the same HTML.

    Parameters
    ----------
    ranked : GeoDataFrame
        Ranked plots as in docs/CONTRACT.md (after a selection with ``selected`` and
        ``selected_units``).
    out_dir : str or Path
        Folder for ``<stem>.html`` and ``<stem>.pdf`` (created when missing).
    top_n : int
        Best-ranked plots given a page when no sites were selected.
    selection : GeoDataFrame, optional
        Chosen sites: ``plot_id``, ``units`` and the unit layout as geometry (one row per
        site or per unit). Without ``selected`` in ``ranked``, these are the chosen sites.
    basemap : sitefinder.static_maps.Basemap, optional
        Basemap from the OSM extract (:func:`sitefinder.static_maps.basemap_for_study`);
        without it the maps show the plots on a plain ground.
    routes : GeoDataFrame, optional
        Walking routes (``plot_id``, ``category``, ``target_name``, ``length_m``,
        ``minutes``, LineString), as from ``sitefinder.routes.walking_routes``.
    noise_zones : mapping of str to GeoDataFrame, optional
        Noise zones by legend label (yellow zone first), drawn on the site maps.
    sensitivity : sitefinder.sensitivity.SensitivityResult, optional
        Weight sensitivity; computed here (1,000 seeded draws) when not given.
    screening : sitefinder.screen.ScreenResult, optional
        A screening of the whole area; its best areas (``areas``) get a section with a map
        and a table. Any object with such an ``areas`` GeoDataFrame will do.
    request : mapping, optional
        ``{"units": 12}`` or ``{"sites": 4}``: what was asked of the selection.
    weights, raw_columns : mapping, optional
        As in :func:`sitefinder.maps.criteria_from_ranked` (the scenario's by default).
    thresholds : mapping, optional
        Criterion → ``{"ideal": ..., "unacceptable": ...}`` text, used for the method when
        no scenario is given.
    sources : sequence of mapping, optional
        Data sources with ``name``, ``date`` (ISO) and ``licence``; default
        ``ranked.attrs["sources"]``.
    language : {"nb", "en"}
        Report language.
    public : bool
        Leave out criteria measured against sensitive layers.
    demo : bool
        The plots are the illustrative demo plots (said in the caveats).
    sensitive : iterable of str
        Names of sensitive layers.
    title : str, optional
        Report title.
    stem : str
        File name stem.
    scenario : Scenario, optional
        Weights, labels, value functions and sources of the criteria.
    layers, isochrones, attribution
        Accepted for callers of the earlier report and ignored: the site maps show walking
        routes instead of isochrones and thematic layers, and the basemap carries its
        credit.

    Returns
    -------
    tuple of Path
        ``(html_path, pdf_path)``.

    Raises
    ------
    InputError
        If ``ranked`` is not a GeoDataFrame with a CRS, or ``language`` is unknown.
    """
    del layers, isochrones, attribution  # see above: kept for compatibility only
    ranked = _check(ranked, language)
    html = render_report(
        ranked, top_n=top_n, selection=selection, basemap=basemap, routes=routes,
        noise_zones=noise_zones, sensitivity=sensitivity, screening=screening,
        request=request, weights=weights, raw_columns=raw_columns, thresholds=thresholds,
        sources=sources, language=language, public=public, demo=demo, sensitive=sensitive,
        title=title, scenario=scenario,
    )
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    html_path = atomic_write_text(out / f"{stem}.html", html)
    pdf_path = _write_pdf(html, out / f"{stem}.pdf")
    return html_path, pdf_path


def render_report(ranked: gpd.GeoDataFrame, *, top_n: int, selection: Any, basemap: Any,
                  routes: Any, noise_zones: Any, sensitivity: Any, screening: Any,
                  request: Any, weights: Any, raw_columns: Any, thresholds: Any,
                  sources: Any, language: str, public: bool, demo: bool,
                  sensitive: Iterable[str], title: str | None, scenario: Any) -> str:
    """The report's HTML (see :func:`write_report` for the parameters)."""
    t = report_text(language)
    from_scn, criteria = resolve_criteria(ranked, scenario, weights, raw_columns)
    thresholds = thresholds or from_scn.get("thresholds") or ranked.attrs.get("thresholds", {})
    hidden = _hidden(criteria, sensitive, public)
    focus = _focus(ranked, selection, top_n)
    if routes is not None and len(routes) and routes.crs is not None:
        routes = routes.to_crs(ranked.crs)
    noise = {k: v.to_crs(ranked.crs) for k, v in (noise_zones or {}).items()
             if v is not None and len(v)}
    sens = _sensitivity(ranked, criteria, focus, sensitivity)
    ctx = _Ctx(t, language, focus, criteria, hidden, basemap, routes, noise,
               _route_labels(criteria, language), sens)
    notes = list(selection.attrs.get(f"notes_{language}", [])) if selection is not None else []
    notes += list(ranked.attrs.get(f"data_warnings_{language}", []))
    overview = static_maps.overview_figure(
        basemap, ranked, focus.ids, {
            "ranked": t["legend_ranked"], "not_ranked": t["legend_not_ranked"],
            "marked": t["legend_selected"] if focus.selected else t["legend_top"]},
        language)
    return _environment().get_template("report.html.j2").render(
        t=t, language=language, title=title or t["title"], public=public,
        made=t["made"].format(date=fmt_date(None, language)),
        front=_front(ranked, focus, t, language, request or {}),
        summary=_summary(ranked, focus, sens, t, language),
        overview=static_maps.figure_jpeg(overview),
        overview_caption=t["overview_caption"].format(
            what=t["what_selected"] if focus.selected else t["what_top"]),
        sites=_site_pages(ranked, ctx),
        routes_caption=t["routes_caption"].format(targets=_list_words(
            [_lower(ctx.route_labels[c]) for c in ROUTE_CATEGORIES], language)),
        ranked_table=_ranked_table(ranked, focus, t, language),
        not_ranked=_not_ranked_table(ranked, t, language),
        method_rows=_groups(_method_rows(criteria, hidden, scenario, thresholds, t, language)),
        sensitivity=sens and {
            "chart": _sensitivity_chart(sens, ranked, focus, t, language),
            "text": t["sensitivity_text"].format(
                draws=fmt_int(sens["n_draws"], language), k=fmt_int(sens["k"], language),
                spread=fmt_percent(sens["spread"], 0, language))},
        caveats=_caveats(ranked, criteria, hidden, scenario, notes, demo, public, t, language),
        sources=_groups(_sources(
            sources if sources is not None else ranked.attrs.get("sources", []), t, language)),
        attribution=OSM_ATTRIBUTION,
        screening=_screening(screening, basemap, t, language),
    )
