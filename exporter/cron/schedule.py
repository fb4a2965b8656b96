"""A parsed schedule and its next-slot arithmetic, as robfig/cron v3 ``SpecSchedule.Next``.

Day of month and day of week combine as in robfig: if either field is ``*`` or ``?`` (a step
above 1 removes that mark: ``*/2`` is a restriction), a day must match both; otherwise it must
match either (``0 0 1 * MON`` fires on the 1st *and* on Mondays).

Time zones follow Go's arithmetic, done on absolute time: on a spring-forward day a slot in
the skipped hour does not fire at all (``30 2 * * *`` skips that day); on a fall-back day a
slot in the repeated hour fires twice, once per offset (``30 1 * * *``), while a slot outside
it fires once.
"""

from __future__ import annotations

import functools
import itertools
import math
from dataclasses import dataclass
from datetime import date, datetime, tzinfo

STAR = 1 << 63
"""robfig's starBit: the field was ``*`` or ``?`` (with no step above 1)."""

SEARCH_YEARS = 5
"""Like robfig, give up after five years: such a schedule never fires (``0 0 30 2 *``)."""

_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()

INTERVAL_FROM = date(2024, 1, 1)
"""A Monday: where :func:`interval` starts counting days, so every process agrees."""


class InvalidSchedule(ValueError):
    """The schedule or its time zone cannot be used; the message says why."""


@dataclass(frozen=True, slots=True)
class Schedule:
    """A parsed schedule: field bit sets (or a constant delay) and the zone they apply in."""

    minute: int
    hour: int
    dom: int
    month: int
    dow: int
    zone: tzinfo
    every: int = 0
    """Seconds between slots for ``@every``; 0 for field schedules."""

    def next(self, after: float) -> float | None:
        """The first slot strictly after ``after`` (Unix seconds), or None if none in 5 years."""
        if self.every:
            return float(math.floor(after) + self.every)
        return _next(self, math.floor(after) + 1)

    def slots(self, after: float, until: float) -> list[float]:
        """Every slot in (after, until]."""
        out: list[float] = []
        t = self.next(after)
        while t is not None and t <= until:
            out.append(t)
            t = self.next(t)
        return out


@functools.lru_cache(maxsize=4096)
def interval(schedule: Schedule) -> float | None:
    """The longest gap between two consecutive slots, in seconds of wall-clock time.

    The "no success for two intervals" alert needs one number per CronJob, and for a schedule
    like ``*/5 9-17 * * 1-5`` the gap that matters is the weekend, not five minutes: the
    longest gap is what a healthy CronJob can go without a run. It is computed from the field
    sets rather than by stepping through slots (``next`` costs up to a millisecond, and a
    fleet has many distinct schedules): the longest gap within a day, and between the last
    slot of each matching day and the first of the next, over 400 days from a fixed Monday
    (five years for a leap day). A daylight-saving change makes one real gap an hour longer
    or shorter.
    """
    if schedule.every:
        return float(schedule.every)
    minutes = [
        h * 60 + m
        for h in range(24)
        if schedule.hour >> h & 1
        for m in range(60)
        if schedule.minute >> m & 1
    ]
    start = INTERVAL_FROM.toordinal()
    days = _matching_days(schedule, start, start + 400)
    if len(days) < 2:  # a leap day: look further
        days = _matching_days(schedule, start, start + SEARCH_YEARS * 366)
    if not minutes or len(days) < 2:
        return None
    within = max((b - a for a, b in itertools.pairwise(minutes)), default=0)
    across = max(b - a for a, b in itertools.pairwise(days)) * 1440
    return 60.0 * max(within, across + minutes[0] - minutes[-1])


def _matching_days(s: Schedule, first: int, end: int) -> list[int]:
    """The proleptic ordinals in [first, end) of the days the schedule fires on."""
    both = bool(s.dom & STAR or s.dow & STAR)
    out = []
    for ordinal in range(first, end):
        day = date.fromordinal(ordinal)
        if not (1 << day.month) & s.month:
            continue
        dom = bool((1 << day.day) & s.dom)
        dow = bool((1 << day.isoweekday() % 7) & s.dow)
        if (dom and dow) if both else (dom or dow):
            out.append(ordinal)
    return out


# -- Go time arithmetic -------------------------------------------------------------------------


def _offset(unix: int, zone: tzinfo) -> int:
    # utcoffset() of the instant converted into the zone (tzinfo.utcoffset(dt) would read a
    # UTC datetime's wall clock as local time)
    delta = datetime.fromtimestamp(unix, zone).utcoffset()
    return int(delta.total_seconds()) if delta is not None else 0


def _go_date(y: int, mo: int, d: int, h: int, mi: int, s: int, zone: tzinfo) -> int:
    """Go's ``time.Date`` in ``zone``, as Unix seconds.

    Normalises overflowing months and days, and resolves a skipped or repeated wall time the
    way Go does: with the offset in force at the wall time read as UTC, corrected once.
    """
    y, mo = y + (mo - 1) // 12, (mo - 1) % 12 + 1
    days = date(y, mo, 1).toordinal() + d - 1 - _EPOCH_ORDINAL
    wall = days * 86400 + h * 3600 + mi * 60 + s
    offset = _offset(wall, zone)
    if offset:
        utc = wall - offset
        if _offset(utc, zone) != offset:
            offset = _offset(utc, zone)
    return wall - offset


@dataclass(frozen=True, slots=True)
class _Fields:
    year: int
    month: int
    day: int
    hour: int
    minute: int
    second: int
    weekday: int
    """0 = Sunday, as in Go."""


def _fields(unix: int, zone: tzinfo) -> _Fields:
    t = datetime.fromtimestamp(unix, zone)
    return _Fields(t.year, t.month, t.day, t.hour, t.minute, t.second, t.isoweekday() % 7)


def _day_matches(s: Schedule, f: _Fields) -> bool:
    dom = bool((1 << f.day) & s.dom)
    dow = bool((1 << f.weekday) & s.dow)
    if s.dom & STAR or s.dow & STAR:
        return dom and dow
    return dom or dow


def _next(s: Schedule, t: int) -> float | None:
    """robfig/cron v3 ``SpecSchedule.Next`` from ``t`` (already the next whole second)."""
    zone = s.zone
    added = False
    f = _fields(t, zone)
    year_limit = f.year + SEARCH_YEARS
    while True:  # robfig's WRAP label
        f = _fields(t, zone)
        if f.year > year_limit:
            return None
        wrapped = False
        while not (1 << f.month) & s.month:
            if not added:
                added = True
                t = _go_date(f.year, f.month, 1, 0, 0, 0, zone)
                f = _fields(t, zone)
            t = _go_date(f.year, f.month + 1, f.day, f.hour, f.minute, f.second, zone)
            f = _fields(t, zone)
            if f.month == 1:
                wrapped = True
                break
        if wrapped:
            continue
        while not _day_matches(s, f):
            if not added:
                added = True
                t = _go_date(f.year, f.month, f.day, 0, 0, 0, zone)
                f = _fields(t, zone)
            t = _go_date(f.year, f.month, f.day + 1, f.hour, f.minute, f.second, zone)
            f = _fields(t, zone)
            if f.hour != 0:  # midnight moved by a DST change: back to (or on to) midnight
                t += (24 - f.hour) * 3600 if f.hour > 12 else -f.hour * 3600
                f = _fields(t, zone)
            if f.day == 1:
                wrapped = True
                break
        if wrapped:
            continue
        while not (1 << f.hour) & s.hour:
            if not added:
                added = True
                t = _go_date(f.year, f.month, f.day, f.hour, 0, 0, zone)
                f = _fields(t, zone)
            t += 3600
            f = _fields(t, zone)
            if f.hour == 0:
                wrapped = True
                break
        if wrapped:
            continue
        while not (1 << f.minute) & s.minute:
            if not added:
                added = True
                t -= t % 60
                f = _fields(t, zone)
            t += 60
            f = _fields(t, zone)
            if f.minute == 0:
                wrapped = True
                break
        if wrapped:
            continue
        if f.second != 0:  # the standard parser's seconds field is {0}
            if not added:
                added = True
            t += 60 - f.second
            continue
        return float(t)
