"""Log importers, one module per format with the same shape (``NAME``, ``detect``, ``stage_sql``:
the :class:`~ingest.importers.base.ImportFormat` protocol, checked by mypy).

Detection tries formats in this order; the generic ``csv`` comes last because it accepts any
CSV whose header carries ``started_at`` and ``model``.
"""

from __future__ import annotations

from . import csv, litellm, newapi, openai, openai_usage, otlp
from .base import ImportFormat, ImportOptions, ImportResult, detect_format, import_file

FORMATS: dict[str, ImportFormat] = {
    "otlp": otlp,
    "newapi": newapi,
    "openai-usage": openai_usage,
    "litellm": litellm,
    "openai": openai,
    "csv": csv,
}


__all__ = ["FORMATS", "ImportFormat", "ImportOptions", "ImportResult", "detect_format",
           "import_file"]
