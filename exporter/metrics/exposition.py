"""Exposition text, rendered once per record change and concatenated per scrape.

This is kube-state-metrics' store pattern. A metric family is declared once, as data
(:class:`Family`: name, type, help, its labels and the function that computes its samples
from one record), families of one kind of record form a :class:`Group` with the
:class:`Identity` labels they share, and :class:`RenderedFamilies` keeps, for each family, the
already-escaped text lines of every record keyed by UID. A scrape is then a ``b"".join`` per
family; no label is escaped or sorted at scrape time, which keeps a 100k-series scrape in
milliseconds instead of the ~0.6 s that client_python's ``generate_latest`` needs.

Families whose value depends on the clock (``*_running_seconds``, ``*_overdue_seconds``) are
:class:`LiveFamily`: their label sets are rendered when the record changes, and a scrape only
formats the value, for the records their ``applies`` predicate keeps.

Counter and histogram series are *born at zero* (:class:`Births`): ``increase()`` cannot see
a series' first sample, so a new series is served at 0 for ``--new-series-delay`` (at least one
scrape interval) and only then at its true value. Without it the first failure of a new owner,
the one on-call cares about most, would be invisible to every rate and increase.
"""

from __future__ import annotations

import asyncio
import heapq
import math
import struct
import time
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Generic, Literal, TypeVar

from exporter.health.histogram import Histogram
from exporter.health.state import ErrorKind, Health
from exporter.store.caching import Record

MetricType = Literal["gauge", "counter", "histogram"]
Labels = tuple[tuple[str, str], ...]
Sample = tuple[str, Labels, float]
"""Name suffix (``""``, or ``_bucket``/``_sum``/``_count`` for histograms), labels beyond the
record's identity labels, and the value."""

SeriesKey = tuple[str, Labels]
"""A family name and a series' labels without ``le``: the buckets, sum and count of one
histogram series are born together."""

R = TypeVar("R", bound=Record)
T = TypeVar("T", contravariant=True)


@dataclass(frozen=True, slots=True)
class Identity(Generic[T]):
    """The labels naming what a series is about (contract §1), and how a record fills them."""

    labels: tuple[str, ...]
    values: Callable[[T], tuple[str, ...]]


@dataclass(frozen=True, slots=True)
class Family(Generic[T]):
    """A metric family computed from one record; rendered when the record changes."""

    name: str
    type: MetricType
    help: str
    labels: tuple[str, ...]
    """Labels beyond the identity (a histogram's ``le`` is implied)."""
    generate: Callable[[T], Iterable[Sample]]


@dataclass(frozen=True, slots=True)
class LiveFamily(Generic[T]):
    """A one-series-per-record gauge whose value depends on the scrape time."""

    name: str
    type: Literal["gauge"]
    help: str
    value: Callable[[T, float], float]
    applies: Callable[[T], bool]
    """Which records have a series (for example only the Jobs still running)."""
    labels: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Group(Generic[R]):
    """The families of one kind of record, in the order a scrape writes them."""

    identity: Identity[R]
    families: tuple[Family[R], ...]
    live: tuple[LiveFamily[R], ...] = ()

    @property
    def all(self) -> tuple[Family[R] | LiveFamily[R], ...]:
        """Every family of the group, in exposition order."""
        return (*self.families, *self.live)


COMPRESS_INLINE_BYTES = 256 * 1024
"""Families smaller than this are compressed on the loop (about 2 ms): a thread hop for each
would cost more than it spares."""
GZIP_LEVEL = 6
"""zlib's default: a family is compressed once per change, so the better ratio is cheap."""
_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
"""Deflate, no flags, no time, unknown OS (RFC 1952)."""
_FINAL_BLOCK = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS).flush()
"""An empty final deflate block: what ends a stream of sync-flushed fragments."""
_CRC_POLY = 0xEDB88320
"""CRC-32's polynomial, bit-reversed as zlib computes it."""


def _crc_multiply(a: int, b: int) -> int:
    """The product of a and b modulo the CRC polynomial, in the CRC's reversed bit order."""
    product, bit = 0, 1 << 31
    while a:
        if a & bit:
            product ^= b
            a ^= bit
        bit >>= 1
        b = (b >> 1) ^ _CRC_POLY if b & 1 else b >> 1
    return product


_X_TO_2_TO_K = [1 << 30]  # x^1
for _ in range(31):
    _X_TO_2_TO_K.append(_crc_multiply(_X_TO_2_TO_K[-1], _X_TO_2_TO_K[-1]))


def crc32_combine(first: int, second: int, second_size: int) -> int:
    """The CRC-32 of two byte strings joined, from each one's CRC and the second's length.

    CRC-32 is linear: the first string's CRC, shifted by 8 x ``second_size`` bits (a product
    with x to that power, modulo the polynomial), XOR the second's. zlib has this as
    ``crc32_combine``; Python's zlib module does not export it.
    """
    power, k = 1 << 31, 3  # x^0; bit k of the length weighs x^(2^k) bits
    while second_size:
        if second_size & 1:
            power = _crc_multiply(_X_TO_2_TO_K[k & 31], power)
        second_size >>= 1
        k += 1
    return _crc_multiply(power, first) ^ second


@dataclass(frozen=True, slots=True)
class Deflated:
    """A piece of a scrape body compressed on its own, with its CRC-32 and length.

    A deflate stream can be cut into fragments compressed separately: each comes from a
    fresh compressor and ends with a sync flush (byte-aligned, not final), so any sequence of
    them is one valid stream. A family keeps its Deflated until one of its lines changes, so a
    gzip scrape compresses only the families that changed since the last one, and holds no
    second plain copy of them.
    """

    fragment: bytes
    crc: int
    size: int

    @classmethod
    def of(cls, plain: bytes) -> Deflated:
        """Compress ``plain`` as one fragment."""
        compressor = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS)
        fragment = compressor.compress(plain) + compressor.flush(zlib.Z_SYNC_FLUSH)
        return cls(fragment, zlib.crc32(plain), len(plain))


class Body:
    """A scrape body being written: plain, or as one gzip member.

    One member, not one per piece: concatenated members are legal, and Go's and aiohttp's
    readers take them, but a reader that stops after the first member would see a truncated
    scrape without any error. One member leaves no reader in doubt.
    """

    def __init__(self, compress: bool = False) -> None:
        self.compress = compress
        self._parts: list[bytes] = [_GZIP_HEADER] if compress else []
        self._crc = self._size = 0

    def write(self, plain: bytes) -> None:
        """Append bytes (compressed now, when gzipped)."""
        if not plain:
            return
        if not self.compress:
            self._parts.append(plain)
            return
        piece = Deflated.of(plain)
        self._parts.append(piece.fragment)
        self._crc = zlib.crc32(plain, self._crc)
        self._size += piece.size

    def write_deflated(self, piece: Deflated) -> None:
        """Append a piece compressed before (gzipped bodies only)."""
        if piece.size:
            self._parts.append(piece.fragment)
            self._crc = crc32_combine(self._crc, piece.crc, piece.size)
            self._size += piece.size

    def finish(self) -> bytes:
        """The whole body."""
        if self.compress:
            self._parts += [_FINAL_BLOCK, struct.pack("<II", self._crc, self._size & 0xFFFFFFFF)]
        return b"".join(self._parts)


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
    """Render ``a="x",b="y"``; a record's identity is escaped once and shared by its families."""
    return ",".join(f'{k}="{escape_label_value(v)}"' for k, v in labels)


def header(name: str, help_text: str, kind: MetricType, openmetrics: bool = False) -> bytes:
    """The ``# HELP`` and ``# TYPE`` lines of a family.

    OpenMetrics names a counter family without its ``_total`` suffix (the samples keep it);
    the classic text format uses the sample name. OpenMetrics escapes ``"`` in HELP as well;
    the text format does not, and a parser of it would keep the backslash.
    """
    doc = help_text.replace("\\", "\\\\").replace("\n", "\\n")
    if openmetrics:
        doc = doc.replace('"', '\\"')
        if kind == "counter":
            name = name.removesuffix("_total")
    return f"# HELP {name} {doc}\n# TYPE {name} {kind}\n".encode()


def render(name: str, identity: str, samples: Iterable[Sample]) -> bytes:
    """Render samples of one family for one record into exposition lines.

    ``identity`` is the record's labels already escaped by :func:`label_pairs`: every Job has
    some twenty families, and escaping its identity once per change instead of once per
    family was the largest saving in the watch-event profile.
    """
    lines = []
    for suffix, extra, value in samples:
        pairs = ",".join(filter(None, (identity, label_pairs(extra))))
        labels = "{" + pairs + "}" if pairs else ""
        lines.append(f"{name}{suffix}{labels} {format_value(value)}\n")
    return "".join(lines).encode()


def histogram_samples(hist: Histogram, labels: Labels = ()) -> list[Sample]:
    """Cumulative ``_bucket`` samples (with ``+Inf``), then ``_sum`` and ``_count``."""
    out: list[Sample] = []
    running = 0
    for bound, count in zip(hist.buckets, hist.counts, strict=False):
        running += count
        # le="1.0" as client_python writes it, so series from both stay one time series
        out.append(("_bucket", (*labels, ("le", repr(float(bound)))), float(running)))
    running += hist.counts[-1]
    out.append(("_bucket", (*labels, ("le", "+Inf")), float(running)))
    out.append(("_sum", labels, hist.total))
    out.append(("_count", labels, float(running)))
    return out


def gauge(value: float | None) -> list[Sample]:
    """One unlabelled sample, or none when the value is unknown (never a misleading 0)."""
    return [] if value is None else [("", (), float(value))]


COUNTING: frozenset[MetricType] = frozenset({"counter", "histogram"})
"""The types whose series are born at zero; gauges are served at once (no alert waits)."""


class Births:
    """When each counter and histogram series first appeared, per record UID.

    A series younger than ``delay`` is served at 0, so every scraper records a 0 before its
    first count and ``increase()`` is exact from the first event. The times are kept for as
    long as the record lives, and they are part of the checkpoint: after a restart a series
    that Prometheus already saw continues at its value (no 0, which would read as a reset),
    while one still young goes on being served at 0 until its time.
    """

    def __init__(self, delay: float, clock: Callable[[], float] = time.time) -> None:
        self.delay = delay
        self._clock = clock
        self.born: dict[str, dict[SeriesKey, float]] = {}

    def samples(
        self, uid: str, name: str, samples: Iterable[Sample], now: float
    ) -> tuple[list[Sample], float | None]:
        """The samples as served now, and when the youngest of them comes of age (or None)."""
        born = self.born.setdefault(uid, {})
        served: list[Sample] = []
        due: float | None = None
        for sample in samples:
            suffix, labels, _ = sample
            key = (name, labels[:-1] if suffix == "_bucket" else labels)
            t = born.setdefault(key, now)
            if now - t < self.delay:
                sample = (suffix, labels, 0.0)
                due = t + self.delay if due is None else min(due, t + self.delay)
            served.append(sample)
        return served, due

    def now(self) -> float:
        """The clock the births are read with."""
        return self._clock()

    def forget(self, uid: str) -> None:
        """The record is gone: if it comes back, its series are new to Prometheus too."""
        self.born.pop(uid, None)


class _Header:
    """A family's HELP and TYPE lines, plain and compressed once."""

    __slots__ = ("deflated", "plain")

    def __init__(self, plain: bytes) -> None:
        self.plain = plain
        self.deflated = Deflated.of(plain)

    def write(self, body: Body) -> None:
        if body.compress:
            body.write_deflated(self.deflated)
        else:
            body.write(self.plain)


class RenderedFamilies(Generic[R]):
    """Pre-rendered lines of one group per family and record; a subscriber and a writer."""

    def __init__(
        self,
        group: Group[R],
        health: Health,
        clock: Callable[[], float] = time.time,
        new_series_delay: float = 0.0,
    ) -> None:
        self._group = group
        self._health = health
        self._clock = clock
        self.births = Births(new_series_delay, clock)
        self._counting = tuple(f.type in COUNTING for f in group.families)
        self._young: list[tuple[float, str]] = []
        """(when a series comes of age, UID): records to render again then (a heap)."""
        self._records: dict[str, R] = {}
        """The latest record of each UID that still has a young series."""
        self._prefixes = tuple(f'{name}="' for name in group.identity.labels)
        """``name="`` of each identity label, so a change escapes only the values."""
        families = group.families
        self._headers = {
            om: [_Header(header(f.name, f.help, f.type, om)) for f in families]
            for om in (False, True)
        }
        self._live_headers = {
            om: [_Header(header(f.name, f.help, f.type, om)) for f in group.live]
            for om in (False, True)
        }
        self._lines: list[dict[str, bytes]] = [{} for _ in families]
        self._deflated: list[Deflated | None] = [None for _ in families]
        """Each family's lines compressed, kept until one of them changes (None: to do)."""
        self._edits = [0 for _ in families]
        """Changes per family: a compression that a change overtook is not kept."""
        self._live_lines: list[dict[str, tuple[bytes, R]]] = [{} for _ in group.live]
        """Per live family: UID -> (``name{labels} `` prefix, record)."""

    def changed(self, old: R | None, new: R | None) -> None:
        """Re-render a record's families (or drop them when it was deleted).

        Everything is rendered before anything is stored, so a record whose rendering fails
        keeps its previous lines whole rather than half of them updated.
        """
        if new is None:
            if old is not None:
                for i, lines in enumerate(self._lines):
                    if lines.pop(old.uid, None) is not None:
                        self._edited(i)
                for live in self._live_lines:
                    live.pop(old.uid, None)
                self.births.forget(old.uid)
                self._records.pop(old.uid, None)
            return
        values = self._group.identity.values(new)
        identity = ",".join(
            prefix + escape_label_value(value) + '"'
            for prefix, value in zip(self._prefixes, values, strict=True)
        )
        now = self._clock()
        due: float | None = None
        texts = []
        for f, counting in zip(self._group.families, self._counting, strict=True):
            samples = f.generate(new)
            if counting:
                samples, young = self.births.samples(new.uid, f.name, samples, now)
                if young is not None:
                    due = young if due is None else min(due, young)
            texts.append(render(f.name, identity, samples))
        labels = "{" + identity + "}" if identity else ""
        prefixes = [
            f"{f.name}{labels} ".encode() if f.applies(new) else None for f in self._group.live
        ]
        for i, (text, lines) in enumerate(zip(texts, self._lines, strict=True)):
            if text:
                if lines.get(new.uid) != text:
                    lines[new.uid] = text
                    self._edited(i)
            elif lines.pop(new.uid, None) is not None:
                self._edited(i)
        for prefix, live in zip(prefixes, self._live_lines, strict=True):
            if prefix is not None:
                live[new.uid] = (prefix, new)
            else:
                live.pop(new.uid, None)
        if due is not None:
            if new.uid not in self._records:
                heapq.heappush(self._young, (due, new.uid))
            self._records[new.uid] = new
        else:
            self._records.pop(new.uid, None)

    @property
    def counting(self) -> bool:
        """The group has counter or histogram families (whose series have births)."""
        return any(self._counting)

    def live_births(self) -> dict[str, dict[SeriesKey, float]]:
        """The births of the records rendered now (a checkpoint keeps no others)."""
        rendered = set().union(*self._lines)
        return {uid: dict(b) for uid, b in self.births.born.items() if uid in rendered}

    def _mature(self, now: float) -> None:
        """Render again the records whose young series came of age (their true value shows)."""
        while self._young and self._young[0][0] <= now:
            _, uid = heapq.heappop(self._young)
            record = self._records.pop(uid, None)
            if record is not None:
                with self._health.contained(ErrorKind.INTERNAL, "rendering", uid):
                    self.changed(None, record)

    def _edited(self, i: int) -> None:
        self._deflated[i] = None
        self._edits[i] += 1

    async def write(self, body: Body, openmetrics: bool = False) -> None:
        """Write every family (header, then each record's lines) to ``body``.

        It yields to the loop after each family, and compresses a changed family in a thread
        (zlib lets go of the GIL): at L the Job families are tens of MiB, and a churning
        cluster changes them between any two scrapes. Each family is written as it was when
        the scrape reached it.
        """
        self._mature(self._clock())
        heads = self._headers[openmetrics]
        for i, (head, lines) in enumerate(zip(heads, self._lines, strict=True)):
            head.write(body)
            if not body.compress:
                body.write(b"".join(lines.values()))
            else:
                piece = self._deflated[i]
                if piece is None:
                    piece = await self._compress(i, b"".join(lines.values()))
                body.write_deflated(piece)
            await asyncio.sleep(0)
        now = self._clock()
        for head, family, live in zip(
            self._live_headers[openmetrics], self._group.live, self._live_lines, strict=True
        ):
            head.write(body)
            value = family.value
            try:
                text = b"".join(
                    prefix + format_value(value(record, now)).encode() + b"\n"
                    for prefix, record in live.values()
                )
            except Exception:  # a bug in one value: find it, and lose only its line
                text = b"".join(self._live_line(family, p, r, now) for p, r in live.values())
            body.write(text)
            await asyncio.sleep(0)

    async def _compress(self, i: int, plain: bytes) -> Deflated:
        """Family ``i`` compressed, in a thread when large; kept unless a change overtook it."""
        edits = self._edits[i]
        if len(plain) < COMPRESS_INLINE_BYTES:
            piece = Deflated.of(plain)
        else:
            piece = await asyncio.to_thread(Deflated.of, plain)
        if self._edits[i] == edits:
            self._deflated[i] = piece
        return piece

    def _live_line(self, family: LiveFamily[R], prefix: bytes, record: R, now: float) -> bytes:
        """One clock-dependent sample; a value that cannot be computed loses only its line."""
        with self._health.contained(ErrorKind.INTERNAL, family.name, record.uid):
            return prefix + format_value(family.value(record, now)).encode() + b"\n"
        return b""
