"""Running the OTLP receiver under uvicorn until SIGTERM; the spool segment is closed on exit."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import uvicorn

from ledger import KeyFingerprinter, Settings, SpoolWriter

from .receiver import OtlpReceiver

log = logging.getLogger("callmeter.otel")


def build_receiver(spool_folder: Path, fingerprinter: KeyFingerprinter,
                   settings: Settings) -> OtlpReceiver:
    spool = SpoolWriter(spool_folder, max_bytes=settings.spool_max_bytes,
                        max_seconds=settings.spool_max_seconds)
    return OtlpReceiver(spool, fingerprinter, max_body_bytes=settings.max_body_bytes)


def receiver_config(app: OtlpReceiver, host: str, port: int, **overrides: Any
                    ) -> uvicorn.Config:
    values: dict[str, Any] = dict(host=host, port=port, lifespan="on", access_log=False,
                                  server_header=False, log_level="warning",
                                  timeout_graceful_shutdown=30)
    values.update(overrides)
    return uvicorn.Config(app, **values)


def serve(host: str, port: int, spool_folder: Path, fingerprinter: KeyFingerprinter,
          settings: Settings) -> None:
    """Serve until SIGTERM/SIGINT; blocks."""
    if not log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("callmeter otel %(levelname)s: %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
    log.info("OTLP/HTTP on http://%s:%d/v1/traces, recording GenAI spans into %s", host, port,
             spool_folder)
    app = build_receiver(spool_folder, fingerprinter, settings)
    uvicorn.Server(receiver_config(app, host, port)).run()
