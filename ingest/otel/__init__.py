"""OpenTelemetry in: GenAI spans (OTLP) become ledger calls, through the proxy's spool.

    convert(request, fingerprinter) -> Conversion   spans of one export → call records
    decode_request(body, kind), request_from_json   OTLP protobuf / JSON → the proto message
    OtlpReceiver                                     the ASGI app of ``callmeter otel``
    build_receiver, serve                            with its spool writer; under uvicorn
    OtlpDecodeError, OtlpTooLarge                    bad input (400 / 413)
"""

from .decode import JSON, PROTOBUF, decode_request, request_from_json
from .errors import OtlpDecodeError, OtlpTooLarge
from .receiver import OtlpReceiver
from .server import build_receiver, receiver_config, serve
from .spans import SOURCE, Conversion, convert

__all__ = ["JSON", "PROTOBUF", "SOURCE", "Conversion", "OtlpDecodeError", "OtlpReceiver",
           "OtlpTooLarge", "build_receiver", "convert", "decode_request", "receiver_config",
           "request_from_json", "serve"]
