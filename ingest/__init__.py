"""The writers: everything that puts calls into the ledger (it imports only the ledger core).

Documented submodules (others import these, never deeper):

- ``ingest.proxy``: the recording proxy (ASGI), one spool record per finished call.
- ``ingest.otel``: the OTLP/HTTP receiver, one spool record per GenAI span.
- ``ingest.loader``: finished spool segments into the ledger (``load_spool``, ``spool_backlog``).
- ``ingest.importers``: one module per log format, same ``detect`` / ``stage_sql`` shape
  (``FORMATS``, ``ImportFormat``, ``ImportOptions``, ``ImportResult``).
- ``ingest.imports``: ``import_paths``, files through their importers (or via the spool when
  another process owns the ledger).
- ``ingest.sync`` and ``ingest.platform``: the platform's consumption log, incrementally.
- ``ingest.demo``: the synthetic history of ``callmeter demo``.
- ``ingest.normalise`` and ``ingest.tokens``: contract rows from any staged source; local token
  counts.

Nothing is imported here, so a command pays only for the writer it runs.
"""

__all__ = ["demo", "importers", "imports", "loader", "normalise", "otel", "platform", "proxy",
           "sync", "tokens"]
