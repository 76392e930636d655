"""A small ledger built by hand for the dashboard tests (helpers; fixtures in conftest)."""

from __future__ import annotations

from pathlib import Path

from ledger.connect import open_ledger

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "dashboard" / "app.py")

# 600 calls, one every 137 minutes from 2025-02-01 (to 2025-03-29), three models (one
# unpriced), two keys with team tags, some 429 and 500 errors, half the rows with `charged`.
COLUMNS = ("call_id, source, started_at, latency_ms, ttft_ms, key_id, key_hint, key_label, "
           "endpoint, model, base_model, billing_mode, stream, status, requests, input_tokens, "
           "cached_tokens, output_tokens, reasoning_tokens, images, characters, audio_seconds, "
           "usage_source, charged, tags, image_size, usage_flag")
CALLS_SQL = """
INSERT INTO calls (""" + COLUMNS + """)
SELECT 'c' || i, 'csv',
  TIMESTAMPTZ '2025-02-01 00:00:00+00' + i * INTERVAL 137 MINUTE,
  100 + (i % 50) * 10, 50 + i % 7,
  CASE WHEN i % 3 = 0 THEN 'k1:aaa' ELSE 'k1:bbb' END,
  CASE WHEN i % 3 = 0 THEN 'sk-…aaaa' ELSE 'sk-…bbbb' END,
  CASE WHEN i % 3 = 0 THEN 'search-bot' END,
  'chat',
  CASE i % 5 WHEN 0 THEN 'gpt-4o-c' WHEN 1 THEN 'mystery-model' ELSE 'gpt-4o' END,
  CASE i % 5 WHEN 1 THEN 'mystery-model' ELSE 'gpt-4o' END,
  CASE i % 5 WHEN 0 THEN 'request' ELSE 'token' END,
  i % 2 = 0,
  CASE WHEN i % 17 = 0 THEN 429 WHEN i % 31 = 0 THEN 500 ELSE 200 END,
  1, 100 + (i * 37) % 2000, (i % 4) * 10, 20 + (i * 13) % 500, 0, 0, 0, 0.0, 'reported',
  CASE WHEN i % 2 = 1 THEN 0.001 END,
  MAP {'team': CASE WHEN i % 3 = 0 THEN 'search' ELSE 'ads' END},
  NULL, NULL
FROM range(0, 600) t(i)
"""
PRICES_SQL = """
INSERT INTO prices (model, effective_from, input, cached_input, output, request, currency)
VALUES ('gpt-4o', DATE '2025-01-01', 2.5, 1.25, 10, NULL, 'USD'),
       ('gpt-4o-c', DATE '2025-01-01', NULL, NULL, NULL, 0.01, 'USD')
"""
# Query string for the period used in the tests: March 2025 in UTC.
MARCH = {"from": "2025-03-01", "to": "2025-03-31", "tz": "UTC"}


def build_ledger(path: Path, with_calls: bool = True) -> str:
    conn = open_ledger(str(path))
    if with_calls:
        conn.execute(CALLS_SQL)
        conn.execute(PRICES_SQL)
    conn.close()
    return str(path)


def login_owner(at, tmp_path: Path, monkeypatch, keys: list[str]) -> None:
    """Sign ``at`` in as bob, a key owner of ``keys`` (fingerprints, hints or labels)."""
    from dashboard.auth import hash_password

    users = tmp_path / "users.toml"
    listed = ", ".join(f'"{k}"' for k in keys)
    users.write_text(f'[users.bob]\npassword = "{hash_password("pw", iterations=1000)}"\n'
                     f'role = "owner"\nkeys = [{listed}]\n')
    monkeypatch.setenv("CALLMETER_USERS_FILE", str(users))
    at.run()
    at.text_input[0].input("bob")
    at.text_input[1].input("pw")
    at.button[0].click()
    at.run()
    at.run()


def sql(path: str, query: str, params=None):
    """Independent check: SQL on the ledger file (same-process connections share the file)."""
    import duckdb

    conn = duckdb.connect(path)
    try:
        return conn.execute(query, params or []).fetchall()
    finally:
        conn.close()


# What real ledgers add to the tidy one (March 2025): keyless calls (a keyless request through
# the proxy, an OpenAI-responses import), a label-only key (new-api's token_name, no key), a key
# known only by its hint, a call with two tags (team and env), an unknown model, and the
# platform's refund and fee for the month.
MESSY_CALLS_SQL = """
INSERT INTO calls (""" + COLUMNS + """)
SELECT 'm' || i, CASE WHEN i % 4 = 0 THEN 'proxy' ELSE 'newapi' END,
  TIMESTAMPTZ '2025-03-02 00:00:00+00' + i * INTERVAL 211 MINUTE,
  300, 80,
  CASE i % 4 WHEN 0 THEN NULL WHEN 1 THEN NULL WHEN 2 THEN 'k1:ccc' ELSE NULL END,
  CASE i % 4 WHEN 2 THEN 'sk-…fc65' END,
  CASE i % 4 WHEN 1 THEN 'ops-token' WHEN 3 THEN 'batch-token' END,
  'chat',
  CASE WHEN i % 9 = 0 THEN 'brand-new-model' ELSE 'gpt-4o' END,
  CASE WHEN i % 9 = 0 THEN 'brand-new-model' ELSE 'gpt-4o' END,
  'token', false, 200, 1, 500 + i, 0, 100, 0, 0, 0, 0.0, 'reported',
  CASE WHEN i % 4 <> 0 THEN 0.003 END,
  CASE WHEN i % 2 = 0 THEN MAP {'team': 'ops', 'env': 'prod'} ELSE MAP {'env': 'dev'} END,
  NULL, NULL
FROM range(0, 120) t(i)
"""
MESSY_ADJUSTMENTS_SQL = """
INSERT INTO adjustments VALUES
  ('a1', 'newapi', TIMESTAMPTZ '2025-03-15 10:00:00+00', 'refund', -0.25, NULL, 'ops-token',
   'gpt-4o', NULL, 'failed task refunded', MAP {}),
  ('a2', 'newapi', TIMESTAMPTZ '2025-03-20 10:00:00+00', 'fee', 1.5, NULL, NULL, NULL, NULL,
   'monthly platform fee', MAP {})
"""


def build_messy_ledger(path: Path) -> str:
    """The tidy ledger plus what users' ledgers have (see MESSY_CALLS_SQL)."""
    build_ledger(path)
    conn = open_ledger(str(path))
    conn.execute(MESSY_CALLS_SQL)
    conn.execute(MESSY_ADJUSTMENTS_SQL)
    conn.close()
    return str(path)
