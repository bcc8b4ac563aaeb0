"""Put a study's results on maps and in the meeting report.

Gathers what :mod:`sitefinder.maps` and :mod:`sitefinder.report` draw — isochrones of the
top or selected plots (from the network), walking routes, noise zones, districts, the
sensitive existing sites, the basemap from the local OSM extract and the list of data
sources — so the CLI and notebooks produce the same maps with one call.

This module works on a measured :class:`~sitefinder.api.Study` and never runs the
pipeline itself: it imports neither ``sitefinder.pipeline`` nor the run function, so the
pipeline can import it without a cycle.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import pandas as pd

from sitefinder.config import Scenario
from sitefinder.map_inputs import (
    SENSITIVE_LAYERS,
    district_attribution,
    map_inputs,
    noise_zone_layers,
    raster_tags,
    walking_routes_for,
)
from sitefinder.maps import OSM_ATTRIBUTION, write_map
from sitefinder.report import write_report
from sitefinder.select import SelectionResult
from sitefinder.static_maps import basemap_for_study

if TYPE_CHECKING:  # the type only: importing the api here would tie publish to the pipeline
    from sitefinder.api import Study

__all__ = [
    "data_sources",
    "focus_plots",
    "is_demo",
    "per_district_counts",
    "walking_routes_for",
    "write_maps",
    "write_meeting_report",
]


def data_sources(study: Study, language: str = "nb") -> list[dict[str, str]]:
    """Data sources with dates and licences, for the report's method page."""

    def modified(path: Path) -> str:
        stamp = datetime.fromtimestamp(Path(path).stat().st_mtime, tz=UTC)
        return stamp.date().isoformat()

    nb = language == "nb"
    sources = [
        {
            "name": f"OpenStreetMap ({study.osm_path.name})",
            "date": study.osm_timestamp() or modified(study.osm_path),
            "licence": "ODbL 1.0, " + OSM_ATTRIBUTION,
        },
        {
            "name": ("Kandidattomter" if nb else "Candidate plots") + f" ({study.plots_path.name})",
            "date": modified(study.plots_path),
            "licence": _plots_licence(study, nb),
        },
    ]
    measure = study.scenario.measure
    if measure.population is not None:
        raster = Path(measure.population.raster)
        # The raster says where it came from (scripts/make_population_raster.py writes it).
        tags = raster_tags(raster)
        name = tags.get("SOURCE", raster.name)
        if nb:  # the tag is written in English ("…; from <file>")
            name = name.replace("; from ", "; fra ")
        sources.append(
            {"name": name, "date": modified(raster),
             "licence": tags.get("LICENSE", "")}
        )
    if measure.noise is not None:
        if measure.noise.raster is None:
            name = "Støyanslag fra OSM (ikke offisielt støykart)" if nb else \
                "Noise estimate from OSM (not an official noise map)"
            sources.append({"name": name, "date": "", "licence": OSM_ATTRIBUTION})
        else:
            sources.append({"name": Path(measure.noise.raster).name,
                            "date": modified(measure.noise.raster), "licence": ""})
    if study.scenario.districts is not None:
        sources.append({"name": Path(study.scenario.districts.file).name,
                        "date": modified(study.scenario.districts.file),
                        "licence": district_attribution(study)})
    return sources


def _plots_licence(study: Study, nb: bool) -> str:
    if is_demo(study):
        # The bundled plots are drawn for the demo (data/README.md), nobody's property list.
        return ("illustrerende demotomter, ikke kommunens tomteliste" if nb else
                "illustrative demo plots, not the municipality's list")
    return "kommunens egne data" if nb else "the municipality's own data"


def _selection_frame(selection: SelectionResult | None) -> gpd.GeoDataFrame | None:
    if selection is None:
        return None
    chosen = selection.chosen
    return gpd.GeoDataFrame(
        chosen[["plot_id", "units"]].reset_index(drop=True),
        geometry=chosen.geometry.reset_index(drop=True),
        crs=chosen.crs,
    )


def focus_plots(
    ranked: gpd.GeoDataFrame, selection: SelectionResult | None, top_n: int
) -> list[str]:
    """Plots that get isochrones: the selected sites, else the top ``top_n`` ranked."""
    if selection is not None and len(selection.chosen):
        return selection.chosen["plot_id"].tolist()
    return ranked.loc[ranked["status"] == "ok", "plot_id"].head(top_n).tolist()


def write_maps(
    study: Study,
    ranked: gpd.GeoDataFrame,
    out_dir: str | Path,
    *,
    scenario: Scenario | None = None,
    selection: SelectionResult | None = None,
    offline: bool = False,
    public: bool = False,
    top_n: int = 10,
    both: bool = True,
) -> dict[str, Path]:
    """Write ``map.html`` and, with ``both``, ``map_offline.html``.

    Both carry every script inline and a basemap drawn from the local OSM extract.
    ``map.html`` starts on online tiles and falls back to that basemap when tiles fail
    (``offline=True`` makes it start on the local basemap); ``map_offline.html`` starts on
    the local basemap and opens with no network at all.
    """
    scenario = scenario or study.scenario
    out_dir = Path(out_dir)
    common = map_inputs(study, ranked, scenario, focus_plots(ranked, selection, top_n),
                        public=public)
    common.update(selection=_selection_frame(selection), top_n=top_n)
    written = {"map": write_map(ranked, out_dir / "map.html", offline=offline, **common)}
    if both and not offline:
        written["map_offline"] = write_map(ranked, out_dir / "map_offline.html", offline=True,
                                           **common)
    return written


def write_meeting_report(
    study: Study,
    ranked: gpd.GeoDataFrame,
    out_dir: str | Path,
    *,
    scenario: Scenario | None = None,
    selection: SelectionResult | None = None,
    public: bool = False,
    top_n: int = 5,
    screening: Any = None,
    language: str | None = None,
) -> dict[str, Path]:
    """Write ``report.html`` and ``report.pdf`` for a council meeting.

    Parameters
    ----------
    study : Study
        The measured study (its extract, network and layers are reused, not rebuilt).
    ranked : GeoDataFrame
        Ranked plots (after a selection, with ``selected`` and ``selected_units``).
    out_dir : str or Path
        Folder the two files are written to.
    scenario : Scenario, optional
        Scenario the plots were scored with (default: the study's).
    selection : SelectionResult, optional
        The chosen sites; without it the report presents the best-ranked plots.
    public : bool
        Leave out everything sensitive.
    top_n : int
        Best-ranked plots given a page when nothing was selected.
    screening : object, optional
        A screening result (``sitefinder.screen.ScreenResult``) for its own section.
    language : {"nb", "en"}, optional
        Report language (default: the scenario's, bokmål unless it says otherwise).

    Returns
    -------
    dict of str to Path
        ``report_html`` and ``report_pdf``.
    """
    scenario = scenario or study.scenario
    language = language or scenario.language
    focus = focus_plots(ranked, selection, top_n)
    # What the map data lacks (criteria left out, incomplete dwellings) belongs in the
    # report too: a council reads the scores there, not in the manifest.
    ranked = ranked.copy()
    warnings = study.data_warnings()
    ranked.attrs["data_warnings_nb"] = [w.nb for w in warnings]
    ranked.attrs["data_warnings_en"] = [w.en for w in warnings]
    html, pdf = write_report(
        ranked,
        out_dir,
        top_n=top_n,
        selection=_selection_frame(selection),
        basemap=basemap_for_study(study),
        routes=walking_routes_for(study, focus),
        noise_zones=noise_zone_layers(study, language),
        screening=screening,
        request=_request(selection),
        sources=data_sources(study, language),
        language=language,
        public=public,
        demo=is_demo(study),
        sensitive=SENSITIVE_LAYERS,
        scenario=scenario,
    )
    return {"report_html": html, "report_pdf": pdf}


def _request(selection: SelectionResult | None) -> dict[str, int | None]:
    if selection is None:
        return {}
    return {"units": selection.requested_units, "sites": selection.requested_sites}


def is_demo(study: Study) -> bool:
    """Whether the study ranks the bundled illustrative demo plots (data/README.md).

    Their report says so in its caveats: they are not the municipality's plots.
    """
    # Imported here: the study's own module is loaded already, and publish stays free of
    # module-level ties to the api (which the pipeline imports beside it).
    from sitefinder.api import BUNDLED_PLOTS

    return Path(study.plots_path).resolve() == Path(BUNDLED_PLOTS).resolve()


def per_district_counts(ranked: pd.DataFrame) -> pd.DataFrame:
    """Candidates, ranked plots and selected sites per district."""
    if "district" not in ranked.columns:
        return pd.DataFrame()
    frame = ranked.assign(
        district=ranked["district"].fillna("(utenfor)"),
        ranked=ranked["status"] == "ok",
        selected=ranked.get("selected", False),
    )
    return frame.groupby("district").agg(
        candidates=("plot_id", "size"), ranked=("ranked", "sum"), selected=("selected", "sum")
    )
