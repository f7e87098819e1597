"""A local stack for the end-to-end tests, run as `python -m local.stack`.

The stack runs as its own process, as `make dev` runs it, on free loopback
ports. Stopping it with SIGINT at the end of the session checks the clean
shutdown: exit code 0 and no function worker left behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from local.stack import FAKE_CREDENTIALS, ROOT

STARTUP_TIMEOUT_SECONDS = 60.0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@contextlib.contextmanager
def running_stack(state_dir: Path, *arguments: str) -> Iterator[dict[str, Any]]:
    """Run `python -m local.stack` with `arguments`; yield its stack.json."""
    log_path = state_dir / "stack.log"
    environment = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(
            str(ROOT / part) for part in ("layers/receiver", "functions/callback", ".")
        ),
    }
    environment.pop("AWS_ENDPOINT_URL", None)
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "local.stack",
                "--state-dir",
                str(state_dir),
                *arguments,
            ],
            cwd=ROOT,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    stack_file = state_dir / "stack.json"
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while not stack_file.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"local stack did not start:\n{log_path.read_text()}")
        time.sleep(0.1)
    details: dict[str, Any] = json.loads(stack_file.read_text())
    details["state_dir"] = str(state_dir)
    try:
        yield details
    finally:
        process.send_signal(signal.SIGINT)
        try:
            code = process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            pytest.fail(f"local stack ignored SIGINT:\n{log_path.read_text()}")
        leftover = [pid for pid in details["function_pids"].values() if _alive(pid)]
        assert code == 0, log_path.read_text()
        assert leftover == [], "function workers outlived the stack"
        assert not stack_file.exists()


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    with running_stack(tmp_path_factory.mktemp("local-stack")) as details:
        yield details


@pytest.fixture(scope="session")
def aws_session(local_stack: dict[str, Any]) -> boto3.Session:
    return boto3.Session(
        aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=FAKE_CREDENTIALS["AWS_SESSION_TOKEN"],
        region_name=local_stack["region"],
    )


@pytest.fixture(scope="session")
def dynamodb(local_stack: dict[str, Any], aws_session: boto3.Session) -> Any:
    return aws_session.client("dynamodb", endpoint_url=local_stack["moto_url"])


@pytest.fixture(scope="session")
def sqs(local_stack: dict[str, Any], aws_session: boto3.Session) -> Any:
    return aws_session.client("sqs", endpoint_url=local_stack["moto_url"])


@pytest.fixture
def stack_log(local_stack: dict[str, Any]) -> Path:
    return Path(local_stack["state_dir"]) / "stack.log"
