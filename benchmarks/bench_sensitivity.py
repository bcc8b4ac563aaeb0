"""Benchmark: re-scoring and Monte Carlo sensitivity on 10,000 plots x 8 criteria.

Run from the repository root::

    .venv/bin/python benchmarks/bench_sensitivity.py

Targets (issue 5, on the 2-core CI machine):

* re-scoring 10,000 plots under new weights (weighted score + rank) <= 50 ms;
* 1,000-draw Monte Carlo sensitivity run on 10,000 plots <= 5 s.

Prints a table and exits with status 1 when a median time is over its target.
The data are synthetic but shaped like real criterion values: many plots saturate at
0 or 1 (value functions clip at "ideal" and "unacceptable"), so exact ties are common,
and 5 % of the plots are ineligible.
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from collections.abc import Callable

import numpy as np
import pandas as pd

from sitefinder.sensitivity import monte_carlo, one_at_a_time, rank_scores, weighted_score

N_PLOTS = 10_000
N_CRITERIA = 8
N_DRAWS = 1_000


def make_data(seed: int = 0) -> tuple[pd.DataFrame, pd.Series, pd.Series]:
    rng = np.random.default_rng(seed)
    values = np.clip(rng.normal(0.55, 0.45, size=(N_PLOTS, N_CRITERIA)), 0.0, 1.0)
    ids = pd.Index([f"plot-{i:05d}" for i in range(N_PLOTS)], name="plot_id")
    criteria = [
        "transit",
        "grocery",
        "pharmacy",
        "health",
        "meeting",
        "nature",
        "screening",
        "noise",
    ]
    frame = pd.DataFrame(values, index=ids, columns=criteria)
    weights = pd.Series([3.0, 3.0, 1.5, 1.5, 1.0, 1.0, 2.0, 1.0], index=criteria)
    eligible = pd.Series(rng.random(N_PLOTS) >= 0.05, index=ids)
    frame[~eligible] = np.nan
    return frame, weights, eligible


def timed(fn: Callable[[], object], repeats: int) -> list[float]:
    fn()  # warm-up: imports, page faults, BLAS/thread start-up
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def main() -> int:
    values, weights, eligible = make_data()
    rng = np.random.default_rng(1)

    def rescore() -> None:
        # a new scenario: different weights every call
        w = weights * rng.uniform(0.5, 1.5, len(weights))
        rank_scores(weighted_score(values, w), eligible)

    cases = [
        ("re-score 10,000 plots (score + rank)", rescore, 30, 0.050),
        (
            f"Monte Carlo {N_DRAWS:,} draws x {N_PLOTS:,} plots (dirichlet)",
            lambda: monte_carlo(values, weights, eligible, n_draws=N_DRAWS, seed=0),
            5,
            5.0,
        ),
        (
            f"Monte Carlo {N_DRAWS:,} draws x {N_PLOTS:,} plots (uniform)",
            lambda: monte_carlo(
                values, weights, eligible, n_draws=N_DRAWS, method="uniform", seed=0
            ),
            5,
            5.0,
        ),
        (
            "one-at-a-time, 8 criteria x 11 steps (no target)",
            lambda: one_at_a_time(values, weights, eligible),
            5,
            None,
        ),
    ]

    print(
        f"sitefinder sensitivity benchmark: {N_PLOTS:,} plots x {N_CRITERIA} criteria; "
        f"{os.cpu_count()} CPU(s), Python {platform.python_version()}, numpy {np.__version__}"
    )
    header = f"{'case':<58} {'runs':>4} {'median':>10} {'best':>10} {'target':>8}  result"
    print(header)
    print("-" * len(header))
    failed = False
    for name, fn, repeats, target in cases:
        times = timed(fn, repeats)
        med, best = statistics.median(times), min(times)
        if target is None:
            verdict, target_text = "-", "-"
        else:
            ok = med <= target
            failed |= not ok
            verdict = "ok" if ok else "OVER TARGET"
            target_text = _fmt(target)
        print(
            f"{name:<58} {repeats:>4} {_fmt(med):>10} {_fmt(best):>10} {target_text:>8}  {verdict}"
        )
    return 1 if failed else 0


def _fmt(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms" if seconds < 1 else f"{seconds:.2f} s"


if __name__ == "__main__":
    sys.exit(main())
