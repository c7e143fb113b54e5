"""The asset of one Salesforce object: runs every flow that feeds it through the sync engine.

The engine (`passwork_assets.sync.engine.run_flows`) is the same one `passwork sync` runs. A materialization
succeeds only when every flow ended "ok" and every row sent came back written or rejected with a reason;
otherwise it fails, with the same audit metadata attached to the failure.
"""


from pathlib import Path

import dagster as dg

from passwork_assets.defs.resources import PassworkSyncResource, SalesforceResource
from passwork_assets.defs.run_metadata import run_metadata, run_problems
from passwork_assets.mapping.loader import load_mappings


class SyncRunConfig(dg.Config):
    """Run options of an object's sync."""

    full: bool = False
    """Re-read every source row and re-send every row, ignoring cursors and row hashes."""


def pool_for(object_name: str) -> str:
    """The concurrency pool of an object's asset: at most one run of its flows at a time (limit 1 in
    dagster.yaml); different objects (Usage__c and Cost__c) use different pools and run side by side."""
    return f"passwork_sync_{object_name}"


def build_object_asset(spec: dg.AssetSpec, object_name: str, mappings_dir: Path) -> dg.AssetsDefinition:
    """The asset that syncs `object_name` from all of its flows."""

    @dg.multi_asset(specs=[spec], name=f"sync_{object_name.lower()}", pool=pool_for(object_name))
    def _sync(context: dg.AssetExecutionContext, config: SyncRunConfig, salesforce: SalesforceResource,
              passwork_sync: PassworkSyncResource) -> dg.MaterializeResult:
        from passwork_assets.sync.engine import run_flows  # the engine's imports are only needed in a run

        # The mappings are read again at run time so that the SQL and hash recorded are those that ran.
        mappings = load_mappings(mappings_dir)
        flows = [flow.flow for flow in mappings.flows_for_object(object_name)]
        if not flows:
            raise dg.Failure(f"no flow in {mappings_dir} targets {object_name} any more; reload the code location")
        context.log.info("syncing %s from flows %s (full=%s)", object_name, ", ".join(flows), config.full)
        results = run_flows(mappings, flows=flows, full=config.full, settings=passwork_sync.sync_settings(),
                            client=salesforce.client())
        metadata = run_metadata(results)
        problems = run_problems(results)
        if problems:
            raise dg.Failure(
                description=f"{object_name} was not fully synced: " + "; ".join(problems),
                metadata=metadata,
            )
        return dg.MaterializeResult(metadata=metadata)

    return _sync
