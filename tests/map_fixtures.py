"""Ranked-plot tables that follow docs/CONTRACT.md, for map and report tests and benchmarks.

Plots are small rectangles (15–70 m sides) scattered over central Oslo in EPSG:25832,
with every column of the contract, a spread of statuses and plausible metric values.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
from shapely.geometry import LineString, Point, Polygon, box

CRS = "EPSG:25832"
CENTRE = (597_500.0, 6_643_300.0)  # Oslo sentrum in UTM 32N
CATEGORIES = ("transit", "grocery", "pharmacy", "health", "meeting", "nature")
IDEAL = {"transit": 300, "grocery": 500, "pharmacy": 1000, "health": 1000, "meeting": 1000,
         "nature": 300}
BAD = {"transit": 1000, "grocery": 2000, "pharmacy": 3000, "health": 4000, "meeting": 4000,
       "nature": 1500}
WEIGHTS = {"transit": 3.0, "grocery": 3.0, "pharmacy": 1.0, "health": 2.0, "meeting": 1.0,
           "nature": 1.0, "screening": 2.0, "not_hidden": 1.0, "industrial": 2.0}


def _linear(x: np.ndarray, ideal: float, bad: float) -> np.ndarray:
    v = (bad - x) / (bad - ideal)
    return np.clip(np.nan_to_num(v, nan=0.0), 0, 1)


def ranked_fixture(n: int = 40, seed: int = 1, spread_m: float = 3000.0,
                   special: bool = True, excluded_share: float = 0.0) -> gpd.GeoDataFrame:
    """A contract-shaped ranked table of ``n`` plots.

    With ``special``, the last rows are: an XSS-named plot, an invalid (bow-tie) geometry,
    an empty geometry, a plot outside the network and one inside an industrial area.
    """
    rng = np.random.default_rng(seed)
    cx = CENTRE[0] + rng.uniform(-spread_m, spread_m, n)
    cy = CENTRE[1] + rng.uniform(-spread_m, spread_m, n)
    w = rng.uniform(15, 70, n)
    h = rng.uniform(15, 70, n)
    geoms: list = [box(x - a / 2, y - b / 2, x + a / 2, y + b / 2)
                   for x, y, a, b in zip(cx, cy, w, h, strict=True)]
    df = pd.DataFrame({
        "plot_id": [f"P{i + 1:04d}" for i in range(n)],
        "name": [f"Tomt {i + 1} – Økern" for i in range(n)],
        "owner": rng.choice(["Oslo kommune", "Statsbygg", "Boligbygg Oslo KF"], n),
        "source_row": np.arange(1, n + 1),
        "area_m2": w * h,
        "status": "ok",
        "status_reason_nb": "",
        "status_reason_en": "",
    })
    for cat in CATEGORIES:
        d = rng.gamma(2.0, IDEAL[cat] * 0.8, n)
        d[rng.random(n) < 0.03] = np.nan
        df[f"dist_{cat}_m"] = d
        df[f"time_{cat}_min"] = d / (4500 / 60)
        df[f"count_{cat}_10min"] = rng.poisson(3, n)
        df[f"value_{cat}"] = _linear(d, IDEAL[cat], BAD[cat])
    df["dwelling_dist_m"] = rng.gamma(2.0, 20, n)
    df["residential_dist_m"] = rng.gamma(1.5, 150, n)
    df["industrial_dist_m"] = rng.gamma(2.0, 300, n)
    df["inside_industrial"] = False
    df["value_screening"] = _linear(-df["dwelling_dist_m"].to_numpy(), -25, -10)
    df["value_not_hidden"] = _linear(df["residential_dist_m"].to_numpy(), 300, 1000)
    df["value_industrial"] = _linear(-df["industrial_dist_m"].to_numpy(), -200, 0)
    df["explanation_nb"] = [
        f"{t:.0f} min å gå til bussholdeplass, {g:.0f} min til dagligvarebutikk"
        for t, g in zip(df["time_transit_min"].fillna(99), df["time_grocery_min"].fillna(99),
                        strict=True)
    ]
    df["explanation_en"] = [
        f"{t:.0f} min walk to a bus stop, {g:.0f} min to a grocery shop"
        for t, g in zip(df["time_transit_min"].fillna(99), df["time_grocery_min"].fillna(99),
                        strict=True)
    ]
    if special and n >= 6:
        df.loc[n - 6, "name"] = "<script>alert(1)</script>"
        df.loc[n - 6, "owner"] = "<img src=x onerror=alert(2)>"
        geoms[n - 5] = Polygon([(cx[n - 5], cy[n - 5]), (cx[n - 5] + 40, cy[n - 5] + 40),
                                (cx[n - 5] + 40, cy[n - 5]), (cx[n - 5], cy[n - 5] + 40)])
        df.loc[n - 5, ["status", "status_reason_nb", "status_reason_en"]] = [
            "invalid_geometry", "Ugyldig geometri (krysser seg selv)",
            "Invalid geometry (self-intersection)"]
        geoms[n - 4] = None
        df.loc[n - 4, ["status", "status_reason_nb", "status_reason_en"]] = [
            "empty_geometry", "Tomten mangler geometri", "The plot has no geometry"]
        df.loc[n - 3, ["status", "status_reason_nb", "status_reason_en"]] = [
            "outside_network", "Ligger utenfor gangnettet", "Outside the walking network"]
        df.loc[n - 2, ["status", "status_reason_nb", "status_reason_en"]] = [
            "excluded", "Ligger i et industriområde", "Inside an industrial area"]
        df.loc[n - 2, ["inside_industrial", "industrial_dist_m"]] = [True, 0.0]
    if excluded_share > 0:
        pick = (rng.random(n) < excluded_share) & (df["status"] == "ok")
        df.loc[pick, ["status", "status_reason_nb", "status_reason_en"]] = [
            "excluded", "For nær industriområde", "Too close to an industrial area"]
    wsum = sum(WEIGHTS.values())
    score = 100 * sum(WEIGHTS[c] * df[f"value_{c}"] for c in WEIGHTS) / wsum
    scored = df["status"].isin(["ok", "excluded"])
    df["score"] = np.where(scored, score, np.nan)
    ok = df["status"] == "ok"
    order = df[ok].sort_values(["score", "plot_id"], ascending=[False, True]).index
    df["rank"] = pd.array([pd.NA] * n, dtype="Int64")
    df.loc[order, "rank"] = np.arange(1, len(order) + 1)
    gdf = gpd.GeoDataFrame(df, geometry=geoms, crs=CRS)
    gdf = pd.concat([gdf.loc[order], gdf.drop(index=order)]).reset_index(drop=True)
    gdf = gpd.GeoDataFrame(gdf, geometry="geometry", crs=CRS)
    gdf.attrs["weights"] = dict(WEIGHTS)
    return gdf


def layers_fixture(seed: int = 2) -> dict[str, gpd.GeoDataFrame]:
    """Amenity points, an industrial area and a sensitive ``existing_sites`` layer."""
    rng = np.random.default_rng(seed)

    def pts(k: int, name: str) -> gpd.GeoDataFrame:
        xs = CENTRE[0] + rng.uniform(-3000, 3000, k)
        ys = CENTRE[1] + rng.uniform(-3000, 3000, k)
        return gpd.GeoDataFrame({"name": [f"{name} {i}" for i in range(k)]},
                                geometry=[Point(x, y) for x, y in zip(xs, ys, strict=True)],
                                crs=CRS)

    industrial = gpd.GeoDataFrame({"name": ["Industri <b>Alnabru</b>"]},
                                  geometry=[box(CENTRE[0] + 2000, CENTRE[1] + 500,
                                                CENTRE[0] + 2600, CENTRE[1] + 900)], crs=CRS)
    existing = gpd.GeoDataFrame(
        {"name": ["Eksisterende småhus A", "Eksisterende småhus B"]},
        geometry=[Point(597_123.4567, 6_642_987.6543), Point(598_765.4321, 6_644_321.1234)],
        crs=CRS)
    return {"bus_stops": pts(30, "Holdeplass"), "grocery": pts(15, "Butikk"),
            "industrial": industrial, "existing_sites": existing}


def districts_fixture() -> gpd.GeoDataFrame:
    """Two districts splitting the fixture area east/west."""
    x0, y0 = CENTRE
    return gpd.GeoDataFrame(
        {"name": ["Bydel Vest", "Bydel Øst"]},
        geometry=[box(x0 - 4000, y0 - 4000, x0, y0 + 4000),
                  box(x0, y0 - 4000, x0 + 4000, y0 + 4000)],
        crs=CRS)


def isochrones_fixture(ranked: gpd.GeoDataFrame, top: int = 3) -> gpd.GeoDataFrame:
    """Star-shaped (non-convex) walking areas of 5/10/15 min around the top plots."""
    rows = []
    for _, r in ranked.head(top).iterrows():
        c = r.geometry.centroid
        for minutes in (5, 10, 15):
            radius = minutes * 75.0
            ang = np.linspace(0, 2 * np.pi, 17)[:-1]
            rad = np.where(np.arange(16) % 2 == 0, radius, radius * 0.6)
            ring = [(c.x + q * np.cos(a), c.y + q * np.sin(a))
                    for a, q in zip(ang, rad, strict=True)]
            rows.append({"plot_id": r["plot_id"], "minutes": minutes, "geometry": Polygon(ring)})
    return gpd.GeoDataFrame(rows, geometry="geometry", crs=ranked.crs)


def selection_fixture(ranked: gpd.GeoDataFrame, k: int = 2) -> gpd.GeoDataFrame:
    """Unit footprints (6 m × 8.5 m, DOMAIN.md §6.1) on the first ``k`` plots."""
    rows = []
    for _, r in ranked.head(k).iterrows():
        c = r.geometry.centroid
        for u in range(3):
            x = c.x - 9 + u * 9
            rows.append({"plot_id": r["plot_id"], "units": 3,
                         "geometry": box(x - 3, c.y - 4.25, x + 3, c.y + 4.25)})
    return gpd.GeoDataFrame(rows, geometry="geometry", crs=ranked.crs)


ROUTE_CATEGORIES = ("transit", "grocery", "pharmacy", "health")


def routes_fixture(ranked: gpd.GeoDataFrame, top: int = 3) -> gpd.GeoDataFrame:
    """Walking routes as ``sitefinder.routes.walking_routes`` gives them: an L-shaped line
    from each of the top plots to a target per category, at 75 m per minute."""
    rows = []
    for k, (_, r) in enumerate(ranked.head(top).iterrows()):
        c = r.geometry.centroid
        for j, cat in enumerate(ROUTE_CATEGORIES):
            dx, dy = (120.0 + 40 * j) * (-1) ** j, 90.0 + 25 * k
            line = LineString([(c.x, c.y), (c.x + dx, c.y), (c.x + dx, c.y + dy)])
            rows.append({"plot_id": r["plot_id"], "category": cat,
                         "target_name": f"{cat.title()} {k}-{j}", "length_m": line.length,
                         "minutes": line.length / 75.0, "geometry": line})
    return gpd.GeoDataFrame(rows, geometry="geometry", crs=ranked.crs)


def noise_zones_fixture() -> gpd.GeoDataFrame:
    """A yellow and a red road-noise zone along a street east of the centre."""
    x0, y0 = CENTRE
    road = LineString([(x0 - 1500, y0 + 200), (x0 + 1500, y0 + 300)])
    return gpd.GeoDataFrame(
        {"zone": ["yellow", "red"],
         "name": ["Lden ≥ 55 dB (anslag fra OSM)", "Lden ≥ 65 dB (anslag fra OSM)"]},
        geometry=[road.buffer(70), road.buffer(15)], crs=CRS)
