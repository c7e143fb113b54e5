"""Run the benchmarks named on the command line (all of them without arguments) and print their tables."""

from __future__ import annotations

import argparse
import importlib
import sys

# Benchmark name -> module; each module has ``main(argv: list[str]) -> int``.
BENCHMARKS = {
    "emulator_bulk": "bench.emulator_bulk",
    "extract": "bench.extract",
    "sync": "bench.sync",
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("names", nargs="*", help=f"benchmarks to run (default: all): {', '.join(BENCHMARKS)}")
    args, rest = parser.parse_known_args(argv)
    unknown = [name for name in args.names if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")
    status = 0
    for name in args.names or list(BENCHMARKS):
        module = importlib.import_module(BENCHMARKS[name])
        status = module.main(rest) or status
    return status


if __name__ == "__main__":
    sys.exit(main())
