"""LIST pages and watch events to dicts, where one unreadable object loses only itself.

A resource's :class:`Decoder` is given the *shape* its projection reads (nested TypedDicts,
see exporter/store/projecting.py) and decodes with msgspec into dicts of those fields only:
the rest of each object is skipped in C and never built as Python objects, which was most of
what ``json.loads`` spent, and most of the sync's CPU. A body that does not fit the shape
takes slower paths, each of which loses less:

1. the whole page at once, into the shape (every page of a healthy cluster);
2. the page's items one by one, each into the shape or else in full with ``json.loads`` (so
   the projection sees the misfit and names the bad field, exactly as without a shape);
3. the page in full with ``json.loads``, and when even that fails (one object nested
   thousands deep, one object that is not JSON), split by its structure (the top-level
   ``metadata`` and each element of ``items``, found by brackets, commas and strings alone)
   and each item decoded on its own.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Generic, TypedDict, TypeVar

import msgspec

_STRUCTURE = re.compile(rb'[\[\]{},:"]')
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_MISFIT = (msgspec.MsgspecError, ValueError, RecursionError)
"""What msgspec raises for a body that is not JSON, does not fit the shape, or nests too deep."""

T = TypeVar("T")


class _Listed(TypedDict, Generic[T], total=False):
    metadata: Any
    items: list[T]


class _Event(TypedDict, Generic[T]):
    type: Any
    object: T


class BadPage(ValueError):
    """Not a LIST response at all: no object with ``metadata`` and an ``items`` list."""


@dataclass(frozen=True, slots=True)
class Page:
    """One LIST page: its objects, how many could not be read, and where the LIST goes on."""

    items: list[dict[str, Any]]
    unreadable: int
    resource_version: str
    continue_token: str


class Decoder:
    """Decodes one resource's LIST pages and watch lines into dicts of its shape's fields.

    ``shape`` None decodes whole objects (what a sink that reads everything needs).
    """

    def __init__(self, shape: type[Any] | None = None) -> None:
        item: Any = shape or dict[str, Any]
        self._page = msgspec.json.Decoder(_Listed[item])
        self._raw_page = msgspec.json.Decoder(_Listed[msgspec.Raw])
        self._item = msgspec.json.Decoder(item)
        self._event = msgspec.json.Decoder(_Event[item])

    def page(self, body: bytes) -> Page:
        """Decode a LIST response body; items that cannot be decoded are counted, not raised.

        Raises:
            BadPage: the body is not a LIST response (not even its structure can be found).
        """
        try:
            doc = self._page.decode(body)
        except _MISFIT:
            pass
        else:
            return _page(doc.get("items") or [], 0, doc.get("metadata"))
        try:
            raw = self._raw_page.decode(body)
        except _MISFIT:
            return decode_page(body)
        items, unreadable = [], 0
        for part in raw.get("items") or []:
            item = self._object(part)
            if item is None:
                unreadable += 1
            else:
                items.append(item)
        return _page(items, unreadable, raw.get("metadata"))

    def event(self, line: bytes) -> Any:
        """One watch line as JSON: its object in the shape, or in full if it does not fit.

        Raises:
            ValueError: the line is not JSON.
            RecursionError: the line nests too deep for ``json.loads``.
        """
        try:
            return self._event.decode(line)
        except _MISFIT:
            return json.loads(line)

    def _object(self, raw: msgspec.Raw) -> dict[str, Any] | None:
        try:
            item: dict[str, Any] = self._item.decode(raw)
            return item
        except _MISFIT:
            pass
        try:
            full = json.loads(bytes(raw))
        except (ValueError, RecursionError):
            return None
        return full if isinstance(full, dict) else None


def decode_page(body: bytes) -> Page:
    """Decode a LIST response body in full with ``json.loads``, item by item if need be.

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
