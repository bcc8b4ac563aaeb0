"""Printable maps on a basemap drawn from the study's own OpenStreetMap extract.

The report's maps must let a reader find a plot on paper: streets with their names, water,
parks and buildings, a scale bar, a north arrow and the attribution, drawn with matplotlib
from the local extract (no tiles, no network). The basemap geometry is picked from the
extract once, clipped to the plots' surroundings, projected to the study CRS and cached on
disk beside the metrics (:func:`basemap_for_study`), so ``select`` and ``report`` draw it
without reading the extract again.

Every figure is made with :class:`matplotlib.figure.Figure` directly (no pyplot), so a
notebook user's backend stays as it was.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from sitefinder.language import fmt_distance

__all__ = [
    "ROUTE_COLOURS",
    "Basemap",
    "add_attribution",
    "add_north_arrow",
    "add_scale_bar",
    "basemap_for_study",
    "build_basemap",
    "draw_basemap",
    "figure_jpeg",
    "figure_png",
    "overview_figure",
    "site_figure",
    "areas_figure",
]

#: Bump when what :func:`build_basemap` keeps changes, so old cache files are not read.
BASEMAP_VERSION = 3

# Okabe–Ito colours: told apart with every common colour-vision deficiency.
ROUTE_COLOURS: dict[str, str] = {
    "transit": "#0072B2", "grocery": "#009E73", "pharmacy": "#CC79A7", "health": "#E69F00",
}
SELECTED_COLOUR = "#D55E00"
NOISE_COLOURS = ("#F0E442", "#D55E00")  # yellow zone, red zone (T-1442)
_LAND, _WATER, _GREEN, _BUILDING = "#f4f1ea", "#a9cde6", "#cfe5c1", "#d8d2c8"
_MAJOR = ("motorway", "trunk", "primary", "secondary", "tertiary")
_MINOR = ("residential", "unclassified", "living_street", "service", "pedestrian", "road")
_SCALE_STEPS = (25, 50, 100, 200, 250, 500, 1000, 2000, 5000)
_memo: dict[str, Basemap] = {}


@dataclass(frozen=True)
class Basemap:
    """Basemap geometry in one projected CRS.

    Attributes
    ----------
    layers : dict of str to GeoDataFrame
        ``water``, ``green``, ``buildings`` (polygons) and ``roads`` (lines with ``name``
        and ``kind``: ``major``, ``minor`` or ``path``).
    crs : pyproj.CRS or str
        The CRS of every layer (the study CRS).
    attribution : str
        Credit printed on every map drawn from it.
    """

    layers: dict[str, gpd.GeoDataFrame]
    crs: Any
    attribution: str = "© OpenStreetMap contributors (ODbL)"
    bounds: tuple[float, float, float, float] = field(default=(0.0, 0.0, 0.0, 0.0))
    #: matplotlib paths of each layer, made on first drawing and reused by every map.
    paths: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def path(self, name: str) -> Any:
        """Layer ``name`` as one compound path (polygons) or segment list (road kinds)."""
        if name not in self.paths:
            if name.startswith("roads:"):
                roads = self.layers["roads"]
                self.paths[name] = _segments(roads[roads["kind"] == name[6:]].geometry.values)
            else:
                self.paths[name] = _polygon_path(self.layers[name].geometry.values)
        return self.paths[name]


# ----------------------------------------------------------------------------- building


def _has(df: pd.DataFrame, key: str, values: Sequence[str] | None = None) -> pd.Series:
    if key not in df.columns:
        return pd.Series(False, index=df.index)
    return df[key].isin(list(values)) if values is not None else df[key].notna()


def _road_kind(highway: pd.Series) -> pd.Series:
    kind = pd.Series("path", index=highway.index)
    base = highway.astype(str).str.replace("_link", "", regex=False)
    kind[base.isin(_MINOR)] = "minor"
    kind[base.isin(_MAJOR)] = "major"
    return kind


def _pick(osm: Any) -> dict[str, gpd.GeoDataFrame]:
    areas, lines = osm.areas, osm.lines
    green = (_has(areas, "leisure", ("park", "garden", "playground", "pitch", "nature_reserve"))
             | _has(areas, "landuse", ("grass", "forest", "meadow", "recreation_ground",
                                       "cemetery", "allotments", "village_green"))
             | _has(areas, "natural", ("wood", "scrub", "grassland", "heath")))
    water = (_has(areas, "natural", ("water", "bay", "strait")) | _has(areas, "water")
             | _has(areas, "waterway", ("riverbank", "dock")))
    roads = lines[_has(lines, "highway") & ~_has(
        lines, "highway", ("proposed", "construction", "platform", "raceway", "corridor"))]
    roads = roads.assign(kind=_road_kind(roads["highway"]),
                         name=roads.get("name", None))
    return {
        "water": areas.loc[water, ["geometry"]],
        "green": areas.loc[green, ["geometry"]],
        "buildings": areas.loc[_has(areas, "building"), ["geometry"]],
        "roads": roads[["name", "kind", "geometry"]],
    }


def build_basemap(osm: Any, crs: Any, bounds: Sequence[float]) -> Basemap:
    """Pick the basemap from an extract, clipped to ``bounds`` and projected to ``crs``.

    Parameters
    ----------
    osm : sitefinder.sources.osm.OsmData
        The extract (EPSG:4326).
    crs : pyproj.CRS or str
        Target CRS (the study's metric CRS).
    bounds : sequence of float
        ``(minx, miny, maxx, maxy)`` in ``crs``: the area any map will show.

    Returns
    -------
    Basemap
    """
    box = gpd.GeoSeries([shapely.box(*bounds)], crs=crs).to_crs(4326).total_bounds
    layers = {}
    for name, frame in _pick(osm).items():
        clipped = frame.clip(tuple(box)).to_crs(crs)
        clipped = clipped[~clipped.geometry.is_empty].reset_index(drop=True)
        # Half a metre is invisible at print scale and halves the vertices to draw.
        layers[name] = clipped.set_geometry(clipped.geometry.simplify(0.5))
    return Basemap(layers, crs, bounds=tuple(float(b) for b in bounds))


def _cache_key(osm_sha: str, crs: Any, bounds: Sequence[float]) -> str:
    parts = {"v": BASEMAP_VERSION, "osm": osm_sha, "crs": str(crs),
             "bounds": [round(float(b), -1) for b in bounds]}
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:24]


def basemap_for_study(study: Any, margin_m: float = 600.0) -> Basemap:
    """The basemap around a study's plots, from memory, the disk cache or the extract.

    The extract is read only when no cached basemap matches its checksum, the CRS and the
    plots' extent; the result is kept in ``study.cache_dir`` (when the study has one) and
    in memory for the rest of the process.

    Parameters
    ----------
    study : sitefinder.api.Study
        Supplies ``plots``, ``crs``, ``osm_path``, ``osm`` and ``cache_dir``.
    margin_m : float
        Metres of surroundings kept around the plots (routes and close-ups reach this far).

    Returns
    -------
    Basemap
    """
    from sitefinder.outfolder import read_cache, write_cache
    from sitefinder.sources.osm import file_sha256

    minx, miny, maxx, maxy = study.plots.total_bounds
    bounds = (minx - margin_m, miny - margin_m, maxx + margin_m, maxy + margin_m)
    key = _cache_key(file_sha256(study.osm_path), study.crs, bounds)
    if key in _memo:
        return _memo[key]
    cache_dir = getattr(study, "cache_dir", None)
    path = Path(cache_dir) / f"basemap-{key}.pkl" if cache_dir is not None else None
    basemap = read_cache(path, check=lambda v: isinstance(v, Basemap)) if path else None
    if basemap is None:
        basemap = build_basemap(study.osm, study.crs, bounds)
        if path is not None:
            write_cache(path, basemap)
    _memo[key] = basemap
    return basemap


# ------------------------------------------------------------------------------ drawing


def _polygon_path(geoms: np.ndarray) -> Any:
    """All polygons as one compound path: thousands of buildings draw in one call.

    Rings are oriented (exteriors one way, holes the other) so courtyards stay open.
    """
    from matplotlib.path import Path as MplPath

    polys = shapely.get_parts(geoms)
    polys = polys[shapely.get_type_id(polys) == 3]
    if not len(polys):
        return None
    rings = shapely.get_rings(shapely.orient_polygons(polys))
    coords, index = shapely.get_coordinates(rings, return_index=True)
    codes = np.full(len(coords), MplPath.LINETO, dtype=np.uint8)
    starts = np.r_[0, np.flatnonzero(np.diff(index)) + 1]
    codes[starts] = MplPath.MOVETO
    codes[np.r_[starts[1:] - 1, len(coords) - 1]] = MplPath.CLOSEPOLY
    return MplPath(coords, codes)


def _segments(geoms: np.ndarray) -> Any:
    """Lines as one compound path (unfilled): thousands of streets draw in one call."""
    from matplotlib.path import Path as MplPath

    coords, index = shapely.get_coordinates(shapely.get_parts(geoms), return_index=True)
    if not len(coords):
        return None
    codes = np.full(len(coords), MplPath.LINETO, dtype=np.uint8)
    codes[np.r_[0, np.flatnonzero(np.diff(index)) + 1]] = MplPath.MOVETO
    return MplPath(coords, codes)


def _in_view(frame: gpd.GeoDataFrame, bounds: Sequence[float]) -> gpd.GeoDataFrame:
    return frame.cx[bounds[0]:bounds[2], bounds[1]:bounds[3]]


def _road_widths(span_m: float) -> dict[str, float]:
    # Streets keep a readable width whether the map shows 500 m or 5 km.
    scale = 1.6 if span_m < 1500 else 1.0
    return {"major": 2.2 * scale, "minor": 1.1 * scale, "path": 0.35 * scale}


def draw_basemap(ax: Any, basemap: Basemap | None, bounds: Sequence[float], *,
                 labels: bool = True) -> None:
    """Draw water, green areas, buildings, streets and street names inside ``bounds``.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
        Axes in the basemap's CRS.
    basemap : Basemap or None
        None draws a plain ground (no extract at hand, e.g. a ranked table alone).
    bounds : sequence of float
        ``(minx, miny, maxx, maxy)`` shown.
    labels : bool
        Print street names along the streets.
    """
    ax.set_facecolor(_LAND)
    if basemap is None:
        _set_view(ax, bounds)
        return
    from matplotlib.patches import PathPatch

    span = max(bounds[2] - bounds[0], bounds[3] - bounds[1])
    for name, colour, z in (("green", _GREEN, 1), ("water", _WATER, 1.1),
                            ("buildings", _BUILDING, 2)):
        path = basemap.path(name)
        if path is not None:
            # add_artist, not add_patch: the view is set explicitly, and working out the
            # data limits of 100,000 vertices would cost seconds per map.
            ax.add_artist(PathPatch(path, facecolor=colour, edgecolor="none", zorder=z))
    _draw_roads(ax, basemap, _road_widths(span))
    if labels:
        _label_streets(ax, _in_view(basemap.layers["roads"], bounds), bounds, span)
    _set_view(ax, bounds)


def _draw_roads(ax: Any, basemap: Basemap, widths: Mapping[str, float]) -> None:
    from matplotlib.patches import PathPatch

    def stroke(path: Any, colour: str, width: float, z: float) -> None:
        if path is not None:
            ax.add_artist(PathPatch(path, fill=False, edgecolor=colour, linewidth=width,
                                    zorder=z, capstyle="round", joinstyle="round"))

    stroke(basemap.path("roads:path"), "#a39e93", widths["path"], 3)
    for kind in ("minor", "major"):
        # A grey casing under a white line: the street reads as a street in print.
        stroke(basemap.path(f"roads:{kind}"), "#8f8a80", widths[kind] + 0.9, 3)
        stroke(basemap.path(f"roads:{kind}"), "white", widths[kind], 3.1)


def _label_streets(ax: Any, roads: gpd.GeoDataFrame, bounds: Sequence[float],
                   span: float) -> None:
    kinds = ("major",) if span > 2500 else ("major", "minor")
    named = roads[roads["kind"].isin(kinds) & roads["name"].notna()]
    view = shapely.box(*bounds)
    taken: list[Any] = []
    for name, group in named.groupby("name"):
        line = _longest_part(shapely.line_merge(shapely.union_all(group.geometry.values)), view)
        if line is None:
            continue
        text_len = len(str(name)) * span / 95  # about 6.5 pt per character on A4 width
        if line.length < 1.3 * text_len:
            continue
        spot = line.interpolate(0.5, normalized=True).buffer(text_len / 2)
        if any(spot.intersects(t) for t in taken):
            continue
        taken.append(spot)
        _place_label(ax, line, str(name))


def _longest_part(geom: Any, view: Any) -> Any:
    inside = geom.intersection(view)
    parts = getattr(inside, "geoms", [inside])
    lines = [p for p in parts if p.geom_type == "LineString" and not p.is_empty]
    return max(lines, key=lambda p: p.length) if lines else None


def _place_label(ax: Any, line: Any, text: str) -> None:
    a = line.interpolate(0.45, normalized=True)
    b = line.interpolate(0.55, normalized=True)
    mid = line.interpolate(0.5, normalized=True)
    angle = math.degrees(math.atan2(b.y - a.y, b.x - a.x))
    if angle > 90:
        angle -= 180
    elif angle < -90:
        angle += 180
    ax.text(mid.x, mid.y, text, fontsize=5.5, color="#3b3832", rotation=angle,
            rotation_mode="anchor", ha="center", va="center", zorder=6,
            transform_rotates_text=True, clip_on=True,
            bbox={"boxstyle": "square,pad=0.05", "fc": "white", "ec": "none", "alpha": 0.6})


def _set_view(ax: Any, bounds: Sequence[float]) -> None:
    ax.set_xlim(bounds[0], bounds[2])
    ax.set_ylim(bounds[1], bounds[3])
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    for spine in ax.spines.values():
        spine.set_linewidth(0.5)


def add_scale_bar(ax: Any, bounds: Sequence[float], language: str = "nb") -> None:
    """A black-and-white scale bar of a round length, bottom left.

    Parameters
    ----------
    ax : matplotlib.axes.Axes
    bounds : sequence of float
        The map's extent in metres.
    language : {"nb", "en"}
        Number format of the label.
    """
    width = bounds[2] - bounds[0]
    length = max((s for s in _SCALE_STEPS if s <= width / 4), default=_SCALE_STEPS[0])
    x0 = bounds[0] + 0.04 * width
    y0 = bounds[1] + 0.04 * (bounds[3] - bounds[1])
    h = 0.012 * (bounds[3] - bounds[1])
    for i, colour in enumerate(("black", "white")):
        ax.add_patch(_rect(x0 + i * length / 2, y0, length / 2, h, colour))
    ax.text(x0 + length / 2, y0 + 1.8 * h, fmt_distance(length, language), ha="center",
            va="bottom", fontsize=7, zorder=8,
            bbox={"boxstyle": "square,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.8})


def _rect(x: float, y: float, w: float, h: float, colour: str) -> Any:
    from matplotlib.patches import Rectangle

    return Rectangle((x, y), w, h, facecolor=colour, edgecolor="black", linewidth=0.6,
                     zorder=8)


def add_north_arrow(ax: Any) -> None:
    """A north arrow in the top right corner (the UTM grid north, within 2° of true north)."""
    ax.annotate("N", xy=(0.95, 0.96), xytext=(0.95, 0.86), xycoords="axes fraction",
                ha="center", va="center", fontsize=9, fontweight="bold", zorder=9,
                arrowprops={"arrowstyle": "-|>", "color": "black", "lw": 1.4},
                bbox={"boxstyle": "circle,pad=0.2", "fc": "white", "ec": "none", "alpha": 0.8})


def add_attribution(ax: Any, text: str) -> None:
    """The data credit in the bottom right corner."""
    ax.text(0.995, 0.005, text, transform=ax.transAxes, ha="right", va="bottom", fontsize=5.5,
            zorder=9, bbox={"fc": "white", "ec": "none", "alpha": 0.8, "pad": 1.5})


def _furniture(ax: Any, basemap: Basemap | None, bounds: Sequence[float],
               language: str) -> None:
    add_scale_bar(ax, bounds, language)
    add_north_arrow(ax)
    if basemap is not None:
        add_attribution(ax, basemap.attribution)


def _square(bounds: Sequence[float], margin: float, minimum: float,
            aspect: float = 1.0) -> tuple[float, float, float, float]:
    """Bounds grown by ``margin`` to at least ``minimum`` wide, with width/height ``aspect``."""
    cx, cy = (bounds[0] + bounds[2]) / 2, (bounds[1] + bounds[3]) / 2
    w = max(bounds[2] - bounds[0] + 2 * margin, minimum)
    h = max(bounds[3] - bounds[1] + 2 * margin, minimum / aspect)
    w, h = max(w, h * aspect), max(h, w / aspect)
    return (cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)


def figure_png(fig: Figure, dpi: int = 150, tight: bool = False) -> str:
    """The figure as a base64 PNG for a ``data:`` URI (self-contained HTML and PDF).

    Maps fill their figure exactly; ``tight`` trims the margins of a chart.
    """
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight" if tight else None,
                pad_inches=0.02)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def figure_jpeg(fig: Figure, dpi: int = 150) -> str:
    """A map as a base64 JPEG: a third of the PNG's size, and the PDF embeds it as is."""
    buf = io.BytesIO()
    fig.savefig(buf, format="jpeg", dpi=dpi, pil_kwargs={"quality": 90})
    return base64.b64encode(buf.getvalue()).decode("ascii")


# -------------------------------------------------------------------------------- figures


def overview_figure(basemap: Basemap | None, plots: gpd.GeoDataFrame, marked: Sequence[str],
                    texts: Mapping[str, str], language: str = "nb") -> Figure:
    """Every candidate plot's outline on the basemap, coloured by score, marked sites numbered.

    Parameters
    ----------
    basemap : Basemap
    plots : GeoDataFrame
        ``plot_id``, ``score``, ``status`` and polygons, in the basemap CRS.
    marked : sequence of str
        Plot ids of the selected sites (or top candidates), numbered 1, 2 … on the map.
    texts : mapping
        Legend labels: ``ranked``, ``not_ranked``, ``marked``, ``score``.
    language : {"nb", "en"}

    Returns
    -------
    matplotlib.figure.Figure
    """
    shown = plots[~(plots.geometry.isna() | plots.geometry.is_empty)]
    bounds = _square(shown.total_bounds, 250, 1000, aspect=1 / 1.2)
    fig = Figure(figsize=(7.2, 8.6))
    ax = fig.add_axes((0, 0, 1, 1))
    draw_basemap(ax, basemap, bounds)
    _draw_candidates(ax, shown)
    _mark_sites(ax, shown, marked, bounds)
    handles = [Patch(fc="#3b528b", ec="black", lw=0.5, label=texts["ranked"]),
               Patch(fc="#bbbbbb", ec="#555555", hatch="////", lw=0.5, label=texts["not_ranked"]),
               Line2D([], [], marker="o", ls="", mfc="white", mec=SELECTED_COLOUR, mew=2,
                      ms=9, label=texts["marked"])]
    ax.legend(handles=handles, loc="upper left", fontsize=7, framealpha=0.9)
    _furniture(ax, basemap, bounds, language)
    return fig


def _draw_candidates(ax: Any, plots: gpd.GeoDataFrame) -> None:
    ok = plots[plots["status"] == "ok"]
    rest = plots[plots["status"] != "ok"]
    if len(rest):
        rest.plot(ax=ax, facecolor="#bbbbbb", edgecolor="#555555", hatch="////",
                  linewidth=0.6, zorder=5)
    if len(ok):
        # viridis reversed: the best plots are the darkest, which stands out on a light map.
        ok.plot(ax=ax, column="score", cmap="viridis_r", edgecolor="black", linewidth=0.6,
                zorder=5, legend=False)


def _mark_sites(ax: Any, plots: gpd.GeoDataFrame, marked: Sequence[str],
                bounds: Sequence[float]) -> None:
    span = bounds[2] - bounds[0]
    by_id = plots.set_index("plot_id")
    for i, pid in enumerate(marked, start=1):
        if pid not in by_id.index:
            continue
        geom = by_id.loc[pid, "geometry"]
        gpd.GeoSeries([geom]).plot(ax=ax, facecolor="none", edgecolor=SELECTED_COLOUR,
                                   linewidth=2.0, zorder=7)
        p = geom.representative_point()
        ax.plot(p.x, p.y, marker="o", ms=15, mfc="none", mec=SELECTED_COLOUR, mew=2, zorder=7)
        ax.annotate(str(i), (p.x, p.y), xytext=(p.x + span * 0.025, p.y + span * 0.025),
                    fontsize=8, fontweight="bold", ha="center", va="center", zorder=8,
                    color="white", arrowprops={"arrowstyle": "-", "color": SELECTED_COLOUR},
                    bbox={"boxstyle": "circle,pad=0.25", "fc": SELECTED_COLOUR, "ec": "white"})


def site_figure(basemap: Basemap | None, plot: Any, *, others: gpd.GeoDataFrame | None = None,
                routes: gpd.GeoDataFrame | None = None,
                noise: Mapping[str, gpd.GeoDataFrame] | None = None,
                layout: Any = None, labels: Mapping[str, str] | None = None,
                language: str = "nb") -> Figure:
    """Close-up of one plot: outline, unit layout, walking routes and noise zones.

    Parameters
    ----------
    basemap : Basemap
    plot : shapely geometry
        The plot's outline (basemap CRS).
    others : GeoDataFrame, optional
        Neighbouring candidate plots, drawn faintly for context.
    routes : GeoDataFrame, optional
        This plot's routes: ``category``, ``minutes``, LineString geometry.
    noise : mapping of str to GeoDataFrame, optional
        Noise zones by legend label, yellow zone first.
    layout : shapely geometry, optional
        The chosen unit footprints.
    labels : mapping, optional
        Legend text: ``plot``, ``units`` and one per route category.
    language : {"nb", "en"}

    Returns
    -------
    matplotlib.figure.Figure
    """
    labels = labels or {}
    extent = [plot.bounds] + ([routes.total_bounds] if routes is not None and len(routes) else [])
    e = np.array(extent)
    # Wide and low: the map, the routes table and every criterion fit on one A4 page.
    bounds = _square((e[:, 0].min(), e[:, 1].min(), e[:, 2].max(), e[:, 3].max()), 90, 600,
                     aspect=1.9)
    fig = Figure(figsize=(7.6, 4.0))
    ax = fig.add_axes((0, 0, 1, 1))
    draw_basemap(ax, basemap, bounds)
    handles = _draw_noise(ax, noise or {}, bounds)
    if others is not None and len(others):
        others.plot(ax=ax, facecolor="none", edgecolor="#555555", linewidth=0.8,
                    linestyle="--", zorder=5)
    handles += _draw_routes(ax, routes, labels)
    gpd.GeoSeries([plot]).plot(ax=ax, facecolor=SELECTED_COLOUR, alpha=0.25, zorder=6)
    gpd.GeoSeries([plot]).plot(ax=ax, facecolor="none", edgecolor=SELECTED_COLOUR,
                               linewidth=2.4, zorder=7)
    handles.append(Patch(fc="none", ec=SELECTED_COLOUR, lw=2.4, label=labels.get("plot", "")))
    if layout is not None and not layout.is_empty:
        gpd.GeoSeries([layout]).plot(ax=ax, facecolor="white", edgecolor="black",
                                     linewidth=0.7, zorder=7.5)
        handles.append(Patch(fc="white", ec="black", lw=0.7, label=labels.get("units", "")))
    ax.legend(handles=handles, loc="upper left", fontsize=6.5, framealpha=0.92)
    _furniture(ax, basemap, bounds, language)
    return fig


def _draw_noise(ax: Any, noise: Mapping[str, gpd.GeoDataFrame],
                bounds: Sequence[float]) -> list[Any]:
    handles = []
    view = shapely.box(*bounds)
    for (label, zone), colour in zip(noise.items(), NOISE_COLOURS, strict=False):
        part = zone.clip(view) if zone is not None and len(zone) else None
        if part is None or part.empty:
            continue
        part.plot(ax=ax, facecolor=colour, alpha=0.28, edgecolor=colour, linewidth=0.6,
                  zorder=4)
        handles.append(Patch(fc=colour, alpha=0.28, ec=colour, label=label))
    return handles


def _draw_routes(ax: Any, routes: gpd.GeoDataFrame | None,
                 labels: Mapping[str, str]) -> list[Any]:
    if routes is None or not len(routes):
        return []
    handles = []
    for _, route in routes.iterrows():
        colour = ROUTE_COLOURS.get(str(route["category"]), "#000000")
        line = route.geometry
        if line is None or line.is_empty:
            continue
        xs, ys = line.xy
        ax.plot(xs, ys, color="white", linewidth=4.2, zorder=6.2, solid_capstyle="round")
        ax.plot(xs, ys, color=colour, linewidth=2.6, zorder=6.3, solid_capstyle="round")
        ax.plot(xs[-1], ys[-1], marker="o", ms=7, mfc=colour, mec="white", mew=1.2,
                zorder=6.4)
        text = labels.get(str(route["category"]), "")
        handles.append(Line2D([], [], color=colour, lw=2.6, marker="o", ms=5, label=text))
    return handles


def areas_figure(basemap: Basemap | None, areas: gpd.GeoDataFrame, label: str,
                 language: str = "nb") -> Figure:
    """The best areas of a screening, numbered, on the basemap.

    Parameters
    ----------
    basemap : Basemap
    areas : GeoDataFrame
        Area polygons in the basemap CRS, best first.
    label : str
        Legend text for the areas.
    language : {"nb", "en"}

    Returns
    -------
    matplotlib.figure.Figure
    """
    bounds = _square(areas.total_bounds, 200, 1000, aspect=1.2)
    fig = Figure(figsize=(7.2, 6.0))
    ax = fig.add_axes((0, 0, 1, 1))
    draw_basemap(ax, basemap, bounds)
    areas.plot(ax=ax, facecolor="#0072B2", alpha=0.35, edgecolor="#0072B2", linewidth=1.2,
               zorder=5)
    for i, geom in enumerate(areas.geometry, start=1):
        p = geom.representative_point()
        ax.text(p.x, p.y, str(i), fontsize=8, fontweight="bold", ha="center", va="center",
                zorder=8, color="white",
                bbox={"boxstyle": "circle,pad=0.25", "fc": "#0072B2", "ec": "white"})
    ax.legend(handles=[Patch(fc="#0072B2", alpha=0.35, ec="#0072B2", label=label)],
              loc="upper left", fontsize=7, framealpha=0.9)
    _furniture(ax, basemap, bounds, language)
    return fig
