"""Public mode end to end: no trace of a sensitive existing site in any output file."""

from __future__ import annotations

import re

import geopandas as gpd
import openpyxl
import pypdf
import pytest
import shapely

from sitefinder.config import Scenario
from sitefinder.pipeline import run

from .conftest import DEMO_PLOTS, OSM_PBF

SECRET_NAME = "Hemmelig småhus Tøyen"


@pytest.fixture(scope="module")
def existing_file(tmp_path_factory):
    """Two made-up existing sites near demo plots (SENSITIVE in a real municipality)."""
    plots = gpd.read_file(DEMO_PLOTS)
    anchors = plots.geometry.iloc[[3, 30]].representative_point()
    points = [shapely.Point(p.x + 60, p.y + 40) for p in anchors]
    path = tmp_path_factory.mktemp("sensitive") / "eksisterende.gpkg"
    gpd.GeoDataFrame(
        {"name": [SECRET_NAME, "Hemmelig småhus 2"], "antall": [4, 3]},
        geometry=points, crs=25832,
    ).to_file(path)
    return path, gpd.GeoSeries(points, crs=25832)


def _coordinate_patterns(points: gpd.GeoSeries) -> list[str]:
    """Regexes for a sensitive point written as a coordinate pair (either order), to ~1 m.

    The map writes degrees with 6 decimals; matching the first 5 of them is a box of about
    0.6 × 1.1 m, tight enough that an unrelated vertex nearby does not match by chance.
    """
    pats = []
    for p, decimals in [(p, 2) for p in points] + [(p, 6) for p in points.to_crs(4326)]:
        x, y = f"{p.x:.{decimals}f}", f"{p.y:.{decimals}f}"
        # Truncated or rounded at this precision, followed by any further digits.
        for a, b in ((x, y), (y, x)):
            pats.append(rf"{re.escape(a[:-1])}[0-9]*,\s*{re.escape(b[:-1])}")
    return pats


def _texts(out_dir):
    for path in sorted(out_dir.iterdir()):
        if path.suffix == ".pdf":
            yield path, "\n".join(page.extract_text() for page in pypdf.PdfReader(path).pages)
        elif path.suffix == ".gpkg":
            for layer in gpd.list_layers(path)["name"]:
                frame = gpd.read_file(path, layer=layer)  # layer_styles has no geometry
                shapes = frame.geometry.to_wkt().str.cat(sep="\n") \
                    if isinstance(frame, gpd.GeoDataFrame) else ""
                yield path, frame.to_csv() + shapes
        elif path.suffix == ".xlsx":  # zipped XML: read the cells, not the bytes
            book = openpyxl.load_workbook(path, read_only=True)
            yield path, "\n".join(str(v) for sheet in book for row in sheet.values
                                   for v in row if v is not None)
        else:
            yield path, path.read_text(encoding="utf-8", errors="replace")


def test_public_run_leaks_nothing_but_internal_run_uses_the_sites(
    tmp_path, existing_file, scenario
):
    path, points = existing_file
    data = scenario.model_dump()
    data["existing_sites"] = {"file": str(path), "units_column": "antall"}
    with_existing = Scenario.model_validate(data)
    common = dict(layers_dir=tmp_path / "layers", cache_dir=None, units=8, report=True)

    internal = run(DEMO_PLOTS, OSM_PBF, with_existing, tmp_path / "internal", **common)
    html = (tmp_path / "internal" / "map.html").read_text(encoding="utf-8")
    assert SECRET_NAME in html  # the internal map shows the existing sites...
    # ...and the selection keeps its distance from them (500 m by default).
    chosen = internal.selection.chosen.geometry.centroid
    assert chosen.distance(points.union_all()).min() >= 500 - 1e-6

    patterns = _coordinate_patterns(points)
    # The scan below can fail: it finds the sites in the internal map.
    assert any(re.search(pat, html) for pat in patterns)

    public = run(DEMO_PLOTS, OSM_PBF, with_existing, tmp_path / "public", public=True, **common)
    assert set(public.selection.chosen["plot_id"]) == set(internal.selection.chosen["plot_id"])
    checked = 0
    for file, text in _texts(tmp_path / "public"):
        checked += 1
        assert SECRET_NAME not in text, file
        assert "eksisterende.gpkg" not in text, file
        for pat in patterns:
            assert not re.search(pat, text), (file, pat)
    assert checked >= 8
