"""Interactive web map of ranked plots (Folium/Leaflet) that works with or without a network.

:func:`build_map` returns the map as a ``folium.Map`` (what ``Study.explore()`` shows in a
notebook); :func:`write_map` writes exactly that map as one HTML file, atomically.

Every script and stylesheet is embedded (the vendored Leaflet and plugins in
``sitefinder/assets/``), so the page never needs a CDN. Only map tiles come from the
network. ``map.html`` (``offline=False``) starts on OpenStreetMap tiles; when they cannot
be loaded it switches to the local basemap drawn from the OSM extract and says so in a
note on the map. ``map_offline.html`` (``offline=True``) starts on the local basemap and
makes no request at all unless the reader picks a tile layer. Given the same arguments,
the two files differ only in the default base layer.

The plot layers use a small own JavaScript helper (``assets/sitefinder.js``) instead of
``folium.GeoJson``: popups are built from compact per-plot properties on click, with
``textContent`` only, which keeps a 5,000-plot map small and fast and makes HTML injection
through data impossible by construction. Colours, classes and legend entries are in
:mod:`sitefinder.map_style`, popup contents in :mod:`sitefinder.map_popups`, all words in
:mod:`sitefinder.map_text`.

Privacy (DOMAIN.md §13, Forord, §6.8): layers named in ``sensitive`` (e.g. existing sites
for this resident group) are never written in public mode — at most a count per district,
with small counts suppressed — and criteria derived from them are hidden in popups.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
from folium.plugins import Fullscreen, MeasureControl

from sitefinder.errors import InputError
from sitefinder.language import fmt_distance, fmt_minutes, plots_phrase, units_phrase
from sitefinder.map_elements import (
    BasemapLayer,
    DataLayer,
    Init,
    Raw,
    Ready,
    TileLayer,
    feature_collection,
    install_assets,
    layer_data,
    to_wgs84_geojson,
)
from sitefinder.map_layers import basemap_from_osm, district_aggregates, public_layers
from sitefinder.map_popups import (
    Criterion,
    criteria_from_ranked,
    format_raw,
    hidden_criteria,
    metric_label,
    plot_properties,
    resolve_criteria,
    scenario_criteria,
)
from sitefinder.map_style import (
    BASEMAP_STYLES,
    DISTRICT_STYLE,
    EXCLUDED_STROKE,
    ISOCHRONE_COLOUR,
    LAYER_COLOURS,
    NOISE_COLOURS,
    PALETTE,
    ROUTE_COLOURS,
    SCORE_BINS,
    SCREENING_STYLE,
    SELECTION_STYLE,
    bin_labels,
    class_breaks,
    class_colours,
    score_class,
    swatch,
)
from sitefinder.map_text import CRITERION_LABELS, STATUS_LABELS, TEXT
from sitefinder.outfolder import atomic_write_text
from sitefinder.weights_panel import add_weights_panel

__all__ = [
    "Criterion",
    "PALETTE",
    "SCORE_BINS",
    "STATUS_LABELS",
    "TEXT",
    "basemap_from_osm",
    "bin_labels",
    "build_map",
    "column_map",
    "class_breaks",
    "criteria_from_ranked",
    "district_aggregates",
    "format_raw",
    "metric_label",
    "public_layers",
    "resolve_criteria",
    "scenario_criteria",
    "score_class",
    "write_map",
]

OSM_ATTRIBUTION = "© OpenStreetMap contributors (ODbL)"
KARTVERKET_ATTRIBUTION = "© Kartverket"
OSM_TILES = "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
KARTVERKET_TOPO_TILES = (
    "https://cache.kartverket.no/v1/service?Service=WMTS&Version=1.0.0&Request=GetTile"
    "&Format=image/png&Style=default&Layer=topo&TileMatrixSet=webmercator"
    "&TileMatrix={z}&TileCol={x}&TileRow={y}"
)
#: Where the map opens when there is no plot to centre on (Oslo sentrum).
_FALLBACK_BOUNDS = (10.70, 59.89, 10.80, 59.94)
#: Drawing order in the legend (plots first) and, by being drawn in this order, on the map.
_ORDER = {"plots": 0, "excluded": 1, "selection": 2, "routes": 3, "isochrones": 4,
          "noise": 5, "screening": 6, "districts": 7, "layer": 8}


@dataclass(frozen=True)
class _Context:
    """What every step of :func:`build_map` needs to know."""

    ranked: gpd.GeoDataFrame
    language: str
    public: bool
    sensitive: frozenset[str]
    criteria: list[Criterion]
    hidden: set[str]
    breaks: tuple[float, ...]
    top_n: int
    simplify_m: float
    precision: float

    @property
    def text(self) -> dict[str, str]:
        return TEXT[self.language]

    def data(self, gdf: gpd.GeoDataFrame, tooltip: Sequence[str] | None = None,
             extra: Sequence[dict[str, Any]] | None = None, simplify_m: float | None = None) -> str:
        """A layer's GeoJSON, reprojected and simplified like the plots."""
        gdf = gdf.to_crs(self.ranked.crs) if gdf.crs is not None else gdf.set_crs(self.ranked.crs)
        return layer_data(gdf, simplify_m=self.simplify_m if simplify_m is None else simplify_m,
                          precision=self.precision, tooltip=tooltip, extra=extra)


def build_map(
    ranked: gpd.GeoDataFrame,
    *,
    layers: Mapping[str, gpd.GeoDataFrame] | None = None,
    sensitive: Iterable[str] = ("existing_sites",),
    isochrones: gpd.GeoDataFrame | None = None,
    selection: gpd.GeoDataFrame | None = None,
    districts: gpd.GeoDataFrame | None = None,
    routes: gpd.GeoDataFrame | None = None,
    noise_zones: gpd.GeoDataFrame | None = None,
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
) -> folium.Map:
    """Build the interactive map of ranked plots (the map :func:`write_map` writes).

    Parameters
    ----------
    ranked : GeoDataFrame
        Ranked plots as in docs/CONTRACT.md (any metric CRS; reprojected here).
    layers : mapping of str to GeoDataFrame, optional
        Thematic layers by name (``Holdeplass``, ``industrial`` ...), each a toggle in the
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
    routes : GeoDataFrame, optional
        Walking routes with columns ``plot_id``, ``category``, ``target_name``,
        ``length_m``, ``minutes`` and LineString geometry, as from
        ``sitefinder.routes.walking_routes``; coloured by category, minutes on hover.
    noise_zones : GeoDataFrame, optional
        T-1442 road-noise zones with a ``zone`` column (``"yellow"``, ``"red"``) and
        optionally ``name`` (hover text, e.g. "Lden ≥ 55 dB (anslag fra OSM)").
    weights : mapping, optional
        Criterion weights; defaults to the scenario's, then ``ranked.attrs["weights"]``.
    raw_columns : mapping, optional
        Criterion → raw metric columns, overriding the name-based guess.
    language : {"nb", "en"}
        Language of all labels (bokmål by default).
    offline : bool
        Start on the local basemap instead of online tiles (``map_offline.html``).
    public : bool
        Leave out sensitive layers and criteria derived from them.
    basemap : mapping of str to GeoDataFrame, optional
        Local OSM layers ``green``, ``water``, ``buildings``, ``roads`` (see
        :func:`basemap_from_osm`): the offline map's base layer and the online map's
        fallback when tiles fail.
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
    folium.Map

    Raises
    ------
    InputError
        If ``ranked`` is not a GeoDataFrame with a CRS or ``language`` is unknown.

    """
    ctx = _context(ranked, language, public, sensitive, weights, raw_columns, scenario,
                   top_n=top_n, simplify_m=simplify_m, precision=precision)
    m, plugins = _new_map(ctx, title)
    m.add_child(Init(_config(ctx, attribution, has_basemap=bool(basemap))))
    _add_base_layers(m, ctx, basemap, offline)
    _add_districts(m, ctx, districts, layers)
    _add_thematic_layers(m, ctx, layers)
    _add_noise_zones(m, ctx, noise_zones)
    _add_screening(m, ctx, screening_m)
    _add_isochrones(m, ctx, isochrones)
    _add_routes(m, ctx, routes)
    _add_plots(m, ctx)
    _add_selection(m, ctx, selection)
    # Live weights panel (re-scores in the browser): after the plot layers, before Ready.
    add_weights_panel(m, ctx.ranked, scenario, language=language, top_n=top_n, public=public,
                      sensitive=ctx.sensitive)
    _add_controls(m, ctx, plugins)
    return m


def write_map(ranked: gpd.GeoDataFrame, out_path: str | Path, **kwargs: Any) -> Path:
    """Write the map of :func:`build_map` as one self-contained HTML file, atomically.

    Parameters
    ----------
    ranked : GeoDataFrame
        Ranked plots as in docs/CONTRACT.md.
    out_path : str or Path
        HTML file to write; parent folders are created. A reader never sees it half
        written: the page is rendered first and then replaces the file in one step.
    **kwargs
        Every keyword argument of :func:`build_map`.

    Returns
    -------
    Path
        The written file.

    """
    html_text = build_map(ranked, **kwargs).get_root().render()
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write_text(out_path, html_text)


# ------------------------------------------------------------------------ set-up


def _context(
    ranked: Any,
    language: str,
    public: bool,
    sensitive: Iterable[str],
    weights: Mapping[str, float] | None,
    raw_columns: Mapping[str, Sequence[str]] | None,
    scenario: Any,
    **sizes: Any,
) -> _Context:
    if language not in TEXT:
        raise InputError(
            f"unknown language {language!r}", where="language", hint="Use 'nb' or 'en'"
        )
    ranked = _frame(ranked)
    _, criteria = resolve_criteria(ranked, scenario, weights, raw_columns)
    sens = frozenset(sensitive)
    ok = _status(ranked) == "ok"
    scores = ranked.loc[ok, "score"] if "score" in ranked.columns else []
    return _Context(
        ranked=ranked, language=language, public=public, sensitive=sens, criteria=criteria,
        hidden=hidden_criteria(ranked, criteria, sens, public), breaks=class_breaks(scores),
        **sizes,
    )


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


def _status(ranked: pd.DataFrame) -> pd.Series:
    if "status" not in ranked.columns:
        return pd.Series("ok", index=ranked.index)
    return ranked["status"].fillna("ok").astype(str)


def _bounds(ranked: gpd.GeoDataFrame) -> tuple[float, float, float, float] | None:
    wgs = ranked.geometry.to_crs(4326)
    valid = wgs[~(wgs.is_empty | wgs.isna())]
    return tuple(valid.total_bounds) if len(valid) else None


def _new_map(ctx: _Context, title: str | None) -> tuple[folium.Map, tuple]:
    """The Leaflet map, centred on the plots, with every asset embedded."""
    minx, miny, maxx, maxy = _bounds(ctx.ranked) or _FALLBACK_BOUNDS
    m = folium.Map(location=[(miny + maxy) / 2, (minx + maxx) / 2], zoom_start=13,
                   tiles=None, prefer_canvas=True)
    t = ctx.text
    plugins = (
        Fullscreen(title=t["fullscreen"], title_cancel=t["fullscreen_off"]),
        MeasureControl(primary_length_unit="meters", secondary_length_unit="kilometers",
                       primary_area_unit="sqmeters", secondary_area_unit="hectares"),
    )
    install_assets(m, plugins)
    if title:
        m.get_root().header.add_child(Raw(f"<title>{html.escape(title)}</title>"), name="title")
    return m, plugins


def _config(ctx: _Context, attribution: Sequence[str], *, has_basemap: bool) -> dict[str, Any]:
    """Settings and words ``sitefinder.init`` receives (popup, legend, search, note)."""
    t = ctx.text
    n_missing = int(_missing_geometry(ctx.ranked).sum())
    return {
        "palette": class_colours(len(ctx.breaks) - 1),
        "criteria": [
            {"name": c.name, "label": c.label(ctx.language),
             "weight": _fmt_weight(c.weight, ctx.language)}
            for c in ctx.criteria
        ],
        "text": {
            **{k: v for k, v in t.items() if "{" not in v},
            "missingNote": t["missing"].format(plots=plots_phrase(n_missing, ctx.language))
            if n_missing else "",
            "tilesNote": t["tilesFailed"] if has_basemap else t["tilesFailedNoBasemap"],
        },
        "attribution": [html.escape(a) for a in _clean_attributions(attribution)],
    }


def _missing_geometry(ranked: gpd.GeoDataFrame) -> pd.Series:
    """Plots that cannot be drawn (no geometry or an empty one)."""
    return ranked.geometry.isna() | ranked.geometry.is_empty


#: "…; from befolkning_250m_2023_oslo.gpkg": a file name is not a source, and English.
_FROM_FILE = re.compile(r"[;,]?\s*\bfrom\s+\S+\.(?:gpkg|tif|tiff|csv|shp|geojson|zip)\b")


def _clean_attributions(attribution: Sequence[str]) -> list[str]:
    return [_FROM_FILE.sub("", a).strip(" ;,") for a in attribution if a and a.strip()]


def _fmt_weight(w: float | None, language: str) -> str:
    if w is None:
        return "–"
    return format_raw("weight", w, language)


# ------------------------------------------------------------------------ layers


def _add_base_layers(
    m: folium.Map, ctx: _Context, basemap: Mapping[str, gpd.GeoDataFrame] | None, offline: bool
) -> None:
    """Online tiles and the local basemap; ``offline`` only decides which one is shown."""
    t = ctx.text
    parts = _basemap_parts(basemap)
    m.add_child(TileLayer("osm_tiles", t["osm_tiles"], OSM_TILES, OSM_ATTRIBUTION, 19,
                          show=not offline or not parts))
    m.add_child(TileLayer("topo_tiles", t["topo_tiles"], KARTVERKET_TOPO_TILES,
                          KARTVERKET_ATTRIBUTION, 18, show=False))
    if parts:
        m.add_child(BasemapLayer("basemap", t["basemap"], parts, show=offline))


def _basemap_parts(basemap: Mapping[str, gpd.GeoDataFrame] | None) -> list[tuple[str, dict]]:
    parts = []
    for key in ("green", "water", "buildings", "roads"):
        gdf = (basemap or {}).get(key)
        if gdf is not None and not gdf.empty:
            # A background needs ~1 m, not 0.1 m: coarser grid and stronger simplification.
            data = layer_data(gdf, simplify_m=1.0, precision=1e-5)
            parts.append((data, BASEMAP_STYLES[key]))
    return parts


def _add_districts(
    m: folium.Map,
    ctx: _Context,
    districts: gpd.GeoDataFrame | None,
    layers: Mapping[str, gpd.GeoDataFrame] | None,
) -> None:
    if districts is None or districts.empty:
        return
    dl = districts.to_crs(ctx.ranked.crs) if districts.crs is not None else districts
    label_col = _label_column(dl)
    tips = [_text(x) for x in dl[label_col]] if label_col else [""] * len(dl)
    sens_present = [k for k in (layers or {}) if k in ctx.sensitive]
    if ctx.public and sens_present:
        agg = district_aggregates(dl, layers or {}, sens_present, language=ctx.language)
        tips = [f"{a} — {b}" if a else b for a, b in zip(tips, agg, strict=True)]
    _add_layer(m, "districts", ctx.text["districts"], ctx.data(dl, tips),
               DISTRICT_STYLE, [{"swatch": swatch(DISTRICT_STYLE), "label": ""}])


def _add_thematic_layers(
    m: folium.Map, ctx: _Context, layers: Mapping[str, gpd.GeoDataFrame] | None
) -> None:
    shown = public_layers(layers, ctx.sensitive, ctx.public)
    for i, (name, gdf) in enumerate(shown.items()):
        if gdf is None or gdf.empty:
            continue
        colour = LAYER_COLOURS[i % len(LAYER_COLOURS)]
        style = {"color": colour, "weight": 2, "fillColor": colour, "fillOpacity": 0.35,
                 "opacity": 0.9}
        label_col = _label_column(gdf)
        tips = [_text(x) for x in gdf[label_col]] if label_col else None
        shape = "point" if gdf.geom_type.isin(["Point", "MultiPoint"]).all() else "area"
        _add_layer(m, f"layer:{name}", name.replace("_", " "), ctx.data(gdf, tips), style,
                   [{"swatch": swatch(style, shape), "label": ""}], show=False, radius=4)


def _add_noise_zones(m: folium.Map, ctx: _Context, zones: gpd.GeoDataFrame | None) -> None:
    if zones is None or zones.empty:
        return
    _require(zones, ("zone",), "noise_zones")
    t = ctx.text
    # Red drawn over yellow: the worse zone must not be hidden under the milder one.
    zones = zones.assign(_o=zones["zone"].map({"yellow": 0, "red": 1})).sort_values("_o")
    tips = [_text(n) or t[f"noise_{z}"] for z, n in
            zip(zones["zone"], zones.get("name", [""] * len(zones)), strict=True)]
    styles = {z: {"color": c, "weight": 1, "fillColor": c, "fillOpacity": 0.35}
              for z, c in NOISE_COLOURS.items()}
    extra = [{"sty": styles.get(str(z), styles["yellow"])} for z in zones["zone"]]
    legend = [{"swatch": swatch(styles[z]), "label": t[f"noise_{z}"]}
              for z in ("yellow", "red") if (zones["zone"] == z).any()]
    _add_layer(m, "noise", t["noise"], ctx.data(zones, tips, extra), styles["yellow"], legend,
               show=False)


def _add_screening(m: folium.Map, ctx: _Context, screening_m: float | None) -> None:
    top = _top_mask(ctx)
    if not screening_m or not top.any():
        return
    rings = ctx.ranked.geometry[top]
    if rings.crs.is_projected:
        rings = rings.buffer(screening_m).difference(rings)
    gdf = gpd.GeoDataFrame(geometry=rings.values, crs=ctx.ranked.crs)
    name = f"{ctx.text['screening']} {fmt_distance(screening_m, ctx.language)}"
    _add_layer(m, "screening", name, ctx.data(gdf), SCREENING_STYLE,
               [{"swatch": swatch(SCREENING_STYLE), "label": ""}], show=False, interactive=False)


def _add_isochrones(m: folium.Map, ctx: _Context, iso: gpd.GeoDataFrame | None) -> None:
    if iso is None or iso.empty:
        return
    minutes = (iso["minutes"] if "minutes" in iso.columns
               else pd.Series(np.nan, index=iso.index)).astype(float)
    iso = iso.assign(_m=minutes).sort_values("_m", ascending=False)  # largest underneath
    ids = iso["plot_id"] if "plot_id" in iso.columns else pd.Series("", index=iso.index)
    walk = ctx.text["walk"]
    tips = [f"{_text(p)}: {walk.format(m=fmt_minutes(mm, ctx.language))}" if mm == mm
            else _text(p) for p, mm in zip(ids, iso["_m"], strict=True)]
    style = {"color": ISOCHRONE_COLOUR, "weight": 1, "fillColor": ISOCHRONE_COLOUR,
             "fillOpacity": 0.12}
    # Overlapping bands add up: nearer bands look darker without a colour of their own.
    legend = [{"swatch": swatch({**style, "fillOpacity": 0.12 * (k + 1)}),
               "label": walk.format(m=fmt_minutes(mm, ctx.language))}
              for k, mm in enumerate(sorted(set(iso["_m"].dropna()), reverse=True))]
    _add_layer(m, "isochrones", ctx.text["isochrones"], ctx.data(iso, tips), style,
               legend or [{"swatch": swatch(style), "label": ""}], show=False)


def _add_routes(m: folium.Map, ctx: _Context, routes: gpd.GeoDataFrame | None) -> None:
    if routes is None or routes.empty:
        return
    _require(routes, ("plot_id", "category", "minutes"), "routes")
    colours = _route_colours(routes["category"])
    styles = {c: {"color": col, "weight": 4, "opacity": 0.9} for c, col in colours.items()}
    tips = [_route_tip(ctx, row) for row in routes.itertuples(index=False)]
    extra = [{"sty": styles[str(c)]} for c in routes["category"]]
    labels = CRITERION_LABELS[ctx.language]
    legend = [{"swatch": swatch(s, "line"), "label": labels.get(c, c.replace("_", " "))}
              for c, s in styles.items()]
    _add_layer(m, "routes", ctx.text["routes"], ctx.data(routes, tips, extra, simplify_m=1.0),
               next(iter(styles.values())), legend)


def _route_colours(categories: pd.Series) -> dict[str, str]:
    spare = iter(c for c in LAYER_COLOURS if c not in ROUTE_COLOURS.values())
    return {str(c): ROUTE_COLOURS.get(str(c)) or next(spare, "#555555")
            for c in dict.fromkeys(categories)}


def _route_tip(ctx: _Context, row: Any) -> str:
    labels = CRITERION_LABELS[ctx.language]
    category = str(row.category)
    target = _text(getattr(row, "target_name", "")) or ""
    what = labels.get(category, category.replace("_", " "))
    return ctx.text["route"].format(
        plot=_text(row.plot_id),
        target=f"{what} {target}".strip() if target != what else what,
        minutes=fmt_minutes(row.minutes, ctx.language),
        length=fmt_distance(getattr(row, "length_m", None), ctx.language),
    )


def _add_plots(m: folium.Map, ctx: _Context) -> None:
    """Ranked plots coloured by class and the plots that were not ranked, hatched."""
    t = ctx.text
    geo = to_wgs84_geojson(ctx.ranked.geometry, simplify_m=ctx.simplify_m,
                           precision=ctx.precision)
    props = plot_properties(ctx.ranked, ctx.criteria, ctx.language, ctx.hidden, ctx.breaks)
    is_ok = (_status(ctx.ranked) == "ok").to_numpy()
    for key, mask, label in (("plots", is_ok, t["plots"]), ("excluded", ~is_ok, t["excluded"])):
        idx = np.flatnonzero(mask)
        data = feature_collection([geo[i] for i in idx], [props[i] for i in idx])
        legend = _plots_legend(ctx) if key == "plots" else [
            {"swatch": swatch({"color": EXCLUDED_STROKE, "dashArray": "4 3"}, "hatch"),
             "label": t["excludedLegend"]}]
        m.add_child(DataLayer(key, label, data, {
            "kind": key, "labelTop": ctx.top_n if key == "plots" else 0,
            "order": _ORDER[key], "legend": legend}))


def _plots_legend(ctx: _Context) -> list[dict[str, Any]]:
    """One row per score class, best first (the best is what a reader looks for)."""
    colours = class_colours(len(ctx.breaks) - 1)
    labels = bin_labels(ctx.language, ctx.breaks, decimals=1)
    rows = [{"swatch": swatch({"color": "#1a1a1a", "fillColor": c, "fillOpacity": 0.85}),
             "label": lab} for c, lab in zip(colours, labels, strict=True)]
    return rows[::-1]


def _add_selection(m: folium.Map, ctx: _Context, selection: gpd.GeoDataFrame | None) -> None:
    if selection is None or selection.empty:
        return
    tips = []
    for _, row in selection.iterrows():
        text = _text(row.get("plot_id", ""))
        if "units" in selection.columns and not _nan(row["units"]):
            text += f": {units_phrase(row['units'], ctx.language)}"
        tips.append(text)
    _add_layer(m, "selection", ctx.text["selection"], ctx.data(selection, tips, simplify_m=0),
               SELECTION_STYLE, [{"swatch": swatch(SELECTION_STYLE), "label": ""}])


def _add_controls(m: folium.Map, ctx: _Context, plugins: tuple) -> None:
    """Layer control (collapsed: on a phone an open one covers the whole map) and plugins.

    This is the one place for controls that act on the finished map; the weights panel
    (``sitefinder.weights_panel.add_weights_panel``) belongs here, before ``Ready``.
    """
    folium.LayerControl(collapsed=True).add_to(m)
    for plugin in plugins:
        m.add_child(plugin)
    m.add_child(Ready())
    bounds = _bounds(ctx.ranked)
    if bounds is not None:
        minx, miny, maxx, maxy = bounds
        m.fit_bounds([[miny, minx], [maxy, maxx]])


def _add_layer(
    m: folium.Map,
    key: str,
    name: str,
    data: str,
    style: dict[str, Any],
    legend: list[dict[str, Any]],
    *,
    show: bool = True,
    **options: Any,
) -> None:
    order = _ORDER["layer" if key.startswith("layer:") else key]
    m.add_child(DataLayer(key, name, data, {"style": style, "order": order, "legend": legend,
                                            **options}, show=show))


# ----------------------------------------------------------------------- helpers


def _top_mask(ctx: _Context) -> np.ndarray:
    if "rank" not in ctx.ranked.columns:
        return np.zeros(len(ctx.ranked), dtype=bool)
    rank = pd.to_numeric(ctx.ranked["rank"], errors="coerce").astype("Float64")
    ranks = rank.to_numpy(dtype=float, na_value=np.inf)
    return (_status(ctx.ranked) == "ok").to_numpy() & (ranks <= ctx.top_n)


def _require(gdf: gpd.GeoDataFrame, columns: Sequence[str], argument: str) -> None:
    missing = [c for c in columns if c not in gdf.columns]
    if missing:
        raise InputError(
            f"the {argument} layer has no column {', '.join(missing)}",
            where=argument,
            hint=f"Give {argument} the columns {', '.join(columns)} (see build_map)",
        )


def _nan(x: Any) -> bool:
    try:
        return x is None or x is pd.NA or bool(np.isnan(float(x)))
    except (TypeError, ValueError):
        return False


def _text(x: Any) -> str:
    return "" if x is None or x is pd.NA or (isinstance(x, float) and x != x) else str(x)


def _label_column(gdf: gpd.GeoDataFrame) -> str | None:
    for c in ("name", "navn", "bydel", "label", "plot_id", "amenity", "shop", "category"):
        if c in gdf.columns:
            return c
    return None


#: Low → high: viridis stops (colour-blind safe, readable on a light basemap).
SEQUENTIAL = ("#440154", "#31688e", "#35b779", "#fde725")


def column_map(
    frame: gpd.GeoDataFrame,
    column: str,
    tooltip: list[str] | None = None,
    colours: tuple[str, ...] = SEQUENTIAL,
    centre: float | None = None,
    **kwargs,
) -> folium.Map:
    """A quick web map of plots coloured by one numeric column (grey where it is empty).

    Parameters
    ----------
    frame : GeoDataFrame
        Plots in any CRS.
    column : str
        Numeric column to colour by.
    tooltip : list of str, optional
        Columns shown on hover (default ``plot_id`` and ``column``).
    colours : tuple of str
        Colour stops from the lowest to the highest value.
    centre : float, optional
        Value at the middle colour (a diverging scale symmetric around it, e.g. 0 for
        rank changes).
    **kwargs
        Passed to ``folium.Map`` (e.g. ``tiles=None``).

    Returns
    -------
    folium.Map

    Raises
    ------
    InputError
        A column that is missing or holds no numbers.
    """
    from branca.colormap import LinearColormap

    values = pd.to_numeric(frame[column], errors="coerce") if column in frame else None
    if values is None or values.notna().sum() == 0:
        raise InputError(
            f"there is no numeric column '{column}' to colour the plots by",
            where="map of the plots",
            hint="Colour by a numeric column such as 'score' or 'time_transit_min'",
        )
    tooltip = [c for c in (tooltip or ["plot_id", column]) if c in frame.columns]
    shown = frame[[c for c in tooltip if c != column]].assign(**{column: values})
    shown = gpd.GeoDataFrame(shown, geometry=frame.geometry).to_crs(4326)
    for c in tooltip:  # text on hover, "–" where empty (and JSON-safe)
        if c != column:
            shown[c] = shown[c].astype("string").fillna("–")
    low, high = float(values.min()), float(values.max())
    if centre is not None:
        reach = max(abs(low - centre), abs(high - centre), 1e-9)
        low, high = centre - reach, centre + reach
    scale = LinearColormap(list(colours), vmin=low, vmax=high, caption=column)
    west, south, east, north = shown.total_bounds
    m = folium.Map(**{"location": [(south + north) / 2, (west + east) / 2], **kwargs})
    m.fit_bounds([[south, west], [north, east]])

    def style(feature: dict) -> dict:
        v = feature["properties"][column]
        fill = "#bbbbbb" if v is None else scale(v)
        return {"color": "#333333", "weight": 1, "fillColor": fill, "fillOpacity": 0.8}

    folium.GeoJson(shown, style_function=style,
                   tooltip=folium.GeoJsonTooltip(tooltip)).add_to(m)
    scale.add_to(m)
    return m
