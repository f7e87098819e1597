"""The whole receiver on this machine: `python -m local.stack` (`make dev`).

Starts, all on loopback:

1. moto in server mode, the stand-in for DynamoDB, EventBridge, SQS, S3 and
   Secrets Manager;
2. the table, the bus and an SQS queue that receives every event, built from
   template.yaml's definitions;
3. a local CA shaped like Skribble's chain, in `.local/pki/`;
4. a pool of worker processes per function of template.yaml, with its
   environment, like Lambda's concurrent execution environments;
5. the HTTPS gateway with mutual TLS, and its control port;
6. the Skribble simulator, which calls the gateway with the client
   certificate.

Writes the URLs and names to `.local/stack.json` for `make demo` and the
tests, and stops everything on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import signal
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from local import logs
from local.ca import ClientCertificate, LocalPki, client_certificates, ensure_pki
from local.functions import DEFAULT_WORKERS, LocalFunction, runtimes
from local.gateway import Gateway, server_context
from local.gateway_admin import GatewayAdmin
from local.moto_server import MotoServer
from local.resources import StackResources, create_stack_resources, upload_truststore
from local.routing import Router
from local.simulator import Simulator, SimulatorConfig
from local.simulator.config import require_loopback_host
from local.template import Template

logger = logging.getLogger("local.stack")

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_STATE_DIR = ROOT / ".local"
REGION = "eu-central-1"
# Fake credentials: moto accepts any, and real AWS would reject these.
FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
}
# Ids for the curl example: any UUIDs work.
EXAMPLE_IDS = (
    "0b5e3c1a-4c8f-4d0e-9a57-1c2d3e4f5a6b",
    "7f1e2d3c-4b5a-4968-8776-655443322110",
    "11111111-2222-4333-8444-555555555555",
)
CALLBACK_PATHS = {
    "callback_success_url": "/callbacks/success/"
    "SKRIBBLE_SIGNATURE_REQUEST_ID/SKRIBBLE_DOCUMENT_ID",
    "callback_update_url": "/callbacks/update/"
    "SKRIBBLE_SIGNATURE_REQUEST_ID/SKRIBBLE_DOCUMENT_ID/SKRIBBLE_SIGNATURE_ID",
    "callback_error_url": "/callbacks/error/"
    "SKRIBBLE_SIGNATURE_REQUEST_ID/SKRIBBLE_DOCUMENT_ID",
}


@dataclass
class StackConfig:
    """Listen address, ports and state folder; port 0 picks a free port."""

    state_dir: Path = DEFAULT_STATE_DIR
    host: str = "127.0.0.1"
    gateway_port: int = 0
    admin_port: int = 0
    simulator_port: int = 0
    moto_port: int = 0
    # Simulated seconds per real second: 60 makes Skribble's 10-minute retry
    # interval 10 real seconds.
    time_scale: float = 60.0
    # Worker processes per function: concurrent invocations of one function
    # run in parallel up to this number, as in Lambda's environments.
    workers_per_function: int = DEFAULT_WORKERS
    # Pin the current and the next client certificate, as during the overlap
    # stage of a rotation; an explicit ClientCertSha256Pins parameter wins.
    pin_client_certificates: bool = False
    parameters: dict[str, str] = field(default_factory=dict)

    @property
    def stack_file(self) -> Path:
        return self.state_dir / "stack.json"


def aws_environment(endpoint: str) -> dict[str, str]:
    """Return the variables that point boto3 at moto with fake credentials."""
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        **FAKE_CREDENTIALS,
    }


def create_simulator_secret(config: SimulatorConfig) -> str:
    """Store the simulator's API credentials in Secrets Manager; return the ARN."""
    import boto3

    response = boto3.client("secretsmanager").create_secret(
        Name="local-skribble-api",
        SecretString=json.dumps(
            {"username": config.username, "api_key": config.api_key}
        ),
    )
    return str(response["ARN"])


class LocalStack:
    """All parts of the local stack, started and stopped together.

    `start()` points this process's boto3 at the stack's moto server through
    os.environ, so run one stack per process.
    """

    def __init__(self, config: StackConfig) -> None:
        require_loopback_host(config.host)
        self.config = config
        self.pki: LocalPki | None = None
        self.moto: MotoServer | None = None
        self.moto_url = ""
        self.resources: StackResources | None = None
        self.functions: dict[str, LocalFunction] = {}
        self.gateway: Gateway | None = None
        self.admin: GatewayAdmin | None = None
        self.simulator: Simulator | None = None
        self.client_certificates: dict[str, ClientCertificate] = {}
        self.pin_parameters: dict[str, str] = {}
        # Template parameters the functions run with, overrides included.
        self.parameters: dict[str, str] = {}

    def start(self) -> None:
        """Start every part, or stop the ones started and raise."""
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        config = self.config
        started = time.monotonic()
        self.pki = ensure_pki(config.state_dir / "pki")
        self.client_certificates = client_certificates(self.pki)
        logger.info("PKI ready in %s", self.pki.directory)
        if config.pin_client_certificates:
            self.pin_parameters = {
                "ClientCertSha256Pins": ",".join(
                    certificate.sha256
                    for certificate in self.client_certificates.values()
                )
            }
            logger.info(
                "Pinning client certificates %s",
                ", ".join(
                    f"{name} {certificate.sha256[:12]}"
                    for name, certificate in self.client_certificates.items()
                ),
            )

        # This moto server serializes requests, so that concurrent
        # UpdateItem calls on one item stay atomic as in DynamoDB.
        self.moto = MotoServer(config.host, config.moto_port).start()
        self.moto_url = self.moto.endpoint
        os.environ.update(aws_environment(self.moto_url))
        os.environ.pop("AWS_PROFILE", None)
        logger.info("moto listening on %s", self.moto_url)

        self.resources = create_stack_resources(
            Template(parameters=config.parameters), prefix="local"
        )
        logger.info(
            "Created table %s, bus %s and its event queue from template.yaml",
            self.resources.table_name,
            self.resources.bus_name,
        )

        self.simulator = Simulator(
            SimulatorConfig(
                host=config.host,
                port=config.simulator_port,
                time_scale=config.time_scale,
                client_cert=self.pki.client_cert,
                client_key=self.pki.client_key,
                ca_bundle=self.pki.server_ca,
                named_client_certificates={
                    name: (certificate.cert, certificate.key)
                    for name, certificate in self.client_certificates.items()
                },
                # Skribble expects a response within 5 seconds.
                callback_timeout=5.0,
            )
        )
        self.simulator.start()

        # The audit function reads the simulator as its Skribble API, with
        # the simulator's credentials in a secret, unless parameters override them.
        audit_parameters = {
            "SkribbleApiBaseUrl": self.simulator.base_url + "/v2",
            "SkribbleCredentialsSecretArn": create_simulator_secret(
                self.simulator.config
            ),
        }
        # The certificate expiry check reads the truststore from S3, where
        # `make truststore` puts it for API Gateway.
        truststore_uri, truststore_version = upload_truststore(
            self.pki.truststore.read_bytes(), bucket="local-truststore"
        )
        truststore_parameters = {
            "TruststoreUri": truststore_uri,
            "TruststoreVersion": truststore_version,
        }
        self.parameters = {
            **audit_parameters,
            **truststore_parameters,
            **self.pin_parameters,
            **config.parameters,
        }
        template = Template(
            parameters=self.parameters,
            resource_names=self.resources.as_resource_names(),
        )
        self._start_functions(template)

        stage = template.resolve(template.resource("CallbacksApi"))["Properties"][
            "StageName"
        ]
        self.gateway = Gateway(
            tls=server_context(
                str(self.pki.server_cert),
                str(self.pki.server_key),
                str(self.pki.truststore),
            ),
            router=Router(
                function.runtime.spec for function in self.functions.values()
            ),
            functions=self.functions,
            host=config.host,
            port=config.gateway_port,
            stage=str(stage),
        )
        self.gateway.start()
        self.admin = GatewayAdmin(self.gateway, config.host, config.admin_port)
        self.admin.start()

        # The spare workers' init phases run after the stack is ready, so
        # that startup waits for one init phase per function, not several.
        for function in self.functions.values():
            function.start_spare_workers()
        self._write_stack_file()
        logger.info("Stack ready in %.1f s", time.monotonic() - started)

    def _start_functions(self, template: Template) -> None:
        environment = aws_environment(self.moto_url)
        for runtime in runtimes(template, ROOT):
            self.functions[runtime.spec.logical_id] = LocalFunction(
                runtime, environment, workers=self.config.workers_per_function
            )
        for function in self.functions.values():
            function.start()
        # The init phases run at the same time; each takes about a second.
        with ThreadPoolExecutor(max_workers=len(self.functions)) as pool:
            init_ms = dict(
                zip(
                    self.functions,
                    pool.map(LocalFunction.wait_ready, self.functions.values()),
                    strict=True,
                )
            )
        for name, milliseconds in init_ms.items():
            routes = ", ".join(
                f"{route.method} {route.path}"
                for route in self.functions[name].runtime.spec.routes
            )
            logger.info(
                "%s ready (init %d ms, pool of %d workers): %s",
                name,
                milliseconds,
                self.functions[name].workers,
                routes,
            )

    def describe(self) -> dict[str, Any]:
        """Return what clients need: URLs, resource names and PKI paths."""
        assert self.pki is not None
        assert self.resources is not None
        assert self.gateway is not None
        assert self.admin is not None
        assert self.simulator is not None
        return {
            "pid": os.getpid(),
            "function_pids": {
                name: function.pids for name, function in self.functions.items()
            },
            "region": REGION,
            "moto_url": self.moto_url,
            "gateway_url": self.gateway.url,
            "admin_url": self.admin.url,
            "simulator_url": self.simulator.base_url,
            "table_name": self.resources.table_name,
            "bus_name": self.resources.bus_name,
            "queue_url": self.resources.queue_url,
            "pki": {
                "truststore": str(self.pki.truststore),
                "client_cert": str(self.pki.client_cert),
                "client_key": str(self.pki.client_key),
                "server_ca": str(self.pki.server_ca),
                "intermediate_cert": str(self.pki.directory / "intermediate.pem"),
                "intermediate_key": str(self.pki.directory / "intermediate-key.pem"),
                "next_intermediate_cert": str(self.pki.next_intermediate_cert),
                "next_intermediate_key": str(self.pki.next_intermediate_key),
            },
            "client_certificates": {
                name: certificate.describe()
                for name, certificate in self.client_certificates.items()
            },
            # The pin parameters the functions run with; empty turns pinning off.
            "client_pins": {
                name: self.parameters.get(name, "")
                for name in ("ClientCertSha256Pins", "ClientPublicKeySha256Pins")
            },
            "callback_urls": {
                name: self.gateway.url + path for name, path in CALLBACK_PATHS.items()
            },
        }

    def _write_stack_file(self) -> None:
        path = self.config.stack_file
        partial = path.with_name(path.name + ".partial")
        partial.write_text(json.dumps(self.describe(), indent=2) + "\n")
        # Rename, so that a reader polling the file never sees half of it.
        partial.replace(path)
        self._write_audit_environment()

    @property
    def _audit_environment_file(self) -> Path:
        return self.config.stack_file.with_name("audit.env")

    def _write_audit_environment(self) -> None:
        """Write the audit function's environment, for `make audit`.

        It contains the local names, the moto endpoint and moto's fake
        credentials, nothing secret.
        """
        pool = self.functions.get("AuditFunction")
        if pool is None or not self.moto_url:
            return
        environment = {
            **pool.runtime.spec.environment,
            **aws_environment(self.moto_url),
        }
        lines = [
            f"{name}={shlex.quote(value)}"
            for name, value in sorted(environment.items())
        ]
        self._audit_environment_file.write_text("\n".join(lines) + "\n")

    def stop(self) -> None:
        """Stop every started part, newest first; safe to call more than once."""
        self.config.stack_file.unlink(missing_ok=True)
        self._audit_environment_file.unlink(missing_ok=True)
        if self.simulator is not None:
            self.simulator.stop()
            self.simulator = None
        if self.admin is not None:
            self.admin.stop()
            self.admin = None
        if self.gateway is not None:
            self.gateway.stop()
            self.gateway = None
        for function in self.functions.values():
            function.stop()
        self.functions = {}
        if self.moto is not None:
            self.moto.stop()
            self.moto = None


def banner(details: dict[str, Any]) -> str:
    """Return the startup message: URLs, names and commands to try next."""
    pki = details["pki"]
    example_url = (
        details["callback_urls"]["callback_update_url"]
        .replace("SKRIBBLE_SIGNATURE_REQUEST_ID", EXAMPLE_IDS[0])
        .replace("SKRIBBLE_DOCUMENT_ID", EXAMPLE_IDS[1])
        .replace("SKRIBBLE_SIGNATURE_ID", EXAMPLE_IDS[2])
    )
    return f"""
Local stack is running (Ctrl-C stops it):
  gateway (mutual TLS)  {details["gateway_url"]}
  gateway control       {details["admin_url"]}/_local/outage
  Skribble simulator    {details["simulator_url"]}
  moto (AWS stand-in)   {details["moto_url"]}
  table / bus           {details["table_name"]} / {details["bus_name"]}
  certificates          {Path(pki["client_cert"]).parent}

Run the demo scenarios from another terminal:
  make demo

Run the audit once, as its schedule would:
  curl -X POST -d '{{}}' \\
       {details["admin_url"]}/2015-03-31/functions/AuditFunction/invocations

Send one callback yourself with curl:
  curl --cert {pki["client_cert"]} --key {pki["client_key"]} \\
       --cacert {pki["server_ca"]} -X POST \\
       {example_url}
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m local.stack",
        description="Run the callback receiver locally: moto, mutual TLS "
        "gateway, functions and a Skribble simulator, all on loopback.",
    )
    add = parser.add_argument
    add(
        "--state-dir",
        type=Path,
        default=DEFAULT_STATE_DIR,
        help="folder for PKI and stack.json",
    )
    add("--host", default="127.0.0.1", help="loopback address to listen on")
    add(
        "--gateway-port",
        type=int,
        default=0,
        help="gateway HTTPS port; 0 picks a free port",
    )
    add(
        "--admin-port",
        type=int,
        default=0,
        help="gateway control port; 0 picks a free port",
    )
    add(
        "--simulator-port",
        type=int,
        default=0,
        help="simulator port; 0 picks a free port",
    )
    add("--moto-port", type=int, default=0, help="moto port; 0 picks a free port")
    add(
        "--time-scale",
        type=float,
        default=60.0,
        help="simulated seconds per real second for Skribble's retries "
        "(default: %(default)s)",
    )
    add(
        "--parameter",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="template parameter override, e.g. LogLevel=DEBUG",
    )
    add(
        "--workers-per-function",
        type=int,
        default=DEFAULT_WORKERS,
        help="worker processes per function, i.e. concurrent invocations of "
        "one function (default: %(default)s)",
    )
    add(
        "--pin-client-certificates",
        action="store_true",
        help="set ClientCertSha256Pins to the current and the next client "
        "certificate, as during a rotation's overlap",
    )
    add("--log-level", default="INFO", help="log level (default: %(default)s)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logs.configure(args.log_level)
    parameters = {}
    for text in args.parameter:
        name, sep, value = text.partition("=")
        if not sep:
            _parser().error(f"invalid --parameter {text!r}: expected NAME=VALUE")
        parameters[name] = value
    if args.workers_per_function < 1:
        _parser().error(
            f"invalid --workers-per-function {args.workers_per_function}: "
            "expected 1 or more"
        )
    config = StackConfig(
        state_dir=args.state_dir.resolve(),
        host=args.host,
        gateway_port=args.gateway_port,
        admin_port=args.admin_port,
        simulator_port=args.simulator_port,
        moto_port=args.moto_port,
        time_scale=args.time_scale,
        workers_per_function=args.workers_per_function,
        pin_client_certificates=args.pin_client_certificates,
        parameters=parameters,
    )
    stopping = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        logger.info("Stopping (%s)", signal.Signals(signum).name)
        stopping.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    stack = LocalStack(config)
    try:
        stack.start()
        print(banner(stack.describe()), flush=True)
        while not stopping.wait(0.5):
            pass
    finally:
        stack.stop()
        logger.info("Stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
