"""The template's functions, each run in its own worker process.

Each function gets a process of its own, as each Lambda function gets its
own instances. The process has the function's environment from
template.yaml, its code folder and its layer on the path, and its own module
globals. The last matters because the six callback functions share one
handler module that reads CALLBACK_TYPE at import. One worker serves one
invocation at a time, like one Lambda instance, so calls to the same function
queue up.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import subprocess
import sys
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from local.template import FunctionSpec, Template

WORKER_SCRIPT = Path(__file__).resolve().parent / "lambda_worker.py"
# Real seconds a worker may take to import its handler (the init phase).
INIT_TIMEOUT_SECONDS = 60.0
# Log record keys shown in the stack's log; the rest (certificate details,
# Lambda context) stay out of the terminal.
SHOWN_LOG_KEYS = (
    "callback_type",
    "type_confirmed",
    "signature_request_id",
    "callback_id",
    "delivery_count",
    "published_now",
    "reason",
    "status_code",
    # The audit's findings and run totals.
    "verdict",
    "action",
    "selected",
    "missed",
    "recovered",
    "anomalies",
)


class FunctionError(Exception):
    """Raised when a function fails, times out or cannot start."""


@dataclass(frozen=True)
class FunctionRuntime:
    """Code folder, layers, limits and environment of one function."""

    spec: FunctionSpec
    code_dir: Path
    layer_dirs: tuple[Path, ...]
    timeout_seconds: float
    memory_mb: int


def runtimes(template: Template, root: Path) -> list[FunctionRuntime]:
    """Return every function of `template` with its code, layers and limits."""
    globals_ = template.document.get("Globals", {}).get("Function", {})
    found = []
    for spec in template.functions():
        properties = template.resource(spec.logical_id).get("Properties", {})
        layers = properties.get("Layers", globals_.get("Layers", []))
        layer_dirs = tuple(
            root / template.resource(layer["Ref"])["Properties"]["ContentUri"]
            for layer in layers
        )
        found.append(
            FunctionRuntime(
                spec=spec,
                code_dir=root / spec.code_uri,
                layer_dirs=layer_dirs,
                timeout_seconds=float(
                    properties.get("Timeout", globals_.get("Timeout", 3))
                ),
                memory_mb=int(
                    properties.get("MemorySize", globals_.get("MemorySize", 128))
                ),
            )
        )
    return found


class LocalFunction:
    """A worker process that runs one function's handler."""

    def __init__(
        self, runtime: FunctionRuntime, aws_environment: Mapping[str, str]
    ) -> None:
        self.runtime = runtime
        self.name = runtime.spec.logical_id
        self._aws_environment = dict(aws_environment)
        self._lock = threading.Lock()
        self._answers: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._process: subprocess.Popen[str] | None = None
        self._log = logging.getLogger(f"function.{self.name}")

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    def _environment(self) -> dict[str, str]:
        runtime = self.runtime
        environment = {
            # Only what a Lambda instance would have, plus the interpreter's
            # own location so that the virtualenv's packages are found.
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "PYTHONUNBUFFERED": "1",
            "PYTHONPATH": os.pathsep.join(
                str(path) for path in (runtime.code_dir, *runtime.layer_dirs)
            ),
            "LAMBDA_TASK_ROOT": str(runtime.code_dir),
            "AWS_LAMBDA_FUNCTION_NAME": self.name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(runtime.memory_mb),
            "AWS_LAMBDA_FUNCTION_TIMEOUT": str(int(runtime.timeout_seconds)),
            "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
            "_HANDLER": runtime.spec.handler,
            **self._aws_environment,
        }
        environment.update(runtime.spec.environment)
        return environment

    def start(self) -> None:
        """Start the worker without waiting for its init phase."""
        runtime = self.runtime
        self._answers = queue.Queue()
        self._process = subprocess.Popen(
            [
                sys.executable,
                str(WORKER_SCRIPT),
                runtime.spec.handler,
                self.name,
                str(runtime.timeout_seconds),
                str(runtime.memory_mb),
            ],
            cwd=runtime.code_dir,
            env=self._environment(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
        )
        assert self._process.stdout is not None
        assert self._process.stderr is not None
        threading.Thread(
            target=self._read_answers,
            args=(self._process.stdout, self._answers),
            name=f"{self.name}-answers",
            daemon=True,
        ).start()
        threading.Thread(
            target=self._relay_logs,
            args=(self._process.stderr,),
            name=f"{self.name}-logs",
            daemon=True,
        ).start()

    def wait_ready(self) -> int:
        """Wait for the init phase and return its duration in milliseconds."""
        try:
            message = self._answers.get(timeout=INIT_TIMEOUT_SECONDS)
        except queue.Empty:
            self.stop()
            raise FunctionError(
                f"{self.name} did not finish its init phase within "
                f"{INIT_TIMEOUT_SECONDS:.0f} s"
            ) from None
        if message is None or "init_error" in message:
            reason = "the worker exited" if message is None else message["init_error"]
            self.stop()
            raise FunctionError(
                f"{self.name} failed to initialize: {reason}. Its log above has "
                "the traceback."
            )
        return int(message.get("init_ms", 0))

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        """Run the handler on `event` and return its result.

        Raises FunctionError when the handler raises, the worker dies or the
        function's timeout passes. After a timeout or a crash the worker is
        started again, as Lambda replaces a failed instance.
        """
        request_id = str(uuid.uuid4())
        with self._lock:
            process = self._process
            if process is None or process.poll() is not None or process.stdin is None:
                self._log.warning("Worker not running; starting it again")
                self.start()
                self.wait_ready()
                process = self._process
                assert process is not None
                assert process.stdin is not None
            try:
                process.stdin.write(
                    json.dumps({"event": event, "request_id": request_id}) + "\n"
                )
                process.stdin.flush()
                message = self._answers.get(timeout=self.runtime.timeout_seconds)
            except queue.Empty:
                self._log.error(
                    "Task timed out after %.0f s; restarting the worker",
                    self.runtime.timeout_seconds,
                )
                self._kill()
                raise FunctionError(f"{self.name} timed out") from None
            except OSError as exc:
                self._kill()
                raise FunctionError(f"{self.name} worker is gone: {exc}") from exc
        if message is None:
            raise FunctionError(f"{self.name} worker exited during the invocation")
        if "error" in message:
            error = message["error"]
            raise FunctionError(
                f"{self.name} raised {error['errorType']}: {error['errorMessage']}"
            )
        result: dict[str, Any] = message["result"]
        return result

    def stop(self) -> None:
        """Close the worker's stdin so that it exits, then wait for it."""
        process = self._process
        if process is None:
            return
        if process.stdin is not None:
            with contextlib.suppress(OSError):
                process.stdin.close()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._kill()

    def _kill(self) -> None:
        process = self._process
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(timeout=5)

    @staticmethod
    def _read_answers(
        stream: IO[str], answers: queue.Queue[dict[str, Any] | None]
    ) -> None:
        for line in stream:
            answers.put(json.loads(line))
        # End of stream means the worker exited, so a waiting invoke returns.
        answers.put(None)

    def _relay_logs(self, stream: IO[str]) -> None:
        for line in stream:
            self._relay_line(line.rstrip("\n"))

    def _relay_line(self, line: str) -> None:
        if not line.strip():
            return
        try:
            record = json.loads(line)
        except ValueError:
            self._log.info("%s", line)
            return
        if not isinstance(record, dict):
            self._log.info("%s", line)
            return
        if "_aws" in record:
            # An embedded metric format record: the metrics, not a log line.
            self._log.debug("metrics %s", line)
            return
        level = logging.getLevelName(str(record.get("level", "INFO")))
        shown = " ".join(
            f"{key}={record[key]}" for key in SHOWN_LOG_KEYS if key in record
        )
        message = str(record.get("message", line))
        self._log.log(
            level if isinstance(level, int) else logging.INFO,
            "%s%s",
            message,
            f" {shown}" if shown else "",
        )
        exception = record.get("exception")
        if exception:
            self._log.log(logging.WARNING, "%s", exception)
