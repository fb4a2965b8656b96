from __future__ import annotations

import asyncio
import gzip
import math
import random
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from exporter.health.histogram import Histogram
from exporter.health.state import ErrorKind, Health
from exporter.metrics import exposition, runs
from exporter.metrics.exposition import (
    Body,
    Deflated,
    Group,
    Identity,
    LiveFamily,
    RenderedFamilies,
    crc32_combine,
    escape_label_value,
    format_value,
    header,
    histogram_samples,
    label_pairs,
    render,
)
from tests.builders import complete, running
from tests.world import World


def test_label_values_escape_quotes_backslashes_and_newlines() -> None:
    hostile = 'a"b\\c\nd'
    assert escape_label_value(hostile) == 'a\\"b\\\\c\\nd'
    text = (
        "# TYPE m gauge\n"
        + render("m", label_pairs((("name", hostile),)), [("", (), 1.0)]).decode()
    )
    (family,) = text_string_to_metric_families(text)
    assert family.samples[0].labels == {"name": hostile}  # round-trips through a real parser


def test_values_are_formatted_as_prometheus_expects() -> None:
    assert [format_value(v) for v in (3.0, 0.25, math.nan, math.inf, -math.inf, 1.7e9)] == [
        "3",
        "0.25",
        "NaN",
        "+Inf",
        "-Inf",
        "1700000000",
    ]


def test_no_labels_renders_a_bare_name() -> None:
    assert render("m", "", [("", (), 2.0)]) == b"m 2\n"


def observed(buckets: tuple[float, ...], values: list[float]) -> Histogram:
    hist = Histogram(buckets)
    for value in values:
        hist.observe(value)
    return hist


def test_histogram_samples_are_cumulative_with_inf_sum_and_count() -> None:
    text = (
        "# TYPE h histogram\n"
        + render(
            "h",
            label_pairs((("ns", "a"),)),
            histogram_samples(observed((1.0, 5.0), [0.5, 1.0, 11.0]), (("result", "ok"),)),
        ).decode()
    )
    (family,) = text_string_to_metric_families(text)
    got = [(s.name, s.labels.get("le"), s.value) for s in family.samples]
    assert got == [
        ("h_bucket", "1.0", 2.0),
        ("h_bucket", "5.0", 2.0),
        ("h_bucket", "+Inf", 3.0),
        ("h_sum", None, 12.5),
        ("h_count", None, 3.0),
    ]


def test_counter_headers_differ_by_format() -> None:
    assert header("x_total", "h", "counter").endswith(b"# TYPE x_total counter\n")
    assert header("x_total", "h", "counter", openmetrics=True) == (
        b"# HELP x h\n# TYPE x counter\n"
    )


def test_quotes_in_help_are_escaped_in_openmetrics_only() -> None:
    # OpenMetrics' HELP escapes quotes; the text format's parser would keep a backslash
    assert header("x", 'a "b"\\', "gauge") == b'# HELP x a "b"\\\\\n# TYPE x gauge\n'
    assert header("x", 'a "b"\\', "gauge", openmetrics=True).startswith(b'# HELP x a \\"b\\"\\\\\n')


def test_a_live_value_that_fails_loses_only_its_own_line(caplog: pytest.LogCaptureFixture) -> None:
    @dataclass(frozen=True)
    class Thing:
        uid: str
        namespace: str = "n"

    def value(thing: Thing, now: float) -> float:
        if thing.uid == "bad":
            raise OverflowError("a bug")
        return 1.0

    group: Group[Thing] = Group(
        Identity(("thing",), lambda t: (t.uid,)),
        (),
        (LiveFamily("t_seconds", "gauge", "t", value, applies=lambda t: True),),
    )
    health = Health()
    renderer = RenderedFamilies(group, health)
    for uid in ("a", "bad", "b"):
        renderer.changed(None, Thing(uid))
    for _ in range(2):
        body = Body()
        asyncio.run(renderer.write(body))
    assert body.finish().decode().splitlines()[2:] == [
        't_seconds{thing="a"} 1',
        't_seconds{thing="b"} 1',
    ]
    assert +health.errors == {ErrorKind.INTERNAL: 2}  # counted per scrape ...
    assert len([r for r in caplog.records if "t_seconds" in r.getMessage()]) == 1  # logged once


def test_a_new_counter_series_is_served_at_zero_until_it_comes_of_age() -> None:
    w = World(now=1000, new_series_delay=60.0, duration_buckets=(10.0, 60.0))
    w.start(jobs=[running(uid="a")])
    w.jobs.upsert(complete(end=990, uid="a"))

    def served() -> dict[str, float]:
        return {
            name + ("{" + ",".join(v for _, v in labels) + "}" if labels else ""): v
            for (name, labels), v in w.series(
                runs.HISTORY, identity=("namespace", "owner_kind", "owner_name")
            ).items()
            if name.startswith(("kube_batch_runs_total", "kube_batch_run_duration_seconds"))
            or name == "kube_batch_last_run_success"
        }

    young = served()
    assert young["kube_batch_last_run_success"] == 1  # a gauge: at once
    assert {k: v for k, v in young.items() if k != "kube_batch_last_run_success"} == dict.fromkeys(
        (k for k in young if k != "kube_batch_last_run_success"), 0.0
    )
    assert len(young) > 3  # the run's counter and every sample of its duration histogram
    w.at(1059)
    assert served() == young
    w.at(1060)
    grown = served()
    assert grown["kube_batch_runs_total{CompletionsReached,succeeded,schedule}"] == 1
    assert grown["kube_batch_run_duration_seconds_count{succeeded}"] == 1


def test_crc32_combine_matches_the_crc_of_the_joined_bytes() -> None:
    rng = random.Random(18)
    for size_a, size_b in [(0, 0), (0, 7), (7, 0), (1, 1), (1000, 3), (5, 70000)] + [
        (rng.randrange(1 << 16), rng.randrange(1 << 20)) for _ in range(20)
    ]:
        a, b = rng.randbytes(size_a), rng.randbytes(size_b)
        assert crc32_combine(zlib.crc32(a), zlib.crc32(b), len(b)) == zlib.crc32(a + b)


def test_a_gzip_body_is_one_member_that_decompresses_to_the_plain_body() -> None:
    pieces = [b"# HELP a x\n", b"", b"a 1\n" * 5000, b"b 2\n", b"c 3\n" * 99]
    plain, zipped = Body(), Body(compress=True)
    for i, piece in enumerate(pieces):
        plain.write(piece)
        if i % 2:  # some compressed before, as a family's kept fragment
            zipped.write_deflated(Deflated.of(piece))
        else:
            zipped.write(piece)
    expected = plain.finish()
    body = zipped.finish()
    assert expected == b"".join(pieces) and gzip.decompress(body) == expected  # CRC, size
    # one member: a reader that stops after the first sees everything
    reader = zlib.decompressobj(wbits=31)
    assert reader.decompress(body) == expected and reader.eof and not reader.unused_data


def test_a_gzip_scrape_compresses_only_the_families_that_changed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    w = World()
    w.start(jobs=[running(name="a", uid="a"), running(name="b", uid="b")])
    asyncio.run(w.exporter.exposition.scrape(False, compress=True))
    made = []
    real = zlib.compressobj

    def counted(*args: Any) -> Any:
        made.append(args)
        return real(*args)

    monkeypatch.setattr("exporter.metrics.exposition.zlib.compressobj", counted)
    unchanged = asyncio.run(w.exporter.exposition.scrape(False, compress=True))
    quiet = len(made)  # the clock-dependent families and the self-metrics only
    w.jobs.upsert(complete(name="a", uid="a"))
    changed = asyncio.run(w.exporter.exposition.scrape(False, compress=True))
    assert quiet < len(made) - quiet  # a Job's families, recompressed

    def batch(body: bytes) -> list[bytes]:
        return [line for line in body.splitlines() if line.startswith(b"kube_batch_job")]

    assert batch(gzip.decompress(changed)) != batch(gzip.decompress(unchanged))
    assert batch(gzip.decompress(changed)) == batch(
        asyncio.run(w.exporter.exposition.scrape(False))
    )


def test_a_compression_that_a_change_overtook_is_not_kept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(exposition, "COMPRESS_INLINE_BYTES", 0)  # every family in a thread
    w = World()
    w.start(jobs=[running(name="a", uid="a")])
    threaded = asyncio.to_thread

    async def change_meanwhile(fn: Callable[[bytes], Any], plain: bytes) -> Any:
        piece = await threaded(fn, plain)
        if plain.startswith(b"kube_batch_job_state{"):  # the Job ends while its state is away
            w.jobs.upsert(complete(name="a", uid="a"))
        return piece

    monkeypatch.setattr(asyncio, "to_thread", change_meanwhile)
    asyncio.run(w.exporter.exposition.scrape(False, compress=True))
    monkeypatch.setattr(asyncio, "to_thread", threaded)
    after = gzip.decompress(asyncio.run(w.exporter.exposition.scrape(False, compress=True)))
    plain = asyncio.run(w.exporter.exposition.scrape(False))

    def batch(body: bytes) -> list[bytes]:  # not the self-metrics, which count scrapes
        return [line for line in body.splitlines() if line.startswith(b"kube_batch_job_state")]

    assert batch(after) == batch(plain) and b'state="succeeded"} 1' in b"".join(batch(after))
