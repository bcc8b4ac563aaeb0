"""Layers drawn on the web map: the local OSM basemap, public layers, district counts.

Privacy (DOMAIN.md §13, Forord, §6.8): layers named in ``sensitive`` (e.g. existing sites
for this resident group) are never written in public mode — at most a count per district,
with small counts suppressed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from sitefinder.map_text import TEXT

__all__ = ["basemap_from_osm", "district_aggregates", "public_layers"]


def public_layers(
    layers: Mapping[str, gpd.GeoDataFrame] | None,
    sensitive: Iterable[str],
    public: bool,
) -> dict[str, gpd.GeoDataFrame]:
    """Return the layers that may be shown: in public mode, without sensitive ones.

    Parameters
    ----------
    layers : mapping of str to GeoDataFrame, optional
        Thematic layers by name.
    sensitive : iterable of str
        Names of sensitive layers.
    public : bool
        Whether the output is for the public.

    Returns
    -------
    dict of str to GeoDataFrame

    """
    layers = dict(layers or {})
    if not public:
        return layers
    sens = set(sensitive)
    return {k: v for k, v in layers.items() if k not in sens}


def district_aggregates(
    districts: gpd.GeoDataFrame,
    layers: Mapping[str, gpd.GeoDataFrame],
    names: Iterable[str],
    *,
    min_count: int = 3,
    language: str = "nb",
) -> list[str]:
    """Count features of sensitive layers per district; small counts are suppressed.

    Counts below ``min_count`` (including zero, which would also reveal something) are
    reported as "fewer than N", so no single home can be located from the aggregate.

    Returns
    -------
    list of str
        One line of text per district, in ``districts`` order.

    """
    t = TEXT[language]
    lines = [[] for _ in range(len(districts))]
    for name in names:
        layer = layers.get(name)
        if layer is None or layer.empty:
            counts = np.zeros(len(districts), dtype=int)
        else:
            pts = layer.to_crs(districts.crs).geometry.representative_point()
            hits = gpd.sjoin(
                gpd.GeoDataFrame(geometry=pts),
                gpd.GeoDataFrame(geometry=districts.geometry.reset_index(drop=True)),
                predicate="within",
            )
            counts = np.bincount(hits["index_right"].to_numpy(), minlength=len(districts))
        for i, c in enumerate(counts):
            shown = str(int(c)) if c >= min_count else t["fewer"].format(n=min_count)
            lines[i].append(t["aggregate"].format(layer=name.replace("_", " "), count=shown))
    return ["; ".join(x) for x in lines]


def basemap_from_osm(
    osm: Any, bbox: tuple[float, float, float, float] | None = None
) -> dict[str, gpd.GeoDataFrame]:
    """Pick roads, buildings, water and green areas from an ``OsmData`` for offline maps.

    Parameters
    ----------
    osm : OsmData
        Result of ``sitefinder.sources.osm.read_osm`` (``points``, ``lines``, ``areas``).
    bbox : tuple, optional
        ``(minx, miny, maxx, maxy)`` in EPSG:4326 to clip to; keeps the HTML small.

    Returns
    -------
    dict of str to GeoDataFrame
        Keys ``green``, ``water``, ``buildings``, ``roads`` (drawn in that order).

    """
    areas, lines = osm.areas, osm.lines

    def has(df: pd.DataFrame, key: str, values: Iterable[str] | None = None) -> pd.Series:
        if key not in df.columns:
            return pd.Series(False, index=df.index)
        s = df[key]
        return s.isin(list(values)) if values is not None else s.notna()

    green_landuse = ("grass", "forest", "meadow", "recreation_ground", "cemetery", "allotments")
    parts = {
        "green": areas[
            has(areas, "leisure", ("park", "garden", "playground", "pitch", "nature_reserve"))
            | has(areas, "landuse", green_landuse)
            | has(areas, "natural", ("wood", "scrub", "grassland", "heath"))
        ],
        "water": areas[
            has(areas, "natural", ("water", "bay", "strait"))
            | has(areas, "water")
            | has(areas, "waterway", ("riverbank", "dock"))
        ],
        "buildings": areas[has(areas, "building")],
        "roads": lines[
            has(lines, "highway")
            & ~has(lines, "highway", ("proposed", "construction", "platform", "raceway"))
        ],
    }
    if bbox is not None:
        parts = {k: v.clip(bbox) for k, v in parts.items()}
    return {k: v[["geometry"]].reset_index(drop=True) for k, v in parts.items()}
