"""A local port forwarded to a database behind an SSH bastion, through the system OpenSSH client.

The OpenSSH client is what operators already trust and configure (known_hosts, agent, ciphers), so Passwork
runs `ssh -N -L` rather than embedding an SSH library. The tunnel listens on 127.0.0.1 only, on a free port,
and lives exactly as long as the `with` block.
"""

from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from passwork_assets.demo.embedded_postgres import free_port


class SshTunnelError(RuntimeError):
    """The tunnel could not be opened; the message names the bastion and what ssh said (never a secret)."""


@dataclass(frozen=True)
class SshEndpoint:
    """The bastion to log in to and how; `secret` is a key file path or a password, per `secret_kind`."""

    host: str
    port: int
    user: str
    secret_kind: str  # "key_file" | "password"
    secret: str
    known_hosts: str | None = None


# A password goes to ssh through SSH_ASKPASS, read from this process's environment by the helper: it never
# appears on a command line (visible in `ps`) or in a file.
_ASKPASS_SCRIPT = '#!/bin/sh\nprintf "%s\\n" "$PASSWORK_SSH_PASSWORD"\n'


def _ssh_command(endpoint: SshEndpoint, local_port: int, target_host: str, target_port: int,
                 connect_timeout_s: int) -> list[str]:
    ssh = shutil.which("ssh")
    if ssh is None:
        raise SshTunnelError("the OpenSSH client `ssh` is not installed; install openssh-client to use a bastion")
    argv = [
        ssh, "-N",
        "-L", f"127.0.0.1:{local_port}:{target_host}:{target_port}",
        "-p", str(endpoint.port),
        "-o", "ExitOnForwardFailure=yes",
        "-o", f"ConnectTimeout={connect_timeout_s}",
        "-o", "ServerAliveInterval=15",
        "-o", "ServerAliveCountMax=3",
        # An unknown or changed host key is a refusal, never a silent trust-on-first-use.
        "-o", "StrictHostKeyChecking=yes",
        "-o", "LogLevel=ERROR",
        # The user's ~/.ssh/config must not redirect or reshape this connection.
        "-F", "/dev/null",
    ]
    if endpoint.known_hosts:
        argv += ["-o", f"UserKnownHostsFile={Path(endpoint.known_hosts).expanduser()}"]
    if endpoint.secret_kind == "key_file":
        key = Path(endpoint.secret).expanduser()
        if not key.is_file():
            raise SshTunnelError(f"the SSH key file for bastion {endpoint.host} does not exist: {key}")
        argv += ["-i", str(key), "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
                 "-o", "PreferredAuthentications=publickey"]
    else:
        argv += ["-o", "PreferredAuthentications=password,keyboard-interactive", "-o", "NumberOfPasswordPrompts=1",
                 "-o", "PubkeyAuthentication=no"]
    argv.append(f"{endpoint.user}@{endpoint.host}")
    return argv


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@contextmanager
def ssh_tunnel(endpoint: SshEndpoint, target_host: str, target_port: int, *,
               connect_timeout_s: int = 10) -> Iterator[int]:
    """Forward a free local port to `target_host:target_port` as seen from the bastion; yields the port.

    Waits until the port accepts connections (ssh binds it only after logging in, and with
    ExitOnForwardFailure it exits if it cannot), raises `SshTunnelError` with ssh's own message when ssh
    exits first or the wait times out, and stops ssh when the block ends.
    """
    local_port = free_port()
    argv = _ssh_command(endpoint, local_port, target_host, target_port, connect_timeout_s)
    env = dict(os.environ)
    with tempfile.TemporaryDirectory(prefix="passwork-ssh-") as tmp:
        stderr_path = Path(tmp) / "stderr"
        if endpoint.secret_kind == "password":
            askpass = Path(tmp) / "askpass"
            askpass.write_text(_ASKPASS_SCRIPT)
            askpass.chmod(stat.S_IRWXU)
            env.update(SSH_ASKPASS=str(askpass), SSH_ASKPASS_REQUIRE="force", DISPLAY=env.get("DISPLAY", ":0"),
                       PASSWORK_SSH_PASSWORD=endpoint.secret)
        with stderr_path.open("wb") as stderr:
            process = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr,
                                       env=env, start_new_session=True)
        try:
            deadline = time.monotonic() + connect_timeout_s + 5
            while not _port_open(local_port):
                if process.poll() is not None:
                    said = stderr_path.read_text(errors="replace").strip() or f"exit status {process.returncode}"
                    raise SshTunnelError(
                        f"SSH tunnel through bastion {endpoint.user}@{endpoint.host}:{endpoint.port} to "
                        f"{target_host}:{target_port} failed: {said}"
                    )
                if time.monotonic() > deadline:
                    raise SshTunnelError(
                        f"SSH tunnel through bastion {endpoint.user}@{endpoint.host}:{endpoint.port} did not open "
                        f"within {connect_timeout_s + 5}s"
                    )
                time.sleep(0.05)
            yield local_port
        finally:
            _stop(process)
