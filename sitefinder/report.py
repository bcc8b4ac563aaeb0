"""Printable meeting report: ``report.html`` and ``report.pdf`` from the ranked plots.

The PDF is drawn with matplotlib's ``PdfPages`` (pure PyPI, no system libraries, works the
same on Linux, macOS, Windows and conda), one A4 page per section: overview map, ranked
table with reasons for the plots not ranked, one page per top candidate (map with
isochrones and unit layout, criteria chart, explanation) and a method page. The HTML
report shows the same figures (as embedded PNG) with real text, rendered by Jinja2 with
autoescaping, so names reach the page as text only.

Maps print in black and white: the score palette (viridis) is monotone in lightness,
top plots carry their rank as a label, plots not ranked are hatched, and isochrone bands
differ in line style as well as shade.
"""

from __future__ import annotations

import base64
import io
import math
import textwrap
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import geopandas as gpd
import jinja2
import numpy as np
import pandas as pd
from matplotlib.backends.backend_pdf import PdfPages
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from sitefinder.errors import InputError
from sitefinder.maps import (
    OSM_ATTRIBUTION,
    PALETTE,
    STATUS_LABELS,
    Criterion,
    bin_labels,
    format_raw,
    public_layers,
    resolve_criteria,
    score_class,
)

__all__ = ["write_report", "report_pages"]

A4 = (8.27, 11.69)
_TEMPLATES = Path(__file__).parent / "templates"
_LAYER_MARKERS = ("o", "s", "^", "D", "v", "P", "X")
_ISO_STYLES = {5: "-", 10: "--", 15: ":"}

TEXT: dict[str, dict[str, str]] = {
    "nb": {
        "title": "Tomter for småhus – rangering",
        "subtitle": "Kandidattomter vurdert etter SINTEFs erfaringer (2021)",
        "overview": "Oversiktskart",
        "table": "Rangerte tomter (topp {n})",
        "not_ranked": "Tomter som ikke er rangert, med årsak",
        "candidate": "Kandidat nr. {rank}: {name}",
        "criteria_chart": "Kriterier: verdi 0–1 (vekt i parentes)",
        "explanation": "Forklaring",
        "method": "Metode",
        "criteria": "Kriterier, terskler og vekter",
        "sources": "Datakilder",
        "rank": "Nr.",
        "id": "Id",
        "name": "Navn",
        "owner": "Eier",
        "score": "Poeng",
        "status": "Status",
        "reason": "Årsak",
        "criterion": "Kriterium",
        "ideal": "Ideelt",
        "unacceptable": "Uakseptabelt",
        "weight": "Vekt",
        "measured": "Målt",
        "value": "Verdi",
        "source": "Kilde",
        "date": "Dato",
        "licence": "Lisens",
        "legend_excluded": "Ikke rangert (skravert)",
        "plot": "Tomten",
        "units": "Enheter (valgt utforming)",
        "walk": "{m} min gange",
        "generated": "Laget {date} med sitefinder",
        "public": "Offentlig versjon: sensitive lag er utelatt.",
        "method_text": (
            "Hver tomt får en verdi mellom 0 og 1 per kriterium: 1 ved ideell avstand eller "
            "bedre, 0 ved uakseptabel avstand eller verre, lineært imellom. Poengsummen er "
            "det vektede gjennomsnittet ganger 100. Tomter inne i industriområder og tomter "
            "som ikke kan vurderes er ikke rangert; årsaken står i tabellen. Avstander er "
            "gangavstand langs vei- og stinettet."
        ),
        "page": "Side",
    },
    "en": {
        "title": "Plots for småhus – ranking",
        "subtitle": "Candidate plots assessed after SINTEF's findings (2021)",
        "overview": "Overview map",
        "table": "Ranked plots (top {n})",
        "not_ranked": "Plots not ranked, with reason",
        "candidate": "Candidate no. {rank}: {name}",
        "criteria_chart": "Criteria: value 0–1 (weight in brackets)",
        "explanation": "Explanation",
        "method": "Method",
        "criteria": "Criteria, thresholds and weights",
        "sources": "Data sources",
        "rank": "No.",
        "id": "Id",
        "name": "Name",
        "owner": "Owner",
        "score": "Score",
        "status": "Status",
        "reason": "Reason",
        "criterion": "Criterion",
        "ideal": "Ideal",
        "unacceptable": "Unacceptable",
        "weight": "Weight",
        "measured": "Measured",
        "value": "Value",
        "source": "Source",
        "date": "Date",
        "licence": "Licence",
        "legend_excluded": "Not ranked (hatched)",
        "plot": "The plot",
        "units": "Units (chosen layout)",
        "walk": "{m} min walk",
        "generated": "Made {date} with sitefinder",
        "public": "Public version: sensitive layers are left out.",
        "method_text": (
            "Each plot gets a value between 0 and 1 per criterion: 1 at the ideal distance or "
            "better, 0 at the unacceptable distance or worse, linear in between. The score is "
            "the weighted mean times 100. Plots inside industrial areas and plots that cannot "
            "be assessed are not ranked; the table gives the reason. Distances are walking "
            "distances along the street and path network."
        ),
        "page": "Page",
    },
}

_TABLE_ROWS_PER_PAGE = 30


def _subplots(figsize: tuple[float, float]) -> tuple[Figure, Any]:
    """Make a figure with one axes, without pyplot.

    No GUI backend is touched, so a notebook user's backend stays as it was.
    """
    fig = Figure(figsize=figsize)
    return fig, fig.subplots()


def _wrap(text: str, width: int) -> str:
    return "\n".join(textwrap.wrap(str(text), width)) if text else ""


def _clip(text: Any, n: int) -> str:
    s = "" if text is None or (isinstance(text, float) and math.isnan(text)) else str(text)
    return s if len(s) <= n else s[: n - 1] + "…"


def _drawable(gdf: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    return gdf[~(gdf.geometry.isna() | gdf.geometry.is_empty)]


def _draw_plots(ax: Any, ranked: gpd.GeoDataFrame, label_top: int,
                as_points: bool = False) -> None:
    """Draw plots by score class, not-ranked ones hatched grey, top plots labelled by rank.

    ``as_points`` draws each plot as a marker at a point on its surface: on an overview of
    a whole city a 40 m plot is smaller than a printed dot.
    """
    d = _drawable(ranked)
    if as_points:
        d = d.set_geometry(d.geometry.representative_point())
    ok = d["status"] == "ok" if "status" in d.columns else pd.Series(True, index=d.index)
    classes = [score_class(s) for s in d.get("score", pd.Series(np.nan, index=d.index))]
    colours = [PALETTE[k] if k >= 0 else "#d9d9d9" for k in classes]
    if ok.any():
        d[ok].plot(ax=ax, color=[c for c, o in zip(colours, ok, strict=True) if o],
                   edgecolor="#1a1a1a", linewidth=0.4, markersize=40)
    if (~ok).any():
        if as_points:
            d[~ok].plot(ax=ax, marker="X", color="#9e9e9e", edgecolor="black",
                        linewidth=0.4, markersize=30)
        else:
            d[~ok].plot(ax=ax, facecolor="#eeeeee", edgecolor="#4d4d4d", hatch="////",
                        linewidth=0.6, linestyle="--")
    if "rank" in d.columns:
        ranks = pd.to_numeric(d["rank"], errors="coerce").astype("Float64")
        top = d[(ranks <= label_top).fillna(False).to_numpy(dtype=bool)]
        for _, row in top.iterrows():
            pt = row.geometry.representative_point()
            ax.annotate(str(int(row["rank"])), (pt.x, pt.y), ha="center", va="center",
                        fontsize=7, fontweight="bold",
                        bbox={"boxstyle": "circle,pad=0.2", "fc": "white", "ec": "black",
                              "lw": 0.6})


def _draw_layers(ax: Any, layers: Mapping[str, gpd.GeoDataFrame], crs: Any,
                 bounds: Sequence[float] | None = None) -> list[Any]:
    handles = []
    for i, (name, gdf) in enumerate(layers.items()):
        if gdf is None or gdf.empty:
            continue
        g = gdf.to_crs(crs) if gdf.crs is not None else gdf
        if bounds is not None:
            g = g.cx[bounds[0]:bounds[2], bounds[1]:bounds[3]]
            if g.empty:
                continue
        marker = _LAYER_MARKERS[i % len(_LAYER_MARKERS)]
        geom_type = g.geometry.geom_type.iloc[0]
        if "Point" in geom_type:
            g.plot(ax=ax, marker=marker, color="white", edgecolor="black", markersize=18,
                   linewidth=0.7, zorder=4)
            handles.append(Line2D([], [], marker=marker, color="black", mfc="white",
                                      ls="", label=name.replace("_", " ")))
        else:
            g.plot(ax=ax, facecolor="none", edgecolor="black", hatch="...", linewidth=0.6,
                   zorder=1)
            handles.append(Patch(facecolor="white", edgecolor="black", hatch="...",
                                 label=name.replace("_", " ")))
    return handles


def _legend_handles(language: str) -> list[Any]:
    t = TEXT[language]
    h = [Patch(facecolor=c, edgecolor="black", label=lab)
         for c, lab in zip(PALETTE, bin_labels(language), strict=True)]
    h.append(Patch(facecolor="#eeeeee", edgecolor="#4d4d4d", hatch="////",
                   label=t["legend_excluded"]))
    return h


def _finish_map(ax: Any, attribution: str) -> None:
    ax.set_axis_off()
    ax.set_aspect("equal")
    ax.text(0.99, 0.01, attribution, transform=ax.transAxes, ha="right", va="bottom",
            fontsize=6, bbox={"fc": "white", "ec": "none", "alpha": 0.8})


def _criteria_chart(ax: Any, row: pd.Series, criteria: Sequence[Criterion], language: str,
                    hidden: set[str]) -> None:
    labels, values = [], []
    for c in criteria:
        w = "–" if c.weight is None else f"{c.weight:g}"
        labels.append(f"{c.label(language)} ({w})")
        v = row.get(f"value_{c.name}", np.nan)
        values.append(np.nan if c.name in hidden else float(v) if v is not None else np.nan)
    y = np.arange(len(labels))[::-1]
    vals = np.nan_to_num(np.array(values, dtype=float), nan=0.0)
    ax.barh(y, vals, color="#21918c", edgecolor="black", hatch="//", linewidth=0.5)
    for yi, v in zip(y, values, strict=True):
        txt = "–" if math.isnan(v) else f"{v:.2f}".replace(".", "," if language == "nb" else ".")
        ax.text(min(max(v if not math.isnan(v) else 0, 0) + 0.02, 0.9), yi, txt, va="center",
                fontsize=7)
    ax.set_yticks(y, labels, fontsize=7)
    ax.set_xlim(0, 1.05)
    ax.set_xticks([0, 0.5, 1])
    ax.tick_params(axis="x", labelsize=7)
    ax.spines[["top", "right"]].set_visible(False)


def _fig_png(fig: Figure, dpi: int = 110) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _table_page(fig: Figure, title: str, header: list[str], rows: list[list[str]],
                widths: list[float]) -> None:
    ax = fig.add_axes((0.06, 0.05, 0.88, 0.86))
    ax.set_axis_off()
    fig.text(0.06, 0.95, title, fontsize=14, fontweight="bold")
    if not rows:
        return
    tab = ax.table(cellText=rows, colLabels=header, colWidths=widths, loc="upper left",
                   cellLoc="left")
    tab.auto_set_font_size(False)
    tab.set_fontsize(7)
    tab.scale(1, 1.25)
    for (r, _c), cell in tab.get_celld().items():
        cell.set_linewidth(0.3)
        if r == 0:
            cell.set_facecolor("#e6e6e6")
            cell.set_text_props(fontweight="bold")


def _thresholds_rows(criteria: Sequence[Criterion], thresholds: Mapping[str, Any],
                     language: str) -> list[list[str]]:
    rows = []
    for c in criteria:
        th = thresholds.get(c.name, {}) if thresholds else {}
        if isinstance(th, Sequence) and not isinstance(th, str):
            th = {"ideal": th[0], "unacceptable": th[1]} if len(th) >= 2 else {}
        rows.append([
            c.label(language),
            str(th.get("ideal", "–")),
            str(th.get("unacceptable", "–")),
            "–" if c.weight is None else f"{c.weight:g}",
        ])
    return rows


def report_pages(n_ranked: int, n_not_ranked: int, top_n: int) -> int:
    """Count the PDF pages :func:`write_report` writes for these numbers of plots.

    Overview, table pages (top N and the not-ranked list, 30 rows a page), one page per
    candidate shown, and the method page.
    """
    shown = min(top_n, n_ranked)
    table_rows = shown + n_not_ranked
    table_pages = max(1, math.ceil(table_rows / _TABLE_ROWS_PER_PAGE))
    return 1 + table_pages + shown + 1


def write_report(
    ranked: gpd.GeoDataFrame,
    out_dir: str | Path,
    *,
    top_n: int = 5,
    layers: Mapping[str, gpd.GeoDataFrame] | None = None,
    sensitive: Iterable[str] = ("existing_sites",),
    isochrones: gpd.GeoDataFrame | None = None,
    selection: gpd.GeoDataFrame | None = None,
    weights: Mapping[str, float] | None = None,
    raw_columns: Mapping[str, Sequence[str]] | None = None,
    thresholds: Mapping[str, Any] | None = None,
    sources: Sequence[Mapping[str, str]] | None = None,
    language: str = "nb",
    public: bool = False,
    title: str | None = None,
    attribution: str = OSM_ATTRIBUTION,
    stem: str = "report",
    scenario: Any = None,
) -> tuple[Path, Path]:
    """Write the meeting report as HTML and PDF.

    Parameters
    ----------
    ranked : GeoDataFrame
        Ranked plots as in docs/CONTRACT.md.
    out_dir : str or Path
        Folder for ``report.html`` and ``report.pdf`` (created when missing).
    top_n : int
        Number of top candidates in the table and with a page each.
    layers : mapping of str to GeoDataFrame, optional
        Thematic layers drawn on the candidate maps (amenities, industrial ...).
    sensitive : iterable of str
        Names of sensitive layers; left out entirely when ``public``.
    isochrones : GeoDataFrame, optional
        Walking isochrones (``plot_id``, ``minutes``) for candidate pages.
    selection : GeoDataFrame, optional
        Unit layout (``plot_id``, ``units``) for candidate pages. Its
        ``attrs["notes_nb"]`` / ``attrs["notes_en"]`` (set by
        :func:`sitefinder.select.select_sites`) are printed on the method page.
    weights, raw_columns : mapping, optional
        As in :func:`sitefinder.maps.criteria_from_ranked`.
    thresholds : mapping, optional
        Criterion → ``{"ideal": ..., "unacceptable": ...}`` (text or numbers, with unit),
        shown on the method page; defaults to ``ranked.attrs["thresholds"]``.
    sources : sequence of mapping, optional
        Data sources with keys ``name``, ``date``, ``licence``; defaults to
        ``ranked.attrs["sources"]``.
    language : {"nb", "en"}
        Report language.
    public : bool
        Leave out sensitive layers and criteria derived from them.
    title : str, optional
        Report title.
    attribution : str
        Map attribution printed on every map.
    stem : str
        File name stem.
    scenario : Scenario, optional
        A ``sitefinder.config.Scenario``: weights, raw columns, labels and thresholds are
        taken from it (explicit arguments still win).

    Returns
    -------
    tuple of Path
        ``(html_path, pdf_path)``.

    Raises
    ------
    InputError
        If ``ranked`` has no CRS, or ``language`` is unknown.

    """
    if language not in TEXT:
        raise InputError(f"unknown language {language!r}", where="language",
                         hint="Use 'nb' or 'en'")
    if not isinstance(ranked, gpd.GeoDataFrame) or ranked.crs is None:
        raise InputError("the ranked plots must be a GeoDataFrame with a CRS",
                         hint="Pass the GeoDataFrame returned by sitefinder.run")
    t = TEXT[language]
    notes = [] if selection is None else list(selection.attrs.get(f"notes_{language}", []))
    # Gaps in the map data (``ranked.attrs["data_warnings_<language>"]``, set by
    # sitefinder.publish) qualify every score, so they go with the method too.
    notes += list(ranked.attrs.get(f"data_warnings_{language}", []))
    if notes:
        # Caveats of the selection (e.g. concentration checked without existing sites) go
        # with the method, which is what a reader checks the chosen sites against.
        t = {**t, "method_text": " ".join([t["method_text"], *notes])}
    statuses = STATUS_LABELS[language]
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    sens = set(sensitive)
    if ranked.crs.is_geographic:
        ranked = ranked.to_crs(ranked.estimate_utm_crs())
    crs = ranked.crs
    from_scn, criteria = resolve_criteria(ranked, scenario, weights, raw_columns)
    if thresholds is None and from_scn:
        thresholds = from_scn["thresholds"]
    hidden: set[str] = set()
    if public:
        hidden = {c.name for c in criteria
                  if any(s in c.name or any(s in r for r in c.raw_columns) for s in sens)
                  or "existing" in c.name}
    shown_layers = public_layers(layers, sens, public)
    thresholds = thresholds if thresholds is not None else ranked.attrs.get("thresholds", {})
    sources = list(sources if sources is not None else ranked.attrs.get("sources", []))
    title = title or t["title"]
    today = date.today().isoformat()

    status = ranked["status"] if "status" in ranked.columns else pd.Series("ok", ranked.index)
    ok = ranked[status == "ok"]
    ranks = pd.to_numeric(ok.get("rank", pd.Series(dtype=float)), errors="coerce")
    top = ok.assign(_r=ranks.astype("Float64")).sort_values("_r").head(top_n)
    not_ranked = ranked[status != "ok"]

    def score_txt(s: Any) -> str:
        try:
            x = float(s)
        except (TypeError, ValueError):
            return "–"
        if math.isnan(x):
            return "–"
        txt = f"{x:.1f}"
        return txt.replace(".", ",") if language == "nb" else txt

    top_rows = [[str(int(r["rank"])), _clip(r.get("plot_id"), 14), _clip(r.get("name"), 34),
                 _clip(r.get("owner"), 22), score_txt(r.get("score"))]
                for _, r in top.iterrows()]
    reason_col = f"status_reason_{language}"
    nr_rows = [[_clip(r.get("plot_id"), 14), _clip(r.get("name"), 28),
                statuses.get(str(r.get("status")), str(r.get("status"))),
                _clip(r.get(reason_col, ""), 60)]
               for _, r in not_ranked.iterrows()]
    crit_rows = _thresholds_rows(criteria, thresholds, language)

    pdf_path = out_dir / f"{stem}.pdf"
    html_path = out_dir / f"{stem}.html"
    images: dict[str, str] = {}
    candidates = []

    with PdfPages(pdf_path, metadata={"Title": title, "Creator": "sitefinder"}) as pdf:
        # 1. Overview.
        fig = Figure(figsize=A4)
        fig.text(0.06, 0.95, title, fontsize=16, fontweight="bold")
        fig.text(0.06, 0.925, t["subtitle"], fontsize=10)
        if public:
            fig.text(0.06, 0.905, t["public"], fontsize=9, style="italic")
        ax = fig.add_axes((0.04, 0.12, 0.92, 0.77))
        _draw_plots(ax, ranked, top_n, as_points=True)
        _finish_map(ax, attribution)
        fig.legend(handles=_legend_handles(language), loc="lower center", ncol=3, fontsize=8,
                   title=t["score"], frameon=False)
        fig.text(0.06, 0.02, t["generated"].format(date=today), fontsize=7)
        pdf.savefig(fig)
        images["overview"] = _fig_png(fig)

        # 2. Tables, paginated.
        lines: list[tuple[str, list[str]]] = [("top", r) for r in top_rows]
        lines += [("nr", r) for r in nr_rows]
        chunks = [lines[i:i + _TABLE_ROWS_PER_PAGE]
                  for i in range(0, max(len(lines), 1), _TABLE_ROWS_PER_PAGE)] or [[]]
        for chunk in chunks:
            fig = Figure(figsize=A4)
            tops = [r for k, r in chunk if k == "top"]
            nrs = [r for k, r in chunk if k == "nr"]
            if tops or not nrs:
                _table_page(fig, t["table"].format(n=top_n),
                            [t["rank"], t["id"], t["name"], t["owner"], t["score"]], tops,
                            [0.07, 0.15, 0.4, 0.26, 0.1])
            if nrs:
                sub = fig.add_axes((0.06, 0.05, 0.88, 0.88 - 0.028 * (len(tops) + 3)))
                sub.set_axis_off()
                sub.set_title(t["not_ranked"], loc="left", fontsize=11, fontweight="bold")
                tab = sub.table(cellText=nrs, colLabels=[t["id"], t["name"], t["status"],
                                                         t["reason"]],
                                colWidths=[0.13, 0.27, 0.18, 0.42], loc="upper left",
                                cellLoc="left")
                tab.auto_set_font_size(False)
                tab.set_fontsize(7)
                tab.scale(1, 1.25)
            pdf.savefig(fig)

        # 3. One page per candidate.
        iso = isochrones.to_crs(crs) if isochrones is not None and isochrones.crs else isochrones
        sel = selection.to_crs(crs) if selection is not None and selection.crs else selection
        for _, row in top.iterrows():
            pid = row.get("plot_id")
            name = _text(row.get("name")) or _text(pid)
            fig = Figure(figsize=A4)
            fig.text(0.06, 0.95, t["candidate"].format(rank=int(row["rank"]), name=_clip(name, 60)),
                     fontsize=14, fontweight="bold")
            fig.text(0.06, 0.925, f"{t['id']}: {_text(pid)} · {t['owner']}: "
                     f"{_text(row.get('owner'))} · {t['score']}: {score_txt(row.get('score'))}",
                     fontsize=9)
            ax = fig.add_axes((0.06, 0.47, 0.88, 0.44))
            geom = row.geometry
            minx, miny, maxx, maxy = geom.bounds if geom is not None else (0, 0, 1, 1)
            pad = max(maxx - minx, maxy - miny, 300.0)
            bounds = (minx - pad, miny - pad, maxx + pad, maxy + pad)
            handles = []
            if iso is not None and not iso.empty and "plot_id" in iso.columns:
                mine = iso[iso["plot_id"] == pid]
                for _, ir in mine.sort_values("minutes", ascending=False).iterrows():
                    mins = int(ir["minutes"])
                    gpd.GeoSeries([ir.geometry], crs=crs).plot(
                        ax=ax, facecolor="#000000", alpha=0.06, edgecolor="black",
                        linestyle=_ISO_STYLES.get(mins, "-."), linewidth=1)
                    handles.append(Line2D([], [], color="black",
                                              ls=_ISO_STYLES.get(mins, "-."),
                                              label=t["walk"].format(m=mins)))
                if not mine.empty:
                    b = mine.total_bounds
                    bounds = (min(bounds[0], b[0]), min(bounds[1], b[1]),
                              max(bounds[2], b[2]), max(bounds[3], b[3]))
            handles += _draw_layers(ax, shown_layers, crs, bounds)
            nearby = ranked.cx[bounds[0]:bounds[2], bounds[1]:bounds[3]]
            _draw_plots(ax, nearby, 0)
            gpd.GeoSeries([geom], crs=crs).plot(ax=ax, facecolor="none", edgecolor="black",
                                                linewidth=2.2)
            handles.append(Patch(facecolor="none", edgecolor="black", lw=2.2, label=t["plot"]))
            if sel is not None and not sel.empty and "plot_id" in sel.columns:
                units = sel[sel["plot_id"] == pid]
                if not units.empty:
                    units.plot(ax=ax, facecolor="white", edgecolor="black", linewidth=0.8,
                               zorder=5)
                    handles.append(Patch(facecolor="white", edgecolor="black",
                                         label=t["units"]))
            ax.set_xlim(bounds[0], bounds[2])
            ax.set_ylim(bounds[1], bounds[3])
            _finish_map(ax, attribution)
            ax.legend(handles=handles, loc="upper left", fontsize=7, framealpha=0.9)
            cax = fig.add_axes((0.42, 0.17, 0.52, 0.27))
            _criteria_chart(cax, row, criteria, language, hidden)
            cax.set_title(t["criteria_chart"], fontsize=9, loc="left")
            expl = _text(row.get(f"explanation_{language}"))
            fig.text(0.06, 0.13, t["explanation"], fontsize=10, fontweight="bold")
            fig.text(0.06, 0.125, _wrap(expl, 100), fontsize=8, va="top")
            pdf.savefig(fig)

            # Standalone figures for the HTML version.
            fm, axm = _subplots(figsize=(6, 4.5))
            _draw_layers(axm, shown_layers, crs, bounds)
            if iso is not None and not iso.empty and "plot_id" in iso.columns:
                for _, ir in iso[iso["plot_id"] == pid].iterrows():
                    gpd.GeoSeries([ir.geometry], crs=crs).plot(
                        ax=axm, facecolor="#000000", alpha=0.06, edgecolor="black",
                        linestyle=_ISO_STYLES.get(int(ir["minutes"]), "-."))
            _draw_plots(axm, nearby, 0)
            gpd.GeoSeries([geom], crs=crs).plot(ax=axm, facecolor="none", edgecolor="black",
                                                linewidth=2.2)
            if sel is not None and not sel.empty and "plot_id" in sel.columns:
                u = sel[sel["plot_id"] == pid]
                if not u.empty:
                    u.plot(ax=axm, facecolor="white", edgecolor="black", zorder=5)
            axm.set_xlim(bounds[0], bounds[2])
            axm.set_ylim(bounds[1], bounds[3])
            _finish_map(axm, attribution)
            axm.legend(handles=handles, loc="upper left", fontsize=7, framealpha=0.9)
            fc, axc = _subplots(figsize=(6, 3))
            _criteria_chart(axc, row, criteria, language, hidden)
            measured = []
            for c in criteria:
                if c.name in hidden:
                    measured.append((c.label(language), "–"))
                    continue
                vals = [format_raw(col, row.get(col), language) for col in c.raw_columns]
                measured.append((c.label(language), " · ".join(dict.fromkeys(vals)) or "–"))
            candidates.append({
                "rank": int(row["rank"]), "id": _text(pid), "name": name,
                "owner": _text(row.get("owner")), "score": score_txt(row.get("score")),
                "explanation": expl, "map": _fig_png(fm), "chart": _fig_png(fc),
                "measured": measured,
            })

        # 4. Method.
        fig = Figure(figsize=A4)
        _table_page(fig, t["method"], [t["criterion"], t["ideal"], t["unacceptable"],
                                       t["weight"]], crit_rows, [0.4, 0.2, 0.2, 0.1])
        fig.text(0.06, 0.48, _wrap(t["method_text"], 105), fontsize=8, va="top")
        fig.text(0.06, 0.36, t["sources"], fontsize=11, fontweight="bold")
        src_lines = [f"• {s.get('name', '')} — {s.get('date', '')} — {s.get('licence', '')}"
                     for s in sources] or [f"• {attribution}"]
        fig.text(0.06, 0.345, "\n".join(_clip(x, 110) for x in src_lines), fontsize=8,
                 va="top")
        pdf.savefig(fig)

    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(_TEMPLATES),
        autoescape=True,  # every name and reason is text, never markup
        undefined=jinja2.StrictUndefined,
    )
    html_text = env.get_template("report.html.j2").render(
        t=t, title=title, language=language, public=public, today=today,
        overview=images["overview"], top_header=[t["rank"], t["id"], t["name"], t["owner"],
                                                 t["score"]],
        top_rows=top_rows, nr_rows=[[_text(r.get("plot_id")), _text(r.get("name")),
                                     statuses.get(str(r.get("status")), str(r.get("status"))),
                                     _text(r.get(reason_col, ""))]
                                    for _, r in not_ranked.iterrows()],
        candidates=candidates, crit_rows=crit_rows, sources=sources, attribution=attribution,
        top_n=top_n,
    )
    html_path.write_text(html_text, encoding="utf-8")
    return html_path, pdf_path


def _text(x: Any) -> str:
    if x is None or x is pd.NA or (isinstance(x, float) and math.isnan(x)):
        return ""
    return str(x)
