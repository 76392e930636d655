"""Prometheus metrics of the proxy: requests, errors, tokens, upstream latency, spool health.

Each app has its own registry (tests run several proxies in one process). Model names come from
clients, so the number of distinct model labels is capped; the rest count as ``_other``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .usage import Usage


from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

from ledger import SpoolWriter

MAX_MODEL_LABELS = 200
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
TOKEN_KINDS = ("input", "cached", "cache_write", "output", "reasoning")


class _SpoolCollector:
    """Reads the spool writer's health at scrape time."""

    def __init__(self, spool: SpoolWriter) -> None:
        self.spool = spool

    def collect(self) -> Iterator[GaugeMetricFamily]:
        h = self.spool.health
        yield GaugeMetricFamily("callmeter_spool_recording",
                                "1 while calls are being written to the spool, 0 when not",
                                value=1 if h.recording else 0)
        yield GaugeMetricFamily("callmeter_spool_records_written",
                                "records appended to the spool since start",
                                value=h.records_written)
        yield GaugeMetricFamily("callmeter_spool_records_dropped",
                                "records that could not be written (spool unwritable)",
                                value=h.records_dropped)


class ProxyMetrics:
    def __init__(self, spool: SpoolWriter) -> None:
        self.registry = r = CollectorRegistry()
        self.requests = Counter("callmeter_proxy_requests", "calls finished, by outcome",
                                ["endpoint", "model", "status"], registry=r)
        self.errors = Counter("callmeter_proxy_errors",
                              "failures: upstream unreachable/timeout, interrupted streams, ...",
                              ["kind"], registry=r)
        self.tokens = Counter("callmeter_proxy_tokens", "tokens by model (cost-free counts)",
                              ["model", "kind"], registry=r)
        self.upstream_latency = Histogram("callmeter_proxy_upstream_latency_seconds",
                                          "time from request to upstream response headers",
                                          ["endpoint"], buckets=LATENCY_BUCKETS, registry=r)
        self.duration = Histogram("callmeter_proxy_request_duration_seconds",
                                  "whole call, until the last byte", ["endpoint"],
                                  buckets=LATENCY_BUCKETS, registry=r)
        self.in_flight = Gauge("callmeter_proxy_in_flight", "calls in progress", registry=r)
        r.register(_SpoolCollector(spool))
        self._models: set[str] = set()
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}

    def model_label(self, model: str | None) -> str:
        if not model:
            return ""
        if model in self._models:
            return model
        if len(self._models) >= MAX_MODEL_LABELS:
            return "_other"
        self._models.add(model)
        return model

    def _child(self, metric: Any, *labels: str) -> Any:
        """``metric.labels(*labels)``, remembered: label lookup is most of a counter's cost."""
        key = (id(metric), labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def observe(self, endpoint: str, model: str | None, status: int, usage: Usage, seconds: float,
                upstream_seconds: float | None) -> None:
        label = self.model_label(model)
        child = self._child
        child(self.requests, endpoint, label, str(status)).inc()
        child(self.duration, endpoint).observe(seconds)
        if upstream_seconds is not None:
            child(self.upstream_latency, endpoint).observe(upstream_seconds)
        for kind, value in zip(TOKEN_KINDS, (usage.input_tokens, usage.cached_tokens,
                                             usage.cache_write_tokens, usage.output_tokens,
                                             usage.reasoning_tokens), strict=True):
            if value:
                child(self.tokens, label, kind).inc(value)

    def render(self) -> bytes:
        return generate_latest(self.registry)
