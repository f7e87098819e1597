"""Lambda handler of the scheduled audit of Skribble's callback delivery.

Settings are validated at init, so a misconfigured function fails on its
first cold start with the variable's name in the error. A run that cannot log
in to Skribble raises, so the invocation fails and reaches the failure
destination and the alarm. Problems with single signature requests are
reported in the summary instead.
"""

import time
from datetime import UTC, datetime
from typing import Any

from skribble_receiver.audit_config import AuditSettings
from skribble_receiver.audit_run import create_audit_run, window_scope
from skribble_receiver.observability import capture_lambda_handler, logger, metrics

settings = AuditSettings.from_environ()
audit_run = create_audit_run(settings)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
@capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    started = time.monotonic()
    remaining = context.get_remaining_time_in_millis() / 1000
    budget = remaining - settings.stop_before_timeout_seconds
    scope = window_scope(datetime.now(UTC), settings.lookback_hours, mode="scheduled")
    report = audit_run.run(scope, budget_seconds=max(budget, 1.0))
    detail = report.summary_detail()
    detail["duration_seconds"] = round(time.monotonic() - started, 3)
    return detail
