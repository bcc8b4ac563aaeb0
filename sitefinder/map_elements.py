"""The pieces a sitefinder web map is made of: embedded assets, data and Folium elements.

Every script and stylesheet is embedded in the HTML (the vendored copies in
``sitefinder/assets/``, see ``VERSIONS.md``), in the online map as in the offline one: a
meeting room or municipal network that blocks CDNs must still get a working map. Only
map tiles may come from the network.

Data is written as GeoJSON text that is safe inside a ``<script>``: no ``</script>``, no
``<!--``, and names that Leaflet's layer control inserts as HTML are HTML-escaped.
"""

from __future__ import annotations

import base64
import html
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import folium
import geopandas as gpd
import numpy as np
import shapely
from branca.element import Element, MacroElement
from folium.map import Layer
from folium.template import Template

from sitefinder.errors import InputError

__all__ = [
    "BasemapLayer",
    "DataLayer",
    "Init",
    "Raw",
    "TileLayer",
    "feature_collection",
    "install_assets",
    "layer_data",
    "to_wgs84_geojson",
]

_ASSETS = Path(__file__).parent / "assets"
_JS_ASSETS = (
    ("leaflet", "leaflet/leaflet.js"),
    ("fullscreen", "leaflet.fullscreen/Control.FullScreen.js"),
    ("measure", "leaflet-measure/leaflet-measure.min.js"),
)
_CSS_ASSETS = (
    ("leaflet_css", "leaflet/leaflet.css"),
    ("fullscreen_css", "leaflet.fullscreen/Control.FullScreen.css"),
    ("measure_css", "leaflet-measure/leaflet-measure.css"),
)


# --------------------------------------------------------------------------- geometry


def to_wgs84_geojson(
    gs: gpd.GeoSeries, *, simplify_m: float, precision: float
) -> list[str | None]:
    """Simplify in metres, reproject to EPSG:4326, snap to a grid, return GeoJSON strings.

    Simplification happens in a metric CRS so the tolerance means the same everywhere;
    the grid (``precision`` degrees) bounds the number of digits written. A polygon that
    collapses on the grid is drawn as its representative point rather than vanishing.
    Missing and empty geometries give None.
    """
    if gs.crs is None:
        raise InputError(
            "the geometries have no coordinate reference system",
            hint="Set a CRS on the GeoDataFrame (the pipeline uses EPSG:25832/25833)",
        )
    geoms = gs.values
    ok = ~(shapely.is_missing(geoms) | shapely.is_empty(geoms))
    metric = gs if gs.crs.is_projected else gs.to_crs(gs.estimate_utm_crs())
    arr = np.asarray(metric.values, dtype=object)
    if ok.any():
        arr[ok] = _clean(arr[ok], simplify_m)
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
        for i, text in zip(idx, shapely.to_geojson(snapped[idx]), strict=True):
            out[i] = str(text)
    return out


def _clean(part: np.ndarray, simplify_m: float) -> np.ndarray:
    invalid = ~shapely.is_valid(part)
    if invalid.any():
        part[invalid] = shapely.make_valid(part[invalid])
    if simplify_m > 0:
        part = shapely.simplify(part, simplify_m, preserve_topology=True)
    return part


def js_safe(text: str) -> str:
    """Make JSON text safe inside an HTML ``<script>``: no ``</script>``, no ``<!--``."""
    return (
        text.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )


def dumps(obj: Any) -> str:
    """Compact JSON, non-ASCII kept, NaN refused."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def feature_collection(geojson: Sequence[str | None], props: Sequence[dict]) -> str:
    """A JS-safe GeoJSON FeatureCollection; features without geometry are left out."""
    parts = [
        '{"type":"Feature","geometry":' + g + ',"properties":' + dumps(p) + "}"
        for g, p in zip(geojson, props, strict=True)
        if g is not None
    ]
    return js_safe('{"type":"FeatureCollection","features":[' + ",".join(parts) + "]}")


def layer_data(
    gdf: gpd.GeoDataFrame,
    *,
    simplify_m: float,
    precision: float,
    tooltip: Sequence[str] | None = None,
    extra: Sequence[dict[str, Any]] | None = None,
) -> str:
    """A plain layer as JS-safe GeoJSON: tooltip text as ``t``, plus ``extra`` properties."""
    geo = to_wgs84_geojson(gdf.geometry, simplify_m=simplify_m, precision=precision)
    props: list[dict[str, Any]] = [dict(e) for e in extra] if extra else [{} for _ in geo]
    for p, tip in zip(props, tooltip or [""] * len(geo), strict=True):
        if tip:
            p["t"] = str(tip)
    return feature_collection(geo, props)


# ----------------------------------------------------------------------- folium glue


class Raw(Element):
    """An element whose text is written as is (our own, already-safe markup)."""


class DataLayer(Layer):
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
        self, key: str, name: str, data: str, options: dict[str, Any], *, show: bool = True
    ) -> None:
        # Leaflet's layer control inserts names as HTML: escape them.
        super().__init__(name=html.escape(name), overlay=True, show=show)
        self._name = "SitefinderLayer"
        self.key = key
        self.data = data
        self.options = {**options, "label": name}


class BasemapLayer(Layer):
    """The local basemap: OSM roads, buildings, water and green areas as vectors."""

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


class TileLayer(Layer):
    """A tile base layer that reports failing tiles to ``sitefinder.tiles``."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        var {{ this.get_name() }} = sitefinder.tiles(
            {{ this.key|tojson }}, {{ this.url|tojson }}, {{ this.options|tojson }});
        {% endmacro %}
        """
    )

    def __init__(
        self, key: str, name: str, url: str, attribution: str, max_zoom: int, *, show: bool
    ) -> None:
        super().__init__(name=html.escape(name), overlay=False, show=show)
        self._name = "SitefinderTiles"
        self.key = key
        self.url = url
        self.options = {"attribution": html.escape(attribution), "maxZoom": max_zoom}


class Init(MacroElement):
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
        self.config = js_safe(dumps(config))


class Ready(MacroElement):
    """Calls ``sitefinder.ready()`` after every layer and control exists (legend, note)."""

    _template = Template(
        """
        {% macro script(this, kwargs) %}
        sitefinder.ready();
        {% endmacro %}
        """
    )

    def __init__(self) -> None:
        super().__init__()
        self._name = "SitefinderReady"


# ------------------------------------------------------------------------- assets


def _asset_text(rel: str) -> str:
    return (_ASSETS / rel).read_text(encoding="utf-8")


def _inline_css(rel: str) -> str:
    """Read a vendored stylesheet and embed the images it references as data URIs."""
    base = (_ASSETS / rel).parent

    def embed(match: re.Match[str]) -> str:
        target = match.group(1).strip("'\"")
        if target.startswith(("#", "data:")):
            return match.group(0)
        data = (base / target).read_bytes()
        mime = "image/svg+xml" if target.endswith(".svg") else "image/png"
        return f"url(data:{mime};base64,{base64.b64encode(data).decode('ascii')})"

    return re.sub(r"url\(([^)]+)\)", embed, _asset_text(rel))


def _script(js: str) -> str:
    """Wrap JavaScript in a script tag, safely: an inner ``</script`` would end it early."""
    # A sourceMappingURL would make devtools fetch a file that is not there.
    js = re.sub(r"//# sourceMappingURL=\S+\s*$", "", js)
    return "<script>" + re.sub(r"</(script)", r"<\\/\1", js, flags=re.IGNORECASE) + "</script>"


def inline_leaflet(m: folium.Map) -> None:
    """Embed only Leaflet itself (script and styles, images as data URIs) in a plain map.

    For the simple maps (screening, batch overview) that use none of sitefinder's
    controls: they open without any CDN; only background tiles need the network.
    """
    m.default_js, m.default_css = [], []  # folium's CDN links (Leaflet, jQuery, Bootstrap)
    header = m.get_root().header
    header.add_child(Raw(_script(_asset_text("leaflet/leaflet.js"))), name="leaflet")
    header.add_child(Raw(f"<style>{_inline_css('leaflet/leaflet.css')}</style>"),
                     name="leaflet_css")


def install_assets(m: folium.Map, controls: Sequence[MacroElement]) -> None:
    """Embed Leaflet, the plugins and sitefinder's own script and styles in the page.

    Instance attributes are set rather than ``add_js_link``, which mutates Folium's
    class-level lists. Folium's defaults (jQuery, Bootstrap, Font Awesome, awesome-markers)
    are dropped: nothing here uses them, and each would be a request to a CDN.
    """
    header = m.get_root().header
    for element in (m, *controls):
        element.default_js = []
        element.default_css = []
    for name, rel in _JS_ASSETS:
        header.add_child(Raw(_script(_asset_text(rel))), name=name)
    for name, rel in _CSS_ASSETS:
        header.add_child(Raw(f"<style>{_inline_css(rel)}</style>"), name=name)
    header.add_child(Raw(f"<style>{_asset_text('sitefinder.css')}</style>"), name="sf_css")
    header.add_child(Raw(_script(_asset_text("sitefinder.js"))), name="sf_js")
