"""Where croniter and the CronJob controller disagree, pinned case by case.

croniter is the obvious library for cron in Python, and the user listed it. The exporter does
not use it at run time: a slot it computes that the controller never fires is reported as a
missed run, and a schedule it accepts that the controller rejects is a CronJob that silently
never runs. This test is the evidence, kept true: each case states what the controller (our
port of robfig/cron v3, itself checked against robfig) and croniter do. When a croniter
release changes one, the case fails and the README's paragraph needs a look.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter

from exporter.cron.grammar import parse
from exporter.cron.schedule import InvalidSchedule

REJECTED = "rejected"


@dataclass(frozen=True)
class Case:
    """A schedule from a start time: the first slots by each, or REJECTED."""

    why: str
    spec: str
    start: str
    controller: tuple[str, ...] | str
    croniter: tuple[str, ...] | str
    zone: str = ""


def controller_slots(spec: str, zone: str, start: datetime, n: int) -> tuple[str, ...] | str:
    try:
        schedule = parse(spec, zone)
    except InvalidSchedule:
        return REJECTED
    out, t = [], start.timestamp()
    for _ in range(n):
        nxt = schedule.next(t)
        if nxt is None:
            return REJECTED
        t = nxt
        out.append(datetime.fromtimestamp(t, start.tzinfo).isoformat())
    return tuple(out)


def croniter_slots(spec: str, start: datetime, n: int) -> tuple[str, ...] | str:
    try:
        it = croniter(spec, start)
        return tuple(it.get_next(datetime).isoformat() for _ in range(n))
    except (ValueError, KeyError):  # croniter's errors derive from ValueError
        return REJECTED


DEC = "2026-12-01T00:00:00+00:00"
CASES = [
    Case(
        "Sunday as 7: the controller's day of week is 0-6, so this CronJob never runs",
        "0 0 * * 7",
        DEC,
        REJECTED,
        ("2026-12-06T00:00:00+00:00", "2026-12-13T00:00:00+00:00"),
    ),
    Case(
        "a sixth field: croniter reads it as seconds, Kubernetes accepts five fields only",
        "0 0 1 * * *",
        DEC,
        REJECTED,
        ("2026-12-01T00:00:01+00:00", "2026-12-01T00:00:02+00:00"),
    ),
    Case(
        "L (last day of the month) is a croniter extension",
        "0 0 L * *",
        DEC,
        REJECTED,
        ("2026-12-31T00:00:00+00:00", "2027-01-31T00:00:00+00:00"),
    ),
    Case(
        "# (nth weekday of the month) is a croniter extension",
        "0 0 * * 5#3",
        DEC,
        REJECTED,
        ("2026-12-18T00:00:00+00:00", "2027-01-15T00:00:00+00:00"),
    ),
    Case(
        "a wrapping range: croniter wraps 5-1 to Fri..Mon, the controller rejects it",
        "0 0 * * 5-1",
        DEC,
        REJECTED,
        ("2026-12-04T00:00:00+00:00", "2026-12-05T00:00:00+00:00"),
    ),
    Case(
        "@every is the controller's (robfig's); croniter does not know it",
        "@every 90m",
        DEC,
        ("2026-12-01T01:30:00+00:00", "2026-12-01T03:00:00+00:00"),
        REJECTED,
    ),
    Case(
        "a TZ= prefix is read by the controller (Kubernetes rejects it at admission since "
        "1.27, but older objects keep it); croniter does not know it",
        "TZ=Europe/Paris 0 9 * * *",
        DEC,
        ("2026-12-01T08:00:00+00:00", "2026-12-02T08:00:00+00:00"),
        REJECTED,
    ),
    Case(
        "spring forward: the controller skips a slot in the hour that does not exist; "
        "croniter moves it to 03:00",
        "30 2 * * *",
        "2026-03-07T12:00:00-05:00",
        ("2026-03-09T02:30:00-04:00", "2026-03-10T02:30:00-04:00"),
        ("2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00"),
        zone="America/New_York",
    ),
    # Agreements, so that a croniter change towards the controller shows up too.
    Case(
        "fall back: both fire twice in the repeated hour",
        "30 1 * * *",
        "2026-10-31T12:00:00-04:00",
        ("2026-11-01T01:30:00-04:00", "2026-11-01T01:30:00-05:00"),
        ("2026-11-01T01:30:00-04:00", "2026-11-01T01:30:00-05:00"),
        zone="America/New_York",
    ),
    Case(
        "day of month and day of week both restricted: both take either",
        "0 0 13 * 5",
        DEC,
        ("2026-12-04T00:00:00+00:00", "2026-12-11T00:00:00+00:00"),
        ("2026-12-04T00:00:00+00:00", "2026-12-11T00:00:00+00:00"),
    ),
    Case(
        "a stepped day of month is not a star: both take either",
        "0 0 */2 * 1",
        DEC,
        ("2026-12-03T00:00:00+00:00", "2026-12-05T00:00:00+00:00"),
        ("2026-12-03T00:00:00+00:00", "2026-12-05T00:00:00+00:00"),
    ),
    Case(
        "a schedule that never fires: both refuse it",
        "0 0 30 2 *",
        DEC,
        REJECTED,
        REJECTED,
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.spec for c in CASES])
def test_each_case_is_as_pinned(case: Case) -> None:
    start = datetime.fromisoformat(case.start).astimezone(ZoneInfo(case.zone or "UTC"))
    assert controller_slots(case.spec, case.zone, start, 2) == case.controller, case.why
    assert croniter_slots(case.spec, start, 2) == case.croniter, case.why


def test_they_agree_on_plain_five_field_schedules_in_utc() -> None:
    # The common ground: numbers, lists, ranges and steps within range, in UTC. 300 seeded
    # schedules, 5 slots each; every disagreement above lies outside it.
    rng = random.Random(19)

    def field(low: int, high: int) -> str:
        kind = rng.randrange(4)
        a, b = sorted(rng.sample(range(low, high + 1), 2))
        return ("*", str(a), f"{a}-{b}", f"*/{rng.randint(2, 7)}")[kind]

    start = datetime(2026, 12, 1, tzinfo=UTC)
    for _ in range(300):
        spec = " ".join((field(0, 59), field(0, 23), field(1, 28), field(1, 12), field(0, 6)))
        assert controller_slots(spec, "", start, 5) == croniter_slots(spec, start, 5), spec
