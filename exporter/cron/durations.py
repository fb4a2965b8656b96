"""Go's duration syntax (``time.ParseDuration``): what Kubernetes users already write.

Flags, threshold annotations and ``@every`` schedules all take it (``45m``, ``1h30m``,
``90s``), so it is parsed in one place.
"""

from __future__ import annotations

import re

_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "μs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")
MAX_SECONDS = (2**63 - 1) / 1e9
"""Go's durations are int64 nanoseconds (about 292 years); Go refuses anything longer."""


def parse_go_duration(text: str) -> float:
    """Return the seconds in a Go duration string such as ``1h30m`` or ``90s``.

    Raises:
        ValueError: when the text is not a Go duration, or one longer than Go's (about 292
            years). Negative durations are rejected too: every duration we accept (grace,
            thresholds, ``@every``) is a length of time.
    """
    s = text.strip()
    if s == "0":
        return 0.0
    if not s or s[0] in "+-":
        raise ValueError(f"not a positive Go duration: {text!r}")
    pos, total = 0, 0.0
    while pos < len(s):
        m = _PART.match(s, pos)
        if not m:
            raise ValueError(f"not a Go duration: {text!r}")
        total += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if not total <= MAX_SECONDS:  # also catches inf from a number of thousands of digits
        raise ValueError(f"Go duration out of range: {text[:40]!r}")
    return total


def format_go_duration(seconds: float) -> str:
    """The shortest Go duration for ``seconds`` in whole units (``24h``, ``5m``, ``90s``).

    Used to show defaults in ``--help``; the result parses back to the same value.
    """
    if seconds == 0:
        return "0s"
    for unit, size in (("h", 3600.0), ("m", 60.0), ("s", 1.0), ("ms", 1e-3)):
        count = seconds / size
        if abs(count - round(count)) < 1e-9:
            return f"{round(count)}{unit}"
    return f"{seconds:g}s"
