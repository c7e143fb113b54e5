"""Running the emulator: bind the socket, serve HTTPS with uvicorn, publish connection.json, stop cleanly."""

from __future__ import annotations

import gc
import json
import os
import signal
import socket
from pathlib import Path

import uvicorn

from salesforce_emulator.app import build_app
from salesforce_emulator.auth_routes import login_domain
from salesforce_emulator.context import EmulatorConfig, create_context
from salesforce_emulator.tls import ensure_tls



class ListenError(OSError):
    """The emulator's address cannot be bound (port in use, address not local)."""


def connection_info(config: EmulatorConfig, ca_cert: Path, access_token: str, port: int) -> dict[str, str]:
    """The connection.json document: how clients reach and log in to this emulator."""
    return {
        "instance_url": config.instance_url,
        "ca_cert": str(ca_cert),
        "api_version": config.default_api_version,
        "username": config.username,
        "password": config.password,
        "security_token": config.security_token,
        "consumer_key": config.consumer_key,
        "consumer_secret": config.consumer_secret,
        "access_token": access_token,
        "domain": login_domain(config.host if config.host not in {"0.0.0.0", "::"} else "127.0.0.1", port),
    }


def _write_atomically(path: Path, text: str) -> None:
    temporary = path.with_suffix(".tmp")
    temporary.write_text(text, encoding="utf-8")
    temporary.chmod(0o600)
    os.replace(temporary, path)


def serve(config: EmulatorConfig) -> None:
    """Serve until interrupted (Ctrl-C / SIGTERM); connection.json is removed on the way out."""
    ctx = create_context(config)
    tls = ensure_tls(config.data_dir / "tls", config.host)
    family = socket.AF_INET6 if ":" in config.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((config.host, config.port))
    except OSError as exc:
        sock.close()
        ctx.org.store.close()
        raise ListenError(f"cannot listen on {config.host}:{config.port}: {exc.strerror}") from exc
    port = sock.getsockname()[1]
    public_host = "127.0.0.1" if config.host in {"0.0.0.0", "::"} else config.host
    host_part = f"[{public_host}]" if ":" in public_host else public_host
    config.instance_url = f"https://{host_part}:{port}"
    app = build_app(ctx)
    _tune_collector()
    server = uvicorn.Server(uvicorn.Config(
        app, ssl_certfile=str(tls.server_cert), ssl_keyfile=str(tls.server_key), log_level="warning",
        access_log=False, timeout_graceful_shutdown=1, lifespan="off",
        # Clients pool connections; uvicorn's 5 s default closes them under a client polling every few
        # seconds, which then sees "Remote end closed connection" on reuse. Keep them like a real edge does.
        timeout_keep_alive=120,
    ))
    info = connection_info(config, tls.ca_cert, ctx.static_token, port)
    connection_file = config.data_dir / "connection.json"

    original_startup = server.startup

    async def startup(sockets: list[socket.socket] | None = None) -> None:
        await original_startup(sockets=sockets)
        # Published only once the socket accepts connections, so a waiting client can connect at once.
        _write_atomically(connection_file, json.dumps(info, indent=2))
        print(_banner(info, connection_file), flush=True)

    server.startup = startup  # type: ignore[method-assign]
    # uvicorn re-raises the stop signal once it has shut down; with the default SIGTERM action that would kill
    # the process before the clean-up below, so SIGTERM becomes a normal exit here.
    previous = signal.signal(signal.SIGTERM, _exit_on_signal)
    try:
        server.run(sockets=[sock])
    finally:
        connection_file.unlink(missing_ok=True)
        ctx.org.store.close()
        sock.close()
        signal.signal(signal.SIGTERM, previous)


def _tune_collector() -> None:
    """Keep Python's cyclic garbage collector from costing a Bulk load a quarter of its time.

    A Bulk chunk allocates tens of thousands of container objects (rows, pending records, dicts), so with the
    default thresholds the collector runs every few hundred allocations and regularly walks every object of the
    process. The objects built at start-up (schema, app, TLS, key indexes) live as long as the process, so they
    are frozen out of its sight; the higher first threshold makes it run per few thousand rows instead.
    """
    gc.freeze()
    gc.set_threshold(10_000, 20, 100)


def _exit_on_signal(signum: int, frame: object) -> None:
    raise SystemExit(0)


def _banner(info: dict[str, str], connection_file: Path) -> str:
    return (
        f"Salesforce emulator listening on {info['instance_url']}\n"
        f"  connection details: {connection_file}\n"
        f"  trust the CA:       {info['ca_cert']}  (requests: session.verify = <that file>)\n"
        "  simple-salesforce:\n"
        "    session = requests.Session(); session.verify = '<ca_cert>'; session.trust_env = False\n"
        f"    Salesforce(username=..., password=..., security_token=..., domain='{info['domain']}', session=session)\n"
        f"    Salesforce(instance_url='{info['instance_url']}', session_id=<access_token>, session=session)\n"
        "  operator endpoints:  /__emulator/{reset,records/<Object>,api-calls,faults,limits,sessions/expire}\n"
        "  stop with Ctrl-C"
    )
