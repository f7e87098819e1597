"""The template's functions, each run by a pool of worker processes.

Each function gets processes of its own, as each Lambda function gets its
own execution environments (see `local.worker_process`). One worker serves
one invocation at a time, like one environment, and a function has several
workers, so concurrent invocations of one function run at the same time, as
they do in Lambda. Invocations beyond the pool's size wait for an idle worker.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from local.template import FunctionSpec, Template
from local.worker_process import FunctionError, WorkerProcess

__all__ = ["FunctionError", "FunctionRuntime", "LocalFunction", "runtimes"]

DEFAULT_WORKERS = 2
# API Gateway's integration timeout: a request that finds every worker busy
# for this long fails as one that reaches no function.
IDLE_WORKER_TIMEOUT_SECONDS = 29.0


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
    """A function's pool of worker processes, like its execution environments.

    Each invocation goes to an idle worker. `start()` and `wait_ready()` bring
    up the first worker, and `start_spare_workers()` the others in the
    background, so that the stack is ready after one init phase per function.
    """

    def __init__(
        self,
        runtime: FunctionRuntime,
        aws_environment: Mapping[str, str],
        workers: int = DEFAULT_WORKERS,
    ) -> None:
        if workers < 1:
            raise ValueError(f"workers must be at least 1, got {workers}")
        self.runtime = runtime
        self.name = runtime.spec.logical_id
        self._workers = [
            WorkerProcess(runtime, aws_environment) for _ in range(workers)
        ]
        self._idle: queue.Queue[WorkerProcess] = queue.Queue()
        self._ready_lock = threading.Lock()
        self._ready = 0
        self._stopping = threading.Event()
        self._log = logging.getLogger(f"function.{self.name}")

    @property
    def pids(self) -> list[int]:
        """Process ids of the started workers."""
        return [worker.pid for worker in self._workers if worker.pid is not None]

    @property
    def workers(self) -> int:
        return len(self._workers)

    @property
    def ready_workers(self) -> int:
        """Number of workers that finished their init phase."""
        with self._ready_lock:
            return self._ready

    def start(self) -> None:
        """Start the first worker without waiting for its init phase."""
        self._workers[0].start()

    def wait_ready(self) -> int:
        """Wait for the first worker's init phase; return its milliseconds."""
        milliseconds = self._workers[0].wait_ready()
        self._add_idle(self._workers[0])
        return milliseconds

    def start_spare_workers(self) -> None:
        """Start the other workers; each takes invocations once initialized."""
        for index, worker in enumerate(self._workers[1:], start=2):
            worker.start()
            threading.Thread(
                target=self._init_spare,
                args=(worker,),
                name=f"{self.name}-init-{index}",
                daemon=True,
            ).start()

    def _init_spare(self, worker: WorkerProcess) -> None:
        try:
            worker.wait_ready()
        except FunctionError as exc:
            if not self._stopping.is_set():
                self._log.error("Spare worker failed to start: %s", exc)
            return
        self._add_idle(worker)

    def _add_idle(self, worker: WorkerProcess) -> None:
        with self._ready_lock:
            self._ready += 1
        self._idle.put(worker)

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        """Run the handler on `event` in an idle worker; return its result.

        Raises FunctionError when no worker becomes idle within API Gateway's
        integration timeout, or as `WorkerProcess.invoke` does.
        """
        try:
            worker = self._idle.get(timeout=IDLE_WORKER_TIMEOUT_SECONDS)
        except queue.Empty:
            raise FunctionError(
                f"{self.name}: all {len(self._workers)} workers stayed busy for "
                f"{IDLE_WORKER_TIMEOUT_SECONDS:.0f} s; start the stack with a "
                "larger --workers-per-function"
            ) from None
        try:
            return worker.invoke(event)
        finally:
            self._idle.put(worker)

    def stop(self) -> None:
        """Stop every worker; an invocation in progress finishes first."""
        self._stopping.set()
        for worker in self._workers:
            worker.stop()
