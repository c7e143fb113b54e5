"""Asset checks of a Salesforce object: orphans, source parents, duplicate External IDs, rejects, reconciliation.

All checks of one object run together in one op so the source is extracted once and Salesforce is read with
one Bulk API 2.0 query per field set. The orphan and reconciliation checks are blocking: a Salesforce object
with orphans or lost rows must not feed the assets downstream of it. A source child row whose parent is
missing is a warning, not an error: the sync holds such a row back as a reject and sends it once the parent
arrives, so nothing is lost, but the row is worth a look.
"""


from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import dagster as dg

from passwork_assets.defs.asset_graph import object_key
from passwork_assets.defs.integrity import duplicates, orphans, reconcile, reject_rate
from passwork_assets.defs.key_sets import FlowKeys, flow_keys, salesforce_frame
from passwork_assets.defs.resources import PassworkSyncResource, SalesforceResource
from passwork_assets.defs.source_stats import read_stats
from passwork_assets.mapping.models import MappingSet
from passwork_assets.mapping.models import FlowMapping
from passwork_assets.state.store import StateStore

SAMPLE = 20

NO_ORPHANS = "no_orphans"
SOURCE_PARENTS_EXIST = "source_parents_exist"
NO_DUPLICATE_EXTERNAL_IDS = "no_duplicate_external_ids"
REJECTS_BELOW_THRESHOLD = "rejects_below_threshold"
RECONCILIATION = "reconciliation"


@dataclass(frozen=True)
class CheckSettings:
    """Thresholds of the checks, from the component's YAML."""

    max_reject_rate: float = 0.01


def check_specs(object_name: str, flows: list[FlowMapping]) -> list[dg.AssetCheckSpec]:
    """The checks an object gets: every object is checked for duplicates, rejects and reconciliation; objects
    with parent links also for orphans."""
    key = object_key(object_name)
    has_parents = any(flow.parent_links for flow in flows)
    specs = []
    if has_parents:
        specs.append(dg.AssetCheckSpec(NO_ORPHANS, asset=key, blocking=True,
                                       description=f"Every {object_name} in Salesforce points at an existing parent."))
        specs.append(dg.AssetCheckSpec(SOURCE_PARENTS_EXIST, asset=key,
                                       description=f"Every source row of {object_name} names a parent the source has."))
    specs.append(dg.AssetCheckSpec(NO_DUPLICATE_EXTERNAL_IDS, asset=key,
                                   description="No External ID value occurs twice in one flow's source."))
    specs.append(dg.AssetCheckSpec(REJECTS_BELOW_THRESHOLD, asset=key,
                                   description="Rows held back as rejects stay below the configured share."))
    specs.append(dg.AssetCheckSpec(RECONCILIATION, asset=key, blocking=True,
                                   description="Salesforce holds exactly the source's keys, except rows held "
                                               "back as rejects with a reason (read with a Bulk 2.0 query)."))
    return specs


def _sample(items: list[str] | dict[str, object]) -> dg.MetadataValue:
    listed = list(items.items())[:SAMPLE] if isinstance(items, dict) else items[:SAMPLE]
    return dg.MetadataValue.json([list(x) if isinstance(x, tuple) else x for x in listed])


def evaluate_object_checks(
    object_name: str,
    mappings: MappingSet,
    *,
    salesforce: SalesforceResource,
    state_url: str,
    settings: CheckSettings,
    selected: set[str] | None = None,
) -> Iterator[dg.AssetCheckResult]:
    """Read the source and Salesforce once and yield one result per check of the object."""
    flows = mappings.flows_for_object(object_name)
    key = object_key(object_name)
    wanted = {spec.name for spec in check_specs(object_name, flows)} if selected is None else selected
    client = salesforce.client()
    state = StateStore(state_url)
    state.migrate()
    # The source is extracted only when a selected check compares keys.
    key_checks = {SOURCE_PARENTS_EXIST, NO_DUPLICATE_EXTERNAL_IDS, RECONCILIATION}
    per_flow: dict[str, FlowKeys] = (
        {flow.flow: flow_keys(mappings, flow, client) for flow in flows} if wanted & key_checks else {}
    )
    rejected = {flow.flow: {str(r["key"]) for r in state.rejects(flow.flow) if r.get("key")} for flow in flows}

    def result(name: str, passed: bool, metadata: Mapping[str, object],
               severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.ERROR) -> dg.AssetCheckResult:
        return dg.AssetCheckResult(check_name=name, asset_key=key, passed=passed, severity=severity,
                                   metadata=dict(metadata))

    if NO_ORPHANS in wanted:
        found: dict[str, dict[str, str | None]] = {}
        for lookup, parent in sorted({(link.written_field, link.parent_object) for f in flows for link in f.parent_links}):
            assert parent is not None
            external_id = flows[0].target.external_id
            children = salesforce_frame(client, object_name, ["Id", external_id, lookup])
            parent_ids = salesforce_frame(client, parent, ["Id"]).get_column("Id").to_list()
            child_refs = {(row[external_id] or row["Id"]): row[lookup] for row in children.iter_rows(named=True)}
            found[f"{lookup} -> {parent}"] = orphans(child_refs, parent_ids)
        total = sum(len(v) for v in found.values())
        yield result(NO_ORPHANS, total == 0, {
            "orphans": dg.MetadataValue.int(total),
            **{f"orphans {link}": _sample(dict(v)) for link, v in found.items() if v},
        })

    if SOURCE_PARENTS_EXIST in wanted:
        missing: dict[str, dict[str, str | None]] = {}
        for flow in flows:
            for link in flow.parent_links:
                assert link.parent_object is not None
                parent_keys: set[str] = set()
                for parent_flow in mappings.flows_for_object(link.parent_object):
                    if parent_flow.target.external_id.lower() == (link.parent_external_id or "").lower():
                        parent_keys |= set(flow_keys(mappings, parent_flow, client).key_counts)
                refs = {child: ref for child, ref in per_flow[flow.flow].links.get(link.target, {}).items() if ref}
                gone = orphans(refs, parent_keys)
                if gone:
                    missing[f"{flow.flow}: {link.target}"] = gone
        total = sum(len(v) for v in missing.values())
        yield result(SOURCE_PARENTS_EXIST, total == 0, {
            "rows_without_parent": dg.MetadataValue.int(total),
            **{k: _sample(dict(v)) for k, v in missing.items()},
        }, severity=dg.AssetCheckSeverity.WARN)

    if NO_DUPLICATE_EXTERNAL_IDS in wanted:
        dupes = {flow: duplicates(keys.key_counts.elements()) for flow, keys in per_flow.items()}
        missing_ids = {flow: keys.missing_keys for flow, keys in per_flow.items()}
        total = sum(len(v) for v in dupes.values())
        yield result(NO_DUPLICATE_EXTERNAL_IDS, total == 0, {
            "duplicate_keys": dg.MetadataValue.int(total),
            "rows_without_external_id": dg.MetadataValue.json(missing_ids),
            **{f"{flow} duplicates": _sample(dict(v)) for flow, v in dupes.items() if v},
        })

    if REJECTS_BELOW_THRESHOLD in wanted:
        rows = sum(read_stats(mappings.connections[f.source.connection], f).rows for f in flows)
        held = sum(len(keys) for keys in rejected.values())
        rate = reject_rate(held, rows)
        yield result(REJECTS_BELOW_THRESHOLD, rate <= settings.max_reject_rate, {
            "rejects": dg.MetadataValue.int(held),
            "source_rows": dg.MetadataValue.int(rows),
            "reject_rate": dg.MetadataValue.float(round(rate, 6)),
            "max_reject_rate": dg.MetadataValue.float(settings.max_reject_rate),
        })

    if RECONCILIATION in wanted:
        passed = True
        meta: dict[str, object] = {}
        for external_id in sorted({f.target.external_id for f in flows}):
            feeding = [f for f in flows if f.target.external_id == external_id]
            source_keys = {k for f in feeding for k in per_flow[f.flow].key_counts}
            held = {k for f in feeding for k in rejected[f.flow]}
            sf_keys = [k for k in salesforce_frame(client, object_name, [external_id]).get_column(external_id).to_list()
                       if k]
            outcome = reconcile(source_keys, sf_keys, held)
            passed = passed and outcome.passed
            meta[f"{external_id} source_keys"] = dg.MetadataValue.int(outcome.source)
            meta[f"{external_id} salesforce_keys"] = dg.MetadataValue.int(outcome.salesforce)
            meta[f"{external_id} held_as_rejects"] = dg.MetadataValue.int(outcome.rejected_missing)
            meta[f"{external_id} missing_in_salesforce"] = _sample(outcome.missing)
            meta[f"{external_id} not_in_source"] = _sample(outcome.extra)
            meta[f"{external_id} counts_equal"] = dg.MetadataValue.bool(
                outcome.salesforce == outcome.source - outcome.rejected_missing)
        yield result(RECONCILIATION, passed, meta)


def build_object_checks(object_name: str, mappings: MappingSet, settings: CheckSettings) -> dg.AssetChecksDefinition:
    """One op that evaluates every check of `object_name` (any subset can be selected)."""
    specs = check_specs(object_name, mappings.flows_for_object(object_name))

    @dg.multi_asset_check(specs=specs, name=f"{object_name.lower()}_checks", can_subset=True)
    def _checks(context: dg.AssetCheckExecutionContext, salesforce: SalesforceResource,
                passwork_sync: PassworkSyncResource) -> Iterator[dg.AssetCheckResult]:
        selected = {k.name for k in context.selected_asset_check_keys}
        yield from evaluate_object_checks(object_name, mappings, salesforce=salesforce,
                                          state_url=passwork_sync.state_url, settings=settings, selected=selected)

    return _checks
