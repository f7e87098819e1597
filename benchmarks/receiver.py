"""Measure the callback handler's import time, per-callback overhead and size.

    python benchmarks/receiver.py [--imports 15] [--calls 5000]

Prints figures; asserts nothing. Import times are medians over fresh
interpreter processes. The per-callback overhead runs the real resolver and
handler code with the AWS clients replaced by in-memory stubs, so it measures
this project's code, not the network. Sizes are read from `.aws-sam/build`
(run `make build` first).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "layers" / "receiver"), str(ROOT)]

HANDLER_ENVIRONMENT = {
    "CALLBACK_TYPE": "SUCCESS",
    "TABLE_NAME": "callbacks",
    "EVENT_BUS_NAME": "callbacks",
    "EVENT_SOURCE": "skribble.callbacks",
    "ALLOWED_CLIENT_HOSTS": "api.skribble.com",
    "CLIENT_CERT_SHA256_PINS": "",
    "CLIENT_PUBLIC_KEY_SHA256_PINS": "",
    "CALLBACK_TOKEN_SECRET_ARN": "",
    "BASE_PATH": "",
    "RECORD_RETENTION_DAYS": "400",
    "MAX_BODY_BYTES": "65536",
    "RETRY_AFTER_SECONDS": "60",
    "RESPONSE_DEADLINE_MS": "4000",
    "POWERTOOLS_SERVICE_NAME": "skribble-callbacks",
    "POWERTOOLS_METRICS_NAMESPACE": "SkribbleCallbacks",
    "AWS_DEFAULT_REGION": "eu-central-1",
}

IMPORTS = {
    "handler module (tracing off)": (
        "import app",
        {"POWERTOOLS_TRACE_DISABLED": "true"},
    ),
    "handler module (tracing on)": (
        "import app",
        {"POWERTOOLS_TRACE_DISABLED": "false"},
    ),
    "boto3 + full Powertools": (
        "import boto3\n"
        "from aws_lambda_powertools import Logger, Metrics, Tracer\n"
        "from aws_lambda_powertools.event_handler import APIGatewayRestResolver\n"
        "from aws_lambda_powertools.utilities import batch, idempotency, parameters\n"
        "from aws_lambda_powertools.utilities import parser\n"
        "Tracer()",
        {"POWERTOOLS_TRACE_DISABLED": "false"},
    ),
}


def time_import(statement: str, extra_environment: dict[str, str]) -> float:
    """Return the milliseconds one fresh interpreter spends on `statement`."""
    code = (
        "import time\n"
        "start = time.perf_counter()\n"
        f"{statement}\n"
        "print((time.perf_counter() - start) * 1000)\n"
    )
    environment = {
        **os.environ,
        **HANDLER_ENVIRONMENT,
        **extra_environment,
        "PYTHONPATH": os.pathsep.join(
            [str(ROOT / "layers" / "receiver"), str(ROOT / "functions" / "callback")]
        ),
    }
    output = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env=environment,
        cwd=ROOT,
    )
    return float(output.stdout.strip().splitlines()[-1])


class StubDynamoDB:
    """Answers UpdateItem like DynamoDB: empty for a new item, else old image."""

    def __init__(self) -> None:
        self.items: dict[tuple[str, str], dict[str, Any]] = {}
        self.calls = 0

    def update_item(self, **request: Any) -> dict[str, Any]:
        self.calls += 1
        key = (request["Key"]["pk"]["S"], request["Key"]["sk"]["S"])
        old = self.items.get(key)
        values = request["ExpressionAttributeValues"]
        if ":published" in values:
            self.items[key]["event_status"] = {"S": "PUBLISHED"}
            return {}
        if old is None:
            self.items[key] = {
                "callback_type": values[":callback_type"],
                "type_confirmed": values[":type_confirmed"],
                "first_received_at": values[":now"],
                "record_source": values[":source"],
                "event_status": {"S": "PENDING"},
                "delivery_count": {"N": "1"},
            }
            return {}
        return {"Attributes": dict(old)}


class LambdaContext:
    function_name = "benchmark"
    function_version = "$LATEST"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:eu-central-1:123456789012:function:b"
    aws_request_id = "benchmark"

    def get_remaining_time_in_millis(self) -> int:
        return 10_000


class StubEvents:
    def __init__(self) -> None:
        self.calls = 0

    def put_events(self, **_request: Any) -> dict[str, Any]:
        self.calls += 1
        return {"FailedEntryCount": 0, "Entries": [{"EventId": "stub"}]}


def measure_calls(count: int) -> dict[str, Any]:
    """Run `count` new and `count` repeated callbacks through the handler."""
    os.environ.update({**HANDLER_ENVIRONMENT, "POWERTOOLS_TRACE_DISABLED": "true"})
    import io
    from contextlib import redirect_stdout

    from local.apigw_event import client_cert_context, rest_proxy_event
    from local.pki import make_intermediate, make_leaf, make_root
    from skribble_receiver import aws

    dynamodb, events = StubDynamoDB(), StubEvents()
    stubs = {"dynamodb": dynamodb, "events": events}
    aws.client = lambda service: stubs[service]  # type: ignore[assignment]
    sys.path.insert(0, str(ROOT / "functions" / "callback"))
    # The real handler, decorators included: Powertools writes the log line
    # and flushes EMF metrics on every call, as in Lambda.
    sink = io.StringIO()
    with redirect_stdout(sink):
        # Powertools' Logger binds sys.stdout when it is created, at import.
        import app  # type: ignore[import-not-found]

    context = LambdaContext()
    leaf = make_leaf(
        make_intermediate(make_root("Bench Root"), "Bench CA"), "api.skribble.com"
    )
    certificate = client_cert_context(leaf.cert)

    def event(index: int) -> dict[str, Any]:
        sr = f"{index:08x}-0000-4000-8000-000000000000"
        doc = "29eae6aa-5558-2ada-2870-d4e654c0da5c"
        return rest_proxy_event(
            method="POST",
            path=f"/callbacks/success/{sr}/{doc}",
            resource="/callbacks/success/{proxy+}",
            path_parameters={"proxy": f"{sr}/{doc}"},
            headers=[("Content-Type", "application/json")],
            body=b'{"status": "SIGNED"}',
            client_cert=certificate,
        )

    deliveries = [event(index) for index in range(count)]
    results: dict[str, Any] = {}
    # The first requests of a container pay for lazy imports; a warm
    # container is what the overhead figure describes.
    with redirect_stdout(sink):
        for index in range(count, count + 200):
            app.lambda_handler(event(index), context)
    for label in ("new", "repeat"):
        before = dynamodb.calls + events.calls
        timings = []
        with redirect_stdout(sink):
            for delivery in deliveries:
                start = time.perf_counter()
                response = app.lambda_handler(delivery, context)
                timings.append((time.perf_counter() - start) * 1000)
                assert response["statusCode"] == 200, response
        timings.sort()
        sink.seek(0)
        sink.truncate()
        results[label] = {
            "median_ms": statistics.median(timings),
            "p99_ms": timings[int(len(timings) * 0.99) - 1],
            "aws_calls": (dynamodb.calls + events.calls - before) / count,
        }
    return results


def directory_size(path: Path) -> int:
    return sum(item.stat().st_size for item in path.rglob("*") if item.is_file())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--imports", type=int, default=15, help="processes per import")
    parser.add_argument("--calls", type=int, default=5000, help="callbacks per kind")
    arguments = parser.parse_args()

    print(f"python {sys.version.split()[0]} on {os.cpu_count()} CPUs")
    print(f"\nImport time, median of {arguments.imports} fresh processes:")
    medians = {}
    for label, (statement, environment) in IMPORTS.items():
        samples = [
            time_import(statement, environment) for _ in range(arguments.imports)
        ]
        medians[label] = statistics.median(samples)
        print(f"  {label:32} {medians[label]:8.1f} ms")
    baseline = medians["boto3 + full Powertools"]
    for label in ("handler module (tracing off)", "handler module (tracing on)"):
        print(f"  ratio {label:26} {medians[label] / baseline:8.2f}")

    print(f"\nPer-callback overhead, AWS stubbed, {arguments.calls} callbacks each:")
    for label, figures in measure_calls(arguments.calls).items():
        print(
            f"  {label:8} median {figures['median_ms']:.3f} ms"
            f"  p99 {figures['p99_ms']:.3f} ms"
            f"  AWS calls per callback {figures['aws_calls']:.1f}"
        )

    build = ROOT / ".aws-sam" / "build"
    print("\nBuilt sizes (.aws-sam/build, unzipped):")
    for name in ("SuccessFunction", "ReceiverLayer"):
        path = build / name
        if path.exists():
            print(f"  {name:32} {directory_size(path) / 1_000_000:8.1f} MB")
        else:
            print(f"  {name:32} not built: run `make build` first")


if __name__ == "__main__":
    main()
