"""Log importers, one module per format with the same shape (``NAME``, ``detect``, ``stage_sql``).

Detection tries formats in this order; the generic ``csv`` comes last because it accepts any
CSV whose header carries ``started_at`` and ``model``.
"""

from __future__ import annotations

from types import ModuleType

from . import csv, litellm, newapi, openai, openai_usage, otlp
from .base import ImportOptions, ImportResult, detect_format, import_file

FORMATS: dict[str, ModuleType] = {
    "otlp": otlp,
    "newapi": newapi,
    "openai-usage": openai_usage,
    "litellm": litellm,
    "openai": openai,
    "csv": csv,
}


__all__ = ["FORMATS", "ImportOptions", "ImportResult", "detect_format", "import_file"]
