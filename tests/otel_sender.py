"""An instrumented application, run as its own process by the `callmeter otel` tests.

The real OpenAI Python SDK, wrapped by a real OpenTelemetry instrumentation, calls the base URL
it is given (the stand-in upstream, or the recording proxy in front of it) and the real OTLP/HTTP
exporter sends its spans to ``--endpoint`` (with ``--exporter file``, the SDK's OTLP/JSON file
exporter appends them to that path). Each instrumentation runs in a process of its own:
the official one and OpenLLMetry's patch the same SDK methods.

    python tests/otel_sender.py --instrumentation v2|openllmetry --exporter proto|json|file \\
        --endpoint http://127.0.0.1:4318/v1/traces --base-url http://127.0.0.1:P/v1 \\
        [--compression gzip] [--calls scenario|many:N]

Prints one JSON line: what the SDK answered for each call (model, usage, status), so a test
can compare the ledger with what the client saw.
"""

from __future__ import annotations

import argparse
import json
import sys

# A key distinctive enough to find if it leaked into anything callmeter wrote.
SENDER_KEY = "sk-oteltest-Zr81PqLm4VbX2cW9-kq7t"

# (model, request options, X-Upstream-Behaviour); each one call.
SCENARIO = [
    ("gpt-4o", {}, "prompt_tokens=120;completion_tokens=5;cached_tokens=20"),
    ("gpt-4o-c", {}, "prompt_tokens=900;completion_tokens=300"),
    ("gpt-4o-mini", {"stream": True, "stream_options": {"include_usage": True}},
     "prompt_tokens=50;chunks=7"),
    ("gpt-4o", {"stream": True}, "chunks=3"),
    ("o4-mini", {}, "prompt_tokens=64;completion_tokens=40;reasoning_tokens=30"),
    ("gpt-4o", {}, "status=429"),
    ("text-embedding-3-small", {"embeddings": ["a", "b", "c"]}, "prompt_tokens=15"),
    ("gemini-2.5-pro-c", {"stream": True, "stream_options": {"include_usage": True}},
     "prompt_tokens=3000;chunks=4"),
]


def instrument(name: str, provider) -> None:
    if name == "v2":
        from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor
    else:
        from opentelemetry.instrumentation.openai import OpenAIInstrumentor
    OpenAIInstrumentor().instrument(tracer_provider=provider)


def exporter(kind: str, endpoint: str, compression: str | None):
    if kind == "file":  # OTLP/JSON lines, as the Collector's file exporter writes them
        from opentelemetry.exporter.otlp.json.file.trace_exporter import FileSpanExporter

        return FileSpanExporter(endpoint)
    if kind == "json":
        from opentelemetry.exporter.otlp.common.http import Compression
        from opentelemetry.exporter.otlp.json.http.trace_exporter import OTLPSpanExporter
    else:
        from opentelemetry.exporter.otlp.proto.http import Compression
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    return OTLPSpanExporter(endpoint=endpoint, compression=Compression(compression or "none"))


def one_call(client, model: str, options: dict, behaviour: str) -> dict:
    import openai

    headers = {"X-Upstream-Behaviour": behaviour}
    seen: dict = {"model": model, "status": 200, "usage": None}
    try:
        if "embeddings" in options:
            r = client.embeddings.create(model=model, input=options["embeddings"],
                                         extra_headers=headers)
            seen["usage"] = r.usage.model_dump()
        elif options.get("stream"):
            stream = client.chat.completions.create(
                model=model, messages=[{"role": "user", "content": "hi"}],
                extra_headers=headers, **options)
            for chunk in stream:
                if chunk.usage is not None:
                    seen["usage"] = chunk.usage.model_dump()
        else:
            r = client.chat.completions.create(
                model=model, messages=[{"role": "user", "content": "hi"}],
                extra_headers=headers, **options)
            seen["usage"] = r.usage.model_dump() if r.usage else None
    except openai.APIStatusError as exc:
        seen["status"] = exc.status_code
    return seen


def calls(spec: str) -> list[tuple[str, dict, str]]:
    if spec.startswith("many:"):
        n = int(spec.split(":", 1)[1])
        return [("gpt-4o-mini", {}, f"prompt_tokens={10 + i};completion_tokens=3")
                for i in range(n)]
    return SCENARIO


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--instrumentation", choices=("v2", "openllmetry"), required=True)
    parser.add_argument("--exporter", choices=("proto", "json", "file"), default="proto")
    parser.add_argument("--endpoint", required=True)
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--compression", choices=("gzip", "deflate"))
    parser.add_argument("--calls", default="scenario")
    args = parser.parse_args()

    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create({"service.name": "checkout",
                                "deployment.environment.name": "staging",
                                "callmeter.tag.team": "search"})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(
        exporter(args.exporter, args.endpoint, args.compression)))
    instrument(args.instrumentation, provider)

    import openai

    client = openai.OpenAI(base_url=args.base_url, api_key=SENDER_KEY, max_retries=0)
    seen = [one_call(client, *call) for call in calls(args.calls)]
    # a span that is not a model call: counted by the receiver, not recorded
    with provider.get_tracer("checkout").start_as_current_span("handle order"):
        pass
    flushed = provider.force_flush(30_000)
    provider.shutdown()
    print(json.dumps({"flushed": flushed, "calls": seen}))
    sys.exit(0 if flushed else 3)


if __name__ == "__main__":
    main()
