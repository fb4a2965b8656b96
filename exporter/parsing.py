"""Parsers for the value formats Kubernetes and Go tools use.

Durations in flags and annotations follow Go's ``time.ParseDuration`` because that is what
Kubernetes users already write (``45m``, ``1h30m``); timestamps are RFC 3339 as the API server
emits them.
"""

from __future__ import annotations

import re
from datetime import datetime

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


def parse_go_duration(text: str) -> float:
    """Return the seconds in a Go duration string such as ``1h30m`` or ``90s``.

    Raises:
        ValueError: when the text is not a Go duration. Negative durations are rejected too:
            every duration we accept (grace, thresholds) is a length of time.
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
    return total


def parse_timestamp(text: object) -> float | None:
    """Return Unix seconds for an RFC 3339 timestamp, or None when absent or malformed.

    Malformed timestamps are treated like absent ones: a metric without a series is better than
    a crash or a wrong value, and the API server never sends them in practice.
    """
    if not isinstance(text, str) or not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None
