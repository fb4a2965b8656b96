"""The status pages: escaped, self-contained under their CSP, problems first, filtered."""

from __future__ import annotations

import base64
import hashlib
import re
from html.parser import HTMLParser

from exporter.report import pages
from exporter.report.owners import OwnerStatus
from exporter.track.runs import RecentRun

HOSTILE = "<script>alert('x')</script> & \"quoted\"\nnext line"


def run(result: str, duration: float, name: str = "backup-1") -> RecentRun:
    return RecentRun(name, "schedule", 0.0, duration, duration, result, "Reason", ())


def owner(name: str = "backup", problems: tuple[str, ...] = (), **kw: object) -> OwnerStatus:
    fields: dict[str, object] = {
        "namespace": "ns",
        "kind": "CronJob",
        "name": name,
        "problems": problems,
        "schedule": "30 2 * * *",
        "schedule_in_words": "daily at 02:30",
        "time_zone": "UTC",
        "schedule_error": "",
        "suspended": False,
        "alerts_off": False,
        "next_run": 1000.0,
        "overdue_seconds": 0.0,
        "consecutive_failures": 0,
        "failing_after": 3,
        "missed": {},
        "runs": {},
        "thresholds": {},
        "recent": (),
    }
    fields.update(kw)
    return OwnerStatus(**fields)  # type: ignore[arg-type]


class Tags(HTMLParser):
    """Every start tag and attribute of a page, and its text."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parsed(page: str) -> Tags:
    tags = Tags()
    tags.feed(page)
    return tags


def test_values_from_the_cluster_are_escaped_everywhere() -> None:
    bad = owner(
        schedule=HOSTILE,
        schedule_in_words=HOSTILE,
        schedule_error=HOSTILE,
        problems=("invalid schedule",),
        recent=(
            RecentRun("backup-1", "schedule", 0.0, 5.0, 5.0, "failed", HOSTILE, ((HOSTILE, 1, 2),)),
        ),
    )
    for page in (pages.index([bad], 100.0, True), pages.detail(bad, 100.0, True)):
        tags = parsed(page)
        assert "script" not in {t for t, _ in tags.tags}  # no element from the value
        assert "<script>" not in page and "&lt;script&gt;" in page
        assert "&amp; &quot;quoted&quot;" in page
        assert HOSTILE.split("\n")[0] in "".join(tags.text)  # shown, as text


def test_the_pages_need_nothing_but_their_own_stylesheet() -> None:
    page = pages.index([owner(recent=(run("succeeded", 5), run("failed", 50)))], 100.0, True)
    tags = parsed(page)
    assert not [t for t, _ in tags.tags if t in ("script", "link", "img", "iframe")]
    assert not [a for _, attrs in tags.tags for a in attrs if a == "style" or a.startswith("on")]
    assert not re.search(r"(src|href)=['\"]?https?:", page)  # nothing from elsewhere
    (style,) = re.findall(r"<style>(.*?)</style>", page, re.S)
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    assert f"style-src 'sha256-{digest}'" in pages.CSP and "default-src 'none'" in pages.CSP
    assert f"content={pages.REFRESH_SECONDS}" in page


def test_the_strip_shows_each_run_by_result_and_duration() -> None:
    svg = pages.strip((run("failed", 100), run("succeeded", 50), run("deleted", 0)))
    bars = re.findall(r"<rect x=(\d+) y=[\d.]+ width=5 height=([\d.]+) fill='(#\w+)'", svg)
    assert [(x, colour) for x, _, colour in bars] == [
        ("0", pages.COLOURS["deleted"]),  # oldest left
        ("7", pages.COLOURS["succeeded"]),
        ("14", pages.COLOURS["failed"]),
    ]
    heights = [float(h) for _, h, _ in bars]
    assert heights[0] < heights[1] < heights[2] == 24.0
    assert pages.strip(()) == "<span class=muted>no runs yet</span>"


def test_filters_by_namespace_and_problems() -> None:
    statuses = [
        owner("broken", problems=("failing",)),
        owner("fine"),
        owner("elsewhere", namespace="other"),
    ]
    shown = parsed(pages.index(statuses, 100.0, True, namespace="ns")).tags
    links = [
        a["href"] for t, a in shown if t == "a" and (a.get("href") or "").startswith("/owners")
    ]
    assert links == ["/owners/ns/CronJob/broken", "/owners/ns/CronJob/fine"]
    only = pages.index(statuses, 100.0, True, only_problems=True)
    assert "/owners/ns/CronJob/broken" in only and "/owners/ns/CronJob/fine" not in only
    assert "1 of 3 owners with problems" in only


def test_an_owners_page_says_why_its_pods_failed_and_what_to_type_next() -> None:
    failing = RecentRun(
        "backup-7", "schedule", 0.0, 9.0, 9.0, "failed", "BackoffLimitExceeded",
        (("OOMKilled", 137, 2), ("Evicted", None, 1)),
    )  # fmt: skip
    page = pages.detail(owner(recent=(failing,)), 100.0, True)
    assert "OOMKilled (exit 137) &times;2, Evicted</td>" in page
    assert "kubectl -n ns describe job/backup-7" in page
    assert "kubectl -n ns logs job/backup-7" in page


def test_a_standby_says_so_and_times_read_as_people_say_them() -> None:
    assert "stands by" in pages.index([], 0.0, False)
    assert "the leader (pod <code>kbe-7f9c</code>)" in pages.index(
        [], 0.0, False, leader="kbe-7f9c"
    )
    assert pages.duration(65) == "1m 05s" and pages.duration(7260) == "2h 1m"
    assert pages.duration(90000) == "1d 1h" and pages.duration(59.6) == "1m"
    assert pages.ago(40.0, 100.0) == "1m ago" and pages.ago(160.0, 100.0) == "in 1m"
