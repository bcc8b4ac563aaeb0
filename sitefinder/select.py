"""Choose a set of sites under the clustering limits (docs/CRITERIA.md §17).

A property department does not pick one plot, it picks a set: "deliver 12 units". The
research is clear about how the set must look — few units per site, "more spread", "good
spread between city districts", not concentrated near other housing for the same group
(docs/CRITERIA.md §17) — so those limits are constraints of an optimisation, not
after-the-fact checks.

The model
---------
For each eligible candidate plot *i* with score *s_i* (0–100), choose *y_i* ∈ {0, 1}
(site used), *u_i* (units built there) and *w_i* ≥ 0 (units above the preferred size):

* **objective** — maximise Σ *s_i · u_i* − (1 − ``extra_unit_value``) · Σ *s_i · w_i*
  with *w_i* ≥ *u_i* − ``preferred_units_per_site`` · *y_i*. Every unit housed on plot
  *i* is worth that plot's score, so the requested units go to the best plots (score per
  *site* would favour spreading units thin over mediocre plots; score per unit matches the
  property department's question "where do these 12 people get the best homes"). But each
  unit above ``preferred_units_per_site`` (3) on one site is worth only
  ``extra_unit_value`` (0.25) of the score: the report describes groups of 2–3 most often
  (§6.1) and "it takes little before it feels like a ghetto" (criterion 10). Scores are
  ≥ 0, so at the optimum *w_i* is exactly max(0, *u_i* − preferred). With the defaults 12
  units on equally good plots become four sites of 3, not three of 4; a fourth unit goes
  to a plot only where a quarter of its score beats a unit on any other plot the limits
  still allow. In
  ``concentration_mode="penalise"`` the objective also loses ``penalty`` points for every
  unit by which a neighbourhood exceeds ``max_units_near``;
* **ties** — equal scores make many sets equally good (any split into sites of at most
  the preferred size scores the same). Among them the set with the fewest sites is
  returned: fewer plots to buy and prepare (criterion 11). It is found by a second solve
  that keeps the objective at its optimum; with only ``sites`` requested the second solve
  minimises units instead;
* **units per site** — ``min_units_per_site`` · *y_i* ≤ *u_i* ≤ *cap_i* · *y_i*, where
  *cap_i* is the plot's capacity from :func:`sitefinder.capacity.plan_units` (already at
  most ``max_units_per_site``). The minimum is 1 by default: a single house is a valid
  site (docs/CRITERIA.md §16);
* **request** — Σ *u_i* = the requested units (exactly: more units never lower the
  objective, so "at least" would simply fill every plot), and/or Σ *y_i* = the requested
  sites. With sites only, each site still gets as many units as its limits allow, since
  every unit adds value (those above the preferred size at ``extra_unit_value`` of the
  score); with ``extra_unit_value = 0`` units above the preferred size add nothing and are
  not built, so each site gets ``preferred_units_per_site`` (less where its limits say so);
* **spacing** — *y_i* + *y_j* ≤ 1 for every pair closer than ``min_spacing_m``; the pairs
  come from a KD-tree, not a Python double loop. Plots closer than
  ``existing_spacing_m`` (default: the same distance) to an existing site are not eligible;
* **district spread** — at most ``max_sites_per_district`` chosen sites per district;
* **concentration** — for every chosen site, its own units plus those of other chosen
  sites within ``concentration_radius_m`` plus the units of existing sites within that
  radius stay ≤ ``max_units_near`` (6; ``exclude``) or pay the penalty (``penalise``).
  Without existing sites only the new sites are counted, and the result says so
  (``notes_nb`` / ``notes_en``).

Site positions are the centroid of the unit layout when there is one, otherwise a point
inside the plot; distances between sites are between those points. Distances to existing
sites are to their geometry.

Solving
-------
The model is always solved exactly as a mixed-integer programme with
:func:`scipy.optimize.milp` (HiGHS); the result reports ``optimal=True`` with the solver's
bound and gap. Up to ``exact_max_candidates`` eligible candidates every spacing pair is a
row of the model. Above it — screening cells of a whole municipality give tens of
thousands of candidates and millions of pairs closer than the spacing — the pairs are not
written out. Instead:

* **clique rows**: sites in one square of side ``min_spacing_m``/√2 are pairwise closer
  than the spacing, so at most one of them is chosen (Σ *y* ≤ 1). Two square grids, the
  second shifted by half a side, give each site two such rows; together they hold most
  conflicting pairs at a fraction of the rows;
* **lazy pairs**: the model is solved with those rows; any two chosen sites still closer
  than the spacing (across square borders) become a pair row, and the model is solved
  again, until the chosen set keeps the spacing. Each solve is a relaxation of the full
  model, so the last one's set is optimal for the full model and its bound is a true
  bound; an infeasible relaxation proves the full request infeasible.

When ``time_limit_s`` runs out the best set found that keeps every rule is returned with
``optimal=False``, ``status="time_limit"`` and its proven gap; when no such set was found
in time, :class:`SelectionTimeoutError` says so. Infeasibility is reported only when proven.

Infeasible requests raise :class:`~sitefinder.errors.InfeasibleError`, naming what can be
delivered under the limits and which limit, relaxed on its own, would make the request
feasible.

Privacy: existing sites are sensitive (docs/CRITERIA.md §19). Reasons never name an
existing site nor give a distance to one, and :func:`write_selection` writes only the
chosen candidate plots.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Iterable
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from scipy import sparse
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.spatial import cKDTree

from sitefinder.capacity import (
    HARD_MAX_UNITS_PER_SITE,
    STATUS_OK,
    STATUS_TOO_SMALL,
    CapacitySettings,
    require_projected,
    too_small_texts,
)
from sitefinder.errors import InfeasibleError, InputError, SelectionTimeoutError

# The settings live in the light module so the scenario validates without scipy;
# re-exported here, where they have always been imported from.
from sitefinder.settings import ClusteringSettings

# --------------------------------------------------------------------------- results


@dataclasses.dataclass(frozen=True)
class SelectionResult:
    """A chosen set of sites and why every other candidate was not chosen.

    Attributes
    ----------
    chosen : GeoDataFrame
        One row per chosen site (index from the candidates), columns ``plot_id``,
        ``units``, ``score``, ``district``, ``x``/``y`` (the site position spacing is
        measured from) and ``plot_geometry``; the active geometry is the unit layout
        trimmed to the chosen units (MultiPolygon, empty when the candidates had none).
        Sorted by descending score.
    status : str
        ``"optimal"`` or ``"time_limit"`` (MILP stopped early with a set that keeps every
        rule; see ``gap``).
    optimal : bool
        Whether the set is proven optimal.
    objective : float
        Σ score × units of the chosen set, with units above ``preferred_units_per_site``
        on a site counted at ``extra_unit_value`` × score, minus concentration penalties.
    bound : float
        Upper bound on the best possible objective (the MILP's dual bound).
    gap : float
        ``(bound - objective) / max(|bound|, 1e-9)``; 0 when optimal.
    method : str
        ``"milp"`` (every spacing pair in the model) or ``"milp-lazy"`` (clique rows and
        lazily added pairs, above ``exact_max_candidates``).
    reasons : DataFrame
        One row per candidate not chosen (index from the candidates), columns
        ``plot_id``, ``reason_code``, ``reason_nb``, ``reason_en``. Codes: ``excluded``,
        ``no_geometry``, ``no_score``, ``too_small``, ``near_existing``,
        ``concentration``, ``near_selected``, ``district_full``, ``crowded_by_selected``,
        ``not_needed``.
    per_district : DataFrame
        Per district: ``candidates``, ``eligible``, ``sites`` and ``units`` chosen.
    requested_units, requested_sites : int or None
        The request.
    notes_nb, notes_en : list of str
        Caveats about how the set was checked, in bokmål and English (e.g. that no
        existing sites were given, so concentration was checked among new sites only).
        Also in ``chosen.attrs["notes_nb"]`` / ``["notes_en"]``, which travel with the
        chosen sites into the report.

    """

    chosen: gpd.GeoDataFrame
    status: str
    optimal: bool
    objective: float
    bound: float
    gap: float
    method: str
    reasons: pd.DataFrame
    per_district: pd.DataFrame
    requested_units: int | None
    requested_sites: int | None
    notes_nb: list[str] = dataclasses.field(default_factory=list)
    notes_en: list[str] = dataclasses.field(default_factory=list)

    @property
    def total_units(self) -> int:
        """Units in the chosen set."""
        return int(self.chosen["units"].sum())

    @property
    def reasons_nb(self) -> pd.Series:
        """Why each candidate not chosen was not chosen, in bokmål."""
        return self.reasons["reason_nb"]

    @property
    def reasons_en(self) -> pd.Series:
        """Why each candidate not chosen was not chosen, in English."""
        return self.reasons["reason_en"]

    def table(self, index: pd.Index) -> pd.DataFrame:
        """Return the selection columns aligned with ``index`` (the candidates'), for joining.

        Returns ``selected`` (bool), ``selected_units`` (int, 0 when not chosen) and
        ``selection_reason_nb`` / ``selection_reason_en`` (``""`` when chosen).
        """
        out = pd.DataFrame(index=index)
        out["selected"] = index.isin(self.chosen.index)
        out["selected_units"] = self.chosen["units"].reindex(index).fillna(0).astype("int64")
        out["selection_reason_nb"] = self.reasons["reason_nb"].reindex(index).fillna("")
        out["selection_reason_en"] = self.reasons["reason_en"].reindex(index).fillna("")
        return out


# ------------------------------------------------------------------ spatial helpers


def _match_crs(layer: gpd.GeoDataFrame, target: gpd.GeoDataFrame, what: str) -> gpd.GeoDataFrame:
    """Return ``layer`` in ``target``'s CRS (reprojecting a layer that has its own CRS)."""
    if layer.crs is None:
        raise InputError(
            f"the {what} layer has no coordinate reference system",
            where=what,
            hint="Set its CRS (e.g. layer.set_crs(4326) or 25833) so it can be matched "
            "with the plots",
        )
    if target.crs is not None and not layer.crs.equals(target.crs):
        layer = layer.to_crs(target.crs)
    return layer


def site_points(plots: gpd.GeoDataFrame, layout_column: str = "layout") -> np.ndarray:
    """Where each plot's site is: the layout's centroid, else a point inside the plot.

    Parameters
    ----------
    plots : GeoDataFrame
        Plots in a projected CRS, optionally with a geometry column ``layout_column``.
    layout_column : str
        Column holding the unit layout from :func:`sitefinder.capacity.plan_units`.

    Returns
    -------
    numpy.ndarray
        Shape ``(len(plots), 2)``; NaN rows for plots without geometry.

    """
    geoms = np.asarray(plots.geometry.array, dtype=object)
    missing = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    pts = np.full(len(plots), None, dtype=object)
    pts[~missing] = shapely.point_on_surface(geoms[~missing])
    if layout_column in plots.columns:
        layout = np.asarray(pd.Series(plots[layout_column]).array, dtype=object)
        has_layout = ~(shapely.is_missing(layout) | shapely.is_empty(layout))
        pts[has_layout] = shapely.centroid(layout[has_layout])
    xy = np.full((len(plots), 2), np.nan)
    ok = ~shapely.is_missing(pts)
    if ok.any():
        xy[ok] = shapely.get_coordinates(pts[ok])
    return xy


def _existing_layer(existing: gpd.GeoDataFrame, plots: gpd.GeoDataFrame, units_column: str):
    existing = _match_crs(existing, plots, "existing sites")
    if units_column not in existing.columns:
        raise InputError(
            f"the existing sites layer has no column '{units_column}'",
            where="existing sites",
            hint=f"Add a '{units_column}' column with the number of units at each site",
        )
    units = pd.to_numeric(existing[units_column], errors="coerce")
    bad = units.isna() | (units < 0)
    if bad.any():
        row = existing.index[bad.to_numpy()][0]
        raise InputError(
            f"column '{units_column}' must be a whole number ≥ 0, got "
            f"{existing.loc[row, units_column]!r}",
            where=f"existing sites, row {row}",
            hint="Fill in the number of units for every existing site",
        )
    keep = ~(existing.geometry.is_empty | existing.geometry.isna()).to_numpy()
    return existing.geometry.to_numpy()[keep], units.to_numpy(dtype=float)[keep]


def count_existing_units_near(
    plots: gpd.GeoDataFrame,
    existing: gpd.GeoDataFrame | None,
    radius_m: float,
    *,
    units_column: str = "units",
) -> pd.Series:
    """Units of existing sites within ``radius_m`` of each plot's site.

    Parameters
    ----------
    plots : GeoDataFrame
        Plots in a projected CRS (site position as in :func:`site_points`).
    existing : GeoDataFrame or None
        Existing sites (points or polygons) with a ``units_column``; reprojected to the
        plots' CRS when needed. ``None`` counts 0 everywhere.
    radius_m : float
        Neighbourhood radius, metres (a site is counted when its geometry is within this
        distance).
    units_column : str
        Column with each existing site's number of units.

    Returns
    -------
    pandas.Series
        Integer counts aligned with ``plots.index``, named ``existing_units_near``.

    """
    require_projected(plots, "plots")
    out = pd.Series(0, index=plots.index, dtype="int64", name="existing_units_near")
    if existing is None or len(existing) == 0:
        return out
    geoms, units = _existing_layer(existing, plots, units_column)
    xy = site_points(plots)
    ok = ~np.isnan(xy[:, 0])
    if not ok.any() or len(geoms) == 0:
        return out
    tree = shapely.STRtree(geoms)
    pts = shapely.points(xy[ok])
    src, dst = tree.query(pts, predicate="dwithin", distance=radius_m)
    counts = np.bincount(src, weights=units[dst], minlength=pts.size)
    out.iloc[np.flatnonzero(ok)] = np.rint(counts).astype("int64")
    return out


def distance_to_existing(plots: gpd.GeoDataFrame, existing: gpd.GeoDataFrame | None) -> pd.Series:
    """Distance from each plot's site to the nearest existing site, metres.

    Returns a float Series aligned with ``plots.index`` (``inf`` when there are no
    existing sites, NaN for plots without geometry), named ``existing_dist_m``. Keep it
    out of published tables: it is sensitive (docs/CRITERIA.md §19).
    """
    require_projected(plots, "plots")
    out = pd.Series(np.inf, index=plots.index, dtype=float, name="existing_dist_m")
    xy = site_points(plots)
    ok = ~np.isnan(xy[:, 0])
    out[~ok] = np.nan
    if existing is None or len(existing) == 0:
        return out
    geoms = _match_crs(existing, plots, "existing sites").geometry.to_numpy()
    geoms = geoms[~(shapely.is_missing(geoms) | shapely.is_empty(geoms))]
    if len(geoms) == 0 or not ok.any():
        return out
    tree = shapely.STRtree(geoms)
    pts = shapely.points(xy[ok])
    (src, dst), dist = tree.query_nearest(pts, return_distance=True, all_matches=False)
    d = np.full(pts.size, np.inf)
    d[src] = dist
    out.iloc[np.flatnonzero(ok)] = d
    return out


def assign_districts(
    plots: gpd.GeoDataFrame, districts: gpd.GeoDataFrame, name_column: str
) -> pd.Series:
    """Name of the district each plot's site lies in.

    Parameters
    ----------
    plots : GeoDataFrame
        Plots in a projected CRS.
    districts : GeoDataFrame
        Any polygon layer (bydeler, grunnkretser, ...), reprojected to the plots' CRS when
        needed.
    name_column : str
        Column of ``districts`` holding the name to report.

    Returns
    -------
    pandas.Series
        Object Series aligned with ``plots.index``, named ``district``; ``None`` for plots
        outside every district. Where districts overlap, the first in layer order wins.

    """
    require_projected(plots, "plots")
    if name_column not in districts.columns:
        raise InputError(
            f"the districts layer has no column '{name_column}' (it has: "
            f"{', '.join(map(str, districts.columns.drop(districts.geometry.name)))})",
            where="districts",
            hint="Name the column that holds the district names",
        )
    districts = _match_crs(districts, plots, "districts")
    out = pd.Series([None] * len(plots), index=plots.index, dtype=object, name="district")
    xy = site_points(plots)
    ok = ~np.isnan(xy[:, 0])
    geoms = districts.geometry.to_numpy()
    if not ok.any() or len(geoms) == 0:
        return out
    tree = shapely.STRtree(geoms)
    src, dst = tree.query(shapely.points(xy[ok]), predicate="intersects")
    order = np.lexsort((dst, src))
    src, dst = src[order], dst[order]
    first = np.unique(src, return_index=True)[1]
    names = districts[name_column].to_numpy(dtype=object)
    positions = np.flatnonzero(ok)[src[first]]
    out.iloc[positions] = [None if pd.isna(v) else str(v) for v in names[dst[first]]]
    return out


# ------------------------------------------------------------------ problem building


@dataclasses.dataclass(frozen=True)
class _Limits:
    """The limits a model is built with (relaxed copies drive the infeasibility report).

    ``preferred`` and ``extra_value`` shape the objective only, never feasibility.
    """

    min_spacing: float
    existing_spacing: float
    radius: float
    max_near: float
    mode: str
    penalty: float
    max_per_district: int | None
    min_units: int
    preferred: int = HARD_MAX_UNITS_PER_SITE
    extra_value: float = 1.0
    lazy_above: int = 5000  # eligible sites above which spacing pairs are added lazily


@dataclasses.dataclass
class _Candidates:
    """Candidate data in positional arrays (computed once per selection)."""

    index: pd.Index
    plot_id: np.ndarray
    score: np.ndarray
    cap: np.ndarray
    xy: np.ndarray
    district: np.ndarray  # object, None when outside every district
    excluded: np.ndarray  # bool: status column not ok
    excluded_nb: np.ndarray
    excluded_en: np.ndarray
    capacity_bad: np.ndarray  # bool: capacity_status present and not ok
    capacity_nb: np.ndarray
    capacity_en: np.ndarray
    existing_near: np.ndarray  # units within the radius
    existing_dist: np.ndarray


@dataclasses.dataclass
class _Model:
    """An eligible subset and the MILP pieces that describe it.

    The variables are x = [y (m), u (m), w (q), o (p)]: use and units per eligible site,
    units above the preferred size for the ``wk`` sites that can have any, and the
    concentration overflow of the ``binding`` sites in ``penalise`` mode.
    """

    elig: np.ndarray  # positions into _Candidates of the eligible candidates
    code: np.ndarray  # reason code per candidate ("" when eligible)
    s: np.ndarray
    lo: np.ndarray
    hi: np.ndarray
    conflicts: np.ndarray  # (k, 2) eligible-local pairs closer than min_spacing, in the model
    near: list[np.ndarray]  # per eligible site: other eligible sites within radius, not conflicting
    e: np.ndarray  # existing units within the radius, per eligible site
    big_m: np.ndarray  # concentration big-M per eligible site (≤ 0: never binding)
    binding: np.ndarray  # eligible-local sites whose concentration row can bind
    wk: np.ndarray  # eligible-local sites with an excess variable w
    groups: list[np.ndarray]  # eligible-local members of each district needing a limit
    limits: _Limits
    xy: np.ndarray = dataclasses.field(default_factory=lambda: np.empty((0, 2)))
    # Lazy models only: clique rows (members of one square) and whether pairs are lazy.
    cliques: list[np.ndarray] = dataclasses.field(default_factory=list)
    lazy: bool = False

    @property
    def sizes(self) -> tuple[int, int, int]:
        """Numbers of sites (m), excess variables (q) and overflow variables (p)."""
        p = len(self.binding) if self.limits.mode == "penalise" else 0
        return len(self.elig), len(self.wk), p


def _pairs_within(xy: np.ndarray, r: float, strict: bool) -> np.ndarray:
    """Index pairs (i < j) of points closer than ``r`` (``strict``) or within ``r``."""
    if len(xy) < 2 or r <= 0:
        return np.empty((0, 2), dtype=np.int64)
    pairs = cKDTree(xy).query_pairs(r, output_type="ndarray")
    if pairs.size == 0:
        return np.empty((0, 2), dtype=np.int64)
    d = np.hypot(*(xy[pairs[:, 0]] - xy[pairs[:, 1]]).T)
    return pairs[d < r] if strict else pairs


def _eligibility(c: _Candidates, lim: _Limits) -> tuple[np.ndarray, np.ndarray]:
    """Reason code per candidate ("" when eligible) and the most units each may take."""
    code = np.full(len(c.score), "", dtype=object)
    code[c.excluded] = "excluded"
    code[(code == "") & np.isnan(c.xy[:, 0])] = "no_geometry"
    code[(code == "") & ~np.isfinite(c.score)] = "no_score"
    code[(code == "") & (c.capacity_bad | (c.cap < lim.min_units))] = "too_small"
    code[(code == "") & (c.existing_dist < lim.existing_spacing)] = "near_existing"
    hi_all = c.cap.astype(float).copy()
    if lim.mode == "exclude":
        hi_all = np.minimum(hi_all, lim.max_near - c.existing_near)
        code[(code == "") & (hi_all < lim.min_units)] = "concentration"
    return code, hi_all


def _neighbours(xy: np.ndarray, radius: float, spacing: float) -> list[np.ndarray]:
    """Per site, the other sites within ``radius`` that may be chosen together with it.

    Pairs closer than ``spacing`` may not both be chosen, so they never share a
    neighbourhood; leaving them out keeps the concentration rows short.
    """
    m = len(xy)
    pairs = _pairs_within(xy, radius, strict=False)
    if len(pairs):
        pairs = pairs[np.hypot(*(xy[pairs[:, 0]] - xy[pairs[:, 1]]).T) >= spacing]
    if not len(pairs):
        return [np.empty(0, dtype=np.int64) for _ in range(m)]
    both = np.vstack([pairs, pairs[:, ::-1]])
    both = both[np.argsort(both[:, 0], kind="stable")]
    splits = np.searchsorted(both[:, 0], np.arange(m + 1))
    return [both[splits[k] : splits[k + 1], 1] for k in range(m)]


def _clique_rows(xy: np.ndarray, spacing: float) -> list[np.ndarray]:
    """Groups of sites pairwise closer than ``spacing``: the squares of two grids.

    A square of side ``spacing``/√2 has a diagonal of ``spacing``, so (shrunk by a hair for
    the strict "closer than") any two sites in it conflict. The second grid is shifted by
    half a side so that pairs split by a border of the first often share a square of the
    second. Squares holding one site give no row.
    """
    if spacing <= 0 or len(xy) < 2:
        return []
    side = spacing / math.sqrt(2) * (1 - 1e-9)
    rows: list[np.ndarray] = []
    for shift in (0.0, side / 2):
        cell = np.floor((xy - xy.min(axis=0) + shift) / side).astype(np.int64)
        key = cell[:, 0] * (cell[:, 1].max() + 1) + cell[:, 1]
        order = np.argsort(key, kind="stable")
        starts = np.flatnonzero(np.r_[True, np.diff(key[order]) != 0])
        for group in np.split(order, starts[1:]):
            if len(group) > 1:
                rows.append(group)
    return rows


def _district_groups(district: np.ndarray, limit: int | None) -> list[np.ndarray]:
    """Local members of every district with more candidates than ``limit``."""
    if limit is None or not len(district):
        return []
    dist = pd.Series(district).dropna()
    return [members.index.to_numpy() for _, members in dist.groupby(dist, sort=True)
            if len(members) > limit]


def _build(c: _Candidates, lim: _Limits) -> _Model:
    code, hi_all = _eligibility(c, lim)
    elig = np.flatnonzero(code == "")
    xy = c.xy[elig]
    hi = np.floor(hi_all[elig]).astype(np.int64)
    lo = np.full(len(elig), lim.min_units, dtype=np.int64)
    lazy = len(elig) > lim.lazy_above
    if lazy:
        conflicts, cliques = np.empty((0, 2), dtype=np.int64), _clique_rows(xy, lim.min_spacing)
    else:
        conflicts, cliques = _pairs_within(xy, lim.min_spacing, strict=True), []
    near = _neighbours(xy, lim.radius, lim.min_spacing)
    e = c.existing_near[elig].astype(float)
    big_m = e + hi + np.array([hi[nb].sum() for nb in near], dtype=float) - lim.max_near
    # An excess variable only where units above the preferred size are possible and cheaper.
    wk = np.flatnonzero(hi > lim.preferred) if lim.extra_value < 1 else np.empty(0, np.int64)
    return _Model(elig, code, c.score[elig].astype(float), lo, hi, conflicts, near, e, big_m,
                  np.flatnonzero(big_m > 0), wk,
                  _district_groups(c.district[elig], lim.max_per_district), lim,
                  xy=xy, cliques=cliques, lazy=lazy)


class _Rows:
    """Collects sparse constraint rows one at a time."""

    def __init__(self) -> None:
        self.rows: list[int] = []
        self.cols: list[int] = []
        self.vals: list[float] = []
        self.lb: list[float] = []
        self.ub: list[float] = []

    def add(self, cols: Iterable[int], vals: Iterable[float], low: float, high: float) -> None:
        cols, vals = list(cols), list(vals)
        self.rows.extend([len(self.lb)] * len(cols))
        self.cols.extend(cols)
        self.vals.extend(vals)
        self.lb.append(low)
        self.ub.append(high)

    def constraint(self, nv: int) -> LinearConstraint | None:
        if not self.lb:
            return None
        a = sparse.csr_matrix((self.vals, (self.rows, self.cols)), shape=(len(self.lb), nv))
        return LinearConstraint(a, np.array(self.lb), np.array(self.ub))


def _link_rows(mdl: _Model) -> list[LinearConstraint]:
    """lo·y ≤ u ≤ hi·y, and w ≥ u − preferred·y for the sites with an excess variable."""
    m, q, p = mdl.sizes
    eye, pad = sparse.identity(m), sparse.csr_matrix((m, q + p))
    out = [
        LinearConstraint(sparse.hstack([sparse.diags(-mdl.lo.astype(float)), eye, pad]), 0,
                         np.inf),
        LinearConstraint(sparse.hstack([sparse.diags(-mdl.hi.astype(float)), eye, pad]),
                         -np.inf, 0),
    ]
    if q:
        r = np.arange(q)
        vals = np.concatenate([np.full(q, float(mdl.limits.preferred)), -np.ones(q), np.ones(q)])
        cols = np.concatenate([mdl.wk, m + mdl.wk, 2 * m + r])
        a = sparse.csr_matrix((vals, (np.tile(r, 3), cols)), shape=(q, 2 * m + q + p))
        out.append(LinearConstraint(a, 0, np.inf))
    return out


def _concentration_rows(mdl: _Model, rows: _Rows) -> None:
    """Neighbourhood limit of every chosen site whose limit can bind (big-M rows)."""
    m, q, _ = mdl.sizes
    lim = mdl.limits
    for idx, kk in enumerate(mdl.binding):
        # u_k + Σ u_near + M y_k ≤ max_near − e_k + M (exclude), with − o on the left
        # in penalise mode: o ≥ e_k + u_k + Σ u_near − max_near − M (1 − y_k).
        bm, nb = mdl.big_m[kk], mdl.near[kk]
        cols, vals = [m + kk, *(m + nb), kk], [1.0, *np.ones(len(nb)), bm]
        if lim.mode == "penalise":
            cols, vals = [*cols, 2 * m + q + idx], [*vals, -1.0]
        rows.add(cols, vals, -np.inf, lim.max_near - mdl.e[kk] + bm)


def _constraints(
    mdl: _Model, units: int | tuple[float, float] | None, sites: int | None
) -> tuple[list[LinearConstraint], np.ndarray]:
    """Linear rows over x = [y (m), u (m), w (q), o (p)]; returns (rows, upper bounds)."""
    m, q, p = mdl.sizes
    nv = 2 * m + q + p
    out = _link_rows(mdl)
    if len(mdl.conflicts):
        k = len(mdl.conflicts)
        a = sparse.csr_matrix(
            (np.ones(2 * k), (np.repeat(np.arange(k), 2), mdl.conflicts.ravel())), shape=(k, nv)
        )
        out.append(LinearConstraint(a, -np.inf, 1))
    rows = _Rows()
    for members in mdl.cliques:
        rows.add(members, np.ones(len(members)), -np.inf, 1)
    for members in mdl.groups:
        rows.add(members, np.ones(len(members)), -np.inf, mdl.limits.max_per_district)
    _concentration_rows(mdl, rows)
    if units is not None:
        # An int asks for exactly that total; a (low, high) pair is used by the diagnosis.
        u_lo, u_hi = units if isinstance(units, tuple) else (units, units)
        rows.add(m + np.arange(m), np.ones(m), u_lo, u_hi)
    if sites is not None:
        rows.add(np.arange(m), np.ones(m), sites, sites)
    extra = rows.constraint(nv)
    if extra is not None:
        out.append(extra)
    ub = np.concatenate([np.ones(m), mdl.hi.astype(float),
                         (mdl.hi[mdl.wk] - mdl.limits.preferred).astype(float), np.full(p, np.inf)])
    return out, ub


def _objective_vector(mdl: _Model, objective: str) -> np.ndarray:
    """Cost vector (minimised) over x for ``objective``."""
    m, q, p = mdl.sizes
    c = np.zeros(2 * m + q + p)
    if objective == "score":
        c[m : 2 * m] = -mdl.s
        c[2 * m : 2 * m + q] = (1.0 - mdl.limits.extra_value) * mdl.s[mdl.wk]
        c[2 * m + q :] = mdl.limits.penalty
    elif objective == "max_units":
        c[m : 2 * m] = -1.0
    elif objective == "min_units":
        c[m : 2 * m] = 1.0
    elif objective == "max_sites":
        c[:m] = -1.0
    elif objective == "min_sites":
        c[:m] = 1.0
    return c


def _solve(
    mdl: _Model,
    units: int | tuple[float, float] | None,
    sites: int | None,
    *,
    objective: str = "score",
    integral: bool = True,
    time_limit: float = 60.0,
    rel_gap: float = 1e-7,
    extra: list[LinearConstraint] | None = None,
):
    """Solve one model for ``objective``: score, max/min_units or max/min_sites.

    A lazy model is solved again with every pair of chosen sites closer than the spacing
    added as a row (kept on the model for later solves) until the chosen set keeps the
    spacing. Every round solves a relaxation of the full model, so an infeasible round
    proves the request infeasible and the last round's set is optimal for the full model.
    When time runs out on a set that still breaks the spacing, the result has no ``x``
    and ``status`` 1 (time limit), like a solve that found nothing in time.
    """
    if not (mdl.lazy and integral):
        return _solve_once(mdl, units, sites, objective=objective, integral=integral,
                           time_limit=time_limit, rel_gap=rel_gap, extra=extra)
    deadline = time.perf_counter() + time_limit
    while True:
        res = _solve_once(mdl, units, sites, objective=objective, time_limit=max(
            deadline - time.perf_counter(), 0.5), rel_gap=rel_gap, extra=extra)
        if res.x is None:
            return res
        new = _close_pairs(mdl, res.x[: len(mdl.elig)] > 0.5)
        if not len(new):
            return res
        mdl.conflicts = np.vstack([mdl.conflicts, new])
        if time.perf_counter() >= deadline:
            res.x, res.status = None, 1
            res.message = "time limit reached before the chosen sites kept the spacing"
            return res


def _close_pairs(mdl: _Model, chosen: np.ndarray) -> np.ndarray:
    """Eligible-local pairs of chosen sites closer than the spacing."""
    pos = np.flatnonzero(chosen)
    pairs = _pairs_within(mdl.xy[pos], mdl.limits.min_spacing, strict=True)
    return pos[pairs] if len(pairs) else np.empty((0, 2), dtype=np.int64)


def _solve_once(
    mdl: _Model,
    units: int | tuple[float, float] | None,
    sites: int | None,
    *,
    objective: str = "score",
    integral: bool = True,
    time_limit: float = 60.0,
    rel_gap: float = 1e-7,
    extra: list[LinearConstraint] | None = None,
):
    """One call of the MILP solver on the rows the model has now."""
    m, q, p = mdl.sizes
    cons, ub = _constraints(mdl, units, sites)
    # w and o are continuous: at any optimum they equal integer expressions of y and u.
    integrality = np.zeros(2 * m + q + p)
    if integral:
        integrality[: 2 * m] = 1
    return milp(
        _objective_vector(mdl, objective),
        constraints=cons + (extra or []),
        integrality=integrality,
        bounds=Bounds(np.zeros(2 * m + q + p), ub),
        options={"time_limit": time_limit, "mip_rel_gap": rel_gap, "disp": False},
    )


def _tie_break(
    mdl: _Model, units: int | None, sites: int | None, first, time_limit: float,
    first_seconds: float = math.inf,
):
    """Among sets as good as ``first`` (an optimal solve), the one with the fewest sites.

    Equal scores make many sets equally good, and the solver would return any of them.
    Fewer sites means fewer plots to buy and prepare (docs/CRITERIA.md §18). With only
    ``sites`` requested the site count is fixed, so the fewest units are built instead
    (units that add nothing to the objective are not worth building). Returns ``first``
    when both are fixed or the second solve finds nothing better in time.

    The second solve is harder than the first (the objective becomes a constraint), so
    it gets at most ``first_seconds`` (the first solve's time, at least 2 s) of what is
    left: a tie-break must not cost more than the answer it polishes.
    """
    if (units is None) == (sites is None) or time_limit <= 0:
        return first
    m = len(mdl.elig)
    c = _objective_vector(mdl, "score")
    # Hold the objective at the first optimum (to rounding) while minimising the count.
    floor = LinearConstraint(c[None, :], -np.inf, first.fun + 1e-9 * max(1.0, abs(first.fun)))
    count = "min_sites" if sites is None else "min_units"
    second = _solve(mdl, units, sites, objective=count,
                    time_limit=min(time_limit, max(2.0, first_seconds)), extra=[floor])
    if second.x is None:
        return first
    # Stopped early, the second set still holds the objective; keep it only if smaller.
    what = slice(0, m) if count == "min_sites" else slice(m, 2 * m)
    return second if second.x[what].sum() <= first.x[what].sum() + 1e-9 else first


def _penalty_of(mdl: _Model, chosen: np.ndarray, u: np.ndarray) -> float:
    """Concentration overflow penalty of a solution (eligible-local chosen flags, units)."""
    if mdl.limits.mode != "penalise":
        return 0.0
    e = mdl.e
    total = 0.0
    for k in np.flatnonzero(chosen):
        over = e[k] + u[k] + u[mdl.near[k]].sum() - mdl.limits.max_near
        total += max(0.0, over)
    return total * mdl.limits.penalty


def _value(mdl: _Model, chosen: np.ndarray, u: np.ndarray) -> float:
    """Objective of a solution (score per unit, discounted above the preferred size).

    Concentration penalties are subtracted in ``penalise`` mode.
    """
    lim = mdl.limits
    excess = np.maximum(u - lim.preferred, 0) * chosen
    discount = (1.0 - lim.extra_value) * float(mdl.s @ excess)
    return float(mdl.s @ u) - discount - _penalty_of(mdl, chosen, u)


# ------------------------------------------------------------------ diagnosis


def _reason_counts(code: np.ndarray) -> str:
    labels = {
        "excluded": "excluded in the ranking",
        "no_geometry": "without geometry",
        "no_score": "without a score",
        "too_small": "too small for min_units_per_site",
        "near_existing": "too close to an existing site (existing_spacing_m)",
        "concentration": "over max_units_near with existing sites",
    }
    vals, counts = np.unique(code[code != ""], return_counts=True)
    return ", ".join(f"{n} {labels.get(v, v)}" for v, n in zip(vals, counts, strict=True))


def _what(units: int | None, sites: int | None) -> str:
    if units is not None and sites is not None:
        return f"{_plural(units, 'unit')} on {_plural(sites, 'site')}"
    if units is not None:
        return _plural(units, "unit")
    return _plural(sites or 0, "site")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _diagnose(
    c: _Candidates, lim: _Limits, settings: ClusteringSettings, units: int | None,
    sites: int | None, max_units: int,
) -> InfeasibleError:
    """Explain an infeasible request: what is achievable and which limit binds.

    The returned error also carries ``achievable`` (dict: ``max_units``, ``max_sites``,
    and ``nearest_units`` when an exact total is impossible) and ``binding`` (the names of
    the settings that, relaxed alone, make the request feasible).
    """
    mdl = _build(c, lim)
    want = _what(units, sites)
    tl = min(settings.time_limit_s, 20.0)

    def best(model: _Model, objective: str, u=None, k=None) -> int | None:
        if len(model.elig) == 0:
            return 0 if objective.startswith("max") else None
        r = _solve(model, u, k, objective=objective, time_limit=tl)
        return None if r.x is None else int(round(abs(r.fun)))

    def describe(model: _Model) -> tuple[str, dict[str, int | None]]:
        info: dict[str, int | None] = {"max_sites": best(model, "max_sites")}
        if units is not None:
            info["max_units"] = best(model, "max_units", None, sites)
            if sites is not None:
                info["min_units"] = best(model, "min_units", None, sites)
                if info["max_units"] is None:
                    return f"no set of {_plural(sites, 'site')}", info
                return (f"{info['min_units']}–{info['max_units']} units on "
                        f"{_plural(sites, 'site')}"), info
            return (f"at most {_plural(info['max_units'] or 0, 'unit')} on at most "
                    f"{_plural(info['max_sites'] or 0, 'site')}"), info
        return f"at most {_plural(info['max_sites'] or 0, 'site')}", info

    def feasible(model: _Model) -> bool:
        if len(model.elig) == 0:
            return False
        return _solve(model, units, sites, objective="max_sites", time_limit=tl).x is not None

    lines = [f"Cannot deliver {want} under the clustering limits."]
    if len(mdl.elig) == 0:
        lines.append(f"None of the {len(c.score)} candidate plots is eligible.")
        info: dict[str, int | None] = {"max_units": 0, "max_sites": 0}
    else:
        text, info = describe(mdl)
        lines.append(f"With {len(mdl.elig)} eligible plots the limits allow {text}.")
    if units is not None and units < lim.min_units:
        lines.append(
            f"A site has at least min_units_per_site = {lim.min_units} units; request at "
            "least that many or lower min_units_per_site."
        )
    elif (
        units is not None and sites is None and info.get("max_units")
        and units < info["max_units"]
    ):
        # The total is in range but no combination of site sizes adds up to it exactly.
        below = best(mdl, "max_units", (0, units))
        above = best(mdl, "min_units", (units, np.inf))
        info["nearest_units"] = [v for v in (below, above) if v]
        lines.append(
            f"No combination of sites adds up to exactly {units}; the nearest totals "
            f"possible are {' and '.join(map(str, info['nearest_units']))}."
        )
    if units is not None and sites is not None and units > sites * max_units:
        lines.append(
            f"{_plural(sites, 'site')} can hold at most {sites * max_units} units at "
            f"max_units_per_site = {max_units}."
        )
    relaxations = [
        ("min_spacing_m", f"min_spacing_m = {lim.min_spacing:g} m",
         dataclasses.replace(lim, min_spacing=0.0)),
        ("max_sites_per_district", f"max_sites_per_district = {lim.max_per_district}",
         dataclasses.replace(lim, max_per_district=None)),
        ("max_units_near", f"max_units_near = {lim.max_near:g} within {lim.radius:g} m",
         dataclasses.replace(lim, max_near=math.inf)),
        ("existing_spacing_m", f"existing_spacing_m = {lim.existing_spacing:g} m",
         dataclasses.replace(lim, existing_spacing=0.0)),
        ("min_units_per_site", f"min_units_per_site = {lim.min_units}",
         dataclasses.replace(lim, min_units=1)),
    ]
    binding, notes = [], []
    for name, label, relaxed in relaxations:
        if relaxed == lim:
            continue  # that limit is already off
        rm = _build(c, relaxed)
        if feasible(rm):
            binding.append(name)
            notes.append(f"{label} (without it: {describe(rm)[0]})")
    if notes:
        lines.append(
            "Relaxing any one of these alone makes the request feasible: "
            + "; ".join(notes) + "."
        )
    else:
        lines.append(
            "No single limit is to blame: relax several limits, add candidate plots or ask "
            f"for less (capacity is capped at max_units_per_site = {max_units}; the hard "
            f"ceiling is {HARD_MAX_UNITS_PER_SITE})."
        )
    excluded = _reason_counts(mdl.code)
    if excluded:
        lines.append(f"Not eligible: {excluded}.")
    err = InfeasibleError(" ".join(lines))
    err.achievable = info
    err.binding = binding
    return err


# ------------------------------------------------------------------ reasons


def _reasons(
    c: _Candidates, mdl: _Model, chosen_pos: np.ndarray, units_pos: np.ndarray,
    settings: ClusteringSettings, capacity: CapacitySettings,
) -> pd.DataFrame:
    """Reason (code, nb, en) for every candidate position not in ``chosen_pos``."""
    n = len(c.score)
    lim = mdl.limits
    code = mdl.code.copy()
    nb = np.full(n, "", dtype=object)
    en = np.full(n, "", dtype=object)
    for i in np.flatnonzero(code == "excluded"):
        nb[i] = "Utelukket i rangeringen" + (f": {c.excluded_nb[i]}" if c.excluded_nb[i] else "")
        en[i] = "Excluded in the ranking" + (f": {c.excluded_en[i]}" if c.excluded_en[i] else "")
    nb[code == "no_geometry"] = "Tomten mangler geometri"
    en[code == "no_geometry"] = "The plot has no geometry"
    nb[code == "no_score"] = "Tomten har ingen poengsum"
    en[code == "no_score"] = "The plot has no score"
    for i in np.flatnonzero(code == "too_small"):
        if c.capacity_nb[i]:
            nb[i], en[i] = c.capacity_nb[i], c.capacity_en[i]
        else:
            why_nb, why_en = too_small_texts(int(c.cap[i]), lim.min_units)
            nb[i], en[i] = f"For liten: {why_nb}", f"Too small: {why_en}"
    sp = f"{lim.existing_spacing:g}"
    nb[code == "near_existing"] = f"Nærmere enn {sp} m et eksisterende botilbud"
    en[code == "near_existing"] = f"Closer than {sp} m to an existing site"
    near_txt_nb = (f"Med eksisterende botilbud innen {lim.radius:g} m ville nærområdet få mer "
                   f"enn {lim.max_near:g} enheter")
    near_txt_en = (f"Together with existing sites within {lim.radius:g} m the neighbourhood "
                   f"would exceed {lim.max_near:g} units")
    nb[code == "concentration"] = near_txt_nb
    en[code == "concentration"] = near_txt_en

    # Eligible but not chosen: explain relative to the chosen set.
    chosen_set = set(chosen_pos.tolist())
    rest = [i for i in mdl.elig if i not in chosen_set]
    if rest:
        cxy = c.xy[chosen_pos]
        tree = cKDTree(cxy) if len(chosen_pos) else None
        per_district = pd.Series(c.district[chosen_pos]).value_counts()
        units_by_pos = dict(zip(chosen_pos.tolist(), units_pos.tolist(), strict=True))
        for i in rest:
            if tree is not None and lim.min_spacing > 0:
                d, j = tree.query(c.xy[i])
                if d < lim.min_spacing:
                    pid = c.plot_id[chosen_pos[j]]
                    code[i] = "near_selected"
                    nb[i] = (f"{d:.0f} m fra valgt tomt {pid} (minsteavstand "
                             f"{lim.min_spacing:g} m)")
                    en[i] = (f"Within {d:.0f} m of selected site {pid} (minimum spacing "
                             f"{lim.min_spacing:g} m)")
                    continue
            dname = c.district[i]
            if (
                lim.max_per_district is not None
                and dname is not None
                and per_district.get(dname, 0) >= lim.max_per_district
            ):
                k = int(per_district[dname])
                code[i] = "district_full"
                nb[i] = f"Grensen per bydel er nådd: {k} tomter er valgt i {dname}"
                en[i] = f"District limit reached: {k} sites already chosen in {dname}"
                continue
            if tree is not None and lim.mode == "exclude":
                close = tree.query_ball_point(c.xy[i], lim.radius)
                new_near = sum(units_by_pos[int(chosen_pos[j])] for j in close)
                if new_near and c.existing_near[i] + new_near + lim.min_units > lim.max_near:
                    pid = c.plot_id[chosen_pos[close[0]]]
                    code[i] = "crowded_by_selected"
                    nb[i] = (f"Sammen med valgt tomt {pid} ville det blitt mer enn "
                             f"{lim.max_near:g} enheter innen {lim.radius:g} m")
                    en[i] = (f"Together with selected site {pid} there would be more than "
                             f"{lim.max_near:g} units within {lim.radius:g} m")
                    continue
            code[i] = "not_needed"
            nb[i] = "Ikke valgt: den beste kombinasjonen dekker bestillingen med andre tomter"
            en[i] = "Not chosen: the best combination delivers the request with other plots"
    not_chosen = np.setdiff1d(np.arange(n), chosen_pos)
    return pd.DataFrame(
        {
            "plot_id": c.plot_id[not_chosen],
            "reason_code": code[not_chosen],
            "reason_nb": nb[not_chosen],
            "reason_en": en[not_chosen],
        },
        index=c.index[not_chosen],
    )


# ------------------------------------------------------------------ entry point


def _text_column(df: pd.DataFrame, name: str) -> np.ndarray:
    if name not in df.columns:
        return np.full(len(df), "", dtype=object)
    return df[name].astype(object).where(df[name].notna(), "").astype(str).to_numpy(dtype=object)


def _candidates(
    df: gpd.GeoDataFrame,
    lim_radius: float,
    existing: gpd.GeoDataFrame | None,
    district_column: str,
    layout_column: str,
) -> _Candidates:
    for col in ("score", "capacity_units"):
        if col not in df.columns:
            hint = (
                "Join the output of sitefinder.capacity.plan_units to the ranked plots first"
                if col == "capacity_units"
                else "Select from the ranked plots (they carry a 'score' column)"
            )
            raise InputError(f"the candidates have no '{col}' column", where="candidates",
                             hint=hint)
    if "plot_id" in df.columns:
        plot_id = df["plot_id"].astype(str).to_numpy(dtype=object)
    else:
        plot_id = np.array([str(i) for i in df.index], dtype=object)
    dup = pd.Series(plot_id).duplicated()
    if dup.any():
        raise InputError(
            f"plot_id '{plot_id[dup.to_numpy()][0]}' appears more than once",
            where="candidates, column 'plot_id'",
            hint="Give every candidate plot a unique id",
        )
    if not df.index.is_unique:
        raise InputError("the candidates' index has duplicates", where="candidates",
                         hint="Call reset_index() first")
    score = pd.to_numeric(df["score"], errors="coerce").to_numpy(dtype=float)
    bad_score = np.isfinite(score) & (score < 0)
    if bad_score.any():
        row = df.index[bad_score][0]
        raise InputError(f"score {score[bad_score][0]} is negative", where=f"candidates, row {row}",
                         hint="Scores are 0–100; fix the scoring step")
    cap = pd.to_numeric(df["capacity_units"], errors="coerce").fillna(0).to_numpy(dtype=float)
    if (cap < 0).any() or (cap != np.floor(cap)).any():
        row = df.index[(cap < 0) | (cap != np.floor(cap))][0]
        raise InputError("capacity_units must be a whole number ≥ 0",
                         where=f"candidates, row {row}", hint="Use plan_units' output")
    if "status" in df.columns:
        excluded = (df["status"].astype(object).fillna("") != STATUS_OK).to_numpy()
    else:
        excluded = np.zeros(len(df), dtype=bool)
    if "capacity_status" in df.columns:
        # "too_small" is re-decided from capacity_units with this call's minimum, so a plot
        # planned with min 2 can still be used when selecting with min 1.
        capacity_bad = ~df["capacity_status"].astype(object).fillna("").isin(
            [STATUS_OK, STATUS_TOO_SMALL]
        ).to_numpy()
    else:
        capacity_bad = np.zeros(len(df), dtype=bool)
    if district_column in df.columns:
        district = np.array(
            [None if pd.isna(v) else str(v) for v in df[district_column]], dtype=object
        )
    else:
        district = np.full(len(df), None, dtype=object)
    return _Candidates(
        index=df.index,
        plot_id=plot_id,
        score=score,
        cap=cap,
        xy=site_points(df, layout_column),
        district=district,
        excluded=excluded,
        excluded_nb=_text_column(df, "status_reason_nb"),
        excluded_en=_text_column(df, "status_reason_en"),
        capacity_bad=capacity_bad,
        capacity_nb=_text_column(df, "capacity_reason_nb"),
        capacity_en=_text_column(df, "capacity_reason_en"),
        existing_near=count_existing_units_near(df, existing, lim_radius).to_numpy(dtype=float),
        existing_dist=distance_to_existing(df, existing).fillna(np.inf).to_numpy(dtype=float),
    )


def _check_request(candidates: gpd.GeoDataFrame, units: int | None, sites: int | None) -> None:
    """Refuse a request select_sites cannot even start on."""
    if not isinstance(candidates, gpd.GeoDataFrame):
        raise InputError(
            f"select_sites needs a GeoDataFrame of candidates, got {type(candidates).__name__}",
            where="candidates",
        )
    require_projected(candidates, "candidates")
    if units is None and sites is None:
        raise InputError("nothing requested", where="select",
                         hint="Ask for a number of units (--units N) or of sites (--sites N)")
    for name, val in (("units", units), ("sites", sites)):
        if val is not None and (not isinstance(val, int | np.integer) or val < 1):
            raise InputError(f"{name} must be a whole number ≥ 1, got {val!r}",
                             where=f"select, {name}")


def _limits(settings: ClusteringSettings, capacity: CapacitySettings) -> _Limits:
    return _Limits(
        min_spacing=settings.min_spacing_m,
        existing_spacing=(
            settings.min_spacing_m if settings.existing_spacing_m is None
            else settings.existing_spacing_m
        ),
        radius=settings.concentration_radius_m,
        max_near=float(settings.max_units_near),
        mode=settings.concentration_mode,
        penalty=settings.penalty,
        max_per_district=settings.max_sites_per_district,
        min_units=capacity.min_units_per_site,
        preferred=capacity.preferred_units_per_site,
        extra_value=capacity.extra_unit_value,
        lazy_above=settings.exact_max_candidates,
    )


@dataclasses.dataclass(frozen=True)
class _Solution:
    """A chosen set in eligible-local terms, with how it was found."""

    chosen: np.ndarray  # bool per eligible site
    units: np.ndarray  # int per eligible site (0 when not chosen)
    status: str
    optimal: bool
    objective: float
    bound: float
    method: str


@dataclasses.dataclass(frozen=True)
class _Request:
    """What was asked, and what an infeasible request is diagnosed with."""

    units: int | None
    sites: int | None
    c: _Candidates
    settings: ClusteringSettings
    max_units: int

    def infeasible(self, mdl: _Model) -> InfeasibleError:
        """The error explaining why ``mdl`` cannot deliver the request."""
        return _diagnose(self.c, mdl.limits, self.settings, self.units, self.sites,
                         self.max_units)


def _solve_exact(mdl: _Model, req: _Request) -> _Solution:
    """Solve the MILP (then break ties); raise when there is no set.

    A lazy (large) model first gets a starting set from the promising candidates alone
    (:func:`_head_start`). When the full model runs out of time, the better of its set and
    the starting set is returned with its proven gap (to the MILP's dual bound, or to the
    LP relaxation when the solver stopped before it had one).

    Infeasibility is raised only when the solver proved it; a solve that ran out of time
    without a set that keeps every rule raises :class:`SelectionTimeoutError` instead.
    """
    m = len(mdl.elig)
    st = req.settings
    start = time.perf_counter()
    head = _head_start(mdl, req, st.time_limit_s / 4) if mdl.lazy else None
    res = _solve(mdl, req.units, req.sites, time_limit=st.time_limit_s - (
        time.perf_counter() - start), rel_gap=st.mip_rel_gap)
    if res.x is None and res.status == 2:
        raise req.infeasible(mdl)
    dual = getattr(res, "mip_dual_bound", None)
    bound = float(-dual) if dual is not None and np.isfinite(dual) else math.inf
    optimal = res.status == 0
    if optimal:
        first_seconds = time.perf_counter() - start
        res = _tie_break(mdl, req.units, req.sites, res, st.time_limit_s - first_seconds,
                         first_seconds)
    if res.x is not None:
        chosen = res.x[:m] > 0.5
        u = np.rint(res.x[m : 2 * m]).astype(np.int64) * chosen
        sol = _Solution(chosen, u, "optimal" if optimal else "time_limit", optimal,
                        _value(mdl, chosen, u), bound, "milp-lazy" if mdl.lazy else "milp")
    elif head is None:
        raise SelectionTimeoutError(
            f"The solver found no set that keeps every rule within time_limit_s = "
            f"{st.time_limit_s:g} s ({res.message}; {m} eligible plots). This is not a proof "
            "that none exists: raise time_limit_s under clustering: in the scenario, or ask "
            "for fewer units or sites"
        )
    else:
        sol = head
    if not optimal and head is not None and head.objective > sol.objective:
        sol = head
    if not sol.optimal and not np.isfinite(bound):
        lp = _solve(mdl, req.units, req.sites, integral=False, time_limit=st.time_limit_s)
        bound = float(-lp.fun) if lp.x is not None else math.inf
    # HiGHS proves optimality within mip_rel_gap; never report a bound below the value.
    bound = max(bound, sol.objective)
    if not sol.optimal and bound - sol.objective <= st.mip_rel_gap * max(1.0, abs(bound)):
        # The dual bound of a stopped solve can prove the other set optimal.
        sol = dataclasses.replace(sol, status="optimal", optimal=True)
    return dataclasses.replace(sol, bound=bound)


def _promising(mdl: _Model, top: int = 1000) -> np.ndarray:
    """Eligible-local sites worth trying first: the best overall and the best per square.

    The ``top`` best sites by score, plus the best site in every square of side
    ``min_spacing_m`` (at least 100 m), so that a set spread over the whole area exists
    among them even when the very best sites crowd into one neighbourhood.
    """
    order = np.lexsort((-mdl.hi, -mdl.s))  # best first
    keep = np.zeros(len(order), dtype=bool)
    keep[order[:top]] = True
    side = max(mdl.limits.min_spacing, 100.0)
    cell = np.floor((mdl.xy[order] - mdl.xy.min(axis=0)) / side).astype(np.int64)
    key = cell[:, 0] * (cell[:, 1].max() + 1) + cell[:, 1]
    keep[order[np.unique(key, return_index=True)[1]]] = True
    return np.flatnonzero(keep)


def _head_start(mdl: _Model, req: _Request, time_limit: float) -> _Solution | None:
    """The best set among the promising sites alone (every rule kept), or None.

    Solved exactly on the subset, so it is a valid set of the full model and its value a
    lower bound on the optimum.
    """
    sub = _promising(mdl)
    if len(sub) >= len(mdl.elig):
        return None
    c = req.c
    pos = mdl.elig[sub]
    subset = dataclasses.replace(c, **{
        f.name: getattr(c, f.name)[pos] for f in dataclasses.fields(c) if f.name != "index"
    }, index=c.index[pos])
    small = _build(subset, dataclasses.replace(mdl.limits, lazy_above=len(pos)))
    res = _solve(small, req.units, req.sites, time_limit=time_limit,
                 rel_gap=req.settings.mip_rel_gap)
    if res.x is None:
        return None
    k = len(small.elig)
    local = sub[small.elig]  # the subset's eligible sites, as full eligible-local indices
    chosen = np.zeros(len(mdl.elig), dtype=bool)
    units = np.zeros(len(mdl.elig), dtype=np.int64)
    chosen[local] = res.x[:k] > 0.5
    units[local] = np.rint(res.x[k : 2 * k]).astype(np.int64) * (res.x[:k] > 0.5)
    return _Solution(chosen, units, "time_limit", False, _value(mdl, chosen, units), math.inf,
                     "milp-lazy")


def _chosen_layouts(
    candidates: gpd.GeoDataFrame, layout_column: str, pos: np.ndarray, units: np.ndarray
) -> list[shapely.Geometry]:
    """Each chosen plot's layout cut to the units built there."""
    if layout_column not in candidates.columns:
        return [shapely.MultiPolygon()] * len(pos)
    full = np.asarray(pd.Series(candidates[layout_column]).array, dtype=object)[pos]
    # plan_units lists units in placement order, so the first k are a valid layout of
    # k units (fewer units only free space for the extras).
    return [
        shapely.MultiPolygon() if g is None or g.is_empty
        else shapely.MultiPolygon(list(shapely.get_parts(g)[:k]))
        for g, k in zip(full, units, strict=True)
    ]


def _chosen_frame(
    candidates: gpd.GeoDataFrame, c: _Candidates, layout_column: str, pos: np.ndarray,
    units: np.ndarray,
) -> gpd.GeoDataFrame:
    """The chosen sites as documented in :class:`SelectionResult`, best score first."""
    index, crs = candidates.index[pos], candidates.crs
    chosen = gpd.GeoDataFrame(
        {
            "plot_id": c.plot_id[pos],
            "units": units.astype("int64"),
            "score": c.score[pos],
            "district": c.district[pos],
            # The position spacing was measured from: the centre of the plot's full layout.
            "x": c.xy[pos, 0],
            "y": c.xy[pos, 1],
            "plot_geometry": gpd.GeoSeries(candidates.geometry.iloc[pos].to_numpy(),
                                           index=index, crs=crs),
        },
        geometry=gpd.GeoSeries(_chosen_layouts(candidates, layout_column, pos, units),
                               index=index, crs=crs).rename("layout"),
        index=index,
        crs=crs,
    )
    return chosen.iloc[np.lexsort((chosen["plot_id"].to_numpy(), -chosen["score"].to_numpy()))]


def _per_district(c: _Candidates, mdl: _Model, pos: np.ndarray, units: np.ndarray) -> pd.DataFrame:
    dist_all = pd.Series(c.district, index=c.index).fillna("(ingen bydel / no district)")
    out = pd.DataFrame(
        {
            "candidates": dist_all.value_counts(),
            "eligible": dist_all.iloc[mdl.elig].value_counts(),
            "sites": dist_all.iloc[pos].value_counts(),
            "units": pd.Series(units, index=dist_all.iloc[pos].to_numpy()).groupby(level=0).sum(),
        }
    ).fillna(0).astype("int64").sort_index()
    out.index.name = "district"
    return out


#: Said when no existing sites were given: the concentration limit then only saw new sites.
NOTE_NO_EXISTING = (
    "Konsentrasjon er bare kontrollert mellom nye tomter: ingen eksisterende småhus er "
    "oppgitt (existing_sites i scenarioet).",
    "Concentration was checked only among new sites: no existing småhus were given "
    "(existing_sites in the scenario).",
)


def _notes(existing: gpd.GeoDataFrame | None) -> tuple[list[str], list[str]]:
    """Caveats about the check, in bokmål and English."""
    if existing is None or len(existing) == 0:
        return [NOTE_NO_EXISTING[0]], [NOTE_NO_EXISTING[1]]
    return [], []


def select_sites(
    candidates: gpd.GeoDataFrame,
    settings: ClusteringSettings,
    *,
    units: int | None = None,
    sites: int | None = None,
    capacity: CapacitySettings | None = None,
    existing: gpd.GeoDataFrame | None = None,
    district_column: str = "district",
    layout_column: str = "layout",
) -> SelectionResult:
    """Choose sites that deliver the request with the best total score under the limits.

    Parameters
    ----------
    candidates : GeoDataFrame
        Candidate plots in a projected CRS, one row each, with ``score`` (0–100) and
        ``capacity_units`` (from :func:`sitefinder.capacity.plan_units`). Optional columns
        used when present: ``plot_id`` (else the index), ``status`` (only ``ok`` rows are
        eligible) with ``status_reason_nb/en``, ``capacity_status`` with
        ``capacity_reason_nb/en``, ``district_column`` (from :func:`assign_districts`) and
        ``layout_column`` (the unit layout).
    settings : ClusteringSettings
        Spacing, concentration and district limits, and solver settings.
    units : int, optional
        Exactly this many units are delivered.
    sites : int, optional
        Exactly this many sites are chosen. Give ``units``, ``sites`` or both.
    capacity : CapacitySettings, optional
        Supplies ``min_units_per_site`` and ``max_units_per_site``, and the small-site
        preference ``preferred_units_per_site`` / ``extra_unit_value`` of the objective
        (defaults when omitted).
    existing : GeoDataFrame, optional
        Existing sites (points or polygons) with a ``units`` column; sensitive. They count
        against spacing and concentration. When None or empty, concentration is checked
        among the new sites only and the result's ``notes_nb`` / ``notes_en`` say so.
    district_column, layout_column : str
        Column names in ``candidates``.

    Returns
    -------
    SelectionResult
        The chosen set, solver status and bound, and a reason for every other candidate.

    Raises
    ------
    InfeasibleError
        When no set satisfies the request under the limits; the message says what can be
        delivered and which limit to relax. Raised only when the solver proved it.
    SelectionTimeoutError
        When ``time_limit_s`` ran out before any set that keeps every rule was found.
    InputError
        On a missing column, non-metric CRS or a bad request.

    """
    capacity = capacity or CapacitySettings()
    _check_request(candidates, units, sites)
    lim = _limits(settings, capacity)
    c = _candidates(candidates, lim.radius, existing, district_column, layout_column)
    # Capacity above the scenario's cap (e.g. computed with another scenario) is clipped.
    c.cap = np.minimum(c.cap, capacity.max_units_per_site)
    mdl = _build(c, lim)
    req = _Request(units, sites, c, settings, capacity.max_units_per_site)
    if len(mdl.elig) == 0:
        raise req.infeasible(mdl)
    sol = _solve_exact(mdl, req)

    pos, units_pos = mdl.elig[sol.chosen], sol.units[sol.chosen]
    chosen = _chosen_frame(candidates, c, layout_column, pos, units_pos)
    notes_nb, notes_en = _notes(existing)
    # The notes travel with the chosen sites (attrs survive selection and reprojection).
    chosen.attrs.update(notes_nb=list(notes_nb), notes_en=list(notes_en))
    gap = 0.0 if sol.optimal else max(0.0, (sol.bound - sol.objective) / max(abs(sol.bound), 1e-9))
    return SelectionResult(
        chosen=chosen,
        status=sol.status,
        optimal=bool(sol.optimal),
        objective=sol.objective,
        bound=sol.bound,
        gap=gap,
        method=sol.method,
        reasons=_reasons(c, mdl, pos, units_pos, settings, capacity),
        per_district=_per_district(c, mdl, pos, units_pos),
        requested_units=units,
        requested_sites=sites,
        notes_nb=notes_nb,
        notes_en=notes_en,
    )


def write_selection(result: SelectionResult, out_dir: str | Path) -> dict[str, Path]:
    """Write ``selected.csv`` and ``selected.gpkg`` (layers ``sites`` and ``layout``).

    Parameters
    ----------
    result : SelectionResult
        From :func:`select_sites`.
    out_dir : str or Path
        Directory to write into (created when missing). Existing files are replaced.

    Returns
    -------
    dict
        ``{"csv": path, "gpkg": path}``.

    Notes
    -----
    ``sites`` holds one plot polygon per chosen site (plot_id, units, score, district);
    ``layout`` one polygon per planned unit (plot_id, unit). The CSV adds the site's
    position (``x``, ``y`` in the layer's CRS). Existing sites are never written.

    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    ch = result.chosen
    attrs = pd.DataFrame(
        {
            "plot_id": ch["plot_id"].astype(str).to_numpy(),
            "units": ch["units"].astype("int64").to_numpy(),
            "score": ch["score"].astype(float).to_numpy(),
            "district": ch["district"].astype(object).fillna("").astype(str).to_numpy(),
        }
    )
    csv = attrs.assign(x=np.round(ch["x"].to_numpy(dtype=float), 1),
                       y=np.round(ch["y"].to_numpy(dtype=float), 1))
    csv_path = out / "selected.csv"
    csv.to_csv(csv_path, index=False)
    # Text that a spreadsheet would run as a formula (plot ids like "=1+2") is written as
    # text; imported here because sitefinder.outputs depends on the scenario, which
    # depends on this module.
    from sitefinder.outputs import protect_csv_file

    protect_csv_file(csv_path)

    gpkg_path = out / "selected.gpkg"
    if gpkg_path.exists():
        gpkg_path.unlink()
    sites_gdf = gpd.GeoDataFrame(
        attrs, geometry=gpd.GeoSeries(ch["plot_geometry"].to_numpy(), crs=ch.crs), crs=ch.crs
    )
    # Plots mix Polygon and MultiPolygon; one declared type keeps GIS tools happy.
    sites_gdf.to_file(gpkg_path, layer="sites", driver="GPKG", promote_to_multi=True)
    parts, owner = shapely.get_parts(ch.geometry.to_numpy(), return_index=True)
    unit_no = pd.Series(owner).groupby(owner).cumcount().to_numpy() + 1
    layout_gdf = gpd.GeoDataFrame(
        {"plot_id": attrs["plot_id"].to_numpy()[owner], "unit": unit_no.astype("int64")},
        geometry=gpd.GeoSeries(parts, crs=ch.crs),
        crs=ch.crs,
    )
    layout_gdf.to_file(gpkg_path, layer="layout", driver="GPKG")
    # QGIS opens the chosen sites in their own colour (the table layer_styles).
    from sitefinder.qgis_styles import style_selection

    style_selection(gpkg_path)
    return {"csv": csv_path, "gpkg": gpkg_path}
