"""How stable is a ranking? Weight perturbation, one-at-a-time sweeps and scenario comparison.

Politicians ask "how sure are we that plot 17 is really better than plot 23?". This module
answers from the criterion values alone (no network, no geometry), so it runs in seconds
on a whole municipality:

* :func:`monte_carlo` redraws the weights many times (Dirichlet around the weights, or
  independent ``±spread`` factors), re-ranks every eligible plot per draw and reports per
  plot the probability of being in the top K, the 5-95 % rank interval, the median rank
  and the criterion whose weight moves the plot most;
* :func:`one_at_a_time` changes one weight at a time over a range and records every
  plot's rank at every step;
* :func:`rank_correlation` and :func:`compare_rankings` compare two or more rankings;
* :func:`plot_rank_intervals` and :func:`plot_rank_changes` draw figures for a report.

The scoring model is the one in ``docs/CONTRACT.md``: for eligible plot *i*,
``score_i = 100 * sum_j w_j v_ij / sum_j w_j``; rank 1 is the highest score, ties broken
by ``plot_id`` ascending. :func:`weighted_score` and :func:`rank_scores` implement exactly
that and are the same arithmetic the Monte Carlo run uses, so a run with ``spread=0``
reproduces the deterministic ranking exactly.

Two implementation choices make that "exactly" hold:

* Scores are accumulated criterion by criterion (``S += w_j * v_j``) instead of with a BLAS
  matrix product. Elementwise IEEE arithmetic gives bit-identical scores for identical
  plots whatever their position in the array (BLAS kernels may round the edges of a block
  differently), and it is monotone: a plot at least as good on every criterion never
  scores lower. Value functions saturate at 0 and 1, so exactly tied plots are common.
* Scores are compared on a grid of 1e-9 points (``round(score * 1e9)``). Two scores that
  agree to within floating-point noise of the summation order are a tie, broken by
  ``plot_id``, as the contract says; 1e-9 points is far below any difference that matters.
  The rounded score and the plot's position in ``plot_id`` order are packed into one
  int64 key, so a single unstable (fast, SIMD) argsort per draw gives the ranks.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, NamedTuple

import numpy as np
import pandas as pd

from sitefinder.errors import InputError
from sitefinder.parallel import usable_cpus

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "RankCorrelation",
    "SensitivityResult",
    "compare_rankings",
    "dirichlet_concentration",
    "monte_carlo",
    "one_at_a_time",
    "plot_rank_changes",
    "plot_rank_intervals",
    "rank_correlation",
    "rank_scores",
    "weighted_score",
]

#: Scores closer than this (in points on the 0-100 scale) are ties.
SCORE_QUANTUM = 1e-9
_KEY_SCALE = 1.0 / SCORE_QUANTUM
# Draws are processed in blocks of about this many (draw, plot) cells, so the
# temporary arrays (score, key, order) stay within a few tens of MB at any size.
_BLOCK_CELLS = 1 << 21
_MAX_THREADS = 8

Method = Literal["dirichlet", "uniform"]


# ---------------------------------------------------------------------------------------
# Deterministic scoring and ranking
# ---------------------------------------------------------------------------------------


def weighted_score(values: pd.DataFrame, weights: pd.Series | Mapping[str, float]) -> pd.Series:
    """Weighted total score ``100 * sum_j w_j v_ij / sum_j w_j`` of every plot.

    Parameters
    ----------
    values : pandas.DataFrame
        Criterion values in [0, 1]; index = plot_id, columns = criteria.
    weights : pandas.Series or mapping
        Non-negative weight per criterion (same criteria as ``values``), not all zero.

    Returns
    -------
    pandas.Series
        Score per plot on the 0-100 scale, aligned with ``values.index``; NaN where the
        plot has a NaN value (an ineligible plot).

    """
    criteria, w = _check_weights(values, weights)
    vt = np.ascontiguousarray(values.to_numpy(dtype=float).T)
    scores = _scores(vt, w[None, :])[0]
    return pd.Series(scores, index=values.index, name="score")


def rank_scores(scores: pd.Series, eligible: pd.Series | None = None) -> pd.Series:
    """Rank plots by score: 1 = highest, ties (within 1e-9 points) broken by plot_id.

    Parameters
    ----------
    scores : pandas.Series
        Score per plot, index = plot_id.
    eligible : pandas.Series of bool, optional
        Which plots are ranked (status ``ok``); same index as ``scores``. Default: all.

    Returns
    -------
    pandas.Series
        ``Int64`` rank per plot, aligned with ``scores.index``; missing (``<NA>``) for
        plots that are not eligible.

    """
    mask = _check_eligible(scores.index, eligible)
    s = scores.to_numpy(dtype=float)
    bad = mask & ~np.isfinite(s)
    if bad.any():
        raise InputError(
            "an eligible plot has no score (NaN)",
            where=f"plot_id {scores.index[np.flatnonzero(bad)[0]]!r}",
            hint="Only plots with status 'ok' should be marked eligible",
        )
    idx = np.flatnonzero(mask)
    ids = scores.index[idx]
    by_id = _argsort_ids(ids)
    ranks = _ranks(s[idx][by_id][None, :])[0]
    out = np.zeros(len(scores), dtype=np.int64)
    out[idx[by_id]] = ranks
    result = pd.Series(out, index=scores.index, name="rank").astype("Int64")
    result[~mask] = pd.NA
    return result


# ---------------------------------------------------------------------------------------
# Monte Carlo weight perturbation
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SensitivityResult:
    """Outcome of :func:`monte_carlo`.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per input plot (index ``plot_id``), in deterministic rank order, then the
        ineligible plots in input order. Columns: ``eligible``; ``score`` and ``rank`` at
        the given weights; ``p_top_k`` (share of draws in which the plot is in the top K,
        0 for ineligible plots); ``rank_p05``, ``rank_median``, ``rank_p95`` (rank
        quantiles over the draws, ``Int64``); ``rank_mean``; ``sensitive_to`` (the criterion
        whose drawn weight correlates most with the plot's rank, "" when the rank never
        changes) and ``sensitivity`` (that correlation: negative means more weight on the
        criterion gives the plot a better, i.e. lower, rank).
    weight_rank_corr : pandas.DataFrame
        Pearson correlation over the draws between each criterion's weight (columns) and
        each eligible plot's rank (index); 0 where either does not vary.
    draws : pandas.DataFrame
        The drawn weights, normalised to sum 1 (one row per draw).
    base_weights : pandas.Series
        The given weights, normalised to sum 1.
    ranks : numpy.ndarray
        ``int32`` array (eligible plots x draws) of the rank in every draw; rows follow
        ``weight_rank_corr.index``.
    top_k, n_draws : int
    spread : float
    method : str
    concentration : float or None
        Dirichlet concentration used (None for the uniform method or zero spread).
    seed : int or None

    """

    table: pd.DataFrame
    weight_rank_corr: pd.DataFrame
    draws: pd.DataFrame
    base_weights: pd.Series
    ranks: np.ndarray
    top_k: int
    n_draws: int
    spread: float
    method: str
    concentration: float | None
    seed: int | None

    def prob_better(self, a: object, b: object) -> float:
        """Share of draws in which plot ``a`` ranks above (better than) plot ``b``.

        Parameters
        ----------
        a, b : plot_id
            Two eligible plots.

        Returns
        -------
        float
            In [0, 1]; answers "how sure are we that plot a is better than plot b?".

        """
        index = self.weight_rank_corr.index
        rows = []
        for p in (a, b):
            if p not in index:
                raise InputError(f"plot {p!r} is not an eligible plot of this run")
            rows.append(index.get_loc(p))
        return float(np.mean(self.ranks[rows[0]] < self.ranks[rows[1]]))


def dirichlet_concentration(weights: np.ndarray | pd.Series, spread: float) -> float:
    """Dirichlet concentration giving weights a relative standard deviation of ``spread``.

    For ``W ~ Dirichlet(c * w)`` with ``sum(w) = 1``, ``sd(W_j) / w_j =
    sqrt((1 - w_j) / (w_j * (c + 1)))``. No single ``c`` gives every criterion the same
    relative sd (small weights vary relatively more), so ``c`` is chosen so that the
    *root mean square* of the relative sd over the criteria with positive weight equals
    ``spread``: ``c = mean((1 - w_j) / w_j) / spread**2 - 1``. With equal weights every
    criterion then has relative sd exactly ``spread`` (8 equal criteria, spread 0.2:
    c = 174).

    Parameters
    ----------
    weights : array-like
        Non-negative weights (normalised internally); zero weights are ignored.
    spread : float
        Target relative standard deviation, > 0.

    Returns
    -------
    float
        The concentration ``c`` (> 0).

    Raises
    ------
    sitefinder.errors.InputError
        ``spread`` is so large that no positive concentration achieves it.

    """
    w = np.asarray(weights, dtype=float)
    w = w[w > 0] / w.sum()
    if len(w) < 2:
        return math.inf  # one criterion: the normalised weight is always 1
    ratio = float(np.mean((1.0 - w) / w))
    c = ratio / spread**2 - 1.0
    if not c > 0:
        limit = math.sqrt(ratio)
        raise InputError(
            f"spread {spread:g} is too large for a Dirichlet draw around these weights",
            where="spread",
            hint=f"Use a spread below {limit:.2f}, or method='uniform'",
        )
    return c


def monte_carlo(
    values: pd.DataFrame,
    weights: pd.Series | Mapping[str, float],
    eligible: pd.Series | None = None,
    *,
    n_draws: int = 1000,
    spread: float = 0.2,
    method: Method = "dirichlet",
    top_k: int = 10,
    seed: int | np.random.Generator | None = None,
) -> SensitivityResult:
    """Rank stability under random weight perturbation.

    Parameters
    ----------
    values : pandas.DataFrame
        Criterion values in [0, 1]; index = plot_id (unique), columns = criteria.
    weights : pandas.Series or mapping
        Non-negative weight per criterion (same set as ``values.columns``), not all zero.
    eligible : pandas.Series of bool, optional
        Plots that are ranked (status ``ok``), same index as ``values``. Default: all.
        Eligible plots must not have NaN values.
    n_draws : int, default 1000
        Number of weight draws.
    spread : float, default 0.2
        Size of the perturbation. ``"dirichlet"``: target relative standard deviation of
        the weights (see :func:`dirichlet_concentration`). ``"uniform"``: every weight is
        multiplied by an independent factor uniform in ``[1 - spread, 1 + spread]``
        ("±20 %"; relative sd ``spread / sqrt(3)``), 0 <= spread <= 1. ``0`` reproduces
        the deterministic ranking in every draw.
    method : {"dirichlet", "uniform"}, default "dirichlet"
        Dirichlet draws stay on the simplex and treat the weights as shares of one
        budget; uniform factors are the "±x %" a planner states.
    top_k : int, default 10
        K in "probability of being in the top K".
    seed : int or numpy.random.Generator, optional
        Seed for reproducible draws.

    Returns
    -------
    SensitivityResult
        Per-plot table, weight-rank correlations, drawn weights and all ranks.

    Notes
    -----
    Criteria with weight 0 keep weight 0 in every draw. Dirichlet weights are negatively
    correlated with each other (they sum to 1), so ``sensitive_to`` reads "raising this
    weight at the expense of the others moves the plot most".

    Cost is one pass over (draws x plots) per criterion plus one argsort per draw;
    1,000 draws on 10,000 plots and 8 criteria take about 1.5-2 s on 2 cores (see
    ``benchmarks/bench_sensitivity.py``).

    """
    if n_draws < 1:
        raise InputError(f"n_draws must be at least 1, got {n_draws}", where="n_draws")
    if top_k < 1:
        raise InputError(f"top_k must be at least 1, got {top_k}", where="top_k")
    if not (math.isfinite(spread) and spread >= 0):
        raise InputError(f"spread must be a non-negative number, got {spread}", where="spread")
    if method not in ("dirichlet", "uniform"):
        raise InputError(
            f"unknown method {method!r}", where="method", hint="Use 'dirichlet' or 'uniform'"
        )
    criteria, w = _check_weights(values, weights)
    mask = _check_eligible(values.index, eligible)
    ids, vt = _eligible_block(values, criteria, mask)
    n, m = len(ids), len(criteria)

    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    draws, concentration = _draw_weights(w, n_draws, spread, method, rng)

    # Ranks per draw, block by block (bounded memory); accumulate the weight-rank
    # cross products for the correlations on the way.
    ranks = np.empty((n_draws, n), dtype=np.int32)
    w_std = draws.std(axis=0)
    w_z = np.divide(draws - draws.mean(axis=0), w_std, out=np.zeros_like(draws), where=w_std > 0)
    block = max(1, _BLOCK_CELLS // max(n, 1))
    starts = list(np.arange(0, n_draws, block))

    def run_block(start: int) -> np.ndarray:
        stop = min(start + block, n_draws)
        r = _ranks(_scores(vt, draws[start:stop]))
        ranks[start:stop] = r  # disjoint slices: safe from several threads
        # sum_d z_dj * (r_di - mean_i) == sum_d z_dj * r_di because sum_d z_dj == 0.
        return w_z[start:stop].T @ r

    # numpy releases the GIL in its sort and elementwise loops, so threads use the
    # machine's cores (2 on CI) without copying the data to other processes.
    workers = min(len(starts), usable_cpus(), _MAX_THREADS)
    if workers > 1:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            parts = list(pool.map(run_block, starts))
    else:
        parts = [run_block(start) for start in starts]
    cross = np.sum(parts, axis=0) if parts else np.zeros((m, n))
    base_scores = _scores(vt, w[None, :])
    base_rank = _ranks(base_scores)[0]

    by_plot = np.sort(ranks.T, axis=1)  # (plots, draws), sorted ranks of each plot
    k = min(top_k, n)
    p_top = (ranks <= k).mean(axis=0)
    # Inverted-CDF quantiles (the smallest rank r with P(rank <= r) >= q): integer ranks.
    q_idx = [max(0, math.ceil(q * n_draws) - 1) for q in (0.05, 0.5, 0.95)]
    r05, r50, r95 = (by_plot[:, i] for i in q_idx)
    r_mean = by_plot.mean(axis=1)
    r_std = by_plot.std(axis=1)
    corr = np.divide(
        cross.T / n_draws, r_std[:, None], out=np.zeros((n, m)), where=r_std[:, None] > 0
    )
    strongest = np.argmax(np.abs(corr), axis=1)
    strength = corr[np.arange(n), strongest]
    moved = np.abs(strength) > 0
    crit_arr = np.array(criteria, dtype=object)

    id_index = pd.Index(ids, name="plot_id")
    elig = pd.DataFrame(
        {
            "eligible": True,
            "score": base_scores[0],
            "rank": base_rank,
            "p_top_k": p_top,
            "rank_p05": r05,
            "rank_median": r50,
            "rank_p95": r95,
            "rank_mean": r_mean,
            "sensitive_to": np.where(moved, crit_arr[strongest], ""),
            "sensitivity": np.where(moved, strength, 0.0),
        },
        index=id_index,
    ).sort_values("rank")
    rest_ids = values.index[~mask]
    rest = pd.DataFrame(
        {
            "eligible": False,
            "score": np.nan,
            "rank": np.nan,
            "p_top_k": 0.0,
            "rank_p05": np.nan,
            "rank_median": np.nan,
            "rank_p95": np.nan,
            "rank_mean": np.nan,
            "sensitive_to": "",
            "sensitivity": np.nan,
        },
        index=pd.Index(rest_ids, name="plot_id"),
    )
    table = pd.concat([elig, rest]) if len(rest) else elig
    for col in ("rank", "rank_p05", "rank_median", "rank_p95"):
        table[col] = table[col].astype("Int64")
    table["eligible"] = table["eligible"].astype(bool)

    return SensitivityResult(
        table=table,
        weight_rank_corr=pd.DataFrame(corr, index=id_index, columns=pd.Index(criteria)),
        draws=pd.DataFrame(draws, columns=pd.Index(criteria)),
        base_weights=pd.Series(w, index=pd.Index(criteria), name="weight"),
        ranks=np.ascontiguousarray(ranks.T),
        top_k=top_k,
        n_draws=n_draws,
        spread=spread,
        method=method,
        concentration=concentration,
        seed=seed if isinstance(seed, int) else None,
    )


# ---------------------------------------------------------------------------------------
# One-at-a-time sweeps
# ---------------------------------------------------------------------------------------


def one_at_a_time(
    values: pd.DataFrame,
    weights: pd.Series | Mapping[str, float],
    eligible: pd.Series | None = None,
    *,
    steps: int = 11,
    range: tuple[float, float] = (-0.5, 0.5),  # shadows the builtin: the promised API name
) -> pd.DataFrame:
    """Rank of every plot when one criterion's weight is changed at a time.

    Parameters
    ----------
    values, weights, eligible
        As for :func:`monte_carlo`.
    steps : int, default 11
        Number of evenly spaced relative changes over ``range`` (11 over the default
        range gives -50 %, -40 %, ..., +50 %).
    range : (float, float), default (-0.5, 0.5)
        Relative change of the weight: ``w_j -> w_j * (1 + change)``, the other weights
        unchanged (the score formula renormalises). Lower bound >= -1. A criterion with
        weight 0 stays at 0.

    Returns
    -------
    pandas.DataFrame
        Long format, one row per (criterion, change, eligible plot), sorted by criterion,
        change and rank: columns ``criterion``, ``change``, ``weight`` (the criterion's
        normalised weight after the change), ``plot_id``, ``score``, ``rank``.

    """
    lo, hi = (float(x) for x in range)
    if not (math.isfinite(lo) and math.isfinite(hi) and -1.0 <= lo <= hi):
        raise InputError(
            f"range must be (low, high) with -1 <= low <= high, got {range}", where="range"
        )
    if steps < 1:
        raise InputError(f"steps must be at least 1, got {steps}", where="steps")
    criteria, w = _check_weights(values, weights)
    mask = _check_eligible(values.index, eligible)
    ids, vt = _eligible_block(values, criteria, mask)
    n, m = len(ids), len(criteria)
    changes = np.linspace(lo, hi, steps) if steps > 1 else np.array([lo])

    raw = np.repeat(w[None, :], m * steps, axis=0)
    crit_of_row = np.repeat(np.arange(m), steps)
    change_of_row = np.tile(changes, m)
    raw[np.arange(m * steps), crit_of_row] *= 1.0 + change_of_row
    totals = raw.sum(axis=1)
    if np.any(totals <= 0):
        raise InputError(
            "a step removes all weight (the only weighted criterion at -100 %)",
            where="range",
            hint="Use a lower bound above -1",
        )
    sweep = raw / totals[:, None]
    scores = _scores(vt, sweep)
    ranks = _ranks(scores)

    out = pd.DataFrame(
        {
            "criterion": np.repeat(np.array(criteria, dtype=object)[crit_of_row], n),
            "change": np.repeat(change_of_row, n),
            "weight": np.repeat(sweep[np.arange(m * steps), crit_of_row], n),
            "plot_id": np.tile(np.asarray(ids, dtype=object), m * steps),
            "score": scores.ravel(),
            "rank": ranks.ravel().astype(np.int64),
        }
    )
    return out.sort_values(["criterion", "change", "rank"], kind="stable").reset_index(drop=True)


# ---------------------------------------------------------------------------------------
# Comparing rankings
# ---------------------------------------------------------------------------------------


class RankCorrelation(NamedTuple):
    """Rank agreement between two rankings (plots ranked in both).

    Attributes
    ----------
    spearman, spearman_pvalue : float
        Spearman's rho and its two-sided p-value.
    kendall, kendall_pvalue : float
        Kendall's tau-b and its two-sided p-value.
    n : int
        Number of plots ranked in both.

    """

    spearman: float
    spearman_pvalue: float
    kendall: float
    kendall_pvalue: float
    n: int


def rank_correlation(
    rank_a: pd.Series | pd.DataFrame, rank_b: pd.Series | pd.DataFrame
) -> RankCorrelation:
    """Spearman and Kendall rank correlation between two rankings of the same plots.

    Parameters
    ----------
    rank_a, rank_b : pandas.Series or pandas.DataFrame
        Rank per plot (index = plot_id), or ranked-plot frames with ``rank`` (and
        ``plot_id``) columns. Plots unranked in either (missing or NA) are left out.

    Returns
    -------
    RankCorrelation
        NaN coefficients when fewer than 3 plots are ranked in both.

    """
    from scipy import stats

    a = _rank_series(rank_a, "rank_a")
    b = _rank_series(rank_b, "rank_b")
    both = pd.concat([a.rename("a"), b.rename("b")], axis=1, join="inner").dropna()
    n = len(both)
    x = both["a"].to_numpy(dtype=float)
    y = both["b"].to_numpy(dtype=float)
    # scipy warns (and the test suite turns warnings into errors) on constant or tiny
    # input; such comparisons have no meaningful correlation anyway.
    if n < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return RankCorrelation(math.nan, math.nan, math.nan, math.nan, n)
    rho = stats.spearmanr(x, y)
    tau = stats.kendalltau(x, y)
    return RankCorrelation(
        float(rho.statistic), float(rho.pvalue), float(tau.statistic), float(tau.pvalue), n
    )


def compare_rankings(ranked: Mapping[str, pd.DataFrame], top_k: int = 10) -> pd.DataFrame:
    """Per plot: score and rank under each scenario, and what changed against the first.

    Parameters
    ----------
    ranked : mapping of str to pandas.DataFrame
        Scenario name -> ranked plots (``Study.score`` output or any frame with ``score``
        and ``rank`` columns and plot ids in a ``plot_id`` column or the index). The first
        scenario is the reference.
    top_k : int, default 10
        K for entering/leaving the top K.

    Returns
    -------
    pandas.DataFrame
        Index ``plot_id`` (every plot in any scenario), ordered by rank in the reference
        scenario (unranked last), then plot_id. Columns are a two-level index
        ``(field, scenario)`` with fields ``score``, ``rank`` (``Int64``), ``in_top_k``
        for every scenario, and for every other scenario ``rank_change`` (reference rank
        minus scenario rank: positive = climbed, ``Int64``, NA when unranked in either) and
        ``top_k_change`` (``"enters"``, ``"leaves"``, ``"stays"`` in the top K, or ``""``).
        ``comparison["rank"]`` is then a plots x scenarios table.

    """
    if not ranked:
        raise InputError("no rankings to compare", hint="Pass {'name': ranked_frame, ...}")
    if top_k < 1:
        raise InputError(f"top_k must be at least 1, got {top_k}", where="top_k")
    names = [str(k) for k in ranked]
    if len(set(names)) != len(names):
        raise InputError(f"scenario names must be unique, got {names}")
    frames = {}
    for name, frame in zip(names, ranked.values(), strict=True):
        frames[name] = _ranked_frame(frame, name)

    all_ids = pd.Index(pd.concat([pd.Series(f.index) for f in frames.values()]).unique())
    all_ids.name = "plot_id"
    cols: dict[tuple[str, str], pd.Series] = {}
    for name, f in frames.items():
        f = f.reindex(all_ids)
        cols[("score", name)] = f["score"].astype(float)
        cols[("rank", name)] = f["rank"]
        cols[("in_top_k", name)] = (f["rank"] <= top_k).fillna(False).astype(bool)
    ref = names[0]
    for name in names[1:]:
        cols[("rank_change", name)] = cols[("rank", ref)] - cols[("rank", name)]
        was, now = cols[("in_top_k", ref)], cols[("in_top_k", name)]
        change = np.select(
            [was & now, ~was & now, was & ~now], ["stays", "enters", "leaves"], default=""
        )
        cols[("top_k_change", name)] = pd.Series(change, index=all_ids, dtype=object)
    out = pd.DataFrame(cols, index=all_ids)
    out.columns = pd.MultiIndex.from_tuples(out.columns, names=["field", "scenario"])

    ref_rank = out[("rank", ref)].astype("Float64").fillna(math.inf).to_numpy(dtype=float)
    order = np.lexsort((_id_order_keys(all_ids), ref_rank))
    return out.iloc[order]


# ---------------------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------------------

_UP, _DOWN = "#2a9d4b", "#c0392b"  # climbs / falls
_TEXT = {
    "nb": {
        "rank": "Rangering (1 = best)",
        "interval": "5–95 % av trekningene",
        "median": "median",
        "base": "med valgte vekter",
        "p_top": "P(topp {k})",
        "title_intervals": "Hvor sikker er rangeringen? {n} trekninger av vektene ({spread})",
        "spread_uniform": "±{s:.0%}",
        "spread_dirichlet": "standardavvik {s:.0%}",
        "title_changes": "Endring i rangering mot referansescenariet",
        "unranked": "ikke rangert",
    },
    "en": {
        "rank": "Rank (1 = best)",
        "interval": "5–95 % of draws",
        "median": "median",
        "base": "at the chosen weights",
        "p_top": "P(top {k})",
        "title_intervals": "How certain is the ranking? {n} weight draws ({spread})",
        "spread_uniform": "±{s:.0%}",
        "spread_dirichlet": "sd {s:.0%}",
        "title_changes": "Change in rank against the reference scenario",
        "unranked": "not ranked",
    },
}


def plot_rank_intervals(result: SensitivityResult, top_n: int = 20, *, lang: str = "nb") -> Figure:
    """Rank interval chart: the ``top_n`` plots with 5-95 % rank range, median and P(top K).

    Parameters
    ----------
    result : SensitivityResult
        From :func:`monte_carlo`.
    top_n : int, default 20
        Number of plots shown (best deterministic ranks).
    lang : {"nb", "en"}, default "nb"
        Language of the labels (Norwegian bokmål or English).

    Returns
    -------
    matplotlib.figure.Figure
        Not shown; save with ``fig.savefig(...)`` or display it in a notebook.

    """
    from matplotlib.figure import Figure

    t = _labels(lang)
    table = result.table[result.table["eligible"]].head(top_n)
    n = len(table)
    fig = Figure(figsize=(8.0, 1.2 + 0.32 * max(n, 1)), layout="constrained")
    ax = fig.add_subplot()
    y = np.arange(n)
    lo = table["rank_p05"].to_numpy(dtype=float)
    hi = table["rank_p95"].to_numpy(dtype=float)
    ax.hlines(y, lo, hi, color="#4c72b0", linewidth=4, alpha=0.45, label=t["interval"])
    ax.plot(table["rank_median"].to_numpy(dtype=float), y, "o", color="#4c72b0", label=t["median"])
    ax.plot(
        table["rank"].to_numpy(dtype=float),
        y,
        "|",
        color="black",
        markersize=12,
        markeredgewidth=2,
        label=t["base"],
    )
    ax.set_yticks(y, [str(i) for i in table.index])
    ax.invert_yaxis()
    ax.set_xlabel(t["rank"])
    ax.set_xlim(left=0.5)
    ax.grid(axis="x", alpha=0.3)
    # P(top K) as tick labels of a twin axis on the right: layout-aware, never clipped.
    right = ax.twinx()
    right.set_ylim(ax.get_ylim())
    right.set_yticks(y, [f"{p:.0%}" for p in table["p_top_k"]], fontsize=8)
    right.set_ylabel(t["p_top"].format(k=result.top_k))
    fig.legend(loc="outside lower center", ncols=3, fontsize=8, frameon=False)
    spread = (t["spread_uniform"] if result.method == "uniform" else t["spread_dirichlet"]).format(
        s=result.spread
    )
    ax.set_title(t["title_intervals"].format(n=result.n_draws, spread=spread), fontsize=10)
    return fig


def plot_rank_changes(comparison: pd.DataFrame, top_n: int = 15, *, lang: str = "nb") -> Figure:
    """Dumbbell chart: each plot's rank in the reference scenario and in each other scenario.

    One panel per scenario after the first; one row per plot that ranks ``<= top_n`` in
    any scenario, ordered by reference rank. A grey ring marks the reference rank, a dot
    the scenario rank; the bar between them is green when the plot climbs, red when it
    falls, and the change is written beside the dot.

    Parameters
    ----------
    comparison : pandas.DataFrame
        From :func:`compare_rankings`.
    top_n : int, default 15
        A plot is drawn when it ranks ``<= top_n`` in at least one scenario.
    lang : {"nb", "en"}, default "nb"
        Language of the labels.

    Returns
    -------
    matplotlib.figure.Figure
        Not shown; save with ``fig.savefig(...)`` or display it in a notebook.

    """
    from matplotlib.figure import Figure

    t = _labels(lang)
    ranks = comparison["rank"].astype("Float64").astype(float)
    scenarios = [str(c) for c in ranks.columns]
    shown = ranks[(ranks <= top_n).any(axis=1)]  # already in reference-rank order
    others = scenarios[1:] or scenarios[:1]
    n = len(shown)
    fig = Figure(figsize=(1.5 + 3.6 * len(others), 1.6 + 0.28 * max(n, 1)), layout="constrained")
    axes = fig.subplots(1, len(others), sharey=True, squeeze=False)[0]
    y = np.arange(n)
    ref = shown.iloc[:, 0].to_numpy(dtype=float)
    finite = ranks.to_numpy(dtype=float)[(ranks <= top_n).any(axis=1).to_numpy()]
    right = np.nanmax(finite) if np.isfinite(finite).any() else top_n
    for ax, name in zip(axes, others, strict=True):
        new = shown[name].to_numpy(dtype=float)
        for yi, plot_id, a, b in zip(y, shown.index, ref, new, strict=True):
            if np.isnan(b):
                colour = "0.5"
            elif b < a:
                colour = _UP
            elif b > a:
                colour = _DOWN
            else:
                colour = "0.5"
            ends = [v for v in (a, b) if not np.isnan(v)]
            ax.plot(ends, [yi] * len(ends), "-", color=colour, linewidth=2.5, gid=str(plot_id))
            if not np.isnan(a):
                ax.plot(a, yi, "o", mfc="white", mec="0.4", markersize=6)
            if np.isnan(b):
                ax.annotate(
                    t["unranked"],
                    (a if not np.isnan(a) else 1, yi),
                    xytext=(6, 0),
                    textcoords="offset points",
                    va="center",
                    fontsize=7,
                    color="0.4",
                )
                continue
            ax.plot(b, yi, "o", color=colour, markersize=6)
            if not np.isnan(a) and a != b:
                # beside the right-hand end, so it never runs into the plot names
                ax.annotate(
                    f"{int(a - b):+d}",
                    (max(a, b), yi),
                    xytext=(6, 0),
                    textcoords="offset points",
                    va="center",
                    fontsize=7,
                    ha="left",
                    color=colour,
                )
        ax.axvline(top_n + 0.5, color="0.7", linestyle=":", linewidth=1)
        ax.set_xlim(0, right * 1.08 + 1)
        ax.set_title(f"{scenarios[0]} \u2192 {name}", fontsize=9)
        ax.set_xlabel(t["rank"])
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(y, [str(i) for i in shown.index])
    axes[0].invert_yaxis()
    fig.suptitle(t["title_changes"], fontsize=10)
    return fig


# ---------------------------------------------------------------------------------------
# Internals
# ---------------------------------------------------------------------------------------


def _scores(vt: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Scores (draws x plots) for weight rows ``w`` (draws x m, each summing to 1).

    ``vt`` is the value matrix transposed (m x plots, contiguous rows). The sum runs over
    criteria in a fixed order with elementwise IEEE operations: identical plots get
    identical scores, a dominating plot never scores lower (see module docstring).
    """
    d, n = w.shape[0], vt.shape[1]
    out = np.zeros((d, n))
    tmp = np.empty((d, n))
    for j in np.arange(vt.shape[0]):
        np.multiply(w[:, j, None], vt[j][None, :], out=tmp)
        out += tmp
    out *= 100.0
    return out


def _ranks(scores: np.ndarray) -> np.ndarray:
    """Rank (1 = best) per row of ``scores``; columns must be in plot_id order.

    Packs the score rounded to ``SCORE_QUANTUM`` and the column position into one unique
    int64 key, so any (unstable, fast) sort breaks ties by plot_id.
    """
    d, n = scores.shape
    if n == 0:
        return np.zeros((d, 0), dtype=np.int32)
    # Scores are in [0, 100]: 1e11 quanta * n plots must stay below 2**63.
    if n > (2**62) // int(100 * _KEY_SCALE + 1):
        raise InputError(f"too many plots to rank at once ({n})")
    key = np.rint(scores * _KEY_SCALE).astype(np.int64)
    key *= -n
    key += np.arange(n, dtype=np.int64)
    order = np.argsort(key, axis=1)
    ranks = np.empty((d, n), dtype=np.int32)
    np.put_along_axis(ranks, order, np.arange(1, n + 1, dtype=np.int32)[None, :], axis=1)
    return ranks


def _draw_weights(
    w: np.ndarray, n_draws: int, spread: float, method: str, rng: np.random.Generator
) -> tuple[np.ndarray, float | None]:
    """Drawn weight rows (n_draws x m, each summing to 1) and the Dirichlet concentration."""
    m = len(w)
    if spread == 0:
        return np.repeat(w[None, :], n_draws, axis=0), None
    pos = w > 0
    draws = np.zeros((n_draws, m))
    if method == "dirichlet":
        c = dirichlet_concentration(w, spread)
        if math.isinf(c):
            return np.repeat(w[None, :], n_draws, axis=0), c
        draws[:, pos] = rng.dirichlet(c * w[pos], size=n_draws)
        return draws, c
    if spread > 1:
        raise InputError(
            f"a uniform spread above 1 would make weights negative, got {spread:g}",
            where="spread",
        )
    factors = rng.uniform(1.0 - spread, 1.0 + spread, size=(n_draws, m))
    raw = w[None, :] * factors
    totals = raw.sum(axis=1, keepdims=True)
    # A row can only sum to 0 with spread == 1 and every factor exactly 0; keep the base.
    draws = np.where(totals > 0, raw / np.where(totals > 0, totals, 1.0), w[None, :])
    return draws, None


def _check_weights(
    values: pd.DataFrame, weights: pd.Series | Mapping[str, float]
) -> tuple[list[str], np.ndarray]:
    """Criteria in ``values`` column order and their weights normalised to sum 1."""
    if not isinstance(values, pd.DataFrame):
        raise InputError("values must be a pandas DataFrame (plots x criteria)")
    if values.columns.has_duplicates:
        raise InputError("values has duplicate criterion columns")
    if values.index.has_duplicates:
        dup = values.index[values.index.duplicated()][0]
        raise InputError("plot ids must be unique", where=f"plot_id {dup!r}")
    ws = pd.Series(weights, dtype=float) if not isinstance(weights, pd.Series) else weights
    criteria = [str(c) for c in values.columns]
    if len(set(criteria)) != len(criteria):
        raise InputError("values has criterion columns whose names clash as text")
    given = [str(c) for c in ws.index]
    missing = [c for c in criteria if c not in given]
    extra = [c for c in given if c not in criteria]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"no weight for {missing}")
        if extra:
            parts.append(f"weights for criteria without values {extra}")
        raise InputError("weights and values disagree: " + "; ".join(parts), where="weights")
    ws = ws.copy()
    ws.index = given
    w = ws.reindex(criteria).to_numpy(dtype=float)
    bad = np.flatnonzero(~np.isfinite(w) | (w < 0))
    if len(bad):
        raise InputError(
            f"weights must be non-negative numbers, got {w[bad[0]]}",
            where=f"weight of {criteria[bad[0]]!r}",
        )
    total = w.sum()
    if total <= 0:
        raise InputError("all weights are zero", where="weights", hint="Give some criterion weight")
    return criteria, w / total


def _check_eligible(index: pd.Index, eligible: pd.Series | None) -> np.ndarray:
    """Boolean mask aligned with ``index``."""
    if eligible is None:
        return np.ones(len(index), dtype=bool)
    if not isinstance(eligible, pd.Series):
        raise InputError("eligible must be a boolean pandas Series indexed by plot_id")
    if not eligible.index.equals(index):
        if len(eligible) != len(index) or not eligible.index.sort_values().equals(
            index.sort_values()
        ):
            raise InputError(
                "eligible must have exactly the same plot ids as the values",
                where="eligible",
            )
        eligible = eligible.reindex(index)
    if eligible.isna().any():
        raise InputError("eligible has missing entries", where="eligible")
    return eligible.to_numpy(dtype=bool)


def _eligible_block(
    values: pd.DataFrame, criteria: list[str], mask: np.ndarray
) -> tuple[pd.Index, np.ndarray]:
    """Eligible plot ids in plot_id order and their values transposed (m x n, contiguous)."""
    pos = np.flatnonzero(mask)
    ids = values.index[pos]
    by_id = _argsort_ids(ids)
    pos = pos[by_id]
    ids = values.index[pos]
    # Columns are exactly the criteria, in order (checked in _check_weights).
    v = values.to_numpy(dtype=float)[pos]
    if v.size:
        bad = ~np.isfinite(v) | (v < 0) | (v > 1)
        if bad.any():
            i, j = np.argwhere(bad)[0]
            raise InputError(
                f"criterion values must be numbers in [0, 1], got {v[i, j]}",
                where=f"plot_id {ids[i]!r}, criterion {criteria[j]!r}",
                hint="Eligible plots must have every value; unreachable scores 0",
            )
    return ids, np.ascontiguousarray(v.T)


def _argsort_ids(ids: pd.Index) -> np.ndarray:
    """Positions that sort plot ids ascending (the contract's tie-break)."""
    try:
        return np.argsort(ids.to_numpy(), kind="stable")
    except TypeError:
        raise InputError(
            "plot ids cannot be ordered (mixed types?)",
            hint="Use string plot ids, as the ranked-plots contract says",
        ) from None


def _id_order_keys(ids: pd.Index) -> np.ndarray:
    """Integer sort keys giving plot_id ascending order."""
    keys = np.empty(len(ids), dtype=np.int64)
    keys[_argsort_ids(ids)] = np.arange(len(ids))
    return keys


def _rank_series(obj: pd.Series | pd.DataFrame, what: str) -> pd.Series:
    """Return ranks indexed by plot_id from a Series or a ranked-plots frame."""
    if isinstance(obj, pd.DataFrame):
        frame = _ranked_frame(obj, what, need_score=False)
        return frame["rank"]
    if isinstance(obj, pd.Series):
        return obj
    raise InputError(f"{what} must be a pandas Series or DataFrame of ranks")


def _ranked_frame(frame: pd.DataFrame, name: str, *, need_score: bool = True) -> pd.DataFrame:
    """``score`` and ``rank`` columns indexed by plot_id (from a column or the index)."""
    if not isinstance(frame, pd.DataFrame):
        raise InputError(f"the ranking {name!r} is not a DataFrame")
    needed = ["score", "rank"] if need_score else ["rank"]
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise InputError(
            f"the ranking {name!r} lacks column(s) {missing}",
            hint="Pass the ranked plots returned by Study.score()",
        )
    f = frame.set_index("plot_id") if "plot_id" in frame.columns else frame
    if f.index.has_duplicates:
        dup = f.index[f.index.duplicated()][0]
        raise InputError(f"the ranking {name!r} lists a plot twice", where=f"plot_id {dup!r}")
    out = f[needed].copy()
    out["rank"] = pd.to_numeric(out["rank"]).astype("Int64")
    out.index.name = "plot_id"
    return out


def _labels(lang: str) -> dict[str, str]:
    if lang not in _TEXT:
        raise InputError(f"unknown language {lang!r}", where="lang", hint="Use 'nb' or 'en'")
    return _TEXT[lang]
