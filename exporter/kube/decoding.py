"""LIST pages to objects, where one unreadable object loses only itself.

A page is decoded with ``json.loads`` in one go. When that fails (one object nested thousands
deep, one object that is not JSON), failing the whole page would fail the LIST, and every
relist after it, for as long as that one object exists. So the page is split by its
structure instead (the top-level ``metadata`` and each element of ``items``, found by
brackets, commas and strings alone, never decoded as a whole) and each item is decoded on
its own. Only the slow path pays for the splitting.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

_STRUCTURE = re.compile(rb'[\[\]{},:"]')
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)


class BadPage(ValueError):
    """Not a LIST response at all: no object with ``metadata`` and an ``items`` list."""


@dataclass(frozen=True, slots=True)
class Page:
    """One LIST page: its objects, how many could not be read, and where the LIST goes on."""

    items: list[dict[str, Any]]
    unreadable: int
    resource_version: str
    continue_token: str


def decode_page(body: bytes) -> Page:
    """Decode a LIST response body; items that cannot be decoded are counted, not raised.

    Raises:
        BadPage: the body is not a LIST response (not even its structure can be found).
    """
    try:
        doc = json.loads(body)
    except (ValueError, RecursionError):
        return _decode_items_one_by_one(body)
    if not isinstance(doc, dict) or not isinstance(doc.get("items") or [], list):
        raise BadPage("not a list object")
    items = doc.get("items") or []
    objects = [item for item in items if isinstance(item, dict)]
    return _page(objects, len(items) - len(objects), doc.get("metadata"))


def _page(items: list[dict[str, Any]], unreadable: int, meta: object) -> Page:
    meta = meta if isinstance(meta, dict) else {}
    return Page(
        items, unreadable, str(meta.get("resourceVersion") or ""), str(meta.get("continue") or "")
    )


def _decode_items_one_by_one(body: bytes) -> Page:
    meta_raw, items_raw = _split(body)
    if meta_raw is None or items_raw is None:
        raise BadPage("the body is not JSON and has no LIST structure")
    try:
        meta = json.loads(meta_raw)
    except (ValueError, RecursionError):
        raise BadPage("the LIST metadata is not JSON") from None
    items, unreadable = [], 0
    for raw in items_raw:
        try:
            item = json.loads(raw)
        except (ValueError, RecursionError):
            item = None
        if isinstance(item, dict):
            items.append(item)
        else:
            unreadable += 1
    return _page(items, unreadable, meta)


def _split(body: bytes) -> tuple[bytes | None, list[bytes] | None]:
    """The raw top-level ``metadata`` value and the raw elements of ``items``."""
    depth, pos = 0, 0
    key: bytes | None = None  # the key whose value is being read at depth 1
    last_string = b""
    value_start = 0
    meta: bytes | None = None
    items: list[bytes] | None = None
    item_start = -1  # inside the items array: where the current element began
    while match := _STRUCTURE.search(body, pos):
        char, at, pos = body[match.start()], match.start(), match.end()
        if char == 0x22:  # a string: skip it whole
            string = _STRING.match(body, at)
            if string is None:
                break  # unterminated: what was found so far is all there is
            pos = string.end()
            if depth == 1:
                last_string = body[at + 1 : pos - 1]
        elif char == 0x3A and depth == 1:  # ':' after a top-level key
            key, value_start = last_string, pos
        elif char in b"[{":
            depth += 1
            if depth == 2 and key == b"items" and char == 0x5B:
                items, item_start = [], pos
        elif char in b"]}":
            if depth == 2 and item_start >= 0 and char == 0x5D:  # the end of items
                if body[item_start:at].strip():
                    assert items is not None
                    items.append(body[item_start:at])
                item_start = -1
            depth -= 1
            if depth == 1 and key == b"metadata" and char == 0x7D:
                meta = body[value_start:pos]
        elif char == 0x2C:  # ','
            if depth == 2 and item_start >= 0:
                assert items is not None
                items.append(body[item_start:at])
                item_start = pos
            elif depth == 1:
                key = None
    return meta, items
