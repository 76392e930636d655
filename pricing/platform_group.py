"""The group ratio to price a platform's sheet for, derived, never assumed.

The group ratio is the one thing the pricing page cannot be trusted for: new-api serves it
behind ``TryUserAuth``, which reads only the browser session, so a request with an access token
is an anonymous visitor — a user's special group ratios never show, and builds before 2026-05-27
list only the public groups (controller/pricing.go ``GetPricing``, piexian/new-api 77fdac2,
2026-08-18). So the ratio is taken from the account's own newest log rows in that group
(``other.group_ratio``, the ratio the platform actually charged), else from the page with a
warning; when neither has it, or the quota unit or the group is unknown, nothing is derived and
``--apply`` refuses.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ingest.platform import PlatformClient, PlatformError

__all__ = ["GroupRatio", "account_group", "derive_group_ratio", "ratio_from_log",
           "recent_log_rows"]

LOG_PATH = "/api/log/self"


def _exact(value: object) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


@dataclass(frozen=True)
class GroupRatio:
    """The group's ratio and where it came from; ``ratio`` None when it cannot be derived."""

    ratio: Decimal | None
    basis: str
    warnings: tuple[str, ...] = ()


def _other(row: dict[str, Any]) -> dict[str, Any]:
    """A log row's ``other``: a JSON string on new-api (an object in some exports)."""
    other = row.get("other")
    if isinstance(other, str):
        try:
            other = json.loads(other, parse_float=Decimal) if other else {}
        except ValueError:
            return {}
    return other if isinstance(other, dict) else {}


def ratio_from_log(rows: list[dict[str, Any]], group: str) -> GroupRatio | None:
    """The group ratio the platform charged on the account's newest call in ``group``
    (``other.group_ratio``, which is the special ratio when the account has one)."""
    seen = [_exact(_other(r)["group_ratio"]) for r in rows
            if r.get("group") == group and r.get("type") == 2
            and _other(r).get("group_ratio") not in (None, "")]
    if not seen:
        return None
    warnings: tuple[str, ...] = ()
    if len(set(seen)) > 1:
        warnings = (f"your recent calls in group {group!r} were charged at ratios "
                    f"{', '.join(str(r) for r in sorted(set(seen)))}; the newest, {seen[0]}, "
                    "is used",)
    return GroupRatio(seen[0], f"your newest call in group {group} (other.group_ratio)",
                      warnings)


def derive_group_ratio(body: dict[str, Any], group: str, log_rows: list[dict[str, Any]]
                       ) -> GroupRatio:
    """The account's own log first, then the pricing page (see the module docstring)."""
    from_log = ratio_from_log(log_rows, group)
    page = (body.get("group_ratio") or {}).get(group)
    if from_log is not None:
        warnings = from_log.warnings
        if page is not None and _exact(page) != from_log.ratio:
            warnings += (f"the pricing page says group {group!r} has ratio {page}, but the "
                         f"platform charged your calls at {from_log.ratio} (a special ratio the "
                         "page does not show to an access token); prices use "
                         f"{from_log.ratio}",)
        return GroupRatio(from_log.ratio, from_log.basis, warnings)
    if page is not None:
        return GroupRatio(_exact(page), f"the pricing page's ratio for group {group}", (
            f"no call of yours in group {group!r} confirms the page's ratio {page}; the page "
            "answers an access token as an anonymous visitor, so a special ratio of your "
            "account would not show there",))
    return GroupRatio(None, "", (
        f"group {group!r} has no ratio on the pricing page (it answers an access token as an "
        "anonymous visitor, so private groups and special ratios are missing) and none of your "
        "recent log rows in that group carries one",))


def account_group(client: PlatformClient, explicit: str | None) -> tuple[str | None, str]:
    """The group to price for: given, else the account's own (``/api/user/self``); None and why
    when neither is known."""
    if explicit:
        return explicit, ""
    try:
        data = client.get_json("/api/user/self").get("data") or {}
    except PlatformError as exc:
        return None, f"the account's group is unknown ({exc})"
    group = data.get("group")
    return (str(group), "") if group else (None, "the platform did not say the account's group")


def recent_log_rows(client: PlatformClient) -> tuple[list[dict[str, Any]], list[str]]:
    """The account's newest consume rows (one answer; new-api and one-api alike)."""
    try:
        data = client.get_json(LOG_PATH, {"p": 0, "page_size": 100, "type": 2}).get("data")
    except PlatformError as exc:
        return [], [f"your log could not be read to confirm the group ratio ({exc})"]
    rows = data.get("items") if isinstance(data, dict) else data
    return [r for r in rows or [] if isinstance(r, dict)], []
