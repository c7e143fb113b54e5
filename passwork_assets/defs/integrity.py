"""The facts the asset checks judge, as pure functions over key sets: orphans, duplicates, reconciliation.

The checks read the source and Salesforce, then ask these functions; keeping the judgement here makes each
rule testable on a handful of keys and keeps the checks' I/O separate from their logic.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Reconciliation:
    """Salesforce's keys of one object against the source's.

    A source key missing from Salesforce is acceptable only while it is held as a reject with its reason;
    any other difference is a lost row (missing) or a row the source no longer has (extra).
    """

    source: int
    salesforce: int
    rejected_missing: int
    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.missing and not self.extra


def reconcile(source_keys: Iterable[str], salesforce_keys: Iterable[str], rejected_keys: Iterable[str]) -> Reconciliation:
    """Compare key sets (see `Reconciliation`); the lists are sorted for stable reports."""
    source = set(source_keys)
    salesforce = set(salesforce_keys)
    rejected = set(rejected_keys)
    absent = source - salesforce
    return Reconciliation(
        source=len(source),
        salesforce=len(salesforce),
        rejected_missing=len(absent & rejected),
        missing=sorted(absent - rejected),
        extra=sorted(salesforce - source),
    )


def duplicates(keys: Iterable[str]) -> dict[str, int]:
    """Keys that occur more than once, with their counts."""
    return {key: n for key, n in sorted(Counter(keys).items()) if n > 1}


def orphans(child_parent: Mapping[str, str | None], parent_ids: Iterable[str]) -> dict[str, str | None]:
    """Children whose parent reference is empty or names no existing parent: child key -> reference."""
    existing = set(parent_ids)
    return {child: ref for child, ref in sorted(child_parent.items()) if not ref or ref not in existing}


def reject_rate(rejected: int, total: int) -> float:
    """Rejected rows as a fraction of the rows considered (0 when there were none)."""
    return rejected / total if total else 0.0
