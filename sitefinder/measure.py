"""Raw metrics per plot: the expensive, scenario-independent half of the work.

The metrics table depends only on the data and the *measurement* settings of a scenario
(layers, network, counts), never on weights or thresholds, so a notebook can re-score it
many times. Columns follow docs/CONTRACT.md.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from sitefinder.config import ExposureSettings, Scenario, nearest_layers, network_categories
from sitefinder.layers import LayerSet
from sitefinder.network import WalkNetwork, access_points, plot_access
from sitefinder.network_counts import count_within
from sitefinder.network_distances import distance_field
from sitefinder.progress import progress
from sitefinder.proximity import PlotSet, proximity
from sitefinder.sources.gtfs import stop_frequencies
from sitefinder.sources.plots import STATUS_OK

STATUS_OUTSIDE = "outside_network"
# Spacing of access points on the outline of area features (parks, shop buildings):
# coarser than plot outlines because features only need to be found, not measured to 1 m.
FEATURE_STEP_M = 25.0


def network_metrics(
    plots: gpd.GeoDataFrame,
    net: WalkNetwork,
    layers: LayerSet,
    scenario: Scenario,
) -> pd.DataFrame:
    """Walking distance, time and counts from every plot to each network category.

    Parameters
    ----------
    plots : GeoDataFrame
        Plots in the local CRS (status column from :func:`~sitefinder.sources.plots.read_plots`).
    net : WalkNetwork
    layers : LayerSet
    scenario : Scenario

    Returns
    -------
    DataFrame
        Index aligned with ``plots``; per category ``dist_<cat>_m``, ``time_<cat>_min``,
        ``count_<cat>_<N>min``; and ``access_leg_m`` (shortest off-network leg),
        ``network_reach`` (``"main"``, ``"island"`` or ``"none"``).
    """
    settings = scenario.network
    speed = settings.walk_speed_kmh * 1000 / 60  # metres per minute
    minutes = scenario.measure.count_within_min
    count_label = f"{minutes:g}min"
    usable = (plots["status"] == STATUS_OK).to_numpy()
    geoms = plots.geometry.where(usable, None)
    access = plot_access(net, geoms, settings)
    primary_node, primary_leg = access.primary(net)
    nearest_leg = access.nearest_leg()

    out = pd.DataFrame(index=plots.index)
    out["access_leg_m"] = np.where(np.isfinite(nearest_leg), nearest_leg, np.nan)
    reach = np.where(
        primary_node >= 0, "main", np.where(np.isfinite(nearest_leg), "island", "none")
    )
    out["network_reach"] = np.where(usable, reach, "")
    for category in progress(network_categories(layers.frames), "walking distances"):
        features = layers[category]
        xy, owner = access_points(features.geometry, FEATURE_STEP_M)
        field = distance_field(net, xy, settings)
        dist = access.read(field)
        dist = np.where(np.isfinite(dist) & usable, dist, np.nan)
        out[f"dist_{category}_m"] = dist
        out[f"time_{category}_min"] = dist / speed
        # Counts are of features (a park counts once), joined like the distances.
        counts = count_within(
            net, xy, access, minutes * speed, settings, feature_owner=owner
        )
        out[f"count_{category}_{count_label}"] = np.where(usable, counts, 0)
    frequency = scenario.measure.transit_frequency
    if frequency is not None:
        stops = stop_frequencies(frequency).to_crs(net.crs)
        column = f"departures_per_hour_within_{frequency.walk_minutes:g}min"
        total = count_within(
            net,
            shapely.get_coordinates(stops.geometry.to_numpy()),
            access,
            frequency.walk_minutes * speed,
            settings,
            weights=stops["departures_per_hour"].to_numpy(),
        )
        out[column] = np.where(usable, total, np.nan)
    return out


#: Dwellings are counted within these distances of the plot (screening, SINTEF 2021 §2.3
#: "greier ikke å bo tett på andre"): columns ``dwellings_within_<d>m``.
DWELLING_COUNT_RADII_M: tuple[int, ...] = (25, 50)


def buffer_metrics(
    plots: gpd.GeoDataFrame, layers: LayerSet, exposure: ExposureSettings | None = None
) -> pd.DataFrame:
    """Straight-line metrics of the surroundings: distances, counts, exposure.

    ``dwelling_dist_m`` is the distance from the plot to the nearest dwelling; 0 when a
    dwelling stands on the plot. ``dwellings_within_25m``/``_50m`` count dwellings within
    that distance of the plot's outline (those on the plot included).
    ``drug_scene_dist_m`` and ``sensitive_dist_m`` are measured when the scenario has the
    ``drug_scenes`` and ``sensitive_neighbours`` layers. ``inside_industrial`` is true when
    at least half the plot's area (or its point) lies in industrial land use. With
    ``exposure`` settings, ``exposure_index`` and ``busy_frontage`` (see
    :func:`exposure_metrics`).
    """
    usable = (plots["status"] == STATUS_OK).to_numpy()
    geoms = plots.geometry.to_numpy()
    out = pd.DataFrame(index=plots.index)
    shared = PlotSet(geoms)  # bounds and trees of the plots, for every layer
    # One pass over the dwellings answers the nearest one and both counts.
    dwellings = proximity(
        geoms, layers["dwellings"].geometry.to_numpy(), usable, DWELLING_COUNT_RADII_M,
        plots=shared,
    )
    for layer, column in nearest_layers(layers.frames).items():
        out[column] = dwellings.nearest if layer == "dwellings" else proximity(
            geoms, layers[layer].geometry.to_numpy(), usable, plots=shared
        ).nearest
    for radius in DWELLING_COUNT_RADII_M:
        out[f"dwellings_within_{radius}m"] = dwellings.counts[radius]
    industrial = layers["industrial"].geometry.to_numpy()
    out["inside_industrial"] = share_inside(geoms, industrial, usable) >= 0.5
    if exposure is not None:
        out = out.join(exposure_metrics(plots, layers, exposure, shared))
    return out


def count_near(
    geoms: np.ndarray,
    others: np.ndarray,
    radius: float,
    usable: np.ndarray,
    weights: np.ndarray | None = None,
) -> np.ndarray:
    """Number (or summed ``weights``) of ``others`` within ``radius`` of each geometry.

    Unusable geometries get NaN.

    Examples
    --------
    >>> plots = np.array([shapely.box(0, 0, 10, 10)])
    >>> houses = np.array([shapely.Point(20, 5), shapely.Point(40, 5), shapely.Point(5, 5)])
    >>> count_near(plots, houses, 25, np.array([True]))
    array([2.])
    """
    return proximity(geoms, others, usable, (radius,), weights, nearest=False).counts[radius]


def exposure_metrics(
    plots: gpd.GeoDataFrame, layers: LayerSet, settings: ExposureSettings,
    shared: PlotSet | None = None,
) -> pd.DataFrame:
    """How many people pass by: a proxy from public-facing places and busy streets.

    ``shared`` is the plots' :class:`~sitefinder.proximity.PlotSet` when the caller
    has one (it saves working out their bounds and trees again).

    Returns
    -------
    DataFrame
        ``exposure_index`` (weighted count of ``passersby`` features within
        ``settings.radius_m``, nightlife counting ``settings.nightlife_weight``, plus
        ``settings.frontage_points`` for a busy frontage) and ``busy_frontage`` (the plot
        lies within ``settings.frontage_m`` of a ``busy_streets`` feature). Both are
        absent-layer tolerant: a scenario without those layers gets 0 / False.

    Examples
    --------
    >>> from sitefinder.layers import LayerSet
    >>> plots = gpd.GeoDataFrame({"status": ["ok"]}, geometry=[shapely.box(0, 0, 20, 20)])
    >>> places = gpd.GeoDataFrame(
    ...     {"kind": ["shop=bakery", "amenity=pub", "shop=kiosk"]},
    ...     geometry=[shapely.Point(30, 10), shapely.Point(50, 10), shapely.Point(900, 0)])
    >>> streets = gpd.GeoDataFrame({"kind": ["highway=primary"]},
    ...     geometry=[shapely.LineString([(-5, 30), (30, 30)])])
    >>> layers = LayerSet({"passersby": places, "busy_streets": streets}, {}, {})
    >>> m = exposure_metrics(plots, layers, ExposureSettings())
    >>> float(m["exposure_index"].iloc[0]), bool(m["busy_frontage"].iloc[0])
    (14.0, True)
    """
    usable = (plots["status"] == STATUS_OK).to_numpy()
    geoms = plots.geometry.to_numpy()
    shared = shared if shared is not None else PlotSet(geoms)
    places = layers.frames.get("passersby")
    index = np.where(usable, 0.0, np.nan)
    if places is not None and len(places):
        weights = np.where(
            places["kind"].isin(settings.nightlife).to_numpy(), settings.nightlife_weight, 1.0
        )
        radius = settings.radius_m
        index = proximity(geoms, places.geometry.to_numpy(), usable, (radius,), weights,
                          nearest=False, plots=shared).counts[radius]
    streets = layers.frames.get("busy_streets")
    frontage = np.zeros(len(plots), dtype=bool)
    if streets is not None and len(streets):
        radius = settings.frontage_m
        near = proximity(geoms, streets.geometry.to_numpy(), usable, (radius,),
                         nearest=False, plots=shared).counts[radius]
        frontage = np.nan_to_num(near) > 0
    return pd.DataFrame(
        {"exposure_index": index + np.where(frontage, settings.frontage_points, 0.0),
         "busy_frontage": frontage},
        index=plots.index,
    )


def nearest_distance(geoms: np.ndarray, others: np.ndarray, usable: np.ndarray) -> np.ndarray:
    """Distance from each usable geometry to the nearest of ``others`` (NaN if none)."""
    return proximity(geoms, others, usable).nearest


def share_inside(geoms: np.ndarray, zones: np.ndarray, usable: np.ndarray) -> np.ndarray:
    """Share (0–1) of each geometry's area inside the union of ``zones``; points 0 or 1."""
    share = np.zeros(len(geoms))
    if len(zones) == 0 or not usable.any():
        return share
    tree = shapely.STRtree(zones)
    idx = np.flatnonzero(usable)
    left, right = tree.query(geoms[idx], predicate="intersects")
    if not len(left):
        return share
    plot_pos = idx[left]
    pieces = shapely.intersection(geoms[plot_pos], zones[right])
    frame = pd.DataFrame({"plot": plot_pos, "piece": pieces})
    for plot, group in frame.groupby("plot"):  # only plots that touch a zone: a handful
        geom = geoms[plot]
        if shapely.get_type_id(geom) in (0, 4):
            share[plot] = 1.0
        elif geom.area > 0:
            share[plot] = min(1.0, shapely.union_all(group["piece"].to_numpy()).area / geom.area)
    return share


def metric_columns(scenario: Scenario) -> set[str]:
    """Every metric column a scenario's measurement settings produce.

    Lets a criterion naming a metric that will not exist be refused before any heavy work.
    """
    from sitefinder.raster_metrics import raster_columns

    minutes = f"{scenario.measure.count_within_min:g}min"
    columns = {"access_leg_m", "network_reach", "inside_industrial", "capacity_units"}
    columns |= set(nearest_layers(scenario.layers).values())
    columns |= {f"dwellings_within_{r}m" for r in DWELLING_COUNT_RADII_M}
    if scenario.measure.exposure is not None:
        columns |= {"exposure_index", "busy_frontage"}
    for category in network_categories(scenario.layers):
        columns |= {f"dist_{category}_m", f"time_{category}_min", f"count_{category}_{minutes}"}
    frequency = scenario.measure.transit_frequency
    if frequency is not None:
        columns.add(f"departures_per_hour_within_{frequency.walk_minutes:g}min")
    if scenario.districts is not None:
        columns.add("district")
    return columns | set(raster_columns(scenario.measure))


def compute_metrics(
    plots: gpd.GeoDataFrame, net: WalkNetwork, layers: LayerSet, scenario: Scenario
) -> pd.DataFrame:
    """All raw metrics for every plot, and the network status of each.

    Plots with status ``ok`` that have no walkable way within ``max_snap_m`` get status
    ``outside_network`` here (columns ``status``, ``status_reason_nb/en`` are returned
    updated).
    """
    network = network_metrics(plots, net, layers, scenario)
    buffers = buffer_metrics(plots, layers, scenario.measure.exposure)
    status = plots[["status", "status_reason_nb", "status_reason_en"]].copy()
    outside = (status["status"] == STATUS_OK) & (network["network_reach"] == "none")
    snap = scenario.network.max_snap_m
    status.loc[outside, "status"] = STATUS_OUTSIDE
    status.loc[outside, "status_reason_nb"] = (
        f"ingen gangvei innen {snap:g} m: tomten ligger utenfor kartutsnittet eller nettverket"
    )
    status.loc[outside, "status_reason_en"] = (
        f"no walkable way within {snap:g} m: the plot lies outside the map extract or network"
    )
    return pd.concat([status, network, buffers], axis=1)
