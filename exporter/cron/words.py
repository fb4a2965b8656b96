"""A schedule in words for people ("daily at 02:30"), for the forms most CronJobs use.

Anything else is shown as written: a wrong paraphrase is worse than the expression itself.
"""

from __future__ import annotations

DAYS = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
MACROS = {
    "@yearly": "yearly",
    "@annually": "yearly",
    "@monthly": "monthly",
    "@weekly": "weekly",
    "@daily": "daily",
    "@midnight": "daily",
    "@hourly": "hourly",
}


def describe(expression: str) -> str:
    """``expression`` in words when it has a common form, else ``expression`` itself."""
    text = " ".join(expression.split())
    if text in MACROS:
        return MACROS[text]
    fields = text.split(" ")
    if len(fields) != 5:
        return text
    minute, hour, dom, month, dow = fields
    if (dom, month) != ("*", "*"):
        return text
    if (minute, hour, dow) == ("*", "*", "*"):
        return "every minute"
    if minute.startswith("*/") and minute[2:].isdigit() and (hour, dow) == ("*", "*"):
        return f"every {int(minute[2:])} minutes"
    if not minute.isdigit() or int(minute) > 59:
        return text
    if (hour, dow) == ("*", "*"):
        return f"hourly at :{int(minute):02d}"
    if not hour.isdigit() or int(hour) > 23:
        return text
    at = f"{int(hour):02d}:{int(minute):02d}"
    if dow == "*":
        return f"daily at {at}"
    if dow.isdigit() and int(dow) <= 7:
        return f"{DAYS[int(dow) % 7]}s at {at}"
    return text
