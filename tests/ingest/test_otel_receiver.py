"""Issue 19, point 1: the OTLP/HTTP receiver's answers, what it records and what it refuses.

Requests are built with opentelemetry-proto's classes (tests/otlp_requests.py) and sent with
httpx as an exporter would; the ledger is read back after a real load of the spool.
"""

from __future__ import annotations

import gzip
import json
import time

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from otel_helpers import OtelServer
from otlp_requests import T0, chat, otlp_json, request, span

PROTO = {"content-type": "application/x-protobuf"}


def post(server: OtelServer, body: bytes, headers: dict | None = None) -> httpx.Response:
    return httpx.post(server.traces_url, content=body, headers=headers or PROTO, timeout=10)


@pytest.fixture
def otel(tmp_path):
    with OtelServer(tmp_path / "callmeter.duckdb") as server:
        yield server


def test_protobuf_json_and_gzip_record_the_same_call_once(otel):
    sp = span(chat("gpt-4o-c", 700, 90), start=T0 + 123_456_789)
    req = request([sp], {"service.name": "billing", "deployment.environment": "prod"})
    raw = req.SerializeToString()
    assert post(otel, raw).status_code == 200
    assert post(otel, gzip.compress(raw), PROTO | {"content-encoding": "gzip"}).status_code \
        == 200
    r = post(otel, json.dumps(otlp_json(req)).encode(), {"content-type": "application/json"})
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    rows = otel.rows()
    assert len(rows) == 1
    row = rows[0]
    assert row["call_id"] == f"otel:{sp.trace_id.hex()}:{sp.span_id.hex()}"
    assert (row["model"], row["base_model"], row["billing_mode"]) == ("gpt-4o-c", "gpt-4o",
                                                                      "request")
    assert (row["input_tokens"], row["output_tokens"], row["status"]) == (700, 90, 200)
    assert row["latency_ms"] == 250
    assert row["started_at"].isoformat().startswith("2026-01-01T00:00:00.123456")
    assert row["tags"] == {"service.name": "billing", "deployment.environment": "prod"}


def test_other_spans_counted_bad_genai_spans_rejected_by_id(otel):
    good = span(chat())
    plain = span({"http.request.method": "GET"}, name="GET /orders")
    no_model = span({"gen_ai.operation.name": "chat", "gen_ai.usage.input_tokens": 5})
    agent = span({"gen_ai.operation.name": "invoke_agent", "gen_ai.request.model": "gpt-4o",
                  "gen_ai.usage.input_tokens": 900})
    r = post(otel, request([good, plain, no_model, agent]).SerializeToString())
    assert r.status_code == 200
    answer = ExportTraceServiceResponse.FromString(r.content)
    assert answer.partial_success.rejected_spans == 1
    assert no_model.span_id.hex() in answer.partial_success.error_message
    assert "gen_ai.request.model" in answer.partial_success.error_message
    health = httpx.get(otel.origin + "/healthz").json()
    assert health["calls_recorded"] == 1 and health["spans"] == 4
    assert set(health["spans_skipped"]) == {"not a GenAI span", "agent, tool or workflow "
                                            "span (its model calls are counted in their own "
                                            "spans)"}
    assert [r["input_tokens"] for r in otel.rows()] == [100]


@pytest.mark.parametrize(("body", "headers", "status"), [
    (b"\x0a\x05broken", PROTO, 400),
    (b"{not json", {"content-type": "application/json"}, 400),
    (b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz"}]}]}]}',
     {"content-type": "application/json"}, 400),
    (b"x", {"content-type": "text/plain"}, 415),
    (b"x", PROTO | {"content-encoding": "br"}, 415),
    (b"not gzip", PROTO | {"content-encoding": "gzip"}, 400),
])
def test_bad_requests_get_a_clear_refusal(otel, body, headers, status):
    r = post(otel, body, headers)
    assert r.status_code == status and r.text.strip()
    assert post(otel, request([span(chat())]).SerializeToString()).status_code == 200


def test_size_limit_holds_for_gzip_bombs(tmp_path):
    with OtelServer(tmp_path / "callmeter.duckdb", max_body_bytes=64 * 1024) as otel:
        bomb = gzip.compress(b"\0" * (10 * 1024 * 1024))
        assert len(bomb) < 64 * 1024
        r = post(otel, bomb, PROTO | {"content-encoding": "gzip"})
        assert r.status_code == 413
        assert post(otel, b"\0" * (65 * 1024)).status_code == 413


def test_routes_methods_and_other_signals(otel):
    assert httpx.get(otel.traces_url).status_code == 405
    assert httpx.post(otel.origin + "/v1/other", content=b"").status_code == 404
    for signal in ("metrics", "logs"):
        r = httpx.post(f"{otel.origin}/v1/{signal}", content=b"", headers=PROTO)
        assert r.status_code == 200  # accepted and dropped
    assert httpx.get(otel.origin + "/healthz").json()["status"] == "ok"


def test_unwritable_spool_answers_503_until_it_can_record(tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the spool folder's parent should be")
    with OtelServer(tmp_path / "callmeter.duckdb", spool_folder=blocker / "spool") as otel:
        body = request([span(chat())]).SerializeToString()
        r = post(otel, body)
        assert r.status_code == 503 and r.headers["retry-after"] == "1"
        assert httpx.get(otel.origin + "/healthz").status_code == 503
        blocker.unlink()
        blocker.mkdir()
        time.sleep(1.1)  # the writer retries a failed folder after a second
        assert post(otel, body).status_code == 200
        otel.flush()
        assert len(list((blocker / "spool").glob("*.jsonl"))) == 1


def test_nothing_secret_from_a_span_is_written(otel, tmp_path):
    key = "sk-spansecret-Qw3Er5Ty7Ui9-abcd"
    attrs = chat(**{"gen_ai.input.messages": json.dumps([{"role": "user", "content": key}]),
                    "gen_ai.headers": f"{{'Authorization': 'Bearer {key}'}}",
                    "callmeter.key_id": key, "callmeter.key_label": "billing-bot"})
    assert post(otel, request([span(attrs)]).SerializeToString()).status_code == 200
    row = otel.rows()[0]
    assert row["key_id"].startswith("k1:") and row["key_hint"] == "sk-…abcd"
    assert row["key_label"] == "billing-bot"
    for path in tmp_path.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert key.encode() not in data and b"Bearer" not in data, path
