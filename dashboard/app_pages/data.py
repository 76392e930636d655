"""Data: import log files by upload, the proxy's spool backlog, and the ledger's size."""

import tempfile
from pathlib import Path

import pandas as pd
import streamlit as st

from dashboard import queries
from dashboard.context import context
from dashboard.layout import table
from ingest.loader import spool_backlog

ctx = context()
d = ctx.display
st.title("Data")

st.subheader("Import log files")
st.caption("new-api, OpenAI, LiteLLM exports and generic CSV are detected from their content. "
           "Re-importing a file adds nothing.")
files = st.file_uploader("Log files", accept_multiple_files=True, key="log_files")
if files and st.button("Import", type="primary"):
    from callmeter.commands.ledger import fingerprinter_for
    from ingest.importers import ImportOptions
    from ingest.imports import import_paths

    options = ImportOptions(fingerprinter=fingerprinter_for(ctx.ledger.db))
    progress = st.progress(0.0, "Importing…")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, upload in enumerate(files):
            path = Path(tmp) / (Path(upload.name).name.lstrip(".") or f"upload-{i}")
            path.write_bytes(upload.getvalue())
            try:
                results, _ = import_paths(ctx.ledger.db, [path], "auto", options)
            except Exception as exc:  # noqa: BLE001 - shown to the user, file by file
                st.error(f"{upload.name}: {exc}")
                results = []
            for r in results:
                rows.append({"file": upload.name, "format": r.format, "read": r.read,
                             "imported": r.imported, "duplicate": r.duplicates,
                             "skipped": r.skipped, "rejected": r.rejected})
                for line, reason in r.rejections[:5]:
                    st.warning(f"{upload.name}:{line}: {reason}")
            progress.progress((i + 1) / len(files), f"Imported {i + 1} of {len(files)}")
    ctx.ledger.refresh(force=True)
    st.session_state["last_import"] = rows
if st.session_state.get("last_import"):
    st.dataframe(pd.DataFrame(st.session_state["last_import"]), hide_index=True)

st.subheader("Proxy spool")
backlog = spool_backlog(ctx.ledger.spool)
c1, c2, c3 = st.columns(3)
c1.metric("Finished segments waiting", backlog["finished"])
c2.metric("Open segments", backlog["open"])
last_proxy = queries.last_proxy_call(ctx.ledger)
c3.metric("Last proxy call", f"{last_proxy:%Y-%m-%d %H:%M:%S}" if last_proxy else "never")
if ctx.ledger.last_load and ctx.ledger.last_load.segments:
    st.caption(ctx.ledger.last_load.summary())
if st.button("Load spool now"):
    ctx.ledger.refresh(force=True)
    st.rerun()

st.subheader("Ledger")
summary = queries.ledger_summary(ctx.ledger, ctx.marker)
db = Path(ctx.ledger.db)
size = sum(p.stat().st_size for p in (db, db.with_name(db.name + ".wal")) if p.exists())
c1, c2, c3 = st.columns(3)
c1.metric("Rows", f"{summary['rows']:,}")
c2.metric("Calls", f"{summary['calls']:,}")
c3.metric("Size on disk", f"{size / 1e6:,.1f} MB")
st.caption(f"`{ctx.ledger.db}` · first call {summary['first']} · last call {summary['last']}")
log = queries.import_log(ctx.ledger, ctx.marker)
if len(log):
    st.subheader("Recent imports")
    table(log, "imports", d)
