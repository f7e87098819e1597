"""A function's worker pool runs concurrent invocations in separate processes."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from local.functions import FunctionRuntime, LocalFunction
from local.template import FunctionSpec
from tests.support.sim_client import wait_for

HANDLER = """
import os
import time


def handler(event, context):
    time.sleep(event["sleep"])
    return {"pid": os.getpid()}
"""


@pytest.fixture
def sleeper(tmp_path: Path) -> FunctionRuntime:
    (tmp_path / "app.py").write_text(HANDLER)
    spec = FunctionSpec(
        logical_id="SleepFunction",
        code_uri=str(tmp_path),
        handler="app.handler",
        environment={},
    )
    return FunctionRuntime(
        spec=spec, code_dir=tmp_path, layer_dirs=(), timeout_seconds=10, memory_mb=128
    )


def _started(runtime: FunctionRuntime, workers: int) -> LocalFunction:
    function = LocalFunction(runtime, {}, workers=workers)
    function.start()
    function.wait_ready()
    function.start_spare_workers()
    wait_for(lambda: function.ready_workers == workers, timeout=30)
    return function


def test_concurrent_invocations_use_separate_workers(sleeper):
    function = _started(sleeper, workers=2)
    try:
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=2) as pool:
            results = list(pool.map(function.invoke, [{"sleep": 1.0}] * 2))
        elapsed = time.monotonic() - started
    finally:
        function.stop()

    assert len({result["pid"] for result in results}) == 2
    assert elapsed < 1.8


def test_invocations_beyond_pool_wait_for_idle_worker(sleeper):
    function = _started(sleeper, workers=1)
    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            results = list(pool.map(function.invoke, [{"sleep": 0.2}] * 2))
    finally:
        function.stop()

    assert results[0]["pid"] == results[1]["pid"]


def test_pool_size_below_one_is_rejected(sleeper):
    with pytest.raises(ValueError, match="workers must be at least 1, got 0"):
        LocalFunction(sleeper, {}, workers=0)
