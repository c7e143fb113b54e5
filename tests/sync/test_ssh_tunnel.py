"""Source connections through an SSH bastion: a real OpenSSH server on loopback, the system ssh client."""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from passwork_assets.demo.embedded_postgres import EmbeddedPostgres, free_port
from passwork_assets.mapping.models import ConnectionConfig, SshBastion
from passwork_assets.source.connect import SourceConnectionError, open_connection
from passwork_assets.source.ssh_tunnel import SshTunnelError

SSHD = Path("/usr/sbin/sshd")

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not SSHD.exists() or shutil.which("ssh-keygen") is None,
                       reason="OpenSSH server not installed (`make test` installs openssh-server)"),
]


@dataclass
class Bastion:
    port: int
    user: str
    client_key: Path
    known_hosts: Path
    folder: Path


def _keygen(path: Path) -> None:
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)


@pytest.fixture(scope="module")
def bastion(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bastion]:
    """sshd on 127.0.0.1 with a temporary host key and one authorized client key; TCP forwarding allowed."""
    folder = tmp_path_factory.mktemp("sshd")
    folder.chmod(0o700)
    _keygen(folder / "host_key")
    _keygen(folder / "client_key")
    shutil.copy(folder / "client_key.pub", folder / "authorized_keys")
    port = free_port()
    user = getpass.getuser()
    config = folder / "sshd_config"
    config.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {folder / 'host_key'}\nPidFile {folder / 'sshd.pid'}\n"
        f"AuthorizedKeysFile {folder / 'authorized_keys'}\nPubkeyAuthentication yes\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\n"
        "PermitRootLogin prohibit-password\nAllowTcpForwarding yes\nGatewayPorts no\nX11Forwarding no\n"
        "PermitTTY no\nLogLevel VERBOSE\n"
    )
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege-separation directory
    log = folder / "sshd.log"
    process = subprocess.Popen([str(SSHD), "-D", "-e", "-f", str(config)], stdout=subprocess.DEVNULL,
                               stderr=log.open("wb"))
    deadline = time.monotonic() + 15
    while True:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"sshd did not start: {log.read_text()}")
        time.sleep(0.05)
    host_pub = (folder / "host_key.pub").read_text().split()
    known_hosts = folder / "known_hosts"
    known_hosts.write_text(f"[127.0.0.1]:{port} {host_pub[0]} {host_pub[1]}\n")
    try:
        yield Bastion(port=port, user=user, client_key=folder / "client_key", known_hosts=known_hosts,
                      folder=folder)
    finally:
        process.terminate()
        process.wait(timeout=10)


def _config(monkeypatch: pytest.MonkeyPatch, url: str, bastion: Bastion, *, key: Path | None = None,
            known_hosts: Path | None = None) -> ConnectionConfig:
    monkeypatch.setenv("TEST_BASTION_DB_URL", url)
    monkeypatch.setenv("TEST_BASTION_KEY", str(key or bastion.client_key))
    ssh = SshBastion(host="127.0.0.1", port=bastion.port, user=bastion.user, key_file_env="TEST_BASTION_KEY",
                     known_hosts=str(known_hosts or bastion.known_hosts))
    return ConnectionConfig(url_env="TEST_BASTION_DB_URL", ssh=ssh).model_copy(update={"name": "onprem"})


def _ssh_clients_of(folder: Path) -> list[int]:
    """Pids of ssh client processes whose command line names a file in `folder` (our tunnels)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue  # the process ended while we looked
        if argv and argv[0].endswith(b"/ssh") and b"-N" in argv and str(folder).encode() in b" ".join(argv):
            found.append(int(proc.name))
    return found


def test_connection_goes_through_the_bastion_and_the_tunnel_closes(
        bastion: Bastion, postgres: EmbeddedPostgres, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = _config(monkeypatch, postgres.url(), bastion)
    with open_connection(cfg) as conn:
        # The server sees the connection coming from sshd's forward, not from a direct client connection.
        addr, port = conn.execute("select inet_client_addr()::text, inet_server_port()").fetchone()
        assert addr.startswith("127.0.0.1") and port == postgres.port
        assert conn.info.port != postgres.port  # psycopg dialled the local end of the tunnel
        assert len(_ssh_clients_of(bastion.folder)) == 1
    assert _ssh_clients_of(bastion.folder) == []


def test_an_unauthorized_key_fails_with_sshs_reason(bastion: Bastion, postgres: EmbeddedPostgres,
                                                    tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stranger = tmp_path / "stranger"
    _keygen(stranger)
    cfg = _config(monkeypatch, postgres.url(), bastion, key=stranger)
    with pytest.raises(SshTunnelError, match=rf"bastion {bastion.user}@127.0.0.1:{bastion.port} .*Permission denied"):
        with open_connection(cfg):
            pass


def test_an_unknown_host_key_is_refused(bastion: Bastion, postgres: EmbeddedPostgres, tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "known_hosts"
    empty.write_text("")
    cfg = _config(monkeypatch, postgres.url(), bastion, known_hosts=empty)
    with pytest.raises(SshTunnelError, match="Host key verification failed"):
        with open_connection(cfg):
            pass


def test_a_database_the_bastion_cannot_reach_fails_clearly(bastion: Bastion, monkeypatch: pytest.MonkeyPatch) -> None:
    dead_port = free_port()
    cfg = _config(monkeypatch, f"postgresql://sync:pw-secret@127.0.0.1:{dead_port}/erp", bastion)
    with pytest.raises(SourceConnectionError) as info:
        with open_connection(cfg):
            pass
    message = str(info.value)
    assert f"database erp at 127.0.0.1:{dead_port} through SSH bastion {bastion.user}@127.0.0.1:{bastion.port}" in message
    assert "pw-secret" not in message
    assert _ssh_clients_of(bastion.folder) == []


def test_a_missing_key_file_is_named(bastion: Bastion, postgres: EmbeddedPostgres, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = _config(monkeypatch, postgres.url(), bastion, key=tmp_path / "no_such_key")
    with pytest.raises(SshTunnelError, match="SSH key file .* does not exist"):
        with open_connection(cfg):
            pass
