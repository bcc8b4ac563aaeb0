"""The best areas of a screening: neighbouring good cells merged into one polygon each.

A cell is *good* when it is ranked (status ``ok``) and its score is in the top share of the
ranked cells (``ScreenSettings.best_share``, default the top decile), or at least
``best_min_score`` when that is given. Good cells that share an edge on the grid belong to
the same area (corner contact is not enough: two plots touching at a corner are not one
site). An area's outline is the union of its whole grid squares (cut to the screened
area), so it contains every buildable part of its cells; its size, buildable land, best
and mean score and the reasons of its best cell (the plain-language explanation of
:mod:`sitefinder.score`) describe it.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy import ndimage

from sitefinder.language import count_phrase, fmt_int, fmt_number, sentence
from sitefinder.screen_cells import Grid, ScreenSettings

AREA_COLUMNS = [
    "area_id", "rank", "n_cells", "area_m2", "buildable_m2", "best_score", "mean_score",
    "best_cell", "district", "reasons_nb", "reasons_en", "geometry",
]


def best_threshold(cells: pd.DataFrame, settings: ScreenSettings) -> float:
    """The least score of a good cell (NaN when no cell is ranked)."""
    scores = cells.loc[cells["status"] == "ok", "score"].astype(float)
    if scores.empty:
        return float("nan")
    if settings.best_min_score is not None:
        return float(settings.best_min_score)
    return float(np.quantile(scores, 1 - settings.best_share, method="higher"))


def best_areas(
    cells: gpd.GeoDataFrame, grid: Grid, settings: ScreenSettings,
    criteria_labels: dict[str, tuple[str, str]] | None = None,
    within: shapely.Geometry | None = None,
) -> tuple[gpd.GeoDataFrame, pd.Series]:
    """Merge neighbouring good cells into areas, best area first.

    Parameters
    ----------
    cells : GeoDataFrame
        Scored cells with ``plot_id``, ``col``, ``row``, ``status``, ``score``,
        ``buildable_m2``, ``explanation_nb/en`` and the ``value_<criterion>`` columns.
    grid : Grid
        The screening's grid.
    settings : ScreenSettings
    criteria_labels : dict, optional
        Criterion → (bokmål, English) label, for the strongest and weakest criteria.
    within : shapely geometry, optional
        The screened area: outlines are cut to it (a cell at its edge is cut there too).

    Returns
    -------
    areas : GeoDataFrame
        Columns :data:`AREA_COLUMNS`, best area first (``rank`` 1).
    area_id : Series
        The ``area_id`` of each cell (index of ``cells``), "" for cells in no area.
    """
    threshold = best_threshold(cells, settings)
    good = cells[(cells["status"] == "ok") & (cells["score"] >= threshold)]
    area_id = pd.Series("", index=cells.index, dtype=object)
    if good.empty:
        empty = gpd.GeoDataFrame(columns=AREA_COLUMNS, geometry="geometry", crs=cells.crs)
        return empty, area_id
    label = _component_labels(good, grid)
    rows = [
        _describe(group, grid, criteria_labels or {}, within)
        for _, group in good.assign(_area=label).groupby("_area", sort=False)
    ]
    areas = pd.DataFrame(rows).sort_values(["best_score", "mean_score", "best_cell"],
                                           ascending=[False, False, True], kind="stable")
    areas = areas.reset_index(drop=True)
    areas["rank"] = np.arange(1, len(areas) + 1)
    areas["area_id"] = [f"A{i:03d}" for i in areas["rank"]]
    for row in areas.itertuples():
        area_id[row.cells_in] = row.area_id
    return gpd.GeoDataFrame(areas[AREA_COLUMNS], geometry="geometry", crs=cells.crs), area_id


def _component_labels(good: pd.DataFrame, grid: Grid) -> np.ndarray:
    """Label of the edge-connected group of each good cell on the grid."""
    mask = np.zeros((grid.n_rows, grid.n_cols), dtype=bool)
    rows, cols = good["row"].to_numpy(int), good["col"].to_numpy(int)
    mask[rows, cols] = True
    labels, _ = ndimage.label(mask)  # 4-connectivity: neighbours share an edge
    return labels[rows, cols]


def _describe(group: pd.DataFrame, grid: Grid, labels: dict[str, tuple[str, str]],
              within: shapely.Geometry | None) -> dict:
    best = group.loc[group["score"].astype(float).idxmax()]
    outline = shapely.union_all(_squares(group, grid))
    if within is not None:
        outline = shapely.intersection(outline, within)
    info = {
        "n_cells": len(group),
        "area_m2": float(outline.area),
        "buildable_m2": float(group["buildable_m2"].sum()),
        "best_score": float(best["score"]),
        "mean_score": float(group["score"].astype(float).mean()),
        "best_cell": best["plot_id"],
        "district": best.get("district", None) if "district" in group else None,
        "geometry": outline,
        "cells_in": list(group.index),
    }
    values = group[[c for c in group.columns if c.startswith("value_")]].astype(float).mean()
    for language in ("nb", "en"):
        info[f"reasons_{language}"] = _reasons(info, best, values, labels, language)
    return info


def _squares(group: pd.DataFrame, grid: Grid) -> np.ndarray:
    left = grid.x0 + group["col"].to_numpy(float) * grid.size
    top = grid.y_top - group["row"].to_numpy(float) * grid.size
    return shapely.box(left, top - grid.size, left + grid.size, top)


_WORDS = {
    "nb": {"area": "Område på {m2} m² ({cells}), beste poeng {best}, snitt {mean}",
           "strong": "sterkest i snitt", "weak": "svakest i snitt", "best": "Beste rute"},
    "en": {"area": "Area of {m2} m² ({cells}), best score {best}, mean {mean}",
           "strong": "strongest on average", "weak": "weakest on average", "best": "Best cell"},
}


def _reasons(info: dict, best: pd.Series, values: pd.Series,
             labels: dict[str, tuple[str, str]], language: str) -> str:
    """Plain-language reasons for an area: size, scores, strong and weak points, best cell."""
    words = _WORDS[language]
    head = words["area"].format(
        m2=fmt_int(info["area_m2"], language),
        cells=count_phrase(info["n_cells"], "cell", language),
        best=fmt_number(info["best_score"], 1, language),
        mean=fmt_number(info["mean_score"], 1, language),
    )
    parts = [sentence(head)]
    named = {c: labels.get(c[len("value_"):], (c[6:], c[6:]))[0 if language == "nb" else 1]
             for c in values.index}
    values = values.dropna()
    if len(values) and values.max() > values.min():
        parts.append(sentence(f"{words['strong']}: {named[values.idxmax()]}; "
                              f"{words['weak']}: {named[values.idxmin()]}"))
    explanation = best.get(f"explanation_{language}", "")
    if isinstance(explanation, str) and explanation:
        parts.append(f"{words['best']} {best['plot_id']}: {explanation}")
    return " ".join(parts)
