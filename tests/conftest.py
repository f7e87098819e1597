"""Fixtures shared by every test: the AWS stand-in, a test PKI, a simulator."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from local.moto_server import MotoServer
from local.simulator import Simulator, SimulatorConfig
from tests.support.pki import PkiFiles, create_test_pki
from tests.support.receiver import CallbackReceiver
from tests.support.sim_client import SimClient

# No test may reach real AWS: fake credentials and a fixed region are set
# before any client is created, and every client is pointed at moto below.
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "eu-central-1",
        "AWS_REGION": "eu-central-1",
        # As template.yaml sets them; Powertools reads them when the shared
        # Logger and Metrics are created, on first import.
        "POWERTOOLS_SERVICE_NAME": "skribble-callbacks",
        "POWERTOOLS_METRICS_NAMESPACE": "SkribbleCallbacks",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }
)
os.environ.pop("AWS_PROFILE", None)


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """Start moto in server mode on a free loopback port for the session."""
    server = MotoServer().start()
    endpoint = server.endpoint
    previous = os.environ.get("AWS_ENDPOINT_URL")
    os.environ["AWS_ENDPOINT_URL"] = endpoint
    try:
        yield endpoint
    finally:
        if previous is None:
            os.environ.pop("AWS_ENDPOINT_URL", None)
        else:
            os.environ["AWS_ENDPOINT_URL"] = previous
        server.stop()


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PkiFiles:
    return create_test_pki(Path(tmp_path_factory.mktemp("pki")))


@pytest.fixture
def receiver(pki: PkiFiles) -> Iterator[CallbackReceiver]:
    server = CallbackReceiver(pki).start()
    yield server
    server.stop()


StartSimulator = Callable[..., tuple[Simulator, SimClient]]


@pytest.fixture
def start_simulator(pki: PkiFiles) -> Iterator[StartSimulator]:
    """Start simulators with config overrides; all stop when the test ends."""
    started: list[Simulator] = []

    def start(**overrides: Any) -> tuple[Simulator, SimClient]:
        settings: dict[str, Any] = {
            "client_cert": pki.client_cert,
            "client_key": pki.client_key,
            "ca_bundle": pki.ca_cert,
            "callback_timeout": 5.0,
        }
        settings.update(overrides)
        simulator = Simulator(SimulatorConfig(**settings))
        simulator.start()
        started.append(simulator)
        return simulator, SimClient(simulator.base_url)

    yield start
    for simulator in started:
        simulator.stop()


@pytest.fixture
def sim(start_simulator: StartSimulator) -> tuple[Simulator, SimClient]:
    return start_simulator()


@pytest.fixture
def client(sim: tuple[Simulator, SimClient]) -> SimClient:
    return sim[1]
