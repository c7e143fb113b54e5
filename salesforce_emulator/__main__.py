"""``python -m salesforce_emulator``: run a local Salesforce org over HTTPS."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from salesforce_emulator.context import EmulatorConfig
from salesforce_emulator.schema import SchemaError
from salesforce_emulator.store import StoreError


def parse_args(argv: list[str] | None = None) -> EmulatorConfig:
    parser = argparse.ArgumentParser(prog="python -m salesforce_emulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8443, help="port (default 8443; 0 picks a free one)")
    parser.add_argument("--data", type=Path, default=Path(".passwork/emulator"),
                        help="data folder: org.sqlite3, TLS files, connection.json")
    parser.add_argument("--org-schema", type=Path, default=None,
                        help="org-schema YAML, or describe JSON (a file or a folder of files); default: built-in org")
    parser.add_argument("--session-seconds", type=float, default=7200.0, help="session lifetime (default 7200)")
    parser.add_argument("--api-limit", type=int, default=15_000, help="DailyApiRequests allocation (default 15000)")
    args = parser.parse_args(argv)
    if args.session_seconds <= 0:
        parser.error("--session-seconds must be positive")
    if args.api_limit < 0:
        parser.error("--api-limit must not be negative")
    return EmulatorConfig(data_dir=args.data, host=args.host, port=args.port, org_schema=args.org_schema,
                          session_seconds=args.session_seconds, api_limit=args.api_limit)


def main(argv: list[str] | None = None) -> int:
    config = parse_args(argv)
    from salesforce_emulator.server import ListenError, serve

    try:
        serve(config)
    except KeyboardInterrupt:
        return 0
    except (SchemaError, StoreError) as exc:
        print(f"salesforce_emulator: {exc}", file=sys.stderr)
        return 2
    except ListenError as exc:
        print(f"salesforce_emulator: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
