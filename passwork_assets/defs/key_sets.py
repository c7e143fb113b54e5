"""Key sets the checks compare: the source's External IDs and parent links, and Salesforce's, read in bulk.

The source side runs each flow's full extraction through the same transform the sync uses, so a key here is
exactly the External ID the sync would write (including keys built by expressions). The Salesforce side reads
with a Bulk API 2.0 query, which costs a handful of API calls whatever the object's size.
"""

from __future__ import annotations

import io
from collections import Counter
from dataclasses import dataclass, field

import polars as pl

from passwork_assets.mapping.models import MappingSet
from passwork_assets.mapping.models import FlowMapping
from passwork_assets.salesforce.client import SalesforceClient
from passwork_assets.salesforce.loader import KEY_COLUMN
from passwork_assets.source.connect import open_connection
from passwork_assets.source.query import build_extract_query


@dataclass
class FlowKeys:
    """What one flow's source holds, keyed the way Salesforce will be."""

    flow: str
    rows: int = 0
    key_counts: Counter[str] = field(default_factory=Counter)
    """Every non-empty External ID value, with how many source rows carry it."""
    links: dict[str, dict[str, str | None]] = field(default_factory=dict)
    """Parent link header (`Contract__r.ContractKey__c`) -> child key -> parent key."""
    rejected_keys: set[str] = field(default_factory=set)
    """Keys the transform refused (bad values), so the sync holds them back with a reason."""
    missing_keys: int = 0
    """Rows without an External ID at all."""


def flow_keys(mappings: MappingSet, flow: FlowMapping, client: SalesforceClient) -> FlowKeys:
    """Extract all of a flow's rows and collect its keys, parent links and pre-validation rejects."""
    from passwork_assets.source.extract import stream_frames
    from passwork_assets.transform import build_records

    describe = client.describe(flow.target.object)
    parents = {link.parent_object: client.describe(link.parent_object) for link in flow.parent_links
               if link.parent_object}
    link_columns = [link.target for link in flow.parent_links]
    result = FlowKeys(flow=flow.flow, links={c: {} for c in link_columns})
    connection = mappings.connections[flow.source.connection]
    with open_connection(connection) as conn:
        for frame in stream_frames(conn, build_extract_query(flow), statement_timeout_s=connection.statement_timeout_s):
            result.rows += frame.height
            transformed = build_records(frame, flow, describe, parents)
            records = transformed.records
            result.key_counts.update(records.get_column(KEY_COLUMN).to_list())
            for column in link_columns:
                if column in records.columns:
                    result.links[column].update(zip(records.get_column(KEY_COLUMN).to_list(),
                                                    records.get_column(column).to_list()))
            for reject in transformed.rejects:
                if reject.key:
                    # A duplicate is refused by the transform but is still a source row with that key.
                    result.key_counts[reject.key] += 1
                    result.rejected_keys.add(reject.key)
                else:
                    result.missing_keys += 1
    return result


def salesforce_frame(client: SalesforceClient, object_name: str, fields: list[str]) -> pl.DataFrame:
    """`SELECT <fields> FROM <object_name>` read with a Bulk API 2.0 query, every column as text."""
    soql = f"SELECT {', '.join(fields)} FROM {object_name}"
    pages = [pl.read_csv(io.StringIO(page), infer_schema=False) for page in client.bulk_query_csv(object_name, soql)
             if page.strip()]
    if not pages:
        return pl.DataFrame(schema={f: pl.String for f in fields})
    return pl.concat(pages, how="vertical")
