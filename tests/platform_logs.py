"""Log rows as new-api and one-api write them, and new-api's own quota arithmetic.

Copied from, and checked against:

- piexian/new-api (a fork that merges QuantumNous/new-api), commit 77fdac2 of 2026-08-18:
  ``model/log.go`` (``Log`` struct and its JSON names, ``RecordConsumeLog``, ``RecordErrorLog``,
  ``RecordTaskBillingLog``, ``ensureLogRequestId``), ``common/utils.go`` (``NewRequestId``),
  ``service/text_quota.go`` (``calculateTextQuotaSummary``: the quota of a text call),
  ``service/log_info_generate.go`` (``GenerateTextOtherInfo``, ``GenerateClaudeOtherInfo``,
  ``InjectTieredBillingInfo``), ``service/task_billing.go`` (``RefundTaskQuota``,
  ``RecalculateTaskQuota``), ``relay/image_handler.go`` (``ImageHelper``),
  ``controller/channel-test.go`` (``testChannel``).
- songquanpeng/one-api, commit 8df4a26 of 2025-02-21 (``model/log.go`` last changed
  2025-01-31): ``model/log.go`` (``Log``, ``LogTypeTest`` = 5), ``relay/controller/helper.go``
  (``postConsumeQuota``), ``relay/controller/image.go``.

Only what callmeter reads is modelled; every value a test asserts on is computed here the way
the platform computes it, not typed in by hand.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal

TYPE_TOPUP, TYPE_CONSUME, TYPE_MANAGE, TYPE_SYSTEM, TYPE_ERROR, TYPE_REFUND = 1, 2, 3, 4, 5, 6
ONEAPI_TYPE_TEST = 5


def d(x: object) -> Decimal:
    return Decimal(str(x))


def request_id(created_at: int, rng: random.Random) -> str:
    """common/utils.go NewRequestId: UTC time to the nanosecond + build prefix + 8 random."""
    stamp = datetime.fromtimestamp(created_at, UTC).strftime("%Y%m%d%H%M%S")
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    return (f"{stamp}{rng.randrange(10**9):09d}3f9a1c2e"
            + "".join(rng.choice(alphabet) for _ in range(8)))


def _go_number(value: object) -> object:
    if isinstance(value, float) and value.is_integer():
        return int(value)                     # Go writes float64 812 as 812
    if isinstance(value, dict):
        return {k: _go_number(v) for k, v in value.items()}
    return value


def go_json(other: dict) -> str:
    """common.MapToJsonStr: Go marshals a map with its keys sorted."""
    return json.dumps(_go_number(other), sort_keys=True, ensure_ascii=False,
                      separators=(",", ":"))


@dataclass(frozen=True)
class Ratios:
    model_ratio: float = 0.075
    completion_ratio: float = 4
    cache_ratio: float = 0.5
    cache_creation_ratio: float = 1.25
    group_ratio: float = 1
    model_price: float = -1          # -1: billed by ratio; >= 0: US$ per call


def text_quota(prompt: int, completion: int, r: Ratios, *, cache: int = 0,
               cache_write: int = 0, claude: bool = False,
               quota_per_unit: Decimal = Decimal(500_000)) -> int:
    """service/text_quota.go calculateTextQuotaSummary, for ratio and per-call models.

    OpenAI semantics: prompt includes cache reads and writes, so they are taken out of the
    base; Claude semantics: prompt excludes them. Rounded half up (QuotaFromDecimalChecked).
    """
    group = d(r.group_ratio)
    if r.model_price >= 0:
        quota = d(r.model_price) * quota_per_unit * group
    else:
        base = d(prompt)
        if not claude:
            base -= cache + cache_write
        base = max(base, Decimal(0))
        prompt_quota = base + d(cache) * d(r.cache_ratio) + d(cache_write) * d(
            r.cache_creation_ratio)
        quota = (prompt_quota + d(completion) * d(r.completion_ratio)) * d(r.model_ratio) * group
        if quota <= 0 and r.model_ratio:
            quota = Decimal(1)
    if prompt + completion == 0:
        return 0
    return int(quota.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def text_other(r: Ratios, *, cache: int = 0, cache_write: int = 0, claude: bool = False,
               request_path: str = "/v1/chat/completions", frt: float | None = 420.0,
               tiered: bool = False, admin: bool = True) -> dict:
    """GenerateTextOtherInfo (+ GenerateClaudeOtherInfo, InjectTieredBillingInfo)."""
    other: dict = {"model_ratio": r.model_ratio, "group_ratio": r.group_ratio,
                   "completion_ratio": r.completion_ratio, "cache_tokens": cache,
                   "cache_ratio": r.cache_ratio, "model_price": r.model_price,
                   "user_group_ratio": -1, "request_path": request_path}
    if frt is not None:
        other["frt"] = frt
    if admin:
        other["admin_info"] = {"use_channel": ["3"]}
    if claude:
        other.update(claude=True, usage_semantic="anthropic",
                     cache_creation_tokens=cache_write,
                     cache_creation_ratio=r.cache_creation_ratio)
        if cache_write:
            other["cache_write_tokens"] = cache_write
    if tiered:
        other.update(billing_mode="tiered_expr", model_price=0, expr_b64="cCAqIDI=",
                     matched_tier="base")
    return other


def quota_units(usd: Decimal, quota_per_unit: Decimal) -> int:
    return int((usd * quota_per_unit).quantize(Decimal(1), rounding=ROUND_HALF_UP))
