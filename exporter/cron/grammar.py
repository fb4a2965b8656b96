"""Kubernetes' cron grammar: ``spec.schedule`` and ``spec.timeZone`` as the controller reads them.

The controller parses schedules with robfig/cron v3 ``ParseStandard``. We reproduce it rather
than use croniter, whose grammar is a superset (seconds, ``L``, ``#``, ``H``...) and whose DST
handling differs, because a slot we compute that the controller never fires would be reported
as a miss.

Grammar: exactly five fields (minute 0-59, hour 0-23, day of month 1-31, month 1-12 or
JAN-DEC, day of week 0-6 or SUN-SAT, names case-insensitive); ``*`` and ``?`` for any; lists
``a,b``; ranges ``a-b``; steps ``*/n``, ``a-b/n`` and ``a/n`` (meaning ``a-max/n``); the
descriptors ``@yearly``/``@annually``, ``@monthly``, ``@weekly``, ``@daily``/``@midnight``,
``@hourly`` and ``@every <Go duration>``; an optional ``TZ=<zone>``/``CRON_TZ=<zone>`` prefix.
"""

from __future__ import annotations

import functools
from datetime import UTC, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from exporter.cron.durations import parse_go_duration
from exporter.cron.schedule import STAR, InvalidSchedule, Schedule

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


def load_zone(name: str) -> tzinfo:
    """The zone for ``spec.timeZone``; empty means UTC (contract §4)."""
    if not name:
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:  # OSError: "America", "A"*999
        raise InvalidSchedule(f"unknown time zone {name[:80]!r}") from exc


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
            raise InvalidSchedule(f"failed to parse duration {text[:80]!r}: {exc}") from None
        return Schedule(0, 0, 0, 0, 0, zone, every=max(1, seconds))
    if text.startswith("@"):
        if text not in DESCRIPTORS:
            raise InvalidSchedule(f"unrecognized descriptor: {text[:80]!r}")
        text = DESCRIPTORS[text]
    fields = text.split()
    if len(fields) != 5:
        raise InvalidSchedule(f"expected exactly 5 fields, found {len(fields)}: {spec[:80]!r}")
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
    # no field is above 59: a longer number is as wrong, and int() of thousands of digits
    # would take time (Python refuses beyond 4,300)
    if not body.isdigit() or not body.isascii() or len(body) > 9:
        raise InvalidSchedule(f"failed to parse int from {text[:20]!r}")
    return int(body)


@functools.lru_cache(maxsize=4096)
def parse_cached(spec: str, timezone: str) -> Schedule | InvalidSchedule:
    """Parse once per distinct (schedule, zone); the error is returned, not raised.

    Thousands of CronJobs share a handful of schedules, and a CronJob is projected again on
    every status change, so the cache turns parsing into a lookup.
    """
    try:
        return parse(spec, timezone)
    except InvalidSchedule as exc:
        return exc
