"""Every word the web map shows, in bokmål and English.

One table per kind of text: interface words (:data:`TEXT`), plot statuses
(:data:`STATUS_LABELS`), criteria and categories in the singular (:data:`CRITERION_LABELS`),
categories in the plural for counts (:data:`COUNT_LABELS`), named metric columns
(:data:`METRIC_LABELS`) and metric values that are words (:data:`VALUE_LABELS`). Numbers
are formatted by :mod:`sitefinder.language`, never here.

Bokmål follows one spelling throughout: "vei" (not "veg"), "kafé", plural after "antall".
"""

from __future__ import annotations

from sitefinder.language import STATUS_LABELS  # one table for every output

__all__ = [
    "COUNT_LABELS",
    "CRITERION_LABELS",
    "METRIC_LABELS",
    "STATUS_LABELS",
    "TEXT",
    "VALUE_LABELS",
]

TEXT: dict[str, dict[str, str]] = {
    "nb": {
        "id": "Tomte-id",
        "owner": "Eier",
        "area": "Areal",
        "status": "Status",
        "reason": "Årsak",
        "score": "Poeng",
        "rank": "rangert som nr.",
        "criterion": "Kriterium",
        "measured": "Målt",
        "value": "Verdi (0–1)",
        "weight": "Vekt",
        "search": "Søk tomt (navn eller id)",
        "notFound": "Fant ingen tomt",
        "legend": "Tegnforklaring",
        "legendTitle": "Kandidattomter etter poeng",
        "classNote": "Fem like store grupper (kvintiler) av de rangerte tomtene; "
        "mørkest er best.",
        "excludedLegend": "Utelukket eller ikke vurdert (skravert)",
        "labelNote": "Tall på kartet = rangering",
        "plots": "Kandidattomter (rangert)",
        "excluded": "Utelukkede tomter med årsak",
        "isochrones": "Gangavstand fra topptomter",
        "screening": "Skjermingssone",
        "selection": "Valgte tomter og enheter",
        "districts": "Bydeler",
        "routes": "Gangruter fra tomtene",
        "noise": "Støysoner vei (T-1442)",
        "noise_yellow": "Gul støysone",
        "noise_red": "Rød støysone",
        "basemap": "Bakgrunnskart (lokal OSM)",
        "osm_tiles": "OpenStreetMap",
        "topo_tiles": "Kartverket topografisk",
        "tilesFailed": "Kartbildene fra nettet kunne ikke lastes. Kartet viser det lokale "
        "bakgrunnskartet fra OpenStreetMap-utdraget.",
        "tilesFailedNoBasemap": "Kartbildene fra nettet kunne ikke lastes. Åpne "
        "map_offline.html, som virker uten nett.",
        "unreachable": "ikke nåbar",
        "hidden": "skjult i offentlig versjon",
        "yes": "ja",
        "no": "nei",
        "min": "min",
        "missing": "{plots} uten geometri vises bare i tabellen",
        "aggregate": "{layer}: {count}",
        "fewer": "færre enn {n}",
        "walk": "{m} gange",
        "route": "{plot} → {target}: {minutes} gange ({length})",
        "fullscreen": "Fullskjerm",
        "fullscreen_off": "Avslutt fullskjerm",
        "attribution": "Kilder",
    },
    "en": {
        "id": "Plot id",
        "owner": "Owner",
        "area": "Area",
        "status": "Status",
        "reason": "Reason",
        "score": "Score",
        "rank": "rank",
        "criterion": "Criterion",
        "measured": "Measured",
        "value": "Value (0–1)",
        "weight": "Weight",
        "search": "Find plot (name or id)",
        "notFound": "No plot found",
        "legend": "Legend",
        "legendTitle": "Candidate plots by score",
        "classNote": "Five equal groups (quintiles) of the ranked plots; darkest is best.",
        "excludedLegend": "Excluded or not assessed (hatched)",
        "labelNote": "Numbers on the map = rank",
        "plots": "Candidate plots (ranked)",
        "excluded": "Excluded plots with reason",
        "isochrones": "Walking distance from top plots",
        "screening": "Screening zone",
        "selection": "Selected sites and units",
        "districts": "Districts",
        "routes": "Walking routes from the plots",
        "noise": "Road-noise zones (T-1442)",
        "noise_yellow": "Yellow noise zone",
        "noise_red": "Red noise zone",
        "basemap": "Background map (local OSM)",
        "osm_tiles": "OpenStreetMap",
        "topo_tiles": "Kartverket topographic",
        "tilesFailed": "The map tiles could not be loaded from the internet. The map shows "
        "the local background map from the OpenStreetMap extract.",
        "tilesFailedNoBasemap": "The map tiles could not be loaded from the internet. Open "
        "map_offline.html, which works without a network.",
        "unreachable": "unreachable",
        "hidden": "hidden in public version",
        "yes": "yes",
        "no": "no",
        "min": "min",
        "missing": "{plots} without geometry: listed in the table only",
        "aggregate": "{layer}: {count}",
        "fewer": "fewer than {n}",
        "walk": "{m} walk",
        "route": "{plot} → {target}: {minutes} walk ({length})",
        "fullscreen": "Full screen",
        "fullscreen_off": "Exit full screen",
        "attribution": "Sources",
    },
}


# Labels for the criteria of the default scenario and the categories of the contract;
# unknown criteria fall back to their name with underscores as spaces.
CRITERION_LABELS: dict[str, dict[str, str]] = {
    "nb": {
        "transit": "Kollektivholdeplass",
        "grocery": "Dagligvarebutikk",
        "pharmacy": "Apotek",
        "health": "Helse-/NAV-tjenester",
        "meeting": "Lavterskel møteplass",
        "nature": "Natur/park",
        "centre": "Sentrum",
        "cafes": "Kafé",
        "screening": "Avstand til nærmeste bolig",
        "dwelling": "Avstand til nærmeste bolig",
        "not_hidden": "Avstand til boligområde",
        "residential": "Avstand til boligområde",
        "industrial": "Avstand til industri",
        "drug_scene": "Rusmiljø",
        "sensitive": "Annen brukergruppe",
        "noise": "Støy",
        "capacity": "Kapasitet",
        "spacing": "Avstand til andre småhus",
    },
    "en": {
        "transit": "Public transport stop",
        "grocery": "Grocery shop",
        "pharmacy": "Pharmacy",
        "health": "Health/NAV services",
        "meeting": "Low-threshold meeting place",
        "nature": "Nature/park",
        "centre": "Centre",
        "cafes": "Café",
        "screening": "Distance to nearest dwelling",
        "dwelling": "Distance to nearest dwelling",
        "not_hidden": "Distance to residential area",
        "residential": "Distance to residential area",
        "industrial": "Distance to industry",
        "drug_scene": "Drug scene",
        "sensitive": "Other user group",
        "noise": "Noise",
        "capacity": "Capacity",
        "spacing": "Distance to other småhus",
    },
}

# The same categories in the plural, as counted: "Antall kollektivholdeplasser innen 10 min".
COUNT_LABELS: dict[str, dict[str, str]] = {
    "nb": {
        "transit": "kollektivholdeplasser",
        "grocery": "dagligvarebutikker",
        "pharmacy": "apotek",
        "health": "helse- og NAV-tjenester",
        "meeting": "lavterskel møteplasser",
        "nature": "natur- og parkområder",
        "centre": "sentrumsområder",
        "cafes": "kafeer",
    },
    "en": {
        "transit": "public transport stops",
        "grocery": "grocery shops",
        "pharmacy": "pharmacies",
        "health": "health and NAV services",
        "meeting": "low-threshold meeting places",
        "nature": "nature areas and parks",
        "centre": "centres",
        "cafes": "cafés",
    },
}

# Metric columns with a name of their own (the pattern-built labels would read badly).
METRIC_LABELS: dict[str, dict[str, str]] = {
    "nb": {
        "inside_industrial": "Ligger i industriområde",
        "busy_frontage": "Ved hovedvei, gågate eller torg",
        "exposure_index": "Forbipasserende (anslag)",
        "dwellings_within_25m": "Boliger innen 25 m",
        "dwellings_within_50m": "Boliger innen 50 m",
        "residents_within_500m": "Innbyggere innen 500 m",
        "road_lden_db": "Veitrafikkstøy (Lden)",
        "rail_lden_db": "Jernbanestøy (Lden)",
        "noise_zone": "Støysone",
        "capacity_units": "Enheter på tomten",
        "access_leg_m": "Avstand fra tomten til gangnettet",
    },
    "en": {
        "inside_industrial": "Inside an industrial area",
        "busy_frontage": "Next to a main road, pedestrian street or square",
        "exposure_index": "Passers-by (estimate)",
        "dwellings_within_25m": "Dwellings within 25 m",
        "dwellings_within_50m": "Dwellings within 50 m",
        "residents_within_500m": "Residents within 500 m",
        "road_lden_db": "Road traffic noise (Lden)",
        "rail_lden_db": "Railway noise (Lden)",
        "noise_zone": "Noise zone",
        "capacity_units": "Units on the plot",
        "access_leg_m": "Distance from the plot to the walking network",
    },
}

# Metric values that are words in the data (T-1442 zones are stored in English).
VALUE_LABELS: dict[str, dict[str, str]] = {
    "nb": {"red": "rød", "yellow": "gul", "green": "grønn"},
    "en": {"red": "red", "yellow": "yellow", "green": "green"},
}
