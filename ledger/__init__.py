"""The ledger core: the bottom layer every other package of callmeter builds on.

It owns the ``calls`` and ``adjustments`` tables (their contract columns and the one
vocabulary of endpoints, sources, usage sources and billing modes), the numbered migrations and
their registration point, opening a ledger file or a DuckLake lake (and who holds it), the
settings, keyed fingerprints of API keys, the spool format and its writer, the errors shown to a
user, the SQL-literal helper and the insert of new calls with its hook points. It imports
nothing of callmeter's above it: layers above register their steps (:mod:`ledger.hooks`,
:func:`ledger.migrations.register`). Other packages import the names below, from here.
"""

from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .config import (
        DEFAULT_DB,
        DEFAULT_QUOTA_PER_UNIT,
        SETTINGS,
        Setting,
        Settings,
        data_file,
        is_lake_target,
        ledger_companion,
        ledger_home,
        parse_quota_per_unit,
        rejected_dir,
        settings_from_env,
        shipped_file,
        spool_dir,
    )
    from .connect import connect_file, open_ledger, spool_fate
    from .errors import (
        CallmeterError,
        ImportFormatError,
        LedgerError,
        LedgerLocked,
        LedgerTooNew,
        SpoolError,
    )
    from .hooks import calls_added, derive_tables, on_calls_added, set_insert_builder
    from .insert import (
        SOURCE_ORDER,
        id_census,
        in_source_order,
        insert_new_adjustments,
        insert_new_calls,
    )
    from .keys import KeyFingerprinter, bearer_key, fingerprinter_for, key_hint
    from .lake_migrate import MigrateResult, migrate_to_lake
    from .migrations import migration
    from .migrations import register as register_migration
    from .schema import (
        ADJUSTMENT_COLUMNS,
        ADJUSTMENT_KINDS,
        BILLING_MODES,
        CALL_COLUMNS,
        CALL_DEFAULTS,
        ENDPOINTS,
        NON_BILLABLE_ENDPOINTS,
        SOURCES,
        TEXT_ENDPOINTS,
        USAGE_SOURCES,
        adjustment_columns_struct,
        base_model_sql,
        billing_mode_sql,
        duckdb_columns_struct,
        split_model,
        variant_name,
    )
    from .spool import (
        ADJUSTMENTS_SUFFIX,
        CLOSED_SUFFIX,
        OPEN_SUFFIX,
        SpoolWriter,
        encode_record,
        lock_segment,
        segment_name,
        segment_pid,
    )
    from .sql import fetch_one, sql_identifier, sql_list, sql_literal

# Names are imported on first use (PEP 562): ``callmeter --help`` reads the settings without
# importing DuckDB. public name -> (submodule, name there)
_LAZY: dict[str, tuple[str, str]] = {
    "ADJUSTMENTS_SUFFIX": ("spool", "ADJUSTMENTS_SUFFIX"),
    "ADJUSTMENT_COLUMNS": ("schema", "ADJUSTMENT_COLUMNS"),
    "ADJUSTMENT_KINDS": ("schema", "ADJUSTMENT_KINDS"),
    "BILLING_MODES": ("schema", "BILLING_MODES"),
    "CALL_COLUMNS": ("schema", "CALL_COLUMNS"),
    "CALL_DEFAULTS": ("schema", "CALL_DEFAULTS"),
    "CLOSED_SUFFIX": ("spool", "CLOSED_SUFFIX"),
    "CallmeterError": ("errors", "CallmeterError"),
    "DEFAULT_DB": ("config", "DEFAULT_DB"),
    "DEFAULT_QUOTA_PER_UNIT": ("config", "DEFAULT_QUOTA_PER_UNIT"),
    "ENDPOINTS": ("schema", "ENDPOINTS"),
    "NON_BILLABLE_ENDPOINTS": ("schema", "NON_BILLABLE_ENDPOINTS"),
    "TEXT_ENDPOINTS": ("schema", "TEXT_ENDPOINTS"),
    "ImportFormatError": ("errors", "ImportFormatError"),
    "KeyFingerprinter": ("keys", "KeyFingerprinter"),
    "LedgerError": ("errors", "LedgerError"),
    "LedgerLocked": ("errors", "LedgerLocked"),
    "LedgerTooNew": ("errors", "LedgerTooNew"),
    "MigrateResult": ("lake_migrate", "MigrateResult"),
    "OPEN_SUFFIX": ("spool", "OPEN_SUFFIX"),
    "SETTINGS": ("config", "SETTINGS"),
    "SOURCES": ("schema", "SOURCES"),
    "Setting": ("config", "Setting"),
    "Settings": ("config", "Settings"),
    "SpoolError": ("errors", "SpoolError"),
    "SpoolWriter": ("spool", "SpoolWriter"),
    "USAGE_SOURCES": ("schema", "USAGE_SOURCES"),
    "adjustment_columns_struct": ("schema", "adjustment_columns_struct"),
    "base_model_sql": ("schema", "base_model_sql"),
    "bearer_key": ("keys", "bearer_key"),
    "billing_mode_sql": ("schema", "billing_mode_sql"),
    "calls_added": ("hooks", "calls_added"),
    "connect_file": ("connect", "connect_file"),
    "data_file": ("config", "data_file"),
    "derive_tables": ("hooks", "derive_tables"),
    "duckdb_columns_struct": ("schema", "duckdb_columns_struct"),
    "encode_record": ("spool", "encode_record"),
    "fingerprinter_for": ("keys", "fingerprinter_for"),
    "SOURCE_ORDER": ("insert", "SOURCE_ORDER"),
    "id_census": ("insert", "id_census"),
    "in_source_order": ("insert", "in_source_order"),
    "insert_new_adjustments": ("insert", "insert_new_adjustments"),
    "insert_new_calls": ("insert", "insert_new_calls"),
    "is_lake_target": ("config", "is_lake_target"),
    "key_hint": ("keys", "key_hint"),
    "ledger_companion": ("config", "ledger_companion"),
    "ledger_home": ("config", "ledger_home"),
    "lock_segment": ("spool", "lock_segment"),
    "migrate_to_lake": ("lake_migrate", "migrate_to_lake"),
    "migration": ("migrations", "migration"),
    "on_calls_added": ("hooks", "on_calls_added"),
    "open_ledger": ("connect", "open_ledger"),
    "parse_quota_per_unit": ("config", "parse_quota_per_unit"),
    "register_migration": ("migrations", "register"),
    "rejected_dir": ("config", "rejected_dir"),
    "segment_name": ("spool", "segment_name"),
    "segment_pid": ("spool", "segment_pid"),
    "set_insert_builder": ("hooks", "set_insert_builder"),
    "settings_from_env": ("config", "settings_from_env"),
    "shipped_file": ("config", "shipped_file"),
    "split_model": ("schema", "split_model"),
    "spool_dir": ("config", "spool_dir"),
    "spool_fate": ("connect", "spool_fate"),
    "fetch_one": ("sql", "fetch_one"),
    "sql_identifier": ("sql", "sql_identifier"),
    "sql_list": ("sql", "sql_list"),
    "sql_literal": ("sql", "sql_literal"),
    "variant_name": ("schema", "variant_name"),
}

__all__ = [
    "ADJUSTMENTS_SUFFIX",
    "ADJUSTMENT_COLUMNS",
    "ADJUSTMENT_KINDS",
    "BILLING_MODES",
    "CALL_COLUMNS",
    "CALL_DEFAULTS",
    "CLOSED_SUFFIX",
    "DEFAULT_DB",
    "DEFAULT_QUOTA_PER_UNIT",
    "ENDPOINTS",
    "NON_BILLABLE_ENDPOINTS",
    "OPEN_SUFFIX",
    "SETTINGS",
    "SOURCES",
    "TEXT_ENDPOINTS",
    "USAGE_SOURCES",
    "CallmeterError",
    "ImportFormatError",
    "KeyFingerprinter",
    "LedgerError",
    "LedgerLocked",
    "LedgerTooNew",
    "MigrateResult",
    "Setting",
    "Settings",
    "SOURCE_ORDER",
    "SpoolError",
    "SpoolWriter",
    "adjustment_columns_struct",
    "base_model_sql",
    "bearer_key",
    "billing_mode_sql",
    "calls_added",
    "connect_file",
    "data_file",
    "derive_tables",
    "duckdb_columns_struct",
    "encode_record",
    "fetch_one",
    "fingerprinter_for",
    "id_census",
    "in_source_order",
    "insert_new_adjustments",
    "insert_new_calls",
    "is_lake_target",
    "key_hint",
    "ledger_companion",
    "ledger_home",
    "lock_segment",
    "migrate_to_lake",
    "migration",
    "on_calls_added",
    "open_ledger",
    "parse_quota_per_unit",
    "register_migration",
    "rejected_dir",
    "segment_name",
    "segment_pid",
    "set_insert_builder",
    "settings_from_env",
    "shipped_file",
    "split_model",
    "spool_dir",
    "spool_fate",
    "sql_identifier",
    "sql_list",
    "sql_literal",
    "variant_name",
]


def _submodule(name: str) -> ModuleType:
    """The submodule ``name``, by a plain import statement (visible to the linters)."""
    if name == "config":
        from . import config

        return config
    if name == "connect":
        from . import connect

        return connect
    if name == "errors":
        from . import errors

        return errors
    if name == "hooks":
        from . import hooks

        return hooks
    if name == "insert":
        from . import insert

        return insert
    if name == "keys":
        from . import keys

        return keys
    if name == "lake_migrate":
        from . import lake_migrate

        return lake_migrate
    if name == "migrations":
        from . import migrations

        return migrations
    if name == "schema":
        from . import schema

        return schema
    if name == "spool":
        from . import spool

        return spool
    from . import sql

    return sql


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'ledger' has no attribute {name!r}")
    module, attr = _LAZY[name]
    value = getattr(_submodule(module), attr)
    globals()[name] = value
    return value
