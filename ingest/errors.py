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
    def __init__(self, path: str, holder: str | None, pid: int | None) -> None:
        self.path = path
        self.holder = holder
        self.pid = pid
        who = f"process {pid} ({holder})" if pid else "another process"
        super().__init__(
            f"the ledger {path} is open read-write in {who}; DuckDB lets one process "
            "hold a ledger file at a time"
        )


class LedgerTooNew(LedgerError):
    pass


class ImportFormatError(CallmeterError):
    pass


class SpoolError(CallmeterError):
    pass
