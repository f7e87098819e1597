"""Simulated time: real time stretched by a scale, plus manual jumps."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime


class SimClock:
    """Thread-safe clock whose epoch seconds run `scale` times faster than real.

    Callback schedules and the timestamps the API returns use this clock, so a
    test can pass two simulated hours in seconds. Token expiry does not: it
    uses real time because clients check `exp` against their own clock.
    """

    def __init__(self, scale: float = 1.0) -> None:
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._scale = scale
        self._base_real = time.monotonic()
        self._base_sim = time.time()

    def now(self) -> float:
        """Return simulated epoch seconds."""
        with self._lock:
            return self._now_locked()

    def _now_locked(self) -> float:
        return self._base_sim + (time.monotonic() - self._base_real) * self._scale

    @property
    def scale(self) -> float:
        with self._lock:
            return self._scale

    def set_scale(self, scale: float) -> None:
        """Change the scale from now on, keeping the current simulated time."""
        if scale <= 0:
            raise ValueError(f"time scale {scale} must be greater than 0")
        with self._lock:
            self._base_sim = self._now_locked()
            self._base_real = time.monotonic()
            self._scale = scale
            self._changed.notify_all()

    def advance(self, seconds: float) -> float:
        """Jump simulated time forward and return the new simulated time."""
        if seconds < 0:
            raise ValueError(f"cannot move the clock back by {seconds} s")
        with self._lock:
            self._base_sim += seconds
            self._changed.notify_all()
            return self._now_locked()

    def real_seconds_until(self, sim_time: float) -> float:
        """Return the real seconds until simulated time reaches `sim_time`."""
        with self._lock:
            return max(0.0, (sim_time - self._now_locked()) / self._scale)

    def wait(self, real_timeout: float) -> None:
        """Sleep up to `real_timeout` real seconds, waking early if time jumps."""
        with self._changed:
            self._changed.wait(real_timeout)

    def notify(self) -> None:
        """Wake every thread in `wait`, for example when new work arrives."""
        with self._changed:
            self._changed.notify_all()


def iso_timestamp(epoch_seconds: float) -> str:
    """Format epoch seconds as Skribble does: UTC with milliseconds and `Z`."""
    moment = datetime.fromtimestamp(epoch_seconds, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
