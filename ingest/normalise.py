"""The one SQL step that turns any staged source into contract rows.

Spool segments and every importer end here, so defaults (requests 1, counts 0, status 200) and the
derived columns (base model and billing mode from the ``-c`` suffix, a hashed ``call_id`` when the
source had none) are decided once.
"""

from __future__ import annotations

from ledger import (
    CALL_COLUMNS,
    CALL_DEFAULTS,
    base_model_sql,
    billing_mode_sql,
    split_model,
    sql_literal,
)

# Fields that identify a call when its source gave no id (see call_id_sql).
HASHED_FIELDS = ("source", "started_at", "key_id", "key_label", "model", "endpoint", "status",
                 "input_tokens", "cached_tokens", "output_tokens", "reasoning_tokens", "images",
                 "characters", "requests", "charged")


__all__ = ["HASHED_FIELDS", "call_id_sql", "normalised_select", "split_model"]


def _default_sql(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return sql_literal(value)
    return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)


def call_id_sql(alias: str = "s") -> str:
    """A deterministic ``h1:`` id from the normalised fields, so re-import is a no-op."""
    parts = ", ".join(f"coalesce(CAST({alias}.{f} AS VARCHAR), '')" for f in HASHED_FIELDS)
    return f"'h1:' || substr(sha256(concat_ws('|', {parts})), 1, 32)"


def normalised_select(source_sql: str, alias: str = "s") -> str:
    """``SELECT`` every contract column from ``source_sql`` with defaults and derivations.

    ``source_sql`` must expose every column of CALL_COLUMNS (NULL where unknown) and may expose
    more (``_line``, ``_reject``...), which are passed through.
    """
    m = f"{alias}.model"
    exprs = {
        "base_model": f"coalesce({alias}.base_model, {base_model_sql(m)})",
        "billing_mode": f"coalesce({alias}.billing_mode, {billing_mode_sql(m)})",
    }
    for col, default in CALL_DEFAULTS.items():
        exprs[col] = f"coalesce({alias}.{col}, {_default_sql(default)})"
    cols = []
    for name, typ in CALL_COLUMNS.items():
        expr = exprs.get(name, f"{alias}.{name}")
        cols.append(f"CAST({expr} AS {typ}) AS {name}")
    inner = ",\n  ".join(cols)
    # call_id is filled from the normalised values in an outer step
    return (
        f"SELECT * REPLACE (coalesce(n.call_id, {call_id_sql('n')}) AS call_id) FROM (\n"
        f"SELECT {inner},\n  {alias}.* EXCLUDE ({', '.join(CALL_COLUMNS)})\n"
        f"FROM ({source_sql}) {alias}\n) n"
    )
