"""`python -m local.simulator` as a process: port file, serving, clean stop."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.sim_client import SimClient, wait_for

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def simulator_process(tmp_path, pki):
    port_file = tmp_path / "simulator.json"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "local.simulator",
            "--port-file",
            str(port_file),
            "--time-scale",
            "600",
            "--route",
            "START_SIGN=callback_error_url",
            "--client-cert",
            str(pki.client_cert),
            "--client-key",
            str(pki.client_key),
            "--ca-bundle",
            str(pki.ca_cert),
        ],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    yield process, port_file
    if process.poll() is None:
        process.kill()
        process.wait(timeout=5)


def test_cli_writes_port_file_and_serves(simulator_process):
    _process, port_file = simulator_process

    wait_for(port_file.exists)
    details = json.loads(port_file.read_text())
    health = SimClient(details["base_url"]).admin("/_sim/health")

    assert details["base_url"] == f"http://127.0.0.1:{details['port']}"
    assert health["time_scale"] == 600


def test_cli_route_option_and_client_cert_apply(simulator_process, receiver):
    _, port_file = simulator_process
    wait_for(port_file.exists)
    client = SimClient(json.loads(port_file.read_text())["base_url"])
    created = client.create(
        callback_error_url=receiver.base_url + "/callbacks/error",
        callback_update_url=receiver.base_url + "/callbacks/update",
    )

    client.step(created["id"], "start-sign")

    [call] = wait_for(receiver.received)
    assert call.target == "/callbacks/error"
    assert call.client_subject == "api.skribble.com"


def test_cli_stops_cleanly_on_sigterm(simulator_process):
    process, port_file = simulator_process
    wait_for(port_file.exists)

    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=10)

    assert process.returncode == 0
    assert "stop requested signal=SIGTERM" in stderr
    assert "simulator stopped" in stderr


def test_cli_rejects_non_loopback_host():
    result = subprocess.run(
        [sys.executable, "-m", "local.simulator", "--host", "0.0.0.0"],
        check=False,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=30,
    )

    assert result.returncode == 2
    assert "not loopback" in result.stderr
