"""What one flow's run did, in the figures auditors and the CLI read."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class FlowRunResult:
    """Counts, SQL, jobs and rejects of one flow's run. `status` is "ok" only when every row was written or
    kept as a reject with its reason."""

    flow: str
    object: str
    mapping_file: str
    mapping_hash: str
    sql: str = ""
    sql_params: dict[str, Any] = field(default_factory=dict)
    extracted: int = 0
    changed: int = 0
    sent: int = 0
    created: int = 0
    updated: int = 0
    rejected: int = 0
    retried_rejects: int = 0
    api_calls_used: int = 0
    api_remaining: int | None = None
    bulk_job_ids: list[str] = field(default_factory=list)
    load_modes: list[str] = field(default_factory=list)
    duration_s: float = 0.0
    rejects_preview: list[dict[str, Any]] = field(default_factory=list)
    cursor_before: str | None = None
    cursor_after: str | None = None
    dry_run: bool = False
    status: str = "ok"
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (for `passwork sync --json` and Dagster metadata)."""
        data = asdict(self)
        data["sql_params"] = {k: str(v) for k, v in self.sql_params.items()}
        return data
