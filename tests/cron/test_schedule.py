"""The Kubernetes cron grammar and slot arithmetic, checked against robfig/cron v3.

Expected slots were produced by robfig/cron v3.0.1 (``ParseStandard`` + ``Next``, the library
of the CronJob controller) and are written here in each schedule's local time. The DST rows
show the controller's behaviour: a slot in the skipped hour does not fire that day; a slot in
the repeated hour fires twice.
"""

from __future__ import annotations

import itertools
import random
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from exporter.cron.grammar import parse
from exporter.cron.schedule import InvalidSchedule, interval

ROBFIG = [
    (
        "*/7 * * * *",
        "",
        "2026-01-01T10:50:00+00:00",
        [
            "2026-01-01T10:56:00+00:00",
            "2026-01-01T11:00:00+00:00",
            "2026-01-01T11:07:00+00:00",
            "2026-01-01T11:14:00+00:00",
        ],
    ),
    (
        "@every 90m",
        "",
        "2026-01-01T10:50:30+00:00",
        [
            "2026-01-01T12:20:30+00:00",
            "2026-01-01T13:50:30+00:00",
            "2026-01-01T15:20:30+00:00",
            "2026-01-01T16:50:30+00:00",
        ],
    ),
    (
        "0 0 31 * *",
        "",
        "2026-01-31T12:00:00+00:00",
        [
            "2026-03-31T00:00:00+00:00",
            "2026-05-31T00:00:00+00:00",
            "2026-07-31T00:00:00+00:00",
            "2026-08-31T00:00:00+00:00",
        ],
    ),
    (
        "0 0 29 2 *",
        "",
        "2025-03-01T00:00:00+00:00",
        [
            "2028-02-29T00:00:00+00:00",
            "2032-02-29T00:00:00+00:00",
            "2036-02-29T00:00:00+00:00",
            "2040-02-29T00:00:00+00:00",
        ],
    ),
    (
        "59 23 31 12 *",
        "Asia/Tokyo",
        "2026-06-01T09:00:00+09:00",
        [
            "2026-12-31T23:59:00+09:00",
            "2027-12-31T23:59:00+09:00",
            "2028-12-31T23:59:00+09:00",
            "2029-12-31T23:59:00+09:00",
        ],
    ),
    (
        "30 2 * * *",
        "America/New_York",
        "2026-03-07T12:00:00-05:00",
        [
            "2026-03-09T02:30:00-04:00",
            "2026-03-10T02:30:00-04:00",
            "2026-03-11T02:30:00-04:00",
            "2026-03-12T02:30:00-04:00",
        ],
    ),
    (
        "30 2 * * *",
        "Europe/Berlin",
        "2026-03-28T12:00:00+01:00",
        [
            "2026-03-30T02:30:00+02:00",
            "2026-03-31T02:30:00+02:00",
            "2026-04-01T02:30:00+02:00",
            "2026-04-02T02:30:00+02:00",
        ],
    ),
    (
        "0 * * * *",
        "America/New_York",
        "2026-03-08T00:30:00-05:00",
        [
            "2026-03-08T01:00:00-05:00",
            "2026-03-08T03:00:00-04:00",
            "2026-03-08T04:00:00-04:00",
            "2026-03-08T05:00:00-04:00",
        ],
    ),
    (
        "0 * * * *",
        "Europe/Berlin",
        "2026-10-25T01:30:00+02:00",
        [
            "2026-10-25T02:00:00+02:00",
            "2026-10-25T02:00:00+01:00",
            "2026-10-25T03:00:00+01:00",
            "2026-10-25T04:00:00+01:00",
        ],
    ),
    (
        "30 1 * * *",
        "America/New_York",
        "2026-10-31T12:00:00-04:00",
        [
            "2026-11-01T01:30:00-04:00",
            "2026-11-01T01:30:00-05:00",
            "2026-11-02T01:30:00-05:00",
            "2026-11-03T01:30:00-05:00",
        ],
    ),
    (
        "30 2 * * *",
        "Europe/Berlin",
        "2026-10-24T12:00:00+02:00",
        [
            "2026-10-25T02:30:00+02:00",
            "2026-10-25T02:30:00+01:00",
            "2026-10-26T02:30:00+01:00",
            "2026-10-27T02:30:00+01:00",
        ],
    ),
    (
        "0 3 * * *",
        "Europe/Berlin",
        "2026-10-24T12:00:00+02:00",
        [
            "2026-10-25T03:00:00+01:00",
            "2026-10-26T03:00:00+01:00",
            "2026-10-27T03:00:00+01:00",
            "2026-10-28T03:00:00+01:00",
        ],
    ),
    (
        "*/20 1-2 * * *",
        "America/New_York",
        "2026-11-01T00:50:00-04:00",
        [
            "2026-11-01T01:00:00-04:00",
            "2026-11-01T01:20:00-04:00",
            "2026-11-01T01:40:00-04:00",
            "2026-11-01T01:00:00-05:00",
        ],
    ),
    (
        "0 0 * * *",
        "America/Santiago",
        "2026-09-05T12:00:00-04:00",
        [
            "2026-09-07T00:00:00-03:00",
            "2026-09-08T00:00:00-03:00",
            "2026-09-09T00:00:00-03:00",
            "2026-09-10T00:00:00-03:00",
        ],
    ),
    (
        "0 2 * * *",
        "Australia/Lord_Howe",
        "2026-10-03T12:00:00+10:30",
        [
            "2026-10-05T02:00:00+11:00",
            "2026-10-06T02:00:00+11:00",
            "2026-10-07T02:00:00+11:00",
            "2026-10-08T02:00:00+11:00",
        ],
    ),
    (
        "0 0 1 * MON",
        "",
        "2026-01-01T00:00:00+00:00",
        [
            "2026-01-05T00:00:00+00:00",
            "2026-01-12T00:00:00+00:00",
            "2026-01-19T00:00:00+00:00",
            "2026-01-26T00:00:00+00:00",
        ],
    ),
    (
        "0 0 */2 * MON",
        "",
        "2026-02-01T00:00:00+00:00",
        [
            "2026-02-02T00:00:00+00:00",
            "2026-02-03T00:00:00+00:00",
            "2026-02-05T00:00:00+00:00",
            "2026-02-07T00:00:00+00:00",
        ],
    ),
    (
        "0 0 * * MON-FRI",
        "",
        "2026-01-02T12:00:00+00:00",
        [
            "2026-01-05T00:00:00+00:00",
            "2026-01-06T00:00:00+00:00",
            "2026-01-07T00:00:00+00:00",
            "2026-01-08T00:00:00+00:00",
        ],
    ),
    (
        "15 10 ? * SUN",
        "",
        "2026-01-01T00:00:00+00:00",
        [
            "2026-01-04T10:15:00+00:00",
            "2026-01-11T10:15:00+00:00",
            "2026-01-18T10:15:00+00:00",
            "2026-01-25T10:15:00+00:00",
        ],
    ),
    (
        "0 12 1-7 jan-MAR *",
        "",
        "2026-01-06T13:00:00+00:00",
        [
            "2026-01-07T12:00:00+00:00",
            "2026-02-01T12:00:00+00:00",
            "2026-02-02T12:00:00+00:00",
            "2026-02-03T12:00:00+00:00",
        ],
    ),
    (
        "5/15 * * * *",
        "",
        "2026-01-01T00:51:00+00:00",
        [
            "2026-01-01T01:05:00+00:00",
            "2026-01-01T01:20:00+00:00",
            "2026-01-01T01:35:00+00:00",
            "2026-01-01T01:50:00+00:00",
        ],
    ),
    (
        "@weekly",
        "",
        "2026-01-01T00:00:00+00:00",
        [
            "2026-01-04T00:00:00+00:00",
            "2026-01-11T00:00:00+00:00",
            "2026-01-18T00:00:00+00:00",
            "2026-01-25T00:00:00+00:00",
        ],
    ),
    (
        "@monthly",
        "Europe/Berlin",
        "2026-01-15T01:00:00+01:00",
        [
            "2026-02-01T00:00:00+01:00",
            "2026-03-01T00:00:00+01:00",
            "2026-04-01T00:00:00+02:00",
            "2026-05-01T00:00:00+02:00",
        ],
    ),
    (
        "@yearly",
        "",
        "2026-01-15T00:00:00+00:00",
        [
            "2027-01-01T00:00:00+00:00",
            "2028-01-01T00:00:00+00:00",
            "2029-01-01T00:00:00+00:00",
            "2030-01-01T00:00:00+00:00",
        ],
    ),
    (
        "@hourly",
        "Asia/Kolkata",
        "2026-01-15T05:40:00+05:30",
        [
            "2026-01-15T06:00:00+05:30",
            "2026-01-15T07:00:00+05:30",
            "2026-01-15T08:00:00+05:30",
            "2026-01-15T09:00:00+05:30",
        ],
    ),
    (
        "@midnight",
        "America/New_York",
        "2026-03-07T07:00:00-05:00",
        [
            "2026-03-08T00:00:00-05:00",
            "2026-03-09T00:00:00-04:00",
            "2026-03-10T00:00:00-04:00",
            "2026-03-11T00:00:00-04:00",
        ],
    ),
    (
        "@every 1h30m",
        "",
        "2026-01-01T00:00:00+00:00",
        [
            "2026-01-01T01:30:00+00:00",
            "2026-01-01T03:00:00+00:00",
            "2026-01-01T04:30:00+00:00",
            "2026-01-01T06:00:00+00:00",
        ],
    ),
    (
        "TZ=Europe/Berlin 0 9 * * *",
        "",
        "2026-01-01T01:00:00+01:00",
        [
            "2026-01-01T09:00:00+01:00",
            "2026-01-02T09:00:00+01:00",
            "2026-01-03T09:00:00+01:00",
            "2026-01-04T09:00:00+01:00",
        ],
    ),
]


def unix(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


@pytest.mark.parametrize(("spec", "zone", "start", "expected"), ROBFIG)
def test_next_slots_match_the_controller(
    spec: str, zone: str, start: str, expected: list[str]
) -> None:
    schedule = parse(spec, zone)
    got, t = [], unix(start)
    for _ in expected:
        nxt = schedule.next(t)
        assert nxt is not None
        got.append(nxt)
        t = nxt
    assert got == [unix(e) for e in expected]


def test_dst_days_named_explicitly() -> None:
    ny = parse("30 1 * * *", "America/New_York")
    fall_back = ny.slots(unix("2026-11-01T00:00:00-04:00"), unix("2026-11-01T23:00:00-05:00"))
    assert [
        datetime.fromtimestamp(s, ZoneInfo("America/New_York")).isoformat() for s in fall_back
    ] == ["2026-11-01T01:30:00-04:00", "2026-11-01T01:30:00-05:00"]
    berlin = parse("30 2 * * *", "Europe/Berlin")
    spring = berlin.slots(unix("2026-03-29T00:00:00+01:00"), unix("2026-03-29T23:00:00+02:00"))
    assert spring == []


@pytest.mark.parametrize(
    "spec",
    [
        "0 0 30 2 *",
        "* * * * * *",
        "0 0 L * *",
        "0 0 1#2 * *",
        "H * * * *",
        "0 0 * * 7",
        "60 * * * *",
        "*/0 * * * *",
        "@foo",
        "0 0 * *",
        "1-2-3 * * * *",
        "5-1 * * * *",
        "-1 * * * *",
        "@every nope",
        "",
        "0 0 ? * ? *",
        "0 0 1,,2 * *",
        "1/2/3 * * * *",
    ],
)
def test_what_kubernetes_rejects_is_invalid(spec: str) -> None:
    with pytest.raises(InvalidSchedule):
        parse(spec)


def test_unknown_time_zone_is_invalid() -> None:
    with pytest.raises(InvalidSchedule, match="unknown time zone"):
        parse("0 * * * *", "Mars/Olympus_Mons")
    with pytest.raises(InvalidSchedule, match="unknown time zone"):
        parse("TZ=Nowhere/Atall 0 * * * *")


@pytest.mark.parametrize(
    "zone",
    ["A" * 5000, "America", "../../etc/passwd", "Europe/\x00", "Europe/\ud800"],
)
def test_zone_names_the_file_system_refuses_are_unknown_zones(zone: str) -> None:
    # once: OSError (File name too long, Is a directory) escaped from the zone loader
    with pytest.raises(InvalidSchedule, match="unknown time zone"):
        parse("0 * * * *", zone)


@pytest.mark.parametrize(
    "spec",
    [
        "@every " + "9" * 400 + "h",  # once: OverflowError converting inf to an int
        "@every 2562048h",  # longer than Go's longest duration (about 292 years)
        "9" * 5000 + " * * * *",  # once: int() refused a 5,000-digit number
        "0 " + "1" * 20 + " * * *",
    ],
)
def test_numbers_no_schedule_could_use_are_invalid(spec: str) -> None:
    with pytest.raises(InvalidSchedule):
        parse(spec)


def test_descriptors_equal_their_fields() -> None:
    pairs = [
        ("@yearly", "0 0 1 1 *"),
        ("@annually", "0 0 1 1 *"),
        ("@monthly", "0 0 1 * *"),
        ("@weekly", "0 0 * * 0"),
        ("@daily", "0 0 * * *"),
        ("@midnight", "0 0 * * *"),
        ("@hourly", "0 * * * *"),
    ]
    for descriptor, fields in pairs:
        assert parse(descriptor) == parse(fields)


def _matches(spec_fields: list[set[int]], dom_or_dow_star: bool, local: datetime) -> bool:
    minute, hour, dom, month, dow = spec_fields
    day = (
        (local.day in dom and local.isoweekday() % 7 in dow)
        if dom_or_dow_star
        else (local.day in dom or local.isoweekday() % 7 in dow)
    )
    return local.minute in minute and local.hour in hour and local.month in month and day


@pytest.mark.parametrize("seed", range(20))
def test_property_slots_increase_and_match_the_schedule(seed: int) -> None:
    rng = random.Random(seed)
    zone = rng.choice(["", "Europe/Berlin", "America/New_York", "Asia/Kolkata"])
    minute = sorted(rng.sample(range(60), rng.randint(1, 4)))
    hour = sorted(rng.sample(range(24), rng.randint(1, 6)))
    dom_star = rng.random() < 0.7
    spec = f"{','.join(map(str, minute))} {','.join(map(str, hour))} " + (
        "* * *" if dom_star else f"{rng.randint(1, 28)} * {rng.randint(0, 6)}"
    )
    schedule = parse(spec, zone)
    fields = [
        set(minute),
        set(hour),
        set(range(1, 32)) if dom_star else {int(spec.split()[2])},
        set(range(1, 13)),
        set(range(7)) if dom_star else {int(spec.split()[4])},
    ]
    tz = ZoneInfo(zone) if zone else UTC
    start = unix("2026-01-01T00:00:00+00:00") + rng.randint(0, 300 * 86400)
    slots = schedule.slots(start, start + 20 * 86400)
    assert slots, spec
    assert all(a < b for a, b in itertools.pairwise(slots))
    for slot in slots:
        assert slot % 60 == 0
        assert _matches(fields, dom_star, datetime.fromtimestamp(slot, tz)), (spec, slot)


@pytest.mark.parametrize(
    ("spec", "hours"),
    [
        ("* * * * *", 1 / 60),
        ("@every 90m", 1.5),
        ("17 * * * *", 1),
        ("0 9 * * 1-5", 72),  # Friday to Monday
        ("*/5 9-17 * * 1-5", 63 + 5 / 60),  # Friday 17:55 to Monday 09:00
        ("0 0 * * 0", 168),
        ("0 0 1 * *", 31 * 24),
        ("0 0 31 * *", 61 * 24),  # 31 March to 31 May
        ("0 0 13 * 5", 7 * 24),  # either: Fridays, or the 13th
        ("0 0 29 2 *", 1461 * 24),  # leap day to leap day
    ],
)
def test_interval_is_the_longest_gap_between_slots(spec: str, hours: float) -> None:
    assert interval(parse(spec, "")) == pytest.approx(hours * 3600)


def test_interval_agrees_with_stepping_through_the_slots() -> None:
    # 40 seeded schedules with a weekly cycle (day of week, hours and minutes restricted):
    # the longest gap between consecutive slots over 15 days, stepped with next(), in UTC.
    rng = random.Random(7)
    start = datetime(2026, 1, 5, tzinfo=UTC).timestamp()  # a Monday
    for _ in range(40):
        minutes = ",".join(map(str, sorted(rng.sample(range(60), rng.randint(1, 3)))))
        hours = ",".join(map(str, sorted(rng.sample(range(24), rng.randint(1, 4)))))
        days = ",".join(map(str, sorted(rng.sample(range(7), rng.randint(1, 7)))))
        schedule = parse(f"{minutes} {hours} * * {days}", "")
        slots = [schedule.next(start - 1)]
        while (slot := slots[-1]) is not None and slot < start + 15 * 86400:
            slots.append(schedule.next(slot))
        gaps = [b - a for a, b in itertools.pairwise(slots) if a is not None and b is not None]
        assert interval(schedule) == max(gaps), schedule
