"""Default QGIS styles inside the GeoPackages sitefinder writes.

QGIS looks for a table ``layer_styles`` in a GeoPackage and applies the row marked
``useAsDefault`` for a layer when the layer is opened (the convention QGIS itself uses
when a style is saved "in the database"). Every GeoPackage sitefinder writes carries one,
so a planner who drags ``ranked.gpkg`` into QGIS sees the plots coloured by score class
at once instead of one random colour:

* ``ranked``: score classes (quintiles of the ranked plots' scores, best darkest, a
  colour-blind-safe sequential palette), plots that are not ranked in grey; a second
  style "Status" colours every plot by its status;
* ``unit_layout`` / ``layout``: the planned unit footprints;
* ``sites`` (``selected.gpkg``): the chosen sites, a strong colour the score palette
  does not use;
* the thematic layers in ``layers/``: one colour per layer, the same in every run.

The table is written through GDAL (pyogrio), which registers it in ``gpkg_contents`` as
an ``attributes`` table, so GDAL, ``ogrinfo`` and QGIS all see it. The QML is built with
:mod:`xml.etree.ElementTree`, so labels and filters are always escaped correctly.
"""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyogrio

from sitefinder.language import check_language, fmt_number

__all__ = [
    "LAYER_COLOURS",
    "SCORE_COLOURS",
    "STYLE_TABLE",
    "LayerStyle",
    "categorized_qml",
    "rule_qml",
    "single_qml",
    "style_layer_file",
    "style_ranked",
    "style_selection",
    "write_styles",
]

STYLE_TABLE = "layer_styles"
_QGIS_VERSION = "3.28.0-Firenze"  # the oldest long-term release whose QML this matches

#: Score classes, best first: ColorBrewer YlGnBu (colour-blind safe, prints in grey);
#: the best is the darkest, so it stands out on a light basemap.
SCORE_COLOURS: tuple[str, ...] = ("#253494", "#2c7fb8", "#41b6c4", "#a1dab4", "#ffffcc")
_NOT_RANKED = "#bdbdbd"
#: Chosen sites: Okabe–Ito vermillion, a hue the score palette does not use.
_CHOSEN = "#d55e00"
_STATUS_COLOURS = {
    "ok": "#2c7fb8", "excluded": "#d55e00", "too_small": "#e69f00", "too_large": "#cc79a7",
    "duplicate": "#999999", "invalid_geometry": "#000000", "empty_geometry": "#000000",
    "outside_network": "#f0e442",
}
#: Colour of each thematic layer (Okabe–Ito for the places people walk to; muted tones
#: for the context layers), the same in every run and every municipality.
LAYER_COLOURS: dict[str, str] = {
    "transit": "#0072b2", "grocery": "#e69f00", "pharmacy": "#009e73",
    "health": "#cc79a7", "meeting": "#56b4e9", "cafes": "#f0e442", "centre": "#000000",
    "nature": "#4daf4a", "drug_scenes": "#d55e00", "sensitive_neighbours": "#984ea3",
    "passersby": "#a65628", "busy_streets": "#636363", "dwellings": "#bcb3a8",
    "residential_areas": "#f2e6c9", "industrial": "#9e9ac8",
}
_OTHER_LAYER = "#737373"

_TEXT = {
    "nb": {
        "score": "Poeng", "status": "Status", "not_ranked": "Ikke rangert",
        "units": "Planlagte enheter", "chosen": "Valgte steder", "other": "Annen status",
        "score_about": "Rangerte tomter i poengklasser (femtedeler), de beste mørkest; "
                       "tomter som ikke er rangert, i grått.",
        "status_about": "Alle tomter etter status.",
        "layer_about": "Laget «{name}» slik sitefinder tegner det.",
    },
    "en": {
        "score": "Score", "status": "Status", "not_ranked": "Not ranked",
        "units": "Planned units", "chosen": "Chosen sites", "other": "Other status",
        "score_about": "Ranked plots in score classes (fifths), the best darkest; plots "
                       "that are not ranked in grey.",
        "status_about": "Every plot by its status.",
        "layer_about": "The layer '{name}' as sitefinder draws it.",
    },
}


@dataclass(frozen=True)
class LayerStyle:
    """One row of ``layer_styles``: a named QML style of one layer.

    Attributes
    ----------
    layer : str
        The GeoPackage layer (table) the style is for.
    name : str
        Style name QGIS lists (Layer Properties → Style).
    qml : str
        The QML document.
    default : bool
        Applied when the layer is opened (one default per layer).
    description : str
        Shown by QGIS beside the style name.
    """

    layer: str
    name: str
    qml: str
    default: bool = True
    description: str = ""


def _rgba(colour: str, alpha: float = 1.0) -> str:
    """``#rrggbb`` as QGIS writes colours: ``r,g,b,a`` with 0–255 components."""
    value = colour.lstrip("#")
    r, g, b = (int(value[i:i + 2], 16) for i in (0, 2, 4))
    return f"{r},{g},{b},{round(alpha * 255)}"


def _options(parent: ET.Element, values: dict[str, str]) -> None:
    option_map = ET.SubElement(parent, "Option", type="Map")
    for key, value in values.items():
        ET.SubElement(option_map, "Option", type="QString", name=key, value=value)


def _symbol(kind: str, name: str, colour: str, *, alpha: float = 1.0,
            outline: str = "#232323", width: float = 0.26) -> ET.Element:
    """A QGIS symbol: ``fill`` (polygons), ``line`` or ``marker`` (points)."""
    symbol = ET.Element("symbol", type=kind, name=name, alpha="1", clip_to_extent="1",
                        force_rhr="0")
    if kind == "fill":
        layer = ET.SubElement(symbol, "layer", {"class": "SimpleFill"}, enabled="1",
                              locked="0", **{"pass": "0"})
        _options(layer, {"color": _rgba(colour, alpha), "style": "solid",
                         "outline_color": _rgba(outline), "outline_style": "solid",
                         "outline_width": f"{width}", "outline_width_unit": "MM",
                         "joinstyle": "bevel"})
    elif kind == "line":
        layer = ET.SubElement(symbol, "layer", {"class": "SimpleLine"}, enabled="1",
                              locked="0", **{"pass": "0"})
        _options(layer, {"line_color": _rgba(colour, alpha), "line_style": "solid",
                         "line_width": f"{max(width, 0.6)}", "line_width_unit": "MM",
                         "capstyle": "round", "joinstyle": "round"})
    else:
        layer = ET.SubElement(symbol, "layer", {"class": "SimpleMarker"}, enabled="1",
                              locked="0", **{"pass": "0"})
        _options(layer, {"name": "circle", "color": _rgba(colour, alpha), "size": "2.6",
                         "size_unit": "MM", "outline_color": _rgba(outline),
                         "outline_style": "solid", "outline_width": "0.3",
                         "outline_width_unit": "MM"})
    return symbol


def _document(renderer: ET.Element) -> str:
    qgis = ET.Element("qgis", version=_QGIS_VERSION, styleCategories="Symbology")
    qgis.append(renderer)
    ET.SubElement(qgis, "blendMode").text = "0"
    ET.SubElement(qgis, "featureBlendMode").text = "0"
    ET.SubElement(qgis, "layerOpacity").text = "1"
    body = ET.tostring(qgis, encoding="unicode")
    return "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n" + body


def _renderer(kind: str) -> ET.Element:
    return ET.Element("renderer-v2", type=kind, forceraster="0", symbollevels="0",
                      enableorderby="0", referencescale="-1")


def single_qml(kind: str, colour: str, *, alpha: float = 1.0, width: float = 0.26) -> str:
    """QML for one symbol for every feature.

    Parameters
    ----------
    kind : {"fill", "line", "marker"}
        Symbol kind for the layer's geometry (polygons, lines, points).
    colour : str
        ``#rrggbb``.
    alpha : float
        Fill opacity 0–1.
    width : float
        Outline (or line) width in millimetres.

    Returns
    -------
    str
    """
    renderer = _renderer("singleSymbol")
    symbols = ET.SubElement(renderer, "symbols")
    symbols.append(_symbol(kind, "0", colour, alpha=alpha, width=width))
    return _document(renderer)


def categorized_qml(kind: str, column: str, categories: Sequence[tuple[str, str, str]],
                    other: tuple[str, str] | None = None) -> str:
    """QML colouring features by the value of one column.

    Parameters
    ----------
    kind : {"fill", "line", "marker"}
    column : str
        The column whose values pick the colour.
    categories : sequence of (value, label, colour)
    other : (label, colour), optional
        Colour for every value not listed (QGIS's empty category), so no feature is
        left undrawn.

    Returns
    -------
    str
    """
    renderer = _renderer("categorizedSymbol")
    renderer.set("attr", column)
    cats = ET.SubElement(renderer, "categories")
    symbols = ET.SubElement(renderer, "symbols")
    entries = list(categories) + ([("", other[0], other[1])] if other else [])
    for i, (value, label, colour) in enumerate(entries):
        ET.SubElement(cats, "category", value=value, symbol=str(i), label=label,
                      render="true", type="string")
        symbols.append(_symbol(kind, str(i), colour, alpha=0.85))
    return _document(renderer)


def rule_qml(kind: str, rules: Sequence[tuple[str, str, str]], *,
             alpha: float = 0.9) -> str:
    """QML drawing features by rules (QGIS expressions), in order; ``ELSE`` catches the rest.

    Parameters
    ----------
    kind : {"fill", "line", "marker"}
    rules : sequence of (filter expression, label, colour)
    alpha : float
        Fill opacity.

    Returns
    -------
    str
    """
    renderer = _renderer("RuleRenderer")
    root = ET.SubElement(renderer, "rules", key=_key("root"))
    symbols = ET.SubElement(renderer, "symbols")
    for i, (expression, label, colour) in enumerate(rules):
        ET.SubElement(root, "rule", key=_key(f"rule-{i}"), filter=expression,
                      label=label, symbol=str(i))
        symbols.append(_symbol(kind, str(i), colour, alpha=alpha))
    return _document(renderer)


def _key(name: str) -> str:
    """A rule key QGIS accepts (a braced UUID), the same on every run for the same rule."""
    return "{" + str(uuid.uuid5(uuid.NAMESPACE_URL, "sitefinder/qgis/" + name)) + "}"


def _symbol_kind(geometry_type: str | None) -> str:
    """QGIS symbol kind for an OGR geometry type name (``MultiPolygon`` → ``fill``)."""
    name = (geometry_type or "").lower()
    if "point" in name:
        return "marker"
    if "line" in name:
        return "line"
    return "fill"


def _score_breaks(scores: Iterable[float]) -> list[float]:
    """Quintile class breaks of the ranked plots' scores, lowest first, no repeats."""
    values = np.asarray([s for s in scores if s is not None and np.isfinite(s)], dtype=float)
    if not len(values):
        return []
    return sorted(set(np.quantile(values, np.linspace(0, 1, 6)).round(6).tolist()))


def _score_rules(ranked: pd.DataFrame, language: str) -> list[tuple[str, str, str]]:
    """Rules for the score classes (best first) and a grey rule for the rest."""
    t = _TEXT[language]
    ok = ranked["status"] == "ok" if "status" in ranked else pd.Series(False, ranked.index)
    scores = pd.to_numeric(ranked.loc[ok, "score"], errors="coerce") if "score" in ranked \
        else pd.Series(dtype=float)
    breaks = _score_breaks(scores.tolist())
    rules = []
    if len(breaks) == 1:
        breaks = [breaks[0], breaks[0]]
    pairs = list(zip(breaks[:-1], breaks[1:], strict=True))
    colours = SCORE_COLOURS[-len(pairs):] if pairs else ()
    for k, ((low, high), colour) in enumerate(zip(reversed(pairs), colours, strict=True)):
        # The best class has no upper and the lowest no lower bound, so that rounding
        # the breaks can never leave a ranked plot to the grey "not ranked" rule.
        conditions = ["\"status\" = 'ok'"]
        if k > 0:
            conditions.append(f"\"score\" <= {high!r}")
        if k < len(pairs) - 1:
            conditions.append(f"\"score\" > {low!r}")
        label = (f"{t['score']} {fmt_number(low, 1, language)}–"
                 f"{fmt_number(high, 1, language)}")
        rules.append((" AND ".join(conditions), label, colour))
    rules.append(("ELSE", t["not_ranked"], _NOT_RANKED))
    return rules


def style_ranked(
    path: str | Path, ranked: pd.DataFrame, language: str = "nb", layer: str = "ranked"
) -> Path:
    """Give ``ranked.gpkg`` its default styles (score classes; status; unit layout).

    Parameters
    ----------
    path : str or Path
        ``ranked.gpkg`` as written by :func:`sitefinder.outputs.write_ranked_gpkg`.
    ranked : DataFrame
        The ranked plots (``status`` and ``score`` give the classes).
    language : {"nb", "en"}
        Language of the style names and legend labels.
    layer : str
        The layer holding the plots.

    Returns
    -------
    Path
    """
    # Imported here: sitefinder.spreadsheets builds on sitefinder.outputs, which uses this
    # module to style ranked.gpkg.
    from sitefinder.language import STATUS_LABELS

    t = _TEXT[check_language(language)]
    kinds = _layer_kinds(path)
    styles = []
    if layer in kinds:
        kind = kinds[layer]
        statuses = [(code, label, _STATUS_COLOURS.get(code, _OTHER_LAYER))
                    for code, label in STATUS_LABELS[language].items()]
        styles += [
            LayerStyle(layer, t["score"], rule_qml(kind, _score_rules(ranked, language)),
                       True, t["score_about"]),
            LayerStyle(layer, t["status"],
                       categorized_qml(kind, "status", statuses, (t["other"], _OTHER_LAYER)),
                       False, t["status_about"]),
        ]
    if "unit_layout" in kinds:
        styles.append(LayerStyle("unit_layout", t["units"],
                                 single_qml(kinds["unit_layout"], "#ffffff", alpha=0.7,
                                            width=0.4)))
    return write_styles(path, styles)


def style_selection(path: str | Path, language: str = "nb") -> Path:
    """Give ``selected.gpkg`` its default styles (chosen sites; their unit layout).

    Parameters
    ----------
    path : str or Path
        ``selected.gpkg`` (layers ``sites`` and ``layout``).
    language : {"nb", "en"}

    Returns
    -------
    Path
    """
    t = _TEXT[check_language(language)]
    kinds = _layer_kinds(path)
    styles = []
    if "sites" in kinds:
        styles.append(LayerStyle("sites", t["chosen"],
                                 single_qml(kinds["sites"], _CHOSEN, alpha=0.6, width=0.8)))
    if "layout" in kinds:
        styles.append(LayerStyle("layout", t["units"],
                                 single_qml(kinds["layout"], "#ffffff", alpha=0.7, width=0.4)))
    return write_styles(path, styles)


def style_layer_file(
    path: str | Path, name: str, language: str = "nb", label: str | None = None
) -> Path:
    """Give a thematic layer file (``layers/<name>.gpkg``) its colour, every layer in it.

    Parameters
    ----------
    path : str or Path
        The layer GeoPackage.
    name : str
        The thematic layer (``transit``, ``grocery`` …): picks the colour.
    language : {"nb", "en"}
    label : str, optional
        What the layer is called in ``language`` (the scenario's ``label_nb``), for the
        style name; default ``name``.

    Returns
    -------
    Path
    """
    t = _TEXT[check_language(language)]
    colour = LAYER_COLOURS.get(name, _OTHER_LAYER)
    label = label or name
    title = label[:1].upper() + label[1:]
    styles = [
        LayerStyle(layer, title, single_qml(kind, colour, alpha=0.6), True,
                   t["layer_about"].format(name=label))
        for layer, kind in _layer_kinds(path).items()
    ]
    return write_styles(path, styles)


def _layer_kinds(path: str | Path) -> dict[str, str]:
    """Spatial layers of a GeoPackage → QGIS symbol kind of their geometry type."""
    return {
        str(layer): _symbol_kind(geometry)
        for layer, geometry in pyogrio.list_layers(path)
        if geometry is not None and layer != STYLE_TABLE
    }


def write_styles(path: str | Path, styles: Sequence[LayerStyle]) -> Path:
    """Write ``layer_styles`` into a GeoPackage (replacing a table of that name).

    Parameters
    ----------
    path : str or Path
        The GeoPackage; every style's layer must be in it.
    styles : sequence of LayerStyle

    Returns
    -------
    Path
    """
    path = Path(path)
    now = pd.Timestamp(datetime.now(UTC)).tz_convert(None)
    rows = []
    for style in styles:
        info = pyogrio.read_info(path, layer=style.layer)
        rows.append({
            "f_table_catalog": "", "f_table_schema": "", "f_table_name": style.layer,
            "f_geometry_column": info.get("geometry_name") or "",
            "styleName": style.name, "styleQML": style.qml, "styleSLD": "",
            "useAsDefault": bool(style.default), "description": style.description,
            "owner": "sitefinder", "ui": "", "update_time": now,
        })
    table = pd.DataFrame(rows, columns=[
        "f_table_catalog", "f_table_schema", "f_table_name", "f_geometry_column",
        "styleName", "styleQML", "styleSLD", "useAsDefault", "description", "owner", "ui",
        "update_time",
    ])
    table["useAsDefault"] = table["useAsDefault"].astype(bool)
    table["update_time"] = pd.to_datetime(table["update_time"])
    # GDAL creates the table and registers it in gpkg_contents as 'attributes', which is
    # what QGIS and ogrinfo expect of a table without geometry.
    pyogrio.write_dataframe(table, path, layer=STYLE_TABLE, driver="GPKG")
    return path
