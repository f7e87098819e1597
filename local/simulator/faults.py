"""Faults a test can switch on through `/_sim/faults`."""

from __future__ import annotations

import threading
from dataclasses import asdict, dataclass, fields
from typing import Any

COUNTERS = ("login_429", "api_429", "api_503", "malformed", "acknowledge_elsewhere")


@dataclass
class FaultSettings:
    """Current faults; counters count down by one per affected request."""

    # Next n logins get 429 with `Retry-After: retry_after`.
    login_429: int = 0
    # Next n authenticated /v2 requests get 429 with `Retry-After`.
    api_429: int = 0
    # Next n authenticated /v2 requests get 503 with `Retry-After`.
    api_503: int = 0
    retry_after: int = 60
    # Real milliseconds to wait before responding to any /v2 request.
    slow_ms: int = 0
    # Next n JSON responses of /v2 carry a body that is not valid JSON.
    malformed: int = 0
    callbacks_get_405: bool = False
    # Next n new callbacks are marked COMPLETED without being sent, as if an
    # endpoint other than the receiver had returned 2xx.
    acknowledge_elsewhere: int = 0


class Faults:
    """Thread-safe fault switches."""

    def __init__(self, callbacks_get_405: bool = False) -> None:
        self._lock = threading.Lock()
        self._initial_get_405 = callbacks_get_405
        self._settings = FaultSettings(callbacks_get_405=callbacks_get_405)

    def update(self, changes: dict[str, Any]) -> dict[str, Any]:
        """Apply `changes` (field name to value) and return all settings.

        Raises ValueError naming the first unknown field or invalid value.
        """
        known = {item.name: item.type for item in fields(FaultSettings)}
        for name, value in changes.items():
            if name not in known:
                raise ValueError(
                    f"unknown fault {name!r}: expected one of {', '.join(known)}"
                )
            if name == "callbacks_get_405":
                if not isinstance(value, bool):
                    raise ValueError(f"fault {name!r} must be true or false")
            elif isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"fault {name!r} must be an integer >= 0")
        with self._lock:
            for name, value in changes.items():
                setattr(self._settings, name, value)
            return asdict(self._settings)

    def reset(self) -> dict[str, Any]:
        """Restore the settings the simulator started with."""
        with self._lock:
            self._settings = FaultSettings(callbacks_get_405=self._initial_get_405)
            return asdict(self._settings)

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return asdict(self._settings)

    def take(self, counter: str) -> bool:
        """Use up one unit of `counter`; return True if the fault applies."""
        if counter not in COUNTERS:
            raise KeyError(counter)
        with self._lock:
            left: int = getattr(self._settings, counter)
            if left <= 0:
                return False
            setattr(self._settings, counter, left - 1)
            return True

    @property
    def retry_after(self) -> int:
        with self._lock:
            return self._settings.retry_after

    @property
    def slow_ms(self) -> int:
        with self._lock:
            return self._settings.slow_ms

    @property
    def callbacks_get_405(self) -> bool:
        with self._lock:
            return self._settings.callbacks_get_405
