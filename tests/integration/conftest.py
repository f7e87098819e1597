"""Fixtures for tests that run the receiver against moto over HTTP."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from aws_lambda_powertools.utilities.typing import (
    LambdaContext as PowertoolsLambdaContext,
)

from local.pki import Issued, make_intermediate, make_leaf, make_root
from local.resources import StackResources, create_stack_resources
from local.template import Template
from skribble_receiver.config import CallbackSettings
from tests.support.audit import AuditBench, create_credentials_secret
from tests.support.gateway import ReceiverGateway


@dataclass(frozen=True)
class SkribbleChain:
    """A test chain shaped like Skribble's: root, intermediate, client leaf."""

    root: Issued
    intermediate: Issued
    client: Issued


@pytest.fixture(scope="session")
def skribble_chain() -> SkribbleChain:
    root = make_root("Test GlobalSign Root")
    intermediate = make_intermediate(root, "Test AlphaSSL CA")
    client = make_leaf(intermediate, "api.skribble.com", client=True, server=True)
    return SkribbleChain(root=root, intermediate=intermediate, client=client)


@pytest.fixture
def stack(moto_endpoint: str) -> StackResources:
    """Create a fresh table, bus and event queue from template.yaml."""
    del moto_endpoint
    return create_stack_resources(Template(), prefix=f"test-{uuid.uuid4().hex[:8]}")


class LambdaContext(PowertoolsLambdaContext):
    """A Lambda context with a fixed time budget."""

    def __init__(self, remaining_ms: int = 10_000) -> None:
        self._function_name = "test-function"
        self._function_version = "$LATEST"
        self._memory_limit_in_mb = 512
        self._invoked_function_arn = (
            "arn:aws:lambda:eu-central-1:123456789012:function:test-function"
        )
        self._aws_request_id = "test-request"
        self._remaining_ms = remaining_ms

    def get_remaining_time_in_millis(self) -> int:  # type: ignore[override]
        return self._remaining_ms


@pytest.fixture
def settings_for(stack: StackResources) -> Callable[..., CallbackSettings]:
    """Return a factory of settings for the test stack, with overrides."""

    def make(callback_type: str = "SUCCESS", **overrides: Any) -> CallbackSettings:
        values: dict[str, Any] = {
            "callback_type": callback_type,
            "table_name": stack.table_name,
            "event_bus_name": stack.bus_name,
            "event_source": "skribble.callbacks",
            "allowed_client_hosts": "api.skribble.com",
            "record_retention_days": 400,
            "max_body_bytes": 65536,
            "retry_after_seconds": 60,
            "response_deadline_ms": 4000,
        }
        values.update(overrides)
        return CallbackSettings.model_validate(values)

    return make


@pytest.fixture
def audit_bench(
    stack: StackResources,
    settings_for: Callable[..., CallbackSettings],
    skribble_chain: SkribbleChain,
    start_simulator: Any,
) -> Iterator[AuditBench]:
    """Start a simulator whose two simulated hours pass in about two seconds,
    and a receiver gateway in front of the callback functions."""
    simulator, sim = start_simulator(time_scale=3600, duplicates=1)
    gateway = ReceiverGateway(settings_for, skribble_chain.client.cert).start()
    bench = AuditBench(
        stack=stack,
        simulator=simulator,
        sim=sim,
        gateway=gateway,
        secret_arn=create_credentials_secret(),
    )
    yield bench
    gateway.stop()
