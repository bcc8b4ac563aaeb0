"""Files of a screening: ranked cells, the suitability raster, the best areas and a map.

All are written into the staging folder of :class:`sitefinder.outfolder.OutputFolder`,
which is put in place of ``--out`` whole when the screening is complete.

* ``screen_cells.gpkg`` (layer ``cells``, the buildable land of every candidate cell with
  every column of a ranked plot; layer ``unit_layout``) and ``screen_cells.parquet``
  (GeoParquet, the same table; the unit layout as a second geometry column);
* ``screen_suitability.tif``: one float32 band, the score of every ranked cell (status
  ``ok``), nodata (-9999) where no house can stand or the cell is excluded or too small —
  a planner must not read an excluded cell's informative score as suitability;
* ``screen_areas.gpkg``: the best areas (layer ``best_areas``);
* ``screen_map.html``: the ranked cells coloured by score, the best areas outlined.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio

from sitefinder.screen_cells import Grid

#: Nodata of the suitability raster.
NODATA = -9999.0

FILES = {
    "cells_gpkg": "screen_cells.gpkg",
    "cells_parquet": "screen_cells.parquet",
    "suitability_tif": "screen_suitability.tif",
    "areas_gpkg": "screen_areas.gpkg",
    "map": "screen_map.html",
}


def suitability_array(cells: pd.DataFrame, grid: Grid) -> np.ndarray:
    """Score of each ranked cell on the grid (rows north → south), :data:`NODATA` elsewhere."""
    band = np.full((grid.n_rows, grid.n_cols), NODATA, dtype=np.float32)
    ok = cells[(cells["status"] == "ok") & cells["score"].notna()]
    band[ok["row"].to_numpy(int), ok["col"].to_numpy(int)] = ok["score"].to_numpy(np.float32)
    return band


def write_suitability(cells: pd.DataFrame, grid: Grid, path: str | Path) -> Path:
    """Write the suitability GeoTIFF (CRS, north-up transform, nodata; QGIS opens it)."""
    import rasterio
    from rasterio.transform import from_origin

    path = Path(path)
    profile = {
        "driver": "GTiff", "width": grid.n_cols, "height": grid.n_rows, "count": 1,
        "dtype": "float32", "nodata": NODATA, "crs": grid.crs.to_wkt(),
        "transform": from_origin(grid.x0, grid.y_top, grid.size, grid.size),
        "compress": "deflate",
    }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(suitability_array(cells, grid), 1)
        dst.set_band_description(1, "score 0-100 (sitefinder screen)")
        dst.update_tags(1, units="score 0-100", nodata_means="not buildable, excluded or too small")
    return path


def write_cells(cells: gpd.GeoDataFrame, folder: Path) -> dict[str, Path]:
    """Write the ranked cells as GeoPackage (with the unit layout) and GeoParquet."""
    from sitefinder.outputs import write_ranked_gpkg

    gpkg = write_ranked_gpkg(cells, folder / FILES["cells_gpkg"], layer="cells")
    table = cells.copy()
    if "layout" in table.columns:
        table["layout"] = gpd.GeoSeries(table["layout"].to_numpy(), crs=cells.crs)
    table["rank"] = table["rank"].astype("Float64")
    parquet = folder / FILES["cells_parquet"]
    table.to_parquet(parquet, index=False)
    return {"cells_gpkg": gpkg, "cells_parquet": parquet}


def write_areas(areas: gpd.GeoDataFrame, folder: Path, language: str = "nb") -> Path:
    """Write the best areas as a GeoPackage layer ``best_areas``, with a QGIS style."""
    from sitefinder.qgis_styles import LayerStyle, single_qml, write_styles

    path = folder / FILES["areas_gpkg"]
    frame = areas.copy()
    frame["rank"] = frame["rank"].astype("Int64")  # a whole number, like the plots' rank
    pyogrio.write_dataframe(frame, path, layer="best_areas", driver="GPKG",
                            promote_to_multi=True)
    name = "Beste områder" if language == "nb" else "Best areas"
    write_styles(path, [LayerStyle("best_areas", name,
                                   single_qml("fill", "#3b0f70", alpha=0.35), True)])
    return path


def write_screen_map(
    cells: gpd.GeoDataFrame, areas: gpd.GeoDataFrame, path: str | Path,
    *, outline: object | None = None, language: str = "nb",
) -> Path:
    """A folium map: ranked cells coloured by score, the best areas outlined with reasons.

    Parameters
    ----------
    cells : GeoDataFrame
        Scored cells.
    areas : GeoDataFrame
        Best areas (:func:`sitefinder.screen_areas.best_areas`).
    path : str or Path
        HTML file.
    outline : shapely geometry, optional
        The screened area (local CRS of ``cells``), drawn as a thin line.
    language : {"nb", "en"}
        Language of the labels.
    """
    import folium
    import shapely

    from sitefinder.language import fmt_number
    from sitefinder.map_elements import inline_leaflet

    words = _MAP_WORDS[language]
    ok = cells[cells["status"] == "ok"]
    shown_area = gpd.GeoSeries([outline], crs=cells.crs) if outline is not None else cells
    bounds = shown_area.to_crs(4326).total_bounds
    m = folium.Map(tiles="OpenStreetMap", control_scale=True)
    inline_leaflet(m)
    m.fit_bounds([[bounds[1], bounds[0]], [bounds[3], bounds[2]]])
    if outline is not None:
        folium.GeoJson(
            gpd.GeoSeries([shapely.boundary(outline)], crs=cells.crs).to_crs(4326).to_json(),
            name=words["screened"], style_function=lambda _: {"color": "#555", "weight": 1},
        ).add_to(m)
    if len(ok):
        shown = gpd.GeoDataFrame(
            {"cell": ok["plot_id"], "score": ok["score"].round(1),
             "label": [fmt_number(s, 1, language) for s in ok["score"]]},
            geometry=ok.geometry.simplify(0.5), crs=cells.crs,
        ).to_crs(4326)
        folium.GeoJson(
            shown.to_json(), name=words["cells"],
            style_function=lambda f: {"fillColor": _colour(f["properties"]["score"]),
                                      "color": _colour(f["properties"]["score"]),
                                      "weight": 0.5, "fillOpacity": 0.55},
            tooltip=folium.GeoJsonTooltip(["cell", "label"],
                                          aliases=[words["cell"], words["score"]]),
        ).add_to(m)
    if len(areas):
        shown = areas[["area_id", "rank", f"reasons_{language}", "geometry"]].to_crs(4326)
        shown = shown.rename(columns={f"reasons_{language}": "reasons"})
        folium.GeoJson(
            shown.to_json(), name=words["areas"],
            style_function=lambda _: {"color": "#08306b", "weight": 3, "fillOpacity": 0},
            tooltip=folium.GeoJsonTooltip(["area_id"], aliases=[words["area"]]),
            popup=folium.GeoJsonPopup(["area_id", "reasons"], aliases=[words["area"], ""],
                                      max_width=420),
        ).add_to(m)
    folium.LayerControl(collapsed=False).add_to(m)
    m.get_root().html.add_child(folium.Element(_legend(words)))
    m.save(str(path))
    return Path(path)


_MAP_WORDS = {
    "nb": {"cells": "Ruter med poeng", "areas": "Beste områder", "screened": "Undersøkt område",
           "cell": "Rute", "score": "Poeng", "area": "Område",
           "legend": "Poeng per rute (mørkere er bedre); blå strek: beste områder"},
    "en": {"cells": "Cells with scores", "areas": "Best areas", "screened": "Screened area",
           "cell": "Cell", "score": "Score", "area": "Area",
           "legend": "Score per cell (darker is better); blue outline: best areas"},
}

# Light to dark green, one colour per 10 points from 50 up; below 50 pale yellow.
_STEPS = [(90, "#005a32"), (80, "#238443"), (70, "#41ab5d"), (60, "#78c679"),
          (50, "#c2e699"), (float("-inf"), "#ffffcc")]


def _colour(score: float | None) -> str:
    if score is None:
        return "#cccccc"
    return next(colour for floor, colour in _STEPS if score >= floor)


def _legend(words: dict[str, str]) -> str:
    swatches = "".join(
        f'<span style="background:{c};display:inline-block;width:14px;height:10px"></span>'
        for _, c in reversed(_STEPS)
    )
    return (
        '<div style="position:fixed;bottom:18px;left:10px;z-index:9999;background:white;'
        f'padding:6px 8px;font:12px sans-serif;border:1px solid #999">{words["legend"]}'
        f"<br>{swatches} 0–100</div>"
    )
