"""Colours, score classes and legend entries of the web map.

Plots are coloured by *quantile classes* of their score, not by fixed 20-point bands: the
ranked plots of a real study lie within a few points of each other (70.8–97.7 in the
Oslo demo, the top five within 1.5 points), and fixed bands would paint nearly all of them
the same. The palette is a cut of viridis (perceptually ordered, readable with the common
colour-vision deficiencies, monotone in lightness so it still orders in greyscale), run so
that the *best* class is the darkest and stands out on a light basemap, and the worst is a
light green rather than a pale yellow that would vanish on it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from sitefinder.language import fmt_number

__all__ = [
    "BASEMAP_STYLES",
    "LAYER_COLOURS",
    "PALETTE",
    "ROUTE_COLOURS",
    "SCORE_BINS",
    "bin_labels",
    "class_breaks",
    "class_colours",
    "score_class",
    "swatch",
]

#: Worst → best: viridis at 0.8, 0.6, 0.4, 0.2 and 0.0.
PALETTE: tuple[str, ...] = ("#7ad151", "#22a884", "#2a788e", "#414487", "#440154")
#: Fixed classes for a table without ranked plots to take quantiles of.
SCORE_BINS: tuple[float, ...] = (0.0, 20.0, 40.0, 60.0, 80.0, 100.0)

EXCLUDED_STROKE = "#4d4d4d"
#: Okabe–Ito colours for thematic layers: distinguishable with colour-vision deficiencies.
LAYER_COLOURS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442")
#: Walking routes per category (Okabe–Ito); other categories take LAYER_COLOURS in turn.
ROUTE_COLOURS: dict[str, str] = {
    "transit": "#0072B2",
    "grocery": "#E69F00",
    "pharmacy": "#009E73",
    "health": "#CC79A7",
    "meeting": "#56B4E9",
    "nature": "#117733",
}
#: T-1442 zone colours, as on the municipalities' own noise maps.
NOISE_COLOURS: dict[str, str] = {"yellow": "#f2c12e", "red": "#d7301f"}
ISOCHRONE_COLOUR = "#D55E00"

BASEMAP_STYLES: dict[str, dict[str, Any]] = {
    "green": {"stroke": False, "fillColor": "#cfe8c4", "fillOpacity": 1.0},
    "water": {"stroke": False, "fillColor": "#aad3df", "fillOpacity": 1.0},
    "buildings": {"color": "#bcb3a8", "weight": 0.5, "fillColor": "#d9d0c9", "fillOpacity": 1.0},
    "roads": {"color": "#ffffff", "weight": 2, "opacity": 1.0},
}
BASEMAP_BACKGROUND = "#f2efe9"

DISTRICT_STYLE = {"color": "#333333", "weight": 2, "dashArray": "6 4", "fill": True,
                  "fillOpacity": 0.0}
SCREENING_STYLE = {"color": "#000000", "weight": 1, "dashArray": "2 4", "fillColor": "#000000",
                   "fillOpacity": 0.08}
SELECTION_STYLE = {"color": "#000000", "weight": 3, "fillColor": "#ffffff", "fillOpacity": 0.7}


def class_breaks(scores: Iterable[Any], k: int = 5) -> tuple[float, ...]:
    """Quantile class limits of the ranked plots' scores, lowest first.

    Parameters
    ----------
    scores : iterable of float
        Scores of the ranked plots; NaN and None are ignored.
    k : int
        Number of classes wanted (fewer come out when scores tie).

    Returns
    -------
    tuple of float
        ``n + 1`` increasing limits for ``n`` ≤ ``k`` classes; :data:`SCORE_BINS` when
        there is no score at all.

    Examples
    --------
    >>> class_breaks([70, 80, 90, 95, 100], k=2)
    (70.0, 90.0, 100.0)
    >>> class_breaks([88.0, 88.0])
    (88.0, 88.0)
    """
    values = np.array([float(s) for s in scores if not _missing(s)], dtype=float)
    if values.size == 0:
        return SCORE_BINS
    limits = np.unique(np.quantile(values, np.linspace(0.0, 1.0, k + 1)))
    if limits.size == 1:  # every plot has the same score: one class
        return (float(limits[0]), float(limits[0]))
    return tuple(float(x) for x in limits)


def class_colours(n: int) -> list[str]:
    """The palette for ``n`` classes, worst first; the best class is always the darkest."""
    if n <= 1:
        return [PALETTE[-1]]
    picks = np.linspace(0, len(PALETTE) - 1, n).round().astype(int)
    return [PALETTE[i] for i in picks]


def score_class(score: Any, breaks: Sequence[float] = SCORE_BINS) -> int:
    """Class index (0 = worst) of a score within ``breaks``, or -1 when there is no score.

    >>> score_class(100), score_class(0), score_class(None)
    (4, 0, -1)
    """
    if _missing(score):
        return -1
    n = max(len(breaks) - 1, 1)
    i = int(np.searchsorted(np.asarray(breaks, dtype=float), float(score), side="right")) - 1
    return min(max(i, 0), n - 1)


def bin_labels(
    language: str = "nb", breaks: Sequence[float] = SCORE_BINS, decimals: int | None = None
) -> list[str]:
    """Legend labels of the classes, worst first, e.g. ``"95,3–97,7"``.

    Scores are shown with one decimal everywhere on the map, so are the limits of
    quantile classes; whole-number limits (the fixed bands) are shown whole.
    """
    if decimals is None:
        decimals = 0 if all(float(b).is_integer() for b in breaks) else 1
    if len(breaks) == 2 and breaks[0] == breaks[1]:
        return [fmt_number(breaks[0], decimals, language)]
    return [
        f"{fmt_number(lo, decimals, language)}–{fmt_number(hi, decimals, language)}"
        for lo, hi in zip(breaks[:-1], breaks[1:], strict=True)
    ]


def swatch(style: dict[str, Any], shape: str = "area") -> dict[str, Any]:
    """A legend swatch drawn like a layer's Leaflet ``style``.

    ``shape`` is ``"area"``, ``"line"``, ``"point"`` or ``"hatch"`` (excluded plots).
    """
    return {
        "shape": shape,
        "stroke": style.get("color", "#333333") if style.get("stroke", True) else "none",
        "fill": style.get("fillColor", style.get("color", "#333333")),
        "fillOpacity": style.get("fillOpacity", 0.35 if shape != "line" else 0),
        "dash": style.get("dashArray"),
        "weight": style.get("weight", 1),
    }


def _missing(x: Any) -> bool:
    try:
        return x is None or math.isnan(float(x))
    except (TypeError, ValueError):
        return True
