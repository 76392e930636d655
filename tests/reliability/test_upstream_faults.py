"""Issue 9, property 2: upstream faults end to end. A real `callmeter proxy` process, the
OpenAI SDK (or plain httpx where a client reads raw bytes), then `callmeter load`: the client
sees what the platform said (or a clear 502/504), the ledger holds the right row."""

from __future__ import annotations

import gzip
import json
import time

import httpx
import openai
import pytest
from harness import CliProxy, callmeter, free_port, rows, test_key

KEY = test_key("upstream")
MESSAGES = [{"role": "user", "content": "Hi"}]
CHAT = {"model": "gpt-4o", "messages": MESSAGES}
PROMPT_TOKENS_LOCAL = 8  # "Hi" as one user message, counted with o200k_base (+ framing)


def headers(case: str, behaviour: str = "") -> dict:
    return {"Authorization": f"Bearer {KEY}", "X-Callmeter-Tags": f"case={case}",
            "X-Upstream-Behaviour": behaviour}


def sdk(base_url: str, case: str, behaviour: str = "") -> openai.OpenAI:
    return openai.OpenAI(base_url=base_url, api_key=KEY, max_retries=0, timeout=20,
                         default_headers={"X-Callmeter-Tags": f"case={case}",
                                          "X-Upstream-Behaviour": behaviour})


def sdk_error(base_url: str, case: str, behaviour: str) -> openai.APIStatusError:
    with pytest.raises(openai.APIStatusError) as err:
        sdk(base_url, case, behaviour).chat.completions.create(model="gpt-4o",
                                                               messages=MESSAGES)
    return err.value


@pytest.fixture(scope="module")
def run(upstream, tmp_path_factory):
    """Every scenario against one proxy (and one with no upstream), then one `callmeter load`."""
    folder = tmp_path_factory.mktemp("upstream_faults")
    db = folder / "callmeter.duckdb"
    seen: dict[str, object] = {}
    with CliProxy(upstream.url, db, "--timeout", "1") as px:
        for status in (401, 403, 429, 500, 503):
            behaviour = f"status={status};retry_after=7"
            direct = httpx.post(upstream.url + "/chat/completions", json=CHAT,
                                headers=headers("direct", behaviour))
            seen[f"e{status}"] = (sdk_error(px.url, f"e{status}", behaviour), direct)
        started = time.monotonic()
        seen["timeout"] = (sdk_error(px.url, "timeout", "delay=3"), time.monotonic() - started)
        received = b""
        try:
            with httpx.stream("POST", px.url + "/chat/completions", json=CHAT | {"stream": True},
                              headers=headers("cut", "cut_after=2")) as r:
                for chunk in r.iter_raw():
                    received += chunk
            seen["cut"] = (received, None)
        except httpx.RemoteProtocolError as exc:
            seen["cut"] = (received, exc)
        seen["malformed"] = httpx.post(px.url + "/chat/completions", json=CHAT,
                                       headers=headers("malformed", "malformed"))
        stream = sdk(px.url, "no_usage", "no_usage").chat.completions.create(
            model="gpt-4o", messages=MESSAGES, stream=True)
        seen["no_usage"] = list(stream)
        with httpx.stream("POST", px.url + "/chat/completions", json=CHAT,
                          headers=headers("gzip", "gzip") | {"Accept-Encoding": "gzip"}) as r:
            seen["gzip"] = (r.headers.get("content-encoding"), b"".join(r.iter_raw()))
    with CliProxy(f"http://127.0.0.1:{free_port()}/v1", db) as dead:
        seen["refused"] = sdk_error(dead.url, "refused", "")
    callmeter("load", "--db", str(db))
    ledger = rows(db, "SELECT *, tags['case'] AS case FROM calls")
    by_case = {r["case"]: r for r in ledger}
    assert len(by_case) == len(ledger), "a call recorded twice"
    yield seen, by_case


@pytest.mark.parametrize("status", [401, 403, 429, 500, 503])
def test_error_statuses_reach_the_client_unchanged_and_are_recorded(run, status):
    seen, ledger = run
    err, direct = seen[f"e{status}"]
    assert err.status_code == status
    assert err.response.content == direct.content  # the platform's own body
    assert err.response.headers["retry-after"] == "7"
    row = ledger[f"e{status}"]
    assert (row["status"], row["model"], row["endpoint"], row["input_tokens"],
            row["output_tokens"], row["usage_source"]) == (status, "gpt-4o", "chat", 0, 0,
                                                           "none")
    assert row["key_hint"] == "sk-…" + KEY[-4:] and row["key_id"].startswith("k1:")


def test_rate_limit_is_the_sdks_own_error_with_retry_after(run):
    err, _ = run[0]["e429"]
    assert isinstance(err, openai.RateLimitError)
    assert err.body["code"] == "rate_limit_exceeded"


def test_connection_refused_gives_502_and_a_row(run):
    seen, ledger = run
    err = seen["refused"]
    assert err.status_code == 502 and err.body["code"] == "upstream_unreachable"
    row = ledger["refused"]
    assert (row["status"], row["usage_flag"], row["model"]) == (502, "upstream_unreachable",
                                                                "gpt-4o")


def test_timeout_before_headers_gives_504_within_the_timeout(run):
    seen, ledger = run
    err, seconds = seen["timeout"]
    assert err.status_code == 504 and err.body["code"] == "upstream_timeout"
    assert seconds < 2.5  # --timeout 1, not the upstream's 3 s
    row = ledger["timeout"]
    assert (row["status"], row["usage_flag"]) == (504, "upstream_timeout")


def test_stream_stopping_midway_breaks_for_the_client_and_counts_what_arrived(run):
    seen, ledger = run
    received, error = seen["cut"]
    assert isinstance(error, httpx.RemoteProtocolError)  # as it would direct
    assert b"Hello" in received and b"[DONE]" not in received
    row = ledger["cut"]
    assert (row["status"], row["stream"], row["usage_flag"], row["usage_source"]) == (
        200, True, "interrupted", "estimated")
    assert (row["input_tokens"], row["output_tokens"]) == (PROMPT_TOKENS_LOCAL, 2)


def test_malformed_json_body_is_passed_on_and_recorded(run):
    seen, ledger = run
    r = seen["malformed"]
    assert r.status_code == 200 and r.content == b'{"id": "broken", "choices": ['
    row = ledger["malformed"]
    assert (row["status"], row["usage_source"], row["output_tokens"]) == (200, "estimated", 0)


def test_stream_without_usage_is_untouched_and_counted_locally(run):
    seen, ledger = run
    chunks = seen["no_usage"]
    assert all(chunk.choices for chunk in chunks)  # no usage-only chunk slipped in
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert text == "Hello world world world world"
    row = ledger["no_usage"]
    assert (row["usage_source"], row["input_tokens"], row["output_tokens"]) == (
        "estimated", PROMPT_TOKENS_LOCAL, 5)


def test_gzip_body_passes_byte_for_byte_and_usage_is_read(run):
    seen, ledger = run
    encoding, raw = seen["gzip"]
    assert encoding == "gzip" and raw[:2] == b"\x1f\x8b"
    assert json.loads(gzip.decompress(raw))["usage"]["total_tokens"] == 16
    row = ledger["gzip"]
    assert (row["usage_source"], row["input_tokens"], row["output_tokens"]) == (
        "reported", 11, 5)


def test_one_row_per_call(run):
    _, ledger = run
    assert set(ledger) == {"e401", "e403", "e429", "e500", "e503", "refused", "timeout", "cut",
                           "malformed", "no_usage", "gzip"}
