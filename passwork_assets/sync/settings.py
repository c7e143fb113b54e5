"""Settings of a sync run, read from the environment (`PASSWORK_*`)."""

from __future__ import annotations

import os
from collections.abc import Mapping

from pydantic import BaseModel, Field


class SyncSettingsError(ValueError):
    """A sync setting is missing or malformed; the message names the variable."""


class SyncSettings(BaseModel):
    """Knobs of a run; the defaults suit production, tests shorten the waits."""

    state_url: str = Field(description="PostgreSQL URL of the state database (schema `passwork`)")
    api_reserve: int = Field(1000, description="stop before the org's daily API calls left fall below this")
    chunk_rows: int = Field(200_000, description="rows per extraction chunk; bounds memory")
    bulk_poll_s: float = Field(2.0, description="longest wait between Bulk job status polls")
    retry_base_delay_s: float = Field(0.5, description="first backoff delay for retried rows and requests")
    lock_retries: int = Field(4, description="rounds of retrying rows that hit UNABLE_TO_LOCK_ROW or were unprocessed")
    job_timeout_s: float = Field(3600.0, description="give up waiting for one Bulk job after this long")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> "SyncSettings":
        """Read PASSWORK_STATE_URL (required), PASSWORK_API_RESERVE and PASSWORK_CHUNK_ROWS."""
        env = os.environ if environ is None else environ
        state_url = env.get("PASSWORK_STATE_URL")
        if not state_url and "state_url" not in overrides:
            raise SyncSettingsError(
                "PASSWORK_STATE_URL is not set: Passwork keeps cursors, row hashes and rejects in a PostgreSQL "
                "database; set it to a URL such as postgresql://user@host:5432/passwork"
            )
        values: dict[str, object] = {"state_url": state_url}
        for name, key in (("PASSWORK_API_RESERVE", "api_reserve"), ("PASSWORK_CHUNK_ROWS", "chunk_rows")):
            raw = env.get(name)
            if raw:
                if not raw.isdigit():
                    raise SyncSettingsError(f"{name} must be a whole number, got {raw!r}")
                values[key] = int(raw)
        values.update(overrides)
        return cls(**values)
