"""One sensor per flow that declares a cursor column: new source rows request a run of the flow's object.

The sensor's cursor is JSON, `{"flow": ..., "last_seen": <largest cursor value already requested>}`. On its
first tick (no cursor) it starts from the sync's own stored cursor for the flow, so rows that were never
synced count as new and rows already synced do not. Each request has the run key `<flow>:<last_seen>`, so a
sensor restarted with an old cursor never requests the same rows twice.
"""


import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import dagster as dg

from passwork_assets.defs.source_stats import SourceStats, read_stats
from passwork_assets.mapping.models import ConnectionConfig, FlowMapping

FLOW_TAG = "passwork/flow"
TRIGGER_TAG = "passwork/trigger"


@dataclass(frozen=True)
class SensorCursor:
    """What a flow's sensor remembers between ticks."""

    flow: str
    last_seen: str | None

    @classmethod
    def parse(cls, raw: str | None, flow: str) -> "SensorCursor | None":
        """The cursor of a previous tick, or None on the first tick; a cursor of another flow is refused."""
        if not raw:
            return None
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise ValueError(f"sensor cursor of flow {flow} is not JSON: {exc}") from None
        if not isinstance(data, dict) or data.get("flow") != flow:
            raise ValueError(f"sensor cursor {raw!r} does not belong to flow {flow}")
        last = data.get("last_seen")
        return cls(flow=flow, last_seen=None if last is None else str(last))

    def dumps(self) -> str:
        return json.dumps({"flow": self.flow, "last_seen": self.last_seen}, sort_keys=True)


def evaluate_new_rows(
    flow: FlowMapping,
    previous: SensorCursor | None,
    *,
    synced_cursor: Callable[[], str | None],
    stats: Callable[[str | None], SourceStats],
    asset_keys: Sequence[dg.AssetKey],
) -> dg.SensorResult:
    """The run request (or skip) for one tick of a flow's sensor; see the module docstring."""
    after = previous.last_seen if previous is not None else synced_cursor()
    found = stats(after)
    if found.rows == 0 or found.max_cursor is None:
        reason = f"no rows of {flow.flow} past {flow.source.cursor} = {after}" if after else f"{flow.flow} has no rows"
        return dg.SensorResult(skip_reason=dg.SkipReason(reason), cursor=SensorCursor(flow.flow, after).dumps())
    request = dg.RunRequest(
        run_key=f"{flow.flow}:{found.max_cursor}",
        asset_selection=list(asset_keys),
        tags={FLOW_TAG: flow.flow, TRIGGER_TAG: "new-rows"},
    )
    return dg.SensorResult(run_requests=[request], cursor=SensorCursor(flow.flow, found.max_cursor).dumps())


def stored_sync_cursor(state_url: str, flow: str) -> str | None:
    """The cursor the sync stored for `flow` (None before its first run)."""
    from passwork_assets.state.store import StateStore

    store = StateStore(state_url)
    store.migrate()  # idempotent; a sensor may tick before the first sync created the schema
    value = store.get_cursor(flow)
    return None if value is None else str(value)


def build_flow_sensor(
    flow: FlowMapping,
    connection: ConnectionConfig,
    asset_keys: Sequence[dg.AssetKey],
    *,
    interval_s: int,
    default_running: bool,
) -> dg.SensorDefinition:
    """The sensor of one flow with a cursor column."""
    from passwork_assets.defs.resources import PassworkSyncResource

    @dg.sensor(
        name=f"{flow.flow}_new_rows",
        description=(
            f"Requests a run of {', '.join(k.to_user_string() for k in asset_keys)} when {flow.flow} finds rows "
            f"past its cursor column {flow.source.cursor}."
        ),
        minimum_interval_seconds=interval_s,
        asset_selection=list(asset_keys),
        default_status=dg.DefaultSensorStatus.RUNNING if default_running else dg.DefaultSensorStatus.STOPPED,
    )
    def _sensor(context: dg.SensorEvaluationContext, passwork_sync: PassworkSyncResource) -> dg.SensorResult:
        return evaluate_new_rows(
            flow,
            SensorCursor.parse(context.cursor, flow.flow),
            synced_cursor=lambda: stored_sync_cursor(passwork_sync.state_url, flow.flow),
            stats=lambda after: read_stats(connection, flow, after=after),
            asset_keys=asset_keys,
        )

    return _sensor
