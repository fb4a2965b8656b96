"""The oracle of the e2e scenarios that kill exporters: every Job and Pod the API showed.

The exporter's counts are compared with it after every fault (:func:`agree`), and Prometheus'
view of the series with what a continuous exporter would have shown (:func:`assert_no_reset`).
"""

from __future__ import annotations

import threading
from collections import Counter
from datetime import datetime
from typing import Any

from tests.cluster.kube import Kube
from tests.cluster.monitoring import Prometheus
from tests.e2e.conftest import Exporter, eventually

COUNTERS = [
    *(
        f"kube_batch_{name}_total"
        for name in ("runs", "pod_failures", "container_restarts", "cronjob_missed_schedules")
    ),
    *(
        f"kube_batch_{name}_{part}"
        for name in (
            "run_duration_seconds",
            "run_start_delay_seconds",
            "run_retries",
            "cronjob_schedule_lag_seconds",
        )
        for part in ("bucket", "count", "sum")
    ),
]
"""Every batch counter and histogram series (the exporter's own counters are per process)."""


def next_minute(at: float, plus: float) -> float:
    return (at // 60 + 1) * 60 + plus


def stamp(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


class Recorder:
    """Every Job and Pod of one namespace as the API showed them: the oracle.

    Objects are never forgotten: a Job deleted by its TTL or history limit keeps the last
    state it was seen in.
    """

    def __init__(self, kube: Kube, namespace: str) -> None:
        self.jobs: dict[str, dict[str, Any]] = {}
        self.pods: dict[str, dict[str, Any]] = {}
        self._kube = kube
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._follow, args=(path, store), daemon=True)
            for path, store in (
                (f"/apis/batch/v1/namespaces/{namespace}/jobs", self.jobs),
                (f"/api/v1/namespaces/{namespace}/pods", self.pods),
            )
        ]
        for thread in self._threads:
            thread.start()

    def _follow(self, path: str, store: dict[str, dict[str, Any]]) -> None:
        while not self._stop.is_set():
            try:
                listing = self._kube.get(path)
                for item in listing["items"]:
                    store[item["metadata"]["uid"]] = item
                version = listing["metadata"]["resourceVersion"]
                while not self._stop.is_set():
                    for event in self._kube.watch(path, version, 30):
                        if event["type"] == "ERROR":
                            raise RuntimeError(event["object"].get("message"))
                        obj = event["object"]
                        version = obj["metadata"]["resourceVersion"]
                        if event["type"] != "BOOKMARK":
                            store[obj["metadata"]["uid"]] = obj
            except Exception:  # the API restarting, or 410: list again
                self._stop.wait(0.5)

    def close(self) -> None:
        self._stop.set()

    def outcome(self, job: dict[str, Any]) -> str | None:
        for c in job.get("status", {}).get("conditions") or []:
            if c["type"] in ("Complete", "Failed") and c["status"] == "True":
                return "succeeded" if c["type"] == "Complete" else "failed"
        return None

    def owner(self, obj: dict[str, Any]) -> str:
        return str((obj["metadata"].get("ownerReferences") or [{}])[0].get("name", ""))

    def runs(self) -> Counter[tuple[str, str]]:
        """(CronJob, result) -> finished runs."""
        return Counter(
            (self.owner(j), result)
            for j in list(self.jobs.values())
            if (result := self.outcome(j)) is not None and self.owner(j)
        )

    def pod_failures(self) -> Counter[str]:
        owners = {uid: self.owner(j) for uid, j in list(self.jobs.items())}
        return Counter(
            owners.get((p["metadata"].get("ownerReferences") or [{}])[0].get("uid", ""), "")
            for p in list(self.pods.values())
            if p.get("status", {}).get("phase") == "Failed"
        )

    def active(self) -> int:
        return sum(1 for j in list(self.jobs.values()) if self.owner(j) and self.outcome(j) is None)

    def ran_slots(self, cronjob: str) -> set[float]:
        key = "batch.kubernetes.io/cronjob-scheduled-timestamp"
        return {
            stamp(j["metadata"]["annotations"][key])
            for j in list(self.jobs.values())
            if self.owner(j) == cronjob and key in (j["metadata"].get("annotations") or {})
        }


def counts(exporter: Exporter, ns: str) -> dict[str, Any]:
    """What the exporter says, in the oracle's shape."""
    runs: Counter[tuple[str, str]] = Counter()
    for s in exporter.samples("kube_batch_runs_total", ns):
        if s.labels["owner_kind"] == "CronJob":
            runs[(s.labels["owner_name"], s.labels["result"])] += int(s.value)
    failures: Counter[str] = Counter()
    for s in exporter.samples("kube_batch_pod_failures_total", ns):
        failures[s.labels["owner_name"]] += int(s.value)
    streak = exporter.value("kube_batch_consecutive_failures", ns, owner_name="fails")
    return {"runs": +runs, "pod_failures": +failures, "streak": streak}


def expected(oracle: Recorder) -> dict[str, Any]:
    runs = +oracle.runs()
    return {
        "runs": runs,
        "pod_failures": +oracle.pod_failures(),
        "streak": float(runs[("fails", "failed")]) if runs[("fails", "failed")] else None,
    }


def agree(exporter: Exporter, ns: str, oracle: Recorder, what: str) -> None:
    """The exporter's counts equal the oracle's (once no run is between their two views)."""
    state: dict[str, Any] = {}

    def equal() -> bool:
        state["ours"], state["oracle"] = counts(exporter, ns), expected(oracle)
        return bool(state["ours"] == state["oracle"])

    try:
        eventually(equal, 60, what)
    except AssertionError as exc:
        raise AssertionError(f"{what}: {state}") from exc


def assert_no_reset(prometheus: Prometheus, start: float, end: float, minimum: int = 50) -> None:
    """No batch counter or histogram series went down, and there were series to look at."""
    window = f"{int(end - start) + 60}s"
    seen = 0
    for name in COUNTERS:
        reset = prometheus.query(f"resets({name}[{window}]) > 0", at=end)
        assert reset == [], (name, [r["metric"] for r in reset])
        seen += len(prometheus.query(f"count_over_time({name}[{window}])", at=end))
    assert seen > minimum  # the check above had series to look at
