"""The exceptions of the OpenTelemetry receiver and the OTLP file import.

    CallmeterError (ledger.errors)
     └── OtlpDecodeError      not an OTLP trace export (the sender gets 400: retrying cannot help)
          └── OtlpTooLarge     a body, or its gzip expansion, over the receiver's limit (413)
"""

from __future__ import annotations

from ledger import CallmeterError


class OtlpDecodeError(CallmeterError):
    pass


class OtlpTooLarge(OtlpDecodeError):
    pass
