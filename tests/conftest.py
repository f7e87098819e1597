"""Fixtures shared by the simulator tests: a test PKI, a receiver, a simulator."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from local.simulator import Simulator, SimulatorConfig
from tests.support.pki import PkiFiles, create_test_pki
from tests.support.receiver import CallbackReceiver
from tests.support.sim_client import SimClient


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
