"""The exceptions ingest raises; only the CLI and dashboard pages turn them into messages.

    CallmeterError
     ├── LedgerError
     │    ├── LedgerLocked        another process holds the DuckDB file read-write
     │    └── LedgerTooNew        the file was written by a newer callmeter
     ├── ImportFormatError       a file whose format cannot be detected or read at all
     └── SpoolError              the spool folder cannot be written
"""

from __future__ import annotations


class CallmeterError(Exception):
    """Base of every error callmeter reports to a user."""


class LedgerError(CallmeterError):
    pass


class LedgerLocked(LedgerError):
    """Another process holds the ledger; ``read_only`` says how (a notebook or BI tool
    reading it holds it read-only, and then no process can write it either)."""

    def __init__(self, path: str, holder: str | None, pid: int | None,
                 read_only: bool = False) -> None:
        self.path = path
        self.holder = holder
        self.pid = pid
        self.read_only = read_only
        who = f"process {pid} ({holder})" if pid else "another process"
        how = "read-only" if read_only else "read-write"
        super().__init__(
            f"the ledger {path} is open {how} in {who}; DuckDB lets no other process write "
            "a ledger file while it is open"
        )


class LedgerTooNew(LedgerError):
    pass


class ImportFormatError(CallmeterError):
    pass


class SpoolError(CallmeterError):
    pass
