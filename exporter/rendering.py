"""Exposition text, rendered once per object change and concatenated per scrape.

This is kube-state-metrics' store pattern: a metric family is declared once as data
(:class:`Family`: name, help, type and the function that computes its samples from a record),
and :class:`RenderedFamilies` keeps, for each family, the already-escaped text lines of every
object keyed by UID. A scrape is then a ``b"".join`` per family; no label is escaped or sorted
at scrape time, which keeps a 100k-series scrape in milliseconds instead of the ~0.6 s that
client_python's ``generate_latest`` needs.

Families whose value depends on the clock (``*_running_seconds``) are :class:`LiveFamily`: they
render at scrape time, but only for the records their ``applies`` predicate keeps.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from exporter.caching import Record

Labels = tuple[tuple[str, str], ...]
Sample = tuple[str, Labels, float]
"""Name suffix (``""``, or ``_bucket``/``_sum``/``_count`` for histograms), labels beyond the
object's identity labels, and the value."""

R = TypeVar("R", bound=Record)


def escape_label_value(value: str) -> str:
    r"""Escape a label value for the text formats: backslash, double quote, newline."""
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def format_value(value: float) -> str:
    """Format a sample value as Prometheus expects (integers without a fraction)."""
    value = float(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    return repr(value)


def label_pairs(labels: Labels) -> str:
    """Render ``a="x",b="y"``; an object's identity is escaped once and shared by its families."""
    return ",".join(f'{k}="{escape_label_value(v)}"' for k, v in labels)


def format_labels(labels: Labels) -> str:
    """Render ``{a="x",b="y"}`` (empty string when there are no labels)."""
    return "{" + label_pairs(labels) + "}" if labels else ""


def header(name: str, help_text: str, kind: str, openmetrics: bool = False) -> bytes:
    """The ``# HELP`` and ``# TYPE`` lines of a family.

    OpenMetrics names a counter family without its ``_total`` suffix (the samples keep it);
    the classic text format uses the sample name.
    """
    if openmetrics and kind == "counter":
        name = name.removesuffix("_total")
    doc = help_text.replace("\\", "\\\\").replace("\n", "\\n")
    return f"# HELP {name} {doc}\n# TYPE {name} {kind}\n".encode()


@dataclass(frozen=True, slots=True)
class Family(Generic[R]):
    """A metric family computed from one record; rendered when the record changes."""

    name: str
    help: str
    type: str
    generate: Callable[[R], Iterable[Sample]]


@dataclass(frozen=True, slots=True)
class LiveFamily(Generic[R]):
    """A one-series-per-object family whose value depends on the scrape time.

    Its label set is rendered when the record changes; a scrape only formats the value, and
    only for the records ``applies`` keeps (for example the Jobs still running).
    """

    name: str
    help: str
    type: str
    value: Callable[[R, float], float]
    applies: Callable[[R], bool]


def render(name: str, identity: str, samples: Iterable[Sample]) -> bytes:
    """Render samples of one family for one object into exposition lines.

    ``identity`` is the object's labels already escaped by :func:`label_pairs`: every Job has
    some twenty families, and escaping its identity once per change instead of once per
    family was the largest saving in the watch-event profile.
    """
    lines = []
    for suffix, extra, value in samples:
        pairs = ",".join(filter(None, (identity, label_pairs(extra))))
        labels = "{" + pairs + "}" if pairs else ""
        lines.append(f"{name}{suffix}{labels} {format_value(value)}\n")
    return "".join(lines).encode()


def histogram_samples(
    buckets: Sequence[float], counts: Sequence[int], total: float, labels: Labels = ()
) -> list[Sample]:
    """Cumulative ``_bucket`` samples (with ``+Inf``), then ``_sum`` and ``_count``.

    ``counts`` holds one non-cumulative count per bucket plus one for values above the last.
    """
    out: list[Sample] = []
    running = 0
    for bound, count in zip(buckets, counts, strict=False):
        running += count
        # le="1.0" as client_python writes it, so series from both stay one time series
        out.append(("_bucket", (*labels, ("le", repr(float(bound)))), float(running)))
    running += counts[-1]
    out.append(("_bucket", (*labels, ("le", "+Inf")), float(running)))
    out.append(("_sum", labels, total))
    out.append(("_count", labels, float(running)))
    return out


class RenderedFamilies(Generic[R]):
    """Pre-rendered lines per family and object; a cache subscriber and a scrape writer."""

    def __init__(
        self,
        families: Sequence[Family[R]],
        live: Sequence[LiveFamily[R]],
        identity: Callable[[R], Labels],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._families = tuple(families)
        self._live = tuple(live)
        self._identity = identity
        self._clock = clock
        self._headers = {
            om: [header(f.name, f.help, f.type, om) for f in families] for om in (False, True)
        }
        self._live_headers = [header(f.name, f.help, f.type) for f in live]
        self._lines: list[dict[str, bytes]] = [{} for _ in families]
        self._live_lines: list[dict[str, tuple[bytes, R]]] = [{} for _ in live]
        """Per live family: UID -> (``name{labels} `` prefix, record)."""

    def changed(self, old: R | None, new: R | None) -> None:
        """Re-render an object's families (or drop them when it was deleted)."""
        if new is None:
            if old is not None:
                for lines in self._lines:
                    lines.pop(old.uid, None)
                for live in self._live_lines:
                    live.pop(old.uid, None)
            return
        identity = label_pairs(self._identity(new))
        for family, lines in zip(self._families, self._lines, strict=True):
            text = render(family.name, identity, family.generate(new))
            if text:
                lines[new.uid] = text
            else:
                lines.pop(new.uid, None)
        for live_family, live in zip(self._live, self._live_lines, strict=True):
            if live_family.applies(new):
                labels = "{" + identity + "}" if identity else ""
                live[new.uid] = (f"{live_family.name}{labels} ".encode(), new)
            else:
                live.pop(new.uid, None)

    def write(self, out: list[bytes], openmetrics: bool = False) -> None:
        """Append every family (header, then each object's lines) to ``out``."""
        for head, lines in zip(self._headers[openmetrics], self._lines, strict=True):
            out.append(head)
            out.append(b"".join(lines.values()))
        now = self._clock()
        for head, family, live in zip(
            self._live_headers, self._live, self._live_lines, strict=True
        ):
            out.append(head)
            value = family.value
            out.append(
                b"".join(
                    prefix + format_value(value(record, now)).encode() + b"\n"
                    for prefix, record in live.values()
                )
            )
