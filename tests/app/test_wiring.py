"""Engines over warm caches: a standby that takes over continues the leader's series exactly.

A takeover restores the leader's last checkpoint into a fresh engine and replays the
standby's caches into it, which must amount to what a restarted exporter's first LISTs do.
"""

from __future__ import annotations

import asyncio

from exporter.metrics.registry import GROUPS
from tests.builders import complete, cronjob, failed, running
from tests.persist.test_checkpointing import Memory, checkpoint, counted, exporter
from tests.world import World


def pair() -> tuple[World, World]:
    """A leader and a standby fed the same watch events."""
    leader = exporter(now=1000)
    standby = World(now=1000, standby=True, duration_buckets=(10.0, 60.0, 600.0))
    return leader, standby


def test_a_standby_serves_no_batch_series_and_takes_over_where_the_leader_was() -> None:
    leader, standby = pair()
    both = (leader, standby)
    for w in both:
        w.start(
            [cronjob()], jobs=[running(name="backup-a", uid="a"), running(name="backup-b", uid="b")]
        )
        w.jobs.upsert(failed(end=1050, name="backup-a", uid="a"))
    backend = Memory()
    checkpoint(leader, backend)
    for w in both:  # after the last checkpoint, before the leader dies
        w.now += 100
        w.jobs.upsert(complete(end=1150, name="backup-b", uid="b"))
    assert counted(leader, "succeeded", "CompletionsReached") == 1
    text = asyncio.run(standby.exporter.exposition.scrape(openmetrics=False)).decode()
    assert "kube_batch_runs_total" not in text and "kube_batch_cronjob_info" not in text
    assert "kube_batch_exporter_leader 1.0" in text  # not elected: it would export

    standby.take_over(backend)
    assert standby.series(*GROUPS) == leader.series(*GROUPS)  # every batch series, equal

    for w in both:  # the next run is counted once, by the new leader as by the old
        w.jobs.upsert(running(name="backup-c", uid="c"))
        w.jobs.upsert(complete(end=1180, name="backup-c", uid="c"))
    assert counted(standby, "succeeded", "CompletionsReached") == 2
    assert counted(standby, "failed", "BackoffLimitExceeded") == 1


def test_a_detached_engine_hears_nothing_more() -> None:
    leader, _ = pair()
    leader.start([cronjob()], jobs=[running(name="backup-a", uid="a")])
    engine = leader.exporter.engine
    assert engine is not None
    leader.exporter.detach()
    leader.jobs.upsert(failed(end=1050, name="backup-a", uid="a"))
    assert not engine.runs.histories[("ns", "CronJob", "backup")].runs  # the failure unheard
    assert leader.exporter.exposition.renderers is None
