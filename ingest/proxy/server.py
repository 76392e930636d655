"""Running the proxy: uvicorn (uvloop + httptools), one or more worker processes, clean SIGTERM.

On SIGTERM uvicorn stops accepting, lets in-flight calls finish (up to ``shutdown_timeout``),
then the app's shutdown closes the spool segment so ``callmeter load`` picks it up. With several
workers each is its own process with its own spool segments, sharing one listening socket.
"""

from __future__ import annotations

import logging
import os
import resource
import signal
import socket
import sys
from pathlib import Path
from types import FrameType
from typing import Any

import uvicorn

from ledger import KeyFingerprinter, SpoolWriter

from .app import ProxyApp
from .egress import redact
from .guard import guarded_protocol
from .options import ProxyOptions

log = logging.getLogger("callmeter.proxy")


def build_app(options: ProxyOptions, spool_folder: Path,
              fingerprinter: KeyFingerprinter) -> ProxyApp:
    spool = SpoolWriter(spool_folder, max_bytes=options.spool_max_bytes,
                        max_seconds=options.spool_max_seconds)
    return ProxyApp(options, spool, fingerprinter)


def uvicorn_config(app: ProxyApp, options: ProxyOptions, **overrides: Any) -> uvicorn.Config:
    """Server settings chosen for a proxy: fast loop and parser, no server-added headers."""
    try:
        import uvloop  # noqa: F401

        loop = "uvloop"
    except ImportError:  # pragma: no cover - uvicorn[standard] brings it
        loop = "asyncio"
    http = guarded_protocol(options.header_timeout, options.max_header_bytes)
    values: dict[str, Any] = dict(host=options.host, port=options.port, loop=loop, http=http,
                  lifespan="on", access_log=False, server_header=False, date_header=False,
                  timeout_graceful_shutdown=options.shutdown_timeout, backlog=4096,
                  timeout_keep_alive=75, log_level="info", proxy_headers=False)
    values.update(overrides)
    return uvicorn.Config(app, **values)


def configure_logging(access_log: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    access = logging.getLogger("callmeter.proxy.access")
    access.handlers[:] = [handler]
    access.setLevel(logging.INFO if access_log else logging.WARNING)
    access.propagate = False
    main = logging.getLogger("callmeter.proxy")
    if not main.handlers:
        h = logging.StreamHandler(sys.stderr)
        h.setFormatter(logging.Formatter("callmeter proxy %(levelname)s: %(message)s"))
        main.addHandler(h)
        main.setLevel(logging.INFO)


def raise_open_files_limit() -> int:
    """Raise the soft limit of open descriptors to the hard one: each client connection holds
    one, and running out (a flood of connections) must not be what stops recording."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return soft


def serve(options: ProxyOptions, spool_folder: Path, fingerprinter: KeyFingerprinter) -> None:
    """Serve until SIGTERM/SIGINT; blocks."""
    configure_logging(options.access_log)
    files = raise_open_files_limit()
    log.info("forwarding http://%s:%d → %s, recording into %s (up to %d open files)",
             options.host, options.port, redact(options.upstream), spool_folder, files)
    if options.workers <= 1:
        uvicorn.Server(uvicorn_config(build_app(options, spool_folder, fingerprinter),
                                      options)).run()
        return
    sock = socket.socket(socket.AF_INET6 if ":" in options.host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((options.host, options.port))
    sock.listen(4096)
    sock.set_inheritable(True)
    _run_workers(options, spool_folder, fingerprinter, sock)


def _run_worker(options: ProxyOptions, spool_folder: Path, fingerprinter: KeyFingerprinter,
                sock: socket.socket) -> None:
    app = build_app(options, spool_folder, fingerprinter)
    uvicorn.Server(uvicorn_config(app, options)).run(sockets=[sock])


def _run_workers(options: ProxyOptions, spool_folder: Path, fingerprinter: KeyFingerprinter,
                 sock: socket.socket) -> None:
    """Fork ``options.workers`` servers on one socket; pass signals on; restart a crashed one."""
    children: dict[int, int] = {}
    stopping = False

    def start(slot: int) -> None:
        pid = os.fork()
        if pid == 0:  # child
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            code = 0
            try:
                _run_worker(options, spool_folder, fingerprinter, sock)
            except BaseException:  # noqa: B036 - report and leave the forked child, always
                logging.getLogger("callmeter.proxy").exception("worker failed")
                code = 1
            os._exit(code)
        children[pid] = slot

    def stop(signum: int, _frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True
        for pid in list(children):
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    for slot in range(options.workers):
        start(slot)
    while children:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            break
        except InterruptedError:
            continue
        ended: int | None = children.pop(pid, None)
        if ended is not None and not stopping and os.waitstatus_to_exitcode(status) != 0:
            log.error("worker %d exited (%s); starting another", pid, status)
            start(ended)
