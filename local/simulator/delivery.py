"""Background delivery of callbacks on Skribble's retry schedule.

A scheduler thread hands due callbacks to a bounded thread pool. A callback
stays OPEN until a 2xx response (COMPLETED). After any other response or a
failed connection it is tried again `retry_interval` simulated seconds after
the scheduled try, or `Retry-After` seconds after the response if it has one,
until the next try would fall after `retry_window` (then RESIGNATED). With the
defaults that is one try and twelve retries over two simulated hours.
"""

from __future__ import annotations

import email.utils
import http.client
import json
import logging
import ssl
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import urlsplit

from .callback_url import redact
from .client_certificate import ClientCertificates
from .clock import SimClock, iso_timestamp
from .config import SimulatorConfig
from .state import Callback, Delivery, Store

logger = logging.getLogger("local.simulator.delivery")

# Maximum real pause of the scheduler, so a changed time scale takes effect.
_MAX_IDLE_SECONDS = 0.5
# Shortest pause honoured from `Retry-After` (simulated seconds), so that
# `Retry-After: 0` cannot turn the retries into a busy loop.
_MIN_RETRY_AFTER = 1.0


@dataclass
class Outcome:
    """Status and message of one HTTP call of a callback."""

    status: int | None
    message: str
    retry_after: str | None = None
    # SHA-256 of the client certificate this call presented, if any.
    client_cert_sha256: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class DeliveryEngine:
    """Scheduler thread plus worker pool that calls callback URLs."""

    def __init__(self, store: Store, clock: SimClock, config: SimulatorConfig) -> None:
        self._store = store
        self._clock = clock
        self._config = config
        self.certificates = ClientCertificates(config)
        self._pool = ThreadPoolExecutor(
            max_workers=config.max_parallel, thread_name_prefix="callback"
        )
        self._stopping = threading.Event()
        self._in_flight = 0
        self._thread = threading.Thread(
            target=self._run, name="callback-scheduler", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Stop scheduling, let running calls end, and join the threads."""
        self._stopping.set()
        self._clock.notify()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _run(self) -> None:
        while not self._stopping.is_set():
            for callback_id in self._claim_due():
                self._pool.submit(self._deliver, callback_id)
            self._clock.wait(min(self._seconds_to_next_due(), _MAX_IDLE_SECONDS))

    def _claim_due(self) -> list[str]:
        now = self._clock.now()
        claimed: list[str] = []
        with self._store.locked() as store:
            free = self._config.max_parallel - self._in_flight
            due = sorted(
                (
                    callback
                    for callback in store.callbacks.values()
                    if callback.state == "OPEN"
                    and not callback.in_flight
                    and callback.next_attempt_at <= now
                ),
                key=lambda callback: callback.next_attempt_at,
            )
            for callback in due[: max(free, 0)]:
                callback.in_flight = True
                self._in_flight += 1
                claimed.append(callback.id)
        return claimed

    def _seconds_to_next_due(self) -> float:
        with self._store.locked() as store:
            pending = [
                callback.next_attempt_at
                for callback in store.callbacks.values()
                if callback.state == "OPEN" and not callback.in_flight
            ]
        if not pending:
            return _MAX_IDLE_SECONDS
        return self._clock.real_seconds_until(min(pending))

    def _deliver(self, callback_id: str) -> None:
        try:
            self._attempt(callback_id)
        except Exception:  # a worker must never die silently
            logger.exception("callback delivery failed unexpectedly id=%s", callback_id)
            with self._store.locked() as store:
                store.callbacks[callback_id].in_flight = False
        finally:
            with self._store.locked():
                self._in_flight -= 1
            self._clock.notify()

    def _attempt(self, callback_id: str) -> None:
        with self._store.locked() as store:
            callback = store.callbacks[callback_id]
            scheduled_at = callback.next_attempt_at
            attempt = callback.attempts + 1
        outcome = self.post(callback)
        answered_at = self._clock.now()
        with self._store.locked():
            callback.attempts = attempt
            callback.updated_at = answered_at
            callback.deliveries.append(
                Delivery(
                    scheduled_at=scheduled_at,
                    at=answered_at,
                    status=outcome.status,
                    message=outcome.message,
                    client_cert_sha256=outcome.client_cert_sha256,
                )
            )
            if outcome.succeeded:
                callback.state = "COMPLETED"
                verdict = "COMPLETED"
            else:
                callback.messages.append(outcome.message)
                delay = self._retry_delay(outcome, answered_at)
                next_at = (
                    answered_at + delay
                    if outcome.retry_after is not None
                    else scheduled_at + delay
                )
                if next_at > callback.deadline:
                    callback.state = "RESIGNATED"
                    verdict = f"RESIGNATED after {attempt} attempts"
                else:
                    callback.next_attempt_at = next_at
                    verdict = f"retry in {delay:.0f}s at {iso_timestamp(next_at)}"
            callback.in_flight = False
            duplicates = callback.duplicates_left if outcome.succeeded else 0
            callback.duplicates_left -= duplicates
        # A callback given up is what a receiver operator must notice.
        level = logging.WARNING if callback.state == "RESIGNATED" else logging.INFO
        logger.log(
            level,
            "callback %s sr=%s attempt=%d POST %s -> %s %s",
            callback.type,
            callback.signature_request_id,
            attempt,
            redact(callback.url),
            outcome.message,
            verdict,
        )
        for _ in range(duplicates):
            self._send_duplicate(callback)

    def _retry_delay(self, outcome: Outcome, answered_at: float) -> float:
        if outcome.retry_after is None:
            return self._config.retry_interval
        value = outcome.retry_after.strip()
        if value.isdigit():
            return max(_MIN_RETRY_AFTER, float(value))
        try:
            retry_at = email.utils.parsedate_to_datetime(value).timestamp()
        except (TypeError, ValueError):
            logger.info("ignoring invalid Retry-After value=%r", value[:64])
            outcome.retry_after = None
            return self._config.retry_interval
        return max(_MIN_RETRY_AFTER, retry_at - answered_at)

    def _send_duplicate(self, callback: Callback) -> None:
        sent_at = self._clock.now()
        outcome = self.post(callback)
        with self._store.locked():
            callback.deliveries.append(
                Delivery(
                    scheduled_at=sent_at,
                    at=self._clock.now(),
                    status=outcome.status,
                    message=outcome.message,
                    duplicate=True,
                    client_cert_sha256=outcome.client_cert_sha256,
                )
            )
        logger.info(
            "callback %s sr=%s duplicate POST %s -> %s",
            callback.type,
            callback.signature_request_id,
            redact(callback.url),
            outcome.message,
        )

    def post(self, callback: Callback) -> Outcome:
        """POST the callback once; connection errors become failed outcomes."""
        presented = self.certificates.current()
        outcome = self._post(callback, presented.context)
        outcome.client_cert_sha256 = presented.sha256
        return outcome

    def _post(self, callback: Callback, tls: ssl.SSLContext) -> Outcome:
        # NOTE: `html.escape` turns `'` into `&#x27;`, whose `#` starts a URL
        # fragment, so the rest of such a URL is not sent. Skribble's handling
        # of quotes in callback URLs is not documented.
        parts = urlsplit(callback.url)
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        body = self._body(callback)
        connection: http.client.HTTPConnection
        if parts.scheme == "https":
            connection = http.client.HTTPSConnection(
                parts.netloc, timeout=self._config.callback_timeout, context=tls
            )
        else:
            connection = http.client.HTTPConnection(
                parts.netloc, timeout=self._config.callback_timeout
            )
        headers = {"User-Agent": "skribble-simulator"}
        if body:
            headers["Content-Type"] = "application/json"
        try:
            connection.request("POST", target, body=body, headers=headers)
            response = connection.getresponse()
            response.read()
            status = response.status
            message = f"HTTP {status}" if 200 <= status < 300 else f"Failed {status}"
            return Outcome(status, message, response.getheader("Retry-After"))
        except ConnectionRefusedError:
            return Outcome(None, "Failed: connection refused")
        except TimeoutError:
            return Outcome(None, "Failed: timed out")
        except ssl.SSLError as exc:
            return Outcome(None, f"Failed: TLS error {exc.reason or exc}")
        except (OSError, http.client.HTTPException) as exc:
            return Outcome(None, f"Failed: {type(exc).__name__} {exc}")
        finally:
            connection.close()

    def _body(self, callback: Callback) -> bytes:
        # NOTE: Skribble does not document the callback body. This JSON is
        # invented so receivers can log it; they must rely on the URL alone.
        if self._config.callback_body == "empty":
            return b""
        document = {
            "signature_request_id": callback.signature_request_id,
            "type": callback.type,
        }
        return json.dumps(document).encode()
