"""Source rows to Salesforce records: field expressions, type coercion, pre-validation against the describe."""

from passwork_assets.transform.field_values import TransformError
from passwork_assets.transform.records import CLEAR, HASH_COLUMN, KEY_COLUMN, build_records
from passwork_assets.transform.result import Reject, TransformResult

__all__ = ["CLEAR", "HASH_COLUMN", "KEY_COLUMN", "Reject", "TransformError", "TransformResult", "build_records"]
