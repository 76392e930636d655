"""Real ledger files in tmp_path, a small hand-written sheet, and plain-SQL call inserts."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledger.connect import open_ledger
from pricing import load_prices

# Prices per 1M tokens; chosen so hand arithmetic is easy.
SHEET = """\
model,effective_from,input,cached_input,output,request,image,audio_minute,characters,\
above_input_tokens
tok,2025-01-01,2,1,8,,,,,
tok,2025-03-01,1,,4,,,,,
tok-c,2025-01-01,,,,0.01,,,,
tier,2025-01-01,1,0.5,10,,,,,
tier,2025-01-01,2,1,20,,,,,1000
tier-c,2025-01-01,,,,0.05,,,,
img,2025-01-01,,,,,0.04,,,
tts,2025-01-01,,,,,,,15,
asr,2025-01-01,,,,,,0.006,,
"""

CALL_SQL = """
INSERT INTO calls (call_id, source, started_at, key_id, model, base_model, billing_mode,
                   status, requests, input_tokens, cached_tokens, output_tokens,
                   reasoning_tokens, images, characters, audio_seconds, cache_write_tokens,
                   cache_write_long_tokens, endpoint)
VALUES (?, 'csv', ?, ?, ?, regexp_replace(?, '-c$', ''),
        CASE WHEN ? LIKE '%-c' THEN 'request' ELSE 'token' END,
        ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""


def add_call(conn, call_id: str, model: str, started_at: str = "2025-02-01 12:00:00+00",
             *, key: str = "k1:a", status: int = 200, requests: int = 1, input: int = 0,
             cached: int = 0, output: int = 0, reasoning: int = 0, images: int = 0,
             characters: int = 0, audio_seconds: float = 0.0, write: int = 0,
             write_long: int = 0, endpoint: str = "chat") -> None:
    conn.execute(CALL_SQL, [call_id, started_at, key, model, model, model, status, requests,
                            input, cached, output, reasoning, images, characters,
                            audio_seconds, write, write_long, endpoint])


def write(tmp_path: Path, text: str, name: str = "prices.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.fixture
def ledger(tmp_path):
    conn = open_ledger(str(tmp_path / "ledger.duckdb"))
    load_prices(conn, write(tmp_path, SHEET))
    yield conn
    conn.close()


def costs(conn, call_id: str) -> dict:
    cur = conn.execute(
        "SELECT cost, cost_as_token, cost_as_request, priced, price_effective_from, currency "
        "FROM priced_calls WHERE call_id = ?", [call_id])
    names = [d[0] for d in cur.description]
    return dict(zip(names, cur.fetchone(), strict=True))
