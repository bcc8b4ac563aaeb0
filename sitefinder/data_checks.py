"""Checks of the map data a run is based on: what is missing or looks incomplete.

A ranking is only as good as the layers behind it. These checks turn silent gaps into
warnings (bokmål and English) for the run summary and the manifest:

* a layer a weighted criterion needs has no feature at all (that criterion is left out of
  the score, so every plot would otherwise look the same on it);
* the dwellings layer looks incomplete: most buildings carry no type (``building=yes``,
  common in Nordic OSM) or there are few dwellings per km² of residential land, so
  "nearest dwelling" may be far too long;
* areas were cut at the extract's edge (kept, clipped) or multipolygons could not be
  assembled (dropped).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely

from sitefinder.config import Scenario
from sitefinder.language import NBSP, fmt_int, fmt_percent
from sitefinder.layers import LayerSet
from sitefinder.score import criteria_without_data, layer_of
from sitefinder.sources.osm import OsmData

#: Share of buildings tagged only ``building=yes`` above which dwellings may be missing.
UNTYPED_BUILDING_SHARE = 0.5
#: Fewer dwellings than this per km² of residential land use looks incomplete (a villa
#: area has several hundred houses per km²). Assumption.
MIN_DWELLINGS_PER_KM2 = 150.0


@dataclass(frozen=True)
class DataWarning:
    """One warning about the input data, in both languages."""

    code: str
    nb: str
    en: str

    def as_dict(self) -> dict[str, str]:
        """The warning as a plain mapping (for the manifest)."""
        return {"code": self.code, "nb": self.nb, "en": self.en}


def data_warnings(osm: OsmData | None, layers: LayerSet, scenario: Scenario) -> list[DataWarning]:
    """Everything about the map data a reader of the ranking should know.

    Parameters
    ----------
    osm : OsmData or None
        The extract (None when it was not read, e.g. every layer came from the cache).
    layers : LayerSet
    scenario : Scenario

    Returns
    -------
    list of DataWarning
    """
    warnings = empty_layer_warnings(layers, scenario)
    warnings += dwelling_warnings(osm, layers)
    if osm is not None:
        warnings += edge_warnings(osm.stats)
    return warnings


def empty_layer_warnings(layers: LayerSet, scenario: Scenario) -> list[DataWarning]:
    """One warning naming every weighted criterion whose layer has no feature at all.

    One warning, not one per criterion: an extract filtered to streets only would
    otherwise bury the summary under a dozen lines saying the same thing.
    """
    # The same rule the score uses to leave these criteria out.
    empty_layers = layers.empty()
    empty = [
        (name, scenario.criteria[name], layer_of(scenario.criteria[name].metric))
        for name in criteria_without_data(scenario, empty_layers)
        if scenario.criteria[name].weight > 0
    ]
    if not empty:
        return []
    nb = ", ".join(f"«{c.label_nb}»" for _, c, _ in empty)
    en = ", ".join(f"'{c.label_en}'" for _, c, _ in empty)
    names = ", ".join(sorted({layer for _, _, layer in empty}))
    return [DataWarning(
        "empty_layer",
        f"Kartdataene har ingen {nb} (lag: {names}); disse kriteriene er ikke vektlagt. "
        "Er utsnittet filtrert? Legg til kommunens egne data med add_files i scenarioet.",
        f"The map data has no {en} (layers: {names}); these criteria are not weighted. "
        "Is the extract filtered? Add the municipality's own data with add_files in the "
        "scenario.",
    )]


def dwelling_warnings(osm: OsmData | None, layers: LayerSet) -> list[DataWarning]:
    """Warn when the dwellings layer looks incomplete (untyped buildings, low density)."""
    out = []
    if osm is not None and "building" in osm.areas.columns:
        building = osm.areas["building"].dropna()
        share = float((building == "yes").mean()) if len(building) else 0.0
        if len(building) and share > UNTYPED_BUILDING_SHARE:
            out.append(DataWarning(
                "untyped_buildings",
                f"{_percent(share, 'nb')} av bygningene i kartdataene har ingen type "
                "(building=yes). "
                "Slike bygninger er regnet som boliger når de har adresse eller ligger i et "
                "boligområde (minst 30 m²); kontroller avstand til nærmeste bolig.",
                f"{_percent(share, 'en')} of the buildings in the map data have no type "
                "(building=yes). "
                "They are counted as dwellings when they carry an address or lie in "
                "residential land use (at least 30 m²); check the distance to the nearest "
                "dwelling.",
            ))
    residential = layers.frames.get("residential_areas")
    dwellings = layers.frames.get("dwellings")
    if residential is None or dwellings is None or not len(residential):
        return out
    zone = shapely.union_all(residential.geometry.to_numpy())
    km2 = zone.area / 1e6
    if km2 <= 0:
        return out
    inside = np.count_nonzero(
        shapely.within(shapely.point_on_surface(dwellings.geometry.to_numpy()), zone)
    ) if len(dwellings) else 0
    density = inside / km2
    if density < MIN_DWELLINGS_PER_KM2:
        out.append(DataWarning(
            "few_dwellings",
            f"Boliglaget ser ufullstendig ut: {fmt_int(density)} boliger per km² boligområde. "
            "Avstanden til nærmeste bolig kan være for lang; legg til kommunens egne "
            "bygningsdata (matrikkelen) med add_files.",
            f"The dwellings layer looks incomplete: {fmt_int(density, 'en')} dwellings per km² of "
            "residential land. The distance to the nearest dwelling may be too long; add "
            "the municipality's own building data (cadastre) with add_files.",
        ))
    return out


def _percent(share: float, language: str) -> str:
    """A whole percentage, "83 %" / "83%", with a plain space (searchable in the CSV)."""
    return fmt_percent(share, 0, language).replace(NBSP, " ")


def edge_warnings(stats: dict[str, int]) -> list[DataWarning]:
    """Say how many areas were cut at the extract's edge or could not be assembled."""
    out = []
    dropped = stats.get("multipolygons_dropped", 0)
    if dropped:
        out.append(DataWarning(
            "multipolygons_dropped",
            (f"{fmt_int(dropped)} flerdelt område (multipolygon) er kuttet av kartutsnittet "
             "og er ikke med." if dropped == 1 else
             f"{fmt_int(dropped)} flerdelte områder (multipolygoner) er kuttet av "
             "kartutsnittet og er ikke med.")
            + " Bruk et utsnitt som dekker litt mer enn kommunen.",
            (f"{fmt_int(dropped, 'en')} multipolygon area is cut by the extract's edge and is "
             "left out." if dropped == 1 else
             f"{fmt_int(dropped, 'en')} multipolygon areas are cut by the extract's edge and "
             "are left out.")
            + " Use an extract a little larger than the municipality.",
        ))
    return out
