"""The owner index: what it publishes while the first LIST is applied, and after."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable

import pytest

from exporter.metrics import state
from exporter.store import owners
from exporter.store.caching import batches
from exporter.store.owners import FinishedJobs
from tests.builders import complete
from tests.world import World


def retained(w: World) -> dict[str, float]:
    """kube_batch_job_finished_retained by owner name."""
    return {dict(labels)["owner_name"]: v for (_, labels), v in w.series(state.RETAINED).items()}


def test_a_first_list_publishes_each_owner_once_then_every_change() -> None:
    # once per Job, a 30,000-Job LIST rendered its 3,000 owners' counts 30,000 times
    w = World()
    assert w.exporter.engine is not None
    published: list[int | None] = []

    def follow(old: FinishedJobs | None, new: FinishedJobs | None) -> None:
        published.append(new.count if new else None)

    w.exporter.engine.owners.subscribe(follow)
    jobs = [complete(uid=f"u{i}", name=f"backup-{i}") for i in range(10)]
    w.start(jobs=jobs)
    assert published == [10]
    w.jobs.delete(jobs[0])
    assert published == [10, 9]
    assert retained(w) == {"backup": 9}


def test_a_change_while_the_first_counts_are_published_is_not_overtaken(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    w = World()
    a, b1, b2 = (
        complete(uid="a", name="a-1", owner="a"),
        complete(uid="b1", name="b-1", owner="b"),
        complete(uid="b2", name="b-2", owner="b"),
    )

    async def deleting(keys: Iterable[object]) -> AsyncIterator[object]:
        w.jobs.delete(b2)  # while publishing yields: b has one finished Job left
        async for key in batches(keys):
            yield key

    monkeypatch.setattr(owners, "batches", deleting)
    w.start(jobs=[a, b1, b2])
    assert retained(w) == {"a": 1, "b": 1}
