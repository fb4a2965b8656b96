"""Bodies of Jobs and CronJobs as a user would write them, for the demo and the e2e tests."""

from __future__ import annotations

from typing import Any


def job(name: str, template: dict[str, Any], **spec: Any) -> dict[str, Any]:
    """A ``batch/v1`` Job running ``template``; ``spec`` adds Job spec fields."""
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {"template": template, **spec},
    }


def cronjob(
    name: str,
    schedule: str,
    template: dict[str, Any],
    job_spec: dict[str, Any] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    """A ``batch/v1`` CronJob; ``job_spec`` adds Job spec fields, ``spec`` CronJob ones."""
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": name},
        "spec": {
            "schedule": schedule,
            "jobTemplate": {"spec": {"template": template, **(job_spec or {})}},
            **spec,
        },
    }
