"""Excel workbooks for the people who read the ranking in a spreadsheet.

``ranked.csv`` is for programs (comma-separated, decimal point, column names as in
docs/CONTRACT.md). A Norwegian Excel opens such a file as one column, so the same table
is also written as ``ranked.xlsx`` (and the chosen sites as ``selected.xlsx``), in one
language:

* a header row in words (``Tomte-ID``, ``Poeng (0–100)`` …), frozen together with the
  id column, and an autofilter on every column;
* numbers stored as numbers with a number format (whole numbers as integers, scores with
  one decimal, distances in whole metres), so Excel shows them with the reader's own
  decimal mark and sorts them as numbers;
* yes/no as ``Ja``/``Nei`` (``Yes``/``No``), statuses and noise zones in words, only the
  text columns of the chosen language (``explanation_nb`` in bokmål);
* text that Excel would run as a formula (``=1+1``, ``+47 …``, ``@…``) stored as text
  (a string cell with Excel's "quote prefix"), shown exactly as written.

The vocabulary for column names and coded values lives here too, so that other outputs
(:mod:`sitefinder.qgis_styles`) name statuses the same way.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from sitefinder.config import Scenario, default_scenario
from sitefinder.language import (
    STATUS_LABELS,  # one table for every output
    check_language,
)
from sitefinder.outfolder import atomic_write
from sitefinder.outputs import FORMULA_STARTS, ranked_table
from sitefinder.progress import progress

__all__ = [
    "STATUS_LABELS",
    "column_label",
    "spreadsheet_table",
    "write_ranked_xlsx",
    "write_selected_xlsx",
]

#: Plot statuses (docs/CONTRACT.md) in words, per language.

# Coded text values other than the status, in words.
_VALUE_LABELS: dict[str, dict[str, dict[str, str]]] = {
    "capacity_status": {
        "nb": {"ok": "Har plass", "too_small": "For liten", "unknown": "Ukjent"},
        "en": {"ok": "Fits", "too_small": "Too small", "unknown": "Unknown"},
    },
    "noise_zone": {
        "nb": {"green": "Grønn", "yellow": "Gul", "red": "Rød"},
        "en": {"green": "Green", "yellow": "Yellow", "red": "Red"},
    },
    "network_reach": {
        "nb": {"main": "Hovednettet", "island": "Frakoblet gangvei", "none": "Ingen"},
        "en": {"main": "Main network", "island": "Disconnected path", "none": "None"},
    },
}
_YES_NO = {"nb": ("Ja", "Nei"), "en": ("Yes", "No")}

# Column headers; text columns with a language suffix are listed without it.
_HEADERS: dict[str, tuple[str, str]] = {
    "plot_id": ("Tomte-ID", "Plot ID"),
    "name": ("Navn", "Name"),
    "owner": ("Eier", "Owner"),
    "rank": ("Rangering", "Rank"),
    "score": ("Poeng (0–100)", "Score (0–100)"),
    "status": ("Status", "Status"),
    "status_reason": ("Begrunnelse for status", "Reason for the status"),
    "explanation": ("Forklaring", "Explanation"),
    "area_m2": ("Areal (m²)", "Area (m²)"),
    "district": ("Bydel", "District"),
    "capacity_units": ("Enheter tomten har plass til", "Units the plot takes"),
    "capacity_status": ("Plass til enheter", "Room for units"),
    "capacity_reason": ("Begrunnelse for plass", "Reason for the room"),
    "source_row": ("Rad i tomtefilen", "Row in the plot file"),
    "input_note": ("Merknad til tomtefilen", "Note on the plot file"),
    "zoning": ("Arealformål", "Zoning"),
    "price_nok": ("Pris (kr)", "Price (NOK)"),
    "landuse_source": ("Arealbruk (OSM-tagg)", "Land use (OSM tag)"),
    "access_leg_m": ("Avstand til gangnettet (m)", "Distance to the walking network (m)"),
    "network_reach": ("Gangnett", "Walking network"),
    "dwelling_dist_m": ("Avstand til nærmeste bolig (m)", "Distance to the nearest dwelling (m)"),
    "residential_dist_m": ("Avstand til boligområde (m)", "Distance to residential land (m)"),
    "industrial_dist_m": ("Avstand til industriområde (m)", "Distance to industrial land (m)"),
    "drug_scene_dist_m": ("Avstand til rusmiljø (m)", "Distance to a drug scene (m)"),
    "sensitive_dist_m": ("Avstand til annen brukergruppe (m)",
                         "Distance to another user group (m)"),
    "dwellings_within_25m": ("Boliger innen 25 m", "Dwellings within 25 m"),
    "dwellings_within_50m": ("Boliger innen 50 m", "Dwellings within 50 m"),
    "inside_industrial": ("I industriområde", "In industrial land"),
    "exposure_index": ("Forbipasserende (indeks)", "Passers-by (index)"),
    "busy_frontage": ("Ved travel gate", "On a busy street"),
    "road_lden_db": ("Veitrafikkstøy Lden (dB)", "Road noise Lden (dB)"),
    "rail_lden_db": ("Jernbanestøy Lden (dB)", "Rail noise Lden (dB)"),
    "noise_zone": ("Støysone", "Noise zone"),
    "noise_is_proxy": ("Støy anslått fra OSM", "Noise estimated from OSM"),
    "noise_note": ("Merknad om støy", "Note on noise"),
    "residents_within_500m": ("Innbyggere innen 500 m", "Residents within 500 m"),
    "residents_within_500m_note": ("Merknad om innbyggere", "Note on residents"),
    "selected": ("Valgt", "Chosen"),
    "selected_units": ("Valgte enheter", "Units chosen"),
    "selection_reason": ("Begrunnelse for utvalget", "Reason for the choice"),
    "lon": ("Lengdegrad (WGS84)", "Longitude (WGS84)"),
    "lat": ("Breddegrad (WGS84)", "Latitude (WGS84)"),
}

# What a walking-distance category is called: (singular, plural) per language.
_CATEGORIES: dict[str, dict[str, tuple[str, str]]] = {
    "transit": {"nb": ("holdeplass", "holdeplasser"), "en": ("stop", "stops")},
    "grocery": {"nb": ("dagligvarebutikk", "dagligvarebutikker"),
                "en": ("grocery shop", "grocery shops")},
    "pharmacy": {"nb": ("apotek", "apotek"), "en": ("pharmacy", "pharmacies")},
    "health": {"nb": ("helsetjeneste", "helsetjenester"),
               "en": ("health service", "health services")},
    "meeting": {"nb": ("møteplass", "møteplasser"), "en": ("meeting place", "meeting places")},
    "nature": {"nb": ("natur- eller turområde", "natur- eller turområder"),
               "en": ("nature area", "nature areas")},
    "centre": {"nb": ("sentrum", "sentrum"), "en": ("centre", "centres")},
    "cafes": {"nb": ("kafé", "kafeer"), "en": ("café", "cafés")},
}

# The columns a reader looks at first, in this order; the others follow as in the CSV.
_FIRST = ("plot_id", "name", "rank", "score", "status", "status_reason", "capacity_units",
          "district", "selected", "selected_units", "selection_reason", "explanation")
# The chosen sites: what a property department needs to act on them.
_SELECTED = ("plot_id", "name", "district", "selected_units", "rank", "score", "area_m2",
             "owner", "explanation", "lon", "lat")

_INTEGER = "#,##0"
_FORMATS: tuple[tuple[str, str], ...] = (
    # (column-name pattern, Excel number format); the first match wins.
    (r"rank|source_row|capacity_units|selected_units|count_.*|dwellings_within_\d+m", "0"),
    (r"score", "0.0"),
    (r"lon|lat", "0.000000"),
    (r"value_.*", "0.00"),
    (r"time_.*_min", "0.0"),
    (r".*_db", "0"),
    (r"exposure_index", "0.0"),
    (r".*_m|.*_m2|residents_within_\d+m|price_nok", _INTEGER),
)
_MAX_WIDTH = 60


def _suffix_free(column: str) -> tuple[str, str | None]:
    """``("explanation", "nb")`` for ``explanation_nb``; ``(column, None)`` otherwise."""
    for language in ("nb", "en"):
        if column.endswith("_" + language):
            return column[: -len(language) - 1], language
    return column, None


def column_label(column: str, language: str = "nb",
                 criteria: dict[str, tuple[str, str]] | None = None) -> str:
    """The header a reader sees for a column of the ranked table.

    Parameters
    ----------
    column : str
        Column name as in ``ranked.csv`` (``dist_transit_m``, ``explanation_nb`` …).
    language : {"nb", "en"}
    criteria : dict of str to (str, str), optional
        Criterion name → (bokmål, English) label, for ``value_<criterion>`` columns.

    Returns
    -------
    str
        A column of the plot file that sitefinder does not know keeps its own name.

    Examples
    --------
    >>> column_label("count_transit_10min")
    'Antall holdeplasser innen 10 min'
    >>> column_label("dist_grocery_m", "en")
    'Walking distance to a grocery shop (m)'
    """
    i = 0 if check_language(language) == "nb" else 1
    base, _ = _suffix_free(column)
    if base in _HEADERS:
        return _HEADERS[base][i]
    walking = _walking_label(base, language)
    if walking is not None:
        return walking
    if base.startswith("value_"):
        name = base[len("value_"):]
        label = (criteria or {}).get(name, (name, name))[i]
        return f"Verdi (0–1): {label}" if language == "nb" else f"Value (0–1): {label}"
    return column


def _walking_label(column: str, language: str) -> str | None:
    """Header of a ``dist_/time_/count_<category>`` column, or None for other columns."""
    match = re.fullmatch(r"(dist|time)_(\w+?)_(m|min)|count_(\w+?)_(\d+)min", column)
    if match is None:
        return None
    category = match.group(2) or match.group(4)
    if category not in _CATEGORIES:
        return None
    one, many = _CATEGORIES[category][language]
    if match.group(4):
        minutes = match.group(5)
        if language == "nb":
            return f"Antall {many} innen {minutes} min"
        return f"{many[0].upper()}{many[1:]} within {minutes} min walk"
    if language == "nb":
        what = "Gangavstand" if match.group(1) == "dist" else "Gangtid"
        return f"{what} til {one} ({match.group(3)})"
    what = "Walking distance" if match.group(1) == "dist" else "Walking time"
    article = "an" if one[0] in "aeiou" else "a"
    return f"{what} to {article} {one} ({match.group(3)})"


def _criterion_labels(scenario: Scenario | None = None) -> dict[str, tuple[str, str]]:
    """Criterion name → (bokmål, English) label, of ``scenario`` or the shipped default."""
    scenario = scenario if scenario is not None else default_scenario()
    return {n: (c.label_nb, c.label_en) for n, c in scenario.criteria.items()}


def spreadsheet_table(ranked: pd.DataFrame, language: str = "nb",
                      columns: Iterable[str] | None = None) -> pd.DataFrame:
    """The ranked plots as a reader's table: one language, coded values in words.

    Parameters
    ----------
    ranked : DataFrame
        The ranked plots (as written to ``ranked.csv``: no geometry, ``lon``/``lat``).
    language : {"nb", "en"}
    columns : iterable of str, optional
        Keep only these columns (names without a language suffix), in this order.

    Returns
    -------
    DataFrame
        Columns keep their ``ranked.csv`` names (without the language suffix); text in
        the other language is left out.
    """
    check_language(language)
    keep = {}
    for column in ranked.columns:
        base, suffix = _suffix_free(str(column))
        if suffix in (None, language) and base not in keep:
            keep[base] = column
    order = [c for c in _FIRST if c in keep] + [c for c in keep if c not in _FIRST]
    if columns is not None:
        order = [c for c in columns if c in keep]
    table = pd.DataFrame({base: ranked[keep[base]].to_numpy() for base in order},
                         index=ranked.index)
    for column in table.columns:
        table[column] = _in_words(table[column], column, language)
    return table.reset_index(drop=True)


def _in_words(series: pd.Series, column: str, language: str) -> pd.Series:
    """Coded values (statuses, zones, booleans) as words; other columns unchanged."""
    if column == "status":
        return series.map(lambda v: STATUS_LABELS[language].get(v, v))
    if column in _VALUE_LABELS:
        labels = _VALUE_LABELS[column][language]
        return series.map(lambda v: labels.get(v, v))
    if _is_yes_no(series):
        yes, no = _YES_NO[language]
        return series.map(lambda v: None if _missing(v) else (yes if v else no))
    return series


def _is_yes_no(series: pd.Series) -> bool:
    """A boolean column, also one of object dtype with gaps (``True``/``False``/``None``)."""
    if pd.api.types.is_bool_dtype(series.dtype):
        return True
    if series.dtype != object:
        return False
    present = [v for v in series.to_numpy() if not _missing(v)]
    return bool(present) and all(isinstance(v, bool | np.bool_) for v in present)


def _missing(value: Any) -> bool:
    if value is None or value is pd.NA:
        return True
    return isinstance(value, float) and math.isnan(value)


def _cell_value(value: Any) -> Any:
    """A value openpyxl stores as it is: Python numbers and text, None for missing."""
    if _missing(value):
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isinf(value):
        return None
    if isinstance(value, str):
        # Control characters cannot be stored in a workbook; they carry no meaning here.
        return ILLEGAL_CHARACTERS_RE.sub("", value)
    if isinstance(value, bool | int | float):
        return value
    return str(value)


def _number_format(column: str) -> str | None:
    for pattern, number_format in _FORMATS:
        if re.fullmatch(pattern, column):
            return number_format
    return None


def _cell(ws: Any, value: Any, number_format: str | None, font: Font | None = None) -> Any:
    """One cell of a streamed sheet; text is always text, however it begins."""
    cell = WriteOnlyCell(ws, value=value)
    if isinstance(value, str):
        if value.startswith(FORMULA_STARTS):
            # openpyxl reads "=…" as a formula; a string cell with the quote prefix is
            # shown as written and stays text when someone edits it in Excel.
            cell.data_type = "s"
            cell.quotePrefix = True
    elif number_format is not None and isinstance(value, int | float):
        cell.number_format = number_format
    if font is not None:
        cell.font = font
    return cell


def _column_values(series: pd.Series, number_format: str | None) -> list[Any]:
    values = [_cell_value(v) for v in series.to_numpy()]
    if number_format in ("0", _INTEGER):
        # Whole numbers as integers (distances in whole metres, whole residents).
        values = [round(v) if isinstance(v, float) else v for v in values]
    return values


def _shown_width(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, float):
        return len(f"{value:,.1f}")
    return len(str(value))


def _save(table: pd.DataFrame, path: Path, title: str, language: str,
          criteria: dict[str, tuple[str, str]]) -> Path:
    """Stream ``table`` into a one-sheet workbook (write-only: memory stays small)."""
    headers = [_cell_value(column_label(c, language, criteria)) for c in table.columns]
    formats = [_number_format(c) for c in table.columns]
    columns = [_column_values(table[c], f) for c, f in zip(table.columns, formats, strict=True)]
    wb = Workbook(write_only=True)
    ws = wb.create_sheet(title)
    # Layout first: a streamed sheet writes its columns, panes and filter before the rows.
    for j, (header, values) in enumerate(zip(headers, columns, strict=True), start=1):
        width = max([len(header), *(_shown_width(v) for v in values)])
        ws.column_dimensions[get_column_letter(j)].width = min(max(width + 2, 8), _MAX_WIDTH)
    # Header and id column stay in view when scrolling (cell B2 is the first that moves).
    ws.freeze_panes = "B2"
    ws.auto_filter.ref = f"A1:{get_column_letter(max(len(headers), 1))}{len(table) + 1}"
    bold = Font(bold=True)
    ws.append([_cell(ws, h, None, bold) for h in headers])
    for row in progress(zip(*columns, strict=True), path.name, total=len(table)):
        ws.append([_cell(ws, v, f) for v, f in zip(row, formats, strict=True)])

    def write(f: IO[bytes]) -> None:
        wb.save(f)

    # Written into the run's staging folder like every output; atomic on its own too, so
    # a workbook is never half written whoever calls this.
    return atomic_write(path, write)


def write_ranked_xlsx(
    ranked: pd.DataFrame, path: str | Path, language: str = "nb", scenario: Scenario | None = None
) -> Path:
    """Write every plot as an Excel workbook (``ranked.xlsx``) in one language.

    Parameters
    ----------
    ranked : DataFrame or GeoDataFrame
        The ranked plots (every plot, in rank order then input order).
    path : str or Path
        The workbook to write.
    language : {"nb", "en"}
        Language of the header, the coded values and the text columns.
    scenario : Scenario, optional
        Names the criteria in the ``value_<criterion>`` headers (default: the shipped
        default scenario's labels).

    Returns
    -------
    Path
    """
    table = spreadsheet_table(ranked_table(ranked), language)
    title = "Rangerte tomter" if language == "nb" else "Ranked plots"
    return _save(table, Path(path), title, language, _criterion_labels(scenario))


def write_selected_xlsx(
    ranked: pd.DataFrame, path: str | Path, language: str = "nb", scenario: Scenario | None = None
) -> Path:
    """Write the chosen sites (``selected`` true) as an Excel workbook (``selected.xlsx``).

    Parameters
    ----------
    ranked : DataFrame or GeoDataFrame
        The ranked plots after a selection (columns ``selected``, ``selected_units``).
    path : str or Path
        The workbook to write.
    language : {"nb", "en"}
    scenario : Scenario, optional
        See :func:`write_ranked_xlsx`.

    Returns
    -------
    Path
    """
    chosen = ranked[ranked["selected"].eq(True).to_numpy()] if "selected" in ranked \
        else ranked.iloc[:0]
    table = spreadsheet_table(ranked_table(chosen), language, columns=_SELECTED)
    title = "Valgte steder" if language == "nb" else "Chosen sites"
    return _save(table, Path(path), title, language, _criterion_labels(scenario))
