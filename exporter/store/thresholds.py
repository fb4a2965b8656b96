"""Per-workload alert thresholds from ``kube-batch-exporter/*`` annotations (contract §5).

Declared once: the annotation, the ``threshold`` label it is exported under, and how its value
is read. These are the only annotations whose values the exporter ever reads.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from exporter.cron.durations import parse_go_duration

PREFIX = "kube-batch-exporter/"


def _parse_count(text: str) -> float:
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"expected a positive integer, got {text!r}")
    return float(text)


def _parse_off(text: str) -> float:
    if text != "off":
        raise ValueError('the only value is "off"')
    return 1.0


@dataclass(frozen=True, slots=True)
class Threshold:
    """One threshold annotation."""

    annotation: str
    label: str
    """The ``threshold`` label value of ``kube_batch_alert_threshold``."""
    parse: Callable[[str], float]


THRESHOLDS: tuple[Threshold, ...] = (
    Threshold(PREFIX + "max-duration", "max_duration_seconds", parse_go_duration),
    Threshold(PREFIX + "max-consecutive-failures", "max_consecutive_failures", _parse_count),
    Threshold(PREFIX + "missed-grace", "missed_grace_seconds", parse_go_duration),
    Threshold(PREFIX + "max-start-delay", "max_start_delay_seconds", parse_go_duration),
    Threshold(PREFIX + "max-suspended", "max_suspended_seconds", parse_go_duration),
    Threshold(PREFIX + "alerts", "alerts_off", _parse_off),
)
MISSED_GRACE = "missed_grace_seconds"


@dataclass(frozen=True, slots=True)
class Thresholds:
    """The parsed thresholds of one object; compared as a whole to see whether they changed."""

    values: tuple[tuple[str, float], ...] = ()
    """(``threshold`` label, value), sorted by label."""
    problems: tuple[tuple[str, str], ...] = ()
    """(annotation, why) for each annotation whose value could not be parsed, for the log."""

    def get(self, label: str) -> float | None:
        """The value of one threshold, None when unset or unusable."""
        return next((v for k, v in self.values if k == label), None)


NONE = Thresholds()
"""Shared by every object without threshold annotations (almost all Jobs)."""


_BY_ANNOTATION = {t.annotation: t for t in THRESHOLDS}


def read_thresholds(annotations: Mapping[str, object]) -> Thresholds:
    """Parse the threshold annotations of an object; unparseable ones become problems."""
    present = _BY_ANNOTATION.keys() & annotations.keys()  # one set operation for most Jobs
    if not present:
        return NONE
    values: list[tuple[str, float]] = []
    problems: list[tuple[str, str]] = []
    for threshold in THRESHOLDS:
        text = annotations.get(threshold.annotation) if threshold.annotation in present else None
        if not isinstance(text, str):
            continue
        try:
            values.append((threshold.label, threshold.parse(text.strip())))
        except ValueError as exc:
            problems.append((threshold.annotation, str(exc)))
    if not values and not problems:
        return NONE
    return Thresholds(tuple(sorted(values)), tuple(problems))
