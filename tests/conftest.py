"""Session-scoped real services for the tests: an embedded PostgreSQL server and the Salesforce emulator.

Both are real servers on loopback (ground rule 2): the tests talk to PostgreSQL over TCP with psycopg and to
the emulator over HTTPS with unmodified simple-salesforce.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from passwork_assets.demo.embedded_postgres import EmbeddedPostgres


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedPostgres]:
    """One embedded PostgreSQL server for the whole test session."""
    server = EmbeddedPostgres(tmp_path_factory.mktemp("postgres")).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def fresh_database(postgres: EmbeddedPostgres) -> str:
    """The URL of a new, empty database for one test."""
    return postgres.create_database(f"t_{uuid.uuid4().hex[:12]}")


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory):
    """One Salesforce emulator process for the whole session, on a free port with a fresh data folder.

    Tests that need a clean org call the operator reset endpoint (see salesforce_emulator.testing).
    """
    from salesforce_emulator.testing import EmulatorProcess

    process = EmulatorProcess(data_dir=Path(tmp_path_factory.mktemp("emulator"))).start()
    try:
        yield process
    finally:
        process.stop()


def pytest_report_header(config: pytest.Config) -> str:
    return f"TZ={os.environ.get('TZ', '(unset)')}"
