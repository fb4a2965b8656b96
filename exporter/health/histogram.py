"""Bucket counts of one histogram series, as the trackers accumulate them."""

from __future__ import annotations

from collections.abc import Sequence


class Histogram:
    """Counts of one series: one count per bucket bound plus one above the last bound."""

    __slots__ = ("buckets", "counts", "total")

    def __init__(self, buckets: Sequence[float]) -> None:
        self.buckets = buckets
        self.counts = [0] * (len(buckets) + 1)
        self.total = 0.0

    def observe(self, value: float) -> None:
        """Count one value in the first bucket whose bound is >= value."""
        index = next((i for i, b in enumerate(self.buckets) if value <= b), len(self.buckets))
        self.counts[index] += 1
        self.total += value

    @property
    def empty(self) -> bool:
        """Nothing observed yet."""
        return not any(self.counts)
