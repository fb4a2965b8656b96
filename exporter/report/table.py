"""The owners' statuses as a terminal table (``kube-batch-exporter report``), colour on a TTY."""

from __future__ import annotations

from collections.abc import Sequence

from exporter.report.owners import OwnerStatus
from exporter.report.pages import ago, duration

RED, GREEN, DIM, RESET = "\033[31m", "\033[32m", "\033[2m", "\033[0m"
HEADER = ("STATUS", "NAMESPACE", "KIND", "NAME", "SCHEDULE", "LAST RUN", "FAILURES", "MISSED",
          "NEXT RUN")  # fmt: skip


def _clean(text: str) -> str:
    """One line of printable text: a value from the cluster must not move the cursor."""
    return "".join(c if c.isprintable() else "?" for c in text)


def rows(statuses: Sequence[OwnerStatus], now: float) -> list[tuple[str, ...]]:
    """One row of plain cells per owner, in the statuses' order (problems first)."""
    out = []
    for o in statuses:
        last = o.last
        last_run = "-" if last is None else (
            f"{last.result} {last.reason} {duration(last.duration)}, {ago(last.end, now)}"
        )  # fmt: skip
        schedule = "-" if o.schedule is None else f"{o.schedule_in_words} ({o.time_zone})"
        flags = [*o.problems] + (["suspended"] if o.suspended else [])
        out.append(
            tuple(
                _clean(cell)
                for cell in (
                    ", ".join(flags) or "healthy",
                    o.namespace,
                    o.kind,
                    o.name,
                    schedule,
                    last_run,
                    f"{o.consecutive_failures}/{o.failing_after}",
                    str(sum(o.missed.values())) if o.kind == "CronJob" else "-",
                    ago(o.next_run, now) if o.next_run is not None else "-",
                )
            )
        )
    return out


def table(statuses: Sequence[OwnerStatus], now: float, colour: bool) -> str:
    """The aligned table, with a summary line; problem rows red and healthy ones green."""
    body = rows(statuses, now)
    widths = [max(len(r[i]) for r in (HEADER, *body)) for i in range(len(HEADER))]

    def line(cells: tuple[str, ...]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    lines = [f"{DIM}{line(HEADER)}{RESET}" if colour else line(HEADER)]
    for o, cells in zip(statuses, body, strict=True):
        text = line(cells)
        if colour:
            text = f"{RED if o.problems else GREEN}{text}{RESET}"
        lines.append(text)
    bad = sum(1 for o in statuses if o.problems)
    lines.append(f"{bad} of {len(statuses)} owners with problems")
    return "\n".join(lines) + "\n"
