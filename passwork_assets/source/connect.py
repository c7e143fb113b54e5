"""Connections to source databases: URL from the environment, TLS, an optional SSH bastion, clear failures."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from passwork_assets.source.ssh_tunnel import SshEndpoint, ssh_tunnel

if TYPE_CHECKING:
    from passwork_assets.mapping.models import ConnectionConfig


class SourceConnectionError(RuntimeError):
    """A source database could not be reached; names connection, host, port, database and reason, no secret."""


def _describe(params: dict[str, object]) -> str:
    host = params.get("host") or "localhost"
    port = params.get("port") or 5432
    return f"database {params.get('dbname') or '(default)'} at {host}:{port}"


def _reason(exc: psycopg.OperationalError) -> str:
    # libpq's text names the host and port it tried and why it failed; it does not contain the password.
    text = str(exc).strip()
    return text.removeprefix("connection failed: ")


@contextmanager
def open_connection(cfg: ConnectionConfig, *, connect_timeout_s: int = 10) -> Iterator[psycopg.Connection]:
    """A psycopg connection to the source `cfg` names, closed (and its tunnel stopped) when the block ends.

    The URL comes from the environment variable `cfg.url_env` and is never logged or shown. `cfg.sslmode`
    and the CA file from `cfg.sslrootcert_env` override the URL's; with `cfg.ssh` the connection goes
    through a local port forwarded by the OpenSSH client, and TLS still checks the database's real host
    name (libpq `hostaddr` dials the tunnel, `host` is what the certificate must match).
    """
    params = conninfo_to_dict(cfg.resolve_url())
    overrides: dict[str, object] = {"connect_timeout": connect_timeout_s, "application_name": "passwork"}
    if cfg.sslmode:
        overrides["sslmode"] = cfg.sslmode
    rootcert = cfg.resolve_sslrootcert()
    if rootcert:
        overrides["sslrootcert"] = rootcert
    shown = _describe(params)
    with ExitStack() as stack:
        if cfg.ssh is not None:
            kind, secret = cfg.resolve_ssh_secret()
            endpoint = SshEndpoint(host=cfg.ssh.host, port=cfg.ssh.port, user=cfg.ssh.user, secret_kind=kind,
                                   secret=secret, known_hosts=cfg.ssh.known_hosts)
            db_host = str(params.get("host") or "localhost")
            db_port = int(str(params.get("port") or 5432))
            local_port = stack.enter_context(ssh_tunnel(endpoint, db_host, db_port,
                                                        connect_timeout_s=connect_timeout_s))
            overrides.update(hostaddr="127.0.0.1", port=local_port, host=db_host)
            shown += f" through SSH bastion {cfg.ssh.user}@{cfg.ssh.host}:{cfg.ssh.port}"
        conninfo = make_conninfo("", **{**params, **overrides})
        try:
            conn = psycopg.connect(conninfo)
        except psycopg.OperationalError as exc:
            raise SourceConnectionError(
                f"cannot connect to source {cfg.name or cfg.url_env}: {shown}: {_reason(exc)}"
            ) from None
        with conn:
            yield conn
