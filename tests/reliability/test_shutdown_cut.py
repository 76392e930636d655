"""Issue 14, point 6: a stream still running when SIGTERM's shutdown timeout ends is cut; its
row counts the prompt and what was streamed (estimated, flagged), never 0 and 0."""

from __future__ import annotations

import json
import signal
import threading

import httpx
from harness import CliProxy, callmeter, rows, test_key

KEY = test_key("shutdown")
PROMPT = "Write a long story about a lighthouse keeper and the sea, please."


def test_stream_cut_by_the_shutdown_timeout_counts_prompt_and_streamed_text(upstream,
                                                                            tmp_path):
    db = tmp_path / "callmeter.duckdb"
    px = CliProxy(upstream.url, db, access_log=False,
                  CALLMETER_PROXY_SHUTDOWN_TIMEOUT="1")
    words, under_way = [], threading.Event()

    def stream() -> None:
        body = {"model": "gpt-4o", "stream": True,
                "messages": [{"role": "user", "content": PROMPT}]}
        try:
            with httpx.stream("POST", px.url + "/chat/completions", json=body, timeout=30,
                              headers={"Authorization": f"Bearer {KEY}",
                                       "X-Upstream-Behaviour": "chunks=400;chunk_delay=0.05"}
                              ) as r:
                for line in r.iter_lines():
                    if line.startswith("data: {"):
                        delta = json.loads(line[6:])["choices"][0]["delta"]
                        if delta.get("content"):
                            words.append(delta["content"])
                    if len(words) >= 10:
                        under_way.set()
        except httpx.HTTPError:
            pass  # cut by the shutdown, as expected

    t = threading.Thread(target=stream)
    t.start()
    assert under_way.wait(20)
    px.proc.send_signal(signal.SIGTERM)
    px.proc.wait(30)
    t.join(30)
    callmeter("load", "--db", str(db))
    [row] = rows(db)
    assert (row["status"], row["usage_flag"], row["usage_source"]) == \
        (200, "interrupted", "estimated")
    assert row["input_tokens"] >= 10  # the prompt
    assert 10 <= row["output_tokens"] <= len(words) + 2  # what was streamed before the cut
