"""``make bench``: kube-batch-exporter and kube-state-metrics side by side on one cluster.

For each fleet size the module-built control plane is started, kube-controller-manager is
stopped (bench/fleet.py says why), the fleet is written, then both exporters start at the
same moment against it and are measured the same way:

- ready: seconds from start until every Job of the fleet is in its /metrics (one
  ``kube_job_info`` line per Job for KSM, one ``kube_batch_job_start_timestamp_seconds`` for us);
- CPU seconds to that point, peak RSS (VmHWM) and RSS after 20 s idle;
- series and bytes per scrape, and scrape latency p50/p99 over alternating scrapes;
- churn: Jobs replaced at a steady rate for a fixed time; CPU seconds per 1,000 watch events
  (the event count is our exporter's, and KSM watches the same objects).

The table goes to stdout and, with the machine, versions and method, to docs/benchmarks.md.
``--profile`` also samples our exporter with py-spy during a fresh sync at the largest size
and prints the top functions by own time.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import http.client
import json
import math
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.fleet import Writer, churn, load
from exporter import __version__
from exporter.kube.connecting import connect
from tests.cluster.controlplane import LocalCluster, build, free_port

ROOT = Path(__file__).resolve().parents[1]
IDLE_FRAMES = ("_worker (concurrent/futures/thread.py", "select (selectors.py")
"""py-spy's idle heuristics miss a thread pool worker waiting for work and the event loop's
epoll wait; those samples are not CPU and are left out of the shares."""
FINDINGS = "<!-- findings: written by hand, kept by make bench -->"
SIZES = {
    "S": (100, 1000, 3000),
    "M": (1000, 10000, 30000),
    "L": (3000, 30000, 90000),
    "XL": (10000, 100000, 300000),
}
TICK = os.sysconf("SC_CLK_TCK")


CONTROL_PLANE_ENV = {"GOMEMLIMIT": "9GiB"}
"""At XL the API server's heap (3.5 GiB live halfway through the write, and Go lets it grow
to twice the live heap) and the exporters do not fit in 24 GiB; bounded, it collects
earlier. At L and below the bound is never reached."""


def say(message: str) -> None:
    """A progress line (the load and each phase take minutes)."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


@dataclass
class Process:
    """One exporter process and what was measured about it."""

    name: str
    url: str
    job_line: bytes
    proc: subprocess.Popen[bytes]
    started: float = field(default_factory=time.monotonic)
    results: dict[str, float] = field(default_factory=dict)
    sent: int = 0
    """Bytes of the last scrape's response body, as sent."""

    def cpu(self) -> float:
        """User + system CPU seconds so far."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK

    def memory(self, key: str) -> float:
        """VmRSS or VmHWM in MiB."""
        status = Path(f"/proc/{self.proc.pid}/status").read_text()
        match = re.search(rf"^{key}:\s+(\d+) kB", status, re.M)
        assert match, key
        return int(match.group(1)) / 1024

    def scrape(self, like_prometheus: bool = False) -> tuple[float, bytes]:
        """Seconds to the last byte, and the body (decompressed).

        ``like_prometheus``: with Prometheus 3's headers. It always sends ``Accept-Encoding:
        gzip`` and both exporters then compress, so the time includes compressing and the
        transfer of the compressed body. The readiness and event-count polls ask for plain
        text, so that polling every 0.5 s does not charge either exporter for compression.
        """
        request = urllib.request.Request(
            self.url, headers=SCRAPE_HEADERS if like_prometheus else {}
        )
        started = time.perf_counter()
        with urllib.request.urlopen(request, timeout=600) as resp:  # KSM at XL: a minute
            body: bytes = resp.read()
            zipped = resp.headers.get("Content-Encoding") == "gzip"
        seconds = time.perf_counter() - started
        self.sent = len(body)
        return seconds, gzip.decompress(body) if zipped else body

    def jobs_visible(self) -> int:
        """Jobs in /metrics now (-1 while it does not answer)."""
        try:
            _, body = self.scrape()
        except OSError:
            return -1
        return body.count(b"\n" + self.job_line)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 15 s."""
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def start_ours(
    kubeconfig: Path,
    log: Path,
    launcher: list[str] | None = None,
    *flags: str,
    name: str = "kube-batch-exporter",
) -> Process:
    """Our exporter as users run it (``launcher``: a command to run it under, e.g. py-spy)."""
    port = free_port()
    command = [
        *(launcher or []),
        sys.executable,
        "-m",
        "exporter",
        "--kubeconfig",
        str(kubeconfig),
        "--listen",
        f"127.0.0.1:{port}",
        "--log-level",
        "warning",
        # the watch-event count the churn is divided by must be read from the first second,
        # not held at 0 for a minute as a new counter series is by default
        "--new-series-delay=0s",
        *flags,
    ]
    with log.open("wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    return Process(
        name,
        f"http://127.0.0.1:{port}/metrics",
        b"kube_batch_job_start_timestamp_seconds{",
        proc,
    )


KSM, KSM_ALLOWLISTED = "kube-state-metrics", "kube-state-metrics, allowlisted"
ALLOWLIST = (
    # Jobs: which CronJob runs them, when they started and ended, how they ended, retries
    "kube_job_owner",
    "kube_job_created",
    "kube_job_status_start_time",
    "kube_job_status_completion_time",
    "kube_job_complete",
    "kube_job_failed",
    "kube_job_status_active",
    "kube_job_status_succeeded",
    "kube_job_status_failed",
    # CronJobs: schedule, next and last slot, last success, suspended, running now
    "kube_cronjob_info",
    "kube_cronjob_next_schedule_time",
    "kube_cronjob_status_last_schedule_time",
    "kube_cronjob_status_last_successful_time",
    "kube_cronjob_spec_suspend",
    "kube_cronjob_status_active",
    # Pods: which Job, failed or not, restarts, why and with which exit code
    "kube_pod_owner",
    "kube_pod_status_phase",
    "kube_pod_container_status_restarts_total",
    "kube_pod_container_status_last_terminated_reason",
    "kube_pod_container_status_last_terminated_exitcode",
)
"""The KSM families a batch on-call needs to answer what our dashboards answer (what failed,
how long runs take, what is running, when the next slot is, whether a CronJob is suspended,
which pods failed and why). KSM cannot answer missed slots or run history after deletion with
any of its families; these are the closest it gets."""


def start_ksm(binary: str, kubeconfig: Path, log: Path, allowlist: bool = False) -> Process:
    """kube-state-metrics with the three resources we cover, RV=0 lists as the reference.

    ``allowlist``: exporting only :data:`ALLOWLIST`, as a batch user might run it.
    """
    port, telemetry = free_port(), free_port()
    command = [
        binary,
        f"--kubeconfig={kubeconfig}",
        "--resources=jobs,cronjobs,pods",
        "--host=127.0.0.1",
        f"--port={port}",
        "--telemetry-host=127.0.0.1",
        f"--telemetry-port={telemetry}",
        "--use-apiserver-cache",
        # KSM answers Prometheus' Accept-Encoding: gzip only with this (its default is off)
        "--enable-gzip-encoding",
        # its default (1 minute) cuts a gzip scrape at XL short, and no scrape completes
        "--server-write-timeout=10m",
        *([f"--metric-allowlist={','.join(ALLOWLIST)}"] if allowlist else []),
    ]
    with log.open("wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    name, line = (KSM_ALLOWLISTED, b"kube_job_owner{") if allowlist else (KSM, b"kube_job_info{")
    return Process(name, f"http://127.0.0.1:{port}/metrics", line, proc)


def wait_ready(procs: list[Process], jobs: int, timeout: float) -> None:
    """Poll both until all Jobs show; record seconds and CPU at that moment."""
    deadline = time.monotonic() + timeout
    waiting = list(procs)
    while waiting:
        assert time.monotonic() < deadline, f"not ready in {timeout}s: {[p.name for p in waiting]}"
        for p in list(waiting):
            assert p.proc.poll() is None, f"{p.name} exited"
            if p.jobs_visible() >= jobs:
                p.results["ready_s"] = time.monotonic() - p.started
                p.results["sync_cpu_s"] = p.cpu()
                waiting.remove(p)
        time.sleep(0.5)


SCRAPE_HEADERS = {
    "Accept": "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,"
    "application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;"
    "escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2",
    "Accept-Encoding": "gzip",
}
"""What Prometheus 3.16 sends with its default scrape_protocols."""


def measure_scrapes(procs: list[Process], count: int) -> None:
    """Alternating scrapes; p50/p99 latency, bytes and series of each."""
    times: dict[str, list[float]] = {p.name: [] for p in procs}
    body = {}
    for _ in range(count):
        for p in procs:
            try:
                seconds, body[p.name] = p.scrape(like_prometheus=True)
            except (OSError, http.client.HTTPException) as exc:  # recorded, not the run lost
                say(f"  {p.name}: scrape failed: {exc!r}"[:300])
                p.results["scrape_failures"] = p.results.get("scrape_failures", 0) + 1
                continue
            times[p.name].append(seconds)
    for p in procs:
        ordered = sorted(times[p.name])
        assert ordered, f"every scrape of {p.name} failed"
        p.results["scrape_p50_ms"] = statistics.median(ordered) * 1000
        p.results["scrape_p99_ms"] = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] * 1000
        p.results["scrape_mib"] = len(body[p.name]) / 2**20
        p.results["scrape_sent_mib"] = p.sent / 2**20
        p.results["series"] = sum(
            1 for line in body[p.name].split(b"\n") if line and not line.startswith(b"#")
        )


def longest_stall(body: bytes) -> float:
    """The smallest bound of our lag histogram holding every observation (seconds).

    The longest event-loop stall of the whole run is at most this (issue 18's bar: 50 ms).
    """
    buckets: dict[float, float] = {}
    for line in body.decode().splitlines():
        if line.startswith("kube_batch_exporter_event_loop_lag_seconds_bucket{"):
            bound = line.split('le="', 1)[1].split('"', 1)[0]
            buckets[float(bound)] = float(line.rsplit(" ", 1)[1])
    return min(bound for bound, count in buckets.items() if count >= buckets[math.inf])


def watch_events(proc: Process) -> float:
    """Our exporter's watch events so far (bookmarks excluded)."""
    _, body = proc.scrape()
    total = 0.0
    for line in body.decode().splitlines():
        if line.startswith("kube_batch_exporter_watch_events_total{") and "BOOKMARK" not in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def run_size(
    size: str,
    ksm: str,
    args: argparse.Namespace,
    work: Path,
    profile: list[str] | None,
    sharded: dict[str, dict[str, float]] | None = None,
) -> dict[str, dict[str, float]]:
    """Measure the exporters at one size, and more when asked.

    With ``profile`` (a list), append the profile; with ``sharded`` (a dict), fill it with a
    run of ``args.shards`` shards.
    """
    cronjobs, jobs, pods = SIZES[size]
    say(f"size {size}: {cronjobs} CronJobs, {jobs} Jobs, {pods} Pods")
    cluster = LocalCluster(work / f"cluster-{size}", build(), env=CONTROL_PLANE_ENV)
    cluster.start()
    try:
        cluster.stop_component("kube-controller-manager")
        made = asyncio.run(_load(cluster.kubeconfig, cronjobs, jobs, pods))
        ours = start_ours(cluster.kubeconfig, work / f"ours-{size}.log")
        theirs = start_ksm(ksm, cluster.kubeconfig, work / f"ksm-{size}.log")
        procs = [ours, theirs]
        if args.allowlisted:
            log = work / f"ksm-allow-{size}.log"
            procs.append(start_ksm(ksm, cluster.kubeconfig, log, allowlist=True))
        try:
            wait_ready(procs, jobs, timeout=1800)
            say("  ready: " + ", ".join(f"{p.name} {p.results['ready_s']:.1f}s" for p in procs))
            time.sleep(20)  # settle: the steady RSS is taken after 20 s without changes
            for p in procs:
                p.results["steady_rss_mib"] = p.memory("VmRSS")
            measure_scrapes(procs, args.scrapes)
            say("  scrapes measured")
            events_before, cpu_before = watch_events(ours), [p.cpu() for p in procs]
            replaced = asyncio.run(_churn(cluster.kubeconfig, made, args, jobs))
            time.sleep(5)  # let both drain the last events
            events = watch_events(ours) - events_before
            for p, before in zip(procs, cpu_before, strict=True):
                p.results["churn_cpu_per_1k_events_s"] = (p.cpu() - before) / events * 1000
                p.results["peak_rss_mib"] = p.memory("VmHWM")
            say(f"  churn: {replaced} Jobs replaced, {events:.0f} watch events")
            ours.results["longest_stall_s"] = longest_stall(ours.scrape()[1])
        finally:
            for p in procs:
                p.stop()
        if profile is not None:
            profile.extend(profile_sync(cluster.kubeconfig, work, jobs))
        if sharded is not None:
            sharded.update(run_shards(cluster.kubeconfig, work, jobs, args.shards))
        return {p.name: p.results for p in procs}
    finally:
        cluster.stop()


async def _load(kubeconfig: Path, cronjobs: int, jobs: int, pods: int) -> list[dict[str, Any]]:
    conn = await connect(str(kubeconfig), None)
    async with conn.session() as session:
        started = time.monotonic()
        made = await load(Writer(conn, session), cronjobs, jobs, pods, progress=say)
        say(f"  fleet written in {time.monotonic() - started:.0f}s")
        return made


async def _churn(
    kubeconfig: Path, made: list[dict[str, Any]], args: argparse.Namespace, jobs: int
) -> int:
    conn = await connect(str(kubeconfig), None)
    async with conn.session() as session:
        return await churn(Writer(conn, session), made, args.churn_rate, args.churn_seconds, jobs)


def run_shards(kubeconfig: Path, work: Path, jobs: int, shards: int) -> dict[str, dict[str, float]]:
    """One unsharded exporter and ``shards`` shards, started together on the same fleet.

    A shard is ready at its first /readyz 200 (every namespace it owns listed): its share of
    the Jobs is not known beforehand. The shards must together export every Job once.
    """
    say(f"  sharded run: 1 unsharded and {shards} shards")
    whole = start_ours(kubeconfig, work / "whole.log", name="unsharded")
    parts = [
        start_ours(
            kubeconfig,
            work / f"shard-{i}.log",
            None,
            *("--total-shards", str(shards), "--shard", str(i)),
            name=f"shard {i}",
        )
        for i in range(shards)
    ]
    try:
        deadline = time.monotonic() + 1800
        waiting = list(parts)
        while waiting:
            assert time.monotonic() < deadline, f"not ready: {[p.name for p in waiting]}"
            for p in list(waiting):
                assert p.proc.poll() is None, f"{p.name} exited"
                if _ready(p):
                    p.results["ready_s"] = time.monotonic() - p.started
                    p.results["sync_cpu_s"] = p.cpu()
                    waiting.remove(p)
            time.sleep(0.5)
        wait_ready([whole], jobs, timeout=1800)
        total = whole.jobs_visible()  # the churn before left more Jobs than the fleet's
        shares = [p.jobs_visible() for p in parts]
        assert sum(shares) == total, f"the shards export {shares} Jobs, not {total} once each"
        time.sleep(20)  # as for the steady RSS of the main run
        for p, share in zip([whole, *parts], [total, *shares], strict=True):
            p.results["jobs"] = share
            p.results["peak_rss_mib"] = p.memory("VmHWM")
            p.results["steady_rss_mib"] = p.memory("VmRSS")
        say("  sharded: " + ", ".join(f"{p.name} {p.results['ready_s']:.1f}s" for p in parts))
    finally:
        for p in (whole, *parts):
            p.stop()
    return {p.name: p.results for p in (whole, *parts)}


def _ready(p: Process) -> bool:
    try:
        with urllib.request.urlopen(p.url.replace("/metrics", "/readyz"), timeout=5) as resp:
            return bool(resp.status == 200)
    except OSError:
        return False


def shard_table(size: str, by_process: dict[str, dict[str, float]]) -> str:
    """The sharded run: each shard against one unsharded exporter on the same fleet."""
    names = list(by_process)
    whole = by_process[names[0]]
    rows = (
        ("Jobs exported", "jobs", "{:,.0f}"),
        ("ready after start (s)", "ready_s", "{:.1f}"),
        ("CPU during sync (s)", "sync_cpu_s", "{:.2f}"),
        ("peak RSS (MiB)", "peak_rss_mib", "{:.0f}"),
        ("steady RSS (MiB)", "steady_rss_mib", "{:.0f}"),
    )
    lines = [
        f"## Sharded at size {size}: {len(names) - 1} shards and one unsharded exporter, together",
        "",
        "| measure | " + " | ".join(names) + " | largest shard / unsharded |",
        "|---|" + "---|" * (len(names) + 1),
    ]
    for title, key, fmt in rows:
        values = " | ".join(fmt.format(by_process[n][key]) for n in names)
        largest = max(by_process[n][key] for n in names[1:])
        ratio = f"{largest / whole[key]:.2f}" if whole[key] else "n/a"
        lines.append(f"| {title} | {values} | {ratio} |")
    return "\n".join(lines) + "\n"


def profile_sync(kubeconfig: Path, work: Path, jobs: int) -> list[str]:
    """py-spy samples a fresh exporter through its initial sync; top functions by own time."""
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    raw = work / "profile.txt"
    launcher = [py_spy, "record", "--format", "raw", "--rate", "200", "--output", str(raw), "--"]
    proc = start_ours(kubeconfig, work / "profiled.log", launcher)
    try:
        wait_ready([proc], jobs, timeout=1800)
        time.sleep(2)
    finally:
        proc.proc.send_signal(2)  # py-spy writes its file on SIGINT, and stops the child
        proc.proc.wait(timeout=60)
    own: Counter[str] = Counter()
    within: Counter[str] = Counter()
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = [re.sub(r" \(/.*?/site-packages/", " (", f) for f in stack.split(";")]
        if any(idle in frames[-1] for idle in IDLE_FRAMES):
            continue
        own[frames[-1]] += int(count)
        for frame in {f for f in frames if f.split(" (")[-1].startswith("exporter/")}:
            within[frame] += int(count)
    total = sum(own.values())
    lines = [f"| {count / total:.1%} | `{frame}` |" for frame, count in own.most_common(10)]
    lines += ["", "Inclusive time of the exporter's own functions (top 12):", ""]
    lines += ["| share | function |", "|---|---|"]
    lines += [f"| {count / total:.1%} | `{frame}` |" for frame, count in within.most_common(12)]
    say(f"profile of the initial sync ({total} busy samples):")
    print("\n".join(lines))
    return lines


ROWS = (
    ("ready after start (s)", "ready_s", "{:.1f}"),
    ("CPU during sync (s)", "sync_cpu_s", "{:.2f}"),
    ("peak RSS (MiB)", "peak_rss_mib", "{:.0f}"),
    ("steady RSS (MiB)", "steady_rss_mib", "{:.0f}"),
    ("CPU per 1k watch events in churn (s)", "churn_cpu_per_1k_events_s", "{:.2f}"),
    ("series", "series", "{:.0f}"),
    ("bytes per scrape (MiB)", "scrape_mib", "{:.2f}"),
    ("bytes sent per scrape, gzip (MiB)", "scrape_sent_mib", "{:.2f}"),
    ("scrape p50 (ms)", "scrape_p50_ms", "{:.1f}"),
    ("scrape p99 (ms)", "scrape_p99_ms", "{:.1f}"),
)


def size_table(size: str, by_exporter: dict[str, dict[str, float]]) -> str:
    """One size's markdown table, with the ratio ours / KSM per measure."""
    cronjobs, jobs, pods = SIZES[size]
    ours, ksm = by_exporter["kube-batch-exporter"], by_exporter[KSM]
    allowed = by_exporter.get(KSM_ALLOWLISTED)
    others = [ksm, *([allowed] if allowed else [])]
    lines = [
        f"### {size}: {cronjobs:,} CronJobs, {jobs:,} Jobs, {pods:,} Pods",
        "",
        "| measure | kube-batch-exporter | kube-state-metrics "
        + (
            "| KSM, allowlisted | ours / KSM | ours / allowlisted |"
            if allowed
            else "| ours / KSM |"
        ),
        "|---|---|---|---|" + ("---|---|" if allowed else ""),
    ]
    for title, key, fmt in ROWS:
        values = " | ".join(fmt.format(other[key]) for other in others)
        ratios = " | ".join(
            f"{ours[key] / other[key]:.2f}" if other[key] else "n/a" for other in others
        )
        lines.append(f"| {title} | {fmt.format(ours[key])} | {values} | {ratios} |")
    failed = {
        name: r["scrape_failures"] for name, r in by_exporter.items() if "scrape_failures" in r
    }
    if failed:
        lines += [
            "",
            "Failed scrapes (left out of the latencies): "
            + ", ".join(f"{name} {count:.0f}" for name, count in failed.items()),
        ]
    if "longest_stall_s" in ours:
        lines += [
            "",
            f"Our longest event-loop stall over the run (sync, scrapes, churn): at most "
            f"{ours['longest_stall_s'] * 1000:.0f} ms, the smallest bucket of "
            "`kube_batch_exporter_event_loop_lag_seconds` holding every observation. KSM, in "
            "Go, has no single loop to stall.",
        ]
    return "\n".join(lines) + "\n"


TARGETS = (
    ("CPU during sync", "sync_cpu_s", 1.5),
    ("time to ready", "ready_s", 1.5),
    ("CPU per 1k watch events", "churn_cpu_per_1k_events_s", 1.0),
    ("peak RSS", "peak_rss_mib", 0.25),
    ("scrape p99, gzip", "scrape_p99_ms", 0.25),
)
"""Issue 18's targets: the ratio ours / default KSM at the largest size must be at most this."""
MAX_STALL_S = 0.05


def target_table(size: str, by_exporter: dict[str, dict[str, float]], level: str = "##") -> str:
    """The targets at ``size``: each ratio against both KSMs, and whether it is met."""
    ours, ksm = by_exporter["kube-batch-exporter"], by_exporter[KSM]
    allowed = by_exporter.get(KSM_ALLOWLISTED, {})
    lines = [
        f"{level} Targets at size {size} (ours / KSM, same run, scrapes gzipped)",
        "",
        "| measure | ours / KSM | ours / allowlisted KSM | target (vs KSM) | met |",
        "|---|---|---|---|---|",
    ]
    for title, key, most in TARGETS:
        ratio = ours[key] / ksm[key] if ksm[key] else float("inf")
        versus = f"{ours[key] / allowed[key]:.2f}" if allowed.get(key) else "n/a"
        met = "yes" if ratio <= most else "**no**"
        lines.append(f"| {title} | {ratio:.2f} | {versus} | ≤ {most:g} | {met} |")
    if "longest_stall_s" in ours:
        stall = ours["longest_stall_s"]
        met = "yes" if stall <= MAX_STALL_S else "**no**"
        lines.append(
            f"| longest event-loop stall | ≤ {stall * 1000:.0f} ms (ours alone) | | "
            f"≤ {MAX_STALL_S * 1000:.0f} ms (bucket) | {met} |"
        )
    return "\n".join(lines) + "\n"


def micro_table(path: Path | None) -> str:
    """pytest-benchmark's JSON as a table (median and IQR per benchmark)."""
    if not path or not path.exists():
        return "(not run)\n"
    data = json.loads(path.read_text())
    lines = ["| benchmark | median | IQR | rounds |", "|---|---|---|---|"]
    for b in data["benchmarks"]:
        st = b["stats"]
        lines.append(
            f"| {b['name']} | {st['median'] * 1e6:,.1f} µs | {st['iqr'] * 1e6:,.1f} µs | "
            f"{st['rounds']} |"
        )
    return "\n".join(lines) + "\n"


def ksm_version(binary: str) -> str:
    """The version in the tool cache's directory name (kube-state-metrics-vX.Y.Z-goA.B.C)."""
    return Path(binary).parent.name.removeprefix("kube-state-metrics-").split("-go")[0]


def machine() -> str:
    """Cores, CPU model, memory and kernel, for the report."""
    cpu = next(
        (line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
         if line.startswith("model name")),
        platform.machine(),
    )  # fmt: skip
    memory = int(Path("/proc/meminfo").read_text().split()[1]) / 2**20
    return f"{os.cpu_count()} x {cpu}, {memory:.0f} GiB RAM, Linux {platform.release()}"


def report(
    results: dict[str, dict[str, dict[str, float]]],
    profile: list[str],
    args: argparse.Namespace,
    ksm: str,
) -> str:
    """docs/benchmarks.md: headline ratios, machine and versions, method, tables, profile."""
    largest = list(results)[-1]
    ours, theirs = results[largest]["kube-batch-exporter"], results[largest][KSM]
    headline = ", ".join(
        f"{title} **{ours[key] / theirs[key]:.2f}x**"
        for title, key in (
            ("peak RSS", "peak_rss_mib"),
            ("scrape p99", "scrape_p99_ms"),
            ("time to ready", "ready_s"),
            ("sync CPU", "sync_cpu_s"),
        )
    )
    out = [
        "# Benchmarks: kube-batch-exporter and kube-state-metrics on one cluster",
        "",
        f'Written by `make bench ARGS="{" ".join(sys.argv[1:])}"` on {time.strftime("%Y-%m-%d")}. '
        "Ratios are ours / KSM (below 1: we use less); absolute times are context, this machine "
        "is small and shared by the control plane, the load and the three exporters.",
        "",
        f"**Headline at size {largest}**: {headline}.",
        "",
        target_table(largest, results[largest]),
        "## Machine and versions",
        "",
        f"- {machine()}",
        f"- kube-batch-exporter {__version__} on Python {platform.python_version()}; "
        f"kube-state-metrics {ksm_version(ksm)} "
        "built from its Go module (`tests/cluster/build-tool.sh`), run with "
        "`--resources=jobs,cronjobs,pods --use-apiserver-cache --enable-gzip-encoding "
        "--server-write-timeout=10m` (without the third, KSM ignores a request for gzip; with "
        "the default write timeout of a minute, it cuts every gzip scrape at XL short)",
        "- control plane: kube-apiserver and etcd as built by `tests/cluster/build.sh` "
        "(Kubernetes v1.34.10, etcd v3.6.16), with "
        + ", ".join(f"`{k}={v}`" for k, v in CONTROL_PLANE_ENV.items()),
        "",
        "## Method",
        "",
        "For each size, `bench/cluster.py` starts the local control plane, stops "
        "kube-controller-manager, and writes the fleet of `bench/fleet.py` through the API "
        "(objects, then their status, as the controllers would): 20 namespaces, 90 % of Jobs "
        "owned by a CronJob, 95 % finished (a tenth of those failed), 5 % running, the same "
        "number of Pods per Job (failed attempts, then the last one). Both exporters then start "
        "at the same moment. *Ready*: all Jobs of the fleet are in the exporter's /metrics "
        "(polled every 0.5 s, both alike). *CPU*: user + system seconds from /proc. *Peak RSS*: "
        "VmHWM at the end; *steady RSS*: VmRSS 20 s after ready. *Scrapes*: "
        f"{args.scrapes} alternating scrapes each, latency to the last byte, with the headers "
        "Prometheus 3.16 sends (OpenMetrics preferred, `Accept-Encoding: gzip`). *Churn*: "
        f"{args.churn_rate:g} Jobs per second for {args.churn_seconds:g} s are created, run "
        "(Job and Pod status updates) and finish while the oldest Jobs and their Pods are "
        "deleted; CPU per 1,000 watch events (our exporter's count of the jobs, cronjobs and "
        "pods events; KSM watches the same objects). Series are sample lines of one scrape: "
        "KSM's are its default job/cronjob/pod families, ours are the contract's. A second "
        "KSM runs with `--metric-allowlist` of the families a batch on-call needs for the "
        "questions our dashboards answer (`bench/cluster.py`, `ALLOWLIST`: "
        + ", ".join(f"`{name}`" for name in ALLOWLIST)
        + "); all three exporters run at once.",
        "",
        "## Results",
        "",
        *(size_table(size, r) for size, r in results.items()),
        "## Micro-benchmarks (pytest-benchmark, `bench/test_hotpaths.py`)",
        "",
        micro_table(args.micro_json),
    ]
    if profile:
        out += [
            f"## Profile: our initial sync at size {largest} (py-spy, busy samples)",
            "",
            "Own time (the function itself, not what it calls):",
            "",
            "| share | function |",
            "|---|---|",
            *profile,
            "",
        ]
    return "\n".join(out)


RECORDED = "## Recorded run at size "


def recorded_section(
    results: dict[str, dict[str, dict[str, float]]], args: argparse.Namespace, sharded: str
) -> str:
    """One run kept apart from the report: its command, target and size tables, its shards.

    Why: a size too slow to re-run with every report (XL writes 410,000 objects) keeps its
    figures, dated, while later runs rewrite the report above the findings marker.
    """
    sizes = ",".join(results)
    out = [
        f"{RECORDED}{sizes} ({time.strftime('%Y-%m-%d')})",
        "",
        f'Written by `make bench ARGS="{" ".join(sys.argv[1:])}"`; the method is the one above, '
        f"with {args.scrapes} scrapes per exporter. A later run of the same sizes replaces it.",
        "",
    ]
    for size, by_exporter in results.items():
        out += [target_table(size, by_exporter, "###"), size_table(size, by_exporter)]
    return "\n".join([*out, sharded.replace("## Sharded", "### Sharded", 1)])


def with_recorded(text: str, section: str) -> str:
    """``text`` with ``section`` just below the findings marker, replacing its earlier run."""
    head, _, tail = text.partition(FINDINGS)
    title = section.split(" (", 1)[0]
    tail = re.sub(rf"\n{re.escape(title)} \(.*?(?=\n## |\Z)", "", tail, flags=re.DOTALL)
    return f"{head}{FINDINGS}\n\n{section.rstrip()}\n\n{tail.lstrip()}"


def main() -> int:
    """Build KSM, measure every size asked for, print and write the report."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="S,M", help="comma-separated of S, M, L, XL")
    parser.add_argument("--scrapes", type=int, default=60)
    parser.add_argument("--churn-rate", type=float, default=10.0, help="Jobs replaced per second")
    parser.add_argument("--churn-seconds", type=float, default=60.0)
    parser.add_argument("--profile", action="store_true", help="py-spy the largest size's sync")
    parser.add_argument("--micro-json", type=Path, help="pytest-benchmark JSON to include")
    parser.add_argument(
        "--shards", type=int, default=0, help="also run this many shards at the largest size"
    )
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "benchmarks.md")
    parser.add_argument(
        "--no-allowlisted",
        dest="allowlisted",
        action="store_false",
        help="run KSM with its defaults only (at XL, both KSMs do not fit in memory)",
    )
    parser.add_argument(
        "--recorded",
        action="store_true",
        help="keep this run as a dated section below the findings marker; the report stays",
    )
    args = parser.parse_args()
    ksm = subprocess.run(
        ["bash", str(ROOT / "tests/cluster/build-tool.sh"), "kube-state-metrics"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    sizes = args.sizes.split(",")
    results = {}
    profile: list[str] = []
    sharded: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="kbe-bench-") as tmp:
        for size in sizes:
            last = size == sizes[-1]
            wanted = profile if args.profile and last else None
            split = sharded if args.shards > 1 and last else None
            results[size] = run_size(size, ksm, args, Path(tmp), wanted, split)
            print(size_table(size, results[size]), flush=True)
    shards = shard_table(sizes[-1], sharded) if sharded else ""
    print(shards, flush=True)
    if args.recorded:
        before = args.output.read_text() if args.output.exists() else ""
        args.output.write_text(with_recorded(before, recorded_section(results, args, shards)))
        say(f"kept the run in {args.output}")
        return 0
    kept = ""  # hand-written findings below the marker survive a re-run
    if args.output.exists() and FINDINGS in args.output.read_text():
        kept = FINDINGS + args.output.read_text().split(FINDINGS, 1)[1]
    written = report(results, profile, args, ksm)
    if shards:
        written += "\n" + shards
    args.output.write_text(written + ("\n" + kept if kept else ""))
    say(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
