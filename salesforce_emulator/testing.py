"""Running the emulator as a subprocess from tests and tools, and connecting simple-salesforce to it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests
from simple_salesforce import Salesforce

START_TIMEOUT_S = 60.0


class EmulatorError(RuntimeError):
    """The emulator process failed to start or an operator call failed."""


class EmulatorProcess:
    """One ``python -m salesforce_emulator`` process on loopback with its own data folder."""

    def __init__(self, data_dir: Path, port: int = 0, org_schema: Path | None = None,
                 extra_args: list[str] | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.port = port
        self.org_schema = org_schema
        self.extra_args = list(extra_args or [])
        self.connection: dict[str, str] = {}
        self._process: subprocess.Popen[bytes] | None = None
        self._http = requests.Session()
        self._http.trust_env = False

    @property
    def connection_file(self) -> Path:
        return self.data_dir / "connection.json"

    def start(self) -> EmulatorProcess:
        """Start the process and wait until it publishes connection.json."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.connection_file.unlink(missing_ok=True)
        command = [sys.executable, "-m", "salesforce_emulator", "--data", str(self.data_dir), "--port", str(self.port)]
        if self.org_schema is not None:
            command += ["--org-schema", str(self.org_schema)]
        command += self.extra_args
        log = open(self.data_dir / "emulator.log", "ab")
        self._process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ))
        log.close()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self.connection_file.exists():
            if self._process.poll() is not None:
                raise EmulatorError(f"emulator exited with {self._process.returncode}: {self._log_tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise EmulatorError(f"emulator did not start within {START_TIMEOUT_S:.0f}s: {self._log_tail()}")
            time.sleep(0.05)
        self.connection = json.loads(self.connection_file.read_text(encoding="utf-8"))
        self._http.verify = self.ca_cert
        return self

    def _log_tail(self) -> str:
        path = self.data_dir / "emulator.log"
        return path.read_text(encoding="utf-8", errors="replace")[-2000:] if path.exists() else "(no log)"

    def stop(self) -> None:
        """Stop the process (SIGTERM, then SIGKILL after 10 s)."""
        if self._process is None:
            return
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(timeout=10)
        self._process = None
        self._http.close()
        self._http = requests.Session()
        self._http.trust_env = False

    @property
    def ca_cert(self) -> str:
        return self.connection["ca_cert"]

    @property
    def instance_url(self) -> str:
        return self.connection["instance_url"]

    @property
    def login_domain(self) -> str:
        """The ``domain=`` value that sends simple-salesforce's SOAP and OAuth logins to the emulator."""
        return self.connection["domain"]

    @property
    def api_version(self) -> str:
        return self.connection["api_version"]

    def operator(self, path: str, method: str = "GET", json: Any = None) -> Any:
        """Call ``/__emulator/{path}``; returns the decoded JSON answer, raises EmulatorError on failure."""
        url = f"{self.instance_url}/__emulator/{path.lstrip('/')}"
        response = self._http.request(method, url, json=json, timeout=60)
        if response.status_code >= 400:
            raise EmulatorError(f"{method} {url} -> {response.status_code}: {response.text}")
        return response.json()

    def reset(self) -> None:
        """Empty the org, zero the counters, clear faults."""
        self.operator("reset", method="POST")

    def requests_session(self) -> requests.Session:
        """A requests session that trusts the emulator's CA.

        ``trust_env`` is off because requests lets a REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE environment variable
        override ``session.verify``; the emulator is on loopback, so no proxy settings are lost.
        """
        session = requests.Session()
        session.verify = self.ca_cert
        session.trust_env = False
        return session

    def salesforce(self, **kwargs: Any) -> Salesforce:
        """simple-salesforce on a direct session (connection.json's access token); kwargs override."""
        options: dict[str, Any] = {
            "instance_url": self.instance_url,
            "session_id": self.connection["access_token"],
            "version": self.api_version,
            "session": self.requests_session(),
        }
        options.update(kwargs)
        return Salesforce(**options)
