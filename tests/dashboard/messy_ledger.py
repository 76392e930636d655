"""A ledger that looks like a real user's, built only through the product's own paths.

Three months of calls (the current month, the last closed month and the one before), written
the way callmeter writes them in production:

- **Proxy** (today): the recording proxy (``tests/upstream.py`` ``ProxyServer``) in front of the
  OpenAI-format stand-in, called with the real OpenAI SDK by two keys — chat, streams with and
  without ``include_usage`` (an interrupted one too: estimated usage), per-request ``-c`` calls,
  embeddings, 429s, a model with no price, tags from ``X-Callmeter-Tags`` — plus ``GET /models``
  and a keyless call (no ``Authorization``); the spool is then loaded as ``callmeter load`` does.
- **Platform sync** (new-api, ``tests/platform_standin.py``, through ``ingest.sync.sync_now``):
  label-only keys (``token_name``, no key), a model with no price, a failed call, and in the
  closed month platform adjustments: a task refund, a task settlement and a violation fee.
- **CSV export** (``callmeter import --format csv``'s path, ``ingest.imports.import_paths``): a
  label-only key with a ``team=finance`` tag, another unpriced model, and aggregated rows
  (``requests`` > 1): 6,000 short per-request calls (a billing-variant switch worth about
  50 USD) and 25 calls refused with 429 (a rate-limit recommendation).
- **Prices**: the shipped ``data/prices.csv`` loaded with ``pricing.load_prices``.

``build_messy_ledger(path)`` returns a :class:`MessyLedger` saying what is where, for tests to
assert against. ``write_users_file(folder)`` writes a dashboard users file with a finance user
and a key owner (fast hashes: test-only).
"""

from __future__ import annotations

import csv
import sys
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))   # tests/: the stand-ins

from platform_logs import Ratios, text_quota  # noqa: E402
from platform_standin import TOKEN, USER_ID, StandIn, serve  # noqa: E402
from upstream import ProxyServer, UpstreamServer  # noqa: E402

KEY_SEARCH = "sk-messy-search-0000000000000000a1b2"   # hint sk-…a1b2
KEY_ADS = "sk-messy-ads-000000000000000000000c3d4"    # hint sk-…c3d4
UNPRICED_PROXY_MODEL = "mystery-model-x"
UNPRICED_SYNC_MODEL = "qwen-mystery-72b"
UNPRICED_CSV_MODEL = "acme-llm-9"
SYNC_LABELS = ("team-a", "ops-bot")       # new-api token names: label-only keys
CSV_LABEL = "finance-batch"               # CSV export: a label-only key
PASSWORDS = {"alice": "alice-finance-pw", "bob": "bob-owner-pw"}
OWNER_KEYS = ("sk-…a1b2", "team-a")       # bob's keys: one by hint, one by label


@dataclass
class MessyLedger:
    """What the builder put where (months are first days, UTC)."""

    path: str
    current_month: date
    closed_month: date                    # platform charges and refunds are in this month
    earlier_month: date
    proxy_calls: int = 0                  # rows the proxy recorded (GET /models included)
    synced: dict[str, int] = field(default_factory=dict)    # sync result counts
    csv_imported: int = 0
    tags: tuple[str, ...] = ("team=search", "team=ads", "app=bidder", "team=finance")

    @property
    def months(self) -> list[date]:
        return [self.earlier_month, self.closed_month, self.current_month]


def _month_start(day: date, back: int = 0) -> date:
    first = day.replace(day=1)
    for _ in range(back):
        first = (first - timedelta(days=1)).replace(day=1)
    return first


def _ts(day: date, hour: int, minute: int = 0) -> int:
    return int(datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC).timestamp())


# --- proxy -------------------------------------------------------------------------------------

def _proxy_calls(path: str) -> int:
    """Calls through the recording proxy with the real OpenAI SDK; loads the spool."""
    import httpx
    import openai

    from ingest.loader import load_spool
    from ledger.connect import open_ledger

    quiet = {"log_level": "critical"}     # the cut stream logs an ASGI error by design
    with UpstreamServer(**quiet) as up, ProxyServer(up.url, path, **quiet) as proxy:
        search = openai.OpenAI(base_url=proxy.url, api_key=KEY_SEARCH, max_retries=0,
                               timeout=20, default_headers={"X-Callmeter-Tags": "team=search"})
        ads = openai.OpenAI(base_url=proxy.url, api_key=KEY_ADS, max_retries=0, timeout=20,
                            default_headers={"X-Callmeter-Tags": "team=ads,app=bidder"})
        msg = [{"role": "user", "content": "Say hello"}]
        search.models.list()                                     # GET /models, as chat apps do
        for i in range(8):
            search.chat.completions.create(model="gpt-4o", messages=msg, extra_headers={
                "X-Upstream-Behaviour": f"prompt_tokens={400 + 150 * i};cached_tokens={64 * i}"})
        for _ in range(3):
            list(search.chat.completions.create(model="gpt-4o", messages=msg, stream=True,
                                                stream_options={"include_usage": True}))
        for i in range(4):
            search.chat.completions.create(model="gpt-4o-c", messages=msg, extra_headers={
                "X-Upstream-Behaviour": f"prompt_tokens={3000 + 500 * i}"})
        search.embeddings.create(model="text-embedding-3-small", input=["a", "b", "c"])
        for _ in range(6):
            ads.chat.completions.create(model="gpt-4o-mini", messages=msg)
        for _ in range(2):
            try:
                ads.chat.completions.create(model="gpt-4o-mini", messages=msg, extra_headers={
                    "X-Upstream-Behaviour": "status=429;retry_after=1"})
            except openai.RateLimitError:
                pass
        ads.chat.completions.create(model=UNPRICED_PROXY_MODEL, messages=msg)
        try:   # a stream cut after two chunks: no usage arrives, the proxy counts it locally
            list(ads.chat.completions.create(model="gpt-4o-mini", messages=msg, stream=True,
                                             extra_headers={"X-Upstream-Behaviour":
                                                            "cut_after=2"}))
        except (openai.APIError, httpx.HTTPError):
            pass
        httpx.post(f"{proxy.url}/chat/completions", timeout=20,     # keyless
                   json={"model": "gpt-4o-mini", "messages": msg})
        proxy.flush()
    conn = open_ledger(path)
    try:
        return load_spool(conn, proxy.spool_folder).inserted
    finally:
        conn.close()


# --- platform sync (new-api) -------------------------------------------------------------------

def _platform_rows(standin: StandIn, earlier: date, closed: date) -> None:
    mini, big = Ratios(model_ratio=0.075), Ratios(model_ratio=1.25)
    for month, calls in ((earlier, 12), (closed, 18)):
        for i in range(calls):
            day = month + timedelta(days=i % 25)
            label, model, ratios = ((SYNC_LABELS[0], "gpt-4o-mini", mini) if i % 3 else
                                    (SYNC_LABELS[1], "gpt-4o", big))
            prompt, completion = 800 + 97 * i, 120 + 11 * i
            standin.add(_ts(day, 9 + i % 8, i % 60), model=model, prompt=prompt,
                        completion=completion, token_name=label,
                        quota=text_quota(prompt, completion, ratios),
                        other={"model_ratio": ratios.model_ratio})
        standin.add(_ts(month + timedelta(days=3), 7), model=UNPRICED_SYNC_MODEL, prompt=5000,
                    completion=900, token_name=SYNC_LABELS[1], quota=7000)
        standin.add(_ts(month + timedelta(days=4), 7), log_type=5, model="gpt-4o",
                    token_name=SYNC_LABELS[1], other={"status_code": 503})
    standin.add(_ts(closed + timedelta(days=10), 12), model="sora-2", prompt=0, completion=0,
                quota=150_000, token_name=SYNC_LABELS[0],
                other={"task_id": "task-messy-1", "model_price": 0.3})
    standin.refund(_ts(closed + timedelta(days=11), 12), "task-messy-1", 150_000)
    standin.settlement(_ts(closed + timedelta(days=12), 12), "task-messy-2", 100_000, 130_000)
    standin.fee(_ts(closed + timedelta(days=13), 12), 25_000, token_name=SYNC_LABELS[0])


def _sync(path: str, earlier: date, closed: date) -> dict[str, int]:
    from ingest.sync import sync_now
    from ledger import settings_from_env

    standin = StandIn()
    _platform_rows(standin, earlier, closed)
    server, _ = serve(standin)
    try:
        settings = replace(settings_from_env(path), platform_url=standin.url,
                           platform_token=TOKEN, platform_user_id=USER_ID)
        result = sync_now(path, settings)
    finally:
        server.shutdown()
        server.server_close()
    if result.status != "ok":
        raise RuntimeError(f"messy ledger: sync failed: {result.message}")
    return {"imported": result.imported, "adjustments": result.adjustments,
            "skipped": result.skipped, "rejected": result.rejected}


# --- CSV export --------------------------------------------------------------------------------

def _csv_export(path: str, folder: Path, closed: date) -> int:
    from ingest.importers import ImportOptions
    from ingest.imports import import_paths
    from ledger import fingerprinter_for

    file = folder / "finance-export.csv"
    with file.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["started_at", "key_label", "model", "requests", "input_tokens",
                    "output_tokens", "status", "latency_ms", "tags"])
        for i in range(14):
            model = UNPRICED_CSV_MODEL if i % 7 == 6 else "gpt-4o-mini"
            w.writerow([f"{closed + timedelta(days=i * 2)}T14:{i:02d}:00Z", CSV_LABEL, model,
                        1, 1200 + 10 * i, 300, 200 if i != 5 else 500, 900 + 40 * i,
                        "team=finance"])
        # an aggregated export: buckets of 500 short per-request calls (a billing-variant
        # switch worth money) and a burst of 429s (a rate-limit recommendation)
        for i in range(12):
            n = 500
            w.writerow([f"{closed + timedelta(days=i * 2 + 1)}T10:00:00Z", CSV_LABEL,
                        "gpt-4o-c", n, n * (280 + i), n * 50, 200, 700, "team=finance"])
        w.writerow([f"{closed + timedelta(days=20)}T10:30:00Z", CSV_LABEL, "gpt-4o-mini", 25,
                    0, 0, 429, 40, "team=finance"])
    results, _ = import_paths(path, [file], "csv",
                              ImportOptions(fingerprinter=fingerprinter_for(path)))
    return sum(r.imported for r in results)


# --- all of it ---------------------------------------------------------------------------------

def build_messy_ledger(path: Path | str, today: date | None = None) -> MessyLedger:
    """Build the ledger at ``path`` (its folder also gets the spool, secret and sync state)."""
    import pricing
    from ledger import data_file
    from ledger.connect import open_ledger

    path = str(path)
    today = today or datetime.now(UTC).date()
    out = MessyLedger(path, _month_start(today), _month_start(today, 1), _month_start(today, 2))
    conn = open_ledger(path)
    try:
        pricing.load_prices(conn, data_file("data/prices.csv"))
    finally:
        conn.close()
    out.synced = _sync(path, out.earlier_month, out.closed_month)
    out.csv_imported = _csv_export(path, Path(path).parent, out.closed_month)
    out.proxy_calls = _proxy_calls(path)
    return out


def write_users_file(folder: Path) -> Path:
    """A users file: ``alice`` (finance) and ``bob`` (owner of :data:`OWNER_KEYS`)."""
    from dashboard.auth import hash_password

    def pw(name: str) -> str:
        return hash_password(PASSWORDS[name], iterations=1000)

    keys = ", ".join(f'"{k}"' for k in OWNER_KEYS)
    path = Path(folder) / "users.toml"
    path.write_text(f'[users.alice]\npassword = "{pw("alice")}"\nrole = "finance"\n\n'
                    f'[users.bob]\npassword = "{pw("bob")}"\nrole = "owner"\n'
                    f"keys = [{keys}]\n", encoding="utf-8")
    return path
