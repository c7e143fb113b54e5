"""`passwork`: validate and suggest mappings, run and inspect syncs, start the emulator or the demo.

Every expected failure (bad mapping, unreachable database or org, missing setting) ends as one readable
message on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

DEFAULT_MAPPINGS = Path("mappings")

EXIT_OK = 0
EXIT_FAILED = 1  # the command ran and found problems (invalid mappings, a flow that failed)
EXIT_USAGE = 2  # the command could not run (configuration, connectivity)


class CliError(Exception):
    """An expected failure with a message for the user."""


def _known_errors() -> tuple[type[BaseException], ...]:
    """Error types whose message is already written for the user."""
    from passwork_assets.demo.embedded_postgres import EmbeddedPostgresError
    from passwork_assets.mapping.loader import MappingError
    from passwork_assets.salesforce.client import ApiBudgetExhausted, RequestRejected, SalesforceUnavailable
    from passwork_assets.salesforce.settings import SalesforceConfigError
    from passwork_assets.sync.engine import USER_FACING_ERRORS, FlowSelectionError
    from passwork_assets.sync.settings import SyncSettingsError

    return (CliError, MappingError, SalesforceConfigError, SalesforceUnavailable, ApiBudgetExhausted,
            RequestRejected, SyncSettingsError, FlowSelectionError, EmbeddedPostgresError, *USER_FACING_ERRORS)


def _client() -> Any:
    from passwork_assets.salesforce.client import SalesforceClient
    from passwork_assets.salesforce.settings import SalesforceSettings

    return SalesforceClient(SalesforceSettings.from_env())


def cmd_validate(args: argparse.Namespace) -> int:
    from passwork_assets.mapping.live_sources import validate_live
    from passwork_assets.mapping.loader import MappingError, load_mappings

    try:
        mappings = load_mappings(args.mappings)
    except MappingError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_FAILED
    issues = validate_live(mappings, describe=_client())
    for issue in issues:
        print(str(issue), file=sys.stderr)
    if issues:
        print(f"{len(issues)} problem(s) in {args.mappings}", file=sys.stderr)
        return EXIT_FAILED
    print(f"{len(mappings.flows)} flow(s) in {args.mappings} are valid against the source schemas and Salesforce")
    return EXIT_OK


def cmd_suggest(args: argparse.Namespace) -> int:
    from passwork_assets.mapping.loader import load_connections
    from passwork_assets.mapping.suggest import suggest_mapping
    from passwork_assets.source.connect import open_connection
    from passwork_assets.source.schema import table_columns

    connections = load_connections(args.mappings)
    if args.connection not in connections:
        raise CliError(f"no connection named {args.connection!r} in {args.mappings}/connections.yaml; "
                       f"connections: {', '.join(sorted(connections)) or '(none)'}")
    with open_connection(connections[args.connection]) as conn:
        columns = table_columns(conn, args.table)
    # The client as a describe provider lets the draft fill in each parent link's External ID field.
    print(suggest_mapping(columns, _client(), connection=args.connection, table=args.table, object=args.object))
    return EXIT_OK


def cmd_sync(args: argparse.Namespace) -> int:
    from passwork_assets.mapping.loader import load_mappings
    from passwork_assets.sync.engine import run_flows
    from passwork_assets.sync.settings import SyncSettings

    mappings = load_mappings(args.mappings)
    results = run_flows(mappings, flows=args.flow or None, full=args.full, dry_run=args.dry_run,
                        settings=SyncSettings.from_env())
    failed = [r for r in results if r.status != "ok"]
    if args.json:
        print(json.dumps({"flows": [r.to_dict() for r in results], "ok": not failed}, ensure_ascii=False, indent=2))
    else:
        _print_results(results)
    return EXIT_FAILED if failed else EXIT_OK


def _print_results(results: Sequence[Any]) -> None:
    header = ("flow", "object", "extracted", "changed", "sent", "created", "updated", "rejected", "api calls", "status")
    rows = [(r.flow, r.object, r.extracted, r.changed, r.sent, r.created, r.updated, r.rejected, r.api_calls_used,
             r.status + (" (dry run)" if r.dry_run else "")) for r in results]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    for row in (header, *rows):
        print("  ".join(str(v).ljust(w) for v, w in zip(row, widths)).rstrip())
    for r in results:
        if r.bulk_job_ids:
            print(f"{r.flow}: Bulk jobs {', '.join(r.bulk_job_ids)}")
        if r.error:
            print(f"{r.flow}: {r.error}", file=sys.stderr)
        for reject in r.rejects_preview[:5]:
            print(f"{r.flow}: rejected {reject['key']!r}: {reject['code']}: {reject['message']}")
        if r.rejected > 5:
            print(f"{r.flow}: … {r.rejected} rejects in all (passwork rejects --flow {r.flow})")


def cmd_rejects(args: argparse.Namespace) -> int:
    from passwork_assets.state.store import StateStore
    from passwork_assets.sync.settings import SyncSettings

    store = StateStore(SyncSettings.from_env().state_url)
    store.migrate()
    rejects = store.rejects(args.flow)
    if args.json:
        print(json.dumps(rejects, ensure_ascii=False, indent=2, default=str))
        return EXIT_OK
    if not rejects:
        print("no rejects" + (f" for flow {args.flow}" if args.flow else ""))
    for r in rejects:
        where = f" field {r['field']}" if r.get("field") else ""
        value = f" value {r['value']!r}" if r.get("value") is not None else ""
        print(f"{r['flow']}: {r['key']!r}: {r['code']}{where}{value}: {r['message']}")
    return EXIT_OK


def cmd_emulator(args: argparse.Namespace) -> int:
    from salesforce_emulator.__main__ import main as emulator_main

    argv = ["--host", args.host, "--port", str(args.port), "--data", str(args.data)]
    if args.org_schema:
        argv += ["--org-schema", str(args.org_schema)]
    return int(emulator_main(argv) or 0)


def cmd_demo(args: argparse.Namespace) -> int:
    from passwork_assets.demo.run import run_demo

    return int(run_demo(once=args.once) or 0)


def build_parser() -> argparse.ArgumentParser:
    """The `passwork` argument parser."""
    parser = argparse.ArgumentParser(prog="passwork", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("validate", help="check every flow against the live source schema and Salesforce describe")
    p.add_argument("--mappings", type=Path, default=DEFAULT_MAPPINGS)
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("suggest", help="draft a mapping from a table and a Salesforce object")
    p.add_argument("--mappings", type=Path, default=DEFAULT_MAPPINGS)
    p.add_argument("--connection", required=True)
    p.add_argument("--table", required=True)
    p.add_argument("--object", required=True)
    p.set_defaults(func=cmd_suggest)

    p = sub.add_parser("sync", help="run flows (default all), parents first")
    p.add_argument("--mappings", type=Path, default=DEFAULT_MAPPINGS)
    p.add_argument("--flow", action="append", help="a flow to run (repeatable)")
    p.add_argument("--full", action="store_true", help="ignore cursors and row hashes: re-read and re-send all")
    p.add_argument("--dry-run", action="store_true", help="show what would change without writing anything")
    p.add_argument("--json", action="store_true", help="print the results as one JSON object")
    p.set_defaults(func=cmd_sync)

    p = sub.add_parser("rejects", help="list the rows held back, with their reasons")
    p.add_argument("--flow")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_rejects)

    p = sub.add_parser("emulator", help="serve a local Salesforce org over HTTPS")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8443)
    p.add_argument("--data", type=Path, default=Path(".passwork/emulator"))
    p.add_argument("--org-schema", type=Path)
    p.set_defaults(func=cmd_emulator)

    p = sub.add_parser("demo", help="the demo: PostgreSQL with sample data, the emulator and Dagster")
    p.add_argument("--once", action="store_true", help="materialize every asset once, print a summary, exit")
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `passwork` console script."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # only the known, user-facing errors are caught; anything else keeps its traceback
        if isinstance(exc, _known_errors()):
            print(f"passwork {args.command}: {exc}", file=sys.stderr)
            return EXIT_USAGE
        raise


if __name__ == "__main__":
    sys.exit(main())
