"""Command line: `python -m local.simulator [options]`."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from .config import DEFAULT_ROUTES, SimulatorConfig, parse_route
from .server import Simulator

logger = logging.getLogger("local.simulator")


def build_parser() -> argparse.ArgumentParser:
    defaults = SimulatorConfig()
    parser = argparse.ArgumentParser(
        prog="python -m local.simulator",
        description=(
            "Skribble API v2 simulator on loopback: login, signature requests, "
            "the callbacks endpoint, and a driver API under /_sim that fires "
            "callbacks with Skribble's retry schedule."
        ),
    )
    add = parser.add_argument
    add("--host", default=defaults.host, help="loopback address to listen on")
    add("--port", type=int, default=0, help="TCP port; 0 picks a free port")
    add(
        "--port-file",
        type=Path,
        help="write {port, base_url} as JSON to this file once listening",
    )
    add("--username", default=defaults.username, help="API user for login")
    add("--api-key", default=defaults.api_key, help="API key for login")
    add(
        "--token-ttl",
        type=float,
        default=defaults.token_ttl,
        help="token lifetime in real seconds (default: %(default)s)",
    )
    add(
        "--time-scale",
        type=float,
        default=defaults.time_scale,
        help="simulated seconds per real second; 600 makes 10 minutes take 1 s",
    )
    add(
        "--retry-interval",
        type=float,
        default=defaults.retry_interval,
        help="simulated seconds between retries (default: %(default)s)",
    )
    add(
        "--retry-window",
        type=float,
        default=defaults.retry_window,
        help="simulated seconds after which a callback is RESIGNATED "
        "(default: %(default)s)",
    )
    add(
        "--callback-timeout",
        type=float,
        default=defaults.callback_timeout,
        help="real seconds to wait for a callback response (default: %(default)s)",
    )
    add(
        "--max-parallel",
        type=int,
        default=defaults.max_parallel,
        help="callbacks delivered at the same time (default: %(default)s)",
    )
    add(
        "--duplicates",
        type=int,
        default=defaults.duplicates,
        help="HTTP calls per completed callback, for duplicate demos",
    )
    add(
        "--callback-body",
        choices=("json", "empty"),
        default=defaults.callback_body,
        help="body of callback POSTs (Skribble's is undocumented)",
    )
    add("--client-cert", type=Path, help="PEM client certificate (chain) to present")
    add("--client-key", type=Path, help="PEM private key of --client-cert")
    add("--ca-bundle", type=Path, help="PEM CA bundle to verify callback servers")
    add(
        "--route",
        action="append",
        default=[],
        metavar="TYPE=FIELD",
        help="URL field for a callback type, e.g. START_SIGN=callback_error_url "
        "or IDENT_ERROR=none; defaults: "
        + ", ".join(f"{key}={value}" for key, value in DEFAULT_ROUTES.items()),
    )
    add(
        "--callbacks-get-405",
        action="store_true",
        help="respond 405 to GET on the callbacks endpoint (POST still works)",
    )
    add("--log-level", default="INFO", help="logging level (default: %(default)s)")
    return parser


def config_from(args: argparse.Namespace) -> SimulatorConfig:
    routes = dict(DEFAULT_ROUTES)
    for text in args.route:
        callback_type, url_field = parse_route(text)
        routes[callback_type] = url_field
    config = SimulatorConfig(
        host=args.host,
        port=args.port,
        username=args.username,
        api_key=args.api_key,
        token_ttl=args.token_ttl,
        time_scale=args.time_scale,
        retry_interval=args.retry_interval,
        retry_window=args.retry_window,
        callback_timeout=args.callback_timeout,
        max_parallel=args.max_parallel,
        duplicates=args.duplicates,
        callback_body=args.callback_body,
        client_cert=args.client_cert,
        client_key=args.client_key,
        ca_bundle=args.ca_bundle,
        routes=routes,
        callbacks_get_405=args.callbacks_get_405,
    )
    config.validate()
    return config


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    try:
        config = config_from(args)
    except ValueError as exc:
        parser.error(str(exc))
    simulator = Simulator(config)
    simulator.start()
    stopping = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        logger.info("stop requested signal=%s", signal.Signals(signum).name)
        stopping.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    if args.port_file is not None:
        details = {"port": simulator.port, "base_url": simulator.base_url}
        # Write then rename, so a process polling the file never reads a partial file.
        partial = args.port_file.with_name(args.port_file.name + ".partial")
        partial.write_text(json.dumps(details) + "\n")
        partial.replace(args.port_file)
    print(simulator.base_url, flush=True)
    while not stopping.wait(1.0):
        pass
    simulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
