"""Run one Lambda function's handler in its own process, like a Lambda instance.

Started by `local.functions` as `python local/lambda_worker.py HANDLER NAME
TIMEOUT MEMORY` with the function's environment, its code folder as the
working directory and PYTHONPATH set to the code and layer folders, as Lambda
sets them. It imports the handler module once (the init phase), then reads
one JSON request per line on stdin and writes one JSON response per line on the
original stdout. Everything the function prints, its logs included, goes to
stderr, which the parent reads as the function's log stream.

This file only uses the standard library and runs as a script rather than
`-m local...`, so that the repository root is not on the function's path.
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import sys
import time
import traceback
from typing import Any, TextIO

_SCRIPT_DIR = os.path.dirname(os.path.abspath(__file__))


class LambdaContext:
    """The Lambda context object, with the fields handlers and Powertools read."""

    def __init__(
        self, name: str, memory_mb: int, request_id: str, deadline: float
    ) -> None:
        region = os.environ.get("AWS_REGION", "eu-central-1")
        self.function_name = name
        self.function_version = "$LATEST"
        self.invoked_function_arn = (
            f"arn:aws:lambda:{region}:123456789012:function:{name}"
        )
        self.memory_limit_in_mb = memory_mb
        self.aws_request_id = request_id
        self.log_group_name = f"/aws/lambda/{name}"
        self.log_stream_name = "local"
        self._deadline = deadline

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def _send(channel: TextIO, message: dict[str, Any]) -> None:
    channel.write(json.dumps(message) + "\n")
    channel.flush()


def main(argv: list[str]) -> int:
    handler_name, function_name, timeout, memory = argv
    # Ctrl-C reaches the whole process group; the parent stops this process
    # by closing stdin, so that an invocation in progress can finish.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.path and sys.path[0] == _SCRIPT_DIR:
        sys.path.pop(0)
    channel = os.fdopen(os.dup(1), "w", encoding="utf-8")
    os.dup2(2, 1)

    module_name, _, attribute = handler_name.rpartition(".")
    started = time.monotonic()
    try:
        module = importlib.import_module(module_name)
        handler = getattr(module, attribute)
    except Exception as exc:
        traceback.print_exc()
        _send(channel, {"init_error": f"{type(exc).__name__}: {exc}"})
        return 1
    _send(channel, {"ready": True, "init_ms": int((time.monotonic() - started) * 1000)})

    for line in sys.stdin:
        request = json.loads(line)
        context = LambdaContext(
            function_name,
            int(memory),
            request["request_id"],
            time.monotonic() + float(timeout),
        )
        try:
            result = handler(request["event"], context)
        except Exception as exc:
            traceback.print_exc()
            _send(
                channel,
                {"error": {"errorType": type(exc).__name__, "errorMessage": str(exc)}},
            )
            continue
        _send(channel, {"result": result})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
