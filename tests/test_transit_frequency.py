"""GTFS departures per hour within a walk, on the real Oslo network and a real Entur feed."""

from __future__ import annotations

import geopandas as gpd
import shapely

from sitefinder.api import Study
from sitefinder.config import Scenario
from sitefinder.sources.gtfs import departures_per_hour

from .conftest import OSM_PBF, TEST_DATA

FEED = TEST_DATA / "flybussekspressen_gtfs_2016.zip"  # airport coaches, calendar 2015-16


def test_departures_within_walk_on_the_real_network(tmp_path, scenario):
    stops = departures_per_hour(FEED, "2016-03-15")
    # A served stop well inside the extract (its edge is at 10.72-10.78 E, 59.90-59.94 N).
    served = stops[stops["departures_per_hour"] > 0].cx[10.73:10.77, 59.91:59.935]
    stop = served.to_crs(25832).iloc[0]
    near = shapely.box(stop.geometry.x + 15, stop.geometry.y + 15,
                       stop.geometry.x + 45, stop.geometry.y + 45)
    # A plot on the quays of Bjørvika, far from every airport-coach stop.
    far = shapely.box(598_700, 6_642_350, 598_730, 6_642_380)
    plots = tmp_path / "plots.gpkg"
    gpd.GeoDataFrame({"plot_id": ["near", "far"]}, geometry=[near, far], crs=25832).to_file(plots)

    data = scenario.model_dump()
    data["measure"]["transit_frequency"] = {
        "feeds": [{"path": str(FEED), "service_date": "2016-03-15"}],
        "walk_minutes": 5,
    }
    data["criteria"]["transit_frequency"] = {
        "metric": "departures_per_hour_within_5min",
        "value": {"kind": "linear", "ideal": 8, "unacceptable": 1},
        "weight": 1,
        "label_nb": "avganger per time innen 5 min",
        "label_en": "departures per hour within 5 min",
        "source": "SINTEF 2021 §6.6, §8",
    }
    frequency = Scenario.model_validate(data)
    study = Study(plots, OSM_PBF, frequency, layers_dir=tmp_path / "layers", cache_dir=None)
    ranked = study.score().set_index("plot_id")
    column = "departures_per_hour_within_5min"
    assert ranked.loc["near", column] >= stop["departures_per_hour"]
    assert ranked.loc["far", column] == 0
    assert "avganger/time" in ranked.loc["near", "explanation_nb"]
