"""The rules that turn one new-api / one-api log row into a call or an adjustment, as SQL.

Each function returns an expression over the columns of ``newapi._parsed_sql`` (``p_*`` typed
values, ``o_*`` keys of ``other``, ``endpoint_``, ``_kind``). Sources (piexian/new-api, commit
77fdac2, 2026-08-18; songquanpeng/one-api, 2025-01-31) are named at each rule.
"""

from __future__ import annotations

from dataclasses import dataclass

# Types that are neither calls nor money adjustments (model/log.go LogType*).
SKIPPED_TYPES = {0: "unknown", 1: "top-up", 3: "manage", 4: "system", 7: "login"}
# controller/channel-test.go testChannel: RecordConsumeLog with this token name and no token:
# the test's quota is written to the log but deducted from no one.
CHANNEL_TEST_TOKEN = "模型测试"

# Where the request went, from other.request_path, else guessed from the model name.
ENDPOINT_SQL = """CASE
  WHEN o_request_path LIKE '%/embeddings%' THEN 'embeddings'
  WHEN o_request_path LIKE '%/images/%' THEN 'images'
  WHEN o_request_path LIKE '%/audio/speech%' THEN 'speech'
  WHEN o_request_path LIKE '%/audio/transcriptions%' OR o_request_path LIKE '%/audio/translations%'
    THEN 'transcriptions'
  WHEN o_request_path LIKE '%rerank%' THEN 'rerank'
  WHEN o_request_path LIKE '%/messages/count_tokens%' THEN 'count_tokens'
  WHEN o_request_path LIKE '%/messages%' THEN 'messages'
  WHEN o_request_path LIKE '%/responses%' THEN 'responses'
  WHEN o_request_path LIKE '%:generateContent%' OR o_request_path LIKE '%:streamGenerateContent%'
    THEN 'gemini'
  WHEN o_request_path IS NOT NULL THEN 'chat'
  WHEN m LIKE '%embedding%' THEN 'embeddings'
  WHEN m LIKE '%rerank%' THEN 'rerank'
  WHEN m LIKE 'whisper%' OR m LIKE '%transcribe%' THEN 'transcriptions'
  WHEN m LIKE 'tts-%' OR m LIKE '%-tts%' THEN 'speech'
  WHEN m LIKE 'dall-e%' OR m LIKE '%image%' OR m LIKE 'flux%' OR m LIKE 'midjourney%'
    OR m LIKE 'mj_%' THEN 'images'
  ELSE 'chat' END"""

# Images: new-api logs the count as other.image_request.n and in the content ("生成数量 2";
# builds before 2026-03 "张数 2"); the size likewise ("大小 1024x1024") — dto/openai_image.go
# GetLogContent, relay/image_handler.go ImageHelper.
IMAGES_SQL = ("coalesce(o_image_n, try_cast(regexp_extract(content, '(?:生成数量|张数) (\\d+)', 1) "
              "AS INTEGER))")
IMAGE_SIZE_SQL = ("coalesce(o_image_size, "
                  "nullif(regexp_extract(content, '大小 ([0-9A-Za-z]+)', 1), ''))")


def skip_sql() -> str:
    """Why a row is neither a call nor an adjustment (NULL when it is one of them)."""
    labels = " ".join(f"WHEN {k} THEN 'type {k} {v}'" for k, v in SKIPPED_TYPES.items())
    return f"""CASE
  WHEN raw_type IS NOT NULL AND raw_type NOT IN (2, 5, 6) THEN CASE CAST(raw_type AS BIGINT)
    {labels} ELSE 'type ' || CAST(CAST(raw_type AS BIGINT) AS VARCHAR) || ' (not a call)' END
  WHEN p_type = 5 AND elapsed_text IS NOT NULL AND other_text IS NULL
    THEN 'type 5 channel test (one-api)'
  WHEN p_type = 2 AND token_name = '{CHANNEL_TEST_TOKEN}' AND coalesce(token_id, '0') = '0'
    THEN 'channel test (charged to nobody)'
END"""


def kind_sql() -> str:
    """The adjustment kind of a row (NULL for a call).

    service/task_billing.go: ``RefundTaskQuota`` and ``RecalculateTaskQuota`` (final cost lower)
    write type 6 with the refunded quota; ``RecalculateTaskQuota`` (higher) writes type 2 with
    ``task_id``, ``pre_consumed_quota``, ``actual_quota`` and the extra quota. controller/
    midjourney.go refunds a failed job as type 6. service/violation_fee.go charges a fee on a
    failed request (type 2, ``violation_fee``; on a task also ``task_id``).
    """
    return """CASE
  WHEN p_type = 6 THEN 'refund'
  WHEN p_type = 2 AND o_violation_fee = 'true' THEN 'fee'
  WHEN p_type = 2 AND o_task_id IS NOT NULL THEN 'settlement'
END"""


def call_id_sql() -> str:
    """A row's id from its request id, else its content; never from ``id`` (see newapi)."""
    second = "CAST(CAST(epoch(p_started_at) AS BIGINT) AS VARCHAR)"
    content = (f"md5(concat_ws('|', p_type, {second}, coalesce(username, ''), "
               "coalesce(token_name, ''), p_model, p_prompt, p_completion, p_quota))")
    return (f"CASE WHEN request_id IS NULL THEN 'na2:h:' || {content} "
            "WHEN p_type = 2 THEN 'na2:2:' || request_id "
            f"ELSE 'na2:' || CAST(p_type AS VARCHAR) || ':' || request_id || ':' || {second} END")


def billing_mode_sql() -> str:
    """relay/helper/price.go: a ratio-priced model logs ``model_price`` -1, a per-call one its
    price (≥ 0); a tiered-expression model logs ``billing_mode: tiered_expr`` and price 0, and
    is billed per token (service/log_info_generate.go ``InjectTieredBillingInfo``)."""
    return """CASE WHEN _kind IS NOT NULL THEN NULL
  WHEN o_billing_mode = 'tiered_expr' THEN 'token'
  WHEN o_model_price >= 0 THEN 'request'
  WHEN o_model_price < 0 THEN 'token' END"""


@dataclass(frozen=True)
class InputTokens:
    value: str
    placeholder: str
    usage_source: str
    flag: str


def input_tokens_sql(image_row: str) -> InputTokens:
    """``input_tokens`` in the OpenAI meaning (cached ⊆ input), and how sure we are of it
    (``images_n_``: :data:`IMAGES_SQL`, computed once, on image rows only).

    - Claude semantics (service/text_quota.go: ``usage_semantic == "anthropic"``; builds before
      2026-03 wrote ``claude: true`` from ``PostClaudeConsumeQuota``): ``prompt_tokens``
      excludes cache reads and writes, so input = prompt + cache read + cache write
      (``cache_write_tokens``, else ``cache_creation_tokens``). The writes are also the ledger's
      ``cache_write_tokens`` (any semantics: an OpenAI-semantics prompt already holds them),
      ``cache_creation_tokens_1h`` its ``cache_write_long_tokens`` (the proxy reads the same
      counts from the answer new-api relays).
    - relay/image_handler.go sets ``prompt_tokens`` to 1 (before 2026-03: to n) when the
      upstream reports no usage, and one-api logs image rows with 0 tokens: those are not
      tokens. The image count is ``other.image_request.n`` or the content's "生成数量 N".
    - one-api audio rows carry the quota in ``prompt_tokens``.
    - Any other row whose cache reads exceed its prompt counts them apart, as Anthropic does.
    """
    audio = ("(endpoint_ IN ('speech', 'transcriptions') AND p_prompt = p_quota "
             "AND p_quota > 0 AND coalesce(p_completion, 0) = 0)")
    placeholder = (f"({image_row} AND coalesce(p_completion, 0) = 0 AND coalesce(p_prompt, 0) "
                   "IN (0, 1, coalesce(images_n_, 1)))")
    claude = ("(o_usage_semantic = 'anthropic' OR (o_usage_semantic IS NULL "
              "AND o_claude = 'true'))")
    cache_write = "coalesce(p_cache_write, p_cache_creation, 0)"
    outside = "(p_cache > coalesce(p_prompt, 0))"
    known = "images_n_ IS NOT NULL"
    return InputTokens(
        value=(f"CASE WHEN {audio} OR {placeholder} THEN 0 "
               f"WHEN {claude} THEN coalesce(p_prompt, 0) + coalesce(p_cache, 0) + {cache_write} "
               f"WHEN {outside} THEN coalesce(p_prompt, 0) + p_cache "
               "+ coalesce(p_cache_creation, 0) ELSE p_prompt END"),
        placeholder=f"({audio} OR {placeholder})",
        usage_source=(f"CASE WHEN {audio} THEN 'none' WHEN {placeholder} THEN CASE WHEN {known} "
                      "THEN 'reported' ELSE 'estimated' END END"),
        flag=(f"CASE WHEN {audio} THEN 'audio_quota_in_tokens' "
              f"WHEN {placeholder} AND NOT ({known}) THEN 'images_assumed_1' "
              f"WHEN {claude} AND (coalesce(p_cache, 0) + {cache_write}) > 0 "
              "THEN 'anthropic_usage_normalised' "
              f"WHEN {outside} THEN 'cache_added_to_input' END"),
    )
