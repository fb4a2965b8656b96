from __future__ import annotations

import pytest

from exporter.cron.durations import parse_go_duration
from exporter.store.projecting import parse_timestamp


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("0", 0.0),
        ("45m", 2700.0),
        ("1h30m", 5400.0),
        ("1.5h", 5400.0),
        ("90s", 90.0),
        ("500ms", 0.5),
        ("2h45m30.5s", 9930.5),
        ("1us", 1e-6),
    ],
)
def test_go_durations(text: str, seconds: float) -> None:
    assert parse_go_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    "text", ["", "10", "-5m", "1d", "m", "1h 30m", "abc", "2562048h", "9" * 400 + "h"]
)
def test_invalid_go_durations(text: str) -> None:
    with pytest.raises(ValueError, match="Go duration"):
        parse_go_duration(text)


def test_timestamps() -> None:
    assert parse_timestamp("2026-01-01T00:00:00Z") == 1767225600.0
    assert parse_timestamp("2026-01-01T01:00:00+01:00") == 1767225600.0
    assert parse_timestamp("yesterday") is None
    assert parse_timestamp(None) is None
