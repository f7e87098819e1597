"""Run built functions in containers with `sam local invoke` and read the result.

SAM CLI 1.170 exits with 0 even when the handler fails (an import error, an
unhandled exception), so the result is read from the output. The function's
response is the last line of stdout, and the function's own logs are in
stderr next to SAM CLI's messages.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
HOST_NETWORK_WRAPPER = ROOT / "scripts" / "sam_host_network.py"
# The stand-in base image exists only for x86_64. The built template's default
# is arm64, and for arm64 Docker would try to pull the base image.
PARAMETER_OVERRIDES = "Architecture=x86_64"
INVOKE_TIMEOUT_SECONDS = 180


class InvocationFailed(AssertionError):
    """Raised when an invoke did not return the function's response."""


@dataclass(frozen=True)
class Invocation:
    """What one `sam local invoke` printed."""

    function_id: str
    returncode: int
    stdout: str
    stderr: str

    def response(self) -> dict[str, Any]:
        """Return the function's response, or raise InvocationFailed.

        A failed handler makes SAM CLI print Lambda's error object
        (`errorType`, `errorMessage`) in place of the response.
        """
        lines = [line for line in self.stdout.splitlines() if line.strip()]
        if self.returncode != 0 or not lines:
            raise InvocationFailed(
                f"sam local invoke {self.function_id} exited with "
                f"{self.returncode} and printed no response; its output ends:\n"
                f"{self.stderr[-4000:]}"
            )
        try:
            response = json.loads(lines[-1])
        except json.JSONDecodeError as exc:
            raise InvocationFailed(
                f"{self.function_id} printed a response that is not JSON: "
                f"{lines[-1][:500]!r}"
            ) from exc
        if not isinstance(response, dict):
            raise InvocationFailed(
                f"{self.function_id} returned {response!r}, expected a JSON object"
            )
        if "errorType" in response:
            raise InvocationFailed(
                f"{self.function_id} failed with {response['errorType']}: "
                f"{response.get('errorMessage')}; its output ends:\n"
                f"{self.stderr[-4000:]}"
            )
        return response

    def log_records(self) -> list[dict[str, Any]]:
        """Return the JSON lines the function logged (logs and EMF metrics)."""
        records = []
        for line in self.stderr.splitlines():
            if not line.startswith("{"):
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(record, dict):
                records.append(record)
        return records


def sam_environment(aws_endpoint: str) -> dict[str, str]:
    """Return SAM CLI's own environment: fake credentials and the AWS stand-in.

    SAM CLI calls STS GetCallerIdentity on every invoke and passes its
    credentials and region into the container, so both must point at the
    stand-in. Inherited AWS_* settings are dropped so that no profile or
    real endpoint leaks in.
    """
    environment = {
        name: value for name, value in os.environ.items() if not name.startswith("AWS_")
    }
    environment.update(
        {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": "eu-central-1",
            "AWS_REGION": "eu-central-1",
            "AWS_ENDPOINT_URL": aws_endpoint,
            "AWS_EC2_METADATA_DISABLED": "true",
            "SAM_CLI_TELEMETRY": "0",
        }
    )
    return environment


def sam_local_invoke(
    function_id: str,
    event: Path,
    *,
    template: Path,
    env_vars: Path,
    aws_endpoint: str,
) -> Invocation:
    """Invoke one function of a built template in a host-network container."""
    command = [
        sys.executable,
        str(HOST_NETWORK_WRAPPER),
        "local",
        "invoke",
        function_id,
        "--template",
        str(template),
        "--event",
        str(event),
        "--env-vars",
        str(env_vars),
        "--parameter-overrides",
        PARAMETER_OVERRIDES,
        "--skip-pull-image",
        "--docker-network",
        "host",
    ]
    completed = subprocess.run(
        command,
        cwd=ROOT,
        env=sam_environment(aws_endpoint),
        capture_output=True,
        text=True,
        timeout=INVOKE_TIMEOUT_SECONDS,
        check=False,
    )
    return Invocation(
        function_id=function_id,
        returncode=completed.returncode,
        stdout=completed.stdout,
        stderr=completed.stderr,
    )


def write_env_vars(path: Path, variables: dict[str, dict[str, str]]) -> Path:
    """Write an `--env-vars` file: one block of variables per function id.

    SAM CLI applies only variables that the template declares for a function.
    """
    path.write_text(json.dumps(variables, indent=2))
    return path
