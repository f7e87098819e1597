"""Write the JSON Schemas of the events the receiver publishes.

One schema per callback type, for the whole EventBridge event as consumers
receive it, generated from the pydantic model of the event detail so the two
cannot drift apart. `--check` fails when a file is out of date (CI runs it).

    python -m tools.event_schemas [--check]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from skribble_receiver.expiry import EXPIRY_WARNING_DETAIL_TYPE, ExpiryWarning
from skribble_receiver.models import (
    CallbackEventDetail,
    CallbackType,
    event_detail_type,
)

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schemas" / "events"
EVENT_SOURCE = "skribble.callbacks"


def schema_path(callback_type: CallbackType) -> Path:
    name = callback_type.value.lower().replace("_", "-")
    return SCHEMA_DIR / f"skribble-callback-{name}.json"


def callback_event_schema(callback_type: CallbackType) -> dict[str, Any]:
    """Return the schema of the whole event for one callback type."""
    detail = CallbackEventDetail.model_json_schema()
    detail["properties"]["callback_type"] = {"const": callback_type.value}
    detail["additionalProperties"] = False
    definitions = detail.pop("$defs", {})
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": event_detail_type(callback_type),
        "description": (
            f"EventBridge event published once per {callback_type.value} "
            "callback, by the receiver or, flagged `recovered`, by the audit."
        ),
        "type": "object",
        "required": ["detail-type", "source", "detail", "id", "time"],
        "properties": {
            "version": {"type": "string"},
            "id": {"type": "string"},
            "detail-type": {"const": event_detail_type(callback_type)},
            "source": {"const": EVENT_SOURCE},
            "account": {"type": "string"},
            "time": {"type": "string", "format": "date-time"},
            "region": {"type": "string"},
            "resources": {"type": "array", "items": {"type": "string"}},
            "detail": detail,
        },
        "$defs": definitions,
    }


def expiry_warning_schema() -> dict[str, Any]:
    """Return the schema of the certificate expiry warning event."""
    detail = ExpiryWarning.model_json_schema()
    detail["additionalProperties"] = False
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": EXPIRY_WARNING_DETAIL_TYPE,
        "description": (
            "EventBridge event published once per certificate and threshold "
            "(30 and 7 days) by the daily certificate expiry check."
        ),
        "type": "object",
        "required": ["detail-type", "source", "detail", "id", "time"],
        "properties": {
            "version": {"type": "string"},
            "id": {"type": "string"},
            "detail-type": {"const": EXPIRY_WARNING_DETAIL_TYPE},
            "source": {"const": EVENT_SOURCE},
            "account": {"type": "string"},
            "time": {"type": "string", "format": "date-time"},
            "region": {"type": "string"},
            "resources": {"type": "array", "items": {"type": "string"}},
            "detail": detail,
        },
    }


def generated_schemas() -> dict[Path, dict[str, Any]]:
    """Return every generated schema by the file it belongs in."""
    schemas = {
        schema_path(callback_type): callback_event_schema(callback_type)
        for callback_type in CallbackType
    }
    schemas[SCHEMA_DIR / "skribble-certificate-expiry-warning.json"] = (
        expiry_warning_schema()
    )
    return schemas


def render(schema: dict[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--check",
        action="store_true",
        help="fail instead of writing when a schema file is out of date",
    )
    arguments = parser.parse_args(argv)

    stale = []
    for path, schema in generated_schemas().items():
        text = render(schema)
        current = path.read_text() if path.exists() else None
        if current == text:
            continue
        if arguments.check:
            stale.append(path.name)
        else:
            path.write_text(text)
            print(f"wrote {path}")
    if stale:
        print(
            "Event schemas are out of date: "
            + ", ".join(stale)
            + ". Run `python -m tools.event_schemas` and commit the result.",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
