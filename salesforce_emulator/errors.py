"""Salesforce error values: request-level errors (an HTTP answer) and per-record errors (a result entry).

Messages follow real Salesforce answers (see the wire notes, section 2.7); the helpers here are the one
place each message text is written.
"""

from __future__ import annotations

from dataclasses import dataclass, field


class SalesforceError(Exception):
    """A request-level error, answered as ``[{"message": ..., "errorCode": ..., ("fields": [...])}]``."""

    def __init__(self, status: int, error_code: str, message: str, fields: list[str] | None = None) -> None:
        super().__init__(f"{error_code}: {message}")
        self.status = status
        self.error_code = error_code
        self.message = message
        self.fields = fields

    def body(self) -> list[dict[str, object]]:
        """The JSON body Salesforce sends for this error (key order as recorded: message, errorCode, fields)."""
        entry: dict[str, object] = {"message": self.message, "errorCode": self.error_code}
        if self.fields is not None:
            entry["fields"] = list(self.fields)
        return [entry]


@dataclass
class RecordError:
    """A per-record error, as found in SaveResult/UpsertResult ``errors`` and Bulk ``sf__Error``."""

    status_code: str
    message: str
    fields: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        """The Collections shape: ``{"statusCode", "message", "fields"}``."""
        return {"statusCode": self.status_code, "message": self.message, "fields": list(self.fields)}

    def to_bulk(self) -> str:
        """The Bulk 2.0 ``sf__Error`` shape: ``CODE:message:field,field --`` (``CODE:message:--`` without fields)."""
        return f"{self.status_code}:{self.message}:{','.join(self.fields)} --" if self.fields else (
            f"{self.status_code}:{self.message}:--"
        )

    def to_request_error(self, status: int = 400) -> SalesforceError:
        """The same error answered for a single-record REST call.

        INVALID_FIELD without fields is answered without a ``fields`` key, as recorded for unknown columns.
        """
        fields = None if self.status_code == "INVALID_FIELD" and not self.fields else list(self.fields)
        return SalesforceError(status, self.status_code, self.message, fields)


# Request-level errors whose text is fixed.

def not_found() -> SalesforceError:
    """404 for an unknown resource, sObject, record or API version."""
    return SalesforceError(404, "NOT_FOUND", "The requested resource does not exist")


def no_such_column(obj: str, name: str) -> SalesforceError:
    """400 INVALID_FIELD for a field the object does not have (recorded without a ``fields`` key)."""
    return SalesforceError(400, "INVALID_FIELD", f"No such column '{name}' on sobject of type {obj}")


def external_id_field_missing(name: str) -> SalesforceError:
    """404 for an External ID field in a URL that the object does not have (or that is not an idLookup field)."""
    return SalesforceError(404, "NOT_FOUND", f"Provided external ID field does not exist or is not accessible: {name}")


def invalid_session() -> SalesforceError:
    return SalesforceError(401, "INVALID_SESSION_ID", "Session expired or invalid")


def request_limit_exceeded() -> SalesforceError:
    return SalesforceError(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")


def entity_is_deleted() -> SalesforceError:
    return SalesforceError(404, "ENTITY_IS_DELETED", "entity is deleted", [])


def json_parser_error(message: str) -> SalesforceError:
    return SalesforceError(400, "JSON_PARSER_ERROR", message)


ALL_OR_NONE_ROLLED_BACK = RecordError(
    "ALL_OR_NONE_OPERATION_ROLLED_BACK",
    "Record rolled back because not all records were valid and the request was using AllOrNone header",
    [],
)
