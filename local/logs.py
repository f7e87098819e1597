"""Log format of the local stack: one line per step, named by component.

A callback's path reads top to bottom: the simulator's delivery, the
gateway's request line, the function's own log lines, and the simulator's
verdict (COMPLETED or the next retry).
"""

from __future__ import annotations

import logging
import sys

_COMPONENTS = (
    ("local.simulator", "simulator"),
    ("local.gateway", "gateway"),
    ("local.stack", "stack"),
    ("function.", ""),
)


class ComponentFormatter(logging.Formatter):
    """Format records as `time component level message`."""

    def format(self, record: logging.LogRecord) -> str:
        component = record.name
        for prefix, label in _COMPONENTS:
            if record.name.startswith(prefix):
                component = label or record.name[len(prefix) :]
                break
        time = self.formatTime(record, "%H:%M:%S")
        level = "" if record.levelno == logging.INFO else f"{record.levelname} "
        line = f"{time}.{int(record.msecs):03d} {component:<18} {level}"
        line += record.getMessage()
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def configure(level: str = "INFO") -> None:
    """Send every log line to stderr in the stack's format."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(ComponentFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # moto's web server logs every AWS call, which the function lines cover,
    # and its DynamoDB expression parser logs every token at debug level.
    for noisy in ("werkzeug", "moto", "botocore", "boto3", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
