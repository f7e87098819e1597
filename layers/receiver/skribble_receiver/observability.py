"""Powertools logger, metrics and optional tracing shared by the handlers."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools import Logger, Metrics

logger = Logger()
metrics = Metrics()

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]


def tracing_enabled() -> bool:
    """Return whether X-Ray tracing is on, by Powertools' own variable.

    template.yaml sets POWERTOOLS_TRACE_DISABLED from the Tracing parameter.
    Unset means enabled, as in Powertools.
    """
    value = os.environ.get("POWERTOOLS_TRACE_DISABLED", "false")
    return value.strip().lower() not in {"1", "true", "yes"}


def capture_lambda_handler(handler: Handler) -> Handler:
    """Trace the handler with Powertools Tracer when tracing is on.

    Tracer imports the X-Ray SDK, which imports botocore: about 350 ms of
    cold start (see docs/benchmarks.md). With tracing off, that import is
    skipped rather than paid for a disabled tracer.
    """
    if not tracing_enabled():
        return handler
    from aws_lambda_powertools import Tracer

    return Tracer().capture_lambda_handler(handler)
