"""Read GTFS feeds and count departures per hour at each stop.

"Near a bus stop" is only worth something if buses stop there. This module turns a GTFS
zip into one row per stop with the number of departures per hour in a weekday time
window on a chosen service date. The network module then sums them over the stops within
N minutes' walk of a plot.

What counts as a departure
--------------------------
A row of ``stop_times.txt`` whose trip runs on the service date, whose departure time
falls in ``[start, end)``, where boarding is possible (``pickup_type`` is not 1) and which
is not the trip's last stop (a bus arriving at its terminus takes no one anywhere).
Times after 24:00 belong to the previous service day: a trip of Monday's service at
25:10 leaves at 01:10 on Tuesday, so trips of the day before are counted too where their
times reach into the window. Stop times without a time (allowed for non-timepoints) are
interpolated linearly by stop order within the trip.

A service runs on a date if ``calendar.txt`` has it that weekday within its date range,
unless ``calendar_dates.txt`` removes it (exception 2); exception 1 adds it. Feeds
expire, so the service date is always a parameter; :func:`busiest_weekday` suggests one.
Frequency-based trips (``frequencies.txt``) are not supported and are refused with a
clear error rather than being silently miscounted.
"""

from __future__ import annotations

import datetime as dt
import io
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import geopandas as gpd
import numpy as np
import pandas as pd

from sitefinder.errors import InputError

# The settings live in the light module so the scenario validates without pandas;
# re-exported here, where they have always been imported from.
from sitefinder.settings import GtfsFeedSource, TransitFrequencySettings  # noqa: F401

_REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {
    "stops.txt": ("stop_id", "stop_lat", "stop_lon"),
    "trips.txt": ("trip_id", "service_id"),
    "stop_times.txt": ("trip_id", "stop_id", "stop_sequence"),
    "calendar.txt": (
        "service_id",
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
        "start_date",
        "end_date",
    ),
    "calendar_dates.txt": ("service_id", "date", "exception_type"),
}
_WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_DAY = 86_400


@dataclass(frozen=True)
class GtfsFeed:
    """The tables of a GTFS feed this module uses (all columns as strings)."""

    path: Path
    stops: pd.DataFrame
    trips: pd.DataFrame
    stop_times: pd.DataFrame
    calendar: pd.DataFrame
    calendar_dates: pd.DataFrame

    @property
    def date_range(self) -> tuple[dt.date, dt.date]:
        """First and last date the feed's calendar covers."""
        dates = list(_to_dates(self.calendar_dates["date"]))
        dates += list(_to_dates(self.calendar["start_date"]))
        dates += list(_to_dates(self.calendar["end_date"]))
        if not dates:
            raise InputError(
                "the feed's calendar.txt and calendar_dates.txt hold no valid dates",
                path=self.path,
                where="calendar.txt, calendar_dates.txt",
                hint="Use a complete GTFS zip with service dates written as YYYYMMDD",
            )
        return min(dates), max(dates)


def read_gtfs(path: str | Path) -> GtfsFeed:
    """Read a GTFS zip.

    Parameters
    ----------
    path : str or Path
        A GTFS zip (files at the root or in one folder inside it).

    Returns
    -------
    GtfsFeed

    Raises
    ------
    sitefinder.errors.InputError
        Not a zip; ``stops.txt``, ``trips.txt``, ``stop_times.txt`` or both calendar
        files missing; a required column missing; or ``frequencies.txt`` with rows.

    """
    path = Path(path)
    try:
        archive = zipfile.ZipFile(path)
    except (FileNotFoundError, zipfile.BadZipFile, IsADirectoryError) as exc:
        raise InputError(f"cannot read the GTFS feed as a zip file ({exc})", path=path) from exc
    with archive:
        members = {PurePosixPath(n).name: n for n in archive.namelist() if not n.endswith("/")}
        missing = [f for f in ("stops.txt", "trips.txt", "stop_times.txt") if f not in members]
        if "calendar.txt" not in members and "calendar_dates.txt" not in members:
            missing.append("calendar.txt or calendar_dates.txt")
        if missing:
            raise InputError(
                f"the GTFS feed lacks {', '.join(missing)}",
                path=path,
                hint="Use a complete GTFS zip, e.g. a regional feed from Entur",
            )

        def table(name: str) -> pd.DataFrame:
            if name not in members:
                return pd.DataFrame(columns=list(_REQUIRED_COLUMNS[name]))
            try:
                with archive.open(members[name]) as raw:
                    frame = pd.read_csv(
                        io.TextIOWrapper(raw, encoding="utf-8-sig"),
                        dtype=str,
                        keep_default_na=False,
                        skipinitialspace=True,
                    )
            except pd.errors.EmptyDataError:
                raise InputError(
                    "the file is empty (not even a header row)",
                    path=path,
                    where=name,
                    hint="Use a complete GTFS zip, e.g. a regional feed from Entur",
                ) from None
            except UnicodeDecodeError as exc:
                raise InputError(
                    f"the file is not UTF-8 text ({exc.reason} at byte {exc.start})",
                    path=path,
                    where=name,
                    hint="GTFS files must be UTF-8; download the feed again",
                ) from None
            except (zipfile.BadZipFile, zlib.error, EOFError, OSError,
                    pd.errors.ParserError) as exc:
                raise InputError(
                    f"the file could not be read; the zip may be damaged ({exc})",
                    path=path,
                    where=name,
                    hint="Download the feed again, and check that the zip opens",
                ) from None
            frame.columns = [c.strip() for c in frame.columns]
            absent = [c for c in _REQUIRED_COLUMNS.get(name, ()) if c not in frame.columns]
            if absent:
                raise InputError(
                    f"{name} lacks the column(s) {', '.join(absent)}",
                    path=path,
                    where=name,
                )
            return frame

        member = members.get("frequencies.txt")
        # An empty frequencies.txt (0 bytes, or a header only) means no headway-based trips.
        if member is not None and _member_bytes(archive, member, path).strip() and len(
            table("frequencies.txt")
        ):
            raise InputError(
                "the GTFS feed uses frequencies.txt (headway-based trips), which is not supported",
                path=path,
                hint="Use a feed with explicit stop times for every trip",
            )
        return GtfsFeed(
            path=path,
            stops=table("stops.txt"),
            trips=table("trips.txt"),
            stop_times=table("stop_times.txt"),
            calendar=table("calendar.txt"),
            calendar_dates=table("calendar_dates.txt"),
        )


def _member_bytes(archive: zipfile.ZipFile, member: str, path: Path) -> bytes:
    """The bytes of one file in the zip, or an InputError when the zip is damaged."""
    try:
        return archive.read(member)
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError) as exc:
        raise InputError(
            f"the file could not be read; the zip may be damaged ({exc})",
            path=path,
            where=member,
            hint="Download the feed again, and check that the zip opens",
        ) from None


def active_services(feed: GtfsFeed, date: dt.date) -> set[str]:
    """Service ids running on ``date``.

    Parameters
    ----------
    feed : GtfsFeed
        A feed from :func:`read_gtfs`.
    date : datetime.date
        The service date.

    Returns
    -------
    set of str

    """
    cal = feed.calendar
    ymd = date.strftime("%Y%m%d")
    on = (
        (cal[_WEEKDAYS[date.weekday()]].str.strip() == "1")
        & (cal["start_date"] <= ymd)
        & (cal["end_date"] >= ymd)
    )
    services = set(cal.loc[on, "service_id"])
    exc = feed.calendar_dates[feed.calendar_dates["date"] == ymd]
    services |= set(exc.loc[exc["exception_type"].str.strip() == "1", "service_id"])
    services -= set(exc.loc[exc["exception_type"].str.strip() == "2", "service_id"])
    return services


def busiest_weekday(feed: GtfsFeed) -> dt.date:
    """Monday-Friday in the feed's calendar with the most trips (earliest on ties).

    Parameters
    ----------
    feed : GtfsFeed
        A feed from :func:`read_gtfs`.

    Returns
    -------
    datetime.date

    """
    first, last = feed.date_range
    trips_per_service = feed.trips.groupby("service_id").size()
    best, best_count = first, -1
    day = first
    while day <= last:
        if day.weekday() < 5:
            count = int(trips_per_service.reindex(list(active_services(feed, day))).sum())
            if count > best_count:
                best, best_count = day, count
        day += dt.timedelta(days=1)
    return best


def departures_per_hour(
    feed: GtfsFeed | str | Path,
    service_date: dt.date | None = None,
    window: tuple[dt.time, dt.time] = (dt.time(7, 0), dt.time(19, 0)),
) -> gpd.GeoDataFrame:
    """Departures per hour at every stop of a feed in a time window of one service date.

    Parameters
    ----------
    feed : GtfsFeed or str or Path
        A feed or the path of a GTFS zip.
    service_date : datetime.date, optional
        The date to count. Default: :func:`busiest_weekday`.
    window : tuple of datetime.time, default (07:00, 19:00)
        Start (inclusive) and end (exclusive) of the window.

    Returns
    -------
    geopandas.GeoDataFrame
        One row per stop (stations and entrances, ``location_type`` 1-4, are left out),
        EPSG:4326 points, columns ``stop_id``, ``stop_name``, ``departures`` (int, in the
        window), ``departures_per_hour`` (float), ``service_date``, ``feed``.

    Raises
    ------
    sitefinder.errors.InputError
        ``service_date`` outside the feed's calendar, or no trip runs that day.

    """
    if not isinstance(feed, GtfsFeed):
        feed = read_gtfs(feed)
    start_s = _seconds_of(window[0])
    end_s = _seconds_of(window[1])
    if end_s <= start_s:
        raise ValueError("window end must be after window start")
    if isinstance(service_date, str):
        try:
            service_date = dt.date.fromisoformat(service_date)
        except ValueError:
            raise InputError(
                f"service date '{service_date}' is not a date",
                where="service_date",
                hint="Write it as YYYY-MM-DD, e.g. 2016-03-15",
            ) from None
    if service_date is None:
        service_date = busiest_weekday(feed)
    first, last = feed.date_range
    if not first <= service_date <= last:
        raise InputError(
            f"service date {service_date} is outside the feed's calendar ({first} to {last})",
            path=feed.path,
            hint=f"Choose a date in that range, e.g. {busiest_weekday(feed)} (its busiest weekday)",
        )
    today = active_services(feed, service_date)
    if not today:
        raise InputError(
            f"no trips run on {service_date} in this feed",
            path=feed.path,
            hint=f"Choose a day with service, e.g. {busiest_weekday(feed)}",
        )

    st = _departure_rows(feed)
    trips_service = feed.trips.set_index("trip_id")["service_id"]
    service = st["trip_id"].map(trips_service)
    counted = np.zeros(len(st), dtype=bool)
    # Day offset 0: the date's own trips. Offsets 1, 2: trips of earlier service days
    # whose times run past 24:00 (48:00) into this calendar day.
    max_offset = int(np.nanmax(st["seconds"]) // _DAY) if len(st) else 0
    for offset in range(0, max_offset + 1):
        day = service_date - dt.timedelta(days=offset)
        running = today if offset == 0 else active_services(feed, day)
        t = st["seconds"].to_numpy() - offset * _DAY
        counted |= service.isin(running).to_numpy() & (t >= start_s) & (t < end_s)
    counts = st.loc[counted, "stop_id"].value_counts()

    stops = feed.stops
    location_type = stops.get("location_type", pd.Series("", index=stops.index)).str.strip()
    stops = stops[location_type.isin(["", "0"])]
    lon = pd.to_numeric(stops["stop_lon"].str.strip(), errors="coerce")
    lat = pd.to_numeric(stops["stop_lat"].str.strip(), errors="coerce")
    bad = lon.isna() | lat.isna() | (lon.abs() > 180) | (lat.abs() > 90)
    if bad.any():
        listing = ", ".join(f"'{v}'" for v in stops.loc[bad, "stop_id"].head(5))
        raise InputError(
            f"{int(bad.sum())} stop(s) have no valid stop_lat/stop_lon "
            f"(stop_id {listing})",
            path=feed.path,
            where="stops.txt",
            hint="Coordinates must be decimal degrees (WGS84); download the feed again",
        )
    departures = counts.reindex(stops["stop_id"]).fillna(0).astype(int).to_numpy()
    hours = (end_s - start_s) / 3600
    return gpd.GeoDataFrame(
        {
            "stop_id": stops["stop_id"].to_numpy(),
            "stop_name": stops.get("stop_name", pd.Series("", index=stops.index)).to_numpy(),
            "departures": departures,
            "departures_per_hour": departures / hours,
            "service_date": service_date,
            "feed": feed.path.name,
        },
        geometry=gpd.points_from_xy(lon, lat),
        crs="EPSG:4326",
    )


def stop_frequencies(settings: TransitFrequencySettings) -> gpd.GeoDataFrame:
    """Departures per hour at the stops of all feeds of a scenario.

    Parameters
    ----------
    settings : TransitFrequencySettings
        Feeds, dates and window.

    Returns
    -------
    geopandas.GeoDataFrame
        :func:`departures_per_hour` of every feed, concatenated. A stop served by two
        feeds appears once per feed; sum them when aggregating.

    """
    frames = [
        departures_per_hour(
            source.path,
            source.service_date or settings.service_date,
            (settings.window_start, settings.window_end),
        )
        for source in settings.feeds
    ]
    return gpd.GeoDataFrame(pd.concat(frames, ignore_index=True), crs="EPSG:4326")


def parse_gtfs_time(values: pd.Series) -> np.ndarray:
    """Seconds after midnight (noon minus 12 h) of the service day; NaN when empty.

    GTFS times may exceed 24:00:00 ("25:10:00") for trips running past midnight.

    Parameters
    ----------
    values : pandas.Series of str
        Times as ``H:MM:SS`` or ``HH:MM:SS``.

    Returns
    -------
    numpy.ndarray of float

    """
    parts = values.str.strip().str.split(":", expand=True)
    if parts.shape[1] != 3:
        return np.full(len(values), np.nan)
    numbers = parts.apply(pd.to_numeric, errors="coerce")
    return (numbers[0] * 3600 + numbers[1] * 60 + numbers[2]).to_numpy(dtype=float)


def _departure_rows(feed: GtfsFeed) -> pd.DataFrame:
    """Stop times where a passenger can board, with departure time in seconds."""
    st = feed.stop_times.copy()
    st["seq"] = pd.to_numeric(st["stop_sequence"], errors="coerce")
    st = st.sort_values(["trip_id", "seq"], kind="stable").reset_index(drop=True)
    dep = st["departure_time"] if "departure_time" in st else pd.Series("", index=st.index)
    arr = st["arrival_time"] if "arrival_time" in st else pd.Series("", index=st.index)
    seconds = pd.Series(parse_gtfs_time(dep.where(dep.str.strip() != "", arr)))
    # A trip's first and last stops always carry times, so a plain positional
    # interpolation over the sorted table never mixes two trips.
    st["seconds"] = seconds.interpolate(limit_area="inside")
    last_stop = st["trip_id"].ne(st["trip_id"].shift(-1))
    pickup = st["pickup_type"].str.strip() if "pickup_type" in st else ""
    can_board = ~(pd.Series(pickup, index=st.index) == "1")
    return st.loc[~last_stop & can_board & st["seconds"].notna(), ["trip_id", "stop_id", "seconds"]]


def _seconds_of(t: dt.time) -> int:
    return t.hour * 3600 + t.minute * 60 + t.second


def _to_dates(values: pd.Series) -> list[dt.date]:
    parsed = pd.to_datetime(values.str.strip(), format="%Y%m%d", errors="coerce").dropna()
    return [d.date() for d in parsed]
