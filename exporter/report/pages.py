"""The batch status page and an owner's page: server-rendered HTML, inline CSS and SVG.

Nothing is fetched from anywhere (it works air-gapped), the one stylesheet is allowed by its
hash in :data:`CSP` (no inline ``style`` attribute, no script), every value from the cluster
is escaped, and the page refreshes itself every :data:`REFRESH_SECONDS`.
"""

from __future__ import annotations

import base64
import hashlib
import html
import time
from collections.abc import Sequence
from urllib.parse import quote, urlencode

from exporter.cron.durations import format_go_duration
from exporter.report.owners import OwnerStatus
from exporter.track.runs import RecentRun

REFRESH_SECONDS = 30
STRIP_RUNS = 20
"""Bars in a row's strip of latest runs."""

STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:0;color:#1b1f24;background:#f6f8fa}
header,main{padding:8px 16px}header{background:#24292f;color:#fff}
header a{color:#9ecbff}h1{font-size:18px;margin:4px 0}h2{font-size:16px}
.wrap{overflow-x:auto}table{border-collapse:collapse;background:#fff;width:100%}
th,td{padding:6px 8px;border-bottom:1px solid #d0d7de;text-align:left;vertical-align:top}
th{background:#eaeef2;font-weight:600;white-space:nowrap}
.bad{color:#cf222e;font-weight:600}.ok{color:#1a7f37}.muted{color:#57606a}
.chip{display:inline-block;padding:0 6px;border-radius:8px;background:#ffebe9;color:#cf222e;
margin:1px;white-space:nowrap}.chip.ok{background:#dafbe1;color:#1a7f37}
.chip.info{background:#ddf4ff;color:#0969da}nav a{margin-right:12px}
small{color:#57606a}
@media (max-width:700px){body{font-size:13px}th,td{padding:4px}}
"""
CSP = (
    "default-src 'none'; img-src data:; form-action 'self'; base-uri 'none'; "
    "style-src 'sha256-" + base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode() + "'"
)
"""The Content-Security-Policy the pages are served with: nothing but that stylesheet."""

COLOURS = {"succeeded": "#2da44e", "failed": "#cf222e", "deleted": "#8c959f"}


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def ago(at: float | None, now: float) -> str:
    """``3m ago`` or ``in 2h`` (whole units, the largest two)."""
    if at is None:
        return "—"
    seconds = now - at
    words = duration(abs(seconds))
    return f"{words} ago" if seconds >= 0 else f"in {words}"


def duration(seconds: float | None) -> str:
    """A duration in at most two units: ``45s``, ``3m 20s``, ``2h 5m``, ``3d 4h``."""
    if seconds is None:
        return "—"
    s = round(seconds)
    for unit, size, sub, subsize in (("d", 86400, "h", 3600), ("h", 3600, "m", 60)):
        if s >= size:
            rest = (s % size) // subsize
            return f"{s // size}{unit} {rest}{sub}" if rest else f"{s // size}{unit}"
    if s >= 60:
        return f"{s // 60}m {s % 60:02d}s" if s % 60 else f"{s // 60}m"
    return f"{s}s"


def stamp(at: float | None) -> str:
    """An absolute UTC time, to the second."""
    return "—" if at is None else time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime(at))


def owner_path(o: OwnerStatus, prefix: str = "/owners") -> str:
    """Where an owner's page (or its JSON, with prefix ``/api/v1/owners``) is."""
    return f"{prefix}/{quote(o.namespace)}/{quote(o.kind)}/{quote(o.name, safe='')}"


def _page(title: str, body: str, leading: bool, leader: str = "") -> str:
    where = f" (pod <code>{_e(leader)}</code>)" if leader else ""
    standby = (
        ""
        if leading
        else f"<p class=bad>This replica stands by: the leader{where} has the batch status.</p>"
    )
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        "<meta name=viewport content='width=device-width,initial-scale=1'>"
        f"<meta http-equiv=refresh content={REFRESH_SECONDS}>"
        f"<title>{_e(title)}</title><style>{STYLE}</style></head><body>"
        f"<header><h1>{_e(title)}</h1><nav><a href='/'>batch status</a>"
        "<a href='/status'>exporter</a><a href='/api/v1/owners'>JSON</a>"
        "<a href='/metrics'>metrics</a></nav></header>"
        f"<main>{standby}{body}</main></body></html>"
    )


def strip(recent: Sequence[RecentRun]) -> str:
    """The latest runs as bars, oldest left: colour is the result, height the duration."""
    runs = list(reversed(recent[:STRIP_RUNS]))
    if not runs:
        return "<span class=muted>no runs yet</span>"
    longest = max((r.duration or 0.0) for r in runs) or 1.0
    bars = []
    for i, r in enumerate(runs):
        height = 4 + 20 * (r.duration or 0.0) / longest
        colour = COLOURS.get(r.result, "#8c959f")
        tip = f"{r.job_name or 'run'}: {r.result} ({r.reason}), {duration(r.duration)}"
        bars.append(
            f"<rect x={i * 7} y={24 - height:.1f} width=5 height={height:.1f} fill='{colour}'>"
            f"<title>{_e(tip)}</title></rect>"
        )
    return (
        f"<svg width={len(runs) * 7} height=24 role=img aria-label='latest runs'>"
        f"{''.join(bars)}</svg>"
    )


def _pod_failures(r: RecentRun) -> str:
    """``OOMKilled (exit 137) &times;2, Error (exit 1)``."""
    return ", ".join(
        f"{_e(why)}{'' if code is None else f' (exit {code})'}{f' &times;{n}' if n > 1 else ''}"
        for why, code, n in r.pod_failures
    )


def _chips(o: OwnerStatus) -> str:
    chips = [f"<span class=chip>{_e(p)}</span>" for p in o.problems]
    if o.suspended:
        chips.append("<span class='chip info'>suspended</span>")
    if o.alerts_off:
        chips.append("<span class='chip info'>alerts off</span>")
    return "".join(chips) or "<span class='chip ok'>healthy</span>"


def _schedule(o: OwnerStatus) -> str:
    if o.schedule is None:
        return "<span class=muted>Job family</span>"
    words = _e(o.schedule_in_words)
    text = f"{words} <small>{_e(o.time_zone)}</small><br><small><code>{_e(o.schedule)}</code>"
    if o.schedule_error:
        text += f" <span class=bad>{_e(o.schedule_error)}</span>"
    return text + "</small>"


def _last(o: OwnerStatus, now: float) -> str:
    last = o.last
    if last is None:
        return "<span class=muted>—</span>"
    css = "ok" if last.result == "succeeded" else "bad"
    pods = f"<br><small>pods: {_pod_failures(last)}</small>" if last.pod_failures else ""
    return (
        f"<span class={css}>{_e(last.result)}</span> <small>{_e(last.reason)}</small>{pods}<br>"
        f"<small>{duration(last.duration)}, {ago(last.end, now)}</small>"
    )


def _missed(o: OwnerStatus) -> str:
    if not o.missed:
        return "0" if o.kind == "CronJob" else "—"
    return "<br>".join(f"{n} <small>{_e(reason)}</small>" for reason, n in o.missed.items())


def index(
    statuses: Sequence[OwnerStatus],
    now: float,
    leading: bool,
    namespace: str = "",
    only_problems: bool = False,
    leader: str = "",
) -> str:
    """The batch status page: one row per owner, problems first, filtered as asked."""
    namespaces = sorted({o.namespace for o in statuses})
    shown = [
        o
        for o in statuses
        if (not namespace or o.namespace == namespace) and (o.problems or not only_problems)
    ]
    bad = sum(1 for o in statuses if o.problems)

    def link(ns: str, problems: bool, text: str) -> str:
        params = {"namespace": ns} if ns else {}
        if problems:
            params["problems"] = "1"
        return f"<a href='/?{_e(urlencode(params))}'>{_e(text)}</a>"

    filters = [link("", only_problems, "all namespaces")]
    filters += [link(ns, only_problems, ns) for ns in namespaces]
    toggle = link(namespace, not only_problems, "all owners" if only_problems else "only problems")
    rows = "".join(
        "<tr>"
        f"<td>{_chips(o)}</td><td>{_e(o.namespace)}</td>"
        f"<td><a href='{_e(owner_path(o))}'>{_e(o.name)}</a><br><small>{_e(o.kind)}</small></td>"
        f"<td>{_schedule(o)}</td>"
        f"<td>{ago(o.next_run, now)}<br><small>{stamp(o.next_run)}</small></td>"
        f"<td>{_last(o, now)}</td><td>{strip(o.recent)}</td>"
        f"<td class={'bad' if o.consecutive_failures >= o.failing_after else 'ok'}>"
        f"{o.consecutive_failures} / {o.failing_after}</td>"
        f"<td>{_missed(o)}</td>"
        f"<td>{duration(o.overdue_seconds) if o.overdue_seconds else '—'}</td>"
        "</tr>"
        for o in shown
    )
    body = (
        f"<p><b class={'bad' if bad else 'ok'}>{bad} of {len(statuses)} owners with problems"
        f"</b> <small>as of {stamp(now)}</small></p>"
        f"<p><small>namespace:</small> {' '.join(filters)} · {toggle}</p>"
        "<div class=wrap><table><tr><th>status</th><th>namespace</th><th>owner</th>"
        "<th>schedule</th><th>next run</th><th>last run</th><th>latest runs</th>"
        "<th>failures in a row</th><th>missed (24 h)</th><th>overdue</th></tr>"
        f"{rows or '<tr><td colspan=10 class=muted>no owner here</td></tr>'}</table></div>"
    )
    return _page("kube-batch-exporter: batch status", body, leading, leader)


def detail(o: OwnerStatus, now: float, leading: bool) -> str:
    """One owner's page: its state, thresholds and latest runs."""
    runs = "".join(
        f"<tr><td>{_e(r.job_name) or '<span class=muted>unknown</span>'}</td>"
        f"<td>{_e(r.trigger)}</td><td>{stamp(r.start)}</td><td>{duration(r.duration)}</td>"
        f"<td class={'ok' if r.result == 'succeeded' else 'bad'}>{_e(r.result)}</td>"
        f"<td>{_e(r.reason)}</td>"
        f"<td>{_pod_failures(r) or '—'}</td></tr>"
        for r in o.recent
    )
    thresholds = "".join(
        f"<tr><td>{_e(k)}</td><td>{format_go_duration(v) if k.endswith('_seconds') else int(v)}"
        "</td></tr>"
        for k, v in o.thresholds.items()
    )
    commands = ""
    if o.last is not None and o.last.job_name:
        job = f"job/{o.last.job_name}"
        commands = (
            f"<p><small>next:</small> <code>kubectl -n {_e(o.namespace)} describe {_e(job)}</code>"
            f" · <code>kubectl -n {_e(o.namespace)} logs {_e(job)}</code></p>"
        )
    body = (
        f"<p>{_chips(o)} {_e(o.kind)} <b>{_e(o.namespace)}/{_e(o.name)}</b></p>"
        f"<p>{_schedule(o)}</p>"
        f"<p>next run {ago(o.next_run, now)} <small>{stamp(o.next_run)}</small> · "
        f"failures in a row {o.consecutive_failures} / {o.failing_after} · "
        f"runs {', '.join(f'{n} {_e(k)}' for k, n in o.runs.items()) or 'none yet'}</p>"
        f"{commands}"
        "<h2>Latest runs</h2><div class=wrap><table><tr><th>Job</th><th>trigger</th>"
        "<th>start</th><th>duration</th><th>result</th><th>reason</th>"
        "<th>failed pods</th></tr>"
        f"{runs or '<tr><td colspan=7 class=muted>no runs yet</td></tr>'}</table></div>"
        "<h2>Thresholds</h2><div class=wrap><table><tr><th>threshold</th><th>value</th></tr>"
        f"{thresholds or '<tr><td colspan=2 class=muted>the defaults</td></tr>'}</table></div>"
    )
    return _page(f"{o.namespace}/{o.name}", body, leading)
