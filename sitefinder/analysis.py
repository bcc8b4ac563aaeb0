"""Scenario work on a measured :class:`~sitefinder.api.Study`: compare and stress-test.

Thin glue between the study (which measures once) and :mod:`sitefinder.sensitivity`
(pure maths on a values matrix). Nothing here touches the network.

>>> from sitefinder import Study, compare, sensitivity                 # doctest: +SKIP
>>> from sitefinder.analysis import explore_comparison                 # doctest: +SKIP
>>> study = Study.demo()                                               # doctest: +SKIP
>>> base = study.scenario                                              # doctest: +SKIP
>>> table = compare(study, {"base": base, "transit x2": base.with_weights(transit=6)})
...                                                                    # doctest: +SKIP
>>> explore_comparison(study, table, "transit x2")  # rank changes on a map  # doctest: +SKIP
>>> robust = sensitivity(study, base, n_draws=1000, seed=1)            # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import geopandas as gpd
import pandas as pd

from sitefinder.api import Study
from sitefinder.config import Scenario
from sitefinder.errors import InputError
from sitefinder.sensitivity import (
    SensitivityResult,
    compare_rankings,
    monte_carlo,
    one_at_a_time,
)

if TYPE_CHECKING:
    import folium


def value_matrix(
    ranked: pd.DataFrame, scenario: Scenario
) -> tuple[pd.DataFrame, pd.Series, pd.Series]:
    """Criterion values, weights and eligibility of scored plots, indexed by plot id.

    Parameters
    ----------
    ranked : DataFrame
        From :meth:`Study.score` under ``scenario``.
    scenario : Scenario

    Returns
    -------
    values : DataFrame
        Plot id × criterion, each in 0–1.
    weights : Series
        Criterion weights.
    eligible : Series of bool
        ``status == "ok"`` (the plots that are ranked).
    """
    frame = ranked.set_index("plot_id")
    # A criterion that joins only when measured (slope) may be absent from ``ranked``.
    names = [n for n in scenario.criteria if f"value_{n}" in frame.columns]
    values = frame[[f"value_{n}" for n in names]].set_axis(names, axis=1).astype(float)
    weights = pd.Series({n: scenario.criteria[n].weight for n in names}, dtype=float)
    eligible = frame["status"] == "ok"
    return values, weights, eligible


def _named(scenarios: Mapping[str, Scenario] | Sequence[Scenario]) -> dict[str, Scenario]:
    if isinstance(scenarios, Mapping):
        return dict(scenarios)
    named: dict[str, Scenario] = {}
    for s in scenarios:
        key = s.name
        n = 2
        while key in named:  # two scenarios with the same name stay apart
            key, n = f"{s.name} ({n})", n + 1
        named[key] = s
    return named


def compare(
    study: Study,
    scenarios: Mapping[str, Scenario] | Sequence[Scenario],
    top_k: int = 10,
) -> pd.DataFrame:
    """Score the study under several scenarios and compare the rankings.

    Parameters
    ----------
    study : Study
    scenarios : mapping of name to Scenario, or sequence of Scenario
        The first is the reference for rank changes.
    top_k : int
        Size of the "top" for entering/leaving counts.

    Returns
    -------
    DataFrame
        Per plot: ``score``, ``rank``, ``in_top_k`` under each scenario, and ``rank_change``
        (positive = climbed) and ``top_k_change`` (enters/leaves/stays) against the first.
        See :func:`sitefinder.sensitivity.compare_rankings`.
    """
    named = _named(scenarios)
    ranked = {name: study.score(s, explain=False) for name, s in named.items()}
    return compare_rankings(ranked, top_k=top_k)


def comparison_layer(study: Study, comparison: pd.DataFrame) -> gpd.GeoDataFrame:
    """Plot geometries with the comparison columns flattened, ready for a map.

    Columns are named ``<what>__<scenario>`` (e.g. ``rank_change__transit x2``). Draw it
    with :func:`explore_comparison` (see notebook 02) or save it with
    ``layer.to_file("changes.gpkg")`` for QGIS.
    """
    flat = comparison.copy()
    flat.columns = [f"{a}__{b}" for a, b in flat.columns]
    plots = study.plots[["plot_id", "name", "geometry"]] if "name" in study.plots else \
        study.plots[["plot_id", "geometry"]]
    return plots.merge(flat, left_on="plot_id", right_index=True, how="left")


#: Rank change colours: dropped (orange) → unchanged (light grey) → climbed (blue);
#: colour-blind safe.
RANK_CHANGE = ("#b35806", "#f1a340", "#f7f7f7", "#998ec3", "#542788")


def explore_comparison(
    study: Study, comparison: pd.DataFrame, scenario: str | None = None, **kwargs
) -> folium.Map:
    """Map of how far each plot climbs or drops under one scenario against the first.

    Parameters
    ----------
    study : Study
    comparison : DataFrame
        From :func:`compare`.
    scenario : str, optional
        Name of the scenario to show (default: the second one compared).
    **kwargs
        Passed to ``folium.Map``.

    Returns
    -------
    folium.Map
        Plots coloured by ``rank_change`` (positive = climbed), with both ranks on hover.

    Raises
    ------
    InputError
        A scenario name that is not in the comparison.
    """
    names = list(dict.fromkeys(b for _, b in comparison.columns))
    scenario = scenario if scenario is not None else names[min(1, len(names) - 1)]
    if scenario not in names or scenario == names[0]:
        raise InputError(
            f"'{scenario}' is not one of the scenarios compared with '{names[0]}'",
            where="explore_comparison",
            hint=f"Use one of: {', '.join(names[1:])}",
        )
    layer = comparison_layer(study, comparison)
    change = f"rank_change__{scenario}"
    tooltip = ["plot_id", f"rank__{names[0]}", f"rank__{scenario}", change]
    from sitefinder.maps import column_map  # folium only when a map is drawn

    return column_map(layer, change, tooltip, colours=RANK_CHANGE, centre=0.0, **kwargs)


def sensitivity(
    study: Study,
    scenario: Scenario | None = None,
    *,
    n_draws: int = 1000,
    spread: float = 0.2,
    method: str = "dirichlet",
    top_k: int = 10,
    seed: int | None = None,
) -> SensitivityResult:
    """Monte Carlo weight perturbation around a scenario's weights.

    Returns per plot the probability of being in the top ``top_k``, the 5–95 % rank
    interval and the criterion whose weight moves it most (see
    :func:`sitefinder.sensitivity.monte_carlo`). Reproducible with ``seed``.
    """
    scenario = scenario or study.scenario
    values, weights, eligible = value_matrix(study.score(scenario, explain=False), scenario)
    return monte_carlo(
        values, weights, eligible, n_draws=n_draws, spread=spread, method=method,
        top_k=top_k, seed=seed,
    )


def sweep(
    study: Study,
    scenario: Scenario | None = None,
    *,
    steps: int = 11,
    change: tuple[float, float] = (-0.5, 0.5),
) -> pd.DataFrame:
    """One-at-a-time weight sweeps: each criterion's weight changed alone, ranks recorded.

    See :func:`sitefinder.sensitivity.one_at_a_time`.
    """
    scenario = scenario or study.scenario
    values, weights, eligible = value_matrix(study.score(scenario, explain=False), scenario)
    return one_at_a_time(values, weights, eligible, steps=steps, range=change)
