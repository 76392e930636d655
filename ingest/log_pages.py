"""Reading every row of a window of a new-api / one-api log exactly once, whichever build.

Two answer shapes exist (read in the builds' code, see tests/platform_standin.py):

- new-api since late 2024: ``{"data": {"page", "page_size", "total", "items"}}``, ``p`` from
  1, ``page_size`` ≤ 100, newest id first. Offset pages over a list that grows at the top (a
  late row, a second node's clock) shift under a reader, and the user routes' ids are page
  positions that shift with them, so rows cannot be told apart across pages. So a window is
  read in **slices that each fit in one answer**: ask for the window; when it holds more rows
  than one answer, cut it at the oldest second on that first page and ask for the newer part
  again, which then fits; repeat below the cut. Every row comes from an answer that held its
  whole slice (a consistent snapshot), and two identical rows are two rows. A single second
  with more rows than a page is paged, and read again until two passes agree.
- one-api, and new-api before late 2024: a bare ``data`` list, ``p`` from 0, no total; one-api
  ignores ``page_size`` and always sends ItemsPerPage (10). Paged until an empty page.

The first request asks for ``p=0``: new-api reads it as page 1, one-api as page 0.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from .platform import PlatformClient, PlatformError

LOG_PATH = "/api/log/self"
PAGE_SIZE = 100            # new-api caps page_size at 100
MAX_PASSES = 3             # over one crowded second


@dataclass
class Answer:
    items: list[dict[str, Any]]
    total: int | None            # None: a bare list (no total)
    size: int


@dataclass
class WalkStats:
    requests: int = 0
    rows: int = 0
    expected: int = 0
    passes: int = 0


Progress = Callable[[int, int, int], None]   # (pages fetched, rows so far, rows expected)


class LogWalker:
    """Yields the rows of ``[start, end]`` of one log type, slice by slice (lists of rows)."""

    def __init__(self, client: PlatformClient, log_type: int, *, page_size: int = PAGE_SIZE,
                 stats: WalkStats | None = None, on_page: Progress | None = None) -> None:
        self.client = client
        self.log_type = log_type
        self.page_size = page_size
        self.stats = stats or WalkStats()
        self.on_page = on_page

    def ask(self, start: int, end: int, p: int) -> Answer:
        body = self.client.get_json(LOG_PATH, {
            "p": p, "page_size": self.page_size, "type": self.log_type,
            "start_timestamp": start, "end_timestamp": end})
        self.stats.requests += 1
        data = body.get("data")
        if isinstance(data, list):
            answer = Answer(data, None, self.page_size)
        elif isinstance(data, dict) and isinstance(data.get("items") or [], list):
            answer = Answer(data.get("items") or [], int(data.get("total") or 0),
                            int(data.get("page_size") or self.page_size))
        else:
            raise PlatformError(f"{self.client.base_url}{LOG_PATH}: unexpected answer "
                                "(neither a list of rows nor data.items)")
        if self.on_page:
            self.on_page(self.stats.requests, self.stats.rows, self.stats.expected)
        return answer

    def slices(self, start: int, end: int) -> Iterator[list[dict[str, Any]]]:
        first = self.ask(start, end, 0)
        if first.total is None:
            yield from self._pages_from_zero(start, end, first)
            return
        self.stats.expected += first.total
        yield from self._slices(start, end, first)

    def _take(self, rows: list[dict[str, Any]], start: int, end: int) -> list[dict[str, Any]]:
        outside = [r for r in rows if not start <= _created(r) <= end]
        if outside:
            raise PlatformError(
                f"{self.client.base_url}{LOG_PATH}: asked for rows created {start}…{end}, got "
                f"one created {_created(outside[0])}: the platform ignores start_timestamp / "
                "end_timestamp, so its log cannot be read window by window")
        self.stats.rows += len(rows)
        return rows

    def _slices(self, start: int, end: int, answer: Answer) -> Iterator[list[dict[str, Any]]]:
        hi = end
        while True:
            if answer.total is not None and answer.total <= len(answer.items):
                yield self._take(answer.items, start, hi)
                return
            cut = min(_created(r) for r in answer.items) if answer.items else hi
            if cut >= hi:                         # the newest second alone fills a page
                yield self._take(self._crowded_second(hi), hi, hi)
            else:
                yield from self._fitting(cut + 1, hi)
            hi = cut if cut < hi else hi - 1
            if hi < start:
                return
            answer = self.ask(start, hi, 1)

    def _fitting(self, lo: int, hi: int) -> Iterator[list[dict[str, Any]]]:
        """``[lo, hi]``, expected to fit one answer; halved while it does not."""
        answer = self.ask(lo, hi, 1)
        if answer.total is not None and answer.total <= len(answer.items):
            yield self._take(answer.items, lo, hi)
        elif lo == hi:
            yield self._take(self._crowded_second(hi), hi, hi)
        else:
            mid = (lo + hi) // 2
            yield from self._fitting(mid + 1, hi)
            yield from self._fitting(lo, mid)

    def _crowded_second(self, second: int) -> list[dict[str, Any]]:
        """Every row of one second that holds more than a page: passes until two agree."""
        previous: Counter[str] | None = None
        for _ in range(MAX_PASSES):
            self.stats.passes += 1
            rows: list[dict[str, Any]] = []
            p, total = 1, None
            while True:
                answer = self.ask(second, second, p)
                rows.extend(answer.items)
                total = answer.total
                if not answer.items or len(rows) >= (total or 0) or len(answer.items) < \
                        answer.size:
                    break
                p += 1
            bag = Counter(_content_key(r) for r in rows)
            if len(rows) == total and bag == previous:
                return rows
            previous = bag
        raise PlatformError(
            f"{self.client.base_url}{LOG_PATH}: second {second} holds more rows than a page "
            f"({total}) and {MAX_PASSES} reads of it disagree (does the platform ignore `p`?); "
            "the rows read are kept and the next run asks again")

    def _pages_from_zero(self, start: int, end: int, first: Answer
                         ) -> Iterator[list[dict[str, Any]]]:
        answer, p = first, 0
        while answer.items:
            yield self._take(answer.items, start, end)
            p += 1
            following = self.ask(start, end, p)
            if following.items and following.items == answer.items:
                raise PlatformError(
                    f"{self.client.base_url}{LOG_PATH}: page {p} repeats page {p - 1}: the "
                    "platform ignores `p`, so its log cannot be paged; the rows read are kept")
            answer = following


def _created(row: dict[str, Any]) -> int:
    try:
        return int(row["created_at"])
    except (TypeError, ValueError):
        raise PlatformError(f"a log row without a usable created_at: {row.get('created_at')!r}")\
            from None


def _content_key(row: dict[str, Any]) -> str:
    """A row without its ``id`` (a page position on current new-api builds)."""
    return json.dumps({k: v for k, v in row.items() if k != "id"}, sort_keys=True, default=str)
