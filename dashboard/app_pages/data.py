"""Data: import log files by upload, platform sync, the proxy's spool backlog, the ledger's size."""

import tempfile
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st
from streamlit.runtime.uploaded_file_manager import UploadedFile

from dashboard import queries
from dashboard.context import Context, context
from dashboard.layout import table
from ingest.loader import spool_backlog

# what a failed run means, by the exception name ingest.sync reports
SYNC_ERRORS = {
    "PlatformAuthError": "The platform refused the access token or user id (401): check both.",
    "PlatformForbidden": "The platform says this account may not read its log (403).",
    "PlatformUnavailable": "The platform could not be reached or kept failing.",
}


def _when(iso: str) -> str:
    try:
        return f"{datetime.fromisoformat(iso).astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC"
    except (TypeError, ValueError):
        return iso or "—"


def platform_sync(ctx: Context) -> None:
    """URL, access token (kept with ingest.platform.save_token), user id, "Sync now", last run."""
    from ingest.platform import load_token, save_token
    from ingest.sync import last_sync, sync_now
    from ledger import CallmeterError

    db = ctx.ledger.db
    try:
        last = last_sync(db)
    except (CallmeterError, OSError, TypeError) as exc:
        st.warning(f"Cannot read the last sync's state: {exc}")
        last = None
    settings = ctx.ledger.settings
    url0 = settings.platform_url or (last.platform if last else "")
    user0 = settings.platform_user_id or (last.user_id if last else "") or ""
    st.caption("Pulls the platform's consumption log (new-api `/api/log/self`) with the account's "
               "console access token; later runs fetch only what is new. See docs/sync.md.")
    if st.session_state.pop("_sync_clear_token", False):
        st.session_state["sync_token"] = ""   # the token never stays in the page's state
    for kind, text in st.session_state.pop("sync_outcome", []):
        getattr(st, kind)(text)
    if url0 and (settings.platform_token or load_token(db, url0)):
        st.caption("An access token is stored for this platform; leave the field blank to use it.")
    with st.form("platform_sync", clear_on_submit=True):
        url = st.text_input("Platform URL", value=url0, key="sync_url",
                            placeholder="https://api.example.com")
        token = st.text_input("Access token", type="password", key="sync_token",
                              help="Console → personal settings → access token (not an sk- key). "
                                   "Kept in the OS keyring or a 0600 file beside the ledger, "
                                   "never in the ledger.")
        user = st.text_input("User id", value=user0, key="sync_user")
        go = st.form_submit_button("Sync now", type="primary")
    if go:
        url, token, user = url.strip(), token.strip(), user.strip()
        if not url:
            st.error("Enter the platform URL.")
        elif not (token or settings.platform_token or load_token(db, url)):
            st.error("Enter the platform's access token.")
        else:
            run = replace(settings, platform_url=url, platform_user_id=user or None,
                          platform_token=token or settings.platform_token)
            bar = st.progress(0.0, "Syncing…")

            def on_page(pages: int, rows: int, expected: int) -> None:
                share = min(rows / expected, 1.0) if expected else 0.0
                bar.progress(share, f"{pages} page(s), {rows:,} of {expected:,} rows")

            outcome = []
            try:
                result = sync_now(ctx.ledger.cursor(), run, on_page=on_page)
            except Exception as exc:  # noqa: BLE001 - shown to the user, never a traceback
                outcome.append(("error", f"Sync failed: {exc}"))
                result = None
            if result is not None:
                if token and result.error != "PlatformAuthError":
                    where = save_token(db, url, token)
                    outcome.append(("caption", f"Access token kept in {where}."))
                ctx.ledger.refresh(force=True)
                if result.status == "ok":
                    outcome.append(("success", f"Synced: {result.rows_added:,} new row(s). "
                                               f"{result.summary()}"))
                    outcome.extend(("caption", note) for note in result.notes)
                else:
                    outcome.append(("error", f"Sync failed. {SYNC_ERRORS.get(result.error, '')} "
                                             f"{result.message}".replace("  ", " ")))
            # rerun with the token field emptied; the outcome is shown at the top of the section
            st.session_state["sync_outcome"] = outcome
            st.session_state["_sync_clear_token"] = True
            st.rerun()
    if last is not None:
        c1, c2, c3 = st.columns(3)
        c1.metric("Last sync", _when(last.finished_at))
        c2.metric("Rows added", f"{last.rows_added:,}")
        c3.metric("Sync status", last.status)
        st.caption(last.summary())
    else:
        st.caption("Never synced.")


def save_upload(upload: UploadedFile, folder: Path, i: int) -> Path:
    """The upload written under ``folder`` with its own base name (the ledger records only that
    name: ImportOptions.source_name)."""
    from dashboard.files import inside

    path = inside(folder, upload.name, f"upload-{i}")
    path.write_bytes(upload.getvalue())
    return path


def import_uploads(ctx: Context, files: list[UploadedFile]) -> list[dict[str, object]]:
    """Import each upload in turn under a progress bar that moves with the bytes read: the
    files done so far plus DuckDB's progress through the current one, weighted by size."""
    from ingest.importers import ImportOptions
    from ingest.imports import import_paths
    from ingest.progress import run_reporting_progress
    from ledger import fingerprinter_for

    fingerprinter = fingerprinter_for(ctx.ledger.db)
    total = sum(max(f.size, 1) for f in files)
    done = 0
    bar = st.progress(0.0, "Importing…")
    rows: list[dict[str, object]] = []
    messages: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, upload in enumerate(files):
            size = max(upload.size, 1)
            path = save_upload(upload, Path(tmp), i)

            def show(pct: float, upload: UploadedFile = upload, size: int = size,
                     before: int = done) -> None:
                share = min((before + size * pct / 100) / total, 1.0)
                bar.progress(share, f"{upload.name}: {pct:.0f} % · {share:.0%} of "
                                    f"{len(files)} file(s)")

            def around(conn: Any, _label: str, work: Callable[[], Any]) -> Any:
                return run_reporting_progress(conn, work, show)

            options = ImportOptions(fingerprinter=fingerprinter, source_name=upload.name)
            try:
                results, _ = import_paths(ctx.ledger.db, [path], "auto", options, around=around)
            except Exception as exc:  # noqa: BLE001 - shown to the user, file by file
                messages.append(("error", f"{upload.name}: " +
                                 str(exc).replace(str(path), upload.name).replace(tmp, "")))
                results = []
            for r in results:
                if r.error:
                    messages.append(("error", r.error.replace(tmp, "")))
                    continue
                rows.append({"file": upload.name, "format": r.format, "read": r.read,
                             "imported": r.imported, "duplicate": r.duplicates,
                             "skipped": r.skipped, "rejected": r.rejected})
                messages += [("warning", f"{upload.name}:{line}: {reason}")
                             for line, reason in r.rejections[:5]]
            done += size
    st.session_state["last_import_messages"] = messages
    return rows


ctx = context()
d = ctx.display
st.title("Data")

st.subheader("Import log files")
st.caption("new-api, OpenAI, LiteLLM exports and generic CSV are detected from their content. "
           "Re-importing a file adds nothing.")
files = st.file_uploader("Log files", accept_multiple_files=True, key="log_files")
if files and st.button("Import", type="primary"):
    st.session_state["last_import"] = import_uploads(ctx, files)
    ctx.ledger.refresh(force=True)
    st.rerun()   # every count on this page (and the sidebar's) from the new ledger marker
for kind, text in st.session_state.get("last_import_messages", []):
    getattr(st, kind)(text)
if st.session_state.get("last_import"):
    table(pd.DataFrame(st.session_state["last_import"]), "last_import", d)

st.subheader("Platform sync")
if not ctx.user.sees_all_keys:
    st.caption("Only finance users can sync from the platform.")
else:
    platform_sync(ctx)

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
