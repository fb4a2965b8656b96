"""``report``'s table: aligned, problems first and red on a terminal, nothing from the cluster
that moves the cursor."""

from __future__ import annotations

from exporter.report.table import GREEN, RED, table
from tests.report.test_pages import owner, run


def test_rows_line_up_and_problems_are_red_on_a_terminal() -> None:
    statuses = [
        owner("broken", problems=("failing",), consecutive_failures=3, recent=(run("failed", 65),)),
        owner("fine"),
    ]
    plain = table(statuses, 100.0, colour=False)
    lines = plain.splitlines()
    assert lines[0].split() == [
        "STATUS", "NAMESPACE", "KIND", "NAME", "SCHEDULE", "LAST", "RUN", "FAILURES", "MISSED",
        "NEXT", "RUN",
    ]  # fmt: skip
    assert lines[1].startswith("failing") and "broken" in lines[1] and "3/3" in lines[1]
    assert "failed Reason 1m 05s" in lines[1]
    assert lines[2].startswith("healthy") and lines[-1] == "1 of 2 owners with problems"
    columns = {line.index("CronJob") for line in lines[1:3]}
    assert len(columns) == 1  # aligned
    coloured = table(statuses, 100.0, colour=True).splitlines()
    assert coloured[1].startswith(RED) and coloured[2].startswith(GREEN)


def test_control_characters_from_the_cluster_are_not_printed() -> None:
    text = table([owner("x", schedule_in_words="\x1b[2Jdaily\nnow")], 0.0, colour=False)
    assert "\x1b" not in text and "?[2Jdaily?now" in text
