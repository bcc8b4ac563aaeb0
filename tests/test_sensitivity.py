"""Sensitivity analysis: reproducibility, invariants of the Monte Carlo run, sweeps, comparison."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from scipy import stats  # noqa: E402

from sitefinder.errors import InputError  # noqa: E402
from sitefinder.sensitivity import (  # noqa: E402
    compare_rankings,
    dirichlet_concentration,
    monte_carlo,
    one_at_a_time,
    plot_rank_changes,
    plot_rank_intervals,
    rank_correlation,
    rank_scores,
    weighted_score,
)


def _problem(n=200, m=6, seed=0, levels=None, ineligible=0.1):
    """Random plots; ``levels`` draws values from a small set so exact ties are common."""
    rng = np.random.default_rng(seed)
    if levels is None:
        v = rng.random((n, m))
    else:
        v = rng.choice(np.asarray(levels, dtype=float), size=(n, m))
    ids = [f"p{i:04d}" for i in rng.permutation(n)]  # input order != plot_id order
    values = pd.DataFrame(
        v, index=pd.Index(ids, name="plot_id"), columns=[f"c{j}" for j in range(m)]
    )
    weights = pd.Series(rng.uniform(0.5, 3.0, m), index=values.columns)
    eligible = pd.Series(rng.random(n) >= ineligible, index=values.index)
    values[~eligible] = np.nan  # ineligible plots may be unmeasured: must not matter
    return values, weights, eligible


# --- deterministic scoring and ranking ----------------------------------------------------


def test_weighted_score_is_the_contract_formula():
    values, weights, eligible = _problem()
    got = weighted_score(values, weights)
    expected = 100 * (values * weights).sum(axis=1, skipna=False) / weights.sum()
    pd.testing.assert_series_equal(got, expected.rename("score"), rtol=1e-12)


def test_rank_scores_breaks_ties_by_plot_id_and_skips_ineligible():
    scores = pd.Series(
        [50.0 + 1e-12, 70.0, 50.0, 90.0, 50.0 - 1e-12, 99.0],
        index=["p3", "p2", "p10", "p5", "p1", "p9"],
    )
    eligible = pd.Series([True, True, True, True, True, False], index=scores.index)
    ranks = rank_scores(scores, eligible)
    assert str(ranks.dtype) == "Int64"
    # +-1e-12 points is a tie (floating-point noise); "p1" < "p10" < "p3" as text.
    assert ranks.dropna().to_dict() == {"p5": 1, "p2": 2, "p1": 3, "p10": 4, "p3": 5}
    assert ranks.isna().tolist() == [False] * 5 + [True]


def test_rank_scores_rejects_nan_for_eligible_plot():
    scores = pd.Series([1.0, np.nan], index=["a", "b"])
    with pytest.raises(InputError, match="no score") as err:
        rank_scores(scores)
    assert err.value.where == "plot_id 'b'"


# --- Monte Carlo ----------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["dirichlet", "uniform"])
def test_same_seed_same_result_other_seed_other_draws(method):
    values, weights, eligible = _problem()
    a = monte_carlo(values, weights, eligible, n_draws=200, method=method, seed=42)
    b = monte_carlo(values, weights, eligible, n_draws=200, method=method, seed=42)
    c = monte_carlo(values, weights, eligible, n_draws=200, method=method, seed=43)
    pd.testing.assert_frame_equal(a.table, b.table)
    np.testing.assert_array_equal(a.ranks, b.ranks)
    pd.testing.assert_frame_equal(a.draws, b.draws)
    assert not np.array_equal(a.draws.to_numpy(), c.draws.to_numpy())
    assert not np.array_equal(a.ranks, c.ranks)


@pytest.mark.parametrize("method", ["dirichlet", "uniform"])
@pytest.mark.parametrize("levels", [None, [0.0, 0.5, 1.0]])
def test_zero_spread_reproduces_the_deterministic_ranking(method, levels):
    values, weights, eligible = _problem(n=300, levels=levels)
    expected = rank_scores(weighted_score(values, weights), eligible)
    r = monte_carlo(values, weights, eligible, n_draws=25, spread=0.0, method=method, top_k=7)
    ranked = expected.dropna().astype(int)
    # every draw, every plot: exactly the deterministic rank
    per_draw = pd.DataFrame(r.ranks, index=r.weight_rank_corr.index)
    for col in per_draw:
        pd.testing.assert_series_equal(
            per_draw[col].astype(int), ranked.reindex(per_draw.index), check_names=False
        )
    t = r.table
    assert (t["rank"].dropna() == ranked.reindex(t["rank"].dropna().index)).all()
    ok = t[t["eligible"]]
    assert (ok["rank_p05"] == ok["rank"]).all() and (ok["rank_p95"] == ok["rank"]).all()
    assert set(ok["p_top_k"]) == {0.0, 1.0}
    assert (ok["p_top_k"] == (ok["rank"] <= 7)).all()
    assert (ok["sensitive_to"] == "").all()


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(min_value=1, max_value=60),
    m=st.integers(min_value=1, max_value=6),
    top_k=st.integers(min_value=1, max_value=15),
    method=st.sampled_from(["dirichlet", "uniform"]),
    tied=st.booleans(),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
)
def test_probabilities_are_shares_and_sum_to_k(n, m, top_k, method, tied, seed):
    values, weights, eligible = _problem(
        n=n, m=m, seed=seed, levels=[0.0, 1.0] if tied else None, ineligible=0.2
    )
    r = monte_carlo(values, weights, eligible, n_draws=50, method=method, top_k=top_k, seed=seed)
    p = r.table["p_top_k"]
    assert ((p >= 0) & (p <= 1)).all()
    n_ok = int(eligible.sum())
    assert p.sum() == pytest.approx(min(top_k, n_ok))
    assert (r.table.loc[~r.table["eligible"], "p_top_k"] == 0).all()
    # each draw is a permutation of 1..n_ok
    assert (np.sort(r.ranks, axis=0) == np.arange(1, n_ok + 1)[:, None]).all()
    ok = r.table[r.table["eligible"]]
    # rank quantiles are the inverted-CDF quantiles of the per-draw ranks
    rows = r.weight_rank_corr.index
    for col, q in (("rank_p05", 0.05), ("rank_median", 0.5), ("rank_p95", 0.95)):
        expected = np.quantile(r.ranks, q, axis=1, method="inverted_cdf")
        np.testing.assert_array_equal(ok[col].reindex(rows).to_numpy(dtype=float), expected)
    assert (ok["rank_p05"] <= ok["rank_median"]).all()
    assert (ok["rank_median"] <= ok["rank_p95"]).all()


@settings(max_examples=40, deadline=None)
@given(
    m=st.integers(min_value=1, max_value=8),
    method=st.sampled_from(["dirichlet", "uniform"]),
    seed=st.integers(min_value=0, max_value=2**32 - 1),
)
def test_a_dominated_plot_never_ranks_above_its_dominator(m, method, seed):
    rng = np.random.default_rng(seed)
    n = 40
    v = rng.random((n, m))
    # plot "z-dom" is worse than "a-top" on every criterion; its id sorts *first*, so a
    # wrong tie-break or a rounding slip would show up as the dominated plot winning
    top = rng.uniform(0.01, 1.0, m)
    v[0] = top
    v[1] = top - rng.uniform(1e-6, top)
    ids = ["z-top", "a-dominated"] + [f"p{i:03d}" for i in range(n - 2)]
    values = pd.DataFrame(v, index=ids, columns=[f"c{j}" for j in range(m)])
    weights = pd.Series(rng.uniform(0.1, 1.0, m), index=values.columns)
    r = monte_carlo(
        values,
        weights,
        n_draws=300,
        spread=0.8 if method == "uniform" else 0.5,
        method=method,
        seed=seed,
    )
    rows = r.weight_rank_corr.index
    assert (r.ranks[rows.get_loc("z-top")] < r.ranks[rows.get_loc("a-dominated")]).all()
    assert r.prob_better("z-top", "a-dominated") == 1.0


def test_exactly_identical_plots_tie_break_by_plot_id_in_every_draw():
    values, weights, _ = _problem(n=100, m=5, seed=3, ineligible=0)
    values.loc["p0007"] = values.loc["p0050"] = values.loc["p0003"]
    r = monte_carlo(values, weights, n_draws=300, seed=1)
    rows = r.weight_rank_corr.index
    a, b, c = (r.ranks[rows.get_loc(p)] for p in ("p0003", "p0007", "p0050"))
    assert ((b == a + 1) & (c == b + 1)).all()


def test_dirichlet_concentration_gives_the_relative_sd():
    w = np.full(8, 1 / 8)
    assert dirichlet_concentration(w, 0.2) == pytest.approx(7 / 0.04 - 1)
    values, _, _ = _problem(n=5, m=8, ineligible=0)
    weights = pd.Series(1.0, index=values.columns)
    r = monte_carlo(values, weights, n_draws=20000, spread=0.2, seed=0)
    rel_sd = r.draws.std() / r.draws.mean()
    np.testing.assert_allclose(rel_sd, 0.2, rtol=0.05)
    assert r.concentration == pytest.approx(174.0)
    # unequal weights: the root mean square of the relative sd is the spread
    uneven = pd.Series([4.0, 2.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5], index=values.columns)
    r = monte_carlo(values, uneven, n_draws=20000, spread=0.2, seed=0)
    rel_sd = r.draws.std() / r.base_weights
    assert np.sqrt(np.mean(rel_sd**2)) == pytest.approx(0.2, rel=0.05)
    with pytest.raises(InputError, match="too large"):
        dirichlet_concentration(w, 3.0)


def test_uniform_draws_stay_within_the_stated_band():
    values, weights, _ = _problem(n=5, m=4, ineligible=0)
    r = monte_carlo(values, weights, n_draws=5000, spread=0.2, method="uniform", seed=0)
    base = r.base_weights.to_numpy()
    ratios = r.draws.to_numpy() / base  # factor / (mean factor of the row)
    assert ratios.min() >= 0.8 / 1.2 - 1e-12 and ratios.max() <= 1.2 / 0.8 + 1e-12
    with pytest.raises(InputError, match="negative"):
        monte_carlo(values, weights, spread=1.5, method="uniform")


def test_zero_weight_criterion_stays_zero():
    values, weights, _ = _problem(n=30, m=4, ineligible=0)
    weights.iloc[2] = 0.0
    for method in ("dirichlet", "uniform"):
        r = monte_carlo(values, weights, n_draws=100, method=method, seed=0)
        assert (r.draws.iloc[:, 2] == 0).all()
        assert (r.weight_rank_corr.iloc[:, 2] == 0).all()
        np.testing.assert_allclose(r.draws.sum(axis=1), 1.0)


def test_sensitive_to_names_the_criterion_that_moves_the_plot():
    # "star" scores 100 * w0; the others 30 whatever the weights. At w0 = 0.3 it is a
    # coin toss whether "star" is first or last: its rank hangs on the weight of c0.
    plots = ["others-1", "others-2", "others-3", "star"]
    values = pd.DataFrame(
        [[0.3, 0.3, 0.3]] * 3 + [[1.0, 0.0, 0.0]], index=plots, columns=["c0", "c1", "c2"]
    )
    weights = pd.Series({"c0": 0.3, "c1": 0.35, "c2": 0.35})
    r = monte_carlo(values, weights, n_draws=2000, spread=0.2, top_k=1, seed=5)
    star = r.table.loc["star"]
    assert star["sensitive_to"] == "c0"
    assert star["sensitivity"] < -0.5  # more weight on c0 -> better (lower) rank
    assert 0.2 < star["p_top_k"] < 0.8
    assert star["rank_p05"] == 1 and star["rank_p95"] == 4
    assert r.prob_better("star", "others-1") == pytest.approx(star["p_top_k"])


def test_table_lists_every_plot_ranked_first_then_ineligible():
    values, weights, eligible = _problem(n=50)
    r = monte_carlo(values, weights, eligible, n_draws=20, seed=0)
    t = r.table
    assert set(t.index) == set(values.index) and len(t) == len(values)
    n_ok = int(eligible.sum())
    assert t["eligible"].iloc[:n_ok].all() and not t["eligible"].iloc[n_ok:].any()
    assert t["rank"].iloc[:n_ok].tolist() == list(range(1, n_ok + 1))
    assert t["rank"].iloc[n_ok:].isna().all()
    assert list(t.index[n_ok:]) == list(values.index[~eligible])


@pytest.mark.parametrize(
    ("change", "text"),
    [
        ({"weights": pd.Series({"c0": 1.0})}, "no weight for"),
        ({"weights": pd.Series({"c0": 1.0, "c1": 1.0, "cx": 1.0})}, "without values"),
        ({"weights": pd.Series({"c0": -1.0, "c1": 1.0})}, "non-negative"),
        ({"weights": pd.Series({"c0": 0.0, "c1": 0.0})}, "all weights are zero"),
        ({"n_draws": 0}, "n_draws"),
        ({"top_k": 0}, "top_k"),
        ({"method": "normal"}, "unknown method"),
        ({"spread": -0.1}, "non-negative"),
    ],
)
def test_monte_carlo_validation(change, text):
    values = pd.DataFrame({"c0": [0.1, 0.5], "c1": [0.9, 0.2]}, index=["a", "b"])
    args = {"weights": pd.Series({"c0": 1.0, "c1": 2.0})} | change
    weights = args.pop("weights")
    with pytest.raises(InputError, match=text):
        monte_carlo(values, weights, **args)


def test_bad_values_and_eligibility_are_named():
    values = pd.DataFrame({"c0": [0.1, np.nan], "c1": [0.9, 0.2]}, index=["a", "b"])
    weights = {"c0": 1.0, "c1": 1.0}
    with pytest.raises(InputError) as err:
        monte_carlo(values, weights)
    assert err.value.where == "plot_id 'b', criterion 'c0'"
    # the same plot, ineligible, is fine
    r = monte_carlo(values, weights, pd.Series([True, False], index=["a", "b"]), n_draws=5)
    assert r.table.loc["a", "p_top_k"] == 1.0
    with pytest.raises(InputError, match="same plot ids"):
        monte_carlo(values, weights, pd.Series([True], index=["a"]))
    values.loc["b", "c0"] = 1.5
    with pytest.raises(InputError, match=r"in \[0, 1\]"):
        monte_carlo(values, weights)
    dup = pd.DataFrame({"c0": [0.1, 0.2], "c1": [0.3, 0.4]}, index=["a", "a"])
    with pytest.raises(InputError, match="unique"):
        monte_carlo(dup, weights)


# --- one at a time ---------------------------------------------------------------------------


def test_one_at_a_time_grid_and_zero_step():
    values, weights, eligible = _problem(n=60, m=4)
    sweep = one_at_a_time(values, weights, eligible, steps=5, range=(-0.5, 0.5))
    n_ok = int(eligible.sum())
    assert len(sweep) == 4 * 5 * n_ok
    assert list(sweep.columns) == ["criterion", "change", "weight", "plot_id", "score", "rank"]
    assert sorted(sweep["change"].unique()) == pytest.approx([-0.5, -0.25, 0.0, 0.25, 0.5])
    base = rank_scores(weighted_score(values, weights), eligible).dropna()
    for crit, part in sweep[sweep["change"] == 0].groupby("criterion"):
        got = part.set_index("plot_id")["rank"]
        assert (got == base.reindex(got.index)).all(), crit
    w = weights / weights.sum()
    row = sweep[(sweep["criterion"] == "c1") & (sweep["change"] == 0.5)].iloc[0]
    expected = w["c1"] * 1.5 / (1 + 0.5 * w["c1"])
    assert row["weight"] == pytest.approx(expected)


def test_one_at_a_time_moves_the_specialist():
    values = pd.DataFrame(
        {"c0": [1.0, 0.5, 0.5], "c1": [0.0, 0.5, 0.5]}, index=["star", "even-1", "even-2"]
    )
    sweep = one_at_a_time(values, {"c0": 1.0, "c1": 1.1}, steps=3, range=(-0.5, 0.5))
    star = sweep[(sweep["plot_id"] == "star") & (sweep["criterion"] == "c0")]
    assert star.set_index("change")["rank"].to_dict() == {-0.5: 3, 0.0: 3, 0.5: 1}
    with pytest.raises(InputError, match="range"):
        one_at_a_time(values, {"c0": 1.0, "c1": 1.0}, range=(-1.5, 0.5))
    with pytest.raises(InputError, match="removes all weight"):
        one_at_a_time(values, {"c0": 1.0, "c1": 0.0}, steps=2, range=(-1.0, 0.0))


# --- comparing rankings ------------------------------------------------------------------------


def test_rank_correlation_extremes_and_alignment():
    a = pd.Series([1, 2, 3, 4, 5], index=list("abcde"))
    same = rank_correlation(a, a.sample(frac=1, random_state=0))  # order must not matter
    assert same.spearman == pytest.approx(1.0) and same.kendall == pytest.approx(1.0)
    rev = rank_correlation(a, pd.Series([5, 4, 3, 2, 1], index=list("abcde")))
    assert rev.spearman == pytest.approx(-1.0) and rev.kendall == pytest.approx(-1.0)
    partial = pd.Series([1, 2, pd.NA, 3], index=list("baxc"), dtype="Int64")
    r = rank_correlation(a, partial)
    assert r.n == 3
    assert r.spearman == pytest.approx(stats.spearmanr([1, 2, 3], [2, 1, 3]).statistic)
    tiny = rank_correlation(a, pd.Series([1, 2], index=["a", "b"]))
    assert tiny.n == 2 and np.isnan(tiny.spearman) and np.isnan(tiny.kendall_pvalue)


def test_rank_correlation_matches_scipy_on_ranked_frames():
    rng = np.random.default_rng(1)
    ids = [f"p{i}" for i in range(40)]
    fa = pd.DataFrame({"plot_id": ids, "rank": rng.permutation(40) + 1})
    fb = pd.DataFrame({"plot_id": ids[::-1], "rank": rng.permutation(40) + 1})
    r = rank_correlation(fa, fb)
    x = fa.set_index("plot_id")["rank"]
    y = fb.set_index("plot_id")["rank"].reindex(x.index)
    assert r.spearman == pytest.approx(stats.spearmanr(x, y).statistic)
    assert r.kendall == pytest.approx(stats.kendalltau(x, y).statistic)
    assert r.kendall_pvalue == pytest.approx(stats.kendalltau(x, y).pvalue)


def _ranked(rows):
    return pd.DataFrame(rows, columns=["plot_id", "score", "rank"]).astype({"rank": "Int64"})


def test_compare_rankings_on_hand_made_frames():
    base = _ranked([("A", 90, 1), ("B", 80, 2), ("C", 70, 3), ("D", 60, 4), ("E", None, None)])
    transit = _ranked([("C", 95, 1), ("A", 85, 2), ("D", 75, 3), ("B", 50, 4), ("E", None, None)])
    sandnes = _ranked([("B", 88, 1), ("A", 87, 2), ("E", 70, 3), ("C", None, None)])  # no D
    cmp = compare_rankings({"base": base, "transit": transit, "sandnes": sandnes}, top_k=2)

    assert list(cmp.index) == ["A", "B", "C", "D", "E"]
    assert cmp.index.name == "plot_id"
    assert cmp["rank"].loc["C"].tolist() == [3, 1, pd.NA]
    assert cmp[("score", "transit")].loc["B"] == 50
    assert cmp["rank_change"]["transit"].tolist() == [-1, -2, 2, 1, pd.NA]
    assert cmp["rank_change"]["sandnes"].tolist() == [-1, 1, pd.NA, pd.NA, pd.NA]
    assert cmp["top_k_change"]["transit"].tolist() == ["stays", "leaves", "enters", "", ""]
    assert cmp["top_k_change"]["sandnes"].tolist() == ["stays", "stays", "", "", ""]
    assert cmp["in_top_k"]["base"].tolist() == [True, True, False, False, False]
    assert "base" not in cmp["rank_change"].columns
    # the top K is exactly K plots in each scenario
    assert (cmp["in_top_k"].sum() == 2).all()


def test_compare_rankings_accepts_plot_id_index_and_checks_input():
    a = _ranked([("x", 1.0, 2), ("y", 2.0, 1)]).set_index("plot_id")
    b = _ranked([("y", 1.0, 2), ("x", 2.0, 1)])
    cmp = compare_rankings({"a": a, "b": b}, top_k=1)
    assert list(cmp.index) == ["y", "x"]
    assert cmp["top_k_change"]["b"].tolist() == ["leaves", "enters"]
    with pytest.raises(InputError, match="lacks column"):
        compare_rankings({"a": a.drop(columns="score")})
    with pytest.raises(InputError, match="no rankings"):
        compare_rankings({})
    with pytest.raises(InputError, match="twice"):
        compare_rankings({"a": pd.concat([b, b])})


# --- figures ----------------------------------------------------------------------------------


def _png(fig):
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def test_plot_rank_intervals_draws_the_top_n():
    values, weights, eligible = _problem(n=80)
    r = monte_carlo(values, weights, eligible, n_draws=100, seed=0)
    fig = plot_rank_intervals(r, top_n=12)
    assert isinstance(fig, Figure)
    ax, right = fig.axes
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == [str(i) for i in r.table.index[:12]]
    shares = [t.get_text() for t in right.get_yticklabels()]
    assert shares == [f"{p:.0%}" for p in r.table["p_top_k"].iloc[:12]]
    assert right.get_ylabel() == "P(topp 10)"
    assert "standardavvik 20%" in ax.get_title()
    assert _png(fig).startswith(b"\x89PNG")
    fig_en = plot_rank_intervals(
        monte_carlo(values, weights, eligible, n_draws=10, method="uniform", top_k=3), lang="en"
    )
    assert fig_en.axes[1].get_ylabel() == "P(top 3)"
    assert "(±20%)" in fig_en.axes[0].get_title()
    with pytest.raises(InputError, match="language"):
        plot_rank_intervals(r, lang="sv")


def test_plot_rank_changes_one_line_per_shown_plot():
    base = _ranked([("A", 90, 1), ("B", 80, 2), ("C", 70, 3), ("D", 60, 4)])
    other = _ranked([("C", 95, 1), ("A", 85, 2), ("D", 75, 3), ("B", 50, 4)])
    cmp = compare_rankings({"base": base, "transit": other}, top_k=2)
    fig = plot_rank_changes(cmp, top_n=2)
    assert isinstance(fig, Figure)
    (ax,) = fig.axes
    # plots in some scenario's top 2: A, B, C; one line each
    plot_lines = [line for line in ax.lines if line.get_gid()]
    assert sorted(line.get_gid() for line in plot_lines) == ["A", "B", "C"]
    colours = {line.get_color() for line in plot_lines}
    assert {"#2a9d4b", "#c0392b"} <= colours  # C climbs, A and B fall
    assert ax.get_title() == "base \u2192 transit"
    assert [t.get_text() for t in ax.get_yticklabels()] == ["A", "B", "C"]
    assert {t.get_text() for t in ax.texts} == {"-1", "-2", "+2"}
    assert _png(fig).startswith(b"\x89PNG")


def test_plot_rank_changes_one_panel_per_other_scenario():
    base = _ranked([("A", 90, 1), ("B", 80, 2), ("C", 70, 3)])
    other = _ranked([("C", 95, 1), ("A", 85, 2), ("B", None, None)])
    third = _ranked([("A", 95, 1), ("B", 85, 2), ("C", 80, 3)])
    cmp = compare_rankings({"base": base, "transit": other, "same": third}, top_k=2)
    fig = plot_rank_changes(cmp, top_n=3, lang="en")
    assert [ax.get_title() for ax in fig.axes] == ["base \u2192 transit", "base \u2192 same"]
    assert "not ranked" in {t.get_text() for t in fig.axes[0].texts}
    assert not fig.axes[1].texts  # nothing moved
    assert _png(fig).startswith(b"\x89PNG")
