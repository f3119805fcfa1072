"""``ackmail serve [--host 127.0.0.1] [--port 8025]``: /healthz, /metrics and the ops pages."""

from __future__ import annotations

import argparse
import threading

from ingest.cli.context import CommandContext


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "serve", help="serve /healthz, Prometheus /metrics and read-only ops pages")
    parser.add_argument("--host", metavar="ADDRESS",
                        help="address to bind (default: [serve] host, else 127.0.0.1); "
                             "anything but loopback needs [serve] token")
    parser.add_argument("--port", type=_port, metavar="N",
                        help="TCP port (default: [serve] port, else 8025; 0 picks a free one)")
    parser.set_defaults(handler=run_serve)


def _port(text: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"'{text}' is not a port number (0 to 65535)")
    return int(text)


def run_serve(ctx: CommandContext) -> int:
    """Serve until SIGTERM or SIGINT."""
    from ingest.app import web_app
    from ingest.poller.service import stop_on_signals
    from ingest.web.app import base_url, make_server, required_token, serving

    settings = ctx.settings
    host = ctx.args.host or settings.serve.host
    port = settings.serve.port if ctx.args.port is None else ctx.args.port
    token = required_token(host, settings.serve.token)
    app = web_app(settings, ctx.store(), token)
    stop = threading.Event()
    with serving(make_server(app, host, port)) as server, stop_on_signals(stop.set):
        print(f"ackmail serve: listening on {base_url(server)}/", flush=True)
        while not stop.wait(1.0):
            pass
    return 0
