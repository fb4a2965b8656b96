"""Readers for the Markdown docs that tests hold against the code."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def section(path: Path, number: int) -> str:
    """The text of ``## <number>. ...`` up to the next heading of that level."""
    text = path.read_text()
    match = re.search(rf"^## {number}\. .*?(?=^## |\Z)", text, re.MULTILINE | re.DOTALL)
    assert match, f"{path.name} has no section {number}"
    return match.group(0)


def table_rows(text: str) -> list[list[str]]:
    """The cells of every Markdown table row of ``text`` (header and rule lines excluded)."""
    rows = []
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if not line.startswith("|") or set(line) <= set("|-: "):
            continue
        if i + 1 < len(lines) and set(lines[i + 1]) <= set("|-: ") and lines[i + 1]:
            continue  # a header: the rule line follows it
        rows.append([cell.strip() for cell in line.strip().strip("|").split("|")])
    return rows


def code_spans(cell: str) -> list[str]:
    """The ``code`` spans of a table cell, in order."""
    return re.findall(r"`([^`]*)`", cell)
