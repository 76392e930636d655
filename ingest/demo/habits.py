"""Who calls what in the demo organisation: the models and the ~30 keys with their habits.

Data, not code: each :class:`Habit` is one API key (label, tags, models, volume, daily rhythm,
token sizes, error rates). A few habits sit on the wrong billing variant on purpose (long inputs
billed per token, tiny calls billed per request), so the billing-mode comparison and the
recommendations have real money to find.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# model as called -> (endpoint, share of output that is reasoning, ms per output token, ttft ms)
MODELS: dict[str, tuple[str, float, float, float]] = {
    "gpt-4o": ("chat", 0.0, 12, 450),
    "gpt-4o-mini": ("chat", 0.0, 8, 350),
    "gpt-4.1": ("chat", 0.0, 12, 500),
    "gpt-5": ("chat", 0.55, 10, 900),
    "o3": ("chat", 0.75, 14, 1500),
    "o4-mini": ("chat", 0.65, 9, 900),
    "claude-3-5-sonnet": ("chat", 0.0, 14, 700),
    "claude-3-7-sonnet": ("chat", 0.3, 14, 800),
    "claude-3-opus": ("chat", 0.0, 30, 1400),
    "gemini-2.5-pro": ("chat", 0.4, 9, 1200),
    "gemini-2.5-flash": ("chat", 0.2, 5, 500),
    "gemini-2.5-flash-lite": ("chat", 0.0, 4, 300),
    "deepseek-chat": ("chat", 0.0, 18, 800),
    "deepseek-reasoner": ("chat", 0.6, 20, 2500),
    "qwen-plus": ("chat", 0.0, 12, 500),
    "qwen-max": ("chat", 0.0, 16, 700),
    "qwen-turbo": ("chat", 0.0, 6, 300),
    "qwen3-235b-a22b": ("chat", 0.35, 15, 900),
    "text-embedding-3-small": ("embeddings", 0.0, 0, 0),
    "text-embedding-3-large": ("embeddings", 0.0, 0, 0),
    "dall-e-3": ("images", 0.0, 0, 0),
    "tts-1": ("speech", 0.0, 0, 0),
    "whisper-1": ("transcriptions", 0.0, 0, 0),
    "jina-reranker-v2-base-multilingual": ("rerank", 0.0, 0, 0),
}

IMAGE_SIZES = ("1024x1024", "1792x1024", "1024x1792")
USAGE_FLAG_INTERRUPTED = "interrupted"  # what the proxy writes for a stream cut short

# Share of calls per status (the rest are 200). "A few percent", like a real gateway.
DEFAULT_ERRORS: dict[int, float] = {401: 0.002, 403: 0.001, 429: 0.012, 500: 0.004, 503: 0.006}
STATUSES = (200, 401, 403, 429, 500, 503)


def model_base(model: str) -> str:
    return model[:-2] if model.endswith("-c") else model


@dataclass(frozen=True)
class Habit:
    """One API key and how it is used.

    Sizes are (median, spread) of a log-normal distribution: ``input`` is tokens (chat,
    embeddings, rerank), characters (speech) or seconds of audio (transcriptions). ``cache`` is
    (share of calls that hit the prompt cache, share of their input served from it). ``rhythm``
    names an hour-of-day and weekday profile in :mod:`ingest.demo.generate`.
    """

    label: str | None
    tags: dict[str, str]
    models: dict[str, float]
    share: float
    rhythm: str = "office"
    input: tuple[float, float] = (800, 0.8)
    output: tuple[float, float] = (250, 0.7)
    cache: tuple[float, float] = (0.0, 0.0)
    stream: float = 0.0
    errors: dict[int, float] = field(default_factory=lambda: dict(DEFAULT_ERRORS))
    growth: float = 0.0          # relative change of volume from first to last day
    starts: float = 0.0          # fraction of the window before the key's first call
    spike: tuple[float, float] = (0.0, 1.0)   # (last days, volume factor)
    revoked_hours: float = 0.0   # the last hours answer 401 (a leaked key, revoked)
    interrupted: float = 0.003   # streams cut short: usage estimated locally


def _errors(**rates: float) -> dict[int, float]:
    out = dict(DEFAULT_ERRORS)
    out.update({int(k[1:]): v for k, v in rates.items()})
    return out


HABITS: tuple[Habit, ...] = (
    Habit("Support chatbot", {"team": "support", "app": "helpdesk"},
          {"gpt-4o": 0.85, "gpt-4o-mini": 0.15}, 0.14, "office", (2600, 0.6), (220, 0.7),
          cache=(0.8, 0.7), stream=0.93, growth=0.35),
    Habit("Support chatbot – EU", {"team": "support", "app": "helpdesk-eu"},
          {"gemini-2.5-flash": 1.0}, 0.05, "office", (2200, 0.6), (200, 0.7),
          cache=(0.6, 0.6), stream=0.9),
    # long documents billed per token: the per-request variant is far cheaper here
    Habit("Nightly summariser", {"team": "research", "app": "digest"},
          {"gemini-2.5-pro": 0.7, "claude-3-5-sonnet": 0.3}, 0.03, "batch",
          (48000, 0.5), (900, 0.4)),
    # the same kind of job already on the per-request variant (right choice)
    Habit("Contract reader", {"team": "legal", "app": "contracts"},
          {"gpt-4o-c": 1.0}, 0.012, "office", (30000, 0.5), (700, 0.5)),
    Habit("Embedding indexer", {"team": "search", "app": "indexer"},
          {"text-embedding-3-small": 1.0}, 0.16, "batch", (700, 0.6), (0, 0),
          errors=_errors(e429=0.02)),
    Habit("Docs search – embeddings", {"team": "search", "app": "docs-search"},
          {"text-embedding-3-large": 1.0}, 0.04, "office", (60, 0.8), (0, 0)),
    Habit("Search reranker", {"team": "search", "app": "docs-search"},
          {"jina-reranker-v2-base-multilingual": 1.0}, 0.035, "office", (3500, 0.5), (0, 0)),
    # a CI bot hammering one model: tiny calls billed per request (per-token is cheaper)
    Habit("CI test bot", {"team": "platform", "app": "ci"},
          {"gpt-4o-mini-c": 1.0}, 0.12, "ci", (180, 0.3), (12, 0.5),
          errors=_errors(e429=0.07, e503=0.01)),
    Habit("Ticket classifier", {"team": "support", "app": "triage"},
          {"deepseek-chat-c": 1.0}, 0.05, "office", (350, 0.4), (8, 0.4)),
    Habit("Code review bot", {"team": "eng", "app": "review-bot"},
          {"claude-3-7-sonnet": 0.7, "claude-3-5-sonnet": 0.3}, 0.03, "office",
          (14000, 0.7), (650, 0.5), cache=(0.4, 0.5)),
    Habit("Analyst (o3)", {"team": "finance", "app": "analyst"},
          {"o3": 0.8, "o4-mini": 0.2}, 0.012, "office", (5000, 0.7), (900, 0.6), stream=0.6),
    Habit("Research agent", {"team": "research", "app": "agent"},
          {"deepseek-reasoner": 0.6, "qwen3-235b-a22b": 0.4}, 0.015, "flat",
          (7000, 0.8), (1200, 0.6), stream=0.5),
    Habit("客服机器人", {"team": "cn-support", "app": "客服"},
          {"qwen-plus": 0.7, "qwen-max-c": 0.3}, 0.05, "office", (1500, 0.6), (300, 0.6),
          stream=0.85),
    Habit("Translation pipeline", {"team": "content", "app": "translate"},
          {"qwen-turbo": 0.6, "gemini-2.5-flash-lite": 0.4}, 0.05, "batch",
          (1200, 0.5), (1300, 0.5)),
    Habit("Banner studio", {"team": "marketing", "app": "banner-studio"},
          {"dall-e-3": 1.0}, 0.008, "office", errors=_errors(e500=0.01)),
    Habit("Voice notes (TTS)", {"team": "mobile", "app": "voice-notes"},
          {"tts-1": 1.0}, 0.015, "evening", input=(450, 0.7)),
    Habit("Meeting transcripts", {"team": "ops", "app": "meeting-notes"},
          {"whisper-1": 1.0}, 0.01, "office", input=(600, 0.9)),
    Habit("Mobile assistant", {"team": "mobile", "app": "assistant"},
          {"gpt-4o-mini": 0.7, "gemini-2.5-flash-c": 0.3}, 0.05, "evening",
          (900, 0.6), (180, 0.6), cache=(0.3, 0.5), stream=0.95, growth=0.8),
    # an expensive model answering short questions: the cheaper-model recommendation's case
    Habit("Legacy FAQ bot", {"team": "support", "app": "faq"},
          {"claude-3-opus": 1.0}, 0.012, "office", (400, 0.4), (120, 0.4), stream=0.3),
    Habit("Agents platform", {"team": "eng", "app": "agents"},
          {"gpt-4.1": 0.6, "gpt-5": 0.4}, 0.03, "office", (9000, 0.6), (500, 0.6),
          cache=(0.7, 0.8), stream=0.4),
    Habit("Sales copilot", {"team": "sales", "app": "copilot"},
          {"gpt-5-c": 0.5, "gemini-2.5-pro-c": 0.5}, 0.02, "office",
          (2500, 0.6), (600, 0.6), stream=0.8, starts=0.55),
    Habit("Data-science notebooks", {"team": "data"},
          {"gpt-4o": 0.4, "o4-mini": 0.3, "qwen-max": 0.3}, 0.01, "office",
          (3000, 1.0), (500, 0.9)),
    Habit("Zoë's laptop", {"team": "eng", "owner": "zoë"},
          {"gpt-4o": 0.5, "claude-3-7-sonnet-c": 0.3, "gemini-2.5-pro": 0.2}, 0.004, "office",
          (1800, 1.0), (400, 0.8), stream=0.9),
    Habit("José – prototyping", {"team": "product", "owner": "josé"},
          {"gpt-4.1": 0.5, "deepseek-chat": 0.5}, 0.004, "evening", (1500, 1.0), (350, 0.8),
          stream=0.7),
    Habit("Ōtsuka test key", {"team": "qa"},
          {"gpt-4o-mini": 1.0}, 0.003, "office", (300, 0.8), (60, 0.8),
          errors=_errors(e401=0.03, e403=0.02)),
    Habit("Staging", {"team": "platform", "env": "staging"},
          {"gpt-4o-mini": 0.5, "o3": 0.2, "text-embedding-3-small": 0.3}, 0.01, "ci",
          (600, 0.7), (80, 0.7), errors=_errors(e403=0.06, e500=0.01)),
    Habit("Weekly report generator", {"team": "finance", "app": "weekly-report"},
          {"gpt-4o-c": 0.5, "o3-c": 0.5}, 0.002, "batch", (20000, 0.4), (2500, 0.4)),
    Habit(None, {},
          {"gpt-4o": 0.6, "qwen-plus-c": 0.4}, 0.004, "flat", (1000, 0.9), (300, 0.8)),
    Habit("Hackathon key", {"team": "eng", "event": "hackathon"},
          {"gpt-5": 0.5, "dall-e-3": 0.1, "claude-3-5-sonnet-c": 0.4}, 0.004, "flat",
          (2000, 0.9), (500, 0.8), stream=0.8, starts=0.93),
    # a leaked key: quiet for months, then a burst at all hours, then revoked (401)
    Habit("Partner sandbox (old)", {"team": "partners"},
          {"gpt-4o": 0.4, "claude-3-opus": 0.3, "o3": 0.3}, 0.02, "flat",
          (3000, 0.9), (800, 0.8), stream=0.5, spike=(3.0, 60.0), revoked_hours=7.0,
          errors=_errors(e429=0.12)),
)
