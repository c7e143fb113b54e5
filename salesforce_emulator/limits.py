"""The org's API budget and Bulk counters, as ``/limits`` and ``Sforce-Limit-Info`` report them.

Counts are kept since the emulator started (or since the last reset), standing in for Salesforce's
rolling 24 hours.
"""

from __future__ import annotations

import threading
from collections import Counter

# Allocations of a Developer Edition org (wire notes section 4); DailyApiRequests comes from the config.
BULK_LIMITS = {
    "DailyBulkApiBatches": 15_000,
    "DailyBulkV2QueryFileStorageMB": 976_562,
    "DailyBulkV2QueryJobs": 10_000,
}
STATIC_LIMITS = {
    "ConcurrentAsyncGetReportInstances": 200,
    "ConcurrentSyncReportRuns": 20,
    "DailyAsyncApexExecutions": 250_000,
    "DailyDurableGenericStreamingApiEvents": 10_000,
    "DailyDurableStreamingApiEvents": 10_000,
    "DailyGenericStreamingApiEvents": 10_000,
    "DailyStandardVolumePlatformEvents": 10_000,
    "DailyStreamingApiEvents": 10_000,
    "DailyWorkflowEmails": 390,
    "DataStorageMB": 5,
    "FileStorageMB": 20,
    "HourlyAsyncReportRuns": 1_200,
    "HourlyDashboardRefreshes": 200,
    "HourlyDashboardResults": 5_000,
    "HourlyODataCallout": 10_000,
    "HourlySyncReportRuns": 500,
    "MassEmail": 10,
    "SingleEmail": 15,
}


class Limits:
    """API-call and Bulk counters; thread-safe (Bulk jobs may count from worker threads)."""

    def __init__(self, api_limit: int) -> None:
        self._lock = threading.Lock()
        self.configured_limit = api_limit
        self.api_limit = api_limit
        self.api_used = 0
        self.by_endpoint: Counter[str] = Counter()
        self.counters: Counter[str] = Counter()

    def count_api_call(self, endpoint: str) -> int:
        """Count one API call against DailyApiRequests; returns the new total."""
        with self._lock:
            self.api_used += 1
            self.by_endpoint[endpoint] += 1
            return self.api_used

    def over_limit(self) -> bool:
        return self.api_used >= self.api_limit

    def count(self, kind: str, amount: int = 1) -> None:
        """Count ``amount`` against a Bulk limit (e.g. DailyBulkApiBatches, DailyBulkV2QueryFileStorageMB)."""
        if kind not in BULK_LIMITS:
            raise KeyError(f"unknown limit {kind!r}; known: {', '.join(sorted(BULK_LIMITS))}")
        with self._lock:
            self.counters[kind] += amount

    def remaining(self, kind: str) -> int:
        return max(0, BULK_LIMITS[kind] - self.counters[kind])

    def limit_info_header(self) -> str:
        """The ``Sforce-Limit-Info`` header value."""
        return f"api-usage={self.api_used}/{self.api_limit}"

    def reset(self) -> None:
        """Zero every counter and restore the daily limit the emulator started with (an operator may have
        changed it), so a reset org is the same whatever ran before."""
        with self._lock:
            self.api_limit = self.configured_limit
            self.api_used = 0
            self.by_endpoint.clear()
            self.counters.clear()

    def report(self) -> dict[str, dict[str, int]]:
        """The ``/limits`` body: ``{"Name": {"Max": n, "Remaining": n}}``, alphabetical like the real answer."""
        entries: dict[str, dict[str, int]] = {
            "DailyApiRequests": {"Max": self.api_limit, "Remaining": max(0, self.api_limit - self.api_used)},
        }
        for kind, maximum in BULK_LIMITS.items():
            entries[kind] = {"Max": maximum, "Remaining": self.remaining(kind)}
        for kind, maximum in STATIC_LIMITS.items():
            entries[kind] = {"Max": maximum, "Remaining": maximum}
        return dict(sorted(entries.items()))
