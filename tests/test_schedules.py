"""Schedule rows of §2: validity (with one warning per change) and the cached next slot."""

from __future__ import annotations

from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from exporter.health import Health
from exporter.projecting import project_cronjob
from exporter.schedules import ScheduleState

NOW = 1767225630.0  # 2026-01-01T00:00:30Z


def cronjob(schedule: str, timezone: str = "", suspend: bool = False) -> Any:
    return project_cronjob(
        {
            "metadata": {"uid": "c1", "name": "cj", "namespace": "ns"},
            "spec": {"schedule": schedule, "timeZone": timezone, "suspend": suspend},
        }
    )


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


def values(state: ScheduleState) -> dict[str, float]:
    out: list[bytes] = []
    state.write(out)
    return {
        s.name: s.value
        for f in text_string_to_metric_families(b"".join(out).decode())
        for s in f.samples
    }


def test_valid_schedule_and_next_slot_in_its_zone() -> None:
    clock = Clock()
    state = ScheduleState(Health(), clock)
    state.changed(None, cronjob("0 9 * * *", "Asia/Tokyo"))
    got = values(state)
    assert got["kube_batch_cronjob_schedule_valid"] == 1
    assert (
        got["kube_batch_cronjob_next_schedule_timestamp_seconds"] == 1767225600 + 86400
    )  # 09:00 JST = 00:00Z


def test_next_slot_moves_on_once_passed_and_after_a_schedule_change() -> None:
    clock = Clock()
    state = ScheduleState(Health(), clock)
    old = cronjob("*/5 * * * *")
    state.changed(None, old)
    assert values(state)["kube_batch_cronjob_next_schedule_timestamp_seconds"] == NOW - 30 + 300
    clock.now = NOW - 30 + 300  # the slot is now: the next one is 5 minutes on
    assert values(state)["kube_batch_cronjob_next_schedule_timestamp_seconds"] == NOW - 30 + 600
    new = cronjob("@hourly")
    state.changed(old, new)
    assert values(state)["kube_batch_cronjob_next_schedule_timestamp_seconds"] == NOW - 30 + 3600


@pytest.mark.parametrize(
    ("schedule", "timezone"),
    [
        ("0 0 L * *", ""),
        ("* * * * * *", ""),
        ("0 9 * * *", "Mars/Base"),
        ("0 0 30 2 *", ""),
    ],
)
def test_invalid_schedule_or_zone(
    schedule: str, timezone: str, caplog: pytest.LogCaptureFixture
) -> None:
    health = Health()
    state = ScheduleState(health, Clock())
    bad = cronjob(schedule, timezone)
    state.changed(None, bad)
    state.changed(bad, cronjob(schedule, timezone, suspend=True))  # unrelated change: no new log
    got = values(state)
    assert got["kube_batch_cronjob_schedule_valid"] == 0
    assert "kube_batch_cronjob_next_schedule_timestamp_seconds" not in got
    assert health.errors["bad_schedule"] == 1
    assert len([r for r in caplog.records if "cannot be used" in r.getMessage()]) == 1


def test_no_next_slot_while_suspended() -> None:
    state = ScheduleState(Health(), Clock())
    state.changed(None, cronjob("@daily", suspend=True))
    assert "kube_batch_cronjob_next_schedule_timestamp_seconds" not in values(state)


def test_deleted_cronjob_leaves_no_series() -> None:
    state = ScheduleState(Health(), Clock())
    record = cronjob("@daily")
    state.changed(None, record)
    state.changed(record, None)
    assert values(state) == {}
