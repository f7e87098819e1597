"""Run the SAM CLI so that `--docker-network host` puts Lambda containers on the
host network.

SAM CLI (checked with 1.170.0) accepts `--docker-network host` but then skips
connecting the container to that network, so the container stays on Docker's
default bridge. Its 127.0.0.1 is then the container's own loopback, and a moto
server on the host's 127.0.0.1 is out of reach. Upstream report:
https://github.com/aws/aws-sam-cli/issues/4236

This wrapper creates SAM's Lambda containers in the host's network namespace
instead. A host-network container cannot publish ports, so the runtime
interface emulator (RIE) listens on 127.0.0.1 at the host port that SAM
picked and then calls. The RIE's Runtime API moves from 127.0.0.1:9001 to a
loopback port that was free just before the container starts, so a host
service on port 9001 does not block the invoke.

Usage: python scripts/sam_host_network.py local invoke ... --docker-network host
"""

import itertools
import socket
import sys
from typing import Any

# Neither package ships type hints.
from docker.models.containers import (  # type: ignore[import-untyped]
    Container,
    ContainerCollection,
)
from samcli.cli.main import cli  # type: ignore[import-untyped]

RIE_PATH = "/var/rapid/aws-lambda-rie"
RIE_CONTAINER_PORT = "8080"
SAM_CONTAINER_TYPE_LABEL = "sam.cli.container.type"

_create_container = ContainerCollection.create


def find_free_loopback_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def move_to_host_network(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Return container-create arguments for SAM's Lambda container on the host
    network, with the RIE bound to the loopback port that SAM will call."""
    ports = dict(kwargs.get("ports") or {})
    binding = ports.pop(RIE_CONTAINER_PORT, None)
    if ports:
        raise SystemExit(
            f"sam_host_network: extra published ports {sorted(ports)} cannot be "
            "used on the host network; run without --debug-port"
        )
    entrypoint = list(kwargs.get("entrypoint") or [])
    if not isinstance(binding, tuple) or not entrypoint or entrypoint[0] != RIE_PATH:
        raise SystemExit(
            "sam_host_network: unexpected Lambda container settings "
            f"(entrypoint {entrypoint}, port binding {binding}); this wrapper "
            "was written for SAM CLI 1.170 and needs updating"
        )
    host_interface, host_port = binding
    runtime_api_port = find_free_loopback_port()
    entrypoint += [
        "--runtime-interface-emulator-address",
        f"{host_interface}:{host_port}",
        "--runtime-api-address",
        f"127.0.0.1:{runtime_api_port}",
    ]
    moved = {key: value for key, value in kwargs.items() if key != "ports"}
    moved["entrypoint"] = entrypoint
    moved["network_mode"] = "host"
    return moved


def create_container(
    self: ContainerCollection, image: str, command: Any = None, **kwargs: Any
) -> Container:
    """Create a container, moving SAM's Lambda containers to the host network."""
    labels = kwargs.get("labels") or {}
    if labels.get(SAM_CONTAINER_TYPE_LABEL) == "lambda":
        kwargs = move_to_host_network(kwargs)
    return _create_container(self, image, command, **kwargs)


def requests_host_network(arguments: list[str]) -> bool:
    """Return whether the SAM CLI arguments contain `--docker-network host`."""
    return "--docker-network=host" in arguments or (
        ("--docker-network", "host") in itertools.pairwise(arguments)
    )


def main() -> None:
    if not requests_host_network(sys.argv[1:]):
        raise SystemExit(
            "sam_host_network: pass --docker-network host; without it, run sam itself"
        )
    ContainerCollection.create = create_container
    sys.argv[0] = "sam"
    sys.exit(cli())


if __name__ == "__main__":
    main()
