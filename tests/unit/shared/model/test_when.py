"""shared/model/when.py against facts known apart from the code under test.

The light boundary is checked against astral's own civil dawn and dusk, solved for separately
from the elevation the module asks (a root of the elevation curve, not the same call), a few
minutes either side; the weekdays against zones and calendars anyone can look up.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from astral import Observer
from astral.sun import dawn, dusk, sunrise

from shared.model import when as when_module
from shared.model.when import DAYS, LIGHTS, When, nautical_zone, when, zone_name

ROOT = Path(__file__).resolve().parents[4]

LONDON = (51.5074, -0.1278)
BERLIN = (52.52, 13.405)
SYDNEY = (-33.8688, 151.2093)
NEW_YORK = (40.7128, -74.0060)
TROMSO = (69.6492, 18.9553)
LONGYEARBYEN = (78.2232, 15.6267)
APIA = (-13.8333, -171.7667)  # Samoa, UTC+13 since it skipped 30 December 2011
PAGO_PAGO = (-14.2756, -170.7020)  # American Samoa, UTC-11: the same islands, a day behind
KIRITIMATI = (1.8721, -157.4278)  # UTC+14
HONOLULU = (21.3069, -157.8583)  # UTC-10, nearly the same longitude
MID_PACIFIC = (0.0, -150.0)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def local(place: tuple[float, float], zone: str, *when_: int) -> datetime:
    """A wall-clock time at ``place`` as the UTC instant ``when`` is given."""
    assert zone_name(*place) == zone
    year, month, day, hour, minute = when_
    return datetime(year, month, day, hour, minute, tzinfo=ZoneInfo(zone)).astimezone(UTC)


def test_the_vocabularies() -> None:
    assert LIGHTS == ("daylight", "dark")
    assert DAYS == ("weekdays", "weekends")
    result = when(*LONDON, utc(2026, 6, 21, 12))
    assert isinstance(result, When)
    assert result.light in LIGHTS and result.days in DAYS


# -- light ---------------------------------------------------------------------------------


def test_london_at_midsummer_noon_is_daylight_and_past_midnight_dark() -> None:
    assert when(*LONDON, utc(2026, 6, 21, 12)).light == "daylight"
    assert when(*LONDON, utc(2026, 6, 21, 23, 30)).light == "dark"


def test_london_civil_dusk_at_midsummer_is_about_ten_past_ten_local() -> None:
    # Almanacs give the end of civil twilight in London on 21 June at ~22:05-22:10 BST.
    assert when(*LONDON, utc(2026, 6, 21, 20, 55)).light == "daylight"
    assert when(*LONDON, utc(2026, 6, 21, 21, 25)).light == "dark"


def test_london_is_dark_at_five_in_a_december_afternoon() -> None:
    # sunset ~15:53 GMT, civil dusk ~16:35: the commute home is after dark
    assert when(*LONDON, utc(2026, 12, 21, 15, 30)).light == "daylight"
    assert when(*LONDON, utc(2026, 12, 21, 17, 0)).light == "dark"


@pytest.mark.parametrize("place", [BERLIN, SYDNEY, NEW_YORK], ids=["berlin", "sydney", "nyc"])
@pytest.mark.parametrize("day", [date(2026, 6, 21), date(2026, 12, 21), date(2026, 3, 20)])
def test_the_boundary_is_civil_dawn_and_dusk(place: tuple[float, float], day: date) -> None:
    observer = Observer(latitude=place[0], longitude=place[1])
    margin = timedelta(minutes=3)
    start, end = dawn(observer, day), dusk(observer, day)
    assert when(*place, start - margin).light == "dark"
    assert when(*place, start + margin).light == "daylight"
    assert when(*place, end - margin).light == "daylight"
    assert when(*place, end + margin).light == "dark"


@pytest.mark.parametrize("day", [date(2026, 6, 21), date(2026, 12, 21)])
def test_sunrise_itself_is_well_inside_daylight(day: date) -> None:
    """Twilight before sunrise counts as daylight: the sun is up to 6 degrees below."""
    observer = Observer(latitude=BERLIN[0], longitude=BERLIN[1])
    rise = sunrise(observer, day)
    assert when(*BERLIN, rise - timedelta(minutes=5)).light == "daylight"
    assert when(*BERLIN, rise + timedelta(minutes=5)).light == "daylight"


def test_polar_day_at_local_midnight_is_daylight() -> None:
    midnight = local(TROMSO, "Europe/Oslo", 2026, 6, 22, 0, 0)
    assert when(*TROMSO, midnight).light == "daylight"
    midnight = local(LONGYEARBYEN, "Arctic/Longyearbyen", 2026, 6, 22, 0, 0)
    assert when(*LONGYEARBYEN, midnight).light == "daylight"


def test_polar_night_at_local_noon_is_dark_where_even_twilight_stops() -> None:
    noon = local(LONGYEARBYEN, "Arctic/Longyearbyen", 2026, 12, 21, 12, 0)
    assert when(*LONGYEARBYEN, noon).light == "dark"


def test_tromso_polar_night_still_has_civil_twilight_at_noon() -> None:
    """The sun stays below the horizon all day, but only ~3 degrees: it is not dark at noon."""
    noon = local(TROMSO, "Europe/Oslo", 2026, 12, 21, 12, 0)
    assert when(*TROMSO, noon).light == "daylight"
    assert when(*TROMSO, noon + timedelta(hours=6)).light == "dark"


def test_the_polar_cases_need_no_sunrise() -> None:
    """Where sunrise does not exist astral raises; ``when`` never asks for it."""
    observer = Observer(latitude=LONGYEARBYEN[0], longitude=LONGYEARBYEN[1])
    with pytest.raises(ValueError):
        sunrise(observer, date(2026, 12, 21))
    assert when(*LONGYEARBYEN, utc(2026, 12, 21, 11)).light == "dark"


def test_the_southern_summer_is_the_northern_winter() -> None:
    # 19:30 local on 21 December: Sydney (AEDT) in sunshine, Berlin (CET) long dark
    assert when(*SYDNEY, local(SYDNEY, "Australia/Sydney", 2026, 12, 21, 19, 30)).light == (
        "daylight"
    )
    assert when(*BERLIN, local(BERLIN, "Europe/Berlin", 2026, 12, 21, 19, 30)).light == "dark"


# -- days ----------------------------------------------------------------------------------


def test_berlin_friday_night_and_the_first_hour_of_saturday_in_summer() -> None:
    friday = local(BERLIN, "Europe/Berlin", 2026, 7, 3, 23, 30)  # CEST, UTC+2
    saturday = local(BERLIN, "Europe/Berlin", 2026, 7, 4, 0, 30)
    assert saturday == utc(2026, 7, 3, 22, 30)  # still Friday in UTC
    assert when(*BERLIN, friday).days == "weekdays"
    assert when(*BERLIN, saturday).days == "weekends"


def test_the_same_utc_clock_time_is_saturday_in_summer_and_friday_in_winter() -> None:
    assert when(*BERLIN, utc(2026, 7, 3, 22, 30)).days == "weekends"  # 00:30 CEST Saturday
    assert when(*BERLIN, utc(2026, 12, 4, 22, 30)).days == "weekdays"  # 23:30 CET Friday
    assert when(*BERLIN, utc(2026, 12, 4, 23, 30)).days == "weekends"  # 00:30 CET Saturday


def test_new_york_sunday_evening_is_monday_in_utc() -> None:
    sunday = local(NEW_YORK, "America/New_York", 2026, 7, 5, 22, 0)  # EDT, UTC-4
    assert sunday.weekday() == 0  # Monday, 02:00 UTC
    assert when(*NEW_YORK, sunday).days == "weekends"
    friday = local(NEW_YORK, "America/New_York", 2026, 7, 10, 21, 0)
    assert friday.weekday() == 5  # Saturday, 01:00 UTC
    assert when(*NEW_YORK, friday).days == "weekdays"


def test_samoa_and_american_samoa_are_a_day_apart() -> None:
    instant = utc(2026, 7, 3, 12)  # Friday noon UTC
    assert zone_name(*APIA) == "Pacific/Apia"
    assert zone_name(*PAGO_PAGO) == "Pacific/Pago_Pago"
    assert when(*APIA, instant).days == "weekends"  # Saturday 01:00
    assert when(*PAGO_PAGO, instant).days == "weekdays"  # Friday 01:00


def test_kiritimati_and_honolulu_share_a_meridian_but_not_a_date() -> None:
    instant = utc(2026, 7, 5, 12)  # Sunday noon UTC
    assert zone_name(*KIRITIMATI) == "Pacific/Kiritimati"
    assert when(*KIRITIMATI, instant).days == "weekdays"  # Monday 02:00
    assert when(*HONOLULU, instant).days == "weekends"  # Sunday 02:00


def test_the_offset_the_instant_carries_does_not_matter() -> None:
    """A client's offset names its clock, not the place: the same instant, the same answer."""
    instant = utc(2026, 7, 3, 22, 30)
    tokyo = instant.astimezone(ZoneInfo("Asia/Tokyo"))  # Saturday 07:30 there
    assert when(*NEW_YORK, tokyo) == when(*NEW_YORK, instant)
    assert when(*NEW_YORK, tokyo).days == "weekdays"  # Friday 18:30 in New York


def test_a_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        when(*LONDON, datetime(2026, 6, 21, 12))


# -- the open sea ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("lon", "zone"),
    [
        (0.0, "Etc/GMT"),
        (7.4, "Etc/GMT"),
        (7.5, "Etc/GMT-1"),
        (-7.6, "Etc/GMT+1"),
        (-150.0, "Etc/GMT+10"),
        (150.0, "Etc/GMT-10"),
        (179.9, "Etc/GMT-12"),
        (180.0, "Etc/GMT-12"),
        (-180.0, "Etc/GMT+12"),
    ],
)
def test_the_nautical_zone_has_the_inverted_posix_sign(lon: float, zone: str) -> None:
    assert nautical_zone(lon) == zone
    ZoneInfo(zone)  # a zone zoneinfo knows


@pytest.mark.parametrize("place", [(0.0, -150.0), (0.0, -30.0), (-40.0, 90.0), (30.0, -40.0)])
def test_the_fallback_agrees_with_the_ocean_zones_of_the_data(place: tuple[float, float]) -> None:
    assert zone_name(*place).startswith("Etc/GMT")
    assert nautical_zone(place[1]) == zone_name(*place)


def test_where_no_zone_is_found_the_longitude_decides(monkeypatch: pytest.MonkeyPatch) -> None:
    class NoZone:
        def timezone_at(self, *, lng: float, lat: float) -> str | None:
            return None

    monkeypatch.setattr(when_module, "_finder_instance", NoZone())
    assert zone_name(*MID_PACIFIC) == "Etc/GMT+10"
    friday_night = utc(2026, 7, 4, 8)  # Saturday UTC, Friday 22:00 at UTC-10
    assert when(*MID_PACIFIC, friday_night).days == "weekdays"
    assert when(*MID_PACIFIC, friday_night + timedelta(hours=2)).days == "weekends"


# -- the finder and the imports -----------------------------------------------------------------


def test_one_finder_however_many_threads_ask(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(when_module, "_finder_instance", None)
    found: list[object] = []
    barrier = threading.Barrier(4)

    def ask() -> None:
        barrier.wait()
        found.append(when_module._finder())

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(found) == 4 and len({id(finder) for finder in found}) == 1
    assert when_module._finder() is found[0]


def test_the_module_imports_without_astral_or_timezonefinder() -> None:
    """The web image has neither: importing the module must not need them."""
    probe = (
        "import sys\n"
        "for name in ('astral', 'timezonefinder', 'timezonefinder_data'):\n"
        "    sys.modules[name] = None\n"
        "import shared.model.when as w\n"
        "print(w.LIGHTS, w.DAYS)\n"
        "try:\n"
        "    w.when(0.0, 0.0, __import__('datetime').datetime.now(w.UTC))\n"
        "except ImportError:\n"
        "    print('lazy')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.split("\n")[1] == "lazy"
