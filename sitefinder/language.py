"""Numbers, dates and counted words for the people who read sitefinder's outputs.

Every user-facing number in a map popup, a report page, a spreadsheet note or a CLI
summary goes through these functions, so a Norwegian reader always sees
``8 694,7`` (narrow no-break space, decimal comma), ``27. november 2026`` and
``3 enheter``, and an English reader ``8,694.7``, ``27 November 2026`` and
``3 units``. Two languages are supported: ``"nb"`` (bokmål, the default) and
``"en"``.

This module imports nothing heavy: the CLI's ``--help`` and the maps' JavaScript
generation may use it freely.
"""

from __future__ import annotations

import math
from datetime import date, datetime
from typing import Any

__all__ = [
    "LANGUAGES",
    "STATUS_LABELS",
    "check_language",
    "count_phrase",
    "fmt_date",
    "fmt_distance",
    "fmt_int",
    "fmt_minutes",
    "fmt_number",
    "fmt_percent",
    "plots_phrase",
    "sentence",
    "units_phrase",
]

LANGUAGES: tuple[str, ...] = ("nb", "en")

# U+202F NARROW NO-BREAK SPACE: the thin space Norwegian typography puts between
# groups of thousands; no-break so that "8 694" never wraps across two lines.
THIN_SPACE = "\u202f"
# A normal no-break space between a number and its unit ("850 m", "45 %").
NBSP = "\u00a0"
MINUS = "\u2212"

_MONTHS = {
    "nb": (
        "januar", "februar", "mars", "april", "mai", "juni",
        "juli", "august", "september", "oktober", "november", "desember",
    ),
    "en": (
        "January", "February", "March", "April", "May", "June",
        "July", "August", "September", "October", "November", "December",
    ),
}

# (singular, plural) per language for the things sitefinder counts.
_NOUNS: dict[str, dict[str, tuple[str, str]]] = {
    "nb": {
        "unit": ("enhet", "enheter"),
        "plot": ("tomt", "tomter"),
        "site": ("sted", "steder"),
        "area": ("område", "områder"),
        "district": ("bydel", "bydeler"),
        "stop": ("holdeplass", "holdeplasser"),
        "shop": ("butikk", "butikker"),
        "resident": ("innbygger", "innbyggere"),
        "dwelling": ("bolig", "boliger"),
        "cell": ("rute", "ruter"),
        "minute": ("minutt", "minutter"),
        "page": ("side", "sider"),
    },
    "en": {
        "unit": ("unit", "units"),
        "plot": ("plot", "plots"),
        "site": ("site", "sites"),
        "area": ("area", "areas"),
        "district": ("district", "districts"),
        "stop": ("stop", "stops"),
        "shop": ("shop", "shops"),
        "resident": ("resident", "residents"),
        "dwelling": ("dwelling", "dwellings"),
        "cell": ("cell", "cells"),
        "minute": ("minute", "minutes"),
        "page": ("page", "pages"),
    },
}


#: A plot's status (docs/CONTRACT.md) in words: one table for maps, workbooks, QGIS styles
#: and the report, so a status reads the same everywhere.
STATUS_LABELS: dict[str, dict[str, str]] = {
    "nb": {
        "ok": "Rangert",
        "excluded": "Utelukket",
        "invalid_geometry": "Ugyldig geometri",
        "empty_geometry": "Mangler geometri",
        "outside_network": "Utenfor gangnettet",
        "too_small": "For liten",
        "too_large": "For stor",
        "duplicate": "Duplikat",
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


def check_language(language: str) -> str:
    """Return ``language`` when sitefinder speaks it, else raise ``ValueError``.

    >>> check_language("nb")
    'nb'
    """
    if language not in LANGUAGES:
        raise ValueError(f"language must be one of {', '.join(LANGUAGES)}, not {language!r}")
    return language


def _missing(x: Any) -> bool:
    if x is None:
        return True
    try:
        return math.isnan(float(x))
    except (TypeError, ValueError):
        return False


def fmt_number(x: Any, decimals: int = 0, language: str = "nb", missing: str = "–") -> str:
    """A number as a reader of ``language`` writes it.

    Parameters
    ----------
    x
        The number; ``None`` or NaN gives ``missing``.
    decimals
        Digits after the decimal mark (rounded half away from zero is not promised:
        Python's round-half-even applies, as everywhere in sitefinder).
    language
        ``"nb"``: narrow no-break space between thousands, decimal comma, true minus.
        ``"en"``: comma between thousands, decimal point, hyphen-minus.
    missing
        Text for a missing value.

    Examples
    --------
    >>> fmt_number(8694.67, 1)
    '8\u202f694,7'
    >>> fmt_number(8694.67, 1, "en")
    '8,694.7'
    >>> fmt_number(-0.04, 1)
    '0,0'
    >>> fmt_number(float("nan"))
    '–'
    """
    if _missing(x):
        return missing
    value = round(float(x), decimals)
    if value == 0:
        value = 0.0  # no "-0,0"
    text = f"{abs(value):,.{decimals}f}"
    if language == "nb":
        text = text.replace(",", THIN_SPACE).replace(".", ",")
        sign = MINUS
    else:
        sign = "-"
    return (sign if value < 0 else "") + text


def fmt_int(x: Any, language: str = "nb", missing: str = "–") -> str:
    """A whole number (people, dwellings, ranks): no decimals, ever.

    >>> fmt_int(3315.63)
    '3\u202f316'
    """
    return fmt_number(x, 0, language, missing)


def fmt_percent(fraction: Any, decimals: int = 0, language: str = "nb") -> str:
    """A share 0–1 as a percentage: ``"45 %"`` in bokmål, ``"45%"`` in English.

    >>> fmt_percent(0.453)
    '45\u00a0%'
    >>> fmt_percent(0.453, language="en")
    '45%'
    """
    if _missing(fraction):
        return "–"
    number = fmt_number(float(fraction) * 100, decimals, language)
    return f"{number}{NBSP}%" if language == "nb" else f"{number}%"


def fmt_distance(metres: Any, language: str = "nb") -> str:
    """A distance for reading: whole metres below 1 km, one-decimal km above.

    >>> fmt_distance(849.6)
    '850\u00a0m'
    >>> fmt_distance(1234)
    '1,2\u00a0km'
    >>> fmt_distance(1234, "en")
    '1.2\u00a0km'
    """
    if _missing(metres):
        return "–"
    m = float(metres)
    if abs(m) < 999.5:
        return f"{fmt_number(m, 0, language)}{NBSP}m"
    return f"{fmt_number(m / 1000, 1, language)}{NBSP}km"


def fmt_minutes(minutes: Any, language: str = "nb") -> str:
    """Walking minutes, whole from 10 and with one decimal below.

    >>> fmt_minutes(4.26)
    '4,3\u00a0min'
    >>> fmt_minutes(12.4, "en")
    '12\u00a0min'
    """
    if _missing(minutes):
        return "–"
    m = float(minutes)
    return f"{fmt_number(m, 0 if m >= 10 else 1, language)}{NBSP}min"


def fmt_date(day: date | datetime | str | None = None, language: str = "nb") -> str:
    """A date as written in a letter: ``"27. november 2026"`` / ``"27 November 2026"``.

    ``None`` means today; an ISO string is parsed.

    >>> fmt_date(date(2026, 11, 27))
    '27. november 2026'
    >>> fmt_date("2026-11-27", "en")
    '27 November 2026'
    """
    if day is None:
        day = date.today()
    elif isinstance(day, str):
        day = datetime.fromisoformat(day.replace("Z", "+00:00"))
    month = _MONTHS["nb" if language == "nb" else "en"][day.month - 1]
    if language == "nb":
        return f"{day.day}. {month} {day.year}"
    return f"{day.day} {month} {day.year}"


def count_phrase(n: Any, noun: str, language: str = "nb") -> str:
    """``n`` and a noun in the right number: ``"1 tomt"``, ``"3 tomter"``.

    ``noun`` is one of the keys of the vocabulary (unit, plot, site, area, district,
    stop, shop, resident, dwelling, cell, minute, page).

    >>> count_phrase(1, "unit")
    '1 enhet'
    >>> count_phrase(3, "unit")
    '3 enheter'
    >>> count_phrase(1250, "resident", "en")
    '1,250 residents'
    """
    singular, plural = _NOUNS["nb" if language == "nb" else "en"][noun]
    whole = int(round(float(n)))
    word = singular if abs(whole) == 1 else plural
    return f"{fmt_int(whole, language)} {word}"


def units_phrase(n: Any, language: str = "nb") -> str:
    """``"1 enhet"`` / ``"3 enheter"`` (``"1 unit"`` / ``"3 units"``)."""
    return count_phrase(n, "unit", language)


def plots_phrase(n: Any, language: str = "nb") -> str:
    """``"1 tomt"`` / ``"3 tomter"`` (``"1 plot"`` / ``"3 plots"``)."""
    return count_phrase(n, "plot", language)


def sentence(text: str) -> str:
    """Text with its first letter upper-cased and the rest kept, ending in a full stop.

    >>> sentence("nær butikk og buss")
    'Nær butikk og buss.'
    >>> sentence("")
    ''
    """
    text = text.strip()
    if not text:
        return ""
    text = text[0].upper() + text[1:]
    return text if text[-1] in ".!?:" else text + "."
