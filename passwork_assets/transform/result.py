"""What a transform hands to the load: the Salesforce-ready rows and the rows held back with their reasons."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import polars as pl


@dataclass
class Reject:
    """A source row that is not sent (or that Salesforce refused), with the reason in Salesforce's terms.

    `code` is a Salesforce status code where one fits (REQUIRED_FIELD_MISSING, STRING_TOO_LONG, ...), `field`
    and `value` point at the offending cell, `row` is the source row as read, so the user can find it.
    """

    flow: str
    key: str | None
    code: str
    message: str
    field: str | None
    value: str | None
    row: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TransformResult:
    """`records`: all-Utf8 columns named as the Bulk 2.0 CSV header wants, plus `__key` and `__hash`."""

    records: pl.DataFrame
    rejects: list[Reject] = field(default_factory=list)
