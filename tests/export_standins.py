"""Rows as LiteLLM's proxy and OpenAI's Usage / Costs APIs write them, for month-long tests.

- LiteLLM 1.110.2 (the PyPI wheel, read 2026-12-04):
  ``litellm/proxy/spend_tracking/spend_tracking_utils.py`` ``get_logging_payload`` (the
  ``SpendLogsPayload`` row: ``request_id`` from the response id, ``_cache_hit<time>`` appended on
  a cache hit; ``cache_hit`` as the text "True"/"False"; ``spend`` = ``response_cost``;
  ``metadata`` with ``usage_object`` (may be null) and ``additional_usage_values``, every usage
  field but the three counts; ``status`` "success"/"failure") and ``get_spend_logs_id``
  (``_batch_cost`` rows); ``litellm/proxy/_types.py`` ``SpendLogsPayload``.
- openai-python commit e43b422 (2026-08-21): ``src/openai/types/admin/organization/
  usage_completions_response.py`` (``Data`` buckets of ``start_time``/``end_time``/``results``,
  ``organization.usage.completions.result`` with its group-by fields) and
  ``usage_costs_response.py`` (``organization.costs.result``: ``amount.value``/``currency``,
  ``line_item``, ``project_id``).
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from decimal import Decimal

KEY_HASH = "88dc28d0f030c55ed4ab77ed8faf098196cb1c05df778539800c9f1243fe6b4b"
PER_M = {"gpt-4o": (Decimal("2.5"), Decimal("10")), "gpt-4o-mini": (Decimal("0.15"),
                                                                      Decimal("0.6"))}


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def litellm_rows(start: int, end: int, seed: int = 21) -> list[dict]:
    """A LiteLLM proxy's spend log rows for ``[start, end)``: calls, failures, cache hits."""
    rng = random.Random(seed)
    rows: list[dict] = []
    t = start
    while t < end:
        t += rng.randint(60, 1800)
        model = rng.choice(list(PER_M))
        prompt, completion = rng.randint(10, 3000), rng.randint(0, 800)
        cached = rng.choice([0, 0, prompt // 2])
        inp, out = PER_M[model]
        spend = ((prompt - cached) * inp + cached * inp / 2 + completion * out) / 1_000_000
        rid = f"chatcmpl-{rng.getrandbits(64):016x}"
        failed = rng.random() < 0.05
        usage_extra = {"prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": None},
                       "completion_tokens_details": {"reasoning_tokens": 0}}
        if cached:
            usage_extra["cache_read_input_tokens"] = cached
        usage_object = None if rng.random() < 0.4 else dict(
            usage_extra, prompt_tokens=prompt, completion_tokens=completion)
        metadata = {"user_api_key": KEY_HASH, "user_api_key_alias": "team-a",
                    "usage_object": None if failed else usage_object,
                    "additional_usage_values": {} if failed else usage_extra,
                    "status": "failure" if failed else "success"}
        if failed:
            metadata["error_information"] = {"error_code": "429", "error_class": "RateLimitError"}
        rows.append({
            "request_id": rid, "call_type": "acompletion", "api_key": KEY_HASH,
            "spend": 0.0 if failed else float(spend.quantize(Decimal("1e-9"))),
            "total_tokens": 0 if failed else prompt + completion,
            "prompt_tokens": 0 if failed else prompt,
            "completion_tokens": 0 if failed else completion,
            "startTime": _iso(t), "endTime": _iso(t + 2.5), "completionStartTime": _iso(t + 0.4),
            "model": model, "model_group": model, "user": "alice", "cache_hit": "False",
            "cache_key": "Cache OFF", "metadata": json.dumps(metadata), "request_tags": "[]",
            "team_id": "team-1", "end_user": "", "status": "failure" if failed else "success"})
        if not failed and rng.random() < 0.1:      # the same prompt again, from LiteLLM's cache
            hit = dict(rows[-1], spend=0.0, cache_hit="True", startTime=_iso(t + 30),
                       endTime=_iso(t + 30.04), completionStartTime=_iso(t + 30.04),
                       request_id=f"{rid}_cache_hit{t + 30}.{rng.randrange(10**7)}")
            rows.append(hit)
    return rows


def spend_of(rows: list[dict]) -> Decimal:
    return sum((Decimal(str(r["spend"])) for r in rows), Decimal(0))


def usage_buckets(start: int, days: int, seed: int = 8) -> tuple[list[dict], list[dict]]:
    """Daily Usage API buckets grouped by project, model, batch and service tier, and the
    Costs API's buckets of the same days (line items per model and direction)."""
    rng = random.Random(seed)
    usage, costs = [], []
    for day in range(days):
        b0, b1 = start + day * 86_400, start + (day + 1) * 86_400
        results, lines = [], []
        for project in ("proj_search", "proj_rag"):
            for model in PER_M:
                for tier in ("default", "flex"):
                    n = rng.randint(0, 40)
                    inp, out = rng.randint(0, 90_000) * (n > 0), rng.randint(0, 20_000) * (n > 0)
                    results.append({
                        "object": "organization.usage.completions.result",
                        "input_tokens": inp, "output_tokens": out, "num_model_requests": n,
                        "project_id": project, "user_id": None, "api_key_id": None,
                        "model": model, "batch": False, "service_tier": tier,
                        "input_cached_tokens": 0, "input_cache_write_tokens": 0,
                        "input_audio_tokens": 0, "output_audio_tokens": 0})
                    price_in, price_out = PER_M[model]
                    factor = Decimal("0.5") if tier == "flex" else Decimal(1)
                    for what, tokens, price in (("input", inp, price_in),
                                                ("output", out, price_out)):
                        if tokens:           # one result per project and line item
                            item = f"{model}, {what}" + (" (flex)" if tier == "flex" else "")
                            lines.append((project, item, tokens * price * factor / 1_000_000))
        usage.append({"object": "bucket", "start_time": b0, "end_time": b1,
                      "results": results})
        costs.append({"object": "bucket", "start_time": b0, "end_time": b1, "results": [
            {"object": "organization.costs.result",
             "amount": {"value": float(amount), "currency": "usd"}, "line_item": item,
             "project_id": project, "quantity": None}
            for project, item, amount in lines]})
    return usage, costs


def page(buckets: list[dict]) -> dict:
    return {"object": "page", "data": buckets, "has_more": False, "next_page": None}
