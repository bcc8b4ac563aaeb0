"""The combined outputs of ``sitefinder batch``: one dataset, a summary per area, a map.

- ``dataset/area_id=<id>/part-0.parquet``: every partition's ranked plots or cells, one
  GeoParquet dataset partitioned by area id, ``area_id`` from the folder names
  (:func:`read_dataset`; other readers must be told that ``area_id`` is text, or
  ``0301`` becomes 301);
- ``summary.csv`` and ``summary.parquet``: one row per area, every area listed with its
  status, also those that failed or had nothing to rank;
- ``overview_map.html``: each area coloured by its best score, a popup that links to the
  area's own map.
"""

from __future__ import annotations

import math
import shutil
import uuid
from html import escape
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd

from sitefinder.batch_partition import RESULTS_FILE, partition_folder
from sitefinder.language import fmt_int, fmt_number

#: Columns of the summary table, in order.
SUMMARY_COLUMNS = [
    "area_id", "name", "status", "reason_en", "reason_nb", "candidates", "ranked",
    "best_score", "best_id", "units", "suitable_m2", "best_areas", "best_areas_m2",
    "seconds", "peak_rss_mb", "cut_mb", "map",
]

_STATUS_NB = {"done": "ferdig", "skipped-unchanged": "uendret, hoppet over",
              "failed": "feilet", "empty": "tomt"}


def summary_table(areas: gpd.GeoDataFrame, records: dict[str, dict[str, Any]]
                  ) -> gpd.GeoDataFrame:
    """One row per area (file order), from the partitions' records, with the area outline."""
    rows = []
    for area_id, name in zip(areas["area_id"], areas["name"], strict=True):
        record = records.get(area_id, {})
        row = {column: record.get(column) for column in SUMMARY_COLUMNS}
        row.update(area_id=area_id, name=name, status=record.get("status", "failed"))
        if row["status"] == "failed" and not row["reason_en"]:
            row["reason_en"] = record.get("error") or "not run"
            row["reason_nb"] = "feilet: " + (record.get("error") or "ikke kjørt")
        clip = record.get("clip") or {}
        row["cut_mb"] = round(clip["size_bytes"] / 2**20, 2) if "size_bytes" in clip else None
        rows.append(row)
    table = pd.DataFrame(rows, columns=SUMMARY_COLUMNS)
    for column in ("candidates", "ranked", "units", "best_areas"):
        table[column] = table[column].astype("Int64")
    for column in ("best_score", "suitable_m2", "best_areas_m2", "seconds", "peak_rss_mb",
                   "cut_mb"):
        table[column] = table[column].astype(float)
    return gpd.GeoDataFrame(table, geometry=areas.geometry.to_numpy(), crs=areas.crs)


def write_dataset(out: Path, area_ids: list[str], staging_root: Path) -> Path:
    """Gather the partitions' results into ``<out>/dataset``, replaced whole at the end."""
    staging = staging_root / f".dataset.tmp-{uuid.uuid4().hex[:8]}"
    staging.mkdir(parents=True)
    for area_id in area_ids:
        source = partition_folder(out, area_id) / RESULTS_FILE
        if not source.is_file():
            continue
        part = gpd.read_parquet(source).drop(columns=["area_id"])
        target = staging / f"area_id={area_id}"
        target.mkdir()
        part.to_parquet(target / "part-0.parquet", index=False)
    final = out / "dataset"
    old = None
    if final.exists():
        old = out / f".dataset.old-{uuid.uuid4().hex[:8]}"
        final.rename(old)
    staging.rename(final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return final


def read_dataset(path: str | Path) -> gpd.GeoDataFrame:
    """Read the combined dataset, ``area_id`` as text (``0301`` must not become 301)."""
    import pyarrow as pa
    import pyarrow.dataset as ds

    partitioning = ds.partitioning(pa.schema([("area_id", pa.string())]), flavor="hive")
    frame = gpd.read_parquet(path, partitioning=partitioning)
    return frame[["area_id", *[c for c in frame.columns if c != "area_id"]]]


def write_summary(summary: gpd.GeoDataFrame, out: Path) -> dict[str, Path]:
    """``summary.csv`` (no geometry, spreadsheet-safe) and ``summary.parquet``."""
    from sitefinder.outfolder import atomic_write
    from sitefinder.outputs import protect_frame

    table = protect_frame(pd.DataFrame(summary.drop(columns="geometry")))
    csv = atomic_write(out / "summary.csv",
                       lambda f: f.write(table.to_csv(index=False, lineterminator="\r\n")
                                         .encode("utf-8")))
    parquet = atomic_write(out / "summary.parquet", lambda f: summary.to_parquet(f, index=False))
    return {"summary_csv": csv, "summary_parquet": parquet}


def write_overview_map(summary: gpd.GeoDataFrame, path: Path, language: str = "nb") -> Path:
    """Every area coloured by its best score (grey: nothing ranked); popups link onwards.

    Leaflet is inlined, so the map opens from a shared drive without a network.
    """
    import folium
    from folium.utilities import JsCode

    from sitefinder.map_elements import inline_leaflet
    from sitefinder.outfolder import atomic_write_text

    frame = summary.to_crs(4326)
    minx, miny, maxx, maxy = frame.total_bounds
    fmap = folium.Map(tiles="OpenStreetMap", control_scale=True)
    inline_leaflet(fmap)
    fmap.fit_bounds([[miny, minx], [maxy, maxx]])
    features = gpd.GeoDataFrame(
        {"fill": [_colour(v) for v in frame["best_score"]],
         "popup": [_popup(row, language) for row in frame.itertuples()],
         "label": [escape(f"{n} ({a})")
                   for n, a in zip(frame["name"], frame["area_id"], strict=True)]},
        geometry=frame.geometry.to_numpy(), crs=4326,
    )
    # Popups bound in plain Leaflet: folium's Popup objects need jQuery from a CDN.
    folium.GeoJson(
        features.__geo_interface__,
        style_function=lambda f: {"color": "#333333", "weight": 1,
                                  "fillColor": f["properties"]["fill"], "fillOpacity": 0.55},
        on_each_feature=JsCode(
            "function (feature, layer) {"
            " layer.bindPopup(feature.properties.popup, {maxWidth: 320});"
            " layer.bindTooltip(feature.properties.label); }"),
    ).add_to(fmap)
    fmap.get_root().html.add_child(folium.Element(_legend(language)))
    return atomic_write_text(path, fmap.get_root().render())


#: Score classes of the overview map, best darkest (the ranked-map colours' spirit).
_CLASSES = [(90, "#1a7837"), (80, "#5aae61"), (70, "#a6dba0"), (0, "#f1b6da")]
_GREY = "#bdbdbd"


def _colour(score: float | None) -> str:
    if score is None or (isinstance(score, float) and math.isnan(score)):
        return _GREY
    return next(colour for floor, colour in _CLASSES if score >= floor)


def _popup(row, language: str) -> str:
    nb = language == "nb"
    status = _STATUS_NB.get(row.status, row.status) if nb else row.status
    lines = [f"<b>{escape(str(row.name))}</b> ({escape(row.area_id)})",
             f"{'Status' if not nb else 'Status'}: {escape(status)}"]
    reason = row.reason_nb if nb else row.reason_en
    if isinstance(reason, str) and reason:
        lines.append(escape(reason))
    if not pd.isna(row.ranked):
        lines.append(("Rangert" if nb else "Ranked") + f": {fmt_int(row.ranked, language)} "
                     + ("av" if nb else "of") + f" {fmt_int(row.candidates, language)}")
    if not pd.isna(row.best_score):
        lines.append(("Beste poeng" if nb else "Best score")
                     + f": {fmt_number(row.best_score, 1, language)} ({escape(str(row.best_id))})")
    if not pd.isna(row.units):
        lines.append(("Boenheter" if nb else "Units") + f": {fmt_int(row.units, language)}")
    if not pd.isna(row.suitable_m2):
        lines.append(("Egnet land" if nb else "Suitable land")
                     + f": {fmt_int(row.suitable_m2, language)} m²")
    if isinstance(row.map, str) and row.map:
        href = f"areas/{row.area_id}/{row.map}"
        lines.append(f'<a href="{escape(href)}" target="_blank">'
                     + ("Åpne områdets kart" if nb else "Open the area's map") + "</a>")
    return "<br>".join(lines)


def _legend(language: str) -> str:
    nb = language == "nb"
    items = [(c, f"≥ {floor}") for floor, c in _CLASSES[:-1]]
    items.append((_CLASSES[-1][1], "< 70"))
    items.append((_GREY, "ingen rangert" if nb else "none ranked"))
    title = "Beste poeng i området" if nb else "Best score in the area"
    swatch = "opacity:0.55;display:inline-block;width:14px;height:14px;margin-right:6px"
    body = "".join(f'<div><span style="background:{c};{swatch}"></span>{escape(t)}</div>'
                   for c, t in items)
    return ('<div style="position:fixed;bottom:24px;left:12px;z-index:9999;background:white;'
            f'padding:8px;border:1px solid #999;font:13px sans-serif"><b>{title}</b>{body}</div>')
