"""QIDO-RS paging (PS3.18 8.3.4.4): a search's matches page by page, and what a server kept back.

A server may return fewer matches than a search has: its own maximum (``maxResults``),
with ``Warning: 299 ...: There are N additional results that can be requested``
(dcm4chee-arc) or without a word (Orthanc 1.10.1's ``LimitFindResults``). The rest are
asked for with ``offset``. :func:`fetch_pages` asks until a page comes back empty or
``limit`` matches are in, and says when the server promised more than it sent.

Examples
--------
>>> additional_results('299 pacs:8080 "There are 7 additional results that can be requested"')
(True, 7)
>>> additional_results("299 {+service}: There are additional results that can be requested.")
(True, None)
>>> additional_results("")
(False, None)
>>> rows = [{"0020000D": {"vr": "UI", "Value": [f"1.2.{n}"]}} for n in range(5)]
>>> def server(limit, offset):  # at most 2 a page, as a capped server does
...     return Page(rows[offset : offset + min(limit or 2, 2)], "")
>>> paged = fetch_pages(server, "0020000D", limit=None, offset=1)
>>> [m["0020000D"]["Value"][0] for m in paged.matches], paged.requests
(['1.2.1', '1.2.2', '1.2.3', '1.2.4'], 3)
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Page", "Paged", "additional_results", "fetch_pages"]

#: A Warning header's "more matches can be requested" (PS3.18 8.3.4.4.1; dcm4chee-arc,
#: Microsoft's DICOM server and older editions word it a little differently).
_ADDITIONAL = re.compile(r"(?is)\b299\b.*\badditional results\b")
_COUNT = re.compile(r"(?i)\bthere are (\d+) additional results\b")


@dataclass(frozen=True)
class Page:
    """One QIDO-RS answer: its matches (DICOM JSON) and its ``Warning`` header ("" if none)."""

    matches: list[dict[str, Any]]
    warning: str = ""


@dataclass
class Paged:
    """The matches of all pages, and what the server said of those it kept back.

    ``unfetched`` is True when the server said more matches could be requested
    (``Warning: 299``) and then sent none of them (or sent the same ones again:
    it ignores ``offset``); ``said`` is how many it said remain, when it said so.
    ``repeated`` is True when a page held only matches already received.
    """

    matches: list[dict[str, Any]] = field(default_factory=list)
    requests: int = 0
    unfetched: bool = False
    said: int | None = None
    repeated: bool = False


def additional_results(warning: str) -> tuple[bool, int | None]:
    """Return whether a ``Warning`` header says more matches can be requested, and how many."""
    if not _ADDITIONAL.search(warning or ""):
        return False, None
    count = _COUNT.search(warning)
    return True, int(count.group(1)) if count else None


def _identity(match: dict[str, Any], key: str) -> str:
    """Return a match's unique key (its UID), else the whole match: to spot a page sent twice."""
    value = (match.get(key) or {}).get("Value") or []
    return str(value[0]) if value else json.dumps(match, sort_keys=True)


def fetch_pages(
    fetch: Callable[[int | None, int], Page], key: str, *, limit: int | None, offset: int
) -> Paged:
    """Call ``fetch(limit, offset)`` page after page; return the matches from ``offset``.

    It stops when a page is empty, when ``limit`` matches are in (None: no limit),
    or when a page holds only matches already received (a server that ignores
    ``offset``). ``key`` is the level's unique key (a tag such as ``"0020000D"``).
    """
    paged = Paged()
    seen: set[str] = set()
    promised: tuple[bool, int | None] = (False, None)
    while limit is None or len(paged.matches) < limit:
        wanted = None if limit is None else limit - len(paged.matches)
        page = fetch(wanted, offset + len(paged.matches))
        paged.requests += 1
        fresh = [m for m in page.matches if _identity(m, key) not in seen]
        if not fresh:
            paged.repeated = bool(page.matches)
            paged.unfetched, paged.said = promised
            break
        fresh = fresh if wanted is None else fresh[:wanted]
        seen.update(_identity(m, key) for m in fresh)
        paged.matches += fresh
        promised = additional_results(page.warning)
    return paged
