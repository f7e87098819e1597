"""Lambda handler shared by the six callback functions.

Each function sets CALLBACK_TYPE, which selects its route and the type it
records. Settings are validated here, at init, so a misconfigured function
fails on its first cold start with the variable's name in the error.
"""

from typing import Any

from aws_lambda_powertools.logging import correlation_paths

from skribble_receiver.config import CallbackSettings
from skribble_receiver.observability import capture_lambda_handler, logger, metrics
from skribble_receiver.receiver import create_app

settings = CallbackSettings.from_environ()
app = create_app(settings)


@logger.inject_lambda_context(
    correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True
)
@metrics.log_metrics(capture_cold_start_metric=True)
@capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return app.resolve(event, context)
