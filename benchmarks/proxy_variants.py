"""Proxies the benchmark compares the recording proxy with, each served in its own process.

    python -m benchmarks.proxy_variants callmeter --upstream URL --port P --db D \
        [--loop uvloop|asyncio] [--http httptools|h11] [--transport aiohttp|httpx]
        the recording proxy (spool on) under a chosen uvicorn loop / HTTP parser
    python -m benchmarks.proxy_variants minimal --upstream URL --port P
        a floor: a bare ASGI proxy over one aiohttp ClientSession, no recording, no usage

They exist to choose the server, parser and transport by measurement (docs/performance.md).
"""

from __future__ import annotations

import argparse


def serve_callmeter(args) -> None:
    import uvicorn

    from ingest.proxy import ProxyOptions, build_app, uvicorn_config
    from ledger.config import ledger_home, spool_dir
    from ledger.keys import SECRET_FILE_NAME, KeyFingerprinter, load_or_create_secret

    options = ProxyOptions(upstream=args.upstream, port=args.port, transport=args.transport,
                           access_log=False)
    secret = load_or_create_secret(ledger_home(args.db) / SECRET_FILE_NAME)
    app = build_app(options, spool_dir(args.db), KeyFingerprinter(secret))
    uvicorn.Server(uvicorn_config(app, options, loop=args.loop, http=args.http,
                                  log_level="warning")).run()


class MinimalProxy:
    """Forward method, path, headers and body; relay status, headers and each chunk."""

    DROP = {b"host", b"content-length", b"connection", b"transfer-encoding", b"keep-alive"}

    def __init__(self, upstream: str) -> None:
        self.origin = upstream.split("/v1")[0]
        self.session = None

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        import aiohttp

        if self.session is None:
            self.session = aiohttp.ClientSession(auto_decompress=False,
                                                 connector=aiohttp.TCPConnector(limit=1000))
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = [(k.decode(), v.decode()) for k, v in scope["headers"]
                   if k not in self.DROP]
        async with self.session.request(scope["method"], self.origin + scope["path"],
                                        headers=headers, data=body) as response:
            out = [(k.lower(), v) for k, v in response.raw_headers
                   if k.lower() not in self.DROP]
            await send({"type": "http.response.start", "status": response.status,
                        "headers": out})
            async for chunk in response.content.iter_any():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})


def serve_minimal(args) -> None:
    import uvicorn

    uvicorn.run(MinimalProxy(args.upstream), host="127.0.0.1", port=args.port, loop="uvloop",
                http="httptools", access_log=False, log_level="warning", server_header=False,
                date_header=False, backlog=4096)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=("callmeter", "minimal"))
    parser.add_argument("--upstream", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--db")
    parser.add_argument("--loop", default="uvloop")
    parser.add_argument("--http", default="httptools")
    parser.add_argument("--transport", default="aiohttp")
    args = parser.parse_args()
    (serve_callmeter if args.kind == "callmeter" else serve_minimal)(args)


if __name__ == "__main__":
    main()
