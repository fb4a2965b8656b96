"""Kubernetes' cron grammar and next-slot arithmetic, as the CronJob controller computes them.

The controller parses ``spec.schedule`` with robfig/cron v3 ``ParseStandard`` and walks slots
with its ``SpecSchedule.Next``. We reproduce both rather than use croniter, whose grammar is a
superset (seconds, ``L``, ``#``, ``H``...) and whose DST handling differs, because a slot we
compute that the controller never fires would be reported as a miss.

Grammar: exactly five fields (minute 0-59, hour 0-23, day of month 1-31, month 1-12 or
JAN-DEC, day of week 0-6 or SUN-SAT, names case-insensitive); ``*`` and ``?`` for any; lists
``a,b``; ranges ``a-b``; steps ``*/n``, ``a-b/n`` and ``a/n`` (meaning ``a-max/n``); the
descriptors ``@yearly``/``@annually``, ``@monthly``, ``@weekly``, ``@daily``/``@midnight``,
``@hourly`` and ``@every <Go duration>``; an optional ``TZ=<zone>``/``CRON_TZ=<zone>`` prefix.

Day of month and day of week combine as in robfig: if either field is ``*`` or ``?`` (a step
above 1 removes that mark: ``*/2`` is a restriction), a day must match both; otherwise it must
match either (``0 0 1 * MON`` fires on the 1st *and* on Mondays).

Time zones follow Go's arithmetic, done on absolute time: on a spring-forward day a slot in
the skipped hour does not fire at all (``30 2 * * *`` skips that day); on a fall-back day a
slot in the repeated hour fires twice, once per offset (``30 1 * * *``), while a slot outside
it fires once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from exporter.parsing import parse_go_duration

STAR = 1 << 63
"""robfig's starBit: the field was ``*`` or ``?`` (with no step above 1)."""

MONTHS = {
    n: i
    for i, n in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1
    )
}
WEEKDAYS = {n: i for i, n in enumerate(("sun", "mon", "tue", "wed", "thu", "fri", "sat"))}
NO_NAMES: dict[str, int] = {}
BOUNDS: tuple[tuple[int, int, dict[str, int]], ...] = (
    (0, 59, NO_NAMES),
    (0, 23, NO_NAMES),
    (1, 31, NO_NAMES),
    (1, 12, MONTHS),
    (0, 6, WEEKDAYS),
)
DESCRIPTORS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
SEARCH_YEARS = 5
"""Like robfig, give up after five years: such a schedule never fires (``0 0 30 2 *``)."""

_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


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


def load_zone(name: str) -> tzinfo:
    """The zone for ``spec.timeZone``; empty means UTC (contract §4)."""
    if not name:
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidSchedule(f"unknown time zone {name!r}") from exc


def parse(spec: str, timezone: str = "") -> Schedule:
    """Parse ``spec.schedule`` (with ``spec.timeZone``) as Kubernetes does.

    Raises:
        InvalidSchedule: what Kubernetes would reject, an unknown zone, or a schedule that
            never fires.
    """
    text = spec.strip()
    zone_name = timezone
    if text.startswith(("TZ=", "CRON_TZ=")):  # used as-is by the controller (with a warning)
        prefix, _, text = text.partition(" ")
        zone_name = prefix.partition("=")[2]
        text = text.strip()
    zone = load_zone(zone_name)
    if text.startswith("@every "):
        try:
            seconds = int(parse_go_duration(text[len("@every ") :]))
        except ValueError as exc:
            raise InvalidSchedule(f"failed to parse duration {text!r}: {exc}") from None
        return Schedule(0, 0, 0, 0, 0, zone, every=max(1, seconds))
    if text.startswith("@"):
        if text not in DESCRIPTORS:
            raise InvalidSchedule(f"unrecognized descriptor: {text}")
        text = DESCRIPTORS[text]
    fields = text.split()
    if len(fields) != 5:
        raise InvalidSchedule(f"expected exactly 5 fields, found {len(fields)}: {spec!r}")
    minute, hour, dom, month, dow = (
        _field(expr, *bounds) for expr, bounds in zip(fields, BOUNDS, strict=True)
    )
    schedule = Schedule(minute, hour, dom, month, dow, zone)
    if schedule.next(0) is None:  # e.g. "0 0 30 2 *": the controller reports InvalidSchedule
        raise InvalidSchedule(f"schedule {spec!r} never fires")
    return schedule


def _field(expr: str, low: int, high: int, names: dict[str, int]) -> int:
    bits = 0
    for part in expr.split(","):
        bits |= _range(part, low, high, names)
    return bits


def _range(expr: str, low: int, high: int, names: dict[str, int]) -> int:
    range_and_step = expr.split("/")
    low_and_high = range_and_step[0].split("-")
    single = len(low_and_high) == 1
    extra = 0
    if low_and_high[0] in ("*", "?"):
        start, end, extra = low, high, STAR
    else:
        start = _int_or_name(low_and_high[0], names)
        if len(low_and_high) == 1:
            end = start
        elif len(low_and_high) == 2:
            end = _int_or_name(low_and_high[1], names)
        else:
            raise InvalidSchedule(f"too many hyphens: {expr}")
    if len(range_and_step) == 1:
        step = 1
    elif len(range_and_step) == 2:
        step = _non_negative(range_and_step[1])
        if single:  # "N/step" means "N-max/step"
            end = high
        if step > 1:
            extra = 0
    else:
        raise InvalidSchedule(f"too many slashes: {expr}")
    if start < low:
        raise InvalidSchedule(f"beginning of range ({start}) below minimum ({low}): {expr}")
    if end > high:
        raise InvalidSchedule(f"end of range ({end}) above maximum ({high}): {expr}")
    if start > end:
        raise InvalidSchedule(f"beginning of range ({start}) beyond end of range ({end}): {expr}")
    if step == 0:
        raise InvalidSchedule(f"step of range should be a positive number: {expr}")
    return sum(1 << i for i in range(start, end + 1, step)) | extra


def _int_or_name(text: str, names: dict[str, int]) -> int:
    if names and text.lower() in names:
        return names[text.lower()]
    return _non_negative(text)


def _non_negative(text: str) -> int:
    body = text[1:] if text.startswith("+") else text
    if not body.isdigit() or not body.isascii():
        raise InvalidSchedule(f"failed to parse int from {text!r}")
    return int(body)


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
