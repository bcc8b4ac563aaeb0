"""How many småhus units each plot takes, by laying the units out geometrically.

Plot capacity is the cost driver in docs/CRITERIA.md §18 (the plot cost is spread
over "usually four per plot", some plots take only 2–3) and it is capped by the clustering
limits of criterion 10 (Sandnes' main rule 4 co-located units, national guidance 6–8 at
most). A number read off the plot area alone over-counts narrow and irregular plots, so
each plot gets a real layout that a map can draw and a planner can check.

The layout, per plot
--------------------
1. *Buildable area* = the plot shrunk inwards by ``setback_m`` (distance from the plot
   boundary to any unit wall).
2. Units are ``unit_width_m`` × ``unit_length_m`` rectangles (default 6 m × 8.5 m, the
   exterior of a road-transportable unit in Verdal, SINTEF 2021 §6.1, §6.1).
   For each of ``n_angles`` orientations — starting from the orientation of the
   buildable area's minimum rotated rectangle (plots usually follow a road) — every
   position on a ``position_step_m`` lattice where the buildable area covers a unit is a
   candidate. Units are then placed greedily from one corner of the plot (all four
   corners are tried), each at least ``unit_spacing_m`` (fire separation) from the
   units already placed. The layout with most units wins; the search stops as soon as
   one reaches ``max_units_per_site``. A fixed grid would be simpler but loses a unit on
   about a third of tight, irregular plots.
3. *Per-unit extras* — an outdoor store/technical room (§6.1), a share of guest parking
   (0.5 space per unit, Sandnes rule f, §6.6) and a fireproof waste container (Sandnes
   rule g, §6.6) — are not drawn. They take an area budget: each unit needs
   ``extras_area_m2`` of plot that is neither under a unit nor inside its
   fire-separation zone (the unit grown by half the spacing). The setback strip counts
   as free: parking and bins usually sit by the access road. When the budget does not
   fit, units are dropped (the last placed first) until it does.
4. Capacity = units placed, capped at ``max_units_per_site``. A plot that takes fewer than
   ``min_units_per_site`` keeps its count and layout but gets status ``too_small`` with a
   reason in bokmål and English. The minimum is 1 by default: a single house is a valid
   site (docs/CRITERIA.md §16, §6.1), so a plot is ``too_small`` only when not even one unit fits.

How the layout is computed lives in two modules: :mod:`sitefinder.capacity_search`
(the lattice search with bit sets, plot by plot, for concave plots, plots with holes
or in parts) and :mod:`sitefinder.capacity_batch` (clearly convex plots, a thousand
at a time, orientation by orientation); both give exactly the layouts of testing every
position and pair one by one (tests/test_capacity_fast.py, tests/test_capacity_batch.py).
This module decides which plots go where and shares the work out over processes.

From :data:`POOL_MIN_PLOTS` plots on (Linux), the plots are laid out in chunks by this
process and a forked worker process side by side (``SITEFINDER_WORKERS=1`` keeps the
work in one process); the layouts do not depend on which process drew them. A
:class:`LayoutRun` starts the worker ahead (a study does so before it reads the OSM
extract) and lets this process join in later. Only the layouts at the hard ceiling are
kept (:class:`CeilingLayouts`); a scenario's units per site cut them when scoring.

How many of those units a selection actually builds on a site is decided by
:mod:`sitefinder.select`, which prefers ``preferred_units_per_site`` (2–3, §6.1) and values
units above it at ``extra_unit_value`` of the plot's score.

Invalid polygons are repaired with :func:`shapely.make_valid` (the ranked output reports
invalid geometry itself); plots without polygon area get capacity 0 and a reason, never an
exception.
"""

from __future__ import annotations

import multiprocessing
import operator
import os
import sys
import traceback
import weakref
from collections.abc import Callable, Iterator

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from sitefinder.capacity_batch import _CONVEX_BATCH, _layout_convex
from sitefinder.capacity_search import (
    _EMPTY_LAYOUT,
    _NO_UNITS,
    _layout_plot,
    _multipolygons,
    _Plots,
)
from sitefinder.errors import InputError, SitefinderError
from sitefinder.language import fmt_number
from sitefinder.parallel import usable_cpus
from sitefinder.progress import progress

# The settings live in the light settings module (reading a scenario loads no geodata
# library); they are re-exported here, where they were always imported from.
from sitefinder.settings import HARD_MAX_UNITS_PER_SITE, CapacitySettings

__all__ = [
    "HARD_MAX_UNITS_PER_SITE",
    "POOL_MIN_PLOTS",
    "STATUS_NOT_POLYGON",
    "STATUS_NO_GEOMETRY",
    "STATUS_OK",
    "STATUS_TOO_SMALL",
    "STATUS_UNKNOWN",
    "WORKERS_ENV",
    "CapacitySettings",
    "cap_units",
    "CeilingLayouts",
    "LayoutRun",
    "first_units",
    "layout_workers",
    "plan_units",
    "require_projected",
    "too_small_texts",
    "units_text",
]

STATUS_OK = "ok"
STATUS_TOO_SMALL = "too_small"
STATUS_NO_GEOMETRY = "no_geometry"
STATUS_NOT_POLYGON = "not_polygon"


def require_projected(gdf: gpd.GeoDataFrame | gpd.GeoSeries, what: str) -> None:
    """Raise :class:`InputError` unless ``gdf`` has a projected (metric) CRS.

    Parameters
    ----------
    gdf : GeoDataFrame or GeoSeries
        The layer to check.
    what : str
        The layer's name, for the message (e.g. ``"plots"``).

    """
    crs = gdf.crs
    if crs is None:
        raise InputError(
            f"the {what} layer has no coordinate reference system",
            where=what,
            hint="Set it (e.g. gdf.set_crs(25833)) to the local UTM CRS the pipeline uses",
        )
    if not crs.is_projected:
        raise InputError(
            f"the {what} layer is in {crs.to_string()}, a geographic CRS in degrees; "
            "distances and areas need metres",
            where=what,
            hint="Reproject it first, e.g. gdf.to_crs(25832) or gdf.to_crs(25833)",
        )


def _polygonal(geom: shapely.Geometry | None) -> shapely.Geometry | None:
    """Return the polygonal part of ``geom`` (repaired if invalid), or None if it has none."""
    if geom is None or geom.is_empty:
        return None
    if not geom.is_valid:
        geom = shapely.make_valid(geom)
    if geom.geom_type in ("Polygon", "MultiPolygon"):
        return geom
    if geom.geom_type == "GeometryCollection":
        parts = [g for g in shapely.get_parts(geom) if g.geom_type in ("Polygon", "MultiPolygon")]
        if parts:
            return shapely.union_all(parts)
    return None


def _layout_batch(
    polys: np.ndarray, settings: CapacitySettings, show: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Units and layouts (MultiPolygons) of polygonal plots, in this process."""
    plots = _Plots(polys, settings)
    units = np.zeros(len(polys), dtype=np.int64)
    rings = [_NO_UNITS] * len(polys)
    convex = np.flatnonzero(plots.usable & (plots.convex != 0))
    others = np.flatnonzero(plots.usable & (plots.convex == 0)).tolist()
    chunks = [convex[k : k + _CONVEX_BATCH] for k in range(0, convex.size, _CONVEX_BATCH)]
    # One step per chunk of convex plots, then one per other plot.
    steps = [*chunks, *others]
    for step in progress(steps, "unit layout", total=len(steps)) if show else steps:
        if isinstance(step, int):
            units[step], rings[step] = _layout_plot(plots, step, settings)
            continue
        units[step], chunk_rings = _layout_convex(plots, step, settings)
        for i, corners in zip(step.tolist(), chunk_rings, strict=True):
            rings[i] = corners
    return units, _multipolygons(units, rings)




def units_text(n: int, language: str) -> str:
    """Write a number of units with the right noun form.

    Parameters
    ----------
    n : int
        Number of units.
    language : {"nb", "en"}
        Bokmål or English.

    Returns
    -------
    str
        ``"1 enhet"``, ``"2 enheter"`` (bokmål) or ``"1 unit"``, ``"2 units"`` (English).

    Examples
    --------
    >>> units_text(1, "nb"), units_text(3, "nb"), units_text(0, "en")
    ('1 enhet', '3 enheter', '0 units')

    """
    if language == "nb":
        return f"{n} enhet" if n == 1 else f"{n} enheter"
    return f"{n} unit" if n == 1 else f"{n} units"


def too_small_texts(n: int, min_units: int) -> tuple[str, str]:
    """Say why ``n`` units are too few, in bokmål and English (no trailing details).

    Parameters
    ----------
    n : int
        Units that fit (fewer than ``min_units``).
    min_units : int
        The ``min_units_per_site`` in force.

    Returns
    -------
    tuple of str
        ``(nb, en)``, e.g. ``("har plass til 1 enhet, minst 2 enheter kreves",
        "fits 1 unit, at least 2 are required")``.

    """
    if n == 0:
        # The usual case since single houses are valid: nothing fits at all.
        return "har ikke plass til én eneste enhet", "does not fit a single unit"
    verb = "is" if min_units == 1 else "are"
    return (
        f"har plass til {units_text(n, 'nb')}, minst {units_text(min_units, 'nb')} kreves",
        f"fits {units_text(n, 'en')}, at least {min_units} {verb} required",
    )


def _reasons_too_small(n: int, settings: CapacitySettings) -> tuple[str, str]:
    def number(x: float, language: str) -> str:
        # Whole metres as "6", others with one decimal: "8,5" in bokmål, "8.5" in English.
        return fmt_number(x, 0 if float(x).is_integer() else 1, language)

    def sizes(language: str) -> tuple[str, str, str, str]:
        s = settings
        return (f"{number(s.unit_width_m, language)} × {number(s.unit_length_m, language)} m",
                number(s.unit_spacing_m, language), number(s.setback_m, language),
                number(s.extras_area_m2, language))

    why_nb, why_en = too_small_texts(n, settings.min_units_per_site)
    size, spacing, setback, extras = sizes("nb")
    nb = (
        f"Tomten {why_nb} (enheter {size}, {spacing} m mellom enhetene, {setback} m fra "
        f"tomtegrensen, {extras} m² til bod, gjesteparkering og avfall per enhet)"
    )
    size, spacing, setback, extras = sizes("en")
    en = (
        f"The plot {why_en} (units {size}, {spacing} m between units, {setback} m from the "
        f"plot boundary, {extras} m² for store, guest parking and waste per unit)"
    )
    return nb, en


def _polygons(geoms: np.ndarray) -> np.ndarray:
    """The polygonal part of every geometry (repaired if invalid), None where it has none.

    Valid polygons, by far the most common plots, pass in one array test; the rest go
    through :func:`_polygonal` one by one.
    """
    present = ~pd.isna(geoms)
    kind = np.full(len(geoms), -1)
    kind[present] = shapely.get_type_id(geoms[present])
    ready = np.isin(kind, (3, 6))
    ready[ready] = shapely.is_valid(geoms[ready]) & ~shapely.is_empty(geoms[ready])
    polys = np.where(ready, geoms, None)
    for i in np.flatnonzero(~ready).tolist():
        polys[i] = _polygonal(geoms[i])
    return polys


#: Plots from which the layout is shared out over worker processes: below it, starting
#: a process costs about as much as it saves.
POOL_MIN_PLOTS = 3_000

#: Environment variable with the number of processes that lay units out (default 2,
#: at most the CPUs available); ``1`` keeps all the work in the calling process.
WORKERS_ENV = "SITEFINDER_WORKERS"


def layout_workers(n_plots: int) -> int:
    """How many processes lay out ``n_plots`` plots.

    Parameters
    ----------
    n_plots : int
        Plots to lay out.

    Returns
    -------
    int
        1 below :data:`POOL_MIN_PLOTS` plots, off Linux and in a daemonic process (a
        Dask worker); otherwise the number in the
        environment variable :data:`WORKERS_ENV` (default 2), at most the CPUs this
        process may use.

    Raises
    ------
    InputError
        When the environment variable is set but is not a whole number of at least 1.

    """
    raw = os.environ.get(WORKERS_ENV, "").strip()
    wanted = 2
    if raw:
        try:
            wanted = int(raw)
        except ValueError:
            wanted = 0
        if wanted < 1:
            raise InputError(
                f"the environment variable {WORKERS_ENV} is {raw!r}, not a whole number of "
                "processes",
                where=WORKERS_ENV,
                hint="Set it to 1 to lay units out in one process, or unset it (default 2)",
            )
    # Workers are forked (started in milliseconds, nothing re-imported, the caller's
    # script not re-run); fork is the safe default only on Linux. A daemonic process (a
    # Dask worker of `sitefinder batch`) may not have children: it lays out alone, and
    # the cluster spreads the work instead.
    if (n_plots < POOL_MIN_PLOTS or not sys.platform.startswith("linux")
            or multiprocessing.current_process().daemon):
        return 1
    return max(1, min(wanted, usable_cpus()))


#: Plots per chunk handed out to the processes: small enough that a process slowed by
#: other work on the machine leaves its share to the others, large enough that handing
#: out costs nothing.
_CHUNK_PLOTS = 250


class _Job:
    """Plots to lay out in chunks, and the shared count of chunks claimed so far."""

    def __init__(self, polys: np.ndarray, settings: CapacitySettings, claimed: object) -> None:
        self.polys, self.settings, self.claimed = polys, settings, claimed
        self.n_chunks = -(-len(polys) // _CHUNK_PLOTS)

    def chunk(self, k: int) -> slice:
        """The plots of chunk ``k``."""
        return slice(k * _CHUNK_PLOTS, (k + 1) * _CHUNK_PLOTS)

    def claims(self) -> Iterator[int]:
        """Chunks this process claims, until none is left."""
        while True:
            with self.claimed.get_lock():
                k = self.claimed.value
                self.claimed.value = k + 1
            if k >= self.n_chunks:
                return
            yield k

    def lay_out(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Units and layouts of chunk ``k``."""
        return _layout_batch(self.polys[self.chunk(k)], self.settings, show=False)


def _work(job: _Job, send: object) -> None:
    """A worker process: lay out chunks until none is left, then send them home.

    The layouts travel as WKB (exact floats) by chunk number; a failure travels as its
    traceback, so the calling process can say what went wrong. The worker is forked,
    maybe while the parent had other threads (a progress bar's monitor, a notebook
    kernel's): it must not print, log or draw progress, whose locks such a thread may
    have held at the fork.
    """
    try:
        done = {}
        for k in job.claims():
            units, layouts = job.lay_out(k)
            done[k] = (units, shapely.to_wkb(layouts))
        send.send(("done", done))
    except BaseException:  # noqa: BLE001 - whatever it is, the caller must hear of it
        send.send(("failed", traceback.format_exc()))
    finally:
        send.close()


class _Workers:
    """Forked processes that lay out a job's chunks beside the calling process."""

    def __init__(self, job: _Job, n: int) -> None:
        context = multiprocessing.get_context("fork")
        self._processes, self._pipes = [], []
        try:
            for _ in range(n):
                receive, send = context.Pipe(duplex=False)
                self._pipes.append(receive)
                # Forked: the worker inherits the job (plots included) instead of a copy.
                process = context.Process(target=_work, args=(job, send), daemon=True)
                process.start()
                self._processes.append(process)
                # Only the worker holds the sending end now: if it dies, reading here
                # ends (EOFError) instead of waiting forever.
                send.close()
        except BaseException:
            self.close()  # a fork that failed leaves none of the others running
            raise

    def collect(self) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """The workers' chunks (units, layouts) by chunk number, once they are done."""
        done = {}
        for process, receive in zip(self._processes, self._pipes, strict=True):
            try:
                outcome, payload = receive.recv()
            except EOFError:
                outcome, payload = "died", ""
            process.join()
            if outcome != "done":
                raise _worker_failed(process.exitcode, payload)
            for k, (units, wkb) in payload.items():
                done[k] = (units, shapely.from_wkb(wkb))
        return done

    def close(self) -> None:
        """Stop the workers that still run and reap them all (no process is left behind)."""
        for process in self._processes:
            if process.is_alive():
                process.terminate()
            process.join()
        for receive in self._pipes:
            receive.close()
        self._processes, self._pipes = [], []


def _worker_failed(exitcode: int | None, trace: str) -> SitefinderError:
    what = "failed" if trace else f"stopped unexpectedly (exit code {exitcode})"
    return SitefinderError(
        f"a worker process laying out units {what}; measure again, or set {WORKERS_ENV}=1 "
        "to lay units out in one process" + (f"\n{trace}" if trace else "")
    )


class LayoutRun:
    """The unit layout of plots, started now and finished when its result is asked for.

    From :data:`POOL_MIN_PLOTS` plots on (see :func:`layout_workers`), forked worker
    processes start laying the plots out in chunks at once, claiming them one at a time
    from a shared counter; :meth:`plan` lets this process join in on the chunks left and
    puts them back in order. A study starts the run before it reads the OSM extract, so
    the workers are forked while the process is small and work beside the measuring.
    Each plot's layout depends on that plot only, so the result does not depend on who
    laid out what, nor on which other plots were in the run.

    Use it as a context manager (or call :meth:`close`): workers still running when the
    caller stops early, e.g. because measuring raised, are stopped and reaped.

    Parameters
    ----------
    plots : GeoDataFrame
        The plots to lay out, in a projected (metric) CRS.
    settings : CapacitySettings
        Unit size, spacing, setback, extras and the units-per-site limits.

    Raises
    ------
    InputError
        As :func:`plan_units`.
    """

    def __init__(self, plots: gpd.GeoDataFrame, settings: CapacitySettings) -> None:
        _check_plots(plots)
        self._plots, self._settings = plots, settings
        self._polys: np.ndarray | None = None
        self._job: _Job | None = None
        self._workers: _Workers | None = None
        self._result: pd.DataFrame | None = None
        self._finalizer: weakref.finalize | None = None
        #: Whether :meth:`plan` served its plots from the layouts started ahead (None
        #: until asked, False when they had to be laid out afresh).
        self.used_ahead: bool | None = None
        if layout_workers(len(plots)) == 1:
            return  # nothing to start ahead: the plots are prepared when laid out
        self._polys = self._polygons()
        placed = self._polys[~pd.isna(self._polys)]
        n = layout_workers(len(placed))
        if n > 1:
            self._job = _Job(placed, settings, multiprocessing.get_context("fork").Value("q", 0))
            self._workers = _Workers(self._job, n - 1)
            # A run dropped without close() still stops its workers (they would otherwise
            # wait on their pipes until the program ends, each holding a copy of it).
            self._finalizer = weakref.finalize(self, self._workers.close)

    def _polygons(self) -> np.ndarray:
        return _polygons(np.asarray(self._plots.geometry.array, dtype=object))

    def __enter__(self) -> LayoutRun:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop and reap the worker processes, if any still run."""
        if self._finalizer is not None:
            self._finalizer()  # runs _Workers.close once, and never again at collection
        self._workers = None

    def plan(self, plots: gpd.GeoDataFrame | None = None) -> pd.DataFrame:
        """:func:`plan_units` of ``plots`` (default: the run's plots).

        Parameters
        ----------
        plots : GeoDataFrame, optional
            Some of the run's plots (the same rows, by index, e.g. those still usable
            after measuring). Other plots are laid out afresh, as by :func:`plan_units`.

        Returns
        -------
        pandas.DataFrame
            As :func:`plan_units`, indexed like ``plots``.
        """
        if plots is None or plots is self._plots:
            self.used_ahead = self._job is not None
            return self._all()
        rows = _rows_of(self._plots, plots)
        self.used_ahead = rows is not None and self._job is not None
        if not self.used_ahead:
            # Nothing laid out ahead for these plots: no need to lay out the others too.
            self.close()
            return plan_units(plots, self._settings)
        return self._all().iloc[rows]

    def _all(self) -> pd.DataFrame:
        if self._result is None:
            try:
                polys = self._polygons() if self._polys is None else self._polys
                self._result = _plan(self._plots, self._settings, polys, self._lay_out)
            finally:
                self.close()
        return self._result

    def _lay_out(self, polys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Units and layouts of the polygonal plots, with the workers when there are any."""
        job, workers = self._job, self._workers
        if job is None or workers is None:
            return _layout_batch(polys, self._settings)
        # The workers lay out the job's own plots, the polygonal parts taken when the run
        # started: the very plots _plan hands in here.
        assert len(polys) == len(job.polys), "the run's plots changed after it started"
        done = {k: job.lay_out(k) for k in progress(job.claims(), "unit layout")}
        done.update(workers.collect())
        parts = [done[k] for k in range(job.n_chunks)]
        return (
            np.concatenate([units for units, _ in parts]),
            np.concatenate([layouts for _, layouts in parts]),
        )


def _rows_of(run: gpd.GeoDataFrame, plots: gpd.GeoDataFrame) -> np.ndarray | None:
    """Positions of ``plots`` among the run's plots, or None when they are not all there."""
    if not (run.index.is_unique and plots.index.is_unique):
        return None
    rows = run.index.get_indexer(plots.index)
    if (rows < 0).any():
        return None
    ours = np.asarray(run.geometry.array, dtype=object)[rows]
    theirs = np.asarray(plots.geometry.array, dtype=object)
    # The very same geometry objects: a plot edited since the run started is laid out anew.
    return rows if all(map(operator.is_, ours, theirs)) else None


def _check_plots(plots: gpd.GeoDataFrame) -> None:
    if not isinstance(plots, gpd.GeoDataFrame):
        raise InputError(
            f"plan_units needs a GeoDataFrame of plots, got {type(plots).__name__}",
            where="plots",
        )
    require_projected(plots, "plots")


def plan_units(plots: gpd.GeoDataFrame, settings: CapacitySettings) -> pd.DataFrame:
    """Lay out småhus units on every plot and report each plot's capacity.

    Parameters
    ----------
    plots : GeoDataFrame
        Candidate plots in a projected (metric) CRS. Any geometry is accepted; plots
        without polygon area get capacity 0 and a reason.
    settings : CapacitySettings
        Unit size, spacing, setback, extras and the units-per-site limits.

    Returns
    -------
    pandas.DataFrame
        Indexed like ``plots``, with columns

        - ``capacity_units`` (int): units placed, at most ``max_units_per_site``; a
          ``too_small`` plot keeps the count that does fit;
        - ``layout`` (geometry, the plots' CRS): MultiPolygon of the unit footprints
          (empty when none fit);
        - ``capacity_status`` (str): ``ok``, ``too_small``, ``no_geometry`` or
          ``not_polygon``;
        - ``capacity_reason_nb``, ``capacity_reason_en`` (str): why a plot is not ``ok``
          (``""`` when it is).

    Raises
    ------
    InputError
        When ``plots`` has no CRS or a geographic one, or the environment variable
        ``SITEFINDER_WORKERS`` is not a whole number of at least 1.

    Notes
    -----
    From :data:`POOL_MIN_PLOTS` plots on, the work is shared with a forked worker
    process (see :func:`layout_workers`); the result is the same as in one process.

    Examples
    --------
    >>> import geopandas as gpd, shapely
    >>> plots = gpd.GeoDataFrame(geometry=[shapely.box(0, 0, 40, 40)], crs=25833)
    >>> plan_units(plots, CapacitySettings())["capacity_units"].tolist()
    [4]

    """
    with LayoutRun(plots, settings) as run:
        return run.plan()


def _plan(
    plots: gpd.GeoDataFrame,
    settings: CapacitySettings,
    polys: np.ndarray,
    lay_out: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]],
) -> pd.DataFrame:
    """:func:`plan_units`, the polygonal parts given and laid out by ``lay_out``."""
    n_rows = len(plots)
    units = np.zeros(n_rows, dtype=np.int64)
    status = np.full(n_rows, STATUS_OK, dtype=object)
    reason_nb = np.full(n_rows, "", dtype=object)
    reason_en = np.full(n_rows, "", dtype=object)

    geoms = np.asarray(plots.geometry.array, dtype=object)
    for i in np.flatnonzero(pd.isna(polys)).tolist():
        geom = geoms[i]
        if geom is None or geom.is_empty:
            status[i] = STATUS_NO_GEOMETRY
            reason_nb[i] = "Tomten mangler geometri, så ingen enheter kan plasseres"
            reason_en[i] = "The plot has no geometry, so no units can be placed"
            continue
        status[i] = STATUS_NOT_POLYGON
        reason_nb[i] = (
            f"Tomten er et {geom.geom_type}-objekt uten areal; tegn den som polygon "
            "for å beregne kapasitet"
        )
        reason_en[i] = (
            f"The plot is a {geom.geom_type} without area; draw it as a polygon to "
            "compute its capacity"
        )
    placed = np.flatnonzero(~pd.isna(polys))
    units[placed], layouts = lay_out(polys[placed])
    layouts_all = np.full(n_rows, _EMPTY_LAYOUT, dtype=object)
    layouts_all[placed] = layouts
    for n in np.unique(units[placed][units[placed] < settings.min_units_per_site]).tolist():
        small = placed[units[placed] == n]
        status[small] = STATUS_TOO_SMALL
        texts = _reasons_too_small(n, settings)
        reason_nb[small], reason_en[small] = texts[0], texts[1]

    return pd.DataFrame(
        {
            "capacity_units": units,
            "layout": gpd.GeoSeries(layouts_all, index=plots.index, crs=plots.crs),
            "capacity_status": pd.Series(status, index=plots.index, dtype=object),
            "capacity_reason_nb": pd.Series(reason_nb, index=plots.index, dtype=object),
            "capacity_reason_en": pd.Series(reason_en, index=plots.index, dtype=object),
        },
        index=plots.index,
    )


class CeilingLayouts:
    """Every plot's layout at the hard ceiling, cut to a scenario's units on demand.

    The layout is measured once at the hard ceiling (6 units) and cached with the
    metrics; a scenario's own ``max_units_per_site`` is then applied by
    :func:`first_units` instead of laying out again. Only the ceiling is kept (one
    geometry per plot, not one per unit count), and the last cut is remembered, so
    re-scoring with the same unit counts (a what-if on weights) builds nothing.

    Parameters
    ----------
    layouts : Series of geometry
        Layouts at the hard ceiling (MultiPolygon, units in placement order; None or NaN
        for plots without one), in the plots' order.
    """

    def __init__(self, layouts: pd.Series) -> None:
        geoms = np.asarray(layouts.to_numpy(), dtype=object)
        self.layouts = np.where(pd.isna(geoms), _EMPTY_LAYOUT, geoms)
        self._last: tuple[bytes, np.ndarray] | None = None

    def __len__(self) -> int:
        return len(self.layouts)

    def __getstate__(self) -> dict:
        # The remembered cut is derived data: not written into the metrics cache.
        return {"layouts": self.layouts}

    def __setstate__(self, state: dict) -> None:
        self.layouts, self._last = state["layouts"], None

    def first(self, units: np.ndarray) -> np.ndarray:
        """:func:`first_units` of these layouts (a fresh array; the geometries shared).

        Parameters
        ----------
        units : ndarray of int
            Units to keep per plot, in the plots' order.

        Returns
        -------
        ndarray of object
            One MultiPolygon per plot.
        """
        units = np.asarray(units, dtype=np.int64)
        key = units.tobytes()
        if self._last is None or self._last[0] != key:
            self._last = (key, first_units(self.layouts, units))
        return self._last[1].copy()


def first_units(layouts: np.ndarray, units: np.ndarray) -> np.ndarray:
    """Every layout cut to its plot's first ``units[i]`` units.

    Keeping the first ``n`` units of a valid layout keeps it valid: units stay inside the
    setback line, apart from each other, and leave more room for the per-unit extras.

    Parameters
    ----------
    layouts : ndarray of object
        Layouts at the hard ceiling, units in placement order (no None).
    units : ndarray of int
        Units to keep per plot (0 keeps none).

    Returns
    -------
    ndarray of object
        One MultiPolygon per plot. A layout with at most ``units[i]`` units is returned
        as it is (the same geometry object); plots cut to 0 units get an empty one.
    """
    units = np.asarray(units, dtype=np.int64)
    count = shapely.get_num_geometries(layouts)
    out = np.where(units <= 0, _EMPTY_LAYOUT, layouts)
    cut = np.flatnonzero((units > 0) & (count > units))
    if not cut.size:
        return out
    # Only the layouts that lose units are taken apart and built again.
    parts, owner = shapely.get_parts(layouts[cut], return_index=True)
    first = np.searchsorted(owner, np.arange(cut.size))
    ordinal = np.arange(owner.size) - first[owner]
    keep = ordinal < units[cut][owner]
    out[cut] = shapely.multipolygons(parts[keep], indices=owner[keep])
    return out


def cap_units(max_units: pd.Series, settings: CapacitySettings) -> pd.DataFrame:
    """Apply a scenario's units-per-site limits to the capacity measured at the ceiling.

    Parameters
    ----------
    max_units : Series of int
        Units placed at the hard ceiling (``capacity_units`` of :func:`plan_units`);
        null for plots given as points (no outline to lay units out on).
    settings : CapacitySettings
        Supplies ``min_units_per_site`` and ``max_units_per_site``.

    Returns
    -------
    DataFrame
        ``capacity_units`` (null where unknown), ``capacity_status`` (``ok``,
        ``too_small`` or ``unknown``), ``capacity_reason_nb``, ``capacity_reason_en``;
        aligned with ``max_units``. The matching layout is :func:`first_units` of the
        layouts with ``capacity_units``.
    """
    unknown = max_units.isna().to_numpy()
    measured = max_units.fillna(0).astype("int64").to_numpy()
    units = np.minimum(measured, settings.max_units_per_site)
    small = (units < settings.min_units_per_site) & ~unknown
    # Reasons depend only on the unit count: format each distinct text once.
    texts = {int(n): _reasons_too_small(int(n), settings) for n in np.unique(units[small])}
    reason_nb = np.full(len(units), "", dtype=object)
    reason_en = np.full(len(units), "", dtype=object)
    for n, (nb, en) in texts.items():
        hit = small & (units == n)
        reason_nb[hit], reason_en[hit] = nb, en
    reason_nb[unknown], reason_en[unknown] = _REASONS_UNKNOWN
    status = np.where(small, STATUS_TOO_SMALL, np.where(unknown, STATUS_UNKNOWN, STATUS_OK))
    return pd.DataFrame(
        {
            "capacity_units": pd.Series(units, index=max_units.index, dtype="Int64").mask(
                unknown
            ),
            "capacity_status": status,
            "capacity_reason_nb": reason_nb,
            "capacity_reason_en": reason_en,
        },
        index=max_units.index,
    )


STATUS_UNKNOWN = "unknown"
_REASONS_UNKNOWN = (
    "tomten er gitt som punkt: antall enheter er ukjent",
    "the plot is given as a point: the number of units is unknown",
)
