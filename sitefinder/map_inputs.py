"""What a web map of a study shows besides its plots, gathered in one place.

The CLI's maps (:func:`sitefinder.publish.write_maps`) and a notebook's
:meth:`sitefinder.api.Study.explore` draw the same thematic layers, noise zones,
isochrones, walking routes, districts, basemap and attributions: both take them from
:func:`map_inputs`. The study is used through its public properties only; this module
imports neither the api nor publish, so both can import it.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
import shapely.geometry

from sitefinder.language import fmt_number
from sitefinder.maps import OSM_ATTRIBUTION, basemap_from_osm
from sitefinder.raster_metrics import NOISE_PROXY_FILE
from sitefinder.routes import ROUTE_CATEGORIES, walking_routes
from sitefinder.sources.gtfs import stop_frequencies

if TYPE_CHECKING:
    from sitefinder.api import Study
    from sitefinder.config import Scenario

ISOCHRONE_MINUTES = (5.0, 10.0, 15.0)
SENSITIVE_LAYERS = ("existing_sites",)
_ATTRIBUTIONS = {"districts": "Bydeler: Oslo kommune / SSB"}


def top_isochrones(
    study: Study, ranked: gpd.GeoDataFrame, plot_ids: list[str]
) -> gpd.GeoDataFrame:
    """Walking isochrones (5/10/15 min) following the network, for the given plots.

    The study caches them per plot, so ``select`` and ``report`` after ``run`` reuse them.
    """
    return study.isochrones(plot_ids, ISOCHRONE_MINUTES)


def _title(label: str) -> str:
    return label[:1].upper() + label[1:]


def map_layers(study: Study, public: bool) -> dict[str, gpd.GeoDataFrame]:
    """Thematic layers for the map; the sensitive existing sites only when not public.

    Keyed by the scenario's label in its language ("Holdeplass", "Dagligvarebutikk" …),
    which is what the layer control shows.
    """
    nb = study.scenario.language == "nb"
    layers = {}
    for name, frame in study.layers.frames.items():
        spec = study.scenario.layers[name]
        label = spec.label_nb if nb else spec.label_en
        layers[_title(label)] = frame
    frequency = study.scenario.measure.transit_frequency
    if frequency is not None:
        stops = stop_frequencies(frequency)
        language = "nb" if nb else "en"
        stops["name"] = stops["stop_name"] + ": " + stops["departures_per_hour"].map(
            lambda v: fmt_number(v, 1, language)
        ) + (" avganger/time" if nb else " departures/hour")
        layers["Avganger per time" if nb else "Departures per hour"] = stops.to_crs(study.crs)
    existing = study.existing_sites()
    if existing is not None and not public:
        layers["existing_sites"] = existing
    return layers


def noise_zone_layers(study: Study, language: str | None = None) -> dict[str, gpd.GeoDataFrame]:
    """T-1442 road-noise zones (yellow, red) as polygons from the noise raster in use.

    Labelled as an estimate when the raster is the OSM proxy, so nobody mistakes it for
    the municipality's official noise map; in ``language`` (default: the scenario's).
    """
    settings = study.scenario.measure.noise
    if settings is None:
        return {}
    path = Path(settings.raster) if settings.raster is not None else \
        study.layers_dir / NOISE_PROXY_FILE
    if not path.exists():
        return {}
    import rasterio
    from rasterio import features

    nb = (language or study.scenario.language) == "nb"
    proxy = settings.raster is None
    suffix = (" (anslag fra OSM)" if nb else " (OSM estimate)") if proxy else ""
    with rasterio.open(path) as src:
        band = src.read(settings.road_band, masked=True).filled(np.nan)
        transform, crs = src.transform, src.crs
    out = {}
    for label_nb, label_en, lower in (
        ("Gul støysone vei", "Yellow road-noise zone", settings.road_yellow_db),
        ("Rød støysone vei", "Red road-noise zone", settings.road_red_db),
    ):
        mask = (band >= lower).astype("uint8")
        shapes = [shapely.geometry.shape(g) for g, v in
                  features.shapes(mask, mask=mask > 0, transform=transform)]
        if not shapes:
            continue
        zone = gpd.GeoDataFrame(
            {"name": [f"Lden ≥ {lower:g} dB{suffix}"]},
            geometry=[shapely.union_all(shapes).simplify(transform.a / 2)],
            crs=crs,
        ).to_crs(study.crs)
        out[(label_nb if nb else label_en) + suffix] = zone
    return out


def noise_zones_frame(study: Study, language: str | None = None) -> gpd.GeoDataFrame | None:
    """The noise zones as one frame for the web map: ``zone`` (yellow/red) and ``name``."""
    zones = noise_zone_layers(study, language)
    if not zones:
        return None
    frames = [
        frame.assign(zone="red" if ("Rød" in label or "Red" in label) else "yellow",
                     name=label)
        for label, frame in zones.items()
    ]
    return gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), crs=frames[0].crs)


def attributions(study: Study) -> list[str]:
    """Attribution lines for the data shown on the map."""
    lines = [OSM_ATTRIBUTION]
    population = study.scenario.measure.population
    if population is not None:
        source = raster_tags(Path(population.raster)).get("SOURCE")
        if source:
            # The tag ends "; from <file>" (in English): the map credits the publisher only.
            lines.append(source.split("; from ")[0])
    if study.scenario.districts is not None:
        lines.append(district_attribution(study))
    return lines


def raster_tags(path: Path) -> dict[str, str]:
    """The metadata tags of a raster (its SOURCE and LICENSE, when it was made by us)."""
    import rasterio

    with rasterio.open(path) as src:
        return dict(src.tags())


def district_attribution(study: Study) -> str:
    """Who published the districts file, for the map's and report's credits."""
    name = Path(study.scenario.districts.file).name
    # The bundled Oslo districts have a known publisher; a user's file is named as given.
    return _ATTRIBUTIONS["districts"] if name == "oslo_bydeler.gpkg" else f"Distrikter: {name}"


def districts_for_map(study: Study) -> gpd.GeoDataFrame | None:
    """The study's districts with one ``name`` column, or None without districts."""
    districts = study.districts()
    if districts is None:
        return None
    name = study.scenario.districts.name_column
    return gpd.GeoDataFrame({"name": districts[name].astype(str)}, geometry=districts.geometry)


def walking_routes_for(study: Study, plot_ids: list[str]) -> gpd.GeoDataFrame:
    """Walking routes from each plot to its nearest stop, shop, pharmacy and health service."""
    return walking_routes(study, plot_ids, categories=ROUTE_CATEGORIES)


def map_inputs(
    study: Study, ranked: gpd.GeoDataFrame, scenario: Scenario, focus: list[str], *,
    public: bool = False,
) -> dict[str, Any]:
    """Keyword arguments of :func:`sitefinder.maps.build_map` besides the plots.

    Parameters
    ----------
    study : Study
        The measured study.
    ranked : GeoDataFrame
        The ranked plots (their extent sets the basemap's).
    scenario : Scenario
        Scenario the plots were scored with (its language labels the layers).
    focus : list of str
        Plots that get isochrones and walking routes (chosen sites or the top plots).
    public : bool
        Leave out the sensitive existing sites.
    """
    # The local basemap is the web map's fallback when tiles cannot be fetched.
    bounds = ranked.to_crs(4326).total_bounds + np.array([-0.005, -0.003, 0.005, 0.003])
    return dict(
        layers=map_layers(study, public),
        sensitive=SENSITIVE_LAYERS,
        isochrones=top_isochrones(study, ranked, focus),
        routes=walking_routes_for(study, focus),
        noise_zones=noise_zones_frame(study, scenario.language),
        districts=districts_for_map(study),
        language=scenario.language,
        public=public,
        attribution=attributions(study),
        scenario=scenario,
        basemap=basemap_from_osm(study.osm, bbox=tuple(bounds)),
    )
