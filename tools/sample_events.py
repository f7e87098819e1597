"""Write the sample API Gateway events in events/, one per callback type.

Each is a REST proxy event as API Gateway sends it through a mutual TLS
custom domain, with a client certificate for api.skribble.com issued by a
throwaway test CA and valid until 2099, so that

    sam local invoke SuccessFunction -e events/success.json

passes the certificate check with the default settings. The private keys are
discarded. Run again only to change the events:

    python -m tools.sample_events
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from local.apigw_event import client_cert_context, rest_proxy_event
from local.pki import make_intermediate, make_leaf, make_root

EVENTS_DIR = Path(__file__).resolve().parent.parent / "events"
SIGNATURE_REQUEST_ID = "4f43614a-de50-bfe1-2df3-4c881fc7840e"
DOCUMENT_ID = "29eae6aa-5558-2ada-2870-d4e654c0da5c"
SIGNATURE_ID = "894a0240-e01a-2307-4376-0267c6a8d105"
NOT_AFTER = datetime(2099, 12, 31, tzinfo=UTC)

# Path segments after /callbacks/<type>/, as Skribble fills the URL templates.
PATHS = {
    "success": [SIGNATURE_REQUEST_ID, DOCUMENT_ID],
    "update": [SIGNATURE_REQUEST_ID, DOCUMENT_ID, SIGNATURE_ID],
    "error": [SIGNATURE_REQUEST_ID, DOCUMENT_ID],
    "start-sign": [SIGNATURE_REQUEST_ID, DOCUMENT_ID],
    "initiate": [SIGNATURE_REQUEST_ID, DOCUMENT_ID],
    "ident-error": [SIGNATURE_REQUEST_ID, DOCUMENT_ID],
}


def main() -> None:
    root = make_root("Sample GlobalSign Root", not_after=NOT_AFTER)
    intermediate = make_intermediate(root, "Sample AlphaSSL CA", not_after=NOT_AFTER)
    client = make_leaf(intermediate, "api.skribble.com", not_after=NOT_AFTER)
    certificate = client_cert_context(client.cert)
    now = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)

    for segment, ids in PATHS.items():
        proxy = "/".join(ids)
        event = rest_proxy_event(
            method="POST",
            path=f"/callbacks/{segment}/{proxy}",
            resource=f"/callbacks/{segment}/{{proxy+}}",
            path_parameters={"proxy": proxy},
            headers=[
                ("Content-Type", "application/json"),
                ("Host", "callbacks.example.com"),
                ("User-Agent", "Skribble"),
            ],
            body=json.dumps({"signature_request_id": SIGNATURE_REQUEST_ID}).encode(),
            client_cert=certificate,
            domain_name="callbacks.example.com",
            now=now,
        )
        path = EVENTS_DIR / f"{segment.replace('-', '_')}.json"
        path.write_text(json.dumps(event, indent=2) + "\n")
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
