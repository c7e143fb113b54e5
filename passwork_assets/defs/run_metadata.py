"""What a Salesforce object's materialization records for auditors, and whether the run may count as a success.

Per flow: the SQL that ran (with its bound parameters), the mapping file and its content hash, rows
extracted / changed / sent / created / updated / rejected, API calls used and left, Bulk job ids, duration.
Across flows: totals and a preview table of the rejects with their reasons.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import dagster as dg

from passwork_assets.mapping.issues import display_path
from passwork_assets.sync.results import FlowRunResult

COUNTS = ("extracted", "changed", "sent", "created", "updated", "rejected")
REJECT_COLUMNS = ("flow", "key", "code", "message", "field", "value")
PREVIEW_ROWS = 50


def unaccounted_rows(result: FlowRunResult) -> int:
    """Rows sent that came back neither written nor rejected (must be zero for a successful run)."""
    return max(0, result.sent - result.created - result.updated - result.rejected)


def run_problems(results: Sequence[FlowRunResult]) -> list[str]:
    """Why these flow runs must not count as a success (empty when every row is accounted for)."""
    problems: list[str] = []
    for r in results:
        if r.status != "ok":
            problems.append(f"flow {r.flow} {r.status}: {r.error or 'no error message'}")
        lost = unaccounted_rows(r)
        if lost:
            problems.append(
                f"flow {r.flow}: {lost} of {r.sent} rows sent were neither written nor rejected "
                f"(created {r.created}, updated {r.updated}, rejected {r.rejected})"
            )
    return problems


def rejects_table(results: Sequence[FlowRunResult], limit: int = PREVIEW_ROWS) -> dg.TableMetadataValue:
    """The first rejects of every flow with their reasons, as a table the UI shows."""
    rows: list[dg.TableRecord] = []
    for r in results:
        for reject in r.rejects_preview:
            if len(rows) >= limit:
                break
            rows.append(dg.TableRecord({
                "flow": r.flow,
                **{c: _text(reject.get(c)) for c in REJECT_COLUMNS if c != "flow"},
            }))
    schema = dg.TableSchema(columns=[dg.TableColumn(c, "string") for c in REJECT_COLUMNS])
    return dg.MetadataValue.table(records=rows, schema=schema)


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def run_metadata(results: Sequence[FlowRunResult]) -> dict[str, Any]:
    """The materialization metadata of one object's run (see the module docstring)."""
    meta: dict[str, Any] = {}
    for count in COUNTS:
        meta[f"rows_{count}"] = dg.MetadataValue.int(sum(getattr(r, count) for r in results))
    meta["dagster/row_count"] = dg.MetadataValue.int(sum(r.extracted for r in results))
    meta["api_calls_used"] = dg.MetadataValue.int(sum(r.api_calls_used for r in results))
    remaining = [r.api_remaining for r in results if r.api_remaining is not None]
    if remaining:
        meta["api_calls_left"] = dg.MetadataValue.int(min(remaining))
    meta["bulk_job_ids"] = dg.MetadataValue.json([job for r in results for job in r.bulk_job_ids])
    meta["duration_s"] = dg.MetadataValue.float(round(sum(r.duration_s for r in results), 3))
    meta["rejects"] = rejects_table(results)
    for r in results:
        prefix = f"{r.flow}/"
        meta[prefix + "status"] = dg.MetadataValue.text(r.status if not r.error else f"{r.status}: {r.error}")
        meta[prefix + "mapping_file"] = dg.MetadataValue.path(display_path(r.mapping_file))
        meta[prefix + "mapping_hash"] = dg.MetadataValue.text(r.mapping_hash)
        params = "".join(f"\n-- {name} = {value}" for name, value in r.to_dict()["sql_params"].items())
        meta[prefix + "sql"] = dg.MetadataValue.md(f"```sql\n{r.sql}{params}\n```")
        meta[prefix + "counts"] = dg.MetadataValue.json({c: getattr(r, c) for c in COUNTS})
        meta[prefix + "bulk_job_ids"] = dg.MetadataValue.json(list(r.bulk_job_ids))
        meta[prefix + "cursor"] = dg.MetadataValue.json({"before": r.cursor_before, "after": r.cursor_after})
        meta[prefix + "duration_s"] = dg.MetadataValue.float(round(r.duration_s, 3))
    return meta
