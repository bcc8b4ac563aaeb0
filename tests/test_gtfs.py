"""Departures per hour per stop from the real (expired) Entur GTFS feeds."""

from __future__ import annotations

import datetime as dt
import zipfile
from pathlib import Path

import pandas as pd
import pydantic
import pytest

from sitefinder.errors import InputError
from sitefinder.sources.gtfs import (
    GtfsFeedSource,
    TransitFrequencySettings,
    busiest_weekday,
    departures_per_hour,
    read_gtfs,
    stop_frequencies,
)

DATA = Path(__file__).parent / "data"
FLYBUSS = DATA / "flybussekspressen_gtfs_2016.zip"
FLYTOGET = DATA / "flytoget_gtfs_2017.zip"


def plain(zip_path: Path, name: str) -> pd.DataFrame:
    with zipfile.ZipFile(zip_path) as z:
        return pd.read_csv(z.open(name), dtype=str, keep_default_na=False)


def independent_count(zip_path: Path, stop_id: str, date: dt.date, start: str, end: str) -> int:
    """Departures at one stop on one date, by plain pandas filters on the raw tables.

    Both feeds use only calendar_dates (every weekday flag in calendar.txt is 0) and
    have no times past 24:00 inside a daytime window, which keeps this short.
    """
    cal = plain(zip_path, "calendar.txt")
    assert (cal[["monday", "tuesday", "wednesday", "thursday", "friday"]] == "0").all().all()
    dates = plain(zip_path, "calendar_dates.txt")
    services = set(
        dates[(dates["date"] == date.strftime("%Y%m%d")) & (dates["exception_type"] == "1")][
            "service_id"
        ]
    )
    trips = plain(zip_path, "trips.txt")
    trip_ids = set(trips[trips["service_id"].isin(services)]["trip_id"])
    st = plain(zip_path, "stop_times.txt")
    st["seq"] = st["stop_sequence"].astype(int)
    last = st.groupby("trip_id")["seq"].transform("max")
    chosen = st[
        (st["stop_id"] == stop_id)
        & st["trip_id"].isin(trip_ids)
        & (st["departure_time"] >= start)
        & (st["departure_time"] < end)
        & (st["pickup_type"] != "1")
        & (st["seq"] != last)
    ]
    return len(chosen)


@pytest.mark.parametrize(
    ("path", "stop_id", "date"),
    [
        (FLYBUSS, "762004884", dt.date(2016, 1, 4)),  # Grini, a Monday
        (FLYBUSS, "762084544", dt.date(2016, 3, 16)),  # Oslo Lufthavn
        (FLYTOGET, "RUT:StopArea:7600100", dt.date(2017, 1, 10)),  # Oslo S
        (FLYTOGET, "RUT:StopArea:7600180", dt.date(2016, 12, 24)),  # Nationaltheatret
    ],
)
def test_departures_match_a_plain_pandas_count(path, stop_id, date):
    stops = departures_per_hour(path, date)
    row = stops.set_index("stop_id").loc[stop_id]
    expected = independent_count(path, stop_id, date, "07:00:00", "19:00:00")
    assert expected > 0
    assert row["departures"] == expected
    assert row["departures_per_hour"] == pytest.approx(expected / 12)
    assert row["service_date"] == date


def test_output_is_one_point_per_stop_in_wgs84():
    stops = departures_per_hour(FLYTOGET, dt.date(2017, 1, 10))
    assert stops.crs.to_epsg() == 4326
    assert len(stops) == 10 and stops["stop_id"].is_unique
    oslo_s = stops.set_index("stop_id").loc["RUT:StopArea:7600100"]
    assert oslo_s.geometry.x == pytest.approx(10.75533) and oslo_s.geometry.y == pytest.approx(
        59.9102
    )
    # The airport train runs every 10 minutes or so through Oslo S.
    assert 4 <= oslo_s["departures_per_hour"] <= 12


def test_times_past_midnight_count_on_the_next_calendar_day():
    # Window 00:00-02:00 on a date catches the previous service day's 24:xx-25:xx trips
    # (Flytoget's last trains reach Lillestrøm at 24:10).
    date = dt.date(2016, 12, 5)
    night = departures_per_hour(FLYTOGET, date, (dt.time(0, 0), dt.time(2, 0)))
    dates = plain(FLYTOGET, "calendar_dates.txt")
    trips = plain(FLYTOGET, "trips.txt")
    st = plain(FLYTOGET, "stop_times.txt")
    st = st.merge(trips[["trip_id", "service_id"]], on="trip_id")
    st["seq"] = st["stop_sequence"].astype(int)
    last = st.groupby("trip_id")["seq"].transform("max")
    st = st[(st["pickup_type"] != "1") & (st["seq"] != last)]

    def services(day: dt.date) -> set[str]:
        on = dates[(dates["date"] == day.strftime("%Y%m%d")) & (dates["exception_type"] == "1")]
        return set(on["service_id"])

    same_day = st["service_id"].isin(services(date)) & st["departure_time"].between(
        "00:00:00", "01:59:59"
    )
    day_before = st["service_id"].isin(services(date - dt.timedelta(days=1))) & st[
        "departure_time"
    ].between("24:00:00", "25:59:59")
    assert day_before.sum() > 0
    assert night["departures"].sum() == (same_day | day_before).sum()


def test_date_outside_the_calendar_is_an_input_error():
    with pytest.raises(
        InputError, match=r"outside the feed's calendar \(2016-12-02 to 2017-02-01\)"
    ):
        departures_per_hour(FLYTOGET, dt.date(2024, 5, 6))


def test_date_without_service_is_an_input_error():
    # Inside calendar.txt's range, but calendar_dates.txt ends on 2016-06-19.
    with pytest.raises(InputError, match="no trips run on 2016-09-05"):
        departures_per_hour(FLYBUSS, dt.date(2016, 9, 5))


def test_missing_files_are_named(tmp_path):
    broken = tmp_path / "no_stop_times.zip"
    with zipfile.ZipFile(FLYTOGET) as src, zipfile.ZipFile(broken, "w") as dst:
        for name in src.namelist():
            if name != "stop_times.txt":
                dst.writestr(name, src.read(name))
    with pytest.raises(InputError, match="lacks stop_times.txt") as err:
        read_gtfs(broken)
    assert err.value.path == broken
    not_zip = tmp_path / "feed.zip"
    not_zip.write_text("stop_id\n")
    with pytest.raises(InputError, match="zip"):
        read_gtfs(not_zip)


def test_busiest_weekday_is_a_weekday_in_the_calendar():
    feed = read_gtfs(FLYTOGET)
    day = busiest_weekday(feed)
    assert day.weekday() < 5
    assert feed.date_range[0] <= day <= feed.date_range[1]
    default = departures_per_hour(feed)
    assert (default["service_date"] == day).all()


def test_settings_combine_feeds_with_their_own_dates():
    settings = TransitFrequencySettings(
        feeds=[
            GtfsFeedSource(path=FLYBUSS, service_date=dt.date(2016, 1, 4)),
            GtfsFeedSource(path=FLYTOGET),
        ],
        service_date=dt.date(2017, 1, 10),
    )
    stops = stop_frequencies(settings)
    assert set(stops["feed"]) == {FLYBUSS.name, FLYTOGET.name}
    assert set(stops.loc[stops["feed"] == FLYTOGET.name, "service_date"]) == {dt.date(2017, 1, 10)}
    with pytest.raises(pydantic.ValidationError):
        TransitFrequencySettings(feeds=[], service_date=dt.date(2017, 1, 10))
    with pytest.raises(pydantic.ValidationError):
        TransitFrequencySettings(
            feeds=[GtfsFeedSource(path=FLYTOGET)], window_start=dt.time(19), window_end=dt.time(7)
        )
