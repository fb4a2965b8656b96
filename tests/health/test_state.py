"""Readiness comes from explicit state: sync progress and a refused (403) request."""

from __future__ import annotations

from exporter.health.state import Failure, Health, Resource


def synced_health() -> Health:
    health = Health()
    for state in health.resources.values():
        state.synced = True
    return health


def test_ready_once_every_resource_listed() -> None:
    health = Health()
    health[Resource.JOBS].synced = True
    assert health.problems() == [
        "cronjobs: waiting for the first full list",
        "pods: waiting for the first full list",
    ]
    assert synced_health().problems() == []


def test_a_refused_request_makes_it_unready_whatever_the_message_says() -> None:
    health = synced_health()
    health[Resource.PODS].failure = Failure("watch", "HTTP 403: no", forbidden=True)
    assert health.problems() == ["pods: watch: HTTP 403: no"]


def test_other_failures_of_a_synced_resource_keep_it_ready() -> None:
    health = synced_health()
    # the text alone decides nothing (the old check searched it for "permission denied")
    health[Resource.JOBS].failure = Failure("watch", "permission denied? no: HTTP 500", False)
    assert health.problems() == []
    health[Resource.JOBS].synced = False
    assert health.problems() == [
        "jobs: waiting for the first full list",
        "jobs: watch: permission denied? no: HTTP 500",
    ]
