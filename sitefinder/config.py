"""The scenario: layers, network settings, criteria, weights and exclusions.

A scenario is one YAML file validated by pydantic *before* any heavy work. Every error
in it is reported at once, each with the path of the field (``criteria.transit.weight``),
so a planner can fix the whole file in one go. The shipped default scenario
(``sitefinder/scenarios/default.yaml``) encodes docs/CRITERIA.md and cites the section of
the SINTEF report behind each number.

The scenario has two halves with different costs:

* **measurement** (``crs``, ``layers``, ``network``, ``measure``): changing these means
  measuring again (network work, seconds to minutes);
* **scoring** (``criteria``, ``exclusions``): changing these only re-scores the metrics
  table (milliseconds). :meth:`Scenario.measurement_key` tells the two apart.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from sitefinder.errors import InputError, ScenarioError

# From the light module, not from the modules that do the work: validating a scenario
# must not load geopandas, scipy or rasterio (tests/test_import_time.py).
from sitefinder.settings import (
    CapacitySettings,
    ClusteringSettings,
    NoiseSettings,
    PopulationSettings,
    RasterCriterionSource,
    SlopeSettings,
    TransitFrequencySettings,
)

#: Network categories every scenario has: walking distance, time and counts to each.
NETWORK_CATEGORIES: tuple[str, ...] = (
    "transit",
    "grocery",
    "pharmacy",
    "health",
    "meeting",
    "nature",
)
#: Network categories measured when the scenario defines the layer (the town centre,
#: cafés as an optional criterion).
OPTIONAL_NETWORK_CATEGORIES: tuple[str, ...] = ("centre", "cafes")
#: Layers measured by straight-line distance from the plot that every scenario has.
BUFFER_LAYERS: tuple[str, ...] = ("dwellings", "residential_areas", "industrial")
#: Straight-line distance column of each layer measured that way; the last two are
#: measured when the scenario defines them.
NEAREST_METRICS: dict[str, str] = {
    "dwellings": "dwelling_dist_m",
    "residential_areas": "residential_dist_m",
    "industrial": "industrial_dist_m",
    "drug_scenes": "drug_scene_dist_m",
    "sensitive_neighbours": "sensitive_dist_m",
}


def network_categories(layers: dict) -> tuple[str, ...]:
    """The network categories measured for a scenario with these ``layers``."""
    return NETWORK_CATEGORIES + tuple(c for c in OPTIONAL_NETWORK_CATEGORIES if c in layers)


def nearest_layers(layers: dict) -> dict[str, str]:
    """Layer → straight-line distance column, for the layers a scenario defines."""
    return {name: col for name, col in NEAREST_METRICS.items() if name in layers}


class _Strict(BaseModel):
    """Base model: unknown keys are errors (a typo must not be silently ignored)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, allow_inf_nan=False)


class TagRule(_Strict):
    """One OSM tag rule: every listed key must match (AND); ``"*"`` matches any value."""

    tags: dict[str, list[str] | Literal["*"]]
    name_regex: str | None = Field(
        default=None, description="Also require the feature's name to match this regex."
    )
    inside_layer: str | None = Field(
        default=None,
        description="Also require the feature to lie in a feature of this other layer (e.g. "
        "an untyped building counts as a dwelling inside residential land use).",
    )
    min_area_m2: float = Field(
        default=0.0, ge=0, description="Areas smaller than this do not match this rule."
    )

    @field_validator("name_regex")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression ({exc})") from None
        return value


class LayerSpec(_Strict):
    """How one thematic layer is built from OSM (or read from a file the user supplies)."""

    label_nb: str
    label_en: str
    rules: list[TagRule] = Field(default_factory=list)
    geometry: Literal["points", "lines", "areas", "any"] = Field(
        default="any",
        description="Which OSM features the rules apply to; `any` is points, lines and areas.",
    )
    min_area_m2: float = Field(default=0.0, ge=0)
    file: Path | None = Field(
        default=None,
        description="Use this GeoPackage/GeoJSON instead of OSM (e.g. the municipality's "
        "own list of NAV offices).",
    )
    add_files: list[Path] = Field(
        default_factory=list,
        description="Files whose features are added to what the OSM rules find (e.g. the "
        "municipality's own list of open drug scenes, a planned NAV office).",
    )

    @model_validator(mode="after")
    def _rules_or_file(self) -> LayerSpec:
        if not self.rules and self.file is None and not self.add_files:
            raise ValueError("a layer needs OSM tag `rules`, a `file` or `add_files`")
        return self


class NetworkSettings(_Strict):
    """The walking network and how plots and features are joined to it."""

    walk_speed_kmh: float = Field(
        default=4.5, gt=0, le=10, description="Walking speed (docs/CRITERIA.md: 4.5 km/h)."
    )
    highway_types: list[str] = Field(
        default=[
            "footway",
            "path",
            "pedestrian",
            "steps",
            "living_street",
            "residential",
            "service",
            "unclassified",
            "tertiary",
            "tertiary_link",
            "secondary",
            "secondary_link",
            "primary",
            "primary_link",
            "cycleway",
            "track",
            "corridor",
            "bridleway",
            "road",
            "platform",
        ],
        description="OSM highway values walked on. Motorways and trunk roads are left out "
        "(docs/CRITERIA.md §1–6: short and traffic-safe routes).",
    )
    max_snap_m: float = Field(
        default=250.0,
        gt=0,
        description="A plot farther than this from any walkable way is 'outside the "
        "network area'; features farther than this are not joined to the network.",
    )
    max_distance_m: float = Field(
        default=5000.0,
        gt=0,
        description="Walking distances are searched up to this far; beyond it the nearest "
        "feature is reported as 'none within' this distance.",
    )
    segment_m: float = Field(
        default=20.0,
        gt=0,
        description="Long street segments are split into pieces at most this long so that "
        "snapping lands near the true nearest point of the street.",
    )
    boundary_step_m: float = Field(
        default=10.0, gt=0, description="Spacing of access points sampled on plot boundaries."
    )
    snap_candidates: int = Field(
        default=4,
        ge=1,
        le=16,
        description="Network nodes tried per access point, so a plot beside a tiny detached "
        "footway fragment still finds the main network when it is within reach.",
    )


class ExposureSettings(_Strict):
    """How exposed a plot is to passers-by: a proxy, not a count of people.

    ``exposure_index`` = the features of the ``passersby`` layer within ``radius_m`` of the
    plot (shops, cafés, restaurants …; bars, pubs and nightclubs count ``nightlife_weight``
    each) + ``frontage_points`` when the plot lies within ``frontage_m`` of a feature of
    the ``busy_streets`` layer (main roads, pedestrian streets, squares). SINTEF 2021
    appendix (Bærum "litt vel synlig"), §6.6 "skjermet"; the numbers are assumptions.
    """

    radius_m: float = Field(default=150.0, gt=0, le=2000)
    nightlife_weight: float = Field(default=3.0, ge=0)
    nightlife: list[str] = Field(
        default=["amenity=bar", "amenity=pub", "amenity=nightclub", "amenity=biergarten",
                 "amenity=casino", "amenity=stripclub"],
        description="`key=value` kinds of the passersby layer that count as nightlife.",
    )
    frontage_m: float = Field(default=20.0, ge=0, le=500)
    frontage_points: float = Field(default=10.0, ge=0)


class MeasureSettings(_Strict):
    """Raw metrics beyond walking distances: counts, rasters, transit frequency.

    Relative paths (rasters, GTFS feeds) are read from the current working directory,
    like the command line's defaults (run sitefinder from the project folder).
    """

    count_within_min: float = Field(
        default=10.0, gt=0, description="Count features of each category within this many minutes."
    )
    noise: NoiseSettings | None = Field(
        default=None,
        description="Road/rail noise (Lden) per plot: an official noise map, or the OSM "
        "proxy when `raster` is empty (docs/CRITERIA.md §14–15, T-1442).",
    )
    population: PopulationSettings | None = Field(
        default=None, description="Residents within a radius from a population raster."
    )
    slope: SlopeSettings | None = Field(default=None, description="Slope from a terrain model.")
    transit_frequency: TransitFrequencySettings | None = Field(
        default=None,
        description="Departures per hour at stops within N minutes' walk, from GTFS.",
    )
    rasters: dict[str, RasterCriterionSource] = Field(
        default_factory=dict,
        description="Any other raster: metric column raster_<name>.",
    )
    exposure: ExposureSettings | None = Field(
        default=None,
        description="Passers-by proxy (exposure_index) from the `passersby` and "
        "`busy_streets` layers.",
    )


class DistrictSource(_Strict):
    """A polygon layer of districts (bydeler, grunnkretser ...) for spread over districts."""

    file: Path
    name_column: str = Field(description="Column holding the district name.")


class ExistingSitesSource(_Strict):
    """Existing småhus and other housing for the same group. SENSITIVE (docs/CRITERIA.md §19).

    Counted against spacing and concentration; never drawn on a public map, never written
    to a public output.
    """

    file: Path
    units_column: str = "units"


class LinearValue(_Strict):
    """Linear value function: 1 at ``ideal``, 0 at ``unacceptable``, linear between.

    Works both ways: ``ideal < unacceptable`` means less is better (distances),
    ``ideal > unacceptable`` means more is better (counts, screening distance).
    ``direction`` states which is meant; when given it must agree with the two numbers,
    so thresholds typed the wrong way round are caught instead of silently inverting the
    criterion. A scenario whose metric is a distance, time or noise level (see
    :meth:`expected_direction`) must either have ``ideal < unacceptable`` or say
    ``direction: higher_is_better``.
    """

    kind: Literal["linear"] = "linear"
    ideal: float
    unacceptable: float
    direction: Literal["lower_is_better", "higher_is_better"] | None = Field(
        default=None,
        description="Which way is better; optional, but when given it must agree with "
        "ideal/unacceptable (lower_is_better: ideal < unacceptable).",
    )

    @model_validator(mode="after")
    def _distinct(self) -> LinearValue:
        if self.ideal == self.unacceptable:
            raise ValueError("`ideal` and `unacceptable` must differ")
        if self.direction is not None and self.direction != self.implied_direction:
            relation = "below" if self.direction == "lower_is_better" else "above"
            raise ValueError(
                f"direction is {self.direction}, so ideal must be {relation} unacceptable "
                f"(got ideal {self.ideal:g}, unacceptable {self.unacceptable:g}): swap ideal "
                "and unacceptable, or change direction"
            )
        return self

    def ideal_point(self) -> float:
        """A metric value that scores 1."""
        return self.ideal

    def thresholds(self, unit: str = "") -> dict[str, str]:
        """Ideal and unacceptable as short text, e.g. ``{"ideal": "300 m", ...}``."""
        return {"ideal": f"{self.ideal:g}{unit}", "unacceptable": f"{self.unacceptable:g}{unit}"}

    @property
    def implied_direction(self) -> Literal["lower_is_better", "higher_is_better"]:
        """The direction ``ideal`` and ``unacceptable`` give."""
        return "lower_is_better" if self.ideal < self.unacceptable else "higher_is_better"

    @staticmethod
    def expected_direction(metric: str) -> Literal["lower_is_better"] | None:
        """The direction a metric's name implies, or None when its name does not tell.

        Walking distances and times to a service (``dist_*``, ``time_*``), straight-line
        distances (``*_dist_m``) and noise levels (``*_db``) are better when lower. The
        exception is the distance *away from* something kept at a distance (industry,
        drug scenes, other vulnerable groups, neighbours), where farther can be better.

        Parameters
        ----------
        metric : str
            Metric column name, e.g. ``dist_transit_m``.

        Returns
        -------
        str or None
            ``"lower_is_better"`` or None.
        """
        away_from = {"industrial_dist_m", "drug_scene_dist_m", "sensitive_dist_m",
                     "dwelling_dist_m"}
        if metric in away_from:
            return None
        if metric.startswith(("dist_", "time_")) or metric.endswith(("_dist_m", "_db")):
            return "lower_is_better"
        return None


class WindowValue(_Strict):
    """Window value function: ideal inside a band, unacceptable outside it.

    0 below ``unacceptable_below``, 1 between ``ideal_from`` and ``ideal_to``, 0 above
    ``unacceptable_above``, linear in between.

    Encodes "screened from neighbours, but not hidden away" (docs/CRITERIA.md §10).
    """

    kind: Literal["window"] = "window"
    unacceptable_below: float
    ideal_from: float
    ideal_to: float
    unacceptable_above: float

    def ideal_point(self) -> float:
        """A metric value that scores 1."""
        return self.ideal_from

    def thresholds(self, unit: str = "") -> dict[str, str]:
        """Ideal band and unacceptable limits as short text."""
        return {
            "ideal": f"{self.ideal_from:g}–{self.ideal_to:g}{unit}",
            "unacceptable": f"< {self.unacceptable_below:g} / > {self.unacceptable_above:g}{unit}",
        }

    @model_validator(mode="after")
    def _ordered(self) -> WindowValue:
        points = [self.unacceptable_below, self.ideal_from, self.ideal_to, self.unacceptable_above]
        if points != sorted(points) or self.unacceptable_below == self.ideal_from or (
            self.ideal_to == self.unacceptable_above
        ):
            raise ValueError(
                "window must satisfy unacceptable_below < ideal_from <= ideal_to < "
                "unacceptable_above"
            )
        return self


class PiecewiseValue(_Strict):
    """Piecewise-linear value function through ``points`` ([metric, value] pairs).

    Values are interpolated between the points and held at the first and last value
    outside them; e.g. units per site ``[[1, 0.8], [2, 1], [3, 1], [4, 0.8], [5, 0.4],
    [6, 0.2]]`` (2–3 ideal, 1 and 4 good, 5 poor).
    """

    kind: Literal["piecewise"] = "piecewise"
    points: list[tuple[float, float]] = Field(min_length=2)

    def ideal_point(self) -> float:
        """A metric value that scores 1 (the first point with the highest value)."""
        best = max(v for _, v in self.points)
        return next(x for x, v in self.points if v == best)

    def thresholds(self, unit: str = "") -> dict[str, str]:
        """Where the value is highest and where it is lowest, as short text."""
        values = [v for _, v in self.points]

        def where(target: float) -> str:
            return "/".join(f"{x:g}" for x, v in self.points if v == target)

        return {"ideal": f"{where(max(values))}{unit}",
                "unacceptable": f"{where(min(values))}{unit}"}

    @model_validator(mode="after")
    def _increasing(self) -> PiecewiseValue:
        xs = [x for x, _ in self.points]
        if any(b <= a for a, b in zip(xs, xs[1:], strict=False)):
            raise ValueError("points must be in strictly increasing order of the metric")
        if any(not 0 <= v <= 1 for _, v in self.points):
            raise ValueError("every value in points must lie between 0 and 1")
        return self


class Criterion(_Strict):
    """One criterion: a metric, a value function and a weight."""

    metric: str = Field(
        description="Column of the metrics table (e.g. dist_transit_m) or a numeric column "
        "of the plot file (e.g. price_nok)."
    )
    value: LinearValue | WindowValue | PiecewiseValue = Field(discriminator="kind")
    weight: float = Field(ge=0, description="Relative importance; weights need not sum to 1.")
    label_nb: str
    label_en: str
    source: str = Field(default="", description="Where the numbers come from (report section).")
    exclude_when_unacceptable: bool = Field(
        default=False, description="Exclude a plot whose value is 0 on this criterion."
    )
    missing_value: float = Field(
        default=0.0,
        ge=0,
        le=1,
        description="Value (0–1) of a plot whose metric is missing. 0 for what a plot needs "
        "nearby (no shop within reach is unacceptable); 1 for what a plot should be away "
        "from (no drug scene known nearby is ideal).",
    )
    when_measured: bool = Field(
        default=False,
        description="Use this criterion only when its metric is measured (e.g. slope "
        "when the scenario gives a terrain model); otherwise it is left out silently.",
    )


class Exclusion(_Strict):
    """A hard exclusion: plots whose ``metric`` meets the condition are excluded.

    Give exactly one condition: ``equals`` (a value), ``one_of`` (a list of values, e.g.
    zoning ``[næring, LNF]``), ``below`` or ``above`` (numbers; a missing value never
    excludes). ``metric`` is a column of the metrics table or of the plot file.
    """

    metric: str
    equals: bool | float | str | None = None
    one_of: list[bool | float | str] | None = None
    below: float | None = None
    above: float | None = None
    reason_nb: str
    reason_en: str
    source: str = ""

    @model_validator(mode="after")
    def _one_condition(self) -> Exclusion:
        given = [k for k in ("equals", "one_of", "below", "above") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of equals, one_of, below, above "
                f"(given: {', '.join(given) or 'none'})"
            )
        return self


#: Scenario fields that only change how plots are scored or chosen, never what is measured.
SCORING_FIELDS: frozenset[str] = frozenset(
    {"name", "description", "language", "criteria", "exclusions", "clustering", "existing_sites"}
)
#: Capacity settings used when scoring and choosing; the layout itself is measured once.
CAPACITY_SCORING_FIELDS: frozenset[str] = frozenset(
    {"min_units_per_site", "max_units_per_site", "preferred_units_per_site", "extra_unit_value"}
)


class Scenario(_Strict):
    """A complete scenario: what to measure and how to judge it.

    Build it in code, or load it with :func:`load_scenario`. Unknown keys, negative
    weights and malformed value functions are refused with every error listed.
    """

    name: str = "default"
    description: str = ""
    language: Literal["nb", "en"] = "nb"
    crs: str = Field(
        default="auto",
        description="'auto' picks EPSG:25832/25833/25835 from the plots' longitude; or any "
        "projected CRS such as 'EPSG:25833'.",
    )
    layers: dict[str, LayerSpec] = Field(default_factory=dict)
    network: NetworkSettings = Field(default_factory=NetworkSettings)
    measure: MeasureSettings = Field(default_factory=MeasureSettings)
    criteria: dict[str, Criterion] = Field(default_factory=dict)
    exclusions: list[Exclusion] = Field(default_factory=list)
    capacity: CapacitySettings = Field(default_factory=CapacitySettings)
    clustering: ClusteringSettings = Field(default_factory=ClusteringSettings)
    districts: DistrictSource | None = None
    existing_sites: ExistingSitesSource | None = None
    # The YAML file the scenario came from (for the run manifest); not part of the scenario.
    _source_path: Path | None = PrivateAttr(default=None)

    @field_validator("layers", "criteria")
    @classmethod
    def _plain_names_and_directions(cls, value: dict, info: Any) -> dict:
        # Layer names become file names (<layers>/<name>.gpkg): a name with "/" or ".."
        # would write outside the layers folder.
        if info.field_name == "layers":
            bad = [name for name in value if not re.fullmatch(r"\w{1,64}", name)]
            if bad:
                raise ValueError(
                    f"layer name(s) {', '.join(repr(b) for b in bad)} must be plain names of "
                    "letters, digits and underscores (they become file names "
                    "<layers>/<name>.gpkg)"
                )
            return value
        wrong = []
        for name, criterion in value.items():
            fn = criterion.value
            if not isinstance(fn, LinearValue) or fn.direction is not None:
                continue
            expected = LinearValue.expected_direction(criterion.metric)
            if expected is not None and fn.implied_direction != expected:
                wrong.append(
                    f"criterion '{name}': '{criterion.metric}' is a distance, time or noise "
                    f"level, where less is better, but ideal {fn.ideal:g} > unacceptable "
                    f"{fn.unacceptable:g} rewards more"
                )
        if wrong:
            raise ValueError(
                "; ".join(wrong) + ". Swap ideal and unacceptable, or, if more really is "
                "better here, add `direction: higher_is_better` to the value"
            )
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Scenario:
        missing = [c for c in (*NETWORK_CATEGORIES, *BUFFER_LAYERS) if c not in self.layers]
        if missing:
            raise ValueError(f"layers missing: {', '.join(missing)} (every scenario needs them)")
        if self.criteria and sum(c.weight for c in self.criteria.values()) <= 0:
            raise ValueError("at least one criterion needs a weight above 0")
        return self

    def input_files(self) -> dict[str, Path]:
        """Files the measurement reads besides plots and OSM (rasters, GTFS, layer files)."""
        files: dict[str, Path] = {}
        m = self.measure
        if m.noise is not None and m.noise.raster is not None:
            files["noise"] = Path(m.noise.raster)
        if m.population is not None:
            files["population"] = Path(m.population.raster)
        if m.slope is not None:
            files["dem"] = Path(m.slope.dem)
        if m.transit_frequency is not None:
            for i, feed in enumerate(m.transit_frequency.feeds):
                files[f"gtfs:{i}"] = Path(feed.path)
        for name, source in m.rasters.items():
            files[f"raster:{name}"] = Path(source.path)
        for name, spec in self.layers.items():
            if spec.file is not None:
                files[f"layer-file:{name}"] = Path(spec.file)
            for i, extra in enumerate(spec.add_files):
                files[f"layer-add:{name}:{i}"] = Path(extra)
        if self.districts is not None:
            files["districts"] = Path(self.districts.file)
        if self.existing_sites is not None:
            files["existing_sites"] = Path(self.existing_sites.file)
        return files

    def check_input_files(self) -> None:
        """Refuse a scenario naming files that do not exist, before any heavy work."""
        missing = [f"{_role_text(role)} ({path})" for role, path in self.input_files().items()
                   if not path.is_file()]
        if missing:
            source = self._source_path
            raise InputError(
                f"the scenario names files that do not exist: {', '.join(missing)}",
                path=source,
                where=None if source else f"scenario '{self.name}'",
                hint="Fix the paths (a relative path is read from the scenario file's folder, "
                "or else from the folder you run sitefinder in) or remove those entries",
            )

    def measurement_settings(self) -> dict[str, Any]:
        """Every setting that changes the metrics table, as plain data.

        Derived by leaving out what is known to be scoring only (:data:`SCORING_FIELDS`,
        :data:`CAPACITY_SCORING_FIELDS`, layer labels), so a setting added later is part
        of the measurement — and of the cache key — unless someone decides otherwise.
        """
        part = self.model_dump(mode="json", exclude=SCORING_FIELDS | {"capacity"})
        for spec in part["layers"].values():
            spec.pop("label_nb", None)
            spec.pop("label_en", None)
        # The unit layout is measured up to the hard ceiling; units per site are scoring.
        part["capacity"] = self.capacity.model_dump(mode="json", exclude=CAPACITY_SCORING_FIELDS)
        return part

    def measurement_key(self) -> str:
        """Hash of the settings that change the metrics table (not the scoring ones)."""
        part = self.measurement_settings()
        return hashlib.sha256(json.dumps(part, sort_keys=True).encode()).hexdigest()[:16]

    def to_yaml(self, path: str | Path | None = None) -> str:
        """Write the scenario as YAML (to ``path`` when given) and return the text."""
        text = yaml.safe_dump(self.model_dump(mode="json"), sort_keys=False, allow_unicode=True)
        if path is not None:
            Path(path).write_text(text, encoding="utf-8")
        return text

    @classmethod
    def from_yaml(cls, path: str | Path) -> Scenario:
        """Load and validate a scenario file (see :func:`load_scenario`)."""
        return load_scenario(path)

    def with_weights(self, **weights: float) -> Scenario:
        """A copy with some criteria's weights changed, e.g. ``with_weights(transit=2)``."""
        data = self.model_dump()
        for key, weight in weights.items():
            if key not in data["criteria"]:
                raise InputError(
                    f"unknown criterion '{key}'",
                    where="with_weights",
                    hint=f"Known criteria: {', '.join(data['criteria'])}",
                )
            data["criteria"][key]["weight"] = weight
        return _validate(data, None)


def _role_text(role: str) -> str:
    """A file's role as the scenario field that names it, e.g. ``layers.drug_scenes.add_files``."""
    kind, _, rest = role.partition(":")
    if kind == "layer-add":
        return f"layers.{rest.split(':')[0]}.add_files"
    if kind == "layer-file":
        return f"layers.{rest}.file"
    if kind == "raster":
        return f"measure.rasters.{rest}"
    if kind == "gtfs":
        return "measure.transit_frequency.feeds"
    return {"noise": "measure.noise.raster", "population": "measure.population.raster",
            "dem": "measure.slope.dem", "districts": "districts.file",
            "existing_sites": "existing_sites.file"}.get(kind, role)


def default_scenario_path() -> Path:
    """Path of the shipped default scenario YAML."""
    return Path(__file__).parent / "scenarios" / "default.yaml"


def default_scenario() -> Scenario:
    """The default scenario encoding docs/CRITERIA.md."""
    return load_scenario(default_scenario_path())


def _format_loc(loc: tuple[Any, ...]) -> str:
    # pydantic puts the discriminator tag into the location ("value.linear.ideal"); users
    # wrote "value.ideal", so drop the tag.
    parts = [str(p) for p in loc if p not in ("linear", "window")]
    return ".".join(parts) or "(top level)"


def _validate(data: Any, path: str | Path | None) -> Scenario:
    if not isinstance(data, dict):
        raise ScenarioError(["the file must be a mapping of keys to values"], path=path)
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            msg = err["msg"]
            if err["type"] == "extra_forbidden":
                msg = "unknown key (check the spelling)"
            problems.append(f"{_format_loc(err['loc'])}: {msg}")
        raise ScenarioError(problems, path=path) from None


# Where a scenario names files; relative paths are read from the scenario file's folder
# when the file is there (so a scenario travels with its data), else from the working folder.
_PATH_FIELDS: tuple[tuple[str, ...], ...] = (
    ("measure", "noise", "raster"),
    ("measure", "population", "raster"),
    ("measure", "slope", "dem"),
    ("districts", "file"),
    ("existing_sites", "file"),
)


def _resolve_paths(data: dict, base: Path) -> None:
    def fix(container: Any, key: Any) -> None:
        if isinstance(container, dict):
            value = container.get(key)
        elif isinstance(container, list) and isinstance(key, int) and key < len(container):
            value = container[key]
        else:
            value = None
        if isinstance(value, str) and value and not Path(value).is_absolute():
            candidate = base / value
            if candidate.exists():
                # Absolute, so the same scenario read from another working folder (select
                # after run, a notebook) names the same files and measures nothing again.
                container[key] = str(candidate.resolve())

    for *parents, key in _PATH_FIELDS:
        node: Any = data
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        fix(node, key)
    measure = data.get("measure") if isinstance(data.get("measure"), dict) else {}
    frequency = measure.get("transit_frequency")
    if isinstance(frequency, dict):
        for feed in frequency.get("feeds") or []:
            fix(feed, "path")
    for source in (measure.get("rasters") or {}).values():
        fix(source, "path")
    for spec in (data.get("layers") or {}).values() if isinstance(data.get("layers"), dict) \
            else []:
        fix(spec, "file")
        if isinstance(spec, dict) and isinstance(spec.get("add_files"), list):
            for i in range(len(spec["add_files"])):
                fix(spec["add_files"], i)


def _merge(base: dict, override: dict) -> dict:
    """Deep-merge two scenario mappings: nested mappings merge, anything else replaces."""
    out = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _read_yaml(path: Path, *, max_depth: int = 64, max_nodes: int = 200_000) -> Any:
    """Parse one scenario YAML file safely.

    Only plain data is built (``safe_load`` rules: a ``!!python/...`` tag is an error, never
    run). Nesting deeper than ``max_depth`` levels, more than ``max_nodes`` values once
    aliases are expanded (an "alias bomb") and aliases that refer to themselves are
    refused before anything is built, so a hostile or broken file cannot exhaust the
    stack or the memory.
    """
    if not path.exists():
        raise InputError(
            "the scenario file does not exist",
            path=path,
            hint="Give an existing YAML file with --scenario, or leave it out to use the default",
        )
    if not path.is_file():
        raise InputError(
            "the scenario is not a file", path=path, hint="Give the path of a YAML file"
        )
    try:
        text = path.read_text(encoding="utf-8")
        depth = 0
        for event in yaml.parse(text, Loader=yaml.SafeLoader):  # events: no recursion
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                if depth > max_depth:
                    raise InputError(
                        f"the scenario is nested more than {max_depth} levels deep",
                        path=path,
                        where=f"line {event.start_mark.line + 1}",
                        hint="A scenario is a few levels deep (criteria > transit > value); "
                        "check the file is the scenario you meant",
                    )
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            if node is None:
                return None
            _check_yaml_size(node, max_nodes, path)
            return loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else None
        raise InputError(
            f"the scenario is not valid YAML ({getattr(exc, 'problem', None) or exc})",
            path=path,
            where=where,
            hint="Check indentation and colons around that line",
        ) from None
    except UnicodeDecodeError:
        raise InputError(
            "the scenario is not a UTF-8 text file", path=path, hint="Save it as UTF-8 text"
        ) from None
    except (OSError, RecursionError) as exc:
        raise InputError(
            f"the scenario could not be read ({type(exc).__name__}: {exc})",
            path=path,
            hint="Give a readable YAML file with --scenario",
        ) from None


def _check_yaml_size(root: yaml.Node, max_nodes: int, path: Path) -> None:
    """Refuse a YAML graph whose aliases expand past ``max_nodes`` or refer to themselves."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()

    def size(node: yaml.Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in open_nodes:
            raise InputError(
                "the scenario has an alias that refers to itself",
                path=path,
                where=f"line {node.start_mark.line + 1}",
                hint="Remove the *alias inside its own &anchor",
            )
        open_nodes.add(key)
        total = 1
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                total += size(k) + size(v)
        elif isinstance(node, yaml.SequenceNode):
            for item in node.value:
                total += size(item)
        open_nodes.discard(key)
        sizes[key] = total
        if total > max_nodes:
            raise InputError(
                f"the scenario expands to more than {max_nodes:,} values (through aliases)",
                path=path,
                where=f"line {node.start_mark.line + 1}",
                hint="Write the values out instead of nesting *aliases of aliases",
            )
        return total

    size(root)


def _load_raw(path: Path, seen: tuple[Path, ...] = ()) -> Any:
    data = _read_yaml(path)
    if not isinstance(data, dict):
        return data
    _resolve_paths(data, path.parent)
    parent = data.pop("extends", None)
    if parent is None:
        return data
    if not isinstance(parent, str) or not parent.strip():
        raise ScenarioError(
            [f"extends: {parent!r} must be 'default' or the path of another scenario file"],
            path=path,
        )
    parent_path = default_scenario_path() if parent == "default" else path.parent / parent
    chain = (*seen, path.resolve())
    if parent_path.resolve() in chain:
        names = " -> ".join(p.name for p in (*chain, parent_path.resolve()))
        raise ScenarioError(
            [f"extends: '{parent}' leads back to a file already being extended ({names})"],
            path=path,
        )
    if not parent_path.is_file():
        raise InputError(
            f"the scenario extends '{parent}', which does not exist ({parent_path})",
            path=path,
            where="extends",
            hint="Write `extends: default`, or the path of another scenario file relative to "
            "this file's folder",
        )
    base = _load_raw(parent_path, chain)
    if not isinstance(base, dict):
        raise ScenarioError([f"extends: '{parent}' is not a scenario mapping"], path=path)
    _warn_dropped_exclusions(base, data, parent, path)
    return _merge(base, data)


class ScenarioWarning(UserWarning):
    """A scenario that loads but probably does not say what its author meant."""


def _warn_dropped_exclusions(base: dict, data: dict, parent: str, path: Path) -> None:
    """Say which exclusions of the extended scenario a new ``exclusions:`` list drops.

    Lists replace when a scenario extends another (only mappings merge), so adding one
    exclusion by a plot fact silently ends the hard exclusions of the default (a house
    on the plot, industrial land) unless they are listed again.
    """
    old, new = base.get("exclusions"), data.get("exclusions")
    if not isinstance(old, list) or not isinstance(new, list):
        return
    dropped = [e for e in old if e not in new]
    if not dropped or not new:  # `exclusions: []` says plainly that none shall apply
        return
    import warnings

    def describe(e: Any) -> str:
        if not isinstance(e, dict):
            return repr(e)
        test = next((f"{k} {e[k]}" for k in ("equals", "one_of", "below", "above") if k in e),
                    "")
        return f"{e.get('metric', '?')} {test}".strip()

    warnings.warn(
        f"{path.name}: its exclusions replace those of '{parent}', so "
        f"{len(dropped)} no longer apply ({'; '.join(describe(e) for e in dropped)}). "
        "List them again under exclusions: to keep them.",
        ScenarioWarning, stacklevel=2,
    )


def load_scenario(path: str | Path | None = None) -> Scenario:
    """Load and validate a scenario YAML file.

    A scenario may start with ``extends: default`` (or the path of another scenario) and
    then give only what it changes; mappings are merged key by key, anything else
    replaces. Relative file paths are read from the scenario file's folder when the file
    is there, else from the current working folder.

    Parameters
    ----------
    path : str or Path, optional
        The YAML file; the shipped default when omitted.

    Returns
    -------
    Scenario

    Raises
    ------
    InputError
        The file is missing or is not valid YAML.
    ScenarioError
        The content is invalid; lists every problem with its field.
    """
    path = Path(path) if path is not None else default_scenario_path()
    scenario = _validate(_load_raw(path), path)
    scenario._source_path = path
    return scenario
