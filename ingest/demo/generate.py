"""Vectorised sampling of the demo's calls with numpy: no Python loop over calls.

Each key's calls are spread over the hours of the window by a multinomial draw on its hourly
weights (hour-of-day and weekday rhythm, day-to-day noise, growth, a late start, a spike), then
sampled per hour range ("chunk") so a large history is built and written a slice at a time, in
time order. Every random stream is seeded from ``(seed, key, chunk)``: the same arguments give
the same calls, bit for bit.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa

from ledger import ENDPOINTS

from .habits import HABITS, IMAGE_SIZES, MODELS, STATUSES, Habit, model_base

CHUNK_CALLS = 400_000
HOUR_US = 3_600_000_000

_HOURS = {  # relative volume by UTC hour of day
    "office": [1, 1, 1, 1, 2, 4, 9, 16, 22, 24, 24, 22, 17, 21, 23, 22, 19, 14, 9, 6, 4, 3, 2, 1],
    "batch": [4, 30, 36, 36, 30, 12, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2],
    "flat": [10] * 24,
    "evening": [4, 3, 2, 1, 1, 1, 2, 4, 5, 6, 6, 7, 8, 7, 7, 8, 10, 14, 18, 22, 24, 20, 14, 8],
    "ci": [3, 2, 2, 2, 3, 5, 9, 14, 18, 20, 20, 19, 16, 18, 20, 20, 18, 15, 11, 8, 6, 5, 4, 3],
}
_WEEKDAYS = {  # Monday first
    "office": [1.0, 1.05, 1.05, 1.0, 0.9, 0.22, 0.18],
    "batch": [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0],
    "flat": [1.0, 1.0, 1.0, 1.0, 1.0, 0.9, 0.9],
    "evening": [0.85, 0.85, 0.9, 0.95, 1.15, 1.4, 1.3],
    "ci": [1.0, 1.1, 1.1, 1.05, 0.9, 0.12, 0.08],
}

MODEL_NAMES: tuple[str, ...] = tuple(sorted({m for h in HABITS for m in h.models}))
_M_ENDPOINT = np.array([ENDPOINTS.index(MODELS[model_base(m)][0]) for m in MODEL_NAMES])
_M_REASONING = np.array([MODELS[model_base(m)][1] for m in MODEL_NAMES])
_M_MS_PER_TOKEN = np.array([MODELS[model_base(m)][2] for m in MODEL_NAMES], dtype=float)
_M_TTFT = np.array([MODELS[model_base(m)][3] for m in MODEL_NAMES], dtype=float)
# endpoint codes: positions in the ledger's one vocabulary
CHAT, EMBEDDINGS, IMAGES, SPEECH, TRANSCRIPTIONS, RERANK = (
    ENDPOINTS.index(e) for e in ("chat", "embeddings", "images", "speech", "transcriptions",
                                 "rerank"))


def split_calls(calls: int, habits: tuple[Habit, ...] = HABITS) -> np.ndarray:
    """Each key's number of calls: its share of ``calls``, largest remainders first."""
    shares = np.array([h.share for h in habits])
    exact = calls * shares / shares.sum()
    counts = np.floor(exact).astype(np.int64)
    short = calls - int(counts.sum())
    counts[np.argsort(-(exact - counts), kind="stable")[:short]] += 1
    out: np.ndarray = counts
    return out


def hourly_weights(habit: Habit, start_hour: int, hours: int, rng: np.random.Generator
                   ) -> np.ndarray:
    """Relative volume of ``habit`` in each hour of the window (hours counted from 1970)."""
    abs_hour = start_hour + np.arange(hours)
    day = abs_hour // 24
    weekday = (day + 3) % 7  # 1970-01-01 was a Thursday
    w = np.array(_HOURS[habit.rhythm], float)[abs_hour % 24]
    w *= np.array(_WEEKDAYS[habit.rhythm])[weekday]
    days = day - day[0]
    w *= rng.lognormal(0.0, 0.18, int(days[-1]) + 1)[days]  # day-to-day noise
    t = np.arange(hours) / max(hours - 1, 1)
    w *= 1.0 + habit.growth * t
    w[t < habit.starts] = 0.0
    spike_days, factor = habit.spike
    if spike_days:
        w[np.arange(hours) >= hours - spike_days * 24] *= factor
    return w


def hourly_counts(calls: int, start_hour: int, hours: int, seed: int) -> np.ndarray:
    """Calls per key (rows) per hour of the window (columns)."""
    out = np.zeros((len(HABITS), hours), dtype=np.int64)
    for i, (habit, n) in enumerate(zip(HABITS, split_calls(calls), strict=True)):
        rng = np.random.default_rng([seed, i, 0])
        w = hourly_weights(habit, start_hour, hours, rng)
        if n and w.sum() > 0:
            out[i] = rng.multinomial(n, w / w.sum())
    return out


def chunks(counts: np.ndarray) -> list[tuple[int, int]]:
    """Consecutive hour ranges holding about CHUNK_CALLS calls each."""
    cum = np.cumsum(counts.sum(axis=0))
    bounds, start = [], 0
    while start < len(cum):
        done = cum[start - 1] if start else 0
        stop = int(np.searchsorted(cum, done + CHUNK_CALLS, side="right"))
        stop = max(stop, start + 1)
        bounds.append((start, stop))
        start = stop
    return bounds


def _lognormal(rng: np.random.Generator, size: tuple[float, float], n: int) -> np.ndarray:
    median, spread = size
    if median <= 0:
        return np.zeros(n)
    return rng.lognormal(np.log(median), spread, n)


def sample_habit(habit: Habit, hour: np.ndarray, rng: np.random.Generator,
                 end_hour: int) -> dict[str, np.ndarray]:
    """The calls of one key in the given hours (one entry of ``hour`` per call)."""
    n = len(hour)
    names = list(habit.models)
    picks = rng.choice(len(names), n, p=np.array(list(habit.models.values())) /
                       sum(habit.models.values()))
    m = np.array([MODEL_NAMES.index(x) for x in names])[picks]
    ep = _M_ENDPOINT[m]
    chat = ep == CHAT
    ts = hour * HOUR_US + rng.integers(0, HOUR_US, n)

    probs = [habit.errors.get(s, 0.0) for s in STATUSES[1:]]
    status = np.array(STATUSES, dtype=np.int16)[rng.choice(6, n, p=[1 - sum(probs), *probs])]
    if habit.revoked_hours:
        status[hour >= end_hour - habit.revoked_hours] = 401
    ok = status < 400

    size_in = _lognormal(rng, habit.input, n)
    visible = np.maximum(1, np.rint(_lognormal(rng, habit.output, n)))
    r = _M_REASONING[m]
    reasoning = np.rint(visible * r / (1 - r) * rng.lognormal(0, 0.5, n)) * (r > 0)
    tokens_in = np.maximum(1, np.rint(size_in)) * np.isin(ep, (CHAT, EMBEDDINGS, RERANK))
    stream = chat & (rng.random(n) < habit.stream)
    cut = stream & ok & (rng.random(n) < habit.interrupted)
    visible = np.where(cut, np.maximum(1, np.rint(visible * rng.uniform(0.1, 0.9, n))), visible)
    output = (visible + reasoning) * chat

    hit, share = habit.cache
    cached = np.floor(tokens_in * share * rng.uniform(0.6, 1.0, n) / 128) * 128
    cached *= chat & (rng.random(n) < hit) & (tokens_in >= 1024)

    ms_tok = _M_MS_PER_TOKEN[m]
    ttft = _M_TTFT[m] * rng.lognormal(0, 0.35, n) + tokens_in * 0.01 + reasoning * ms_tok
    noise = rng.lognormal(0, 0.25, n)
    latency = np.select(
        [chat, ep == EMBEDDINGS, ep == RERANK, ep == IMAGES, ep == SPEECH],
        [ttft + visible * ms_tok * noise, 40 + tokens_in * 0.03 * noise,
         80 + tokens_in * 0.04 * noise, 9000 * noise, 300 + size_in * 2 * noise],
        400 + size_in * 40 * noise,
    )
    failed_ms = np.select([status == 429, status == 500, status == 503],
                          [rng.uniform(20, 120, n), rng.lognormal(np.log(2000), 1.0, n),
                           rng.lognormal(np.log(300), 0.8, n)], rng.uniform(15, 60, n))
    image = ep == IMAGES
    return {
        "m": m.astype(np.int16),
        "started_at": ts,
        "latency_ms": np.rint(np.where(ok, latency, failed_ms)).astype(np.int32),
        "ttft_ms": np.rint(ttft).astype(np.int32),
        "has_ttft": stream & ok,
        "stream": stream,
        "status": status,
        "input_tokens": (tokens_in * ok).astype(np.int64),
        "cached_tokens": (cached * ok).astype(np.int64),
        "output_tokens": (output * ok).astype(np.int64),
        "reasoning_tokens": (reasoning * chat * ok).astype(np.int64),
        "images": (image & ok).astype(np.int32),
        "image_size": rng.choice(len(IMAGE_SIZES), n, p=[0.6, 0.25, 0.15]).astype(np.int8),
        "characters": (np.minimum(np.rint(size_in), 4096) * (ep == SPEECH) * ok).astype(np.int32),
        "audio_seconds": np.round(np.minimum(size_in, 7200) * (ep == TRANSCRIPTIONS) * ok, 1),
        "usage": np.where(ok, np.where(cut, 1, 0), 2).astype(np.int8),
    }


def generate(calls: int, days: int, seed: int, end: datetime) -> Iterator[pa.Table]:
    """The demo's calls as Arrow tables, one per chunk, in time order.

    Columns: ``idx`` (0-based position in the whole history), ``w`` (index into HABITS) and
    the sampled values; :mod:`ingest.demo` turns them into contract rows in SQL.
    """
    end = end.astimezone(UTC)
    end_hour = int(end.timestamp() // 3600)
    hours = days * 24
    start_hour = end_hour - hours
    counts = hourly_counts(calls, start_hour, hours, seed)
    offset = 0
    for c, (a, b) in enumerate(chunks(counts)):
        parts = []
        for i, habit in enumerate(HABITS):
            per_hour = counts[i, a:b]
            if not per_hour.sum():
                continue
            hour = np.repeat(start_hour + np.arange(a, b), per_hour)
            part = sample_habit(habit, hour, np.random.default_rng([seed, i, c + 1]), end_hour)
            part["w"] = np.full(len(hour), i, dtype=np.int16)
            parts.append(part)
        if not parts:
            continue
        cols = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        order = np.argsort(cols["started_at"], kind="stable")
        cols = {k: v[order] for k, v in cols.items()}
        n = len(order)
        yield _arrow(cols, offset)
        offset += n


def _arrow(cols: dict[str, np.ndarray], offset: int) -> pa.Table:
    n = len(cols["m"])
    has_ttft = cols.pop("has_ttft")
    image = MODEL_ENDPOINT_IS_IMAGE[cols["m"]]
    data = {
        "idx": pa.array(np.arange(offset, offset + n, dtype=np.int64)),
        "started_at": pa.array(cols.pop("started_at"), pa.timestamp("us", tz="UTC")),
        "ttft_ms": pa.array(cols.pop("ttft_ms"), mask=~has_ttft),
        "image_size": pa.array(cols.pop("image_size"), mask=~image),
    }
    data.update({k: pa.array(v) for k, v in cols.items()})
    return pa.table(data)


MODEL_ENDPOINT_IS_IMAGE = _M_ENDPOINT == IMAGES
