"""Bulk API 2.0 upsert of Usage__c rows into the emulator through unmodified simple-salesforce.

For each volume (default 250,000 and 1,000,000 rows) a fresh child process starts a fresh emulator, creates
1,000 Accounts and 1,000 Contracts, writes a CSV of Usage__c rows linked to their Contract by
``Contract__r.ContractKey__c`` and upserts it with ``sf.bulk2.Usage__c.upsert(csv_file=...,
external_id_field="UsageKey__c")``. It reports end-to-end rows/s (the client call, from splitting the file to
the job's completion), the emulator's own processing time, and the peak RSS of the emulator process
(``VmHWM`` in /proc/<pid>/status) and of the client process. Comparing the volumes shows whether memory grows
with the file (it must not on the emulator side: uploads are streamed to disk and processed in chunks).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CONTRACTS = 1_000
ACCOUNTS = 1_000
DEFAULT_VOLUMES = [250_000, 1_000_000]
TARGET_ROWS_PER_SECOND = 50_000
METRICS = ["api_calls", "storage", "seats", "exports"]


def _vm_hwm_kib(pid: int) -> int:
    """Peak resident set size of a process in KiB (Linux /proc)."""
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmHWM line in /proc/{pid}/status")


def _emulator_pid(data_dir: Path) -> int:
    """The pid of this process's emulator child serving ``data_dir`` (found in /proc: the child's command line)."""
    me = os.getpid()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text(encoding="ascii")
            command = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue  # the process ended meanwhile
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == me and b"salesforce_emulator" in command and str(data_dir).encode() in command:
            return int(entry.name)
    raise RuntimeError(f"no emulator process for {data_dir} among the children of {me}")


def _write_usage_csv(path: Path, rows: int) -> int:
    """The Usage__c upload file; returns its size in bytes."""
    with open(path, "w", encoding="utf-8", newline="") as target:
        writer = csv.writer(target, lineterminator="\n")
        writer.writerow(["UsageKey__c", "Contract__r.ContractKey__c", "UsageDate__c", "Metric__c", "Quantity__c",
                         "Amount__c"])
        for i in range(rows):
            contract = i % CONTRACTS
            day = 1 + (i // CONTRACTS) % 28
            metric = METRICS[i % len(METRICS)]
            writer.writerow([f"CT-{contract:05d}:2024-05-{day:02d}:{metric}:{i}", f"CT-{contract:05d}",
                             f"2024-05-{day:02d}", metric, f"{(i % 977) + 0.25}", f"{(i % 331) * 3}.50"])
    return path.stat().st_size


def run_child(rows: int, work: Path) -> dict[str, object]:
    """One measured upsert of ``rows`` rows against a fresh emulator (runs in its own process)."""
    from salesforce_emulator.testing import EmulatorProcess

    emulator = EmulatorProcess(data_dir=work / "emulator").start()
    emulator_pid = _emulator_pid(work / "emulator")
    try:
        sf = emulator.salesforce()
        accounts = [{"AccountKey__c": f"AC-{i:05d}", "Name": f"Account {i}"} for i in range(ACCOUNTS)]
        contracts = [{"ContractKey__c": f"CT-{i:05d}", "Account.AccountKey__c": f"AC-{i % ACCOUNTS:05d}",
                      "Name": f"Contract {i}", "Status": "Draft"} for i in range(CONTRACTS)]
        for obj, records, key in (("Account", accounts, "AccountKey__c"), ("Contract", contracts, "ContractKey__c")):
            [parents] = getattr(sf.bulk2, obj).upsert(records=records, external_id_field=key, wait=0.2)
            if parents["numberRecordsFailed"]:
                raise RuntimeError(f"creating the {obj} parents failed: {parents}")

        upload = work / "usage.csv"
        file_bytes = _write_usage_csv(upload, rows)
        started = time.perf_counter()
        jobs = sf.bulk2.Usage__c.upsert(csv_file=str(upload), external_id_field="UsageKey__c", wait=0.5)
        elapsed = time.perf_counter() - started
        processed = sum(job["numberRecordsProcessed"] for job in jobs)
        failed = sum(job["numberRecordsFailed"] for job in jobs)
        server_ms = sum(int(sf.restful(f"jobs/ingest/{job['job_id']}")["totalProcessingTime"]) for job in jobs)
        stored = sf.query("SELECT COUNT() FROM Usage__c")["totalSize"]
        if processed != rows or failed or stored != rows:
            raise RuntimeError(f"expected {rows} rows written, got processed={processed} failed={failed} "
                               f"stored={stored}")
        return {
            "rows": rows,
            "file_mb": round(file_bytes / 1_048_576, 1),
            "jobs": len(jobs),
            "seconds": round(elapsed, 2),
            "rows_per_s": round(rows / elapsed),
            "server_s": round(server_ms / 1000, 2),
            "server_rows_per_s": round(rows / (server_ms / 1000)) if server_ms else None,
            "emulator_peak_rss_mb": round(_vm_hwm_kib(emulator_pid) / 1024),
            "client_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        }
    finally:
        emulator.stop()


def _table(results: list[dict[str, object]]) -> str:
    columns = [("rows", "rows"), ("file_mb", "file MB"), ("jobs", "jobs"), ("seconds", "seconds"),
               ("rows_per_s", "rows/s"), ("server_s", "emulator s"), ("server_rows_per_s", "emulator rows/s"),
               ("emulator_peak_rss_mb", "emulator peak RSS MB"), ("client_peak_rss_mb", "client peak RSS MB")]
    cells = [[title for _, title in columns]] + [[f"{r[key]:,}" if isinstance(r[key], int) else str(r[key])
                                                   for key, _ in columns] for r in results]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    lines = [" | ".join(cell.rjust(width) for cell, width in zip(row, widths)) for row in cells]
    lines.insert(1, "-+-".join("-" * width for width in widths))
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    """Run every volume in a child process and print the table; non-zero exit when a run fails."""
    parser = argparse.ArgumentParser(prog="python -m bench emulator_bulk")
    parser.add_argument("--rows", type=int, nargs="+", default=DEFAULT_VOLUMES, help="volumes to upsert")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        print(json.dumps(run_child(args.child, args.work)))
        return 0
    results = []
    for rows in args.rows:
        with tempfile.TemporaryDirectory(prefix="bench-emulator-bulk-") as work:
            child = subprocess.run(
                [sys.executable, "-m", "bench.emulator_bulk", "--child", str(rows), "--work", work],
                capture_output=True, text=True, env=dict(os.environ),
            )
        if child.returncode != 0:
            print(f"emulator_bulk: the {rows:,}-row run failed:\n{child.stderr}", file=sys.stderr)
            return 1
        results.append(json.loads(child.stdout.strip().splitlines()[-1]))
    print(f"Bulk API 2.0 upsert of Usage__c into the emulator (target >= {TARGET_ROWS_PER_SECOND:,} rows/s)")
    print(_table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
