"""The ledger core: the bottom layer every other package of callmeter builds on.

It owns the ``calls`` and ``adjustments`` tables (their contract columns and the one
vocabulary of endpoints, sources, usage sources and billing modes), the numbered migrations and
their registration point, opening a ledger file or a DuckLake lake (and who holds it), the
settings, keyed fingerprints of API keys, the spool format and its writer, the errors shown to a
user, the SQL-literal helper and the insert of new calls with its hook points. It imports
nothing of callmeter's above it: layers above register their steps (:mod:`ledger.hooks`,
:func:`ledger.migrations.register`). Other packages import the names below, from here.
"""

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
from .insert import id_census, insert_new_adjustments, insert_new_calls
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
    SOURCES,
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
from .sql import sql_identifier, sql_list, sql_literal

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
    "OPEN_SUFFIX",
    "SETTINGS",
    "SOURCES",
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
    "fingerprinter_for",
    "id_census",
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
