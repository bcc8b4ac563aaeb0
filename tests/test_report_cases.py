"""Replay the sites the SINTEF 2021 report judges through the default scenario.

``tests/data/report_cases.yaml`` holds one metrics row per site the report judges (Bodø,
Rana, Melhus, Ringsaker, Senja, Trondheim, Stord, Sandnes, Bærum, Asker, Drammen …), the
verdict the report implies (best, good, mixed, bad), the status sitefinder must give, the
Norwegian quotes behind it, and which values are the report's and which are assumptions.

The tests check that the shipped default scenario

(a) gives every case its expected status (``ok`` or ``excluded``);
(b) orders the cases as the report does: every *best* ≥ every *good* > every *mixed* >
    every *bad* by score, an excluded case counting as below every ok case;
(c) keeps the pairwise facts the report states outright (Bodø above Senja; Ringsaker's
    8-unit cluster below the same surroundings with 3 units …).

The cases encode what the report says; they are not tuned to the scenario. A pair that
cannot hold by construction (the report judges a site better than one that stays ok, but
the defaults exclude it) is marked as an expected failure naming the conflict, so the
tension stays visible; docs/CRITERIA.md lists these conflicts.
"""

from __future__ import annotations

from itertools import product
from pathlib import Path

import pandas as pd
import pytest
import yaml

CASES_FILE = Path(__file__).parent / "data" / "report_cases.yaml"

#: The metric columns of a case row, in the order the scorer's table has them.
METRIC_COLUMNS: tuple[str, ...] = (
    "dist_transit_m",
    "dist_grocery_m",
    "dist_pharmacy_m",
    "dist_health_m",
    "dist_meeting_m",
    "dist_nature_m",
    "dist_centre_m",
    "drug_scene_dist_m",
    "exposure_index",
    "dwelling_dist_m",
    "dwellings_within_25m",
    "dwellings_within_50m",
    "residential_dist_m",
    "sensitive_dist_m",
    "industrial_dist_m",
    "inside_industrial",
    "road_lden_db",
    "rail_lden_db",
    "capacity_units",
)
#: Every column of a case row.
ROW_COLUMNS: tuple[str, ...] = (
    "plot_id",
    "status",
    "status_reason_nb",
    "status_reason_en",
    *METRIC_COLUMNS,
    "network_reach",
)
TEXT_COLUMNS = ("plot_id", "status", "status_reason_nb", "status_reason_en", "network_reach")
BOOL_COLUMNS = ("inside_industrial",)

VERDICT_LEVEL = {"bad": 0, "mixed": 1, "good": 2, "best": 3}
STATUSES = ("ok", "excluded")
CONFIDENCE = ("high", "medium", "low")


def _load() -> dict:
    return yaml.safe_load(CASES_FILE.read_text(encoding="utf-8"))


DATA = _load()
CASES: list[dict] = DATA["cases"]
PAIRS: list[dict] = DATA["pairs"]
BASELINE: dict = DATA["baseline"]
BY_ID: dict[str, dict] = {case["id"]: case for case in CASES}
CASE_IDS = [case["id"] for case in CASES]


# --------------------------------------------------------------------------- the file


def test_case_ids_are_unique():
    seen: set[str] = set()
    doubles = [i for i in CASE_IDS if i in seen or seen.add(i)]
    assert not doubles, f"case ids used twice: {doubles}"


@pytest.mark.parametrize("case_id", CASE_IDS)
def test_case_is_well_formed(case_id):
    case = BY_ID[case_id]
    problems = []
    if not case.get("municipality"):
        problems.append("no municipality")
    verdict = case.get("verdict")
    if verdict is None:
        if case.get("counterfactual_of") not in BY_ID:
            problems.append("verdict is null but counterfactual_of names no case")
    elif verdict not in VERDICT_LEVEL:
        problems.append(f"verdict {verdict!r} is not one of {list(VERDICT_LEVEL)}")
    if case.get("expected_status") not in STATUSES:
        problems.append(f"expected_status {case.get('expected_status')!r} not in {STATUSES}")
    if case.get("confidence") not in CONFIDENCE:
        problems.append(f"confidence {case.get('confidence')!r} not in {CONFIDENCE}")
    quotes = case.get("quotes") or []
    if not quotes:
        problems.append("no quotes")
    for i, quote in enumerate(quotes):
        if not (isinstance(quote, dict) and quote.get("nb") and quote.get("ref")):
            problems.append(f"quote {i} needs both `nb` (the Norwegian text) and `ref`")
    metrics = case.get("metrics") or {}
    if metrics.get("plot_id") != case_id:
        problems.append(f"metrics.plot_id {metrics.get('plot_id')!r} differs from the id")
    if metrics.get("status") != "ok":
        problems.append("metrics.status must be 'ok' (the scorer decides exclusions)")
    assert not problems, f"case {case_id}: " + "; ".join(problems)


@pytest.mark.parametrize("case_id", CASE_IDS)
def test_metrics_row_has_exactly_the_columns(case_id):
    row = BY_ID[case_id].get("metrics") or {}
    missing = [c for c in ROW_COLUMNS if c not in row]
    extra = [c for c in row if c not in ROW_COLUMNS]
    assert not missing, f"case {case_id}: metrics row lacks columns {missing}"
    assert not extra, f"case {case_id}: metrics row has unknown columns {extra}"


@pytest.mark.parametrize("case_id", CASE_IDS)
def test_every_value_is_a_fact_or_a_documented_assumption(case_id):
    case = BY_ID[case_id]
    facts = case.get("facts") or {}
    assumptions = case.get("assumptions") or {}
    both = sorted(set(facts) & set(assumptions))
    neither = [c for c in METRIC_COLUMNS if c not in facts and c not in assumptions]
    unknown = sorted((set(facts) | set(assumptions)) - set(METRIC_COLUMNS))
    assert not both, f"case {case_id}: {both} are both a fact and an assumption"
    assert not neither, f"case {case_id}: {neither} are neither a fact nor a documented assumption"
    assert not unknown, f"case {case_id}: facts/assumptions name unknown columns {unknown}"
    empty = [c for c, why in {**facts, **assumptions}.items() if not str(why or "").strip()]
    assert not empty, f"case {case_id}: {empty} have no reason given"
    # An assumption that says "baseline" must hold the baseline value.
    row = case["metrics"]
    off = [
        f"{c}={row.get(c)!r} (baseline {BASELINE[c]!r})"
        for c, why in assumptions.items()
        if str(why).startswith("baseline") and row.get(c) != BASELINE[c]
    ]
    assert not off, f"case {case_id}: marked baseline but not the baseline value: {off}"


@pytest.mark.parametrize("pair", PAIRS, ids=lambda p: f"{p['higher']}>{p['lower']}")
def test_pair_names_known_cases(pair):
    unknown = [pair[k] for k in ("higher", "lower") if pair[k] not in BY_ID]
    assert not unknown, f"pair names unknown cases {unknown}"
    assert pair.get("ref") and pair.get("because"), "a pair needs `ref` and `because`"


# --------------------------------------------------------------------------- scoring


def case_table() -> pd.DataFrame:
    """The cases as one metrics table (one row per case, indexed like the input)."""
    incomplete = {
        case["id"]: [c for c in ROW_COLUMNS if c not in (case.get("metrics") or {})]
        for case in CASES
    }
    incomplete = {k: v for k, v in incomplete.items() if v}
    if incomplete:
        pytest.fail(
            "report cases with missing metric columns: "
            + "; ".join(f"{k} lacks {v}" for k, v in incomplete.items())
        )
    table = pd.DataFrame([case["metrics"] for case in CASES], columns=list(ROW_COLUMNS))
    for column in ROW_COLUMNS:
        if column in BOOL_COLUMNS:
            table[column] = table[column].astype(bool)
        elif column not in TEXT_COLUMNS:
            table[column] = pd.to_numeric(table[column]).astype(float)
    return table


@pytest.fixture(scope="module")
def scored() -> pd.DataFrame:
    """The cases scored with the shipped default scenario, indexed by case id."""
    from sitefinder.config import default_scenario
    from sitefinder.score import score_metrics

    out = score_metrics(case_table(), default_scenario(), explain=False)
    return out.set_index("plot_id", drop=False)


def _describe(scored: pd.DataFrame, case_id: str) -> str:
    row = scored.loc[case_id]
    values = {
        c.removeprefix("value_"): round(float(row[c]), 2)
        for c in scored.columns
        if c.startswith("value_") and pd.notna(row[c])
    }
    reason = f" ({row['status_reason_en']})" if row["status_reason_en"] else ""
    return f"{case_id}: status {row['status']}{reason}, score {row['score']:.1f}, values {values}"


@pytest.mark.parametrize("case_id", CASE_IDS)
def test_status_is_what_the_report_implies(scored, case_id):
    case = BY_ID[case_id]
    got = scored.loc[case_id, "status"]
    assert got == case["expected_status"], (
        f"case {case_id} ({case['municipality']}, verdict {case['verdict']}): expected status "
        f"{case['expected_status']}, got {got}. {_describe(scored, case_id)}"
    )


#: Scores closer than this are a tie for the non-strict "best ≥ good" comparison.
TIE_POINTS = 0.5


def _above(scored: pd.DataFrame, higher: str, lower: str, *, strict: bool) -> bool:
    """Whether ``higher`` comes out above ``lower``: ok beats excluded, else the score."""
    hi, lo = scored.loc[higher], scored.loc[lower]
    hi_ok, lo_ok = hi["status"] == "ok", lo["status"] == "ok"
    if hi_ok != lo_ok:
        return hi_ok
    if not hi_ok:
        pytest.skip(f"{higher} and {lower} are both {hi['status']}: no order between them")
    if strict:
        return bool(hi["score"] > lo["score"])
    # "best ≥ good": both are sites the report praises, and most of their distances are
    # assumed (± a few hundred metres), so scores within TIE_POINTS count as a tie.
    return bool(hi["score"] >= lo["score"] - TIE_POINTS)


def _verdict_pairs() -> list:
    params = []
    judged = [c for c in CASES if c.get("verdict") in VERDICT_LEVEL]
    for hi, lo in product(judged, judged):
        h, lv = VERDICT_LEVEL[hi["verdict"]], VERDICT_LEVEL[lo["verdict"]]
        if h <= lv:
            continue
        if hi["expected_status"] == "excluded" and lo["expected_status"] == "excluded":
            continue  # two excluded cases: the report's order is not a score order
        marks = []
        if hi["expected_status"] == "excluded":
            # The report judges `hi` better than `lo`, but the defaults exclude `hi` while
            # `lo` stays ok: this pair cannot hold. Kept visible as an expected failure.
            conflict = "; ".join(hi.get("conflicts") or []) or "excluded by the defaults"
            marks.append(
                pytest.mark.xfail(
                    strict=True,
                    reason=f"report vs defaults: the report judges {hi['id']} "
                    f"{hi['verdict']} but it is expected excluded – {conflict}",
                )
            )
        strict = not (hi["verdict"] == "best" and lo["verdict"] == "good")
        params.append(
            pytest.param(hi["id"], lo["id"], strict, marks=marks, id=f"{hi['id']}>{lo['id']}")
        )
    return params


@pytest.mark.parametrize(("higher", "lower", "strict"), _verdict_pairs())
def test_verdict_order(scored, higher, lower, strict):
    relation = ">" if strict else "≥"
    assert _above(scored, higher, lower, strict=strict), (
        f"the report judges {higher} ({BY_ID[higher]['verdict']}) {relation} {lower} "
        f"({BY_ID[lower]['verdict']}), but\n  {_describe(scored, higher)}\n  "
        f"{_describe(scored, lower)}"
    )


@pytest.mark.parametrize(
    ("higher", "lower"),
    [pytest.param(p["higher"], p["lower"], id=f"{p['higher']}>{p['lower']}") for p in PAIRS],
)
def test_pairwise_fact_from_the_report(scored, higher, lower):
    pair = next(p for p in PAIRS if p["higher"] == higher and p["lower"] == lower)
    assert _above(scored, higher, lower, strict=True), (
        f"the report puts {higher} above {lower} ({pair['ref']}: {pair['because'].strip()}), "
        f"but\n  {_describe(scored, higher)}\n  {_describe(scored, lower)}"
    )
