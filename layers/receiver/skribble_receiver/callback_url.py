"""Read signature request, document and signature ids from a callback URL.

Skribble replaces the placeholders in a callback URL and then HTML-encodes the
whole URL, so `&` between query parameters arrives as `&amp;`. API Gateway
then splits the query at `&` and passes keys such as `amp;document_id`. Path
segments avoid that problem and are the recommended form:

    /callbacks/<type>/<signature_request_id>/<document_id>[/<signature_id>]
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from skribble_receiver.errors import MalformedCallback

# Skribble documents its ids as UUIDs. The check is strict on purpose: only a
# value of this shape can reach a table key, an event or a log line.
_ID_PATTERN = re.compile(
    r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
)
_HTML_AMPERSAND = "amp;"

ID_PARAMETERS = ("signature_request_id", "document_id", "signature_id")
TOKEN_PARAMETER = "token"  # noqa: S105 - a parameter name, not a secret

# A placeholder that Skribble did not replace means the value is absent:
# SKRIBBLE_SIGNATURE_ID, for example, is only replaced after a signature.
PLACEHOLDERS = {
    "signature_request_id": "SKRIBBLE_SIGNATURE_REQUEST_ID",
    "document_id": "SKRIBBLE_DOCUMENT_ID",
    "signature_id": "SKRIBBLE_SIGNATURE_ID",
}


@dataclass(frozen=True)
class CallbackIds:
    """Ids read from one callback URL."""

    signature_request_id: str
    document_id: str | None
    signature_id: str | None
    id_source: Literal["path", "query"]


def normalize_query(
    multi_value_query: Mapping[str, Sequence[str]] | None,
) -> dict[str, list[str]]:
    """Undo what HTML encoding did to the query string's parameter names."""
    normalized: dict[str, list[str]] = {}
    for key, values in (multi_value_query or {}).items():
        name = key
        # `&amp;amp;` appears when a URL was encoded twice, so strip repeatedly.
        while name.startswith(_HTML_AMPERSAND):
            name = name[len(_HTML_AMPERSAND) :]
        normalized.setdefault(name, []).extend(values)
    return normalized


def _single_value(query: Mapping[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    if not values:
        return None
    if len(set(values)) > 1:
        raise MalformedCallback(
            "conflicting_parameter",
            f"Query parameter '{name}' appears with different values; send it once.",
        )
    return values[0]


def _validate_id(name: str, value: str | None) -> str | None:
    if value is None or value == "" or value == PLACEHOLDERS[name]:
        return None
    normalized = value.lower()
    # fullmatch, because `$` in match() also accepts a trailing newline.
    if not _ID_PATTERN.fullmatch(normalized):
        # The value itself is not echoed: it is untrusted input of any length.
        raise MalformedCallback(
            f"invalid_{name}",
            f"'{name}' is not a Skribble id: expected a UUID such as "
            "4f43614a-de50-bfe1-2df3-4c881fc7840e.",
        )
    return normalized


def read_token(multi_value_query: Mapping[str, Sequence[str]] | None) -> str | None:
    """Return the shared token from the query string, if there is one."""
    values = normalize_query(multi_value_query).get(TOKEN_PARAMETER)
    # A repeated token parameter is answered as a wrong token, not as a
    # malformed callback, because the token is checked before the ids.
    if not values or len(set(values)) > 1:
        return None
    return values[0]


def parse_callback_ids(
    path_segments: Sequence[str],
    multi_value_query: Mapping[str, Sequence[str]] | None,
) -> CallbackIds:
    """Read the ids of one delivery from path segments or the query string.

    `path_segments` are the segments after `/callbacks/<type>`. Raises
    MalformedCallback when an id is invalid, missing or given twice with
    different values.
    """
    query = normalize_query(multi_value_query)
    # Only trailing empty segments (a trailing slash) are dropped: an empty
    # segment in the middle keeps its position and reads as a missing id.
    segments = list(path_segments)
    while segments and not segments[-1]:
        segments.pop()
    if len(segments) > len(ID_PARAMETERS):
        raise MalformedCallback(
            "too_many_path_segments",
            "The callback path has more than three id segments: expected "
            "/callbacks/<type>/<signature_request_id>/<document_id>"
            "[/<signature_id>].",
        )

    raw: dict[str, str | None] = {}
    for index, name in enumerate(ID_PARAMETERS):
        from_path = segments[index] if index < len(segments) else None
        from_query = _single_value(query, name)
        if from_path is not None and from_query is not None and from_path != from_query:
            raise MalformedCallback(
                "conflicting_parameter",
                f"'{name}' differs between the path and the query string; "
                "send it in one place.",
            )
        raw[name] = from_path if from_path is not None else from_query

    ids = {name: _validate_id(name, value) for name, value in raw.items()}
    signature_request_id = ids["signature_request_id"]
    if signature_request_id is None:
        raise MalformedCallback(
            "missing_signature_request_id",
            "The callback URL has no signature request id: put "
            "SKRIBBLE_SIGNATURE_REQUEST_ID in the path or in the "
            "'signature_request_id' query parameter.",
        )

    return CallbackIds(
        signature_request_id=signature_request_id,
        document_id=ids["document_id"],
        signature_id=ids["signature_id"],
        id_source="path" if segments else "query",
    )
