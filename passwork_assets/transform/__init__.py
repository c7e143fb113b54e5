"""Source rows to Salesforce records: field expressions, type coercion, pre-validation against the describe."""

from passwork_assets.transform.result import Reject, TransformResult

__all__ = ["Reject", "TransformResult"]
