"""Fault injection, deterministic under a seed: failed and dropped calls, latency, row locks, failing Bulk jobs.

Each kind of fault draws from its own seeded random stream, so enabling one kind does not shift the
sequence of another and a test that sets a seed sees the same faults on every run.
"""

from __future__ import annotations

import random
import threading

from pydantic import BaseModel, ConfigDict, Field


class FaultSettings(BaseModel):
    """What the operator asked for (``POST /__emulator/faults``); every share is between 0 and 1."""

    model_config = ConfigDict(extra="forbid")

    seed: int = 0
    error_rate: float = Field(0.0, ge=0, le=1, description="share of API calls answered with an HTTP error")
    error_statuses: list[int] = Field(default_factory=lambda: [500, 503])
    drop_rate: float = Field(0.0, ge=0, le=1, description="share of API calls whose connection is dropped")
    latency_ms: int = Field(0, ge=0, le=60_000, description="delay added to every API call")
    lock_rate: float = Field(0.0, ge=0, le=1, description="share of written records failing UNABLE_TO_LOCK_ROW")
    lock_objects: list[str] | None = Field(None, description="objects the lock faults apply to (None: all)")
    failing_bulk_jobs: int = Field(0, ge=0, description="how many of the next Bulk jobs fail")


class Faults:
    """The live fault state shared by the middleware, the write path and the Bulk jobs."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.configure(FaultSettings())

    def configure(self, settings: FaultSettings) -> None:
        """Replace the settings and restart every random stream from the seed."""
        with self._lock:
            self.settings = settings
            self._request_rng = random.Random(f"{settings.seed}:request")
            self._lock_rng = random.Random(f"{settings.seed}:lock")
            self._failing_bulk_jobs = settings.failing_bulk_jobs
            self._lock_objects = {o.lower() for o in settings.lock_objects} if settings.lock_objects else None

    def request_fault(self) -> tuple[str, int] | None:
        """``("drop", 0)``, ``("error", status)`` or None for the next API call."""
        s = self.settings
        if not s.error_rate and not s.drop_rate:
            return None
        with self._lock:
            draw = self._request_rng.random()
            if draw < s.drop_rate:
                return ("drop", 0)
            if draw < s.drop_rate + s.error_rate:
                return ("error", self._request_rng.choice(s.error_statuses or [500]))
        return None

    def latency_seconds(self) -> float:
        return self.settings.latency_ms / 1000.0

    def lock_fault_active(self, obj: str) -> bool:
        """Whether lock faults can hit records of ``obj`` (lets the write path skip the draw when not)."""
        return self.settings.lock_rate > 0 and (self._lock_objects is None or obj.lower() in self._lock_objects)

    def lock_row(self) -> bool:
        """Whether the next record write fails with UNABLE_TO_LOCK_ROW."""
        with self._lock:
            return self._lock_rng.random() < self.settings.lock_rate

    def bulk_job_should_fail(self) -> bool:
        """Whether the Bulk job being processed now fails as a whole (consumes one configured failure)."""
        with self._lock:
            if self._failing_bulk_jobs > 0:
                self._failing_bulk_jobs -= 1
                return True
            return False

    def snapshot(self) -> dict[str, object]:
        data = self.settings.model_dump()
        data["failing_bulk_jobs_left"] = self._failing_bulk_jobs
        return data
