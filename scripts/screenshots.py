"""Screenshots of the demo's Dagster UI for `docs/demo.md`, taken with headless Chromium.

Starts `passwork demo` (or uses a running demo given by `--url`), waits until the webserver has loaded the
Passwork code location, waits for the runs the sensors start on their first tick, materializes whatever asset
has never been materialized, then saves one PNG per page under `docs/screenshots/`. Each page is loaded again
with `--dump-dom` and must contain a text that only the rendered page has, so a screenshot of a loading
spinner is an error, not a picture.

    python scripts/screenshots.py                 # start the demo, take the screenshots, stop the demo
    python scripts/screenshots.py --url http://127.0.0.1:3000

Needs a Chromium binary (Debian: `apt-get install chromium`); CJK fonts (`fonts-noto-cjk`) make the
Japanese sample names readable. This is a script, not a test: CI has no browser.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_URL = "http://127.0.0.1:3000"
DEFAULT_OUT = PROJECT_ROOT / "docs" / "screenshots"
ASSET_JOB = "__ASSET_JOB"  # Dagster's implicit job over every asset of a code location
UNFINISHED_RUN_STATUSES = {"QUEUED", "NOT_STARTED", "STARTING", "STARTED", "CANCELING", "MANAGED"}
MAX_PNG_BYTES = 500_000


class ScreenshotError(Exception):
    """Something the screenshots cannot be taken without; the message says what."""


@dataclass(frozen=True)
class Page:
    """One screenshot: the UI path, the window size and a text only the rendered page contains."""

    name: str
    path: str
    width: int
    height: int
    rendered_marker: str


class DagsterUI:
    """The few GraphQL calls of the Dagster webserver the script needs."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    def graphql(self, query: str, variables: dict[str, Any] | None = None, *, timeout: float = 30) -> Any:
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        request = urllib.request.Request(f"{self.url}/graphql", data=body,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            answer = json.load(response)
        if answer.get("errors"):
            raise ScreenshotError(f"GraphQL error from {self.url}: {answer['errors']}")
        return answer["data"]

    def loaded_location(self) -> tuple[str, str] | None:
        """(code location, repository) once a code location has loaded; None while it is loading."""
        data = self.graphql("""{ workspaceOrError { __typename ... on Workspace { locationEntries {
            name loadStatus locationOrLoadError { __typename ... on RepositoryLocation { repositories { name } }
            ... on PythonError { message } } } } } }""")
        workspace = data["workspaceOrError"]
        if workspace["__typename"] != "Workspace":
            return None
        for entry in workspace["locationEntries"]:
            location = entry["locationOrLoadError"]
            if location is None or entry["loadStatus"] != "LOADED":
                continue
            if location["__typename"] == "PythonError":
                raise ScreenshotError(f"code location {entry['name']} failed to load: {location['message']}")
            if location["repositories"]:
                return entry["name"], location["repositories"][0]["name"]
        return None

    def unmaterialized_assets(self) -> tuple[list[list[str]], list[str]]:
        """(keys of materializable assets that have no materialization yet, every group name)."""
        data = self.graphql("""{ assetNodes { assetKey { path } groupName isMaterializable
            assetMaterializations(limit: 1) { runId } } }""")
        nodes = data["assetNodes"]
        missing = [n["assetKey"]["path"] for n in nodes if n["isMaterializable"] and not n["assetMaterializations"]]
        return missing, sorted({n["groupName"] for n in nodes if n["groupName"]})

    def unfinished_runs(self) -> list[str]:
        data = self.graphql("{ runsOrError(limit: 100) { ... on Runs { results { runId status } } } }")
        return [r["runId"] for r in data["runsOrError"]["results"] if r["status"] in UNFINISHED_RUN_STATUSES]

    def launch_assets(self, location: str, repository: str, keys: list[list[str]]) -> str:
        """Launch one run of the implicit asset job over `keys`; returns its run id."""
        data = self.graphql(
            """mutation($p: ExecutionParams!) { launchPipelineExecution(executionParams: $p) { __typename
                ... on LaunchRunSuccess { run { runId } } ... on PythonError { message }
                ... on InvalidSubsetError { message } ... on PipelineNotFoundError { message }
                ... on RunConfigValidationInvalid { errors { message } } } }""",
            {"p": {"selector": {"repositoryLocationName": location, "repositoryName": repository,
                                "pipelineName": ASSET_JOB, "assetSelection": [{"path": k} for k in keys]},
                   "mode": "default",
                   "executionMetadata": {"tags": [{"key": "passwork/trigger", "value": "screenshots"}]}}})
        result = data["launchPipelineExecution"]
        if result["__typename"] != "LaunchRunSuccess":
            raise ScreenshotError(f"could not launch a run of {len(keys)} asset(s): {result}")
        return str(result["run"]["runId"])

    def run_status(self, run_id: str) -> str:
        data = self.graphql("query($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }", {"id": run_id})
        return str(data["runOrError"]["status"])

    def dismiss_welcome_dialog(self) -> None:
        """Mark the "Join the Dagster community" dialog as seen on this instance so it covers no screenshot."""
        self.graphql("mutation { setNuxSeen }")


def wait_for(what: str, probe: Any, timeout_s: float, interval_s: float = 2.0) -> Any:
    """Call `probe` until it returns something truthy; a connection refused counts as not yet."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            value = probe()
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise ScreenshotError(f"gave up waiting for {what} after {timeout_s:.0f} s")
        time.sleep(interval_s)


def materialize_once(ui: DagsterUI, location: str, repository: str, *, timeout_s: float) -> None:
    """Wait for the runs already under way (the sensors request some on their first tick), then materialize
    every asset that still has no materialization, in one run, and wait for it."""
    wait_for("the runs under way to finish", lambda: not ui.unfinished_runs(), timeout_s, interval_s=5)
    missing, _ = ui.unmaterialized_assets()
    if not missing:
        print("every asset has a materialization already", flush=True)
        return
    names = ", ".join("/".join(k) for k in missing)
    run_id = ui.launch_assets(location, repository, missing)
    print(f"materializing {names} in run {run_id}...", flush=True)
    status = wait_for(f"run {run_id}", lambda: (s := ui.run_status(run_id)) not in UNFINISHED_RUN_STATUSES and s,
                      timeout_s, interval_s=5)
    if status != "SUCCESS":
        raise ScreenshotError(f"run {run_id} ended {status}; see {ui.url}/runs/{run_id}")


def pages(groups: list[str]) -> list[Page]:
    """The pages docs/demo.md shows. Groups are expanded in the lineage view (`expanded=` holds group ids)."""
    expanded = quote(",".join(f"global@global:{group}" for group in groups), safe="")
    return [
        Page("asset-graph", f"/asset-groups?expanded={expanded}", 1600, 1800, "Usage__c"),
        Page("usage-materialization", "/assets/salesforce/Usage__c?view=events", 1920, 1900, "mapping_hash"),
        Page("usage-overview", "/assets/salesforce/Usage__c", 1600, 1000, "Freshness policy"),
        Page("usage-checks", "/assets/salesforce/Usage__c?view=checks", 1600, 1000, "no_orphans"),
        Page("usage-trends", "/assets/usage_trends?view=events", 1600, 1150, "top_movers"),
        Page("automation", "/automation", 1600, 700, "product_usage_new_rows"),
    ]


def chromium_binary(requested: str | None) -> str:
    for candidate in ([requested] if requested else ["chromium", "chromium-browser", "google-chrome"]):
        found = shutil.which(candidate)
        if found:
            return found
    raise ScreenshotError("no Chromium found; install it (Debian: apt-get install chromium) or pass --chromium")


def run_chromium(chromium: str, url: str, page: Page, budget_ms: int, action: list[str]) -> str:
    """One headless Chromium load of `url` in a fresh profile; returns stdout (the DOM for --dump-dom)."""
    with tempfile.TemporaryDirectory(prefix="passwork-chromium-") as profile:
        command = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                   "--disable-background-networking", "--disable-component-update", "--disable-sync",
                   "--hide-scrollbars", f"--user-data-dir={profile}", f"--window-size={page.width},{page.height}",
                   f"--virtual-time-budget={budget_ms}", *action, url]
        done = subprocess.run(command, capture_output=True, text=True, timeout=180)
    if done.returncode != 0:
        raise ScreenshotError(f"chromium failed on {url} (exit {done.returncode}): {done.stderr[-2000:]}")
    return done.stdout


def take(chromium: str, base_url: str, page: Page, out_dir: Path, budget_ms: int) -> Path:
    """Screenshot `page`; check a second load of it renders the page's marker text (else retry, slower)."""
    url = f"{base_url}{page.path}"
    target = out_dir / f"{page.name}.png"
    for budget in (budget_ms, budget_ms * 2):
        run_chromium(chromium, url, page, budget, [f"--screenshot={target}"])
        dom = run_chromium(chromium, url, page, budget, ["--dump-dom"])
        if page.rendered_marker in dom and target.exists():
            return target
    raise ScreenshotError(f"{url} did not render {page.rendered_marker!r} within {budget_ms * 2} ms of "
                          f"virtual time; the screenshot would show a loading page")


def shrink(png: Path) -> None:
    """Recompress losslessly when optipng is installed; refuse a PNG that stays over the size limit."""
    optipng = shutil.which("optipng")
    if optipng:
        subprocess.run([optipng, "-quiet", "-o2", "-strip", "all", str(png)], check=True)
    size = png.stat().st_size
    if size > MAX_PNG_BYTES:
        raise ScreenshotError(f"{png} is {size} bytes (limit {MAX_PNG_BYTES}); install optipng or reduce "
                              f"the window size")


class DemoProcess:
    """`passwork demo` as a child process in its own process group (stopped like Ctrl+C stops it)."""

    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        passwork = Path(sys.executable).parent / "passwork"
        command = [str(passwork)] if passwork.exists() else [sys.executable, "-m", "passwork_assets.cli"]
        with self.log_path.open("wb") as log:
            # Ctrl+C semantics even when this script itself runs in the background (where SIGINT is
            # inherited as ignored): the demo stops PostgreSQL and the emulator only on KeyboardInterrupt.
            self.process = subprocess.Popen([*command, "demo"], cwd=PROJECT_ROOT, stdout=log,
                                            stderr=subprocess.STDOUT, start_new_session=True,
                                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        print(f"started passwork demo (pid {self.process.pid}, log {self.log_path})", flush=True)

    def check_alive(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            raise ScreenshotError(f"passwork demo exited with {self.process.returncode}; see {self.log_path}")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGINT)
        try:
            self.process.wait(timeout=90)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="a running demo's Dagster UI (default: start `passwork demo` and stop it after)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder for the PNGs (default: %(default)s)")
    parser.add_argument("--chromium", help="Chromium binary (default: chromium on PATH)")
    parser.add_argument("--budget-ms", type=int, default=15000, help="virtual time a page gets to render")
    parser.add_argument("--timeout", type=float, default=1200, help="seconds to wait for start-up and each wait on runs")
    args = parser.parse_args(argv)

    chromium = chromium_binary(args.chromium)
    args.out.mkdir(parents=True, exist_ok=True)
    demo = None if args.url else DemoProcess(Path(tempfile.gettempdir()) / "passwork-demo-screenshots.log")
    ui = DagsterUI(args.url or DEFAULT_URL)
    try:
        if demo is not None:
            demo.start()
        started = time.monotonic()

        def location() -> tuple[str, str] | None:
            if demo is not None:
                demo.check_alive()
            return ui.loaded_location()

        code_location, repository = wait_for(f"the Dagster UI at {ui.url}", location, args.timeout)
        print(f"Dagster UI up with code location {code_location} after {time.monotonic() - started:.0f} s", flush=True)
        ui.dismiss_welcome_dialog()
        materialize_once(ui, code_location, repository, timeout_s=args.timeout)
        _, groups = ui.unmaterialized_assets()
        for page in pages(groups):
            png = take(chromium, ui.url, page, args.out, args.budget_ms)
            shrink(png)
            print(f"saved {png.relative_to(PROJECT_ROOT) if png.is_relative_to(PROJECT_ROOT) else png} "
                  f"({png.stat().st_size // 1024} KB)", flush=True)
    except ScreenshotError as exc:
        print(f"screenshots: {exc}", file=sys.stderr)
        return 1
    finally:
        if demo is not None:
            demo.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
