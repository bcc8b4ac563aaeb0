"""Interactive web map of ranked plots (Folium/Leaflet), online or fully offline.

The map is built with Folium, but the plot layers use a small own JavaScript helper
(``assets/sitefinder.js``) instead of ``folium.GeoJson``: popups are built from compact
per-plot properties on click, with ``textContent`` only, which keeps a 5,000-plot map
small and fast and makes HTML injection through data impossible by construction.

Online maps load Leaflet and the plugins from jsDelivr (the same versions as vendored);
offline maps embed the vendored copies in ``sitefinder/assets/`` (see ``VERSIONS.md``),
so the file opens with no network at all and its basemap is drawn from local OSM layers.

Privacy (DOMAIN.md §13, Forord, §6.8): layers named in ``sensitive`` (e.g. existing sites
for this resident group) are never written in public mode — at most a count per district,
with small counts suppressed — and criteria derived from them are hidden in popups.
"""

from __future__ import annotations

import base64
import html
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from branca.element import Element, MacroElement
from folium.map import Layer
from folium.plugins import Fullscreen, MeasureControl
from folium.template import Template

from sitefinder.errors import InputError

__all__ = [
    "Criterion",
    "PALETTE",
    "SCORE_BINS",
    "basemap_from_osm",
    "criteria_from_ranked",
    "public_layers",
    "scenario_criteria",
    "write_map",
]

# Viridis, 5 classes: perceptually ordered, readable for the common colour-vision
# deficiencies and monotone in lightness, so it still orders in greyscale print.
PALETTE: tuple[str, ...] = ("#440154", "#3b528b", "#21918c", "#5ec962", "#fde725")
SCORE_BINS: tuple[float, ...] = (0.0, 20.0, 40.0, 60.0, 80.0, 100.0)

OSM_ATTRIBUTION = "© OpenStreetMap contributors (ODbL)"
KARTVERKET_ATTRIBUTION = "© Kartverket"
OSM_TILES = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
KARTVERKET_TOPO_TILES = (
    "https://cache.kartverket.no/v1/service?Service=WMTS&Version=1.0.0&Request=GetTile"
    "&Format=image/png&Style=default&Layer=topo&TileMatrixSet=webmercator"
    "&TileMatrix={z}&TileCol={x}&TileRow={y}"
)

_ASSETS = Path(__file__).parent / "assets"

# Vendored front-end assets: (name, package dir, file, CDN url of the same version).
_CDN = "https://cdn.jsdelivr.net/npm"
_JS_ASSETS = (
    ("leaflet", "leaflet/leaflet.js", f"{_CDN}/leaflet@1.9.4/dist/leaflet.js"),
    (
        "fullscreen",
        "leaflet.fullscreen/Control.FullScreen.js",
        f"{_CDN}/leaflet.fullscreen@3.0.0/Control.FullScreen.js",
    ),
    (
        "measure",
        "leaflet-measure/leaflet-measure.min.js",
        f"{_CDN}/leaflet-measure@2.1.7/dist/leaflet-measure.min.js",
    ),
)
_CSS_ASSETS = (
    ("leaflet_css", "leaflet/leaflet.css", f"{_CDN}/leaflet@1.9.4/dist/leaflet.css"),
    (
        "fullscreen_css",
        "leaflet.fullscreen/Control.FullScreen.css",
        f"{_CDN}/leaflet.fullscreen@3.0.0/Control.FullScreen.css",
    ),
    (
        "measure_css",
        "leaflet-measure/leaflet-measure.css",
        f"{_CDN}/leaflet-measure@2.1.7/dist/leaflet-measure.css",
    ),
)

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
        "legendTitle": "Tomter etter poeng (0–100)",
        "excludedLegend": "Utelatt / ikke vurdert (skravert)",
        "labelNote": "Tall på kartet = rangering",
        "plots": "Kandidattomter (rangert)",
        "excluded": "Utelatte tomter med årsak",
        "isochrones": "Gangavstand fra topptomter",
        "screening": "Skjermingssone",
        "selection": "Valgte tomter og enheter",
        "districts": "Bydeler",
        "basemap": "Bakgrunnskart (lokal OSM)",
        "osm_tiles": "OpenStreetMap",
        "topo_tiles": "Kartverket topografisk",
        "unreachable": "ikke nåbar",
        "hidden": "skjult i offentlig versjon",
        "yes": "ja",
        "no": "nei",
        "min": "min",
        "missing": "{n} tomt(er) uten geometri vises bare i tabellen",
        "aggregate": "{layer}: {count}",
        "fewer": "færre enn {n}",
        "units": "enheter",
        "walk": "{m} min gange",
        "fullscreen": "Fullskjerm",
        "fullscreen_off": "Avslutt fullskjerm",
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
        "legendTitle": "Plots by score (0–100)",
        "excludedLegend": "Excluded / not assessed (hatched)",
        "labelNote": "Numbers on the map = rank",
        "plots": "Candidate plots (ranked)",
        "excluded": "Excluded plots with reason",
        "isochrones": "Walking distance from top plots",
        "screening": "Screening zone",
        "selection": "Selected sites and units",
        "districts": "Districts",
        "basemap": "Background map (local OSM)",
        "osm_tiles": "OpenStreetMap",
        "topo_tiles": "Kartverket topographic",
        "unreachable": "unreachable",
        "hidden": "hidden in public version",
        "yes": "yes",
        "no": "no",
        "min": "min",
        "missing": "{n} plot(s) without geometry are listed in the table only",
        "aggregate": "{layer}: {count}",
        "fewer": "fewer than {n}",
        "units": "units",
        "walk": "{m} min walk",
        "fullscreen": "Full screen",
        "fullscreen_off": "Exit full screen",
    },
}

STATUS_LABELS: dict[str, dict[str, str]] = {
    "nb": {
        "ok": "Rangert",
        "excluded": "Utelatt",
        "invalid_geometry": "Ugyldig geometri",
        "empty_geometry": "Mangler geometri",
        "outside_network": "Utenfor gangnettet",
        "too_small": "For liten",
        "too_large": "For stor",
        "duplicate": "Dublett",
    },
    "en": {
        "ok": "Ranked",
        "excluded": "Excluded",
        "invalid_geometry": "Invalid geometry",
        "empty_geometry": "Missing geometry",
        "outside_network": "Outside the walking network",
        "too_small": "Too small",
        "too_large": "Too large",
        "duplicate": "Duplicate",
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
        "screening": "Avstand til nærmeste bolig",
        "dwelling": "Avstand til nærmeste bolig",
        "not_hidden": "Avstand til boligområde",
        "residential": "Avstand til boligområde",
        "industrial": "Avstand til industri",
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
        "screening": "Distance to nearest dwelling",
        "dwelling": "Distance to nearest dwelling",
        "not_hidden": "Distance to residential area",
        "residential": "Distance to residential area",
        "industrial": "Distance to industry",
        "noise": "Noise",
        "capacity": "Capacity",
        "spacing": "Distance to other småhus",
    },
}

# Criteria whose raw metric is not named after the criterion itself.
_RAW_ALIASES: dict[str, tuple[str, ...]] = {
    "screening": ("dwelling_dist_m",),
    "not_hidden": ("residential_dist_m",),
    "hidden": ("residential_dist_m",),
    "industrial": ("industrial_dist_m", "inside_industrial"),
    "industry": ("industrial_dist_m", "inside_industrial"),
}

_RAW_PATTERN = re.compile(r"^(dist_.+_m|time_.+_min|count_.+|.+_dist_m|inside_.+)$")


@dataclass(frozen=True)
class Criterion:
    """One scoring criterion as shown in popups and reports.

    Parameters
    ----------
    name : str
        Criterion key; its value column is ``value_<name>``.
    weight : float or None
        Weight in the scenario, None when unknown.
    raw_columns : tuple of str
        Raw metric columns shown for it (metres first, then minutes).

    """

    name: str
    weight: float | None
    raw_columns: tuple[str, ...]
    label_nb: str | None = None
    label_en: str | None = None

    def label(self, language: str = "nb") -> str:
        """Human-readable label in ``language`` ("nb" or "en")."""
        own = self.label_nb if language == "nb" else self.label_en
        if own:
            return own[:1].upper() + own[1:]  # scenario labels are written for sentences
        labels = CRITERION_LABELS.get(language, CRITERION_LABELS["en"])
        return labels.get(self.name, self.name.replace("_", " ").capitalize())


def scenario_criteria(scenario: Any) -> dict[str, Any]:
    """Weights, raw columns, labels and thresholds of a ``sitefinder.config.Scenario``.

    Returns a dict with keys ``weights``, ``raw_columns``, ``labels`` and ``thresholds``
    (criterion name → ``{"ideal": ..., "unacceptable": ...}`` as text with units), ready
    for :func:`write_map` / :func:`sitefinder.report.write_report` (pass ``scenario=``).
    """
    weights, raws, labels, thresholds = {}, {}, {}, {}
    for name, c in scenario.criteria.items():
        weights[name] = float(c.weight)
        metric = str(c.metric)
        cols = [metric]
        if metric.startswith("dist_") and metric.endswith("_m"):
            cols.append("time_" + metric[len("dist_") : -len("_m")] + "_min")
        raws[name] = tuple(cols)
        labels[name] = (c.label_nb, c.label_en)
        v = c.value
        unit = " m" if metric.endswith("_m") else " min" if metric.endswith("_min") else ""
        thresholds[name] = v.thresholds(unit)
    return {"weights": weights, "raw_columns": raws, "labels": labels, "thresholds": thresholds}


def criteria_from_ranked(
    ranked: pd.DataFrame,
    weights: Mapping[str, float] | None = None,
    raw_columns: Mapping[str, Sequence[str]] | None = None,
    labels: Mapping[str, tuple[str, str]] | None = None,
) -> list[Criterion]:
    """List the criteria of a ranked table with their weights and raw columns.

    Criteria are the ``value_<name>`` columns, in table order. Weights come from
    ``weights``, else ``ranked.attrs["weights"]``, else ``weight_<name>`` columns.

    Parameters
    ----------
    ranked : DataFrame
        Ranked plots following docs/CONTRACT.md.
    weights : mapping, optional
        Criterion name to weight.
    raw_columns : mapping, optional
        Criterion name to raw metric columns, overriding the name-based guess.
    labels : mapping, optional
        Criterion name to ``(label_nb, label_en)``.

    Returns
    -------
    list of Criterion

    """
    if weights is None:
        weights = ranked.attrs.get("weights") or {}
    raw_columns = raw_columns or {}
    out = []
    for col in ranked.columns:
        if not str(col).startswith("value_"):
            continue
        name = str(col)[len("value_") :]
        weight = weights.get(name)
        if weight is None and f"weight_{name}" in ranked.columns:
            weight = float(pd.to_numeric(ranked[f"weight_{name}"]).dropna().iloc[0])
        if name in raw_columns:
            raws = tuple(raw_columns[name])
        else:
            candidates = (
                f"dist_{name}_m",
                f"time_{name}_min",
                f"{name}_dist_m",
                *_RAW_ALIASES.get(name, ()),
            )
            raws = tuple(dict.fromkeys(c for c in candidates if c in ranked.columns))
        nb, en = (labels or {}).get(name, (None, None))
        out.append(Criterion(name, None if weight is None else float(weight), raws, nb, en))
    return out


def _fmt_number(x: float, decimals: int, language: str) -> str:
    s = f"{x:,.{decimals}f}"
    if language == "nb":
        # Norwegian: thin space as thousands separator, comma as decimal mark.
        s = s.replace(",", "\u202f").replace(".", ",")
    return s


def format_raw(column: str, value: Any, language: str = "nb") -> str:
    """Format one raw metric for people: ``"350 m"``, ``"4,7 min"``, ``"ikke nåbar"``.

    Parameters
    ----------
    column : str
        Column name; its suffix decides the unit.
    value : Any
        The value.
    language : {"nb", "en"}
        Output language.

    Returns
    -------
    str

    """
    t = TEXT[language]
    if value is None or value is pd.NA:
        return t["unreachable"] if column.endswith(("_m", "_min")) else "–"
    if isinstance(value, bool | np.bool_):
        return t["yes"] if value else t["no"]
    try:
        x = float(value)
    except (TypeError, ValueError):
        return str(value)
    if math.isnan(x):
        return t["unreachable"] if column.endswith(("_m", "_min")) else "–"
    if column.endswith("_min"):
        return f"{_fmt_number(x, 1, language)} min"
    if column.endswith("_m2"):
        return f"{_fmt_number(x, 0, language)} m²"
    if column.endswith("_m"):
        return f"{_fmt_number(x, 0, language)} m"
    if column.endswith("_db"):
        return f"{_fmt_number(x, 0, language)} dB"
    return _fmt_number(x, 0 if x.is_integer() else 2, language)


_COUNT_RE = re.compile(r"^count_(?P<cat>.+)_(?P<n>\d+)min$")
_DIST_RE = re.compile(r"^(?:dist_(?P<a>.+)_m|(?P<b>.+)_dist_m)$")
_TIME_RE = re.compile(r"^time_(?P<cat>.+)_min$")


def metric_label(column: str, language: str = "nb") -> str:
    """Readable label of a raw metric column, e.g. ``count_grocery_10min``.

    Parameters
    ----------
    column : str
        Column name following docs/CONTRACT.md.
    language : {"nb", "en"}
        Output language.

    Returns
    -------
    str
        E.g. "Antall dagligvarebutikk innen 10 min" / "Grocery shop within 10 min".

    """
    labels = CRITERION_LABELS.get(language, CRITERION_LABELS["en"])

    def lab(cat: str) -> str:
        return labels.get(cat, cat.replace("_", " "))

    if m := _COUNT_RE.match(column):
        n = m.group("n")
        if language == "nb":
            return f"Antall {lab(m.group('cat')).lower()} innen {n} min"
        return f"{lab(m.group('cat'))} within {n} min"
    if m := _DIST_RE.match(column):
        cat = m.group("a") or m.group("b")
        return f"{lab(cat)} ({'avstand' if language == 'nb' else 'distance'})"
    if m := _TIME_RE.match(column):
        return f"{lab(m.group('cat'))} ({'gangtid' if language == 'nb' else 'walking time'})"
    return column.replace("_", " ")


def _fmt_value(v: Any, language: str) -> str:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return "–"
    return "–" if math.isnan(x) else _fmt_number(x, 2, language)


def _fmt_weight(w: float | None, language: str) -> str:
    if w is None:
        return "–"
    return _fmt_number(w, 0 if float(w).is_integer() else 2, language)


def _is_sensitive_column(column: str, sensitive: Iterable[str]) -> bool:
    col = column.lower()
    return any(s and s.lower() in col for s in sensitive) or "existing" in col


def score_class(score: Any) -> int:
    """Palette index (0–4) of a score 0–100, or -1 when there is no score."""
    try:
        s = float(score)
    except (TypeError, ValueError):
        return -1
    if math.isnan(s):
        return -1
    return int(min(max(np.searchsorted(SCORE_BINS, s, side="right") - 1, 0), len(PALETTE) - 1))


def bin_labels(language: str = "nb") -> list[str]:
    """Legend labels of the score classes, e.g. ``"80–100"``."""
    return [
        f"{SCORE_BINS[i]:.0f}–{SCORE_BINS[i + 1]:.0f}" for i in range(len(SCORE_BINS) - 1)
    ][::1]


# --------------------------------------------------------------------------- geometry


def _to_wgs84_geojson(
    gs: gpd.GeoSeries, *, simplify_m: float, precision: float
) -> list[str | None]:
    """Simplify in metres, reproject to EPSG:4326, snap to a grid, return GeoJSON strings.

    Simplification happens in a metric CRS so the tolerance means the same everywhere;
    the grid (``precision`` degrees) bounds the number of digits written. A polygon that
    collapses on the grid is drawn as its representative point rather than vanishing.
    """
    if gs.crs is None:
        raise InputError(
            "the geometries have no coordinate reference system",
            hint="Set a CRS on the GeoDataFrame (the pipeline uses EPSG:25832/25833)",
        )
    geoms = gs.values
    missing = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    metric = gs if gs.crs.is_projected else gs.to_crs(gs.estimate_utm_crs())
    arr = np.asarray(metric.values, dtype=object)
    ok = ~missing
    if ok.any():
        part = arr[ok]
        invalid = ~shapely.is_valid(part)
        if invalid.any():
            part[invalid] = shapely.make_valid(part[invalid])
        if simplify_m > 0:
            part = shapely.simplify(part, simplify_m, preserve_topology=True)
        arr[ok] = part
    wgs = gpd.GeoSeries(arr, crs=metric.crs).to_crs(4326).values
    snapped = np.asarray(shapely.set_precision(wgs, precision), dtype=object)
    collapsed = ok & (shapely.is_empty(snapped) | shapely.is_missing(snapped))
    if collapsed.any():
        snapped[collapsed] = shapely.set_precision(
            shapely.point_on_surface(wgs[collapsed]), precision
        )
    out: list[str | None] = [None] * len(snapped)
    idx = np.flatnonzero(ok)
    if len(idx):
        texts = shapely.to_geojson(snapped[idx])
        for i, t in zip(idx, texts, strict=True):
            out[i] = str(t)
    return out


def _js_safe(text: str) -> str:
    """Make JSON text safe inside an HTML ``<script>``: no ``</script>``, no ``<!--``."""
    return (
        text.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def _dumps(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _feature_collection(geojson: Sequence[str | None], props: Sequence[dict]) -> str:
    parts = [
        '{"type":"Feature","geometry":' + g + ',"properties":' + _dumps(p) + "}"
        for g, p in zip(geojson, props, strict=True)
        if g is not None
    ]
    return _js_safe('{"type":"FeatureCollection","features":[' + ",".join(parts) + "]}")


# ----------------------------------------------------------------------- folium glue


class _Raw(Element):
    """An element whose text is written as is (our own, already-safe markup)."""


class _DataLayer(Layer):
    """A GeoJSON layer created by ``sitefinder.layer`` from pre-serialised, JS-safe data."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        var {{ this.get_name() }} = sitefinder.layer(
            {{ this.key|tojson }}, {{ this.data }}, {{ this.options|tojson }});
        {% endmacro %}
        """
    )

    def __init__(
        self,
        key: str,
        name: str,
        data: str,
        options: dict[str, Any],
        *,
        overlay: bool = True,
        show: bool = True,
    ) -> None:
        # Leaflet's layer control inserts names as HTML: escape them.
        super().__init__(name=html.escape(name), overlay=overlay, show=show)
        self._name = "SitefinderLayer"
        self.key = key
        self.data = data
        self.options = options


class _BasemapLayer(Layer):
    """The offline basemap: OSM roads, buildings, water and green areas as vectors."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        var {{ this.get_name() }} = sitefinder.basemap({{ this.key|tojson }}, [
        {%- for part in this.parts %}
            {data: {{ part[0] }}, style: {{ part[1]|tojson }}},
        {%- endfor %}
        ]);
        {% endmacro %}
        """
    )

    def __init__(
        self, key: str, name: str, parts: list[tuple[str, dict]], *, show: bool = True
    ) -> None:
        super().__init__(name=html.escape(name), overlay=False, show=show)
        self._name = "SitefinderBasemap"
        self.key = key
        self.parts = parts


class _Init(MacroElement):
    """Calls ``sitefinder.init(map, config)`` before any sitefinder layer is created."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        sitefinder.init({{ this._parent.get_name() }}, {{ this.config }});
        {% endmacro %}
        """
    )

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__()
        self._name = "SitefinderInit"
        self.config = _js_safe(_dumps(config))


def _asset_text(rel: str) -> str:
    return (_ASSETS / rel).read_text(encoding="utf-8")


def _inline_css(rel: str) -> str:
    """Read a vendored stylesheet and embed the images it references as data URIs."""
    base = (_ASSETS / rel).parent
    css = _asset_text(rel)

    def embed(match: re.Match[str]) -> str:
        target = match.group(1).strip("'\"")
        if target.startswith(("#", "data:")):
            return match.group(0)
        data = (base / target).read_bytes()
        mime = "image/svg+xml" if target.endswith(".svg") else "image/png"
        return f"url(data:{mime};base64,{base64.b64encode(data).decode('ascii')})"

    return re.sub(r"url\(([^)]+)\)", embed, css)


def _script(js: str) -> str:
    """Wrap JavaScript in a script tag, safely: an inner ``</script`` would end it early."""
    # A sourceMappingURL would make devtools fetch a file that is not there.
    js = re.sub(r"//# sourceMappingURL=\S+\s*$", "", js)
    return "<script>" + re.sub(r"</(script)", r"<\\/\1", js, flags=re.IGNORECASE) + "</script>"


def _install_assets(m: folium.Map, offline: bool, controls: Sequence[MacroElement]) -> None:
    """Point Leaflet and plugins at the CDN (online) or embed the vendored copies (offline).

    Instance attributes are set rather than ``add_js_link``, which mutates Folium's
    class-level lists. Folium's defaults (jQuery, Bootstrap, Font Awesome, awesome-markers)
    are dropped: nothing here uses them and they would double the load time.
    """
    header = m.get_root().header
    for element in (m, *controls):
        element.default_js = []
        element.default_css = []
    if offline:
        for name, rel, _ in _JS_ASSETS:
            header.add_child(
                _Raw(_script(_asset_text(rel))), name=name
            )
        for name, rel, _ in _CSS_ASSETS:
            header.add_child(_Raw(f"<style>{_inline_css(rel)}</style>"), name=name)
    else:
        m.default_js = [(name, url) for name, _, url in _JS_ASSETS]
        m.default_css = [(name, url) for name, _, url in _CSS_ASSETS]
    header.add_child(_Raw(f"<style>{_asset_text('sitefinder.css')}</style>"), name="sf_css")
    header.add_child(_Raw(_script(_asset_text("sitefinder.js"))), name="sf_js")


# ------------------------------------------------------------------------- contents


def _plot_properties(
    ranked: gpd.GeoDataFrame,
    criteria: Sequence[Criterion],
    language: str,
    hidden_criteria: set[str],
) -> list[dict[str, Any]]:
    t = TEXT[language]
    statuses = STATUS_LABELS[language]
    n = len(ranked)

    def col(name: str, default: Any = "") -> list[Any]:
        return list(ranked[name]) if name in ranked.columns else [default] * n

    ids = col("plot_id", None)
    if "plot_id" not in ranked.columns:
        ids = [f"row-{i + 1}" for i in range(n)]
    names, owners = col("name"), col("owner")
    status = col("status", "ok")
    reasons = col(f"status_reason_{language}")
    expl = col(f"explanation_{language}")
    scores, ranks, areas = col("score", None), col("rank", None), col("area_m2", None)
    used = {c for crit in criteria for c in crit.raw_columns}
    extra_cols = [
        c for c in ranked.columns if _RAW_PATTERN.match(str(c)) and c not in used
    ]
    extra_labels = {c: metric_label(str(c), language) for c in extra_cols}
    # Column lists once: per-cell .iat access dominates the run time for 5,000 plots.
    needed = used | set(extra_cols) | {f"value_{c.name}" for c in criteria}
    cols = {c: ranked[c].tolist() for c in needed}
    props = []
    for i in range(n):
        row_raw, row_val = [], []
        for crit in criteria:
            if crit.name in hidden_criteria:
                row_raw.append(t["hidden"])
                row_val.append("–")
                continue
            raws = [format_raw(c, cols[c][i], language) for c in crit.raw_columns]
            row_raw.append(" · ".join(dict.fromkeys(raws)) or "–")
            row_val.append(_fmt_value(cols[f"value_{crit.name}"][i], language))
        extras = [
            [extra_labels[c], format_raw(c, cols[c][i], language)]
            for c in extra_cols
            if c not in hidden_criteria
        ]
        st = str(status[i]) if status[i] is not None else "ok"
        score = scores[i]
        rank = ranks[i]
        rank_i = None if rank is None or pd.isna(rank) else int(rank)
        p: dict[str, Any] = {
            "i": _text(ids[i]),
            "n": _text(names[i]),
            "o": _text(owners[i]),
            "st": st,
            "sl": statuses.get(st, st),
            "re": _text(reasons[i]),
            "s": "–" if _nan(score) else _fmt_number(float(score), 1, language),
            "k": score_class(score) if st == "ok" else -1,
            "e": _text(expl[i]),
            "r": row_raw,
            "v": row_val,
        }
        if areas[i] is not None and not _nan(areas[i]):
            p["a"] = format_raw("area_m2", areas[i], language)
        if rank_i is not None:
            p["rk"] = rank_i
        if extras:
            p["x"] = extras
        props.append(p)
    return props


def _rank_array(ranked: pd.DataFrame) -> np.ndarray:
    """Ranks as floats, +inf where a plot has no rank (so ``<= n`` is False)."""
    if "rank" not in ranked.columns:
        return np.full(len(ranked), np.inf)
    r = pd.to_numeric(ranked["rank"], errors="coerce").astype("Float64")
    return r.to_numpy(dtype=float, na_value=np.inf)


def _nan(x: Any) -> bool:
    try:
        return x is None or x is pd.NA or math.isnan(float(x))
    except (TypeError, ValueError):
        return False


def _text(x: Any) -> str:
    return "" if x is None or x is pd.NA or (isinstance(x, float) and math.isnan(x)) else str(x)


def _label_column(gdf: gpd.GeoDataFrame) -> str | None:
    for c in ("name", "navn", "bydel", "label", "plot_id", "amenity", "shop", "category"):
        if c in gdf.columns:
            return c
    return None


def _plain_layer_data(
    gdf: gpd.GeoDataFrame, *, simplify_m: float, precision: float, tooltip: Sequence[str] | None
) -> str:
    geo = _to_wgs84_geojson(gdf.geometry, simplify_m=simplify_m, precision=precision)
    if tooltip is None:
        props: list[dict[str, Any]] = [{} for _ in range(len(gdf))]
    else:
        props = [{"t": _text(x)} if _text(x) else {} for x in tooltip]
    return _feature_collection(geo, props)


# Qualitative colours (Okabe–Ito) for amenity layers: distinguishable with CVD.
_LAYER_COLOURS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442")
_BASEMAP_STYLES: dict[str, dict[str, Any]] = {
    "green": {"stroke": False, "fillColor": "#cfe8c4", "fillOpacity": 1.0},
    "water": {"stroke": False, "fillColor": "#aad3df", "fillOpacity": 1.0},
    "buildings": {"color": "#bcb3a8", "weight": 0.5, "fillColor": "#d9d0c9", "fillOpacity": 1.0},
    "roads": {"color": "#ffffff", "weight": 2, "opacity": 1.0},
}


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


def _frame(ranked: Any) -> gpd.GeoDataFrame:
    if not isinstance(ranked, gpd.GeoDataFrame):
        raise InputError(
            "the ranked plots are not a GeoDataFrame",
            hint="Pass the GeoDataFrame returned by sitefinder.run or Study.score",
        )
    if ranked.crs is None:
        raise InputError(
            "the ranked plots have no coordinate reference system",
            hint="Set a CRS (the pipeline uses EPSG:25832 or EPSG:25833)",
        )
    return ranked


def resolve_criteria(
    ranked: gpd.GeoDataFrame,
    scenario: Any,
    weights: Mapping[str, float] | None,
    raw_columns: Mapping[str, Sequence[str]] | None,
) -> tuple[dict, list[Criterion]]:
    """Criteria to show, from the scenario unless weights/raw columns are given explicitly.

    Returns the scenario's extracted settings (empty without a scenario) and the criteria.
    """
    from_scn = scenario_criteria(scenario) if scenario is not None else {}
    criteria = criteria_from_ranked(
        ranked,
        weights if weights is not None else from_scn.get("weights"),
        raw_columns if raw_columns is not None else from_scn.get("raw_columns"),
        from_scn.get("labels"),
    )
    return from_scn, criteria


def write_map(
    ranked: gpd.GeoDataFrame,
    out_path: str | Path,
    *,
    layers: Mapping[str, gpd.GeoDataFrame] | None = None,
    sensitive: Iterable[str] = ("existing_sites",),
    isochrones: gpd.GeoDataFrame | None = None,
    selection: gpd.GeoDataFrame | None = None,
    districts: gpd.GeoDataFrame | None = None,
    weights: Mapping[str, float] | None = None,
    raw_columns: Mapping[str, Sequence[str]] | None = None,
    language: str = "nb",
    offline: bool = False,
    public: bool = False,
    basemap: Mapping[str, gpd.GeoDataFrame] | None = None,
    attribution: Sequence[str] = (OSM_ATTRIBUTION,),
    screening_m: float | None = 25.0,
    top_n: int = 10,
    simplify_m: float = 0.5,
    precision: float = 1e-6,
    title: str | None = None,
    scenario: Any = None,
) -> Path:
    """Write the interactive map of ranked plots as one HTML file.

    Parameters
    ----------
    ranked : GeoDataFrame
        Ranked plots as in docs/CONTRACT.md (any metric CRS; reprojected here).
    out_path : str or Path
        HTML file to write; parent folders are created.
    layers : mapping of str to GeoDataFrame, optional
        Thematic layers by name (``bus_stops``, ``industrial`` ...), each a toggle in the
        layer control, hidden at start. A ``name`` column becomes the hover text.
    sensitive : iterable of str
        Layer names that are sensitive (default ``existing_sites``). Shown only when
        ``public`` is False; in public mode at most a per-district count.
    isochrones : GeoDataFrame, optional
        Walking isochrones with columns ``plot_id``, ``minutes`` (e.g. 5/10/15).
    selection : GeoDataFrame, optional
        Selected sites or unit footprints with ``plot_id`` and optionally ``units``.
    districts : GeoDataFrame, optional
        District polygons with a ``name`` column.
    weights : mapping, optional
        Criterion weights; defaults to ``ranked.attrs["weights"]`` (see
        :func:`criteria_from_ranked`).
    raw_columns : mapping, optional
        Criterion → raw metric columns, overriding the name-based guess.
    language : {"nb", "en"}
        Language of all labels (bokmål by default).
    offline : bool
        Embed every script, stylesheet and icon; no tile server. The basemap is drawn
        from ``basemap``.
    public : bool
        Leave out sensitive layers and criteria derived from them.
    basemap : mapping of str to GeoDataFrame, optional
        Local OSM layers ``green``, ``water``, ``buildings``, ``roads`` (see
        :func:`basemap_from_osm`); used offline, and online as an extra base layer.
    attribution : sequence of str
        Data attributions shown on the map (plain text; Kartverket is added for its tiles).
    screening_m : float, optional
        Draw a screening zone of this width around the top plots (hidden at start).
    top_n : int
        Number of top plots labelled with their rank and given screening zones.
    simplify_m : float
        Simplification tolerance in metres for plots and layers.
    precision : float
        Coordinate grid in degrees (1e-6° ≈ 0.1 m).
    title : str, optional
        HTML page title.
    scenario : Scenario, optional
        A ``sitefinder.config.Scenario``: weights, raw columns and labels are taken from
        it (explicit ``weights``/``raw_columns`` still win).

    Returns
    -------
    Path
        The written file.

    Raises
    ------
    InputError
        If ``ranked`` is not a GeoDataFrame with a CRS or ``language`` is unknown.

    """
    if language not in TEXT:
        raise InputError(
            f"unknown language {language!r}", where="language", hint="Use 'nb' or 'en'"
        )
    ranked = _frame(ranked)
    t = TEXT[language]
    out_path = Path(out_path)
    sens = set(sensitive)
    from_scn, criteria = resolve_criteria(ranked, scenario, weights, raw_columns)
    hidden = (
        {c.name for c in criteria if any(_is_sensitive_column(r, sens) for r in c.raw_columns)}
        | {c.name for c in criteria if _is_sensitive_column(c.name, sens)}
        if public
        else set()
    )
    if public:
        hidden |= {str(c) for c in ranked.columns if _is_sensitive_column(str(c), sens)}

    status = ranked["status"] if "status" in ranked.columns else pd.Series("ok", ranked.index)
    geo = _to_wgs84_geojson(ranked.geometry, simplify_m=simplify_m, precision=precision)
    props = _plot_properties(ranked, criteria, language, hidden)
    is_ok = (status == "ok").to_numpy()
    n_missing = sum(g is None for g in geo)

    # Centre on the plots; fall back to layers, then to Oslo.
    wgs = ranked.geometry.to_crs(4326)
    valid = wgs[~(wgs.is_empty | wgs.isna())]
    if len(valid):
        minx, miny, maxx, maxy = valid.total_bounds
    else:
        minx, miny, maxx, maxy = 10.70, 59.89, 10.80, 59.94
    m = folium.Map(
        location=[(miny + maxy) / 2, (minx + maxx) / 2],
        zoom_start=13,
        tiles=None,
        prefer_canvas=True,
    )
    fullscreen = Fullscreen(title=t["fullscreen"], title_cancel=t["fullscreen_off"])
    measure = MeasureControl(
        primary_length_unit="meters",
        secondary_length_unit="kilometers",
        primary_area_unit="sqmeters",
        secondary_area_unit="hectares",
    )
    _install_assets(m, offline, (fullscreen, measure))
    if title:
        m.get_root().header.add_child(_Raw(f"<title>{html.escape(title)}</title>"), name="title")

    attributions = [html.escape(a) for a in attribution]
    config = {
        "palette": list(PALETTE),
        "bins": bin_labels(language),
        "criteria": [
            {"name": c.name, "label": c.label(language), "weight": _fmt_weight(c.weight, language)}
            for c in criteria
        ],
        "text": {
            **{k: v for k, v in t.items() if "{" not in v},
            "missingNote": t["missing"].format(n=n_missing) if n_missing else "",
        },
        "attribution": attributions,
    }
    m.add_child(_Init(config))

    # Base layers.
    if not offline:
        folium.TileLayer(
            OSM_TILES, attr=html.escape(OSM_ATTRIBUTION), name=t["osm_tiles"], max_zoom=19
        ).add_to(m)
        folium.TileLayer(
            KARTVERKET_TOPO_TILES,
            attr=html.escape(KARTVERKET_ATTRIBUTION),
            name=t["topo_tiles"],
            max_zoom=18,
            show=False,
        ).add_to(m)
    if basemap:
        parts = []
        for key in ("green", "water", "buildings", "roads"):
            gdf = basemap.get(key)
            if gdf is None or gdf.empty:
                continue
            # Background needs ~1 m, not 0.1 m: coarser grid and stronger simplification.
            data = _plain_layer_data(gdf, simplify_m=1.0, precision=1e-5, tooltip=None)
            parts.append((data, _BASEMAP_STYLES[key]))
        if parts:
            # Offline it is the base map; online an alternative to the tiles, off at start.
            m.add_child(_BasemapLayer("basemap", t["basemap"], parts, show=offline))

    # Districts first so plots are drawn on top.
    if districts is not None and not districts.empty:
        dl = districts.to_crs(ranked.crs) if districts.crs is not None else districts
        label_col = _label_column(dl)
        tips = [_text(x) for x in dl[label_col]] if label_col else [""] * len(dl)
        sens_present = [k for k in (layers or {}) if k in sens]
        if public and sens_present:
            agg = district_aggregates(dl, layers or {}, sens_present, language=language)
            tips = [f"{a} — {b}" if a else b for a, b in zip(tips, agg, strict=True)]
        data = _plain_layer_data(dl, simplify_m=simplify_m, precision=precision, tooltip=tips)
        style = {"color": "#333333", "weight": 2, "dashArray": "6 4", "fill": True,
                 "fillOpacity": 0.0}
        m.add_child(_DataLayer("districts", t["districts"], data, {"style": style}, show=True))

    shown_layers = public_layers(layers, sens, public)
    for i, (name, gdf) in enumerate(shown_layers.items()):
        if gdf is None or gdf.empty:
            continue
        colour = _LAYER_COLOURS[i % len(_LAYER_COLOURS)]
        label_col = _label_column(gdf)
        tips = list(gdf[label_col]) if label_col else None
        data = _plain_layer_data(gdf, simplify_m=simplify_m, precision=precision, tooltip=tips)
        style = {"color": colour, "weight": 2, "fillColor": colour, "fillOpacity": 0.35,
                 "opacity": 0.9}
        m.add_child(
            _DataLayer(f"layer:{name}", name.replace("_", " "), data, {"style": style,
                       "radius": 4}, show=False)
        )

    top_mask = is_ok & (
        _rank_array(ranked) <= top_n
        if "rank" in ranked.columns
        else np.zeros(len(ranked), dtype=bool)
    )
    if screening_m and top_mask.any():
        rings = ranked.geometry[top_mask]
        rings = rings.buffer(screening_m).difference(rings) if rings.crs.is_projected else rings
        gdf = gpd.GeoDataFrame(geometry=rings.values, crs=ranked.crs)
        data = _plain_layer_data(gdf, simplify_m=simplify_m, precision=precision, tooltip=None)
        style = {"color": "#000000", "weight": 1, "dashArray": "2 4", "fillColor": "#000000",
                 "fillOpacity": 0.08}
        m.add_child(
            _DataLayer("screening", f"{t['screening']} {screening_m:g} m", data,
                       {"style": style, "interactive": False}, show=False)
        )

    if isochrones is not None and not isochrones.empty:
        iso = isochrones.to_crs(ranked.crs) if isochrones.crs is not None else isochrones
        if "minutes" in iso.columns:
            iso = iso.sort_values("minutes", ascending=False)  # largest first, underneath
            minutes = iso["minutes"].to_numpy()
        else:
            minutes = np.full(len(iso), np.nan)
        ids = iso["plot_id"] if "plot_id" in iso.columns else [""] * len(iso)
        tips = [
            f"{_text(pid)}: {t['walk'].format(m=_fmt_number(float(mm), 0, language))}"
            if not _nan(mm) else _text(pid)
            for pid, mm in zip(ids, minutes, strict=True)
        ]
        data = _plain_layer_data(iso, simplify_m=simplify_m, precision=precision, tooltip=tips)
        # Per-feature opacity: nearer bands darker; encoded by minutes, not colour only.
        style = {"color": "#D55E00", "weight": 1, "fillColor": "#D55E00", "fillOpacity": 0.12}
        m.add_child(
            _DataLayer("isochrones", t["isochrones"], data, {"style": style}, show=False)
        )

    ok_idx = np.flatnonzero(is_ok)
    bad_idx = np.flatnonzero(~is_ok)
    label_top = top_n
    m.add_child(
        _DataLayer(
            "plots",
            t["plots"],
            _feature_collection([geo[i] for i in ok_idx], [props[i] for i in ok_idx]),
            {"kind": "plots", "labelTop": label_top},
        )
    )
    m.add_child(
        _DataLayer(
            "excluded",
            t["excluded"],
            _feature_collection([geo[i] for i in bad_idx], [props[i] for i in bad_idx]),
            {"kind": "excluded", "labelTop": 0},
        )
    )

    if selection is not None and not selection.empty:
        sel = selection.to_crs(ranked.crs) if selection.crs is not None else selection
        tips = []
        for _, row in sel.iterrows():
            txt = _text(row.get("plot_id", ""))
            if "units" in sel.columns and not _nan(row["units"]):
                txt += f": {int(row['units'])} {t['units']}"
            tips.append(txt)
        data = _plain_layer_data(sel, simplify_m=0, precision=precision, tooltip=tips)
        style = {"color": "#000000", "weight": 2, "fillColor": "#ffffff", "fillOpacity": 0.9}
        m.add_child(_DataLayer("selection", t["selection"], data, {"style": style}, show=True))

    folium.LayerControl(collapsed=False).add_to(m)
    m.add_child(fullscreen)
    m.add_child(measure)
    if len(valid):
        m.fit_bounds([[miny, minx], [maxy, maxx]])

    out_path.parent.mkdir(parents=True, exist_ok=True)
    m.save(str(out_path))
    return out_path
