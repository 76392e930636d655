"""The exceptions pricing raises; only the CLI and dashboard pages turn them into messages.

    CallmeterError (ledger.errors)
     └── PricingError
          └── SheetInvalid        a price sheet failed validation; carries every SheetProblem
"""

from __future__ import annotations

from dataclasses import dataclass

from ledger import CallmeterError


@dataclass(frozen=True)
class SheetProblem:
    """One finding in a price sheet: where (1-based CSV line, column name) and what."""

    file: str
    line: int
    column: str | None
    message: str
    severity: str = "error"  # "error" or "warning"

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}"
        if self.column:
            where += f": column {self.column}"
        return f"{where}: {self.severity}: {self.message}"


class PricingError(CallmeterError):
    pass


class SheetInvalid(PricingError):
    def __init__(self, file: str, problems: list[SheetProblem]) -> None:
        self.file = file
        self.problems = problems
        errors = [p for p in problems if p.severity == "error"]
        first = f"; first: {errors[0]}" if errors else ""
        super().__init__(f"{file}: {len(errors)} error(s) in the price sheet{first}")
