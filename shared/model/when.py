"""When a report happened: after dark or in daylight, on a weekday or at the weekend.

Both are read from the report's place and its UTC instant, never from the client's clock or the
offset it sent: a phone's zone is wherever its owner set it, and a report backfilled from home
is about the place it names.

Light is the sun's elevation at the place and instant (astral), ``dark`` below civil twilight
(-6 degrees, refraction included, as astral's own dusk and dawn are). The elevation is asked,
not sunrise and sunset: those do not exist on a polar day or night (astral raises there), while
the elevation is defined everywhere, so Longyearbyen's midnight sun and its December noon need
no special case.

Days are Saturday and Sunday on the place's local calendar: the zone comes from the coordinates
(timezonefinder, offline, boundaries from its timezonefinder-data package) and the date from
zoneinfo, so a DST change or the date line moves the weekday as it does for the people there.
Where timezonefinder names no zone (its data covers the oceans with Etc/GMT zones, so this is
for points it cannot place), the nautical zone of the longitude stands in: 15 degrees an hour,
centred on Greenwich. POSIX names those zones with the sign inverted, ``Etc/GMT+10`` being ten
hours behind UTC (longitude -150).

Cost, measured with `.venv/bin/python` on this 2-core box (5,000 random points and instants,
after 200 warm-up calls; the first call timed from a fresh interpreter): the first call is
~125-190 ms, nearly all of it importing timezonefinder (~25 ms) and building its finder
(~100 ms: it maps its data files and reads their indexes; astral imports in ~2 ms); a warm call
is ~15 us (the elevation ~8 us, the zone lookup ~2 us, the local date the rest). So the finder
is built once per process and kept (``_finder``), the zones are kept too (``_zone``: without
it a warm call was ~44 us), and the imports wait for the first call, which keeps this module
importable where astral and timezonefinder are not installed (the web image has neither). A
worker that builds the finder before its pool forks shares the mapped files with every child.
"""

from __future__ import annotations

import functools
import math
import threading
from datetime import UTC, datetime
from typing import TYPE_CHECKING, NamedTuple
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from timezonefinder import TimezoneFinder

LIGHTS = ("daylight", "dark")
DAYS = ("weekdays", "weekends")

# Civil twilight ends when the sun's centre is 6 degrees below the horizon: past it, street
# lighting is what people see by.
CIVIL_TWILIGHT_DEG = -6.0


class When(NamedTuple):
    light: str
    days: str


_finder_lock = threading.Lock()
_finder_instance: TimezoneFinder | None = None


def _finder() -> TimezoneFinder:
    """The one TimezoneFinder of the process: building one costs ~0.1 s, a lookup ~2 us."""
    global _finder_instance  # noqa: PLW0603 - one finder per process, built on first use
    finder = _finder_instance
    if finder is None:
        with _finder_lock:
            finder = _finder_instance
            if finder is None:
                from timezonefinder import TimezoneFinder  # noqa: PLC0415 - not in the web

                finder = _finder_instance = TimezoneFinder()
    return finder


def nautical_zone(lon: float) -> str:
    """The Etc/GMT zone of a longitude, for points no country's zone covers.

    Rounded half up (not Python's half-to-even round), so a point on a zone's edge always lands
    on the same side; longitude 180 is the -12 zone and -180 the +12, the two halves of the
    zone the date line splits.
    """
    hours = math.floor(lon / 15.0 + 0.5)
    hours = max(-12, min(12, hours))
    if hours == 0:
        return "Etc/GMT"
    # POSIX signs: east of Greenwich (ahead of UTC) is "Etc/GMT-N".
    return f"Etc/GMT{-hours:+d}"


def zone_name(lat: float, lon: float) -> str:
    name = _finder().timezone_at(lat=lat, lng=lon)
    return name if name else nautical_zone(lon)


# zoneinfo keeps only the 8 zones used last (and those still referenced): reports from all over
# the world would reread a zone file on most calls. The names are a closed set (~450), so all
# are kept.
_zone = functools.cache(ZoneInfo)


def light(lat: float, lon: float, at: datetime) -> str:
    from astral import Observer  # noqa: PLC0415 - the web image has no astral
    from astral.sun import elevation  # noqa: PLC0415

    sun = elevation(Observer(latitude=lat, longitude=lon), _utc(at))
    return "dark" if sun < CIVIL_TWILIGHT_DEG else "daylight"


def days(lat: float, lon: float, at: datetime) -> str:
    local = _utc(at).astimezone(_zone(zone_name(lat, lon)))
    return "weekends" if local.weekday() >= 5 else "weekdays"


def when(lat: float, lon: float, at: datetime) -> When:
    """``at`` must be aware: a naive time would be read in the server's zone, silently."""
    return When(light(lat, lon, at), days(lat, lon, at))


def _utc(at: datetime) -> datetime:
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("when() needs an aware datetime (UTC), got a naive one")
    return at.astimezone(UTC)
