"""Budgets and alerts: monthly budgets per key and per tag, burn rate, run-out date, spikes.

Alerts (budget over or running out, a key spending far above its own baseline, a key seen for
the first time, a key failing auth) are plain :class:`Alert` values with a stable ``alert_id``;
:func:`send_alerts` POSTs the new ones to a webhook as JSON and records them in
``alerts_sent`` so a receiver gets each alert once.
"""

from __future__ import annotations

import csv
import hashlib
import math
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

import duckdb
import pandas as pd

from ledger import CallmeterError, fetch_one

from . import rollup
from .frames import decimal_frame, records
from .groups import KEY_REF_SQL, key_ref_label
from .periods import AsOf, Bound, as_of, month_bounds, utc_start
from .spikes import spikes

__all__ = ["Budget", "Alert", "set_budget", "delete_budget", "list_budgets",
           "load_budgets_file", "budget_status", "spikes", "new_keys", "auth_failures",
           "alerts", "send_alerts", "WebhookFailed", "SCOPES"]

SCOPES = ("key", "tag", "total")


# MERGE rather than ON CONFLICT: a DuckLake ledger has no PRIMARY KEY (ledger/dialect.py).
UPSERT_BUDGET_SQL = """
MERGE INTO budgets USING (
  SELECT ? AS scope, ? AS target, CAST(? AS DECIMAL(18,6)) AS monthly, ? AS note,
    CAST(? AS TIMESTAMPTZ) AS updated_at) AS src
ON budgets.scope = src.scope AND budgets.target = src.target
WHEN MATCHED THEN UPDATE SET monthly = src.monthly, note = src.note, updated_at = src.updated_at
WHEN NOT MATCHED THEN INSERT VALUES (src.scope, src.target, src.monthly, src.note, src.updated_at)
"""
DELETE_BUDGET_SQL = "DELETE FROM budgets WHERE scope = ? AND target = ?"
LIST_BUDGETS_SQL = "SELECT scope, target, monthly, note, updated_at FROM budgets ORDER BY 1, 2"
DELETE_ALL_BUDGETS_SQL = "DELETE FROM budgets"

# One budget target's spend in the month to date, in the burn window and on the running day,
# in one pass: a key (id, hint or label), a tag k=v, or all. {source} is the priced calls (time
# column ``started_at``) or, when it is current, the daily rollup (``day``, midnight UTC): its
# rows carry every column read here (key_id, key_hint, key_label, tags) and sum the same costs,
# and every bound is a whole UTC day, so the DECIMAL sums of its sums are the calls' own.
SCOPED_SPEND_SQL = """
SELECT coalesce(sum(cost) FILTER (WHERE {time} >= ? AND {time} < ?), 0),
  coalesce(sum(cost) FILTER (WHERE {time} >= ? AND {time} < ?), 0),
  coalesce(sum(cost) FILTER (WHERE {time} >= ?), 0)
FROM {source}
WHERE {time} >= ? AND {time} < ?
  AND CASE ? WHEN 'key' THEN (key_id = ? OR key_label = ? OR key_hint = ?)
             WHEN 'tag' THEN map_extract_value(tags, ?) = ?
             ELSE true END
"""
# Keys as pages name them (fingerprint, else ``label:NAME``): a new-api token name is a key of
# its own; keyless calls (NULL) are no key for new_keys, one "(no key)" row for auth failures.
FIRST_SEEN_SQL = f"""
SELECT {KEY_REF_SQL} AS key_id, any_value(key_hint) AS key_hint,
  any_value(key_label) AS key_label, min(started_at) AS first_seen, sum(requests) AS calls
FROM calls WHERE {KEY_REF_SQL} IS NOT NULL GROUP BY 1
HAVING min(started_at) >= ? AND min(started_at) < ?
ORDER BY first_seen
"""
AUTH_SQL = f"""
SELECT {KEY_REF_SQL} AS key_id, any_value(key_hint) AS key_hint, sum(requests) AS calls,
  coalesce(sum(requests) FILTER (WHERE status IN (401, 403)), 0) AS auth_failures,
  max(started_at) FILTER (WHERE status IN (401, 403)) AS last_failure
FROM calls WHERE started_at >= ? AND started_at < ?
GROUP BY 1 HAVING auth_failures >= ? AND auth_failures >= ? * sum(requests)
ORDER BY auth_failures DESC
"""
ALREADY_SENT_SQL = "SELECT alert_id FROM alerts_sent WHERE url_hash = ?"
RECORD_SENT_SQL = """
MERGE INTO alerts_sent USING (
  SELECT ? AS alert_id, ? AS kind, ? AS url_hash, CAST(? AS TIMESTAMPTZ) AS sent_at) AS src
ON alerts_sent.alert_id = src.alert_id AND alerts_sent.url_hash = src.url_hash
WHEN NOT MATCHED THEN INSERT VALUES (src.alert_id, src.kind, src.url_hash, src.sent_at)
"""


@dataclass(frozen=True)
class Budget:
    scope: str       # key | tag | total
    target: str      # key id / hint / label; tag as name=value; "all" for total
    monthly: Decimal
    note: str | None = None


def _check(b: Budget) -> Budget:
    """``b`` as stored: a key budget named the way pages and alerts name a label-only key
    (``label:NAME``) is set on the label, which is what the spend query matches."""
    if b.scope not in SCOPES:
        raise ValueError(f"budget scope must be one of {', '.join(SCOPES)}, got {b.scope!r}")
    label = key_ref_label(b.target) if b.scope == "key" else None
    if label is not None:
        b = replace(b, target=label)
    if b.scope == "tag" and "=" not in b.target:
        raise ValueError(f"a tag budget's target is name=value, got {b.target!r}")
    if b.monthly < 0:
        raise ValueError(f"a budget cannot be negative: {b.monthly}")
    return b


def set_budget(conn: duckdb.DuckDBPyConnection, budget: Budget) -> None:
    """Create or replace one budget (the dashboard's Keys page edits through this)."""
    b = _check(budget)
    conn.execute(UPSERT_BUDGET_SQL, [b.scope, b.target, b.monthly, b.note, datetime.now(UTC)])


def delete_budget(conn: duckdb.DuckDBPyConnection, scope: str, target: str) -> None:
    label = key_ref_label(target) if scope == "key" else None
    conn.execute(DELETE_BUDGET_SQL, [scope, target if label is None else label])


def list_budgets(conn: duckdb.DuckDBPyConnection) -> list[Budget]:
    return [Budget(s, t, Decimal(m), n) for s, t, m, n, _ in
            conn.execute(LIST_BUDGETS_SQL).fetchall()]


def load_budgets_file(conn: duckdb.DuckDBPyConnection, path: str) -> int:
    """Replace all budgets with a CSV of ``scope,target,monthly[,note]``; returns the count."""
    budgets = []
    with open(path, newline="", encoding="utf-8") as f:
        for line, row in enumerate(csv.DictReader(f), start=2):
            try:
                budgets.append(_check(Budget(row["scope"].strip(), row["target"].strip(),
                                             Decimal(row["monthly"].strip()),
                                             (row.get("note") or "").strip() or None)))
            except (KeyError, AttributeError, InvalidOperation, ValueError) as exc:
                raise ValueError(f"{path}:{line}: {exc}") from exc
    conn.execute("BEGIN TRANSACTION")
    conn.execute(DELETE_ALL_BUDGETS_SQL)
    for b in budgets:
        set_budget(conn, b)
    conn.execute("COMMIT")
    return len(budgets)


def _spend_bounds(first: date, end: date, burn_start: date) -> tuple[datetime, datetime]:
    """The period one pass of :func:`_spend` reads: the month and the burn window to the end
    of the running day."""
    return utc_start(min(first, burn_start)), utc_start(end + timedelta(days=1))


def _spend(conn: duckdb.DuckDBPyConnection, b: Budget, first: date, end: date,
           burn_start: date, source: tuple[str, str]) -> tuple[Decimal, Decimal, Decimal]:
    """Spend in the month [first, end), in the burn window [burn_start, end) (which may start
    in the month before), and on the running day after it (``end``, not complete), summed
    from ``source`` (:func:`pricing.rollup.summed_source` of :func:`_spend_bounds`: the daily
    rollup when current, as the bounds are whole UTC days; 0.7-1.05 s of the Key detail page at
    100M calls was the read of the calls)."""
    tag_key, _, tag_value = b.target.partition("=")
    lo, hi = _spend_bounds(first, end, burn_start)
    relation, time = source
    sql = SCOPED_SPEND_SQL.format(source=relation, time=time)
    spent, burned, running = fetch_one(conn.execute(sql, [
        utc_start(first), utc_start(end), utc_start(burn_start), utc_start(end), utc_start(end),
        lo, hi, b.scope, b.target, b.target, b.target, tag_key, tag_value]))
    return Decimal(spent), Decimal(burned), Decimal(running)


STATUS_COLUMNS = ["scope", "target", "monthly", "spent", "spent_incl_today", "share_used",
                  "burn_per_day", "projected", "runs_out_on", "as_of", "note"]


def budget_status(conn: duckdb.DuckDBPyConnection, today: date | None = None,
                  *, burn_days: int = 7, when: AsOf | None = None) -> pd.DataFrame:
    """Each budget for a month: spent, burn per day, month-end projection, run-out date.

    ``when`` (default :func:`pricing.periods.as_of` of ``today``) is the one as-of date the
    Key detail page and the Finance forecast share: ``spent`` counts the month through
    ``when.day`` (complete UTC days), ``projected`` is :func:`pricing.forecast.month_forecast`'s
    total for the budget's scope as of that day (so all three give the same month-end figure),
    and the burn rate is the mean of the ``burn_days`` complete days up to ``when.day`` whatever
    the month (on the 1st it is last week's, not 0). ``spent_incl_today`` adds the running day
    (``budget_exceeded`` fires on it).
    """
    from .forecast import month_forecast

    when = when or as_of(today=today)
    first, nxt = month_bounds(when.month)
    end = when.day + timedelta(days=1)
    window_start = end - timedelta(days=burn_days)
    rows: list[dict[str, Any]] = []
    budgets = list_budgets(conn)
    if not budgets:
        return pd.DataFrame(rows, columns=STATUS_COLUMNS)
    # one source for every budget (the rollup's check reads the ledger's markers)
    source = rollup.summed_source(conn, *_spend_bounds(first, end, window_start))
    for b in budgets:
        spent, burned, running = _spend(conn, b, first, end, window_start, source)
        burn = burned / burn_days
        fc = month_forecast(conn, when.month, when.day,
                            key=b.target if b.scope == "key" else None,
                            tag=b.target if b.scope == "tag" else None)
        runs_out = None
        if spent >= b.monthly:
            runs_out = max(when.day, first)
        elif burn > 0:
            day = max(when.day, first - timedelta(days=1)) + timedelta(
                days=math.ceil((b.monthly - spent) / burn))
            runs_out = day if day < nxt else None
        rows.append({"scope": b.scope, "target": b.target, "monthly": b.monthly,
                     "spent": spent, "spent_incl_today": spent + running,
                     "share_used": spent / b.monthly if b.monthly else None,
                     "burn_per_day": burn.quantize(Decimal("0.000001")),
                     "projected": fc.total, "runs_out_on": runs_out, "as_of": when.day,
                     "note": b.note})
    return pd.DataFrame(rows, columns=STATUS_COLUMNS)


# ---- alerts --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Alert:
    """One alert. ``alert_id`` is stable for the same finding in the same period."""

    kind: str        # budget_exceeded | budget_runs_out | spike | new_key | auth_failing
    subject: str     # key id or budget target
    period: str      # the day or month the finding is about ("" when once ever)
    severity: str    # critical | warning | info
    message: str
    key_hint: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def alert_id(self) -> str:
        raw = "|".join((self.kind, self.subject, self.period))
        return "a1:" + hashlib.sha256(raw.encode()).hexdigest()[:20]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["alert_id"] = self.alert_id
        d["details"] = {k: _json_value(v) for k, v in self.details.items()}
        return d


def _json_value(v: object) -> object:
    if isinstance(v, Decimal):
        return str(v.quantize(Decimal("0.000001")))
    return v.isoformat() if isinstance(v, date) else v


def new_keys(conn: duckdb.DuckDBPyConnection, since: Bound, until: Bound) -> pd.DataFrame:
    """Keys whose first call ever falls in [since, until)."""
    return decimal_frame(conn, FIRST_SEEN_SQL, [utc_start(since), utc_start(until)])


def auth_failures(conn: duckdb.DuckDBPyConnection, since: Bound, until: Bound, *,
                  min_failures: int = 5, min_share: float = 0.5) -> pd.DataFrame:
    """Keys with at least ``min_failures`` 401/403 answers making up ``min_share`` of calls."""
    return decimal_frame(conn, AUTH_SQL, [utc_start(since), utc_start(until), min_failures,
                                          min_share])


def _budget_alerts(conn: duckdb.DuckDBPyConnection, today: date) -> list[Alert]:
    out = []
    month = today.strftime("%Y-%m")
    for r in records(budget_status(conn, today)):
        subject = f"{r['scope']}:{r['target']}"
        facts = {"monthly": r["monthly"], "spent": r["spent_incl_today"],
                 "projected": r["projected"]}
        if r["spent_incl_today"] >= r["monthly"]:
            out.append(Alert("budget_exceeded", subject, month, "critical",
                             f"{subject} spent {r['spent_incl_today']:.2f} of its "
                             f"{r['monthly']:.2f} "
                             f"budget for {month}", details=facts))
        elif r["runs_out_on"] is not None:
            out.append(Alert("budget_runs_out", subject, month, "warning",
                             f"{subject} is projected to use up its {r['monthly']:.2f} budget "
                             f"on {r['runs_out_on']} (spent {r['spent']:.2f}, burning "
                             f"{r['burn_per_day']:.2f}/day)",
                             details={**facts, "runs_out_on": r["runs_out_on"]}))
    return out


def _key_name(row: dict[str, Any]) -> str:
    """How an alert names a key: its hint, else ``label:NAME``, else "(no key)" (calls
    without an Authorization header)."""
    return str(row.get("key_hint") or row.get("key_id") or "(no key)")


def alerts(conn: duckdb.DuckDBPyConnection, today: date | None = None, *,
           new_key_days: int = 1, spike_k: Decimal = Decimal(5)) -> list[Alert]:
    """Every alert as of ``today`` (UTC): budgets, spikes (yesterday), new keys, auth failures."""
    today = today or datetime.now(UTC).date()
    tomorrow = today + timedelta(days=1)
    out = _budget_alerts(conn, today)
    for r in records(spikes(conn, today - timedelta(days=1), k=spike_k)):
        out.append(Alert("spike", r["key_id"], str(r["day"]), "warning",
                         f"key {_key_name(r)} spent {r['spend']:.2f} on "
                         f"{r['day']}, against a usual {r['baseline_median']:.2f}/day",
                         key_hint=r["key_hint"], details=r))
    for r in records(new_keys(conn, today - timedelta(days=new_key_days), tomorrow)):
        out.append(Alert("new_key", r["key_id"], "", "info",
                         f"key {_key_name(r)} seen for the first time at "
                         f"{r['first_seen']:%Y-%m-%d %H:%M} UTC ({r['calls']} calls so far)",
                         key_hint=r["key_hint"], details={"first_seen": str(r["first_seen"])}))
    for r in records(auth_failures(conn, today - timedelta(days=1), tomorrow)):
        out.append(Alert("auth_failing", r["key_id"], str(today), "critical",
                         f"key {_key_name(r)}: {r['auth_failures']} of "
                         f"{r['calls']} calls refused (401/403) since yesterday; revoked or "
                         "mistyped key?", key_hint=r["key_hint"],
                         details={"auth_failures": r["auth_failures"], "calls": r["calls"]}))
    return out


class WebhookFailed(CallmeterError):
    """The alert webhook did not accept the POST (status or connection error)."""


def send_alerts(conn: duckdb.DuckDBPyConnection, found: list[Alert], url: str, *,
                timeout: float = 10.0) -> list[Alert]:
    """POST alerts not yet sent to ``url`` as one JSON document; record them; return them.

    Only a hash of the URL is stored (webhook URLs often carry a token).
    """
    import httpx

    url_hash = hashlib.sha256(url.encode()).hexdigest()[:32]
    sent = {r[0] for r in conn.execute(ALREADY_SENT_SQL, [url_hash]).fetchall()}
    fresh = [a for a in found if a.alert_id not in sent]
    if not fresh:
        return []
    body = {"source": "callmeter", "sent_at": datetime.now(UTC).isoformat(),
            "alerts": [a.to_dict() for a in fresh]}
    try:
        resp = httpx.post(url, json=body, timeout=timeout)
    except httpx.HTTPError as exc:
        raise WebhookFailed(f"alert webhook unreachable: {type(exc).__name__}") from exc
    if resp.status_code >= 300:
        raise WebhookFailed(f"alert webhook answered HTTP {resp.status_code}")
    now = datetime.now(UTC)
    for a in fresh:
        conn.execute(RECORD_SENT_SQL, [a.alert_id, a.kind, url_hash, now])
    return fresh
