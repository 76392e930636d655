"""SQL for parsing one raw text field into a typed contract column, with a reason when it fails.

Every importer builds its staging ``SELECT`` from these, so a bad value is reported the same way
whatever the format: ``field input_tokens: 'abc' is not a whole number``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ledger import sql_literal


@dataclass(frozen=True)
class Field:
    """A parsed column: its value expression and the reason expression (NULL when fine)."""

    name: str
    value: str
    reject: str | None = None


def _raw(expr: str) -> str:
    return f"nullif(trim(CAST({expr} AS VARCHAR)), '')"


def _why(name: str, expr: str, what: str) -> str:
    return f"'field {name}: ''' || left({_raw(expr)}, 40) || ''' {what}'"


def text_field(name: str, expr: str) -> Field:
    return Field(name, _raw(expr))


def count_field(name: str, expr: str) -> Field:
    """A non-negative whole number (tokens, images, characters)."""
    raw = _raw(expr)
    val = f"try_cast(try_cast({raw} AS DOUBLE) AS BIGINT)"
    exact = f"try_cast({raw} AS DOUBLE) = floor(try_cast({raw} AS DOUBLE))"
    rej = (f"CASE WHEN {raw} IS NOT NULL AND ({val} IS NULL OR NOT {exact}) "
           f"THEN {_why(name, expr, 'is not a whole number')} "
           f"WHEN {val} < 0 THEN {_why(name, expr, 'is negative')} END")
    return Field(name, f"CASE WHEN {exact} THEN {val} END", rej)


def number_field(name: str, expr: str, typ: str = "DOUBLE") -> Field:
    """A non-negative number (seconds, money)."""
    raw = _raw(expr)
    val = f"try_cast({raw} AS {typ})"
    rej = (f"CASE WHEN {raw} IS NOT NULL AND {val} IS NULL "
           f"THEN {_why(name, expr, 'is not a number')} "
           f"WHEN {val} < 0 THEN {_why(name, expr, 'is negative')} END")
    return Field(name, val, rej)


def bool_field(name: str, expr: str) -> Field:
    raw = f"lower({_raw(expr)})"
    val = (f"CASE WHEN {raw} IN ('true','t','1','yes','y') THEN true "
           f"WHEN {raw} IN ('false','f','0','no','n') THEN false END")
    rej = (f"CASE WHEN {raw} IS NOT NULL AND ({val}) IS NULL "
           f"THEN {_why(name, expr, 'is not true/false')} END")
    return Field(name, val, rej)


def time_field(name: str, expr: str, timezone: str = "UTC", required: bool = True) -> Field:
    """An instant: ISO text with or without offset (naive = ``timezone``) or unix seconds/ms."""
    raw = _raw(expr)
    tz = sql_literal(timezone)
    num = f"try_cast({raw} AS DOUBLE)"
    val = (f"CASE WHEN {num} IS NOT NULL THEN "
           f"to_timestamp(CASE WHEN {num} > 1e11 THEN {num} / 1000 ELSE {num} END) "
           f"WHEN regexp_matches({raw}, '([+-]\\d\\d:?\\d\\d|Z|UTC)$') "
           f"THEN try_cast({raw} AS TIMESTAMPTZ) "
           f"ELSE timezone({tz}, try_cast({raw} AS TIMESTAMP)) END")
    rej = (f"CASE WHEN {raw} IS NOT NULL AND ({val}) IS NULL "
           f"THEN {_why(name, expr, 'is not a time')}")
    if required:
        rej += f" WHEN {raw} IS NULL THEN 'field {name}: missing'"
    return Field(name, val, rej + " END")


def choice_field(name: str, expr: str, allowed: tuple[str, ...]) -> Field:
    raw = f"lower({_raw(expr)})"
    options = ", ".join(sql_literal(a) for a in allowed)
    rej = (f"CASE WHEN {raw} IS NOT NULL AND {raw} NOT IN ({options}) "
           f"THEN {_why(name, expr, 'is not one of ' + '/'.join(allowed))} END")
    return Field(name, raw, rej)


def status_field(name: str, expr: str) -> Field:
    raw = _raw(expr)
    val = f"try_cast({raw} AS SMALLINT)"
    rej = (f"CASE WHEN {raw} IS NOT NULL AND ({val} IS NULL OR {val} NOT BETWEEN 100 AND 599) "
           f"THEN {_why(name, expr, 'is not an HTTP status')} END")
    return Field(name, val, rej)


def first_reason(fields: list[Field], extra: list[str] | None = None) -> str:
    """``coalesce`` of every field's reason: the first problem found names the row's rejection."""
    reasons = [f.reject for f in fields if f.reject] + list(extra or [])
    return f"coalesce({', '.join(reasons)})" if reasons else "NULL"
