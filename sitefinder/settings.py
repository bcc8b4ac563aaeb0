"""The scenario's settings blocks, with nothing heavier than pydantic behind them.

Every subcommand reads and validates the scenario before any heavy work, and a planner
who typed a wrong key should hear so at once, not after a second of loading geodata
libraries. So the pydantic models of the scenario's blocks live here, importing only the
standard library and pydantic; the modules that do the work (capacity, select, noise,
population, terrain, sources.raster, sources.gtfs) import their settings from here and
re-export them, so ``from sitefinder.select import ClusteringSettings`` keeps working.
tests/test_import_time.py checks that ``import sitefinder.config`` stays light.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "HARD_MAX_UNITS_PER_SITE",
    "RAIL_RED_DB",
    "RAIL_YELLOW_DB",
    "ROAD_RED_DB",
    "ROAD_YELLOW_DB",
    "CapacitySettings",
    "ClusteringSettings",
    "GtfsFeedSource",
    "NoiseSettings",
    "PopulationSettings",
    "RasterCriterionSource",
    "SlopeSettings",
    "Statistic",
    "TransitFrequencySettings",
]

#: The hard ceiling on units per site. docs/CRITERIA.md §17: national guidance says not
#: more than 6–8 units together and the residents call an 8-unit cluster a ghetto; above
#: 4–5 units a staffed base is usually needed, which is a different kind of project.
HARD_MAX_UNITS_PER_SITE = 6

#: T-1442 (2021) road traffic noise: yellow zone from Lden 55 dB, red zone from 65 dB.
ROAD_YELLOW_DB = 55.0
ROAD_RED_DB = 65.0
#: T-1442 (2021) railway noise: yellow zone from Lden 58 dB, red zone from 68 dB.
RAIL_YELLOW_DB = 58.0
RAIL_RED_DB = 68.0

#: Statistics a raster criterion can take over the pixels under a plot.
Statistic = Literal["mean", "max", "percentile", "share_above", "sum"]


# ---------------------------------------------------- placing units on a plot

class CapacitySettings(BaseModel):
    """How småhus units are laid out on a plot (scenario key ``capacity:``).

    Every default is traceable to docs/CRITERIA.md; the section is named on each field.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    unit_width_m: Annotated[float, Field(gt=0, le=30)] = 6.0
    """Short side of one unit's exterior footprint, metres (SINTEF 2021 §6.1: Verdal's
    road-transportable unit is about 6 m × 8.5 m)."""

    unit_length_m: Annotated[float, Field(gt=0, le=30)] = 8.5
    """Long side of one unit's exterior footprint, metres (SINTEF 2021 §6.1)."""

    unit_spacing_m: Annotated[float, Field(ge=0, le=100)] = 8.0
    """Minimum clear distance between two units' walls, metres. Fire separation between
    detached buildings; the report stresses detached units with no shared walls
    (SINTEF 2021 §6.1) and distance between units (criterion 7)."""

    setback_m: Annotated[float, Field(ge=0, le=100)] = 4.0
    """Minimum distance from the plot boundary to any unit wall, metres (the Planning and
    Building Act's main rule, plan- og bygningsloven §29-4: 4 m to the neighbour's
    boundary; the report gives no number)."""

    store_area_m2: Annotated[float, Field(ge=0, le=200)] = 6.0
    """Outdoor store/technical room per unit, m² of plot (SINTEF 2021 §6.1, §6.5.2: each unit
    usually has one, reachable from outside)."""

    guest_parking_per_unit: Annotated[float, Field(ge=0, le=5)] = 0.5
    """Guest parking spaces per unit (docs/CRITERIA.md §18, Sandnes rule f, §6.6)."""

    parking_space_area_m2: Annotated[float, Field(ge=0, le=100)] = 25.0
    """Plot area per parking space including its share of the access lane, m²
    (2.5 m × 5 m stall plus manoeuvring; an assumption, not from the report)."""

    waste_area_m2: Annotated[float, Field(ge=0, le=50)] = 2.0
    """Area for the fireproof waste container each unit gets, m² (docs/CRITERIA.md §18,
    Sandnes rule g, §6.6)."""

    min_units_per_site: Annotated[int, Field(ge=1)] = 1
    """Fewest units that make a plot worth using. A single house is a valid site
    (docs/CRITERIA.md §16, SINTEF 2021 §6.1: "Noen ganger ligger det bare et enkelt
    småhus"; Bodø's single house is the report's best-rated home), so a plot is too
    small only when not even one unit fits.
    Raise it to spread the plot cost over more units (docs/CRITERIA.md §18)."""

    max_units_per_site: Annotated[int, Field(ge=1)] = 4
    """Most units placed on one plot (docs/CRITERIA.md §17: Sandnes main rule 4;
    never more than 6 — see :data:`HARD_MAX_UNITS_PER_SITE`)."""

    preferred_units_per_site: Annotated[int, Field(ge=1, le=HARD_MAX_UNITS_PER_SITE)] = 3
    """Units per site the selection aims for; units above it are worth less (see
    ``extra_unit_value``). 2–3 is what the report describes most often (docs/CRITERIA.md §16,
    §6.1: "oftest bygd i grupper på 2–3 hus"; table "units per site 2–3")."""

    extra_unit_value: Annotated[float, Field(ge=0, le=1)] = 0.25
    """What each unit above ``preferred_units_per_site`` on one site is worth in the
    selection, as a share of that plot's score: 1 ignores the preference, 0 builds above it
    only when the request cannot be met otherwise. Small sites are preferred
    (docs/CRITERIA.md §17: "it takes little before it feels like a ghetto", residents ask for "more
    spread"); 0.25 still lets a much better plot take a fourth unit (an assumption)."""

    n_angles: Annotated[int, Field(ge=1, le=36)] = 6
    """Grid orientations tried per plot, evenly spread over 180° from the plot's
    minimum-rotated-rectangle orientation (6 → every 30°, includes the 90° turn)."""

    position_step_m: Annotated[float, Field(ge=0.1, le=10)] = 1.0
    """Step of the lattice of candidate unit positions, metres; finer finds more layouts
    on tight plots but costs time (the cost grows with 1/step²)."""

    @field_validator("max_units_per_site")
    @classmethod
    def _hard_ceiling(cls, value: int) -> int:
        if value > HARD_MAX_UNITS_PER_SITE:
            raise ValueError(
                f"max_units_per_site is {value}, but at most {HARD_MAX_UNITS_PER_SITE} units "
                "may share a site (docs/CRITERIA.md §17: guidance 6–8 at most, residents "
                "call 8 a ghetto); use 4 (Sandnes' main rule) or up to 6"
            )
        return value

    @model_validator(mode="after")
    def _min_not_above_max(self) -> CapacitySettings:
        if self.min_units_per_site > self.max_units_per_site:
            raise ValueError(
                f"min_units_per_site ({self.min_units_per_site}) is above max_units_per_site "
                f"({self.max_units_per_site}); lower the minimum or raise the maximum"
            )
        return self

    @property
    def extras_area_m2(self) -> float:
        """Plot area each unit needs outside the units and their fire-separation zones, m²."""
        return (
            self.store_area_m2
            + self.guest_parking_per_unit * self.parking_space_area_m2
            + self.waste_area_m2
        )


# ---------------------------------------------------- choosing a set of sites

class ClusteringSettings(BaseModel):
    """Limits on how sites cluster, and how a set is chosen (scenario key ``clustering:``).

    Every default is traceable to docs/CRITERIA.md §17 and the "Numbers to start
    from" table.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    min_spacing_m: Annotated[float, Field(ge=0, le=50_000)] = 500.0
    """Minimum distance between two chosen sites, metres (docs/CRITERIA.md table "spacing between
    småhus sites ≥ 500 m"; criterion 10: residents ask for "more spread")."""

    existing_spacing_m: Annotated[float | None, Field(ge=0, le=50_000)] = None
    """Minimum distance from a chosen site to an existing site, metres; ``None`` uses
    ``min_spacing_m``. Lower it (e.g. to 200 m, the table's "unacceptable") to let the
    concentration limit decide near existing sites instead."""

    concentration_radius_m: Annotated[float, Field(ge=0, le=50_000)] = 500.0
    """Radius of the neighbourhood whose units are counted together, metres
    (docs/CRITERIA.md §17: "not too many in one place")."""

    max_units_near: Annotated[int, Field(ge=1, le=100)] = 6
    """Most units within ``concentration_radius_m`` of a chosen site, counting its own
    units, those of other chosen sites within the radius and those of existing sites
    (docs/CRITERIA.md §17: national guidance 6–8 units together at most and Ringsaker's
    8-unit cluster is called a ghetto, so the limit is the bottom of that range)."""

    concentration_mode: Literal["penalise", "exclude"] = "exclude"
    """``exclude``: the limit is hard. ``penalise``: exceeding it costs ``penalty`` score
    points per unit over the limit."""

    penalty: Annotated[float, Field(ge=0, le=10_000)] = 50.0
    """Score points (scores are 0–100 per unit) lost per unit above ``max_units_near`` in
    ``penalise`` mode; 50 means an extra unit there is worth half a unit elsewhere."""

    max_sites_per_district: Annotated[int | None, Field(ge=1)] = 2
    """Most chosen sites in one district; ``None`` for no limit (docs/CRITERIA.md §17:
    "good spread between city districts"). Plots outside every district are not limited."""

    exact_max_candidates: Annotated[int, Field(ge=0)] = 5000
    """Largest number of eligible candidates whose spacing pairs are all written into the
    model up front; above it clique rows and lazily added pairs keep the model small. The
    solution is exact either way (see the module docstring)."""

    time_limit_s: Annotated[float, Field(gt=0, le=86_400)] = 60.0
    """Time limit for the MILP solver, seconds. When it is hit the best solution found is
    returned with ``optimal=False`` and its gap."""

    mip_rel_gap: Annotated[float, Field(ge=0, le=0.5)] = 1e-7
    """Relative gap at which HiGHS stops and calls a solution optimal."""


# --------------------------------------------------- transit frequency (GTFS)

class GtfsFeedSource(BaseModel):
    """One GTFS zip and, optionally, its own service date.

    Attributes
    ----------
    path : Path
        The GTFS zip.
    service_date : datetime.date, optional
        Date whose timetable is counted; overrides the setting shared by all feeds
        (feeds from different years rarely share a valid date).

    """

    model_config = ConfigDict(extra="forbid")

    path: Path
    service_date: dt.date | None = None


class TransitFrequencySettings(BaseModel):
    """Settings of the "departures per hour within N minutes' walk" criterion.

    Attributes
    ----------
    feeds : list of GtfsFeedSource
        GTFS zips (e.g. the regional operator's feed from Entur).
    service_date : datetime.date, optional
        Default service date. When neither this nor a feed's own date is set, the
        feed's busiest Monday-Friday is used (see :func:`sitefinder.sources.gtfs.busiest_weekday`).
    window_start, window_end : datetime.time
        Time window counted; default 07:00-19:00.
    walk_minutes : float
        Stops within this many minutes' walk count for a plot (network module).

    """

    model_config = ConfigDict(extra="forbid")

    feeds: list[GtfsFeedSource] = Field(min_length=1)
    service_date: dt.date | None = None
    window_start: dt.time = dt.time(7, 0)
    window_end: dt.time = dt.time(19, 0)
    walk_minutes: float = Field(default=5.0, gt=0)

    @model_validator(mode="after")
    def _window_order(self) -> TransitFrequencySettings:
        if self.window_end <= self.window_start:
            raise ValueError("window_end must be after window_start")
        return self


# -------------------------------------------------------------------- rasters

class RasterCriterionSource(BaseModel):
    """Where a raster criterion reads its numbers, and which statistic it takes.

    Attributes
    ----------
    path : Path
        Any raster GDAL opens (GeoTIFF, VRT, ...). Must have a CRS.
    statistic : {"mean", "max", "percentile", "share_above", "sum"}
        What to compute over the pixels under the plot (or its unit layout).
        ``sum`` is for count rasters (e.g. residents per cell): each cell contributes in
        proportion to the share of its area inside the geometry.
    q : float, optional
        Percentile (0-100) for ``statistic="percentile"``.
    threshold : float, optional
        For ``statistic="share_above"``: the share of the area with value >= threshold.
    band : int
        1-based band number.
    min_coverage : float
        Share (0-1) of the geometry's area that must have valid data; below that the plot
        gets status ``no_data`` instead of a number.
    nodata_as : float, optional
        Value to use for nodata pixels *inside* the raster's extent. Official noise maps
        often leave quiet areas as nodata; ``nodata_as: 0`` makes them count as quiet
        instead of unknown. Pixels outside the raster extent stay unknown.
    over : {"plot", "units"}
        Compute over the whole plot, or over the unit layout where one exists.

    """

    model_config = ConfigDict(extra="forbid")

    path: Path
    statistic: Statistic = "mean"
    q: float | None = Field(default=None, ge=0, le=100)
    threshold: float | None = None
    band: int = Field(default=1, ge=1)
    min_coverage: float = Field(default=0.5, gt=0, le=1)
    nodata_as: float | None = None
    over: Literal["plot", "units"] = "plot"

    @model_validator(mode="after")
    def _statistic_parameters(self) -> RasterCriterionSource:
        if self.statistic == "percentile" and self.q is None:
            raise ValueError("statistic 'percentile' needs q (0-100)")
        if self.statistic == "share_above" and self.threshold is None:
            raise ValueError("statistic 'share_above' needs threshold")
        return self


class NoiseSettings(BaseModel):
    """Settings of the noise criterion and of the OSM noise proxy.

    Attributes
    ----------
    raster : Path, optional
        An official noise map (Lden, dB). When absent, the proxy is computed from OSM.
    road_band, rail_band : int, optional
        Bands holding road and rail Lden (``rail_band: null`` for a road-only map).
    is_proxy : bool, optional
        Whether ``raster`` is a proxy; by default read from the raster's ``PROXY`` tag.
    statistic : {"max", "mean", "percentile"}
        Statistic over the plot (or its units). Default: 90th percentile, which reports the
        loud side of the plot without being set by a sliver of pixel over the road.
    q : float
        Percentile for ``statistic="percentile"``.
    nodata_as : float, optional
        Value for nodata inside an official map's extent (they often leave quiet areas
        empty), e.g. 0.
    resolution_m, ground_factor, max_distance_m, background_db
        Proxy grid cell size; ground factor G (0 hard - 1 soft); how far a source is
        summed; energetic floor.
    emission_db : dict of str to float
        Override ``L10`` (dB at 10 m) per OSM ``highway``/``railway`` value.
    road_yellow_db, road_red_db, rail_yellow_db, rail_red_db : float
        T-1442 zone limits.

    """

    model_config = ConfigDict(extra="forbid")

    raster: Path | None = None
    road_band: int = Field(default=1, ge=1)
    rail_band: int | None = Field(default=2, ge=1)
    is_proxy: bool | None = None
    statistic: Literal["max", "mean", "percentile"] = "percentile"
    q: float = Field(default=90.0, ge=0, le=100)
    nodata_as: float | None = None
    resolution_m: float = Field(default=10.0, gt=0)
    ground_factor: float = Field(default=0.5, ge=0, le=1)
    max_distance_m: float = Field(default=1000.0, gt=0)
    background_db: float = 35.0
    emission_db: dict[str, float] = Field(default_factory=dict)
    road_yellow_db: float = ROAD_YELLOW_DB
    road_red_db: float = ROAD_RED_DB
    rail_yellow_db: float = RAIL_YELLOW_DB
    rail_red_db: float = RAIL_RED_DB


class PopulationSettings(BaseModel):
    """Settings of the "residents within R metres" criterion.

    Attributes
    ----------
    raster : Path
        Population count raster (e.g. from :func:`rasterise_population`).
    radius_m : float
        Buffer distance from the plot's edge.
    min_coverage : float
        Share of the buffer the raster must cover to give a number.

    """

    model_config = ConfigDict(extra="forbid")

    raster: Path
    radius_m: float = Field(default=500.0, gt=0)
    min_coverage: float = Field(default=0.9, gt=0, le=1)


class SlopeSettings(BaseModel):
    """Settings of the slope (buildability) criterion.

    Attributes
    ----------
    dem : Path
        Terrain model (any GDAL raster in a projected, metric CRS).
    statistic : {"mean", "max", "percentile", "share_above"}
        Statistic of slope in degrees over the plot or its units.
    q : float, optional
        Percentile for ``statistic="percentile"``.
    threshold : float, optional
        Slope in degrees for ``statistic="share_above"``.
    over : {"plot", "units"}
        Measure the whole plot or the planned unit layout.

    """

    model_config = ConfigDict(extra="forbid")

    dem: Path
    statistic: Literal["mean", "max", "percentile", "share_above"] = "mean"
    q: float | None = Field(default=None, ge=0, le=100)
    threshold: float | None = Field(default=None, ge=0, le=90)
    over: Literal["plot", "units"] = "plot"
