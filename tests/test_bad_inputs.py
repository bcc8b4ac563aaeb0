"""The bad-input corpus: every broken file a user (or an adversarial tester) has handed us.

Each case runs the real command line (``sitefinder.cli.main``, in process, on the small
clip extract) and checks what the user sees:

* bad input: exit code 2 and one paragraph naming the file and the row or field, never a
  traceback;
* a run that completes: exit code 0 and every input plot in ranked.csv, the broken ones
  with a status and a reason.

One test at the end runs the console entry point as a subprocess, to be sure the real
stderr carries no traceback either.
"""

from __future__ import annotations

import bz2
import contextlib
import io
import json
import os
import subprocess
import sys
import time
import traceback
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
import shapely
from pyproj import Transformer
from rasterio.warp import Resampling, calculate_default_transform, reproject

from sitefinder import cli
from sitefinder.api import Study
from sitefinder.config import LinearValue, default_scenario_path, load_scenario
from sitefinder.errors import InputError
from sitefinder.population import rasterise_population, read_ssb_grid, residents_within
from sitefinder.sources.plots import (
    MAX_PLOT_AREA_M2,
    check_plots_crs,
    diagnose_plots_crs,
    read_plots,
)
from sitefinder.sources.raster import check_rasters

from .conftest import DATA, ROOT, TEST_DATA
from .test_network_access import write_osm

CLIP = TEST_DATA / "oslo-clip.osm.pbf"  # 10.755,59.908 - 10.775,59.918
POPULATION_GRID = TEST_DATA / "befolkning_250m_2023_oslo.gpkg"
DTM = TEST_DATA / "dtm_10.tif"
GTFS = TEST_DATA / "flytoget_gtfs_2017.zip"
MUNICIPALITY = DATA / "oslo_kommune.geojson"  # the whole of Oslo, about 455 km²

# Three 40 m plots inside the clip, in EPSG:25832 (Grønland/Tøyen).
X0, Y0 = 598_600.0, 6_642_900.0
IDS = ["A", "B", "C"]
# "ok" in a case means: read, placed and measured. Whether the scenario then ranks the plot,
# excludes it or finds it too small is scoring, not an input problem.
SCORED = {"ok", "excluded", "too_small"}
BOXES = [shapely.box(X0 + i * 80, Y0, X0 + i * 80 + 40, Y0 + 40) for i in range(3)]
TO_LONLAT = Transformer.from_crs(25832, 4326, always_xy=True)
LONLAT = [TO_LONLAT.transform(b.centroid.x, b.centroid.y) for b in BOXES]


# --- building the inputs -----------------------------------------------------------------


def _frame(ids=IDS, geoms=BOXES, crs=25832, **columns) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"plot_id": list(ids), **columns}, geometry=list(geoms), crs=crs)


def _truncate(path: Path, keep: float = 0.5) -> Path:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def _wkt_csv(path: Path, rows: list[tuple[str, str]], sep: str = ",") -> Path:
    lines = [f"plot_id{sep}wkt"] + [f'{pid}{sep}"{wkt}"' for pid, wkt in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _scenario(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _population_tif(path: Path) -> Path:
    return rasterise_population(read_ssb_grid(POPULATION_GRID), path)


def _population_scenario(d: Path, raster: Path) -> Path:
    return _scenario(
        d / "scenario.yaml",
        f"extends: {default_scenario_path()}\nmeasure:\n  population:\n    raster: {raster}\n",
    )


def _tiled_copy(src_path: Path, out: Path) -> Path:
    """An uncompressed, tiled copy whose header comes first (so a cut copy still opens)."""
    with rasterio.open(src_path) as src:
        profile = src.profile
        profile.update(compress=None, tiled=True, blockxsize=16, blockysize=16)
        data = src.read()
    with rasterio.open(out, "w", **profile) as dst:
        dst.write(data)
    return out


def _gtfs_without(d: Path, member: str | None = None, replace: bytes | None = None) -> Path:
    out = d / "feed.zip"
    with zipfile.ZipFile(GTFS) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for name in src.namelist():
            data = src.read(name)
            if member is not None and name.endswith(member):
                if replace is None:
                    continue
                data = replace
            dst.writestr(name, data)
    return out


def _gtfs_scenario(d: Path, feed: Path) -> Path:
    return _scenario(
        d / "scenario.yaml",
        f"extends: {default_scenario_path()}\nmeasure:\n  transit_frequency:\n"
        f"    feeds: [{{path: {feed}, service_date: 2017-01-10}}]\n",
    )


# --- the corpus ----------------------------------------------------------------------------


@dataclass
class Case:
    """One bad input: how to build it and what the user must see."""

    klass: str
    build: Callable[[Path], dict]  # folder -> CLI options (--plots, --osm, --scenario ...)
    code: int  # expected exit code
    names: list[str] = field(default_factory=list)  # must appear in the error paragraph
    statuses: dict[str, str] = field(default_factory=dict)  # plot id -> status (code 0)
    reason: dict[str, str] = field(default_factory=dict)  # plot id -> text in reason_en
    notes: dict[str, str] = field(default_factory=dict)  # column -> text in every row
    marks: list = field(default_factory=list)


def plots_file(frame_or_fn, name: str, **opts) -> Callable[[Path], dict]:
    """A builder writing a plot file (a frame, or a function of the path) under ``name``."""

    def build(d: Path) -> dict:
        path = d / name
        if callable(frame_or_fn):
            frame_or_fn(path)
        else:
            frame_or_fn.to_file(path)
        return {"plots": path, **opts}

    return build


def _good_gpkg(path: Path) -> None:
    _frame().to_file(path)


def _good_geojson(path: Path) -> None:
    _frame().to_crs(4326).to_file(path)


def _good_shp(path: Path) -> None:
    _frame().to_file(path)


def _good_csv(path: Path) -> None:
    _wkt_csv(path, [(pid, b.wkt) for pid, b in zip(IDS, BOXES, strict=True)])


def _then(*steps):
    def run(path: Path) -> None:
        for step in steps:
            step(path)

    return run


def _zero(path: Path) -> None:
    path.write_bytes(b"")


def _cut(path: Path) -> None:
    _truncate(path)


def _geojson_text(text: str):
    def write(path: Path) -> None:
        path.write_text(text, encoding="utf-8")

    return write


def _utm_geojson(path: Path) -> None:
    # UTM metres in a GeoJSON without a "crs" member (which means lon/lat by definition).
    features = [
        {"type": "Feature", "properties": {"plot_id": pid},
         "geometry": shapely.geometry.mapping(b)}
        for pid, b in zip(IDS, BOXES, strict=True)
    ]
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))


def _no_prj(path: Path) -> None:
    _frame().to_file(path)
    path.with_suffix(".prj").unlink()


def _mixed(path: Path) -> None:
    geoms = [
        BOXES[0],
        shapely.Point(X0 + 100, Y0 + 20),
        shapely.LineString([(X0 + 160, Y0), (X0 + 200, Y0 + 40)]),
        shapely.MultiPolygon([BOXES[2], shapely.box(X0 + 160, Y0 + 60, X0 + 200, Y0 + 100)]),
        shapely.GeometryCollection([shapely.box(X0, Y0 + 60, X0 + 40, Y0 + 100),
                                    shapely.Point(X0, Y0 + 120)]),
    ]
    _frame(["poly", "point", "line", "multi", "collection"], geoms).to_file(path)


def _bowtie(path: Path) -> None:
    bowtie = shapely.Polygon(
        [(X0, Y0), (X0 + 40, Y0 + 40), (X0 + 40, Y0), (X0, Y0 + 40), (X0, Y0)]
    )
    _frame(["bowtie", "B", "C"], [bowtie, *BOXES[1:]]).to_file(path)


def _latin1_csv(path: Path) -> None:
    text = "plot_id,navn,lat,lon\n" + "".join(
        f"{pid},Tomt på Tøyen,{lat},{lon}\n" for pid, (lon, lat) in zip(IDS, LONLAT, strict=True)
    )
    path.write_bytes(text.encode("latin-1"))


def _semicolon_csv(path: Path) -> None:
    text = "plot_id;navn;lat;lon\n" + "".join(
        f"{pid};Tomt {pid};{lat:.6f};{lon:.6f}\n".replace(".", ",")
        for pid, (lon, lat) in zip(IDS, LONLAT, strict=True)
    )
    path.write_text(text, encoding="utf-8")


def _swapped_csv(path: Path) -> None:
    text = "plot_id,lat,lon\n" + "".join(
        f"{pid},{lon},{lat}\n" for pid, (lon, lat) in zip(IDS, LONLAT, strict=True)
    )
    path.write_text(text, encoding="utf-8")


def _lonlat_wkt(swap: bool = False):
    def write(path: Path) -> None:
        rows = []
        for pid, b in zip(IDS, BOXES, strict=True):
            g = shapely.transform(b, lambda xy: np.column_stack(TO_LONLAT.transform(*xy.T)))
            if swap:
                g = shapely.transform(g, lambda xy: xy[:, ::-1])
            rows.append((pid, g.wkt))
        _wkt_csv(path, rows)

    return write


def _lonlat_gpkg_said_utm(path: Path) -> None:
    # Degrees stored in a file that declares EPSG:25833 (a wrong "Set CRS" in QGIS).
    _frame().to_crs(4326).set_crs(25833, allow_override=True).to_file(path)


def _municipality(path: Path) -> None:
    oslo = gpd.read_file(MUNICIPALITY).to_crs(25832).geometry.union_all()
    _frame(["A", "oslo", "C"], [BOXES[0], oslo, BOXES[2]]).to_file(path)


def _same_geometry(path: Path) -> None:
    _frame(["A", "B", "A-again"], [BOXES[0], BOXES[1], BOXES[0]]).to_file(path)


def _blank_wkt(path: Path) -> None:
    path.write_text(
        "plot_id,wkt\n"
        f'A,"{BOXES[0].wkt}"\n'
        "B,\n"
        f'C,"{BOXES[2].wkt}"\n',
        encoding="utf-8",
    )


def _nan_wkt(path: Path) -> None:
    path.write_text(
        "plot_id,wkt\n"
        f'A,"{BOXES[0].wkt}"\n'
        "B,NaN\n"
        'C,"POINT (nan nan)"\n'
        'D,"POLYGON ((598900 6642900, inf 6642900, 598940 6642940, 598900 6642900))"\n',
        encoding="utf-8",
    )


def _truncated_csv(path: Path) -> None:
    _good_csv(path)
    text = path.read_text().rstrip("\n")
    path.write_text(text[: text.rindex("\n") + 40])  # cut inside the last (quoted) WKT


def _truncated_semicolon_csv(path: Path) -> None:
    text = "plot_id;wkt\n" + "".join(f"{p};{b.wkt}\n" for p, b in zip(IDS, BOXES, strict=True))
    path.write_text(text.rstrip("\n")[: text.rstrip("\n").rindex("\n") + 40])


def _short_row_csv(path: Path) -> None:
    # The last row has its id only: a spreadsheet export of a row whose geometry is blank.
    text = "plot_id,wkt\n" + "".join(f'{p},"{b.wkt}"\n' for p, b in zip(IDS[:2], BOXES,
                                                                        strict=False))
    path.write_text(text + f"{IDS[2]}\n", encoding="utf-8")


def _unquoted_wkt_csv(path: Path) -> None:
    text = "plot_id,wkt\n" + "".join(f"{p},{b.wkt}\n" for p, b in zip(IDS, BOXES, strict=True))
    path.write_text(text, encoding="utf-8")


def _one_row_in_metres(path: Path) -> None:
    (lon_a, lat_a), _, (lon_c, lat_c) = LONLAT
    path.write_text(
        f'plot_id,wkt\nA,"POINT ({lon_a} {lat_a})"\nB,"POINT ({X0} {Y0})"\n'
        f'C,"POINT ({lon_c} {lat_c})"\n', encoding="utf-8",
    )


def _unprojectable(path: Path) -> None:
    path.write_text(
        f'plot_id,wkt\nA,"{BOXES[0].wkt}"\nB,"POINT (1e25 1e25)"\nC,"{BOXES[2].wkt}"\n',
        encoding="utf-8",
    )


def _ids_007(path: Path) -> None:
    rows = [("007", BOXES[0].wkt), ("07", BOXES[1].wkt), ("7", BOXES[2].wkt)]
    _wkt_csv(path, rows)


def _two_id_columns(path: Path) -> None:
    _frame(["1", "2", "3"], tomt_id=IDS).to_file(path)


def _far_plots(path: Path) -> None:
    _frame(geoms=[BOXES[0], shapely.box(X0 + 30_000, Y0, X0 + 30_040, Y0 + 40), BOXES[2]]
           ).to_file(path)


def osm_file(write: Callable[[Path], None], name: str) -> Callable[[Path], dict]:
    def build(d: Path) -> dict:
        path = d / name
        write(path)
        return {"osm": path}

    return build


def _clip_cut(path: Path) -> None:
    path.write_bytes(CLIP.read_bytes()[: CLIP.stat().st_size // 2])


def _bytes(data: bytes):
    def write(path: Path) -> None:
        path.write_bytes(data)

    return write


def _no_roads(path: Path) -> None:
    # A building and a shop, no highway at all.
    nodes = {1: (0, 0), 2: (20, 0), 3: (20, 20), 4: (0, 20), 5: (10, 10)}
    write_osm(path, nodes, [(10, [1, 2, 3, 4, 1], {"building": "house"})],
              node_tags={5: {"shop": "supermarket"}}, origin=(X0, Y0))


def _far_extract(path: Path) -> None:
    # A few streets in Tromsø: the plots in Oslo are 1,100 km away.
    nodes = {1: (0, 0), 2: (100, 0), 3: (100, 100)}
    write_osm(path, nodes, [(10, [1, 2, 3], {"highway": "residential"})],
              origin=(653_000.0, 7_733_000.0), crs=25833)


def scenario_file(text: str | Callable[[Path], str], **opts) -> Callable[[Path], dict]:
    def build(d: Path) -> dict:
        body = text(d) if callable(text) else text
        return {"scenario": _scenario(d / "scenario.yaml", body), **opts}

    return build


EXTENDS = f"extends: {default_scenario_path()}\n"


def _weight(value: str) -> str:
    return EXTENDS + f"criteria:\n  transit:\n    weight: {value}\n"


def _all_zero(d: Path) -> str:
    names = load_scenario(default_scenario_path()).criteria
    return EXTENDS + "criteria:\n" + "".join(f"  {n}:\n    weight: 0\n" for n in names)


def _cyclic(d: Path) -> str:
    (d / "other.yaml").write_text("extends: scenario.yaml\n")
    return "extends: other.yaml\n"


def _python_tag(d: Path) -> str:
    return EXTENDS + f"name: !!python/object/apply:os.system ['touch {d}/EXECUTED']\n"


def _alias_bomb(d: Path) -> str:
    text = 'a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]\n'
    for i in range(1, 10):
        text += f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]\n"
    return text


def _escaping_layer(d: Path) -> str:
    return EXTENDS + (
        "layers:\n  ../../escaped:\n    label_nb: x\n    label_en: x\n"
        "    rules: [{tags: {amenity: [cafe]}}]\n"
    )


def raster_case(make: Callable[[Path], Path]) -> Callable[[Path], dict]:
    def build(d: Path) -> dict:
        return {"scenario": _population_scenario(d, make(d))}

    return build


def _text_raster(d: Path) -> Path:
    path = d / "population.tif"
    path.write_text("residents per cell\n1,2,3\n")
    return path


def _truncated_raster(d: Path) -> Path:
    tiled = _tiled_copy(_population_tif(d / "whole.tif"), d / "population.tif")
    return _truncate(tiled, 0.4)


def _shifted_raster(d: Path, dx: float) -> Path:
    path = _population_tif(d / "population.tif")
    with rasterio.open(path, "r+") as dst:
        t = dst.transform
        dst.transform = rasterio.Affine(t.a, t.b, t.c + dx, t.d, t.e, t.f)
    return path


def _partial_raster(d: Path) -> Path:
    # Covers plot A only: a raster ending just east of it (plot C is 160 m further east).
    grid = read_ssb_grid(POPULATION_GRID)
    a = gpd.GeoSeries([BOXES[0]], crs=25832).to_crs(25833).iloc[0]
    west = grid.cx[: a.bounds[2] + 120, :]
    return rasterise_population(west, d / "population.tif")


def gtfs_case(make: Callable[[Path], Path]) -> Callable[[Path], dict]:
    def build(d: Path) -> dict:
        return {"scenario": _gtfs_scenario(d, make(d))}

    return build


def _corrupt_member(d: Path) -> Path:
    raw = bytearray(GTFS.read_bytes())
    at = raw.find(b"stop_times.txt")
    for k in range(at + 100, at + 400, 7):
        raw[k] ^= 0xFF
    out = d / "feed.zip"
    out.write_bytes(bytes(raw))
    return out


def _text_zip(d: Path) -> Path:
    out = d / "feed.zip"
    out.write_text("not a zip")
    return out


CASES: dict[str, Case] = {
    # --- plot files: empty, 0-byte, truncated, for every format -------------------------
    "gpkg_0_byte": Case("plots", plots_file(_zero, "plots.gpkg"), 2, ["plots.gpkg"]),
    "gpkg_no_rows": Case("plots", plots_file(_frame().iloc[:0], "plots.gpkg"), 2,
                         ["plots.gpkg", "no plots"]),
    "gpkg_truncated": Case("plots", plots_file(_then(_good_gpkg, _cut), "plots.gpkg"), 2,
                           ["plots.gpkg", "could not be read"]),
    "geojson_0_byte": Case("plots", plots_file(_zero, "plots.geojson"), 2, ["plots.geojson"]),
    "geojson_no_features": Case(
        "plots", plots_file(_geojson_text('{"type":"FeatureCollection","features":[]}'),
                            "plots.geojson"), 2, ["plots.geojson", "no plots"]),
    "geojson_truncated": Case("plots", plots_file(_then(_good_geojson, _cut), "plots.geojson"),
                              2, ["plots.geojson", "could not be read"]),
    "shp_0_byte": Case("plots", plots_file(_then(_good_shp, _zero), "plots.shp"), 2,
                       ["plots.shp"]),
    "shp_truncated": Case("plots", plots_file(_then(_good_shp, _cut), "plots.shp"), 0,
                          statuses={"A": "ok", "B": "empty_geometry", "C": "empty_geometry"}),
    "csv_0_byte": Case("plots", plots_file(_zero, "plots.csv", plots_crs="EPSG:25832"), 2,
                       ["plots.csv", "empty"]),
    "csv_header_only": Case("plots", plots_file(_geojson_text("plot_id,wkt\n"), "plots.csv",
                                                plots_crs="EPSG:25832"), 2,
                            ["plots.csv", "no plots"]),
    "csv_truncated_in_quotes": Case("plots", plots_file(_truncated_csv, "plots.csv",
                                                        plots_crs="EPSG:25832"), 2,
                                    ["plots.csv", "could not be read", "cut off"]),
    "csv_truncated": Case("plots", plots_file(_truncated_semicolon_csv, "plots.csv",
                                              plots_crs="EPSG:25832"), 0,
                          statuses={"A": "ok", "B": "ok", "C": "empty_geometry"}),
    "csv_short_row": Case("plots", plots_file(_short_row_csv, "plots.csv",
                                              plots_crs="EPSG:25832"), 0,
                          statuses={"A": "ok", "B": "ok", "C": "empty_geometry"}),
    "csv_unquoted_wkt": Case("plots", plots_file(_unquoted_wkt_csv, "plots.csv",
                                                 plots_crs="EPSG:25832"), 2,
                             ["plots.csv", "more fields than its header", "double quotes"]),
    # --- CRS -------------------------------------------------------------------------------
    "shp_no_crs": Case("plots", plots_file(_no_prj, "plots.shp"), 2,
                       ["plots.shp", "no coordinate reference system", "--plots-crs"]),
    "csv_wkt_no_crs": Case("plots", plots_file(_good_csv, "plots.csv"), 2,
                           ["plots.csv", "'wkt'", "--plots-crs"]),
    "geojson_utm_without_crs_member": Case(
        "plots", plots_file(_utm_geojson, "plots.geojson"), 2,
        ["plots.geojson", "not longitude/latitude", "--plots-crs EPSG:25833"]),
    "geojson_utm_with_plots_crs": Case(
        "plots", plots_file(_utm_geojson, "plots.geojson", plots_crs="EPSG:25832"), 0,
        statuses={"A": "ok", "B": "ok", "C": "ok"}),
    "lonlat_read_as_utm": Case(
        "plots", plots_file(_lonlat_wkt(), "plots.csv", plots_crs="EPSG:25833"), 2,
        ["plots.csv", "longitude/latitude", "--plots-crs EPSG:4326"]),
    "lonlat_in_file_declaring_utm": Case(
        "plots", plots_file(_lonlat_gpkg_said_utm, "plots.gpkg"), 2,
        ["plots.gpkg", "longitude/latitude", "EPSG:25833", "Set CRS"]),
    "lat_lon_swapped_in_wkt": Case(
        "plots", plots_file(_lonlat_wkt(swap=True), "plots.csv", plots_crs="EPSG:4326"), 2,
        ["plots.csv", "swapped"]),
    "lat_lon_columns_swapped": Case("plots", plots_file(_swapped_csv, "plots.csv"), 2,
                                    ["plots.csv", "swapped", "'lat' and 'lon'"]),
    # --- geometry, per plot ------------------------------------------------------------------
    "blank_wkt_cell": Case("plots", plots_file(_blank_wkt, "plots.csv", plots_crs="EPSG:25832"),
                           0, statuses={"A": "ok", "B": "empty_geometry", "C": "ok"}),
    "nan_wkt_cells": Case("plots", plots_file(_nan_wkt, "plots.csv", plots_crs="EPSG:25832"), 0,
                          statuses={"A": "ok", "B": "empty_geometry", "C": "invalid_geometry",
                                    "D": "invalid_geometry"},
                          reason={"C": "not numbers", "D": "not numbers"}),
    "one_row_in_metres_among_degrees": Case(
        "plots", plots_file(_one_row_in_metres, "plots.csv", plots_crs="EPSG:4326"), 0,
        statuses={"A": "ok", "B": "invalid_geometry", "C": "ok"},
        reason={"B": "longitude/latitude"}),
    "coordinates_cannot_be_projected": Case(
        "plots", plots_file(_unprojectable, "plots.csv", plots_crs="EPSG:25832"), 0,
        statuses={"A": "ok", "B": "invalid_geometry", "C": "ok"},
        reason={"B": "cannot be converted"}),
    "mixed_geometry_types": Case(
        "plots", plots_file(_mixed, "plots.gpkg"), 0,
        statuses={"poly": "ok", "point": "ok", "line": "invalid_geometry", "multi": "ok",
                  "collection": "ok"},
        reason={"line": "line"}),
    "bowtie_polygon": Case("plots", plots_file(_bowtie, "plots.gpkg"), 0,
                           statuses={"bowtie": "ok", "B": "ok", "C": "ok"}),
    "municipality_as_plot": Case("plots", plots_file(_municipality, "plots.gpkg"), 0,
                                 statuses={"A": "ok", "oslo": "too_large", "C": "ok"},
                                 reason={"oslo": "km²"}),
    "same_plot_twice": Case("plots", plots_file(_same_geometry, "plots.gpkg"), 0,
                            statuses={"A": "ok", "B": "ok", "A-again": "duplicate"},
                            reason={"A-again": "plot A"}),
    "plot_far_outside_extract": Case("plots", plots_file(_far_plots, "plots.gpkg"), 0,
                                     statuses={"A": "ok", "B": "outside_network", "C": "ok"}),
    # --- ids ------------------------------------------------------------------------------
    "duplicate_ids": Case("plots", plots_file(_frame(["A", "B", "A"]), "plots.gpkg"), 2,
                          ["plots.gpkg", "'A' in rows 1, 3", "plot_id"]),
    "ids_007_kept_as_text": Case("plots", plots_file(_ids_007, "plots.csv",
                                                     plots_crs="EPSG:25832"), 0,
                                 statuses={"007": "ok", "07": "ok", "7": "ok"}),
    "id_column_typo": Case("plots", plots_file(_frame(tomt_id=IDS).drop(columns="plot_id"),
                                               "plots.gpkg", id_column="tomtid"), 2,
                           ["plots.gpkg", "--id-column", "'tomtid'", "tomt_id"]),
    "id_column_beside_plot_id": Case(
        "plots", plots_file(_two_id_columns, "plots.gpkg", id_column="tomt_id"), 0,
        statuses={"A": "ok", "B": "ok", "C": "ok"}),
    # --- CSV dialects ----------------------------------------------------------------------
    "latin1_csv": Case("plots", plots_file(_latin1_csv, "plots.csv"), 2,
                       ["plots.csv", "UTF-8"]),
    "semicolon_decimal_comma_csv": Case("plots", plots_file(_semicolon_csv, "plots.csv"), 0,
                                        statuses={"A": "ok", "B": "ok", "C": "ok"}),
    # --- OSM extracts -----------------------------------------------------------------------
    "osm_pbf_0_byte": Case("osm", osm_file(_bytes(b""), "extract.osm.pbf"), 2,
                           ["extract.osm.pbf"]),
    "osm_pbf_random": Case("osm", osm_file(_bytes(bytes(range(256)) * 40), "extract.osm.pbf"),
                           2, ["extract.osm.pbf", "could not be read"]),
    "osm_pbf_truncated": Case("osm", osm_file(_clip_cut, "extract.osm.pbf"), 2,
                              ["extract.osm.pbf", "could not be read"]),
    "osm_bz2_0_byte": Case("osm", osm_file(_bytes(b""), "extract.osm.bz2"), 2,
                           ["extract.osm.bz2"]),
    "osm_bz2_corrupt": Case("osm", osm_file(_bytes(b"BZh9" + bytes(range(256)) * 8),
                                            "extract.osm.bz2"), 2, ["extract.osm.bz2"]),
    "osm_bz2_truncated": Case(
        "osm", osm_file(_bytes(bz2.compress(CLIP.read_bytes())[:5000]), "extract.osm.bz2"), 2,
        ["extract.osm.bz2"]),
    "osm_not_osm_xml": Case(
        "osm", osm_file(_bytes(b'<?xml version="1.0"?><html><body>404</body></html>'),
                        "extract.osm"), 2, ["extract.osm", "could not be read"]),
    "osm_no_roads": Case("osm", osm_file(_no_roads, "extract.osm"), 0,
                         statuses={p: "outside_network" for p in IDS}),
    "osm_far_away": Case("osm", osm_file(_far_extract, "extract.osm"), 0,
                         statuses={p: "outside_network" for p in IDS}),
    # --- scenario files ----------------------------------------------------------------------
    "yaml_syntax_error": Case("scenario", scenario_file(EXTENDS + "name: [unclosed\n"), 2,
                              ["scenario.yaml", "line 3", "not valid YAML"]),
    "yaml_python_tag": Case("scenario", scenario_file(_python_tag), 2,
                            ["scenario.yaml", "line 2", "python/object"]),
    "yaml_unknown_key": Case("scenario", scenario_file(EXTENDS + "nmae: x\n"), 2,
                             ["scenario.yaml", "nmae", "unknown key"]),
    "yaml_20000_deep": Case("scenario", scenario_file("a: " + "[" * 20_000 + "]" * 20_000),
                            2, ["scenario.yaml", "nested"]),
    "yaml_alias_bomb": Case("scenario", scenario_file(_alias_bomb), 2,
                            ["scenario.yaml", "aliases"]),
    "weight_nan": Case("scenario", scenario_file(_weight(".nan")), 2,
                       ["scenario.yaml", "criteria.transit.weight", "finite"]),
    "weight_inf": Case("scenario", scenario_file(_weight(".inf")), 2,
                       ["scenario.yaml", "criteria.transit.weight", "finite"]),
    "weight_negative": Case("scenario", scenario_file(_weight("-1")), 2,
                            ["scenario.yaml", "criteria.transit.weight"]),
    "weights_all_zero": Case("scenario", scenario_file(_all_zero), 2,
                             ["scenario.yaml", "weight above 0"]),
    "extends_missing": Case("scenario", scenario_file("extends: nowhere.yaml\n"), 2,
                            ["scenario.yaml", "extends", "nowhere.yaml"]),
    "extends_cyclic": Case("scenario", scenario_file(_cyclic), 2,
                           ["extends", "other.yaml", "scenario.yaml"]),
    "layer_name_escapes_folder": Case("scenario", scenario_file(_escaping_layer), 2,
                                      ["scenario.yaml", "layers", "../../escaped",
                                       "letters, digits and underscores"]),
    "thresholds_inverted": Case(
        "scenario",
        scenario_file(EXTENDS + "criteria:\n  transit:\n"
                      "    value: {kind: linear, ideal: 1000, unacceptable: 300}\n"),
        2, ["scenario.yaml", "criterion 'transit'", "dist_transit_m",
            "direction: higher_is_better"]),
    "direction_contradicts_thresholds": Case(
        "scenario",
        scenario_file(EXTENDS + "criteria:\n  transit:\n    value: {kind: linear, ideal: 1000, "
                      "unacceptable: 300, direction: lower_is_better}\n"),
        2, ["scenario.yaml", "criteria.transit.value", "direction"]),
    "data_path_outside_project_missing": Case(
        "scenario",
        scenario_file(EXTENDS + "measure:\n  population:\n"
                      "    raster: ../../../../../nowhere/population.tif\n"),
        2, ["population", "nowhere/population.tif", "do not exist"]),
    # --- rasters -----------------------------------------------------------------------------
    # Found before measuring by run()'s readability check (or, in Study, by zonal_stats).
    "raster_is_a_text_file": Case("raster", raster_case(_text_raster), 2,
                                  ["population.tif", "raster", "read"]),
    "raster_truncated": Case("raster", raster_case(_truncated_raster), 2,
                             ["population.tif", "raster", "read"]),
    "raster_partly_overlapping": Case(
        "raster", raster_case(_partial_raster), 0,
        statuses={p: "ok" for p in IDS},
        notes={"residents_within_500m_note_en": "population.tif has values for only"}),
    "raster_not_overlapping": Case(
        "raster", raster_case(lambda d: _shifted_raster(d, 400_000.0)), 2,
        ["population.tif", "does not overlap"]),
    # --- GTFS -------------------------------------------------------------------------------
    "gtfs_not_a_zip": Case("gtfs", gtfs_case(_text_zip), 2, ["feed.zip", "zip"]),
    "gtfs_corrupt_member": Case("gtfs", gtfs_case(_corrupt_member), 2,
                                ["feed.zip", "stop_times.txt", "damaged"]),
    "gtfs_without_stop_times": Case("gtfs", gtfs_case(lambda d: _gtfs_without(d, "stop_times.txt")),
                                    2, ["feed.zip", "stop_times.txt"]),
    "gtfs_empty_stop_times": Case(
        "gtfs", gtfs_case(lambda d: _gtfs_without(d, "stop_times.txt", b"")), 2,
        ["feed.zip", "stop_times.txt", "empty"]),
}


# --- running the command line -----------------------------------------------------------


@dataclass
class Outcome:
    code: int
    out: str
    err: str
    out_dir: Path


@pytest.fixture(scope="session")
def corpus_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("corpus")


@pytest.fixture(scope="session")
def shared_layers(tmp_path_factory) -> Path:
    """One layers folder for every run on the clip (layers are rebuilt when stale)."""
    return tmp_path_factory.mktemp("layers")


@pytest.fixture(scope="session")
def good_plots(corpus_root) -> Path:
    path = corpus_root / "good.gpkg"
    _good_gpkg(path)
    return path


def run_cli(options: dict, work: Path, layers: Path) -> Outcome:
    """``sitefinder run`` in process; an escaping exception is returned as its traceback."""
    out_dir = work / "out"
    argv = ["run", "--quiet", "--no-cache", "--out", str(out_dir), "--layers", str(layers)]
    for key in ("plots", "osm", "scenario", "plots_crs", "id_column"):
        if key in options:
            argv += [f"--{key.replace('_', '-')}", str(options[key])]
    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            code = cli.main(argv)
        except SystemExit as exc:  # argparse
            code = exc.code
        except Exception:
            stderr.write(traceback.format_exc())
            code = 1
    return Outcome(code, stdout.getvalue(), stderr.getvalue(), out_dir)


def _params():
    return [pytest.param(name, marks=case.marks, id=name) for name, case in CASES.items()]


@pytest.mark.parametrize("name", _params())
def test_bad_input(name, corpus_root, shared_layers, good_plots):
    case = CASES[name]
    work = corpus_root / name
    work.mkdir()
    options = {"plots": good_plots, "osm": CLIP, **case.build(work)}
    outcome = run_cli(options, work, shared_layers)
    assert "Traceback" not in outcome.err, outcome.err
    assert outcome.code == case.code, outcome.err or outcome.out
    if case.code == 2:
        message = outcome.err.strip()
        assert message.startswith("sitefinder: error: ") and "\n" not in message, message
        for text in case.names:
            assert text in message, f"{text!r} not in: {message}"
        return
    ranked = pd.read_csv(outcome.out_dir / "ranked.csv", dtype={"plot_id": str})
    expected_ids = case.statuses.keys() if case.statuses else IDS
    # No plot is ever lost: every input plot is in the output, once.
    assert sorted(ranked["plot_id"]) == sorted(expected_ids)
    got = ranked.set_index("plot_id")
    for pid, status in case.statuses.items():
        accepted = SCORED if status == "ok" else {status}
        assert got.loc[pid, "status"] in accepted, (pid, got.loc[pid, "status_reason_en"])
        if status != "ok":
            assert isinstance(got.loc[pid, "status_reason_en"], str)
            assert isinstance(got.loc[pid, "status_reason_nb"], str)
    for pid, text in case.reason.items():
        assert text in got.loc[pid, "status_reason_en"] + str(got.loc[pid].get("input_note_en"))
    for column, text in case.notes.items():
        assert got[column].str.contains(text, regex=False).all(), got[column]


def test_corpus_covers_every_class():
    classes = pd.Series([c.klass for c in CASES.values()]).value_counts().to_dict()
    assert set(classes) == {"plots", "osm", "scenario", "raster", "gtfs"}
    assert len(CASES) >= 60


# --- details of single cases ------------------------------------------------------------


def test_python_tag_is_never_executed(corpus_root, shared_layers, good_plots):
    work = corpus_root / "python_tag_marker"
    work.mkdir()
    options = {"plots": good_plots, "osm": CLIP, **scenario_file(_python_tag)(work)}
    assert run_cli(options, work, shared_layers).code == 2
    assert not (work / "EXECUTED").exists()


def test_alias_bomb_and_deep_yaml_are_refused_fast(tmp_path):
    for name, text in [("bomb", _alias_bomb(tmp_path)), ("deep", "a: " + "[" * 20_000)]:
        path = _scenario(tmp_path / f"{name}.yaml", text)
        start = time.perf_counter()
        with pytest.raises(InputError):
            load_scenario(path)
        assert time.perf_counter() - start < 5


def test_escaping_layer_name_writes_nothing_outside(corpus_root, shared_layers, good_plots):
    work = corpus_root / "escape" / "deep" / "work"
    work.mkdir(parents=True)
    layers = work / "layers"
    options = {"plots": good_plots, "osm": CLIP, **scenario_file(_escaping_layer)(work)}
    assert run_cli(options, work, layers).code == 2
    assert not (corpus_root / "escape" / "escaped.gpkg").exists()
    assert not list((corpus_root / "escape").rglob("escaped*"))


def test_id_column_beside_plot_id_keeps_it_as_input(corpus_root, shared_layers):
    work = corpus_root / "two_ids_detail"
    work.mkdir()
    options = {"osm": CLIP, **plots_file(_two_id_columns, "plots.gpkg", id_column="tomt_id")(work)}
    outcome = run_cli(options, work, shared_layers)
    assert outcome.code == 0, outcome.err
    ranked = pd.read_csv(outcome.out_dir / "ranked.csv", dtype=str).set_index("plot_id")
    assert ranked.loc[["A", "B", "C"], "input_plot_id"].tolist() == ["1", "2", "3"]


def test_too_large_limit_is_a_setting(tmp_path):
    path = tmp_path / "plots.gpkg"
    big = shapely.box(X0, Y0, X0 + 300, Y0 + 300)  # 9 ha
    _frame(["small", "big"], [BOXES[0], big]).to_file(path)
    assert read_plots(path)["status"].tolist() == ["ok", "too_large"]
    assert MAX_PLOT_AREA_M2 == 50_000
    assert read_plots(path, max_area_m2=100_000)["status"].tolist() == ["ok", "ok"]
    assert read_plots(path, max_area_m2=None)["status"].tolist() == ["ok", "ok"]
    # The same limit, whatever the CRS of the file.
    lonlat = tmp_path / "lonlat.gpkg"
    _frame(["small", "big"], [BOXES[0], big]).to_crs(4326).to_file(lonlat)
    assert read_plots(lonlat)["status"].tolist() == ["ok", "too_large"]
    reason = read_plots(path).loc[1, "status_reason_en"]
    assert "9 ha" in reason and "5 ha" in reason


def test_duplicate_geometry_names_the_first_plot_and_is_never_selected(tmp_path):
    path = tmp_path / "plots.gpkg"
    reversed_ring = shapely.Polygon(list(BOXES[0].exterior.coords)[::-1])
    _frame(["first", "other", "copy"], [BOXES[0], BOXES[1], reversed_ring]).to_file(path)
    plots = read_plots(path).set_index("plot_id")
    assert plots.loc["copy", "status"] == "duplicate"
    assert "plot first (row 1)" in plots.loc["copy", "status_reason_en"]
    assert "tomt first" in plots.loc["copy", "status_reason_nb"]
    assert plots.loc["first", "status"] == "ok"


def test_id_column_must_exist_unless_default(tmp_path):
    path = tmp_path / "plots.gpkg"
    _frame(tomt_id=IDS).drop(columns="plot_id").to_file(path)
    assert read_plots(path)["plot_id"].tolist() == ["row-1", "row-2", "row-3"]
    with pytest.raises(InputError) as err:
        read_plots(path, id_column="Tomt_ID")
    assert "Did you mean 'tomt_id'" in str(err.value)


# --- CRS diagnosis -----------------------------------------------------------------------

EXTENT = (10.755, 59.908, 10.775, 59.918)


def test_diagnosis_is_silent_for_plots_in_the_extract():
    plots = read_plots_frame(_frame())
    assert diagnose_plots_crs(plots, EXTENT) is None
    assert diagnose_plots_crs(plots.to_crs(4326), EXTENT) is None


def test_diagnosis_is_silent_for_plots_that_are_simply_elsewhere():
    far = read_plots_frame(_frame(geoms=[shapely.box(X0 + 50_000, Y0, X0 + 50_040, Y0 + 40)],
                                  ids=["far"]))
    assert diagnose_plots_crs(far, EXTENT) is None
    assert diagnose_plots_crs(far.to_crs(4326), EXTENT) is None


def test_diagnosis_reads_lonlat_and_swapped():
    lonlat = read_plots_frame(_frame().to_crs(4326))
    as_utm = lonlat.set_crs(25833, allow_override=True)
    problem, hint = diagnose_plots_crs(as_utm, EXTENT)
    assert "longitude/latitude" in problem and "EPSG:25833" in problem
    assert "--plots-crs EPSG:4326" in hint
    swapped = lonlat.set_geometry(lonlat.geometry.map(
        lambda g: shapely.transform(g, lambda xy: xy[:, ::-1])), crs=4326)
    problem, _ = diagnose_plots_crs(swapped, EXTENT)
    assert "swapped" in problem


def test_extract_is_not_read_for_a_normal_projected_file():
    def never():
        raise AssertionError("the extract was read")

    check_plots_crs(read_plots_frame(_frame()), never)


def read_plots_frame(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    return frame.assign(status="ok")


# --- rasters -------------------------------------------------------------------------------


def test_geographic_population_raster_counts_the_same_residents(tmp_path):
    """Reproject the real SSB grid raster to lon/lat and back (summing counts): the residents
    within 500 m must agree within 1 % (cos-latitude weights on a sum used to halve them)."""
    projected = _population_tif(tmp_path / "utm.tif")
    geographic = _warp_sum(projected, tmp_path / "lonlat.tif", "EPSG:4326", (0.0005, 0.00025))
    back = _warp_sum(geographic, tmp_path / "back.tif", "EPSG:25833", (50.0, 50.0))
    xs, ys = [262_000, 263_500, 265_000, 262_500, 266_000], [6_649_000, 6_650_500, 6_648_000,
                                                             6_652_000, 6_651_000]
    plots = gpd.GeoSeries([shapely.box(x, y, x + 40, y + 40) for x, y in zip(xs, ys, strict=True)],
                          crs=25833)
    reference = residents_within(plots, projected)["value"].to_numpy()
    assert (reference > 500).all()
    for raster in (geographic, back):
        value = residents_within(plots, raster)["value"].to_numpy()
        np.testing.assert_allclose(value, reference, rtol=0.01)


def _warp_sum(src_path: Path, out: Path, crs: str, resolution) -> Path:
    with rasterio.open(src_path) as src:
        transform, width, height = calculate_default_transform(
            src.crs, crs, src.width, src.height, *src.bounds, resolution=resolution
        )
        profile = src.profile
        profile.update(crs=crs, transform=transform, width=width, height=height,
                       dtype="float64", nodata=-1)
        data = np.full((height, width), -1.0)
        reproject(rasterio.band(src, 1), data, src_nodata=src.nodata, dst_nodata=-1,
                  dst_transform=transform, dst_crs=crs, resampling=Resampling.sum)
        total_in = src.read(1, masked=True).sum()
    assert data[data >= 0].sum() == pytest.approx(total_in, rel=1e-6)  # counts conserved
    with rasterio.open(out, "w", **profile) as dst:
        dst.write(data, 1)
    return out


@pytest.fixture
def local_plots() -> gpd.GeoDataFrame:
    return read_plots_frame(_frame())


def test_check_rasters_refuses_unreadable_and_far_rasters(tmp_path, local_plots):
    text = _text_raster(tmp_path)
    with pytest.raises(InputError, match="not a raster") as err:
        check_rasters({"population": text}, local_plots)
    assert "measure.population.raster" in str(err.value)
    (tmp_path / "t").mkdir()
    truncated = _truncated_raster(tmp_path / "t")
    with pytest.raises(InputError, match="truncated"):
        check_rasters({"raster:pop": truncated}, local_plots)
    (tmp_path / "f").mkdir()
    far = _shifted_raster(tmp_path / "f", 400_000.0)
    with pytest.raises(InputError, match="does not overlap any of the plots"):
        check_rasters({"population": far}, local_plots)
    cut_dem = tmp_path / "dem.tif"
    cut_dem.write_bytes(DTM.read_bytes())
    _truncate(cut_dem, 0.6)
    dem_plots = read_plots_frame(gpd.GeoDataFrame(
        geometry=[shapely.box(-25_000, 6_674_500, -24_900, 6_674_600)], crs=3045))
    with pytest.raises(InputError, match="measure.slope.dem"):
        check_rasters({"dem": cut_dem}, dem_plots)


def test_check_rasters_accepts_good_and_partial_rasters(tmp_path, local_plots):
    (tmp_path / "p").mkdir()
    check_rasters(
        {"population": _population_tif(tmp_path / "pop.tif"),
         "raster:west": _partial_raster(tmp_path / "p"),
         "gtfs:0": GTFS},  # not a raster: skipped
        local_plots,
    )


def test_unreadable_raster_fails_before_any_measuring(tmp_path, good_plots):
    scenario = _population_scenario(tmp_path, _text_raster(tmp_path))
    with pytest.raises(InputError, match="population.tif"):
        Study(good_plots, CLIP, scenario, layers_dir=tmp_path / "layers", cache_dir=None)


# --- scenario rules ------------------------------------------------------------------------


def test_shipped_scenarios_still_load():
    for path in [default_scenario_path(), *sorted(DATA.glob("*.yaml"))]:
        assert load_scenario(path).criteria


def test_direction_is_optional_and_must_agree():
    assert LinearValue(ideal=300, unacceptable=1000).implied_direction == "lower_is_better"
    LinearValue(ideal=1000, unacceptable=300, direction="higher_is_better")
    with pytest.raises(ValueError, match="swap ideal and unacceptable"):
        LinearValue(ideal=1000, unacceptable=300, direction="lower_is_better")
    assert LinearValue.expected_direction("dist_transit_m") == "lower_is_better"
    assert LinearValue.expected_direction("road_lden_db") == "lower_is_better"
    assert LinearValue.expected_direction("drug_scene_dist_m") is None  # farther is better
    assert LinearValue.expected_direction("residents_within_500m") is None


def test_explicit_direction_lets_a_distance_reward_more(tmp_path):
    path = _scenario(
        tmp_path / "s.yaml",
        EXTENDS + "criteria:\n  transit:\n    value: {kind: linear, ideal: 1000, "
        "unacceptable: 300, direction: higher_is_better}\n",
    )
    assert load_scenario(path).criteria["transit"].value.direction == "higher_is_better"


# --- the real console entry point ------------------------------------------------------------


def test_console_entry_point_prints_no_traceback(tmp_path, good_plots):
    empty = tmp_path / "plots.csv"
    empty.write_bytes(b"")
    blank = tmp_path / "blank.csv"
    _blank_wkt(blank)
    base = [sys.executable, "-m", "sitefinder.cli", "run", "--quiet", "--no-cache",
            "--osm", str(CLIP), "--layers", str(tmp_path / "layers"), "--plots-crs",
            "EPSG:25832"]
    env = {**os.environ, "SITEFINDER_QUIET": "1"}
    bad = subprocess.run([*base, "--plots", str(empty), "--out", str(tmp_path / "o1")],
                         capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert "plots.csv" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
    good = subprocess.run([*base, "--plots", str(blank), "--out", str(tmp_path / "o2")],
                          capture_output=True, text=True, cwd=ROOT, env=env, timeout=300)
    assert good.returncode == 0 and "Traceback" not in good.stderr, good.stderr
    ranked = pd.read_csv(tmp_path / "o2" / "ranked.csv")
    assert sorted(ranked["plot_id"]) == IDS


def test_plots_declared_in_the_wrong_utm_zone_name_the_right_one(tmp_path):
    """EPSG:25833 coordinates in a file that says EPSG:25832 miss Oslo by ~200 km."""
    from sitefinder.api import Study
    from sitefinder.config import default_scenario

    centre = gpd.GeoSeries([shapely.Point(10.765, 59.913)], crs=4326).to_crs(25833).iloc[0]
    square = shapely.box(centre.x - 15, centre.y - 15, centre.x + 15, centre.y + 15)
    path = tmp_path / "wrong_zone.gpkg"
    gpd.GeoDataFrame({"plot_id": ["A"]}, geometry=[square], crs=25832).to_file(path)
    study = Study(path, CLIP, default_scenario(), layers_dir=tmp_path / "layers",
                  cache_dir=None)
    with pytest.raises(InputError, match="EPSG:25833") as info:
        study.score()
    assert "wrong_zone.gpkg" in str(info.value) and "--plots-crs EPSG:25833" in str(info.value)


def test_geopackage_with_several_layers_is_refused_naming_them(tmp_path):
    """Reading only the first layer would lose the plots of the others without a word."""
    path = tmp_path / "utkast.gpkg"
    for layer, x0 in (("utkast", 0), ("endelig", 100)):
        gpd.GeoDataFrame({"plot_id": [f"{layer}-1"]}, geometry=[shapely.box(x0, 0, x0 + 30, 30)],
                         crs=25832).to_file(path, layer=layer)
    with pytest.raises(InputError, match="2 layers") as info:
        read_plots(path)
    assert "utkast" in str(info.value) and "endelig" in str(info.value)
    assert len(read_plots(path, layer="endelig")) == 1
